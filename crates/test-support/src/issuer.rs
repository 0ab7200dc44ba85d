//! The token issuer fixture: one generated signing key, an issuer URL and an audience; tokens
//! with sensible Auth0-shaped defaults, patched per test; the JWKS as JSON and as a file.

use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::OnceLock;

/// The default issuer URL (Auth0 style, with a trailing slash).
pub const ISSUER: &str = "https://tenant.example/";
/// The default audience (the API's identifier).
pub const AUDIENCE: &str = "https://api.example/";

/// An identity provider in a test: signs tokens and publishes the public key.
///
/// Defaults: an ES256 key with kid `k1`, [`ISSUER`], [`AUDIENCE`], the real clock.
#[derive(Debug)]
pub struct Issuer {
    key: SigningKey,
    issuer: String,
    audience: String,
    at: Option<i64>,
    extra_jwks: Vec<Value>,
    jwks_file: OnceLock<tempfile::NamedTempFile>,
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer::new()
    }
}

impl Issuer {
    /// An issuer with the defaults.
    pub fn new() -> Issuer {
        Issuer {
            key: generate(Algorithm::ES256, "k1"),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            at: None,
            extra_jwks: Vec::new(),
            jwks_file: OnceLock::new(),
        }
    }

    /// Signs with a fresh key of `alg` under `kid` instead.
    pub fn with_key(mut self, alg: Algorithm, kid: &str) -> Issuer {
        self.key = generate(alg, kid);
        self.jwks_file = OnceLock::new();
        self
    }

    /// Names itself `issuer` (the `iss` claim).
    pub fn with_issuer(mut self, issuer: &str) -> Issuer {
        self.issuer = issuer.to_owned();
        self
    }

    /// Issues tokens for `audience` (the `aud` claim).
    pub fn with_audience(mut self, audience: &str) -> Issuer {
        self.audience = audience.to_owned();
        self
    }

    /// Dates tokens from `now` (seconds since the epoch) instead of the real clock.
    pub fn at(mut self, now: i64) -> Issuer {
        self.at = Some(now);
        self
    }

    /// Also publishes `jwk` (another key, or a malformed one) in the JWKS, after its own.
    pub fn with_jwk(mut self, jwk: Value) -> Issuer {
        self.extra_jwks.push(jwk);
        self.jwks_file = OnceLock::new();
        self
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The issuer URL (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience (`aud`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// "Now" for this issuer's tokens: the fixed time, or the real clock.
    pub fn now(&self) -> i64 {
        self.at.unwrap_or_else(crate::now)
    }

    /// Access-token claims, valid now, with `patch` applied (see [`merge`]): `iss`, `aud`,
    /// `sub` `auth0|alice`, `iat` 10 s ago, `exp` in 10 minutes, `scope` `openid` and
    /// `permissions` `["read:users"]`.
    pub fn claims(&self, patch: Value) -> Value {
        let now = self.now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "auth0|alice",
            "iat": now - 10,
            "exp": now + 600,
            "scope": "openid",
            "permissions": ["read:users"],
        });
        merge(&mut claims, patch);
        claims
    }

    /// Signs exactly `claims` (header: the key's `alg` and `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(&Map::new(), claims).expect("sign the token")
    }

    /// An access token: [`Issuer::claims`] with `patch` applied, signed.
    pub fn token(&self, patch: Value) -> String {
        self.sign(&self.claims(patch))
    }

    /// An access token that expired a minute ago (issued 11 minutes ago).
    pub fn expired(&self) -> String {
        let now = self.now();
        self.token(json!({"iat": now - 660, "exp": now - 60}))
    }

    /// An OpenID Connect ID token for the client `client_id` (its `aud`), with a `nonce`, the
    /// user's `email` and no scopes, `patch` applied: what must never pass as an access token.
    pub fn id_token(&self, client_id: &str, patch: Value) -> String {
        let mut claims = self.claims(json!({
            "aud": client_id,
            "scope": null,
            "permissions": null,
            "nonce": "n-0S6_WzA2Mj",
            "email": "alice@example.com",
            "email_verified": true,
        }));
        merge(&mut claims, patch);
        self.sign(&claims)
    }

    /// The JWKS document: the public key, then any added with [`Issuer::with_jwk`].
    pub fn jwks(&self) -> Value {
        let mut keys = vec![self.key.public_jwk()];
        keys.extend(self.extra_jwks.iter().cloned());
        json!({ "keys": keys })
    }

    /// A file holding [`Issuer::jwks`], written on first use and deleted with the issuer.
    pub fn jwks_file(&self) -> &Path {
        self.jwks_file
            .get_or_init(|| {
                let file = tempfile::NamedTempFile::new().expect("a temporary JWKS file");
                std::fs::write(file.path(), self.jwks().to_string()).expect("write the JWKS");
                file
            })
            .path()
    }

    /// This issuer as a jwtgate configuration's `[[issuers]]` entry: its `issuer`, its one
    /// audience and its [`Issuer::jwks_file`], each on its own line (more settings of the entry
    /// can follow).
    pub fn issuer_toml(&self) -> String {
        format!(
            "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n",
            self.issuer,
            self.audience,
            self.jwks_file().display()
        )
    }
}

fn generate(alg: Algorithm, kid: &str) -> SigningKey {
    SigningKey::generate(alg, kid).expect("generate a signing key")
}

/// Sets `patch`'s members on the object `target`; a `null` member removes the claim instead.
pub fn merge(target: &mut Value, patch: Value) {
    let (Some(target), Value::Object(patch)) = (target.as_object_mut(), patch) else {
        panic!("merge needs two JSON objects");
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(&name);
        } else {
            target.insert(name, value);
        }
    }
}
