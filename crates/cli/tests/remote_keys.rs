//! `--jwks-url`, discovery (explicit and by default) and `jwtgate jwks`, against
//! jwtgate-test-support's JWKS and discovery server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::Algorithm;
use jwtgate_test_support::{Issuer, JwksServer};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::{Command, Output};

const AUD: &str = "https://api.example.com/";
const NOW: i64 = 1_800_000_000;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `jwtgate COMMAND --issuer ISSUER --audience AUD --now NOW` and `rest`.
fn run_at_now(command: &str, issuer: &str, rest: &[&str]) -> Output {
    let now = NOW.to_string();
    let mut args = vec![
        command,
        "--issuer",
        issuer,
        "--audience",
        AUD,
        "--now",
        &now,
    ];
    args.extend(rest);
    run(&args)
}

/// Fails, showing `shown` (stdout or stderr), unless `out` exited with `code`.
fn assert_exit(out: &Output, code: i32, shown: &[u8]) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(shown)
    );
}

/// An issuer (ES256, kid `remote-1`, dated [`NOW`]) whose JWKS also holds an encryption key,
/// served on loopback with `Cache-Control: public, max-age=900`.
fn setup() -> (JwksServer, Issuer) {
    let issuer = Issuer::new()
        .with_key(Algorithm::ES256, "remote-1")
        .with_audience(AUD)
        .with_jwk(json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}))
        .at(NOW);
    let server = JwksServer::start(&issuer.jwks());
    server.set_cache_control(Some("public, max-age=900"));
    (server, issuer)
}

/// A token from `key` naming `issuer`.
fn token(key: &Issuer, issuer: &str) -> String {
    key.token(json!({"iss": issuer}))
}

#[test]
fn verify_with_a_jwks_url() {
    let (server, key) = setup();
    let issuer = server.issuer();
    let url = server.jwks_url();
    let token = token(&key, &issuer);
    let out = run_at_now(
        "verify",
        &issuer,
        &["--jwks-url", &url, "--format", "json", &token],
    );
    assert_exit(&out, 0, &out.stderr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"use\" is \"enc\""), "{stderr}");
}

#[test]
fn discovery_explicit_and_by_default() {
    let (server, key) = setup();
    let issuer = server.issuer();
    let token = token(&key, &issuer);
    let out = run_at_now("verify", &issuer, &["--discover", &token]);
    assert_exit(&out, 0, &out.stderr);
    let out = run_at_now("explain", &issuer, &[&token]);
    assert_exit(&out, 0, &out.stdout);
    assert!(String::from_utf8_lossy(&out.stderr).contains("discovering the keys of"));

    // A discovery document for another issuer is a configuration error, not a verdict.
    server.set_document_issuer("https://impostor.example/");
    let out = run_at_now("verify", &issuer, &["--format", "json", &token]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("impostor"));
}

#[test]
fn unreachable_and_insecure_key_urls_are_configuration_errors() {
    let (_server, key) = setup();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", dead.local_addr().unwrap());
    drop(dead);
    let token = token(&key, "https://x/");
    for url in [url.as_str(), "http://keys.example.com/jwks"] {
        let out = run(&[
            "verify",
            "--jwks-url",
            url,
            "--issuer",
            "https://x/",
            "--audience",
            AUD,
            &token,
        ]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn jwks_lists_keys_with_status_and_cache_headers() {
    let (server, _key) = setup();
    for target in [server.issuer(), server.jwks_url()] {
        let out = run(&["jwks", &target]);
        assert_exit(&out, 0, &out.stderr);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("cache-control: public, max-age=900"),
            "{text}"
        );
        assert!(text.contains("kid remote-1"), "{text}");
        assert!(text.contains("EC P-256"), "{text}");
        assert!(text.contains("skipped: \"use\" is \"enc\""), "{text}");
        assert!(text.contains("2 keys, 1 usable"), "{text}");
    }
    let out = run(&["jwks", "--json", &server.issuer()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["keys"][0]["usable"], true);
    assert_eq!(v["keys"][1]["usable"], false);
    assert_eq!(v["cache_control"], "public, max-age=900");
}
