//! The gateway over real loopback sockets: forward-auth answers (RFC 6750), identity headers,
//! route rules with path normalisation, the reverse proxy (identity stripping, streaming,
//! WebSocket upgrade), the tower layer with the axum extractor, CORS, the token cache, the
//! operations endpoints and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::routing::get;
use axum::Router;
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use jwtgate_http::{AuthLayer, VerifiedToken};
use jwtgate_test_support::{Issuer, AUDIENCE, ISSUER};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

fn now() -> i64 {
    jwtgate_test_support::now()
}

use support::users_api_config as config;

async fn start(
    config: &GatewayConfig,
) -> (
    SocketAddr,
    Arc<jwtgate_http::Engine>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let gateway = support::start_config(config).await;
    (
        gateway.addr,
        gateway.engine,
        gateway.stop.unwrap(),
        gateway.task,
    )
}

/// A raw HTTP/1.1 exchange, so tests see exactly what goes over the wire.
async fn http(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A forward-auth check of `method` `uri` with `token` as a bearer token.
async fn check_bearer(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    token: &str,
) -> (u16, Vec<(String, String)>, String) {
    let authorization = format!("Authorization: Bearer {token}\r\n");
    http(addr, &auth_request(method, uri, &authorization)).await
}

fn auth_request(method: &str, uri: &str, extra: &str) -> String {
    format!("GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Method: {method}\r\nX-Forwarded-Uri: {uri}\r\n{extra}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn forward_auth_answers_follow_rfc6750() {
    let issuer = Issuer::new();
    let (addr, _, _tx, _) = start(&config(&issuer, "")).await;
    let good = issuer.token(json!({"email": "alice@example.com"}));

    let (status, headers, _) = check_bearer(addr, "GET", "/api/users", &good).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-auth-subject"), Some("auth0|alice"));
    assert_eq!(header(&headers, "x-auth-issuer"), Some(ISSUER));
    assert_eq!(header(&headers, "x-auth-scopes"), Some("openid read:users"));
    assert_eq!(header(&headers, "x-auth-email"), Some("alice@example.com"));

    // No token: 401 with the bare challenge.
    let (status, headers, _) = http(addr, &auth_request("GET", "/api/users", "")).await;
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some("Bearer realm=\"jwtgate\"")
    );

    // Missing scope: 403 insufficient_scope with scope=.
    let (status, headers, body) = check_bearer(addr, "POST", "/api/users", &good).await;
    assert_eq!(status, 403);
    let challenge = header(&headers, "www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"write:users\""),
        "{challenge}"
    );
    assert!(body.contains("insufficient_scope"));

    // Bad token: 401 invalid_token, even when it also lacks the scope.
    let expired = issuer.token(json!({"exp": now() - 10, "permissions": []}));
    let (status, headers, _) = check_bearer(addr, "GET", "/api/users", &expired).await;
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));

    // Malformed header: 400 invalid_request.
    let (status, headers, _) = http(
        addr,
        &auth_request("GET", "/api/users", "Authorization: Bearer\r\n"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_request\""));

    // Public route: no token needed. Unmatched route: denied.
    assert_eq!(
        http(addr, &auth_request("GET", "/public/logo.png", ""))
            .await
            .0,
        200
    );
    let (status, _, _) = check_bearer(addr, "GET", "/admin", &good).await;
    assert_eq!(status, 403);

    // nginx convention headers.
    let request = format!("GET /auth HTTP/1.1\r\nHost: gw\r\nX-Original-URI: /api/users?x=1\r\nX-Original-Method: GET\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n");
    assert_eq!(http(addr, &request).await.0, 200);
}

#[tokio::test]
async fn path_normalisation_cannot_bypass_rules() {
    let issuer = Issuer::new();
    let (addr, _, _tx, _) = start(&config(&issuer, "")).await;
    let reader = issuer.token(json!({}));
    for uri in [
        "/public/../api/users",
        "/public/%2e%2e/api/users",
        "/public/./../api/users",
        "//public/..//api/users",
    ] {
        // Each of these *is* /api/users for POST: it needs write:users, not public.
        let (status, _, _) = check_bearer(addr, "POST", uri, &reader).await;
        assert_eq!(status, 403, "{uri}");
        let (status, _, _) = http(addr, &auth_request("POST", uri, "")).await;
        assert_eq!(status, 401, "{uri}");
    }
    // An encoded slash is refused by default (see `encoded_separators_are_invalid_requests`).
    let (status, _, _) = http(addr, &auth_request("GET", "/public%2F..%2Fapi/users", "")).await;
    assert_eq!(status, 400);
    let (status, _, _) = http(addr, &auth_request("GET", "/api/users/%zz", "")).await;
    assert_eq!(status, 400);
}

/// An upstream echoing the headers it got on `/api/users`, a 3 MiB `/big`, and a `/slow` that
/// notifies the returned `Notify` when a request arrives, then answers 300 ms later.
async fn upstream() -> (SocketAddr, Arc<Notify>) {
    let slow_arrived = Arc::new(Notify::new());
    let arrived = slow_arrived.clone();
    let app = Router::new()
        .route(
            "/api/users",
            get(|headers: axum::http::HeaderMap| async move {
                let seen: Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                    .collect();
                axum::Json(json!({"headers": seen}))
            }),
        )
        .route("/big", get(|| async { "x".repeat(3 * 1024 * 1024) }))
        .route(
            "/slow",
            get(move || async move {
                arrived.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, slow_arrived)
}

#[tokio::test]
async fn proxy_strips_client_identity_and_adds_the_verified_one() {
    let issuer = Issuer::new();
    let (up, _) = upstream().await;
    let extra = format!("[proxy]\nupstream = \"http://{up}\"\n[[routes]]\nmethods = [\"GET\"]\npath = \"/big\"\n[[routes]]\nmethods = [\"GET\"]\npath = \"/slow\"\n");
    let (addr, _, _tx, _) = start(&config(&issuer, &extra)).await;
    let good = issuer.token(json!({}));
    let request = format!(
        "GET /api/users HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {good}\r\nX-Auth-Subject: admin\r\nX-Auth-Scopes: everything\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = http(addr, &request).await;
    assert_eq!(status, 200, "{body}");
    let body = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .collect::<String>();
    let seen: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(seen["headers"]["x-auth-subject"], "auth0|alice");
    assert_eq!(seen["headers"]["x-auth-scopes"], "openid read:users");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the token is not forwarded by default"
    );
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");

    // A client-sent identity header on a request without a token never gets through.
    let request =
        "GET /api/users HTTP/1.1\r\nHost: gw\r\nX-Auth-Subject: admin\r\nConnection: close\r\n\r\n";
    assert_eq!(http(addr, request).await.0, 401);

    // Large bodies stream through.
    let request = format!("GET /big HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n");
    let (status, _, body) = http(addr, &request).await;
    assert_eq!(status, 200);
    assert!(body.len() >= 3 * 1024 * 1024, "{}", body.len());
}

#[tokio::test]
async fn proxy_refuses_request_bodies_over_the_limit() {
    let issuer = Issuer::new();
    let (up, _) = upstream().await;
    let extra = format!("[proxy]\nupstream = \"http://{up}\"\nmax_body_bytes = 1024\n");
    let (addr, _, _tx, _) = start(&config(&issuer, &extra)).await;
    let writer = issuer.token(json!({"permissions": ["write:users"]}));
    let post = |body: &str| {
        format!(
            "POST /api/users HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {writer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (status, _, body) = http(addr, &post(&"x".repeat(4096))).await;
    assert_eq!(status, 413, "{body}");
    // Within the limit the request is forwarded (the echo upstream has no POST route: 405).
    let (status, _, _) = http(addr, &post("{}")).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn proxy_timeouts_and_dead_upstreams() {
    let issuer = Issuer::new();
    let (up, _) = upstream().await;
    let extra = format!("[proxy]\nupstream = \"http://{up}\"\nresponse_timeout_ms = 100\n[[routes]]\nmethods = [\"GET\"]\npath = \"/slow\"\n");
    let (addr, _, _tx, _) = start(&config(&issuer, &extra)).await;
    let good = issuer.token(json!({}));
    let request = format!("GET /slow HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n");
    assert_eq!(http(addr, &request).await.0, 504);

    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!("[proxy]\nupstream = \"http://{dead}\"\n");
    let (addr, _, _tx2, _) = start(&config(&issuer, &extra)).await;
    let request = format!("GET /api/users HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n");
    assert_eq!(http(addr, &request).await.0, 502);
}

#[tokio::test]
async fn operations_endpoints_and_cache() {
    let issuer = Issuer::new();
    let (addr, engine, _tx, _) = start(&config(&issuer, "")).await;
    assert_eq!(
        http(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(
            addr,
            "GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    let good = issuer.token(json!({}));
    for _ in 0..5 {
        let (status, _, _) = check_bearer(addr, "GET", "/api/users", &good).await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        body.contains(
            "jwtgate_requests_total{decision=\"allow\",status=\"200\",reason=\"verified\"} 5"
        ),
        "{body}"
    );
    assert!(body.contains("jwtgate_token_cache_hits_total 4"), "{body}");
    assert!(
        body.contains("jwtgate_verify_duration_seconds_count 1"),
        "{body}"
    );
    assert!(
        body.contains(&format!("jwtgate_keys_ready{{issuer=\"{ISSUER}\"}} 1")),
        "{body}"
    );
    assert_eq!(engine.metrics().count("allow"), 5);
}

#[tokio::test]
async fn readiness_reports_missing_keys() {
    let issuer = Issuer::new();
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!("[[issuers]]\nissuer = \"http://{dead}/\"\naudiences = [\"{AUDIENCE}\"]\n[[routes]]\npath = \"/x\"\n[keys]\nconnect_timeout = 1\ntotal_timeout = 1\n");
    let config = GatewayConfig::from_toml(&text, "t").unwrap();
    let (addr, _, _tx, _) = start(&config).await;
    let (status, _, body) = http(
        addr,
        "GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 503);
    assert!(body.contains(&format!("http://{dead}/")), "{body}");
    // A token while the keys cannot be loaded: invalid_token (401), never a 5xx.
    let good = issuer.token(json!({"iss": format!("http://{dead}/")}));
    let (status, headers, _) = check_bearer(addr, "GET", "/x", &good).await;
    assert_eq!(status, 401);
    let challenge = header(&headers, "www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("could not be loaded"),
        "{challenge}"
    );
}

/// Paths the server behind jwtgate may read differently (an encoded slash, `;` path parameters,
/// overlong UTF-8, a double encoding): through the tower layer they are 400 `invalid_request` by
/// default, and pass as data, matched as one segment, with the `[paths]` setting that allows each.
#[tokio::test]
async fn encoded_separators_are_invalid_requests() {
    let issuer = Issuer::new();
    let reader = issuer.token(json!({}));
    let id_route =
        "[[routes]]\nmethods = [\"GET\"]\npath = \"/api/users/{id}\"\nscopes = [\"read:users\"]\n";
    let cases = [
        ("/public/..%2Fapi%2Fadmin", "allow_encoded_slash"),
        ("/api/users/..%2Fadmin", "allow_encoded_slash"),
        ("/public/..;/api/admin", "allow_semicolon"),
        ("/public/%c0%ae%c0%ae/api/admin", "allow_non_utf8"),
        ("/public/..%252Fapi", "allow_double_encoding"),
    ];
    let serve = |extra: String| {
        let built = config(&issuer, &extra).build("t").unwrap();
        async move {
            server::prepare_keys(&built.engine).await;
            let app = Router::new()
                .fallback(|| async { "reached" })
                .layer(AuthLayer::new(built.engine.clone()));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (addr, built.engine)
        }
    };
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {reader}\r\nConnection: close\r\n\r\n")
    };

    let (strict, engine) = serve(id_route.to_owned()).await;
    assert_eq!(*engine.path_policy(), Default::default());
    for (path, setting) in cases {
        let (status, headers, _) = http(strict, &get(path)).await;
        assert_eq!(status, 400, "{path}");
        let challenge = header(&headers, "www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!("paths.{setting} = true")),
            "{challenge}"
        );
    }

    for (path, setting) in cases {
        let (relaxed, engine) = serve(format!("{id_route}[paths]\n{setting} = true\n")).await;
        assert_ne!(*engine.path_policy(), Default::default());
        let (status, _, body) = http(relaxed, &get(path)).await;
        assert_eq!(status, 200, "{path} with {setting}");
        assert_eq!(body, "reached");
        // Only what the setting names is relaxed.
        let others = cases.iter().filter(|(_, s)| *s != setting);
        for (other, _) in others {
            let (status, _, _) = http(relaxed, &get(other)).await;
            assert_eq!(status, 400, "{other} with {setting}");
        }
    }

    // Forward-auth answers a refused path with its invalid-request status.
    let (addr, _, _tx, _) = start(&config(
        &issuer,
        "[server]\nforward_auth_invalid_request_status = 401\n",
    ))
    .await;
    let (status, _, _) = http(addr, &auth_request("GET", "/public/..%2Fapi%2Fadmin", "")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn layer_and_extractor_in_an_axum_service() {
    let issuer = Issuer::new();
    let built = config(&issuer, "[cors]\norigins = [\"http://localhost:3000\"]\n")
        .build("t")
        .unwrap();
    server::prepare_keys(&built.engine).await;
    let app = Router::new()
        .route(
            "/api/users",
            get(|VerifiedToken(token): VerifiedToken| async move {
                format!("hello {}", token.subject().unwrap_or("?"))
            }),
        )
        .layer(AuthLayer::new(built.engine.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let good = issuer.token(json!({}));
    let (status, headers, body) = http(addr, &format!("GET /api/users HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost:3000\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(status, 200);
    assert!(body.contains("hello auth0|alice"), "{body}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("http://localhost:3000")
    );

    // A refusal to an allowed origin exposes WWW-Authenticate (and a DPoP client's nonce) to
    // the browser.
    let (status, headers, _) = http(addr, "GET /api/users HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost:3000\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "access-control-expose-headers"),
        Some("WWW-Authenticate, DPoP-Nonce")
    );

    // Preflight from an allowed origin passes without a token; from another origin it does not.
    let preflight = |origin: &str| {
        format!("OPTIONS /api/users HTTP/1.1\r\nHost: a\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n")
    };
    let (status, headers, _) = http(addr, &preflight("http://localhost:3000")).await;
    assert_eq!(status, 204);
    assert!(header(&headers, "access-control-allow-headers")
        .unwrap()
        .contains("Authorization"));
    let (status, _, _) = http(addr, &preflight("http://evil.example")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let issuer = Issuer::new();
    let (up, slow_arrived) = upstream().await;
    let extra = format!(
        "[proxy]\nupstream = \"http://{up}\"\n[[routes]]\nmethods = [\"GET\"]\npath = \"/slow\"\n"
    );
    let (addr, _, tx, handle) = start(&config(&issuer, &extra)).await;
    let good = issuer.token(json!({}));
    let request = format!("GET /slow HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {good}\r\nConnection: close\r\n\r\n");
    let in_flight = tokio::spawn(async move { http(addr, &request).await });
    // Shut down only once the request has reached the upstream: it is in flight in the gateway.
    tokio::time::timeout(Duration::from_secs(5), slow_arrived.notified())
        .await
        .expect("the request reached the upstream");
    tx.send(()).unwrap();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("slow"));
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn tls_listener_serves_https_with_the_same_decisions() {
    let issuer = Issuer::new();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let (up, _) = upstream().await;
    let mut text_config = config(&issuer, &format!("[proxy]\nupstream = \"http://{up}\"\n"));
    text_config.server.tls_cert = Some(format!("{data}/localhost.crt.pem").into());
    text_config.server.tls_key = Some(format!("{data}/localhost.key.pem").into());
    let built = text_config.build("test.toml").unwrap();
    let (cert, key) = built.options.tls.clone().unwrap();
    server::prepare_keys(&built.engine).await;
    let app = server::router(
        jwtgate_http::SharedEngine::shared(built.engine.clone()),
        &built.options,
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = server::tls_acceptor(&cert, &key).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server::serve_tls(listener, app, acceptor, async {
        let _ = rx.await;
    }));
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(format!("{data}/ca.crt.pem")).unwrap())
            .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/auth", addr.port());
    let good = issuer.token(json!({}));
    let response = client
        .get(&url)
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/api/users")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-subject"], "auth0|alice");
    let response = client
        .get(&url)
        .header("X-Forwarded-Uri", "/api/users")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Proxied, the upstream learns that the client came over HTTPS.
    let response = client
        .get(format!("https://localhost:{}/api/users", addr.port()))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https", "{seen}");
    // Plain HTTP to the TLS port is not served.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", addr.port()))
            .await
            .is_err()
    );
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
