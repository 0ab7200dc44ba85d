//! Benchmark of DPoP proof verification (RFC 9449), run by `cargo bench -p jwtgate-core --bench
//! dpop`.
//!
//! For an ES256 proof as a client sends it with each request (a fresh `jti`, `ath` of an access
//! token, the token bound to the key by `cnf.jkt`), criterion measures in one run:
//!
//! * **es256_verify** — one bare aws-lc-rs ES256 signature check of the proof's signing input
//!   with a key parsed beforehand: the floor, what any proof check must pay;
//! * **proof_check** — jwtgate's whole stateless check ([`check_proof`]): size, strict JSON
//!   header and payload, `typ`/`alg`/`crit`, the `jwk` parsed into a key, its RFC 7638
//!   thumbprint against `cnf.jkt`, the signature, `htm`, normalised `htu`, `iat`, `ath`, `jti`;
//! * **proof_check_kept_header** — the same check as the gateway runs it for a client's second
//!   and later proofs: the header (its key and thumbprint) checked once and kept.
//!
//! `JWTGATE_BENCH_ONLY=<name>` with `JWTGATE_BENCH_ITERS=N` runs only `N` iterations of one of
//! the three inside the function `measured_loop`, for instruction counts:
//! `valgrind --tool=callgrind --toggle-collect='*measured_loop*' <bench binary> --bench`.
//!
//! Goal (issue 14): a proof check ≤ `es256_verify` + 3 µs. The replay-cache insert that follows
//! in the gateway is a SHA-256 and a hash-set insert under a lock, measured by the gateway's
//! `bench/http.sh` DPoP row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{self, ParsedPublicKey};
use criterion::Criterion;
use jwtgate_core::dpop::{
    check_proof, key_thumbprint, make_proof, ProofClaims, ProofContext, ProofKey, ProofKeys,
};
use jwtgate_core::internal::base64url;
use jwtgate_core::{Algorithm, AlgorithmSet, SigningKey};
use serde_json::Value;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

const NOW: i64 = 1_800_000_000;
const URI: &str = "https://api.example.com/api/users";
/// An access token of a realistic size (its bytes are only hashed for `ath`).
const TOKEN: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImJlbmNoIn0.",
    "eyJpc3MiOiJodHRwczovL2JlbmNoLmV1LmF1dGgwLmNvbS8iLCJzdWIiOiJhdXRoMHxiZW5jaCIsImF1ZCI6Imh0dHBz",
    "Oi8vYXBpLmV4YW1wbGUuY29tIiwiaWF0IjoxODAwMDAwMDAwLCJleHAiOjE4MDAwMDM2MDAsInNjb3BlIjoicmVhZDp1",
    "c2VycyIsImNuZiI6eyJqa3QiOiIwWmNPQ09SWk5ZeS1EV3BxcTMwalp5SkdIVE4wZDJIZ2xCVjN1aWd1QTRJIn19.",
    "c2lnbmF0dXJlLXBsYWNlaG9sZGVyLXNpZ25hdHVyZS1wbGFjZWhvbGRlci1zaWduYXR1cmUtcGxhY2Vob2xkZXI",
);

fn proof_verification(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::ES256, "client").unwrap();
    let jkt = key_thumbprint(&key).unwrap();
    let proof = make_proof(
        &key,
        &ProofClaims {
            method: "GET",
            uri: URI,
            access_token: Some(TOKEN),
            iat: NOW,
            jti: "bench-proof-1",
            nonce: None,
        },
    )
    .unwrap();
    let context = ProofContext {
        method: "GET",
        uri: URI,
        access_token: Some(TOKEN.as_bytes()),
        jkt: Some(&jkt),
        now: NOW,
        iat_window: 60,
        nonce: None,
        algorithms: AlgorithmSet::asymmetric(),
        keys: None,
    };
    assert!(check_proof(proof.as_bytes(), &context).is_ok());

    // The floor: the proof's own signature, its key parsed once.
    let (signing_input, signature_b64) = proof.rsplit_once('.').unwrap();
    let signature = base64url::decode(signature_b64.as_bytes()).unwrap();
    let header_b64 = signing_input.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64url::decode(header_b64.as_bytes()).unwrap()).unwrap();
    let coordinate =
        |name: &str| base64url::decode(header["jwk"][name].as_str().unwrap().as_bytes()).unwrap();
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    let parsed = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point).unwrap();
    assert!(parsed
        .verify_sig(signing_input.as_bytes(), &signature)
        .is_ok());

    let kept = KeptHeaders::default();
    let keeping = ProofContext {
        keys: Some(&kept),
        ..context
    };
    assert!(check_proof(proof.as_bytes(), &keeping).is_ok());
    if let Ok(only) = std::env::var("JWTGATE_BENCH_ONLY") {
        let iterations = std::env::var("JWTGATE_BENCH_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        let run: Box<dyn Fn() -> bool> = match only.as_str() {
            "es256_verify" => Box::new(|| {
                parsed
                    .verify_sig(black_box(signing_input.as_bytes()), black_box(&signature))
                    .is_ok()
            }),
            "proof_check" => {
                Box::new(|| check_proof(black_box(proof.as_bytes()), &context).is_ok())
            }
            "proof_check_kept_header" => {
                Box::new(|| check_proof(black_box(proof.as_bytes()), &keeping).is_ok())
            }
            other => panic!("JWTGATE_BENCH_ONLY: no measurement named {other:?}"),
        };
        measured_loop(iterations, &*run);
        return;
    }

    let mut group = c.benchmark_group("dpop");
    group.bench_function("es256_verify", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(signing_input.as_bytes()), black_box(&signature))
                .is_ok()
        })
    });
    group.bench_function("proof_check", |b| {
        b.iter(|| check_proof(black_box(proof.as_bytes()), black_box(&context)).is_ok())
    });
    // As the gateway runs it: the client's header checked once and kept (its key, thumbprint).
    group.bench_function("proof_check_kept_header", |b| {
        b.iter(|| check_proof(black_box(proof.as_bytes()), black_box(&keeping)).is_ok())
    });
    group.finish();
}

/// Runs `check` `iterations` times, all of them passing (the function callgrind collects in).
#[inline(never)]
fn measured_loop(iterations: u64, check: &dyn Fn() -> bool) {
    for _ in 0..iterations {
        assert!(check());
    }
}

/// Checked headers in a map under a lock (the gateway keeps them in a bounded cache).
#[derive(Debug, Default)]
struct KeptHeaders(Mutex<HashMap<Vec<u8>, Arc<ProofKey>>>);

impl ProofKeys for KeptHeaders {
    fn get(&self, header: &[u8]) -> Option<Arc<ProofKey>> {
        self.0.lock().unwrap().get(header).cloned()
    }
    fn insert(&self, header: &[u8], key: Arc<ProofKey>) {
        self.0.lock().unwrap().insert(header.to_vec(), key);
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    proof_verification(&mut criterion);
    criterion.final_summary();
}
