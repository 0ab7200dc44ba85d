// Clicks through the jwtgate demo page in headless Chromium, as a person would, and prints one
// PASS/FAIL line per step. Usage: node demo.mjs APP_URL OUT_DIR
// Exit code 0 only when every step passed. Screenshots go to OUT_DIR.
import { chromium } from "playwright-core";

const [appUrl, outDir] = process.argv.slice(2);
if (!appUrl || !outDir) {
  console.error("usage: node demo.mjs APP_URL OUT_DIR");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failures = 0;
const page = await browser.newPage({ viewport: { width: 1280, height: 960 } });
page.setDefaultTimeout(15000);
page.on("pageerror", (error) => { console.log(`FAIL page error: ${error.message}`); failures += 1; });

function report(name, ok, detail) {
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures += 1;
}

async function step(name, action) {
  try {
    const detail = await action();
    report(name, true, detail);
  } catch (error) {
    report(name, false, String(error.message || error).split("\n")[0]);
  }
}

async function result() {
  return {
    status: await page.locator('#result [data-field="status"]').innerText(),
    challenge: await page.locator('#result [data-field="challenge"]').innerText(),
  };
}

// Clicks a button and waits for the result panel to show a new answer starting with `status`.
async function call(button, status, words) {
  const before = await page.locator('#result [data-field="status"]').innerText();
  await page.click(button);
  await page.waitForFunction(
    (previous) => {
      const now = document.querySelector('#result [data-field="status"]').innerText;
      return now !== previous && /^\d{3} /.test(now);
    },
    before,
  );
  const got = await result();
  if (!got.status.startsWith(String(status))) throw new Error(`got "${got.status}" ${got.challenge}`);
  if (words && !got.challenge.includes(words)) throw new Error(`challenge lacks "${words}": ${got.challenge}`);
  return `${got.status}${got.challenge ? ` | ${got.challenge.slice(0, 140)}` : ""}`;
}

async function login(button, user) {
  await page.click(button);
  await page.waitForSelector(`button[name="user"][value="${user}"]`);
  await page.click(`button[name="user"][value="${user}"]`);
  await page.waitForURL((url) => url.href.startsWith(appUrl) && !url.search.includes("code="));
  await page.waitForFunction((u) => document.querySelector("#who").innerText.includes(u), user);
  return await page.locator("#who").innerText();
}

try {
  await page.goto(appUrl);
  await step("page loads", async () => (await page.title()) === "jwtgate demo" ? "jwtgate demo" : Promise.reject(new Error("wrong title")));
  await step("log in as alice", () => login("#login", "alice"));
  await step("both tokens shown side by side", async () => {
    const access = await page.locator('#access [data-field="kind"]').innerText();
    const id = await page.locator('#id [data-field="kind"]').innerText();
    const raw = await page.locator('#id [data-field="raw"]').inputValue();
    if (!access.startsWith("JWT") || !id.startsWith("JWT") || raw.split(".").length !== 3) throw new Error(`${access} / ${id}`);
    const expiry = await page.locator('#access [data-field="expiry"]').innerText();
    if (!expiry.startsWith("expires in")) throw new Error(`no countdown: "${expiry}"`);
    return `${access}; ${expiry}`;
  });
  await step("alice: GET /api/users is allowed and lists users", async () => {
    const detail = await call("#get-users", 200);
    const rows = await page.locator("#users tbody tr").count();
    if (rows < 3) throw new Error(`${rows} rows`);
    return `${detail} (${rows} users)`;
  });
  await page.screenshot({ path: `${outDir}/demo-alice.png`, fullPage: true });
  await step("alice: POST /api/users is refused with 403 and the reason", () => call("#post-user", 403, "insufficient_scope"));
  await step("the ID token is refused with the ID-token hint", () => call("#with-id-token", 401, "ID token"));
  await page.screenshot({ path: `${outDir}/demo-id-token.png`, fullPage: true });
  await step("rotate the issuer key", async () => {
    await page.click("#rotate");
    await page.waitForFunction(() => document.querySelector('#result [data-field="status"]').innerText.includes("rotated"));
    return (await result()).status;
  });
  await step("calls still succeed after the rotation", () => call("#get-users", 200));
  await step("log in as bob", () => login("#login", "bob"));
  await step("bob: GET /api/users is refused with 403", () => call("#get-users", 403, "read:users"));
  await step("log in as alice with DPoP", async () => {
    await page.check("#dpop");
    const who = await login("#login", "alice");
    const kind = await page.locator('#access [data-field="kind"]').innerText();
    if (!kind.includes("DPoP-bound")) throw new Error(`the token is not bound: ${kind}`);
    return `${who}; ${kind}`;
  });
  await step("alice with DPoP: GET /api/users is allowed (token + proof)", () => call("#get-users", 200));
  await step("the token replayed without its proof is refused", () => call("#replay-bearer", 401, "DPoP-bound"));
  await page.screenshot({ path: `${outDir}/demo-dpop.png`, fullPage: true });
  await page.uncheck("#dpop");
  await step("log in without an audience", () => login("#login-no-audience", "alice"));
  await step("the access token is opaque", async () => {
    const kind = await page.locator('#access [data-field="kind"]').innerText();
    if (kind !== "opaque") throw new Error(kind);
    return kind;
  });
  await step("the opaque token is refused with the audience hint", () => call("#get-users", 401, "audience"));
  await page.screenshot({ path: `${outDir}/demo-opaque.png`, fullPage: true });
  await step("log out", async () => {
    await page.click("#logout");
    await page.waitForURL((url) => url.href.startsWith(appUrl));
    await page.waitForFunction(() => document.querySelector("#who").innerText === "not signed in");
    return "not signed in";
  });
} finally {
  await browser.close();
}
console.log(failures === 0 ? "all steps passed" : `${failures} step(s) failed`);
process.exit(failures === 0 ? 0 : 1);
