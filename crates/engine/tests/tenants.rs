//! Issuer templates against a loopback provider serving three tenants (discovery and JWKS per
//! tenant, every tenant signing with its own key under the same `kid`): an allowed tenant's
//! token passes; a token claiming tenant B signed with tenant A's key is refused (keys are
//! cached per concrete issuer, never by `kid` alone); a tenant outside the allowlist is refused
//! without a single request to the provider; a flood of invented tenants costs at most the
//! documented fetch budget and at most `max_tenants` concrete issuers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jwtgate_engine::{Engine, Outcome};
use jwtgate_test_support::{Issuer, TenantProvider};
use serde_json::json;
use support::{ask_bearer, Config};

fn engine_for(toml: &str) -> Engine {
    let config = Config::parse(toml, "test.toml").unwrap();
    config
        .engine()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_issuer_scopes(jwtgate_engine::issuer_scopes(&config.issuers))
}

async fn ask(engine: &Engine, path: &str, token: &str) -> (u16, &'static str) {
    match ask_bearer(engine, path, token).await {
        Outcome::Allow(_) => (200, "allow"),
        Outcome::Deny(denial) => (denial.status(), denial.kind()),
        Outcome::Preflight => panic!("no preflight here"),
    }
}

/// Three tenants, each with its own ES256 key, all under kid `k1`.
fn three_tenants() -> (TenantProvider, Issuer, Issuer, Issuer) {
    let (a, b, c) = (Issuer::new(), Issuer::new(), Issuer::new());
    let provider = TenantProvider::start(&[("tenant-a", &a), ("tenant-b", &b), ("tenant-c", &c)]);
    (provider, a, b, c)
}

/// A token for `tenant` of `provider`, signed by `signer`.
fn token(
    provider: &TenantProvider,
    tenant: &str,
    signer: &Issuer,
    patch: serde_json::Value,
) -> String {
    let mut claims = signer.claims(json!({"iss": provider.issuer(tenant), "aud": "api"}));
    jwtgate_test_support::merge(&mut claims, patch);
    signer.sign(&claims)
}

#[tokio::test]
async fn allowed_tenants_verify_with_their_own_keys_only_and_others_cost_nothing() {
    let (provider, a, b, c) = three_tenants();
    let toml = format!(
        r#"
[[issuers]]
issuer = "{}"
tenants = ["tenant-a", "tenant-b"]
audiences = ["api"]
scopes = ["read:users"]
"#,
        provider.template()
    );
    let engine = engine_for(&toml);

    assert_eq!(
        ask(&engine, "/", &token(&provider, "tenant-a", &a, json!({}))).await,
        (200, "allow")
    );
    let a_fetches = provider.requests_for("tenant-a");
    assert_eq!(
        a_fetches, 2,
        "tenant A: its discovery document and its JWKS"
    );

    // Claims tenant B, signed with A's key (same kid): B's own keys are fetched, and refuse it.
    let forged = token(&provider, "tenant-b", &a, json!({}));
    assert_eq!(ask(&engine, "/", &forged).await, (401, "bad_signature"));
    assert_eq!(provider.requests_for("tenant-b"), 2);
    assert_eq!(
        ask(&engine, "/", &token(&provider, "tenant-b", &b, json!({}))).await,
        (200, "allow")
    );
    // And A's cache was never touched by B's token.
    assert_eq!(provider.requests_for("tenant-a"), a_fetches);

    let metrics = engine.metrics().render(engine.registry());
    for tenant in ["tenant-a", "tenant-b"] {
        let label = format!(
            "jwtgate_jwks_fetches_total{{issuer=\"{}\"}} 1",
            provider.issuer(tenant)
        );
        assert!(metrics.contains(&label), "{label} in {metrics}");
    }

    // Tenant C exists at the provider but is not allowed: refused before any request.
    let before = provider.requests();
    assert_eq!(
        ask(&engine, "/", &token(&provider, "tenant-c", &c, json!({}))).await,
        (401, "issuer_mismatch")
    );
    assert_eq!(
        provider.requests(),
        before,
        "a tenant outside the allowlist costs no fetch"
    );

    // The issuer's scopes apply to its tenants' tokens.
    let no_scope = token(&provider, "tenant-a", &a, json!({"permissions": []}));
    assert_eq!(
        ask(&engine, "/", &no_scope).await,
        (403, "insufficient_scope")
    );

    // Only one segment stands for the placeholder.
    let two_segments = token(&provider, "tenant-a/x", &a, json!({}));
    assert_eq!(
        ask(&engine, "/", &two_segments).await,
        (401, "issuer_mismatch")
    );
    assert_eq!(provider.requests(), before);
}

#[tokio::test]
async fn routes_name_templates_and_conditions_apply_to_tenants() {
    let (provider, a, _b, _c) = three_tenants();
    let other = Issuer::new().with_issuer("https://other.example/");
    let toml = format!(
        r#"
[[issuers]]
issuer = "{template}"
tenants = ["tenant-a"]
audiences = ["api"]
when = 'claims.tid == "tenant-a"'

[[issuers]]
issuer = "https://other.example/"
audiences = ["api"]
jwks_file = "{file}"

[[routes]]
path = "/tenants"
issuers = ["{template}"]

[[routes]]
path = "/other"
issuers = ["https://other.example/"]
audiences = ["other-api"]
"#,
        template = provider.template(),
        file = other.jwks_file().display()
    );
    let engine = engine_for(&toml);
    let tenant_token = token(&provider, "tenant-a", &a, json!({"tid": "tenant-a"}));
    assert_eq!(
        ask(&engine, "/tenants", &tenant_token).await,
        (200, "allow")
    );
    assert_eq!(
        ask(&engine, "/other", &tenant_token).await,
        (401, "issuer_mismatch")
    );
    let wrong_tid = token(&provider, "tenant-a", &a, json!({"tid": "tenant-b"}));
    assert_eq!(
        ask(&engine, "/tenants", &wrong_tid).await,
        (403, "condition_failed")
    );
    let other_token = other.token(json!({"aud": "other-api"}));
    assert_eq!(ask(&engine, "/other", &other_token).await, (200, "allow"));
    assert_eq!(ask(&engine, "/tenants", &other_token).await.0, 401);
}

#[tokio::test]
async fn five_thousand_invented_tenants_cost_at_most_the_fetch_budget() {
    let (provider, a, _b, _c) = three_tenants();
    let budget = 20;
    let max_tenants = 50;
    let any = format!(
        r#"
[keys]
tenant_fetches_per_minute = {budget}

[[issuers]]
issuer = "{}"
tenants = "any"
max_tenants = {max_tenants}
audiences = ["api"]
"#,
        provider.template()
    );
    let engine = engine_for(&any);
    let started = std::time::Instant::now();
    for i in 0..5000 {
        let invented = token(&provider, &format!("invented-{i}"), &a, json!({}));
        let (status, _) = ask(&engine, "/", &invented).await;
        assert_eq!(status, 401);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the test ran within one budget window"
    );
    assert!(
        provider.requests() <= budget,
        "{} requests for a budget of {budget} documents per minute",
        provider.requests()
    );
    assert!(provider.requests() > 0, "the budget was used");
    let held = engine.registry().templates()[0].held().len();
    assert!(held <= max_tenants, "{held} concrete issuers held");
    // An allowed tenant still gets its keys once the budget allows; here it is spent, so it is
    // refused as invalid_token (keys unavailable), never a server error.
    let (status, kind) = ask(&engine, "/", &token(&provider, "tenant-a", &a, json!({}))).await;
    assert_eq!((status, kind), (401, "keys_unavailable"));

    // With an allowlist, invented tenants cost nothing at all.
    let (provider, a, _b, _c) = three_tenants();
    let listed = format!(
        "[[issuers]]\nissuer = \"{}\"\ntenants = [\"tenant-a\"]\naudiences = [\"api\"]\n",
        provider.template()
    );
    let engine = engine_for(&listed);
    for i in 0..5000 {
        let invented = token(&provider, &format!("invented-{i}"), &a, json!({}));
        assert_eq!(ask(&engine, "/", &invented).await, (401, "issuer_mismatch"));
    }
    assert_eq!(provider.requests(), 0);
    assert_eq!(engine.registry().templates()[0].held().len(), 0);
}

/// Every TOML example in `docs/configuration.md` that configures issuers loads (templates,
/// conditions and all), without any network call.
#[test]
fn the_documented_examples_load() {
    let docs = include_str!("../../../docs/configuration.md");
    let mut loaded = 0;
    for block in docs.split("```toml\n").skip(1) {
        let example = block.split("```").next().unwrap_or_default();
        if !example.contains("[[issuers]]") {
            continue;
        }
        let file = "docs/configuration.md";
        let config = Config::parse(example, file).unwrap();
        let unmatched = jwtgate_engine::Unmatched::resolve(None, !config.routes.is_empty());
        config
            .engine_with(&config.routes, unmatched, file)
            .unwrap_or_else(|e| panic!("{e}\n{example}"));
        loaded += 1;
    }
    assert!(loaded >= 3, "the Entra ID, Auth0 and Keycloak examples");
}

#[tokio::test]
async fn tenants_sharing_one_jwks_document_still_keep_their_own_caches() {
    // Entra ID's shape: every tenant's keys at one common URL. Each concrete issuer still
    // fetches and caches the document for itself.
    let common = Issuer::new();
    let server = jwtgate_test_support::JwksServer::start(&common.jwks());
    let toml = format!(
        r#"
[[issuers]]
issuer = "https://login.example.com/{{tenant}}/v2.0"
tenants = ["one", "two"]
audiences = ["api"]
jwks_url = "{}"
"#,
        server.jwks_url()
    );
    let engine = engine_for(&toml);
    let for_tenant = |tenant: &str| {
        common
            .token(json!({"iss": format!("https://login.example.com/{tenant}/v2.0"), "aud": "api"}))
    };
    assert_eq!(ask(&engine, "/", &for_tenant("one")).await, (200, "allow"));
    assert_eq!(ask(&engine, "/", &for_tenant("one")).await, (200, "allow"));
    assert_eq!(server.jwks_fetches(), 1);
    assert_eq!(ask(&engine, "/", &for_tenant("two")).await, (200, "allow"));
    assert_eq!(
        server.jwks_fetches(),
        2,
        "tenant two fetched the document for itself"
    );
    let held = engine.registry().templates()[0].held();
    assert_eq!(held.len(), 2);
    assert!(!held[0].1.source().same_source(held[1].1.source()));
}
