//! Fuzz target: arbitrary bytes as a token.
//!
//! Runs [`UnverifiedToken::parse`] and, when the header passes, the claims decoding and the
//! signature check against a fixed key set (an RSA and a P-256 key, plus an explicit HMAC secret),
//! then the claims policy; and always [`jwtgate_core::explain`], checking its documented promise
//! that its outcome is exactly what [`Verifier::verify`] returns, and that `verify` (which skips
//! the parse's whole-token pass for a token after a recently parsed header) returns exactly what
//! the parse, the signature and the claims steps in order return. Nothing may panic.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_token fuzz/seeds/parse_token -- -max_total_time=60`
//! from the repository root (see `fuzz/README.md`).

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{explain, Algorithm, KeySet, Policy, Secret, UnverifiedToken, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The verification time: 2027-01-15T08:00:00Z (the seed tokens are valid then).
const NOW: i64 = 1_800_000_000;

/// Public keys the verifier trusts: RSA 2048 (kid `rsa-1`, pinned to RS256) and P-256 (`ec-1`).
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","n":"ssaKE_GVGy1LL4fkpKAgZuwRpbG-nLJoFpHWpHAbeg_sE4rNkraMXHx6Q9cOTisjCw_dcvyc3b_B78QNusYd4wDPNkWeoVSIB3YwEcXT7WNE_qJc83tTYFJn_mltapdMHdGaHH4SwzpWH1SH_gzQ44S7q75pm5usbFC7Avpa5Ia8ZCPBNYz7bKO_J1c_OmtBSwI-HQLJCmfv0WrM4lgokFCWSMmkL5tdG60nbZpxR1dyU0Z85aGW0pD9S3Accs8s0FrItfkeCC0xNFGSscv4Rk1FhX27WGlUIyuM-e_wVg6YLjL4yHL3_4K903UURET91X-lGE0aWy-Yy0xQ4OLemQ","e":"AQAB"},{"kty":"EC","kid":"ec-1","use":"sig","crv":"P-256","x":"lM2Zz57JJ4cw-cfhy88n6SzCyyTw7MvdsNKZDYzPyws","y":"kQxF6KGkwAuKAQ_m3p70rH0jwNJrjf4qcbpxcO1ZsQk"}]}"#;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let mut keys = KeySet::from_json(JWKS.as_bytes()).expect("fixture JWKS loads");
    assert_eq!(keys.keys().len(), 2, "both fixture keys load");
    keys.add_secret(
        Secret::new(
            b"0123456789abcdef0123456789abcdef",
            Some("hs-1".into()),
            None,
        )
        .expect("secret is long enough"),
    );
    let policy = Policy::builder()
        .issuer("https://dev-abc123.us.auth0.com/")
        .audience("https://api.example.com/")
        .allow_algorithm(Algorithm::HS256)
        .leeway(30)
        .build()
        .expect("policy builds");
    Verifier::new(policy, keys)
});

fuzz_target!(|data: &[u8]| {
    let verifier = &*VERIFIER;
    let (policy, keys) = (verifier.policy(), verifier.keys());

    let in_order = UnverifiedToken::parse(data, policy)
        .and_then(|token| token.verify_signature(keys))
        .and_then(|signed| signed.check(policy, NOW));
    assert_eq!(
        verifier.verify(data, NOW),
        in_order,
        "Verifier::verify differs from the steps in order"
    );

    if let Ok(token) = UnverifiedToken::parse(data, policy) {
        let _ = token.header();
        let _ = token.unverified_claims();
        let _ = token.verify_jws(keys);
        match token.verify_signature(keys) {
            Ok(signed) => {
                if let Ok(verified) = signed.check(policy, NOW) {
                    let _ = verified.scopes().count();
                    let _ = verified.subject();
                }
            }
            Err(rejection) => {
                let _ = (rejection.code(), rejection.description(), rejection.hint());
            }
        }
    }

    let explanation = explain(data, policy, keys, NOW);
    let direct = verifier.verify(data, NOW);
    assert_eq!(
        explanation.outcome, direct,
        "explain's outcome differs from Verifier::verify"
    );
    if let Err(rejection) = &direct {
        let _ = (
            rejection.to_string(),
            rejection.hint(),
            rejection.code().http_status(),
        );
    }
});
