//! The `jwtgate` binary as users run it: exit codes, the single-line JSON verdict on stdout,
//! warnings on stderr, stdin and `Bearer ` handling, and the README's sample command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ISS: &str = "https://tenant.example.auth0.com/";
const AUD: &str = "https://api.example.com/";
const NOW: i64 = 1_800_000_000;

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(Algorithm::RS256, "k1").unwrap();
        let other = SigningKey::generate(Algorithm::ES256, "k2").unwrap();
        let jwks = json!({"keys": [other.public_jwk(), key.public_jwk(), {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
        Fixture { dir, key }
    }

    fn jwks(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    fn token(&self, claims: Value) -> String {
        self.key.sign(&Map::new(), &claims).unwrap()
    }

    fn claims(&self) -> Value {
        json!({"iss": ISS, "aud": [AUD], "sub": "auth0|alice", "exp": NOW + 600, "iat": NOW - 10,
               "scope": "openid read:users"})
    }

    fn verify(&self, extra: &[&str], token: &str) -> Output {
        let jwks = self.jwks();
        let now = NOW.to_string();
        let mut args = verify_args(jwks.to_str().unwrap(), &["--now", now.as_str()]);
        args.extend(extra);
        args.push(token);
        run(&args, None)
    }
}

/// `jwtgate verify --jwks JWKS --issuer ISS --audience AUD` and `rest`.
fn verify_args<'a>(jwks: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["verify", "--jwks", jwks, "--issuer", ISS, "--audience", AUD];
    args.extend(rest);
    args
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The contract: exactly one JSON object, on one line, and nothing else on stdout.
fn verdict(output: &Output) -> Value {
    let text = stdout(output);
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "not one line: {text:?}"
    );
    serde_json::from_str(text.trim_end()).unwrap()
}

#[test]
fn accepts_a_valid_token_with_exit_0_and_the_claims() {
    let f = Fixture::new();
    let claims = f.claims();
    let out = f.verify(
        &["--format", "json", "--scope", "read:users"],
        &f.token(claims.clone()),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = verdict(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["claims"], claims);
    assert_eq!(v.as_object().unwrap().len(), 2);
    // The skipped oct key is reported on stderr, never on stdout.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("symmetric (oct) keys are never taken from a key set"),
        "{err}"
    );
}

#[test]
fn rejections_give_the_rfc6750_code_and_exit_1() {
    let f = Fixture::new();
    let cases: Vec<(Value, Vec<&str>, &str, &str)> = vec![
        (json!({"exp": NOW - 5}), vec![], "invalid_token", "expired"),
        (
            json!({"aud": "someone-else"}),
            vec![],
            "invalid_token",
            "audience",
        ),
        (
            json!({"iss": "https://tenant.example.auth0.com"}),
            vec![],
            "invalid_token",
            "trailing slash",
        ),
        (
            json!({}),
            vec!["--scope", "write:users"],
            "insufficient_scope",
            "write:users",
        ),
        (
            json!({"scope": "read:users2"}),
            vec!["--scope", "read:users"],
            "insufficient_scope",
            "read:users",
        ),
        (
            json!({"nonce": "n", "aud": "client-1", "azp": "client-1"}),
            vec![],
            "invalid_token",
            "ID token",
        ),
    ];
    for (changes, extra, code, words) in cases {
        let mut claims = f.claims();
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut args = vec!["--format", "json"];
        args.extend(extra);
        let out = f.verify(&args, &f.token(claims));
        assert_eq!(out.status.code(), Some(1));
        let v = verdict(&out);
        assert_eq!(v["valid"], false);
        assert_eq!(v["error"], code);
        assert!(v["description"].as_str().unwrap().contains(words), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 3);
    }
}

#[test]
fn empty_tokens_are_invalid_request() {
    let f = Fixture::new();
    for token in ["", "Bearer ", "bearer"] {
        let out = f.verify(&["--format", "json"], token);
        assert_eq!(out.status.code(), Some(1), "{token:?}");
        assert_eq!(verdict(&out)["error"], "invalid_request");
    }
}

#[test]
fn bearer_prefix_and_stdin() {
    let f = Fixture::new();
    let token = f.token(f.claims());
    assert_eq!(
        f.verify(&[], &format!("Bearer {token}")).status.code(),
        Some(0)
    );
    assert_eq!(
        f.verify(&[], &format!("BEARER {token}")).status.code(),
        Some(0)
    );
    let jwks = f.jwks();
    let now = NOW.to_string();
    let args = verify_args(
        jwks.to_str().unwrap(),
        &["--now", &now, "--format", "json", "-"],
    );
    // Only one trailing newline is ignored; nothing else is trimmed.
    for (stdin, code) in [
        (format!("{token}\n"), 0),
        (format!("Bearer {token}\r\n"), 0),
        (format!("{token}\n\n"), 1),
        (format!(" {token}"), 1),
    ] {
        let out = run(&args, Some(stdin.as_bytes()));
        assert_eq!(out.status.code(), Some(code), "{stdin:?}");
        if code == 1 {
            assert_eq!(verdict(&out)["error"], "invalid_token", "{stdin:?}");
        }
    }
}

#[test]
fn configuration_errors_exit_2_with_nothing_on_stdout() {
    let f = Fixture::new();
    let token = f.token(f.claims());
    let missing = f.dir.path().join("missing.json");
    let bad = f.dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let jwks = f.jwks();
    let jwks = jwks.to_str().unwrap();
    let json_token = ["--format", "json", token.as_str()];
    for args in [
        verify_args(missing.to_str().unwrap(), &json_token),
        verify_args(bad.to_str().unwrap(), &json_token),
        // No key source: discovery from the issuer, unreachable here (loopback, closed port).
        vec![
            "verify",
            "--issuer",
            "http://127.0.0.1:9/",
            "--audience",
            AUD,
            "--format",
            "json",
            token.as_str(),
        ],
        vec!["verify", "--jwks", jwks, "--audience", AUD, token.as_str()],
        verify_args(jwks, &["--alg", "none", token.as_str()]),
        verify_args(jwks, &["--leeway", "x", token.as_str()]),
    ] {
        let out = run(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn leeway_and_now() {
    let f = Fixture::new();
    let mut claims = f.claims();
    claims["exp"] = json!(NOW);
    let token = f.token(claims);
    assert_eq!(f.verify(&[], &token).status.code(), Some(1));
    assert_eq!(f.verify(&["--leeway", "1"], &token).status.code(), Some(0));
}

#[test]
fn algorithm_allowlist() {
    let f = Fixture::new();
    let token = f.token(f.claims());
    let out = f.verify(&["--alg", "ES256", "--format", "json"], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(verdict(&out)["description"]
        .as_str()
        .unwrap()
        .contains("RS256 is not allowed"));
    assert_eq!(f.verify(&["--alg", "RS256"], &token).status.code(), Some(0));
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    jwtgate_core::sign::sign_hmac(
        Algorithm::HS256,
        secret,
        br#"{"alg":"HS256","typ":"JWT"}"#,
        claims.to_string().as_bytes(),
    )
    .unwrap()
}

#[test]
fn hmac_needs_an_explicit_secret_file() {
    let f = Fixture::new();
    let secret = b"0123456789abcdef0123456789abcdef";
    let token = hs256(secret, &f.claims());
    // The oct key in the JWKS is never used.
    assert_eq!(
        f.verify(&["--format", "json"], &token).status.code(),
        Some(1)
    );
    let path = f.dir.path().join("secret");
    std::fs::write(&path, [&secret[..], b"\n"].concat()).unwrap();
    let out = f.verify(&["--secret-file", path.to_str().unwrap()], &token);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let short = f.dir.path().join("short");
    std::fs::write(&short, b"too short").unwrap();
    assert_eq!(
        f.verify(&["--secret-file", short.to_str().unwrap()], &token)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn decode_shows_any_token_and_names_opaque_and_jwe() {
    let f = Fixture::new();
    let mut claims = f.claims();
    claims["exp"] = json!(NOW - 120);
    let token = f.token(claims);
    let now = NOW.to_string();
    let out = run(&["decode", "--now", &now, &token], None);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("\"sub\": \"auth0|alice\""), "{text}");
    assert!(
        text.contains("expired 2 min ago") || text.contains("expired 120 s ago"),
        "{text}"
    );
    assert!(text.contains("NOT verified"));

    let out = run(&["decode", "--format", "json", "--now", &now, &token], None);
    let v = verdict(&out);
    assert_eq!(v["kind"], "jws");
    assert_eq!(v["claims"]["sub"], "auth0|alice");
    assert_eq!(v["verified"], false);

    let opaque = run(
        &["decode", "OpaqueAccessTokenFromAuth0WithoutAudience"],
        None,
    );
    assert_eq!(opaque.status.code(), Some(1));
    assert!(stdout(&opaque).contains("opaque"));
    assert!(stdout(&opaque).contains("audience"));

    let jwe_header = jwtgate_core::internal::base64url::encode(
        br#"{"alg":"dir","enc":"A256GCM","iss":"https://t/"}"#,
    );
    let jwe = format!("{jwe_header}..aXY.Y2lwaGVy.dGFn");
    let out = run(&["decode", &jwe], None);
    assert!(stdout(&out).contains("JWE"), "{}", stdout(&out));

    // An unsigned token is still shown, with a note.
    let none = format!(
        "{}.{}.",
        jwtgate_core::internal::base64url::encode(br#"{"alg":"none"}"#),
        jwtgate_core::internal::base64url::encode(b"{\"sub\":\"x\"}")
    );
    let out = run(&["decode", &none], None);
    assert!(
        stdout(&out).contains("unsigned tokens are never accepted"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_lists_every_check_plainly_when_piped() {
    let f = Fixture::new();
    let mut claims = f.claims();
    claims["aud"] = json!("other");
    let token = f.token(claims);
    let jwks = f.jwks();
    let now = NOW.to_string();
    let out = run(
        &[
            "explain",
            "--jwks",
            jwks.to_str().unwrap(),
            "--issuer",
            ISS,
            "--audience",
            AUD,
            "--now",
            &now,
            "--scope",
            "read:users",
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "colour when piped");
    for line in [
        "PASS signature",
        "PASS issuer",
        "FAIL audience",
        "PASS expiry (exp)",
        "PASS scopes",
        "=> rejected: invalid_token",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("skipped: symmetric (oct)"));

    let out = run(
        &[
            "explain",
            "--format",
            "json",
            "--jwks",
            jwks.to_str().unwrap(),
            "--issuer",
            ISS,
            "--audience",
            AUD,
            "--now",
            &now,
            &token,
        ],
        None,
    );
    let v = verdict(&out);
    assert_eq!(v["valid"], false);
    let failed: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "fail")
        .map(|s| s["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["audience"]);
}

/// The README's first command must keep working against the committed samples.
#[test]
fn readme_sample_command_works() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let token = std::fs::read(root.join("examples/access-token.jwt")).unwrap();
    let jwks = root.join("examples/jwks.json");
    let args = [
        "verify",
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        "https://dev-jwtgate.eu.auth0.com/",
        "--audience",
        "https://api.jwtgate.local/",
        "--scope",
        "read:users",
        "-",
    ];
    let out = run(&args, Some(&token));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id_token = std::fs::read(root.join("examples/id-token.jwt")).unwrap();
    let out = run(&args, Some(&id_token));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("looks like an ID token"));
}
