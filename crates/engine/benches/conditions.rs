//! The cost of claim conditions on the cached path, run by `cargo bench -p jwtgate-engine --bench
//! conditions`.
//!
//! One Auth0-shaped ES256 token already in the verified-token cache, three engines that differ
//! only in their one route's condition (same path, same scope), decided interleaved in one run:
//!
//! * **base** — a route with a scope and no condition: the baseline;
//! * **claims** — the same plus `claims = { email_verified = true, org_id = ["acme", "other"] }`;
//! * **when** — the same plus the two-term CEL condition
//!   `claims.org_id == "acme" && "admin" in claims.roles`.
//!
//! Each decision is the whole `Engine::decide` (path, route, bearer, cache hit, scopes,
//! conditions, identity), the future polled once (a cache hit never waits). The summary prints
//! the median time per decision and its ratio to the baseline; goal: a condition costs under 5 %
//! of the cached path's throughput. `JWTGATE_BENCH_QUICK=1` (or running without `--bench`) makes
//! it short. `JWTGATE_BENCH_CELL=base|claims|when` runs only that cell for
//! `JWTGATE_BENCH_ITERATIONS` decisions (default 10,000), for `valgrind --tool=callgrind`: the
//! instructions per decision are (count at N − count at 0) / N, stable when times are not.
//!
//! A condition's result is remembered per verified token (see `Conditions::check_shared`), so
//! what this measures on the cached path is the lookup; the first evaluation of the two-term
//! `when` for a token costs about 16,000 instructions once per thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use http::HeaderMap;
use jwtgate_engine::{Engine, Outcome, Unmatched};
use jwtgate_test_support::Issuer;
use serde_json::json;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use support::Config;

fn engine(issuer: &Issuer, condition: &str) -> Engine {
    let toml = format!(
        "{}[[routes]]\npath = \"/api/users\"\nscopes = [\"read:users\"]\n{condition}\n",
        issuer.issuer_toml()
    );
    let config = Config::parse(&toml, "bench.toml").unwrap();
    config
        .engine_with(&config.routes, Unmatched::Deny, "bench.toml")
        .unwrap()
        .with_cache(support::cache())
}

/// Decides once; the cached path completes on its first poll.
fn decide(engine: &Engine, path: &str, headers: &HeaderMap, now: i64) -> bool {
    let request = support::get(path, headers, now);
    let future = std::pin::pin!(engine.decide(&request));
    let mut context = Context::from_waker(Waker::noop());
    match future.poll(&mut context) {
        Poll::Ready(Outcome::Allow(allow)) => black_box(allow).verified.is_some(),
        Poll::Ready(_) => false,
        Poll::Pending => panic!("a cache hit never waits"),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let quick = !bench || std::env::var("JWTGATE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let issuer = Issuer::new();
    let now = jwtgate_test_support::now();
    let token = issuer.token(json!({
        "email_verified": true,
        "org_id": "acme",
        "roles": ["admin", "user"],
        "scope": "openid profile email",
        "azp": "bench-client",
    }));
    let headers = support::authorization(&format!("Bearer {token}"));
    let cells = [
        ("base", engine(&issuer, "")),
        (
            "claims",
            engine(
                &issuer,
                r#"claims = { email_verified = true, org_id = ["acme", "other"] }"#,
            ),
        ),
        (
            "when",
            engine(
                &issuer,
                r#"when = 'claims.org_id == "acme" && "admin" in claims.roles'"#,
            ),
        ),
    ];
    // Fill each cache: the first decision verifies (reading the JWKS file), the rest are hits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = "/api/users";
    for (name, engine) in &cells {
        let first = support::get(path, &headers, now);
        let outcome = runtime.block_on(engine.decide(&first));
        assert!(matches!(outcome, Outcome::Allow(_)), "{name} is allowed");
        assert!(
            decide(engine, path, &headers, now),
            "{name} is allowed from the cache"
        );
    }

    if let Ok(only) = std::env::var("JWTGATE_BENCH_CELL") {
        let (_, engine) = cells.iter().find(|(name, _)| *name == only).unwrap();
        let iterations: u32 = std::env::var("JWTGATE_BENCH_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        for _ in 0..iterations {
            black_box(decide(engine, path, &headers, now));
        }
        return;
    }

    let rounds = if quick { 5 } else { 31 };
    let iterations = if quick { 2_000u32 } else { 20_000 };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    for round in 0..rounds {
        for offset in 0..cells.len() {
            let index = (round + offset) % cells.len();
            let (_, engine) = &cells[index];
            let started = Instant::now();
            for _ in 0..iterations {
                black_box(decide(engine, black_box(path), &headers, now));
            }
            samples[index].push(started.elapsed().as_secs_f64() / f64::from(iterations));
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!(
        "conditions on the cached path ({} byte token):",
        token.len()
    );
    for ((name, _), seconds) in cells.iter().zip(&medians) {
        println!(
            "  {name:<7} {:>7.3} µs per decision  {:>6.3}× base",
            seconds * 1e6,
            seconds / medians[0]
        );
    }
    let worst = medians[1].max(medians[2]) / medians[0] - 1.0;
    println!(
        "  goal: a condition costs < 5 % of the cached path: {:.1} % here ({}; on a loaded machine, compare callgrind counts)",
        worst * 100.0,
        if worst < 0.05 { "met" } else { "not met in this run" }
    );
}
