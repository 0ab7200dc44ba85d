// jwtgate demo SPA: authorization code + PKCE against the local issuer, then API calls through the
// gateway. Plain browser JavaScript, no build step and no third-party code.
"use strict";

const store = window.sessionStorage;
let config = null;

const $ = (selector, root = document) => root.querySelector(selector);
const field = (root, name) => $(`[data-field="${name}"]`, root);

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function pkceChallenge(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

function decodeSegment(segment) {
  const padded = segment.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((segment.length + 3) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function decodeJwt(token) {
  const parts = (token || "").split(".");
  if (parts.length !== 3) return null;
  try {
    return { header: decodeSegment(parts[0]), claims: decodeSegment(parts[1]) };
  } catch (_) {
    return null;
  }
}

// DPoP (RFC 9449): a P-256 key pair made in the browser, its private half not extractable, kept
// in IndexedDB so it survives the login redirect. Every API call then carries a fresh proof signed
// with it, and a copy of the token is useless without the key.
function keyStore(mode, action) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("jwtgate-demo", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const request = action(open.result.transaction("keys", mode).objectStore("keys"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    };
  });
}

async function newDpopKey() {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  await keyStore("readwrite", (keys) => keys.put(pair, "dpop"));
  return pair;
}

async function dpopKey() {
  return keyStore("readonly", (keys) => keys.get("dpop"));
}

async function dpopProof(method, url, accessToken) {
  const pair = await dpopKey();
  if (!pair) throw new Error("no DPoP key: log in with DPoP again");
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
  const claims = { jti: randomString(16), htm: method, htu: url.split(/[?#]/)[0], iat: Math.floor(Date.now() / 1000) };
  if (accessToken) {
    claims.ath = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  }
  const encode = (value) => base64url(new TextEncoder().encode(JSON.stringify(value)));
  const input = `${encode(header)}.${encode(claims)}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
  return `${input}.${base64url(signature)}`;
}

async function login(withAudience) {
  const dpop = $("#dpop").checked;
  if (dpop) await newDpopKey();
  const verifier = randomString(48);
  const state = randomString(16);
  const nonce = randomString(16);
  store.setItem("pkce", JSON.stringify({ verifier, state, nonce, withAudience, dpop }));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    scope: "openid profile email read:users write:users",
    state,
    nonce,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
    prompt: "login",
  });
  if (withAudience) params.set("audience", config.audience);
  window.location.assign(`${config.issuer}authorize?${params}`);
}

async function completeLogin() {
  const query = new URLSearchParams(window.location.search);
  if (!query.has("code") && !query.has("error")) return;
  window.history.replaceState({}, "", "/");
  const pending = JSON.parse(store.getItem("pkce") || "null");
  store.removeItem("pkce");
  if (query.has("error")) {
    showResult(0, `Login failed: ${query.get("error")}`, "", query.get("error_description") || "");
    return;
  }
  if (!pending || pending.state !== query.get("state")) {
    showResult(0, "Login failed: the state does not match (start again)", "", "");
    return;
  }
  const tokenUrl = `${config.issuer}oauth/token`;
  const headers = { "Content-Type": "application/x-www-form-urlencoded" };
  if (pending.dpop) headers.DPoP = await dpopProof("POST", tokenUrl);
  const response = await fetch(tokenUrl, {
    method: "POST",
    headers,
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.clientId,
      code: query.get("code"),
      redirect_uri: config.redirectUri,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) {
    showResult(response.status, "Token exchange failed", "", JSON.stringify(tokens, null, 2));
    return;
  }
  const id = decodeJwt(tokens.id_token);
  if (!id || id.claims.nonce !== pending.nonce) {
    showResult(0, "Login failed: the ID token's nonce does not match", "", "");
    return;
  }
  store.setItem("tokens", JSON.stringify({
    access: tokens.access_token,
    id: tokens.id_token,
    type: tokens.token_type,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  }));
}

function tokens() {
  return JSON.parse(store.getItem("tokens") || "null");
}

function renderToken(panel, token) {
  const raw = field(panel, "raw");
  const kind = field(panel, "kind");
  const decoded = field(panel, "decoded");
  raw.value = token || "";
  kind.className = "badge";
  if (!token) {
    kind.textContent = "none";
    decoded.textContent = "Log in to get one.";
    return;
  }
  const jwt = decodeJwt(token);
  if (!jwt) {
    kind.textContent = "opaque";
    kind.classList.add("opaque");
    decoded.textContent = "An opaque token: not a JWT, so an API cannot verify it locally.\n" +
      "Auth0 (and this issuer) return one when the login did not ask for an audience.";
    return;
  }
  const bound = jwt.claims.cnf && jwt.claims.cnf.jkt ? " · DPoP-bound" : "";
  kind.textContent = `JWT · ${jwt.header.alg} · kid ${jwt.header.kid}${bound}`;
  kind.classList.add("jwt");
  decoded.textContent = `// header\n${JSON.stringify(jwt.header, null, 2)}\n// claims\n${JSON.stringify(jwt.claims, null, 2)}`;
  panel.dataset.exp = jwt.claims.exp || "";
}

function tick() {
  for (const panel of document.querySelectorAll(".token")) {
    const exp = Number(panel.dataset.exp || 0);
    const out = field(panel, "expiry");
    if (!exp || !field(panel, "raw").value) {
      out.textContent = "";
      continue;
    }
    const left = Math.round(exp - Date.now() / 1000);
    const total = Math.abs(left);
    const hours = Math.floor(total / 3600);
    const minutes = String(Math.floor((total % 3600) / 60)).padStart(hours ? 2 : 1, "0");
    const seconds = String(total % 60).padStart(2, "0");
    const clock = hours ? `${hours}:${minutes}:${seconds}` : `${minutes}:${seconds}`;
    out.textContent = left > 0 ? `expires in ${clock}` : `expired ${clock} ago`;
  }
}

function render() {
  const current = tokens();
  renderToken($("#access"), current && current.access);
  renderToken($("#id"), current && current.id);
  const id = current && decodeJwt(current.id);
  $("#who").textContent = id ? `signed in as ${id.claims.name || id.claims.sub} (${id.claims.sub})` : "not signed in";
  tick();
}

function showResult(status, title, challenge, body) {
  const result = $("#result");
  result.className = `result ${status >= 200 && status < 300 ? "ok" : "bad"}`;
  field(result, "status").textContent = status ? `${status} ${title}` : title;
  field(result, "challenge").textContent = challenge ? `WWW-Authenticate: ${challenge}` : "";
  field(result, "body").textContent = body;
}

// Sends `token` the way its type asks: `DPoP` with a fresh proof for a DPoP-bound token, unless
// `asBearer` (what someone who copied the token, but not the key, can do).
async function callApi(method, path, token, body, asBearer) {
  const headers = {};
  const current = tokens();
  const dpop = token && !asBearer && current && current.type === "DPoP" && token === current.access;
  if (dpop) {
    headers.Authorization = `DPoP ${token}`;
    headers.DPoP = await dpopProof(method, new URL(path, location.href).href, token);
  } else if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) { /* not JSON */ }
  const table = $("#users");
  if (method === "GET" && response.ok) {
    const users = JSON.parse(text);
    pretty = `${users.length} users (table below)`;
    const rows = users.map((u) => `<tr><td>${u.id}</td><td>${escapeHtml(u.name)}</td><td>${escapeHtml(u.email)}</td><td>${escapeHtml(u.created_by)}</td></tr>`);
    $("tbody", table).innerHTML = rows.join("");
    table.hidden = false;
  } else if (method === "GET") {
    table.hidden = true;
  }
  showResult(response.status, `${response.statusText} — ${method} ${path}`, response.headers.get("WWW-Authenticate"), pretty);
  return response.status;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function rotate() {
  const response = await fetch("/demo/rotate", { method: "POST" });
  const text = await response.text();
  showResult(response.status, response.ok ? "Issuer key rotated" : "Rotation failed", "", text);
}

function logout() {
  store.removeItem("tokens");
  const params = new URLSearchParams({ client_id: config.clientId, returnTo: config.redirectUri });
  window.location.assign(`${config.issuer}v2/logout?${params}`);
}

async function main() {
  config = await (await fetch("/demo/config")).json();
  const link = $("#issuer-link");
  link.href = config.issuer;
  link.textContent = config.issuer;
  await completeLogin();
  render();
  setInterval(tick, 1000);
  $("#login").onclick = () => login(true);
  $("#login-no-audience").onclick = () => login(false);
  $("#logout").onclick = logout;
  $("#get-users").onclick = () => callApi("GET", "/api/users", tokens() && tokens().access);
  $("#new-user").onsubmit = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    callApi("POST", "/api/users", tokens() && tokens().access, { name: form.get("name"), email: form.get("email") });
  };
  $("#with-id-token").onclick = () => callApi("GET", "/api/users", tokens() && tokens().id);
  $("#replay-bearer").onclick = () => callApi("GET", "/api/users", tokens() && tokens().access, undefined, true);
  $("#rotate").onclick = rotate;
  for (const button of document.querySelectorAll("button.copy")) {
    button.onclick = async () => {
      const value = $(`#${button.dataset.copy} textarea`).value;
      try {
        await navigator.clipboard.writeText(value);
        button.textContent = "Copied";
      } catch (_) {
        $(`#${button.dataset.copy} textarea`).select();
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    };
  }
}

main().catch((error) => showResult(0, `The page failed: ${error}`, "", ""));
