//! Rejections that explain themselves, and [`jwtgate_core::explain`]:
//!
//! * descriptions name the real cause: an ID token sent instead of the access token (nonce,
//!   at_hash, aud = azp), a required scope present only in another claim, clock skew for small
//!   expiries and `iat`/`nbf` in the future, an empty token (`invalid_request`), an opaque token;
//! * `explain`'s outcome equals `Verifier::verify` for the same inputs (valid, expired, bad
//!   signature, opaque, …), the failing step is named, and when the signature fails the claim
//!   checks still run and are marked "(unverified claims)".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jwtgate_core::rejection::IdTokenSigns;
use jwtgate_core::{
    explain, ErrorCode, Explanation, JwsError, Policy, Reason, ScopeRequirement, Status,
};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// ID tokens
// ---------------------------------------------------------------------------------------------

fn id_token_claims() -> serde_json::Value {
    json!({
        "iss": ISS,
        "aud": "spa-client-id",
        "azp": "spa-client-id",
        "sub": "auth0|alice",
        "exp": NOW + 600,
        "iat": NOW - 5,
        "nonce": "n-0S6_WzA2Mj",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "email": "alice@example.com",
    })
}

#[test]
fn an_id_token_is_recognised() {
    let r = reject(&sign(&keys().rs, &id_token_claims()));
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    assert_eq!(
        r.reason(),
        &Reason::AudienceMismatch {
            found: vec!["spa-client-id".into()],
            expected: vec![AUD.into()],
            id_token: IdTokenSigns {
                claims: vec!["nonce", "at_hash"],
                aud_is_client_id: true
            },
        }
    );
    let d = r.description();
    assert!(
        d.contains("this looks like an ID token (aud is a client id, has nonce, has at_hash)"),
        "{d}"
    );
    assert!(d.contains("send the access token instead"), "{d}");
    assert!(r.hint().is_some_and(|h| h.contains("getTokenSilently")));
}

#[test]
fn each_id_token_sign_is_enough() {
    // Only a nonce.
    let c = claims(json!({"aud": "spa-client-id", "nonce": "abc"}));
    let r = reject(&sign(&keys().es, &c));
    assert!(r
        .description()
        .contains("this looks like an ID token (has nonce)"));
    // Only at_hash.
    let c = claims(json!({"aud": "spa-client-id", "at_hash": "abc"}));
    let r = reject(&sign(&keys().es, &c));
    assert!(r
        .description()
        .contains("this looks like an ID token (has at_hash)"));
    // Only aud == azp (array of one).
    let c = claims(json!({"aud": ["spa-client-id"], "azp": "spa-client-id"}));
    let r = reject(&sign(&keys().es, &c));
    assert!(r
        .description()
        .contains("this looks like an ID token (aud is a client id)"));
    // None of them: a plain audience mismatch.
    let c = claims(json!({"aud": "https://other-api.example", "azp": "spa-client-id"}));
    let r = reject(&sign(&keys().es, &c));
    assert!(!r.description().contains("ID token"), "{}", r.description());
    assert!(r.hint().is_some_and(|h| h.contains("`audience`")));
}

#[test]
fn an_access_token_with_the_right_audience_is_not_called_an_id_token() {
    // Some providers put azp in access tokens; with the right aud it is simply accepted.
    let c = claims(json!({"azp": "spa-client-id"}));
    accept(&sign(&keys().es, &c));
}

// ---------------------------------------------------------------------------------------------
// Scopes in the wrong claim
// ---------------------------------------------------------------------------------------------

#[test]
fn a_scope_present_only_in_another_claim_is_named() {
    let p = policy()
        .scopes(ScopeRequirement::all_of(["read:users", "admin"]))
        .build()
        .unwrap();
    let c = claims(json!({
        "scope": "openid profile",
        "https://app/roles": ["read:users", "viewer"],
        "groups": "staff admin",
    }));
    let r = verify(p, all_keys(), &sign(&keys().ed, &c), NOW).unwrap_err();
    assert_eq!(r.code(), ErrorCode::InsufficientScope);
    let Reason::InsufficientScope {
        missing, elsewhere, ..
    } = r.reason()
    else {
        panic!("{r:?}");
    };
    assert_eq!(missing, &vec!["read:users".to_owned(), "admin".to_owned()]);
    assert!(elsewhere.contains(&("read:users".to_owned(), "https://app/roles".to_owned())));
    assert!(elsewhere.contains(&("admin".to_owned(), "groups".to_owned())));
    assert_eq!(elsewhere.len(), 2);
    let d = r.description();
    assert!(
        d.contains("read:users appears only in claim \"https://app/roles\""),
        "{d}"
    );
    assert!(d.contains("admin appears only in claim \"groups\""), "{d}");
    assert!(d.contains("use scope, scp or permissions"), "{d}");
}

#[test]
fn no_elsewhere_note_when_the_scope_is_nowhere() {
    let p = policy()
        .scopes(ScopeRequirement::all_of(["read:users"]))
        .build()
        .unwrap();
    let c = claims(json!({"scope": "openid", "https://app/roles": ["read:users2"]}));
    let r = verify(p, all_keys(), &sign(&keys().ed, &c), NOW).unwrap_err();
    assert!(!r.description().contains("appears only"));
}

// ---------------------------------------------------------------------------------------------
// Clock skew
// ---------------------------------------------------------------------------------------------

#[test]
fn a_token_that_just_expired_suggests_clock_skew() {
    let r = reject(&sign(&keys().es, &claims(json!({"exp": NOW - 10}))));
    assert_eq!(
        r.description(),
        "the token expired 10 s ago; if the clocks differ slightly, allow a leeway"
    );
    assert!(r.hint().is_some_and(|h| h.contains("fresh token")));
    // Five minutes is still "slightly".
    let r = reject(&sign(&keys().es, &claims(json!({"exp": NOW - 300}))));
    assert!(r.description().contains("allow a leeway"));
    // Long expired: no clock talk.
    let r = reject(&sign(&keys().es, &claims(json!({"exp": NOW - 3600}))));
    assert_eq!(r.description(), "the token expired 60 min ago");
    let r = reject(&sign(&keys().es, &claims(json!({"exp": NOW - 3 * 86_400}))));
    assert_eq!(r.description(), "the token expired 3 d ago");
}

#[test]
fn iat_or_nbf_in_the_future_suggests_clock_skew() {
    let r = reject(&sign(&keys().es, &claims(json!({"iat": NOW + 20}))));
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    let d = r.description();
    assert!(d.contains("issued 20 s in the future"), "{d}");
    assert!(d.contains("clock skew"), "{d}");
    assert!(r.hint().is_some_and(|h| h.contains("leeway")));

    let r = reject(&sign(&keys().es, &claims(json!({"nbf": NOW + 45}))));
    let d = r.description();
    assert!(
        d.contains("not valid yet (nbf is 45 s in the future)"),
        "{d}"
    );
    assert!(d.contains("clock skew"), "{d}");
}

// ---------------------------------------------------------------------------------------------
// Empty and opaque tokens
// ---------------------------------------------------------------------------------------------

#[test]
fn an_empty_token_is_invalid_request() {
    let r = verifier().verify(b"", NOW).unwrap_err();
    assert_eq!(r.reason(), &Reason::Malformed(JwsError::Empty));
    assert_eq!(r.code(), ErrorCode::InvalidRequest);
    assert_eq!(r.code().as_str(), "invalid_request");
    assert_eq!(r.code().http_status(), 400);
    assert_eq!(r.description(), "the bearer token is empty");
    assert_eq!(r.to_string(), "invalid_request: the bearer token is empty");
    // Anything non-empty that is wrong is invalid_token, even a lone dot.
    for t in [".", " ", "Bearer"] {
        assert_eq!(reject(t).code(), ErrorCode::InvalidToken, "{t:?}");
    }
}

#[test]
fn an_opaque_token_mentions_the_audience() {
    let r = reject("ya29.a0AfH6SMB");
    // Two segments: not opaque in the strict sense, but still not a JWT.
    assert_eq!(r.reason(), &Reason::Malformed(JwsError::SegmentCount(2)));
    let r = reject("nQ8F7hYpN2kq4Z3t0xWvLm1sRbC6dEoJ");
    assert_eq!(r.reason(), &Reason::Malformed(JwsError::Opaque));
    assert!(r.description().contains("opaque access token"));
    assert!(r.description().contains("`audience`"));
    assert_eq!(
        r.to_string(),
        "invalid_token: token is an opaque access token, not a JWT: request it with an `audience`"
    );
}

// ---------------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------------

fn run(token: &str, policy: &Policy, now: i64) -> Explanation {
    explain(token.as_bytes(), policy, &all_keys(), now)
}

fn outcome_matches_verify(token: &str, policy: &Policy, now: i64) -> Explanation {
    let e = run(token, policy, now);
    let direct =
        jwtgate_core::Verifier::new(policy.clone(), all_keys()).verify(token.as_bytes(), now);
    assert_eq!(e.outcome, direct, "explain and verify disagree on {token}");
    e
}

fn names(e: &Explanation) -> Vec<&str> {
    e.steps.iter().map(|s| s.name.as_str()).collect()
}

fn failing(e: &Explanation) -> Vec<&str> {
    e.steps
        .iter()
        .filter(|s| matches!(s.status, Status::Fail(_)))
        .map(|s| s.name.as_str())
        .collect()
}

fn status<'e>(e: &'e Explanation, name: &str) -> &'e Status {
    &e.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {:?}", names(e)))
        .status
}

#[test]
fn explain_a_valid_token() {
    let p = policy()
        .scopes(ScopeRequirement::all_of(["read:users"]))
        .build()
        .unwrap();
    for signer in [&keys().rs, &keys().es, &keys().ed] {
        let token = sign(signer, &base_claims());
        let e = outcome_matches_verify(&token, &p, NOW);
        assert!(e.outcome.is_ok());
        assert!(failing(&e).is_empty(), "{:?}", e.steps);
        assert_eq!(
            names(&e),
            vec![
                "size",
                "structure and header",
                "algorithm allowed",
                "key selection",
                "signature",
                "claims",
                "issuer",
                "audience",
                "expiry (exp)",
                "not before (nbf)",
                "issued at (iat)",
                "scope count",
                "scopes",
            ]
        );
        assert!(
            matches!(status(&e, "signature"), Status::Pass(t) if t.contains(signer.algorithm().name()))
        );
        assert_eq!(
            e.claims.as_ref().map(|c| c["sub"].clone()),
            Some(json!("auth0|alice"))
        );
        assert_eq!(
            e.header.as_ref().and_then(|h| h.get("kid")).cloned(),
            Some(json!(signer.kid()))
        );
    }
}

#[test]
fn explain_an_expired_token() {
    let p = policy().build().unwrap();
    let token = sign(&keys().es, &claims(json!({"exp": NOW - 10})));
    let e = outcome_matches_verify(&token, &p, NOW);
    assert_eq!(failing(&e), vec!["expiry (exp)"]);
    let Status::Fail(r) = status(&e, "expiry (exp)") else {
        unreachable!()
    };
    assert!(matches!(r.reason(), Reason::Expired { .. }));
    assert_eq!(e.outcome.as_ref().err(), Some(r));
    // The signature did verify, so no step is marked unverified.
    assert!(names(&e).iter().all(|n| !n.contains("unverified")));
}

#[test]
fn explain_a_bad_signature_still_checks_the_claims() {
    let p = policy().build().unwrap();
    // Signed by es-2 but naming es-1; also expired and for another audience.
    let c = claims(json!({"exp": NOW - 10, "aud": "https://other.example"}));
    let token = sign_h(&keys().es2, json!({"kid": "es-1"}), &c);
    let e = outcome_matches_verify(&token, &p, NOW);
    assert_eq!(
        failing(&e),
        vec![
            "signature",
            "audience (unverified claims)",
            "expiry (exp) (unverified claims)"
        ]
    );
    assert!(names(&e).contains(&"issuer (unverified claims)"));
    assert!(matches!(
        status(&e, "issuer (unverified claims)"),
        Status::Pass(_)
    ));
    // The outcome is the first failure: the signature.
    let err = e.outcome.as_ref().unwrap_err();
    assert!(matches!(err.reason(), Reason::BadSignature { .. }));
    assert!(e.claims.is_some());
}

#[test]
fn explain_an_opaque_token() {
    let p = policy().build().unwrap();
    let e = outcome_matches_verify("nQ8F7hYpN2kq4Z3t0xWvLm1sRbC6dEoJ", &p, NOW);
    assert_eq!(names(&e), vec!["size", "structure and header"]);
    assert_eq!(failing(&e), vec!["structure and header"]);
    assert!(e.header.is_none() && e.claims.is_none());
    let err = e.outcome.as_ref().unwrap_err();
    assert!(err.description().contains("opaque"));
}

#[test]
fn explain_names_the_failing_step() {
    let p = policy().build().unwrap();
    let es_only = policy()
        .algorithms([jwtgate_core::Algorithm::ES256].into_iter().collect())
        .build()
        .unwrap();
    let k = keys();
    let cases: Vec<(String, &Policy, Vec<&str>)> = vec![
        // Unknown kid: key selection fails, the signature is skipped, claims still unverified.
        (
            sign_h(&k.es, json!({"kid": "nope"}), &base_claims()),
            &p,
            vec!["key selection"],
        ),
        // Algorithm not allowed.
        (
            sign(&k.rs, &base_claims()),
            &es_only,
            vec!["algorithm allowed"],
        ),
        // Wrong issuer.
        (
            sign(&k.es, &claims(json!({"iss": "https://tenant.example.com"}))),
            &p,
            vec!["issuer"],
        ),
        // Issued in the future.
        (
            sign(&k.es, &claims(json!({"iat": NOW + 100}))),
            &p,
            vec!["issued at (iat)"],
        ),
        // Too large.
        ("a".repeat(70_000), &p, vec!["size"]),
        // Empty.
        (String::new(), &p, vec!["structure and header"]),
        // crit.
        (
            sign_h(&k.es, json!({"crit": ["exp"]}), &base_claims()),
            &p,
            vec!["structure and header"],
        ),
    ];
    for (token, policy, expected) in cases {
        let e = outcome_matches_verify(&token, policy, NOW);
        assert_eq!(failing(&e), expected, "{:?}", e.steps);
    }
    // Unknown kid: the signature step says why it did not run.
    let e = run(
        &sign_h(&k.es, json!({"kid": "nope"}), &base_claims()),
        &p,
        NOW,
    );
    assert!(matches!(status(&e, "signature"), Status::Skipped(_)));
    assert!(names(&e).contains(&"expiry (exp) (unverified claims)"));
}

#[test]
fn explain_with_bad_claims_json_and_a_valid_signature() {
    // The signature is valid; only the claims are broken. The outcome matches verify and the
    // signature step must not be blamed.
    let k = keys();
    let p = policy().build().unwrap();
    let valid = base_claims().to_string();
    let dup = format!("{},\"exp\":1}}", &valid[..valid.len() - 1]);
    let token = sign_raw(&k.ed, r#"{"alg":"EdDSA","kid":"ed-1"}"#, &dup);
    let e = outcome_matches_verify(&token, &p, NOW);
    assert_eq!(failing(&e), vec!["claims"], "{:?}", e.steps);
    assert!(matches!(status(&e, "signature"), Status::Pass(_)));

    // Same with a payload segment that is not canonical base64url but is correctly MACed.
    let mut payload = valid.clone();
    while b64(&payload).len() % 4 == 0 {
        payload.push(' ');
    }
    let token = hs256_over_segments(
        SECRET,
        &b64(r#"{"alg":"HS256"}"#),
        &flip_trailing_bit(&b64(&payload)),
    );
    let mut keys = jwtgate_core::KeySet::new();
    keys.add_secret(jwtgate_core::Secret::new(SECRET, None, None).unwrap());
    let hs = policy()
        .algorithms(jwtgate_core::AlgorithmSet::hmac())
        .build()
        .unwrap();
    let e = explain(token.as_bytes(), &hs, &keys, NOW);
    let direct = jwtgate_core::Verifier::new(hs.clone(), keys).verify(token.as_bytes(), NOW);
    assert_eq!(e.outcome, direct);
    assert!(matches!(
        e.outcome.as_ref().unwrap_err().reason(),
        Reason::BadPayload(JwsError::Base64 { .. })
    ));
    assert_eq!(failing(&e), vec!["claims"], "{:?}", e.steps);
    assert!(matches!(status(&e, "signature"), Status::Pass(_)));
}

#[test]
fn explain_policy_options_appear_as_steps() {
    let p = policy()
        .require_at_jwt(true)
        .max_age(60)
        .allowed_client("spa")
        .require_claim("org", json!("acme"))
        .scopes(ScopeRequirement::any_of(["a", "b"]))
        .build()
        .unwrap();
    let c = claims(json!({"client_id": "spa", "jti": "j", "org": "acme", "scope": "b"}));
    let token = sign_h(&keys().es, json!({"typ": "at+jwt"}), &c);
    let e = outcome_matches_verify(&token, &p, NOW);
    assert!(e.outcome.is_ok(), "{:?}", e.outcome);
    assert_eq!(
        &names(&e)[6..],
        &[
            "typ is at+jwt",
            "issuer",
            "audience",
            "expiry (exp)",
            "not before (nbf)",
            "issued at (iat)",
            "maximum age",
            "RFC 9068 claims",
            "client (azp/client_id)",
            "required claims",
            "scope count",
            "scopes",
        ]
    );
}
