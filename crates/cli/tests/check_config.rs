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

#[test]
fn templates_route_policies_and_conditions_in_both_modes() {
    let text = r#"
[[issuers]]
issuer = "https://login.microsoftonline.com/{tenant}/v2.0"
tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["api://orders"]
claims = { email_verified = true }

[[routes]]
methods = ["GET"]
path = "/orders"
audiences = ["api://orders-v2"]
issuers = ["https://login.microsoftonline.com/{tenant}/v2.0"]
when = 'claims.tid == "72f988bf-86f1-41af-91ab-2d7cd011db47"'
"#;
    for extra in [&[][..], &["--lambda"][..]] {
        let (code, out, err) = check(text, extra);
        assert_eq!(code, 0, "{extra:?}: {err}");
        assert!(out.contains("tenants = ["), "{out}");
        assert!(out.contains("when = "), "{out}");
        let broken = text.replace("claims.tid ==", "lookup(claims.tid) ==");
        let (code, _, err) = check(&broken, extra);
        assert_eq!(code, 2, "{extra:?}");
        assert!(
            err.contains("`routes[0].when`") && err.contains("\"lookup\""),
            "{err}"
        );
        let no_tenants = text.replace("tenants = [\"72f988bf-86f1-41af-91ab-2d7cd011db47\"]\n", "");
        let (code, _, err) = check(&no_tenants, extra);
        assert_eq!(code, 2, "{extra:?}");
        assert!(err.contains("`issuers[0].tenants`"), "{err}");
    }
}

#[test]
fn a_token_authorizer_cannot_carry_dpop_proofs() {
    // Default `[dpop]` (allowed): valid, with a note that DPoP-bound tokens are refused.
    let (code, out, err) = check(SHARED, &["--token-authorizer"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("# note: [dpop] is \"allowed\": as a TOKEN authorizer"),
        "{out}"
    );
    // Off: nothing to say.
    let off = format!("{SHARED}\n[dpop]\nmode = \"off\"\n");
    let (code, out, err) = check(&off, &["--token-authorizer"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("# note"), "{out}");
    // Required anywhere: an error naming the key.
    let required = format!("{SHARED}\n[dpop]\nmode = \"required\"\n");
    let (code, _, err) = check(&required, &["--token-authorizer"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`dpop.mode`")
            && err.contains("TOKEN authorizer's event carries only the token"),
        "{err}"
    );
    let route = SHARED.replace(
        "scopes = [\"read:users\"]",
        "scopes = [\"read:users\"]\ndpop = \"required\"",
    );
    let (code, _, err) = check(&route, &["--token-authorizer"]);
    assert_eq!(code, 2);
    assert!(err.contains("`routes[0].dpop`"), "{err}");
    // As a REQUEST authorizer the same file is fine.
    let (code, _, err) = check(&required, &["--lambda"]);
    assert_eq!(code, 0, "{err}");
}
