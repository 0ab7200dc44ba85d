//! Counters for everything the key cache does, for logs, tests and Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one key source. All are monotonic.
#[derive(Debug, Default)]
pub struct KeyMetrics {
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    cache_hits: AtomicU64,
    cooldown_hits: AtomicU64,
    negative_hits: AtomicU64,
    stale_serves: AtomicU64,
    refreshes_joined: AtomicU64,
}

/// A point-in-time copy of [`KeyMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyMetricsSnapshot {
    /// JWKS (and discovery) fetch attempts.
    pub fetches: u64,
    /// Fetch attempts that failed (network, status, size, parse, empty set).
    pub fetch_failures: u64,
    /// Lookups answered from fresh cached keys.
    pub cache_hits: u64,
    /// Unknown-kid lookups that did not refresh because the cooldown was running.
    pub cooldown_hits: u64,
    /// Unknown-kid lookups answered from the negative cache.
    pub negative_hits: u64,
    /// Lookups answered from keys past their lifetime because refreshing failed.
    pub stale_serves: u64,
    /// Lookups that waited for a refresh another request had started (single-flight).
    pub refreshes_joined: u64,
}

impl KeyMetrics {
    pub(crate) fn fetch(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failure(&self) {
        self.fetch_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn cooldown(&self) {
        self.cooldown_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn negative(&self) {
        self.negative_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn stale(&self) {
        self.stale_serves.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn joined(&self) {
        self.refreshes_joined.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> KeyMetricsSnapshot {
        KeyMetricsSnapshot {
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self.fetch_failures.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cooldown_hits: self.cooldown_hits.load(Ordering::Relaxed),
            negative_hits: self.negative_hits.load(Ordering::Relaxed),
            stale_serves: self.stale_serves.load(Ordering::Relaxed),
            refreshes_joined: self.refreshes_joined.load(Ordering::Relaxed),
        }
    }
}
