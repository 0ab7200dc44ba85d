// The MCP SDK's client against an MCP server behind jwtgate, with bearer tokens given by the
// Rust test (scenario "tokens"), or with the SDK's own OAuth provider (scenario "oauth", see
// mcp-oauth-client.mjs). Prints one JSON object with what each step saw.
//
// Usage: node mcp-client.mjs MCP_URL   (tokens in the environment: USER_TOKEN, OTHER_USER_TOKEN,
// ADMIN_TOKEN, OTHER_RESOURCE_TOKEN)
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.argv[2]);
const result = {};

async function connect(token) {
  const client = new Client({ name: 'jwtgate-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

const failure = (error) => ({ error: String(error?.message ?? error), code: error?.code ?? null });

// Discovery, as a client starts it: the 401 names the metadata, the metadata names the AS.
const unauthenticated = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
});
result.unauthenticated = {
  status: unauthenticated.status,
  challenge: unauthenticated.headers.get('www-authenticate'),
};
const metadataUrl = /resource_metadata="([^"]*)"/.exec(result.unauthenticated.challenge ?? '')?.[1];
result.metadata = metadataUrl ? await (await fetch(metadataUrl)).json() : null;

// A user with mcp:use: list and call what needs nothing more; a tool needing admin:users is 403.
{
  const { client, transport } = await connect(process.env.USER_TOKEN);
  result.session = transport.sessionId ?? null;
  result.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  result.list_users = (await client.callTool({ name: 'list_users', arguments: {} })).content[0].text;
  result.prompt = (await client.getPrompt({ name: 'greeting' })).messages[0].content.text;
  try {
    await client.callTool({ name: 'delete_user', arguments: { name: 'bob' } });
    result.user_delete = 'allowed';
  } catch (error) {
    result.user_delete = failure(error);
  }
  const refused = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${process.env.USER_TOKEN}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': transport.sessionId,
      'mcp-protocol-version': transport.protocolVersion ?? '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'delete_user', arguments: { name: 'bob' } } }),
  });
  result.user_delete_http = { status: refused.status, challenge: refused.headers.get('www-authenticate') };
  // Another user's valid token naming this session: as if the session did not exist.
  const hijack = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${process.env.OTHER_USER_TOKEN}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': transport.sessionId,
      'mcp-protocol-version': transport.protocolVersion ?? '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/list', params: {} }),
  });
  result.hijack = { status: hijack.status, body: await hijack.text() };
  await transport.terminateSession();
  result.terminated = true;
  await client.close();
}

// An administrator may call it.
{
  const { client } = await connect(process.env.ADMIN_TOKEN);
  result.admin_delete = (await client.callTool({ name: 'delete_user', arguments: { name: 'bob' } })).content[0].text;
  result.admin_read = (await client.readResource({ uri: 'docs://readme' })).contents[0].text;
  await client.close();
}

// A token for another resource is refused (RFC 8707 audience).
try {
  await connect(process.env.OTHER_RESOURCE_TOKEN);
  result.other_resource = 'allowed';
} catch (error) {
  result.other_resource = failure(error);
}

process.stdout.write(JSON.stringify(result) + '\n');
