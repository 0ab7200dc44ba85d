//! Authorizer events: which kind an event is (from the event itself), and what the decision
//! needs from it — the method ARN (or route ARN) and the bearer token.
//!
//! | kind | recognised by | token from |
//! | --- | --- | --- |
//! | REST `TOKEN` | `"type": "TOKEN"` | `authorizationToken` (`Bearer ` optional) |
//! | REST `REQUEST` | `"type": "REQUEST"`, no `version` | the `Authorization` header |
//! | HTTP API 1.0 | `"type": "REQUEST"`, `"version": "1.0"` | the `Authorization` header |
//! | HTTP API 2.0 | `"version": "2.0"` | the `Authorization` header |
//!
//! Events are read with `aws_lambda_events`' types. Header names are case-insensitive; the
//! headers (REST's `multiValueHeaders` when present, so a repeated `Authorization` is seen as
//! repeated) go to the engine, which finds the token as the gateway does.

use crate::arn::MethodArn;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use http::HeaderMap;
use jwtgate_engine::bearer::{self, BearerToken};
use jwtgate_engine::TokenInput;
use serde_json::Value;
use thiserror::Error;

/// The kind of authorizer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// REST API `TOKEN` authorizer.
    RestToken,
    /// REST API `REQUEST` authorizer (also WebSocket `$connect`).
    RestRequest,
    /// HTTP API, payload format 1.0 (answered like REST).
    HttpApiV1,
    /// HTTP API, payload format 2.0.
    HttpApiV2,
}

impl EventKind {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::RestToken => "rest_token",
            EventKind::RestRequest => "rest_request",
            EventKind::HttpApiV1 => "http_api_v1",
            EventKind::HttpApiV2 => "http_api_v2",
        }
    }
}

/// What the decision needs from an event: the engine's request view is built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerRequest {
    /// The event kind (decides the answer's shape).
    pub kind: EventKind,
    /// The method ARN (`methodArn`, or `routeArn` for HTTP API 2.0): the method and path.
    pub arn: MethodArn,
    /// The request's headers, every value of every name (a `TOKEN` event has none).
    pub headers: HeaderMap,
    /// Where the token is: the headers, or a `TOKEN` event's `authorizationToken`.
    pub token: TokenInput,
    /// `https://host[/stage]`: with the ARN's path, the URI the client used (a DPoP proof's
    /// `htu`); `None` when the event does not say (a `TOKEN` event, or a path that does not end
    /// with the ARN's).
    pub origin: Option<String>,
}

/// An event that is not an authorizer event jwtgate understands.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    /// Not a TOKEN/REQUEST authorizer event of a known payload version.
    #[error("not an API Gateway authorizer event: {0}")]
    Unrecognised(String),
    /// The event has the right type but a field is missing or mistyped.
    #[error("malformed {kind} event: {message}")]
    Malformed {
        /// The kind it claimed to be.
        kind: &'static str,
        /// The deserializer's message.
        message: String,
    },
}

fn typed<T: serde::de::DeserializeOwned>(kind: EventKind, event: Value) -> Result<T, EventError> {
    serde_json::from_value(event).map_err(|e| EventError::Malformed {
        kind: kind.name(),
        message: e.to_string(),
    })
}

fn arn(
    kind: EventKind,
    field: &'static str,
    value: Option<String>,
) -> Result<MethodArn, EventError> {
    let value = value.ok_or(EventError::Malformed {
        kind: kind.name(),
        message: format!("`{field}` is missing"),
    })?;
    MethodArn::parse(&value).map_err(|e| EventError::Malformed {
        kind: kind.name(),
        message: e.to_string(),
    })
}

/// Detects the kind of `event` and takes out the ARN and the token.
pub fn parse(event: Value) -> Result<AuthorizerRequest, EventError> {
    let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
    let (type_, version) = (field("type"), field("version"));
    let kind = match (type_.as_deref(), version.as_deref()) {
        (Some("TOKEN"), _) => EventKind::RestToken,
        (_, Some("2.0")) => EventKind::HttpApiV2,
        (Some("REQUEST"), Some("1.0")) => EventKind::HttpApiV1,
        (Some("REQUEST"), None) => EventKind::RestRequest,
        (type_, version) => {
            return Err(EventError::Unrecognised(format!(
                "type {type_:?}, version {version:?} (expected a TOKEN or REQUEST authorizer event, payload version 1.0 or 2.0)"
            )))
        }
    };
    match kind {
        EventKind::RestToken => {
            let request: ApiGatewayCustomAuthorizerRequest = typed(kind, event)?;
            Ok(AuthorizerRequest {
                kind,
                arn: arn(kind, "methodArn", request.method_arn)?,
                headers: HeaderMap::new(),
                token: TokenInput::Given(token_value(request.authorization_token.as_deref())),
                origin: None,
            })
        }
        EventKind::RestRequest | EventKind::HttpApiV1 => {
            let request: ApiGatewayCustomAuthorizerRequestTypeRequest = typed(kind, event)?;
            // `multiValueHeaders` holds every value of a repeated header (two `Authorization`
            // headers are a malformed request); `headers` only the last of each.
            let headers = if request.multi_value_headers.is_empty() {
                request.headers
            } else {
                request.multi_value_headers
            };
            let arn = arn(kind, "methodArn", request.method_arn)?;
            // API Gateway passes the client's Host; the context's path is the one the client
            // used, stage (or base path) included.
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let origin = request_origin(host, request.request_context.path.as_deref(), &arn);
            Ok(AuthorizerRequest {
                kind,
                arn,
                headers,
                token: TokenInput::FromRequest,
                origin,
            })
        }
        EventKind::HttpApiV2 => {
            let request: ApiGatewayV2CustomAuthorizerV2Request = typed(kind, event)?;
            let arn = arn(kind, "routeArn", request.route_arn)?;
            let origin = request_origin(
                request.request_context.domain_name.clone(),
                request.raw_path.as_deref(),
                &arn,
            );
            Ok(AuthorizerRequest {
                kind,
                arn,
                headers: request.headers,
                token: TokenInput::FromRequest,
                origin,
            })
        }
    }
}

/// A TOKEN event's `authorizationToken`: the value of the configured token-source header. With
/// the `Bearer` scheme it is read like an `Authorization` header; a value without any space is
/// taken as the bare token (for token sources such as `X-Access-Token`).
/// `https://host` plus whatever precedes the ARN's path in the path the client used (the stage
/// or a custom domain's base path), so that origin + ARN path is the URI the client used.
fn request_origin(
    host: Option<String>,
    full_path: Option<&str>,
    arn: &MethodArn,
) -> Option<String> {
    let prefix = full_path?.strip_suffix(arn.path())?;
    let origin = jwtgate_engine::dpop::origin("https", &host?)?;
    Some(format!("{origin}{prefix}"))
}

fn token_value(value: Option<&str>) -> BearerToken {
    match value {
        None | Some("") => BearerToken::Missing,
        Some(text) if !text.contains(' ') => {
            if text.eq_ignore_ascii_case("bearer") {
                BearerToken::Invalid("the Authorization header has the Bearer scheme but no token")
            } else {
                BearerToken::Present(text.to_owned())
            }
        }
        Some(text) => match bearer::parse_authorization(text) {
            BearerToken::Missing => BearerToken::Invalid("the token is not a Bearer token"),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_detected() {
        let token = json!({"type": "TOKEN", "authorizationToken": "Bearer abc",
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"});
        let parsed = parse(token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.kind, EventKind::RestToken);
        assert_eq!(
            parsed.token,
            TokenInput::Given(BearerToken::Present("abc".into()))
        );

        let unknown = parse(json!({"type": "SOMETHING"}));
        assert!(matches!(unknown, Err(EventError::Unrecognised(_))));
        let no_arn = parse(json!({"type": "TOKEN", "authorizationToken": "x"}));
        assert!(
            matches!(&no_arn, Err(EventError::Malformed { message, .. }) if message.contains("methodArn")),
            "{no_arn:?}"
        );
    }

    #[test]
    fn token_values() {
        assert_eq!(token_value(None), BearerToken::Missing);
        assert_eq!(token_value(Some("")), BearerToken::Missing);
        assert_eq!(token_value(Some("abc")), BearerToken::Present("abc".into()));
        assert_eq!(
            token_value(Some("bearer abc")),
            BearerToken::Present("abc".into())
        );
        assert!(matches!(
            token_value(Some("Bearer")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Bearer ")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Basic dXNlcg==")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Bearer a b")),
            BearerToken::Invalid(_)
        ));
    }
}
