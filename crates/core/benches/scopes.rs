//! Benchmark of tokens packed with scopes, run by `cargo bench -p jwtgate-core --bench scopes`.
//!
//! A token can carry up to the size limit (64 KiB) of short distinct scopes — over 13,000 —
//! and every scope the token grants is compared, de-duplicated and copied into the identity
//! header. This measures, interleaved in one run, for ES256 tokens:
//!
//! * **base** — an ordinary Auth0-shaped token (five scopes): full verify, route requirement,
//!   distinct scopes (what the gateway does per uncached request): the baseline;
//! * **cap** — a token granting exactly [`MAX_GRANTED_SCOPES`] distinct scopes, the required
//!   one last: accepted;
//! * **packed** — a token at the size limit packed with short distinct scopes: refused
//!   (`too_many_scopes`).
//!
//! Goal: the packed token is decided in a few milliseconds (it was 25.9 ms with the old quadratic
//! de-duplication at 5,500 scopes). The summary prints the median time per decision and its ratio
//! to the baseline. `JWTGATE_BENCH_QUICK=1` (or running without `--bench`) makes it short.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::scope::MAX_GRANTED_SCOPES;
use jwtgate_core::{Algorithm, KeySet, Policy, ScopeRequirement, SigningKey, UnixTime, Verifier};
use serde_json::json;
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://bench.eu.auth0.com/";
const AUDIENCE: &str = "https://api.bench.example";
const MAX_TOKEN_LEN: usize = 64 * 1024;

fn token(key: &SigningKey, now: UnixTime, scope: &str) -> String {
    let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let payload = format!(
        r#"{{"iss":"{ISSUER}","sub":"auth0|bench","aud":"{AUDIENCE}","iat":{now},"exp":{},"scope":"{scope}"}}"#,
        now + 3600
    );
    key.sign_raw(header.as_bytes(), payload.as_bytes()).unwrap()
}

/// Space-separated distinct short scopes (`s0 s1 …`) until the signed token would exceed
/// `max_len`, ending with `read:users`.
fn packed_scopes(key: &SigningKey, now: UnixTime, max_len: usize) -> (String, usize) {
    let scopes = |count: usize| {
        (0..count)
            .map(|i| format!("s{i}"))
            .chain(["read:users".to_owned()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (mut low, mut high) = (0usize, 20_000usize);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if token(key, now, &scopes(mid)).len() <= max_len {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    (scopes(low), low + 1)
}

/// What the gateway does per uncached request: verify, check the route, build the scope list.
fn decide(verifier: &Verifier, route: &ScopeRequirement, token: &str, now: UnixTime) -> bool {
    match verifier.verify(token.as_bytes(), now) {
        Ok(verified) => {
            let allowed = verified.require(route).is_ok();
            black_box(verified.distinct_scopes().join(" "));
            allowed
        }
        Err(rejection) => {
            black_box(rejection.description());
            false
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let quick = !bench || std::env::var("JWTGATE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let now = UnixTime::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let key = SigningKey::generate(Algorithm::ES256, "bench").unwrap();
    let keys =
        KeySet::from_json(json!({"keys": [key.public_jwk()]}).to_string().as_bytes()).unwrap();
    let policy = Policy::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let verifier = Verifier::new(policy, keys);
    let route = ScopeRequirement::all_of(["read:users"]);

    let base = token(&key, now, "openid profile email read:users write:users");
    let at_cap: Vec<String> = (1..MAX_GRANTED_SCOPES)
        .map(|i| format!("s{i}"))
        .chain(["read:users".to_owned()])
        .collect();
    let cap = token(&key, now, &at_cap.join(" "));
    let (packed_scope, packed_count) = packed_scopes(&key, now, MAX_TOKEN_LEN);
    let packed = token(&key, now, &packed_scope);
    assert!(packed.len() <= MAX_TOKEN_LEN);

    // The cells must decide as described, or the benchmark measures the wrong path.
    assert!(decide(&verifier, &route, &base, now), "base is allowed");
    assert!(decide(&verifier, &route, &cap, now), "cap is allowed");
    assert!(
        !decide(&verifier, &route, &packed, now),
        "packed is refused"
    );
    let refusal = verifier.verify(packed.as_bytes(), now).unwrap_err();
    assert_eq!(refusal.kind(), "too_many_scopes");

    let cells = [
        ("base", base.as_str(), 200u32),
        ("cap", cap.as_str(), 20),
        ("packed", packed.as_str(), 20),
    ];
    let rounds = if quick { 3 } else { 15 };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    for round in 0..rounds {
        for offset in 0..cells.len() {
            let index = (round + offset) % cells.len();
            let (_, token, iterations) = cells[index];
            let started = Instant::now();
            for _ in 0..iterations {
                black_box(decide(&verifier, &route, black_box(token), now));
            }
            samples[index].push(started.elapsed().as_secs_f64() / f64::from(iterations));
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!(
        "scopes: packed token {} bytes, {packed_count} scopes; cap {MAX_GRANTED_SCOPES}",
        packed.len()
    );
    for ((name, token, _), seconds) in cells.iter().zip(&medians) {
        println!(
            "  {name:<7} {:>6} bytes  {:>9.1} µs per decision  {:>6.2}× base",
            token.len(),
            seconds * 1e6,
            seconds / medians[0]
        );
    }
    let packed_ms = medians[2] * 1e3;
    println!(
        "  goal: packed token decided in a few ms: {packed_ms:.3} ms ({})",
        match (quick, packed_ms < 3.0) {
            (true, _) => "not judged in a quick run",
            (false, true) => "met",
            (false, false) => "NOT met",
        }
    );
}
