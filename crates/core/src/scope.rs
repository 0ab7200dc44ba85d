//! Scope requirements and how a token grants scopes.
//!
//! A token grants a scope through an exact, case-sensitive entry in the space-delimited `scope`
//! string (RFC 9068 §2.2.3), the `scp` claim (a string or an array, as Okta and Entra ID issue it)
//! or the `permissions` array (Auth0 RBAC). `read:users2` does not grant `read:users`.

use crate::claims::{Claim, ClaimSet, StringItems};
use crate::internal::pieces::NonEmptyPieces;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;

/// Whether every listed scope is required, or any one of them suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeMode {
    /// All scopes must be granted.
    #[default]
    AllOf,
    /// At least one scope must be granted.
    AnyOf,
}

/// The scopes a request needs. An empty requirement is always met.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeRequirement {
    scopes: Vec<String>,
    mode: ScopeMode,
}

impl ScopeRequirement {
    /// Every scope in `scopes` is required.
    pub fn all_of<I, S>(scopes: I) -> ScopeRequirement
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ScopeRequirement {
            scopes: scopes.into_iter().map(Into::into).collect(),
            mode: ScopeMode::AllOf,
        }
    }

    /// Any one scope in `scopes` is enough.
    pub fn any_of<I, S>(scopes: I) -> ScopeRequirement
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ScopeRequirement {
            scopes: scopes.into_iter().map(Into::into).collect(),
            mode: ScopeMode::AnyOf,
        }
    }

    /// The listed scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// All-of or any-of.
    pub fn mode(&self) -> ScopeMode {
        self.mode
    }

    /// True when nothing is required.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// True when `claims` meet the requirement: [`ScopeRequirement::missing`] is empty, found
    /// without gathering the missing scopes.
    #[inline]
    pub fn is_met<C: ClaimSet + ?Sized>(&self, claims: &C) -> bool {
        // Nothing required (most policies): no claim is looked up.
        self.scopes.is_empty() || self.is_met_by(&Grants::of(claims))
    }

    /// [`ScopeRequirement::is_met`] against scope claims already looked up (out of line: the
    /// claims checks that inline `is_met` stay small when nothing is required).
    #[inline(never)]
    pub fn is_met_by(&self, grants: &Grants<'_>) -> bool {
        match self.mode {
            ScopeMode::AllOf => self.scopes.iter().all(|scope| grants.contains(scope)),
            ScopeMode::AnyOf => {
                self.scopes.is_empty() || self.scopes.iter().any(|scope| grants.contains(scope))
            }
        }
    }

    /// The required scopes the claims do not grant; empty when the requirement is met.
    pub fn missing<'a, C: ClaimSet + ?Sized>(&'a self, claims: &C) -> Vec<&'a str> {
        let grants = Grants::of(claims);
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|scope| !grants.contains(scope))
            .collect();
        match self.mode {
            ScopeMode::AnyOf if missing.len() < self.scopes.len() => Vec::new(),
            _ => missing,
        }
    }
}

impl fmt::Display for ScopeRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joiner = match self.mode {
            ScopeMode::AllOf => " ",
            ScopeMode::AnyOf => " | ",
        };
        f.write_str(&self.scopes.join(joiner))
    }
}

/// The claims that grant scopes.
pub const SCOPE_CLAIMS: [&str; 3] = ["scope", "scp", "permissions"];

/// The scope-granting claims of one token, looked up once: a requirement of several scopes,
/// and the list of granted scopes, read them without looking the claims up again (and, for a
/// concrete claim set such as [`crate::Verified`], without a call through `dyn ClaimSet`).
#[derive(Debug, Clone)]
pub struct Grants<'a> {
    scope: &'a str,
    scp: &'a str,
    scp_items: StringItems<'a>,
    permissions: StringItems<'a>,
}

impl<'a> Grants<'a> {
    /// The `scope`, `scp` and `permissions` claims of `claims`.
    #[inline(always)]
    pub fn of<C: ClaimSet + ?Sized>(claims: &'a C) -> Grants<'a> {
        Grants {
            scope: claims.text("scope").unwrap_or_default(),
            scp: claims.text("scp").unwrap_or_default(),
            scp_items: claims.items("scp"),
            permissions: claims.items("permissions"),
        }
    }

    /// True when `wanted` is granted exactly: a word of `scope` or `scp`, or an item of `scp`
    /// or `permissions`.
    pub fn contains(&self, wanted: &str) -> bool {
        has_word(self.scope, wanted)
            || has_word(self.scp, wanted)
            || self.scp_items.contains(wanted)
            || self.permissions.contains(wanted)
    }

    /// Every granted scope, in claim order (`scope`, then `scp`, then `permissions`).
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        words(self.scope)
            .chain(words(self.scp))
            .chain(self.scp_items.clone())
            .chain(self.permissions.clone())
    }
}

/// Every scope the claims grant, in claim order (`scope`, then `scp`, then `permissions`).
pub fn granted<C: ClaimSet + ?Sized>(claims: &C) -> impl Iterator<Item = &str> + '_ {
    Grants::of(claims).iter()
}

/// The space-separated words of `text` (empty ones skipped).
fn words(text: &str) -> NonEmptyPieces<'_> {
    NonEmptyPieces::new(text, b' ')
}

/// True when `word` is one of the space-separated words of `text` (what
/// `words(text).any(|w| w == word)` says: an empty `word` never is). The spaces are found
/// eight bytes at a time, and a word's bytes are compared only when its length matches (scope
/// strings are a few short words: a searcher call per word costs more than the search).
fn has_word(text: &str, word: &str) -> bool {
    let (text, word) = (text.as_bytes(), word.as_bytes());
    if word.is_empty() || word.len() > text.len() {
        return false;
    }
    let is_word =
        |start: usize, end: usize| end - start == word.len() && text.get(start..end) == Some(word);
    let mut start = 0;
    let mut chunks = text.chunks_exact(8);
    let mut base = 0;
    let search = |spaces: u64, base: usize, start: &mut usize| {
        let mut spaces = spaces;
        while spaces != 0 {
            let at = base + spaces.trailing_zeros() as usize / 8;
            if is_word(*start, at) {
                return true;
            }
            *start = at + 1;
            spaces &= spaces - 1;
        }
        false
    };
    for chunk in &mut chunks {
        let bytes = <[u8; 8]>::try_from(chunk).unwrap_or_default();
        if search(space_bytes(bytes), base, &mut start) {
            return true;
        }
        base += 8;
    }
    // The last few bytes, padded with bytes that are not spaces.
    let rest = chunks.remainder();
    let mut bytes = [0u8; 8];
    for (target, &byte) in bytes.iter_mut().zip(rest) {
        *target = byte;
    }
    search(space_bytes(bytes), base, &mut start) || is_word(start, text.len())
}

/// The top bit of each byte of `bytes` (little-endian) that is a space, and no other bit.
#[inline(always)]
fn space_bytes(bytes: [u8; 8]) -> u64 {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    const LOW_SEVEN: u64 = u64::from_ne_bytes([0x7f; 8]);
    // Spaces become zero bytes; a byte's top bit then survives only when it and its low seven
    // bits are all zero (adding 0x7f to the low seven bits never carries into the next byte).
    let zeroed = u64::from_le_bytes(bytes) ^ SPACES;
    !(((zeroed & LOW_SEVEN) + LOW_SEVEN) | zeroed | LOW_SEVEN)
}

/// The most scope entries (across `scope`, `scp` and `permissions`, repeats counted) a token
/// may grant; a token with more is refused as `invalid_token` before any scope is compared.
/// Real tokens carry tens; the cap bounds the work and the size of what is derived from them
/// (identity headers, descriptions) for a token packed with scopes up to the size limit.
pub const MAX_GRANTED_SCOPES: usize = 1024;

/// True when the claims grant more than [`MAX_GRANTED_SCOPES`] entries (stops counting there).
pub fn exceeds_cap<C: ClaimSet>(claims: &C) -> Option<usize> {
    // Most entries each claim could hold: a space-delimited string of `n` bytes has at most
    // `ceil(n / 2)` non-empty entries, an array one per element. Real tokens are far below the
    // cap by this bound alone, so they are never split here.
    let text_bound = |text: &str| text.len().div_ceil(2);
    let bound = |claim: Claim<'_>| match claim {
        Claim::Text(text) => text_bound(text),
        Claim::Strings(items) => items.count(),
        Claim::Json(Value::Array(items)) => items.len(),
        _ => 0,
    };
    // Each claim by its constant name (so that a compact claim set reads its slot directly).
    let total =
        bound(claims.get("scope")) + bound(claims.get("scp")) + bound(claims.get("permissions"));
    if total <= MAX_GRANTED_SCOPES {
        return None;
    }
    let claims: &dyn ClaimSet = claims;
    let over = granted(claims).nth(MAX_GRANTED_SCOPES).is_some();
    over.then(|| granted(claims).count())
}

/// The granted scopes without repeats, in first-seen order (a scope in both `scope` and
/// `permissions` appears once): what descriptions and identity headers show. Linear time.
pub fn distinct<C: ClaimSet + ?Sized>(claims: &C) -> Vec<&str> {
    // A real token's few scopes are compared linearly (no hasher to seed, no table to allocate:
    // a third of the identity headers' cost on the miss path); past `LINEAR_LIMIT` a hash set
    // keeps a token packed with scopes from making this quadratic.
    const LINEAR_LIMIT: usize = 32;
    /// Room for a real token's scopes, made on the first one: one allocation, no growth.
    const FIRST_CAPACITY: usize = 8;
    let grants = Grants::of(claims);
    let mut out: Vec<&str> = Vec::new();
    let mut seen: Option<HashSet<&str>> = None;
    let mut add = |scope| {
        let new = match &mut seen {
            Some(set) => set.insert(scope),
            None => !out.contains(&scope),
        };
        if new {
            if out.capacity() == 0 {
                out.reserve(FIRST_CAPACITY);
            }
            out.push(scope);
            if seen.is_none() && out.len() > LINEAR_LIMIT {
                seen = Some(out.iter().copied().collect());
            }
        }
    };
    // Each claim in its own loop (the order of `Grants::iter`), without a chain of iterators.
    words(grants.scope).for_each(&mut add);
    words(grants.scp).for_each(&mut add);
    grants.scp_items.for_each(&mut add);
    grants.permissions.for_each(&mut add);
    out
}

/// True when the claims grant `scope` exactly.
pub fn grants<C: ClaimSet + ?Sized>(claims: &C, scope: &str) -> bool {
    Grants::of(claims).contains(scope)
}

/// Claims other than the scope claims that contain `scope` (as a string, a space-delimited entry
/// or an array element): a hint that the provider put the permission in the wrong place.
pub fn found_elsewhere<'a>(claims: &'a Map<String, Value>, scope: &str) -> Vec<&'a str> {
    let contains = |value: &Value| match value {
        Value::String(text) => text.split(' ').any(|s| s == scope),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(scope)),
        _ => false,
    };
    claims
        .iter()
        .filter(|(name, value)| !SCOPE_CLAIMS.contains(&name.as_str()) && contains(value))
        .map(|(name, _)| name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn met_exactly_when_nothing_is_missing() {
        let grants_ab = claims(json!({"scope": "a b", "permissions": ["c"]}));
        let none = claims(json!({}));
        let sets: [&[&str]; 6] = [&[], &["a"], &["a", "c"], &["a", "x"], &["x"], &["x", "y"]];
        for scopes in sets {
            for requirement in [
                ScopeRequirement::all_of(scopes.iter().copied()),
                ScopeRequirement::any_of(scopes.iter().copied()),
            ] {
                for claims in [&grants_ab, &none] {
                    assert_eq!(
                        requirement.is_met(claims),
                        requirement.missing(claims).is_empty(),
                        "{requirement:?} {claims:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn all_three_claims_grant() {
        let c =
            claims(json!({"scope":"openid read:users","scp":["a"],"permissions":["write:users"]}));
        assert!(grants(&c, "read:users"));
        assert!(grants(&c, "a"));
        assert!(grants(&c, "write:users"));
        assert!(!grants(&c, "read"));
        assert!(!grants(&c, "Read:Users"));
        let c = claims(json!({"scp":"x y"}));
        assert!(grants(&c, "y"));
    }

    #[test]
    fn words_are_the_non_empty_pieces_between_spaces() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "  a  b  ",
            "read:users write:users",
            "é ü\tx",
            "a\u{a0}b c",
        ] {
            let expected: Vec<&str> = text.split(' ').filter(|s| !s.is_empty()).collect();
            assert_eq!(words(text).collect::<Vec<_>>(), expected, "{text:?}");
            for word in ["", "a", "b", "é", "x", "read:users", "a b", "ab"] {
                assert_eq!(
                    has_word(text, word),
                    expected.contains(&word),
                    "{text:?} {word:?}"
                );
            }
        }
    }

    #[test]
    fn word_match_agrees_with_split_on_texts_of_every_length() {
        // Texts of 0 to 40 characters from an alphabet with bytes one bit away from a space
        // (`!`, `0xA0` in `é`-like and non-breaking-space encodings), so that spaces at every
        // offset of the eight-byte groups, and near misses, are tried.
        let alphabet = [" ", "a", "b", "!", "\u{a0}", "\u{120}", "é", "ab", "  "];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..20_000 {
            let len = next(41);
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let expected: Vec<&str> = text.split(' ').filter(|s| !s.is_empty()).collect();
            let mut wanted: Vec<&str> = expected.clone();
            wanted.extend(["", "a", "ab", "a!", "b", "\u{a0}", "a b", " "]);
            if let Some(first) = expected.first() {
                wanted.push(&first[..first.len() - first.chars().last().map_or(0, char::len_utf8)]);
            }
            for word in wanted {
                assert_eq!(
                    has_word(&text, word),
                    expected.contains(&word),
                    "{text:?} {word:?}"
                );
            }
        }
    }

    #[test]
    fn distinct_keeps_first_seen_order() {
        let c =
            claims(json!({"scope":"openid read:users","permissions":["read:users","write:users"]}));
        assert_eq!(distinct(&c), vec!["openid", "read:users", "write:users"]);
        assert_eq!(granted(&c).count(), 4);
    }

    #[test]
    fn distinct_is_the_same_past_the_linear_limit() {
        // 100 scopes, each granted twice, in both claims: past the switch to a hash set.
        let names: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
        let c = claims(json!({"scope": names.join(" "), "permissions": names.clone()}));
        let expected: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(distinct(&c), expected);
    }

    #[test]
    fn the_cap_counts_every_claim() {
        let many: Vec<String> = (0..MAX_GRANTED_SCOPES).map(|i| format!("s{i}")).collect();
        let at_cap = claims(json!({"scope": many.join(" ")}));
        assert_eq!(exceeds_cap(&at_cap), None);
        let over = claims(json!({"scope": many.join(" "), "permissions": ["x"]}));
        assert_eq!(exceeds_cap(&over), Some(MAX_GRANTED_SCOPES + 1));
    }

    #[test]
    fn the_quick_bound_never_hides_an_entry() {
        // One-character entries pack a string as densely as possible: 2n - 1 bytes for n.
        let dense = |n: usize| vec!["a"; n].join(" ");
        assert_eq!(
            exceeds_cap(&claims(json!({"scope": dense(MAX_GRANTED_SCOPES)}))),
            None
        );
        assert_eq!(
            exceeds_cap(&claims(json!({"scope": dense(MAX_GRANTED_SCOPES + 1)}))),
            Some(MAX_GRANTED_SCOPES + 1)
        );
        let split = claims(json!({"scp": dense(512), "permissions": vec!["p"; 513]}));
        assert_eq!(exceeds_cap(&split), Some(MAX_GRANTED_SCOPES + 1));
        // Extra spaces add bytes, not entries.
        let spaced = claims(json!({"scope": vec!["a"; 1000].join("   ")}));
        assert_eq!(exceeds_cap(&spaced), None);
    }

    #[test]
    fn exact_match_only() {
        let c = claims(json!({"scope":"read:users2 read:user"}));
        assert!(!grants(&c, "read:users"));
    }

    #[test]
    fn all_of_and_any_of() {
        let c = claims(json!({"scope":"a b"}));
        assert!(ScopeRequirement::all_of(["a", "b"]).missing(&c).is_empty());
        assert_eq!(ScopeRequirement::all_of(["a", "c"]).missing(&c), vec!["c"]);
        assert!(ScopeRequirement::any_of(["c", "b"]).missing(&c).is_empty());
        assert_eq!(
            ScopeRequirement::any_of(["c", "d"]).missing(&c),
            vec!["c", "d"]
        );
    }

    #[test]
    fn finds_scopes_in_other_claims() {
        let c = claims(json!({"https://app/roles":["read:users"],"scope":"openid"}));
        assert_eq!(found_elsewhere(&c, "read:users"), vec!["https://app/roles"]);
    }
}
