//! A bounded cache of verified tokens, so a client that reuses its token pays for the signature
//! check once.
//!
//! Entries are keyed by the token itself in a hash map with a per-process random key (SipHash),
//! so a lookup hashes the token once and a hit always compares the whole token: no collision can
//! admit another token, and nobody can precompute colliding tokens to slow the map down. An entry
//! lives until the token's `exp` or `max_age` (default 5 min, bounding how long a key removed
//! from the JWKS keeps admitting cached tokens), whichever comes first. Memory is bounded by the
//! entry count: when full, the oldest entry is evicted.
//!
//! The cached value is generic: the gateway keeps the finished identity headers next to the
//! verified token, so a hit rebuilds nothing.

use jwtgate_core::Verified;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Default number of entries: the gateway peaked at 31 MiB with the cache full of Auth0-sized
/// tokens (measured with `bench/http.sh`), well under a 64 MiB budget.
pub const DEFAULT_CAPACITY: usize = 5_000;
/// Default longest life of an entry, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 300;

struct Entry<T> {
    value: T,
    valid_until: i64,
}

struct Inner<T> {
    map: HashMap<Arc<[u8]>, Entry<T>>,
    order: VecDeque<Arc<[u8]>>,
}

/// The verified-token cache: token → `T` (by default the verified token).
pub struct TokenCache<T = Arc<Verified>> {
    capacity: usize,
    max_age: i64,
    inner: Mutex<Inner<T>>,
}

impl<T> std::fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<T: Clone> TokenCache<T> {
    /// A cache of at most `capacity` entries, each kept at most `max_age` seconds.
    pub fn new(capacity: usize, max_age: i64) -> TokenCache<T> {
        TokenCache {
            capacity,
            max_age,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The cached value for exactly `token`, if still valid at `now`.
    pub fn get(&self, token: &[u8], now: i64) -> Option<T> {
        let mut inner = self.lock();
        let entry = inner.map.get(token)?;
        if entry.valid_until <= now {
            inner.map.remove(token);
            return None;
        }
        Some(entry.value.clone())
    }

    /// Stores `value` for `token`, verified as `verified`, until its `exp` (or `max_age` from
    /// `now`).
    pub fn insert_with(&self, token: &[u8], value: T, verified: &Verified, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let valid_until = verified.expires_at().min(now.saturating_add(self.max_age));
        if valid_until <= now {
            return;
        }
        let mut inner = self.lock();
        if inner.map.contains_key(token) {
            return;
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        let key: Arc<[u8]> = Arc::from(token);
        inner.order.push_back(key.clone());
        inner.map.insert(key, Entry { value, valid_until });
        // Keep the order queue from growing with keys already removed on expiry.
        if inner.order.len() > self.capacity * 2 {
            let Inner { map, order } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TokenCache<Arc<Verified>> {
    /// Stores a verified token until its `exp` (or `max_age` from `now`).
    pub fn insert(&self, token: &[u8], verified: Arc<Verified>, now: i64) {
        let value = verified.clone();
        self.insert_with(token, value, &verified, now);
    }
}
