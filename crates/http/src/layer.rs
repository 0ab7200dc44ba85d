//! The tower [`Layer`] that puts jwtgate in front of any service, and the axum extractor that
//! hands the verified token to handlers.
//!
//! The layer asks the engine ([`jwtgate_engine::Engine::decide`]) and renders the outcome; it
//! decides nothing itself. Allowed requests reach the inner service with client-sent identity
//! headers (in every spelling) removed, the verified identity headers added, and the
//! [`VerifiedToken`] and the [`CheckedRequest`] in the request extensions; refused ones get the
//! RFC 6750 answer without reaching it. With CORS configured, preflights from allowed origins are
//! answered here and every answer to an allowed origin (refusals included, so the SPA can read
//! `WWW-Authenticate`) carries the CORS headers.

use crate::answer::denial_response;
use crate::shared::SharedEngine;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use jwtgate_core::Verified;
use jwtgate_engine::mtls::CertificateThumbprint;
use jwtgate_engine::{hygiene, Inspection, RequestBody, TokenInput};
use jwtgate_engine::{unix_now, Allow, Cors, Denial, Engine, FrontEnd, Outcome, RequestView};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The verified token of the current request (in request extensions after [`AuthLayer`]).
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub Arc<Verified>);

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedToken>()
            .cloned()
            .ok_or_else(|| denial_response(&Denial::missing_token("jwtgate")))
    }
}

/// The client certificate the TLS listener verified on the request's connection (in request
/// extensions): the layer hands it to the engine for certificate-bound tokens (RFC 8705). The
/// gateway's listener inserts it; a server embedding the layer with its own TLS may insert it
/// too (the SHA-256 of the leaf certificate's DER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsClientCertificate(pub CertificateThumbprint);

/// What the layer checked, for the service behind it (the reverse proxy sends exactly this
/// path upstream, and removes the token from where this engine reads it).
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    /// The engine that decided.
    pub engine: Arc<Engine>,
    /// The normalised path the routes were matched against.
    pub path: String,
}

/// Adds jwtgate's decision in front of a service.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    engine: Arc<SharedEngine>,
    scheme: &'static str,
}

impl AuthLayer {
    /// A layer deciding with `engine`.
    pub fn new(engine: Arc<Engine>) -> AuthLayer {
        AuthLayer::shared(SharedEngine::shared(engine))
    }

    /// A layer deciding with whatever engine `engine` holds at each request (hot reload).
    pub fn shared(engine: Arc<SharedEngine>) -> AuthLayer {
        AuthLayer {
            engine,
            scheme: "http",
        }
    }

    /// Says whether requests reach the layer over TLS: the scheme of the request URI a DPoP
    /// proof is checked against (when `[server] public_url` does not name it).
    pub fn over_tls(mut self, tls: bool) -> AuthLayer {
        self.scheme = if tls { "https" } else { "http" };
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            engine: self.engine.clone(),
            scheme: self.scheme,
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    engine: Arc<SharedEngine>,
    scheme: &'static str,
}

/// Applies an allow outcome to a request: strips every header the client sent whose name reads
/// as an identity header to some server (any case, `_` for `-`: see
/// [`jwtgate_engine::hygiene`]) and the configured client-certificate header (it is for
/// jwtgate, not upstream), then adds the verified ones and stores the verified token and the
/// checked path.
pub fn apply_identity<B>(request: &mut Request<B>, engine: &Arc<Engine>, allow: Allow) {
    hygiene::remove_spoofed(request.headers_mut(), engine.protected_headers());
    for (name, value) in allow.identity {
        request.headers_mut().insert(name, value);
    }
    if let Some(verified) = allow.verified {
        request.extensions_mut().insert(VerifiedToken(verified));
    }
    request.extensions_mut().insert(CheckedRequest {
        engine: engine.clone(),
        path: allow.path,
    });
}

/// Adds CORS response headers when the request's origin is allowed.
pub fn add_cors(
    headers: &mut HeaderMap,
    cors: Option<&Cors>,
    origin: Option<&HeaderValue>,
    preflight: bool,
) {
    let (Some(cors), Some(origin)) = (cors, origin) else {
        return;
    };
    if !origin.to_str().is_ok_and(|o| cors.allows(o)) {
        return;
    }
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, DPoP-Nonce"),
    );
    if preflight {
        let join = |items: &[String]| HeaderValue::from_str(&items.join(", ")).ok();
        if let Some(methods) = join(&cors.methods) {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(allowed) = join(&cors.headers) {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if let Ok(max_age) = HeaderValue::from_str(&cors.max_age.to_string()) {
            headers.insert(http::header::ACCESS_CONTROL_MAX_AGE, max_age);
        }
    }
}

/// Sets `DPoP-Nonce` on a successful answer when the engine rotated a nonce to the client
/// (RFC 9449 §8.2), replacing any the upstream set.
pub fn add_dpop_nonce(headers: &mut HeaderMap, nonce: Option<&str>) {
    if let Some(value) = nonce.and_then(|nonce| HeaderValue::from_str(nonce).ok()) {
        headers.insert("dpop-nonce", value);
    }
}

/// The empty 204 answer to an allowed preflight.
pub fn preflight_response(engine: &Engine, origin: Option<&HeaderValue>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    add_cors(response.headers_mut(), engine.cors(), origin, true);
    response
}

/// The engine's view of a request the layer passes on itself.
fn inline_view<'a>(
    method: &'a str,
    target: &'a str,
    headers: &'a HeaderMap,
    origin: Option<&'a str>,
    client_certificate: Option<CertificateThumbprint>,
    now: i64,
) -> RequestView<'a> {
    RequestView {
        front: FrontEnd::Inline,
        method,
        target,
        headers: headers.into(),
        origin,
        token: TokenInput::FromRequest,
        client_certificate,
        now,
    }
}

/// Reads a request body of at most `limit` bytes for the engine's MCP inspection: the bytes,
/// or `None` when it is longer (or fails to arrive).
async fn read_limited<B>(body: B, limit: usize) -> Option<bytes::Bytes>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit))
        .await
        .ok()
        .map(http_body_util::Collected::to_bytes)
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + From<bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        // The service that was polled ready is the one that must be called.
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let engine = self.engine.load();
        let scheme = self.scheme;
        Box::pin(async move {
            let target = request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |pq| pq.as_str().to_owned(),
            );
            let origin = request.headers().get(http::header::ORIGIN).cloned();
            let authority = request.uri().authority().map(|a| a.as_str()).or_else(|| {
                request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            });
            let request_origin = authority
                .filter(|_| jwtgate_engine::dpop::carries_proof(request.headers()))
                .and_then(|authority| jwtgate_engine::dpop::origin(scheme, authority));
            let method = request.method().as_str().to_owned();
            let now = unix_now();
            let certificate = request
                .extensions()
                .get::<TlsClientCertificate>()
                .map(|certificate| certificate.0);
            let mut inspection = engine
                .decide_with_body(
                    &inline_view(
                        &method,
                        &target,
                        request.headers(),
                        request_origin.as_deref(),
                        certificate,
                        now,
                    ),
                    RequestBody::Deferred,
                )
                .await;
            if let Inspection::ReadBody { limit } = inspection {
                // An MCP route asks for the body: read it whole (bounded), decide on exactly
                // those bytes, and forward exactly those bytes.
                let (parts, body) = request.into_parts();
                let bytes = read_limited(body, limit).await;
                let read = match &bytes {
                    Some(bytes) => RequestBody::Read(bytes),
                    None => RequestBody::TooLarge,
                };
                inspection = engine
                    .decide_with_body(
                        &inline_view(
                            &method,
                            &target,
                            &parts.headers,
                            request_origin.as_deref(),
                            certificate,
                            now,
                        ),
                        read,
                    )
                    .await;
                request = Request::from_parts(parts, B::from(bytes.unwrap_or_default()));
            }
            let outcome = match inspection {
                Inspection::Decided(outcome) => outcome,
                Inspection::ReadBody { .. } => {
                    engine.refuse(&method, &target, Denial::body_unavailable(engine.realm()))
                }
            };
            match outcome {
                Outcome::Preflight => Ok(preflight_response(&engine, origin.as_ref())),
                Outcome::Deny(denial) => {
                    let mut response = denial_response(&denial);
                    add_cors(
                        response.headers_mut(),
                        engine.cors(),
                        origin.as_ref(),
                        false,
                    );
                    Ok(response)
                }
                Outcome::Allow(allow) => {
                    let nonce = allow.dpop_nonce.clone();
                    let mcp_principal = allow.verified.clone().filter(|_| allow.mcp);
                    apply_identity(&mut request, &engine, allow);
                    let mut response = inner.call(request).await?;
                    add_dpop_nonce(response.headers_mut(), nonce.as_deref());
                    if let Some(verified) = mcp_principal {
                        let session = response
                            .headers()
                            .get(jwtgate_engine::mcp::SESSION_HEADER)
                            .and_then(|v| v.to_str().ok());
                        if let Some(session) = session {
                            engine.bind_mcp_session(session, &verified);
                        }
                    }
                    add_cors(
                        response.headers_mut(),
                        engine.cors(),
                        origin.as_ref(),
                        false,
                    );
                    Ok(response)
                }
            }
        })
    }
}
