// The MCP SDK's own server shape: an McpServer over Streamable HTTP (stateful sessions, SSE
// responses), unchanged, on a loopback port. It knows nothing of OAuth: jwtgate in front of it
// is the resource server. Every JSON-RPC message and every HTTP request it receives is logged as
// one JSON line on stdout, so the Rust test can tell what reached it.
//
// Usage: node mcp-server.mjs PORT
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const port = Number(process.argv[2]);
const log = (event) => process.stdout.write(JSON.stringify(event) + '\n');

function newServer() {
  const server = new McpServer({ name: 'users', version: '1.0.0' });
  server.registerTool(
    'list_users',
    { description: 'Lists the users', inputSchema: {} },
    async (_args, extra) => {
      log({ tool: 'list_users', user: extra.requestInfo?.headers['x-auth-subject'] ?? null });
      return { content: [{ type: 'text', text: JSON.stringify(['alice', 'bob']) }] };
    },
  );
  server.registerTool(
    'delete_user',
    { description: 'Deletes a user', inputSchema: { name: z.string() } },
    async ({ name }) => {
      log({ tool: 'delete_user', name });
      return { content: [{ type: 'text', text: `deleted ${name}` }] };
    },
  );
  server.registerPrompt('greeting', { description: 'A greeting' }, async () => {
    log({ prompt: 'greeting' });
    return { messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }] };
  });
  server.registerResource('readme', 'docs://readme', { description: 'Read me' }, async (uri) => {
    log({ resource: uri.href });
    return { contents: [{ uri: uri.href, text: 'read me' }] };
  });
  return server;
}

const transports = new Map();

createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks);
  log({
    http: req.method,
    url: req.url,
    authorization: req.headers.authorization ?? null,
    subject: req.headers['x-auth-subject'] ?? null,
    session: req.headers['mcp-session-id'] ?? null,
    body: raw.length ? raw.toString('utf8') : null,
  });
  const body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId) {
      res.writeHead(404).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
}).listen(port, '127.0.0.1', () => log({ listening: port }));
