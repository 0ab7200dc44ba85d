//! Hot reload against a gateway on loopback: a rule change takes effect after the swap, unchanged
//! issuers keep their key sources (no JWKS fetch, counted by a loopback JWKS server), changed
//! ones get new sources, a broken configuration is refused with the `check-config` message while
//! the old engine keeps answering, restart-only settings are reported, and the reload counters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::reload::{rebuild, Reloaded, Reloader};
use jwtgate_http::{server, Engine, SharedEngine};
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ISS_A: &str = "https://a.example/";
const ISS_B: &str = "https://b.example/";
const AUD: &str = "https://api.example/";

/// Serves `/jwks/{name}` with one key per name and counts the fetches of each.
#[derive(Clone)]
struct Jwks {
    base: String,
    keys: Arc<BTreeMap<String, SigningKey>>,
    fetches: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Jwks {
    async fn start(names: &[&str]) -> Jwks {
        let keys: BTreeMap<String, SigningKey> = names
            .iter()
            .map(|name| {
                let key = SigningKey::generate(Algorithm::ES256, *name).unwrap();
                ((*name).to_owned(), key)
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks = Jwks {
            base: format!("http://{}", listener.local_addr().unwrap()),
            keys: Arc::new(keys),
            fetches: Arc::default(),
        };
        let app = Router::new()
            .route("/jwks/{name}", get(serve_jwks))
            .with_state(jwks.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        jwks
    }

    fn url(&self, name: &str) -> String {
        format!("{}/jwks/{name}", self.base)
    }

    fn fetches(&self, name: &str) -> usize {
        self.fetches.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn token(&self, name: &str, issuer: &str, audience: &str, permissions: &[&str]) -> String {
        let now = jwtgate_http::unix_now();
        let claims = json!({"iss": issuer, "aud": audience, "sub": "alice", "iat": now,
                            "exp": now + 600, "permissions": permissions});
        self.keys[name].sign(&Map::new(), &claims).unwrap()
    }
}

async fn serve_jwks(State(jwks): State<Jwks>, Path(name): Path<String>) -> String {
    *jwks
        .fetches
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_insert(0) += 1;
    json!({"keys": [jwks.keys[&name].public_jwk()]}).to_string()
}

fn issuer(iss: &str, audience: &str, jwks_url: &str) -> String {
    format!("[[issuers]]\nissuer = \"{iss}\"\naudiences = [\"{audience}\"]\njwks_url = \"{jwks_url}\"\n\n")
}

fn route(scopes: &[&str]) -> String {
    if scopes.is_empty() {
        "[[routes]]\npath = \"/api/report\"\npublic = true\n".to_owned()
    } else {
        format!("[[routes]]\npath = \"/api/report\"\nscopes = {scopes:?}\n")
    }
}

/// A gateway on loopback whose configuration text the test rewrites before each reload.
struct Gateway {
    addr: SocketAddr,
    shared: Arc<SharedEngine>,
    reloader: Reloader,
    text: Arc<Mutex<String>>,
}

impl Gateway {
    async fn start(text: String) -> Gateway {
        let config = GatewayConfig::from_toml(&text, "gw.toml").unwrap();
        let built = config.build("gw.toml").unwrap();
        server::prepare_keys(&built.engine).await;
        let shared = SharedEngine::shared(built.engine);
        let app = server::router(shared.clone(), &built.options).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            server::serve(listener, app, std::future::pending())
                .await
                .unwrap()
        });
        let text = Arc::new(Mutex::new(text));
        let current = text.clone();
        let reloader = Reloader::new(shared.clone(), built.options, move |old| {
            let text = current.lock().unwrap().clone();
            rebuild(old, &GatewayConfig::from_toml(&text, "gw.toml")?, "gw.toml")
        });
        Gateway {
            addr,
            shared,
            reloader,
            text,
        }
    }

    async fn reload(&self, text: String) -> Result<Reloaded, String> {
        *self.text.lock().unwrap() = text;
        self.reloader.reload().await.map_err(|e| e.to_string())
    }

    fn engine(&self) -> Arc<Engine> {
        self.shared.load()
    }

    /// The forward-auth status for `GET path` with `token`.
    async fn check(&self, path: &str, token: Option<&str>) -> u16 {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: {path}\r\n{auth}Connection: close\r\n\r\n"
        );
        let (status, _) = self.http(&request).await;
        status
    }

    async fn metrics(&self) -> String {
        self.http("GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await
            .1
    }

    async fn http(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, text)
    }
}

fn sources_shared(old: &Engine, new: &Engine, index: usize) -> bool {
    old.registry().entries()[index]
        .source()
        .same_source(new.registry().entries()[index].source())
}

#[tokio::test]
async fn a_rule_change_takes_effect_and_the_unchanged_issuer_keeps_its_keys() {
    let jwks = Jwks::start(&["a"]).await;
    let head = issuer(ISS_A, AUD, &jwks.url("a"));
    let gateway = Gateway::start(format!("{head}{}", route(&[]))).await;
    assert_eq!(jwks.fetches("a"), 1);
    let reader = jwks.token("a", ISS_A, AUD, &["read:reports"]);
    let other = jwks.token("a", ISS_A, AUD, &["write:reports"]);
    assert_eq!(gateway.check("/api/report", None).await, 200);
    assert_eq!(gateway.check("/api/report", Some(&reader)).await, 200);
    let old = gateway.engine();

    let reloaded = gateway
        .reload(format!("{head}{}", route(&["read:reports"])))
        .await
        .unwrap();
    assert_eq!(
        reloaded,
        Reloaded {
            kept_sources: 1,
            new_sources: 0,
            needs_restart: Vec::new()
        }
    );
    let new = gateway.engine();
    assert!(!Arc::ptr_eq(&old, &new));
    assert!(sources_shared(&old, &new, 0));
    assert!(Arc::ptr_eq(old.metrics(), new.metrics()));
    assert_eq!(gateway.check("/api/report", None).await, 401);
    assert_eq!(gateway.check("/api/report", Some(&other)).await, 403);
    // The new engine's token cache starts empty: the token is verified again (a miss)…
    let (_, misses) = new.metrics().cache_lookups();
    assert_eq!(gateway.check("/api/report", Some(&reader)).await, 200);
    assert_eq!(new.metrics().cache_lookups().1, misses + 1);
    // …with the carried-over keys: no JWKS fetch.
    assert_eq!(jwks.fetches("a"), 1);

    // A request that loaded the old engine still decides with the old rules.
    let view_headers = http::HeaderMap::new();
    let view = jwtgate_engine::RequestView {
        front: jwtgate_engine::FrontEnd::ForwardAuth,
        origin: None,
        method: "GET",
        target: "/api/report",
        headers: (&view_headers).into(),
        token: jwtgate_engine::TokenInput::FromRequest,
        client_certificate: None,
        now: jwtgate_http::unix_now(),
    };
    assert!(matches!(
        old.decide(&view).await,
        jwtgate_http::Outcome::Allow(_)
    ));
    assert!(matches!(
        new.decide(&view).await,
        jwtgate_http::Outcome::Deny(_)
    ));
}

#[tokio::test]
async fn changed_and_new_issuers_get_new_sources_fetched_before_the_swap() {
    let jwks = Jwks::start(&["a", "b", "b2"]).await;
    let gateway = Gateway::start(format!(
        "{}{}{}",
        issuer(ISS_A, AUD, &jwks.url("a")),
        issuer(ISS_B, AUD, &jwks.url("b")),
        route(&[])
    ))
    .await;
    assert_eq!((jwks.fetches("a"), jwks.fetches("b")), (1, 1));
    let old = gateway.engine();

    // A's audience changes (its keys do not), B's key URL changes.
    let reloaded = gateway
        .reload(format!(
            "{}{}{}",
            issuer(ISS_A, "https://other-api.example/", &jwks.url("a")),
            issuer(ISS_B, AUD, &jwks.url("b2")),
            route(&["read:reports"])
        ))
        .await
        .unwrap();
    assert_eq!((reloaded.kept_sources, reloaded.new_sources), (1, 1));
    let new = gateway.engine();
    assert!(sources_shared(&old, &new, 0));
    assert!(!sources_shared(&old, &new, 1));
    assert_eq!(
        (jwks.fetches("a"), jwks.fetches("b"), jwks.fetches("b2")),
        (1, 1, 1)
    );
    assert!(new.registry().entries()[1].source().snapshot().is_some());

    // The new policy applies with the kept keys; B's new keys verify B's tokens.
    let a_old_audience = jwks.token("a", ISS_A, AUD, &["read:reports"]);
    let a_new_audience = jwks.token("a", ISS_A, "https://other-api.example/", &["read:reports"]);
    let b_new_key = jwks.token("b2", ISS_B, AUD, &["read:reports"]);
    let b_old_key = jwks.token("b", ISS_B, AUD, &["read:reports"]);
    assert_eq!(
        gateway.check("/api/report", Some(&a_old_audience)).await,
        401
    );
    assert_eq!(
        gateway.check("/api/report", Some(&a_new_audience)).await,
        200
    );
    assert_eq!(gateway.check("/api/report", Some(&b_new_key)).await, 200);
    assert_eq!(gateway.check("/api/report", Some(&b_old_key)).await, 401);

    // Removing B and reloading again leaves A's source alone.
    gateway
        .reload(format!(
            "{}{}",
            issuer(ISS_A, "https://other-api.example/", &jwks.url("a")),
            route(&["read:reports"])
        ))
        .await
        .unwrap();
    let last = gateway.engine();
    assert_eq!(last.registry().entries().len(), 1);
    assert!(sources_shared(&old, &last, 0));
    assert_eq!(jwks.fetches("a"), 1);
}

#[tokio::test]
async fn a_broken_file_is_refused_with_the_check_config_message_and_the_old_engine_serves() {
    let jwks = Jwks::start(&["a"]).await;
    let head = issuer(ISS_A, AUD, &jwks.url("a"));
    let gateway = Gateway::start(format!("{head}{}", route(&["read:reports"]))).await;
    let reader = jwks.token("a", ISS_A, AUD, &["read:reports"]);
    let before = gateway.engine();

    for broken in [
        format!("{head}[[routes]]\npath = \"api\"\n"),
        format!("{head}[[routes]]\npath = \"/x\"\npublic = true\nscopes = [\"s\"]\n"),
        format!("{head}[serverr]\n"),
        "[[issuers]]\nissuer = \"https://a.example/\"\naudiences = []\n".to_owned(),
    ] {
        let check_config = GatewayConfig::from_toml(&broken, "gw.toml")
            .and_then(|config| config.build("gw.toml").map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(check_config.starts_with("gw.toml: "), "{check_config}");
        assert_eq!(gateway.reload(broken).await, Err(check_config));
        assert!(Arc::ptr_eq(&before, &gateway.engine()));
        assert_eq!(gateway.check("/api/report", None).await, 401);
        assert_eq!(gateway.check("/api/report", Some(&reader)).await, 200);
    }
    gateway
        .reload(format!("{head}{}", route(&[])))
        .await
        .unwrap();
    assert_eq!(gateway.check("/api/report", None).await, 200);
    assert_eq!(gateway.engine().metrics().config_reloads(), (1, 4));
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("jwtgate_config_reloads_total{result=\"success\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtgate_config_reloads_total{result=\"failure\"} 4\n"),
        "{metrics}"
    );
    assert_eq!(jwks.fetches("a"), 1);
}

#[tokio::test]
async fn restart_only_settings_are_named_and_keep_their_running_values() {
    let jwks = Jwks::start(&["a"]).await;
    let head = issuer(ISS_A, AUD, &jwks.url("a"));
    let gateway = Gateway::start(format!("{head}{}", route(&[]))).await;
    let reloaded = gateway
        .reload(format!(
            "[server]\nlisten = \"127.0.0.1:1\"\nidle_timeout_ms = 5000\nmetrics_path = \"/stats\"\nrealm = \"reloaded\"\n\n{head}{}\n[proxy]\nupstream = \"http://127.0.0.1:9\"\n",
            route(&["read:reports"])
        ))
        .await
        .unwrap();
    assert_eq!(
        reloaded.needs_restart,
        [
            "server.listen",
            "server.metrics_path",
            "server.idle_timeout_ms",
            "proxy"
        ]
    );
    // The rest applies: the new route and realm; the endpoints stay where they were.
    let (status, answer) = gateway
        .http("GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Uri: /api/report\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 401);
    assert!(answer.contains("realm=\"reloaded\""), "{answer}");
    assert!(gateway
        .metrics()
        .await
        .contains("jwtgate_config_reloads_total"));
}

/// A JWKS file is read again on every reload: a key the operator removed from it (say, a
/// compromised one) stops verifying at once, and a key added to it verifies, while the
/// configuration text itself is unchanged.
#[tokio::test]
async fn a_reload_reads_a_jwks_file_again() {
    let old_key = jwtgate_test_support::Issuer::new().with_key(Algorithm::ES256, "old");
    let new_key = jwtgate_test_support::Issuer::new().with_key(Algorithm::ES256, "new");
    let file = tempfile::NamedTempFile::new().unwrap();
    let write = |keys: &[&jwtgate_test_support::Issuer]| {
        let jwks: Vec<serde_json::Value> = keys.iter().map(|k| k.key().public_jwk()).collect();
        std::fs::write(file.path(), json!({ "keys": jwks }).to_string()).unwrap();
    };
    write(&[&old_key]);
    let text = format!(
        "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n{}",
        jwtgate_test_support::ISSUER,
        jwtgate_test_support::AUDIENCE,
        file.path().display(),
        route(&["read:reports"])
    );
    let gateway = Gateway::start(text.clone()).await;
    let grant = json!({"permissions": ["read:reports"]});
    let signed_old = old_key.token(grant.clone());
    let signed_new = new_key.token(grant);
    assert_eq!(gateway.check("/api/report", None).await, 401);
    assert_eq!(gateway.check("/api/report", Some(&signed_old)).await, 200);
    let old = gateway.engine();

    write(&[&new_key]);
    let reloaded = gateway.reload(text).await.unwrap();
    assert_eq!(reloaded.new_sources, 1, "{reloaded:?}");
    assert!(!sources_shared(&old, &gateway.engine(), 0));
    assert_eq!(gateway.check("/api/report", Some(&signed_old)).await, 401);
    assert_eq!(gateway.check("/api/report", Some(&signed_new)).await, 200);
}
