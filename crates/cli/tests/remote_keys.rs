//! `--jwks-url`, discovery (explicit and by default) and `jwtgate jwks`, against a small HTTP
//! server on loopback started by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const AUD: &str = "https://api.example.com/";
const NOW: i64 = 1_800_000_000;

/// Serves `/jwks` and `/.well-known/openid-configuration` until the test process ends.
struct Server {
    base: String,
    issuer_in_document: Arc<Mutex<String>>,
}

impl Server {
    fn start(jwks: Value) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer_in_document = Arc::new(Mutex::new(format!("{base}/")));
        let doc_issuer = issuer_in_document.clone();
        let jwks_uri = format!("{base}/jwks");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap_or_default();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_owned();
                let (status, body, extra) = match path.as_str() {
                    "/jwks" => (
                        "200 OK",
                        jwks.to_string(),
                        "Cache-Control: public, max-age=900\r\n",
                    ),
                    "/.well-known/openid-configuration" => (
                        "200 OK",
                        json!({"issuer": *doc_issuer.lock().unwrap(), "jwks_uri": jwks_uri})
                            .to_string(),
                        "",
                    ),
                    _ => ("404 Not Found", String::new(), ""),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Server {
            base,
            issuer_in_document,
        }
    }

    fn issuer(&self) -> String {
        format!("{}/", self.base)
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn setup() -> (Server, SigningKey) {
    let key = SigningKey::generate(Algorithm::ES256, "remote-1").unwrap();
    let server = Server::start(
        json!({"keys": [key.public_jwk(), {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}]}),
    );
    (server, key)
}

fn token(key: &SigningKey, issuer: &str) -> String {
    key.sign(
        &Map::new(),
        &json!({"iss": issuer, "aud": AUD, "exp": NOW + 60}),
    )
    .unwrap()
}

#[test]
fn verify_with_a_jwks_url() {
    let (server, key) = setup();
    let issuer = server.issuer();
    let url = format!("{}/jwks", server.base);
    let now = NOW.to_string();
    let out = run(&[
        "verify",
        "--jwks-url",
        &url,
        "--issuer",
        &issuer,
        "--audience",
        AUD,
        "--now",
        &now,
        "--format",
        "json",
        &token(&key, &issuer),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"use\" is \"enc\""), "{stderr}");
}

#[test]
fn discovery_explicit_and_by_default() {
    let (server, key) = setup();
    let issuer = server.issuer();
    let now = NOW.to_string();
    let token = token(&key, &issuer);
    let out = run(&[
        "verify",
        "--discover",
        "--issuer",
        &issuer,
        "--audience",
        AUD,
        "--now",
        &now,
        &token,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "explain",
        "--issuer",
        &issuer,
        "--audience",
        AUD,
        "--now",
        &now,
        &token,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("discovering the keys of"));

    // A discovery document for another issuer is a configuration error, not a verdict.
    *server.issuer_in_document.lock().unwrap() = "https://impostor.example/".into();
    let out = run(&[
        "verify",
        "--issuer",
        &issuer,
        "--audience",
        AUD,
        "--now",
        &now,
        "--format",
        "json",
        &token,
    ]);
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
    for target in [server.issuer(), format!("{}/jwks", server.base)] {
        let out = run(&["jwks", &target]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
