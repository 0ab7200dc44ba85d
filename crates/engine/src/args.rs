//! The engine's settings as flags and `JWTGATE_*` environment variables: one definition shared
//! by `jwtgate serve` and `jwtgate lambda`, so both modes take the same issuer, route, cache and
//! path settings under the same names, and report a bad value the same way.
//!
//! Values are kept as text and checked by [`EngineArgs::apply`], which names the variable in its
//! error: Lambda passes settings as environment variables, and a bad one must be a configuration
//! error reported to the Runtime API rather than a usage message nobody reads. With the `cli`
//! feature the type is also a `clap::Args` to flatten into a command.

use crate::path::PathPolicy;
use crate::rules::{CacheSection, ConfigError, IssuerSection, RouteSection, Unmatched};
use std::path::PathBuf;

/// Issuer, route, cache and path settings from flags or the environment, applied over a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EngineArgs {
    /// Accepted issuer, exactly as in `iss` (adds an issuer to the file's).
    #[cfg_attr(feature = "cli", arg(long, env = "JWTGATE_ISSUER", value_name = "ISS"))]
    pub issuer: Option<String>,
    /// Accepted audience of --issuer; repeatable (comma-separated in the environment).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "audience",
            env = "JWTGATE_AUDIENCE",
            value_delimiter = ',',
            value_name = "AUD"
        )
    )]
    pub audiences: Vec<String>,
    /// Scope every token of --issuer needs; repeatable (comma- or space-separated).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "scope",
            env = "JWTGATE_SCOPES",
            value_delimiter = ',',
            value_name = "SCOPE"
        )
    )]
    pub scopes: Vec<String>,
    /// JWKS URL of --issuer (default: OpenID Connect discovery from the issuer).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_JWKS_URL", value_name = "URL")
    )]
    pub jwks_url: Option<String>,
    /// JWKS file of --issuer (no network for keys).
    #[cfg_attr(
        feature = "cli",
        arg(long = "jwks", env = "JWTGATE_JWKS_FILE", value_name = "FILE")
    )]
    pub jwks_file: Option<PathBuf>,
    /// Allowed algorithms of --issuer (comma-separated).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "alg",
            env = "JWTGATE_ALGORITHMS",
            value_delimiter = ',',
            value_name = "ALG"
        )
    )]
    pub algorithms: Vec<String>,
    /// Clock leeway of --issuer, in seconds (default 0).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_LEEWAY", value_name = "SECONDS")
    )]
    pub leeway: Option<String>,
    /// Accepted clients (azp/client_id) of --issuer (comma-separated).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "client",
            env = "JWTGATE_CLIENTS",
            value_delimiter = ',',
            value_name = "CLIENT_ID"
        )
    )]
    pub clients: Vec<String>,
    /// Require the RFC 9068 access-token profile for --issuer (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_STRICT", value_name = "BOOL")
    )]
    pub strict: Option<String>,
    /// A route rule `METHODS PATH [SCOPE …]`, e.g. 'GET /api/users read:users'; repeatable
    /// (semicolon-separated in the environment).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "route",
            env = "JWTGATE_ROUTES",
            value_delimiter = ';',
            value_name = "RULE"
        )
    )]
    pub routes: Vec<String>,
    /// A path pattern that needs no token, any method; repeatable (comma-separated in the
    /// environment).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "public",
            env = "JWTGATE_PUBLIC",
            value_delimiter = ',',
            value_name = "PATH"
        )
    )]
    pub public: Vec<String>,
    /// What requests matching no route get: deny, authenticated or public (default: deny with
    /// routes, authenticated without).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_UNMATCHED", value_name = "WHAT")
    )]
    pub unmatched: Option<String>,
    /// Verified-token cache entries, beside its byte budget (default no entry bound, 0 disables).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_TOKEN_CACHE", value_name = "ENTRIES")
    )]
    pub token_cache: Option<String>,
    /// Verified-token cache memory budget in bytes (default 48234496 = 46 MiB, 0 disables).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_TOKEN_CACHE_BYTES", value_name = "BYTES")
    )]
    pub token_cache_bytes: Option<String>,
    /// Pass `%2F` and `%5C` in request paths as data instead of refusing them (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_PATHS_ALLOW_ENCODED_SLASH", value_name = "BOOL")
    )]
    pub paths_allow_encoded_slash: Option<String>,
    /// Pass a raw `\` in request paths as data instead of refusing it (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_PATHS_ALLOW_BACKSLASH", value_name = "BOOL")
    )]
    pub paths_allow_backslash: Option<String>,
    /// Pass `;` (path parameters) in request paths as data instead of refusing it (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_PATHS_ALLOW_SEMICOLON", value_name = "BOOL")
    )]
    pub paths_allow_semicolon: Option<String>,
    /// Pass percent-encoded bytes that are not valid UTF-8 instead of refusing them (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_PATHS_ALLOW_NON_UTF8", value_name = "BOOL")
    )]
    pub paths_allow_non_utf8: Option<String>,
    /// Pass double percent-encodings (`%252F`) as data instead of refusing them (true/false).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "JWTGATE_PATHS_ALLOW_DOUBLE_ENCODING", value_name = "BOOL")
    )]
    pub paths_allow_double_encoding: Option<String>,
}

/// The parts of a mode's configuration that [`EngineArgs`] sets.
#[derive(Debug)]
pub struct EngineSettings<'a> {
    /// `[[issuers]]`.
    pub issuers: &'a mut Vec<IssuerSection>,
    /// `[[routes]]`.
    pub routes: &'a mut Vec<RouteSection>,
    /// What unmatched requests get (`None`: the default, see [`Unmatched::resolve`]).
    pub unmatched: &'a mut Option<Unmatched>,
    /// `[cache]`.
    pub cache: &'a mut CacheSection,
    /// `[paths]`.
    pub paths: &'a mut PathPolicy,
}

/// A setting's error, naming the variable (and so its flag).
pub fn setting_error(source: &str, variable: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        file: source.to_owned(),
        key: variable.to_owned(),
        message,
    }
}

/// Reads `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case).
pub fn parse_bool(source: &str, variable: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(setting_error(
            source,
            variable,
            format!("{text:?} is not true or false"),
        )),
    }
}

/// Splits comma- or space-separated words, dropping empty ones.
fn words(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split([',', ' ', '\t']))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl EngineArgs {
    /// Applies the settings over `target`; `source` names where they came from in errors
    /// (`environment`, `flags`), and each error names the variable.
    pub fn apply(&self, source: &str, target: EngineSettings<'_>) -> Result<(), ConfigError> {
        let error = |variable: &str, message: String| setting_error(source, variable, message);
        if let Some(issuer) = self.issuer.as_ref().filter(|s| !s.is_empty()) {
            let audiences = words(&self.audiences);
            if audiences.is_empty() {
                return Err(error(
                    "JWTGATE_AUDIENCE",
                    format!("JWTGATE_ISSUER is {issuer:?} but no audience is set: give the API identifier(s) tokens must be issued for"),
                ));
            }
            let leeway = match &self.leeway {
                None => 0,
                Some(text) => text.trim().parse::<u64>().map_err(|_| {
                    error(
                        "JWTGATE_LEEWAY",
                        format!("{text:?} is not a number of seconds"),
                    )
                })?,
            };
            let strict = match &self.strict {
                None => false,
                Some(text) => parse_bool(source, "JWTGATE_STRICT", text)?,
            };
            target.issuers.push(IssuerSection {
                issuer: issuer.clone(),
                audiences,
                jwks_url: self.jwks_url.clone().filter(|s| !s.is_empty()),
                jwks_file: self.jwks_file.clone().filter(|p| !p.as_os_str().is_empty()),
                algorithms: words(&self.algorithms),
                leeway,
                scopes: words(&self.scopes),
                strict,
                clients: words(&self.clients),
                ..IssuerSection::default()
            });
        } else {
            for (variable, set) in [
                ("JWTGATE_AUDIENCE", !self.audiences.is_empty()),
                ("JWTGATE_SCOPES", !self.scopes.is_empty()),
                ("JWTGATE_JWKS_URL", self.jwks_url.is_some()),
                ("JWTGATE_JWKS_FILE", self.jwks_file.is_some()),
                ("JWTGATE_ALGORITHMS", !self.algorithms.is_empty()),
                ("JWTGATE_LEEWAY", self.leeway.is_some()),
                ("JWTGATE_CLIENTS", !self.clients.is_empty()),
                ("JWTGATE_STRICT", self.strict.is_some()),
            ] {
                if set {
                    return Err(error(
                        variable,
                        format!("{variable} is set but JWTGATE_ISSUER is not: it belongs to the issuer given by JWTGATE_ISSUER"),
                    ));
                }
            }
        }
        for spec in self.routes.iter().filter(|s| !s.trim().is_empty()) {
            target
                .routes
                .push(RouteSection::parse_spec(spec).map_err(|e| error("JWTGATE_ROUTES", e))?);
        }
        for path in self
            .public
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
        {
            target.routes.push(RouteSection {
                methods: Vec::new(),
                path: path.to_owned(),
                public: true,
                ..RouteSection::default()
            });
        }
        if let Some(text) = &self.unmatched {
            *target.unmatched = Some(text.parse().map_err(|e| error("JWTGATE_UNMATCHED", e))?);
        }
        if let Some(text) = &self.token_cache {
            target.cache.capacity = Some(text.trim().parse().map_err(|_| {
                error(
                    "JWTGATE_TOKEN_CACHE",
                    format!("{text:?} is not a number of entries (0 disables the cache)"),
                )
            })?);
        }
        if let Some(text) = &self.token_cache_bytes {
            target.cache.max_bytes = text.trim().parse().map_err(|_| {
                error(
                    "JWTGATE_TOKEN_CACHE_BYTES",
                    format!("{text:?} is not a number of bytes (0 disables the cache)"),
                )
            })?;
        }
        let paths = target.paths;
        for (variable, text, setting) in [
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
                *setting = parse_bool(source, variable, text)?;
            }
        }
        Ok(())
    }
}

/// The variable behind an `issuers[N].field` key of the issuer added from the settings.
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

/// Blames a build error on the setting it came from: an error about the issuer or a route the
/// settings added (after the file's `file_issuers` issuers and `file_routes` routes) names the
/// variable instead of a key of a file that does not have it.
pub fn blame(
    source: &str,
    error: ConfigError,
    file_issuers: usize,
    file_routes: usize,
) -> ConfigError {
    match error {
        ConfigError::Invalid { key, message, .. }
            if key.starts_with(&format!("issuers[{file_issuers}].")) =>
        {
            let field = key.rsplit('.').next().unwrap_or_default();
            setting_error(source, issuer_variable(field), message)
        }
        ConfigError::Invalid { key, message, .. }
            if route_index(&key).is_some_and(|i| i >= file_routes) =>
        {
            setting_error(source, "JWTGATE_ROUTES", message)
        }
        other => other,
    }
}
