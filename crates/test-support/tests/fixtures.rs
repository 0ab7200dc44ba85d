//! The fixtures themselves: an `Issuer`'s tokens verify against its own JWKS (as JSON and as a
//! file) under a policy for its issuer and audience, and only there; its expired and ID tokens
//! are refused for what they are; patches set and remove claims; the `JwksServer` serves what
//! it is told and counts every fetch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, KeySet, Policy, Reason, Verifier};
use jwtgate_test_support::{free_port, now, Issuer, JwksServer, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use std::io::{Read, Write};

fn verifier(issuer: &Issuer, jwks: &[u8]) -> Verifier {
    let policy = Policy::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .build()
        .unwrap();
    Verifier::new(policy, KeySet::from_json(jwks).unwrap())
}

#[test]
fn tokens_verify_against_the_issuers_own_keys_only() {
    let issuer = Issuer::new();
    assert_eq!((issuer.issuer(), issuer.audience()), (ISSUER, AUDIENCE));
    let from_json = verifier(&issuer, issuer.jwks().to_string().as_bytes());
    let from_file = verifier(&issuer, &std::fs::read(issuer.jwks_file()).unwrap());
    let token = issuer.token(json!({"email": "alice@example.com", "scope": null}));
    for verifier in [&from_json, &from_file] {
        let verified = verifier.verify(token.as_bytes(), now()).unwrap();
        let claims = verified.claims();
        assert_eq!(claims["sub"], "auth0|alice");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["permissions"], json!(["read:users"]));
        assert!(!claims.contains_key("scope"));
    }

    let stranger = Issuer::new();
    assert!(from_json
        .verify(stranger.token(json!({})).as_bytes(), now())
        .is_err());
}

#[test]
fn expired_and_id_tokens_are_refused_for_what_they_are() {
    const NOW: i64 = 1_800_000_000;
    let issuer = Issuer::new().with_key(Algorithm::RS256, "rsa-1").at(NOW);
    let verifier = verifier(&issuer, issuer.jwks().to_string().as_bytes());
    assert!(verifier
        .verify(issuer.token(json!({})).as_bytes(), NOW)
        .is_ok());
    let expired = verifier
        .verify(issuer.expired().as_bytes(), NOW)
        .unwrap_err();
    assert!(
        matches!(expired.reason(), Reason::Expired { .. }),
        "{expired}"
    );
    let id_token = verifier
        .verify(issuer.id_token("spa", json!({})).as_bytes(), NOW)
        .unwrap_err();
    assert!(
        matches!(id_token.reason(), Reason::AudienceMismatch { .. }),
        "{id_token}"
    );
}

#[test]
fn extra_keys_follow_the_signing_key() {
    let issuer = Issuer::new().with_jwk(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}));
    let jwks = issuer.jwks();
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert_eq!(jwks["keys"][1]["kid"], "hmac");
    let file: Value = serde_json::from_slice(&std::fs::read(issuer.jwks_file()).unwrap()).unwrap();
    assert_eq!(file, jwks);
}

/// `GET path` over a fresh connection: the whole answer.
fn get(server: &JwksServer, path: &str) -> String {
    let address = server.base().trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: keys\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_server_serves_what_it_is_told_and_counts_fetches() {
    let issuer = Issuer::new();
    let server = JwksServer::start(&issuer.jwks());
    let answer = get(&server, "/jwks");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("Cache-Control: public, max-age=600\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with(&issuer.jwks().to_string()), "{answer}");

    let answer = get(&server, "/.well-known/openid-configuration");
    let document: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(document["issuer"], server.issuer());
    assert_eq!(document["jwks_uri"], server.jwks_url());

    server.set_jwks(&json!({"keys": []}));
    server.set_cache_control(None);
    server.set_document_issuer("https://impostor.example/");
    let answer = get(&server, "/jwks?fresh=1");
    assert!(answer.ends_with(r#"{"keys":[]}"#), "{answer}");
    assert!(!answer.contains("Cache-Control"), "{answer}");
    assert!(get(&server, "/.well-known/openid-configuration").contains("impostor"));
    assert!(get(&server, "/other").starts_with("HTTP/1.1 404"));

    assert_eq!(server.jwks_fetches(), 2);
    assert_eq!(server.discovery_fetches(), 2);
    assert_eq!(
        server
            .jwks_counter()
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[test]
fn free_ports_can_be_bound() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}
