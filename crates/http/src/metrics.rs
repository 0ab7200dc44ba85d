//! The gateway's counters and their Prometheus text exposition (format 0.0.4), written by hand:
//! a handful of counters and one histogram do not need a metrics framework.

use jwtgate_keys::Registry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the verification latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
];

/// Counters for decisions, latency and the token cache.
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    decisions: Mutex<BTreeMap<(&'static str, u16, &'static str), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl GatewayMetrics {
    /// Counts one decision: `allow`/`deny`, the HTTP status, and the reason label.
    pub fn decision(&self, decision: &'static str, status: u16, reason: &'static str) {
        let mut map = match self.decisions.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map.entry((decision, status, reason)).or_insert(0) += 1;
    }

    /// Records how long one verification took.
    pub fn verify_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts a token-cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Total decisions counted with `decision` (`allow` or `deny`).
    pub fn count(&self, decision: &str) -> u64 {
        let map = match self.decisions.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.iter()
            .filter(|((d, _, _), _)| *d == decision)
            .map(|(_, n)| n)
            .sum()
    }

    /// Renders every metric, including each issuer's key-source counters.
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = String::new();
        out.push_str("# HELP jwtgate_requests_total Authorization decisions.\n");
        out.push_str("# TYPE jwtgate_requests_total counter\n");
        let decisions = match self.decisions.lock() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for ((decision, status, reason), count) in decisions {
            let _ = writeln!(
                out,
                "jwtgate_requests_total{{decision=\"{decision}\",status=\"{status}\",reason=\"{reason}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP jwtgate_verify_duration_seconds Time to verify a token (cache misses only).\n",
        );
        out.push_str("# TYPE jwtgate_verify_duration_seconds histogram\n");
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "jwtgate_verify_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "jwtgate_verify_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "jwtgate_verify_duration_seconds_sum {sum}");
        let _ = writeln!(out, "jwtgate_verify_duration_seconds_count {count}");
        for (name, help, value) in [
            (
                "jwtgate_token_cache_hits_total",
                "Verified-token cache hits.",
                &self.cache_hits,
            ),
            (
                "jwtgate_token_cache_misses_total",
                "Verified-token cache misses.",
                &self.cache_misses,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let sources: Vec<(String, jwtgate_keys::KeyMetricsSnapshot, bool)> = registry
            .entries()
            .iter()
            .map(|e| {
                let issuer = e.policy().issuers().first().cloned().unwrap_or_default();
                (issuer, e.source().metrics(), e.source().is_ready())
            })
            .collect();
        type Field = fn(&jwtgate_keys::KeyMetricsSnapshot) -> u64;
        let fields: [(&str, &str, Field); 7] = [
            (
                "jwtgate_jwks_fetches_total",
                "JWKS and discovery fetch attempts.",
                |m| m.fetches,
            ),
            (
                "jwtgate_jwks_fetch_failures_total",
                "Failed JWKS fetches.",
                |m| m.fetch_failures,
            ),
            (
                "jwtgate_jwks_cache_hits_total",
                "Key lookups answered from fresh keys.",
                |m| m.cache_hits,
            ),
            (
                "jwtgate_jwks_cooldown_hits_total",
                "Unknown-kid lookups refused by the cooldown.",
                |m| m.cooldown_hits,
            ),
            (
                "jwtgate_jwks_negative_hits_total",
                "Unknown-kid lookups answered by the negative cache.",
                |m| m.negative_hits,
            ),
            (
                "jwtgate_jwks_stale_serves_total",
                "Lookups served from stale keys after failed refreshes.",
                |m| m.stale_serves,
            ),
            (
                "jwtgate_jwks_joined_refreshes_total",
                "Lookups that joined a refresh in flight.",
                |m| m.refreshes_joined,
            ),
        ];
        for (name, help, field) in fields {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (issuer, metrics, _) in &sources {
                let _ = writeln!(
                    out,
                    "{name}{{issuer=\"{}\"}} {}",
                    label(issuer),
                    field(metrics)
                );
            }
        }
        out.push_str("# HELP jwtgate_keys_ready Whether usable keys are held for the issuer.\n# TYPE jwtgate_keys_ready gauge\n");
        for (issuer, _, ready) in &sources {
            let _ = writeln!(
                out,
                "jwtgate_keys_ready{{issuer=\"{}\"}} {}",
                label(issuer),
                u8::from(*ready)
            );
        }
        out
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
