//! JWKs that carry their key in an `x5c` certificate: the key is taken from the certificate when
//! the JWK has no key members, must match them when it has, and a broken certificate skips the key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, KeySet, Policy, SigningKey, SkipReason, Verifier};
use serde_json::{json, Map, Value};

const NOW: i64 = 1_800_000_000;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn standard_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn verifier(jwk: Value) -> Verifier {
    let policy = Policy::builder()
        .issuer("https://iss/")
        .audience("api")
        .build()
        .unwrap();
    Verifier::new(
        policy,
        KeySet::from_json(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap(),
    )
}

fn token(key: &SigningKey) -> String {
    key.sign(
        &Map::new(),
        &json!({"iss": "https://iss/", "aud": "api", "exp": NOW + 60}),
    )
    .unwrap()
}

#[test]
fn keys_come_from_the_certificate_when_the_jwk_has_no_members() {
    for (name, alg, kty) in [
        ("rsa", Algorithm::RS256, "RSA"),
        ("ec", Algorithm::ES256, "EC"),
        ("ed25519", Algorithm::EdDSA, "OKP"),
    ] {
        let key =
            SigningKey::from_pkcs8(alg, "cert-key", &fixture(&format!("{name}.pk8"))).unwrap();
        let cert = standard_base64(&fixture(&format!("{name}.crt.der")));
        let v = verifier(json!({"kty": kty, "kid": "cert-key", "x5c": [cert]}));
        assert_eq!(v.keys().keys().len(), 1, "{name}: {:?}", v.keys().skipped());
        let verified = v.verify(token(&key).as_bytes(), NOW);
        assert!(verified.is_ok(), "{name}: {verified:?}");
        // The same certificate with the JWK's own members also works when they agree.
        let mut full = key.public_jwk();
        full["x5c"] = json!([standard_base64(&fixture(&format!("{name}.crt.der")))]);
        assert!(
            verifier(full).verify(token(&key).as_bytes(), NOW).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn a_certificate_that_disagrees_with_the_members_skips_the_key() {
    let other = SigningKey::generate(Algorithm::RS256, "cert-key").unwrap();
    let mut jwk = other.public_jwk();
    jwk["x5c"] = json!([standard_base64(&fixture("rsa.crt.der"))]);
    let v = verifier(jwk);
    assert!(v.keys().keys().is_empty());
    assert!(
        matches!(&v.keys().skipped()[0].reason, SkipReason::Certificate(text) if text.contains("differs"))
    );
}

#[test]
fn broken_certificates_skip_the_key() {
    let mut der = fixture("ec.crt.der");
    der.truncate(der.len() - 10);
    for x5c in [
        json!([standard_base64(&der)]),
        json!([]),
        json!("not-an-array"),
        json!(["%%%"]),
    ] {
        let v = verifier(json!({"kty": "EC", "kid": "k", "x5c": x5c}));
        assert!(v.keys().keys().is_empty(), "{x5c}");
        assert!(
            matches!(v.keys().skipped()[0].reason, SkipReason::Certificate(_)),
            "{x5c}"
        );
    }
    // A certificate of another key type than the JWK's kty.
    let v = verifier(
        json!({"kty": "RSA", "kid": "k", "x5c": [standard_base64(&fixture("ec.crt.der"))]}),
    );
    assert!(v.keys().keys().is_empty());
}

#[test]
fn certificate_info_reads_subject_and_expiry() {
    let info = jwtgate_core::internal::der::certificate_info(&fixture("rsa.crt.der")).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("jwtgate x5c test RSA"));
    let not_after = info.not_after.unwrap();
    assert!(
        not_after.ends_with('Z') && not_after.len() >= 13,
        "{not_after}"
    );
    assert!(jwtgate_core::internal::der::certificate_info(&[0x30, 0x00]).is_err());
}
