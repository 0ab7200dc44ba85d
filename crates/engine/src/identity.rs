//! The identity headers a verified request carries to the upstream: subject, issuer, scopes and
//! configured claim → header mappings.
//!
//! Values are sanitised so no claim can smuggle a header: control characters (CR, LF, …) are
//! dropped, non-ASCII is percent-encoded (UTF-8), arrays are joined with spaces, objects become
//! compact JSON, and a value longer than the limit is left out rather than truncated.
//!
//! The issuer and scopes values are the same for every token of one issuer and client, and
//! building them (the distinct scopes joined, both values checked and copied) was most of the
//! headers' cost on a cached hit: the last few are kept ([`SharedValues`]) and found again by
//! comparing the token's issuer and granted scopes with what they were built from.

use http::{HeaderName, HeaderValue};
use jwtgate_core::Verified;
use serde_json::Value;
use std::sync::RwLock;
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
    shared: SharedValues,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: HeaderName::from_static(SUBJECT_HEADER),
            issuer: HeaderName::from_static(ISSUER_HEADER),
            scopes: HeaderName::from_static(SCOPES_HEADER),
            claims: Vec::new(),
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            shared: SharedValues::default(),
        }
    }
}

/// How many (issuer, scopes) combinations [`SharedValues`] keeps.
const SHARED_ENTRIES: usize = 8;

/// The most scopes, and the longest issuer and scopes text, an entry of [`SharedValues`] is made
/// for: it holds at most `SHARED_ENTRIES` × a few KiB.
const SHARED_SCOPES_MAX: usize = 64;

/// The issuer and scopes header values of the last [`SHARED_ENTRIES`] (issuer, granted scopes)
/// combinations, each with what it was built from. Equal inputs give equal values, so a value
/// found here is the one that would be built. A value of the mapping, not of its configuration:
/// a copy starts empty, and two mappings compare equal whatever they keep.
///
/// Read under a shared lock (every worker thread at once); written under the exclusive one when
/// a combination is not found.
#[derive(Default)]
struct SharedValues(RwLock<SharedRing>);

/// The entries of [`SharedValues`], replaced oldest first.
#[derive(Default)]
struct SharedRing {
    entries: Vec<SharedEntry>,
    next: usize,
}

/// One (issuer, granted scopes) combination and its two header values.
struct SharedEntry {
    issuer: Box<str>,
    scopes: Box<[Box<str>]>,
    issuer_value: Option<HeaderValue>,
    scopes_value: Option<HeaderValue>,
}

impl SharedEntry {
    /// True when this entry was built from `issuer` and `scopes` (granted, in order).
    fn matches(&self, issuer: &str, scopes: &[&str]) -> bool {
        *self.issuer == *issuer
            && self.scopes.len() == scopes.len()
            && self
                .scopes
                .iter()
                .zip(scopes)
                .all(|(kept, scope)| **kept == **scope)
    }
}

impl Clone for SharedValues {
    fn clone(&self) -> Self {
        SharedValues::default()
    }
}

impl PartialEq for SharedValues {
    fn eq(&self, _: &SharedValues) -> bool {
        true
    }
}

impl Eq for SharedValues {}

impl std::fmt::Debug for SharedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedValues")
    }
}

impl SharedValues {
    /// The issuer and scopes values for `verified`, kept or built (with `limit`, the mapping's
    /// longest value: it does not change while the mapping lives).
    fn for_token(
        &self,
        verified: &Verified,
        limit: usize,
    ) -> (Option<HeaderValue>, Option<HeaderValue>) {
        let issuer = verified.issuer();
        // The granted scopes listed once (on the stack), for every entry to compare with; a
        // token with more than an entry may hold is built from without the kept entries.
        let mut listed = [""; SHARED_SCOPES_MAX];
        let mut count = 0;
        let mut more = false;
        for scope in verified.scopes() {
            match listed.get_mut(count) {
                Some(slot) => *slot = scope,
                None => {
                    more = true;
                    break;
                }
            }
            count += 1;
        }
        let scopes = &listed[..count];
        if !more {
            if let Ok(ring) = self.0.read() {
                if let Some(found) = ring.entries.iter().find(|e| e.matches(issuer, scopes)) {
                    return (found.issuer_value.clone(), found.scopes_value.clone());
                }
            }
        }
        let issuer_value = sanitize_text(issuer, limit);
        let scopes_value = sanitize_text(&verified.distinct_scopes().join(" "), limit);
        let small = !more && issuer.len() + scopes.iter().map(|s| s.len()).sum::<usize>() <= limit;
        if let (true, Ok(mut ring)) = (small, self.0.write()) {
            let entry = SharedEntry {
                issuer: issuer.into(),
                scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
                issuer_value: issuer_value.clone(),
                scopes_value: scopes_value.clone(),
            };
            let slot = ring.next;
            ring.next = (slot + 1) % SHARED_ENTRIES;
            if slot < ring.entries.len() {
                ring.entries[slot] = entry;
            } else {
                ring.entries.push(entry);
            }
        }
        (issuer_value, scopes_value)
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
        self.shared = SharedValues::default();
        self
    }

    /// Every header this mapping may set: these are removed from client requests first.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> + Clone + '_ {
        [&self.subject, &self.issuer, &self.scopes]
            .into_iter()
            .chain(self.claims.iter().map(|(_, h)| h))
    }

    /// The headers for a verified token. Subject, issuer and scopes come from the claims
    /// verification captured; only configured extra claims may build the full claims map.
    pub fn headers_for(&self, verified: &Verified) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3 + self.claims.len());
        let limit = self.max_value_len;
        // A string subject is sanitised from its text (no JSON value built on the request path).
        let subject = match verified.text("sub") {
            Some(text) => sanitize_text(text, limit),
            None => verified
                .claim_value("sub")
                .and_then(|sub| sanitize(&sub, limit)),
        };
        if let Some(value) = subject {
            out.push((self.subject.clone(), value));
        }
        let (issuer, scopes) = self.shared.for_token(verified, limit);
        if let Some(value) = issuer {
            out.push((self.issuer.clone(), value));
        }
        if let Some(value) = scopes {
            out.push((self.scopes.clone(), value));
        }
        for (claim, header) in &self.claims {
            if let Some(value) = verified
                .claim_value(claim)
                .and_then(|value| sanitize(&value, limit))
            {
                out.push((header.clone(), value));
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

/// True when `text` can be a header value as it is: printable ASCII (and spaces) only.
fn already_safe(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7F).contains(&b))
}

/// Turns a claim value into a safe header value, or `None` when empty or too long.
pub fn sanitize(value: &Value, max_len: usize) -> Option<HeaderValue> {
    if let Value::String(text) = value {
        // The common case — an ASCII subject or issuer — needs no rewriting.
        if already_safe(text) {
            return (text.len() <= max_len)
                .then(|| HeaderValue::from_str(text).ok())
                .flatten();
        }
    }
    sanitize_text(&flatten(value), max_len)
}

/// Sanitises arbitrary text (control characters dropped, non-ASCII percent-encoded).
pub fn sanitize_text(text: &str, max_len: usize) -> Option<HeaderValue> {
    if already_safe(text) {
        return (text.len() <= max_len)
            .then(|| HeaderValue::from_str(text).ok())
            .flatten();
    }
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
