//! The background refresher's lifetime: it runs while anything holds its source and ends as soon
//! as the last handle is dropped (a source a configuration reload no longer uses).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_keys::{CacheSettings, KeySource, SourceKind, SystemClock};
use std::sync::Arc;
use std::time::Duration;

fn source() -> KeySource {
    KeySource::new(
        SourceKind::File("/nonexistent/jwks.json".into()),
        CacheSettings::default(),
        Arc::new(SystemClock::new()),
    )
    .unwrap()
}

#[tokio::test]
async fn refresher_runs_while_the_source_is_held_and_ends_when_it_is_dropped() {
    let source = source();
    let refresher = tokio::spawn(source.clone().run_refresher());
    // The first attempt comes after the minimum pause; then the refresher waits for the cooldown.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(source.metrics().fetches, 1);
    assert!(!refresher.is_finished());
    let started = std::time::Instant::now();
    drop(source);
    tokio::time::timeout(Duration::from_secs(1), refresher)
        .await
        .expect("the refresher of a dropped source ends")
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn refresher_of_a_source_dropped_before_it_starts_ends_at_once() {
    let source = source();
    let refresher = source.clone().run_refresher();
    drop(source);
    tokio::time::timeout(Duration::from_millis(200), refresher)
        .await
        .expect("nothing left to refresh");
}

#[tokio::test]
async fn same_source_tells_handles_apart() {
    let a = source();
    let b = source();
    assert!(a.same_source(&a.clone()));
    assert!(!a.same_source(&b));
}
