//! The revocation lookup on the request path with 10,000 rules held (a third each by jti,
//! subject and client): a token no rule matches (the common case), and tokens refused by each
//! kind of rule. Baseline in the same run: the same lookups in an empty set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::Criterion;
use jwtgate_revocation::{Revocations, Rule, RuleSet, TokenFacts};
use std::hint::black_box;

const NOW: i64 = 1_764_496_800;
const RULES: usize = 10_000;

fn rules() -> Vec<Rule> {
    (0..RULES)
        .filter_map(|i| match i % 3 {
            0 => Rule::jti(format!("jti-{i:08}-9f2c1e7a"), NOW + 3600).ok(),
            1 => Rule::subject(
                "https://tenant.example/",
                format!("auth0|user{i:08}"),
                NOW,
                NOW + 86_400,
            )
            .ok(),
            _ => Rule::client(format!("client{i:08}"), NOW, NOW + 86_400).ok(),
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let rules = rules();
    let full = Revocations::fixed(RuleSet::from_rules(&rules));
    let empty = Revocations::fixed(RuleSet::new());
    assert_eq!(full.current().len(), RULES);
    let passing = TokenFacts {
        iss: "https://tenant.example/",
        sub: Some("auth0|someone-else"),
        jti: Some("b7f0c3d2-unrevoked-jti"),
        client_id: Some("spa-client-id"),
        azp: Some("spa-client-id"),
        iat: Some((NOW + 10) as f64),
    };
    let by_jti = TokenFacts {
        jti: Some("jti-00009999-9f2c1e7a"),
        ..passing
    };
    let by_subject = TokenFacts {
        sub: Some("auth0|user00009997"),
        iat: Some((NOW - 10) as f64),
        ..passing
    };
    let by_client = TokenFacts {
        client_id: None,
        azp: Some("client00009998"),
        iat: Some((NOW - 10) as f64),
        ..passing
    };
    assert!(full.check_facts(&passing, NOW).is_none());
    for refused in [&by_jti, &by_subject, &by_client] {
        assert!(full.check_facts(refused, NOW).is_some());
    }
    let mut group = c.benchmark_group("revocation_lookup");
    group.bench_function("empty_set/pass", |b| {
        b.iter(|| empty.check_facts(black_box(&passing), NOW))
    });
    group.bench_function("10k_rules/pass", |b| {
        b.iter(|| full.check_facts(black_box(&passing), NOW))
    });
    group.bench_function("10k_rules/refused_by_jti", |b| {
        b.iter(|| full.check_facts(black_box(&by_jti), NOW))
    });
    group.bench_function("10k_rules/refused_by_subject", |b| {
        b.iter(|| full.check_facts(black_box(&by_subject), NOW))
    });
    group.bench_function("10k_rules/refused_by_client", |b| {
        b.iter(|| full.check_facts(black_box(&by_client), NOW))
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    lookups(&mut criterion);
    criterion.final_summary();
}
