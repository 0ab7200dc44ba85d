//! The demo end to end, headless: every step of `jwtgate demo --check` against freshly started
//! components, and the users data surviving a restart on the same state directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_demo::{check, users::NewUser, users::UserStore, Demo, DemoOptions, API_AUDIENCE};

fn options(dir: &std::path::Path) -> DemoOptions {
    DemoOptions {
        app_port: 0,
        issuer_port: 0,
        state_dir: dir.to_path_buf(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_passes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&options(dir.path())).await.unwrap();
    let report = check::run(&demo).await;
    println!("{}", report.render());
    assert!(report.passed(), "{}", report.render());
    assert!(report.steps.len() >= 14, "{}", report.render());
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_and_a_fresh_state_dir_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&options(dir.path())).await.unwrap();
    let alice = check::login(&demo, "alice", Some(API_AUDIENCE))
        .await
        .unwrap();
    let (status, _, body) = check::call(&demo, "GET", Some(&alice.access_token))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let users: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        users.as_array().unwrap().len(),
        3,
        "seeded with three users: {body}"
    );
    let (app_url, issuer_url) = (demo.app_url.clone(), demo.issuer_url.clone());
    demo.stop().await;

    let store = UserStore::open(&dir.path().join("users.sqlite")).unwrap();
    store
        .create(
            &NewUser {
                name: "Dorothy Vaughan".into(),
                email: "dorothy@example.com".into(),
            },
            "auth0|test",
        )
        .unwrap();
    drop(store);

    // Same ports as before, as a user restarting `jwtgate demo` gets.
    let port = |url: &str| {
        url.trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    let again = DemoOptions {
        app_port: port(&app_url),
        issuer_port: port(&issuer_url),
        state_dir: dir.path().to_path_buf(),
    };
    let demo = Demo::start(&again).await.unwrap();
    // The issuer's keys survived too: the token from before the restart still verifies.
    let (status, _, body) = check::call(&demo, "GET", Some(&alice.access_token))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Dorothy Vaughan"), "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    demo.stop().await;
}
