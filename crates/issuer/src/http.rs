//! The issuer's HTTP surface: the router, CORS, the discovery documents and the JWKS (with its
//! injected failures), and serving on a listener.
//!
//! CORS, as auth0-spa-js needs it: the token, revocation and userinfo endpoints answer browser
//! pages whose origin a client allows (`allowed_origins`) — the preflight (the SDK's
//! `Auth0-Client` header triggers one) and every response, errors included, carry
//! `Access-Control-Allow-Origin: <origin>`. A registered or metadata-document client (see
//! [`crate::clients`]) allows the origins of its redirect URIs. Discovery, the JWKS and `/register`
//! are public (`*`; none of them reads cookies). Nothing else is readable cross-origin.

use crate::issuer::{Issuer, JwksFailure};
use crate::{admin, authorize, clients, logout, pages, token};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// The body of the `garbage` JWKS failure: announced as JSON, and not JSON.
pub const GARBAGE_JWKS: &str = "{\"keys\": [ <html>jwtgate issuer: injected garbage</html>";

/// The router for `issuer`: every endpoint and the guarded `/admin` routes. Serve it with
/// connection info (see [`serve`]) so the admin guard can see the peer address.
pub fn router(issuer: Issuer) -> Router {
    let admin = admin::routes().layer(middleware::from_fn(admin::guard));
    Router::new()
        .route("/", get(index))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(authorize::login))
        .route("/register", post(clients::register))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/userinfo", get(token::userinfo).post(token::userinfo))
        .route("/v2/logout", get(logout::v2_logout))
        .route(
            "/oidc/logout",
            get(logout::oidc_logout).post(logout::oidc_logout),
        )
        .nest("/admin", admin)
        .layer(middleware::from_fn_with_state(issuer.clone(), cors))
        .layer(middleware::from_fn_with_state(issuer.clone(), log))
        .with_state(issuer)
}

/// Serves `issuer` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    issuer: Issuer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(issuer).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The warning to print when the issuer listens beyond loopback, or `None` on loopback.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "WARNING: the jwtgate issuer is listening on {addr}, beyond loopback. It is a development \
         issuer: anyone who can reach it can sign in as any user without a password and get \
         valid tokens. Listen on 127.0.0.1 unless other machines really must reach it."
    ))
}

async fn log(State(issuer): State<Issuer>, request: Request, next: Next) -> Response {
    if !issuer.shared.log_requests {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    eprintln!("{method} {path} -> {}", response.status().as_u16());
    response
}

enum CorsPolicy {
    Public,
    Clients,
}

async fn cors(State(issuer): State<Issuer>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let policy = if path.starts_with("/.well-known/") || path == "/register" {
        CorsPolicy::Public
    } else if matches!(path, "/oauth/token" | "/oauth/revoke" | "/userinfo") {
        CorsPolicy::Clients
    } else {
        return next.run(request).await;
    };
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let allowed = match policy {
        CorsPolicy::Public => Some(HeaderValue::from_static("*")),
        CorsPolicy::Clients => (issuer.config().allows_origin(&origin)
            || issuer
                .shared
                .clients
                .allows_origin(&origin, issuer.shared.clock.unix()))
        .then(|| HeaderValue::from_str(&origin).ok())
        .flatten(),
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(allowed) = allowed else {
            return (
                StatusCode::FORBIDDEN,
                format!("origin {origin} is not in any client's allowed_origins"),
            )
                .into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Auth0-Client, Authorization, DPoP"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(allowed) = allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        // A browser client reads the server's DPoP nonce from a refusal (RFC 9449 §8).
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce"),
        );
    }
    response
}

fn cacheable_json(issuer: &Issuer, value: serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    let max_age = issuer.config().issuer.jwks_max_age;
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

async fn index(State(issuer): State<Issuer>) -> Response {
    pages::index_page(&issuer)
}

async fn discovery(State(issuer): State<Issuer>) -> Response {
    cacheable_json(&issuer, issuer.discovery())
}

async fn jwks(State(issuer): State<Issuer>) -> Response {
    match issuer.jwks_failure().map(|s| s.failure) {
        Some(JwksFailure::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                axum::Json(serde_json::json!({
                    "error": "injected_failure",
                    "error_description": "the jwtgate issuer was told to fail its JWKS endpoint"
                })),
            )
                .into_response()
        }
        Some(JwksFailure::Garbage) => {
            let mut response = GARBAGE_JWKS.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(JwksFailure::Slow { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            cacheable_json(&issuer, issuer.jwks())
        }
        None => cacheable_json(&issuer, issuer.jwks()),
    }
}

impl Issuer {
    /// The router serving this issuer (see [`router`]).
    pub fn router(&self) -> Router {
        router(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_beyond_loopback_only() {
        assert!(exposure_warning(SocketAddr::from(([127, 0, 0, 1], 4400))).is_none());
        assert!(
            exposure_warning(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 4400))).is_none()
        );
        let warning = exposure_warning(SocketAddr::from(([0, 0, 0, 0], 4400)));
        assert!(warning.is_some_and(|w| w.contains("beyond loopback")));
    }
}
