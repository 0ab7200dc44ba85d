//! Shared helpers for the issuer's tests: an issuer on a manual clock, requests sent straight
//! into its router (with a loopback peer address), the login dance a browser does, and the
//! built-in issuer served on a real loopback socket.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_docs
)]

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use jwtgate_core::{KeySet, Policy, ScopeRequirement, Verifier};
use jwtgate_issuer::{Config, Issuer, IssuerOptions, KeyRing, ManualClock};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;
use url::Url;

pub const ISS: &str = "http://localhost:4400/";
pub const API: &str = "https://api.jwtgate.local/";
pub const SPA_REDIRECT: &str = "http://localhost:5173/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const START: u64 = 1_800_000_000;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Fails unless this is the OAuth error `error` whose `error_description` contains
    /// `description_part`.
    pub fn assert_oauth_error(&self, error: &str, description_part: &str) {
        let body = self.json();
        assert_eq!(body["error"], error, "{body}");
        self.assert_description(description_part);
    }

    /// Fails unless this is the OAuth error `error` described exactly as `description`.
    pub fn assert_oauth_error_exactly(&self, error: &str, description: &str) {
        let body = self.json();
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_description"], description, "{body}");
    }

    /// Fails unless this answer's `error_description` contains `description_part`.
    pub fn assert_description(&self, description_part: &str) {
        let body = self.json();
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(description_part),
            "{description_part:?} not in {body}"
        );
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn location(&self) -> Url {
        let location = self
            .header("location")
            .unwrap_or_else(|| panic!("no Location; status {} body {}", self.status, self.text()));
        Url::parse(&location).unwrap()
    }

    /// The session cookie pair (`name=value`) this response sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with("jwtgate_session_"))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .next()
    }

    /// The `tx` of a login page.
    pub fn login_tx(&self) -> String {
        let text = self.text();
        let start = text
            .find("name=\"tx\" value=\"")
            .unwrap_or_else(|| panic!("not a login page: {text}"))
            + "name=\"tx\" value=\"".len();
        text[start..].split('"').next().unwrap().to_owned()
    }
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

pub struct Harness {
    pub issuer: Issuer,
    pub clock: Arc<ManualClock>,
    app: Router,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Config::builtin().unwrap(), KeyRing::ephemeral())
    }

    pub fn with(config: Config, keys: KeyRing) -> Harness {
        Harness::with_peer(config, keys, SocketAddr::from(([127, 0, 0, 1], 50000)))
    }

    pub fn with_peer(config: Config, keys: KeyRing, peer: SocketAddr) -> Harness {
        let clock = Arc::new(ManualClock::at(START));
        let issuer = Issuer::new(
            config,
            keys,
            IssuerOptions {
                public_url: Some(ISS.into()),
                clock: clock.clone(),
                log_requests: false,
                dpop_nonce: false,
            },
        )
        .unwrap();
        let app = issuer.router().layer(MockConnectInfo(peer));
        Harness { issuer, clock, app }
    }

    pub fn now(&self) -> i64 {
        use jwtgate_issuer::Clock;
        self.clock.unix()
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.post_form_with(path, pairs, &[]).await
    }

    pub async fn post_form_with(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(form(pairs))).unwrap())
            .await
    }

    /// `/authorize?…` with the SPA's usual parameters, overridden or extended by `extra`.
    pub fn authorize_path(&self, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("client_id", "jwtgate-spa"),
            ("redirect_uri", SPA_REDIRECT),
            ("response_type", "code"),
            ("response_mode", "query"),
            ("scope", "openid profile read:users offline_access"),
            ("audience", API),
            ("state", "c3RhdGU9PQ=="),
            ("nonce", "bm9uY2U+Lz0="),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in extra {
            params.retain(|(n, _)| n != name);
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        format!("/authorize?{}", form(&params))
    }

    /// Opens the login page and picks `user`: returns the redirect and the session cookie.
    pub async fn sign_in(&self, extra: &[(&str, &str)], user: &str) -> (Url, String) {
        let page = self.get(&self.authorize_path(extra)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let tx = page.login_tx();
        let reply = self
            .post_form("/login", &[("tx", &tx), ("user", user)])
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
        let cookie = reply.session_cookie().expect("session cookie");
        (reply.location(), cookie)
    }

    /// Signs in and returns the code.
    pub async fn code_for(&self, extra: &[(&str, &str)], user: &str) -> String {
        let (location, _) = self.sign_in(extra, user).await;
        query_param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
    }

    pub async fn exchange(&self, code: &str) -> Reply {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "jwtgate-spa"),
                ("code", code),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    pub fn keys(&self) -> KeySet {
        KeySet::from_json(self.issuer.jwks().to_string().as_bytes()).unwrap()
    }

    /// The verifier an API in front of `API` would use, requiring `scopes`.
    pub fn api_verifier(&self, scopes: &[&str]) -> Verifier {
        let policy = Policy::builder()
            .issuer(ISS)
            .audience(API)
            .scopes(ScopeRequirement::all_of(scopes.iter().copied()))
            .build()
            .unwrap();
        Verifier::new(policy, self.keys())
    }
}

/// Decodes a JWT's header and claims without verifying.
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let part = parts.next().unwrap();
        serde_json::from_slice(&jwtgate_core::internal::base64url::decode(part.as_bytes()).unwrap())
            .unwrap()
    };
    (next(), next())
}

/// The built-in issuer (ephemeral keys) served on `127.0.0.1` on a free port, known to clients
/// as `http://{host}:{port}/`: the issuer, that URL, and the sender that stops it (also when
/// dropped).
pub async fn serve_builtin(host: &str) -> (Issuer, String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://{host}:{port}/");
    let issuer = Issuer::new(
        Config::builtin().unwrap(),
        KeyRing::ephemeral(),
        IssuerOptions {
            public_url: Some(url.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = issuer.clone();
    tokio::spawn(async move {
        jwtgate_issuer::serve(listener, served, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (issuer, url, stop)
}

/// jwtgate's verifier for [`API`] (scope `read:users`) with the keys of `issuer_url` found by
/// discovery, as `jwtgate verify --discover` and the gateway use it (refresh cooldown 10 ms).
pub fn discovery_registry(issuer_url: &str) -> jwtgate_keys::Registry {
    use jwtgate_keys::{CacheSettings, IssuerEntry, KeySource, Registry, SourceKind, SystemClock};
    let settings = CacheSettings {
        cooldown: std::time::Duration::from_millis(10),
        ..CacheSettings::default()
    };
    let source = KeySource::new(
        SourceKind::Discovery {
            issuer: issuer_url.to_owned(),
        },
        settings,
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    let policy = Policy::builder()
        .issuer(issuer_url)
        .audience(API)
        .scopes(ScopeRequirement::all_of(["read:users"]))
        .build()
        .unwrap();
    Registry::new(vec![IssuerEntry::new(policy, source)]).unwrap()
}
