//! The identity headers a verified request carries to the upstream: subject, issuer, scopes and
//! configured claim → header mappings.
//!
//! Values are sanitised so no claim can smuggle a header: control characters (CR, LF, …) are
//! dropped, non-ASCII is percent-encoded (UTF-8), arrays are joined with spaces, objects become
//! compact JSON, and a value longer than the limit is left out rather than truncated.

use http::{HeaderName, HeaderValue};
use jwtgate_core::Verified;
use serde_json::Value;
use thiserror::Error;

/// Default subject header.
pub const SUBJECT_HEADER: &str = "x-auth-subject";
/// Default issuer header.
pub const ISSUER_HEADER: &str = "x-auth-issuer";
/// Default scopes header.
pub const SCOPES_HEADER: &str = "x-auth-scopes";
/// Default longest header value copied (bytes, after sanitising).
pub const DEFAULT_MAX_VALUE_LEN: usize = 4096;

/// A header name in the configuration is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a valid HTTP header name")]
pub struct BadHeaderName(pub String);

/// Which headers carry the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    subject: HeaderName,
    issuer: HeaderName,
    scopes: HeaderName,
    claims: Vec<(String, HeaderName)>,
    max_value_len: usize,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: HeaderName::from_static(SUBJECT_HEADER),
            issuer: HeaderName::from_static(ISSUER_HEADER),
            scopes: HeaderName::from_static(SCOPES_HEADER),
            claims: Vec::new(),
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }
}

fn header_name(name: &str) -> Result<HeaderName, BadHeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| BadHeaderName(name.to_owned()))
}

impl IdentityHeaders {
    /// Custom names for the three standard headers.
    pub fn with_names(
        subject: &str,
        issuer: &str,
        scopes: &str,
    ) -> Result<IdentityHeaders, BadHeaderName> {
        Ok(IdentityHeaders {
            subject: header_name(subject)?,
            issuer: header_name(issuer)?,
            scopes: header_name(scopes)?,
            ..IdentityHeaders::default()
        })
    }

    /// Adds a mapping from a claim (top-level name) to a header.
    pub fn map_claim(
        mut self,
        claim: &str,
        header: &str,
    ) -> Result<IdentityHeaders, BadHeaderName> {
        self.claims.push((claim.to_owned(), header_name(header)?));
        Ok(self)
    }

    /// Sets the longest value copied.
    pub fn max_value_len(mut self, len: usize) -> IdentityHeaders {
        self.max_value_len = len;
        self
    }

    /// Every header this mapping may set: these are removed from client requests first.
    pub fn names(&self) -> Vec<&HeaderName> {
        let mut names = vec![&self.subject, &self.issuer, &self.scopes];
        names.extend(self.claims.iter().map(|(_, h)| h));
        names
    }

    /// The headers for a verified token.
    pub fn headers_for(&self, verified: &Verified) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        let mut push = |name: &HeaderName, value: &Value| {
            if let Some(value) = sanitize(value, self.max_value_len) {
                out.push((name.clone(), value));
            }
        };
        if let Some(sub) = verified.claims().get("sub") {
            push(&self.subject, sub);
        }
        push(&self.issuer, &Value::String(verified.issuer().to_owned()));
        let scopes = verified.distinct_scopes();
        push(&self.scopes, &Value::String(scopes.join(" ")));
        for (claim, header) in &self.claims {
            if let Some(value) = verified.claims().get(claim) {
                push(header, value);
            }
        }
        out
    }
}

fn flatten(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(flatten).collect::<Vec<_>>().join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Turns a claim value into a safe header value, or `None` when empty or too long.
pub fn sanitize(value: &Value, max_len: usize) -> Option<HeaderValue> {
    let text = flatten(value);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_control() {
            continue;
        }
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    if out.len() > max_len {
        return None;
    }
    HeaderValue::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sanitising() {
        let s = |v: Value| sanitize(&v, 20).map(|h| h.to_str().unwrap_or_default().to_owned());
        assert_eq!(
            s(json!("alice\r\nX-Evil: 1")),
            Some("aliceX-Evil: 1".into())
        );
        assert_eq!(s(json!("José")), Some("Jos%C3%A9".into()));
        assert_eq!(s(json!(["a", "b", 3])), Some("a b 3".into()));
        assert_eq!(s(json!({"k": "v"})), Some("{\"k\":\"v\"}".into()));
        assert_eq!(s(json!(true)), Some("true".into()));
        assert_eq!(s(json!("x".repeat(21))), None);
    }
}
