//! Several issuers at once (multi-tenant): the token's `iss` picks the issuer's key source and
//! policy — a configured issuer matched byte for byte first, then issuer templates
//! ([`TenantIssuer`]) whose allowed tenants each get their own concrete entry. `iss` is read
//! before the signature check only to choose; it is trusted for nothing else, and the chosen
//! policy checks it again on the verified claims. An unknown issuer, or a tenant outside a
//! template's allowlist, is refused without any network call.

use crate::source::KeySource;
use crate::tenants::{TenantIssuer, TenantMatch};
use jwtgate_core::{CompactJws, Policy, Reason, Rejection, UnixTime, UnverifiedToken, Verified};
use serde_json::{Map, Value};
use std::sync::Arc;
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
    /// Two entries accept the same issuer (or the same template).
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
}

/// The issuer a token's `iss` was matched to.
enum Picked<'a> {
    Exact(&'a IssuerEntry),
    Tenant(Arc<IssuerEntry>),
}

/// Verifies tokens from any of several issuers.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<IssuerEntry>,
    templates: Vec<Arc<TenantIssuer>>,
    max_token_len: usize,
}

impl Registry {
    /// A registry of `entries`; every issuer may appear in only one entry.
    pub fn new(entries: Vec<IssuerEntry>) -> Result<Registry, RegistryError> {
        Registry::with_templates(entries, Vec::new())
    }

    /// A registry of exact `entries` and issuer `templates` (an `iss` is matched against the
    /// exact issuers first); every issuer and template may appear only once.
    pub fn with_templates(
        entries: Vec<IssuerEntry>,
        templates: Vec<TenantIssuer>,
    ) -> Result<Registry, RegistryError> {
        if entries.is_empty() && templates.is_empty() {
            return Err(RegistryError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        let names = entries
            .iter()
            .flat_map(|e| e.policy.issuers().iter().map(String::as_str))
            .chain(templates.iter().map(|t| t.template().as_str()));
        for issuer in names {
            if !seen.insert(issuer.to_owned()) {
                return Err(RegistryError::DuplicateIssuer(issuer.to_owned()));
            }
        }
        let max_token_len = entries
            .iter()
            .map(|e| e.policy.max_token_len())
            .chain(templates.iter().map(|t| t.sample_policy().max_token_len()))
            .max()
            .unwrap_or(jwtgate_core::jws::DEFAULT_MAX_TOKEN_LEN);
        Ok(Registry {
            entries,
            templates: templates.into_iter().map(Arc::new).collect(),
            max_token_len,
        })
    }

    /// The issuer templates.
    pub fn templates(&self) -> &[Arc<TenantIssuer>] {
        &self.templates
    }

    /// The configured issuer (exact, or the template as written) that accepts `iss`, if any: what
    /// per-issuer and per-route settings name.
    pub fn configured_issuer(&self, iss: &str) -> Option<&str> {
        if let Some(entry) = self.entry_for(iss) {
            return entry.policy.issuers().first().map(String::as_str);
        }
        self.templates
            .iter()
            .find(|t| t.allowed_tenant(iss).is_some())
            .map(|t| t.template().as_str())
    }

    /// The tenant `iss` names, when an issuer template (not an exact issuer) accepts it.
    pub fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        if self.entry_for(iss).is_some() {
            return None;
        }
        self.templates.iter().find_map(|t| t.allowed_tenant(iss))
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
            .chain(self.templates.iter().map(|t| {
                let tenants = match t.tenants() {
                    crate::tenants::Tenants::Any => "any tenant",
                    crate::tenants::Tenants::Only(_) => "an allowed tenant",
                };
                format!("{} ({tenants})", t.template().as_str())
            }))
            .collect()
    }

    /// The entry named by the token's (unverified) `iss`, or the rejection for an unknown issuer
    /// or a tenant outside its template's allowlist (no key source is created for those).
    fn pick(&self, claims: &Map<String, Value>) -> Result<Picked<'_>, Rejection> {
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
        if let Some(entry) = self.entry_for(iss) {
            return Ok(Picked::Exact(entry));
        }
        for template in &self.templates {
            match template.entry_for(iss)? {
                TenantMatch::No | TenantMatch::NotAllowed => continue,
                TenantMatch::Entry(entry) => return Ok(Picked::Tenant(entry)),
            }
        }
        Err(Reason::IssuerMismatch {
            found: iss.clone(),
            expected: self.all_issuers(),
        }
        .into())
    }

    /// Verifies `token` at `now` with the policy and keys of its issuer.
    pub async fn verify(&self, token: &[u8], now: UnixTime) -> Result<Verified, Rejection> {
        let tenant: Arc<IssuerEntry>;
        let single = self.templates.is_empty() && self.entries.len() == 1;
        let (entry, parsed) = match self.entries.as_slice() {
            [only] if single => (only, UnverifiedToken::parse_to_verify(token, &only.policy)?),
            _ => {
                // The issuer decides which policy reads the header, so the claims come first.
                let jws =
                    CompactJws::parse(token, self.max_token_len).map_err(Reason::Malformed)?;
                let claims = jws.decode_claims().map_err(Reason::BadPayload)?;
                let entry = match self.pick(&claims)? {
                    Picked::Exact(entry) => entry,
                    Picked::Tenant(entry) => {
                        tenant = entry;
                        &*tenant
                    }
                };
                (
                    entry,
                    UnverifiedToken::parse_to_verify(token, &entry.policy)?,
                )
            }
        };
        let keys = match entry.source.cached(parsed.header()) {
            Some(keys) => keys,
            None => {
                // Before any network call, make sure the token is well formed (the parse's pass,
                // skipped for a recent header) and names this issuer at all.
                parsed.check_structure()?;
                if single {
                    self.pick(&parsed.unverified_claims()?)?;
                }
                entry.source.keys_for(parsed.header()).await?
            }
        };
        parsed.verify(&keys, &entry.policy, now)
    }
}
