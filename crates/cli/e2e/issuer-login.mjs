// The browser's part of a sign-in at `jwtgate issuer`, headless: open the authorization URL,
// pick a user on the login page (the form's typed-name field), and return the redirect the
// issuer answers with (the client's redirect URI with `code` and `state`, or `error`). Nothing
// is sent to the redirect URI itself.
//
//   import { signIn } from './issuer-login.mjs';
//   const callback = await signIn(authorizationUrl, 'alice');   // a URL

/** Signs `user` in for the authorization request at `authorizationUrl`; resolves to the redirect URL. */
export async function signIn(authorizationUrl, user) {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`/authorize answered ${page.status}: ${html.slice(0, 500)}`);
  const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1];
  if (!tx) throw new Error(`no login form in: ${html.slice(0, 500)}`);
  const login = await fetch(new URL('/login', authorizationUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ tx, username: user }),
  });
  const location = login.headers.get('location');
  if (login.status !== 302 || !location) {
    throw new Error(`/login answered ${login.status}: ${(await login.text()).slice(0, 500)}`);
  }
  return new URL(location);
}
