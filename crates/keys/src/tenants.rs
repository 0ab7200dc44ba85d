//! Issuer templates for multi-tenant providers: one configured issuer such as
//! `https://login.microsoftonline.com/{tenant}/v2.0` stands for one concrete issuer per allowed
//! tenant.
//!
//! * **Matching.** A token's `iss` matches only when it is the template with the placeholder
//!   replaced by exactly one path segment made of URL-unreserved characters
//!   (`A-Z a-z 0-9 - . _ ~`, not `.` or `..`, at most 128), and that value is in the allowlist
//!   (or the allowlist is written out as `"any"`). A tenant outside it is refused before any
//!   key source exists for it, so it costs no network call.
//! * **Isolation.** Each concrete issuer gets its own [`IssuerEntry`]: a policy naming exactly that
//!   issuer, and its own [`KeySource`] (its own discovery, its own key cache keyed by `kid`).
//!   Keys are never shared between concrete issuers, even when their `jwks_uri` is the same
//!   document (Entra ID's common keys): a key published for tenant A never verifies a token
//!   claiming tenant B.
//! * **Bounds.** At most `max_tenants` concrete issuers are held, least recently used evicted.
//!   Every concrete issuer keeps the per-source unknown-`kid` cooldown, and all tenants of all
//!   templates share one [`FetchBudget`] of documents per minute, so a flood of valid-looking
//!   tenants cannot make jwtgate fetch more than that.

use crate::budget::FetchBudget;
use crate::clock::Clock;
use crate::fetch::{parse_url, FetchError, Fetcher};
use crate::registry::IssuerEntry;
use crate::settings::CacheSettings;
use crate::source::{KeySource, SourceKind};
use jwtgate_core::{Policy, PolicyBuilder, PolicyError, Reason, Rejection};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Longest tenant value accepted.
pub const MAX_TENANT_LEN: usize = 128;

/// Default for `max_tenants`: concrete issuers held per template.
pub const DEFAULT_MAX_TENANTS: usize = 1000;

/// A template or tenant setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// No `{name}` placeholder.
    #[error("{0:?} has no {{placeholder}}")]
    NoPlaceholder(String),
    /// More than one placeholder, or unbalanced braces.
    #[error("{0:?} must have exactly one {{placeholder}}")]
    Placeholders(String),
    /// The placeholder is not a whole path segment after the host.
    #[error("in {0:?} the placeholder must be one whole path segment after the host (…/{{tenant}}/… or …/{{tenant}})")]
    NotASegment(String),
    /// The template (with a sample tenant) is not an acceptable URL.
    #[error(transparent)]
    Url(#[from] FetchError),
    /// A tenant in the allowlist is not one path segment of unreserved characters.
    #[error("tenant {0:?} is not one path segment of letters, digits, '-', '.', '_' or '~' (at most 128)")]
    BadTenant(String),
    /// `tenants = []`.
    #[error("the tenant allowlist is empty (list the tenants, or write tenants = \"any\")")]
    EmptyAllowlist,
    /// `max_tenants = 0`.
    #[error("max_tenants must be at least 1")]
    ZeroMaxTenants,
    /// The issuer's policy is not valid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// True when `value` may stand for a template's placeholder.
pub fn valid_tenant(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_TENANT_LEN
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A parsed issuer template: the text before and after its one placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTemplate {
    text: String,
    prefix: String,
    suffix: String,
    placeholder: String,
}

impl IssuerTemplate {
    /// True when `issuer` is written as a template (contains `{`).
    pub fn is_template(issuer: &str) -> bool {
        issuer.contains('{') || issuer.contains('}')
    }

    /// Parses `text`: exactly one `{name}`, standing for a whole path segment after the host, in
    /// an `https://` URL (`http://` only to loopback unless `allow_insecure_http`).
    pub fn parse(text: &str, allow_insecure_http: bool) -> Result<IssuerTemplate, TemplateError> {
        let (Some(open), Some(close)) = (text.find('{'), text.find('}')) else {
            return Err(TemplateError::NoPlaceholder(text.to_owned()));
        };
        if close < open || text.matches('{').count() != 1 || text.matches('}').count() != 1 {
            return Err(TemplateError::Placeholders(text.to_owned()));
        }
        let prefix = &text[..open];
        let suffix = &text[close + 1..];
        let placeholder = &text[open + 1..close];
        let after_scheme = prefix.split_once("://").map_or("", |(_, rest)| rest);
        let in_path = after_scheme.contains('/') && prefix.ends_with('/');
        let whole_segment = suffix.is_empty() || suffix.starts_with('/');
        if !in_path || !whole_segment || placeholder.is_empty() || text.contains(['?', '#']) {
            return Err(TemplateError::NotASegment(text.to_owned()));
        }
        parse_url(&format!("{prefix}sample{suffix}"), allow_insecure_http)?;
        Ok(IssuerTemplate {
            text: text.to_owned(),
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            placeholder: placeholder.to_owned(),
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The placeholder's name (`tenant` for `{tenant}`).
    pub fn placeholder(&self) -> &str {
        &self.placeholder
    }

    /// The value standing for the placeholder in `iss`, when `iss` has the template's shape and
    /// the value is one valid path segment.
    pub fn tenant_in<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let rest = iss.strip_prefix(self.prefix.as_str())?;
        let tenant = rest.strip_suffix(self.suffix.as_str())?;
        valid_tenant(tenant).then_some(tenant)
    }

    /// The concrete issuer for `tenant`.
    pub fn concrete(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.prefix, self.suffix)
    }

    /// `text` with this template's `{placeholder}` replaced by `tenant` (for JWKS URLs).
    pub fn substitute(&self, text: &str, tenant: &str) -> String {
        text.replace(&format!("{{{}}}", self.placeholder), tenant)
    }
}

/// Which tenants a template accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// Only these (compared byte for byte).
    Only(HashSet<String>),
    /// Any value that is one valid path segment (written out as `tenants = "any"`).
    Any,
}

impl Tenants {
    /// An allowlist; every value must be a valid tenant and the list not empty.
    pub fn only<I: IntoIterator<Item = String>>(tenants: I) -> Result<Tenants, TemplateError> {
        let set: HashSet<String> = tenants.into_iter().collect();
        if set.is_empty() {
            return Err(TemplateError::EmptyAllowlist);
        }
        if let Some(bad) = set.iter().find(|t| !valid_tenant(t)) {
            return Err(TemplateError::BadTenant(bad.clone()));
        }
        Ok(Tenants::Only(set))
    }

    /// True when `tenant` is accepted.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            Tenants::Only(set) => set.contains(tenant),
            Tenants::Any => true,
        }
    }
}

/// Where a template's concrete issuers find their keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantKeys {
    /// OpenID Connect discovery from each concrete issuer.
    Discovery,
    /// A JWKS URL; a `{placeholder}` in it is replaced by the tenant. Without one, every tenant
    /// still keeps its own cache of the document.
    Url(String),
    /// A JWKS file (read separately for each tenant).
    File(PathBuf),
}

#[derive(Debug, Default)]
struct Held {
    entries: HashMap<String, (Arc<IssuerEntry>, u64)>,
    tick: u64,
}

/// One configured issuer template with its allowlist and the concrete issuers seen so far.
pub struct TenantIssuer {
    template: IssuerTemplate,
    tenants: Tenants,
    policy: PolicyBuilder,
    sample: Policy,
    keys: TenantKeys,
    settings: CacheSettings,
    clock: Arc<dyn Clock>,
    fetcher: Fetcher,
    max_tenants: usize,
    held: Mutex<Held>,
}

impl std::fmt::Debug for TenantIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantIssuer")
            .field("template", &self.template.text)
            .field("tenants", &self.tenants)
            .field("max_tenants", &self.max_tenants)
            .finish_non_exhaustive()
    }
}

/// What a template says about an `iss`.
pub(crate) enum TenantMatch {
    /// Not this template's shape.
    No,
    /// This template's shape, but the tenant is not allowed.
    NotAllowed,
    /// An allowed tenant's entry.
    Entry(Arc<IssuerEntry>),
}

impl TenantIssuer {
    /// A template issuer. `policy` has everything but the issuer (each concrete issuer gets a
    /// policy naming only itself); every fetch of every tenant is taken from `budget`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        template: IssuerTemplate,
        tenants: Tenants,
        policy: PolicyBuilder,
        keys: TenantKeys,
        settings: CacheSettings,
        clock: Arc<dyn Clock>,
        budget: Arc<FetchBudget>,
        max_tenants: usize,
    ) -> Result<TenantIssuer, TemplateError> {
        if max_tenants == 0 {
            return Err(TemplateError::ZeroMaxTenants);
        }
        settings
            .validate()
            .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        let sample_tenant = "sample";
        let sample = policy
            .clone()
            .issuer(template.concrete(sample_tenant))
            .build()?;
        if let TenantKeys::Url(url) = &keys {
            parse_url(
                &template.substitute(url, sample_tenant),
                settings.allow_insecure_http,
            )?;
        }
        let fetcher = Fetcher::new(&settings)?.with_budget(budget);
        Ok(TenantIssuer {
            template,
            tenants,
            policy,
            sample,
            keys,
            settings,
            clock,
            fetcher,
            max_tenants,
            held: Mutex::new(Held::default()),
        })
    }

    /// The template.
    pub fn template(&self) -> &IssuerTemplate {
        &self.template
    }

    /// The tenants accepted.
    pub fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    /// The most concrete issuers held.
    pub fn max_tenants(&self) -> usize {
        self.max_tenants
    }

    /// The policy every concrete issuer's policy is made from (naming a sample tenant).
    pub fn sample_policy(&self) -> &Policy {
        &self.sample
    }

    /// The allowed tenant named by `iss`, if `iss` is this template's shape with an allowed value.
    pub fn allowed_tenant<'a>(&self, iss: &'a str) -> Option<&'a str> {
        self.template
            .tenant_in(iss)
            .filter(|tenant| self.tenants.allows(tenant))
    }

    /// The concrete issuers held now, most recently used first: (issuer, entry).
    pub fn held(&self) -> Vec<(String, Arc<IssuerEntry>)> {
        let held = self.lock();
        let mut all: Vec<(String, Arc<IssuerEntry>, u64)> = held
            .entries
            .iter()
            .map(|(iss, (entry, tick))| (iss.clone(), entry.clone(), *tick))
            .collect();
        all.sort_by_key(|(_, _, tick)| std::cmp::Reverse(*tick));
        all.into_iter()
            .map(|(iss, entry, _)| (iss, entry))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        match self.held.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The entry for `iss` (created on first use; nothing is fetched here).
    pub(crate) fn entry_for(&self, iss: &str) -> Result<TenantMatch, Rejection> {
        let Some(tenant) = self.template.tenant_in(iss) else {
            return Ok(TenantMatch::No);
        };
        if !self.tenants.allows(tenant) {
            return Ok(TenantMatch::NotAllowed);
        }
        let mut held = self.lock();
        held.tick += 1;
        let tick = held.tick;
        if let Some((entry, used)) = held.entries.get_mut(iss) {
            *used = tick;
            return Ok(TenantMatch::Entry(entry.clone()));
        }
        let entry = Arc::new(self.build_entry(iss, tenant)?);
        if held.entries.len() >= self.max_tenants {
            let oldest = held
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(iss, _)| iss.clone());
            if let Some(oldest) = oldest {
                held.entries.remove(&oldest);
            }
        }
        held.entries.insert(iss.to_owned(), (entry.clone(), tick));
        Ok(TenantMatch::Entry(entry))
    }

    fn build_entry(&self, iss: &str, tenant: &str) -> Result<IssuerEntry, Rejection> {
        let unusable = |error: String| {
            Rejection::new(Reason::KeysUnavailable {
                source: iss.to_owned(),
                error,
                selection: None,
            })
        };
        let policy = self
            .policy
            .clone()
            .issuer(iss.to_owned())
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        let kind = match &self.keys {
            TenantKeys::Discovery => SourceKind::Discovery {
                issuer: iss.to_owned(),
            },
            TenantKeys::Url(url) => SourceKind::Url(
                parse_url(
                    &self.template.substitute(url, tenant),
                    self.settings.allow_insecure_http,
                )
                .map_err(|e| unusable(e.to_string()))?,
            ),
            TenantKeys::File(path) => SourceKind::File(path.clone()),
        };
        let source = KeySource::with_fetcher(
            kind,
            self.settings.clone(),
            self.clock.clone(),
            self.fetcher.clone(),
        );
        Ok(IssuerEntry::new(policy, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entra() -> IssuerTemplate {
        IssuerTemplate::parse("https://login.microsoftonline.com/{tenant}/v2.0", false)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn placeholder_is_exactly_one_segment() {
        let t = entra();
        assert_eq!(
            t.tenant_in("https://login.microsoftonline.com/abc-123/v2.0"),
            Some("abc-123")
        );
        for iss in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://login.microsoftonline.com/../v2.0",
            "https://login.microsoftonline.com/a%2Fb/v2.0",
            "https://login.microsoftonline.com/a?x/v2.0",
            "https://login.microsoftonline.com/a/v2.0/",
            "https://login.microsoftonline.com/a/v2",
            "http://login.microsoftonline.com/a/v2.0",
        ] {
            assert_eq!(t.tenant_in(iss), None, "{iss}");
        }
        let keycloak = IssuerTemplate::parse("https://sso.example.com/realms/{realm}", false);
        let keycloak = keycloak.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keycloak.tenant_in("https://sso.example.com/realms/acme"),
            Some("acme")
        );
        assert_eq!(
            keycloak.tenant_in("https://sso.example.com/realms/acme/x"),
            None
        );
    }

    #[test]
    fn bad_templates() {
        for text in [
            "https://login.example.com/v2.0",
            "https://{tenant}.example.com/",
            "https://example.com/t{tenant}/v2",
            "https://example.com/{tenant}x",
            "https://example.com/{a}/{b}",
            "https://example.com/{}/x",
            "http://example.com/{tenant}",
            "https://example.com/{tenant}?x",
        ] {
            assert!(IssuerTemplate::parse(text, false).is_err(), "{text}");
        }
    }

    #[test]
    fn allowlists() {
        assert_eq!(
            Tenants::only(Vec::new()),
            Err(TemplateError::EmptyAllowlist)
        );
        assert!(Tenants::only(["a/b".to_owned()]).is_err());
        let only = Tenants::only(["a".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(only.allows("a") && !only.allows("A") && !only.allows("b"));
        assert!(Tenants::Any.allows("anything"));
    }
}
