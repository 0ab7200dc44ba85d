//! The recipes of `docs/recipes/` with the real proxies: nginx (`auth_request`, Debian `nginx`)
//! and Caddy (`forward_auth`, Debian `caddy`) each run from the documented configuration in a
//! temp dir, in front of a small upstream that echoes the headers it got, asking the jwtgate
//! gateway (in-process, on a free loopback port, configured from the matching
//! `docs/recipes/jwtgate-*.toml`).
//!
//! For each proxy: a good token reaches the upstream with `X-Auth-Subject`/`-Issuer`/`-Scopes`;
//! no token is 401 with `WWW-Authenticate: Bearer realm=…`; a token lacking the route's scope is
//! 403 `insufficient_scope`; a client-sent identity header never reaches the upstream (with and
//! without a token, on protected and public routes), nor can a client-sent
//! `X-Forwarded-Uri`/`X-Original-URI` change the route jwtgate checks; a DPoP proof for the URI
//! the client used passes (the proxy sends `X-Forwarded-Proto`/`-Host`), one for another URI is
//! refused.
//!
//! Every `docs/*.md` recipe page must show its `docs/recipes/` files verbatim, so the pages show
//! what is tested. The Envoy and Traefik recipes run with the real proxies in
//! `crates/cli/tests/envoy_traefik.rs`.
//!
//! These tests fail (they do not skip) when nginx or caddy is missing: `.ci/run` installs both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jwtgate_test_support::upstream::{header_values, start_echo_upstream, Seen};
use jwtgate_test_support::DpopClient;
use serde_json::json;
use std::net::SocketAddr;
use support::{
    recipe, recipe_issuer, repo_root, send, start_caddy, start_gateway, start_nginx, Issuer,
    CHALLENGE, ISS,
};

// ---------------------------------------------------------------------------------------------
// The checks, the same for every proxy

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proxy {
    Nginx,
    Caddy,
}

/// Identity headers a client might forge, in assorted spellings.
const FORGED: [(&str, &str); 4] = [
    ("X-Auth-Subject", "admin"),
    ("x-auth-subject", "root"),
    ("X-AUTH-SCOPES", "write:users admin"),
    ("X-Auth-Issuer", "https://evil.example/"),
];

/// `headers` plus every forged identity header.
fn with_forged<'a>(mut headers: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    headers.extend(FORGED);
    headers
}

async fn check_recipe(proxy: Proxy, addr: SocketAddr, issuer: &Issuer, seen: &Seen) {
    let good = issuer.token(json!({}));
    let bearer = format!("Bearer {good}");
    let auth = ("Authorization", bearer.as_str());
    let mut expected_upstream_requests = 0;

    // A good token reaches the upstream with the verified identity, and only that.
    for forged in [false, true] {
        let mut headers = vec![auth];
        if forged {
            headers.extend(FORGED);
        }
        let reply = send(addr, "GET", "/api/users?page=2", &headers).await;
        assert_eq!(
            reply.status, 200,
            "{proxy:?} forged={forged}: {}",
            reply.body
        );
        expected_upstream_requests += 1;
        let echoed = reply.echoed();
        assert_eq!(echoed["uri"], "/api/users?page=2");
        assert_eq!(header_values(&echoed, "x-auth-subject"), ["auth0|alice"]);
        assert_eq!(header_values(&echoed, "x-auth-issuer"), [ISS]);
        let scopes = header_values(&echoed, "x-auth-scopes");
        assert_eq!(scopes.len(), 1, "{scopes:?}");
        assert!(
            scopes[0].split(' ').any(|s| s == "read:users") && !scopes[0].contains("admin"),
            "{scopes:?}"
        );
    }

    // No token: 401 with the bare challenge (exactly one), never reaching the upstream.
    for forged in [false, true] {
        let headers = if forged { with_forged(vec![]) } else { vec![] };
        let reply = send(addr, "GET", "/api/users", &headers).await;
        assert_eq!(reply.status, 401, "{proxy:?}: {}", reply.body);
        assert_eq!(reply.one("www-authenticate"), Some(CHALLENGE), "{proxy:?}");
    }

    // A client-sent X-Forwarded-Uri / X-Original-URI cannot make jwtgate check another route.
    let spoofed = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri", "/public/logo.png"),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/public/logo.png"),
    ];
    let reply = send(addr, "GET", "/api/users", &spoofed).await;
    // Refused either way: 401 when the proxy cleared the client's copies (the real path is
    // checked), 403 when a copy got through and conflicts with the proxy's own header.
    assert!(
        reply.status == 401
            || (reply.status == 403
                && reply
                    .body
                    .contains("conflicting X-Forwarded-*/X-Original-*")),
        "{proxy:?}: spoofed original URI: {} {}",
        reply.status,
        reply.body
    );
    // Nor can dot segments: /public/../api/users is /api/users.
    let reply = send(addr, "GET", "/public/../api/users", &[]).await;
    assert_eq!(reply.status, 401, "{proxy:?}: dot segments");

    // A valid token without the route's scope: 403 insufficient_scope with scope=.
    let reply = send(addr, "POST", "/api/users", &with_forged(vec![auth])).await;
    assert_eq!(reply.status, 403, "{proxy:?}: {}", reply.body);
    let challenge = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"api\"")
            && challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"write:users\""),
        "{proxy:?}: {challenge}"
    );

    // A bad token: 401 invalid_token.
    let expired = format!(
        "Bearer {}",
        issuer.token(json!({"exp": jwtgate_http::unix_now() - 60}))
    );
    let reply = send(addr, "GET", "/api/users", &[("Authorization", &expired)]).await;
    assert_eq!(reply.status, 401, "{proxy:?}");
    let challenge = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("expired"),
        "{proxy:?}: {challenge}"
    );

    // A malformed Authorization header: RFC 6750 says 400 invalid_request; nginx's auth_request
    // would turn a 400 into a 500, so its recipe answers 401.
    let reply = send(addr, "GET", "/api/users", &[("Authorization", "Bearer")]).await;
    let expected = if proxy == Proxy::Nginx { 401 } else { 400 };
    assert_eq!(reply.status, expected, "{proxy:?}: {}", reply.body);
    assert!(
        reply
            .one("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"invalid_request\""),
        "{proxy:?}: {:?}",
        reply.headers
    );

    // A route no rule allows: 403, even with a good token.
    let reply = send(addr, "GET", "/admin", &[auth]).await;
    assert_eq!(reply.status, 403, "{proxy:?}");

    // Public routes need no token, and no identity header reaches the upstream there, whatever
    // the client sent (with or without a token).
    for headers in [with_forged(vec![]), with_forged(vec![auth])] {
        let reply = send(addr, "GET", "/public/logo.png", &headers).await;
        assert_eq!(reply.status, 200, "{proxy:?}: {}", reply.body);
        expected_upstream_requests += 1;
        let echoed = reply.echoed();
        for name in ["x-auth-subject", "x-auth-scopes", "x-auth-issuer"] {
            assert_eq!(
                header_values(&echoed, name),
                Vec::<String>::new(),
                "{proxy:?}: {name} on a public route"
            );
        }
    }

    // DPoP: the proxy tells jwtgate the scheme and host the client used, so a proof for the
    // URI the client asked for passes, and one made for another URI is refused.
    let client = DpopClient::new(issuer);
    let dpop = client.authorization();
    let proof = |uri: &str, jti: &str| client.proof("GET", uri, jti, None);
    let good_proof = proof("http://api.example.com/api/users", "through-the-proxy");
    let reply = send(
        addr,
        "GET",
        "/api/users?page=2",
        &[("Authorization", &dpop), ("DPoP", &good_proof)],
    )
    .await;
    assert_eq!(reply.status, 200, "{proxy:?}: DPoP: {}", reply.body);
    expected_upstream_requests += 1;
    let other_proof = proof("http://api.example.com/api/other", "another-uri");
    let reply = send(
        addr,
        "GET",
        "/api/users",
        &[("Authorization", &dpop), ("DPoP", &other_proof)],
    )
    .await;
    assert_eq!(reply.status, 401, "{proxy:?}: DPoP for another URI");
    let challenge = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("DPoP ")
            && challenge.contains("error=\"invalid_dpop_proof\"")
            && challenge.contains("the request is http://api.example.com/api/users"),
        "{proxy:?}: {challenge}"
    );

    // Over the whole run: only the allowed requests reached the upstream, and no forged value
    // ever did.
    let all = seen.all();
    assert_eq!(all.len(), expected_upstream_requests, "{proxy:?}: {all:#?}");
    for record in &all {
        for name in ["x-auth-subject", "x-auth-scopes", "x-auth-issuer"] {
            for value in header_values(record, name) {
                assert!(
                    !FORGED.iter().any(|(_, forged)| *forged == value),
                    "{proxy:?}: forged {name}: {value} reached the upstream"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_recipe() {
    let issuer = recipe_issuer();
    let (jwtgate, _stop) = start_gateway("jwtgate-nginx.toml", &issuer).await;
    let (upstream, seen) = start_echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (nginx, addr) = start_nginx(dir.path(), jwtgate, upstream).await;
    check_recipe(Proxy::Nginx, addr, &issuer, &seen).await;
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_recipe() {
    let issuer = recipe_issuer();
    let (jwtgate, _stop) = start_gateway("jwtgate-caddy.toml", &issuer).await;
    let (upstream, seen) = start_echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (caddy, addr) = start_caddy(dir.path(), jwtgate, upstream).await;
    check_recipe(Proxy::Caddy, addr, &issuer, &seen).await;
    drop(caddy);
}

/// With `[dpop] nonce = true` added to the recipe's jwtgate, nginx hands jwtgate's `DPoP-Nonce`
/// to the client: on the `use_dpop_nonce` refusal, and on the success of the retry with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_dpop_nonces_on() {
    let issuer = recipe_issuer();
    let jwks = issuer.jwks_file().display().to_string();
    let (jwtgate, _stop) = support::start_gateway_with("jwtgate-nginx.toml", |addr| {
        let config = support::render(
            &recipe("jwtgate-nginx.toml"),
            &[("@JWTGATE_ADDR@", addr.to_string()), ("@JWKS_FILE@", jwks)],
        );
        format!("{config}\n[dpop]\nnonce = true\n")
    })
    .await;
    let (upstream, _seen) = start_echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (nginx, addr) = start_nginx(dir.path(), jwtgate, upstream).await;
    let client = DpopClient::new(&issuer);
    let dpop = client.authorization();
    let proof = |jti: &str, nonce: Option<&str>| {
        client.proof("GET", "http://api.example.com/api/users", jti, nonce)
    };
    let reply = send(
        addr,
        "GET",
        "/api/users",
        &[("Authorization", &dpop), ("DPoP", &proof("first", None))],
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(
        reply
            .one("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"use_dpop_nonce\""),
        "{:?}",
        reply.headers
    );
    let nonce = reply.one("dpop-nonce").expect("the nonce").to_owned();
    let reply = send(
        addr,
        "GET",
        "/api/users",
        &[
            ("Authorization", &dpop),
            ("DPoP", &proof("retry", Some(&nonce))),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.one("dpop-nonce"), Some(nonce.as_str()));
    // A bearer request gets no nonce header (nginx sends no empty one).
    let bearer = format!("Bearer {}", issuer.token(json!({})));
    let reply = send(addr, "GET", "/api/users", &[("Authorization", &bearer)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.one("dpop-nonce"), None);
    drop(nginx);
}

#[test]
fn docs_show_the_tested_recipes() {
    let root = repo_root();
    for (page, files) in [
        ("nginx.md", &["jwtgate-nginx.toml", "nginx.conf"][..]),
        ("caddy.md", &["jwtgate-caddy.toml", "Caddyfile"][..]),
        ("proxy-mode.md", &["jwtgate-proxy.toml"][..]),
    ] {
        let text = std::fs::read_to_string(root.join("docs").join(page)).unwrap();
        for file in files {
            assert!(
                text.contains(&recipe(file)),
                "docs/{page} does not show docs/recipes/{file} as it is: copy the file into the page"
            );
        }
    }
}
