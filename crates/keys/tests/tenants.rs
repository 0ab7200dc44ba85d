//! Issuer templates in the key registry, timed by a [`ManualClock`]: the shared fetch budget
//! refuses what requests drive once spent (without a request to the provider), and never stops
//! the refresh ahead of expiry of a tenant's keys already held.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Policy, Reason};
use jwtgate_keys::{
    CacheSettings, FetchBudget, IssuerTemplate, ManualClock, Registry, TenantIssuer, TenantKeys,
    Tenants,
};
use jwtgate_test_support::{Issuer, TenantProvider};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn the_budget_bounds_request_driven_fetches_but_not_refreshes_ahead() {
    let a = Issuer::new();
    let provider = TenantProvider::start(&[("tenant-a", &a)]);
    let clock = ManualClock::new();
    let budget = Arc::new(FetchBudget::new(2, Arc::new(clock.clone())));
    let template = TenantIssuer::new(
        IssuerTemplate::parse(&provider.template(), false).unwrap(),
        Tenants::Any,
        Policy::builder().audience("api"),
        TenantKeys::Discovery,
        CacheSettings::default(),
        Arc::new(clock.clone()),
        budget,
        10,
    )
    .unwrap();
    let registry = Registry::with_templates(Vec::new(), vec![template]).unwrap();
    let token = |tenant: &str| a.token(json!({"iss": provider.issuer(tenant), "aud": "api"}));
    let now = jwtgate_test_support::now();

    // Tenant A: discovery + JWKS, the whole budget.
    assert!(registry
        .verify(token("tenant-a").as_bytes(), now)
        .await
        .is_ok());
    assert_eq!(provider.requests(), 2);
    // Another tenant now: refused without a request.
    let refused = registry
        .verify(token("invented").as_bytes(), now)
        .await
        .unwrap_err();
    assert!(
        matches!(refused.reason(), Reason::KeysUnavailable { .. }),
        "{refused}"
    );
    assert!(
        refused.description().contains("budget"),
        "{}",
        refused.description()
    );
    assert_eq!(provider.requests(), 2);

    // A minute later the budget is back; spend it on an invented tenant (two 404s).
    clock.advance(Duration::from_secs(500));
    assert!(registry
        .verify(token("invented-2").as_bytes(), now)
        .await
        .is_err());
    assert_eq!(provider.requests(), 4);
    assert!(registry
        .verify(token("invented-3").as_bytes(), now)
        .await
        .is_err());
    assert_eq!(provider.requests(), 4, "spent");
    // Tenant A's keys are 500 s into their 600 s: the lookup refreshes them ahead, in the
    // background, budget or not.
    assert!(registry
        .verify(token("tenant-a").as_bytes(), now)
        .await
        .is_ok());
    for _ in 0..200 {
        if provider.requests_for("tenant-a") == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        provider.requests_for("tenant-a"),
        3,
        "the JWKS again (jwks_uri is known)"
    );
}
