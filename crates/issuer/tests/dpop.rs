//! DPoP at the token endpoint (RFC 9449 §5): a proof yields `token_type` `DPoP` and an access
//! token bound to the proof's key (`cnf.jkt`); a public client's refresh token is bound to the
//! same key; bad, replayed and foreign proofs are refused with `invalid_dpop_proof`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::*;
use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};

fn proof(h: &Harness, key: &SigningKey, jti: &str) -> String {
    make_proof(
        key,
        &ProofClaims {
            method: "POST",
            uri: &format!("{ISS}oauth/token"),
            access_token: None,
            iat: h.now(),
            jti,
            nonce: None,
        },
    )
    .unwrap()
}

async fn exchange_with_proof(h: &Harness, code: &str, proof: &str) -> Reply {
    h.post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "jwtgate-spa"),
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        &[("dpop", proof)],
    )
    .await
}

async fn refresh(h: &Harness, token: &str, proof: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = proof.map(|p| ("dpop", p)).into_iter().collect();
    h.post_form_with(
        "/oauth/token",
        &[
            ("client_id", "jwtgate-spa"),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ],
        &headers,
    )
    .await
}

#[tokio::test]
async fn a_proof_binds_the_access_token_and_the_public_clients_refresh_token() {
    let h = Harness::new();
    let key = SigningKey::generate(Algorithm::ES256, "spa").unwrap();
    let jkt = key_thumbprint(&key).unwrap();
    let code = h.code_for(&[], "alice").await;
    let reply = exchange_with_proof(&h, &code, &proof(&h, &key, "code")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["token_type"], "DPoP");
    let (_, claims) = decode(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // The refresh token is bound: without a proof, or with another key's, it is refused (and
    // not burnt); with the key's proof it works and the new access token is bound again.
    let bare = refresh(&h, &refresh_token, None).await;
    assert_eq!(
        bare.json()["error"],
        "invalid_dpop_proof",
        "{}",
        bare.text()
    );
    let thief = SigningKey::generate(Algorithm::ES256, "thief").unwrap();
    let stolen = refresh(&h, &refresh_token, Some(&proof(&h, &thief, "thief"))).await;
    assert_eq!(stolen.json()["error"], "invalid_dpop_proof");
    let good = refresh(&h, &refresh_token, Some(&proof(&h, &key, "refresh"))).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text());
    assert_eq!(good.json()["token_type"], "DPoP");
    let (_, claims) = decode(good.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());
}

#[tokio::test]
async fn without_a_proof_tokens_stay_bearer_tokens() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    let body = h.exchange(&code).await.json();
    assert_eq!(body["token_type"], "Bearer");
    let (_, claims) = decode(body["access_token"].as_str().unwrap());
    assert!(claims.get("cnf").is_none());
}

#[tokio::test]
async fn bad_and_replayed_proofs_are_refused() {
    let h = Harness::new();
    let key = SigningKey::generate(Algorithm::ES256, "spa").unwrap();
    let used = proof(&h, &key, "once");
    let code = h.code_for(&[], "alice").await;
    assert_eq!(
        exchange_with_proof(&h, &code, &used).await.status,
        StatusCode::OK
    );
    let code = h.code_for(&[], "alice").await;
    let replay = exchange_with_proof(&h, &code, &used).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_dpop_proof");
    assert!(replay.text().contains("already used"), "{}", replay.text());

    let elsewhere = make_proof(
        &key,
        &ProofClaims {
            method: "POST",
            uri: "http://localhost:4400/authorize",
            access_token: None,
            iat: h.now(),
            jti: "elsewhere",
            nonce: None,
        },
    )
    .unwrap();
    let code = h.code_for(&[], "alice").await;
    let wrong_uri = exchange_with_proof(&h, &code, &elsewhere).await;
    assert_eq!(wrong_uri.json()["error"], "invalid_dpop_proof");

    let code = h.code_for(&[], "alice").await;
    let garbage = exchange_with_proof(&h, &code, "not.a.proof").await;
    assert_eq!(garbage.json()["error"], "invalid_dpop_proof");
}

#[tokio::test]
async fn discovery_lists_proof_algorithms() {
    let h = Harness::new();
    let document = h.get("/.well-known/openid-configuration").await.json();
    let algs = document["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.iter().any(|a| a == "ES256"));
    assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")));
}
