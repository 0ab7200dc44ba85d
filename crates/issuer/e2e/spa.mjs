// Drives the real @auth0/auth0-spa-js bundle in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium or $JWTGATE_CHROMIUM) against a jwtgate issuer, three times: silent renewal
// through the hidden iframe (prompt=none + web_message), with useRefreshTokens, and with useDpop
// (DPoP-bound tokens, a bound refresh token, and a proof from generateDpopProof for an API call
// that the Rust test checks with jwtgate's own DPoP checks). Serves the test page
// itself on a free loopback port. Prints one JSON object with the tokens and what happened on
// stdout; the Rust test (crates/issuer/tests/real_clients.rs) checks them. Exit 1 on any failure.
//
// With a gateway URL, the DPoP run also calls it through the SDK's createFetcher(): the SDK
// makes the proof, sends `Authorization: DPoP`, and answers the gateway's use_dpop_nonce itself.
//
// usage: node spa.mjs <issuer domain, e.g. http://localhost:4400> <audience> <artifact dir> [gateway]

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const [domain, audience, artifacts, gateway] = process.argv.slice(2);
if (!domain || !audience || !artifacts) {
  console.error('usage: node spa.mjs <issuer domain> <audience> <artifact dir>');
  process.exit(2);
}
const sdkDir = path.join(here, 'node_modules', '@auth0', 'auth0-spa-js', 'dist');
// The API call a DPoP proof is made for (checked by the Rust test, not sent anywhere).
const DPOP_API_URL = 'https://api.jwtgate.local/api/users';
const page = fs.readFileSync(path.join(here, 'spa', 'index.html'));

// The SPA's origin: same host name as the issuer (localhost), another port.
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname.startsWith('/sdk/')) {
    const file = path.join(sdkDir, path.basename(url.pathname));
    if (fs.existsSync(file)) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(fs.readFileSync(file));
      return;
    }
  }
  if (['/', '/callback', '/logged-out'].includes(url.pathname)) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
    return;
  }
  res.writeHead(404);
  res.end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const spa = `http://localhost:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.JWTGATE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const log = [];
async function run(mode) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const requests = [];
  const record = (request) => {
    const url = new URL(request.url());
    if (!url.href.startsWith(domain)) return;
    const entry = { method: request.method(), path: url.pathname };
    if (url.pathname === '/authorize') {
      entry.prompt = url.searchParams.get('prompt');
      entry.response_mode = url.searchParams.get('response_mode');
    }
    if (url.pathname === '/oauth/token' && request.method() === 'POST') {
      entry.grant_type = new URLSearchParams(request.postData() || '').get('grant_type');
      entry.dpop = Boolean(request.headers()['dpop']);
      // The answer's token_type (DPoP or Bearer), once it arrives.
      request.response().then(async (response) => {
        try {
          entry.token_type = (await response.json()).token_type;
        } catch (_) { /* an error page or a preflight */ }
      }).catch(() => {});
    }
    requests.push(entry);
  };
  context.on('request', record);
  tab.on('worker', (worker) => log.push(`${mode}: worker ${worker.url()}`));
  tab.on('console', (m) => log.push(`${mode}: console.${m.type()}: ${m.text()}`));
  tab.on('pageerror', (e) => log.push(`${mode}: pageerror: ${e.message}`));
  await tab.addInitScript((cfg) => { window.E2E = cfg; }, { domain, audience, mode });

  await tab.goto(`${spa}/`);
  await tab.evaluate(() => window.ready);
  // loginWithRedirect navigates away; do not await it inside the page.
  await tab.evaluate(() => { window.client.loginWithRedirect(); });
  await tab.waitForURL((u) => u.href.startsWith(`${domain}/authorize`));
  await tab.screenshot({ path: path.join(artifacts, `issuer-login-page-${mode}.png`), fullPage: true });
  await tab.click('button[name="user"][value="alice"]');
  await tab.waitForURL((u) => u.href.startsWith(`${spa}/callback`));
  await tab.evaluate(() => window.ready);
  await tab.evaluate(async () => {
    await window.client.handleRedirectCallback();
    history.replaceState({}, '', '/');
  });
  const first = await tab.evaluate(() => window.client.getTokenSilently());
  const cached = await tab.evaluate(() => window.client.getTokenSilently());
  const silent = await tab.evaluate(() => window.client.getTokenSilently({ cacheMode: 'off' }));
  let dpopProof = null;
  if (mode === 'dpop') {
    dpopProof = await tab.evaluate(
      ([accessToken, url]) => window.client.generateDpopProof({ url, method: 'GET', accessToken }),
      [silent, DPOP_API_URL],
    );
  }
  let gatewayCalls = null;
  if (mode === 'dpop' && gateway) {
    gatewayCalls = await tab.evaluate(async (url) => {
      const fetcher = window.client.createFetcher({
        dpopNonceId: 'jwtgate-api',
        getAccessToken: () => window.client.getTokenSilently(),
      });
      const calls = [];
      for (let i = 0; i < 2; i++) {
        const response = await fetcher.fetchWithAuth(url);
        calls.push({ status: response.status, body: await response.text(), nonce: response.headers.get('dpop-nonce') });
      }
      // The same token as a bearer token, without a proof: refused (the token is DPoP-bound).
      const token = await window.client.getTokenSilently();
      const bearer = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
      calls.push({ status: bearer.status, challenge: bearer.headers.get('www-authenticate') });
      return calls;
    }, `${gateway}/api/users`);
  }
  const claims = await tab.evaluate(() => window.client.getIdTokenClaims());
  const user = await tab.evaluate(() => window.client.getUser());
  await tab.evaluate(([c, t]) => window.show(`signed in as ${c.sub}`, c, t), [claims, silent]);
  const screenshot = path.join(artifacts, `auth0-spa-js-signed-in-${mode}.png`);
  await tab.screenshot({ path: screenshot, fullPage: true });

  let afterReload = null;
  if (mode === 'iframe') {
    // A reload keeps only the is.authenticated cookie: checkSession must renew through the iframe.
    await tab.reload();
    await tab.evaluate(() => window.ready);
    afterReload = await tab.evaluate(() => window.client.isAuthenticated());
  }

  await tab.evaluate(() => {
    window.client.logout({ logoutParams: { returnTo: location.origin + '/logged-out' } });
  });
  await tab.waitForURL((u) => u.href.startsWith(`${spa}/logged-out`));
  await tab.evaluate(() => window.ready);
  const afterLogout = await tab.evaluate(() => window.client.isAuthenticated());
  // The issuer's session is gone too: a silent login is refused.
  const silentAfterLogout = await tab.evaluate(async () => {
    try {
      await window.client.getTokenSilently({ cacheMode: 'off' });
      return 'no error';
    } catch (e) {
      return e.error || e.message;
    }
  });
  await context.close();
  return {
    mode, access_token: first, cached_access_token: cached, silent_access_token: silent,
    id_token: claims.__raw, id_claims: claims, user, after_reload_authenticated: afterReload,
    after_logout_authenticated: afterLogout, silent_after_logout: silentAfterLogout,
    requests, screenshot, dpop_proof: dpopProof, dpop_url: DPOP_API_URL, gateway_calls: gatewayCalls,
  };
}

let exitCode = 0;
const result = { spa, runs: [], log };
try {
  for (const mode of ['iframe', 'refresh', 'dpop']) {
    result.runs.push(await run(mode));
  }
} catch (e) {
  result.error = `${e.message}\n${e.stack}`;
  exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(exitCode);
