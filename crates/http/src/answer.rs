//! RFC 6750 §3 answers over HTTP: a [`Denial`] from the engine rendered as the status code, the
//! `WWW-Authenticate` challenge and a small JSON body — all three from the same fields, so they
//! cannot disagree.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use jwtgate_engine::Denial;

/// The full HTTP answer for a refusal.
pub fn denial_response(denial: &Denial) -> Response {
    let mut response = Response::new(Body::from(denial.body()));
    *response.status_mut() = StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    // Built from RFC 6750-safe characters only; if it ever were not a valid value, the bare
    // scheme still tells the client what to send.
    let challenge =
        HeaderValue::from_str(&denial.challenge()).unwrap_or(HeaderValue::from_static("Bearer"));
    headers.insert(http::header::WWW_AUTHENTICATE, challenge);
    if let Some(nonce) = denial
        .dpop_nonce()
        .and_then(|nonce| HeaderValue::from_str(nonce).ok())
    {
        headers.insert("dpop-nonce", nonce);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}
