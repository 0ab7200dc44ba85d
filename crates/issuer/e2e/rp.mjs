// openid-client (a certified relying party) and jose against a jwtgate issuer: discovery, the
// authorization code flow with PKCE (the "browser" is fetch: the login page's form is posted as a
// user would), refresh, userinfo, client_credentials with client_secret_post and _basic, and
// jose's createRemoteJWKSet + jwtVerify on every access token. Prints one JSON object on stdout;
// the Rust test (crates/issuer/tests/real_clients.rs) checks it. Exit 1 on any failure.
//
// usage: node rp.mjs <issuer URL with trailing slash> <audience>

import * as client from 'openid-client';
import * as jose from 'jose';

const [issuerText, audience] = process.argv.slice(2);
const issuer = new URL(issuerText);
const insecure = { execute: [client.allowInsecureRequests] };

async function main() {
  const spa = await client.discovery(issuer, 'jwtgate-spa', undefined, client.None(), insecure);
  const metadata = spa.serverMetadata();

  const code_verifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(code_verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const redirect_uri = 'http://localhost:5599/cb';
  const url = client.buildAuthorizationUrl(spa, {
    redirect_uri, scope: 'openid profile email read:users offline_access',
    code_challenge, code_challenge_method: 'S256', state, nonce, audience,
  });
  const page = await fetch(url, { redirect: 'manual' });
  const html = await page.text();
  const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1];
  if (!tx) throw new Error(`no login page at ${url}: ${page.status} ${html.slice(0, 200)}`);
  const login = await fetch(new URL('login', issuer), {
    method: 'POST', body: new URLSearchParams({ tx, user: 'alice' }), redirect: 'manual',
  });
  const callback = new URL(login.headers.get('location'));
  const tokens = await client.authorizationCodeGrant(spa, callback, {
    pkceCodeVerifier: code_verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const claims = tokens.claims();
  const refreshed = await client.refreshTokenGrant(spa, tokens.refresh_token);
  const userinfo = await client.fetchUserInfo(spa, tokens.access_token, claims.sub);

  const post = await client.discovery(issuer, 'jwtgate-m2m', 'jwtgate-m2m-secret', undefined, insecure);
  const cc = await client.clientCredentialsGrant(post, { audience, scope: 'read:users' });
  const basic = await client.discovery(issuer, 'jwtgate-m2m', undefined,
    client.ClientSecretBasic('jwtgate-m2m-secret'), insecure);
  const ccBasic = await client.clientCredentialsGrant(basic, { audience });
  let wrongSecret;
  try {
    const wrong = await client.discovery(issuer, 'jwtgate-m2m', 'not-the-secret', undefined, insecure);
    await client.clientCredentialsGrant(wrong, { audience });
    wrongSecret = 'accepted';
  } catch (e) {
    wrongSecret = { status: e.status, error: e.error, code: e.code };
  }

  const JWKS = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  const verify = async (token, expectedAudience = audience) => {
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(token, JWKS, {
        issuer: issuer.href, audience: expectedAudience, algorithms: ['RS256'],
      });
      return { ok: true, kid: protectedHeader.kid, payload };
    } catch (e) {
      return { ok: false, code: e.code, message: e.message };
    }
  };
  return {
    metadata_issuer: metadata.issuer,
    code: {
      access_token: tokens.access_token, id_token: tokens.id_token,
      has_refresh_token: typeof tokens.refresh_token === 'string',
      token_type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expiresIn(), claims,
    },
    refreshed: {
      access_token: refreshed.access_token, id_token: refreshed.id_token,
      rotated: refreshed.refresh_token !== tokens.refresh_token, claims: refreshed.claims(),
    },
    userinfo,
    client_credentials: { post: cc.access_token, basic: ccBasic.access_token, scope: cc.scope, wrong_secret: wrongSecret },
    jose: {
      code: await verify(tokens.access_token),
      refreshed: await verify(refreshed.access_token),
      client_credentials: await verify(cc.access_token),
      id_token_for_client: await verify(tokens.id_token, 'jwtgate-spa'),
      id_token_as_access_token: await verify(tokens.id_token),
    },
  };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: `${e.message}\n${e.stack}`, cause: String(e.cause ?? '') })}\n`);
  process.exit(1);
}
