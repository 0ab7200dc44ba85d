//! The gateway's configuration: a TOML file (`jwtgate serve --config FILE`), or the same settings
//! from flags for the single-issuer case. Every setting and its default is documented in
//! `docs/configuration.md`; [`GatewayConfig::build`] turns a configuration into a ready
//! [`Gatekeeper`] and [`ServerOptions`], failing with the key that is wrong and why.

use crate::bearer::TokenLocations;
use crate::cache::{TokenCache, DEFAULT_CAPACITY, DEFAULT_MAX_AGE};
use crate::gatekeeper::{Cors, Gatekeeper};
use crate::identity::{IdentityHeaders, DEFAULT_MAX_VALUE_LEN};
use crate::proxy::ProxyOptions;
use crate::routes::{Requirement, Route, RouteTable};
use crate::server::ServerOptions;
use jwtgate_core::{Algorithm, AlgorithmSet, Policy, ScopeRequirement};
use jwtgate_keys::{CacheSettings, IssuerEntry, KeySource, Registry, SourceKind, SystemClock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_realm() -> String {
    "jwtgate".to_owned()
}
fn default_forward_auth() -> String {
    "/auth".to_owned()
}
fn default_health() -> String {
    "/healthz".to_owned()
}
fn default_ready() -> String {
    "/readyz".to_owned()
}
fn default_metrics() -> String {
    "/metrics".to_owned()
}
fn default_invalid_request_status() -> u16 {
    400
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Realm in `WWW-Authenticate` (default `jwtgate`).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Forward-auth endpoint path (default `/auth`; empty disables it).
    #[serde(default = "default_forward_auth")]
    pub forward_auth_path: String,
    /// Status for `invalid_request` at the forward-auth endpoint (default 400; nginx's
    /// `auth_request` only understands 2xx/401/403, so its recipe sets 401).
    #[serde(default = "default_invalid_request_status")]
    pub forward_auth_invalid_request_status: u16,
    /// Liveness path (default `/healthz`).
    #[serde(default = "default_health")]
    pub health_path: String,
    /// Readiness path: 200 when every issuer's keys are loaded (default `/readyz`).
    #[serde(default = "default_ready")]
    pub ready_path: String,
    /// Prometheus metrics path (default `/metrics`).
    #[serde(default = "default_metrics")]
    pub metrics_path: String,
    /// What a request matching no route gets: `deny` (default), `authenticated` (any valid
    /// token) or `public`.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// TLS certificate chain (PEM) for the listener; with `tls_key`, the listener serves HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            realm: default_realm(),
            forward_auth_path: default_forward_auth(),
            forward_auth_invalid_request_status: default_invalid_request_status(),
            health_path: default_health(),
            ready_path: default_ready(),
            metrics_path: default_metrics(),
            unmatched: Unmatched::default(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The default for unmatched requests.
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

/// `[[issuers]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// The issuer, exactly as in `iss`.
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
}

/// `[[routes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            scopes: Vec::new(),
            any: false,
            public: false,
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

/// `[token]`: where else the token may be.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Cookie holding the token.
    #[serde(default)]
    pub cookie: Option<String>,
    /// Query parameter holding the token (discouraged by RFC 6750).
    #[serde(default)]
    pub query: Option<String>,
}

fn subject_header() -> String {
    "X-Auth-Subject".to_owned()
}
fn issuer_header() -> String {
    "X-Auth-Issuer".to_owned()
}
fn scopes_header() -> String {
    "X-Auth-Scopes".to_owned()
}
fn max_value_len() -> usize {
    DEFAULT_MAX_VALUE_LEN
}

/// `[identity]`: the headers carrying the verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Subject header (default `X-Auth-Subject`).
    #[serde(default = "subject_header")]
    pub subject: String,
    /// Issuer header (default `X-Auth-Issuer`).
    #[serde(default = "issuer_header")]
    pub issuer: String,
    /// Scopes header (default `X-Auth-Scopes`).
    #[serde(default = "scopes_header")]
    pub scopes: String,
    /// Further claims: claim name → header name.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Longest value copied; longer ones are left out (default 4096).
    #[serde(default = "max_value_len")]
    pub max_value_len: usize,
}

impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            subject: subject_header(),
            issuer: issuer_header(),
            scopes: scopes_header(),
            claims: BTreeMap::new(),
            max_value_len: max_value_len(),
        }
    }
}

fn cache_capacity() -> usize {
    DEFAULT_CAPACITY
}
fn cache_max_age() -> i64 {
    DEFAULT_MAX_AGE
}

/// `[cache]`: the verified-token cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Entries (default 10000; 0 disables the cache).
    #[serde(default = "cache_capacity")]
    pub capacity: usize,
    /// Longest life of an entry in seconds (default 300).
    #[serde(default = "cache_max_age")]
    pub max_age: i64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            capacity: cache_capacity(),
            max_age: cache_max_age(),
        }
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
}

/// `[cors]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    /// Allowed origins (exact) or `*`.
    pub origins: Vec<String>,
    /// Allowed methods (default GET, POST, PUT, PATCH, DELETE).
    #[serde(default = "cors_methods")]
    pub methods: Vec<String>,
    /// Allowed request headers (default Authorization, Content-Type).
    #[serde(default = "cors_headers")]
    pub headers: Vec<String>,
    /// Preflight cache lifetime in seconds (default 600).
    #[serde(default = "cors_max_age")]
    pub max_age: u64,
}

fn cors_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}
fn cors_headers() -> Vec<String> {
    ["Authorization", "Content-Type"].map(String::from).to_vec()
}
fn cors_max_age() -> u64 {
    600
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listener and endpoints.
    #[serde(default)]
    pub server: ServerSection,
    /// Accepted issuers (at least one).
    #[serde(default)]
    pub issuers: Vec<IssuerSection>,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// Token locations.
    #[serde(default)]
    pub token: TokenSection,
    /// Identity headers.
    #[serde(default)]
    pub identity: IdentitySection,
    /// Verified-token cache.
    #[serde(default)]
    pub cache: CacheSection,
    /// Key cache.
    #[serde(default)]
    pub keys: KeysSection,
    /// CORS.
    #[serde(default)]
    pub cors: Option<CorsSection>,
    /// Reverse proxy.
    #[serde(default)]
    pub proxy: Option<ProxyOptions>,
}

/// A built gateway: the decision maker and the server options.
#[derive(Debug)]
pub struct BuiltGateway {
    /// Decides every request.
    pub gatekeeper: Arc<Gatekeeper>,
    /// Listener, endpoints, proxy.
    pub options: ServerOptions,
}

impl GatewayConfig {
    /// Parses TOML; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<GatewayConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })
    }

    /// The effective configuration as TOML (defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything and builds the gateway; `file` names the source in errors.
    pub fn build(&self, file: &str) -> Result<BuiltGateway, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message,
        };
        if self.issuers.is_empty() {
            return Err(invalid(
                "issuers".into(),
                "at least one issuer is required".into(),
            ));
        }
        let settings = self.key_settings();
        settings
            .validate()
            .map_err(|e| invalid("keys".into(), e.to_string()))?;
        let clock = Arc::new(SystemClock::new());
        let mut entries = Vec::new();
        for (i, section) in self.issuers.iter().enumerate() {
            let key = |name: &str| format!("issuers[{i}].{name}");
            let mut builder = Policy::builder()
                .issuer(section.issuer.clone())
                .leeway(section.leeway)
                .require_at_jwt(section.strict)
                .scopes(ScopeRequirement::all_of(section.scopes.iter().cloned()));
            for audience in &section.audiences {
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
            let policy = builder.build().map_err(|e| {
                let field = match e {
                    jwtgate_core::PolicyError::NoAudience => "audiences",
                    jwtgate_core::PolicyError::NoIssuer => "issuer",
                    jwtgate_core::PolicyError::LeewayTooLarge(_) => "leeway",
                    _ => "issuer",
                };
                invalid(key(field), e.to_string())
            })?;
            let kind = match (&section.jwks_url, &section.jwks_file) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        key("jwks_url"),
                        "give jwks_url or jwks_file, not both".into(),
                    ))
                }
                (Some(url), None) => SourceKind::Url(
                    jwtgate_keys::parse_url(url, settings.allow_insecure_http)
                        .map_err(|e| invalid(key("jwks_url"), e.to_string()))?,
                ),
                (None, Some(path)) => SourceKind::File(path.clone()),
                (None, None) => SourceKind::Discovery {
                    issuer: section.issuer.clone(),
                },
            };
            let source = KeySource::new(kind, settings.clone(), clock.clone())
                .map_err(|e| invalid(key("issuer"), e.to_string()))?;
            entries.push(IssuerEntry::new(policy, source));
        }
        let registry =
            Registry::new(entries).map_err(|e| invalid("issuers".into(), e.to_string()))?;

        let mut routes = Vec::new();
        for (i, section) in self.routes.iter().enumerate() {
            if section.public && !section.scopes.is_empty() {
                return Err(invalid(
                    format!("routes[{i}].public"),
                    "a public route cannot require scopes".into(),
                ));
            }
            let requirement = if section.public {
                Requirement::Public
            } else if section.any {
                Requirement::Token(ScopeRequirement::any_of(section.scopes.iter().cloned()))
            } else {
                Requirement::Token(ScopeRequirement::all_of(section.scopes.iter().cloned()))
            };
            let methods: Vec<&str> = section.methods.iter().map(String::as_str).collect();
            routes.push(
                Route::new(&methods, &section.path, requirement)
                    .map_err(|e| invalid(format!("routes[{i}]"), e.to_string()))?,
            );
        }
        let default = match self.server.unmatched {
            Unmatched::Deny => Requirement::Deny,
            Unmatched::Authenticated => Requirement::Token(ScopeRequirement::default()),
            Unmatched::Public => Requirement::Public,
        };
        let mut identity = IdentityHeaders::with_names(
            &self.identity.subject,
            &self.identity.issuer,
            &self.identity.scopes,
        )
        .map_err(|e| invalid("identity".into(), e.to_string()))?
        .max_value_len(self.identity.max_value_len);
        for (claim, header) in &self.identity.claims {
            identity = identity
                .map_claim(claim, header)
                .map_err(|e| invalid(format!("identity.claims.{claim}"), e.to_string()))?;
        }
        let mut gatekeeper = Gatekeeper::new(registry, RouteTable::new(routes, default))
            .with_realm(self.server.realm.clone())
            .with_identity(identity)
            .with_locations(TokenLocations {
                cookie: self.token.cookie.clone(),
                query: self.token.query.clone(),
            });
        if self.cache.capacity > 0 {
            if self.cache.max_age <= 0 {
                return Err(invalid("cache.max_age".into(), "must be positive".into()));
            }
            gatekeeper =
                gatekeeper.with_cache(TokenCache::new(self.cache.capacity, self.cache.max_age));
        }
        if let Some(cors) = &self.cors {
            if cors.origins.is_empty() {
                return Err(invalid(
                    "cors.origins".into(),
                    "list at least one origin".into(),
                ));
            }
            gatekeeper = gatekeeper.with_cors(Cors {
                origins: cors.origins.clone(),
                methods: cors.methods.clone(),
                headers: cors.headers.clone(),
                max_age: cors.max_age,
            });
        }
        for (name, path) in [
            ("server.forward_auth_path", &self.server.forward_auth_path),
            ("server.health_path", &self.server.health_path),
            ("server.ready_path", &self.server.ready_path),
            ("server.metrics_path", &self.server.metrics_path),
        ] {
            if !path.is_empty() && !path.starts_with('/') {
                return Err(invalid(
                    name.into(),
                    "must start with '/' (or be empty to disable)".into(),
                ));
            }
        }
        let invalid_request_status = match self.server.forward_auth_invalid_request_status {
            code @ (400 | 401 | 403) => code,
            other => {
                return Err(invalid(
                    "server.forward_auth_invalid_request_status".into(),
                    format!("{other} is not 400, 401 or 403"),
                ))
            }
        };
        if let Some(proxy) = &self.proxy {
            proxy
                .validate()
                .map_err(|message| invalid(format!("proxy.{}", message.0), message.1))?;
        }
        Ok(BuiltGateway {
            gatekeeper: Arc::new(gatekeeper),
            options: ServerOptions {
                listen: self.server.listen,
                forward_auth_path: non_empty(&self.server.forward_auth_path),
                forward_auth_invalid_request_status: invalid_request_status,
                health_path: non_empty(&self.server.health_path),
                ready_path: non_empty(&self.server.ready_path),
                metrics_path: non_empty(&self.server.metrics_path),
                proxy: self.proxy.clone(),
                tls: self
                    .server
                    .tls_cert
                    .clone()
                    .zip(self.server.tls_key.clone()),
            },
        })
    }

    /// The key cache settings with this file's overrides.
    pub fn key_settings(&self) -> CacheSettings {
        let mut s = CacheSettings::default();
        let k = &self.keys;
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

fn non_empty(path: &str) -> Option<String> {
    (!path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_builds_with_defaults() {
        let config = GatewayConfig::from_toml(
            r#"
            [[issuers]]
            issuer = "https://t.auth0.com/"
            audiences = ["https://api/"]
            jwks_url = "https://t.auth0.com/.well-known/jwks.json"

            [[routes]]
            methods = ["GET"]
            path = "/api/users"
            scopes = ["read:users"]
            "#,
            "test.toml",
        );
        let config = config.unwrap_or_default();
        assert_eq!(config.server.listen, default_listen());
        let built = config.build("test.toml");
        assert!(built.is_ok(), "{built:?}");
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let err = |text: &str| match GatewayConfig::from_toml(text, "gw.toml")
            .and_then(|c| c.build("gw.toml").map(|_| ()))
        {
            Err(e) => e.to_string(),
            Ok(()) => "ok".to_owned(),
        };
        assert_eq!(
            err(""),
            "gw.toml: `issuers`: at least one issuer is required"
        );
        assert!(
            err("[[issuers]]\nissuer = \"https://i/\"\naudiences = []\n")
                .starts_with("gw.toml: `issuers[0].audiences`")
        );
        assert!(err(
            "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\n"
        )
        .contains("issuers[0].algorithms"));
        assert!(err("[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_url = \"http://example.com/k\"\n").contains("issuers[0].jwks_url"));
        assert!(err("[server]\nlisten = 5\n").starts_with("gw.toml: "));
        assert!(err("[serverr]\n").contains("unknown field"));
        assert!(err("[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\n[[routes]]\npath = \"api\"\n").contains("routes[0]"));
    }
}
