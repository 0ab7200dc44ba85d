//! `Verified::retained_bytes` against the process's real memory: what verifying Auth0-shaped
//! RS256 tokens leaves resident, measured as the growth of `VmRSS` while 20,000 results are
//! kept, must be within a small margin of the estimate (a cache's byte bound is only as honest
//! as this estimate). The workspace forbids `unsafe`, so no counting allocator: resident memory
//! also counts the allocator's rounding and fragmentation, which is what a full cache costs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, KeySet, Policy, SigningKey, Verified, Verifier};
use jwtgate_test_support::memory::{
    auth0_token, auth0_verifier, resident_bytes, AUTH0_AUDIENCE as AUDIENCE, AUTH0_ISSUER as ISSUER,
};
use serde_json::{json, Map};

const NOW: i64 = 1_700_000_000;

#[test]
fn the_estimate_matches_what_the_allocator_holds_for_an_auth0_token() {
    let key = SigningKey::generate(Algorithm::RS256, "key-2024").unwrap();
    let verifier = auth0_verifier(&key);
    let tokens: Vec<String> = (0..64).map(|i| auth0_token(&key, i, NOW)).collect();
    // Warm up whatever the verifier builds once (key caches, thread locals).
    drop(verifier.verify(tokens[0].as_bytes(), NOW).unwrap());

    const KEPT: usize = 20_000;
    let mut kept: Vec<Verified> = Vec::with_capacity(KEPT);
    let before = resident_bytes();
    for i in 0..KEPT {
        kept.push(
            verifier
                .verify(tokens[i % tokens.len()].as_bytes(), NOW)
                .unwrap(),
        );
    }
    let measured = usize::try_from(resident_bytes() - before).unwrap() / KEPT;
    let estimated = kept.iter().map(Verified::retained_bytes).sum::<usize>() / KEPT;
    eprintln!("Auth0-shaped RS256 token: resident {measured} B, estimated {estimated} B");
    let margin = measured / 8;
    assert!(
        estimated + margin >= measured && estimated <= measured + margin,
        "estimate {estimated} B vs {measured} B resident"
    );
    // Reading the claims a cache hit reads must not grow the value.
    for verified in &kept {
        assert!(verified.subject().is_some());
        assert!(verified.scopes().count() > 0);
        assert_eq!(verified.number("iat"), Some(NOW as f64));
        assert_eq!(verified.audiences().count(), 2);
        assert!(verified.text("jti").is_some());
        assert!(verified.text("azp").is_some());
        assert!(verified.claim_value("cnf").is_none());
        assert!(verified.claim("cnf").is_none());
    }
    let after = kept.iter().map(Verified::retained_bytes).sum::<usize>() / KEPT;
    assert_eq!(after, estimated);
}

#[test]
fn the_full_claims_are_the_payload_whether_or_not_it_is_kept() {
    let key = SigningKey::generate(Algorithm::ES256, "k").unwrap();
    let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
    let policy = Policy::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let verifier = Verifier::new(policy, KeySet::from_json(jwks.as_bytes()).unwrap());
    // Every member captured (the payload is not kept), in an order unlike the captured list's.
    let captured_only = json!({
        "sub": "alice", "exp": NOW + 60, "aud": [AUDIENCE], "iss": ISSUER, "cnf": {"jkt": "t"},
    });
    // A custom member besides (the payload is kept for it).
    let with_custom = json!({
        "tenant": {"id": 7}, "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60, "sub": "bob",
    });
    for claims in [captured_only, with_custom] {
        let token = key.sign(&Map::new(), &claims).unwrap();
        let verified = verifier.verify(token.as_bytes(), NOW).unwrap();
        let expected = claims.as_object().unwrap();
        let names: Vec<&String> = verified.claims().keys().collect();
        assert_eq!(names, expected.keys().collect::<Vec<_>>(), "document order");
        assert_eq!(verified.claims(), expected);
        for (name, value) in expected {
            assert_eq!(verified.claim(name), Some(value), "{name}");
        }
        assert_eq!(verified.claim("nonce"), None);
        assert_eq!(verified.clone().into_claims(), *expected);
    }
}
