//! # jwtgate-demo
//!
//! The whole system on one machine, in one process: the development OpenID Connect issuer
//! (`jwtgate-issuer`, its built-in configuration: `alice` may read users, `bob` may not), the
//! gateway in proxy mode (`jwtgate-http`: `GET /api/users` needs `read:users`, `POST /api/users`
//! needs `write:users`), a small users API on a real SQLite file, and a single-page app (plain
//! HTML and JavaScript, no build step) that signs in with the authorization code flow and PKCE.
//!
//! ## Design
//!
//! The demo wires the real parts together exactly as a deployment would — the gateway finds the
//! issuer's keys by OIDC discovery over HTTP, the API trusts only the gateway's identity headers —
//! so it doubles as the project's end-to-end proof ([`check`] runs the whole flow headlessly).
//! Everything listens on loopback; the SPA and the API share the gateway's origin, and the issuer
//! allows that origin for CORS.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod users;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwtgate_http::config::{GatewayConfig, IssuerSection, KeysSection, RouteSection};
use jwtgate_http::proxy::ProxyOptions;
use jwtgate_http::{server, Engine};
use jwtgate_issuer::{Config, Issuer, IssuerOptions, KeyRing};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use users::UserStore;

/// The API identifier of the built-in issuer configuration.
pub const API_AUDIENCE: &str = "https://api.jwtgate.local/";
/// The SPA's client id in the built-in issuer configuration.
pub const SPA_CLIENT: &str = "jwtgate-spa";

/// Where the demo listens and keeps its state.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Port of the app (the gateway: SPA, API); 0 picks a free one.
    pub app_port: u16,
    /// Port of the issuer; 0 picks a free one.
    pub issuer_port: u16,
    /// Directory for the SQLite file and the issuer's keys.
    pub state_dir: PathBuf,
}

/// The demo could not start.
#[derive(Debug, Error)]
pub enum DemoError {
    /// A port could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source} (choose another port)")]
    Listen {
        /// The port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
    /// The state directory or database failed.
    #[error("{0}")]
    State(String),
    /// The issuer failed to start.
    #[error("issuer: {0}")]
    Issuer(String),
    /// The gateway configuration was refused.
    #[error("gateway: {0}")]
    Gateway(String),
}

#[derive(Clone)]
struct AppState {
    store: UserStore,
    issuer: Issuer,
    engine: Arc<Engine>,
    app_url: String,
}

/// A running demo.
pub struct Demo {
    /// The app (and gateway) URL to open, e.g. `http://localhost:8080/`.
    pub app_url: String,
    /// The issuer URL (`iss`), e.g. `http://localhost:4400/`.
    pub issuer_url: String,
    /// The issuer, for operator actions.
    pub issuer: Issuer,
    /// The gateway's decision maker.
    pub engine: Arc<Engine>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("app_url", &self.app_url)
            .field("issuer_url", &self.issuer_url)
            .finish_non_exhaustive()
    }
}

async fn bind(port: u16) -> Result<TcpListener, DemoError> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|source| DemoError::Listen { port, source })
}

fn local_port(listener: &TcpListener) -> Result<u16, DemoError> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| DemoError::State(e.to_string()))
}

/// The gateway configuration the demo runs: proxy mode in front of the users API.
pub fn gateway_config(
    issuer_url: &str,
    app_port: u16,
    upstream: SocketAddr,
) -> Result<GatewayConfig, DemoError> {
    let mut config = GatewayConfig::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], app_port));
    config.server.realm = "jwtgate demo".to_owned();
    config.issuers.push(IssuerSection {
        issuer: issuer_url.to_owned(),
        audiences: vec![API_AUDIENCE.to_owned()],
        jwks_url: None,
        jwks_file: None,
        algorithms: Vec::new(),
        leeway: 0,
        scopes: Vec::new(),
        strict: false,
        clients: Vec::new(),
        ..IssuerSection::default()
    });
    config.keys = KeysSection::default();
    for spec in [
        "GET /api/users read:users",
        "POST /api/users write:users",
        "GET / public",
        "GET /app.js public",
        "GET /app.css public",
        "GET /favicon.ico public",
        "GET /demo/config public",
        "POST /demo/rotate public",
    ] {
        config
            .routes
            .push(RouteSection::parse_spec(spec).map_err(DemoError::Gateway)?);
    }
    config.proxy = Some(ProxyOptions::new(format!("http://{upstream}")));
    Ok(config)
}

impl Demo {
    /// Starts the issuer, the users API and the gateway.
    pub async fn start(options: &DemoOptions) -> Result<Demo, DemoError> {
        std::fs::create_dir_all(&options.state_dir)
            .map_err(|e| DemoError::State(format!("{}: {e}", options.state_dir.display())))?;
        let store = UserStore::open(&options.state_dir.join("users.sqlite"))
            .map_err(|e| DemoError::State(e.to_string()))?;

        let issuer_listener = bind(options.issuer_port).await?;
        let app_listener = bind(options.app_port).await?;
        let api_listener = bind(0).await?;
        let issuer_port = local_port(&issuer_listener)?;
        let app_port = local_port(&app_listener)?;
        let api_addr = api_listener
            .local_addr()
            .map_err(|e| DemoError::State(e.to_string()))?;
        let issuer_url = format!("http://localhost:{issuer_port}/");
        let app_url = format!("http://localhost:{app_port}/");

        let keys = KeyRing::open(&options.state_dir.join("issuer-keys"))
            .map_err(|e| DemoError::Issuer(e.to_string()))?;
        let config = Config::builtin().map_err(|e| DemoError::Issuer(e.to_string()))?;
        let issuer = Issuer::new(
            config,
            keys,
            IssuerOptions {
                public_url: Some(issuer_url.clone()),
                ..IssuerOptions::default()
            },
        )
        .map_err(|e| DemoError::Issuer(e.to_string()))?;

        let (shutdown, watch) = tokio::sync::watch::channel(false);
        let stopped = |mut watch: tokio::sync::watch::Receiver<bool>| async move {
            let _ = watch.wait_for(|stop| *stop).await;
        };
        let mut tasks = Vec::new();
        let issuer_task =
            jwtgate_issuer::serve(issuer_listener, issuer.clone(), stopped(watch.clone()));
        tasks.push(tokio::spawn(async move {
            if let Err(error) = issuer_task.await {
                tracing::error!(%error, "issuer stopped");
            }
        }));

        let built = gateway_config(&issuer_url, app_port, api_addr)?
            .build("demo")
            .map_err(|e| DemoError::Gateway(e.to_string()))?;
        let state = AppState {
            store,
            issuer: issuer.clone(),
            engine: built.engine.clone(),
            app_url: app_url.clone(),
        };
        let api = Router::new()
            .route(
                "/api/users",
                get(users::list_users).post(users::create_user),
            )
            .with_state(state.store.clone())
            .merge(
                Router::new()
                    .route("/", get(index))
                    .route("/app.js", get(script))
                    .route("/app.css", get(style))
                    .route("/demo/config", get(demo_config))
                    .route("/demo/rotate", post(rotate))
                    .with_state(state),
            );
        let api_stop = stopped(watch.clone());
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(api_listener, api)
                .with_graceful_shutdown(api_stop)
                .await;
        }));
        let gateway = server::spawn(&built, app_listener, None, stopped(watch))
            .await
            .map_err(DemoError::Gateway)?;
        tasks.push(tokio::spawn(async move {
            match gateway.task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "gateway stopped"),
                Err(error) => tracing::error!(%error, "gateway task failed"),
            }
        }));
        Ok(Demo {
            app_url,
            issuer_url,
            issuer,
            engine: built.engine,
            shutdown,
            tasks,
        })
    }

    /// Stops every component, letting requests in flight finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn demo_config(State(state): State<AppState>) -> Response {
    Json(json!({
        "issuer": state.issuer.url(),
        "clientId": SPA_CLIENT,
        "audience": API_AUDIENCE,
        "redirectUri": state.app_url,
    }))
    .into_response()
}

/// Rotates the issuer's signing key the way a provider does: publish the next key, let the
/// gateway refresh its key set (what its scheduled refresh-ahead does), then sign with the new key.
/// The old key stays published for the grace period, so tokens already issued keep working.
async fn rotate(State(state): State<AppState>) -> Response {
    let published = match state.issuer.publish_next_keys() {
        Ok(ids) => ids,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    };
    for entry in state.engine.registry().entries() {
        if let Err(error) = entry.source().refresh_now().await {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the gateway could not refresh its keys: {error}"),
            )
                .into_response();
        }
    }
    match state.issuer.activate_next_keys(None) {
        Ok(current) => Json(json!({
            "published": published,
            "signing_with": current,
            "note": "new logins get tokens signed with the new key; tokens signed with the old one keep working while it stays published",
        }))
        .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
