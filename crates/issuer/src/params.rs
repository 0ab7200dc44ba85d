//! Request parameters and OAuth error responses shared by the endpoints.
//!
//! Parameters come from a query string or an `application/x-www-form-urlencoded` body (the token
//! endpoint also takes a JSON object, as Auth0 does). A parameter given twice is refused (RFC 6749
//! §3.1 and §3.2); an empty value counts as absent (§3.1).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Decoded parameters, each name at most once.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses URL-encoded `name=value&…`; `Err` names a repeated parameter.
    pub fn parse(input: &[u8]) -> Result<Params, String> {
        let mut map = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(name.into_owned());
            }
        }
        Ok(Params(map))
    }

    /// Parses a JSON object whose members are strings.
    pub fn parse_json(input: &[u8]) -> Result<Params, String> {
        let value: Value =
            serde_json::from_slice(input).map_err(|_| "the body is not JSON".to_owned())?;
        let Value::Object(object) = value else {
            return Err("the body is not a JSON object".into());
        };
        let mut map = BTreeMap::new();
        for (name, value) in object {
            match value {
                Value::String(s) => {
                    map.insert(name, s);
                }
                _ => return Err(format!("parameter {name} must be a string")),
            }
        }
        Ok(Params(map))
    }

    /// The value of `name`, unless absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// An OAuth error response: `{"error", "error_description"}` with the status the RFCs give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The RFC error code.
    pub code: &'static str,
    /// What went wrong, for a developer.
    pub description: String,
    /// Whether a 401 carries `WWW-Authenticate: Basic` (when the client authenticated, or tried
    /// to, with the `Authorization` header: RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// A server nonce for the client's next DPoP proof (`DPoP-Nonce`, RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    /// A 400 error with `code`.
    pub fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        let status = match code {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
            dpop_nonce: None,
        }
    }

    /// The same error with a `DPoP-Nonce` header.
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> OAuthError {
        self.dpop_nonce = nonce;
        self
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    /// `invalid_client` (401).
    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_client", description)
    }

    /// `server_error` (500) for a failure on the issuer's side.
    pub fn server(error: impl std::fmt::Display) -> OAuthError {
        OAuthError::new("server_error", error.to_string())
    }
}

impl From<crate::IssuerError> for OAuthError {
    fn from(error: crate::IssuerError) -> Self {
        match error {
            crate::IssuerError::Store(crate::store::StoreError::Full) => {
                OAuthError::new("temporarily_unavailable", error.to_string())
            }
            other => OAuthError::server(other),
        }
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        no_store(response.headers_mut());
        if let Some(nonce) = self
            .dpop_nonce
            .and_then(|nonce| HeaderValue::from_str(&nonce).ok())
        {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
        if self.status == StatusCode::UNAUTHORIZED && self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"jwtgate issuer\""),
            );
        }
        response
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty_parameters() {
        assert_eq!(Params::parse(b"a=1&a=2").err(), Some("a".to_owned()));
        let p = Params::parse(b"a=&b=x%3D%3D&c=+").unwrap_or_default();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x=="));
        assert_eq!(p.get("c"), Some(" "));
        assert!(Params::parse_json(br#"{"a":1}"#).is_err());
        assert_eq!(
            Params::parse_json(br#"{"grant_type":"x"}"#)
                .unwrap_or_default()
                .get("grant_type"),
            Some("x")
        );
    }

    #[test]
    fn cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; jwtgate_session_1=xyz"),
        );
        assert_eq!(
            cookie(&headers, "jwtgate_session_1").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie(&headers, "b"), None);
    }
}
