//! Access to a token's claims by name, from either the full claims map or the handful of members
//! the request path captures.
//!
//! Verifying a token needs about a dozen registered claims; building a map of every claim costs
//! more than all other parsing together. So the request path validates the whole payload
//! strictly but keeps only [`CAPTURED`] members, and the full map is built when someone asks for
//! it (an application reading custom claims, a diagnostic after a failure).

use serde_json::{Map, Value};

/// Looks up claims by name.
pub trait ClaimSet {
    /// The claim's value, when present.
    fn claim(&self, name: &str) -> Option<&Value>;

    /// Every claim, when this set holds them all (diagnostics that scan all claims need it).
    fn as_map(&self) -> Option<&Map<String, Value>> {
        None
    }
}

impl ClaimSet for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }

    fn as_map(&self) -> Option<&Map<String, Value>> {
        Some(self)
    }
}

/// The claims the policy checks and the gateway's identity headers read, kept on the request
/// path (diagnostics that need more, such as ID-token signs, use the full map). `cnf` is read
/// for every request (DPoP binding): capturing it keeps the full map from being built for each
/// token (about 2 KB held per cached token, and its parse on every miss).
pub const CAPTURED: [&str; 13] = [
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "sub",
    "azp",
    "client_id",
    "jti",
    "scope",
    "scp",
    "permissions",
    "cnf",
];

/// The [`CAPTURED`] members of one claims set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedClaims {
    values: [Option<Value>; CAPTURED.len()],
}

impl CapturedClaims {
    /// The slot of a captured claim name (its index in [`CAPTURED`]).
    pub fn slot(name: &str) -> Option<usize> {
        // A match compiles to a length switch and one comparison, not a scan of the list.
        Some(match name {
            "iss" => 0,
            "aud" => 1,
            "exp" => 2,
            "nbf" => 3,
            "iat" => 4,
            "sub" => 5,
            "azp" => 6,
            "client_id" => 7,
            "jti" => 8,
            "scope" => 9,
            "scp" => 10,
            "permissions" => 11,
            "cnf" => 12,
            _ => return None,
        })
    }

    /// The slots, for [`crate::internal::json::scan_object`] to fill.
    pub fn slots_mut(&mut self) -> &mut [Option<Value>] {
        &mut self.values
    }
}

/// What the allocator spends on one heap block beyond its contents (glibc: a 16-byte header,
/// sizes rounded up to 16).
pub(crate) const BLOCK_OVERHEAD: usize = 16;

/// The heap memory held by `value`: each block with [`BLOCK_OVERHEAD`].
pub(crate) fn value_heap_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.capacity() + BLOCK_OVERHEAD,
        Value::Array(items) => {
            items.capacity() * std::mem::size_of::<Value>()
                + BLOCK_OVERHEAD
                + items.iter().map(value_heap_bytes).sum::<usize>()
        }
        Value::Object(map) => map_heap_bytes(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// The heap memory held by a claims map (B-tree nodes estimated per entry).
pub(crate) fn map_heap_bytes(map: &serde_json::Map<String, Value>) -> usize {
    map.iter()
        .map(|(name, value)| {
            name.capacity()
                + BLOCK_OVERHEAD
                + std::mem::size_of::<(String, Value)>()
                + value_heap_bytes(value)
        })
        .sum()
}

impl CapturedClaims {
    /// The heap memory held by the captured values.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.values.iter().flatten().map(value_heap_bytes).sum()
    }
}

impl ClaimSet for CapturedClaims {
    fn claim(&self, name: &str) -> Option<&Value> {
        Self::slot(name).and_then(|slot| self.values[slot].as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_list() {
        for (index, name) in CAPTURED.iter().enumerate() {
            assert_eq!(CapturedClaims::slot(name), Some(index));
        }
        assert_eq!(CapturedClaims::slot("nonce"), None);
    }
}
