//! Project Wycheproof vectors through jwtgate's public API.
//!
//! * `json_web_signature_test.json` and `json_web_key_test.json`: every token goes through
//!   [`UnverifiedToken::parse`] and [`UnverifiedToken::verify_jws`] (the JWS layer: their payloads
//!   are not JWT claims). Every `invalid` vector must be rejected, with no exception. Every `valid`
//!   vector must be accepted, except those listed in [`STRICTER_BY_POLICY`], each with the rule of
//!   jwtgate's policy that rejects it.
//! * The RSA PKCS#1, RSA-PSS, ECDSA P1363 and Ed25519 files go through the signature layer
//!   ([`PublicKey::verify`]). Wycheproof's `acceptable` results are pinned in [`ACCEPTABLE`].
//!
//! Key material: a group's `public` key (set) is loaded as a JWKS document. Groups that only have
//! `private` material holding nothing but `oct` keys stand for HMAC secrets configured explicitly
//! (with their `kid` and `alg`), since jwtgate never takes secrets from a key set; any other
//! private-only set is loaded as a JWKS document, as a misconfigured deployment would.
//!
//! The vectors are read from `../shared/vectors/wycheproof/` next to the project root, or from
//! `$JWTGATE_VECTORS`. A missing directory fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::alg::Curve;
use jwtgate_core::crypto::PublicKey;
use jwtgate_core::{Algorithm, AlgorithmSet, KeySet, Policy, Secret, UnverifiedToken};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Valid JWS vectors that jwtgate rejects on purpose, with the rule that does it.
const STRICTER_BY_POLICY: &[(&str, u64, &str)] = &[
    ("json_web_signature_test.json", 346, "a JWK's own alg pins the algorithm: key says PS256, header PS384"),
    ("json_web_signature_test.json", 347, "a JWK's own alg must be a registered algorithm fitting the key: \"ES521\" is not one, so the key is skipped"),
    ("json_web_signature_test.json", 350, "a JWK's own alg pins the algorithm: key says PS256, header PS384"),
    ("json_web_signature_test.json", 351, "a JWK's own alg must be a registered algorithm fitting the key: \"ES521\" is not one, so the key is skipped"),
    ("json_web_signature_test.json", 372, "only the base64url alphabet: '?' in the header segment"),
    ("json_web_signature_test.json", 373, "only the base64url alphabet: '?' in the payload segment"),
];

/// Wycheproof `acceptable` vectors and jwtgate's verdict on each (true = accepted).
const ACCEPTABLE: &[(&str, u64, bool, &str)] = &[
    (
        "rsa_signature_2048_sha256_test.json",
        8,
        false,
        "DigestInfo without the NULL parameter: refused",
    ),
    (
        "rsa_signature_2048_sha384_test.json",
        8,
        false,
        "DigestInfo without the NULL parameter: refused",
    ),
    (
        "rsa_signature_2048_sha512_test.json",
        8,
        false,
        "DigestInfo without the NULL parameter: refused",
    ),
    (
        "rsa_signature_3072_sha384_test.json",
        8,
        false,
        "DigestInfo without the NULL parameter: refused",
    ),
    (
        "rsa_signature_4096_sha512_test.json",
        8,
        false,
        "DigestInfo without the NULL parameter: refused",
    ),
];

/// Vectors whose data contradicts another vector: `(file, invalid tcId, valid tcId)` where the
/// "invalid" token is byte-for-byte the same token, with the same key, as the "valid" one. In the
/// vector set at commit dac1dd4 the `base64` group's "invalidBase64Padding" (367) and
/// "invalidBase64PaddingInPayload" (370) carry exactly the token of "ValidMac" (357): whatever
/// padding they were meant to add is not in the data, so no verifier can give both verdicts.
/// jwtgate accepts the correctly signed canonical token; [`contradictory_vectors_are_identical`]
/// proves the contradiction, so these entries stop applying as soon as the data is corrected.
const CONTRADICTORY: &[(&str, u64, u64)] = &[
    ("json_web_signature_test.json", 367, 357),
    ("json_web_signature_test.json", 370, 357),
];

fn vectors_dir() -> PathBuf {
    std::env::var_os("JWTGATE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof")
        })
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|e| panic!("hex: {e}")))
        .collect()
}

fn permissive_jws_policy() -> Policy {
    Policy::builder()
        .issuer("unused")
        .audience("unused")
        .algorithms(AlgorithmSet::asymmetric().union(AlgorithmSet::hmac()))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Builds the configured keys for a group, or `None` when configuration itself refuses them
/// (e.g. an HMAC secret shorter than its hash), which rejects every token of the group.
fn keys_for_group(group: &Value) -> Option<KeySet> {
    if let Some(public) = group.get("public") {
        return Some(
            KeySet::from_json(public.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let private = group
        .get("private")
        .unwrap_or_else(|| panic!("group without keys"));
    let entries: Vec<&Value> = match private.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        _ => vec![private],
    };
    let all_oct = entries
        .iter()
        .all(|k| k.get("kty").and_then(Value::as_str) == Some("oct"));
    if !all_oct {
        return Some(
            KeySet::from_json(private.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let mut set = KeySet::new();
    for entry in entries {
        let k = entry.get("k").and_then(Value::as_str).unwrap_or_default();
        // A secret that is not canonical base64url is refused by configuration.
        let secret_bytes = jwtgate_core::internal::base64url::decode(k.as_bytes()).ok()?;
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        let alg = match entry.get("alg").and_then(Value::as_str) {
            // An oct key whose alg is not an HMAC algorithm (A256GCM, A256KW) cannot be a MAC secret.
            Some(name) => match name.parse::<Algorithm>() {
                Ok(alg) if alg.is_symmetric() => Some(alg),
                _ => return None,
            },
            None => None,
        };
        match Secret::new(&secret_bytes, kid, alg) {
            Ok(secret) => set.add_secret(secret),
            Err(_) => return None,
        }
    }
    Some(set)
}

fn run_jws_file(name: &str) -> (usize, Vec<String>) {
    let file = load(name);
    let policy = permissive_jws_policy();
    let stricter: BTreeMap<u64, &str> = STRICTER_BY_POLICY
        .iter()
        .filter(|(f, _, _)| *f == name)
        .map(|(_, id, why)| (*id, *why))
        .collect();
    let mut failures = Vec::new();
    let mut count = 0;
    let groups = file["testGroups"].as_array().cloned().unwrap_or_default();
    for group in &groups {
        let keys = keys_for_group(group);
        for test in group["tests"].as_array().cloned().unwrap_or_default() {
            count += 1;
            let id = test["tcId"].as_u64().unwrap_or_default();
            let jws = test["jws"].as_str().unwrap_or_default();
            let expected = test["result"].as_str().unwrap_or_default();
            let outcome = match &keys {
                Some(keys) => UnverifiedToken::parse(jws.as_bytes(), &policy)
                    .and_then(|token| token.verify_jws(keys))
                    .map_err(|r| r.description()),
                None => Err("keys refused by configuration".to_owned()),
            };
            let accepted = outcome.is_ok();
            let contradicted = CONTRADICTORY
                .iter()
                .any(|(f, invalid, _)| *f == name && *invalid == id);
            let ok = match expected {
                "invalid" if contradicted => accepted,
                "invalid" => !accepted,
                "valid" if stricter.contains_key(&id) => !accepted,
                "valid" => accepted,
                other => panic!("{name} tcId {id}: unexpected result {other}"),
            };
            if !ok {
                failures.push(format!(
                    "{name} tcId {id} ({}) expected {expected}, got {outcome:?}",
                    test["comment"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    (count, failures)
}

#[test]
fn json_web_signature_vectors() {
    let (count, failures) = run_jws_file("json_web_signature_test.json");
    assert!(count >= 400, "only {count} vectors read");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn json_web_key_vectors() {
    let (count, failures) = run_jws_file("json_web_key_test.json");
    assert!(count >= 26, "only {count} vectors read");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn contradictory_vectors_are_identical() {
    for (file, invalid, valid) in CONTRADICTORY {
        let doc = load(file);
        let tests: Vec<Value> = doc["testGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| {
                g["tests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |mut t| {
                        t["group"] = g["private"].clone();
                        t
                    })
            })
            .collect();
        let find = |id: u64| {
            tests
                .iter()
                .find(|t| t["tcId"].as_u64() == Some(id))
                .cloned()
        };
        let (bad, good) = (find(*invalid), find(*valid));
        let (bad, good) = (bad.unwrap_or_default(), good.unwrap_or_default());
        assert_eq!(bad["result"], "invalid");
        assert_eq!(good["result"], "valid");
        assert_eq!(
            bad["jws"], good["jws"],
            "tcId {invalid} no longer repeats tcId {valid}"
        );
        assert_eq!(
            bad["group"], good["group"],
            "tcId {invalid} uses another key than {valid}"
        );
    }
}

/// Every listed exception must still be a `valid` vector we reject, so the list cannot go stale.
#[test]
fn stricter_list_names_real_valid_vectors() {
    for (file, id, _) in STRICTER_BY_POLICY {
        let doc = load(file);
        let found = doc["testGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["tests"].as_array().cloned().unwrap_or_default())
            .any(|t| t["tcId"].as_u64() == Some(*id) && t["result"] == "valid");
        assert!(found, "{file} tcId {id} is not a valid vector");
    }
}

fn rsa_key(group: &Value, alg: Algorithm) -> Option<PublicKey> {
    let key = &group["publicKey"];
    let n = hex(key["modulus"].as_str().unwrap_or_default());
    let e = hex(key["publicExponent"].as_str().unwrap_or_default());
    PublicKey::rsa(&n, &e, Some(alg)).ok()
}

fn hash_alg(group: &Value, rsa_pss: bool) -> Algorithm {
    match (group["sha"].as_str().unwrap_or_default(), rsa_pss) {
        ("SHA-256", false) => Algorithm::RS256,
        ("SHA-384", false) => Algorithm::RS384,
        ("SHA-512", false) => Algorithm::RS512,
        ("SHA-256", true) => Algorithm::PS256,
        ("SHA-384", true) => Algorithm::PS384,
        ("SHA-512", true) => Algorithm::PS512,
        (other, _) => panic!("unexpected hash {other}"),
    }
}

fn run_signature_file(
    name: &str,
    key_for: impl Fn(&Value) -> (Option<PublicKey>, Algorithm),
) -> Vec<String> {
    let file = load(name);
    let acceptable: BTreeMap<u64, bool> = ACCEPTABLE
        .iter()
        .filter(|(f, ..)| *f == name)
        .map(|(_, id, verdict, _)| (*id, *verdict))
        .collect();
    let mut failures = Vec::new();
    let mut count = 0;
    for group in file["testGroups"].as_array().cloned().unwrap_or_default() {
        let (key, alg) = key_for(&group);
        for test in group["tests"].as_array().cloned().unwrap_or_default() {
            count += 1;
            let id = test["tcId"].as_u64().unwrap_or_default();
            let msg = hex(test["msg"].as_str().unwrap_or_default());
            let sig = hex(test["sig"].as_str().unwrap_or_default());
            let accepted = key
                .as_ref()
                .is_some_and(|k| k.verify(alg, &msg, &sig).is_ok());
            let expected = test["result"].as_str().unwrap_or_default();
            let ok = match expected {
                "valid" => accepted,
                "invalid" => !accepted,
                "acceptable" => match acceptable.get(&id) {
                    Some(verdict) => *verdict == accepted,
                    None => {
                        failures.push(format!("{name} tcId {id}: acceptable vector not pinned (accepted: {accepted}, flags {})", test["flags"]));
                        true
                    }
                },
                other => panic!("unexpected result {other}"),
            };
            if !ok {
                failures.push(format!(
                    "{name} tcId {id} ({}) expected {expected}, accepted: {accepted}",
                    test["comment"]
                ));
            }
        }
    }
    assert!(count > 50, "{name}: only {count} vectors");
    failures
}

#[test]
fn rsa_pkcs1_signature_vectors() {
    let mut failures = Vec::new();
    for name in [
        "rsa_signature_2048_sha256_test.json",
        "rsa_signature_2048_sha384_test.json",
        "rsa_signature_2048_sha512_test.json",
        "rsa_signature_3072_sha384_test.json",
        "rsa_signature_4096_sha512_test.json",
    ] {
        failures.extend(run_signature_file(name, |g| {
            let alg = hash_alg(g, false);
            (rsa_key(g, alg), alg)
        }));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rsa_pss_signature_vectors() {
    let mut failures = Vec::new();
    for name in [
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_pss_2048_sha384_mgf1_48_test.json",
    ] {
        failures.extend(run_signature_file(name, |g| {
            let alg = hash_alg(g, true);
            assert_eq!(
                g["mgfSha"], g["sha"],
                "MGF1 hash must equal the message hash"
            );
            (rsa_key(g, alg), alg)
        }));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ecdsa_p1363_signature_vectors() {
    let mut failures = Vec::new();
    for (name, curve, alg) in [
        (
            "ecdsa_secp256r1_sha256_p1363_test.json",
            Curve::P256,
            Algorithm::ES256,
        ),
        (
            "ecdsa_secp384r1_sha384_p1363_test.json",
            Curve::P384,
            Algorithm::ES384,
        ),
        (
            "ecdsa_secp521r1_sha512_p1363_test.json",
            Curve::P521,
            Algorithm::ES512,
        ),
    ] {
        failures.extend(run_signature_file(name, |g| {
            let point = hex(g["publicKey"]["uncompressed"].as_str().unwrap_or_default());
            (PublicKey::ec(curve, &point).ok(), alg)
        }));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ed25519_signature_vectors() {
    let failures = run_signature_file("ed25519_test.json", |g| {
        let pk = hex(g["publicKey"]["pk"].as_str().unwrap_or_default());
        (PublicKey::ed25519(&pk).ok(), Algorithm::EdDSA)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
