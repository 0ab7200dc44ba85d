//! Signing JWS compact tokens: for jwtgate's own development issuer, examples, tests and
//! benchmarks. Verification never uses this module.
//!
//! Keys are generated or loaded from PKCS#8 through the same provider as verification, and can
//! describe their public half as a JWK, so an issuer can publish exactly what the verifier loads.

use crate::alg::{Algorithm, Curve};
use crate::internal::base64url;
use crate::internal::der;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};
use thiserror::Error;

/// Signing failed or a key could not be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The provider refused to generate or load the key.
    #[error("the key could not be created or loaded: {0}")]
    Key(String),
    /// The provider failed to sign.
    #[error("signing failed")]
    Sign,
    /// The algorithm does not fit the key.
    #[error("algorithm {0} does not fit this key")]
    WrongAlgorithm(Algorithm),
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, Curve),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs JWS tokens with one algorithm.
pub struct SigningKey {
    inner: Inner,
    alg: Algorithm,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn ec_signing(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg` (RSA keys are 2048 bits). HMAC algorithms are refused.
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<SigningKey, SignError> {
        let key_error = |e: &dyn std::fmt::Display| SignError::Key(e.to_string());
        let inner = match alg.key_family() {
            crate::alg::KeyFamily::Rsa => {
                Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| key_error(&e))?)
            }
            crate::alg::KeyFamily::Ec(curve) => Inner::Ec(
                EcdsaKeyPair::generate(ec_signing(curve)).map_err(|e| key_error(&e))?,
                curve,
            ),
            crate::alg::KeyFamily::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::generate().map_err(|e| key_error(&e))?)
            }
            crate::alg::KeyFamily::Hmac => return Err(SignError::WrongAlgorithm(alg)),
        };
        Ok(SigningKey {
            inner,
            alg,
            kid: kid.into(),
        })
    }

    /// Loads a PKCS#8 (DER) private key for `alg`.
    pub fn from_pkcs8(
        alg: Algorithm,
        kid: impl Into<String>,
        pkcs8: &[u8],
    ) -> Result<SigningKey, SignError> {
        let key_error = |e: &dyn std::fmt::Display| SignError::Key(e.to_string());
        let inner = match alg.key_family() {
            crate::alg::KeyFamily::Rsa => {
                Inner::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| key_error(&e))?)
            }
            crate::alg::KeyFamily::Ec(curve) => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(ec_signing(curve), pkcs8).map_err(|e| key_error(&e))?,
                curve,
            ),
            crate::alg::KeyFamily::Ed25519 => Inner::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| key_error(&e))?,
            ),
            crate::alg::KeyFamily::Hmac => return Err(SignError::WrongAlgorithm(alg)),
        };
        Ok(SigningKey {
            inner,
            alg,
            kid: kid.into(),
        })
    }

    /// The private key as PKCS#8 DER, to store it.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, SignError> {
        let der = match &self.inner {
            Inner::Rsa(key) => key.as_der().map(|d| d.as_ref().to_vec()),
            Inner::Ec(key, _) => key.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Inner::Ed25519(key) => key.to_pkcs8().map(|d| d.as_ref().to_vec()),
        };
        der.map_err(|_| SignError::Sign)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id put in every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (`kty`, key members, `kid`, `alg`, `use` `sig`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.inner {
            Inner::Rsa(key) => {
                let (n, e) = der::rsa_public_key(key.public_key().as_ref()).unwrap_or((&[], &[]));
                json!({"kty": "RSA", "n": base64url::encode(n), "e": base64url::encode(e)})
            }
            Inner::Ec(key, curve) => {
                let point = key.public_key().as_ref();
                let size = curve.coordinate_len();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(size.min(point.len().saturating_sub(1)));
                json!({"kty": "EC", "crv": curve.name(), "x": base64url::encode(x), "y": base64url::encode(y)})
            }
            Inner::Ed25519(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": base64url::encode(key.public_key().as_ref())})
            }
        };
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".into(), json!(self.kid));
            object.insert("alg".into(), json!(self.alg.name()));
            object.insert("use".into(), json!("sig"));
        }
        jwk
    }

    /// Signs `claims` with a header of `alg`, `kid` and any `extra_header` members (e.g. `typ`).
    pub fn sign(
        &self,
        extra_header: &Map<String, Value>,
        claims: &Value,
    ) -> Result<String, SignError> {
        let mut header = Map::new();
        header.insert("alg".into(), json!(self.alg.name()));
        header.insert("kid".into(), json!(self.kid));
        for (name, value) in extra_header {
            header.insert(name.clone(), value.clone());
        }
        let header = serde_json::to_vec(&Value::Object(header)).map_err(|_| SignError::Sign)?;
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Sign)?;
        self.sign_raw(&header, &payload)
    }

    /// Signs exact header and payload bytes (for tests that need unusual encodings).
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, SignError> {
        let mut token = base64url::encode(header);
        token.push('.');
        token.push_str(&base64url::encode(payload));
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        token.push_str(&base64url::encode(&signature));
        Ok(token)
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(key) => {
                let encoding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    other => return Err(SignError::WrongAlgorithm(other)),
                };
                let mut out = vec![0u8; key.public_modulus_len()];
                key.sign(encoding, &rng, message, &mut out)
                    .map_err(|_| SignError::Sign)?;
                Ok(out)
            }
            Inner::Ec(key, _) => key
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError::Sign),
            Inner::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }
}

/// Signs with an HMAC secret (for tests and local development only).
pub fn sign_hmac(
    alg: Algorithm,
    secret: &[u8],
    header: &[u8],
    payload: &[u8],
) -> Result<String, SignError> {
    let provider = match alg {
        Algorithm::HS256 => aws_lc_rs::hmac::HMAC_SHA256,
        Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
        Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
        other => return Err(SignError::WrongAlgorithm(other)),
    };
    let mut token = base64url::encode(header);
    token.push('.');
    token.push_str(&base64url::encode(payload));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(provider, secret),
        token.as_bytes(),
    );
    token.push('.');
    token.push_str(&base64url::encode(tag.as_ref()));
    Ok(token)
}
