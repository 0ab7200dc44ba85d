//! `jwtgate explain` and `verify` with `--claim` and `--when`: each condition's result on its own
//! line (or in the JSON's `conditions`), a failed or unevaluable condition refuses with
//! `insufficient_scope`, and an unusable condition is a usage error (exit 2).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_test_support::Issuer;
use serde_json::{json, Value};
use std::process::{Command, Output};

fn run(issuer: &Issuer, args: &[&str], token: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .args(["--jwks", issuer.jwks_file().to_str().unwrap()])
        .args(["--issuer", issuer.issuer(), "--audience", issuer.audience()])
        .arg(token)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn explain_shows_each_condition() {
    let issuer = Issuer::new();
    let token = issuer.token(json!({"email_verified": true, "org_id": "acme", "roles": ["user"]}));
    let conditions = [
        "--claim",
        "email_verified=true",
        "--claim",
        r#"org_id=["acme","other"]"#,
        "--when",
        r#"claims.org_id == "acme" && "admin" in claims.roles"#,
    ];
    let mut args = vec!["explain"];
    args.extend(conditions);
    let out = run(&issuer, &args, &token);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PASS condition claims.email_verified == true"),
        "{text}"
    );
    assert!(
        text.contains(r#"PASS condition claims.org_id in ["acme", "other"]"#),
        "{text}"
    );
    assert!(
        text.contains("FAIL condition when `claims.org_id"),
        "{text}"
    );
    assert!(text.contains("=> rejected: insufficient_scope"), "{text}");

    let admin = issuer.token(json!({"email_verified": true, "org_id": "acme", "roles": ["admin"]}));
    let mut json_args = vec!["explain", "--format", "json"];
    json_args.extend(conditions);
    let out = run(&issuer, &json_args, &admin);
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{verdict}");
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["conditions"].as_array().map(Vec::len), Some(3));

    let out = run(
        &issuer,
        &["verify", "--format", "json", "--when", "claims.level > 2"],
        &admin,
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict["error"], "insufficient_scope");
    assert!(
        verdict["description"]
            .as_str()
            .unwrap()
            .contains("evaluation error"),
        "{verdict}"
    );
}

#[test]
fn unusable_conditions_are_usage_errors() {
    let issuer = Issuer::new();
    let token = issuer.token(json!({}));
    for args in [
        vec!["explain", "--when", "nosuch(claims.a)"],
        vec!["explain", "--when", "claims.a =="],
        vec!["verify", "--claim", "a={\"b\":1}"],
        vec!["verify", "--claim", "no-equals-sign"],
    ] {
        let out = run(&issuer, &args, &token);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--when") || stderr.contains("--claim"),
            "{stderr}"
        );
    }
}
