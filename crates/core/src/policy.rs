//! What a verifier accepts: issuers, audiences, algorithms, times, scopes and optional profile rules.
//!
//! A [`Policy`] is built with [`PolicyBuilder`], whose `build` enforces the invariants that make a
//! policy safe: at least one issuer and one audience (a verifier that accepts any issuer or any
//! audience is the classic mistake this project exists to prevent), a non-empty algorithm
//! allowlist, and sane limits.

use crate::alg::{Algorithm, AlgorithmSet};
use crate::jws::DEFAULT_MAX_TOKEN_LEN;
use crate::scope::ScopeRequirement;
use serde_json::Value;
use thiserror::Error;

/// Default clock leeway in seconds: none. Clock skew is a deployment fact; set it deliberately.
pub const DEFAULT_LEEWAY: u64 = 0;

/// Largest leeway accepted (one day); more would make `exp` meaningless.
pub const MAX_LEEWAY: u64 = 86_400;

/// A policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// No issuer configured.
    #[error("at least one issuer is required")]
    NoIssuer,
    /// No audience configured.
    #[error("at least one audience is required")]
    NoAudience,
    /// An issuer, audience, scope or claim name is the empty string.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The algorithm allowlist is empty.
    #[error("the algorithm allowlist is empty")]
    NoAlgorithms,
    /// Leeway larger than [`MAX_LEEWAY`].
    #[error("leeway of {0} s is more than the maximum of {MAX_LEEWAY} s")]
    LeewayTooLarge(u64),
    /// A token size limit under 16 bytes.
    #[error("a token size limit of {0} bytes is too small")]
    MaxLenTooSmall(usize),
}

/// The rules a token must satisfy. Built by [`Policy::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) scopes: ScopeRequirement,
    pub(crate) leeway: u64,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) require_at_jwt: bool,
    pub(crate) allowed_clients: Vec<String>,
    pub(crate) max_age: Option<u64>,
    pub(crate) required_claims: Vec<(String, Value)>,
    pub(crate) max_token_len: usize,
}

impl Policy {
    /// Starts a builder with jwtgate's defaults.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Accepted issuers, compared byte for byte with `iss`.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Accepted audiences; `aud` must contain one of them.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Scopes every request needs.
    pub fn scopes(&self) -> &ScopeRequirement {
        &self.scopes
    }

    /// Clock leeway in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The algorithm allowlist.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Whether the strict RFC 9068 profile is on.
    pub fn requires_at_jwt(&self) -> bool {
        self.require_at_jwt
    }

    /// Accepted `azp`/`client_id` values (empty: any).
    pub fn allowed_clients(&self) -> &[String] {
        &self.allowed_clients
    }

    /// Maximum age since `iat`, in seconds.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// Claims that must be present with exactly these values.
    pub fn required_claims(&self) -> &[(String, Value)] {
        &self.required_claims
    }

    /// Maximum token size in bytes.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }
}

/// Builds a [`Policy`].
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    policy: Policy,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        PolicyBuilder {
            policy: Policy {
                issuers: Vec::new(),
                audiences: Vec::new(),
                scopes: ScopeRequirement::default(),
                leeway: DEFAULT_LEEWAY,
                algorithms: AlgorithmSet::asymmetric(),
                require_at_jwt: false,
                allowed_clients: Vec::new(),
                max_age: None,
                required_claims: Vec::new(),
                max_token_len: DEFAULT_MAX_TOKEN_LEN,
            },
        }
    }
}

impl PolicyBuilder {
    /// Accepts tokens from `issuer` (exact match, trailing slash included).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.policy.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.policy.audiences.push(audience.into());
        self
    }

    /// Sets the scopes every request needs.
    pub fn scopes(mut self, scopes: ScopeRequirement) -> Self {
        self.policy.scopes = scopes;
        self
    }

    /// Sets the clock leeway in seconds (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.policy.leeway = seconds;
        self
    }

    /// Replaces the algorithm allowlist (default: every asymmetric algorithm).
    pub fn algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.policy.algorithms = algorithms;
        self
    }

    /// Adds one algorithm to the allowlist.
    pub fn allow_algorithm(mut self, alg: Algorithm) -> Self {
        self.policy.algorithms.insert(alg);
        self
    }

    /// Requires the strict RFC 9068 profile: `typ` `at+jwt` and the claims `sub`, `iat`, `jti`,
    /// `client_id`.
    pub fn require_at_jwt(mut self, on: bool) -> Self {
        self.policy.require_at_jwt = on;
        self
    }

    /// Accepts only tokens whose `azp` or `client_id` is one of the allowed clients.
    pub fn allowed_client(mut self, client_id: impl Into<String>) -> Self {
        self.policy.allowed_clients.push(client_id.into());
        self
    }

    /// Refuses tokens issued (`iat`) more than `seconds` ago; `iat` becomes required.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.policy.max_age = Some(seconds);
        self
    }

    /// Requires claim `name` to be present and equal to `value`.
    pub fn require_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.policy.required_claims.push((name.into(), value));
        self
    }

    /// Sets the maximum token size in bytes (default 64 KiB), checked before any decoding.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.policy.max_token_len = bytes;
        self
    }

    /// Checks the invariants and returns the policy.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let p = self.policy;
        if p.issuers.is_empty() {
            return Err(PolicyError::NoIssuer);
        }
        if p.audiences.is_empty() {
            return Err(PolicyError::NoAudience);
        }
        if p.issuers.iter().any(String::is_empty) {
            return Err(PolicyError::Empty("an issuer"));
        }
        if p.audiences.iter().any(String::is_empty) {
            return Err(PolicyError::Empty("an audience"));
        }
        if p.scopes.scopes().iter().any(String::is_empty) {
            return Err(PolicyError::Empty("a scope"));
        }
        if p.allowed_clients.iter().any(String::is_empty) {
            return Err(PolicyError::Empty("a client id"));
        }
        if p.required_claims.iter().any(|(name, _)| name.is_empty()) {
            return Err(PolicyError::Empty("a claim name"));
        }
        if p.algorithms.is_empty() {
            return Err(PolicyError::NoAlgorithms);
        }
        if p.leeway > MAX_LEEWAY {
            return Err(PolicyError::LeewayTooLarge(p.leeway));
        }
        if p.max_token_len < 16 {
            return Err(PolicyError::MaxLenTooSmall(p.max_token_len));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_and_audience_are_required() {
        assert_eq!(
            Policy::builder().audience("a").build().err(),
            Some(PolicyError::NoIssuer)
        );
        assert_eq!(
            Policy::builder().issuer("i").build().err(),
            Some(PolicyError::NoAudience)
        );
        assert!(Policy::builder().issuer("i").audience("a").build().is_ok());
    }

    #[test]
    fn rejects_unsafe_settings() {
        let base = || Policy::builder().issuer("i").audience("a");
        assert_eq!(
            base().algorithms(AlgorithmSet::EMPTY).build().err(),
            Some(PolicyError::NoAlgorithms)
        );
        assert_eq!(
            base().leeway(100_000).build().err(),
            Some(PolicyError::LeewayTooLarge(100_000))
        );
        assert_eq!(
            base().issuer("").build().err(),
            Some(PolicyError::Empty("an issuer"))
        );
        assert_eq!(
            base().max_token_len(3).build().err(),
            Some(PolicyError::MaxLenTooSmall(3))
        );
    }

    #[test]
    fn defaults() {
        let p = Policy::builder().issuer("i").audience("a").build();
        let p = p.as_ref();
        assert_eq!(p.map(Policy::leeway), Ok(0));
        assert_eq!(p.map(Policy::algorithms), Ok(AlgorithmSet::asymmetric()));
        assert_eq!(p.map(Policy::max_token_len), Ok(65_536));
    }
}
