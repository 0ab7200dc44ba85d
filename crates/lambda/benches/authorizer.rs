//! Per-invocation handler time of the authorizer in a warm process, run by
//! `cargo bench -p jwtgate-lambda --bench authorizer` (and by `bench/lambda.sh`).
//!
//! For the documented REST `TOKEN`, REST `REQUEST` and HTTP API 2.0 events it measures what one
//! invocation costs inside the function, from the event bytes the Runtime API hands over to the
//! answer bytes posted back (parse the event, decide, render, serialise):
//!
//! * **cached** — the same token again: answered from the verified-token cache (the warm case
//!   API Gateway's own cache does not already absorb: other routes, other API stages, TTL 0);
//! * **verify** — a token not seen before by this process (cache disabled): one ES256 signature
//!   check with keys already cached;
//! * **core verify** — the baseline, measured in the same run: `jwtgate_core::Verifier::verify`
//!   of the same token with the same key (parse, signature, claims), nothing around it.
//!
//! Goals (issue 17): cached ≤ 5 µs for every event type; verify ≤ core verify + 10 µs. The
//! summary prints each with its margin over the baseline. The events are the documented ones
//! made compact, as API Gateway sends them (see [`compact`]); `JWTGATE_BENCH_INDENTED=1` measures
//! them indented, as stored.
//!
//! `JWTGATE_BENCH_QUICK=1` (or running without `--bench`, as `cargo test --benches` does) makes a
//! very short run. For instruction counts, `JWTGATE_BENCH_ONLY=rest_request/cached` with
//! `JWTGATE_BENCH_ITERATIONS=N` runs exactly N invocations of one case and nothing else:
//! `valgrind --tool=callgrind` over two values of N, the difference divided by the difference
//! of N, is the instructions per invocation without the setup (`JWTGATE_BENCH_ONLY=core/verify`:
//! the baseline's). `bench/lambda-callgrind.sh` does that for every case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, KeySet, Policy, SigningKey, Verifier};
use jwtgate_lambda::{Authorizer, LambdaConfig};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://tenant.example.com/";
const AUDIENCE: &str = "https://api.example.com";

const EVENTS: [(&str, &str); 3] = [
    (
        "rest_token",
        include_str!("../tests/events/rest-token.json"),
    ),
    (
        "rest_request",
        include_str!("../tests/events/rest-request.json"),
    ),
    (
        "http_api_v2",
        include_str!("../tests/events/http-api-v2.json"),
    ),
];

fn authorizer(
    runtime: &tokio::runtime::Runtime,
    jwks: &std::path::Path,
    cache: bool,
) -> Authorizer {
    let text = format!(
        "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = {:?}\n[cache]\ncapacity = {}\n[lambda]\ncontext_claims = [\"email\"]\n",
        jwks.display().to_string(),
        if cache { 10_000 } else { 0 }
    );
    let authorizer = LambdaConfig::from_toml(&text, "bench.toml")
        .unwrap()
        .build("bench.toml")
        .unwrap();
    assert!(runtime.block_on(authorizer.prepare_keys(false)).is_empty());
    authorizer
}

/// One invocation's work inside the function: event bytes in, answer bytes out (not inlined:
/// callgrind counts inside it, `--toggle-collect`).
#[inline(never)]
fn invoke(runtime: &tokio::runtime::Runtime, authorizer: &Authorizer, event: &[u8]) -> Vec<u8> {
    let answer = runtime.block_on(authorizer.answer(event, NOW)).unwrap();
    serde_json::to_vec(&answer).unwrap()
}

/// The event as the Runtime API hands it over: API Gateway sends compact JSON, while the
/// documented events in `tests/events` are indented for reading (REST `REQUEST`: 3.8 KB
/// indented, 2.4 KB compact). Whitespace outside strings is dropped; nothing is reordered.
fn compact(event: &str) -> Vec<u8> {
    if std::env::var_os("JWTGATE_BENCH_INDENTED").is_some() {
        return event.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(event.len());
    let (mut in_string, mut escaped) = (false, false);
    for byte in event.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte.is_ascii_whitespace() {
            continue;
        }
        out.push(byte);
    }
    out
}

/// The baseline: jwtgate-core's verify of the token (not inlined, as [`invoke`]).
#[inline(never)]
fn core_verify(verifier: &Verifier, token: &[u8]) -> bool {
    verifier.verify(token, NOW).is_ok()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::var_os("JWTGATE_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if quick {
        (3, Duration::from_millis(20))
    } else {
        (15, Duration::from_millis(200))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let signer = SigningKey::generate(Algorithm::ES256, "key-1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [signer.public_jwk()] }).to_string()).unwrap();
    let token = signer
        .sign(
            &Default::default(),
            &json!({
                "iss": ISSUER, "aud": [AUDIENCE, "https://tenant.example.com/userinfo"],
                "sub": "auth0|alice", "iat": NOW - 10, "exp": NOW + 600,
                "scope": "openid profile read:users", "permissions": ["read:users", "write:users"],
                "email": "alice@example.com", "azp": "spa-client-id",
            }),
        )
        .unwrap();
    let cached = authorizer(&runtime, &jwks, true);
    let uncached = authorizer(&runtime, &jwks, false);
    let keys = KeySet::from_json(
        json!({ "keys": [signer.public_jwk()] })
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let policy = Policy::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let verifier = Verifier::new(policy, keys);
    assert!(verifier.verify(token.as_bytes(), NOW).is_ok());

    if let Ok(only) = std::env::var("JWTGATE_BENCH_ONLY") {
        let iterations: u32 = std::env::var("JWTGATE_BENCH_ITERATIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        let (name, variant) = only
            .split_once('/')
            .expect("JWTGATE_BENCH_ONLY=event/variant");
        if only == "core/verify" {
            for _ in 0..iterations {
                black_box(core_verify(&verifier, black_box(token.as_bytes())));
            }
            return;
        }
        let template = EVENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .expect("a known event name");
        let event = compact(&template.replace("${TOKEN}", &token));
        let authorizer = if variant == "cached" {
            &cached
        } else {
            &uncached
        };
        for _ in 0..iterations {
            black_box(invoke(&runtime, authorizer, black_box(&event)));
        }
        return;
    }

    let measure = |work: &dyn Fn()| {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let mut n = 0u32;
            while started.elapsed() < per_round {
                work();
                n += 1;
            }
            samples.push(started.elapsed().as_secs_f64() / f64::from(n));
        }
        median(samples) * 1e6
    };

    println!(
        "per-invocation handler time (event bytes → answer bytes), median of {rounds} rounds:"
    );
    let core = measure(&|| {
        black_box(core_verify(&verifier, black_box(token.as_bytes())));
    });
    println!(
        "  {:<21} {core:>8.1} µs  (baseline: jwtgate_core Verifier::verify)",
        "core verify"
    );
    for (name, template) in EVENTS {
        let event = compact(&template.replace("${TOKEN}", &token));
        for (variant, authorizer) in [("cached", &cached), ("verify", &uncached)] {
            let answer = invoke(&runtime, authorizer, &event);
            assert!(
                String::from_utf8_lossy(&answer).contains("Allow")
                    || String::from_utf8_lossy(&answer).contains("\"isAuthorized\":true"),
                "{name}: {}",
                String::from_utf8_lossy(&answer)
            );
            let took = measure(&|| {
                black_box(invoke(&runtime, authorizer, black_box(&event)));
            });
            let goal = if variant == "cached" {
                format!(
                    "goal ≤ 5 µs: {}",
                    if took <= 5.0 { "met" } else { "NOT met" }
                )
            } else {
                format!(
                    "core verify + {:.1} µs; goal ≤ + 10 µs: {}",
                    took - core,
                    if took - core <= 10.0 {
                        "met"
                    } else {
                        "NOT met"
                    }
                )
            };
            println!("  {name:<13} {variant:<7} {took:>8.1} µs  ({goal})");
        }
    }
}
