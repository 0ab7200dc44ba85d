//! Measuring what verified tokens really cost in memory: the process's resident set, and the one
//! Auth0-shaped access token those measurements use (the token cache's documented default,
//! `DEFAULT_MAX_BYTES`, is sized for it), with a verifier that accepts it.

use jwtgate_core::{KeySet, Policy, SigningKey, Verifier};
use serde_json::{json, Value};

/// The issuer of the Auth0-shaped tokens (an Auth0 tenant's URL, trailing slash included).
pub const AUTH0_ISSUER: &str = "https://tenant.eu.auth0.com/";
/// The API the Auth0-shaped tokens are for (their first audience).
pub const AUTH0_AUDIENCE: &str = "https://api.example.com/";

/// The resident set (`VmRSS`) of this process, in bytes (Linux).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// The claims of the `i`-th Auth0-shaped access token issued at `now`, valid a day: a 30-byte
/// `sub`, the API and the tenant's `userinfo` as audiences, `azp`, four scopes, two
/// permissions and a 22-byte `jti`, as Auth0 issues them for an API with RBAC.
pub fn auth0_claims(i: usize, now: i64) -> Value {
    json!({
        "iss": AUTH0_ISSUER,
        "sub": format!("auth0|{i:024}"),
        "aud": [AUTH0_AUDIENCE, format!("{AUTH0_ISSUER}userinfo")],
        "iat": now,
        "exp": now + 86_400,
        "azp": "Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF",
        "scope": "openid profile email read:users",
        "permissions": ["read:users", "write:users"],
        "jti": format!("{i:022}"),
    })
}

/// `key` signing the `i`-th [`auth0_claims`] token issued at `now`.
pub fn auth0_token(key: &SigningKey, i: usize, now: i64) -> String {
    key.sign(&serde_json::Map::new(), &auth0_claims(i, now))
        .expect("a signed token")
}

/// A verifier for [`AUTH0_ISSUER`] and [`AUTH0_AUDIENCE`] that knows only `key`.
pub fn auth0_verifier(key: &SigningKey) -> Verifier {
    let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
    let policy = Policy::builder()
        .issuer(AUTH0_ISSUER)
        .audience(AUTH0_AUDIENCE)
        .build()
        .expect("a policy");
    Verifier::new(
        policy,
        KeySet::from_json(jwks.as_bytes()).expect("the key's JWKS"),
    )
}
