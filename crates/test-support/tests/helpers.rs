//! The fixtures added for the suites of several crates: a DPoP client's token is bound to its key
//! and its proofs name the request; certificate thumbprints and nginx's escaped PEM are what the
//! RFCs and nginx say; a recipe with a placeholder left over is refused; a process that exits
//! before listening is reported with its log; the echoing upstream records exactly what the raw
//! client sent, repeated and folded header spellings included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::dpop::{access_token_hash, key_thumbprint};
use jwtgate_core::internal::base64url;
use jwtgate_test_support::certificates::{escaped_pem, x5t};
use jwtgate_test_support::process::Running;
use jwtgate_test_support::recipes::render;
use jwtgate_test_support::upstream::{folded_values, header_values, start_echo_upstream};
use jwtgate_test_support::wire::send;
use jwtgate_test_support::{DpopClient, Issuer};
use serde_json::{json, Value};

/// The JSON of a compact JWS's `index`-th part.
fn part(jws: &str, index: usize) -> Value {
    let text = jws.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64url::decode(text.as_bytes()).unwrap()).unwrap()
}

#[test]
fn a_dpop_clients_token_is_bound_to_its_key_and_its_proofs_name_the_request() {
    let issuer = Issuer::new();
    let client = DpopClient::with_claims(&issuer, json!({"scope": "read:users"}));
    let claims = part(client.token(), 1);
    assert_eq!(
        claims["cnf"]["jkt"],
        key_thumbprint(client.key()).unwrap().as_str()
    );
    assert_eq!(claims["scope"], "read:users");
    assert_eq!(client.authorization(), format!("DPoP {}", client.token()));

    let proof = client.proof("POST", "https://api.example/users", "proof-1", Some("n-1"));
    let header = part(&proof, 0);
    assert_eq!(header["typ"], "dpop+jwt");
    let public = client.key().public_jwk();
    for member in ["kty", "crv", "x", "y"] {
        assert_eq!(header["jwk"][member], public[member], "{member}");
    }
    let claims = part(&proof, 1);
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://api.example/users");
    assert_eq!(claims["jti"], "proof-1");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(
        claims["ath"],
        access_token_hash(client.token().as_bytes()).as_str()
    );
    let without_nonce = part(&client.proof("GET", "https://a/", "proof-2", None), 1);
    assert!(without_nonce.get("nonce").is_none(), "{without_nonce}");
}

#[test]
fn thumbprints_and_escaped_certificates_are_the_standard_ones() {
    // RFC 8705 x5t#S256 of empty input: the base64url SHA-256 of nothing.
    assert_eq!(x5t(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    // nginx's $ssl_client_escaped_cert: everything but letters and digits percent-encoded.
    assert_eq!(
        escaped_pem("-----BEGIN X-----\nAb+/9=\n"),
        "%2D%2D%2D%2D%2DBEGIN%20X%2D%2D%2D%2D%2D%0AAb%2B%2F9%3D%0A"
    );
}

#[test]
#[should_panic(expected = "placeholders not substituted")]
fn a_recipe_placeholder_left_over_fails_the_test() {
    render("listen @LISTEN@ to @UPSTREAM@", &[("@LISTEN@", "x".into())]);
}

#[test]
#[should_panic(expected = "has no @MISSING@ placeholder")]
fn a_value_for_a_placeholder_the_recipe_lacks_fails_the_test() {
    render("listen @LISTEN@", &[("@MISSING@", "x".into())]);
}

#[test]
fn a_process_that_exits_before_listening_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "echo address already in use; exit 3"]);
    let mut running = Running::spawn("sh", command, dir.path().join("sh.log"));
    let addr = jwtgate_test_support::process::free_loopback_addr();
    let error = runtime
        .block_on(running.wait_until_listening(addr))
        .unwrap_err();
    assert!(error.contains("sh exited"), "{error}");
    assert!(error.contains("address already in use"), "{error}");
}

#[test]
fn the_upstream_records_what_the_raw_client_sent() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (addr, seen) = start_echo_upstream().await;
        let reply = send(
            addr,
            "GET",
            "/a/../b?x=%2e",
            &[("X-Auth-Subject", "one"), ("x_auth_subject", "two")],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(seen.count(), 1);
        let record = reply.echoed();
        assert_eq!(seen.all(), std::slice::from_ref(&record));
        assert_eq!(record["method"], "GET");
        assert_eq!(record["uri"], "/a/../b?x=%2e");
        assert_eq!(header_values(&record, "x-auth-subject"), ["one"]);
        assert_eq!(folded_values(&record, "X-Auth-Subject"), ["one", "two"]);
        assert_eq!(reply.one("content-type"), Some("application/json"));
    });
}
