//! The accept loop answers the forward-auth path itself (`server::Gateway`), without the router.
//! The same requests, sent byte for byte to a gateway served that way (`server::spawn`) and to
//! one served by the router alone (`server::router` + `server::serve_gateway`), must get the same
//! answers: status, headers and body, for allowed checks and for every kind of refusal, and for
//! paths next to the forward-auth path that only the router serves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jwtgate_http::config::GatewayConfig;
use jwtgate_http::{server, SharedEngine};
use serde_json::json;
use std::net::SocketAddr;
use support::{send, start_config, users_api_config, Gateway, Issuer};
use tokio::net::TcpListener;

fn config(issuer: &Issuer) -> GatewayConfig {
    users_api_config(issuer, "")
}

/// One request: its name, method, target and headers.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// A gateway served by its router alone (`server::router` + `server::serve_gateway`): its
/// address, and its stop (when dropped).
async fn routed(issuer: &Issuer) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let built = config(issuer).build("test.toml").unwrap();
    server::prepare_keys(&built.engine).await;
    let app = server::router(SharedEngine::shared(built.engine.clone()), &built.options).unwrap();
    let metrics = built.engine.metrics().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::serve_gateway(listener, app, metrics, &built.options, None, async {
            let _ = stopped.await;
        })
        .await
    });
    (addr, stop)
}

#[tokio::test]
async fn the_direct_forward_auth_dispatch_answers_as_the_router_does() {
    let issuer = Issuer::new();
    let good = format!("Bearer {}", issuer.token(json!({})));
    let writer = format!(
        "Bearer {}",
        issuer.token(json!({"permissions": ["write:users"]}))
    );
    let expired = format!("Bearer {}", issuer.expired());
    let fwd = |method: &'static str, uri: &'static str| {
        vec![("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri)]
    };
    let with = |mut headers: Vec<(&'static str, &'static str)>,
                more: &[(&'static str, &'static str)]| {
        headers.extend_from_slice(more);
        headers
    };
    let good: &'static str = Box::leak(good.into_boxed_str());
    let writer: &'static str = Box::leak(writer.into_boxed_str());
    let expired: &'static str = Box::leak(expired.into_boxed_str());
    let cases: Vec<Case> = vec![
        (
            "allowed",
            "GET",
            "/auth",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "allowed, lower-case method",
            "GET",
            "/auth",
            with(fwd("get", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "allowed, nginx headers",
            "GET",
            "/auth",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/users"),
                ("Authorization", good),
            ],
        ),
        (
            "allowed, method of the check request",
            "GET",
            "/auth",
            vec![("X-Original-URI", "/api/users"), ("Authorization", good)],
        ),
        (
            "allowed, HEAD check",
            "HEAD",
            "/auth",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "allowed, POST check with a body",
            "POST",
            "/auth",
            with(
                fwd("GET", "/api/users"),
                &[("Authorization", good), ("Content-Length", "0")],
            ),
        ),
        ("public", "GET", "/auth", fwd("GET", "/public/x")),
        ("no token", "GET", "/auth", fwd("GET", "/api/users")),
        (
            "expired",
            "GET",
            "/auth",
            with(fwd("GET", "/api/users"), &[("Authorization", expired)]),
        ),
        (
            "missing scope",
            "GET",
            "/auth",
            with(fwd("POST", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "scope present",
            "GET",
            "/auth",
            with(fwd("POST", "/api/users"), &[("Authorization", writer)]),
        ),
        (
            "malformed Authorization",
            "GET",
            "/auth",
            with(fwd("GET", "/api/users"), &[("Authorization", "Bearer a b")]),
        ),
        (
            "traversal",
            "GET",
            "/auth",
            with(
                fwd("GET", "/public/../api/users"),
                &[("Authorization", writer)],
            ),
        ),
        (
            "encoded traversal",
            "GET",
            "/auth",
            fwd("GET", "/public/%2e%2e/api/users"),
        ),
        ("double slash", "GET", "/auth", fwd("GET", "//api/users")),
        (
            "encoded slash",
            "GET",
            "/auth",
            fwd("GET", "/public/..%2Fapi/users"),
        ),
        (
            "no original URI",
            "GET",
            "/auth",
            vec![("Authorization", good)],
        ),
        (
            "conflicting URIs",
            "GET",
            "/auth",
            with(fwd("GET", "/public/x"), &[("X-Original-URI", "/api/users")]),
        ),
        ("unusable method", "GET", "/auth", fwd("G(T", "/api/users")),
        (
            "URI not a path",
            "GET",
            "/auth",
            fwd("GET", "http://x/api/users"),
        ),
        (
            "identity spelling",
            "GET",
            "/auth",
            with(
                fwd("GET", "/api/users"),
                &[("Authorization", good), ("X_Auth_Subject", "mallory")],
            ),
        ),
        (
            "method override",
            "GET",
            "/auth",
            with(
                fwd("GET", "/api/users"),
                &[
                    ("Authorization", good),
                    ("X-HTTP-Method-Override", "DELETE"),
                ],
            ),
        ),
        (
            "Connection names an identity header",
            "GET",
            "/auth",
            with(
                fwd("GET", "/api/users"),
                &[("Authorization", good), ("Connection", "x-auth-subject")],
            ),
        ),
        (
            "query on the check path",
            "GET",
            "/auth?x=1",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "trailing slash: the router's",
            "GET",
            "/auth/",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "other case: the router's",
            "GET",
            "/AUTH",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        (
            "encoded: the router's",
            "GET",
            "/%61uth",
            with(fwd("GET", "/api/users"), &[("Authorization", good)]),
        ),
        ("health: the router's", "GET", "/healthz", vec![]),
    ];
    let gateway: Gateway = start_config(&config(&issuer)).await;
    let direct = gateway.addr;
    let (routed, _routed_stop) = routed(&issuer).await;
    for (name, method, target, headers) in &cases {
        let a = send(direct, method, target, headers).await;
        let b = send(routed, method, target, headers).await;
        let comparable = |reply: &support::Reply| {
            let mut headers: Vec<(String, String)> = reply
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            headers.sort();
            (reply.status, headers, reply.body.clone())
        };
        assert_eq!(comparable(&a), comparable(&b), "{name}");
    }
    // The table covers allowed checks and refusals of each kind.
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for (_, method, target, headers) in &cases {
            statuses.push(send(direct, method, target, headers).await.status);
        }
        statuses
    };
    for status in [200, 400, 401, 403, 404] {
        assert!(
            statuses.contains(&status),
            "no case answered {status}: {statuses:?}"
        );
    }
}
