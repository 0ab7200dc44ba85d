//! `jwtgate issuer` and `jwtgate mint` as a user runs them: the binary serves on a free loopback
//! port, the operator commands rotate keys and break the JWKS through the admin path, and
//! `jwtgate verify` (by discovery) accepts what `jwtgate mint` prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use e2e_support::IssuerProcess;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

const API: &str = "https://api.jwtgate.local/";

fn jwtgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

/// `jwtgate issuer` with `extra` arguments; its banner lists the demo users.
fn start_issuer(extra: &[&str]) -> IssuerProcess {
    let args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    let issuer = IssuerProcess::start_with(&args);
    let users = issuer.line_starting_with("users");
    assert!(users.ends_with("alice, bob (or type any name)"), "{users}");
    issuer
}

/// `jwtgate mint --url URL` and `args`.
fn mint(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["mint", "--url", url];
    all.extend(args);
    jwtgate(&all)
}

fn verify(url: &str, token: &str) -> Output {
    jwtgate(&[
        "verify",
        "--issuer",
        url,
        "--audience",
        API,
        "--scope",
        "read:users",
        "--format",
        "json",
        token,
    ])
}

#[test]
fn issuer_mint_and_operator_commands() {
    let issuer = start_issuer(&["--ephemeral"]);
    let url = issuer.url.as_str();

    let minted = mint(
        url,
        &[
            "--user",
            "alice",
            "--audience",
            API,
            "--scope",
            "openid",
            "--scope",
            "read:users",
        ],
    );
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = stdout(&minted);
    assert_eq!(token.split('.').count(), 3);
    let verdict = verify(url, &token);
    assert!(verdict.status.success(), "{}", stdout(&verdict));
    assert!(stdout(&verdict).starts_with("{\"valid\":true"));

    // bob's token is refused for the scope; the ID token is refused with the hint.
    let bob = stdout(&mint(url, &["--user", "bob", "--audience", API]));
    assert_eq!(verify(url, &bob).status.code(), Some(1));
    let id = stdout(&mint(
        url,
        &["--user", "alice", "--audience", API, "--id-token"],
    ));
    let verdict = verify(url, &id);
    assert_eq!(verdict.status.code(), Some(1));
    assert!(
        stdout(&verdict).contains("looks like an ID token"),
        "{}",
        stdout(&verdict)
    );
    let json = stdout(&mint(url, &["--audience", API, "--json"]));
    let response: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(response["token_type"], "Bearer");

    // Key rotation through the admin path.
    let listed = jwtgate(&["issuer", "keys", "list", "--url", url]);
    assert!(
        stdout(&listed).contains("current (signing)"),
        "{}",
        stdout(&listed)
    );
    let published = jwtgate(&["issuer", "keys", "publish-next", "--url", url]);
    assert!(
        stdout(&published).starts_with("published: rs256-"),
        "{}",
        stdout(&published)
    );
    assert!(stdout(&published).contains("next (published, not signing yet)"));
    let activated = jwtgate(&["issuer", "keys", "activate", "--grace", "120", "--url", url]);
    assert!(
        stdout(&activated).contains("retiring (published until"),
        "{}",
        stdout(&activated)
    );
    let rotated = stdout(&mint(url, &["--user", "alice", "--audience", API]));
    assert!(verify(url, &rotated).status.success());
    assert!(
        verify(url, &token).status.success(),
        "old key still published"
    );
    let retired = jwtgate(&["issuer", "keys", "retire", "--url", url, "--json"]);
    let retired: serde_json::Value = serde_json::from_str(&stdout(&retired)).unwrap();
    assert_eq!(retired["retired"].as_array().unwrap().len(), 1);
    assert_eq!(verify(url, &token).status.code(), Some(1), "old key gone");

    // JWKS failure on command: a fresh verifier cannot get keys (a configuration error, exit 2).
    let failed = jwtgate(&[
        "issuer",
        "fail-jwks",
        "500",
        "--seconds",
        "30",
        "--url",
        url,
    ]);
    assert!(
        failed.status.success(),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(verify(url, &rotated).status.code(), Some(2));
    assert!(jwtgate(&["issuer", "fail-jwks", "off", "--url", url])
        .status
        .success());
    assert!(verify(url, &rotated).status.success());

    // Refusals and usage errors.
    let refused = mint(
        url,
        &["--user", "alice", "--audience", "https://nope.example/"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown audience"));
    let remote = jwtgate(&["issuer", "keys", "list", "--url", "http://192.0.2.1:4400/"]);
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("loopback"));
    assert_eq!(
        jwtgate(&["issuer", "fail-jwks", "teapot", "--url", url])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn offline_mint_uses_the_state_directory_the_issuer_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    // Mint first (keys are created), then start the issuer on the same directory.
    let issuer_probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = issuer_probe.local_addr().unwrap().port();
    drop(issuer_probe);
    let public = format!("http://127.0.0.1:{port}/");
    let minted = jwtgate(&[
        "mint",
        "--state-dir",
        state,
        "--public-url",
        &public,
        "--user",
        "alice",
        "--audience",
        API,
    ]);
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    assert!(Path::new(state).join("keys.json").exists());
    let token = stdout(&minted);

    let listen = format!("127.0.0.1:{port}");
    let issuer = IssuerProcess::start_on(&listen, &[OsStr::new("--state-dir"), OsStr::new(state)]);
    assert_eq!(issuer.url, public);
    let verdict = verify(&public, &token);
    drop(issuer);
    assert!(verdict.status.success(), "{}", stdout(&verdict));
}

#[test]
fn default_config_and_bad_config() {
    let printed = jwtgate(&["issuer", "default-config"]);
    assert!(printed.status.success());
    assert!(stdout(&printed).contains("secret = \"jwtgate-m2m-secret\""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issuer.toml");
    std::fs::write(
        &file,
        "[[apis]]\nidentifier = \"x\"\nsigning_alg = \"HS256\"\n",
    )
    .unwrap();
    let output = jwtgate(&[
        "issuer",
        "--config",
        file.to_str().unwrap(),
        "--ephemeral",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("symmetric"));
    let both = jwtgate(&["issuer", "--ephemeral", "--state-dir", "x"]);
    assert_eq!(both.status.code(), Some(2));
}
