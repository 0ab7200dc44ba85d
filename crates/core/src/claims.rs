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

/// The [`CAPTURED`] members a verified token keeps: only those present, in document order
/// (thirteen empty slots of `serde_json::Value`, 72 bytes each, would weigh more than an
/// Auth0 token's whole payload).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeptClaims {
    members: Box<[(u8, Value)]>,
}

impl KeptClaims {
    /// Keeps the present members of `captured`, in the document order `order` recorded.
    pub fn new(mut captured: CapturedClaims, order: &[u8]) -> KeptClaims {
        let mut members = Vec::with_capacity(captured.values.iter().flatten().count());
        for &slot in order {
            if let Some(value) = captured
                .values
                .get_mut(usize::from(slot))
                .and_then(Option::take)
            {
                members.push((slot, value));
            }
        }
        // Every present member is in `order`; any other one still comes after them.
        for (slot, value) in captured.values.iter_mut().enumerate() {
            if let (Some(value), Ok(slot)) = (value.take(), u8::try_from(slot)) {
                members.push((slot, value));
            }
        }
        KeptClaims {
            members: members.into_boxed_slice(),
        }
    }

    /// The kept members by name, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.members
            .iter()
            .filter_map(|(slot, value)| Some((*CAPTURED.get(usize::from(*slot))?, value)))
    }

    /// The heap memory held: the member list and the values.
    pub(crate) fn heap_bytes(&self) -> usize {
        if self.members.is_empty() {
            return 0;
        }
        self.members.len() * std::mem::size_of::<(u8, Value)>()
            + BLOCK_OVERHEAD
            + self
                .members
                .iter()
                .map(|(_, value)| value_heap_bytes(value))
                .sum::<usize>()
    }
}

impl ClaimSet for KeptClaims {
    fn claim(&self, name: &str) -> Option<&Value> {
        let slot = CapturedClaims::slot(name)?;
        self.members
            .iter()
            .find(|(kept, _)| usize::from(*kept) == slot)
            .map(|(_, value)| value)
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
