//! Revocation from a rules file, through the in-process gateway on loopback: a rule written to
//! the file refuses a token already in the verified-token cache within a second (401
//! `invalid_token`, "token revoked (by …)"), other tokens keep passing; a broken file keeps the
//! rules read last, and `/readyz` turns unready after `max_stale`; metrics show the rules held and
//! the failures; a configuration reload keeps the rules (the same shared state).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use jwtgate_revocation::{to_json_lines, Rule};
use jwtgate_test_support::client::forward_auth_check;
use jwtgate_test_support::{now, Issuer, AUDIENCE, ISSUER};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// Polls until `token` gets `status`, at most `within`; returns the challenge.
async fn until_status(
    client: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    status: u16,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (got, challenge) = forward_auth_check(client, addr, token).await;
        if got == status {
            return challenge;
        }
        assert!(
            Instant::now() < deadline,
            "still {got} after {within:?} ({challenge})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write_rules(path: &Path, rules: &[Rule]) {
    // Written whole and renamed, as `jwtgate revoke --file` does.
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, to_json_lines(rules)).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn config(jwks: &Path, rules: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{}"

[revocation]
file = "{}"
max_stale = 1
"#,
        jwks.display(),
        rules.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rules_refuse_cached_tokens_and_survive_a_broken_file_and_a_reload() {
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("revoked.jsonl");
    write_rules(&rules_file, &[]);
    let text = config(issuer.jwks_file(), &rules_file);
    let config = GatewayConfig::from_toml(&text, "gateway.toml").unwrap();
    let built = config.build("gateway.toml").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let spawned = server::spawn(&built, listener, None, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let addr = spawned.addr;
    let client = reqwest::Client::new();
    assert_eq!(get(&client, addr, "/readyz").await.0, 200);

    let alice = issuer.token(json!({"jti": "alice-1"}));
    let bob = issuer.token(json!({"jti": "bob-1", "sub": "auth0|bob"}));
    let carol = issuer.token(json!({"jti": "carol-1", "sub": "auth0|carol", "azp": "rogue"}));
    for token in [&alice, &bob, &carol, &alice, &bob, &carol] {
        assert_eq!(forward_auth_check(&client, addr, token).await.0, 200);
    }
    let metrics = get(&client, addr, "/metrics").await.1;
    assert!(
        metrics.contains("jwtgate_token_cache_hits_total 3\n"),
        "{metrics}"
    );

    // By jti: refused from the cache within a second; the others pass.
    let exp = now() + 600;
    let mut rules = vec![Rule::jti("alice-1", exp).unwrap()];
    write_rules(&rules_file, &rules);
    let written = Instant::now();
    let challenge = until_status(&client, addr, &alice, 401, Duration::from_secs(1)).await;
    assert!(written.elapsed() < Duration::from_secs(1));
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("error_description=\"token revoked (by jti)\""),
        "{challenge}"
    );
    assert_eq!(forward_auth_check(&client, addr, &bob).await.0, 200);

    // By subject, issued before a time; by client (azp).
    rules.push(Rule::subject(ISSUER, "auth0|bob", now(), now() + 3600).unwrap());
    rules.push(Rule::client("rogue", now(), now() + 3600).unwrap());
    write_rules(&rules_file, &rules);
    let challenge = until_status(&client, addr, &bob, 401, Duration::from_secs(1)).await;
    assert!(
        challenge.contains("token revoked (by subject, issued before "),
        "{challenge}"
    );
    let challenge = until_status(&client, addr, &carol, 401, Duration::from_secs(1)).await;
    assert!(
        challenge.contains("token revoked (by client, issued before "),
        "{challenge}"
    );
    // Bob's next token, issued after the rule's time, passes.
    let bob_again = issuer.token(json!({"jti": "bob-2", "sub": "auth0|bob", "iat": now()}));
    assert_eq!(forward_auth_check(&client, addr, &bob_again).await.0, 200);
    let metrics = get(&client, addr, "/metrics").await.1;
    assert!(
        metrics.contains("jwtgate_revocation_rules 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "jwtgate_requests_total{decision=\"deny\",status=\"401\",reason=\"revoked\"}"
        ),
        "{metrics}"
    );

    // A broken file: the rules read last stay; /readyz reports it after max_stale (1 s).
    std::fs::write(&rules_file, "{\"by\":\"jti\"\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, body) = get(&client, addr, "/readyz").await;
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still ready with a broken rules file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("revocation rules from file"), "{body}");
    assert!(body.contains("line 1"), "{body}");
    for token in [&alice, &bob, &carol] {
        assert_eq!(forward_auth_check(&client, addr, token).await.0, 401);
    }
    let metrics = get(&client, addr, "/metrics").await.1;
    assert!(
        !metrics.contains("jwtgate_revocation_sync_failures_total 0\n"),
        "{metrics}"
    );

    // A reload builds a new engine that shares the rules (and their follower).
    let old = spawned.engine.load();
    let rebuilt = config.build_replacing("gateway.toml", &old).unwrap();
    assert!(Arc::ptr_eq(
        old.revocation().unwrap(),
        rebuilt.engine.revocation().unwrap()
    ));
    spawned.engine.store(rebuilt.engine.clone());
    assert_eq!(forward_auth_check(&client, addr, &alice).await.0, 401);

    // The file fixed: ready again, and removing a rule lets its tokens pass.
    rules.remove(0);
    write_rules(&rules_file, &rules);
    until_status(&client, addr, &alice, 200, Duration::from_secs(2)).await;
    assert_eq!(get(&client, addr, "/readyz").await.0, 200);
    assert_eq!(forward_auth_check(&client, addr, &bob).await.0, 401);
}

#[tokio::test]
async fn a_missing_rules_file_starts_unready_with_no_rules() {
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("absent.jsonl");
    let text = config(issuer.jwks_file(), &rules_file);
    let built = GatewayConfig::from_toml(&text, "gateway.toml")
        .unwrap()
        .build("gateway.toml")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let spawned = server::spawn(&built, listener, None, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let (status, body) = get(&client, spawned.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not synced yet"), "{body}");
    assert_eq!(
        forward_auth_check(&client, spawned.addr, &issuer.token(json!({})))
            .await
            .0,
        200
    );
    write_rules(&rules_file, &[]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while get(&client, spawned.addr, "/readyz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready after the file appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
