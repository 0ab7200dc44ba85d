//! The identity headers a decision carries, across many tokens: the issuer and scopes values
//! the engine keeps for the last few (issuer, scopes) combinations must always be the ones the
//! token itself gives, whatever order the tokens come in and however often the kept entries are
//! replaced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jwtgate_engine::{Engine, Outcome};
use jwtgate_test_support::Issuer;
use serde_json::{json, Value};
use support::{ask_bearer, cache, Config};

const FIRST: &str = "https://first.example/";
const SECOND: &str = "https://second.example/";

fn engine(first: &Issuer, second: &Issuer, cached: bool) -> Engine {
    let toml = format!("{}{}", first.issuer_toml(), second.issuer_toml());
    let engine = Config::parse(&toml, "test.toml").unwrap().engine().unwrap();
    if cached {
        engine.with_cache(cache())
    } else {
        engine
    }
}

/// The identity headers of an allowed request with `token`, as (name, value) text pairs.
async fn identity(engine: &Engine, token: &str) -> Vec<(String, String)> {
    match ask_bearer(engine, "/api", token).await {
        Outcome::Allow(allow) => allow
            .identity
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect(),
        other => panic!("not allowed: {other:?}"),
    }
}

/// Scope claims of fourteen kinds (more than the engine keeps), with what the scopes header must
/// then say: repeats removed in first-seen order, non-ASCII percent-encoded, `scp` and
/// `permissions` joined after `scope`.
fn scope_cases() -> Vec<(Value, String)> {
    // More scopes than a kept entry may hold (64): always built from the token.
    let many: Vec<String> = (0..70).map(|i| format!("s{i}")).collect();
    let cases = vec![
        (json!({"scope": "read:users"}), "read:users"),
        (
            json!({"scope": "read:users write:users"}),
            "read:users write:users",
        ),
        (
            json!({"scope": "write:users read:users"}),
            "write:users read:users",
        ),
        (json!({"scope": "read:users read:users"}), "read:users"),
        (
            json!({"scope": "read:users", "permissions": ["read:users", "x"]}),
            "read:users x",
        ),
        (json!({"permissions": ["a", "b"]}), "a b"),
        (json!({"scp": ["a", "b"]}), "a b"),
        (json!({"scp": ["a b"]}), "a b"),
        (json!({"scope": "a", "scp": ["b"]}), "a b"),
        (json!({"scope": "é"}), "%C3%A9"),
        (json!({"scope": "a  b"}), "a b"),
        (json!({"scope": "c"}), "c"),
    ];
    let mut cases: Vec<(Value, String)> = cases
        .into_iter()
        .map(|(claims, scopes)| (claims, scopes.to_owned()))
        .collect();
    cases.push((json!({"scope": many.join(" ")}), many.join(" ")));
    cases.push((json!({"permissions": many}), many.join(" ")));
    cases
}

#[tokio::test]
async fn kept_issuer_and_scopes_values_are_always_the_tokens_own() {
    let first = Issuer::new().with_issuer(FIRST).with_audience("api");
    let second = Issuer::new().with_issuer(SECOND).with_audience("api");
    for cache in [true, false] {
        let engine = engine(&first, &second, cache);
        // Three rounds in a varying order: entries are built, found, and replaced.
        for round in 0..3 {
            let mut cases: Vec<_> = scope_cases().into_iter().enumerate().collect();
            if round == 1 {
                cases.reverse();
            }
            for (index, (claims, scopes)) in cases {
                for (issuer, iss) in [(&first, FIRST), (&second, SECOND)] {
                    let now = jwtgate_test_support::now();
                    let mut exact = json!({
                        "iss": iss, "aud": "api", "sub": format!("user-{index}-{round}"),
                        "iat": now - 10, "exp": now + 600,
                    });
                    jwtgate_test_support::merge(&mut exact, claims.clone());
                    let token = issuer.sign(&exact);
                    let got = identity(&engine, &token).await;
                    let scopes_header = (!scopes.is_empty())
                        .then(|| ("x-auth-scopes".to_owned(), scopes.to_owned()));
                    let want: Vec<(String, String)> = [
                        Some(("x-auth-subject".to_owned(), format!("user-{index}-{round}"))),
                        Some(("x-auth-issuer".to_owned(), iss.to_owned())),
                        scopes_header,
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    assert_eq!(
                        got, want,
                        "cache {cache}, round {round}, case {index} ({claims})"
                    );
                }
            }
        }
    }
}

/// Whatever tokens of the same issuer and scopes came before (their issuer and scopes values
/// kept), a token carries its own subject, or no subject header at all when it has none or one
/// too long to send — never an empty or stale value.
#[tokio::test]
async fn the_subject_header_is_each_tokens_own_or_absent() {
    let first = Issuer::new().with_issuer(FIRST).with_audience("api");
    let second = Issuer::new().with_issuer(SECOND).with_audience("api");
    let too_long = "x".repeat(jwtgate_engine::identity::DEFAULT_MAX_VALUE_LEN + 1);
    let subjects = [
        (Some(json!("alice")), Some("alice")),
        (None, None),
        (Some(json!(42)), Some("42")),
        (Some(json!(too_long)), None),
        (Some(json!("bob")), Some("bob")),
        (None, None),
    ];
    for cache in [true, false] {
        let engine = engine(&first, &second, cache);
        for round in 0..2 {
            for (index, (sub, want_subject)) in subjects.iter().enumerate() {
                let now = jwtgate_test_support::now();
                let mut claims = json!({
                    "iss": FIRST, "aud": "api", "scope": "read:users",
                    "iat": now - 10, "exp": now + 600, "jti": format!("{round}-{index}"),
                });
                if let Some(sub) = sub {
                    claims["sub"] = sub.clone();
                }
                let mut got = identity(&engine, &first.sign(&claims)).await;
                got.sort();
                let mut want = vec![
                    ("x-auth-issuer".to_owned(), FIRST.to_owned()),
                    ("x-auth-scopes".to_owned(), "read:users".to_owned()),
                ];
                if let Some(subject) = want_subject {
                    want.push(("x-auth-subject".to_owned(), (*subject).to_owned()));
                }
                want.sort();
                assert_eq!(got, want, "cache {cache}, round {round}, subject {sub:?}");
            }
        }
    }
}
