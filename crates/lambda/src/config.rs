//! The authorizer's configuration: a TOML file with the gateway's `[[issuers]]`, `[[routes]]`,
//! `[keys]` and `[paths]` sections plus `[cache]` and `[lambda]`, and/or environment variables
//! (`JWTGATE_*`, see [`crate::cli::LambdaArgs`]) applied on top of it. [`LambdaConfig::build`]
//! checks everything and returns a ready [`Authorizer`]; every mistake names where it was made
//! (the file and key, or the environment variable) and what is wrong.

use crate::answer::{ContextClaim, Options};
pub use crate::answer::{HttpApiResponse, PolicyResource};
use crate::authorizer::Authorizer;
use jwtgate_engine::path::PathPolicy;
use jwtgate_engine::token_cache::{TokenCache, DEFAULT_CAPACITY, DEFAULT_MAX_AGE};
use jwtgate_engine::{
    build_registry, build_routes, issuer_scopes, ConfigError, Engine, IssuerSection, KeysSection,
    RouteSection, Unmatched,
};
use serde::{Deserialize, Serialize};

fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}
fn default_max_age() -> i64 {
    DEFAULT_MAX_AGE
}
fn default_prefetch() -> bool {
    true
}

/// `[cache]`: the verified-token cache (the same keys as the gateway's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Entries (default 5000; 0 disables the cache).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Longest life of an entry in seconds (default 300).
    #[serde(default = "default_max_age")]
    pub max_age: i64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            capacity: default_capacity(),
            max_age: default_max_age(),
        }
    }
}

/// `[lambda]`: what only the authorizer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaSection {
    /// The policy resource (default: `wildcard`, or `method` when routes are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_resource: Option<PolicyResource>,
    /// HTTP API 2.0 answer shape (default `simple`).
    #[serde(default)]
    pub http_api_response: HttpApiResponse,
    /// Claims copied into the answer's `context`: `name`, or `name=key` to rename.
    #[serde(default)]
    pub context_claims: Vec<String>,
    /// Fetch every issuer's keys during init (default true). Keys from a file are always loaded
    /// during init, and a file that cannot be used fails the init phase.
    #[serde(default = "default_prefetch")]
    pub prefetch: bool,
    /// What requests matching no route get (default: `authenticated` without routes, `deny`
    /// with routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<Unmatched>,
    /// Print each decision as a CloudWatch Embedded Metric Format line on stdout (default
    /// false: custom metrics cost money in CloudWatch).
    #[serde(default)]
    pub metrics: bool,
}

impl Default for LambdaSection {
    fn default() -> Self {
        LambdaSection {
            policy_resource: None,
            http_api_response: HttpApiResponse::default(),
            context_claims: Vec::new(),
            prefetch: default_prefetch(),
            unmatched: None,
            metrics: false,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaConfig {
    /// Accepted issuers (at least one).
    #[serde(default)]
    pub issuers: Vec<IssuerSection>,
    /// Per-route rules, first match wins (the `methodArn`'s method and path are matched).
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// Key cache settings.
    #[serde(default)]
    pub keys: KeysSection,
    /// Verified-token cache.
    #[serde(default)]
    pub cache: CacheSection,
    /// Which risky request-path features pass as data (all refused by default).
    #[serde(default)]
    pub paths: PathPolicy,
    /// Authorizer settings.
    #[serde(default)]
    pub lambda: LambdaSection,
}

/// Where a setting came from, for error messages.
pub const ENVIRONMENT: &str = "environment";

impl LambdaConfig {
    /// Parses TOML; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<LambdaConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The policy resource in force: the configured one, else `method` with routes and
    /// `wildcard` without.
    pub fn effective_policy_resource(&self) -> PolicyResource {
        self.lambda
            .policy_resource
            .unwrap_or(if self.routes.is_empty() {
                PolicyResource::Wildcard
            } else {
                PolicyResource::Method
            })
    }

    /// Checks everything and builds the authorizer; `file` names the source in errors. Nothing is
    /// fetched here (see [`Authorizer::prepare_keys`]).
    pub fn build(&self, file: &str) -> Result<Authorizer, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.issuers.is_empty() {
            return Err(invalid(
                "issuers",
                "no issuer configured: set JWTGATE_ISSUER and JWTGATE_AUDIENCE, or JWTGATE_CONFIG to a file with [[issuers]]".into(),
            ));
        }
        let registry = build_registry(&self.issuers, &self.keys, file)?;
        let unmatched = self.lambda.unmatched.unwrap_or(if self.routes.is_empty() {
            Unmatched::Authenticated
        } else {
            Unmatched::Deny
        });
        let routes = build_routes(&self.routes, unmatched, file)?;
        let policy_resource = self.effective_policy_resource();
        if policy_resource == PolicyResource::Wildcard && !self.routes.is_empty() {
            return Err(invalid(
                "lambda.policy_resource",
                "`wildcard` cannot be combined with per-route rules: API Gateway caches the policy per token and would apply one route's Allow to every route. Use `method` (the default with routes) and add the method and path to the authorizer's identity sources, or drop the routes".into(),
            ));
        }
        let mut context_claims = Vec::new();
        for (i, spec) in self.lambda.context_claims.iter().enumerate() {
            context_claims.push(
                ContextClaim::parse(spec)
                    .map_err(|m| invalid(&format!("lambda.context_claims[{i}]"), m))?,
            );
        }
        let mut engine = Engine::new(registry, routes)
            .with_path_policy(self.paths)
            .with_issuer_scopes(issuer_scopes(&self.issuers));
        if self.cache.capacity > 0 {
            if self.cache.max_age <= 0 {
                return Err(invalid("cache.max_age", "must be positive".into()));
            }
            engine = engine.with_cache(TokenCache::new(self.cache.capacity, self.cache.max_age));
        }
        Ok(Authorizer::new(
            engine,
            Options {
                policy_resource,
                http_api_response: self.lambda.http_api_response,
                context_claims,
                metrics: self.lambda.metrics,
            },
        ))
    }
}

/// Settings given as environment variables (or the matching flags), applied over a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `JWTGATE_ISSUER`: adds an issuer.
    pub issuer: Option<String>,
    /// `JWTGATE_AUDIENCE`.
    pub audiences: Vec<String>,
    /// `JWTGATE_SCOPES`: required of every token of that issuer (comma- or space-separated).
    pub scopes: Vec<String>,
    /// `JWTGATE_JWKS_URL`.
    pub jwks_url: Option<String>,
    /// `JWTGATE_JWKS_FILE`.
    pub jwks_file: Option<std::path::PathBuf>,
    /// `JWTGATE_ALGORITHMS`.
    pub algorithms: Vec<String>,
    /// `JWTGATE_LEEWAY` (seconds).
    pub leeway: Option<String>,
    /// `JWTGATE_CLIENTS`.
    pub clients: Vec<String>,
    /// `JWTGATE_STRICT` (RFC 9068 profile).
    pub strict: Option<String>,
    /// `JWTGATE_ROUTES`: `METHODS PATH [SCOPE …]`, added after the file's.
    pub routes: Vec<String>,
    /// `JWTGATE_UNMATCHED`: `deny`, `authenticated` or `public`.
    pub unmatched: Option<String>,
    /// `JWTGATE_POLICY_RESOURCE`: `wildcard` or `method`.
    pub policy_resource: Option<String>,
    /// `JWTGATE_CONTEXT_CLAIMS`.
    pub context_claims: Vec<String>,
    /// `JWTGATE_HTTP_API_RESPONSE`: `simple` or `iam`.
    pub http_api_response: Option<String>,
    /// `JWTGATE_PREFETCH`: `true` or `false`.
    pub prefetch: Option<String>,
    /// `JWTGATE_METRICS`: `true` or `false`.
    pub metrics: Option<String>,
    /// `JWTGATE_TOKEN_CACHE`: verified-token cache entries (0 disables).
    pub token_cache: Option<String>,
    /// `JWTGATE_PATHS_ALLOW_ENCODED_SLASH`: `true` or `false`.
    pub paths_allow_encoded_slash: Option<String>,
    /// `JWTGATE_PATHS_ALLOW_BACKSLASH`: `true` or `false`.
    pub paths_allow_backslash: Option<String>,
    /// `JWTGATE_PATHS_ALLOW_SEMICOLON`: `true` or `false`.
    pub paths_allow_semicolon: Option<String>,
    /// `JWTGATE_PATHS_ALLOW_NON_UTF8`: `true` or `false`.
    pub paths_allow_non_utf8: Option<String>,
    /// `JWTGATE_PATHS_ALLOW_DOUBLE_ENCODING`: `true` or `false`.
    pub paths_allow_double_encoding: Option<String>,
}

fn env_error(var: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        file: ENVIRONMENT.to_owned(),
        key: var.to_owned(),
        message,
    }
}

fn parse_bool(var: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(env_error(var, format!("{text:?} is not true or false"))),
    }
}

fn words(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split([',', ' ', '\t']))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The environment variable behind an `issuers[N].field` key of the issuer added from it.
fn issuer_variable(field: &str) -> &'static str {
    match field {
        "audiences" => "JWTGATE_AUDIENCE",
        "algorithms" => "JWTGATE_ALGORITHMS",
        "jwks_url" => "JWTGATE_JWKS_URL",
        "jwks_file" => "JWTGATE_JWKS_FILE",
        "leeway" => "JWTGATE_LEEWAY",
        "scopes" => "JWTGATE_SCOPES",
        "clients" => "JWTGATE_CLIENTS",
        _ => "JWTGATE_ISSUER",
    }
}

/// `N` of a `routes[N]…` key.
fn route_index(key: &str) -> Option<usize> {
    key.strip_prefix("routes[")?.split(']').next()?.parse().ok()
}

impl Overrides {
    /// Applies these settings to `config`.
    pub fn apply(&self, config: &mut LambdaConfig) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            let audiences = words(&self.audiences);
            if audiences.is_empty() {
                return Err(env_error(
                    "JWTGATE_AUDIENCE",
                    format!("JWTGATE_ISSUER is {issuer:?} but no audience is set: give the API identifier(s) tokens must be issued for"),
                ));
            }
            let leeway = match &self.leeway {
                None => 0,
                Some(text) => text.trim().parse::<u64>().map_err(|_| {
                    env_error(
                        "JWTGATE_LEEWAY",
                        format!("{text:?} is not a number of seconds"),
                    )
                })?,
            };
            let strict = match &self.strict {
                None => false,
                Some(text) => parse_bool("JWTGATE_STRICT", text)?,
            };
            config.issuers.push(IssuerSection {
                issuer: issuer.clone(),
                audiences,
                jwks_url: self.jwks_url.clone().filter(|s| !s.is_empty()),
                jwks_file: self.jwks_file.clone().filter(|p| !p.as_os_str().is_empty()),
                algorithms: words(&self.algorithms),
                leeway,
                scopes: words(&self.scopes),
                strict,
                clients: words(&self.clients),
            });
        } else {
            for (var, set) in [
                ("JWTGATE_AUDIENCE", !self.audiences.is_empty()),
                ("JWTGATE_SCOPES", !self.scopes.is_empty()),
                ("JWTGATE_JWKS_URL", self.jwks_url.is_some()),
                ("JWTGATE_JWKS_FILE", self.jwks_file.is_some()),
                ("JWTGATE_ALGORITHMS", !self.algorithms.is_empty()),
                ("JWTGATE_LEEWAY", self.leeway.is_some()),
                ("JWTGATE_CLIENTS", !self.clients.is_empty()),
            ] {
                if set {
                    return Err(env_error(
                        var,
                        format!("{var} is set but JWTGATE_ISSUER is not: it belongs to the issuer given by JWTGATE_ISSUER"),
                    ));
                }
            }
        }
        for spec in self.routes.iter().filter(|s| !s.trim().is_empty()) {
            config
                .routes
                .push(RouteSection::parse_spec(spec).map_err(|e| env_error("JWTGATE_ROUTES", e))?);
        }
        if let Some(text) = &self.unmatched {
            config.lambda.unmatched = Some(match text.trim().to_ascii_lowercase().as_str() {
                "deny" => Unmatched::Deny,
                "authenticated" => Unmatched::Authenticated,
                "public" => Unmatched::Public,
                _ => {
                    return Err(env_error(
                        "JWTGATE_UNMATCHED",
                        format!("{text:?} is not deny, authenticated or public"),
                    ))
                }
            });
        }
        if let Some(text) = &self.policy_resource {
            config.lambda.policy_resource = Some(PolicyResource::parse(text).ok_or_else(|| {
                env_error(
                    "JWTGATE_POLICY_RESOURCE",
                    format!("{text:?} is not wildcard or method"),
                )
            })?);
        }
        if let Some(text) = &self.http_api_response {
            config.lambda.http_api_response = HttpApiResponse::parse(text).ok_or_else(|| {
                env_error(
                    "JWTGATE_HTTP_API_RESPONSE",
                    format!("{text:?} is not simple or iam"),
                )
            })?;
        }
        config.lambda.context_claims.extend(
            self.context_claims
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        );
        if let Some(text) = &self.prefetch {
            config.lambda.prefetch = parse_bool("JWTGATE_PREFETCH", text)?;
        }
        if let Some(text) = &self.metrics {
            config.lambda.metrics = parse_bool("JWTGATE_METRICS", text)?;
        }
        if let Some(text) = &self.token_cache {
            config.cache.capacity = text.trim().parse().map_err(|_| {
                env_error(
                    "JWTGATE_TOKEN_CACHE",
                    format!("{text:?} is not a number of entries (0 disables the cache)"),
                )
            })?;
        }
        let paths = &mut config.paths;
        for (var, text, setting) in [
            (
                "JWTGATE_PATHS_ALLOW_ENCODED_SLASH",
                &self.paths_allow_encoded_slash,
                &mut paths.allow_encoded_slash,
            ),
            (
                "JWTGATE_PATHS_ALLOW_BACKSLASH",
                &self.paths_allow_backslash,
                &mut paths.allow_backslash,
            ),
            (
                "JWTGATE_PATHS_ALLOW_SEMICOLON",
                &self.paths_allow_semicolon,
                &mut paths.allow_semicolon,
            ),
            (
                "JWTGATE_PATHS_ALLOW_NON_UTF8",
                &self.paths_allow_non_utf8,
                &mut paths.allow_non_utf8,
            ),
            (
                "JWTGATE_PATHS_ALLOW_DOUBLE_ENCODING",
                &self.paths_allow_double_encoding,
                &mut paths.allow_double_encoding,
            ),
        ] {
            if let Some(text) = text {
                *setting = parse_bool(var, text)?;
            }
        }
        Ok(())
    }

    /// Builds the configuration: the file at `file` (if any) with these settings on top, and
    /// checks it by building the authorizer. Errors about the issuer added from the environment
    /// name its variable.
    pub fn load(
        &self,
        file: Option<&std::path::Path>,
    ) -> Result<(LambdaConfig, Authorizer), ConfigError> {
        let (mut config, name) = match file {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Syntax {
                    file: name.clone(),
                    message: format!("cannot read the configuration file: {e}"),
                })?;
                (LambdaConfig::from_toml(&text, &name)?, name)
            }
            None => (LambdaConfig::default(), ENVIRONMENT.to_owned()),
        };
        let file_issuers = config.issuers.len();
        let file_routes = config.routes.len();
        self.apply(&mut config)?;
        let authorizer = config.build(&name).map_err(|error| match error {
            ConfigError::Invalid { key, message, .. }
                if key.starts_with(&format!("issuers[{file_issuers}].")) =>
            {
                let field = key.rsplit('.').next().unwrap_or_default();
                env_error(issuer_variable(field), message)
            }
            ConfigError::Invalid { key, message, .. }
                if self.policy_resource.is_some() && key == "lambda.policy_resource" =>
            {
                env_error("JWTGATE_POLICY_RESOURCE", message)
            }
            ConfigError::Invalid { key, message, .. }
                if key.starts_with("lambda.context_claims[") && !self.context_claims.is_empty() =>
            {
                env_error("JWTGATE_CONTEXT_CLAIMS", message)
            }
            ConfigError::Invalid { key, message, .. }
                if route_index(&key).is_some_and(|i| i >= file_routes) =>
            {
                env_error("JWTGATE_ROUTES", message)
            }
            other => other,
        })?;
        Ok((config, authorizer))
    }
}
