//! Revocation shared through a real `redis-server` by three gateway replicas behind a real nginx
//! (`auth_request`, round robin over the replicas), each with its verified-token cache warm:
//!
//! * replicas started while Redis is down serve (no rules) and are not ready; they sync and
//!   turn ready once Redis is up;
//! * `jwtgate revoke` of a `jti` and of a subject: every replica refuses within 1 s of the
//!   command returning, directly and through nginx, while other tokens keep passing; bad input
//!   to the command is exit 2 and writes nothing;
//! * Redis killed: replicas keep serving and keep refusing what was revoked (never a 5xx), and
//!   `/readyz` turns unready after `max_stale`;
//! * Redis restarted empty: replicas keep their rules (the generation marker is gone, so the
//!   empty Redis is read as lost data, not as "nothing is revoked"), turn ready again, and
//!   enforce new revocations too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use jwtgate_test_support::client::forward_auth_check;
use jwtgate_test_support::{free_port, now, Issuer, AUDIENCE, ISSUER};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod redis_support;

use jwtgate_test_support::process::nginx_command;
use redis_support::{start_redis, Running};

/// nginx with `auth_request` to the three replicas (round robin) in front of `upstream`.
async fn start_nginx(
    dir: &Path,
    replicas: &[SocketAddr],
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let prefix = dir.join("nginx");
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let servers: String = replicas
        .iter()
        .map(|addr| format!("        server {addr};\n"))
        .collect();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream jwtgate {{
{servers}        keepalive 16;
    }}
    server {{
        listen {listen};
        location / {{
            auth_request /_jwtgate;
            auth_request_set $jwtgate_challenge $upstream_http_www_authenticate;
            add_header X-Challenge $jwtgate_challenge always;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://{upstream};
        }}
        location = /_jwtgate {{
            internal;
            proxy_pass http://jwtgate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Method "";
            proxy_set_header X-Forwarded-Uri "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    );
    let command = nginx_command(&prefix, &conf);
    let mut nginx = Running::spawn("nginx", command, dir.join("nginx.log"));
    nginx.expect_listening(listen).await;
    (nginx, listen)
}

/// The API behind nginx: 200 "api" for everything.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "api" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One in-process replica following Redis at `redis_port`.
async fn start_replica(
    jwks: &Path,
    redis_port: u16,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
forward_auth_invalid_request_status = 401

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{}"

[revocation]
redis_url = "redis://127.0.0.1:{redis_port}/"
max_stale = 2
resync_interval = 1
"#,
        jwks.display()
    );
    let built = GatewayConfig::from_toml(&text, "replica.toml")
        .unwrap()
        .build("replica.toml")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let spawned = server::spawn(&built, listener, None, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    (spawned.addr, stop)
}

/// A request through nginx: (status, the challenge nginx passed on).
async fn through_nginx(client: &reqwest::Client, nginx: SocketAddr, token: &str) -> (u16, String) {
    let response = client
        .get(format!("http://{nginx}/api/users"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .or_else(|| response.headers().get("x-challenge"))
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

async fn get(client: &reqwest::Client, replica: SocketAddr, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://{replica}{path}"))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// Runs `jwtgate revoke` with `args`: (exit code, stdout, stderr).
async fn revoke(args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .arg("revoke")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Polls `condition` on every replica until it holds everywhere; panics after `within`.
async fn on_every_replica<F, Fut>(
    replicas: &[SocketAddr],
    within: Duration,
    what: &str,
    condition: F,
) where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    for replica in replicas {
        while !condition(*replica).await {
            assert!(
                Instant::now() < deadline,
                "{what}: not true on {replica} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every replica, asked directly, answers `status` for each token.
async fn all_answer(
    client: &reqwest::Client,
    replicas: &[SocketAddr],
    tokens: &[&str],
    status: u16,
) {
    for replica in replicas {
        for token in tokens {
            let (got, challenge) = forward_auth_check(client, *replica, token).await;
            assert_eq!(got, status, "{replica}: {challenge}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_every_replica_and_outlive_redis() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let redis_port = free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}/");
    let client = reqwest::Client::new();

    // Replicas started while Redis is down: they serve, with no rules, and are not ready.
    let mut replicas = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..3 {
        let (addr, stop) = start_replica(issuer.jwks_file(), redis_port).await;
        replicas.push(addr);
        stops.push(stop);
    }
    for replica in &replicas {
        let (status, body) = get(&client, *replica, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("revocation rules from redis"), "{body}");
        assert!(body.contains("not synced yet"), "{body}");
    }
    let alice = issuer.token(json!({"jti": "alice-1"}));
    let bob = issuer.token(json!({"jti": "bob-1", "sub": "auth0|bob"}));
    let carol = issuer.token(json!({"jti": "carol-1", "sub": "auth0|carol"}));
    all_answer(&client, &replicas, &[&alice, &bob, &carol], 200).await;

    let mut redis = start_redis(dir.path(), redis_port).await;
    on_every_replica(
        &replicas,
        Duration::from_secs(5),
        "ready once Redis is up",
        |r| {
            let client = client.clone();
            async move { get(&client, r, "/readyz").await.0 == 200 }
        },
    )
    .await;

    let upstream = start_upstream().await;
    let (_nginx, nginx) = start_nginx(dir.path(), &replicas, upstream).await;
    // Warm every replica's verified-token cache, directly and through nginx.
    all_answer(&client, &replicas, &[&alice, &bob, &carol], 200).await;
    for _ in 0..6 {
        for token in [&alice, &bob, &carol] {
            assert_eq!(through_nginx(&client, nginx, token).await.0, 200);
        }
    }
    for replica in &replicas {
        let metrics = get(&client, *replica, "/metrics").await.1;
        let hits: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("jwtgate_token_cache_hits_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(hits >= 3, "{replica}: cache not warm:\n{metrics}");
    }

    // Bad input: exit 2, nothing written.
    for bad in [
        vec!["--jti", "alice-1", "--exp", "tomorrow"],
        vec!["--jti", "alice-1"],
        vec![
            "--issuer",
            ISSUER,
            "--subject",
            "auth0|bob",
            "--before",
            "2026-13-01T00:00:00Z",
        ],
        vec!["--client", "spa", "--jti", "x", "--exp", "5"],
        vec!["--jti", "alice-1", "--exp", "5", "--unknown-flag"],
    ] {
        let mut args = vec!["--redis", redis_url.as_str()];
        args.extend(bad.iter().copied());
        let (code, _, stderr) = revoke(&args).await;
        assert_eq!(code, 2, "{bad:?}: {stderr}");
    }
    let (code, listed, _) = revoke(&["--redis", &redis_url, "--list"]).await;
    assert_eq!((code, listed.as_str()), (0, ""));

    // Revoke a jti: every replica refuses within 1 s of the command returning.
    let exp = (now() + 600).to_string();
    let (code, stdout, stderr) =
        revoke(&["--redis", &redis_url, "--jti", "alice-1", "--exp", &exp]).await;
    assert_eq!(code, 0, "{stderr}");
    let returned = Instant::now();
    assert!(stdout.contains("\"jti\":\"alice-1\""), "{stdout}");
    on_every_replica(&replicas, Duration::from_secs(1), "jti revoked", |r| {
        let (client, alice) = (client.clone(), alice.clone());
        async move { forward_auth_check(&client, r, &alice).await.0 == 401 }
    })
    .await;
    let enforced_after = returned.elapsed();
    assert!(
        enforced_after < Duration::from_secs(1),
        "{enforced_after:?}"
    );
    for replica in &replicas {
        let (_, challenge) = forward_auth_check(&client, *replica, &alice).await;
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains("token revoked (by jti)"),
            "{challenge}"
        );
    }
    all_answer(&client, &replicas, &[&bob, &carol], 200).await;

    // Revoke a subject (issued before now): the same.
    let (code, _, stderr) = revoke(&[
        "--redis",
        &redis_url,
        "--issuer",
        ISSUER,
        "--subject",
        "auth0|bob",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let returned = Instant::now();
    on_every_replica(&replicas, Duration::from_secs(1), "subject revoked", |r| {
        let (client, bob) = (client.clone(), bob.clone());
        async move { forward_auth_check(&client, r, &bob).await.0 == 401 }
    })
    .await;
    assert!(returned.elapsed() < Duration::from_secs(1));
    all_answer(&client, &replicas, &[&carol], 200).await;
    for _ in 0..6 {
        assert_eq!(through_nginx(&client, nginx, &carol).await.0, 200);
        let (status, challenge) = through_nginx(&client, nginx, &alice).await;
        assert_eq!(status, 401);
        assert!(challenge.contains("token revoked (by jti)"), "{challenge}");
        let (status, challenge) = through_nginx(&client, nginx, &bob).await;
        assert_eq!(status, 401);
        assert!(
            challenge.contains("token revoked (by subject"),
            "{challenge}"
        );
    }
    let (_, listed, _) = revoke(&["--redis", &redis_url, "--list"]).await;
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // Redis killed: the replicas keep serving and refusing; unready after max_stale (2 s).
    drop(redis);
    let killed = Instant::now();
    on_every_replica(
        &replicas,
        Duration::from_secs(6),
        "unready without Redis",
        |r| {
            let client = client.clone();
            async move { get(&client, r, "/readyz").await.0 == 503 }
        },
    )
    .await;
    // Staleness counts from the last full sync, at most resync_interval (1 s) before the kill.
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "unready before max_stale"
    );
    for replica in &replicas {
        let body = get(&client, *replica, "/readyz").await.1;
        assert!(body.contains("more than max_stale (2 s)"), "{body}");
        let metrics = get(&client, *replica, "/metrics").await.1;
        assert!(
            metrics.contains("jwtgate_revocation_rules 2\n"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("jwtgate_revocation_sync_failures_total 0\n"),
            "{metrics}"
        );
    }
    all_answer(&client, &replicas, &[&alice, &bob], 401).await;
    all_answer(&client, &replicas, &[&carol], 200).await;
    for _ in 0..3 {
        assert_eq!(through_nginx(&client, nginx, &carol).await.0, 200);
        assert_eq!(through_nginx(&client, nginx, &alice).await.0, 401);
    }

    // Redis back, empty: the replicas keep their rules, even across resyncs, and turn ready.
    redis = start_redis(dir.path(), redis_port).await;
    on_every_replica(&replicas, Duration::from_secs(5), "ready again", |r| {
        let client = client.clone();
        async move { get(&client, r, "/readyz").await.0 == 200 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    all_answer(&client, &replicas, &[&alice, &bob], 401).await;
    all_answer(&client, &replicas, &[&carol], 200).await;
    let (_, listed, _) = revoke(&["--redis", &redis_url, "--list"]).await;
    assert_eq!(listed, "", "the restarted Redis is empty");

    // New revocations reach every replica again; the kept rules stay after the next resyncs.
    let (code, _, stderr) =
        revoke(&["--redis", &redis_url, "--jti", "carol-1", "--exp", &exp]).await;
    assert_eq!(code, 0, "{stderr}");
    let returned = Instant::now();
    on_every_replica(
        &replicas,
        Duration::from_secs(1),
        "jti revoked after restart",
        |r| {
            let (client, carol) = (client.clone(), carol.clone());
            async move { forward_auth_check(&client, r, &carol).await.0 == 401 }
        },
    )
    .await;
    assert!(returned.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    all_answer(&client, &replicas, &[&alice, &bob, &carol], 401).await;
    let dave = issuer.token(json!({"jti": "dave-1", "sub": "auth0|dave"}));
    all_answer(&client, &replicas, &[&dave], 200).await;

    // Removing a rule lets its tokens pass again everywhere.
    let (code, _, stderr) = revoke(&["--redis", &redis_url, "--jti", "carol-1", "--remove"]).await;
    assert_eq!(code, 0, "{stderr}");
    on_every_replica(&replicas, Duration::from_secs(1), "rule removed", |r| {
        let (client, carol) = (client.clone(), carol.clone());
        async move { forward_auth_check(&client, r, &carol).await.0 == 200 }
    })
    .await;
    drop(redis);
    drop(stops);
}
