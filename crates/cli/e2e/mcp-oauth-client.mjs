// The MCP SDK's client with its own OAuth provider against an MCP server behind jwtgate, and
// `jwtgate issuer` as the authorization server — nothing configured in the client but the MCP
// URL: discovery from the gateway's 401 (resource_metadata → RFC 9728 metadata → RFC 8414),
// dynamic client registration, PKCE login with the RFC 8707 resource (headless: the redirect to
// the login page is followed and its form submitted), the token for the resource, tools/list
// and a permitted tools/call; then a tool needing a scope the user does not have: 403 with
// scope=, the SDK's step-up authorization, and the same 403 again.
//
// Usage: node mcp-oauth-client.mjs MCP_URL USER
// Prints one JSON line with what each step saw; exits 1 with the error otherwise.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { signIn } from './issuer-login.mjs';

const [mcpUrl, user] = process.argv.slice(2);
const redirectUrl = 'http://127.0.0.1:33419/callback';
const result = { authorizations: [] };

/** The browser's part (issuer-login.mjs), then the code from the redirect. */
async function signInForCode(authorizationUrl) {
  const callback = await signIn(authorizationUrl, user);
  if (callback.searchParams.get('error')) {
    throw new Error(`authorization error: ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);
  }
  return callback.searchParams.get('code');
}

/** An in-memory OAuthClientProvider whose "browser" is signIn. */
class HeadlessProvider {
  constructor() {
    this.saved = {};
    this.pendingCode = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'jwtgate MCP e2e (SDK auth provider)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(client) { this.saved.client = client; result.client_id = client.client_id; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  async redirectToAuthorization(url) {
    result.authorizations.push({
      resource: url.searchParams.get('resource'),
      scope: url.searchParams.get('scope'),
      code_challenge_method: url.searchParams.get('code_challenge_method'),
    });
    this.pendingCode = await signInForCode(url);
  }
  saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
  codeVerifier() { return this.saved.verifier; }
}

const provider = new HeadlessProvider();

async function connect() {
  for (let attempt = 0; attempt < 3; attempt++) {
    const client = new Client({ name: 'jwtgate-oauth-e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
      await transport.finishAuth(provider.pendingCode);
      provider.pendingCode = undefined;
    }
  }
  throw new Error('no connection after three authorizations');
}

try {
  const { client, transport } = await connect();
  const access = provider.tokens().access_token;
  result.token_claims = JSON.parse(Buffer.from(access.split('.')[1], 'base64url').toString());
  result.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  result.list_users = (await client.callTool({ name: 'list_users', arguments: {} })).content[0].text;
  // The 403 names the scopes; the SDK authorizes again asking for them (the "browser" signs in
  // again), and the call is retried with the new token.
  const deleteUser = () => client.callTool({ name: 'delete_user', arguments: { name: 'bob' } });
  try {
    await deleteUser();
    result.delete_user = 'allowed';
  } catch (error) {
    let final = error;
    if (error instanceof UnauthorizedError && provider.pendingCode) {
      await transport.finishAuth(provider.pendingCode);
      provider.pendingCode = undefined;
      result.stepped_up_scope = JSON.parse(
        Buffer.from(provider.tokens().access_token.split('.')[1], 'base64url').toString(),
      ).scope;
      try {
        await deleteUser();
        final = undefined;
        result.delete_user = 'allowed after step-up';
      } catch (again) {
        final = again;
      }
    }
    if (final) result.delete_user = { error: String(final?.message ?? final), code: final?.code ?? null };
  }
  await client.close();
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (error) {
  console.error(error?.stack ?? String(error));
  console.error(JSON.stringify(result));
  process.exit(1);
}
