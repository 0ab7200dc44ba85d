//! A verified-token cache bounded in bytes, so a client that reuses its token pays for the
//! signature check once, and a working set larger than the cache costs little more than no cache.
//!
//! **Policy: `quick_cache`** (S3-FIFO/CLOCK-Pro style: new entries enter a small cold ring and
//! are promoted to the hot ring only when read again; evicted keys are remembered as "ghosts" so
//! a returning key is admitted hot). A one-off token therefore only ever displaces other one-off
//! tokens, and a scan of many distinct tokens leaves the tokens that are reused in place. Against
//! `moka` (TinyLFU admission, Caffeine's design), measured on this workload (SipHash-keyed `u128`
//! keys, 1 KB values, 5,000-entry budget, one core): a hit 146 ns vs 225 ns, a cyclic scan of
//! 10,000 tokens 303 ns vs 854 ns per lookup-and-insert with the same hit ratio (48% vs 49%), a
//! scan of 200,000 tokens 368 ns vs 1,181 ns. `quick_cache` also runs no background maintenance
//! and has no timer wheel, so its cost stays on the request that pays it; expiry is checked here,
//! on read.
//!
//! **Key: a keyed 128-bit hash of the token, not the token.** The key is a Carter–Wegman
//! construction, as in AES-GCM-SIV: POLYVAL (RFC 8452, the `polyval` crate, carry-less multiply
//! instructions where the CPU has them) over the token zero-padded to 16-byte blocks followed by a
//! block holding its length, under a secret key `H`; then SipHash-2-4 (128-bit output) of those 16
//! bytes under a second secret key. Both keys (32 bytes, `H` never zero) are drawn from the
//! operating system's random source (`getrandom`) when the cache is built (per process, never
//! stored or logged; not aws-lc's DRBG, whose first use seeds a CPU-jitter entropy pool: 420
//! million instructions at start, measured with callgrind).
//!
//! *Why it is safe.* A hit is a key match, so a forged token is admitted only if its key equals
//! that of a cached valid token. Two distinct tokens of at most `s` blocks (with the length
//! block) are encoded as distinct block sequences (their lengths differ, or a block does), and
//! POLYVAL of each is a polynomial in `H` without constant term: they collide only if `H` is a
//! root of their non-zero difference, of degree at most `s`, so with probability at most
//! `s / 2^128` over the secret `H`. Tokens are limited to 64 KiB (`s ≤ 4,097`), so one forged
//! token collides with one given cached token with probability at most `2^-116`, and SipHash-2-4
//! (a pseudo-random function on distinct inputs) adds at most `2^-128` per pair. With `n = 2^20`
//! cached tokens and `2^40` forged requests (a trillion), the chance of one false hit is below
//! `2^-55`; a miss tells the forger only that its token matched none, so adaptive guessing gains
//! nothing over that bound. The SipHash step is what lets nothing about `H` leak: POLYVAL alone is
//! linear in its input, and an attacker who could tell which of its own tokens land in the same
//! table bucket (by timing) would learn equations in `H`; the keys actually used by the table are
//! pseudo-random outputs that say nothing about either key. Keeping a hash instead of the token
//! saves the token's copy (~800 bytes for an Auth0 token) in every entry.
//!
//! *Why this construction.* It costs 1,300 instructions for an Auth0-sized token where SipHash-1-3
//! over the whole token cost 2,200 (callgrind, forward-auth hit path: `bash bench/grpc_callgrind.sh
//! fwd 10`): POLYVAL reads 64 bytes per carry-less-multiply step, and the PRF runs on 16 bytes.
//!
//! **Value: what a hit needs.** The [`Verified`] token, compact (see its doc and
//! `jwtgate_core::claims::CompactClaims`): the captured registered claims every hit reads
//! (`iss`, `aud`, `exp`, `nbf`, `iat`, `sub`, `azp`, `client_id`, `jti`, `scope`/`scp`/
//! `permissions`, `cnf`) as spans of two text buffers — the token's own (`sub`, `jti`, the
//! times) and one shared by every token of the same issuer, audiences, client and scopes,
//! interned in a bounded table — so every per-request check (route audiences and scopes,
//! revocation by `iss`/`sub`/`jti`/`client_id`/`azp`/`iat`, `cnf` for DPoP and mTLS,
//! conditions, `exp`) runs on every hit without a claims map; the decoded payload only when it
//! has claims beyond those (a route's conditions or identity claims may read them). The
//! identity headers are built on each request rather than kept: they would weigh ~370 bytes
//! per entry, as much as the rest of it. That costs the hit path: a whole cached
//! `Engine::decide` went from 6,837 instructions (whole `Verified` and identity kept) to 7,061
//! with the compact `Verified`, and 11,327 with the identity built per request (3,600 of them in
//! `IdentityHeaders::headers_for`; `JWTGATE_BENCH_CELL=base` of `cargo bench -p jwtgate-engine
//! --bench conditions` under callgrind, (count at 10,000 − count at 0) / 10,000). The issuer
//! and scopes values are now kept for the last few (issuer, scopes) combinations (see
//! `identity`), so only the subject's is built per request.
//!
//! **Lifetime.** An entry lives until the token's `exp` or `max_age` after it was verified
//! (default 5 min, bounding how long a key removed from the JWKS keeps admitting cached tokens),
//! whichever comes first; an expired entry is never returned.
//!
//! **Capacity.** `max_bytes` bounds the estimated memory of the entries (each weighed with
//! [`Verified::retained_bytes`] plus the Arc and the cache's bookkeeping, 88 bytes, 83 measured);
//! an optional entry `capacity` bounds the count beside it (each entry then weighs at least
//! `max_bytes / capacity`). An Auth0-shaped RS256 token's entry is weighed 432 bytes and holds
//! 407 bytes of resident memory (`tests/cache_memory.rs`: 50,000 entries, `VmRSS` growth; it
//! was ~2.9 KB before the compact `Verified`: 2,495 for the `Verified`, measured the same way
//! by `crates/core/tests/retained_bytes.rs`, plus the identity headers), so the 46 MiB default
//! holds about 111,000 such tokens. `bench/http.sh` measured the whole gateway at 64.5 MiB peak
//! RSS with a 48 MiB budget full (200,000 tokens rotated); 46 MiB keeps it under 64 MiB.
//!
//! **Thrash.** With 200,000 distinct tokens rotated (more than the cache holds), every request
//! misses and inserts; `bench/http.sh` measured 41.4 µs of server CPU per request against 41.5
//! µs with the cache off (the hand-written FIFO it replaces cost 7 µs more than no cache). Since
//! the cache holds about half of those 200,000, it measured 24.8 µs against 35.6 µs off.

use crate::rules::CacheSection;
use jwtgate_core::Verified;
use polyval::universal_hash::UniversalHash;
use polyval::Polyval;
use quick_cache::sync::Cache;
use quick_cache::{OptionsBuilder, Weighter};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use thiserror::Error;

/// Default memory budget of the cache's entries: 46 MiB, about 111,000 Auth0-shaped tokens,
/// keeps the gateway process under 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 46 * 1024 * 1024;
/// Default longest life of an entry, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 300;
/// The weight of an Auth0-sized entry, for sizing the cache's tables up front.
const TYPICAL_ENTRY_BYTES: u64 = 450;
/// What the cache's own bookkeeping spends per entry beside the value (key, hash slot, ring,
/// ghost): 83 bytes measured (resident memory over 50,000 entries sharing one value).
const ENTRY_OVERHEAD: usize = 88;

/// A cache that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheError {
    /// `max_bytes` or `capacity` is zero: that configuration means "no cache", not an empty one.
    #[error("a cache needs a non-zero max_bytes and capacity (0 disables the cache)")]
    Empty,
    /// `max_age` is not positive.
    #[error("max_age must be positive, not {0}")]
    MaxAge(i64),
    /// The operating system gave no random bytes for the hash key.
    #[error("no random bytes for the cache's hash key")]
    NoRandomness,
}

/// What an entry costs in memory, for the byte bound.
pub trait Retained {
    /// Estimated bytes held by the value (its size and its heap blocks).
    fn retained_bytes(&self) -> usize;
}

impl Retained for Arc<Verified> {
    fn retained_bytes(&self) -> usize {
        // The Arc's two counters beside the value.
        Verified::retained_bytes(self) + 2 * std::mem::size_of::<usize>()
    }
}

/// The longest token the cache keys, in bytes: the collision bound in the module doc assumes it.
/// Longer tokens are not cached (no gateway accepts headers this large by default).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The keyed hash that turns a token into its [`TokenKey`] (see the module doc): POLYVAL under
/// a secret non-zero `H`, then SipHash-2-4 under a second secret key.
#[derive(Clone)]
struct TokenHasher {
    polyval: Polyval,
    finish: SipHasher24,
}

impl TokenHasher {
    /// A hasher under 32 fresh random bytes; a zero `H`, which would map every token to one
    /// key, is drawn again.
    fn random() -> Result<TokenHasher, CacheError> {
        let mut h = [0u8; 16];
        while h == [0u8; 16] {
            getrandom::fill(&mut h).map_err(|_| CacheError::NoRandomness)?;
        }
        let mut finish = [0u8; 16];
        getrandom::fill(&mut finish).map_err(|_| CacheError::NoRandomness)?;
        Ok(TokenHasher {
            polyval: Polyval::new(&h.into()),
            finish: SipHasher24::new_with_key(&finish),
        })
    }

    /// The key of `token`: POLYVAL over its zero-padded blocks and a length block, then the
    /// PRF over those 16 bytes.
    fn key(&self, token: &[u8]) -> TokenKey {
        let mut polyval = self.polyval.clone();
        polyval.update_padded(token);
        let mut length = [0u8; 16];
        length[..8].copy_from_slice(&(token.len() as u64).to_le_bytes());
        polyval.update(&[length.into()]);
        let mut finish = self.finish;
        finish.write(&polyval.finalize());
        TokenKey(finish.finish128().as_u128())
    }
}

/// The cache key: the token's keyed 128-bit hash (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TokenKey(u128);

/// Hashes a [`TokenKey`] for the table by taking 64 of its bits: it is already a keyed hash.
#[derive(Debug, Clone, Copy, Default)]
struct KeyBits;

/// The hasher [`KeyBits`] builds.
#[derive(Debug, Default)]
struct KeyBitsHasher(u64);

impl Hasher for KeyBitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 ^= value as u64;
    }
}

impl BuildHasher for KeyBits {
    type Hasher = KeyBitsHasher;
    fn build_hasher(&self) -> KeyBitsHasher {
        KeyBitsHasher::default()
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    valid_until: i64,
    weight: u64,
}

/// Weighs an entry by the weight computed when it was stored.
#[derive(Debug, Clone, Copy)]
struct EntryWeight;

impl<T> Weighter<TokenKey, Entry<T>> for EntryWeight {
    fn weight(&self, _key: &TokenKey, entry: &Entry<T>) -> u64 {
        entry.weight
    }
}

/// The verified-token cache: token → `T` (by default the verified token). Invariant: it holds
/// something (non-zero byte and entry bounds) and every entry expires (`max_age > 0`).
pub struct TokenCache<T = Arc<Verified>> {
    entries: Cache<TokenKey, Entry<T>, EntryWeight, KeyBits>,
    hasher: TokenHasher,
    max_age: i64,
    max_bytes: u64,
    capacity: Option<usize>,
    min_weight: u64,
}

impl<T> std::fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("max_bytes", &self.max_bytes)
            .field("capacity", &self.capacity)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Retained> TokenCache<T> {
    /// A cache of entries weighing at most `max_bytes` together, at most `capacity` of them
    /// when given, each kept at most `max_age` seconds.
    pub fn new(
        max_bytes: u64,
        capacity: Option<usize>,
        max_age: i64,
    ) -> Result<TokenCache<T>, CacheError> {
        if max_bytes == 0 || capacity == Some(0) {
            return Err(CacheError::Empty);
        }
        if max_age <= 0 {
            return Err(CacheError::MaxAge(max_age));
        }
        let min_weight = capacity.map_or(1, |n| max_bytes.div_ceil(n as u64).max(1));
        let estimated = capacity.map_or(max_bytes / TYPICAL_ENTRY_BYTES, |n| n as u64);
        let options = OptionsBuilder::new()
            .estimated_items_capacity(usize::try_from(estimated.max(1)).unwrap_or(usize::MAX))
            .weight_capacity(max_bytes)
            .build()
            .map_err(|_| CacheError::Empty)?;
        Ok(TokenCache {
            entries: Cache::with_options(options, EntryWeight, KeyBits, Default::default()),
            hasher: TokenHasher::random()?,
            max_age,
            max_bytes,
            capacity,
            min_weight,
        })
    }

    fn key(&self, token: &[u8]) -> TokenKey {
        self.hasher.key(token)
    }

    /// The cached value for exactly `token`, if still valid at `now`.
    pub fn get(&self, token: &[u8], now: i64) -> Option<T> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let key = self.key(token);
        let entry = self.entries.get(&key)?;
        if entry.valid_until <= now {
            self.entries.remove(&key);
            return None;
        }
        Some(entry.value)
    }

    /// Stores `value` for `token`, verified as `verified`, until its `exp` (or `max_age` from
    /// `now`).
    pub fn insert_with(&self, token: &[u8], value: T, verified: &Verified, now: i64) {
        let valid_until = verified.expires_at().min(now.saturating_add(self.max_age));
        if valid_until <= now || token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let weight = (value.retained_bytes() + ENTRY_OVERHEAD) as u64;
        let entry = Entry {
            value,
            valid_until,
            weight: weight.max(self.min_weight),
        };
        self.entries.insert(self.key(token), entry);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The estimated bytes the entries hold now.
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

impl TokenCache<Arc<Verified>> {
    /// Stores a verified token until its `exp` (or `max_age` from `now`).
    pub fn insert(&self, token: &[u8], verified: Arc<Verified>, now: i64) {
        let value = verified.clone();
        self.insert_with(token, value, &verified, now);
    }
}

impl CacheSection {
    /// False when the configuration turns the cache off (`max_bytes = 0` or `capacity = 0`).
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0 && self.capacity != Some(0)
    }

    /// The engine's cache as configured, `None` when turned off.
    pub fn build(&self) -> Result<Option<TokenCache>, CacheError> {
        if !self.enabled() {
            return Ok(None);
        }
        TokenCache::new(self.max_bytes, self.capacity, self.max_age).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgate_core::{Algorithm, KeySet, Policy, SigningKey, Verifier};
    use serde_json::{json, Map};

    const NOW: i64 = 1_700_000_000;

    struct Tokens {
        key: SigningKey,
        verifier: Verifier,
    }

    impl Tokens {
        fn new() -> Tokens {
            let key = SigningKey::generate(Algorithm::ES256, "k").unwrap();
            let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
            let policy = Policy::builder()
                .issuer("https://issuer.example/")
                .audience("api")
                .build()
                .unwrap();
            let verifier = Verifier::new(policy, KeySet::from_json(jwks.as_bytes()).unwrap());
            Tokens { key, verifier }
        }

        /// A signed token for `sub` expiring at `exp`, and its verification.
        fn token(&self, sub: &str, exp: i64) -> (String, Arc<Verified>) {
            let claims = json!({
                "iss": "https://issuer.example/", "aud": "api", "sub": sub,
                "iat": NOW, "exp": exp, "jti": sub, "cnf": {"jkt": "thumbprint"},
            });
            let token = self.key.sign(&Map::new(), &claims).unwrap();
            let verified = Arc::new(self.verifier.verify(token.as_bytes(), NOW).unwrap());
            (token, verified)
        }
    }

    fn cache(max_bytes: u64, capacity: Option<usize>) -> TokenCache {
        TokenCache::new(max_bytes, capacity, DEFAULT_MAX_AGE).unwrap()
    }

    #[test]
    fn a_hit_returns_the_whole_verified_token_for_exactly_that_token() {
        let tokens = Tokens::new();
        let cache = cache(DEFAULT_MAX_BYTES, None);
        let (token, verified) = tokens.token("alice", NOW + 3600);
        let (other, _) = tokens.token("bob", NOW + 3600);
        cache.insert(token.as_bytes(), verified.clone(), NOW);
        let hit = cache.get(token.as_bytes(), NOW + 1).unwrap();
        assert_eq!(hit, verified);
        assert_eq!(hit.claim("jti"), Some(&json!("alice")));
        assert_eq!(hit.claims().get("cnf"), Some(&json!({"jkt": "thumbprint"})));
        assert!(cache.get(other.as_bytes(), NOW + 1).is_none());
        // One byte more or less is another token.
        assert!(cache.get(&token.as_bytes()[1..], NOW + 1).is_none());
        assert!(cache.get(format!("{token}A").as_bytes(), NOW + 1).is_none());
    }

    #[test]
    fn reading_cnf_on_a_hit_does_not_grow_the_entry() {
        // The DPoP binding check reads `cnf` on every request: it is captured, so the full
        // claims map (uncounted by the entry's weight) is not built for it.
        let tokens = Tokens::new();
        let (_, verified) = tokens.token("alice", NOW + 3600);
        let before = verified.retained_bytes();
        assert_eq!(verified.claim("cnf"), Some(&json!({"jkt": "thumbprint"})));
        assert_eq!(verified.retained_bytes(), before);
    }

    #[test]
    fn an_entry_ends_at_exp() {
        let tokens = Tokens::new();
        let cache = cache(DEFAULT_MAX_BYTES, None);
        let (token, verified) = tokens.token("alice", NOW + 60);
        cache.insert(token.as_bytes(), verified, NOW);
        assert!(cache.get(token.as_bytes(), NOW + 59).is_some());
        assert!(cache.get(token.as_bytes(), NOW + 60).is_none());
        assert!(cache.is_empty(), "an expired entry is removed when read");
    }

    #[test]
    fn an_entry_ends_max_age_after_verification() {
        let tokens = Tokens::new();
        let cache: TokenCache = TokenCache::new(DEFAULT_MAX_BYTES, None, 30).unwrap();
        let (token, verified) = tokens.token("alice", NOW + 3600);
        cache.insert(token.as_bytes(), verified, NOW);
        assert!(cache.get(token.as_bytes(), NOW + 29).is_some());
        assert!(cache.get(token.as_bytes(), NOW + 30).is_none());
    }

    #[test]
    fn an_expired_token_is_not_stored() {
        let tokens = Tokens::new();
        let cache = cache(DEFAULT_MAX_BYTES, None);
        let (token, verified) = tokens.token("alice", NOW + 1);
        cache.insert(token.as_bytes(), verified, NOW + 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_byte_budget_bounds_the_entries() {
        let tokens = Tokens::new();
        let (_, sample) = tokens.token("user-00", NOW + 3600);
        let weight = (sample.retained_bytes() + ENTRY_OVERHEAD) as u64;
        let cache = cache(weight * 10, None);
        for i in 0..100 {
            let (token, verified) = tokens.token(&format!("user-{i:02}"), NOW + 3600);
            cache.insert(token.as_bytes(), verified, NOW);
        }
        assert!(cache.weight() <= weight * 10, "{}", cache.weight());
        assert!((1..=10).contains(&cache.len()), "{}", cache.len());
    }

    #[test]
    fn a_capacity_bounds_the_entries_beside_the_bytes() {
        let tokens = Tokens::new();
        let cache = cache(DEFAULT_MAX_BYTES, Some(3));
        for i in 0..20 {
            let (token, verified) = tokens.token(&format!("user-{i:02}"), NOW + 3600);
            cache.insert(token.as_bytes(), verified, NOW);
        }
        assert!((1..=3).contains(&cache.len()), "{}", cache.len());
    }

    #[test]
    fn a_scan_of_one_off_tokens_leaves_reused_tokens_cached() {
        let tokens = Tokens::new();
        let (_, sample) = tokens.token("user-000", NOW + 3600);
        let weight = (sample.retained_bytes() + ENTRY_OVERHEAD) as u64;
        let cache = cache(weight * 100, None);
        let (hot, hot_verified) = tokens.token("hot", NOW + 3600);
        cache.insert(hot.as_bytes(), hot_verified, NOW);
        assert!(cache.get(hot.as_bytes(), NOW).is_some());
        for i in 0..400 {
            let (token, verified) = tokens.token(&format!("user-{i:03}"), NOW + 3600);
            cache.insert(token.as_bytes(), verified, NOW);
            if i % 20 == 0 {
                assert!(cache.get(hot.as_bytes(), NOW).is_some(), "evicted at {i}");
            }
        }
    }

    #[test]
    fn zero_means_no_cache_and_is_not_a_cache() {
        assert_eq!(
            TokenCache::<Arc<Verified>>::new(0, None, 60).err(),
            Some(CacheError::Empty)
        );
        assert_eq!(
            TokenCache::<Arc<Verified>>::new(1 << 20, Some(0), 60).err(),
            Some(CacheError::Empty)
        );
        assert_eq!(
            TokenCache::<Arc<Verified>>::new(1 << 20, None, 0).err(),
            Some(CacheError::MaxAge(0))
        );
        let section = |max_bytes, capacity| CacheSection {
            max_bytes,
            capacity,
            max_age: 60,
        };
        assert!(section(0, None).build().unwrap().is_none());
        assert!(section(1 << 20, Some(0)).build().unwrap().is_none());
        assert!(section(1 << 20, Some(5)).build().unwrap().is_some());
        assert!(CacheSection::default().build().unwrap().is_some());
    }

    #[test]
    fn two_caches_hash_with_different_keys() {
        let a: TokenCache = cache(1 << 20, None);
        let b: TokenCache = cache(1 << 20, None);
        assert_ne!(a.key(b"token"), b.key(b"token"));
        assert_eq!(a.key(b"token"), a.key(b"token"));
    }

    #[test]
    fn tokens_that_pad_alike_have_different_keys() {
        // Zero padding alone would give these one POLYVAL block sequence: the length block is
        // what tells them apart.
        let cache: TokenCache = cache(1 << 20, None);
        let keys = [
            cache.key(b""),
            cache.key(b"\0"),
            cache.key(b"ab"),
            cache.key(b"ab\0"),
            cache.key(b"ab\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            cache.key(&[0u8; 16]),
            cache.key(&[0u8; 32]),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_token_over_the_limit_is_never_cached() {
        let tokens = Tokens::new();
        let cache = cache(1 << 20, None);
        let (token, verified) = tokens.token("alice", NOW + 600);
        let long = format!("{token}{}", "A".repeat(MAX_TOKEN_BYTES));
        cache.insert(long.as_bytes(), verified, NOW);
        assert!(cache.is_empty());
        assert!(cache.get(long.as_bytes(), NOW).is_none());
    }

    proptest::proptest! {
        #[test]
        fn distinct_tokens_have_distinct_keys(
            tokens in proptest::collection::hash_set(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..64)
        ) {
            let cache: TokenCache = cache(1 << 20, None);
            let keys: std::collections::HashSet<TokenKey> =
                tokens.iter().map(|token| cache.key(token)).collect();
            proptest::prop_assert_eq!(keys.len(), tokens.len());
            for token in &tokens {
                proptest::prop_assert_eq!(cache.key(token), cache.key(token));
            }
        }
    }
}
