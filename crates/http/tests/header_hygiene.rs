//! Headers a client must not choose, over real loopback sockets: in proxy mode the upstream
//! (a recording echo server) never sees a client's spelling of an identity header, a header
//! deleted through `Connection`, a method or path override, an upgrade other than WebSocket, or the token
//! from a cookie or the query string; the forward-auth endpoint refuses what it cannot remove
//! and never reads an unusable original-request header as absent. The upstream gets exactly the
//! normalised path that was checked, under the configured `[paths]` rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::extract::{Request, State};
use axum::Router;
use jwtgate_http::config::GatewayConfig;
use jwtgate_test_support::{Issuer, ISSUER};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IDENTITY: [&str; 4] = [
    "X-Auth-Subject",
    "X-Auth-Issuer",
    "X-Auth-Scopes",
    "X-Auth-Email",
];

/// The issuer and its JWKS file, and gateway configurations that trust it.
struct Fixture {
    issuer: Issuer,
}

fn fixture() -> Fixture {
    Fixture {
        issuer: Issuer::new(),
    }
}

impl Fixture {
    /// Alice's token: `read:users` as a permission (no `scope`), and her email.
    fn token(&self) -> String {
        self.issuer
            .token(json!({"scope": null, "email": "alice@example.com"}))
    }

    fn config(&self, extra: &str) -> GatewayConfig {
        let text = format!(
            r#"
            {issuers}

            [[routes]]
            methods = ["GET", "POST"]
            path = "/api/users"
            scopes = ["read:users"]

            [[routes]]
            path = "/public/*"
            public = true

            [identity.claims]
            email = "X-Auth-Email"
            {extra}
            "#,
            issuers = self.issuer.issuer_toml(),
        );
        GatewayConfig::from_toml(&text, "test.toml").unwrap()
    }
}

/// Every request the upstream received: method, target and headers (names as received).
type Seen = Arc<Mutex<Vec<Value>>>;

async fn record(State(seen): State<Seen>, request: Request) -> String {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let entry = json!({
        "method": request.method().as_str(),
        "target": request.uri().path_and_query().map_or("", |pq| pq.as_str()),
        "headers": headers,
    });
    seen.lock().unwrap().push(entry);
    "upstream\n".to_owned()
}

async fn start_upstream() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(record).with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

async fn start_gateway(config: &GatewayConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let gateway = support::start_config(config).await;
    (gateway.addr, gateway.stop.unwrap())
}

/// One raw HTTP/1.1 exchange (`Connection: close` added): the status and the whole answer.
async fn exchange(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}Host: gw\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

/// The header values the upstream saw under names that fold (case, `_` → `-`) to `name`.
fn folded_values(entry: &Value, name: &str) -> Vec<(String, String)> {
    let fold = |n: &str| n.to_ascii_lowercase().replace('_', "-");
    entry["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| fold(pair[0].as_str().unwrap()) == fold(name))
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn last(seen: &Seen) -> Value {
    seen.lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a request reached the upstream")
}

fn underscore(name: &str) -> String {
    name.replace('-', "_")
}

#[tokio::test]
async fn proxy_removes_every_spelling_of_the_identity_headers() {
    let keys = fixture();
    let (up, seen) = start_upstream().await;
    let config = keys.config(&format!("[proxy]\nupstream = \"http://{up}\"\n"));
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();
    let expected = [
        ("X-Auth-Subject", Some("auth0|alice")),
        ("X-Auth-Issuer", Some(ISSUER)),
        ("X-Auth-Scopes", Some("read:users")),
        ("X-Auth-Email", Some("alice@example.com")),
    ];
    for (path, auth) in [
        ("/api/users", format!("Authorization: Bearer {good}\r\n")),
        ("/public/x", String::new()),
    ] {
        for name in IDENTITY {
            for spelling in [
                underscore(name),
                underscore(name).to_ascii_lowercase(),
                name.replacen('-', "_", 1),
                name.to_ascii_uppercase(),
            ] {
                let head = format!("GET {path} HTTP/1.1\r\n{auth}{spelling}: admin\r\n");
                let (status, text) = exchange(addr, &head).await;
                assert_eq!(status, 200, "{spelling} on {path}: {text}");
                let entry = last(&seen);
                for (identity, value) in expected {
                    let got = folded_values(&entry, identity);
                    let want: Vec<(String, String)> = if path == "/public/x" {
                        Vec::new()
                    } else {
                        value
                            .map(|v| (identity.to_ascii_lowercase(), v.to_owned()))
                            .into_iter()
                            .collect()
                    };
                    assert_eq!(got, want, "{spelling}: admin on {path}: {identity}");
                }
            }
        }
    }
}

#[tokio::test]
async fn connection_may_not_delete_what_the_gateway_sets() {
    let keys = fixture();
    let (up, seen) = start_upstream().await;
    let config = keys.config(&format!("[proxy]\nupstream = \"http://{up}\"\n"));
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();
    let before = seen.lock().unwrap().len();
    let mut named: Vec<String> = IDENTITY.iter().map(|n| n.to_string()).collect();
    named.extend(IDENTITY.iter().map(|n| underscore(n)));
    named.extend(
        [
            "Authorization",
            "X-Forwarded-For",
            "x-forwarded-host",
            "X_Forwarded_Proto",
        ]
        .map(String::from),
    );
    for name in &named {
        let head = format!(
            "GET /api/users HTTP/1.1\r\nAuthorization: Bearer {good}\r\nX_Auth_Subject: admin\r\nConnection: keep-alive, {name}\r\n"
        );
        let (status, text) = exchange(addr, &head).await;
        assert_eq!(status, 400, "Connection naming {name}: {text}");
        assert!(text.contains("invalid_request"), "{text}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "no such request reached the upstream"
    );
    // An ordinary Connection header still works, and its other names are still removed.
    let head = format!(
        "GET /api/users HTTP/1.1\r\nAuthorization: Bearer {good}\r\nX-Trace: 1\r\nConnection: x-trace\r\n"
    );
    let (status, text) = exchange(addr, &head).await;
    assert_eq!(status, 200, "{text}");
    let entry = last(&seen);
    assert!(folded_values(&entry, "x-trace").is_empty());
    assert_eq!(
        folded_values(&entry, "x-auth-subject"),
        [("x-auth-subject".to_owned(), "auth0|alice".to_owned())]
    );
}

#[tokio::test]
async fn proxy_drops_method_overrides_spoofed_forwarding_headers_and_foreign_upgrades() {
    let keys = fixture();
    let (up, seen) = start_upstream().await;
    let config = keys.config(&format!("[proxy]\nupstream = \"http://{up}\"\n"));
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();
    let head = format!(
        "GET /api/users HTTP/1.1\r\nAuthorization: Bearer {good}\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: PUT\r\nX_Method_Override: PATCH\r\nX_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Host: evil\r\nX-Original-URL: /admin\r\nX_Rewrite_URL: /admin\r\n"
    );
    let (status, text) = exchange(addr, &head).await;
    assert_eq!(status, 200, "{text}");
    let entry = last(&seen);
    assert_eq!(entry["method"], "GET");
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
    ] {
        assert!(folded_values(&entry, name).is_empty(), "{name}: {entry}");
    }
    assert_eq!(
        folded_values(&entry, "x-forwarded-for"),
        [("x-forwarded-for".to_owned(), "127.0.0.1".to_owned())]
    );
    assert_eq!(
        folded_values(&entry, "x-forwarded-host"),
        [("x-forwarded-host".to_owned(), "gw".to_owned())]
    );

    let before = seen.lock().unwrap().len();
    for upgrade in [
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n",
        "Upgrade: foo\r\n",
        "Upgrade: websocket, h2c\r\n",
    ] {
        // `exchange` adds its own `Connection: close`: a second Connection header is allowed.
        let head = format!("GET /api/users HTTP/1.1\r\nAuthorization: Bearer {good}\r\n{upgrade}");
        let (status, text) = exchange(addr, &head).await;
        assert_eq!(status, 400, "{upgrade}: {text}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "no upgrade was forwarded"
    );
}

#[tokio::test]
async fn the_token_never_leaves_in_a_cookie_or_the_query() {
    let keys = fixture();
    let (up, seen) = start_upstream().await;
    let config = keys.config(&format!(
        "[token]\ncookie = \"access_token\"\nquery = \"access_token\"\n[proxy]\nupstream = \"http://{up}\"\n"
    ));
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();

    let head = format!("GET /api/users?x=1 HTTP/1.1\r\nCookie: a=1; access_token={good}; b=2\r\n");
    let (status, text) = exchange(addr, &head).await;
    assert_eq!(status, 200, "{text}");
    let entry = last(&seen);
    assert_eq!(
        folded_values(&entry, "cookie"),
        [("cookie".to_owned(), "a=1; b=2".to_owned())]
    );
    assert_eq!(entry["target"], "/api/users?x=1");

    let head = format!("GET /api/users HTTP/1.1\r\nCookie: access_token={good}\r\n");
    assert_eq!(exchange(addr, &head).await.0, 200);
    assert!(folded_values(&last(&seen), "cookie").is_empty());

    for (query, forwarded) in [
        (
            format!("x=1&access_token={good}&y=%2F"),
            "/api/users?x=1&y=%2F",
        ),
        (format!("access_token={good}&y=2"), "/api/users?y=2"),
        (format!("x=1&&access_token={good}"), "/api/users?x=1&"),
        (format!("access_token={good}"), "/api/users"),
    ] {
        let head = format!("GET /api/users?{query} HTTP/1.1\r\n");
        let (status, text) = exchange(addr, &head).await;
        assert_eq!(status, 200, "{text}");
        let entry = last(&seen);
        assert_eq!(entry["target"], forwarded);
        assert!(!entry.to_string().contains(&good), "token leaked: {entry}");
    }

    // With forward_token the upstream gets it where it was sent.
    let config = keys.config(&format!(
        "[token]\ncookie = \"access_token\"\n[proxy]\nupstream = \"http://{up}\"\nforward_token = true\n"
    ));
    let (addr, _stop2) = start_gateway(&config).await;
    let head = format!("GET /api/users HTTP/1.1\r\nCookie: access_token={good}\r\n");
    assert_eq!(exchange(addr, &head).await.0, 200);
    assert_eq!(
        folded_values(&last(&seen), "cookie"),
        [("cookie".to_owned(), format!("access_token={good}"))]
    );
}

fn auth_head(extra: &str) -> String {
    format!("GET /auth HTTP/1.1\r\n{extra}")
}

#[tokio::test]
async fn forward_auth_refuses_what_it_cannot_remove() {
    let keys = fixture();
    let (addr, _stop) = start_gateway(&keys.config("")).await;
    let good = keys.token();
    let auth = format!("Authorization: Bearer {good}\r\n");
    let ok = format!("X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/users\r\n{auth}");
    assert_eq!(exchange(addr, &auth_head(&ok)).await.0, 200);
    // The exact names are the proxy's to overwrite (the recipes do); other spellings are not.
    assert_eq!(
        exchange(addr, &auth_head(&format!("{ok}X-Auth-Subject: admin\r\n")))
            .await
            .0,
        200
    );
    for name in IDENTITY {
        for spelling in [underscore(name), name.replacen('-', "_", 2)] {
            for route in [
                ok.clone(),
                "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /public/a\r\n".to_owned(),
            ] {
                let (status, text) =
                    exchange(addr, &auth_head(&format!("{route}{spelling}: admin\r\n"))).await;
                assert_eq!(status, 400, "{spelling}: {text}");
                assert!(text.contains("another spelling"), "{text}");
            }
        }
    }
    // A method override naming another method than the checked one.
    for header in [
        "X-HTTP-Method-Override: DELETE",
        "X_HTTP_Method: PUT",
        "x-method-override: POST",
    ] {
        let (status, text) = exchange(addr, &auth_head(&format!("{ok}{header}\r\n"))).await;
        assert_eq!(status, 400, "{header}: {text}");
    }
    let same = format!("{ok}X-HTTP-Method-Override: get\r\n");
    assert_eq!(exchange(addr, &auth_head(&same)).await.0, 200);
    // A header that makes some frameworks serve another path (Symfony, IIS URL Rewrite).
    for header in ["X-Original-URL: /admin", "x_rewrite_url: /admin"] {
        let (status, text) = exchange(addr, &auth_head(&format!("{ok}{header}\r\n"))).await;
        assert_eq!(status, 400, "{header}: {text}");
        assert!(text.contains("another path"), "{text}");
    }
}

#[tokio::test]
async fn unusable_original_request_headers_are_refusals_not_absent() {
    let keys = fixture();
    let config = keys.config("[server]\nforward_auth_invalid_request_status = 401\n");
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();
    let auth = format!("Authorization: Bearer {good}\r\n");
    let cases = [
        // A non-ASCII copy next to the proxy's own header used to be read as absent.
        "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/users\r\nX-Original-URI: /public/\u{e9}\r\n".to_owned(),
        "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /public/\u{e9}\r\n".to_owned(),
        "X-Original-Method: G\u{e9}T\r\nX-Original-URI: /public/a\r\n".to_owned(),
        "X-Forwarded-Method: GET /x\r\nX-Forwarded-Uri: /public/a\r\n".to_owned(),
        "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: http://evil/public/a\r\n".to_owned(),
    ];
    for case in cases {
        let (status, text) = exchange(addr, &auth_head(&format!("{case}{auth}"))).await;
        assert_eq!(status, 401, "{case:?}: {text}");
        assert!(text.contains("invalid_request"), "{case:?}: {text}");
    }
}

#[tokio::test]
async fn the_upstream_gets_the_path_that_was_checked_under_the_configured_path_rules() {
    let keys = fixture();
    let (up, seen) = start_upstream().await;
    let strict = keys.config(&format!("[proxy]\nupstream = \"http://{up}\"\n"));
    let (addr, _stop) = start_gateway(&strict).await;
    let before = seen.lock().unwrap().len();
    let (status, text) = exchange(addr, "GET /public/..%2Fapi%2Fadmin HTTP/1.1\r\n").await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "nothing reached the upstream"
    );

    let relaxed = keys.config(&format!(
        "[paths]\nallow_encoded_slash = true\n[proxy]\nupstream = \"http://{up}\"\n"
    ));
    let (addr, _stop2) = start_gateway(&relaxed).await;
    let (status, text) = exchange(addr, "GET /public/./a%2fb/../c?q=%2F HTTP/1.1\r\n").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(last(&seen)["target"], "/public/c?q=%2F");
    let (status, text) = exchange(addr, "GET /public/a%2fb HTTP/1.1\r\n").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(last(&seen)["target"], "/public/a%2Fb");
}

/// A proxy that does not send the original request is misconfigured, not short of a scope: the
/// refusal has no error code, the challenge and the body say the same, and the body has no
/// `"error": null`.
#[tokio::test]
async fn a_misconfigured_proxy_is_told_what_is_missing_consistently() {
    let keys = fixture();
    let (addr, _stop) = start_gateway(&keys.config("")).await;
    let (status, text) = exchange(addr, "GET /auth HTTP/1.1\r\n").await;
    assert_eq!(status, 403, "{text}");
    let challenge = text
        .lines()
        .find_map(|l| l.strip_prefix("www-authenticate: "))
        .unwrap_or_else(|| panic!("no challenge in {text}"));
    assert!(!challenge.contains("error="), "{challenge}");
    assert!(
        challenge.contains(
            "error_description=\"the proxy did not send X-Forwarded-Uri or X-Original-URI"
        ),
        "{challenge}"
    );
    let body = text.rsplit("\r\n\r\n").next().unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    assert!(body.get("error").is_none(), "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap_or_default()
        .starts_with("the proxy did not send X-Forwarded-Uri or X-Original-URI"));

    // No token at all: the bare challenge, and a body without an error code either.
    let head = "GET /auth HTTP/1.1\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/users\r\n";
    let (status, text) = exchange(addr, head).await;
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("www-authenticate: Bearer realm=\"jwtgate\"\r\n"),
        "{text}"
    );
    assert!(!text.contains("\"error\""), "{text}");
}

/// The forward-auth prefix (Envoy's HTTP ext_authz `path_prefix`): `prefix` + a path is checked
/// as that path with the request's own method, under the same normalisation and boundary rules;
/// the original-request headers play no part, and the literal forward-auth path still works.
#[tokio::test]
async fn the_forward_auth_prefix_checks_what_follows_it() {
    let keys = fixture();
    let config = keys.config("[server]\nforward_auth_prefix = \"/ext-authz\"\n");
    let (addr, _stop) = start_gateway(&config).await;
    let good = keys.token();
    let auth = format!("Authorization: Bearer {good}\r\n");
    let check = |method: &str, target: &str, extra: &str| {
        format!("{method} /ext-authz{target} HTTP/1.1\r\n{extra}")
    };
    let (status, text) = exchange(addr, &check("GET", "/api/users?x=1", &auth)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("x-auth-subject: auth0|alice"), "{text}");
    // The request's own method: POST needs the same scope here, DELETE has no route.
    assert_eq!(
        exchange(addr, &check("POST", "/api/users", &auth)).await.0,
        200
    );
    assert_eq!(
        exchange(addr, &check("DELETE", "/api/users", &auth))
            .await
            .0,
        403
    );
    assert_eq!(exchange(addr, &check("GET", "/api/users", "")).await.0, 401);
    assert_eq!(exchange(addr, &check("GET", "/public/x", "")).await.0, 200);
    // Normalisation and the path rules apply to what follows the prefix.
    assert_eq!(
        exchange(addr, &check("GET", "/public/../api/users", ""))
            .await
            .0,
        401
    );
    assert_eq!(
        exchange(addr, &check("GET", "/public/%2e%2e/admin", &auth))
            .await
            .0,
        403
    );
    let (status, text) = exchange(addr, &check("GET", "/public/..%2Fapi%2Fusers", "")).await;
    assert_eq!(status, 400, "{text}");
    // Original-request headers do not choose the path, and the boundary checks apply.
    let spoof = "X-Original-URI: /public/x\r\nX-Forwarded-Uri: /public/x\r\n";
    assert_eq!(
        exchange(addr, &check("GET", "/api/users", spoof)).await.0,
        401
    );
    let spelled = format!("{auth}X_Auth_Subject: admin\r\n");
    assert_eq!(
        exchange(addr, &check("GET", "/api/users", &spelled))
            .await
            .0,
        400
    );
    // The prefix alone, or a path that only starts like it, is not a check.
    assert_eq!(
        exchange(addr, "GET /ext-authzz/api/users HTTP/1.1\r\n")
            .await
            .0,
        404
    );
    // The literal forward-auth path works beside it.
    let head = format!(
        "GET /auth HTTP/1.1\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/users\r\n{auth}"
    );
    assert_eq!(exchange(addr, &head).await.0, 200);

    // Route syntax is not accepted in either setting.
    for extra in [
        "[server]\nforward_auth_path = \"/auth/{*original}\"\n",
        "[server]\nforward_auth_prefix = \"/ext-authz/\"\n",
        "[server]\nforward_auth_prefix = \"/ext/{x}\"\n",
    ] {
        let message = keys
            .config(extra)
            .build("test.toml")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(message.contains("literal path"), "{extra}: {message}");
    }
}
