//! Regenerates the sample key set and tokens under `examples/` at the project root, used by the
//! README's first command and by the CLI tests: an Auth0-shaped access token, the matching ID
//! token (the classic mistake), an expired access token, and a JWKS with two keys.
//!
//! Run: `cargo run -p jwtgate-core --example mint_samples` (the keys are fresh each time; the
//! private keys are not kept).

#![allow(clippy::expect_used)]

use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

const ISSUER: &str = "https://dev-jwtgate.eu.auth0.com/";
const API: &str = "https://api.jwtgate.local/";
const CLIENT: &str = "Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF";
/// 2100-01-01T00:00:00Z: the samples stay valid so the README command always works.
const FAR_EXP: i64 = 4_102_444_800;
const ISSUED: i64 = 1_767_225_600;

fn main() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    std::fs::create_dir_all(&out).expect("create examples/");
    let current = SigningKey::generate(Algorithm::RS256, "jwtgate-sample-2026").expect("RSA key");
    let previous = SigningKey::generate(Algorithm::ES256, "jwtgate-sample-ec").expect("EC key");
    let jwks = json!({ "keys": [previous.public_jwk(), current.public_jwk()] });
    let header: Map<String, Value> = [("typ".to_owned(), json!("JWT"))].into_iter().collect();

    let access = |exp: i64| {
        json!({
            "iss": ISSUER,
            "sub": "auth0|6543f2a1b9c8d7e6f5a4b3c2",
            "aud": [API, format!("{ISSUER}userinfo")],
            "iat": ISSUED,
            "exp": exp,
            "scope": "openid profile email",
            "azp": CLIENT,
            "permissions": ["read:users"],
        })
    };
    let id_token = json!({
        "iss": ISSUER,
        "sub": "auth0|6543f2a1b9c8d7e6f5a4b3c2",
        "aud": CLIENT,
        "azp": CLIENT,
        "iat": ISSUED,
        "exp": FAR_EXP,
        "nonce": "bXlOb25jZVZhbHVl",
        "name": "Alice Example",
        "email": "alice@example.com",
        "sid": "k7S1c1qM2r0",
    });
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text + "\n").expect("write sample");
    };
    write(
        "jwks.json",
        serde_json::to_string_pretty(&jwks).expect("json"),
    );
    write(
        "access-token.jwt",
        current.sign(&header, &access(FAR_EXP)).expect("sign"),
    );
    write(
        "expired-access-token.jwt",
        current
            .sign(&header, &access(ISSUED + 86_400))
            .expect("sign"),
    );
    write(
        "id-token.jwt",
        current.sign(&header, &id_token).expect("sign"),
    );
    println!("wrote samples to {}", out.display());
}
