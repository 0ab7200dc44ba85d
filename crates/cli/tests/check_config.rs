//! `jwtgate check-config` through the binary: one command validates both modes' files — the
//! gateway's, and the Lambda authorizer's (a file with a `[lambda]` section, or `--lambda`) —
//! with exit 0 and the effective configuration, or exit 2 and the message naming the file and
//! key that is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const SHARED: &str = r#"
[[issuers]]
issuer = "https://tenant.example/"
audiences = ["https://api.example/"]
jwks_url = "https://tenant.example/.well-known/jwks.json"

[[routes]]
methods = ["GET"]
path = "/api/users"
scopes = ["read:users"]

[paths]
allow_semicolon = true
"#;

/// Runs `jwtgate check-config` on `text` (written to a file) with `extra` arguments: the exit
/// code, stdout and stderr.
fn check(text: &str, extra: &[&str]) -> (i32, String, String) {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .arg("check-config")
        .arg(file.path())
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_same_sections_validate_for_both_modes() {
    let (code, out, err) = check(SHARED, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid gateway configuration"), "{out}");
    assert!(out.contains("allow_semicolon = true"), "{out}");
    assert!(out.contains("[server]"), "{out}");

    let (code, out, err) = check(SHARED, &["--lambda"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid Lambda authorizer configuration"),
        "{out}"
    );
    assert!(out.contains("[lambda]"), "{out}");

    let lambda = format!("{SHARED}\n[lambda]\ncontext_claims = [\"email\"]\n");
    let (code, out, err) = check(&lambda, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid Lambda authorizer configuration"),
        "{out}"
    );
}

#[test]
fn mistakes_name_the_file_and_key_in_either_mode() {
    let gateway = format!("{SHARED}\n[server]\nforward_auth_invalid_request_status = 500\n");
    let (code, _, err) = check(&gateway, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`server.forward_auth_invalid_request_status`: 500 is not 400, 401 or 403"),
        "{err}"
    );

    let lambda = format!("{SHARED}\n[lambda]\npolicy_resource = \"wildcard\"\n");
    let (code, _, err) = check(&lambda, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`lambda.policy_resource`"), "{err}");

    let typo = format!("{SHARED}\n[lambda]\npolicy = \"method\"\n");
    let (code, _, err) = check(&typo, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `policy`"), "{err}");

    let unmatched = format!("{SHARED}\n[lambda]\nunmatched = \"sometimes\"\n");
    let (code, _, err) = check(&unmatched, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unmatched"), "{err}");
}

#[test]
fn the_grpc_listener_is_checked() {
    let grpc = format!(
        "{SHARED}\n[server]\nlisten = \"127.0.0.1:9000\"\ngrpc_listen = \"127.0.0.1:9001\"\n"
    );
    let (code, out, err) = check(&grpc, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("grpc_listen = \"127.0.0.1:9001\""), "{out}");

    let same = format!(
        "{SHARED}\n[server]\nlisten = \"0.0.0.0:9000\"\ngrpc_listen = \"127.0.0.1:9000\"\n"
    );
    let (code, _, err) = check(&same, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`server.grpc_listen`"), "{err}");

    let bad = format!("{SHARED}\n[server]\ngrpc_listen = \"localhost\"\n");
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("grpc_listen"), "{err}");
}
