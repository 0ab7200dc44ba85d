//! The gateway server: operations endpoints, the forward-auth endpoint, and the reverse proxy
//! behind the same [`AuthLayer`], with graceful shutdown; one accept loop for
//! plain (HTTP/1.1 and h2c) and TLS listeners enforces the [`ConnectionLimits`]: header, idle and
//! body timeouts watched per connection, a connection limit with an overload reserve that still
//! answers the health paths, and HTTP/2 stream limits.

use crate::answer::denial_response;
use crate::config::BuiltGateway;
use crate::layer::{add_cors, add_dpop_nonce, AuthLayer, TlsClientCertificate};
use crate::proxy::{Proxy, ProxyOptions};
use crate::shared::SharedEngine;
use crate::watchdog::{Watchdog, WatchdogEvent};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use jwtgate_engine::dpop;
use jwtgate_engine::mtls::CertificateThumbprint;
use jwtgate_engine::{
    unix_now, Denial, Engine, FrontEnd, Metrics, Outcome, RequestView, TokenInput,
};

/// Where the server listens and which endpoints it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// Forward-auth path, if enabled.
    pub forward_auth_path: Option<String>,
    /// Forward-auth prefix, if enabled: `prefix` + a path is checked as that path.
    pub forward_auth_prefix: Option<String>,
    /// Status for `invalid_request` at the forward-auth endpoint.
    pub forward_auth_invalid_request_status: u16,
    /// Listen address of the gRPC ext_authz server (`jwtgate-grpc`), if enabled.
    pub grpc_listen: Option<SocketAddr>,
    /// Whether gRPC ext_authz leaves the token in the request Envoy forwards.
    pub grpc_forward_token: bool,
    /// Whether gRPC ext_authz answers carry the verified claims as `dynamic_metadata`.
    pub grpc_claims_metadata: bool,
    /// Liveness path, if enabled.
    pub health_path: Option<String>,
    /// Readiness path, if enabled.
    pub ready_path: Option<String>,
    /// Metrics path, if enabled.
    pub metrics_path: Option<String>,
    /// The upstream, in proxy mode.
    pub proxy: Option<ProxyOptions>,
    /// TLS certificate chain and key (PEM files), when the listener serves HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA certificates (PEM) the TLS listener verifies client certificates with, when it asks
    /// for them (RFC 8705 certificate-bound tokens).
    pub client_ca: Option<PathBuf>,
    /// Timeouts and limits of client connections.
    pub connections: ConnectionLimits,
}

#[derive(Clone)]
struct AppState {
    engine: Arc<SharedEngine>,
    invalid_request_status: u16,
    forward_auth_prefix: Arc<str>,
}

/// Why the original request of a forward-auth check cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginalRequestError {
    /// Neither `X-Forwarded-Uri` nor `X-Original-URI`.
    Missing,
    /// The two conventions disagree (or a header is repeated): one copy came from the client.
    Conflict,
    /// A header is present but unusable: not ASCII, a method that is no HTTP token, a URI
    /// that is not a path. Never read as absent, or a client's copy could hide behind it.
    Unusable(&'static str),
}

/// The original method and URI of a forward-auth check, from `X-Forwarded-Method`/`-Uri`
/// (Traefik, Caddy) or `X-Original-Method`/`-URI` (the nginx convention). When both conventions
/// are present they must agree, and none may be repeated: a proxy that passes the client's own
/// copy through (nginx's `auth_request` forwards client headers unless told otherwise) must never
/// let the client choose which path is checked.
fn original_request(headers: &HeaderMap) -> Result<(Cow<'_, str>, &str), OriginalRequestError> {
    /// The four headers, as names built once.
    static NAMES: [HeaderName; 4] = [
        HeaderName::from_static("x-forwarded-method"),
        HeaderName::from_static("x-original-method"),
        HeaderName::from_static("x-forwarded-uri"),
        HeaderName::from_static("x-original-uri"),
    ];
    // One pass over the headers (a lookup hashes the name; four of them cost more than the
    // walk): each name's value, and whether it came more than once.
    let mut values: [Option<&HeaderValue>; 4] = [None; 4];
    let mut repeated = [false; 4];
    for (name, value) in headers {
        if let Some(slot) = NAMES.iter().position(|known| known == name) {
            repeated[slot] |= values[slot].replace(value).is_some();
        }
    }
    let get = |slot: usize| {
        let label = NAMES[slot].as_str();
        if repeated[slot] {
            return Err(OriginalRequestError::Conflict);
        }
        let Some(first) = values[slot] else {
            return Ok(None);
        };
        let text = first
            .to_str()
            .map_err(|_| OriginalRequestError::Unusable(label))?;
        let usable = if label.ends_with("method") {
            // An HTTP method token (RFC 9110 §5.6.2), as `http` parses one.
            http::Method::from_bytes(text.as_bytes()).is_ok()
        } else {
            text.starts_with('/')
        };
        if !usable {
            return Err(OriginalRequestError::Unusable(label));
        }
        Ok(Some(text))
    };
    fn agree<'h>(
        a: Option<&'h str>,
        b: Option<&'h str>,
        ignore_case: bool,
    ) -> Result<Option<&'h str>, OriginalRequestError> {
        match (a, b) {
            (Some(a), Some(b))
                if (ignore_case && !a.eq_ignore_ascii_case(b)) || (!ignore_case && a != b) =>
            {
                Err(OriginalRequestError::Conflict)
            }
            (a, b) => Ok(a.or(b)),
        }
    }
    let method = agree(get(0)?, get(1)?, true)?;
    let uri = agree(get(2)?, get(3)?, false)?;
    match (method, uri) {
        (Some(method), Some(uri)) if method.bytes().any(|b| b.is_ascii_lowercase()) => {
            Ok((Cow::Owned(method.to_ascii_uppercase()), uri))
        }
        (Some(method), Some(uri)) => Ok((Cow::Borrowed(method), uri)),
        // nginx's auth_request keeps the method of the original request on the subrequest.
        (None, Some(uri)) => Ok((Cow::Borrowed(""), uri)),
        _ => Err(OriginalRequestError::Missing),
    }
}

async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    forward_auth_check(&state, request.method(), request.uri(), request.headers()).await
}

/// The forward-auth check of one request, from its head: the axum route and the accept loop's
/// direct dispatch ([`Gateway`]) both answer with this.
async fn forward_auth_check(
    state: &AppState,
    request_method: &http::Method,
    request_uri: &http::Uri,
    headers: &HeaderMap,
) -> Response {
    let engine = state.engine.load();
    let (method, uri) = match original_request(headers) {
        Ok(original) => original,
        Err(problem) => {
            let denial = match problem {
                OriginalRequestError::Unusable(name) => Denial::invalid_request(
                    engine.realm(),
                    format!(
                        "the {name} header is not a usable {}",
                        if name.ends_with("method") {
                            "HTTP method"
                        } else {
                            "request path (ASCII, starting with '/')"
                        }
                    ),
                ),
                OriginalRequestError::Missing => {
                    tracing::error!("forward-auth request without X-Forwarded-Uri or X-Original-URI: check the proxy configuration");
                    Denial::proxy_contract(
                        engine.realm(),
                        "the proxy did not send X-Forwarded-Uri or X-Original-URI: forward-auth needs the original request's URI",
                    )
                }
                OriginalRequestError::Conflict => {
                    tracing::warn!("forward-auth request with conflicting original-request headers: the proxy passes client copies through");
                    Denial::proxy_contract(
                        engine.realm(),
                        "conflicting X-Forwarded-*/X-Original-* headers: the proxy must clear the client's copies",
                    )
                }
            };
            let outcome = engine.refuse(request_method.as_str(), request_uri.path(), denial);
            return render_forward_auth(state, outcome);
        }
    };
    let method = if method.is_empty() {
        request_method.as_str()
    } else {
        &method
    };
    let origin = dpop::carries_proof(headers)
        .then(|| dpop::forwarded_origin(headers))
        .flatten();
    let view = RequestView {
        front: FrontEnd::ForwardAuth,
        method,
        target: uri,
        headers: headers.into(),
        origin: origin.as_deref(),
        token: TokenInput::FromRequest,
        // The peer is the proxy, not the client: its certificate comes in a header
        // ([server] client_cert_header), which the engine reads itself.
        client_certificate: None,
        now: unix_now(),
    };
    let outcome = engine.decide(&view).await;
    render_forward_auth(state, outcome)
}

/// A check at the forward-auth prefix (Envoy's HTTP ext_authz `path_prefix`): the request's own
/// method on what follows the prefix in its target, path and query as sent.
async fn prefixed_forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let engine = state.engine.load();
    let target = request
        .uri()
        .path_and_query()
        .map_or("", |pq| pq.as_str())
        .strip_prefix(&*state.forward_auth_prefix)
        .unwrap_or_default();
    // Envoy's HTTP ext_authz keeps the original Host; X-Forwarded-Host wins when the proxy sets
    // it. The scheme must come from X-Forwarded-Proto.
    let headers = request.headers();
    let origin = dpop::carries_proof(headers)
        .then(|| {
            dpop::forwarded_origin(headers).or_else(|| {
                let proto = headers.get("x-forwarded-proto")?.to_str().ok()?;
                let host = headers.get(http::header::HOST)?.to_str().ok()?;
                dpop::origin(proto, host)
            })
        })
        .flatten();
    let view = RequestView {
        front: FrontEnd::ForwardAuth,
        method: request.method().as_str(),
        target,
        headers: headers.into(),
        origin: origin.as_deref(),
        token: TokenInput::FromRequest,
        client_certificate: None,
        now: unix_now(),
    };
    let outcome = engine.decide(&view).await;
    render_forward_auth(&state, outcome)
}

/// The forward-auth answer for an outcome: 200 with the identity headers, or the refusal
/// (`invalid_request` with the configured status).
fn render_forward_auth(state: &AppState, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Allow(allow) => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            for (name, value) in allow.identity {
                headers.insert(name, value);
            }
            // The proxy copies it to the client's answer (the recipes say how).
            add_dpop_nonce(headers, allow.dpop_nonce.as_deref());
            response
        }
        Outcome::Preflight => StatusCode::OK.into_response(),
        Outcome::Deny(denial) => {
            let denial = if denial.status() == 400 {
                denial.with_status(state.invalid_request_status)
            } else {
                denial
            };
            denial_response(&denial)
        }
    }
}

async fn health() -> &'static str {
    "ok\n"
}

/// Why the engine is not ready: issuers whose keys are not loaded (`issuer: error`) and a
/// revocation source that has not synced; empty when the engine is ready to decide (the
/// readiness of `/readyz` and of gRPC health).
pub fn not_ready_reasons(engine: &Engine) -> Vec<String> {
    engine
        .registry()
        .entries()
        .iter()
        .filter(|e| !e.source().is_ready())
        .map(|e| {
            let issuer = e.policy().issuers().first().cloned().unwrap_or_default();
            match e.source().last_error() {
                Some(error) => format!("{issuer}: {error}"),
                None => format!("{issuer}: keys not loaded yet"),
            }
        })
        .chain(engine.revocation().and_then(|r| r.readiness().err()))
        .collect()
}

async fn ready(State(state): State<AppState>) -> Response {
    let pending = not_ready_reasons(&state.engine.load());
    if pending.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", pending.join("\n")),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let engine = state.engine.load();
    let mut text = engine.metrics().render(engine.registry());
    if let Some(revocation) = engine.revocation() {
        text.push_str(&revocation.render_metrics());
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    // Without an upstream, only the endpoints exist; preflights still get their answer.
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    let mut response = (StatusCode::NOT_FOUND, "not found\n").into_response();
    add_cors(
        response.headers_mut(),
        state.engine.load().cors(),
        origin.as_ref(),
        false,
    );
    response
}

/// RFC 9728 protected resource metadata: public, cacheable, readable from any origin (browser
/// MCP clients fetch it cross-origin, with an `MCP-Protocol-Version` header that needs a
/// preflight). The document is the current engine's, so a reload that changes it is served at
/// once; a reload that adds or moves a metadata path needs a restart.
async fn resource_metadata(State(state): State<AppState>, request: Request) -> Response {
    let engine = state.engine.load();
    let Some(resource) = engine.resource() else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut response = if request.method() == http::Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        if let Some(asked) = request
            .headers()
            .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(
            http::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        response
    } else {
        let mut response = resource.document().into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        response
    };
    response.headers_mut().insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// What the accept loop serves: the app's router, and the forward-auth path answered without
/// it.
///
/// A forward-auth check is the gateway's hot path (every request of the protected API makes
/// one). The accept loop answers a request whose path is exactly the forward-auth path straight
/// from its head, with the same handler the router has for that path; the router's matching,
/// its per-request extensions (the peer address, the matched path) and its body wrapping would
/// cost about a fifth of a cached check. Every other path, and every request on a connection
/// served by the overload responder, goes through the router.
#[derive(Clone)]
pub struct Gateway {
    router: Router,
    forward_auth: Option<ForwardAuthRoute>,
}

/// The forward-auth path and what its handler needs.
#[derive(Clone)]
struct ForwardAuthRoute {
    path: Arc<str>,
    state: AppState,
}

impl From<Router> for Gateway {
    /// Serves `router` for every path (no direct dispatch).
    fn from(router: Router) -> Gateway {
        Gateway {
            router,
            forward_auth: None,
        }
    }
}

impl Gateway {
    /// The router, which serves every path (the forward-auth path too).
    pub fn into_router(self) -> Router {
        self.router
    }
}

/// Builds the router for `options`, deciding with whatever engine `engine` holds (swap it to
/// reload the configuration).
pub fn router(engine: Arc<SharedEngine>, options: &ServerOptions) -> Result<Router, String> {
    Ok(gateway(engine, options)?.into_router())
}

/// Builds what [`serve_gateway`] serves for `options`: the [`router`] and the forward-auth path's
/// direct dispatch (see [`Gateway`]).
pub fn gateway(engine: Arc<SharedEngine>, options: &ServerOptions) -> Result<Gateway, String> {
    let status = options.forward_auth_invalid_request_status;
    StatusCode::from_u16(status).map_err(|e| e.to_string())?;
    let state = AppState {
        engine: engine.clone(),
        invalid_request_status: status,
        forward_auth_prefix: Arc::from(options.forward_auth_prefix.as_deref().unwrap_or_default()),
    };
    let mut app: Router<AppState> = Router::new();
    if let Some(path) = &options.health_path {
        app = app.route(path, get(health));
    }
    if let Some(path) = &options.ready_path {
        app = app.route(path, get(ready));
    }
    if let Some(path) = &options.metrics_path {
        app = app.route(path, get(metrics));
    }
    if let Some(path) = &options.forward_auth_path {
        app = app.route(path, any(forward_auth));
    }
    if let Some(resource) = engine.load().resource() {
        for path in resource.metadata_paths() {
            app = app.route(path, get(resource_metadata).options(resource_metadata));
        }
    }
    if let Some(prefix) = &options.forward_auth_prefix {
        // Validated by the configuration: a literal path, so nothing in it is route syntax.
        app = app.route(
            &format!("{prefix}/{{*original}}"),
            any(prefixed_forward_auth),
        );
    }
    let forward_auth = options
        .forward_auth_path
        .as_deref()
        .map(|path| ForwardAuthRoute {
            path: Arc::from(path),
            state: state.clone(),
        });
    let app = app.with_state(state.clone());
    let router = match &options.proxy {
        Some(proxy_options) => {
            let proxy =
                Arc::new(Proxy::new(proxy_options.clone())?.behind_tls(options.tls.is_some()));
            let proxied = Router::new()
                .fallback(move |request: Request<Body>| {
                    let proxy = proxy.clone();
                    let peer = request
                        .extensions()
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0);
                    async move { proxy.forward(request, peer).await }
                })
                .layer(AuthLayer::shared(engine).over_tls(options.tls.is_some()));
            app.fallback_service(proxied)
        }
        None => {
            let fallback = Router::new().fallback(not_found).with_state(state);
            app.fallback_service(fallback)
        }
    };
    Ok(Gateway {
        router,
        forward_auth,
    })
}

/// Loads every issuer's keys once (logging failures: the sources keep retrying) and starts their
/// background refreshers.
pub async fn prepare_keys(engine: &Engine) {
    for entry in engine.registry().entries() {
        let source = entry.source().clone();
        if let Err(error) = source.refresh_now().await {
            tracing::warn!(source = %source.kind(), %error, "initial key fetch failed; will retry");
        }
        tokio::spawn(source.run_refresher());
    }
}

/// A gateway started by [`spawn`].
#[derive(Debug)]
pub struct Spawned {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine it decides with (store another to reload).
    pub engine: Arc<SharedEngine>,
    /// The serving task; it ends after the shutdown future completes and requests finish.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts `built` on `listener`: loads every issuer's keys ([`prepare_keys`]), builds the
/// [`gateway`] around a [`SharedEngine`], and serves it with [`serve_gateway`] (over TLS with
/// `tls`) until `shutdown` completes.
pub async fn spawn(
    built: &BuiltGateway,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Spawned, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    prepare_keys(&built.engine).await;
    if let Some(revocation) = built.engine.revocation() {
        start_revocation(revocation).await;
    }
    let engine = SharedEngine::shared(built.engine.clone());
    let app = gateway(engine.clone(), &built.options)?;
    let metrics = built.engine.metrics().clone();
    let options = built.options.clone();
    let task = tokio::spawn(async move {
        serve_gateway(listener, app, metrics, &options, tls, shutdown).await
    });
    Ok(Spawned { addr, engine, task })
}

/// How long the start waits for the first sync of the revocation rules; past it the gateway
/// serves with the rules it has (none) and `/readyz` reports the source until it syncs.
pub const REVOCATION_START_WAIT: Duration = Duration::from_secs(2);

/// Starts following the revocation source (once per rule set) and waits for its first sync, at
/// most [`REVOCATION_START_WAIT`].
pub async fn start_revocation(revocation: &Arc<jwtgate_revocation::Revocations>) {
    jwtgate_revocation::follow::start(revocation);
    let deadline = Instant::now() + REVOCATION_START_WAIT;
    while revocation.last_sync_age().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(why) = revocation.readiness() {
        tracing::warn!(%why, "serving without synced revocation rules; /readyz reports it");
    }
}

/// Descriptors kept back from the connection limit for everything else (listener, logs, JWKS
/// fetches, key files, the runtime): a tenth of the limit, at least this many.
const DESCRIPTOR_RESERVE_MIN: u64 = 64;
/// Connections accepted beyond `max_connections` into the overload reserve.
pub const OVERLOAD_RESERVE: usize = 16;
/// Header read and idle timeout of a connection in the overload reserve: the reserve turns over
/// quickly, so a health check queued behind idle connections is answered within seconds.
pub const OVERLOAD_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a connection closing for idleness may take to say goodbye (HTTP/2 `GOAWAY`).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept error other than a connection aborted before it was accepted.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Fewest seconds between two log lines about the same connection-limit condition.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP/2 streams a client may open and reset before the server answers them, per connection
/// (the "rapid reset" flood, CVE-2023-44487); hyper's default, set explicitly.
const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the server may reset for protocol errors before closing the connection
/// (CVE-2024-27316-style floods); hyper's default, set explicitly.
const HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// The most connections a derived limit allows, whatever the descriptor limit.
const DERIVED_MAX: u64 = 1 << 20;
/// The descriptor limit assumed where it cannot be read.
const ASSUMED_DESCRIPTOR_LIMIT: u64 = 1024;

/// Per-connection limits of the gateway's listener. Timeouts follow nginx's model: a new
/// connection must deliver a complete request head within `header_read_timeout`; between
/// requests a connection may stay idle for `idle_timeout`, and once the first byte of the next
/// head arrives the header clock runs again; a request body may pause at most
/// `body_read_timeout` between two frames. A request in flight (from its head until the last
/// byte of its response) is never cut by the idle clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to receive a complete request head (HTTP/1), counted from accepting the connection
    /// (TLS handshake included) or from the first byte of a later request.
    pub header_read_timeout: Duration,
    /// Time a connection with no request in flight may stay open.
    pub idle_timeout: Duration,
    /// Longest pause between two frames of a request body; the request then fails.
    pub body_read_timeout: Duration,
    /// Connections served at once; 0 derives it from the descriptor limit
    /// ([`derived_max_connections`]).
    pub max_connections: usize,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` advertised to HTTP/2 clients.
    pub http2_max_concurrent_streams: u32,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE` advertised to HTTP/2 clients, in bytes.
    pub http2_max_header_list_size: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 0,
            http2_max_concurrent_streams: 100,
            http2_max_header_list_size: 65_536,
        }
    }
}

/// The connection limit derived from a descriptor limit (`RLIMIT_NOFILE`'s soft limit): a tenth
/// of the descriptors (at least 64) stays for everything but client connections, and
/// [`OVERLOAD_RESERVE`] more for the overload reserve; in proxy mode each client connection
/// may hold one upstream connection, so half the rest. At least 1, at most 2^20.
pub fn derived_max_connections(descriptor_limit: u64, proxy: bool) -> usize {
    let kept = (descriptor_limit / 10).max(DESCRIPTOR_RESERVE_MIN) + OVERLOAD_RESERVE as u64;
    let available = descriptor_limit.saturating_sub(kept);
    let per_connection = if proxy { 2 } else { 1 };
    let max = (available / per_connection).clamp(1, DERIVED_MAX);
    usize::try_from(max).unwrap_or(1)
}

/// The process's soft descriptor limit, if the platform tells it (`None` means unlimited or
/// unknown).
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `limits.max_connections`, or the limit derived from this process's descriptor limit.
pub fn effective_max_connections(limits: &ConnectionLimits, proxy: bool) -> usize {
    if limits.max_connections > 0 {
        return limits.max_connections;
    }
    let descriptors = descriptor_limit().unwrap_or(ASSUMED_DESCRIPTOR_LIMIT);
    derived_max_connections(descriptors, proxy)
}

/// Serves `app` on `listener` with the default [`ConnectionLimits`] (the connection limit
/// derived as for proxy mode, the conservative choice) until `shutdown` completes, then finishes
/// in-flight requests. Knowing no health paths, its overload reserve answers every request with
/// 503, and nothing is counted; [`serve_gateway`] is the full form.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::default();
    let max = effective_max_connections(&limits, true);
    accept_loop(listener, app.into(), Listening::new(limits, max), shutdown).await
}

/// Like [`serve`], over TLS: each connection is handshaken within the header read timeout and
/// served with HTTP/1.1 or HTTP/2 as ALPN chose.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::default();
    let max = effective_max_connections(&limits, true);
    let mut listening = Listening::new(limits, max);
    listening.tls = Some(acceptor);
    accept_loop(listener, app.into(), listening, shutdown).await
}

/// Serves the gateway `app` (built by [`gateway`] or [`router`] from `options`) on `listener`
/// until `shutdown` completes, then finishes in-flight requests: `options.connections` sets the
/// timeouts and the connection limit, `tls` makes it HTTPS, and `metrics` count connections over
/// the limit.
///
/// At the limit, up to [`OVERLOAD_RESERVE`] further connections are still accepted and served by
/// an overload responder: the health and readiness paths are answered as usual, everything else
/// gets 503 with `Retry-After: 1`, and every answer closes the connection (HTTP/1.1
/// `Connection: close`; HTTP/2 connections close after one second idle); a reserve connection
/// gets one second for its request head. When the reserve is full too, accepting pauses until a
/// connection closes; new clients wait in the kernel's backlog.
pub async fn serve_gateway(
    listener: tokio::net::TcpListener,
    app: impl Into<Gateway>,
    metrics: Arc<Metrics>,
    options: &ServerOptions,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = options.connections;
    let max = effective_max_connections(&limits, options.proxy.is_some());
    let source = if limits.max_connections > 0 {
        "configured".to_owned()
    } else {
        match descriptor_limit() {
            Some(n) => format!("derived from the descriptor limit {n}"),
            None => format!("derived from an assumed descriptor limit {ASSUMED_DESCRIPTOR_LIMIT}"),
        }
    };
    tracing::info!(max_connections = max, %source, "connection limit");
    let mut listening = Listening::new(limits, max);
    listening.tls = tls;
    listening.metrics = Some(metrics);
    listening.health_paths = [&options.health_path, &options.ready_path]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    accept_loop(listener, app.into(), listening, shutdown).await
}

/// What the accept loop serves besides the app.
struct Listening {
    limits: ConnectionLimits,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
    metrics: Option<Arc<Metrics>>,
    health_paths: Vec<String>,
}

impl Listening {
    fn new(limits: ConnectionLimits, max_connections: usize) -> Listening {
        Listening {
            limits,
            max_connections,
            tls: None,
            metrics: None,
            health_paths: Vec::new(),
        }
    }
}

/// A log line at most every [`LOG_INTERVAL`], counting the occurrences in between.
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            last: None,
            suppressed: 0,
        }
    }

    /// How many occurrences this line stands for, when one should be logged now.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + LOG_INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        let count = self.suppressed + 1;
        self.suppressed = 0;
        Some(count)
    }
}

/// Errors of `accept` that concern one connection only, not the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// How a listener admits connections: at most `max_connections` normal ones, then up to
/// [`OVERLOAD_RESERVE`] more for the listener's overload responder; when both are full,
/// accepting pauses until a connection closes (new clients wait in the kernel's backlog). Accept
/// errors that concern one connection are skipped; others back off a moment
/// (`ACCEPT_BACKOFF`). Both the HTTP gateway's and the gRPC listener's accept loops admit
/// through this.
pub struct Admission {
    normal: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    max_connections: usize,
    reserve_full_log: Throttled,
    accept_error_log: Throttled,
}

/// A connection [`Admission`] let in.
pub struct Admitted {
    /// The connection (`TCP_NODELAY` set: answers written in pieces, such as HTTP/2 frames of
    /// gRPC headers, message and trailers, would otherwise wait for the peer's delayed ACK).
    pub stream: tokio::net::TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Its place under the limit, given back when dropped.
    pub permit: OwnedSemaphorePermit,
    /// True when it took a place of the overload reserve.
    pub overloaded: bool,
}

impl Admission {
    /// Admission for at most `max_connections` connections plus the reserve.
    pub fn new(max_connections: usize) -> Admission {
        Admission {
            normal: Arc::new(Semaphore::new(max_connections)),
            reserve: Arc::new(Semaphore::new(OVERLOAD_RESERVE)),
            max_connections,
            reserve_full_log: Throttled::new(),
            accept_error_log: Throttled::new(),
        }
    }

    /// The next connection to serve, or `None` once `shutdown` completes.
    pub async fn next(
        &mut self,
        listener: &tokio::net::TcpListener,
        mut shutdown: Pin<&mut (impl std::future::Future<Output = ()> + ?Sized)>,
    ) -> Option<Admitted> {
        loop {
            if self.normal.available_permits() == 0 && self.reserve.available_permits() == 0 {
                if let Some(count) = self.reserve_full_log.due() {
                    tracing::warn!(
                        max_connections = self.max_connections,
                        reserve = OVERLOAD_RESERVE,
                        times = count,
                        "connection limit and overload reserve full: not accepting until a connection closes"
                    );
                }
                // Only this admission takes permits, so one released now is still free after
                // the select.
                tokio::select! {
                    _ = self.normal.acquire() => {}
                    _ = self.reserve.acquire() => {}
                    () = shutdown.as_mut() => return None,
                }
            }
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) if is_connection_error(&error) => continue,
                    Err(error) => {
                        if let Some(count) = self.accept_error_log.due() {
                            tracing::error!(%error, times = count, "accept failed; backing off");
                        }
                        tokio::select! {
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                            () = shutdown.as_mut() => return None,
                        }
                    }
                },
                () = shutdown.as_mut() => return None,
            };
            let _ = stream.set_nodelay(true);
            let (permit, overloaded) = match self.normal.clone().try_acquire_owned() {
                Ok(permit) => (permit, false),
                Err(_) => match self.reserve.clone().try_acquire_owned() {
                    Ok(permit) => (permit, true),
                    Err(_) => continue,
                },
            };
            return Some(Admitted {
                stream,
                peer,
                permit,
                overloaded,
            });
        }
    }
}

/// The one accept loop of plain and TLS listeners.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Gateway,
    listening: Listening,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    // The header read timeout is enforced by the connection watchdog: hyper's own would also run
    // while a keep-alive connection waits for its next request, capping the idle timeout.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(listening.limits.http2_max_concurrent_streams)
        .max_header_list_size(listening.limits.http2_max_header_list_size)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS);
    let builder = Arc::new(builder);
    let health_paths: Arc<[String]> = listening.health_paths.into();
    let (stop, stopped) = watch::channel(false);
    let mut over_limit_log = Throttled::new();
    let mut admission = Admission::new(listening.max_connections);
    tokio::pin!(shutdown);
    while let Some(Admitted {
        stream,
        peer,
        permit,
        overloaded,
    }) = admission.next(&listener, shutdown.as_mut()).await
    {
        if overloaded {
            if let Some(metrics) = &listening.metrics {
                metrics.connection_over_limit();
            }
            if let Some(count) = over_limit_log.due() {
                tracing::warn!(
                    max_connections = listening.max_connections,
                    connections = count,
                    "connection limit reached: answering new connections with 503 (health paths still served)"
                );
            }
        }
        let mut limits = listening.limits;
        if overloaded {
            limits.header_read_timeout = limits.header_read_timeout.min(OVERLOAD_TIMEOUT);
            limits.idle_timeout = limits.idle_timeout.min(OVERLOAD_TIMEOUT);
        }
        let activity = Arc::new(Activity::new());
        let io = TrackedIo {
            io: stream,
            activity: activity.clone(),
            _permit: permit,
        };
        let connection = Accepted {
            builder: builder.clone(),
            activity,
            limits,
            stopped: stopped.clone(),
        };
        let app = app.clone();
        let tls = listening.tls.clone();
        let health_paths = health_paths.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await;
                    let Ok(Ok(tls)) = handshake else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| TlsClientCertificate(CertificateThumbprint::of_der(leaf)));
                    connection
                        .serve(tls, app, peer, overloaded, health_paths, certificate)
                        .await;
                }
                None => {
                    connection
                        .serve(io, app, peer, overloaded, health_paths, None)
                        .await
                }
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    stop.closed().await;
    Ok(())
}

/// What a connection's phase is, as the watchdog sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving a request head, since the instant given.
    Head(Instant),
    /// No request in flight, since the instant given.
    Idle(Instant),
    /// At least one request in flight.
    Busy,
}

/// One connection's activity, shared by its IO (bytes read), its service (requests in flight)
/// and its watchdog. Instants are milliseconds since `epoch`.
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Start of the request head being received, plus one; 0 when none is.
    head_since: AtomicU64,
    /// When the last request finished.
    idle_since: AtomicU64,
    /// HTTP/2: heads arrive in frames between others, so the header clock does not apply after
    /// the first request; PINGs and other frames do not keep the connection open.
    multiplexed: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            // A new connection is receiving its first head.
            head_since: AtomicU64::new(1),
            idle_since: AtomicU64::new(0),
            multiplexed: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn instant(&self, millis: u64) -> Instant {
        self.epoch + Duration::from_millis(millis)
    }

    /// Bytes arrived: between requests, they start the next head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.multiplexed.load(Ordering::Relaxed)
            && self.head_since.load(Ordering::Acquire) == 0
        {
            let _ = self.head_since.compare_exchange(
                0,
                self.now() + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// A request head is complete; the guard marks the request in flight until dropped.
    fn request_started(self: &Arc<Self>, version: http::Version) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        if version >= http::Version::HTTP_2 {
            self.multiplexed.store(true, Ordering::Relaxed);
        }
        InFlight(self.clone())
    }

    fn phase(&self) -> Phase {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Phase::Busy;
        }
        match self.head_since.load(Ordering::Acquire) {
            0 => Phase::Idle(self.instant(self.idle_since.load(Ordering::Acquire))),
            since => Phase::Head(self.instant(since - 1)),
        }
    }
}

/// A request in flight; dropped with the response body (or the unfinished request).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The accepted socket: records bytes read in the connection's [`Activity`] and holds the
/// connection's slot until the socket closes (also after an upgrade hands it to a tunnel).
struct TrackedIo<T> {
    io: T,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// An accepted connection, ready to be served.
struct Accepted {
    builder: Arc<ConnectionBuilder<TokioExecutor>>,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
}

/// How often a connection's watchdog looks at its clocks: a quarter of the shorter of the header
/// and idle timeouts (so each is enforced within a quarter of itself), at least 10 ms.
fn watchdog_tick(limits: &ConnectionLimits) -> Duration {
    (limits.header_read_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(10))
}

impl Accepted {
    /// Serves the connection with the app, or with the overload responder.
    async fn serve<T>(
        self,
        io: T,
        app: Gateway,
        peer: SocketAddr,
        overloaded: bool,
        health_paths: Arc<[String]>,
        certificate: Option<TlsClientCertificate>,
    ) where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.activity.clone();
        let body_timeout = self.limits.body_read_timeout;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let in_flight = activity.request_started(request.version());
            // A forward-auth check is answered from its head; its body is never read.
            let direct = app
                .forward_auth
                .as_ref()
                .filter(|route| !overloaded && request.uri().path() == &*route.path)
                .map(|route| route.state.clone());
            if direct.is_none() {
                request.extensions_mut().insert(ConnectInfo(peer));
                if let Some(certificate) = certificate {
                    request.extensions_mut().insert(certificate);
                }
            }
            let app = app.router.clone();
            let health_paths = health_paths.clone();
            async move {
                if let Some(state) = direct {
                    let response = forward_auth_check(
                        &state,
                        request.method(),
                        request.uri(),
                        request.headers(),
                    )
                    .await;
                    // As axum's router does: a HEAD answer names its (empty) body's length,
                    // which hyper leaves out for HEAD.
                    let mut response = response;
                    if request.method() == http::Method::HEAD
                        && !response
                            .headers()
                            .contains_key(http::header::CONTENT_LENGTH)
                    {
                        if let Some(length) = http_body::Body::size_hint(response.body()).exact() {
                            response
                                .headers_mut()
                                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
                        }
                    }
                    return Ok::<_, Infallible>(response.map(|inner| {
                        Body::new(TrackedBody {
                            inner,
                            _in_flight: in_flight,
                        })
                    }));
                }
                let request = request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
                let close = request.version() < http::Version::HTTP_2;
                let mut response =
                    if !overloaded || health_paths.iter().any(|p| p == request.uri().path()) {
                        app.oneshot(request).await?
                    } else {
                        let mut response = (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "overloaded: too many connections\n",
                        )
                            .into_response();
                        response
                            .headers_mut()
                            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                        response
                    };
                if overloaded && close {
                    response
                        .headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response.map(|inner| {
                    Body::new(TrackedBody {
                        inner,
                        _in_flight: in_flight,
                    })
                }))
            }
        });
        self.watch(io, service).await;
    }

    /// Drives the connection, closing it when a clock of [`ConnectionLimits`] runs out or the
    /// server shuts down (gracefully: requests in flight finish).
    async fn watch<T, S>(self, io: T, service: S)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible>
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let Accepted {
            builder,
            activity,
            limits,
            stopped,
        } = self;
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        if *stopped.borrow() {
            connection.as_mut().graceful_shutdown();
        }
        // The clocks are checked on a tick, not on every request: a request costs the watchdog
        // nothing (no wake-up, no timer, no poll), and a clock runs out at most a tick late.
        let mut watchdog = Watchdog::new(watchdog_tick(&limits), stopped);
        let mut closing: Option<Instant> = None;
        std::future::poll_fn(|cx| loop {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return Poll::Ready(());
            }
            match watchdog.poll_event(cx) {
                None => return Poll::Pending,
                Some(WatchdogEvent::Stop) => {
                    connection.as_mut().graceful_shutdown();
                    continue;
                }
                Some(WatchdogEvent::Tick) => {}
            }
            if let Some(grace) = closing {
                if Instant::now() >= grace {
                    return Poll::Ready(());
                }
                continue;
            }
            match activity.phase() {
                Phase::Head(since) if since.elapsed() >= limits.header_read_timeout => {
                    tracing::debug!("request head not received in time: closing");
                    return Poll::Ready(());
                }
                Phase::Idle(since) if since.elapsed() >= limits.idle_timeout => {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + CLOSE_GRACE);
                }
                _ => {}
            }
        })
        .await;
    }
}

/// Loads a PEM certificate chain and private key into a TLS acceptor (rustls with the AWS-LC
/// provider; HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    tls_acceptor_with_client_ca(cert, key, None)
}

/// Like [`tls_acceptor`], and with `client_ca` the listener asks clients for a certificate and
/// verifies one that is sent against these CAs (PEM): a connection with a certificate they did
/// not issue fails its handshake; a client without one is still served (bearer tokens need
/// none), and a certificate-bound token then finds no certificate.
pub fn tls_acceptor_with_client_ca(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let builder = tokio_rustls::rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no CA certificate", path.display()));
            }
            let verifier =
                tokio_rustls::rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn connection_limit_from_the_descriptor_limit() {
        // 256 descriptors: 64 kept, 16 for the overload reserve; half the rest in proxy mode.
        assert_eq!(derived_max_connections(256, false), 176);
        assert_eq!(derived_max_connections(256, true), 88);
        // A tenth is kept once that is more than 64.
        assert_eq!(derived_max_connections(1024, false), 1024 - 102 - 16);
        assert_eq!(
            derived_max_connections(65_536, true),
            (65_536 - 6_553 - 16) / 2
        );
        // Never zero, never unbounded.
        assert_eq!(derived_max_connections(0, true), 1);
        assert_eq!(derived_max_connections(50, false), 1);
        assert_eq!(derived_max_connections(u64::MAX, false), 1 << 20);
        // A configured limit wins over the derived one.
        let limits = ConnectionLimits {
            max_connections: 7,
            ..ConnectionLimits::default()
        };
        assert_eq!(effective_max_connections(&limits, true), 7);
    }

    #[test]
    fn original_request_conventions() {
        let ok = |pairs| {
            original_request(&headers(pairs))
                .map(|(method, uri)| (method.into_owned(), uri.to_owned()))
        };
        assert_eq!(
            ok(&[("x-forwarded-method", "get"), ("x-forwarded-uri", "/a")]),
            Ok(("GET".into(), "/a".into()))
        );
        assert_eq!(
            ok(&[("x-original-uri", "/a?b")]),
            Ok((String::new(), "/a?b".into()))
        );
        assert_eq!(
            ok(&[("x-original-uri", "/a"), ("x-forwarded-uri", "/a")]),
            Ok((String::new(), "/a".into()))
        );
        // A client copy of the other convention must not choose the checked path.
        assert_eq!(
            ok(&[
                ("x-original-uri", "/api/users"),
                ("x-forwarded-uri", "/public/x")
            ]),
            Err(OriginalRequestError::Conflict)
        );
        assert_eq!(
            ok(&[("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")]),
            Err(OriginalRequestError::Conflict)
        );
        assert_eq!(
            ok(&[
                ("x-original-method", "POST"),
                ("x-forwarded-method", "GET"),
                ("x-original-uri", "/a")
            ]),
            Err(OriginalRequestError::Conflict)
        );
        assert_eq!(
            ok(&[("x-forwarded-method", "GET")]),
            Err(OriginalRequestError::Missing)
        );
    }
}
