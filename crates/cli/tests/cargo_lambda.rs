//! The same events through cargo-lambda's emulator: `cargo lambda watch --only-lambda-apis`
//! plays the Lambda service (Runtime API and invoke API) for the built `jwtgate lambda`, and
//! `cargo lambda invoke` sends the documented events.
//!
//! cargo-lambda comes from PyPI (`pip install cargo-lambda`, a prebuilt binary); `bash scripts/test`
//! installs it into `target/cargo-lambda-venv`. This test fails, not skips, without it. Never
//! `--data-example` (it downloads): events are passed with `--data-file`.

#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod lambda_support;

use jwtgate_test_support::free_port;
use lambda_support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The directory holding the `cargo-lambda` executable: `CARGO_LAMBDA_BIN_DIR`, the venv that
/// `bash scripts/test` makes, or `PATH`.
fn cargo_lambda_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_LAMBDA_BIN_DIR") {
        candidates.push(dir.into());
    }
    candidates.push(workspace.join("target/cargo-lambda-venv/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("cargo-lambda").is_file())
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found: install it with `python3 -m venv target/cargo-lambda-venv && \
                 target/cargo-lambda-venv/bin/pip install cargo-lambda` (what bash scripts/test does)"
            )
        })
}

/// `cargo lambda …` with the venv's directory first on `PATH` (cargo finds its subcommand there).
fn cargo_lambda(dir: &Path) -> tokio::process::Command {
    let mut path = vec![dir.to_owned()];
    if let Some(existing) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&existing));
    }
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    command
        .arg("lambda")
        .env("PATH", std::env::join_paths(path).unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn wait_for_port(port: u16, log: &Path) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cargo lambda watch did not listen on {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `cargo lambda invoke` with `event`: (exit success, stdout, stderr).
async fn invoke(dir: &Path, port: u16, event: &Value) -> (bool, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), event.to_string()).unwrap();
    let output = cargo_lambda(dir)
        .args(["invoke", "_", "-A", "127.0.0.1", "-P", &port.to_string()])
        .args(["--output-format", "json", "--data-file"])
        .arg(file.path())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The invoke API as API Gateway uses it (plain HTTP), for the exact error document.
async fn invoke_http(port: u16, event: &Value) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = event.to_string();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "POST /2015-03-31/functions/_/invocations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    // The body may be chunked; the JSON document is the part between the braces.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_through_cargo_lambda_watch_and_invoke() {
    let dir = cargo_lambda_dir();
    let version = cargo_lambda(&dir).arg("--version").output().await.unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("cargo-lambda "),
        "{version:?}"
    );

    let issuer = Issuer::start();
    let port = free_port();
    let watch_log = tempfile::NamedTempFile::new().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let _watch = cargo_lambda(&dir)
        .args([
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(watch_log.reopen().unwrap())
        .stderr(watch_log.reopen().unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, watch_log.path()).await;

    // The function, started the way `--only-lambda-apis` asks: against its Runtime API.
    let mut env = lambda_env(
        &format!("http://127.0.0.1:{port}/.rt"),
        &[
            ("JWTGATE_ISSUER", &issuer.issuer),
            ("JWTGATE_AUDIENCE", AUDIENCE),
            ("JWTGATE_SCOPES", "read:users"),
        ],
    );
    env.insert("AWS_LAMBDA_FUNCTION_NAME".into(), "_".into());
    let function = Function::start(&binary(), &["lambda"], &env);

    let token = issuer.token("alice", json!({}));
    for (template, check) in [
        (REST_TOKEN, "principalId"),
        (REST_REQUEST, "principalId"),
        (HTTP_API_V2, "isAuthorized"),
    ] {
        let (ok, stdout, stderr) = invoke(&dir, port, &event(template, &token)).await;
        assert!(ok, "{stderr}\n{}", function.output());
        let answer: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        assert!(answer.get(check).is_some(), "{answer}");
        if check == "isAuthorized" {
            assert_eq!(
                answer,
                json!({"isAuthorized": true, "context": {"sub": "alice", "iss": issuer.issuer, "scope": "openid read:users"}})
            );
        } else {
            assert_eq!(answer["principalId"], "alice");
            assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
        }
    }

    // A valid token without the scope: Deny.
    let unscoped = issuer.token("bob", json!({"scope": "openid"}));
    let (ok, stdout, stderr) = invoke(&dir, port, &event(REST_TOKEN, &unscoped)).await;
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["principalId"], "bob");
    assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Deny");

    // An invalid token: the invocation fails with exactly `Unauthorized`.
    let expired = event(REST_TOKEN, &issuer.token("bob", json!({"exp": now() - 60})));
    let (ok, _, stderr) = invoke(&dir, port, &expired).await;
    assert!(!ok);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
    let error = invoke_http(port, &expired).await;
    assert_eq!(error["errorMessage"], "Unauthorized", "{error}");
    assert_eq!(error["errorType"], "Unauthorized", "{error}");

    // Keys were fetched once for all of these invocations.
    assert_eq!(issuer.server.jwks_fetches(), 1);
}
