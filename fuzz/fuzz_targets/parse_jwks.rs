//! Fuzz target: arbitrary bytes as a JWKS document (or single JWK).
//!
//! Loads them with [`KeySet::from_json`], formats every skip reason, then selects keys for a few
//! fixed headers and for headers naming each loaded key's `kid` under every algorithm, and runs a
//! (failing) signature check with each selected key. Nothing may panic.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_jwks fuzz/seeds/parse_jwks -- -max_total_time=60`
//! from the repository root (see `fuzz/README.md`).

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::jwk::SelectedKey;
use jwtgate_core::{Algorithm, Header, KeySet};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Headers tried against every key set, with and without a `kid`.
static FIXED_HEADERS: LazyLock<Vec<Header>> = LazyLock::new(|| {
    [
        json!({"alg": "RS256", "kid": "rsa-1"}),
        json!({"alg": "RS256"}),
        json!({"alg": "PS256", "kid": "rsa-1"}),
        json!({"alg": "ES256", "kid": "ec-1"}),
        json!({"alg": "ES256"}),
        json!({"alg": "ES384"}),
        json!({"alg": "EdDSA", "kid": "ed-1"}),
        json!({"alg": "EdDSA"}),
        json!({"alg": "HS256", "kid": "hs-1"}),
    ]
    .into_iter()
    .map(|value| header(value).expect("fixed header is valid"))
    .collect()
});

fn header(value: Value) -> Option<Header> {
    match value {
        Value::Object(raw) => Header::from_object(raw).ok(),
        _ => None,
    }
}

/// Selects a key for `header` and, when one is chosen, checks a signature that cannot verify.
fn select_and_check(keys: &KeySet, header: &Header) {
    match keys.select(header) {
        Ok(selected) => {
            let _ = selected.kid();
            let signature = [0x5Au8; 256];
            for len in [0, 64, 96, 132, 256] {
                let result = match selected {
                    SelectedKey::Public(jwk) => {
                        jwk.key().verify(header.alg, b"a.b", &signature[..len])
                    }
                    SelectedKey::Secret(secret) => {
                        secret.key().verify(header.alg, b"a.b", &signature[..len])
                    }
                };
                assert!(result.is_err(), "a constant signature verified");
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = KeySet::from_json(data) else {
        return;
    };
    for skipped in keys.skipped() {
        let _ = skipped.to_string();
    }
    for header in FIXED_HEADERS.iter() {
        select_and_check(&keys, header);
    }
    let kids: Vec<String> = keys
        .keys()
        .iter()
        .take(4)
        .filter_map(|jwk| jwk.kid().map(str::to_owned))
        .collect();
    for kid in kids {
        for alg in Algorithm::ALL {
            if let Some(header) = header(json!({"alg": alg.name(), "kid": kid})) {
                select_and_check(&keys, &header);
            }
        }
    }
});
