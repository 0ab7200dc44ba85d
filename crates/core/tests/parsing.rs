//! Header rules and strict parsing (DESIGN.md §Security policy items 5–6), on real signed tokens:
//! `crit` and `b64` refused; the accepted `typ` values (case-insensitive) and refused ones
//! (`dpop+jwt`, …); the 64 KiB default size limit (exact boundary, configurable, checked before
//! decoding); segment counts (five segments → JWE description, no dot → opaque); duplicate member
//! names in header and payload; nesting depth 64; canonical unpadded base64url only (a flipped
//! trailing bit in the signature, header or payload never verifies).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jwtgate_core::internal::base64url::Base64UrlError;
use jwtgate_core::internal::json::JsonError;
use jwtgate_core::jws::{HeaderError, Segment, DEFAULT_MAX_TOKEN_LEN};
use jwtgate_core::{AlgorithmSet, ErrorCode, JwsError, KeySet, Reason, Secret};
use serde_json::json;

fn malformed(error: JwsError) -> Reason {
    Reason::Malformed(error)
}

fn header_error(error: HeaderError) -> Reason {
    Reason::Malformed(JwsError::Header(error))
}

// ---------------------------------------------------------------------------------------------
// Item 5: crit, b64, typ.
// ---------------------------------------------------------------------------------------------

#[test]
fn crit_is_rejected_whatever_its_value() {
    let k = keys();
    for crit in [
        json!(["exp"]),
        json!([]),
        json!("b64"),
        json!(null),
        json!(false),
    ] {
        for signer in [&k.rs, &k.es, &k.ed] {
            let token = sign_h(signer, json!({ "crit": crit }), &base_claims());
            let r = reject(&token);
            assert_eq!(r.reason(), &header_error(HeaderError::Crit), "{crit}");
            assert!(r.description().contains("\"crit\""));
        }
    }
}

#[test]
fn b64_is_rejected_whatever_its_value() {
    let k = keys();
    for b64 in [json!(false), json!(true)] {
        let token = sign_h(&k.es, json!({ "b64": b64 }), &base_claims());
        let r = reject(&token);
        assert_eq!(r.reason(), &header_error(HeaderError::B64));
        assert!(r.description().contains("RFC 7797"));
    }
}

#[test]
fn accepted_typ_values_case_insensitively() {
    let k = keys();
    for typ in [
        "at+jwt",
        "AT+JWT",
        "At+Jwt",
        "application/at+jwt",
        "Application/AT+JWT",
        "JWT",
        "jwt",
        "application/jwt",
        "APPLICATION/JWT",
    ] {
        let token = sign_h(&k.es, json!({ "typ": typ }), &base_claims());
        let v = accept(&token);
        assert_eq!(v.typ(), Some(typ));
    }
    // Absent typ is accepted by default.
    let token = sign(&k.es, &base_claims());
    assert_eq!(accept(&token).typ(), None);
}

#[test]
fn other_token_types_are_rejected() {
    let k = keys();
    for typ in [
        "dpop+jwt",
        "DPoP+JWT",
        "logout+jwt",
        "secevent+jwt",
        "JOSE",
        "JOSE+JSON",
        "id_token+jwt",
        "at+jwt ",
        " JWT",
        "",
        "application/at+jwt; charset=utf-8",
    ] {
        let token = sign_h(&k.es, json!({ "typ": typ }), &base_claims());
        let r = reject(&token);
        assert_eq!(
            r.reason(),
            &header_error(HeaderError::WrongTyp(typ.into())),
            "{typ:?}"
        );
        assert!(r.description().contains("not an access token type"));
    }
    for typ in [json!(1), json!(["JWT"]), json!(null)] {
        let token = sign_h(&k.es, json!({ "typ": typ }), &base_claims());
        assert_eq!(
            reject(&token).reason(),
            &header_error(HeaderError::TypNotString)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 6: size limit.
// ---------------------------------------------------------------------------------------------

/// A valid EdDSA token of exactly `len` bytes (padding goes into a claim and, to reach lengths
/// that base64url cannot produce from the payload alone, into a header parameter).
fn token_of_len(len: usize) -> String {
    let k = keys();
    for header_pad in 0..4usize {
        let h = json!({"alg": "EdDSA", "kid": "ed-1", "pad": "x".repeat(header_pad)}).to_string();
        let base = sign_raw(&k.ed, &h, &claims(json!({"pad": ""})).to_string()).len();
        if base > len {
            continue;
        }
        // Each padding byte adds 4/3 of a character; search near the estimate.
        let estimate = (len - base) * 3 / 4;
        for pad in estimate.saturating_sub(4)..estimate + 4 {
            let c = claims(json!({"pad": "y".repeat(pad)}));
            let token = sign_raw(&k.ed, &h, &c.to_string());
            if token.len() == len {
                return token;
            }
        }
    }
    panic!("cannot build a token of {len} bytes");
}

#[test]
fn default_size_limit_is_64_kib_exactly() {
    assert_eq!(DEFAULT_MAX_TOKEN_LEN, 65_536);
    assert_eq!(policy().build().unwrap().max_token_len(), 65_536);
    let at_limit = token_of_len(65_536);
    assert_eq!(at_limit.len(), 65_536);
    accept(&at_limit);
    let over = token_of_len(65_537);
    let r = reject(&over);
    assert_eq!(
        r.reason(),
        &malformed(JwsError::TooLarge {
            len: 65_537,
            max: 65_536
        })
    );
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    assert!(r.description().contains("more than the limit of 65536"));
}

#[test]
fn size_limit_is_checked_before_decoding() {
    // Garbage that would fail every later check reports the size, not the garbage.
    for filler in [b'\xff', b'.', b' ', b'A'] {
        let token = vec![filler; 65_537];
        let r = verifier().verify(&token, NOW).unwrap_err();
        assert_eq!(
            r.reason(),
            &malformed(JwsError::TooLarge {
                len: 65_537,
                max: 65_536
            })
        );
    }
    // A huge token is refused without decoding: this must be fast even at 16 MiB.
    let huge = "a.".repeat(8 * 1024 * 1024);
    let start = std::time::Instant::now();
    let r = verifier().verify(huge.as_bytes(), NOW).unwrap_err();
    assert!(matches!(
        r.reason(),
        Reason::Malformed(JwsError::TooLarge { .. })
    ));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn size_limit_is_configurable() {
    let token = token_of_len(5_000);
    let small = policy().max_token_len(4_096).build().unwrap();
    let r = verify(small, all_keys(), &token, NOW).unwrap_err();
    assert_eq!(
        r.reason(),
        &malformed(JwsError::TooLarge {
            len: 5_000,
            max: 4_096
        })
    );
    let exact = policy().max_token_len(5_000).build().unwrap();
    assert!(verify(exact, all_keys(), &token, NOW).is_ok());

    let big = token_of_len(100_000);
    assert!(matches!(
        reject(&big).reason(),
        Reason::Malformed(JwsError::TooLarge { .. })
    ));
    let large = policy().max_token_len(128 * 1024).build().unwrap();
    assert!(verify(large, all_keys(), &big, NOW).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Item 6: structure.
// ---------------------------------------------------------------------------------------------

#[test]
fn segment_counts() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    let [h, p, s] = segments(&token);
    assert_eq!(
        reject(&format!("{h}.{p}")).reason(),
        &malformed(JwsError::SegmentCount(2))
    );
    assert_eq!(
        reject(&format!("{h}.{p}.{s}.{s}")).reason(),
        &malformed(JwsError::SegmentCount(4))
    );
    assert_eq!(
        reject(&format!("{h}.{p}.{s}.{s}.{s}.{s}")).reason(),
        &malformed(JwsError::SegmentCount(6))
    );
    assert_eq!(
        reject(&format!("{h}.{p}.{s}.")).reason(),
        &malformed(JwsError::SegmentCount(4))
    );
    assert_eq!(
        reject(&format!(".{p}.{s}")).reason(),
        &malformed(JwsError::EmptySegment(Segment::Header))
    );
    assert_eq!(
        reject(&format!("{h}.{p}.")).reason(),
        &malformed(JwsError::EmptySegment(Segment::Signature))
    );
    assert_eq!(reject("..").code(), ErrorCode::InvalidToken);
}

#[test]
fn an_empty_payload_is_not_a_jwt() {
    let k = keys();
    let token = sign_raw(&k.es, r#"{"alg":"ES256","kid":"es-1"}"#, "");
    assert!(segments(&token)[1].is_empty());
    let r = reject(&token);
    assert!(
        matches!(
            r.reason(),
            Reason::BadPayload(JwsError::Json {
                segment: Segment::Payload,
                error: JsonError::Malformed(_)
            })
        ),
        "{r:?}"
    );
}

#[test]
fn five_segments_are_described_as_a_jwe() {
    let h = b64(r#"{"alg":"dir","enc":"A256GCM"}"#);
    let r = reject(&format!("{h}..AAAA.BBBB.CCCC"));
    assert_eq!(
        r.reason(),
        &malformed(JwsError::Jwe {
            alg_enc: Some(("dir".into(), "A256GCM".into()))
        })
    );
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    let d = r.description();
    assert!(d.contains("encrypted JWE (alg dir, enc A256GCM)"), "{d}");
    assert!(d.contains("audience"), "{d}");
    // An unreadable JWE header still says JWE.
    let r = reject("a.b.c.d.e");
    assert_eq!(r.reason(), &malformed(JwsError::Jwe { alg_enc: None }));
    assert!(r.description().contains("JWE"));
}

#[test]
fn opaque_tokens_mention_the_audience() {
    for opaque in ["8cjL7QYCG8tzoOBdbS5Ld2w9VhbKp-aD", "abc", "x"] {
        let r = reject(opaque);
        assert_eq!(r.reason(), &malformed(JwsError::Opaque));
        assert_eq!(r.code(), ErrorCode::InvalidToken);
        assert_eq!(
            r.description(),
            "token is an opaque access token, not a JWT: request it with an `audience`"
        );
        assert!(r.hint().is_some_and(|h| h.contains("audience")));
    }
}

#[test]
fn bytes_outside_the_jws_alphabet_are_rejected() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    for (bad, byte) in [
        (format!("{token}\n"), b'\n'),
        (format!("Bearer {token}"), b' '),
        (format!(" {token}"), b' '),
        (format!("{token}\0"), 0),
        (format!("{token}é"), 0xC3),
    ] {
        assert_eq!(
            reject(&bad).reason(),
            &malformed(JwsError::NotAscii(byte)),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 6: strict JSON.
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_member_names_in_the_header_are_rejected() {
    let k = keys();
    let payload = base_claims().to_string();
    for (h, name) in [
        (r#"{"alg":"ES256","kid":"es-1","kid":"es-1"}"#, "kid"),
        (r#"{"alg":"ES256","alg":"ES256","kid":"es-1"}"#, "alg"),
        (
            r#"{"alg":"ES256","kid":"es-1","typ":"JWT","typ":"at+jwt"}"#,
            "typ",
        ),
        (r#"{"alg":"ES256","kid":"es-1","\u006bid":"es-2"}"#, "kid"),
        (r#"{"alg":"ES256","kid":"es-1","x":{"a":1,"a":2}}"#, "a"),
    ] {
        let token = sign_raw(&k.es, h, &payload);
        let r = reject(&token);
        assert_eq!(
            r.reason(),
            &malformed(JwsError::Json {
                segment: Segment::Header,
                error: JsonError::DuplicateMember(name.into())
            }),
            "{h}"
        );
        assert!(r.description().contains("duplicate member name"));
    }
}

#[test]
fn duplicate_member_names_in_the_payload_are_rejected() {
    let k = keys();
    let h = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    let valid = base_claims().to_string();
    let inner = &valid[1..valid.len() - 1];
    for (extra, name) in [
        (format!(r#""exp":{}"#, NOW - 100), "exp"),
        (format!(r#""exp":{}"#, NOW + 100), "exp"),
        (r#""aud":"https://evil.example""#.to_owned(), "aud"),
        (r#""\u0069ss":"https://evil.example/""#.to_owned(), "iss"),
        (r#""scope":"admin""#.to_owned(), "scope"),
        (r#""ext":{"role":"a","role":"b"}"#.to_owned(), "role"),
    ] {
        // The duplicate comes last: a "last wins" parser would use it.
        let payload = format!("{{{inner},{extra}}}");
        let token = sign_raw(&k.ed, h, &payload);
        let r = reject(&token);
        assert_eq!(
            r.reason(),
            &Reason::BadPayload(JwsError::Json {
                segment: Segment::Payload,
                error: JsonError::DuplicateMember(name.into())
            }),
            "{payload}"
        );
        assert_eq!(r.code(), ErrorCode::InvalidToken);
    }
}

#[test]
fn nesting_depth_is_limited_to_64() {
    let k = keys();
    let h = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    let valid = base_claims().to_string();
    let inner = &valid[1..valid.len() - 1];
    let nested = |levels: usize| {
        format!(
            "{{{inner},\"deep\":{}1{}}}",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    // The claims object plus 63 arrays: 64 levels.
    accept(&sign_raw(&k.ed, h, &nested(63)));
    let r = reject(&sign_raw(&k.ed, h, &nested(64)));
    assert_eq!(
        r.reason(),
        &Reason::BadPayload(JwsError::Json {
            segment: Segment::Payload,
            error: JsonError::TooDeep
        })
    );
    // Very deep input is refused without a stack overflow.
    let r = reject(&sign_raw(&k.ed, h, &nested(20_000)));
    assert!(matches!(
        r.reason(),
        Reason::BadPayload(JwsError::Json {
            error: JsonError::TooDeep,
            ..
        })
    ));
    // Same in the header.
    let deep_header = format!(
        r#"{{"alg":"EdDSA","kid":"ed-1","x":{}{}}}"#,
        "{\"a\":".repeat(64) + "1",
        "}".repeat(64)
    );
    let r = reject(&sign_raw(&k.ed, &deep_header, &valid));
    assert_eq!(
        r.reason(),
        &malformed(JwsError::Json {
            segment: Segment::Header,
            error: JsonError::TooDeep
        })
    );
}

#[test]
fn header_and_payload_must_be_json_objects() {
    let k = keys();
    let good_h = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    let r = reject(&sign_raw(&k.ed, "[]", &base_claims().to_string()));
    assert_eq!(
        r.reason(),
        &malformed(JwsError::Json {
            segment: Segment::Header,
            error: JsonError::NotAnObject
        })
    );
    for payload in ["[]", "\"claims\"", "1", "null"] {
        let r = reject(&sign_raw(&k.ed, good_h, payload));
        assert_eq!(
            r.reason(),
            &Reason::BadPayload(JwsError::Json {
                segment: Segment::Payload,
                error: JsonError::NotAnObject
            })
        );
    }
    // Invalid UTF-8 and trailing garbage.
    let token =
        k.ed.sign_raw(good_h.as_bytes(), b"{\"iss\":\"\xff\"}")
            .unwrap();
    assert!(matches!(
        reject(&token).reason(),
        Reason::BadPayload(JwsError::Json {
            error: JsonError::Malformed(_),
            ..
        })
    ));
    let with_garbage = format!("{} x", base_claims());
    assert!(matches!(
        reject(&sign_raw(&k.ed, good_h, &with_garbage)).reason(),
        Reason::BadPayload(JwsError::Json {
            error: JsonError::Malformed(_),
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Item 6: canonical base64url.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_flipped_trailing_bit_in_the_signature_never_verifies() {
    let k = keys();
    for signer in [&k.rs, &k.es, &k.ed] {
        let token = sign(signer, &base_claims());
        let [h, p, s] = segments(&token);
        // 256- and 64-byte signatures leave 4 unused bits in the last character.
        assert_eq!(s.len() % 4, 2);
        let flipped = flip_trailing_bit(&s);
        assert_ne!(flipped, s);
        let r = reject(&format!("{h}.{p}.{flipped}"));
        assert_eq!(
            r.reason(),
            &malformed(JwsError::Base64 {
                segment: Segment::Signature,
                error: Base64UrlError::NonCanonical
            }),
            "{}",
            signer.algorithm()
        );
        assert!(r.description().contains("non-canonical"));
    }
}

fn hs_verifier_token(header_segment: &str, payload_segment: &str) -> jwtgate_core::Rejection {
    let token = hs256_over_segments(SECRET, header_segment, payload_segment);
    let mut set = KeySet::new();
    set.add_secret(Secret::new(SECRET, None, None).unwrap());
    let policy = policy().algorithms(AlgorithmSet::hmac()).build().unwrap();
    verify(policy, set, &token, NOW).unwrap_err()
}

#[test]
fn non_canonical_header_and_payload_never_verify_even_when_signed() {
    // The signer MACs the non-canonical text itself, so only the base64url rule can refuse it.
    let mut h = r#"{"alg":"HS256"}"#.to_owned();
    let mut p = base_claims().to_string();
    while b64(&h).len() % 4 == 0 {
        h.push(' ');
    }
    while b64(&p).len() % 4 == 0 {
        p.push(' ');
    }
    let (h64, p64) = (b64(&h), b64(&p));
    // Sanity: the canonical forms verify.
    let ok = hs256_over_segments(SECRET, &h64, &p64);
    let mut set = KeySet::new();
    set.add_secret(Secret::new(SECRET, None, None).unwrap());
    let hs_only = policy().algorithms(AlgorithmSet::hmac()).build().unwrap();
    assert!(verify(hs_only, set, &ok, NOW).is_ok());

    let r = hs_verifier_token(&flip_trailing_bit(&h64), &p64);
    assert_eq!(
        r.reason(),
        &malformed(JwsError::Base64 {
            segment: Segment::Header,
            error: Base64UrlError::NonCanonical
        })
    );
    let r = hs_verifier_token(&h64, &flip_trailing_bit(&p64));
    assert_eq!(
        r.reason(),
        &Reason::BadPayload(JwsError::Base64 {
            segment: Segment::Payload,
            error: Base64UrlError::NonCanonical
        })
    );
    // Padding and the standard alphabet are refused too, even when MACed.
    let r = hs_verifier_token(&h64, &format!("{p64}="));
    assert!(matches!(
        r.reason(),
        Reason::BadPayload(JwsError::Base64 {
            error: Base64UrlError::InvalidCharacter { byte: b'=', .. }
                | Base64UrlError::InvalidLength(_),
            ..
        })
    ));
    let std_alphabet = p64.replace('-', "+").replace('_', "/");
    if std_alphabet != p64 {
        let r = hs_verifier_token(&h64, &std_alphabet);
        assert!(matches!(
            r.reason(),
            Reason::BadPayload(JwsError::Base64 {
                error: Base64UrlError::InvalidCharacter { .. },
                ..
            })
        ));
    }
}

#[test]
fn padded_or_standard_alphabet_signatures_are_rejected() {
    let k = keys();
    let token = sign(&k.es, &base_claims());
    let [h, p, s] = segments(&token);
    let r = reject(&format!("{h}.{p}.{s}=="));
    assert_eq!(
        r.reason(),
        &malformed(JwsError::Base64 {
            segment: Segment::Signature,
            error: Base64UrlError::InvalidCharacter {
                byte: b'=',
                offset: s.len()
            }
        })
    );
    let r = reject(&format!("{h}.{p}.{}+", &s[..s.len() - 1]));
    assert!(matches!(
        r.reason(),
        Reason::Malformed(JwsError::Base64 {
            segment: Segment::Signature,
            error: Base64UrlError::InvalidCharacter { byte: b'+', .. }
        })
    ));
}
