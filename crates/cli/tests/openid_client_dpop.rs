//! `openid-client` 6's DPoP support end to end: the `jwtgate issuer` binary issues a DPoP-bound
//! token to `openid-client` (client_credentials with a DPoP handle, `randomDPoPKeyPair('ES256')`),
//! and the `jwtgate serve` binary — in proxy mode, keys by discovery from that issuer — lets
//! `fetchProtectedResource` through with a fresh proof each time (200) and refuses the same
//! token sent as a bearer token (401, a downgrade). The Node side is
//! `crates/issuer/e2e/dpop-rp.mjs` (its `node_modules` come from `scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use axum::routing::get;
use axum::Router;
use e2e_support::IssuerProcess;
use jwtgate_test_support::free_port;
use jwtgate_test_support::process::Running;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const API: &str = "https://api.jwtgate.local/";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../issuer/e2e")
}

async fn start_upstream() -> std::net::SocketAddr {
    let app = Router::new().route("/api/users", get(|| async { "the users\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `jwtgate serve` in proxy mode for the issuer's API, ready (keys fetched by discovery).
async fn start_gateway(dir: &Path, issuer: &str, upstream: std::net::SocketAddr) -> (Running, u16) {
    let port = free_port();
    let config = dir.join("jwtgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"

[[issuers]]
issuer = "{issuer}"
audiences = ["{API}"]

[[routes]]
path = "/api/users"
scopes = ["read:users"]

[proxy]
upstream = "http://{upstream}"
"#
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("JWTGATE_LOG", "warn");
    let mut running = Running::spawn("jwtgate serve", command, dir.join("jwtgate.log"));
    let ready = format!("http://127.0.0.1:{port}/readyz");
    running
        .wait_for("ready", Duration::from_secs(20), || async {
            reqwest::get(&ready)
                .await
                .is_ok_and(|response| response.status() == 200)
        })
        .await
        .unwrap_or_else(|log| panic!("{log}"));
    (running, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_dpop_through_the_gateway() {
    let installed = e2e_dir().join("node_modules/openid-client/package.json");
    assert!(
        installed.exists(),
        "{} is missing: run `bash scripts/test` (it runs npm ci in crates/issuer/e2e)",
        installed.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let issuer = IssuerProcess::start_with(&[]);
    let issuer_url = issuer.url.clone();
    let upstream = start_upstream().await;
    let (_gateway, port) = start_gateway(dir.path(), &issuer_url, upstream).await;
    let api = format!("http://127.0.0.1:{port}/api/users");

    let output = tokio::process::Command::new("node")
        .arg(e2e_dir().join("dpop-rp.mjs"))
        .args([issuer_url.as_str(), API, api.as_str()])
        .current_dir(e2e_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("node dpop-rp.mjs took more than 120 s")
        .unwrap_or_else(|e| panic!("node is needed ({e}): install Node.js 20 or later"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no JSON from node dpop-rp.mjs\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success() && result.get("error").is_none(),
        "node dpop-rp.mjs: {}",
        result["error"]
    );

    assert!(
        result["dpop_algs"]
            .as_array()
            .is_some_and(|algs| algs.iter().any(|a| a == "ES256")),
        "{}",
        result["dpop_algs"]
    );
    assert_eq!(result["token_type"], "dpop", "{result}");
    let payload = result["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &jwtgate_core::internal::base64url::decode(payload.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");

    for name in ["with_proof", "with_another_proof"] {
        assert_eq!(result[name]["status"], 200, "{name}: {}", result[name]);
        assert_eq!(result[name]["body"], "the users\n");
    }
    let bearer = &result["as_bearer"];
    assert_eq!(bearer["status"], 401, "{bearer}");
    let challenge = bearer["www_authenticate"].as_str().unwrap();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("DPoP-bound"),
        "{challenge}"
    );
}
