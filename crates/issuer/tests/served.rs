//! The issuer served on a real loopback socket, with jwtgate's own remote-key machinery
//! (jwtgate-keys: discovery, JWKS cache) as the relying party: tokens verify by discovery, a
//! rotated key is picked up without a restart, and an injected JWKS outage is ridden out on
//! cached keys (stale-if-error).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{discovery_registry, serve_builtin, API};
use jwtgate_issuer::{Issuer, JwksFailure, MintRequest};
use jwtgate_test_support::now;
use std::time::Duration;

fn mint(issuer: &Issuer) -> String {
    issuer
        .mint(&MintRequest {
            user: Some("alice".into()),
            audience: Some(API.into()),
            scope: Some("openid read:users".into()),
            ..Default::default()
        })
        .unwrap()
        .access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwtgate_keys_follows_rotation_and_rides_out_jwks_failures() {
    let (issuer, url, stop) = serve_builtin("127.0.0.1").await;
    let registry = discovery_registry(&url);

    let first = mint(&issuer);
    let verified = registry.verify(first.as_bytes(), now()).await.unwrap();
    assert_eq!(verified.subject(), Some("jwtgate|alice"));

    // Rotate without publishing ahead: the unknown kid makes the cache refresh once.
    issuer.activate_next_keys(Some(600)).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = mint(&issuer);
    assert!(registry.verify(second.as_bytes(), now()).await.is_ok());
    assert!(
        registry.verify(first.as_bytes(), now()).await.is_ok(),
        "grace period"
    );

    // The JWKS fails: keys already cached keep working, a new key cannot be fetched, and the
    // refusal is invalid_token with the reason — never a server error.
    for failure in [JwksFailure::Status { status: 500 }, JwksFailure::Garbage] {
        issuer.fail_jwks(failure, Duration::from_secs(30));
        issuer.activate_next_keys(Some(600)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let unseen = mint(&issuer);
        let rejection = registry.verify(unseen.as_bytes(), now()).await.unwrap_err();
        assert_eq!(rejection.code().as_str(), "invalid_token");
        assert!(
            rejection.description().contains("could not be refreshed"),
            "{}",
            rejection.description()
        );
        assert!(
            registry.verify(second.as_bytes(), now()).await.is_ok(),
            "stale-if-error"
        );
        // Back to normal: the next refresh (here forced, as a TTL expiry would) picks it up.
        issuer.clear_jwks_failure();
        registry.entries()[0].source().refresh_now().await.unwrap();
        assert!(
            registry.verify(unseen.as_bytes(), now()).await.is_ok(),
            "recovered"
        );
    }

    // The admin endpoints answer a real loopback connection.
    let client = reqwest::Client::new();
    let reply = client.get(format!("{url}admin/keys")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let _ = stop.send(());
}
