//! The counters every front end shares and their Prometheus text exposition (format 0.0.4), written by hand:
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

/// Counters for decisions, latency and the token cache. The request path touches only a few
/// uncontended atomics: the two common "allow" outcomes have their own counters, and the
/// latency histogram counts each observation in one bucket (cumulated when rendered).
#[derive(Debug, Default)]
pub struct Metrics {
    allowed_verified: AtomicU64,
    allowed_public: AtomicU64,
    decisions: Mutex<BTreeMap<(&'static str, u16, &'static str), u64>>,
    /// Observations per bucket, not cumulative; the last slot counts those above every bound.
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    connections_over_limit: AtomicU64,
    reloads_succeeded: AtomicU64,
    reloads_failed: AtomicU64,
    dpop_replay_fallbacks: AtomicU64,
}

impl Metrics {
    /// Counts one decision: `allow`/`deny`, the HTTP status, and the reason label.
    pub fn decision(&self, decision: &'static str, status: u16, reason: &'static str) {
        match (decision, status, reason) {
            ("allow", 200, "verified") => {
                self.allowed_verified.fetch_add(1, Ordering::Relaxed);
                return;
            }
            ("allow", 200, "public") => {
                self.allowed_public.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
        let mut map = match self.decisions.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map.entry((decision, status, reason)).or_insert(0) += 1;
    }

    /// Counts a DPoP proof accepted on the per-process replay cache alone because the shared
    /// replay store (Redis) did not answer in time.
    pub fn dpop_replay_fallback(&self) {
        self.dpop_replay_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// DPoP proofs checked for replay per process only, the shared store not answering.
    pub fn dpop_replay_fallbacks(&self) -> u64 {
        self.dpop_replay_fallbacks.load(Ordering::Relaxed)
    }

    /// Records how long one verification took.
    pub fn verify_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.latency_buckets[slot].fetch_add(1, Ordering::Relaxed);
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

    /// Counts a connection accepted at the connection limit (served by the overload responder).
    pub fn connection_over_limit(&self) {
        self.connections_over_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted at the connection limit so far.
    pub fn connections_over_limit(&self) -> u64 {
        self.connections_over_limit.load(Ordering::Relaxed)
    }

    /// Counts a configuration reload: applied (`true`) or refused (`false`).
    pub fn config_reload(&self, success: bool) {
        let counter = if success {
            &self.reloads_succeeded
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Configuration reloads so far: (applied, refused).
    pub fn config_reloads(&self) -> (u64, u64) {
        (
            self.reloads_succeeded.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Verified-token cache lookups so far: (hits, misses).
    pub fn cache_lookups(&self) -> (u64, u64) {
        (
            self.cache_hits.load(Ordering::Relaxed),
            self.cache_misses.load(Ordering::Relaxed),
        )
    }

    /// Signature verifications so far and their total time.
    pub fn verifications(&self) -> (u64, Duration) {
        (
            self.latency_count.load(Ordering::Relaxed),
            Duration::from_nanos(self.latency_sum_nanos.load(Ordering::Relaxed)),
        )
    }

    /// Total decisions counted with `decision` (`allow` or `deny`).
    pub fn count(&self, decision: &str) -> u64 {
        self.decisions()
            .iter()
            .filter(|((d, _, _), _)| *d == decision)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every decision label — (`allow`/`deny`, status, reason) — with its count.
    pub fn decisions(&self) -> BTreeMap<(&'static str, u16, &'static str), u64> {
        let mut all = match self.decisions.lock() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for (reason, counter) in [
            ("verified", &self.allowed_verified),
            ("public", &self.allowed_public),
        ] {
            let count = counter.load(Ordering::Relaxed);
            if count > 0 {
                all.insert(("allow", 200, reason), count);
            }
        }
        all
    }

    /// Renders every metric, including each issuer's key-source counters.
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = String::new();
        out.push_str("# HELP jwtgate_requests_total Authorization decisions.\n");
        out.push_str("# TYPE jwtgate_requests_total counter\n");
        let decisions = self.decisions();
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
        let mut cumulative = 0u64;
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "jwtgate_verify_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
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
            (
                "jwtgate_connections_over_limit_total",
                "Connections accepted at the connection limit and answered by the overload responder.",
                &self.connections_over_limit,
            ),
            (
                "jwtgate_dpop_replay_fallback_total",
                "DPoP proofs checked for replay in the per-process cache only, because the shared replay store (Redis) did not answer in time ([revocation] dpop_replay = \"local\").",
                &self.dpop_replay_fallbacks,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str("# HELP jwtgate_config_reloads_total Configuration reloads, applied or refused.\n# TYPE jwtgate_config_reloads_total counter\n");
        for (result, counter) in [
            ("success", &self.reloads_succeeded),
            ("failure", &self.reloads_failed),
        ] {
            let _ = writeln!(
                out,
                "jwtgate_config_reloads_total{{result=\"{result}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let mut sources: Vec<(String, jwtgate_keys::KeyMetricsSnapshot, bool)> = registry
            .entries()
            .iter()
            .map(|e| {
                let issuer = e.policy().issuers().first().cloned().unwrap_or_default();
                (issuer, e.source().metrics(), e.source().is_ready())
            })
            .collect();
        // Each concrete issuer of a template (a tenant) is labelled as itself.
        for template in registry.templates() {
            for (issuer, entry) in template.held() {
                sources.push((issuer, entry.source().metrics(), entry.source().is_ready()));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_when_rendered() {
        let metrics = Metrics::default();
        metrics.verify_latency(Duration::from_micros(20));
        metrics.verify_latency(Duration::from_micros(40));
        metrics.verify_latency(Duration::from_secs(3));
        metrics.decision("allow", 200, "verified");
        metrics.decision("deny", 401, "expired");
        metrics.connection_over_limit();
        assert_eq!(metrics.connections_over_limit(), 1);
        assert_eq!(metrics.count("allow"), 1);
        assert_eq!(metrics.count("deny"), 1);
        let source = jwtgate_keys::KeySource::new(
            jwtgate_keys::SourceKind::File("/nonexistent".into()),
            jwtgate_keys::CacheSettings::default(),
            std::sync::Arc::new(jwtgate_keys::ManualClock::new()),
        );
        let Ok(source) = source else { panic!("source") };
        let policy = jwtgate_core::Policy::builder()
            .issuer("i")
            .audience("a")
            .build();
        let Ok(policy) = policy else { panic!("policy") };
        let Ok(registry) = Registry::new(vec![jwtgate_keys::IssuerEntry::new(policy, source)])
        else {
            panic!("registry")
        };
        let text = metrics.render(&registry);
        assert!(
            text.contains("jwtgate_verify_duration_seconds_bucket{le=\"0.000025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_verify_duration_seconds_bucket{le=\"0.00005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_verify_duration_seconds_bucket{le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_verify_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "jwtgate_requests_total{decision=\"allow\",status=\"200\",reason=\"verified\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_connections_over_limit_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_config_reloads_total{result=\"success\"} 0\n"),
            "{text}"
        );
        metrics.config_reload(true);
        metrics.config_reload(false);
        metrics.config_reload(false);
        assert_eq!(metrics.config_reloads(), (1, 2));
        let text = metrics.render(&registry);
        assert!(
            text.contains("jwtgate_config_reloads_total{result=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("jwtgate_config_reloads_total{result=\"failure\"} 2\n"),
            "{text}"
        );
    }
}
