//! `jwtgate issuer` as an MCP authorization server for the real MCP SDK client
//! (`@modelcontextprotocol/sdk`, pinned in `crates/cli/e2e/package.json`): the SDK's own
//! `discoverAuthorizationServerMetadata`, `registerClient`, `startAuthorization` and
//! `exchangeAuthorization` run unchanged in `e2e/mcp-auth-client.mjs` against the binary, once
//! with dynamic client registration and once with a Client ID Metadata Document served on a
//! loopback port. The access token they get is for the MCP server's canonical URI alone, and
//! `jwtgate verify` accepts it for that audience and refuses it for another.
//!
//! Fails — never skips — when Node or the npm packages are missing (`npm ci` in `crates/cli/e2e`;
//! `bash scripts/test` does it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_test_support::free_port;
use serde_json::Value;
use std::process::{Command, Output};

mod e2e_support;

use e2e_support::{e2e_dir, require_node_and_sdk, IssuerProcess};

fn node_client(issuer: &str, resource: &str, mode: &str) -> Value {
    let output = Command::new("node")
        .arg("mcp-auth-client.mjs")
        .args([issuer, resource, mode])
        .current_dir(e2e_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node mcp-auth-client.mjs {mode} failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&jwtgate_core::internal::base64url::decode(payload.as_bytes()).unwrap())
        .unwrap()
}

fn verify(issuer: &str, audience: &str, token: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args([
            "verify",
            "--issuer",
            issuer,
            "--audience",
            audience,
            "--scope",
            "mcp:use",
            "--format",
            "json",
            token,
        ])
        .output()
        .unwrap()
}

#[test]
fn the_mcp_sdk_client_completes_its_oauth_flow_against_the_issuer() {
    require_node_and_sdk();
    // The MCP server's canonical URI is known only now (a free port), so the test writes the
    // issuer's configuration with it.
    let resource = format!("http://127.0.0.1:{}/mcp", free_port());
    let other = format!("http://127.0.0.1:{}/mcp", free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("issuer.toml");
    std::fs::write(
        &config,
        format!(
            r#"[issuer]
allow_loopback_client_metadata = true

[[apis]]
identifier = "{resource}"
permissions = ["mcp:use"]
rbac = false

[[apis]]
identifier = "{other}"
permissions = ["mcp:use"]
rbac = false
"#
        ),
    )
    .unwrap();
    let issuer = IssuerProcess::start(&config);

    for mode in ["dcr", "cimd"] {
        let result = node_client(&issuer.url, &resource, mode);
        assert_eq!(result["metadata"]["issuer"], issuer.url.as_str());
        let client_id = result["client_id"].as_str().unwrap();
        match mode {
            "dcr" => assert!(client_id.starts_with("dcr-"), "{client_id}"),
            _ => assert!(
                client_id.starts_with("http://127.0.0.1:")
                    && client_id.ends_with("/oauth/client.json"),
                "{client_id}"
            ),
        }
        let tokens = &result["tokens"];
        assert_eq!(tokens["token_type"], "Bearer", "{mode}");
        assert_eq!(tokens["scope"], "mcp:use offline_access", "{mode}");
        let access = tokens["access_token"].as_str().unwrap();
        let claims = claims(access);
        assert_eq!(
            claims["aud"],
            resource.as_str(),
            "{mode}: aud is the resource"
        );
        assert_eq!(claims["azp"], client_id);
        assert_eq!(claims["sub"], "jwtgate|alice");
        // The SDK's refresh, with the same resource: a rotated refresh token, and an access token
        // for the resource alone (RS256 without jti: the same bytes within the same second).
        let refreshed = &result["refreshed"];
        let renewed = refreshed["access_token"].as_str().unwrap();
        assert_eq!(self::claims(renewed)["aud"], resource.as_str(), "{mode}");
        assert_ne!(
            refreshed["refresh_token"], tokens["refresh_token"],
            "{mode}"
        );

        let accepted = verify(&issuer.url, &resource, access);
        assert!(
            accepted.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&accepted.stdout)
        );
        let refused = verify(&issuer.url, &other, access);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{mode}: a token for {resource} must not pass for {other}"
        );
    }
}
