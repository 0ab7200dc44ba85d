//! The Lambda authorizer enforces `[revocation]` like the gateway: a rules file read at init
//! (and followed while the function runs) refuses a revoked token with `Unauthorized` (401) —
//! from the verified-token cache too — while other tokens are allowed; a Redis source is refused
//! by a build without Redis support.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_lambda::{AuthorizerError, LambdaConfig};
use jwtgate_revocation::{to_json_lines, Rule};
use jwtgate_test_support::{now, Issuer, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn event(token: &str) -> Value {
    json!({
        "type": "TOKEN",
        "authorizationToken": format!("Bearer {token}"),
        "methodArn": "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/GET/users",
    })
}

#[tokio::test]
async fn a_rules_file_refuses_revoked_tokens_cached_or_not() {
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("revoked.jsonl");
    std::fs::write(
        &rules,
        to_json_lines(&[Rule::jti("stolen", now() + 600).unwrap()]),
    )
    .unwrap();
    let text = format!(
        "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = {:?}\n\n[revocation]\nfile = {:?}\n",
        issuer.jwks_file().display().to_string(),
        rules.display().to_string()
    );
    let authorizer = LambdaConfig::from_toml(&text, "lambda.toml")
        .unwrap()
        .build("lambda.toml")
        .unwrap();
    let revocation = authorizer.engine().revocation().unwrap().clone();
    assert_eq!(revocation.readiness(), Ok(()), "read at build");
    jwtgate_revocation::follow::start(&revocation);

    let stolen = issuer.token(json!({"jti": "stolen"}));
    let fine = issuer.token(json!({"jti": "fine"}));
    assert!(matches!(
        authorizer.authorize(event(&stolen), now()).await,
        Err(AuthorizerError::Unauthorized)
    ));
    for _ in 0..2 {
        let allowed = authorizer.authorize(event(&fine), now()).await.unwrap();
        assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    }
    // Revoked while cached: refused once the file changes.
    std::fs::write(
        &rules,
        to_json_lines(&[
            Rule::jti("stolen", now() + 600).unwrap(),
            Rule::jti("fine", now() + 600).unwrap(),
        ]),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while authorizer.authorize(event(&fine), now()).await.is_ok() {
        assert!(Instant::now() < deadline, "still allowed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn redis_needs_a_build_with_redis() {
    let text = format!(
        "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = \"/nonexistent\"\n\n[revocation]\nredis_url = \"redis://127.0.0.1:1/\"\n"
    );
    let result = LambdaConfig::from_toml(&text, "lambda.toml")
        .unwrap()
        .build("lambda.toml");
    if jwtgate_revocation::REDIS_SUPPORTED {
        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!error.contains("revocation"), "{error}");
    } else {
        let error = result.err().unwrap().to_string();
        assert!(error.contains("without Redis support"), "{error}");
    }
}
