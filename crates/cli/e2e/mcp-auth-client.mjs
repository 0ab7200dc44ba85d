// The MCP SDK's OAuth client functions against `jwtgate issuer`, unchanged and headless: RFC 8414
// discovery, then a client identity — RFC 7591 registration (`dcr`) or a Client ID Metadata
// Document served here on a loopback port (`cimd`) — then PKCE authorization with the RFC 8707
// `resource` (following the redirect to the login page and submitting its form with fetch), and
// the code exchange and a refresh, both with the same `resource`.
//
// Driven by crates/cli/tests/mcp_authorization_server.rs:
//   node mcp-auth-client.mjs ISSUER_URL RESOURCE dcr|cimd
// Prints one JSON line: {"client_id", "tokens", "refreshed", "metadata"}; exits 1 with the error
// otherwise.

import http from 'node:http';
import {
  discoverAuthorizationServerMetadata,
  registerClient,
  startAuthorization,
  exchangeAuthorization,
  refreshAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { signIn } from './issuer-login.mjs';

const [issuer, resource, mode] = process.argv.slice(2);
if (!issuer || !resource || !['dcr', 'cimd'].includes(mode)) {
  console.error('usage: node mcp-auth-client.mjs ISSUER_URL RESOURCE dcr|cimd');
  process.exit(2);
}

// Where the authorization response goes; nothing listens there: the redirect is read, not followed.
const redirectUrl = 'http://127.0.0.1:33418/callback';
const clientMetadata = {
  client_name: 'jwtgate MCP e2e client',
  redirect_uris: [redirectUrl],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  scope: 'mcp:use',
};

/** Serves a Client ID Metadata Document whose client_id is its own URL; resolves to that URL. */
function serveMetadataDocument() {
  return new Promise((resolve) => {
    const server = http.createServer((request, response) => {
      if (request.url !== '/oauth/client.json') {
        response.writeHead(404).end();
        return;
      }
      const { port } = server.address();
      const document = { client_id: `http://127.0.0.1:${port}/oauth/client.json`, ...clientMetadata };
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      response.end(JSON.stringify(document));
    });
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve(`http://127.0.0.1:${server.address().port}/oauth/client.json`);
    });
  });
}

try {
  const metadata = await discoverAuthorizationServerMetadata(issuer);
  if (!metadata) throw new Error(`no authorization server metadata at ${issuer}`);

  let clientInformation;
  if (mode === 'dcr') {
    clientInformation = await registerClient(issuer, { metadata, clientMetadata });
  } else {
    if (!metadata.client_id_metadata_document_supported) {
      throw new Error('the issuer does not announce client_id_metadata_document_supported');
    }
    clientInformation = { client_id: await serveMetadataDocument() };
  }

  const state = 'mcp-e2e-state';
  const { authorizationUrl, codeVerifier } = await startAuthorization(issuer, {
    metadata,
    clientInformation,
    redirectUrl,
    scope: 'mcp:use offline_access',
    state,
    resource: new URL(resource),
  });
  const callback = await signIn(authorizationUrl, 'alice');
  if (callback.origin + callback.pathname !== redirectUrl) throw new Error(`redirected to ${callback}`);
  if (callback.searchParams.get('error')) {
    throw new Error(`authorization error: ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);
  }
  if (callback.searchParams.get('state') !== state) throw new Error('state was not echoed');
  const tokens = await exchangeAuthorization(issuer, {
    metadata,
    clientInformation,
    authorizationCode: callback.searchParams.get('code'),
    codeVerifier,
    redirectUri: redirectUrl,
    resource: new URL(resource),
  });
  if (!tokens.refresh_token) throw new Error(`no refresh token: ${JSON.stringify(tokens)}`);
  const refreshed = await refreshAuthorization(issuer, {
    metadata,
    clientInformation,
    refreshToken: tokens.refresh_token,
    resource: new URL(resource),
  });
  console.log(JSON.stringify({ client_id: clientInformation.client_id, tokens, refreshed, metadata }));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
