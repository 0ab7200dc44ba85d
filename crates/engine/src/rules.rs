//! Issuers and routes as written in configuration (TOML or flags), and how they become a key
//! [`Registry`] and a [`RouteTable`]. Shared by `jwtgate serve` and `jwtgate lambda`, so both
//! accept the same policy options and report mistakes the same way: the file, the key, and what is
//! wrong with it.

use crate::conditions::Conditions;
use crate::routes::{Requirement, Route, RoutePolicy, RouteTable};
use jwtgate_core::{Algorithm, AlgorithmSet, Policy, ScopeRequirement};
use jwtgate_keys::{
    CacheSettings, FetchBudget, IssuerEntry, IssuerTemplate, KeySource, Registry, SourceKind,
    SystemClock, TenantIssuer, TenantKeys, Tenants,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// A configuration that cannot be used: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The TOML does not parse or has unknown/mistyped keys.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is not acceptable.
    #[error("{file}: `{key}`: {message}")]
    Invalid {
        /// The file (or "flags").
        file: String,
        /// The key, e.g. `issuers[0].audiences`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses one mode's configuration from TOML (`file` names the source in errors): the one
/// loader the gateway, the Lambda authorizer and `check-config` share, so a syntax error or an
/// unknown key reads the same everywhere.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

/// Reads and parses a configuration file (see [`parse_toml`]); the file's path names it in
/// errors, and an unreadable file is an error naming it.
pub fn read_toml<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<(T, String), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Syntax {
        file: name.clone(),
        message: format!("cannot read the configuration file: {e}"),
    })?;
    Ok((parse_toml(&text, &name)?, name))
}

/// `tenants` of an issuer template: a list of tenants, or the word `"any"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TenantsSection {
    /// The allowed tenants.
    List(Vec<String>),
    /// `"any"` (anything else is refused at load).
    Word(String),
}

/// `[[issuers]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// The issuer, exactly as in `iss`, or a template with one `{placeholder}` path segment
    /// (`https://login.microsoftonline.com/{tenant}/v2.0`), which needs `tenants`.
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// JWKS URL (default: discovery from the issuer).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS file instead of a URL.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Allowed algorithms (default: RS/PS/ES 256-512 and EdDSA).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock leeway in seconds (default 0).
    #[serde(default)]
    pub leeway: u64,
    /// Scopes every request needs, whatever the route.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Require the RFC 9068 profile.
    #[serde(default)]
    pub strict: bool,
    /// Accepted clients (`azp`/`client_id`); empty accepts any.
    #[serde(default)]
    pub clients: Vec<String>,
    /// For a template: the allowed tenants, or `"any"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<TenantsSection>,
    /// For a template: concrete issuers held at most (least recently used evicted; default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tenants: Option<usize>,
    /// Claim conditions every token of this issuer must meet (name → value, or list: one of).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Value>,
    /// A CEL condition every token of this issuer must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// DPoP for this issuer's tokens (default: `[dpop] mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<crate::dpop::DpopMode>,
}

/// The DPoP policy of a configuration: `[dpop]`, each issuer's `dpop`, and `[server]
/// public_url` (the origin proofs are checked against; each front end's reading of the request
/// otherwise). The replay store of `previous` is kept, so a reload does not forget proofs.
pub fn dpop_policy(
    section: &crate::dpop::DpopSection,
    issuers: &[IssuerSection],
    public_url: Option<&str>,
    file: &str,
    previous: Option<&crate::Engine>,
) -> Result<crate::dpop::DpopPolicy, ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        message,
    };
    let public_origin = public_url
        .map(crate::dpop::public_origin)
        .transpose()
        .map_err(|message| invalid("server.public_url", message))?;
    let mut policy = crate::dpop::DpopPolicy::from_section(section)
        .map_err(|e| invalid("dpop", e.to_string()))?
        .with_public_origin(public_origin);
    for issuer in issuers {
        if let Some(mode) = issuer.dpop {
            policy = policy.with_issuer_mode(issuer.issuer.clone(), mode);
        }
    }
    if let Some(old) = previous {
        policy = policy
            .with_replay_store(old.dpop().replay_store().clone())
            .with_nonces_of(old.dpop());
    }
    Ok(policy)
}

fn default_cache_max_bytes() -> u64 {
    crate::token_cache::DEFAULT_MAX_BYTES
}
fn default_cache_max_age() -> i64 {
    crate::token_cache::DEFAULT_MAX_AGE
}

/// `[cache]`: the verified-token cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Memory budget of the entries in bytes (default 46 MiB; 0 disables the cache).
    #[serde(default = "default_cache_max_bytes")]
    pub max_bytes: u64,
    /// Most entries, beside `max_bytes` (default: no entry bound; 0 disables the cache).
    #[serde(default)]
    pub capacity: Option<usize>,
    /// Longest life of an entry in seconds (default 300).
    #[serde(default = "default_cache_max_age")]
    pub max_age: i64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            max_bytes: default_cache_max_bytes(),
            capacity: None,
            max_age: default_cache_max_age(),
        }
    }
}

/// `[[routes]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Methods (default: any).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path pattern: literal segments, `{name}` for one segment, a final `*` for the rest.
    pub path: String,
    /// Required scopes (all of them, or any one with `any = true`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Any one of `scopes` is enough.
    #[serde(default)]
    pub any: bool,
    /// No token needed.
    #[serde(default)]
    pub public: bool,
    /// Issuers accepted on this route (configured issuers or templates, as written; default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    /// Audiences accepted on this route, replacing the issuer's (default: the issuer's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Claim conditions (name → value, or list: one of).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Value>,
    /// A CEL condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// DPoP on this route, combined with the token's issuer's mode (the stricter wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<crate::dpop::DpopMode>,
    /// An MCP endpoint: the audience is `[resource]`'s URI and the JSON-RPC body of each POST is
    /// inspected ([`crate::mcp`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mcp: bool,
    /// MCP: extra scopes by JSON-RPC method (`"*"`: any method not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rpc_methods: BTreeMap<String, Vec<String>>,
    /// MCP: extra scopes by tool name for `tools/call` (`"*"`: any tool not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, Vec<String>>,
    /// MCP: extra scopes by prompt name for `prompts/get` (`"*"`: any prompt not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, Vec<String>>,
    /// MCP: extra scopes by resource URI for `resources/read` (`"*"`: any resource not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Vec<String>>,
}

impl RouteSection {
    /// Parses the command-line form `METHODS PATH [SCOPE …]`: `GET,HEAD /api/users read:users`,
    /// `GET /healthz public`, `GET /reports any:read:reports admin` (any one scope), `* /api/*`
    /// (any valid token).
    pub fn parse_spec(spec: &str) -> Result<RouteSection, String> {
        let mut words = spec.split_whitespace();
        let (Some(methods), Some(path)) = (words.next(), words.next()) else {
            return Err(format!("route {spec:?} is not 'METHODS PATH [SCOPE …]'"));
        };
        let rest: Vec<&str> = words.collect();
        let methods = if methods == "*" {
            Vec::new()
        } else {
            methods.split(',').map(str::to_owned).collect()
        };
        let mut section = RouteSection {
            methods,
            path: path.to_owned(),
            ..RouteSection::default()
        };
        match rest.as_slice() {
            ["public"] => section.public = true,
            [first, more @ ..] if first.starts_with("any:") => {
                section.any = true;
                section
                    .scopes
                    .push(first.trim_start_matches("any:").to_owned());
                section.scopes.extend(more.iter().map(|s| (*s).to_owned()));
            }
            scopes => section.scopes = scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
        Route::new(
            &section
                .methods
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &section.path,
            Requirement::Public,
        )
        .map_err(|e| e.to_string())?;
        Ok(section)
    }
}

/// `[keys]`: key cache settings, in seconds (defaults in the README's table).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Shortest key lifetime.
    pub min_ttl: Option<u64>,
    /// Longest key lifetime.
    pub max_ttl: Option<u64>,
    /// Lifetime without `Cache-Control`.
    pub default_ttl: Option<u64>,
    /// Fraction of the lifetime after which keys are refreshed in the background.
    pub refresh_ahead: Option<f64>,
    /// Unknown-kid refresh cooldown.
    pub cooldown: Option<u64>,
    /// Stale-if-error limit.
    pub max_stale: Option<u64>,
    /// Largest JWKS body in bytes.
    pub max_body: Option<usize>,
    /// Connect timeout.
    pub connect_timeout: Option<u64>,
    /// Whole-fetch timeout.
    pub total_timeout: Option<u64>,
    /// Allow plain HTTP to non-loopback hosts.
    pub allow_insecure_http: Option<bool>,
    /// Documents (discovery or JWKS) fetched per minute at most for all tenants of all issuer
    /// templates together (default 60).
    pub tenant_fetches_per_minute: Option<usize>,
}

impl KeysSection {
    /// The key cache settings with these overrides applied to the defaults.
    pub fn settings(&self) -> CacheSettings {
        let mut s = CacheSettings::default();
        let k = self;
        let secs = Duration::from_secs;
        if let Some(v) = k.min_ttl {
            s.min_ttl = secs(v);
        }
        if let Some(v) = k.max_ttl {
            s.max_ttl = secs(v);
        }
        if let Some(v) = k.default_ttl {
            s.default_ttl = secs(v);
        }
        if let Some(v) = k.refresh_ahead {
            s.refresh_ahead = v;
        }
        if let Some(v) = k.cooldown {
            s.cooldown = secs(v);
        }
        if let Some(v) = k.max_stale {
            s.max_stale = secs(v);
        }
        if let Some(v) = k.max_body {
            s.max_body = v;
        }
        if let Some(v) = k.connect_timeout {
            s.connect_timeout = secs(v);
        }
        if let Some(v) = k.total_timeout {
            s.total_timeout = secs(v);
        }
        if let Some(v) = k.allow_insecure_http {
            s.allow_insecure_http = v;
        }
        s
    }
}

/// What a request matching no route gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Refuse (403).
    #[default]
    Deny,
    /// Any valid token.
    Authenticated,
    /// No token needed.
    Public,
}

impl std::str::FromStr for Unmatched {
    type Err = String;

    /// Reads `deny`, `authenticated` or `public` (any case), as flags and variables give it.
    fn from_str(text: &str) -> Result<Unmatched, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "deny" => Ok(Unmatched::Deny),
            "authenticated" => Ok(Unmatched::Authenticated),
            "public" => Ok(Unmatched::Public),
            _ => Err(format!("{text:?} is not deny, authenticated or public")),
        }
    }
}

impl Unmatched {
    /// What unmatched requests get, in every mode: the configured value, else `deny` when there
    /// are routes (whatever they do not name is refused) and `authenticated` without any (any
    /// valid token passes: an issuer and an audience alone are a complete policy).
    pub fn resolve(configured: Option<Unmatched>, has_routes: bool) -> Unmatched {
        configured.unwrap_or(if has_routes {
            Unmatched::Deny
        } else {
            Unmatched::Authenticated
        })
    }

    /// The requirement applied to unmatched requests.
    pub fn requirement(self) -> Requirement {
        match self {
            Unmatched::Deny => Requirement::Deny,
            Unmatched::Authenticated => Requirement::Token(ScopeRequirement::default()),
            Unmatched::Public => Requirement::Public,
        }
    }
}

/// The scopes each issuer requires of every token (`issuers[].scopes`), for
/// [`crate::Engine::with_issuer_scopes`]: checked after verification like a route's, never in the
/// key registry's policy, so a token short of them is a verified token refused with
/// `insufficient_scope` (cached, and named in answers that name the principal).
pub fn issuer_scopes(issuers: &[IssuerSection]) -> Vec<(String, ScopeRequirement)> {
    issuers
        .iter()
        .filter(|section| !section.scopes.is_empty())
        .map(|section| {
            (
                section.issuer.clone(),
                ScopeRequirement::all_of(section.scopes.iter().cloned()),
            )
        })
        .collect()
}

/// Builds the key registry for `issuers`, with `keys`' cache settings; `file` names the source in
/// errors. No network access happens here: keys are fetched on first use or by prefetching.
pub fn build_registry(
    issuers: &[IssuerSection],
    keys: &KeysSection,
    file: &str,
) -> Result<Registry, ConfigError> {
    registry_from(issuers, &[], keys, file, None)
}

/// Like [`build_registry`], for a configuration replacing the one `previous` was built from: an
/// issuer whose `issuer`, key location (`jwks_url`, `jwks_file` or discovery) and `[keys]`
/// settings are unchanged keeps its key source from `previous` (the same cache, keys and
/// background refresher; see [`KeySource::same_source`]), with the new policy. Other issuers get
/// new sources, which fetch nothing yet. Errors are exactly those of [`build_registry`].
pub fn build_registry_reusing(
    issuers: &[IssuerSection],
    keys: &KeysSection,
    file: &str,
    previous: &Registry,
) -> Result<Registry, ConfigError> {
    registry_from(issuers, &[], keys, file, Some(previous))
}

/// What `[[issuers]]` and `[[routes]]` build for an [`crate::Engine`]: the key registry, the
/// route table and each issuer's own rules ([`crate::Engine::with_issuer_rules`]).
#[derive(Debug)]
pub struct PolicyParts {
    /// The key registry. Each issuer's verification policy accepts its own audiences and those of
    /// the routes that accept it; the engine then checks each request's route (or, for routes
    /// without `audiences`, the issuer's own audiences) against the verified token.
    pub registry: Registry,
    /// The routes, with their issuers, audiences and conditions.
    pub routes: RouteTable,
    /// Each issuer's audiences and conditions.
    pub issuer_rules: Vec<IssuerRules>,
}

/// Builds the registry, routes and issuer rules together (routes may name issuers and
/// audiences, which the registry must know); `previous` is the registry a reload replaces (see
/// [`build_registry_reusing`]).
pub fn build_policy(
    issuers: &[IssuerSection],
    routes: &[RouteSection],
    unmatched: Unmatched,
    keys: &KeysSection,
    file: &str,
    previous: Option<&Registry>,
) -> Result<PolicyParts, ConfigError> {
    Ok(PolicyParts {
        registry: registry_from(issuers, routes, keys, file, previous)?,
        routes: build_routes(routes, unmatched, file)?,
        issuer_rules: issuer_rules(issuers, file)?,
    })
}

/// One issuer's own rules, checked by the engine after verification on every request: the
/// audiences a route without its own `audiences` accepts, and the issuer's claim conditions.
#[derive(Debug)]
pub struct IssuerRules {
    /// The configured issuer (or template), as written.
    pub issuer: String,
    /// Its audiences.
    pub audiences: Vec<String>,
    /// Its conditions.
    pub conditions: Conditions,
}

/// Each issuer's audiences and compiled conditions; a condition that does not compile names the
/// file and key (`issuers[0].when`).
pub fn issuer_rules(
    issuers: &[IssuerSection],
    file: &str,
) -> Result<Vec<IssuerRules>, ConfigError> {
    issuers
        .iter()
        .enumerate()
        .map(|(i, section)| {
            Ok(IssuerRules {
                issuer: section.issuer.clone(),
                audiences: section.audiences.clone(),
                conditions: conditions(
                    &section.claims,
                    section.when.as_deref(),
                    file,
                    &format!("issuers[{i}]"),
                )?,
            })
        })
        .collect()
}

/// Compiles `claims` and `when`; errors name `key.claims` or `key.when`.
fn conditions(
    claims: &BTreeMap<String, Value>,
    when: Option<&str>,
    file: &str,
    key: &str,
) -> Result<Conditions, ConfigError> {
    Conditions::new(claims, when).map_err(|e| {
        let field = match e {
            crate::conditions::ConditionError::ClaimValue { .. } => "claims",
            _ => "when",
        };
        ConfigError::Invalid {
            file: file.to_owned(),
            key: format!("{key}.{field}"),
            message: e.to_string(),
        }
    })
}

/// The key source in `previous` for `issuer` with `kind` and `settings`, if there is one. A
/// JWKS file is never reused: reading it costs no network, and a reload is how an operator makes
/// a key removed from the file (a compromised one) stop verifying — a kept source would still
/// hold it, since files are otherwise re-read only for an unknown `kid`.
fn reusable_source(
    previous: Option<&Registry>,
    issuer: &str,
    kind: &SourceKind,
    settings: &CacheSettings,
) -> Option<KeySource> {
    if matches!(kind, SourceKind::File(_)) {
        return None;
    }
    previous?
        .entries()
        .iter()
        .find(|entry| {
            entry.policy().issuers() == [issuer]
                && entry.source().kind() == kind
                && entry.source().settings() == settings
        })
        .map(|entry| entry.source().clone())
}

fn registry_from(
    issuers: &[IssuerSection],
    routes: &[RouteSection],
    keys: &KeysSection,
    file: &str,
    previous: Option<&Registry>,
) -> Result<Registry, ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        key,
        message,
    };
    if issuers.is_empty() {
        return Err(invalid(
            "issuers".into(),
            "at least one issuer is required".into(),
        ));
    }
    for (r, route) in routes.iter().enumerate() {
        for (j, name) in route.issuers.iter().enumerate() {
            if !issuers.iter().any(|section| &section.issuer == name) {
                return Err(invalid(
                    format!("routes[{r}].issuers[{j}]"),
                    format!(
                        "{name:?} is not a configured issuer (name it exactly as in [[issuers]])"
                    ),
                ));
            }
        }
    }
    let settings = keys.settings();
    settings
        .validate()
        .map_err(|e| invalid("keys".into(), e.to_string()))?;
    let clock = Arc::new(SystemClock::new());
    let budget = Arc::new(FetchBudget::new(
        keys.tenant_fetches_per_minute
            .unwrap_or(jwtgate_keys::DEFAULT_TENANT_FETCHES_PER_MINUTE),
        clock.clone(),
    ));
    let mut entries = Vec::new();
    let mut templates = Vec::new();
    for (i, section) in issuers.iter().enumerate() {
        let key = |name: &str| format!("issuers[{i}].{name}");
        let template = IssuerTemplate::is_template(&section.issuer);
        let mut builder = Policy::builder()
            .leeway(section.leeway)
            .require_at_jwt(section.strict);
        if !template {
            builder = builder.issuer(section.issuer.clone());
        }
        let route_audiences = routes
            .iter()
            .filter(|r| r.issuers.is_empty() || r.issuers.contains(&section.issuer))
            .flat_map(|r| r.audiences.iter());
        let mut audiences: Vec<&String> = Vec::new();
        for audience in section.audiences.iter().chain(route_audiences) {
            if !audiences.contains(&audience) {
                audiences.push(audience);
            }
        }
        for audience in audiences {
            builder = builder.audience(audience.clone());
        }
        for client in &section.clients {
            builder = builder.allowed_client(client.clone());
        }
        if !section.algorithms.is_empty() {
            let mut set = AlgorithmSet::EMPTY;
            for name in &section.algorithms {
                let alg: Algorithm =
                    name.parse()
                        .map_err(|e: jwtgate_core::alg::UnknownAlgorithm| {
                            invalid(key("algorithms"), e.to_string())
                        })?;
                if alg.is_symmetric() {
                    return Err(invalid(
                            key("algorithms"),
                            format!("{alg} needs a shared secret; the gateway verifies with public keys only"),
                        ));
                }
                set.insert(alg);
            }
            builder = builder.algorithms(set);
        }
        let policy_error = |e: jwtgate_core::PolicyError| {
            let field = match e {
                jwtgate_core::PolicyError::NoAudience => "audiences",
                jwtgate_core::PolicyError::NoIssuer => "issuer",
                jwtgate_core::PolicyError::LeewayTooLarge(_) => "leeway",
                _ => "issuer",
            };
            invalid(key(field), e.to_string())
        };
        if section.jwks_url.is_some() && section.jwks_file.is_some() {
            return Err(invalid(
                key("jwks_url"),
                "give jwks_url or jwks_file, not both".into(),
            ));
        }
        if template {
            templates.push(tenant_issuer(
                section,
                builder,
                &settings,
                clock.clone(),
                budget.clone(),
                &key,
                &invalid,
            )?);
            continue;
        }
        if section.tenants.is_some() || section.max_tenants.is_some() {
            return Err(invalid(
                key("tenants"),
                "tenants and max_tenants belong to an issuer template (an issuer with a {tenant} path segment)".into(),
            ));
        }
        let policy = builder.build().map_err(policy_error)?;
        let kind = match (&section.jwks_url, &section.jwks_file) {
            (Some(url), _) => SourceKind::Url(
                jwtgate_keys::parse_url(url, settings.allow_insecure_http)
                    .map_err(|e| invalid(key("jwks_url"), e.to_string()))?,
            ),
            (None, Some(path)) => SourceKind::File(path.clone()),
            (None, None) => SourceKind::Discovery {
                issuer: section.issuer.clone(),
            },
        };
        let source = match reusable_source(previous, &section.issuer, &kind, &settings) {
            Some(source) => source,
            None => KeySource::new(kind, settings.clone(), clock.clone())
                .map_err(|e| invalid(key("issuer"), e.to_string()))?,
        };
        entries.push(IssuerEntry::new(policy, source));
    }
    Registry::with_templates(entries, templates)
        .map_err(|e| invalid("issuers".into(), e.to_string()))
}

/// The issuer template of `section` (its `issuer` has a `{placeholder}`): its allowlist, keys and
/// limits; `tenants = "any"` is logged as a warning.
fn tenant_issuer(
    section: &IssuerSection,
    builder: jwtgate_core::PolicyBuilder,
    settings: &CacheSettings,
    clock: Arc<SystemClock>,
    budget: Arc<FetchBudget>,
    key: &dyn Fn(&str) -> String,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<TenantIssuer, ConfigError> {
    let template = IssuerTemplate::parse(&section.issuer, settings.allow_insecure_http)
        .map_err(|e| invalid(key("issuer"), e.to_string()))?;
    let tenants = match &section.tenants {
        None => {
            return Err(invalid(
                key("tenants"),
                format!(
                    "an issuer template needs `tenants`: the allowed values of {{{}}} (a list), or \"any\" written out",
                    template.placeholder()
                ),
            ))
        }
        Some(TenantsSection::Word(word)) if word == "any" => {
            tracing::warn!(
                issuer = %section.issuer,
                "tenants = \"any\": tokens of every tenant of this provider are accepted (keys are still fetched per tenant, within the fetch budget)"
            );
            Tenants::Any
        }
        Some(TenantsSection::Word(word)) => {
            return Err(invalid(
                key("tenants"),
                format!("{word:?}: write a list of tenants, or \"any\""),
            ))
        }
        Some(TenantsSection::List(list)) => Tenants::only(list.iter().cloned())
            .map_err(|e| invalid(key("tenants"), e.to_string()))?,
    };
    let keys = match (&section.jwks_url, &section.jwks_file) {
        (Some(url), _) => TenantKeys::Url(url.clone()),
        (None, Some(path)) => TenantKeys::File(path.clone()),
        (None, None) => TenantKeys::Discovery,
    };
    let max_tenants = section
        .max_tenants
        .unwrap_or(jwtgate_keys::DEFAULT_MAX_TENANTS);
    TenantIssuer::new(
        template,
        tenants,
        builder,
        keys,
        settings.clone(),
        clock,
        budget,
        max_tenants,
    )
    .map_err(|e| {
        let field = match e {
            jwtgate_keys::TemplateError::ZeroMaxTenants => "max_tenants",
            jwtgate_keys::TemplateError::Policy(jwtgate_core::PolicyError::NoAudience) => {
                "audiences"
            }
            jwtgate_keys::TemplateError::Url(_) if section.jwks_url.is_some() => "jwks_url",
            _ => "issuer",
        };
        invalid(key(field), e.to_string())
    })
}

/// Builds the route table for `routes` with `unmatched` as the default; `file` names the source in
/// errors.
pub fn build_routes(
    routes: &[RouteSection],
    unmatched: Unmatched,
    file: &str,
) -> Result<RouteTable, ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        key,
        message,
    };
    let mut table = Vec::new();
    for (i, section) in routes.iter().enumerate() {
        if section.public && !section.scopes.is_empty() {
            return Err(invalid(
                format!("routes[{i}].public"),
                "a public route cannot require scopes".into(),
            ));
        }
        let checks_token = !section.issuers.is_empty()
            || !section.audiences.is_empty()
            || !section.claims.is_empty()
            || section.when.is_some()
            || section.dpop.is_some();
        if section.public && checks_token {
            return Err(invalid(
                format!("routes[{i}].public"),
                "a public route checks no token: it cannot name issuers, audiences, claims, when or dpop"
                    .into(),
            ));
        }
        let has_mcp_rules = !(section.rpc_methods.is_empty()
            && section.tools.is_empty()
            && section.prompts.is_empty()
            && section.resources.is_empty());
        if has_mcp_rules && !section.mcp {
            return Err(invalid(
                format!("routes[{i}]"),
                "rpc_methods, tools, prompts and resources are rules of an MCP route: add mcp = true"
                    .into(),
            ));
        }
        if section.mcp && section.public {
            return Err(invalid(
                format!("routes[{i}].public"),
                "an MCP route checks tokens: it cannot be public".into(),
            ));
        }
        if section.mcp && section.audiences.is_empty() {
            return Err(invalid(
                format!("routes[{i}].mcp"),
                "an MCP route needs [resource] resource (its canonical URI is the route's audience), and a front end that reads request bodies (jwtgate serve --upstream, or the tower layer)".into(),
            ));
        }
        if section.audiences.iter().any(String::is_empty) {
            return Err(invalid(
                format!("routes[{i}].audiences"),
                "an audience must not be empty".into(),
            ));
        }
        let policy = RoutePolicy::new(
            section.issuers.clone(),
            section.audiences.clone(),
            conditions(
                &section.claims,
                section.when.as_deref(),
                file,
                &format!("routes[{i}]"),
            )?,
        )
        .with_dpop(section.dpop)
        .with_mcp(section.mcp.then(|| crate::mcp::McpRules::new(section)));
        let requirement = if section.public {
            Requirement::Public
        } else if section.any {
            Requirement::Token(ScopeRequirement::any_of(section.scopes.iter().cloned()))
        } else {
            Requirement::Token(ScopeRequirement::all_of(section.scopes.iter().cloned()))
        };
        let methods: Vec<&str> = section.methods.iter().map(String::as_str).collect();
        table.push(
            Route::new(&methods, &section.path, requirement)
                .map_err(|e| invalid(format!("routes[{i}]"), e.to_string()))?
                .with_policy(policy),
        );
    }
    Ok(RouteTable::new(table, unmatched.requirement()))
}
