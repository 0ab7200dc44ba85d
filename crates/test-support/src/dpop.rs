//! A DPoP client (RFC 9449): a generated ES256 key, an access token bound to it (`cnf.jkt`), and
//! proofs for the requests it sends.

use crate::Issuer;
use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Value};

/// A client holding a DPoP key and an access token bound to that key.
#[derive(Debug)]
pub struct DpopClient {
    key: SigningKey,
    token: String,
}

impl DpopClient {
    /// A fresh ES256 key and `issuer`'s token bound to it, with no other change to the claims.
    pub fn new(issuer: &Issuer) -> DpopClient {
        DpopClient::with_claims(issuer, json!({}))
    }

    /// A fresh ES256 key and `issuer`'s token with `patch` applied and `cnf.jkt` set to the key's
    /// thumbprint.
    pub fn with_claims(issuer: &Issuer, mut patch: Value) -> DpopClient {
        let key = SigningKey::generate(Algorithm::ES256, "client").expect("an ES256 key");
        let jkt = key_thumbprint(&key).expect("the key's thumbprint");
        crate::merge(&mut patch, json!({"cnf": {"jkt": jkt}}));
        let token = issuer.token(patch);
        DpopClient { key, token }
    }

    /// The proof key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The bound access token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `Authorization` header value: `DPoP {token}`.
    pub fn authorization(&self) -> String {
        format!("DPoP {}", self.token)
    }

    /// A proof for `method` `uri` with the token's hash (`ath`), issued now, under `jti`, with the
    /// server's `nonce` when given.
    pub fn proof(&self, method: &str, uri: &str, jti: &str, nonce: Option<&str>) -> String {
        make_proof(
            &self.key,
            &ProofClaims {
                method,
                uri,
                access_token: Some(&self.token),
                iat: crate::now(),
                jti,
                nonce,
            },
        )
        .expect("a signed DPoP proof")
    }
}
