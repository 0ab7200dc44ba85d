//! RFC 6750 §3 answers: the status code, the `WWW-Authenticate: Bearer …` challenge and a small
//! JSON body, built from a rejection.
//!
//! No token at all gets the bare challenge (`Bearer realm="…"`, no error code, §3.1); anything
//! else carries `error` and `error_description`, and 403 adds `scope`. Parameter values are
//! reduced to the characters RFC 6750 allows inside the quoted strings, so no claim or
//! description text can break the header.

use http::{HeaderValue, StatusCode};
use jwtgate_core::{ErrorCode, Reason, Rejection};
use serde_json::json;

/// A refusal ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 400, 401 or 403.
    pub status: StatusCode,
    /// The error code (absent for a request with no token).
    pub code: Option<ErrorCode>,
    /// What was wrong.
    pub description: String,
    /// The `WWW-Authenticate` value.
    pub challenge: String,
    /// A short label for metrics and logs (`missing_token`, `expired`, `insufficient_scope`, …).
    pub kind: &'static str,
}

/// Keeps only the characters allowed in RFC 6750 quoted values (%x20-21 / %x23-5B / %x5D-7E).
pub fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl Denial {
    /// No token at all: 401 with only the realm.
    pub fn missing_token(realm: &str) -> Denial {
        Denial {
            status: StatusCode::UNAUTHORIZED,
            code: None,
            description: "a bearer token is required".to_owned(),
            challenge: format!("Bearer realm=\"{}\"", quoted_safe(realm)),
            kind: "missing_token",
        }
    }

    /// A malformed request (bad `Authorization` header, token in two places): 400.
    pub fn invalid_request(realm: &str, why: &str) -> Denial {
        Denial {
            status: StatusCode::BAD_REQUEST,
            code: Some(ErrorCode::InvalidRequest),
            description: why.to_owned(),
            challenge: format!(
                "Bearer realm=\"{}\", error=\"invalid_request\", error_description=\"{}\"",
                quoted_safe(realm),
                quoted_safe(why)
            ),
            kind: "invalid_request",
        }
    }

    /// A route that nothing may reach (no matching rule, default deny): 403 without a token check.
    pub fn forbidden_route(realm: &str) -> Denial {
        let why = "no route allows this request";
        Denial {
            status: StatusCode::FORBIDDEN,
            code: Some(ErrorCode::InsufficientScope),
            description: why.to_owned(),
            challenge: format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"{why}\"",
                quoted_safe(realm)
            ),
            kind: "no_route",
        }
    }

    /// The answer for a rejected token.
    pub fn from_rejection(realm: &str, rejection: &Rejection) -> Denial {
        let code = rejection.code();
        let description = rejection.description();
        let mut challenge = format!(
            "Bearer realm=\"{}\", error=\"{}\", error_description=\"{}\"",
            quoted_safe(realm),
            code.as_str(),
            quoted_safe(&description)
        );
        if let Reason::InsufficientScope { required, .. } = rejection.reason() {
            let scopes: Vec<&str> = required.scopes().iter().map(String::as_str).collect();
            challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(&scopes.join(" "))));
        }
        Denial {
            status: StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED),
            code: Some(code),
            description,
            challenge,
            kind: rejection.kind(),
        }
    }

    /// The JSON body: `{"error": …, "error_description": …}`.
    pub fn body(&self) -> String {
        json!({
            "error": self.code.map(ErrorCode::as_str),
            "error_description": self.description,
        })
        .to_string()
    }

    /// The challenge as a header value (always valid: built from safe characters).
    pub fn challenge_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.challenge).unwrap_or(HeaderValue::from_static("Bearer"))
    }

    /// The full HTTP response.
    pub fn into_response(self) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::from(self.body()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(http::header::WWW_AUTHENTICATE, self.challenge_value());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Denial::missing_token("api").challenge,
            "Bearer realm=\"api\""
        );
        let d = Denial::invalid_request("api", "bad \"header\"");
        assert_eq!(d.status, 400);
        assert_eq!(
            d.challenge,
            "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"bad 'header'\""
        );
        assert_eq!(quoted_safe("é\\\n"), "?/?");
    }
}
