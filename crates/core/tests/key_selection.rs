//! Where keys come from and how one is chosen (DESIGN.md §Security policy items 1–4), with real
//! RS256/PS256/ES256/EdDSA/HS256 tokens:
//!
//! * header `jwk`/`jku`/`x5u`/`x5c` never supply a key (an attacker token that verifies with its
//!   own embedded key is refused);
//! * `kid` selection: keys without `kid` never match a `kid`, two candidates are ambiguous, a key's
//!   own `alg` pins it, `kty`/curve must fit `alg`, no fallback to the first key of the set;
//! * unusable keys are skipped with a reason (RSA < 2048 bits, e < 3, ROCA, `use` `enc`, `key_ops`,
//!   `oct`, unsupported curves, private material) and the rest of the set still works;
//! * the algorithm allowlist, `none` in any spelling, HMAC only with an explicit secret of the
//!   right length (alg confusion with the RSA public key as secret is refused);
//! * signature encodings: ECDSA DER, wrong-length RSA, r = s = 0, r = s = n, high-S accepted,
//!   Ed25519 S ≥ L.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jwtgate_core::crypto::{KeyError, SignatureError};
use jwtgate_core::internal::base64url;
use jwtgate_core::jwk::KeySelectionError;
use jwtgate_core::jws::HeaderError;
use jwtgate_core::sign::sign_hmac;
use jwtgate_core::{
    Algorithm, AlgorithmSet, ErrorCode, JwsError, KeySet, Reason, Secret, SigningKey, SkipReason,
};
use serde_json::json;

fn no_key(r: &jwtgate_core::Rejection) -> &KeySelectionError {
    match r.reason() {
        Reason::NoKey(e) => e,
        other => panic!("expected NoKey, got {other:?}"),
    }
}

fn bad_signature(alg: Algorithm, kid: Option<&str>, error: SignatureError) -> Reason {
    Reason::BadSignature {
        alg,
        kid: kid.map(str::to_owned),
        error,
    }
}

// ---------------------------------------------------------------------------------------------
// Item 1: keys never come from the token.
// ---------------------------------------------------------------------------------------------

#[test]
fn embedded_jwk_with_attacker_kid_is_not_used() {
    let k = keys();
    let attacker = SigningKey::generate(Algorithm::ES256, "attacker").unwrap();
    let token = sign_h(
        &attacker,
        json!({"jwk": attacker.public_jwk()}),
        &base_claims(),
    );
    // The token is genuinely valid under the key it embeds…
    assert!(verify(policy().build().unwrap(), keyset(&[&attacker]), &token, NOW).is_ok());
    // …but the verifier only knows the issuer's key.
    let r = verify(policy().build().unwrap(), keyset(&[&k.es]), &token, NOW).unwrap_err();
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    assert_eq!(
        no_key(&r),
        &KeySelectionError::UnknownKid {
            kid: "attacker".into(),
            available: 1,
            skipped: None
        }
    );
    assert!(r.description().contains("no key with kid \"attacker\""));
}

#[test]
fn embedded_jwk_with_the_issuers_kid_is_checked_against_the_configured_key() {
    let k = keys();
    let attacker = SigningKey::generate(Algorithm::ES256, "attacker").unwrap();
    let token = sign_h(
        &attacker,
        json!({"kid": "es-1", "jwk": attacker.public_jwk()}),
        &base_claims(),
    );
    let r = verify(policy().build().unwrap(), keyset(&[&k.es]), &token, NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::ES256, Some("es-1"), SignatureError::Mismatch)
    );
    assert!(r.description().contains("signature is invalid"));

    // Without any kid, the single configured key is still the one used.
    let no_kid = format!(r#"{{"alg":"ES256","jwk":{}}}"#, attacker.public_jwk());
    let token = sign_raw(&attacker, &no_kid, &base_claims().to_string());
    let r = verify(policy().build().unwrap(), keyset(&[&k.es]), &token, NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::ES256, None, SignatureError::Mismatch)
    );
}

#[test]
fn jku_x5u_x5c_never_supply_a_key() {
    let k = keys();
    let attacker = SigningKey::generate(Algorithm::ES256, "es-1").unwrap();
    for extra in [
        json!({"jku": "https://attacker.example/jwks.json"}),
        json!({"x5u": "https://attacker.example/cert.pem"}),
        json!({"x5c": ["MIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGU="]}),
        json!({"jku": "https://attacker.example/jwks.json", "jwk": attacker.public_jwk()}),
    ] {
        let forged = sign_h(&attacker, extra.clone(), &base_claims());
        let r = reject(&forged);
        assert_eq!(
            r.reason(),
            &bad_signature(Algorithm::ES256, Some("es-1"), SignatureError::Mismatch),
            "{extra}"
        );
        // The same parameters on a genuine token are ignored, not fatal.
        let genuine = sign_h(&k.es, extra.clone(), &base_claims());
        assert_eq!(accept(&genuine).subject(), Some("auth0|alice"), "{extra}");
    }
}

#[test]
fn unknown_non_critical_header_parameters_are_ignored() {
    let k = keys();
    let token = sign_h(
        &k.ed,
        json!({"x5t#S256": "abc", "cty": "JWT", "foo": {"bar": [1, 2]}}),
        &base_claims(),
    );
    assert_eq!(accept(&token).algorithm(), Algorithm::EdDSA);
}

// ---------------------------------------------------------------------------------------------
// Item 2: selection by kid, type and the key's own alg; exactly one candidate.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_key_type_verifies_when_selected_by_kid() {
    let k = keys();
    for signer in [&k.rs, &k.es, &k.ed, &k.es2] {
        let v = accept(&sign(signer, &base_claims()));
        assert_eq!(v.algorithm(), signer.algorithm());
        assert_eq!(v.kid(), Some(signer.kid()));
    }
}

#[test]
fn a_key_without_kid_never_matches_a_token_kid() {
    let k = keys();
    let set = keyset_json(&json!({"keys": [jwk_with(&k.es, json!({"kid": null}))]}));
    assert_eq!(set.keys().len(), 1);
    let token = sign(&k.es, &base_claims());
    let r = verify(policy().build().unwrap(), set, &token, NOW).unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::UnknownKid {
            kid: "es-1".into(),
            available: 1,
            skipped: None
        }
    );

    // A token without kid does select the single fitting key.
    let set = keyset_json(&json!({"keys": [jwk_with(&k.es, json!({"kid": null}))]}));
    let token = sign_raw(&k.es, r#"{"alg":"ES256"}"#, &base_claims().to_string());
    assert!(verify(policy().build().unwrap(), set, &token, NOW).is_ok());
}

#[test]
fn two_candidates_are_ambiguous_even_if_one_would_verify() {
    let k = keys();
    // Two different P-256 keys published under the same kid.
    let doc = json!({"keys": [
        k.es.public_jwk(),
        jwk_with(&k.es2, json!({"kid": "es-1"})),
    ]});
    let token = sign(&k.es, &base_claims());
    let r = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::Ambiguous {
            kid: Some("es-1".into()),
            alg: Algorithm::ES256,
            count: 2
        }
    );
    assert!(r.description().contains("ambiguous"));

    // The very same key twice is also two candidates.
    let doc = json!({"keys": [k.es.public_jwk(), k.es.public_jwk()]});
    let r = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).unwrap_err();
    assert!(matches!(
        no_key(&r),
        KeySelectionError::Ambiguous { count: 2, .. }
    ));

    // No kid in the token and two keys that fit ES256: ambiguous, not "try each".
    let token = sign_raw(&k.es, r#"{"alg":"ES256"}"#, &base_claims().to_string());
    let r = verify(
        policy().build().unwrap(),
        keyset(&[&k.es, &k.es2]),
        &token,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::Ambiguous {
            kid: None,
            alg: Algorithm::ES256,
            count: 2
        }
    );
}

#[test]
fn same_kid_on_keys_of_different_types_is_resolved_by_alg() {
    let k = keys();
    let doc = json!({"keys": [
        jwk_with(&k.rs, json!({"kid": "shared"})),
        jwk_with(&k.es, json!({"kid": "shared"})),
        jwk_with(&k.ed, json!({"kid": "shared"})),
    ]});
    for signer in [&k.rs, &k.es, &k.ed] {
        let token = sign_h(signer, json!({"kid": "shared"}), &base_claims());
        let v = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW);
        assert_eq!(v.map(|v| v.algorithm()), Ok(signer.algorithm()));
    }
}

#[test]
fn the_keys_own_alg_pins_the_algorithm() {
    let ps = rsa_as(Algorithm::PS256, "rsa");
    let token = sign(&ps, &base_claims());
    // Published as an RS256 key: a PS256 token must not use it.
    let pinned = json!({"keys": [jwk_with(&ps, json!({"alg": "RS256"}))]});
    let r = verify(policy().build().unwrap(), keyset_json(&pinned), &token, NOW).unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::KeyDoesNotFitAlg {
            kid: "rsa".into(),
            alg: Algorithm::PS256,
            found: "RSA 2048".into(),
            pinned: Some(Algorithm::RS256),
        }
    );
    assert!(r.description().contains("pinned to RS256"));

    // Without its own alg the same key serves PS256; with alg PS256 too.
    for patch in [json!({"alg": null}), json!({"alg": "PS256"})] {
        let doc = json!({"keys": [jwk_with(&ps, patch)]});
        assert!(verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).is_ok());
    }
}

#[test]
fn key_type_and_curve_must_fit_the_alg() {
    let k = keys();
    let p384 = SigningKey::generate(Algorithm::ES384, "k").unwrap();
    let token = sign_h(&k.es, json!({"kid": "k"}), &base_claims());

    // Same kid, P-384 key, ES256 token.
    let doc = json!({"keys": [jwk_with(&p384, json!({"alg": null}))]});
    let r = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::KeyDoesNotFitAlg {
            kid: "k".into(),
            alg: Algorithm::ES256,
            found: "EC P-384".into(),
            pinned: None,
        }
    );
    assert!(r.description().contains("EC P-384"));

    // Same kid, RSA key, EdDSA token.
    let doc = json!({"keys": [jwk_with(&k.rs, json!({"kid": "k", "alg": null}))]});
    let token = sign_h(&k.ed, json!({"kid": "k"}), &base_claims());
    let r = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::KeyDoesNotFitAlg {
            kid: "k".into(),
            alg: Algorithm::EdDSA,
            found: "RSA 2048".into(),
            pinned: None,
        }
    );

    // An EC key cannot verify RS256 even with the right kid.
    let doc = json!({"keys": [jwk_with(&k.es, json!({"kid": "rs-1", "alg": null}))]});
    let token = sign(&k.rs, &base_claims());
    let r = verify(policy().build().unwrap(), keyset_json(&doc), &token, NOW).unwrap_err();
    assert!(matches!(
        no_key(&r),
        KeySelectionError::KeyDoesNotFitAlg { found, .. } if found == "EC P-256"
    ));
}

#[test]
fn the_first_key_is_not_used_when_the_kid_differs() {
    let k = keys();
    // The set's first key is the signer's own key, but the header names another kid.
    let token = sign_h(&k.rs, json!({"kid": "rotated"}), &base_claims());
    let r = reject(&token);
    assert_eq!(
        no_key(&r),
        &KeySelectionError::UnknownKid {
            kid: "rotated".into(),
            available: 4,
            skipped: None
        }
    );
    assert!(r.hint().is_some_and(|h| h.contains("rotated its keys")));

    // Signed by es-1 but naming es-2 (same type, second in the set): es-2 is used, and fails.
    let token = sign_h(&k.es, json!({"kid": "es-2"}), &base_claims());
    let r = reject(&token);
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::ES256, Some("es-2"), SignatureError::Mismatch)
    );
}

#[test]
fn kid_must_be_a_string() {
    let k = keys();
    for kid in [
        json!(1),
        json!(null),
        json!(["es-1"]),
        json!({"id": "es-1"}),
    ] {
        let token = sign_h(&k.es, json!({ "kid": kid }), &base_claims());
        let r = reject(&token);
        assert_eq!(
            r.reason(),
            &Reason::Malformed(JwsError::Header(HeaderError::KidNotString)),
            "{kid}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 2: unusable keys are skipped, never fatal to the set.
// ---------------------------------------------------------------------------------------------

/// A big-endian integer of `bits` bits: top bit set, all other bytes 0xFF (not a real key).
fn fake_modulus(bits: usize) -> Vec<u8> {
    let len = bits.div_ceil(8);
    let mut n = vec![0xFFu8; len];
    let top_bits = bits - (len - 1) * 8;
    n[0] = if top_bits == 8 {
        0xFF
    } else {
        (1u8 << top_bits) - 1
    };
    n
}

#[test]
fn rsa_keys_under_2048_bits_are_skipped() {
    let k = keys();
    for bits in [1024usize, 2047] {
        let n = fake_modulus(bits);
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "short", "n": base64url::encode(&n), "e": "AQAB"},
            k.rs.public_jwk(),
        ]});
        let set = keyset_json(&doc);
        assert_eq!(set.keys().len(), 1, "{bits}");
        assert_eq!(set.skipped().len(), 1);
        assert_eq!(set.skipped()[0].kid.as_deref(), Some("short"));
        assert_eq!(
            set.skipped()[0].reason,
            SkipReason::Key(KeyError::RsaSize { bits })
        );
        // The rest of the set works.
        let good = sign(&k.rs, &base_claims());
        assert!(verify(policy().build().unwrap(), set, &good, NOW).is_ok());

        // A token naming the skipped key is told why.
        let set = keyset_json(&doc);
        let token = sign_h(&k.rs, json!({"kid": "short"}), &base_claims());
        let r = verify(policy().build().unwrap(), set, &token, NOW).unwrap_err();
        assert_eq!(
            no_key(&r),
            &KeySelectionError::UnknownKid {
                kid: "short".into(),
                available: 1,
                skipped: Some(SkipReason::Key(KeyError::RsaSize { bits })),
            }
        );
        assert!(r.description().contains("was skipped"));
        assert!(r.description().contains(&format!("{bits} bits")));
    }
}

#[test]
fn rsa_exponents_below_3_or_even_are_skipped() {
    let k = keys();
    let token = sign(&k.rs, &base_claims());
    for e in [vec![1u8], vec![2], vec![0], vec![0, 1], vec![1, 0, 0]] {
        let doc = json!({"keys": [jwk_with(&k.rs, json!({"e": base64url::encode(&e)}))]});
        let set = keyset_json(&doc);
        assert_eq!(set.keys().len(), 0, "e = {e:?}");
        assert_eq!(
            set.skipped()[0].reason,
            SkipReason::Key(KeyError::RsaExponent)
        );
        let r = verify(policy().build().unwrap(), set, &token, NOW).unwrap_err();
        assert!(matches!(
            no_key(&r),
            KeySelectionError::UnknownKid {
                skipped: Some(SkipReason::Key(KeyError::RsaExponent)),
                ..
            }
        ));
    }
    // e = 3 loads (the token then fails its signature: the real exponent is 65537).
    let doc = json!({"keys": [jwk_with(&k.rs, json!({"e": "Aw"}))]});
    let set = keyset_json(&doc);
    assert_eq!(set.keys().len(), 1);
    let r = verify(policy().build().unwrap(), set, &token, NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::RS256, Some("rs-1"), SignatureError::Mismatch)
    );
}

/// The 38 primes of the ROCA fingerprint test.
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// A 2048-bit `M·2^s + 1`, where `M` is the product of the ROCA primes: `n mod p = 1 = 65537^0`
/// for every prime, which is exactly the fingerprint of an Infineon-generated modulus.
fn roca_like_modulus() -> Vec<u8> {
    let mut m: Vec<u8> = vec![1]; // big-endian
    for p in ROCA_PRIMES {
        let mut carry = 0u64;
        for byte in m.iter_mut().rev() {
            let v = u64::from(*byte) * u64::from(p) + carry;
            *byte = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            m.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let m_bits = m.len() * 8 - m[0].leading_zeros() as usize;
    let shift = 2048 - m_bits;
    // m << shift: whole bytes, then bits.
    let (bytes, bits) = (shift / 8, shift % 8);
    let mut n = vec![0u8; m.len() + 1];
    let mut carry = 0u16;
    for (i, byte) in m.iter().enumerate().rev() {
        let v = (u16::from(*byte) << bits) | carry;
        n[i + 1] = (v & 0xFF) as u8;
        carry = v >> 8;
    }
    n[0] = carry as u8;
    n.extend(std::iter::repeat_n(0u8, bytes));
    while n.first() == Some(&0) {
        n.remove(0);
    }
    let last = n.len() - 1;
    n[last] |= 1;
    assert_eq!(n.len() * 8 - n[0].leading_zeros() as usize, 2048);
    n
}

#[test]
fn rsa_moduli_with_the_roca_fingerprint_are_skipped() {
    let n = roca_like_modulus();
    let doc =
        json!({"keys": [{"kty": "RSA", "kid": "roca", "n": base64url::encode(&n), "e": "AQAB"}]});
    let set = keyset_json(&doc);
    assert_eq!(set.keys().len(), 0);
    assert_eq!(set.skipped()[0].reason, SkipReason::Key(KeyError::Roca));
    assert!(set.skipped()[0].to_string().contains("CVE-2017-15361"));

    // The generated key does not carry it.
    let set = keyset(&[&keys().rs]);
    assert!(set.skipped().is_empty());
}

#[test]
fn keys_not_for_signatures_are_skipped_and_the_set_survives() {
    let k = keys();
    let doc = json!({"keys": [
        jwk_with(&k.es, json!({"kid": "enc", "use": "enc"})),
        jwk_with(&k.es, json!({"kid": "ops", "key_ops": ["encrypt", "sign"]})),
        jwk_with(&k.es, json!({"kid": "ops-ok", "key_ops": ["verify"]})),
        jwk_with(&k.es, json!({"kid": "wrong-alg", "alg": "RS256"})),
        jwk_with(&k.es, json!({"kid": "private", "d": "AAAA"})),
        {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": base64url::encode(&[9u8; 32])},
        {"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AAAA", "y": "AAAA"},
        {"kty": "oct", "kid": "hs", "k": base64url::encode(SECRET)},
        k.ed.public_jwk(),
    ]});
    let set = keyset_json(&doc);
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid()).collect();
    assert_eq!(kids, vec![Some("ops-ok"), Some("ed-1")]);
    let reasons: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.kid.clone().unwrap_or_default(), s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("enc".into(), SkipReason::NotForSignatures("enc".into())),
            ("ops".into(), SkipReason::KeyOpsWithoutVerify),
            (
                "wrong-alg".into(),
                SkipReason::AlgMismatch {
                    alg: "RS256".into(),
                    kty: "EC P-256".into()
                }
            ),
            ("private".into(), SkipReason::PrivateKeyMaterial("d")),
            (
                "x25519".into(),
                SkipReason::UnsupportedCurve("X25519".into())
            ),
            (
                "k1".into(),
                SkipReason::UnsupportedCurve("secp256k1".into())
            ),
            ("hs".into(), SkipReason::Symmetric),
        ]
    );
    // Tokens for skipped keys are refused with the reason; the usable keys still verify.
    let set = keyset_json(&doc);
    let verifier = jwtgate_core::Verifier::new(policy().build().unwrap(), set);
    let enc = sign_h(&k.es, json!({"kid": "enc"}), &base_claims());
    let r = verifier.verify(enc.as_bytes(), NOW).unwrap_err();
    assert!(r.description().contains("\"use\" is \"enc\""), "{r}");
    let ok = sign_h(&k.es, json!({"kid": "ops-ok"}), &base_claims());
    assert!(verifier.verify(ok.as_bytes(), NOW).is_ok());
    assert!(verifier
        .verify(sign(&k.ed, &base_claims()).as_bytes(), NOW)
        .is_ok());
}

// ---------------------------------------------------------------------------------------------
// Item 3: algorithms.
// ---------------------------------------------------------------------------------------------

#[test]
fn alg_must_be_in_the_allowlist() {
    let k = keys();
    let es_only = policy()
        .algorithms([Algorithm::ES256].into_iter().collect())
        .build()
        .unwrap();
    let token = sign(&k.rs, &base_claims());
    let r = verify(es_only, all_keys(), &token, NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &Reason::AlgorithmNotAllowed {
            alg: Algorithm::RS256,
            allowed: [Algorithm::ES256].into_iter().collect()
        }
    );
    assert_eq!(
        r.description(),
        "algorithm RS256 is not allowed (allowed: ES256)"
    );
    // The same verifier accepts ES256.
    let es_only = policy()
        .algorithms([Algorithm::ES256].into_iter().collect())
        .build()
        .unwrap();
    assert!(verify(es_only, all_keys(), &sign(&k.es, &base_claims()), NOW).is_ok());
}

#[test]
fn alg_names_are_case_sensitive() {
    let k = keys();
    for name in [
        "rs256", "Rs256", "RS256 ", "EDDSA", "eddsa", "ES256K", "Ed25519",
    ] {
        let h = json!({"alg": name, "kid": "rs-1"}).to_string();
        let token = sign_raw(&k.rs, &h, &base_claims().to_string());
        let r = reject(&token);
        assert_eq!(
            r.reason(),
            &Reason::Malformed(JwsError::Header(HeaderError::UnsupportedAlg(name.into()))),
        );
    }
}

#[test]
fn alg_none_is_rejected_in_any_spelling() {
    let k = keys();
    let genuine = sign(&k.rs, &base_claims());
    let [_, payload, signature] = segments(&genuine);
    for name in ["none", "None", "NONE", "nOnE", "NoNe"] {
        let h = b64(&json!({"alg": name, "kid": "rs-1"}).to_string());
        for sig in [signature.as_str(), "AAAA", "e30"] {
            let token = format!("{h}.{payload}.{sig}");
            let r = reject(&token);
            assert_eq!(
                r.reason(),
                &Reason::Malformed(JwsError::Header(HeaderError::AlgNone(name.into())))
            );
            assert_eq!(r.code(), ErrorCode::InvalidToken);
            assert!(r.description().contains("unsigned"), "{r}");
        }
        // The classic form with an empty signature segment is refused too.
        let r = reject(&format!("{h}.{payload}."));
        assert_eq!(r.code(), ErrorCode::InvalidToken);
    }
    // No policy can allow it: it is not an Algorithm.
    assert!("none".parse::<Algorithm>().is_err());
    let everything = policy()
        .algorithms(AlgorithmSet::asymmetric().union(AlgorithmSet::hmac()))
        .build()
        .unwrap();
    let h = b64(r#"{"alg":"none"}"#);
    let r = verify(everything, all_keys(), &format!("{h}.{payload}.AAAA"), NOW).unwrap_err();
    assert!(matches!(
        r.reason(),
        Reason::Malformed(JwsError::Header(HeaderError::AlgNone(_)))
    ));
}

#[test]
fn hmac_is_not_allowed_by_default() {
    let h = json!({"alg": "HS256", "kid": "hs"}).to_string();
    let token = sign_hmac(
        Algorithm::HS256,
        SECRET,
        h.as_bytes(),
        base_claims().to_string().as_bytes(),
    )
    .unwrap();
    let mut set = all_keys();
    set.add_secret(Secret::new(SECRET, Some("hs".into()), None).unwrap());
    let r = verify(policy().build().unwrap(), set, &token, NOW).unwrap_err();
    assert!(matches!(
        r.reason(),
        Reason::AlgorithmNotAllowed {
            alg: Algorithm::HS256,
            ..
        }
    ));
}

fn hs_policy() -> jwtgate_core::Policy {
    policy()
        .algorithms(AlgorithmSet::asymmetric().union(AlgorithmSet::hmac()))
        .build()
        .unwrap()
}

fn hs_token(alg: Algorithm, secret: &[u8], kid: Option<&str>) -> String {
    let mut h = json!({"alg": alg.name()});
    if let Some(kid) = kid {
        h["kid"] = json!(kid);
    }
    sign_hmac(
        alg,
        secret,
        h.to_string().as_bytes(),
        base_claims().to_string().as_bytes(),
    )
    .unwrap()
}

#[test]
fn hmac_with_the_rsa_public_key_as_secret_is_refused() {
    let k = keys();
    let jwk = k.rs.public_jwk();
    let modulus = base64url::decode(jwk["n"].as_str().unwrap().as_bytes()).unwrap();
    let jwk_text = jwk.to_string();
    let jwks_text = jwks_of(&[&k.rs]).to_string();
    let candidates: [&[u8]; 3] = [&modulus, jwk_text.as_bytes(), jwks_text.as_bytes()];
    for secret in candidates {
        let token = hs_token(Algorithm::HS256, secret, Some("rs-1"));
        // Default policy: HS256 is not even allowed.
        let r = verify(policy().build().unwrap(), keyset(&[&k.rs]), &token, NOW).unwrap_err();
        assert!(matches!(
            r.reason(),
            Reason::AlgorithmNotAllowed {
                alg: Algorithm::HS256,
                ..
            }
        ));
        // Even with HMAC allowed, a JWKS never provides a secret.
        let r = verify(hs_policy(), keyset(&[&k.rs]), &token, NOW).unwrap_err();
        assert_eq!(no_key(&r), &KeySelectionError::NoSecret(Algorithm::HS256));
        assert!(r.description().contains("no secret is configured"));
        // With an unrelated secret configured, the RSA key's kid selects no secret.
        let mut set = keyset(&[&k.rs]);
        set.add_secret(Secret::new(SECRET, Some("hs".into()), None).unwrap());
        let r = verify(hs_policy(), set, &token, NOW).unwrap_err();
        assert_eq!(
            no_key(&r),
            &KeySelectionError::NoSecretForAlg {
                alg: Algorithm::HS256,
                kid: Some("rs-1".into())
            }
        );
    }
}

#[test]
fn oct_keys_in_a_jwks_never_become_secrets() {
    let doc = json!({"keys": [{"kty": "oct", "kid": "hs", "alg": "HS256", "k": base64url::encode(SECRET)}]});
    let set = keyset_json(&doc);
    assert_eq!(set.skipped()[0].reason, SkipReason::Symmetric);
    let token = hs_token(Algorithm::HS256, SECRET, Some("hs"));
    let r = verify(hs_policy(), set, &token, NOW).unwrap_err();
    assert_eq!(no_key(&r), &KeySelectionError::NoSecret(Algorithm::HS256));
}

#[test]
fn hmac_works_with_an_explicit_secret() {
    let mut set = KeySet::new();
    set.add_secret(Secret::new(SECRET, Some("hs".into()), None).unwrap());
    let verifier = jwtgate_core::Verifier::new(hs_policy(), set);
    for kid in [Some("hs"), None] {
        let token = hs_token(Algorithm::HS256, SECRET, kid);
        let v = verifier.verify(token.as_bytes(), NOW).unwrap();
        assert_eq!(v.algorithm(), Algorithm::HS256);
    }
    // Another kid selects nothing; a different secret fails the MAC.
    let r = verifier
        .verify(
            hs_token(Algorithm::HS256, SECRET, Some("other")).as_bytes(),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(
        no_key(&r),
        KeySelectionError::NoSecretForAlg { .. }
    ));
    // A truncated MAC is refused by length, not compared as a prefix.
    let good = hs_token(Algorithm::HS256, SECRET, Some("hs"));
    let tag = signature_of(&good);
    let r = verifier
        .verify(with_signature(&good, &tag[..16]).as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(
            Algorithm::HS256,
            Some("hs"),
            SignatureError::Length {
                expected: 32,
                actual: 16
            }
        )
    );
    let wrong = hs_token(Algorithm::HS256, &[7u8; 32], Some("hs"));
    let r = verifier.verify(wrong.as_bytes(), NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::HS256, Some("hs"), SignatureError::Mismatch)
    );
}

#[test]
fn hmac_secrets_must_be_as_long_as_the_hash() {
    for (alg, required) in [
        (Algorithm::HS256, 32usize),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let short = vec![0x42u8; required - 1];
        assert_eq!(
            Secret::new(&short, None, Some(alg)).err(),
            Some(KeyError::SecretTooShort {
                len: required - 1,
                required,
                alg
            })
        );
        let exact = vec![0x42u8; required];
        let mut set = KeySet::new();
        set.add_secret(Secret::new(&exact, None, Some(alg)).unwrap());
        let token = hs_token(alg, &exact, None);
        assert!(verify(hs_policy(), set, &token, NOW).is_ok(), "{alg}");
    }
    // Unpinned: the minimum is HS256's 32 bytes.
    assert!(matches!(
        Secret::new(&[1u8; 31], None, None),
        Err(KeyError::SecretTooShort {
            len: 31,
            required: 32,
            ..
        })
    ));
    // An unpinned 32-byte secret serves HS256 but never HS384/HS512 (too short for them).
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let mut set = KeySet::new();
        set.add_secret(Secret::new(SECRET, None, None).unwrap());
        let token = hs_token(alg, SECRET, None);
        let r = verify(hs_policy(), set, &token, NOW).unwrap_err();
        assert_eq!(
            no_key(&r),
            &KeySelectionError::NoSecretForAlg { alg, kid: None }
        );
    }
    // A 48-byte unpinned secret serves HS384 but not HS512.
    let secret48 = [0x33u8; 48];
    let mut set = KeySet::new();
    set.add_secret(Secret::new(&secret48, None, None).unwrap());
    let v = jwtgate_core::Verifier::new(hs_policy(), set);
    assert!(v
        .verify(hs_token(Algorithm::HS384, &secret48, None).as_bytes(), NOW)
        .is_ok());
    assert!(v
        .verify(hs_token(Algorithm::HS512, &secret48, None).as_bytes(), NOW)
        .is_err());
    // A secret pinned to HS512 does not serve HS256.
    let secret64 = [0x44u8; 64];
    let mut set = KeySet::new();
    set.add_secret(Secret::new(&secret64, None, Some(Algorithm::HS512)).unwrap());
    let r = verify(
        hs_policy(),
        set,
        &hs_token(Algorithm::HS256, &secret64, None),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        no_key(&r),
        KeySelectionError::NoSecretForAlg { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Item 4: signature encodings.
// ---------------------------------------------------------------------------------------------

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut value = bytes[first..].to_vec();
    if value[0] & 0x80 != 0 {
        value.insert(0, 0);
    }
    let mut out = vec![0x02, value.len() as u8];
    out.extend(value);
    out
}

fn der_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [der_integer(r), der_integer(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn ecdsa_der_signatures_are_rejected() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    let raw = signature_of(&token);
    assert_eq!(raw.len(), 64);
    let der = der_signature(&raw);
    let r = reject(&with_signature(&token, &der));
    assert_eq!(
        r.reason(),
        &bad_signature(
            Algorithm::ES256,
            Some("es-1"),
            SignatureError::Length {
                expected: 64,
                actual: der.len()
            }
        )
    );
    assert!(r.description().contains("need exactly 64"));
    // The raw form is accepted.
    accept(&with_signature(&token, &raw));
}

#[test]
fn rsa_signatures_must_have_the_modulus_length() {
    let k = keys();
    let token = sign(&k.rs, &base_claims());
    let sig = signature_of(&token);
    assert_eq!(sig.len(), 256);
    let mut padded = vec![0u8];
    padded.extend(&sig);
    let truncated = sig[1..].to_vec();
    let doubled = [sig.clone(), sig.clone()].concat();
    for bad in [padded, truncated, doubled, vec![0u8; 1]] {
        let r = reject(&with_signature(&token, &bad));
        assert_eq!(
            r.reason(),
            &bad_signature(
                Algorithm::RS256,
                Some("rs-1"),
                SignatureError::Length {
                    expected: 256,
                    actual: bad.len()
                }
            )
        );
    }
}

/// The order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

fn be_sub(a: &[u8; 32], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        out[i] = v as u8;
    }
    assert_eq!(borrow, 0);
    out
}

#[test]
fn ecdsa_r_and_s_must_be_in_range() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    // CVE-2022-21449 ("psychic signatures"): r = s = 0.
    let zeros = [0u8; 64];
    let n_n = [P256_N, P256_N].concat();
    let r_n_s_0 = [P256_N.to_vec(), vec![0u8; 32]].concat();
    for bad in [zeros.to_vec(), n_n, r_n_s_0] {
        let r = reject(&with_signature(&token, &bad));
        assert_eq!(
            r.reason(),
            &bad_signature(Algorithm::ES256, Some("es-1"), SignatureError::Mismatch)
        );
    }
}

#[test]
fn high_s_ecdsa_signatures_are_valid() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    let sig = signature_of(&token);
    let (r, s) = sig.split_at(32);
    let high = [r.to_vec(), be_sub(&P256_N, s)].concat();
    assert_ne!(high, sig);
    accept(&with_signature(&token, &high));
}

/// The Ed25519 group order L, little-endian.
const ED25519_L: [u8; 32] = [
    0xED, 0xD3, 0xF5, 0x5C, 0x1A, 0x63, 0x12, 0x58, 0xD6, 0x9C, 0xF7, 0xA2, 0xDE, 0xF9, 0xDE, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

#[test]
fn ed25519_signatures_with_s_not_below_l_are_rejected() {
    let k = keys();
    let token = sign(&k.ed, &base_claims());
    let sig = signature_of(&token);
    // S + L ≡ S (mod L): a malleated signature that a lax verifier accepts.
    let mut malleated = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(malleated[32 + i]) + u16::from(ED25519_L[i]) + carry;
        malleated[32 + i] = (v & 0xFF) as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    let r = reject(&with_signature(&token, &malleated));
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::EdDSA, Some("ed-1"), SignatureError::Mismatch)
    );
    // Wrong length.
    let r = reject(&with_signature(&token, &sig[..63]));
    assert_eq!(
        r.reason(),
        &bad_signature(
            Algorithm::EdDSA,
            Some("ed-1"),
            SignatureError::Length {
                expected: 64,
                actual: 63
            }
        )
    );
}

#[test]
fn a_signature_from_another_key_of_the_same_kid_is_rejected() {
    let impostor = SigningKey::generate(Algorithm::RS256, "rs-1").unwrap();
    let r = reject(&sign(&impostor, &base_claims()));
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::RS256, Some("rs-1"), SignatureError::Mismatch)
    );
    assert!(r
        .hint()
        .is_some_and(|h| h.contains("signed by a different key")));
}

#[test]
fn hmac_secrets_are_selected_by_kid_and_never_guessed() {
    let other = [0x77u8; 32];
    let mut set = KeySet::new();
    set.add_secret(Secret::new(SECRET, Some("a".into()), None).unwrap());
    set.add_secret(Secret::new(&other, Some("b".into()), None).unwrap());
    let verifier = jwtgate_core::Verifier::new(hs_policy(), set);
    assert!(verifier
        .verify(
            hs_token(Algorithm::HS256, SECRET, Some("a")).as_bytes(),
            NOW
        )
        .is_ok());
    assert!(verifier
        .verify(
            hs_token(Algorithm::HS256, &other, Some("b")).as_bytes(),
            NOW
        )
        .is_ok());
    // Secret "a" named with kid "b": the MAC is checked with b's secret, and fails.
    let r = verifier
        .verify(
            hs_token(Algorithm::HS256, SECRET, Some("b")).as_bytes(),
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        r.reason(),
        &bad_signature(Algorithm::HS256, Some("b"), SignatureError::Mismatch)
    );
    // No kid and two secrets: ambiguous.
    let r = verifier
        .verify(hs_token(Algorithm::HS256, SECRET, None).as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(
        no_key(&r),
        &KeySelectionError::Ambiguous {
            kid: None,
            alg: Algorithm::HS256,
            count: 2
        }
    );
}
