//! DPoP in the authorizer: HTTP API 2.0 and REST `REQUEST` events carry the request URI
//! (`domainName`/`Host` plus the stage-prefixed path), so a DPoP-bound token with its proof is
//! allowed, a replayed proof or the token alone is refused, and with `[dpop] mode = "required"`
//! a bearer token is refused — decided by the engine as in every front end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_lambda::{AuthorizerError, LambdaConfig};
use jwtgate_test_support::Issuer;
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const HTTP_API_V2: &str = include_str!("events/http-api-v2.json");
const REST_REQUEST: &str = include_str!("events/rest-request.json");
/// What the client used for the HTTP API event: `domainName` + `rawPath` (stage included).
const V2_URI: &str = "https://id.execute-api.us-east-1.amazonaws.com/test/users";

fn config(issuer: &Issuer, mode: &str) -> LambdaConfig {
    let text = format!(
        "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n\n[dpop]\nmode = \"{mode}\"\n",
        issuer.issuer(),
        issuer.audience(),
        issuer.jwks_file().display()
    );
    LambdaConfig::from_toml(&text, "test.toml").unwrap()
}

/// The HTTP API 2.0 event with this `Authorization` value and `DPoP` proof.
fn v2_event(authorization: &str, proof: Option<&str>) -> Value {
    let mut event: Value = serde_json::from_str(&HTTP_API_V2.replace("${TOKEN}", "x")).unwrap();
    let headers = event["headers"].as_object_mut().unwrap();
    headers.insert("authorization".into(), json!(authorization));
    if let Some(proof) = proof {
        headers.insert("dpop".into(), json!(proof));
    }
    event
}

fn proof(key: &SigningKey, uri: &str, token: &str, jti: &str) -> String {
    make_proof(
        key,
        &ProofClaims {
            method: "GET",
            uri,
            access_token: Some(token),
            iat: NOW,
            jti,
            nonce: None,
        },
    )
    .unwrap()
}

fn effect(answer: &Result<Value, AuthorizerError>) -> String {
    match answer {
        Ok(answer) => answer["policyDocument"]["Statement"][0]["Effect"]
            .as_str()
            .or_else(|| {
                answer["isAuthorized"]
                    .as_bool()
                    .map(|b| if b { "Allow" } else { "Deny" })
            })
            .unwrap_or("?")
            .to_owned(),
        Err(AuthorizerError::Unauthorized) => "Unauthorized".to_owned(),
        Err(other) => format!("error: {other}"),
    }
}

#[tokio::test]
async fn http_api_events_carry_the_uri_a_proof_is_checked_against() {
    let issuer = Issuer::new().at(NOW);
    let key = SigningKey::generate(Algorithm::ES256, "client").unwrap();
    let token = issuer.token(json!({"cnf": {"jkt": key_thumbprint(&key).unwrap()}}));
    let authorizer = config(&issuer, "allowed").build("test.toml").unwrap();
    let authorization = format!("DPoP {token}");

    let good = proof(&key, V2_URI, &token, "one");
    let answer = authorizer
        .authorize(v2_event(&authorization, Some(&good)), NOW)
        .await;
    assert_eq!(effect(&answer), "Allow", "{answer:?}");
    let replay = authorizer
        .authorize(v2_event(&authorization, Some(&good)), NOW)
        .await;
    assert_eq!(effect(&replay), "Unauthorized", "{replay:?}");
    // A proof for the path without the stage is a proof for another URI.
    let unstaged = proof(
        &key,
        "https://id.execute-api.us-east-1.amazonaws.com/users",
        &token,
        "two",
    );
    let answer = authorizer
        .authorize(v2_event(&authorization, Some(&unstaged)), NOW)
        .await;
    assert_eq!(effect(&answer), "Unauthorized", "{answer:?}");
    // The token alone, as a bearer token: a downgrade.
    let answer = authorizer
        .authorize(v2_event(&format!("Bearer {token}"), None), NOW)
        .await;
    assert_eq!(effect(&answer), "Unauthorized", "{answer:?}");
}

#[tokio::test]
async fn rest_request_events_use_the_host_and_the_context_path() {
    let issuer = Issuer::new().at(NOW);
    let key = SigningKey::generate(Algorithm::ES256, "client").unwrap();
    let token = issuer.token(json!({"cnf": {"jkt": key_thumbprint(&key).unwrap()}}));
    let authorizer = config(&issuer, "allowed").build("test.toml").unwrap();
    let mut event: Value = serde_json::from_str(&REST_REQUEST.replace("${TOKEN}", "x")).unwrap();
    event["multiValueHeaders"] = json!({});
    let headers = event["headers"].as_object_mut().unwrap();
    headers.insert("Host".into(), json!("api.example.com"));
    headers.insert("Authorization".into(), json!(format!("DPoP {token}")));
    headers.insert(
        "DPoP".into(),
        json!(proof(
            &key,
            "https://api.example.com/test/users",
            &token,
            "rest"
        )),
    );
    event["requestContext"]["path"] = json!("/test/users");
    let answer = authorizer.authorize(event, NOW).await;
    assert_eq!(effect(&answer), "Allow", "{answer:?}");
}

#[tokio::test]
async fn required_mode_refuses_bearer_tokens() {
    let issuer = Issuer::new().at(NOW);
    let authorizer = config(&issuer, "required").build("test.toml").unwrap();
    let token = issuer.token(json!({}));
    let answer = authorizer
        .authorize(v2_event(&format!("Bearer {token}"), None), NOW)
        .await;
    assert_eq!(effect(&answer), "Unauthorized", "{answer:?}");
    let allowed = config(&issuer, "allowed").build("test.toml").unwrap();
    let answer = allowed
        .authorize(v2_event(&format!("Bearer {token}"), None), NOW)
        .await;
    assert_eq!(effect(&answer), "Allow", "{answer:?}");
}
