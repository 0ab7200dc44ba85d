//! The revocation lookup on the request path with 10,000 rules held (a third each by `jti`,
//! subject and client), run by `cargo bench -p jwtgate-engine --bench revocation`.
//!
//! * `revocation_check/*` — exactly what the engine does for every verified token (fresh or from
//!   the verified-token cache): `Revocations::check(&Verified, now)`, which reads `jti`, `sub`,
//!   `client_id`, `azp` and `iat` from the token and looks them up in the current rule set. A
//!   token no rule matches (a miss: the common case) and tokens refused by each kind of rule
//!   (hits), against the same miss in an empty set (the baseline). Goal: under 1 µs.
//! * `decide_cached/*` — the whole `Engine::decide` on the cached path (a cache hit) with the
//!   10,000 rules, against the same engine without revocation, to show the lookup's share of a
//!   decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::Criterion;
use http::HeaderMap;
use jwtgate_engine::{Engine, Outcome, Unmatched};
use jwtgate_revocation::{Revocations, Rule, RuleSet};
use jwtgate_test_support::Issuer;
use serde_json::json;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use support::Config;

const RULES: usize = 10_000;
const PATH: &str = "/api/users";

/// 10,000 rules: `jti-<i>` until an hour from now, subjects `auth0|user<i>` of the issuer and
/// clients `client<i>` issued before `now`.
fn rules(issuer: &str, now: i64) -> Vec<Rule> {
    (0..RULES)
        .map(|i| match i % 3 {
            0 => Rule::jti(format!("jti-{i:08}-9f2c1e7a"), now + 3600).unwrap(),
            1 => Rule::subject(issuer, format!("auth0|user{i:08}"), now, now + 86_400).unwrap(),
            _ => Rule::client(format!("client{i:08}"), now, now + 86_400).unwrap(),
        })
        .collect()
}

fn engine(issuer: &Issuer) -> Engine {
    let toml = format!(
        "{}[[routes]]\npath = \"{PATH}\"\nscopes = [\"read:users\"]\n",
        issuer.issuer_toml()
    );
    let config = Config::parse(&toml, "bench.toml").unwrap();
    config
        .engine_with(&config.routes, Unmatched::Deny, "bench.toml")
        .unwrap()
        .with_cache(support::cache())
}

/// Decides once; the cached path completes on its first poll.
fn decide(engine: &Engine, headers: &HeaderMap, now: i64) -> bool {
    let request = support::get(PATH, headers, now);
    let future = std::pin::pin!(engine.decide(&request));
    let mut context = Context::from_waker(Waker::noop());
    match future.poll(&mut context) {
        Poll::Ready(Outcome::Allow(allow)) => black_box(allow).verified.is_some(),
        Poll::Ready(_) => false,
        Poll::Pending => panic!("a cache hit never waits"),
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let now = jwtgate_test_support::now();
    // Every token is issued at `now` and every lookup and decision is at `now`, however long
    // the run takes.
    let issuer = Issuer::new().at(now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rules = rules(issuer.issuer(), now);
    let full = Revocations::fixed(RuleSet::from_rules(&rules));
    let empty = Revocations::fixed(RuleSet::new());
    assert_eq!(full.current().len(), RULES);

    // Auth0-shaped tokens, verified once by an engine without revocation.
    let plain = engine(&issuer);
    let verify = |patch| {
        let token = issuer.token(patch);
        runtime
            .block_on(plain.verify(token.as_bytes(), now))
            .unwrap()
    };
    let passing = verify(json!({
        "jti": "b7f0c3d2-unrevoked-jti", "sub": "auth0|someone-else", "azp": "spa-client-id",
    }));
    let by_jti = verify(json!({"jti": "jti-00009999-9f2c1e7a"}));
    let by_subject = verify(json!({"jti": "j2", "sub": "auth0|user00009997"}));
    let by_client = verify(json!({"jti": "j3", "azp": "client00009998"}));
    assert!(full.check(&passing, now).is_none());
    for refused in [&by_jti, &by_subject, &by_client] {
        assert!(full.check(refused, now).is_some());
    }

    let mut group = criterion.benchmark_group("revocation_check");
    group.bench_function("empty_set/miss", |b| {
        b.iter(|| empty.check(black_box(&passing), now))
    });
    group.bench_function("10k_rules/miss", |b| {
        b.iter(|| full.check(black_box(&passing), now))
    });
    group.bench_function("10k_rules/hit_jti", |b| {
        b.iter(|| full.check(black_box(&by_jti), now))
    });
    group.bench_function("10k_rules/hit_subject", |b| {
        b.iter(|| full.check(black_box(&by_subject), now))
    });
    group.bench_function("10k_rules/hit_client", |b| {
        b.iter(|| full.check(black_box(&by_client), now))
    });
    group.finish();

    // The whole cached decision, with and without the rules.
    let token = issuer.token(json!({
        "jti": "b7f0c3d2-unrevoked-jti", "azp": "spa-client-id",
    }));
    let headers = support::authorization(&format!("Bearer {token}"));
    let revoking = engine(&issuer).with_revocation(Arc::clone(&full));
    for engine in [&plain, &revoking] {
        let first = support::get(PATH, &headers, now);
        let outcome = runtime.block_on(engine.decide(&first));
        assert!(matches!(outcome, Outcome::Allow(_)), "{outcome:?}");
        assert!(decide(engine, &headers, now), "allowed from the cache");
    }
    let mut group = criterion.benchmark_group("decide_cached");
    group.bench_function("no_revocation", |b| {
        b.iter(|| decide(&plain, black_box(&headers), now))
    });
    group.bench_function("10k_rules", |b| {
        b.iter(|| decide(&revoking, black_box(&headers), now))
    });
    group.finish();
    criterion.final_summary();
}
