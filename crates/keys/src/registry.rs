//! Several issuers at once (multi-tenant): the token's `iss` picks the issuer's key source and
//! policy. `iss` is read before the signature check only to choose; it is trusted for nothing
//! else, and the chosen policy checks it again on the verified claims. An unknown issuer is
//! refused without any network call.

use crate::source::KeySource;
use jwtgate_core::{CompactJws, Policy, Reason, Rejection, UnixTime, UnverifiedToken, Verified};
use serde_json::{Map, Value};
use thiserror::Error;

/// One issuer: its policy and where its keys come from.
#[derive(Debug, Clone)]
pub struct IssuerEntry {
    policy: Policy,
    source: KeySource,
}

impl IssuerEntry {
    /// Pairs a policy with its key source.
    pub fn new(policy: Policy, source: KeySource) -> IssuerEntry {
        IssuerEntry { policy, source }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key source.
    pub fn source(&self) -> &KeySource {
        &self.source
    }
}

/// The registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// No issuer configured.
    #[error("no issuer configured")]
    Empty,
    /// Two entries accept the same issuer.
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
}

/// Verifies tokens from any of several issuers.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<IssuerEntry>,
    max_token_len: usize,
}

impl Registry {
    /// A registry of `entries`; every issuer may appear in only one entry.
    pub fn new(entries: Vec<IssuerEntry>) -> Result<Registry, RegistryError> {
        if entries.is_empty() {
            return Err(RegistryError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for issuer in entries.iter().flat_map(|e| e.policy.issuers()) {
            if !seen.insert(issuer.clone()) {
                return Err(RegistryError::DuplicateIssuer(issuer.clone()));
            }
        }
        let max_token_len = entries
            .iter()
            .map(|e| e.policy.max_token_len())
            .max()
            .unwrap_or(jwtgate_core::jws::DEFAULT_MAX_TOKEN_LEN);
        Ok(Registry {
            entries,
            max_token_len,
        })
    }

    /// The configured issuers.
    pub fn entries(&self) -> &[IssuerEntry] {
        &self.entries
    }

    /// True when every issuer has usable keys.
    pub fn is_ready(&self) -> bool {
        self.entries.iter().all(|e| e.source.is_ready())
    }

    fn entry_for(&self, iss: &str) -> Option<&IssuerEntry> {
        self.entries
            .iter()
            .find(|e| e.policy.issuers().iter().any(|i| i == iss))
    }

    fn all_issuers(&self) -> Vec<String> {
        self.entries
            .iter()
            .flat_map(|e| e.policy.issuers().iter().cloned())
            .collect()
    }

    /// The entry named by the token's (unverified) `iss`, or the rejection for an unknown issuer.
    fn pick(&self, claims: &Map<String, Value>) -> Result<&IssuerEntry, Rejection> {
        let iss = match claims.get("iss") {
            Some(Value::String(iss)) => iss,
            Some(_) => {
                return Err(Reason::InvalidClaim {
                    name: "iss",
                    expected: "a string",
                }
                .into())
            }
            None => return Err(Reason::MissingClaim("iss").into()),
        };
        self.entry_for(iss).ok_or_else(|| {
            Reason::IssuerMismatch {
                found: iss.clone(),
                expected: self.all_issuers(),
            }
            .into()
        })
    }

    /// Verifies `token` at `now` with the policy and keys of its issuer.
    pub async fn verify(&self, token: &[u8], now: UnixTime) -> Result<Verified, Rejection> {
        let (entry, parsed) = match self.entries.as_slice() {
            [only] => (only, UnverifiedToken::parse(token, &only.policy)?),
            _ => {
                // The issuer decides which policy reads the header, so the claims come first.
                let jws =
                    CompactJws::parse(token, self.max_token_len).map_err(Reason::Malformed)?;
                let claims = jws.decode_claims().map_err(Reason::BadPayload)?;
                let entry = self.pick(&claims)?;
                (entry, UnverifiedToken::parse(token, &entry.policy)?)
            }
        };
        let keys = match entry.source.cached(parsed.header()) {
            Some(keys) => keys,
            None => {
                // Before any network call, make sure the token names this issuer at all.
                if self.entries.len() == 1 {
                    self.pick(&parsed.unverified_claims()?)?;
                }
                entry.source.keys_for(parsed.header()).await?
            }
        };
        parsed.verify_signature(&keys)?.check(&entry.policy, now)
    }
}
