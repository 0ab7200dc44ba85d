// A long-running jose verifier for the key-rotation test: one createRemoteJWKSet for the whole
// process (as in a Node API that never restarts). Reads one token per line on stdin and answers
// one JSON line per token: {"ok":true,"kid":…,"sub":…} or {"ok":false,"code":…,"message":…}.
// Prints {"ready":true} first.
//
// usage: node jose-verifier.mjs <jwks URL> <issuer> <audience> [cooldown ms]

import readline from 'node:readline';
import * as jose from 'jose';

const [jwksUrl, issuer, audience, cooldown] = process.argv.slice(2);
const JWKS = jose.createRemoteJWKSet(new URL(jwksUrl), {
  cooldownDuration: Number(cooldown ?? 30000),
});
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (token) => {
  queue = queue.then(async () => {
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(token.trim(), JWKS, { issuer, audience });
      out({ ok: true, kid: protectedHeader.kid, sub: payload.sub });
    } catch (e) {
      out({ ok: false, code: e.code, message: e.message });
    }
  });
});
out({ ready: true });
