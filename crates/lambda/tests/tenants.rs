//! The authorizer with an issuer template, against a loopback multi-tenant provider: an allowed
//! tenant's token is allowed with `iss` (the concrete issuer) and `tenant` in the context; a
//! tenant outside the allowlist is `Unauthorized` without a request to the provider; a route's
//! claim condition is a `Deny` policy, decided by the engine as for every front end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_lambda::{AuthorizerError, LambdaConfig};
use jwtgate_test_support::{merge, Issuer, TenantProvider};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const REST_TOKEN: &str = include_str!("events/rest-token.json");

fn event(token: &str) -> Value {
    serde_json::from_str(&REST_TOKEN.replace("${TOKEN}", token)).unwrap()
}

#[tokio::test]
async fn tenant_tokens_carry_their_issuer_and_tenant() {
    let (a, c) = (Issuer::new().at(NOW), Issuer::new().at(NOW));
    let provider = TenantProvider::start(&[("tenant-a", &a), ("tenant-c", &c)]);
    let text = format!(
        r#"
[[issuers]]
issuer = "{}"
tenants = ["tenant-a"]
audiences = ["api"]

[[routes]]
methods = ["GET"]
path = "/users"
claims = {{ email_verified = true }}
"#,
        provider.template()
    );
    let config = LambdaConfig::from_toml(&text, "test.toml").unwrap();
    let authorizer = config.build("test.toml").unwrap();
    let token = |issuer: &Issuer, tenant: &str, patch: Value| {
        let mut claims = issuer.claims(json!({"iss": provider.issuer(tenant), "aud": "api"}));
        merge(&mut claims, patch);
        issuer.sign(&claims)
    };

    let allowed = authorizer
        .authorize(
            event(&token(&a, "tenant-a", json!({"email_verified": true}))),
            NOW,
        )
        .await
        .unwrap();
    let statement = &allowed["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow", "{allowed}");
    assert_eq!(
        allowed["context"]["iss"],
        json!(provider.issuer("tenant-a"))
    );
    assert_eq!(allowed["context"]["tenant"], "tenant-a");

    let denied = authorizer
        .authorize(event(&token(&a, "tenant-a", json!({}))), NOW)
        .await
        .unwrap();
    assert_eq!(
        denied["policyDocument"]["Statement"][0]["Effect"], "Deny",
        "{denied}"
    );
    assert!(
        denied["context"]["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("claims.email_verified == true"),
        "{denied}"
    );

    let before = provider.requests();
    let refused = authorizer
        .authorize(
            event(&token(&c, "tenant-c", json!({"email_verified": true}))),
            NOW,
        )
        .await;
    assert!(
        matches!(refused, Err(AuthorizerError::Unauthorized)),
        "{refused:?}"
    );
    assert_eq!(provider.requests(), before);
}
