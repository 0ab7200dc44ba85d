// openid-client's DPoP support (RFC 9449, through oauth4webapi) against a jwtgate issuer and a
// jwtgate gateway: a DPoP-bound access token by client_credentials with a DPoP handle, then the
// API called with fetchProtectedResource (a fresh proof per request), and the same token sent as
// a plain bearer token. Prints one JSON object on stdout; the Rust test
// (crates/cli/tests/openid_client_dpop.rs) checks it. Exit 1 on any failure.
//
// usage: node dpop-rp.mjs <issuer URL with trailing slash> <audience> <API URL>

import * as client from 'openid-client';

const [issuerText, audience, apiText] = process.argv.slice(2);
const issuer = new URL(issuerText);
const api = new URL(apiText);
const insecure = { execute: [client.allowInsecureRequests] };

async function answer(response) {
  return {
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate'),
    body: await response.text(),
  };
}

async function main() {
  const config = await client.discovery(issuer, 'jwtgate-m2m', 'jwtgate-m2m-secret', undefined, insecure);
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const tokens = await client.clientCredentialsGrant(config, { audience, scope: 'read:users' }, { DPoP });
  const first = await client.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP });
  const second = await client.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP });
  const bearer = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  return {
    dpop_algs: config.serverMetadata().dpop_signing_alg_values_supported,
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    with_proof: await answer(first),
    with_another_proof: await answer(second),
    as_bearer: await answer(bearer),
  };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: `${e.message}\n${e.stack}`, cause: String(e.cause ?? '') })}\n`);
  process.exit(1);
}
