//! The authorizer's configuration: a TOML file with the gateway's `[[issuers]]`, `[[routes]]`,
//! `[keys]` and `[paths]` sections plus `[cache]` and `[lambda]`, and/or environment variables
//! (`JWTGATE_*`, see [`crate::cli::LambdaArgs`]) applied on top of it. [`LambdaConfig::build`]
//! checks everything and returns a ready [`Authorizer`]; every mistake names where it was made
//! (the file and key, or the environment variable) and what is wrong.

use crate::answer::{ContextClaim, Options};
pub use crate::answer::{HttpApiResponse, PolicyResource};
use crate::authorizer::Authorizer;
use jwtgate_engine::args::{blame, parse_bool, setting_error, EngineArgs, EngineSettings};
use jwtgate_engine::mtls::CertificateSource;
use jwtgate_engine::path::PathPolicy;
use jwtgate_engine::{
    issuer_scopes, CacheSection, ConfigError, Engine, IssuerSection, KeysSection, RouteSection,
    Unmatched,
};
use serde::{Deserialize, Serialize};

fn default_prefetch() -> bool {
    true
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
    /// API Gateway's mutual TLS is on: a certificate-bound token (RFC 8705, `cnf["x5t#S256"]`)
    /// must come with the client certificate it names, read from REQUEST events (default
    /// false: such tokens are refused, as the authorizer cannot see a certificate).
    #[serde(default)]
    pub mtls: bool,
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
            mtls: false,
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
    /// `[dpop]`: sender-constrained tokens (REQUEST and HTTP API events; a `TOKEN` event cannot
    /// carry a proof).
    #[serde(default)]
    pub dpop: jwtgate_engine::dpop::DpopSection,
    /// `[revocation]`: revocation rules from a file or (in builds with Redis support) Redis,
    /// as in the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<jwtgate_revocation::RevocationSection>,
}

/// Where a setting came from, for error messages.
pub const ENVIRONMENT: &str = "environment";

impl LambdaConfig {
    /// Parses TOML; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<LambdaConfig, ConfigError> {
        jwtgate_engine::rules::parse_toml(text, file)
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

    /// What a `TOKEN` authorizer makes of `[dpop]`: a `TOKEN` event carries the token alone, never
    /// a DPoP proof, so a DPoP-bound token is always refused there. An error (naming the key)
    /// when DPoP is required anywhere — every request would be refused; notes when it is
    /// allowed — bearer tokens pass, DPoP-bound ones cannot.
    pub fn token_authorizer_notes(&self, file: &str) -> Result<Vec<String>, ConfigError> {
        use jwtgate_engine::dpop::DpopMode;
        let invalid = |key: String| {
            ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message: "DPoP is required, but a TOKEN authorizer's event carries only the token, never a DPoP proof: every DPoP-bound token would be refused. Use a REQUEST authorizer (or an HTTP API) with identity sources Authorization and DPoP, or set \"allowed\"/\"off\"".into(),
        }
        };
        if self.dpop.mode == DpopMode::Required {
            return Err(invalid("dpop.mode".into()));
        }
        for (index, issuer) in self.issuers.iter().enumerate() {
            if issuer.dpop == Some(DpopMode::Required) {
                return Err(invalid(format!("issuers[{index}].dpop")));
            }
        }
        for (index, route) in self.routes.iter().enumerate() {
            if route.dpop == Some(DpopMode::Required) {
                return Err(invalid(format!("routes[{index}].dpop")));
            }
        }
        let allowed = self
            .issuers
            .iter()
            .any(|issuer| issuer.dpop.unwrap_or(self.dpop.mode) == DpopMode::Allowed);
        Ok(if allowed {
            vec!["[dpop] is \"allowed\": as a TOKEN authorizer, bearer tokens pass but DPoP-bound tokens are refused (the event carries no DPoP proof); use a REQUEST authorizer to accept them".into()]
        } else {
            Vec::new()
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
        let unmatched = Unmatched::resolve(self.lambda.unmatched, !self.routes.is_empty());
        let parts = jwtgate_engine::build_policy(
            &self.issuers,
            &self.routes,
            unmatched,
            &self.keys,
            file,
            None,
        )?;
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
        let mut engine = Engine::new(parts.registry, parts.routes)
            .with_issuer_rules(parts.issuer_rules)
            .with_path_policy(self.paths)
            .with_issuer_scopes(issuer_scopes(&self.issuers))
            .with_dpop(
                jwtgate_engine::rules::dpop_policy(&self.dpop, &self.issuers, None, file, None)?
                    .with_certificate_source(if self.lambda.mtls {
                        CertificateSource::Listener
                    } else {
                        CertificateSource::None
                    }),
            );
        if let Some(cache) = self
            .cache
            .build()
            .map_err(|e| invalid("cache", e.to_string()))?
        {
            engine = engine.with_cache(cache);
        }
        if let Some(section) = &self.revocation {
            let source = section
                .source()
                .map_err(|e| invalid(&format!("revocation.{}", e.key), e.message.clone()))?;
            if matches!(source, jwtgate_revocation::Source::Redis(_))
                && !jwtgate_revocation::REDIS_SUPPORTED
            {
                return Err(invalid(
                    "revocation.redis_url",
                    "this jwtgate was built without Redis support (the Lambda-only build); use `file`, or the full build".into(),
                ));
            }
            let revocations = section
                .build()
                .map_err(|e| invalid(&format!("revocation.{}", e.key), e.message))?;
            engine = engine.with_revocation(revocations);
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

/// Settings given as environment variables (or the matching flags), applied over a file: the
/// engine's (shared with `jwtgate serve`) and the authorizer's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Issuer, route, cache and path settings (`JWTGATE_ISSUER`, `JWTGATE_ROUTES`, …).
    pub engine: EngineArgs,
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
    /// `JWTGATE_MTLS`: `true` or `false`.
    pub mtls: Option<String>,
}

fn env_error(var: &str, message: String) -> ConfigError {
    setting_error(ENVIRONMENT, var, message)
}

impl Overrides {
    /// Applies these settings to `config`.
    pub fn apply(&self, config: &mut LambdaConfig) -> Result<(), ConfigError> {
        self.engine.apply(
            ENVIRONMENT,
            EngineSettings {
                issuers: &mut config.issuers,
                routes: &mut config.routes,
                unmatched: &mut config.lambda.unmatched,
                cache: &mut config.cache,
                paths: &mut config.paths,
            },
        )?;
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
            config.lambda.prefetch = parse_bool(ENVIRONMENT, "JWTGATE_PREFETCH", text)?;
        }
        if let Some(text) = &self.metrics {
            config.lambda.metrics = parse_bool(ENVIRONMENT, "JWTGATE_METRICS", text)?;
        }
        if let Some(text) = &self.mtls {
            config.lambda.mtls = parse_bool(ENVIRONMENT, "JWTGATE_MTLS", text)?;
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
            Some(path) => jwtgate_engine::rules::read_toml(path)?,
            None => (LambdaConfig::default(), ENVIRONMENT.to_owned()),
        };
        let file_issuers = config.issuers.len();
        let file_routes = config.routes.len();
        self.apply(&mut config)?;
        let authorizer = config.build(&name).map_err(|error| match error {
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
            other => blame(ENVIRONMENT, other, file_issuers, file_routes),
        })?;
        Ok((config, authorizer))
    }
}
