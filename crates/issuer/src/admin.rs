//! The operator's controls, under `/admin`: key rotation, JWKS failure injection and minting.
//!
//! Only reachable from loopback peers, and never from a browser page: a request with an `Origin`
//! header (which browsers send on every cross-origin and every POST request) is refused, so a web
//! page cannot rotate keys or mint tokens through a developer's browser. The `jwtgate issuer
//! keys|fail-jwks` and `jwtgate mint --url` commands call these endpoints.
//!
//! | method and path | what it does |
//! | --- | --- |
//! | `GET /admin/keys` | list the keys and their states |
//! | `POST /admin/keys/publish-next` | rotation step 1: publish the next key per algorithm |
//! | `POST /admin/keys/activate?grace=S` | step 2: switch to it (generated now if none was published); the old key stays published S seconds |
//! | `POST /admin/keys/retire` | step 3 at once: unpublish the replaced keys |
//! | `GET /admin/jwks-failure` | the failure in force, if any |
//! | `POST /admin/jwks-failure?mode=500&seconds=N` | the JWKS answers that status (any 400–599) for N seconds |
//! | `POST /admin/jwks-failure?mode=slow&delay_ms=D&seconds=N` | the JWKS answers after D ms |
//! | `POST /admin/jwks-failure?mode=garbage&seconds=N` | the JWKS answers 200 with a body that is not JSON |
//! | `DELETE /admin/jwks-failure` | end the failure now |
//! | `POST /admin/mint` | JSON [`crate::MintRequest`] → token response |

use crate::issuer::{Issuer, JwksFailure, MintRequest};
use crate::params::{no_store, Params};
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Default length of an injected failure, in seconds.
pub const DEFAULT_FAILURE_SECONDS: u64 = 60;
/// Default delay of the `slow` failure, in milliseconds.
pub const DEFAULT_SLOW_MS: u64 = 10_000;

fn admin_error(status: StatusCode, description: impl Into<String>) -> Response {
    let code = if status == StatusCode::FORBIDDEN {
        "forbidden"
    } else if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request"
    };
    let mut response = (
        status,
        axum::Json(json!({"error": code, "error_description": description.into()})),
    )
        .into_response();
    no_store(response.headers_mut());
    response
}

fn ok(value: Value) -> Response {
    let mut response = axum::Json(value).into_response();
    no_store(response.headers_mut());
    response
}

/// Lets through only loopback peers without an `Origin` header.
pub(crate) async fn guard(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &())
        .await
        .ok()
        .map(|info| info.0);
    let request = Request::from_parts(parts, body);
    if !peer.is_some_and(|p| p.ip().is_loopback() || p.ip().to_canonical().is_loopback()) {
        return admin_error(
            StatusCode::FORBIDDEN,
            "the admin endpoints answer loopback clients only",
        );
    }
    if request.headers().contains_key(header::ORIGIN) {
        return admin_error(
            StatusCode::FORBIDDEN,
            "the admin endpoints refuse browser requests (Origin header present)",
        );
    }
    next.run(request).await
}

/// The `/admin` routes (without the guard; [`crate::http`] adds it).
pub(crate) fn routes() -> Router<Issuer> {
    Router::new()
        .route("/keys", get(list_keys))
        .route("/keys/publish-next", post(publish_next))
        .route("/keys/activate", post(activate))
        .route("/keys/retire", post(retire))
        .route(
            "/jwks-failure",
            get(failure_status)
                .post(start_failure)
                .delete(clear_failure),
        )
        .route("/mint", post(mint))
}

fn query(query: Option<String>) -> Result<Params, String> {
    Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|name| format!("the parameter {name} is given more than once"))
}

fn number(params: &Params, name: &str) -> Result<Option<u64>, String> {
    match params.get(name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a whole number, not {text:?}")),
    }
}

async fn list_keys(State(issuer): State<Issuer>) -> Response {
    ok(json!({"keys": issuer.keys()}))
}

async fn publish_next(State(issuer): State<Issuer>) -> Response {
    match issuer.publish_next_keys() {
        Ok(kids) => ok(json!({"published": kids, "keys": issuer.keys()})),
        Err(error) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn activate(State(issuer): State<Issuer>, RawQuery(raw): RawQuery) -> Response {
    let grace = match query(raw).and_then(|p| number(&p, "grace")) {
        Ok(g) => g,
        Err(message) => return admin_error(StatusCode::BAD_REQUEST, message),
    };
    match issuer.activate_next_keys(grace) {
        Ok(kids) => ok(json!({"activated": kids, "keys": issuer.keys()})),
        Err(error) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn retire(State(issuer): State<Issuer>) -> Response {
    match issuer.retire_keys() {
        Ok(kids) => ok(json!({"retired": kids, "keys": issuer.keys()})),
        Err(error) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn failure_status(State(issuer): State<Issuer>) -> Response {
    ok(json!({"failure": issuer.jwks_failure()}))
}

/// Parses `mode` (`500`, `slow`, `garbage`, …) and its options into a failure.
pub fn parse_failure(mode: &str, delay_ms: Option<u64>) -> Result<JwksFailure, String> {
    match mode {
        "slow" => Ok(JwksFailure::Slow {
            delay_ms: delay_ms.unwrap_or(DEFAULT_SLOW_MS),
        }),
        "garbage" => Ok(JwksFailure::Garbage),
        status => match status.parse::<u16>() {
            Ok(code) if (400..=599).contains(&code) => Ok(JwksFailure::Status { status: code }),
            _ => Err(format!(
                "mode {mode:?} is not a failure: use an HTTP status 400-599 (e.g. 500), slow or garbage"
            )),
        },
    }
}

async fn start_failure(State(issuer): State<Issuer>, RawQuery(raw): RawQuery) -> Response {
    let parsed = query(raw).and_then(|params| {
        let seconds = number(&params, "seconds")?.unwrap_or(DEFAULT_FAILURE_SECONDS);
        let delay = number(&params, "delay_ms")?;
        Ok((params, seconds, delay))
    });
    let (params, seconds, delay) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return admin_error(StatusCode::BAD_REQUEST, message),
    };
    let Some(mode) = params.get("mode") else {
        return admin_error(
            StatusCode::BAD_REQUEST,
            "mode is missing (500, slow or garbage)",
        );
    };
    match parse_failure(mode, delay) {
        Ok(failure) => {
            let status = issuer.fail_jwks(failure, Duration::from_secs(seconds));
            ok(json!({"failure": status}))
        }
        Err(message) => admin_error(StatusCode::BAD_REQUEST, message),
    }
}

async fn clear_failure(State(issuer): State<Issuer>) -> Response {
    issuer.clear_jwks_failure();
    ok(json!({"failure": null}))
}

async fn mint(State(issuer): State<Issuer>, body: Bytes) -> Response {
    let request: MintRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(error) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a mint request: {error}"),
            )
        }
    };
    match issuer.mint(&request) {
        Ok(response) => ok(json!(response)),
        Err(crate::IssuerError::Request(message)) => admin_error(StatusCode::BAD_REQUEST, message),
        Err(error) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
