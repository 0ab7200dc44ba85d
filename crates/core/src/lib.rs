//! # jwtgate-core
//!
//! Strict verification of JWT access tokens: JWS compact parsing, JWK sets, signature checks and
//! the claims policy (issuer, audience, times, scopes) — pure code with no I/O and no async, shared
//! by every way jwtgate is deployed (CLI, gateway, Lambda authorizer, tower middleware).
//!
//! ## Design
//!
//! * **Nothing in the token chooses how it is verified.** Keys come only from a configured
//!   [`KeySet`]; `jwk`, `jku`, `x5u` and `x5c` header parameters are ignored; the header's `alg`
//!   must be in the [`Policy`]'s allowlist and must fit exactly one key (its `kid`, type and own
//!   `alg`). HMAC works only with a secret added explicitly, never from a key set.
//! * **States are types.** [`UnverifiedToken`] → [`SignedToken`] → [`Verified`]: trusted claims
//!   are only reachable through a verified signature and a policy check.
//! * **Strict parsing, no panics.** Canonical unpadded base64url, JSON objects without duplicate
//!   members, a size limit checked before decoding, nesting depth at most 64.
//! * **Rejections explain themselves.** Every [`Rejection`] has an RFC 6750 [`ErrorCode`], a
//!   machine-readable [`Reason`] and a description that names the real cause (an opaque token, an
//!   ID token sent instead of the access token, an issuer differing by a trailing slash, clock skew).
//! * **Fast.** Keys are parsed once when the set is loaded; the request path decodes into stack
//!   buffers where it can, reads the header and claims in one strict pass that builds no JSON
//!   values (`internal::members`, held to `serde_json`'s verdict by property and fuzz tests),
//!   keeps the checked claims as spans of one buffer, and runs one signature check. See
//!   `benches/verify.rs`.
//! * **One crypto boundary.** All of AWS-LC (through `aws-lc-rs`) is behind the `crypto` and
//!   `sign` modules.
//!
//! ## Example
//!
//! ```
//! use jwtgate_core::{Algorithm, KeySet, Policy, ScopeRequirement, SigningKey, Verifier};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An issuer's key and its published JWKS.
//! let signer = SigningKey::generate(Algorithm::ES256, "key-1")?;
//! let jwks = json!({ "keys": [signer.public_jwk()] }).to_string();
//!
//! let policy = Policy::builder()
//!     .issuer("https://example.eu.auth0.com/")
//!     .audience("https://api.example.com")
//!     .scopes(ScopeRequirement::all_of(["read:users"]))
//!     .build()?;
//! let verifier = Verifier::new(policy, KeySet::from_json(jwks.as_bytes())?);
//!
//! let now = 1_800_000_000;
//! let token = signer.sign(&Default::default(), &json!({
//!     "iss": "https://example.eu.auth0.com/",
//!     "aud": ["https://api.example.com", "https://example.eu.auth0.com/userinfo"],
//!     "sub": "auth0|alice", "exp": now + 600, "iat": now,
//!     "scope": "openid profile", "permissions": ["read:users"],
//! }))?;
//!
//! let verified = verifier.verify(token.as_bytes(), now)?;
//! assert_eq!(verified.subject(), Some("auth0|alice"));
//!
//! // The same token an hour later:
//! let rejection = verifier.verify(token.as_bytes(), now + 3600).unwrap_err();
//! assert_eq!(rejection.code().as_str(), "invalid_token");
//! assert!(rejection.description().contains("expired"));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alg;
pub mod claims;
pub mod crypto;
pub mod dpop;
mod explain;
pub mod internal;
pub mod jwk;
pub mod jws;
pub mod policy;
pub mod rejection;
mod roca;
pub mod scope;
pub mod sign;
pub mod time;
mod verify;

pub use alg::{Algorithm, AlgorithmSet};
pub use claims::ClaimSet;
pub use explain::{explain, Explanation, Status, Step};
pub use jwk::{KeySet, Secret, SkipReason, SkippedKey};
pub use jws::{CompactJws, Header, JwsError};
pub use policy::{Policy, PolicyBuilder, PolicyError};
pub use rejection::{ErrorCode, Reason, Rejection};
pub use scope::ScopeRequirement;
pub use sign::SigningKey;
pub use time::UnixTime;
pub use verify::{
    audiences, id_token_signs, Check, SignedToken, TokenToVerify, UnverifiedToken, Verified,
    Verifier,
};
