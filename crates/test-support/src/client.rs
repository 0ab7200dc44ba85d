//! Asking a gateway over HTTP with reqwest, as a client or a proxy would: a bearer `GET`, a
//! forward-auth check as nginx's `auth_request` sends it, and what a refusal says (its status
//! and `WWW-Authenticate` challenge).

use std::net::SocketAddr;

/// A response's status and its `WWW-Authenticate` challenge (empty when there is none).
pub async fn www_authenticate(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| {
            value
                .to_str()
                .expect("a visible-ASCII challenge")
                .to_owned()
        })
        .unwrap_or_default();
    (status, challenge)
}

/// `GET url` from `client` with `token` as a bearer token and `headers` added: the answer's
/// status and `WWW-Authenticate` challenge ([`www_authenticate`]).
pub async fn get_bearer(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = client.get(url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    www_authenticate(response).await
}

/// A forward-auth check of `GET /api/users` at `http://{gateway}/auth`, as nginx's
/// `auth_request` sends it (`X-Original-Method`, `X-Original-URI`), with `token` as a bearer
/// token: the status and challenge.
pub async fn forward_auth_check(
    client: &reqwest::Client,
    gateway: SocketAddr,
    token: &str,
) -> (u16, String) {
    let response = client
        .get(format!("http://{gateway}/auth"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/api/users")
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("forward-auth check at {gateway}: {e}"));
    www_authenticate(response).await
}
