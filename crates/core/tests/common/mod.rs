//! Shared helpers for the behaviour tests: one issuer's keys (generated once per test binary),
//! JWKS documents built from them, a baseline policy and valid claims, and token surgery helpers.
//!
//! Not every test binary uses every helper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::internal::base64url;
use jwtgate_core::{
    Algorithm, KeySet, Policy, PolicyBuilder, Rejection, SigningKey, Verified, Verifier,
};
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

/// The configured issuer (Auth0 style, with a trailing slash).
pub const ISS: &str = "https://tenant.example.com/";
/// The configured audience.
pub const AUD: &str = "https://api.example.com";
/// "Now" for every test unless it says otherwise.
pub const NOW: i64 = 1_800_000_000;

/// The issuer's signing keys, generated once per test binary.
pub struct Keys {
    /// RSA 2048, RS256, kid "rs-1".
    pub rs: SigningKey,
    /// P-256, ES256, kid "es-1".
    pub es: SigningKey,
    /// Ed25519, EdDSA, kid "ed-1".
    pub ed: SigningKey,
    /// A second P-256 key, kid "es-2".
    pub es2: SigningKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    rs: SigningKey::generate(Algorithm::RS256, "rs-1").expect("RSA key"),
    es: SigningKey::generate(Algorithm::ES256, "es-1").expect("P-256 key"),
    ed: SigningKey::generate(Algorithm::EdDSA, "ed-1").expect("Ed25519 key"),
    es2: SigningKey::generate(Algorithm::ES256, "es-2").expect("P-256 key"),
});

/// The shared keys.
pub fn keys() -> &'static Keys {
    &KEYS
}

/// The same RSA key material as `keys().rs`, signing with `alg` (e.g. PS256) under `kid`.
pub fn rsa_as(alg: Algorithm, kid: &str) -> SigningKey {
    let pkcs8 = keys().rs.to_pkcs8().expect("pkcs8");
    SigningKey::from_pkcs8(alg, kid, &pkcs8).expect("reload RSA key")
}

/// A JWKS document holding the public halves of `signers`.
pub fn jwks_of(signers: &[&SigningKey]) -> Value {
    let keys: Vec<Value> = signers.iter().map(|k| k.public_jwk()).collect();
    json!({ "keys": keys })
}

/// Loads a JWKS document value.
pub fn keyset_json(document: &Value) -> KeySet {
    KeySet::from_json(document.to_string().as_bytes()).expect("valid JWKS document")
}

/// A key set holding the public halves of `signers`.
pub fn keyset(signers: &[&SigningKey]) -> KeySet {
    keyset_json(&jwks_of(signers))
}

/// The public JWK of `signer` with `patch` applied (a `null` member is removed).
pub fn jwk_with(signer: &SigningKey, patch: Value) -> Value {
    let mut jwk = signer.public_jwk();
    merge(&mut jwk, patch);
    jwk
}

/// A builder with the configured issuer and audience.
pub fn policy() -> PolicyBuilder {
    Policy::builder().issuer(ISS).audience(AUD)
}

/// Valid access-token claims at [`NOW`].
pub fn base_claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "auth0|alice",
        "exp": NOW + 600,
        "iat": NOW - 10,
        "scope": "openid read:users",
    })
}

/// [`base_claims`] with `patch` applied: members are set, `null` members are removed.
pub fn claims(patch: Value) -> Value {
    let mut c = base_claims();
    merge(&mut c, patch);
    c
}

/// Sets `patch`'s members on `target`; a `null` member removes it.
pub fn merge(target: &mut Value, patch: Value) {
    let (Some(target), Value::Object(patch)) = (target.as_object_mut(), patch) else {
        panic!("merge needs two objects");
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(&name);
        } else {
            target.insert(name, value);
        }
    }
}

/// A header map from a JSON object literal.
pub fn header(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("header must be an object"),
    }
}

/// Signs `claims` with `signer` (header: its alg and kid).
pub fn sign(signer: &SigningKey, claims: &Value) -> String {
    signer.sign(&Map::new(), claims).expect("sign")
}

/// Signs `claims` with extra header members (which may override `kid`).
pub fn sign_h(signer: &SigningKey, extra: Value, claims: &Value) -> String {
    signer.sign(&header(extra), claims).expect("sign")
}

/// Signs exactly these header and payload JSON texts.
pub fn sign_raw(signer: &SigningKey, header: &str, payload: &str) -> String {
    signer
        .sign_raw(header.as_bytes(), payload.as_bytes())
        .expect("sign_raw")
}

/// Verifies with a fresh verifier.
pub fn verify(policy: Policy, keys: KeySet, token: &str, now: i64) -> Result<Verified, Rejection> {
    Verifier::new(policy, keys).verify(token.as_bytes(), now)
}

/// The shared keys, all loaded.
pub fn all_keys() -> KeySet {
    let k = keys();
    keyset(&[&k.rs, &k.es, &k.ed, &k.es2])
}

/// The default verifier: baseline policy, all shared keys.
pub fn verifier() -> Verifier {
    Verifier::new(policy().build().expect("policy"), all_keys())
}

/// Verifies with the default verifier at [`NOW`] and expects a rejection.
pub fn reject(token: &str) -> Rejection {
    match verifier().verify(token.as_bytes(), NOW) {
        Ok(v) => panic!("token was accepted: {:?}", v.claims()),
        Err(r) => r,
    }
}

/// Verifies with the default verifier at [`NOW`] and expects acceptance.
pub fn accept(token: &str) -> Verified {
    match verifier().verify(token.as_bytes(), NOW) {
        Ok(v) => v,
        Err(r) => panic!("token was rejected: {r} ({:?})", r.reason()),
    }
}

/// The three segments of a compact token.
pub fn segments(token: &str) -> [String; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a three-segment token: {token}");
    [parts[0].into(), parts[1].into(), parts[2].into()]
}

/// The decoded signature of a token.
pub fn signature_of(token: &str) -> Vec<u8> {
    base64url::decode(segments(token)[2].as_bytes()).expect("canonical signature")
}

/// `token` with its signature replaced by `signature` (encoded canonically).
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let [h, p, _] = segments(token);
    format!("{h}.{p}.{}", base64url::encode(signature))
}

/// Encodes text as base64url.
pub fn b64(text: &str) -> String {
    base64url::encode(text.as_bytes())
}

/// The numeric sextet of a base64url character.
pub fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not a base64url character: {c}"),
    }
}

/// The base64url character for a sextet.
pub fn char_of(sextet: u8) -> u8 {
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[usize::from(sextet)]
}

/// `segment` with the lowest (unused) bit of its last character flipped.
pub fn flip_trailing_bit(segment: &str) -> String {
    let mut bytes = segment.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = char_of(sextet(bytes[last]) ^ 1);
    String::from_utf8(bytes).expect("ascii")
}

/// HMAC-SHA256 over exactly `header_segment.payload_segment` (already encoded, possibly
/// non-canonically): for tokens `sign_hmac` cannot produce.
pub fn hs256_over_segments(secret: &[u8], header_segment: &str, payload_segment: &str) -> String {
    let input = format!("{header_segment}.{payload_segment}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", base64url::encode(tag.as_ref()))
}

/// A 32-byte HMAC secret used by the HMAC tests.
pub const SECRET: &[u8; 32] = b"0123456789abcdef0123456789ABCDEF";
