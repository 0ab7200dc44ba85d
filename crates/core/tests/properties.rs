//! Property tests (proptest) of jwtgate-core's public API:
//!
//! * parsing and verification never panic, on arbitrary bytes, on strings made of base64url
//!   characters and dots, and on structurally plausible tokens (random headers, claims and
//!   signatures) — and `explain` always agrees with `verify`;
//! * no single-byte change (or deletion) of a valid RS256, ES256 or EdDSA token is ever accepted:
//!   every position is tried exhaustively with every base64url character, `.` and a few foreign
//!   bytes, and proptest samples arbitrary byte values at arbitrary positions;
//! * base64url encode/decode agree with an independent bit-by-bit reference implementation
//!   (including which inputs are refused: alphabet, length 4k+1, non-zero trailing bits);
//! * the time checks (`exp`, `nbf`, `iat`, integer and fractional, with leeway) agree with exact
//!   arithmetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_lc_rs::signature::Ed25519KeyPair;
use common::*;
use jwtgate_core::internal::base64url;
use jwtgate_core::{
    explain, Algorithm, Check, Header, Reason, Rejection, UnverifiedToken, Verified, Verifier,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(verifier);

/// Verifies with the shared verifier and checks that `explain` reports the same outcome.
fn verify_and_explain(token: &[u8], now: i64) -> bool {
    let v: &Verifier = &VERIFIER;
    let outcome = v.verify(token, now);
    let e = explain(token, v.policy(), v.keys(), now);
    assert_eq!(e.outcome, outcome, "explain disagrees with verify");
    outcome.is_ok()
}

// ---------------------------------------------------------------------------------------------
// Never a panic.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(!verify_and_explain(&bytes, NOW));
        let _ = jwtgate_core::KeySet::from_json(&bytes);
        let _ = jwtgate_core::internal::json::parse_object(&bytes);
        let _ = base64url::decode(&bytes);
    }

    #[test]
    fn base64url_characters_and_dots_never_panic(text in "[A-Za-z0-9_.-]{0,400}") {
        prop_assert!(!verify_and_explain(text.as_bytes(), NOW));
    }

    #[test]
    fn three_dotted_segments_never_panic(
        a in "[A-Za-z0-9_-]{0,120}",
        b in "[A-Za-z0-9_-]{0,120}",
        c in "[A-Za-z0-9_-]{0,400}",
    ) {
        let token = format!("{a}.{b}.{c}");
        prop_assert!(!verify_and_explain(token.as_bytes(), NOW));
    }
}

/// A JSON value of bounded size, used for header and claim members.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e20f64..1e20).prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            ISS, AUD, "none", "RS256", "ES256", "EdDSA", "HS256", "es-1"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn header_strategy() -> impl Strategy<Value = Value> {
    let alg = prop::sample::select(vec![
        "RS256", "RS384", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256", "none", "NONE",
        "rs256", "",
    ]);
    let kid = prop::option::of(prop::sample::select(vec![
        "rs-1", "es-1", "ed-1", "es-2", "unknown",
    ]));
    let typ = prop::option::of(prop::sample::select(vec![
        "JWT",
        "at+jwt",
        "dpop+jwt",
        "application/jwt",
    ]));
    let extra = prop::collection::btree_map(
        prop::sample::select(vec![
            "crit", "b64", "jwk", "jku", "x5c", "cty", "zip", "foo",
        ]),
        json_value(),
        0..2,
    );
    (alg, kid, typ, extra).prop_map(|(alg, kid, typ, extra)| {
        let mut h: Map<String, Value> = extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        h.insert("alg".into(), json!(alg));
        if let Some(kid) = kid {
            h.insert("kid".into(), json!(kid));
        }
        if let Some(typ) = typ {
            h.insert("typ".into(), json!(typ));
        }
        Value::Object(h)
    })
}

fn claims_strategy() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "iss",
        "aud",
        "exp",
        "nbf",
        "iat",
        "sub",
        "scope",
        "scp",
        "permissions",
        "azp",
        "nonce",
        "client_id",
        "jti",
    ]);
    prop::collection::btree_map(names, json_value(), 0..8).prop_map(|m| {
        let mut c = base_claims();
        for (k, v) in m {
            c[k] = v;
        }
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Plausible tokens with random signatures: never a panic, never accepted.
    #[test]
    fn plausible_tokens_with_random_signatures_are_never_accepted(
        header in header_strategy(),
        claims in claims_strategy(),
        signature in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!(
            "{}.{}.{}",
            b64(&header.to_string()),
            b64(&claims.to_string()),
            base64url::encode(&signature),
        );
        prop_assert!(!verify_and_explain(token.as_bytes(), NOW));
    }

    /// Properly signed tokens with random headers and claims: `explain` and `verify` agree, and
    /// an accepted token really satisfies the core rules.
    #[test]
    fn signed_tokens_with_random_contents_agree_with_explain(
        header in header_strategy(),
        claims in claims_strategy(),
        now_offset in -1_000i64..1_000,
    ) {
        let k = keys();
        let signer = match header["alg"].as_str() {
            Some("RS256") => &k.rs,
            Some("EdDSA") => &k.ed,
            _ => &k.es,
        };
        let token = sign_raw(signer, &header.to_string(), &claims.to_string());
        if verify_and_explain(token.as_bytes(), NOW + now_offset) {
            prop_assert_eq!(claims["iss"].as_str(), Some(ISS));
            prop_assert!(header.get("crit").is_none() && header.get("b64").is_none());
            prop_assert_eq!(header["alg"].as_str(), Some(signer.algorithm().name()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No single-byte change of a valid token is accepted.
// ---------------------------------------------------------------------------------------------

const REPLACEMENTS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0\xff";

fn valid_tokens() -> Vec<String> {
    let k = keys();
    let c = claims(json!({"permissions": ["read:users"], "azp": "spa"}));
    vec![sign(&k.rs, &c), sign(&k.es, &c), sign(&k.ed, &c)]
}

#[test]
fn every_single_byte_change_of_a_valid_token_is_rejected() {
    let v: &Verifier = &VERIFIER;
    for token in valid_tokens() {
        let original = token.as_bytes();
        assert!(v.verify(original, NOW).is_ok());
        let mut tried = 0usize;
        let mut mutated = original.to_vec();
        for position in 0..original.len() {
            for &byte in REPLACEMENTS {
                if byte == original[position] {
                    continue;
                }
                mutated[position] = byte;
                let result = v.verify(&mutated, NOW);
                assert!(
                    result.is_err(),
                    "accepted with byte {position} changed to {byte:#04x}: {}",
                    String::from_utf8_lossy(&mutated)
                );
                tried += 1;
            }
            mutated[position] = original[position];
            // Deleting the byte is refused as well.
            let mut shorter = original.to_vec();
            shorter.remove(position);
            assert!(
                v.verify(&shorter, NOW).is_err(),
                "accepted without byte {position}"
            );
        }
        assert!(tried > original.len() * 60);
    }
}

#[test]
fn every_trailing_bit_variant_of_the_signature_is_rejected() {
    // The last character of a 64- or 256-byte signature carries 4 unused bits: all 15 non-zero
    // patterns must be refused, not decoded to the same signature.
    let v: &Verifier = &VERIFIER;
    for token in valid_tokens() {
        let last = token.len() - 1;
        let value = sextet(token.as_bytes()[last]);
        assert_eq!(value & 0x0F, 0);
        for low in 1..16u8 {
            let mut bytes = token.as_bytes().to_vec();
            bytes[last] = char_of(value | low);
            let r = v.verify(&bytes, NOW).unwrap_err();
            assert!(
                matches!(
                    r.reason(),
                    Reason::Malformed(jwtgate_core::JwsError::Base64 { .. })
                ),
                "{r:?}"
            );
        }
    }
}

static TOKENS: LazyLock<Vec<String>> = LazyLock::new(valid_tokens);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn sampled_byte_changes_are_rejected(which in 0usize..3, position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let token = TOKENS[which].as_bytes();
        let position = position.index(token.len());
        prop_assume!(token[position] != byte);
        let mut mutated = token.to_vec();
        mutated[position] = byte;
        prop_assert!(!verify_and_explain(&mutated, NOW));
    }

    #[test]
    fn sampled_bit_flips_are_rejected(which in 0usize..3, position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let token = TOKENS[which].as_bytes();
        let position = position.index(token.len());
        let mut mutated = token.to_vec();
        mutated[position] ^= 1 << bit;
        prop_assert!(!verify_and_explain(&mutated, NOW));
    }
}

// ---------------------------------------------------------------------------------------------
// `Verifier::verify` refuses as the parse, signature and claims steps in order refuse.
// ---------------------------------------------------------------------------------------------

/// The steps `Verifier::verify` stands for, one after the other: the whole-token parse
/// (printable bytes and dots first), the signature, the claims.
fn verify_in_order(verifier: &Verifier, token: &[u8], now: i64) -> Result<Verified, Rejection> {
    UnverifiedToken::parse(token, verifier.policy())?
        .verify_signature(verifier.keys())?
        .check(verifier.policy(), now)
}

/// `Verifier::verify`, `TokenToVerify::verify` (signature and claims in one step) and the
/// steps in order give the same result: the same token, or the same refusal (reason and its
/// text).
fn assert_verify_refuses_in_order(token: &[u8]) {
    let v: &Verifier = &VERIFIER;
    let in_order = verify_in_order(v, token, NOW);
    // Cut for a caller that chooses the keys itself (the key registry): its verification, and
    // a refusal of its own before it (no key for the `kid`), come out as the steps in order.
    let to_verify = UnverifiedToken::parse_to_verify(token, v.policy());
    if let Ok(cut) = &to_verify {
        // The skipped pass, run on request, is the parse's only refusal left.
        assert_eq!(
            cut.check_structure(),
            UnverifiedToken::parse(token, v.policy()).map(|_| ())
        );
    }
    assert_eq!(
        to_verify
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|cut| cut.unverified_claims()),
        UnverifiedToken::parse(token, v.policy()).and_then(|parsed| parsed.unverified_claims())
    );
    let own = Rejection::from(Reason::MissingClaim("the caller's own refusal"));
    let expected: Result<(), Rejection> =
        UnverifiedToken::parse(token, v.policy()).and_then(|_| Err(own.clone()));
    let refused_after_cut: Result<(), Rejection> = to_verify.clone().and_then(|cut| {
        cut.check_structure()?;
        Err(own.clone())
    });
    assert_eq!(refused_after_cut, expected);
    let verified_after_cut = to_verify.and_then(|cut| cut.verify(v.keys(), v.policy(), NOW));
    assert_eq!(verified_after_cut, in_order);
    let verified = v.verify(token, NOW);
    assert_eq!(
        verified,
        in_order,
        "{}",
        String::from_utf8_lossy(token).escape_debug()
    );
    if let (Err(verified), Err(in_order)) = (&verified, &in_order) {
        assert_eq!(verified.description(), in_order.description());
    }
}

/// Tokens whose header each verifier has parsed: valid ones, and signed ones that a claims
/// check or the key lookup refuses.
fn recent_header_tokens() -> Vec<String> {
    let k = keys();
    let mut tokens = valid_tokens();
    tokens.push(sign(&k.rs, &claims(json!({"exp": NOW - 600}))));
    tokens.push(sign(&k.es, &claims(json!({"aud": "other"}))));
    tokens.push(sign(&k.ed, &claims(json!({"iss": null}))));
    tokens.push(sign_h(&k.es, json!({"kid": "unknown"}), &base_claims()));
    for token in &tokens {
        let _ = VERIFIER.verify(token.as_bytes(), NOW);
    }
    tokens
}

/// Bytes `verify`'s decoding refuses that the parse's whole-token pass refuses first: every
/// unprintable byte class, `.`, and base64url's near misses.
const FOREIGN: &[u8] = b"\0\x01\t\n\x1f \x7f\x80\xc3\xff.=+/";

#[test]
fn every_foreign_byte_anywhere_is_refused_as_by_the_steps_in_order() {
    for token in recent_header_tokens() {
        let original = token.as_bytes();
        assert_verify_refuses_in_order(original);
        for position in 0..=original.len() {
            for &byte in FOREIGN {
                let mut inserted = original.to_vec();
                inserted.insert(position, byte);
                assert_verify_refuses_in_order(&inserted);
                if let Some(&was) = original.get(position) {
                    let mut replaced = original.to_vec();
                    replaced[position] = byte;
                    if was != byte {
                        assert_verify_refuses_in_order(&replaced);
                    }
                }
            }
            let mut shorter = original.to_vec();
            if position < shorter.len() {
                shorter.remove(position);
                assert_verify_refuses_in_order(&shorter);
            }
            assert_verify_refuses_in_order(&original[..position]);
        }
        // Too long for the policy, with a foreign byte too.
        let long = format!("{token}.{}", "A".repeat(70_000));
        assert_verify_refuses_in_order(long.as_bytes());
        assert_verify_refuses_in_order(format!("{long}\0").as_bytes());
    }
}

/// Tokens whose signature verifies over a malformed signing input — a foreign byte or a `.` in
/// the payload segment, an empty or doubled payload — where only the payload's strict decoding
/// stands between the cut path and acceptance: `verify` refuses every one as the steps in order.
#[test]
fn signed_malformed_payloads_are_refused_as_by_the_steps_in_order() {
    let k = keys();
    let signer = Ed25519KeyPair::from_pkcs8(&k.ed.to_pkcs8().unwrap()).unwrap();
    let valid = sign(&k.ed, &base_claims());
    assert!(VERIFIER.verify(valid.as_bytes(), NOW).is_ok());
    let [header, payload, _] = segments(&valid);
    let mut payloads = vec![
        Vec::new(),
        format!("{payload}.{payload}").into_bytes(),
        format!("{payload}..").into_bytes(),
        format!(".{payload}").into_bytes(),
    ];
    for position in 0..=payload.len() {
        for &byte in FOREIGN {
            let mut inserted = payload.clone().into_bytes();
            inserted.insert(position, byte);
            payloads.push(inserted);
            if position < payload.len() {
                let mut replaced = payload.clone().into_bytes();
                replaced[position] = byte;
                payloads.push(replaced);
            }
        }
    }
    for tampered in payloads {
        let mut token = format!("{header}.").into_bytes();
        token.extend_from_slice(&tampered);
        let signature = signer.sign(&token);
        token.push(b'.');
        token.extend_from_slice(base64url::encode(signature.as_ref()).as_bytes());
        let refusal = VERIFIER.verify(&token, NOW).unwrap_err();
        // The signature is good: what refuses the token is its structure or payload.
        assert!(
            !matches!(refusal.reason(), Reason::BadSignature { .. }),
            "{refusal}"
        );
        assert_verify_refuses_in_order(&token);
    }
}

/// One edit of a token: a byte replaced, inserted or removed at a position.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(FOREIGN.to_vec()),
        prop::sample::select(ALPHABET.to_vec()),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<prop::sample::Index>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<prop::sample::Index>().prop_map(Edit::Remove),
    ]
}

static RECENT_HEADER_TOKENS: LazyLock<Vec<String>> = LazyLock::new(recent_header_tokens);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// Tokens with up to four edits (foreign bytes, dots, alphabet bytes, anywhere; segments
    /// added, dropped, cut) are refused exactly as the steps in order refuse them.
    #[test]
    fn edited_tokens_are_refused_as_by_the_steps_in_order(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..5),
        tail in prop::option::of("[A-Za-z0-9_.-]{0,90}"),
    ) {
        let tokens: &[String] = &RECENT_HEADER_TOKENS;
        let mut token = which.get(tokens).clone().into_bytes();
        for edit in edits {
            match edit {
                Edit::Replace(at, byte) if !token.is_empty() => {
                    let at = at.index(token.len());
                    token[at] = byte;
                }
                Edit::Insert(at, byte) => {
                    let at = at.index(token.len() + 1);
                    token.insert(at, byte);
                }
                Edit::Remove(at) if !token.is_empty() => {
                    token.remove(at.index(token.len()));
                }
                _ => {}
            }
        }
        if let Some(tail) = tail {
            token.extend_from_slice(tail.as_bytes());
        }
        assert_verify_refuses_in_order(&token);
    }
}

// ---------------------------------------------------------------------------------------------
// base64url against a reference implementation.
// ---------------------------------------------------------------------------------------------

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Reference encoder: the bit string of the input, cut into 6-bit groups, zero-padded at the end.
fn reference_encode(data: &[u8]) -> String {
    let bits: Vec<u8> = data
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1))
        .collect();
    bits.chunks(6)
        .map(|group| {
            let value = (0..6).fold(0u8, |acc, i| {
                (acc << 1) | group.get(i).copied().unwrap_or(0)
            });
            char::from(ALPHABET[usize::from(value)])
        })
        .collect()
}

/// Reference strict decoder: alphabet only, no padding, the leftover bits must be fewer than 8 and
/// all zero.
fn reference_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut bits = Vec::with_capacity(text.len() * 6);
    for &c in text {
        let value = ALPHABET.iter().position(|&a| a == c)? as u8;
        bits.extend((0..6).rev().map(|i| (value >> i) & 1));
    }
    let whole = bits.len() / 8 * 8;
    let leftover = &bits[whole..];
    if leftover.len() >= 6 || leftover.iter().any(|&b| b != 0) {
        return None;
    }
    Some(
        bits[..whole]
            .chunks(8)
            .map(|byte| byte.iter().fold(0u8, |acc, &b| (acc << 1) | b))
            .collect(),
    )
}

#[test]
fn reference_implementation_matches_rfc4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(reference_encode(plain.as_bytes()), encoded);
        assert_eq!(base64url::encode(plain.as_bytes()), encoded);
        assert_eq!(
            reference_decode(encoded.as_bytes()).as_deref(),
            Some(plain.as_bytes())
        );
    }
    assert_eq!(reference_encode(&[0xfb, 0xff]), "-_8");
    assert_eq!(reference_decode(b"Zm9"), None);
    assert_eq!(reference_decode(b"Zm9vY"), None);
    assert_eq!(reference_decode(b"Zg=="), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn encode_matches_the_reference(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let encoded = base64url::encode(&data);
        prop_assert_eq!(&encoded, &reference_encode(&data));
        prop_assert_eq!(base64url::decode(encoded.as_bytes()), Ok(data.clone()));
        prop_assert_eq!(base64url::decoded_len(encoded.len()), Ok(data.len()));
        // decode_into with an exact buffer gives the same bytes.
        let mut out = vec![0u8; data.len()];
        prop_assert_eq!(base64url::decode_into(encoded.as_bytes(), &mut out), Ok(data.len()));
        prop_assert_eq!(out, data);
    }

    #[test]
    fn decode_matches_the_reference_on_alphabet_strings(text in "[A-Za-z0-9_-]{0,120}") {
        prop_assert_eq!(base64url::decode(text.as_bytes()).ok(), reference_decode(text.as_bytes()));
    }

    #[test]
    fn decode_matches_the_reference_on_near_alphabet_strings(text in "[A-Za-z0-9_+/=. -]{0,60}") {
        prop_assert_eq!(base64url::decode(text.as_bytes()).ok(), reference_decode(text.as_bytes()));
    }

    #[test]
    fn decode_matches_the_reference_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(base64url::decode(&bytes).ok(), reference_decode(&bytes));
    }

    #[test]
    fn every_accepted_encoding_is_the_canonical_one(text in "[A-Za-z0-9_-]{0,120}") {
        if let Ok(data) = base64url::decode(text.as_bytes()) {
            prop_assert_eq!(base64url::encode(&data), text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Time checks against exact arithmetic.
// ---------------------------------------------------------------------------------------------

fn header() -> Header {
    Header::new(Algorithm::ES256, None, None)
}

fn run(check: Check, leeway: u64, claims: Value, now: i64) -> bool {
    let policy = policy().leeway(leeway).build().unwrap();
    let Value::Object(claims) = claims else {
        unreachable!()
    };
    check.run(&policy, &header(), &claims, now).is_ok()
}

// |values| < 2^50, so every integer and every sum below is exact in f64 and i128.
const RANGE: i64 = 1 << 50;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn integer_times_match_exact_arithmetic(
        t in -RANGE..RANGE,
        now in -RANGE..RANGE,
        leeway in 0u64..=86_400,
        near in -100i64..100,
    ) {
        let l = i128::from(leeway);
        // Half the cases near the boundary.
        for value in [t, now + near] {
            let (v, n) = (i128::from(value), i128::from(now));
            prop_assert_eq!(run(Check::Expiry, leeway, json!({"exp": value}), now), n < v + l);
            prop_assert_eq!(run(Check::NotBefore, leeway, json!({"nbf": value}), now), v <= n + l);
            prop_assert_eq!(run(Check::IssuedAt, leeway, json!({"iat": value}), now), v <= n + l);
        }
    }

    #[test]
    fn fractional_times_match_exact_arithmetic(
        whole in -RANGE..RANGE,
        frac in 1u32..1_000,
        now in -RANGE..RANGE,
        leeway in 0u64..=86_400,
        near in -3i64..3,
    ) {
        for base in [whole, now + near] {
            // value = base + frac/1000, stored as the nearest double; compare with that double
            // exactly: it lies strictly between base and base + 1.
            let value = base as f64 + f64::from(frac) / 1000.0;
            prop_assume!(value > base as f64 && value < (base + 1) as f64);
            let l = leeway as i64;
            // exp accepted iff now < value + L  ⟺  now - L < value  ⟺  now - L ≤ base.
            prop_assert_eq!(run(Check::Expiry, leeway, json!({"exp": value}), now), now - l <= base);
            // nbf/iat rejected iff value > now + L  ⟺  base ≥ now + L.
            prop_assert_eq!(run(Check::NotBefore, leeway, json!({"nbf": value}), now), base < now + l);
            prop_assert_eq!(run(Check::IssuedAt, leeway, json!({"iat": value}), now), base < now + l);
        }
    }

    #[test]
    fn extreme_times_never_panic(
        now in any::<i64>(),
        leeway in 0u64..=86_400,
        value in prop_oneof![
            any::<i64>().prop_map(|v| json!(v)),
            any::<u64>().prop_map(|v| json!(v)),
            any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| json!(v)),
        ],
    ) {
        for check in [Check::Expiry, Check::NotBefore, Check::IssuedAt] {
            let claims = json!({"exp": value, "nbf": value, "iat": value});
            let _ = run(check, leeway, claims, now);
        }
        let p = policy().leeway(leeway).max_age(3600).build().unwrap();
        let Value::Object(claims) = json!({"iat": value}) else { unreachable!() };
        let _ = Check::MaxAge.run(&p, &header(), &claims, now);
    }
}

// ---------------------------------------------------------------------------------------------
// Scope grants: the compact word match agrees with the plain definition.
// ---------------------------------------------------------------------------------------------

/// The definition the scope checks implement, over the claims as JSON: the non-empty
/// space-separated words of `scope` and of `scp` (strings), and the string items of `scp` and
/// `permissions` (arrays), in that order.
fn reference_granted(claims: &Map<String, Value>) -> Vec<String> {
    let words = |name: &str| -> Vec<String> {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(|text| {
                text.split(' ')
                    .filter(|word| !word.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let items = |name: &str| -> Vec<String> {
        claims
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = words("scope");
    all.extend(words("scp"));
    all.extend(items("scp"));
    all.extend(items("permissions"));
    all
}

/// A scope-claim value: words from a small alphabet (so that requirements hit and miss), with
/// empty pieces, near misses, non-ASCII text and escapes; an array of such strings mixed with
/// other values; or something else entirely.
fn scope_value() -> impl Strategy<Value = Value> {
    let word = prop::sample::select(vec![
        "",
        "a",
        "b",
        "ab",
        "read:users",
        "read:users2",
        "é",
        "a\u{a0}b",
        "x\"y",
        "\t",
        "a b",
    ]);
    let text = prop::collection::vec(word.clone(), 0..6).prop_map(|words| words.join(" "));
    let item = prop_oneof![
        4 => word.prop_map(|w| json!(w)),
        1 => Just(json!(7)),
        1 => Just(Value::Null),
    ];
    prop_oneof![
        3 => text.prop_map(Value::String),
        3 => prop::collection::vec(item, 0..5).prop_map(Value::Array),
        1 => Just(json!({"scope": "a"})),
        1 => Just(json!(true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// `Verified::require`, `Verified::scopes` and `scope::grants` on the compact claims decide
    /// exactly what the plain definition over the full claims map decides, for all-of and
    /// any-of requirements of words that are granted, near misses, empty or absent.
    #[test]
    fn scope_grants_agree_with_the_definition(
        scope in prop::option::of(scope_value()),
        scp in prop::option::of(scope_value()),
        permissions in prop::option::of(scope_value()),
        wanted in prop::collection::vec(
            prop::sample::select(vec!["a", "b", "ab", "read:users", "é", "a\u{a0}b", "x\"y", "a b", "c"]),
            0..4,
        ),
        any_of in any::<bool>(),
    ) {
        let mut patch = Map::new();
        for (name, value) in [("scope", scope), ("scp", scp), ("permissions", permissions)] {
            if let Some(value) = value {
                patch.insert(name.to_owned(), value);
            }
        }
        let token = sign(&keys().es, &claims(Value::Object(patch)));
        let verified = accept(&token);
        let map = verified.to_claims();
        let granted = reference_granted(&map);
        prop_assert_eq!(verified.scopes().collect::<Vec<_>>(), granted.iter().map(String::as_str).collect::<Vec<_>>());
        for scope in &wanted {
            let expected = granted.iter().any(|granted| granted == scope);
            prop_assert_eq!(jwtgate_core::scope::grants(&verified, scope), expected);
            prop_assert_eq!(jwtgate_core::scope::grants(&map, scope), expected);
        }
        let requirement = if any_of {
            jwtgate_core::ScopeRequirement::any_of(wanted.iter().copied())
        } else {
            jwtgate_core::ScopeRequirement::all_of(wanted.iter().copied())
        };
        let met = |scope: &&str| granted.iter().any(|granted| granted == scope);
        let expected = if any_of {
            wanted.is_empty() || wanted.iter().any(met)
        } else {
            wanted.iter().all(met)
        };
        prop_assert_eq!(verified.require(&requirement).is_ok(), expected);
        prop_assert_eq!(requirement.is_met(&map), expected);
    }
}
