//! # jwtgate-keys
//!
//! Where jwtgate's verification keys come from: JWKS files, JWKS URLs and issuers resolved by
//! OpenID Connect discovery (RFC 8414 as fallback) — cached, refreshed before they expire, and
//! safe against the two ways remote keys fail in production: an attacker inventing `kid`s to make
//! the verifier hammer the provider, and the provider's endpoint being slow or down.
//!
//! ## Design
//!
//! * **One [`KeySource`] per issuer, one cache per source.** Lookups on fresh keys never wait and
//!   never do I/O; a refresh due soon is started in the background.
//! * **Bounded fetching.** Unknown `kid`s refresh at most once per cooldown (single-flight: a
//!   hundred concurrent requests share one fetch), unknown `kid`s are remembered until the next
//!   refresh, and every attempt — failed ones too — starts the cooldown.
//! * **Stale-if-error.** A failed, malformed, oversized or empty response never replaces good keys;
//!   they stay in use up to `max_stale`. Tokens are then refused as `invalid_token` with a
//!   description saying the keys could not be refreshed — never a server error.
//! * **Time is injected** ([`Clock`]) so every rule is tested without sleeping.
//! * **Multi-tenant** [`Registry`]: the unverified `iss` only picks the issuer; unknown issuers are
//!   refused without a network call. Issuer templates ([`TenantIssuer`], e.g.
//!   `https://login.microsoftonline.com/{tenant}/v2.0`) give each allowed tenant its own concrete
//!   issuer, key source and cache — never another tenant's keys — bounded by `max_tenants` (LRU)
//!   and by one shared [`FetchBudget`] of documents per minute.
//!
//! All settings, with defaults and reasons, are in [`CacheSettings`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod budget;
mod clock;
mod fetch;
mod metrics;
mod registry;
mod settings;
mod source;
mod tenants;

pub use budget::{FetchBudget, BUDGET_WINDOW, DEFAULT_TENANT_FETCHES_PER_MINUTE};
pub use clock::{Clock, ManualClock, SystemClock};
pub use fetch::{oidc_discovery_url, parse_url, url_allowed, FetchError, FetchedKeys, Fetcher};
pub use metrics::{KeyMetrics, KeyMetricsSnapshot};
pub use registry::{IssuerEntry, Registry, RegistryError};
pub use settings::{CacheSettings, SettingsError};
pub use source::{KeySource, RefreshOutcome, Snapshot, SourceKind};
pub use tenants::{
    valid_tenant, IssuerTemplate, TemplateError, TenantIssuer, TenantKeys, Tenants,
    DEFAULT_MAX_TENANTS, MAX_TENANT_LEN,
};

/// A key source could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// Inconsistent settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A URL is invalid or not allowed, or the HTTP client could not be built.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}
