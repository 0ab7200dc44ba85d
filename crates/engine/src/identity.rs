//! The identity headers a verified request carries to the upstream: subject, issuer, scopes and
//! configured claim → header mappings.
//!
//! Values are sanitised so no claim can smuggle a header: control characters (CR, LF, …) are
//! dropped, non-ASCII is percent-encoded (UTF-8), arrays are joined with spaces, objects become
//! compact JSON, and a value longer than the limit is left out rather than truncated.
//!
//! The issuer and scopes values are the same for every token of one issuer and client, and
//! building them (the distinct scopes joined, both values checked and copied) was most of the
//! headers' cost on a cached hit: the last few are kept (`SharedValues`) and found again by
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

/// The most items of `scp` and of `permissions` an entry of [`SharedValues`] is made for (its
/// text is at most the mapping's longest value): it holds at most `SHARED_ENTRIES` × a few KiB.
const SHARED_SCOPES_MAX: usize = 64;

/// The issuer and scopes header values of the last [`SHARED_ENTRIES`] (issuer, scope claims)
/// combinations, each with what it was built from ([`ScopeKey`]). Equal inputs give equal values, so a value
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

/// One (issuer, scope claims) combination and its two header values.
struct SharedEntry {
    key: ScopeKey,
    issuer_value: Option<HeaderValue>,
    scopes_value: Option<HeaderValue>,
}

/// What the issuer and scopes values are built from: the issuer and the three claims that grant
/// scopes as the token has them (`scope` and `scp` as text, `scp` and `permissions` as arrays of
/// strings). The granted scopes are a function of these, so equal keys give equal values, and
/// comparing them costs a few string comparisons instead of splitting `scope` into words.
struct ScopeKey {
    issuer: Box<str>,
    scope: Option<Box<str>>,
    scp_text: Option<Box<str>>,
    scp: Box<[Box<str>]>,
    permissions: Box<[Box<str>]>,
}

impl ScopeKey {
    /// The key of `verified`, or `None` when an array holds more than [`SHARED_SCOPES_MAX`]
    /// items or the text is longer than `limit`.
    fn of(verified: &Verified, limit: usize) -> Option<ScopeKey> {
        let list = |name: &str| {
            let items: Box<[Box<str>]> = verified
                .items(name)
                .take(SHARED_SCOPES_MAX + 1)
                .map(Box::from)
                .collect();
            (items.len() <= SHARED_SCOPES_MAX).then_some(items)
        };
        let key = ScopeKey {
            issuer: verified.issuer().into(),
            scope: verified.text("scope").map(Box::from),
            scp_text: verified.text("scp").map(Box::from),
            scp: list("scp")?,
            permissions: list("permissions")?,
        };
        let text = |s: &Option<Box<str>>| s.as_deref().map_or(0, str::len);
        let len = key.issuer.len()
            + text(&key.scope)
            + text(&key.scp_text)
            + key
                .scp
                .iter()
                .chain(&key.permissions)
                .map(|s| s.len())
                .sum::<usize>();
        (len <= limit).then_some(key)
    }

    /// True when `verified`'s issuer and scope claims are this key.
    fn matches(&self, verified: &Verified) -> bool {
        let same =
            |kept: &[Box<str>], name: &str| kept.iter().map(|s| &**s).eq(verified.items(name));
        *self.issuer == *verified.issuer()
            && self.scope.as_deref() == verified.text("scope")
            && self.scp_text.as_deref() == verified.text("scp")
            && same(&self.scp, "scp")
            && same(&self.permissions, "permissions")
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
        if let Ok(ring) = self.0.read() {
            if let Some(found) = ring
                .entries
                .iter()
                .find(|entry| entry.key.matches(verified))
            {
                return (found.issuer_value.clone(), found.scopes_value.clone());
            }
        }
        let issuer_value = sanitize_text(verified.issuer(), limit);
        let scopes_value = sanitize_text(&verified.distinct_scopes().join(" "), limit);
        if let (Some(key), Ok(mut ring)) = (ScopeKey::of(verified, limit), self.0.write()) {
            let entry = SharedEntry {
                key,
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

/// True when `text` can be a header value as it is: printable ASCII (and spaces) only. One
/// branch-free pass (the compiler vectorises it), not a branch per byte.
fn already_safe(text: &str) -> bool {
    text.bytes().fold(0u8, |unsafe_bytes, b| {
        unsafe_bytes | u8::from(b.wrapping_sub(0x20) > 0x5E)
    }) == 0
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
    fn already_safe_is_printable_ascii_and_space() {
        for c in (0..0x800).filter_map(char::from_u32) {
            let text = format!("a{c}z");
            assert_eq!(
                already_safe(&text),
                (' '..='~').contains(&c),
                "{:#x}",
                c as u32
            );
        }
    }

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
