//! Benchmark of the request path, run by `cargo bench -p jwtgate-core`.
//!
//! For an Auth0-shaped access token signed with RS256 (2048-bit), ES256 and EdDSA it measures,
//! interleaved in one run:
//!
//! * **a** — the bare aws-lc-rs signature check with a pre-parsed key
//!   ([`ParsedPublicKey::verify_sig`] over the same signing input and signature): the floor;
//! * **b** — jwtgate's full [`Verifier::verify`] (parse, key lookup by `kid` in a 4-key set,
//!   signature, claims policy);
//! * **c** — the `jsonwebtoken` crate's full `decode` with the same key and the same checks
//!   (`iss`, `aud`, `exp`, `exp` required, no leeway) as a baseline.
//!
//! Each (algorithm, variant) cell is timed in short rounds, the cells alternating within every
//! round (in a rotating order), so machine noise hits all of them alike; the summary reports the
//! median per cell as ops/s and the ratios b/a and b/c (the median of the per-round ratios).
//!
//! Environment:
//!
//! * `JWTGATE_BENCH_QUICK=1` — a very short run (a smoke test for CI). Running the binary
//!   without `--bench` (as `cargo test --benches` does) is also quick.
//! * `JWTGATE_BENCH_ROUNDS=N`, `JWTGATE_BENCH_CELL_MS=M` — override rounds and time per cell.
//! * `JWTGATE_BENCH_ONLY=<alg>:<variant>` with `JWTGATE_BENCH_ITERS=N` — run only `N` iterations
//!   of one cell (e.g. `RS256:b`) inside the function `measured_loop`, for instruction counts:
//!   `valgrind --tool=callgrind --toggle-collect='*measured_loop*' <bench binary> --bench`.
//!   The variants `require` (`Verified::require` of `read:users`) and `scopes`
//!   (`Verified::distinct_scopes`) run instead the per-request scope reads on the verified token,
//!   in `scope_measured_loop`.
//!
//! Keys are fixed (embedded PKCS#8, generated for this benchmark only) so that runs, and
//! instruction counts in particular, are reproducible.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use jwtgate_core::internal::base64url;
use jwtgate_core::{
    Algorithm, KeySet, Policy, ScopeRequirement, SigningKey, UnixTime, Verified, Verifier,
};
use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RSA 2048 key that signs the RS256 token (kid `RSA_CURRENT_KID`). PKCS#8, base64url.
const RSA_CURRENT_PKCS8: &str = concat!(
    "MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCyxooT8ZUbLUsvh-SkoCBm7BGlsb6csmgWkdak",
    "cBt6D-wTis2StoxcfHpD1w5OKyMLD91y_Jzdv8HvxA26xh3jAM82RZ6hVIgHdjARxdPtY0T-olzze1NgUmf-aW1q",
    "l0wd0ZocfhLDOlYfVIf-DNDjhLurvmmbm6xsULsC-lrkhrxkI8E1jPtso78nVz86a0FLAj4dAskKZ-_RasziWCiQ",
    "UJZIyaQvm10brSdtmnFHV3JTRnzloZbSkP1LcBxyzyzQWsi1-R4ILTE0UZKxy_hGTUWFfbtYaVQjK4z57_BWDpgu",
    "MvjIcvf_gr3TdRRERP3Vf6UYTRpbL5jLTFDg4t6ZAgMBAAECggEAQMWHJHesRrbv3S42rGCprLCOKkLOZVaMONUo",
    "99X4Vo6rQV9SYPwLubyNzcN-ltqxLSJX4P_eU8dUnCqjsM5z6JmT-b1anmgSiuWKv_21bXZAeqNX2w2NJUJmFDqd",
    "Xnenp8wXsogJAzvBFUPaq7R4AF7IYg6wk6Tg4TOUthz_znjYVqiQZQbAIZDqVXW19yYgjUIb5wRBTvfKV0KZipPw",
    "g5Ztm_IFdHNfTmczQkcAh4nHFaYHPCubeBKwvplGjYtJfE4TTylbxw4yDCMnKr05B4rGGG15vSbWtbJxhYa1nxr3",
    "LwwaA3UnVIisHublvkkIRLXqbbk_haRHSs10pgyIkwKBgQDyGq1PketzURVh5xRoND0MzbVFHU3DvmZh2y5fzzcu",
    "hIk7iTUdV_lJHjWGdcZkGIyr8eNyeRWl_rGd2HA1q8XW70CE8R4pqkQU3M-dsfuLcVKKM9ukRYiUSdsBOYTozVpE",
    "DjfTVwmBEEaWh_-VvDpiNPqrgG44NsdLKt1baLFBOwKBgQC9CVoTzUn2jKGjHbpHD5_Ax2I12nX-h3WTYmbJ26BL",
    "OB437Pf50OFiSvK1P4suikZUNgtUXGtXbsSRFtmzgLzfhmctpfWRt7F_uLom6yRVjq5e4yvOG-Pv02_lX2o5gKp4",
    "pDvjX6n2IyntAQuUyEeadcN9W27v3kE13nCzWi0iOwKBgQDEHZgGvM1dvHD1vZpqTualWH1eXz5_Mdz9p-8I7XJl",
    "3DbOY3cDLiBhenchVIZAzyIkpuz37d37eTWoB4vd7id01JoPFsK4PZSo0bXcqDB75HBYQ2nIyAq7FJizhUSE0NQu",
    "DNZr_DVWtzh29_Ox96fTpdbo1kByiO0nlrF5OnVbwQKBgQCpjV_L7w_uIglAowNXhX4GjU9bekznNVySC2qil2lY",
    "zkbcZqGs4lulrA-x3gLahY-7LJZQ3mwxCdspP9OYG1pNKuIUoYx3XMnKA0iEa9g1HTrtRNkfjwiNLZppo4FFflBo",
    "0PYeZMmvSa7rM0rN8i23LvVe1MnWQAVBafiwBawBzQKBgQDIMkKfyeddVvJpW3bFZNYT9pg3ArK2TqR0DjkssLr_",
    "U3g5cmRweEa4eORc8WrAfjwfq3WM8h95obHmdKCwx7nW-oyMGlzuo8AL6M0QWZwLngEFvxBNG9w6uo2CAbt08vMs",
    "Wl_580MDfvocWFaumez8hBTN5K7Dxci4286ZCky4yg",
);

/// A second RSA 2048 key in the set (the previous, rotated-out key), so lookup by `kid` is real. PKCS#8, base64url.
const RSA_ROTATED_PKCS8: &str = concat!(
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCbhEDxN-mXirWJ6llDFVbKo2Pk-4vIG7TT9dF-",
    "1lkcY1GrxGKsZOZTNkq34c_8i8n06npulj_x4KsWNeA4QHbvLmL8MNZetoyc46zM_mU6nHpPf7zKVgm5G8XW9xsD",
    "HPyW_FNemMk-Xe3ewkiPpA2ReSj4RwRoEKsTfyW4jDYdEPYzLUAVT4tctcY4z1CVsby_1IfQOb-LF1r_MGhgkcp9",
    "gu3yphvhDUbxJlI5S7fsEPMWw-ll5gvAVbT_639A3RLIMDn6nLPIv8EezgZ48JHeEvwJAhfNfWU8m9jVQoYA9U2A",
    "BeAkOLtvdThkgCqSBLTXkhUgW-R_N9wB1_hk9fHdAgMBAAECggEACGfJXiBFra1PauZchQ3aCeFzNz-fSlAGYdnB",
    "78c5vBk5eKgIe0Uy1mGIqqVM_rCMLa10s5XHBqrmzwWsxO2QYBS-QIo1M_D4QEyP8j53uIds7ES9A_n1fuibifxY",
    "xz4hqtl1ehdA8prUuKWrPVRCcCU_y8zZgJ8SArTsaYFD4CXibSVqVLKQTHRnF5TQ-Sxbll6Ss4rm2aTO4Z0HM9SX",
    "YZQSoRVkzdAsV3-qiD-dxUKx32F-yg1QehlEd27SxBIy2Oq2s5aZyHTTsMdQiysP3o3TLFEchePvgUQ-Ll9S8VZa",
    "DoTlIvl6uzfZ6rd0qbndnbUxRUdDwfa5qEYZJnV0YwKBgQDVdNPclUHzUwuCug2oy_Wep_qhcv8q069RRkbMMdTg",
    "0a7Zhpr2MeZVe2Zf2VdNLof9NOtY9bPHM9C1exqEG1-mgfDuGq06RwpbxdDYPsbJsPEhpTxmzr2aECYYChFwJKdE",
    "XfZCPpLxjDWvJ0T0ErYMfP2RwFaC96EUqhdaKum1RwKBgQC6gytzB9Lu62qsPiPF4MoxGKuzZ2loswvs4R1MSKyp",
    "DDHTaftskXZDQnXIAWNRM3k-Y8ntyU_-XewmXNdHR961CDWRNcjzaeMPr3lqzfbTzcFOH5MvSmKO3z5M0AuvlXTz",
    "KNuqe1naEwzdEenRrTKwC6YQmNMKcwRJTNtjaszBuwKBgQC2o2afZ4ptcxH3QdBsLE-1986oE6gm8cchSHtNPhoC",
    "Xwc3kkfG_X0yiQpYWrOrE3RB_-SbUmgHutsKXRGcFXvrEWWfpW2w3pYLXh_K1zPp4R8BBcu_v4dVahneGcc_5-zC",
    "v470sWuzh59rhbMnD1d7KfsgmaysFMtbzgl7GhqsAwKBgQC4P_heTK5eBAZ_XWutgWF8muiT9Ga3XZk8Sy7MO0cG",
    "QNvABISyPgjcbP05tdVNVFJEBgRneWYi3Nn7E-A_tIoXwKJabw2zGTmMN0b08b8SgcKi0KJwJ0Wx6mv7KdNBg53i",
    "0MwgYHbk7cjZY2bfEgBu1TMaVj61peXoG5rnXYwlHQKBgA_EFCl2NZiF-dWwEKwWNUpiMuVXIZeFyiqZwIeuNISr",
    "HW-UqF2unszIV-h4StMVwkJQsXqp8DywjKHXo6KtVaZHCWrMWV3b5zJWxnDC4oBiTYHARwqffXsUfRHx4naTODGW",
    "EW07bpZyEVW8N378UkM6sY7WsU-XUjAfnGediPKt",
);

/// P-256 key that signs the ES256 token. PKCS#8, base64url.
const EC_P256_PKCS8: &str = concat!(
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG7zPsIlFAtVFQhs4zcBqXmWZ5EnpjlmUeWhLDsKX",
    "dFKhRANCAASUzZnPnsknhzD5x-HLzyfpLMLLJPDsy92w0pkNjM_LC5EMReihpMALigEP5t6e9Kx9I8DSa43-KnG6",
    "cXDtWbEJ",
);

/// Ed25519 key that signs the EdDSA token. PKCS#8, base64url.
const ED25519_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIPe8u1Lr1q5V0F51oezzyscwnNnRYNCiEkYavsKGhjtU";

/// The issuer of the Auth0-shaped tokens.
const ISSUER: &str = "https://dev-abc123.us.auth0.com/";
/// The API audience the verifier expects.
const AUDIENCE: &str = "https://api.example.com/";
/// The second audience Auth0 adds when `openid` is requested.
const USERINFO: &str = "https://dev-abc123.us.auth0.com/userinfo";

/// Auth0-style key ids (the RSA ones look like Auth0's base64 thumbprints).
const RSA_CURRENT_KID: &str = "QzE4N0Y3RkY0QUJCOEZEMkE0NTk2RTI3QjYyOTg5MDU2NkU5MEVGNw";
/// The rotated RSA key's id.
const RSA_ROTATED_KID: &str = "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg";
/// The P-256 key's id.
const EC_KID: &str = "kZ2_-oFm3kdSvQzzgFwXrLKhuVnJj1Ih2mg6GgUv7ts";
/// The Ed25519 key's id.
const ED_KID: &str = "Q2xRrZ4gGBMk0Cz3RLmq5ePbWlFBpvh0nKUm_wJBqjE";

/// One of the three things measured for each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// a: aws-lc-rs signature check with a pre-parsed key.
    Bare,
    /// b: `Verifier::verify`.
    Jwtgate,
    /// c: `jsonwebtoken::decode`.
    Jsonwebtoken,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Bare, Variant::Jwtgate, Variant::Jsonwebtoken];

    fn letter(self) -> &'static str {
        match self {
            Variant::Bare => "a",
            Variant::Jwtgate => "b",
            Variant::Jsonwebtoken => "c",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "a: aws-lc-rs bare",
            Variant::Jwtgate => "b: jwtgate verify",
            Variant::Jsonwebtoken => "c: jsonwebtoken",
        }
    }
}

/// One token and everything each variant needs to verify it.
struct Case {
    alg: Algorithm,
    /// Minimum b/a ratio this algorithm should reach.
    goal: f64,
    token: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    bare_key: ParsedPublicKey,
    jwt_key: jsonwebtoken::DecodingKey,
    jwt_validation: jsonwebtoken::Validation,
}

/// The cases plus the shared jwtgate verifier.
struct Fixture {
    cases: Vec<Case>,
    verifier: Verifier,
    now: UnixTime,
}

fn signing_key(alg: Algorithm, kid: &str, pkcs8_b64: &str) -> SigningKey {
    let der = base64url::decode(pkcs8_b64.as_bytes()).expect("embedded PKCS#8 is base64url");
    SigningKey::from_pkcs8(alg, kid, &der).expect("embedded PKCS#8 loads")
}

/// An access token shaped like Auth0's: same header and claims, in Auth0's member order.
fn auth0_token(key: &SigningKey, now: UnixTime) -> String {
    let header = format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        key.algorithm().name(),
        key.kid()
    );
    let payload = format!(
        concat!(
            r#"{{"iss":"{iss}","sub":"auth0|64f1c0e2a3b4c5d6e7f80912","#,
            r#""aud":["{aud}","{userinfo}"],"iat":{iat},"exp":{exp},"#,
            r#""scope":"openid profile email read:users","azp":"Xk2Tq7mB4vRw9sLp1cYd6fHj3nGa8eZu","#,
            r#""permissions":["read:users","write:users"]}}"#
        ),
        iss = ISSUER,
        aud = AUDIENCE,
        userinfo = USERINFO,
        iat = now,
        exp = now + 86_400,
    );
    key.sign_raw(header.as_bytes(), payload.as_bytes())
        .expect("signing works")
}

fn jwk_member(jwk: &Value, name: &str) -> Vec<u8> {
    let text = jwk[name].as_str().expect("JWK member is a string");
    base64url::decode(text.as_bytes()).expect("JWK member is base64url")
}

/// The aws-lc-rs key for variant a, built from the same public JWK the verifier loads.
fn bare_key(alg: Algorithm, jwk: &Value) -> ParsedPublicKey {
    match alg {
        Algorithm::RS256 => {
            let (n, e) = (jwk_member(jwk, "n"), jwk_member(jwk, "e"));
            RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .expect("RSA key parses")
        }
        Algorithm::ES256 => {
            let mut point = vec![0x04];
            point.extend(jwk_member(jwk, "x"));
            point.extend(jwk_member(jwk, "y"));
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).expect("EC key parses")
        }
        Algorithm::EdDSA => ParsedPublicKey::new(&signature::ED25519, jwk_member(jwk, "x"))
            .expect("Ed25519 key parses"),
        other => panic!("no bare key for {other}"),
    }
}

fn fixture() -> Fixture {
    let now = UnixTime::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    )
    .expect("time fits");
    let rsa = signing_key(Algorithm::RS256, RSA_CURRENT_KID, RSA_CURRENT_PKCS8);
    let rotated = signing_key(Algorithm::RS256, RSA_ROTATED_KID, RSA_ROTATED_PKCS8);
    let ec = signing_key(Algorithm::ES256, EC_KID, EC_P256_PKCS8);
    let ed = signing_key(Algorithm::EdDSA, ED_KID, ED25519_PKCS8);

    // The rotated key comes first, so the RS256 lookup has to skip a same-type key by kid.
    let jwks = json!({ "keys": [rotated.public_jwk(), rsa.public_jwk(), ec.public_jwk(), ed.public_jwk()] })
        .to_string();
    let keys = KeySet::from_json(jwks.as_bytes()).expect("JWKS loads");
    assert_eq!(
        keys.keys().len(),
        4,
        "all four keys load: {:?}",
        keys.skipped()
    );
    let policy = Policy::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .expect("policy builds");
    let verifier = Verifier::new(policy, keys);
    let jwt_set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&jwks).expect("jsonwebtoken reads the JWKS");

    let cases = [(&rsa, 0.95), (&ec, 0.97), (&ed, 0.97)]
        .into_iter()
        .map(|(key, goal)| {
            let alg = key.algorithm();
            let token = auth0_token(key, now);
            let (signing_input, signature_b64) =
                token.rsplit_once('.').expect("token has three segments");
            let signature =
                base64url::decode(signature_b64.as_bytes()).expect("signature is base64url");
            let jwt_alg = match alg {
                Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
                Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
                _ => jsonwebtoken::Algorithm::EdDSA,
            };
            let mut jwt_validation = jsonwebtoken::Validation::new(jwt_alg);
            jwt_validation.leeway = 0;
            jwt_validation.set_issuer(&[ISSUER]);
            jwt_validation.set_audience(&[AUDIENCE]);
            jwt_validation.set_required_spec_claims(&["exp"]);
            let jwt_key = jsonwebtoken::DecodingKey::from_jwk(
                jwt_set.find(key.kid()).expect("jsonwebtoken finds the kid"),
            )
            .expect("jsonwebtoken loads the key");
            Case {
                alg,
                goal,
                signing_input: signing_input.as_bytes().to_vec(),
                signature,
                bare_key: bare_key(alg, &key.public_jwk()),
                jwt_key,
                jwt_validation,
                token,
            }
        })
        .collect();
    Fixture {
        cases,
        verifier,
        now,
    }
}

/// Checks that every variant accepts every token, and that each rejects a tampered one, so the
/// benchmark cannot silently measure an early failure.
fn sanity_check(fixture: &Fixture) {
    for case in &fixture.cases {
        for variant in Variant::ALL {
            assert_eq!(
                run_iterations(fixture, case, variant, 1),
                1,
                "{} {} does not accept its token",
                case.alg,
                variant.label()
            );
        }
        let verified = fixture
            .verifier
            .verify(case.token.as_bytes(), fixture.now)
            .expect("jwtgate accepts");
        assert_eq!(verified.subject(), Some("auth0|64f1c0e2a3b4c5d6e7f80912"));
        assert_eq!(verified.algorithm(), case.alg);

        // Flip one bit of the last signature character that carries whole bits.
        let mut tampered = case.token.clone().into_bytes();
        let at = tampered.len() - 2;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        assert!(fixture.verifier.verify(&tampered, fixture.now).is_err());
        let mut bad_signature = case.signature.clone();
        bad_signature[0] ^= 1;
        assert!(case
            .bare_key
            .verify_sig(&case.signing_input, &bad_signature)
            .is_err());
        assert!(jsonwebtoken::decode::<Map<String, Value>>(
            &tampered,
            &case.jwt_key,
            &case.jwt_validation
        )
        .is_err());
    }
}

/// The timed loop body; returns how many verifications succeeded.
#[inline(always)]
fn run_iterations(fixture: &Fixture, case: &Case, variant: Variant, iterations: u64) -> u64 {
    let mut ok = 0u64;
    match variant {
        Variant::Bare => {
            for _ in 0..iterations {
                let result = case
                    .bare_key
                    .verify_sig(black_box(&case.signing_input), black_box(&case.signature));
                ok += u64::from(black_box(result).is_ok());
            }
        }
        Variant::Jwtgate => {
            for _ in 0..iterations {
                let result = fixture
                    .verifier
                    .verify(black_box(case.token.as_bytes()), black_box(fixture.now));
                ok += u64::from(black_box(result).is_ok());
            }
        }
        Variant::Jsonwebtoken => {
            for _ in 0..iterations {
                let result = jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(case.token.as_bytes()),
                    &case.jwt_key,
                    &case.jwt_validation,
                );
                ok += u64::from(black_box(result).is_ok());
            }
        }
    }
    ok
}

/// The loop everything is measured in (the name is what callgrind's `--toggle-collect` selects).
#[inline(never)]
fn measured_loop(fixture: &Fixture, case: &Case, variant: Variant, iterations: u64) -> u64 {
    run_iterations(fixture, case, variant, iterations)
}

/// The same loop outside `measured_loop`, to warm caches and lazy initialisation. (The
/// `black_box` keeps the two functions distinct, so the linker cannot fold them into one symbol.)
#[inline(never)]
fn warm_up_loop(fixture: &Fixture, case: &Case, variant: Variant, iterations: u64) -> u64 {
    black_box("warm-up");
    run_iterations(fixture, case, variant, iterations)
}

/// Runs `iterations` of one cell and returns nanoseconds per operation.
fn time_cell(fixture: &Fixture, case: &Case, variant: Variant, iterations: u64) -> f64 {
    let start = Instant::now();
    let ok = measured_loop(fixture, case, variant, iterations);
    let elapsed = start.elapsed();
    assert_eq!(ok, iterations, "{} {} failed", case.alg, variant.label());
    elapsed.as_nanos() as f64 / iterations as f64
}

/// Finds how many iterations take about `target` (doubling from one; also warms up).
fn calibrate(fixture: &Fixture, case: &Case, variant: Variant, target: Duration) -> u64 {
    let probe = target / 4;
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        let ok = warm_up_loop(fixture, case, variant, iterations);
        let elapsed = start.elapsed();
        assert_eq!(ok, iterations, "{} {} failed", case.alg, variant.label());
        if elapsed >= probe || iterations >= 1 << 30 {
            let per_op = elapsed.as_secs_f64() / iterations as f64;
            return ((target.as_secs_f64() / per_op) as u64).max(1);
        }
        iterations *= 2;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Half the interquartile range relative to the median, in percent: the round-to-round noise.
fn spread_percent(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let quartile = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (quartile(0.75) - quartile(0.25)) / 2.0 / median(values) * 100.0
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// What the gateway reads from a verified token on every request, cached or not.
#[derive(Debug, Clone, Copy)]
enum ScopeReader {
    /// `Verified::require` of one scope (`read:users`), granted.
    Require,
    /// `Verified::distinct_scopes` (the identity headers' scope list).
    Distinct,
}

impl ScopeReader {
    fn of_letter(letter: &str) -> Option<ScopeReader> {
        match letter {
            "require" => Some(ScopeReader::Require),
            "scopes" => Some(ScopeReader::Distinct),
            _ => None,
        }
    }
}

/// The per-request scope reads, `iterations` times; returns how many found the scope granted.
#[inline(always)]
fn scope_loop(
    verified: &Verified,
    route: &ScopeRequirement,
    reader: ScopeReader,
    iterations: u64,
) -> u64 {
    let mut ok = 0u64;
    for _ in 0..iterations {
        let granted = match reader {
            ScopeReader::Require => black_box(verified).require(black_box(route)).is_ok(),
            ScopeReader::Distinct => black_box(verified)
                .distinct_scopes()
                .contains(&"read:users"),
        };
        ok += u64::from(black_box(granted));
    }
    ok
}

/// [`scope_loop`] under its own name, for `--toggle-collect='*scope_measured_loop*'`.
#[inline(never)]
fn scope_measured_loop(
    verified: &Verified,
    route: &ScopeRequirement,
    reader: ScopeReader,
    iterations: u64,
) -> u64 {
    scope_loop(verified, route, reader, iterations)
}

/// `JWTGATE_BENCH_ONLY=<alg>:<variant>`: a fixed number of iterations of one cell, for callgrind.
fn run_only(fixture: &Fixture, selector: &str) {
    let (alg, letter) = selector
        .split_once(':')
        .expect("JWTGATE_BENCH_ONLY is <alg>:<a|b|c>, e.g. RS256:b");
    let case = fixture
        .cases
        .iter()
        .find(|c| c.alg.name().eq_ignore_ascii_case(alg))
        .expect("JWTGATE_BENCH_ONLY names RS256, ES256 or EdDSA");
    let iterations = env_number("JWTGATE_BENCH_ITERS").unwrap_or(1000);
    if let Some(reader) = ScopeReader::of_letter(letter) {
        let verified = fixture
            .verifier
            .verify(case.token.as_bytes(), fixture.now)
            .expect("jwtgate accepts");
        let route = ScopeRequirement::all_of(["read:users"]);
        scope_loop(&verified, &route, reader, 3);
        let ok = scope_measured_loop(&verified, &route, reader, iterations);
        assert_eq!(ok, iterations);
        println!(
            "ran {iterations} iterations of {} {letter} in scope_measured_loop",
            case.alg
        );
        return;
    }
    let variant = Variant::ALL
        .into_iter()
        .find(|v| v.letter().eq_ignore_ascii_case(letter))
        .expect("JWTGATE_BENCH_ONLY variant is a, b, c, require or scopes");
    warm_up_loop(fixture, case, variant, 3);
    let ok = measured_loop(fixture, case, variant, iterations);
    assert_eq!(ok, iterations);
    println!(
        "ran {iterations} iterations of {} {} in measured_loop",
        case.alg,
        variant.label()
    );
}

fn main() {
    let fixture = fixture();
    sanity_check(&fixture);
    if let Ok(selector) = std::env::var("JWTGATE_BENCH_ONLY") {
        run_only(&fixture, &selector);
        return;
    }

    // `cargo bench` passes `--bench`; without it (cargo test --benches) only smoke-test.
    let quick = std::env::var("JWTGATE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || !std::env::args().any(|arg| arg == "--bench");
    let (default_rounds, default_cell_ms) = if quick { (3, 2) } else { (25, 80) };
    let rounds = env_number("JWTGATE_BENCH_ROUNDS")
        .unwrap_or(default_rounds)
        .max(1) as usize;
    let cell =
        Duration::from_millis(env_number("JWTGATE_BENCH_CELL_MS").unwrap_or(default_cell_ms));

    let iterations: Vec<[u64; 3]> = fixture
        .cases
        .iter()
        .map(|case| Variant::ALL.map(|variant| calibrate(&fixture, case, variant, cell)))
        .collect();

    // samples[case][variant] = ns/op of each round; ratios[case] = per-round (b/a, b/c).
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new()]; fixture.cases.len()];
    let mut ratios = vec![(Vec::new(), Vec::new()); fixture.cases.len()];
    let started = Instant::now();
    for round in 0..rounds {
        for offset in 0..fixture.cases.len() {
            let index = (round + offset) % fixture.cases.len();
            let case = &fixture.cases[index];
            let mut ns = [0.0f64; 3];
            for step in 0..3 {
                let v = (round + step) % 3;
                ns[v] = time_cell(&fixture, case, Variant::ALL[v], iterations[index][v]);
                samples[index][v].push(ns[v]);
            }
            // Rates are inverse times: b/a in ops/s is a's time over b's.
            ratios[index].0.push(ns[0] / ns[1]);
            ratios[index].1.push(ns[2] / ns[1]);
        }
    }
    let elapsed = started.elapsed();

    println!();
    println!(
        "jwtgate-core verify benchmark: Auth0-shaped access token, 4-key JWKS, {rounds} interleaved rounds \
         of ~{} ms per cell ({:.1} s){}",
        cell.as_millis(),
        elapsed.as_secs_f64(),
        if quick { " [QUICK: smoke test, numbers not meaningful]" } else { "" }
    );
    println!(
        "  a = aws-lc-rs ParsedPublicKey::verify_sig (pre-parsed key, same input and signature)\n  \
         b = jwtgate Verifier::verify (parse + kid lookup + signature + claims)\n  \
         c = jsonwebtoken::decode (same key; iss, aud, exp, required exp; claims into a Map)"
    );
    println!();
    println!(
        "{:<6} {:>7} {:>22} {:>22} {:>22} {:>7} {:>6} {:>5} {:>7} {:>13}",
        "alg",
        "token",
        "a ops/s (us/op)",
        "b ops/s (us/op)",
        "c ops/s (us/op)",
        "b/a",
        "goal",
        "",
        "b/c",
        "b-a us/op"
    );
    let mut all_met = true;
    for (index, case) in fixture.cases.iter().enumerate() {
        let ns = [0, 1, 2].map(|v| median(&samples[index][v]));
        let cell_text = |v: usize| {
            format!(
                "{} ({:.2}) ±{:.0}%",
                thousands(1e9 / ns[v]),
                ns[v] / 1000.0,
                spread_percent(&samples[index][v])
            )
        };
        let b_over_a = median(&ratios[index].0);
        let b_over_c = median(&ratios[index].1);
        let met = b_over_a >= case.goal;
        all_met &= met;
        println!(
            "{:<6} {:>5} B {:>22} {:>22} {:>22} {:>6.3}x {:>5.2}x {:>5} {:>6.2}x {:>13.2}",
            case.alg.name(),
            case.token.len(),
            cell_text(0),
            cell_text(1),
            cell_text(2),
            b_over_a,
            case.goal,
            match (quick, met) {
                (true, _) => "-",
                (false, true) => "met",
                (false, false) => "MISS",
            },
            b_over_c,
            (ns[1] - ns[0]) / 1000.0
        );
    }
    println!();
    println!(
        "ops/s and us/op: median over rounds (±: half the interquartile range); b/a and b/c: median of \
         the per-round ratios of ops/s. Goals (b/a): {}.",
        match (quick, all_met) {
            (true, _) => "not judged in a quick run",
            (false, true) => "all met",
            (false, false) => "NOT all met",
        }
    );
}
