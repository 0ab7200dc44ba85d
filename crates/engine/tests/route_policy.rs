//! Per-route issuers and audiences, and claim conditions (`claims`, CEL `when`), through the
//! engine with its verified-token cache on: every check runs on cache hits too, so a token
//! verified and cached on one route is never an allow on a route whose audience, issuer or
//! conditions it fails. Keys come from JWKS files (no network).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jwtgate_engine::{ConfigError, Engine, Outcome};
use jwtgate_test_support::Issuer;
use serde_json::json;
use support::{ask_bearer, cached_engine};

const FIRST: &str = "https://first.example/";
const SECOND: &str = "https://second.example/";

struct Answer {
    status: u16,
    kind: &'static str,
    description: String,
}

async fn ask(engine: &Engine, path: &str, token: &str) -> Answer {
    match ask_bearer(engine, path, token).await {
        Outcome::Allow(_) => Answer {
            status: 200,
            kind: "allow",
            description: String::new(),
        },
        Outcome::Deny(denial) => Answer {
            status: denial.status(),
            kind: denial.kind(),
            description: denial.description().to_owned(),
        },
        Outcome::Preflight => panic!("no preflight here"),
    }
}

fn two_issuers() -> (Issuer, Issuer) {
    (
        Issuer::new()
            .with_issuer(FIRST)
            .with_audience("api-default"),
        Issuer::new()
            .with_issuer(SECOND)
            .with_audience("api-default"),
    )
}

fn issuers_toml(first: &Issuer, second: &Issuer) -> String {
    format!("{}\n{}", first.issuer_toml(), second.issuer_toml())
}

#[tokio::test]
async fn a_token_cached_for_one_routes_audience_is_refused_where_that_audience_is_not_accepted() {
    let (first, second) = two_issuers();
    let toml = format!(
        r#"{}
[[routes]]
path = "/a"
audiences = ["api-a"]

[[routes]]
path = "/b"
audiences = ["api-b"]

[[routes]]
path = "/default"
"#,
        issuers_toml(&first, &second)
    );
    let engine = cached_engine(&toml).unwrap();
    let for_a = first.token(json!({"aud": "api-a"}));
    assert_eq!(ask(&engine, "/a", &for_a).await.status, 200);
    for path in ["/b", "/default"] {
        let answer = ask(&engine, path, &for_a).await;
        assert_eq!(
            (answer.status, answer.kind),
            (401, "audience_mismatch"),
            "{path}"
        );
        assert!(
            answer.description.contains("api-a"),
            "{}",
            answer.description
        );
    }
    assert_eq!(
        engine.metrics().cache_lookups(),
        (2, 1),
        "the refusals were cache hits"
    );
    // Still allowed where it belongs, from the cache.
    assert_eq!(ask(&engine, "/a", &for_a).await.status, 200);

    // The issuer's own audience: accepted on routes without `audiences`, and only there.
    let default = second.token(json!({}));
    assert_eq!(ask(&engine, "/default", &default).await.status, 200);
    assert_eq!(ask(&engine, "/a", &default).await.status, 401);
    assert_eq!(ask(&engine, "/b", &default).await.status, 401);

    // A token for both APIs passes both.
    let both = first.token(json!({"aud": ["api-a", "api-b"]}));
    assert_eq!(ask(&engine, "/b", &both).await.status, 200);
    assert_eq!(ask(&engine, "/a", &both).await.status, 200);
    assert_eq!(ask(&engine, "/default", &both).await.status, 401);
}

#[tokio::test]
async fn a_route_naming_issuers_refuses_the_others() {
    let (first, second) = two_issuers();
    let toml = format!(
        r#"{}
[[routes]]
path = "/second-only"
issuers = ["{SECOND}"]

[[routes]]
path = "/any"
"#,
        issuers_toml(&first, &second)
    );
    let engine = cached_engine(&toml).unwrap();
    let of_first = first.token(json!({}));
    assert_eq!(ask(&engine, "/any", &of_first).await.status, 200);
    let answer = ask(&engine, "/second-only", &of_first).await;
    assert_eq!((answer.status, answer.kind), (401, "issuer_mismatch"));
    assert_eq!(
        ask(&engine, "/second-only", &second.token(json!({})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn claim_conditions_per_route_and_per_issuer() {
    let (first, second) = two_issuers();
    let toml = format!(
        r#"
{first_issuer}claims = {{ email_verified = true }}

{second_issuer}
[[routes]]
path = "/orgs"
claims = {{ org_id = ["org_a", "org_b"] }}

[[routes]]
path = "/admin"
when = 'claims.org_id == "acme" && "admin" in claims.roles'

[[routes]]
path = "/open"
"#,
        first_issuer = first.issuer_toml(),
        second_issuer = second.issuer_toml(),
    );
    let engine = cached_engine(&toml).unwrap();

    // Issuer condition: every route, on every request.
    let unverified_email = first.token(json!({"email_verified": "true"}));
    let answer = ask(&engine, "/open", &unverified_email).await;
    assert_eq!((answer.status, answer.kind), (403, "condition_failed"));
    assert!(
        answer.description.contains("claims.email_verified == true"),
        "{}",
        answer.description
    );
    assert_eq!(
        ask(
            &engine,
            "/open",
            &first.token(json!({"email_verified": true}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        ask(&engine, "/open", &second.token(json!({}))).await.status,
        200
    );

    // Route `claims`: one of, exact type; the same (cached) token passes one route and not another.
    let org_b = second.token(json!({"org_id": "org_b"}));
    assert_eq!(ask(&engine, "/orgs", &org_b).await.status, 200);
    assert_eq!(
        ask(&engine, "/admin", &org_b).await.kind,
        "condition_failed"
    );
    let no_roles = second.token(json!({"org_id": "acme"}));
    let answer = ask(&engine, "/admin", &no_roles).await;
    assert_eq!(
        (answer.status, answer.kind),
        (403, "condition_error"),
        "{}",
        answer.description
    );
    assert!(
        answer.description.contains("could not be evaluated"),
        "{}",
        answer.description
    );
    let answer = ask(
        &engine,
        "/orgs",
        &second.token(json!({"org_id": ["org_b"]})),
    )
    .await;
    assert_eq!((answer.status, answer.kind), (403, "condition_failed"));
    assert!(
        answer
            .description
            .contains("claims.org_id in [\"org_a\", \"org_b\"]"),
        "{}",
        answer.description
    );
    assert_eq!(
        ask(&engine, "/orgs", &second.token(json!({}))).await.status,
        403
    );

    // Route `when`.
    let admin = second.token(json!({"org_id": "acme", "roles": ["admin", "user"]}));
    let user = second.token(json!({"org_id": "acme", "roles": ["user"]}));
    // Asked again and again (cache hits, remembered results), each keeps its own answer.
    for _ in 0..3 {
        assert_eq!(ask(&engine, "/admin", &admin).await.status, 200);
        assert_eq!(ask(&engine, "/admin", &user).await.kind, "condition_failed");
    }
    let answer = ask(&engine, "/admin", &user).await;
    assert_eq!((answer.status, answer.kind), (403, "condition_failed"));
    assert!(
        answer.description.contains("\"admin\" in claims.roles"),
        "{}",
        answer.description
    );
    let wrong_type = second.token(json!({"org_id": "acme", "roles": "admin"}));
    let answer = ask(&engine, "/admin", &wrong_type).await;
    assert_eq!(
        answer.status, 403,
        "a wrong type is never an allow: {}",
        answer.description
    );
    // Both conditions of a first-issuer token on a route: the issuer's first.
    let both = first.token(json!({"org_id": "acme", "roles": ["admin"]}));
    assert_eq!(ask(&engine, "/admin", &both).await.kind, "condition_failed");
}

#[test]
fn conditions_and_route_issuers_are_checked_when_the_configuration_loads() {
    let issuer = Issuer::new().with_issuer(FIRST);
    let base = format!(
        "[[issuers]]\nissuer = \"{FIRST}\"\naudiences = [\"a\"]\njwks_file = \"{}\"\n",
        issuer.jwks_file().display()
    );
    let cases = [
        (
            "[[routes]]\npath = \"/x\"\nwhen = 'claims.a =='\n",
            "routes[0].when",
            "syntax",
        ),
        (
            "[[routes]]\npath = \"/x\"\nwhen = 'lookup(claims.a)'\n",
            "routes[0].when",
            "\"lookup\"",
        ),
        (
            "[[routes]]\npath = \"/x\"\nwhen = 'request.ip == \"x\"'\n",
            "routes[0].when",
            "\"request\"",
        ),
        (
            "[[routes]]\npath = \"/x\"\nclaims = { a = 1.5 }\n",
            "routes[0].claims",
            "\"a\"",
        ),
        (
            "[[routes]]\npath = \"/x\"\nissuers = [\"https://other.example/\"]\n",
            "routes[0].issuers[0]",
            "not a configured issuer",
        ),
        (
            "[[routes]]\npath = \"/x\"\npublic = true\naudiences = [\"b\"]\n",
            "routes[0].public",
            "public route",
        ),
    ];
    for (routes, key, message) in cases {
        let error = cached_engine(&format!("{base}{routes}")).err();
        match error {
            Some(ConfigError::Invalid {
                file,
                key: k,
                message: m,
            }) => {
                assert_eq!((file.as_str(), k.as_str()), ("test.toml", key), "{routes}");
                assert!(m.contains(message), "{m}");
            }
            other => panic!("{routes}: {other:?}"),
        }
    }
    let issuer_when = format!("{base}when = 'nope(1)'\n");
    match cached_engine(&issuer_when).err() {
        Some(ConfigError::Invalid { key, .. }) => assert_eq!(key, "issuers[0].when"),
        other => panic!("{other:?}"),
    }
}
