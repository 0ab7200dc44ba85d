//! What a full verified-token cache really costs: Auth0-shaped tokens are verified and cached
//! until the cache holds 50,000, and the growth of the process's resident memory (`VmRSS`) is
//! compared with the cache's own weight (the estimate its byte bound uses) — the two must agree
//! within 15 % — and with the goal of issue 17: the default `max_bytes` holds at least 100,000
//! such tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_engine::token_cache::{TokenCache, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES};
use jwtgate_test_support::memory::{auth0_token, auth0_verifier, resident_bytes};
use std::sync::Arc;

const NOW: i64 = 1_700_000_000;
const ENTRIES: u64 = 50_000;

#[test]
fn a_full_cache_weighs_what_it_says_and_the_default_holds_100k_auth0_tokens() {
    // ES256 for speed: the signature is not kept, so the entry is the same as for RS256.
    let key = SigningKey::generate(Algorithm::ES256, "key-2024-01").unwrap();
    let verifier = auth0_verifier(&key);
    let tokens: Vec<String> = (0..32).map(|i| auth0_token(&key, i, NOW)).collect();
    let sample = verifier.verify(tokens[0].as_bytes(), NOW).unwrap();
    let budget = (sample.retained_bytes() as u64 + 200) * ENTRIES * 2;

    let before = resident_bytes();
    let cache: TokenCache = TokenCache::new(budget, None, DEFAULT_MAX_AGE).unwrap();
    for i in 0..ENTRIES {
        // Each entry its own verification, under its own key (the cache hashes the token).
        let token = &tokens[(i % 32) as usize];
        let verified = Arc::new(verifier.verify(token.as_bytes(), NOW).unwrap());
        cache.insert(format!("{token}.{i}").as_bytes(), verified, NOW);
    }
    assert_eq!(cache.len() as u64, ENTRIES);
    let resident = (resident_bytes() - before) / ENTRIES;
    let weighed = cache.weight() / ENTRIES;
    eprintln!(
        "an Auth0-shaped entry: {resident} B resident, weighed {weighed} B; default max_bytes \
         {DEFAULT_MAX_BYTES} holds {} of them",
        DEFAULT_MAX_BYTES / weighed
    );
    assert!(
        weighed * 100 >= resident * 85 && weighed * 100 <= resident * 115,
        "weighed {weighed} B vs {resident} B resident per entry"
    );
    assert!(
        DEFAULT_MAX_BYTES / weighed >= 100_000,
        "the default holds {} tokens",
        DEFAULT_MAX_BYTES / weighed
    );
}
