//! The key cache against a real HTTP server on loopback: discovery, rotation, cooldown under a
//! flood of invented `kid`s, single-flight, stale-if-error for every failure mode, and
//! `Cache-Control` handling. Time is a [`ManualClock`]; no test sleeps for cache rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jwtgate_core::{Algorithm, ErrorCode, Policy, Reason, Rejection, SigningKey, UnverifiedToken};
use jwtgate_keys::{
    CacheSettings, Clock, IssuerEntry, KeySource, ManualClock, RefreshOutcome, Registry, SourceKind,
};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOW: i64 = 1_800_000_000;
const AUD: &str = "https://api.example.com/";

#[derive(Clone, Debug)]
enum Mode {
    Serve,
    Status(u16),
    Delay(Duration),
    Garbage,
    EmptySet,
    Huge,
}

struct ServerState {
    jwks: String,
    cache_control: Option<String>,
    mode: Mode,
    /// Delay applied to every successful JWKS answer (to make requests overlap).
    latency: Duration,
    discovery_issuer: Option<String>,
    oidc_discovery: bool,
}

#[derive(Clone)]
struct TestServer {
    state: Arc<Mutex<ServerState>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    base: String,
}

async fn serve_jwks(State(server): State<TestServer>) -> Response {
    server.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let (mode, body, cache_control, latency) = {
        let s = server.state.lock().unwrap();
        (
            s.mode.clone(),
            s.jwks.clone(),
            s.cache_control.clone(),
            s.latency,
        )
    };
    tokio::time::sleep(latency).await;
    let mut headers = HeaderMap::new();
    if let Some(cc) = cache_control {
        headers.insert("cache-control", HeaderValue::from_str(&cc).unwrap());
    }
    match mode {
        Mode::Serve => (headers, body).into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Delay(d) => {
            tokio::time::sleep(d).await;
            (headers, body).into_response()
        }
        Mode::Garbage => "<html>gateway error</html>".into_response(),
        Mode::EmptySet => r#"{"keys":[]}"#.into_response(),
        Mode::Huge => {
            format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(10 * 1024 * 1024)).into_response()
        }
    }
}

async fn oidc(State(server): State<TestServer>) -> Response {
    server.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let (issuer, enabled) = {
        let s = server.state.lock().unwrap();
        (s.discovery_issuer.clone(), s.oidc_discovery)
    };
    if !enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let issuer = issuer.unwrap_or_else(|| format!("{}/", server.base));
    json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", server.base)})
        .to_string()
        .into_response()
}

async fn oauth_metadata(State(server): State<TestServer>) -> Response {
    server.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let issuer = format!("{}/", server.base);
    json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", server.base)})
        .to_string()
        .into_response()
}

impl TestServer {
    async fn start(jwks: &Value) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = TestServer {
            state: Arc::new(Mutex::new(ServerState {
                jwks: jwks.to_string(),
                cache_control: None,
                mode: Mode::Serve,
                latency: Duration::ZERO,
                discovery_issuer: None,
                oidc_discovery: true,
            })),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            discovery_fetches: Arc::new(AtomicUsize::new(0)),
            base,
        };
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(oidc))
            .route(
                "/.well-known/oauth-authorization-server",
                get(oauth_metadata),
            )
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    fn issuer(&self) -> String {
        format!("{}/", self.base)
    }

    fn set(&self, f: impl FnOnce(&mut ServerState)) {
        f(&mut self.state.lock().unwrap());
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

fn settings() -> CacheSettings {
    CacheSettings {
        cooldown: Duration::from_secs(1),
        total_timeout: Duration::from_millis(800),
        ..CacheSettings::default()
    }
}

fn jwks_of(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

fn token(key: &SigningKey, issuer: &str) -> String {
    key.sign(
        &Map::new(),
        &json!({"iss": issuer, "aud": AUD, "sub": "u1", "exp": NOW + 3600}),
    )
    .unwrap()
}

/// Fails, with the rejection, unless `registry` accepts `key`'s token for `issuer` now.
async fn assert_accepts(registry: &Registry, key: &SigningKey, issuer: &str) {
    let verified = registry.verify(token(key, issuer).as_bytes(), NOW).await;
    assert!(verified.is_ok(), "{}: {verified:?}", key.kid());
}

/// Why `registry` refuses `key`'s token for `issuer` now (fails when it accepts it).
async fn rejection_of(registry: &Registry, key: &SigningKey, issuer: &str) -> Rejection {
    registry
        .verify(token(key, issuer).as_bytes(), NOW)
        .await
        .expect_err("the token is refused")
}

fn registry_for(issuer: &str, source: KeySource) -> Registry {
    let policy = Policy::builder()
        .issuer(issuer)
        .audience(AUD)
        .build()
        .unwrap();
    Registry::new(vec![IssuerEntry::new(policy, source)]).unwrap()
}

fn url_source(server: &TestServer, clock: &ManualClock, settings: CacheSettings) -> KeySource {
    let url = url::Url::parse(&format!("{}/jwks", server.base)).unwrap();
    KeySource::new(SourceKind::Url(url), settings, Arc::new(clock.clone())).unwrap()
}

#[tokio::test]
async fn discovery_then_jwks_and_issuer_mismatch_refused() {
    let key = SigningKey::generate(Algorithm::RS256, "k1").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let source = KeySource::new(
        SourceKind::Discovery {
            issuer: issuer.clone(),
        },
        settings(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let registry = registry_for(&issuer, source.clone());
    assert_accepts(&registry, &key, &issuer).await;
    assert_eq!(
        (
            server.discovery_fetches.load(Ordering::SeqCst),
            server.fetches()
        ),
        (1, 1)
    );
    assert_eq!(
        source.snapshot().unwrap().origin,
        format!("{}/jwks", server.base)
    );

    // A discovery document that names another issuer is refused.
    let other = TestServer::start(&jwks_of(&[&key])).await;
    other.set(|s| s.discovery_issuer = Some("https://evil.example/".into()));
    let issuer = other.issuer();
    let source = KeySource::new(
        SourceKind::Discovery {
            issuer: issuer.clone(),
        },
        settings(),
        Arc::new(ManualClock::new()),
    )
    .unwrap();
    let rejection = rejection_of(&registry_for(&issuer, source), &key, &issuer).await;
    assert_eq!(rejection.code(), ErrorCode::InvalidToken);
    assert!(
        rejection.description().contains("https://evil.example/"),
        "{}",
        rejection.description()
    );
    assert_eq!(other.fetches(), 0);
}

#[tokio::test]
async fn discovery_falls_back_to_rfc8414() {
    let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    server.set(|s| s.oidc_discovery = false);
    let issuer = server.issuer();
    let source = KeySource::new(
        SourceKind::Discovery {
            issuer: issuer.clone(),
        },
        settings(),
        Arc::new(ManualClock::new()),
    )
    .unwrap();
    assert_accepts(&registry_for(&issuer, source), &key, &issuer).await;
    assert_eq!(server.discovery_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rotation_needs_exactly_one_refresh_and_old_keys_keep_working() {
    let old = SigningKey::generate(Algorithm::RS256, "old").unwrap();
    let new = SigningKey::generate(Algorithm::RS256, "new").unwrap();
    let server = TestServer::start(&jwks_of(&[&old])).await;
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let reg = registry_for(&issuer, url_source(&server, &clock, settings()));
    assert_accepts(&reg, &old, &issuer).await;
    assert_eq!(server.fetches(), 1);

    // The provider publishes the next key; the first token signed with it arrives.
    server.set(|s| s.jwks = jwks_of(&[&old, &new]).to_string());
    clock.advance(Duration::from_secs(60));
    assert_accepts(&reg, &new, &issuer).await;
    assert_eq!(server.fetches(), 2, "exactly one refresh");
    for _ in 0..10 {
        assert_accepts(&reg, &old, &issuer).await;
        assert_accepts(&reg, &new, &issuer).await;
    }
    assert_eq!(server.fetches(), 2);
}

/// The registry cuts a token after a recently parsed header without the parse's whole-token
/// pass. A token the parse refuses causes no key fetch (an unknown `kid` after the cooldown
/// would), and gets the parse's refusal, as the steps in order would give it.
#[tokio::test]
async fn a_malformed_token_fetches_nothing_and_gets_the_parse_s_refusal() {
    let key = SigningKey::generate(Algorithm::RS256, "known").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    let issuer = server.issuer();
    let clock = ManualClock::new();
    let settings = settings();
    let cooldown = settings.cooldown;
    let source = url_source(&server, &clock, settings);
    let registry = registry_for(&issuer, source);
    let policy = Policy::builder()
        .issuer(&issuer)
        .audience(AUD)
        .build()
        .unwrap();
    assert_accepts(&registry, &key, &issuer).await;
    // Each case a `kid` the registry has not seen, whose header this thread parsed recently.
    let unknown = |kid: &str| {
        let stranger = SigningKey::generate(Algorithm::RS256, kid).unwrap();
        let token = token(&stranger, &issuer).into_bytes();
        assert!(UnverifiedToken::parse(&token, &policy).is_ok());
        token
    };
    let replaced = |mut token: Vec<u8>, at: fn(usize) -> usize, byte: u8| {
        let at = at(token.len());
        token[at] = byte;
        token
    };
    let tampered_tokens = [
        replaced(unknown("unknown-1"), |len| len - 3, b'\0'),
        replaced(unknown("unknown-2"), |len| len / 2, 0xC3),
        [unknown("unknown-3"), b" ".to_vec()].concat(),
        [unknown("unknown-4"), b"\t".to_vec()].concat(),
    ];
    for tampered in tampered_tokens {
        let expected = UnverifiedToken::parse(&tampered, &policy).unwrap_err();
        assert!(
            matches!(expected.reason(), Reason::Malformed(_)),
            "{expected}"
        );
        clock.advance(cooldown + Duration::from_secs(1));
        let fetches = server.fetches();
        let refused = registry.verify(&tampered, NOW).await.unwrap_err();
        assert_eq!(refused, expected);
        assert_eq!(refused.description(), expected.description());
        assert_eq!(server.fetches(), fetches, "a malformed token fetched keys");
    }
    // A well-formed token with a new unknown kid after the cooldown does fetch (the check
    // above can fail).
    let well_formed = unknown("unknown-5");
    clock.advance(cooldown + Duration::from_secs(1));
    let fetches = server.fetches();
    let refused = registry.verify(&well_formed, NOW).await.unwrap_err();
    assert!(matches!(refused.reason(), Reason::NoKey(_)), "{refused}");
    assert_eq!(server.fetches(), fetches + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_is_bounded_by_the_cooldown() {
    let key = SigningKey::generate(Algorithm::ES256, "real").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let settings = settings();
    let cooldown = settings.cooldown;
    let source = url_source(&server, &clock, settings);
    let reg = registry_for(&issuer, source.clone());
    let good = token(&key, &issuer);
    assert!(reg.verify(good.as_bytes(), NOW).await.is_ok());
    let before = server.fetches();

    // 10,000 tokens with invented kids over 5 s (0.5 ms apart), valid tokens mixed in.
    let attacker = SigningKey::generate(Algorithm::ES256, "x").unwrap();
    let flood = Duration::from_secs(5);
    for i in 0..10_000u32 {
        let forged = attacker
            .sign_raw(
                format!(r#"{{"alg":"ES256","kid":"invented-{i}"}}"#).as_bytes(),
                json!({"iss": issuer, "aud": AUD, "exp": NOW + 60})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        let rejection = reg.verify(forged.as_bytes(), NOW).await.unwrap_err();
        assert_eq!(rejection.code(), ErrorCode::InvalidToken);
        if i % 500 == 0 {
            assert!(
                reg.verify(good.as_bytes(), NOW).await.is_ok(),
                "valid token refused during the flood"
            );
        }
        clock.advance(flood / 10_000);
    }
    let fetched = server.fetches() - before;
    let bound = flood.as_secs_f64() / cooldown.as_secs_f64();
    assert!(
        fetched as f64 <= bound.ceil() + 1.0,
        "{fetched} fetches for a 5 s flood"
    );
    assert!(fetched >= 1);
    let metrics = source.metrics();
    assert!(metrics.cooldown_hits > 9_000, "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_a_new_kid_share_one_fetch() {
    let old = SigningKey::generate(Algorithm::EdDSA, "old").unwrap();
    let new = SigningKey::generate(Algorithm::EdDSA, "new").unwrap();
    let server = TestServer::start(&jwks_of(&[&old])).await;
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let reg = Arc::new(registry_for(
        &issuer,
        url_source(&server, &clock, settings()),
    ));
    assert_accepts(&reg, &old, &issuer).await;
    server.set(|s| {
        s.jwks = jwks_of(&[&old, &new]).to_string();
        s.latency = Duration::from_millis(300);
    });
    clock.advance(Duration::from_secs(60));
    let token = token(&new, &issuer);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let reg = reg.clone();
            let token = token.clone();
            tokio::spawn(async move { reg.verify(token.as_bytes(), NOW).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(
        server.fetches(),
        2,
        "one initial fetch and exactly one refresh"
    );
}

#[tokio::test]
async fn stale_if_error_for_every_failure_then_expiry() {
    let modes = [
        Mode::Status(500),
        Mode::Delay(Duration::from_secs(3)),
        Mode::Garbage,
        Mode::EmptySet,
        Mode::Huge,
    ];
    for mode in modes {
        let key = SigningKey::generate(Algorithm::RS256, "k1").unwrap();
        let server = TestServer::start(&jwks_of(&[&key])).await;
        let clock = ManualClock::new();
        let issuer = server.issuer();
        let settings = settings();
        let (ttl, max_stale) = (settings.default_ttl, settings.max_stale);
        let source = url_source(&server, &clock, settings);
        let reg = registry_for(&issuer, source.clone());
        let good = token(&key, &issuer);
        assert!(reg.verify(good.as_bytes(), NOW).await.is_ok());

        server.set(|s| s.mode = mode.clone());
        clock.advance(ttl + Duration::from_secs(1));
        for _ in 0..3 {
            let verified = reg.verify(good.as_bytes(), NOW).await;
            assert!(verified.is_ok(), "{mode:?}: {verified:?}");
            clock.advance(Duration::from_secs(2));
        }
        let metrics = source.metrics();
        assert!(metrics.fetch_failures >= 1, "{mode:?}: {metrics:?}");
        assert!(metrics.stale_serves >= 3, "{mode:?}: {metrics:?}");
        assert!(source.last_error().is_some());

        // An unknown kid while failing: invalid_token saying the keys could not be refreshed.
        let other = SigningKey::generate(Algorithm::RS256, "unknown").unwrap();
        let rejection = rejection_of(&reg, &other, &issuer).await;
        assert_eq!(rejection.code(), ErrorCode::InvalidToken, "{mode:?}");
        assert!(
            rejection.description().contains("could not be refreshed"),
            "{mode:?}: {}",
            rejection.description()
        );

        // Past the maximum staleness the keys are no longer used.
        clock.advance(max_stale);
        let rejection = reg.verify(good.as_bytes(), NOW).await.unwrap_err();
        assert_eq!(rejection.code(), ErrorCode::InvalidToken);
        assert!(
            matches!(
                rejection.reason(),
                Reason::KeysUnavailable {
                    selection: None,
                    ..
                }
            ),
            "{mode:?}: {rejection:?}"
        );
        assert!(
            rejection.description().contains("could not be loaded"),
            "{}",
            rejection.description()
        );
        assert!(!source.is_ready());

        // When the provider recovers, the next attempt after the cooldown restores service.
        server.set(|s| s.mode = Mode::Serve);
        clock.advance(Duration::from_secs(2));
        assert!(reg.verify(good.as_bytes(), NOW).await.is_ok(), "{mode:?}");
        assert!(source.is_ready());
    }
}

#[tokio::test]
async fn cache_control_max_age_is_honoured_and_clamped() {
    let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    for (header, expected) in [
        ("public, max-age=3600", 3600),
        ("max-age=1", 300),
        ("max-age=999999999", 86_400),
        ("no-store", 300),
    ] {
        server.set(|s| s.cache_control = Some(header.to_owned()));
        let source = url_source(&server, &ManualClock::new(), settings());
        assert_eq!(source.refresh().await, RefreshOutcome::Refreshed);
        let snapshot = source.snapshot().unwrap();
        assert_eq!(snapshot.ttl, Duration::from_secs(expected), "{header}");
        assert_eq!(snapshot.cache_control.as_deref(), Some(header));
    }
}

#[tokio::test]
async fn fresh_keys_are_used_without_fetching_and_refreshed_ahead_in_the_background() {
    let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
    let server = TestServer::start(&jwks_of(&[&key])).await;
    server.set(|s| s.cache_control = Some("max-age=1000".into()));
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let source = url_source(&server, &clock, settings());
    let reg = registry_for(&issuer, source.clone());
    let good = token(&key, &issuer);
    assert!(reg.verify(good.as_bytes(), NOW).await.is_ok());
    for _ in 0..50 {
        clock.advance(Duration::from_secs(10));
        assert!(reg.verify(good.as_bytes(), NOW).await.is_ok());
    }
    // 500 s of 1000: below refresh_ahead (0.8), so no fetch.
    assert_eq!(server.fetches(), 1);
    clock.advance(Duration::from_secs(350));
    assert!(reg.verify(good.as_bytes(), NOW).await.is_ok());
    // The background refresh runs on its own; wait for it to be fetched *and* stored (the
    // server counts the request before the answer is parsed), bounded generously for a loaded
    // machine: this checks what happens, not how fast.
    let refreshed = || {
        server.fetches() == 2 && source.snapshot().map(|s| s.fetched_at) == Some(clock.elapsed())
    };
    for _ in 0..1000 {
        if refreshed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.fetches(), 2);
    let fetched_at = source.snapshot().unwrap().fetched_at;
    assert_eq!(fetched_at, clock.elapsed());
}

#[tokio::test]
async fn unknown_issuers_are_refused_without_any_network_call() {
    let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
    let a = TestServer::start(&jwks_of(&[&key])).await;
    let b = TestServer::start(&jwks_of(&[&key])).await;
    let clock = ManualClock::new();
    let entries = [&a, &b]
        .iter()
        .map(|s| {
            let policy = Policy::builder()
                .issuer(s.issuer())
                .audience(AUD)
                .build()
                .unwrap();
            IssuerEntry::new(policy, url_source(s, &clock, settings()))
        })
        .collect();
    let reg = Registry::new(entries).unwrap();
    let rejection = rejection_of(&reg, &key, "https://unknown.example/").await;
    assert!(matches!(rejection.reason(), Reason::IssuerMismatch { .. }));
    assert_eq!(a.fetches() + b.fetches(), 0);
    // Each known issuer uses its own source.
    assert_accepts(&reg, &key, &b.issuer()).await;
    assert_eq!((a.fetches(), b.fetches()), (0, 1));

    // Single issuer: an unknown issuer with an unknown kid causes no fetch either.
    let single = registry_for(&a.issuer(), url_source(&a, &clock, settings()));
    let _ = single
        .verify(token(&key, &a.issuer()).as_bytes(), NOW)
        .await;
    let before = a.fetches();
    clock.advance(Duration::from_secs(60));
    let stranger = SigningKey::generate(Algorithm::ES256, "k-other").unwrap();
    let rejection = rejection_of(&single, &stranger, "https://unknown.example/").await;
    assert!(matches!(rejection.reason(), Reason::IssuerMismatch { .. }));
    assert_eq!(a.fetches(), before);
}

#[tokio::test]
async fn plain_http_only_to_loopback() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
    let url = url::Url::parse("http://keys.example.com/jwks").unwrap();
    assert!(KeySource::new(SourceKind::Url(url.clone()), settings(), clock.clone()).is_err());
    let allowed = CacheSettings {
        allow_insecure_http: true,
        ..settings()
    };
    assert!(KeySource::new(SourceKind::Url(url), allowed, clock).is_ok());
}

#[tokio::test]
async fn a_kid_first_seen_during_an_outage_works_once_the_provider_recovers() {
    let old = SigningKey::generate(Algorithm::ES256, "old").unwrap();
    let new = SigningKey::generate(Algorithm::ES256, "new").unwrap();
    let server = TestServer::start(&jwks_of(&[&old])).await;
    let clock = ManualClock::new();
    let issuer = server.issuer();
    let reg = registry_for(&issuer, url_source(&server, &clock, settings()));
    assert_accepts(&reg, &old, &issuer).await;

    // The provider rotates, but its JWKS endpoint is failing when the first new token arrives.
    server.set(|s| {
        s.jwks = jwks_of(&[&old, &new]).to_string();
        s.mode = Mode::Status(503);
    });
    clock.advance(Duration::from_secs(60));
    let rejection = rejection_of(&reg, &new, &issuer).await;
    assert!(
        rejection.description().contains("could not be refreshed"),
        "{}",
        rejection.description()
    );

    // It recovers: after the cooldown the same kid triggers a refresh and is accepted.
    server.set(|s| s.mode = Mode::Serve);
    clock.advance(Duration::from_secs(2));
    assert_accepts(&reg, &new, &issuer).await;
}
