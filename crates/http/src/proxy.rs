//! Reverse-proxy mode: requests the layer allowed are forwarded to one upstream.
//!
//! Bodies stream in both directions; connections to the upstream are pooled (keep-alive);
//! hop-by-hop headers (and those named in `Connection`, which may not name a header the gateway
//! sets: see [`crate::hygiene`]) are removed; the token itself is not forwarded unless configured
//! — not from `Authorization`, nor from the cookie or query parameter it was read from;
//! method-override and path-override (`X-Original-URL`, `X-Rewrite-URL`) headers and client
//! spellings of `X-Forwarded-*` are removed;
//! `X-Forwarded-For/-Proto/-Host` are set. A WebSocket upgrade passes through once authorised;
//! any other `Upgrade` (`h2c`, …) is refused with 400 and not forwarded. The path sent upstream is
//! the normalised path that the route rules were matched against (the layer's
//! [`CheckedRequest`]), so the upstream serves exactly what was authorised.

use crate::layer::CheckedRequest;
use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jwtgate_engine::bearer::{self, TokenLocations};
use jwtgate_engine::hygiene;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

fn default_connect_timeout() -> u64 {
    2000
}
fn default_response_timeout() -> u64 {
    30_000
}
fn default_max_body() -> usize {
    10 * 1024 * 1024
}

/// `[proxy]`: the upstream and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyOptions {
    /// Upstream base URL (`http://host:port`).
    pub upstream: String,
    /// Forward the `Authorization` header too (default false: the upstream gets identity
    /// headers, not the token).
    #[serde(default)]
    pub forward_token: bool,
    /// Connect timeout in milliseconds (default 2000).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Time to the upstream's response headers in milliseconds (default 30000).
    #[serde(default = "default_response_timeout")]
    pub response_timeout_ms: u64,
    /// Largest request body forwarded, in bytes (default 10 MiB); larger gets 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl ProxyOptions {
    /// Options for `upstream` with every limit at its default (checked by [`Self::validate`]).
    pub fn new(upstream: impl Into<String>) -> ProxyOptions {
        ProxyOptions {
            upstream: upstream.into(),
            forward_token: false,
            connect_timeout_ms: default_connect_timeout(),
            response_timeout_ms: default_response_timeout(),
            max_body_bytes: default_max_body(),
        }
    }

    /// Checks the options; on error returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let uri: Uri = self.upstream.parse().map_err(|_| {
            (
                "upstream".to_owned(),
                format!("{:?} is not a URL", self.upstream),
            )
        })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err((
                "upstream".to_owned(),
                "must be an http://host:port URL".to_owned(),
            ));
        }
        if self.connect_timeout_ms == 0 || self.response_timeout_ms == 0 {
            return Err((
                "connect_timeout_ms".to_owned(),
                "timeouts must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// A pooled HTTP/1.1 client to one upstream.
#[derive(Debug, Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    upstream: Uri,
    options: ProxyOptions,
    forwarded_proto: &'static str,
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(UPGRADE);
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{{\"error\":\"{message}\"}}")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl Proxy {
    /// A proxy to `options.upstream` (validated by the configuration).
    pub fn new(options: ProxyOptions) -> Result<Proxy, String> {
        options
            .validate()
            .map_err(|(key, message)| format!("proxy.{key}: {message}"))?;
        let upstream: Uri = options
            .upstream
            .parse()
            .map_err(|_| "proxy.upstream".to_owned())?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(options.connect_timeout_ms)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Proxy {
            client,
            upstream,
            options,
            forwarded_proto: "http",
        })
    }

    /// Tells the upstream (`X-Forwarded-Proto`) that clients reach the gateway over HTTPS.
    pub fn behind_tls(mut self, tls: bool) -> Proxy {
        self.forwarded_proto = if tls { "https" } else { "http" };
        self
    }

    /// The query string (after `?`, if any) to send upstream: the client's, byte for byte,
    /// less the token parameter (where `locations` read it) unless the token is forwarded.
    fn upstream_query(&self, query: Option<&str>, locations: &TokenLocations) -> String {
        let query = match (query, &locations.query) {
            (Some(query), Some(name)) if !self.options.forward_token => {
                bearer::query_without(query, name)
            }
            (query, _) => query.map(str::to_owned),
        };
        query.map(|q| format!("?{q}")).unwrap_or_default()
    }

    /// Removes the token's cookie (where `locations` read it) from the `Cookie` headers unless
    /// the token is forwarded.
    fn remove_token_cookie(&self, headers: &mut http::HeaderMap, locations: &TokenLocations) {
        let Some(name) = locations.cookie.as_deref() else {
            return;
        };
        if self.options.forward_token {
            return;
        }
        let kept: Vec<HeaderValue> = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| match value.to_str() {
                Ok(text) => bearer::cookie_without(text, name)
                    .and_then(|rest| HeaderValue::from_str(&rest).ok()),
                Err(_) => Some(value.clone()),
            })
            .collect();
        headers.remove(http::header::COOKIE);
        for value in kept {
            headers.append(http::header::COOKIE, value);
        }
    }

    /// Forwards an authorised request; `client` is the peer address for `X-Forwarded-For`.
    pub async fn forward(
        &self,
        mut request: Request<Body>,
        client: Option<SocketAddr>,
    ) -> Response {
        // The layer in front checked this request and says which path it checked; a request
        // that reached the proxy any other way is refused (fail closed).
        let Some(checked) = request.extensions_mut().remove::<CheckedRequest>() else {
            tracing::error!("a request reached the proxy without a decision");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "request not checked");
        };
        let locations = checked.engine.locations();
        let normalized = checked.path;
        let query = self.upstream_query(request.uri().query(), locations);
        let base = self.upstream.path().trim_end_matches('/');
        let uri = format!(
            "{}://{}{base}{normalized}{query}",
            self.upstream.scheme_str().unwrap_or("http"),
            self.upstream.authority().map_or("", |a| a.as_str()),
        );
        let Ok(uri) = uri.parse::<Uri>() else {
            return error_response(StatusCode::BAD_REQUEST, "bad request path");
        };
        let is_upgrade = match hygiene::upgrade_is_websocket(request.headers()) {
            None => false,
            Some(true) => true,
            Some(false) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "only a WebSocket upgrade may pass the gateway",
                )
            }
        };
        let client_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut request));
        let original_host = request.headers().get(HOST).cloned();
        let (mut parts, body) = request.into_parts();
        strip_hop_by_hop(&mut parts.headers, is_upgrade);
        if is_upgrade {
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if !self.options.forward_token {
            parts.headers.remove(http::header::AUTHORIZATION);
        }
        self.remove_token_cookie(&mut parts.headers, locations);
        // The decision was made on the real method and path: no header may make the upstream
        // run another method or serve another path.
        hygiene::remove_overrides(&mut parts.headers);
        // Client spellings (`X_Forwarded_For`) of the forwarding headers the gateway sets.
        hygiene::remove_variant_spellings(&mut parts.headers, &hygiene::FORWARDING_HEADERS);
        if let Some(host) = original_host {
            parts
                .headers
                .insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        parts.headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(self.forwarded_proto),
        );
        if let Some(addr) = client {
            let previous = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("{v}, {}", addr.ip()))
                .unwrap_or_else(|| addr.ip().to_string());
            if let Ok(value) = HeaderValue::from_str(&previous) {
                parts
                    .headers
                    .insert(HeaderName::from_static("x-forwarded-for"), value);
            }
        }
        if let Some(authority) = self.upstream.authority() {
            if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(HOST, value);
            }
        }
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let limited = Limited::new(body, self.options.max_body_bytes);
        let body = Body::new(limited.map_err(axum::Error::new));
        let upstream_request = Request::from_parts(parts, body);
        let timeout = Duration::from_millis(self.options.response_timeout_ms);
        let response = match tokio::time::timeout(timeout, self.client.request(upstream_request))
            .await
        {
            Err(_) => return error_response(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
            Ok(Err(error)) => {
                if is_body_too_large(&error) {
                    return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                }
                tracing::warn!(%error, "upstream request failed");
                return error_response(StatusCode::BAD_GATEWAY, "upstream unavailable");
            }
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let upstream_response = Response::from_parts(parts.clone(), body);
            let upstream_upgrade = hyper::upgrade::on(upstream_response);
            if let Some(client_upgrade) = client_upgrade {
                tokio::spawn(async move {
                    if let (Ok(client_io), Ok(upstream_io)) =
                        (client_upgrade.await, upstream_upgrade.await)
                    {
                        let mut client_io = TokioIo::new(client_io);
                        let mut upstream_io = TokioIo::new(upstream_io);
                        let _ =
                            tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await;
                    }
                });
            }
            return Response::from_parts(parts, Body::empty());
        }
        strip_hop_by_hop(&mut parts.headers, false);
        Response::from_parts(parts, Body::new(body))
    }
}

fn is_body_too_large(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}
