//! A bounded cache of verified tokens, so a client that reuses its token pays for the signature
//! check once.
//!
//! Entries are keyed by the SHA-256 of the token but a hit compares the whole token, so a hash
//! collision can never admit another token. An entry lives until the token's `exp` or
//! `max_age` (default 5 min, bounding how long a key removed from the JWKS keeps admitting
//! cached tokens), whichever comes first. Memory is bounded by the entry count: when full, the
//! oldest entry is evicted.

use jwtgate_core::crypto::sha256;
use jwtgate_core::Verified;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Default number of entries (about 2 KiB each for typical access tokens: ≈ 20 MiB at most).
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default longest life of an entry, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 300;

struct Entry {
    token: Box<[u8]>,
    verified: Arc<Verified>,
    valid_until: i64,
}

struct Inner {
    map: HashMap<[u8; 32], Entry>,
    order: VecDeque<[u8; 32]>,
}

/// The verified-token cache.
pub struct TokenCache {
    capacity: usize,
    max_age: i64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache of at most `capacity` entries, each kept at most `max_age` seconds.
    pub fn new(capacity: usize, max_age: i64) -> TokenCache {
        TokenCache {
            capacity,
            max_age,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The cached result for `token` if present, identical and still valid at `now`.
    pub fn get(&self, token: &[u8], now: i64) -> Option<Arc<Verified>> {
        let key = sha256(token);
        let mut inner = self.lock();
        let entry = inner.map.get(&key)?;
        if entry.valid_until <= now {
            inner.map.remove(&key);
            return None;
        }
        if entry.token.as_ref() != token {
            return None;
        }
        Some(entry.verified.clone())
    }

    /// Stores a verified token until its `exp` (or `max_age` from `now`).
    pub fn insert(&self, token: &[u8], verified: Arc<Verified>, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let exp = verified
            .claims()
            .get("exp")
            .and_then(serde_json::Value::as_f64)
            .map_or(now, |exp| {
                exp.clamp(i64::MIN as f64, i64::MAX as f64).floor() as i64
            });
        let valid_until = exp.min(now.saturating_add(self.max_age));
        if valid_until <= now {
            return;
        }
        let key = sha256(token);
        let mut inner = self.lock();
        if inner.map.contains_key(&key) {
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
        inner.order.push_back(key);
        inner.map.insert(
            key,
            Entry {
                token: token.into(),
                verified,
                valid_until,
            },
        );
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
