//! The gateway server: operations endpoints, the forward-auth endpoint, and the reverse proxy
//! behind the same [`AuthLayer`](crate::AuthLayer), with graceful shutdown.

use crate::answer::Denial;
use crate::gatekeeper::{unix_now, Decision, Gatekeeper};
use crate::layer::{add_cors, AuthLayer};
use crate::proxy::{Proxy, ProxyOptions};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Where the server listens and which endpoints it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// Forward-auth path, if enabled.
    pub forward_auth_path: Option<String>,
    /// Status for `invalid_request` at the forward-auth endpoint.
    pub forward_auth_invalid_request_status: u16,
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
}

#[derive(Clone)]
struct AppState {
    gatekeeper: Arc<Gatekeeper>,
    invalid_request_status: StatusCode,
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

/// True for an HTTP method token (RFC 9110 §5.6.2 `tchar`s, at least one).
fn is_method_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// The original method and URI of a forward-auth check, from `X-Forwarded-Method`/`-Uri`
/// (Traefik, Caddy) or `X-Original-Method`/`-URI` (the nginx convention). When both conventions
/// are present they must agree, and none may be repeated: a proxy that passes the client's own
/// copy through (nginx's `auth_request` forwards client headers unless told otherwise) must never
/// let the client choose which path is checked.
fn original_request(headers: &HeaderMap) -> Result<(String, String), OriginalRequestError> {
    let get = |name: &'static str| -> Result<Option<String>, OriginalRequestError> {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(OriginalRequestError::Conflict);
        }
        let Some(first) = first else {
            return Ok(None);
        };
        let text = first
            .to_str()
            .map_err(|_| OriginalRequestError::Unusable(name))?;
        let usable = if name.ends_with("method") {
            is_method_token(text)
        } else {
            text.starts_with('/')
        };
        if !usable {
            return Err(OriginalRequestError::Unusable(name));
        }
        Ok(Some(text.to_owned()))
    };
    let agree = |a: Option<String>, b: Option<String>, ignore_case: bool| match (a, b) {
        (Some(a), Some(b))
            if (ignore_case && !a.eq_ignore_ascii_case(&b)) || (!ignore_case && a != b) =>
        {
            Err(OriginalRequestError::Conflict)
        }
        (a, b) => Ok(a.or(b)),
    };
    let method = agree(get("x-forwarded-method")?, get("x-original-method")?, true)?;
    let uri = agree(get("x-forwarded-uri")?, get("x-original-uri")?, false)?;
    match (method, uri) {
        (Some(method), Some(uri)) => Ok((method.to_ascii_uppercase(), uri)),
        // nginx's auth_request keeps the method of the original request on the subrequest.
        (None, Some(uri)) => Ok((String::new(), uri)),
        _ => Err(OriginalRequestError::Missing),
    }
}

async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let gatekeeper = &state.gatekeeper;
    let headers = request.headers();
    let (method, uri) = match original_request(headers) {
        Ok(original) => original,
        Err(OriginalRequestError::Unusable(name)) => {
            let why = format!(
                "the {name} header is not a usable {}",
                if name.ends_with("method") {
                    "HTTP method"
                } else {
                    "request path (ASCII, starting with '/')"
                }
            );
            let decision =
                gatekeeper.refuse_request(request.method().as_str(), request.uri().path(), &why);
            return render_forward_auth(&state, decision);
        }
        Err(problem) => {
            let description = match problem {
                OriginalRequestError::Missing => {
                    tracing::error!("forward-auth request without X-Forwarded-Uri or X-Original-URI: check the proxy configuration");
                    "the proxy did not send X-Forwarded-Uri or X-Original-URI"
                }
                OriginalRequestError::Conflict | OriginalRequestError::Unusable(_) => {
                    tracing::warn!("forward-auth request with conflicting original-request headers: the proxy passes client copies through");
                    "conflicting X-Forwarded-*/X-Original-* headers: the proxy must clear the client's copies"
                }
            };
            let mut denial = Denial::forbidden_route(gatekeeper.realm());
            denial.description = description.to_owned();
            return denial.into_response();
        }
    };
    let method = if method.is_empty() {
        request.method().as_str().to_owned()
    } else {
        method
    };
    let decision = gatekeeper
        .decide_forward_auth(&method, &uri, headers, unix_now())
        .await;
    render_forward_auth(&state, decision)
}

/// The forward-auth answer for a decision: 200 with the identity headers, or the refusal
/// (`invalid_request` with the configured status).
fn render_forward_auth(state: &AppState, decision: Decision) -> Response {
    match decision {
        Decision::Allow { identity, .. } => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in identity.iter() {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            response
        }
        Decision::Preflight => StatusCode::OK.into_response(),
        Decision::Deny(mut denial) => {
            if denial.status == StatusCode::BAD_REQUEST {
                denial.status = state.invalid_request_status;
            }
            denial.into_response()
        }
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<AppState>) -> Response {
    let registry = state.gatekeeper.registry();
    let pending: Vec<String> = registry
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
        .collect();
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
    let text = state
        .gatekeeper
        .metrics()
        .render(state.gatekeeper.registry());
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
        state.gatekeeper.cors(),
        origin.as_ref(),
        false,
    );
    response
}

/// Builds the router for `options`.
pub fn router(gatekeeper: Arc<Gatekeeper>, options: &ServerOptions) -> Result<Router, String> {
    let state = AppState {
        gatekeeper: gatekeeper.clone(),
        invalid_request_status: StatusCode::from_u16(options.forward_auth_invalid_request_status)
            .map_err(|e| e.to_string())?,
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
    let app = app.with_state(state.clone());
    match &options.proxy {
        Some(proxy_options) => {
            let proxy = Arc::new(
                Proxy::new(proxy_options.clone())?
                    .with_token_locations(gatekeeper.locations().clone())
                    .with_path_policy(*gatekeeper.path_policy()),
            );
            let proxied = Router::new()
                .fallback(move |request: Request<Body>| {
                    let proxy = proxy.clone();
                    let peer = request
                        .extensions()
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0);
                    async move { proxy.forward(request, peer).await }
                })
                .layer(AuthLayer::new(gatekeeper));
            Ok(app.fallback_service(proxied))
        }
        None => {
            let fallback = Router::new().fallback(not_found).with_state(state);
            Ok(app.fallback_service(fallback))
        }
    }
}

/// Loads every issuer's keys once (logging failures: the sources keep retrying) and starts their
/// background refreshers.
pub async fn prepare_keys(gatekeeper: &Gatekeeper) {
    for entry in gatekeeper.registry().entries() {
        let source = entry.source().clone();
        if let Err(error) = source.refresh_now().await {
            tracing::warn!(source = %source.kind(), %error, "initial key fetch failed; will retry");
        }
        tokio::spawn(source.run_refresher());
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Loads a PEM certificate chain and private key into a TLS acceptor (rustls with the AWS-LC
/// provider; HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Like [`serve`], over TLS: each connection is handshaken (10 s limit) and served with HTTP/1.1
/// or HTTP/2; on shutdown the listener closes and connections finish their requests.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                    let Ok(Ok(tls)) = handshake else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        app.clone().oneshot(request.map(Body::new))
                    });
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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
    fn original_request_conventions() {
        let ok = |pairs| original_request(&headers(pairs));
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
