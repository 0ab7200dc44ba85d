//! The authorizer's counters in CloudWatch Embedded Metric Format: with `[lambda] metrics =
//! true` (`JWTGATE_METRICS=true`) every decision prints one JSON line on stdout, which
//! CloudWatch Logs turns into metrics without an agent or an API call.
//!
//! The metrics are the gateway's (`/metrics` in `jwtgate serve`), per invocation: namespace
//! `jwtgate`, dimensions `decision` (`allow`/`deny`) and `reason` (`verified`, `public`,
//! `expired`, `insufficient_scope`, …); values `requests` (1), `token_cache_hits` and
//! `token_cache_misses` (0 or 1), and `verify_duration_us` when a signature was checked. The
//! line also carries the HTTP status API Gateway will answer, the event kind and the time.

use crate::event::EventKind;
use jwtgate_engine::{Metrics, Outcome};
use serde_json::json;
use std::time::Duration;

/// Counter readings before a decision, to print what one decision added.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    cache: (u64, u64),
    verifications: (u64, Duration),
}

impl Reading {
    /// The counters now.
    pub fn take(metrics: &Metrics) -> Reading {
        Reading {
            cache: metrics.cache_lookups(),
            verifications: metrics.verifications(),
        }
    }
}

/// The outcome's (decision, status, reason) labels, as the gateway's counters name them.
pub fn labels(outcome: &Outcome) -> (&'static str, u16, &'static str) {
    match outcome {
        Outcome::Allow(allow) if allow.verified.is_some() => ("allow", 200, "verified"),
        Outcome::Allow(_) => ("allow", 200, "public"),
        Outcome::Preflight => ("allow", 204, "cors_preflight"),
        Outcome::Deny(denial) => ("deny", denial.status(), denial.kind()),
    }
}

/// The Embedded Metric Format line for one decision at `now` (Unix seconds), given the counters
/// before it.
pub fn emf_line(
    outcome: &Outcome,
    kind: EventKind,
    now: i64,
    before: Reading,
    metrics: &Metrics,
) -> String {
    let (decision, status, reason) = labels(outcome);
    let after = Reading::take(metrics);
    let mut line = json!({
        "_aws": {
            "Timestamp": now.saturating_mul(1000),
            "CloudWatchMetrics": [{
                "Namespace": "jwtgate",
                "Dimensions": [["decision", "reason"]],
                "Metrics": [
                    {"Name": "requests", "Unit": "Count"},
                    {"Name": "token_cache_hits", "Unit": "Count"},
                    {"Name": "token_cache_misses", "Unit": "Count"},
                    {"Name": "verify_duration_us", "Unit": "Microseconds"},
                ],
            }],
        },
        "decision": decision,
        "reason": reason,
        "status": status,
        "event": kind.name(),
        "requests": 1,
        "token_cache_hits": after.cache.0.saturating_sub(before.cache.0),
        "token_cache_misses": after.cache.1.saturating_sub(before.cache.1),
    });
    let verified = after.verifications.0.saturating_sub(before.verifications.0);
    if verified > 0 {
        let spent = after.verifications.1.saturating_sub(before.verifications.1);
        line["verify_duration_us"] = json!(spent.as_micros() as f64 / verified as f64);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgate_engine::Denial;

    #[test]
    fn a_refusal_as_one_emf_line() {
        let metrics = Metrics::default();
        let before = Reading::take(&metrics);
        metrics.cache_lookup(false);
        metrics.verify_latency(Duration::from_micros(40));
        let outcome = Outcome::Deny(Denial::missing_token("api"));
        let line = emf_line(
            &outcome,
            EventKind::HttpApiV2,
            1_800_000_000,
            before,
            &metrics,
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["_aws"]["Timestamp"], 1_800_000_000_000i64);
        assert_eq!(value["decision"], "deny");
        assert_eq!(value["reason"], "missing_token");
        assert_eq!(value["status"], 401);
        assert_eq!(value["token_cache_misses"], 1);
        assert_eq!(value["token_cache_hits"], 0);
        assert_eq!(value["verify_duration_us"], 40.0);
        assert_eq!(value["event"], "http_api_v2");
    }
}
