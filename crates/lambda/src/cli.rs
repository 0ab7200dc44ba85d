//! `jwtgate lambda` and the `bootstrap` entry point: options from flags or, as Lambda passes
//! them, from `JWTGATE_*` environment variables.
//!
//! Values are taken as text here and checked by [`crate::config`], so a bad value is a
//! configuration error reported to the Runtime API's `/init/error` rather than a usage message
//! nobody reads.

use crate::config::{LambdaConfig, Overrides};
use clap::{Args, Parser};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `jwtgate lambda` (every one also read from its environment variable).
#[derive(Debug, Clone, Default, Args)]
pub struct LambdaArgs {
    /// Configuration file (TOML) with [[issuers]], [[routes]], [keys], [cache], [paths] and
    /// [lambda].
    #[arg(long, env = "JWTGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accepted issuer, exactly as in `iss` (adds an issuer to the file's).
    #[arg(long, env = "JWTGATE_ISSUER", value_name = "ISS")]
    pub issuer: Option<String>,
    /// Accepted audience of --issuer; repeatable (comma-separated in the environment).
    #[arg(
        long = "audience",
        env = "JWTGATE_AUDIENCE",
        value_delimiter = ',',
        value_name = "AUD"
    )]
    pub audiences: Vec<String>,
    /// Scope every token of --issuer needs; repeatable (comma- or space-separated).
    #[arg(
        long = "scope",
        env = "JWTGATE_SCOPES",
        value_delimiter = ',',
        value_name = "SCOPE"
    )]
    pub scopes: Vec<String>,
    /// JWKS URL of --issuer (default: OpenID Connect discovery from the issuer).
    #[arg(long, env = "JWTGATE_JWKS_URL", value_name = "URL")]
    pub jwks_url: Option<String>,
    /// JWKS file of --issuer, bundled with the function: no network on cold start.
    #[arg(long = "jwks", env = "JWTGATE_JWKS_FILE", value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Allowed algorithms of --issuer (comma-separated).
    #[arg(
        long = "alg",
        env = "JWTGATE_ALGORITHMS",
        value_delimiter = ',',
        value_name = "ALG"
    )]
    pub algorithms: Vec<String>,
    /// Clock leeway of --issuer, in seconds (default 0).
    #[arg(long, env = "JWTGATE_LEEWAY", value_name = "SECONDS")]
    pub leeway: Option<String>,
    /// Accepted clients (azp/client_id) of --issuer (comma-separated).
    #[arg(
        long = "client",
        env = "JWTGATE_CLIENTS",
        value_delimiter = ',',
        value_name = "CLIENT_ID"
    )]
    pub clients: Vec<String>,
    /// Require the RFC 9068 access-token profile for --issuer (true/false).
    #[arg(long, env = "JWTGATE_STRICT", value_name = "BOOL")]
    pub strict: Option<String>,
    /// A route rule `METHODS PATH [SCOPE …]`, e.g. 'GET /users read:users'; repeatable
    /// (semicolon-separated in the environment).
    #[arg(
        long = "route",
        env = "JWTGATE_ROUTES",
        value_delimiter = ';',
        value_name = "RULE"
    )]
    pub routes: Vec<String>,
    /// What requests matching no route get: deny, authenticated or public (default:
    /// authenticated without routes, deny with routes).
    #[arg(long, env = "JWTGATE_UNMATCHED", value_name = "WHAT")]
    pub unmatched: Option<String>,
    /// Policy resource: wildcard (arn:…:apiId/stage/*/*, the default without routes) or method.
    #[arg(long, env = "JWTGATE_POLICY_RESOURCE", value_name = "WHICH")]
    pub policy_resource: Option<String>,
    /// Claims copied into the context, `name` or `name=key` (comma-separated).
    #[arg(
        long = "context-claim",
        env = "JWTGATE_CONTEXT_CLAIMS",
        value_delimiter = ',',
        value_name = "CLAIM"
    )]
    pub context_claims: Vec<String>,
    /// HTTP API 2.0 answer: simple ({isAuthorized, context}, default) or iam.
    #[arg(long, env = "JWTGATE_HTTP_API_RESPONSE", value_name = "SHAPE")]
    pub http_api_response: Option<String>,
    /// Fetch remote keys during init (true/false, default true).
    #[arg(long, env = "JWTGATE_PREFETCH", value_name = "BOOL")]
    pub prefetch: Option<String>,
    /// Print each decision as a CloudWatch Embedded Metric Format line (true/false, default
    /// false).
    #[arg(long, env = "JWTGATE_METRICS", value_name = "BOOL")]
    pub metrics: Option<String>,
    /// Verified-token cache entries (default 5000, 0 disables).
    #[arg(long, env = "JWTGATE_TOKEN_CACHE", value_name = "ENTRIES")]
    pub token_cache: Option<String>,
    /// Pass `%2F` and `%5C` in request paths as data instead of refusing them (true/false).
    #[arg(long, env = "JWTGATE_PATHS_ALLOW_ENCODED_SLASH", value_name = "BOOL")]
    pub paths_allow_encoded_slash: Option<String>,
    /// Pass a raw `\` in request paths as data instead of refusing it (true/false).
    #[arg(long, env = "JWTGATE_PATHS_ALLOW_BACKSLASH", value_name = "BOOL")]
    pub paths_allow_backslash: Option<String>,
    /// Pass `;` (path parameters) in request paths as data instead of refusing it (true/false).
    #[arg(long, env = "JWTGATE_PATHS_ALLOW_SEMICOLON", value_name = "BOOL")]
    pub paths_allow_semicolon: Option<String>,
    /// Pass percent-encoded bytes that are not valid UTF-8 instead of refusing them (true/false).
    #[arg(long, env = "JWTGATE_PATHS_ALLOW_NON_UTF8", value_name = "BOOL")]
    pub paths_allow_non_utf8: Option<String>,
    /// Pass double percent-encodings (`%252F`) as data instead of refusing them (true/false).
    #[arg(long, env = "JWTGATE_PATHS_ALLOW_DOUBLE_ENCODING", value_name = "BOOL")]
    pub paths_allow_double_encoding: Option<String>,
    /// Only check the configuration and print it (no Runtime API needed); exit 0 if valid.
    #[arg(long)]
    pub check: bool,
}

impl LambdaArgs {
    /// The settings given by flags and environment, to apply over the file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            issuer: self.issuer.clone().filter(|s| !s.is_empty()),
            audiences: self.audiences.clone(),
            scopes: self.scopes.clone(),
            jwks_url: self.jwks_url.clone(),
            jwks_file: self.jwks_file.clone(),
            algorithms: self.algorithms.clone(),
            leeway: self.leeway.clone(),
            clients: self.clients.clone(),
            strict: self.strict.clone(),
            routes: self.routes.clone(),
            unmatched: self.unmatched.clone(),
            policy_resource: self.policy_resource.clone(),
            context_claims: self.context_claims.clone(),
            http_api_response: self.http_api_response.clone(),
            prefetch: self.prefetch.clone(),
            metrics: self.metrics.clone(),
            token_cache: self.token_cache.clone(),
            paths_allow_encoded_slash: self.paths_allow_encoded_slash.clone(),
            paths_allow_backslash: self.paths_allow_backslash.clone(),
            paths_allow_semicolon: self.paths_allow_semicolon.clone(),
            paths_allow_non_utf8: self.paths_allow_non_utf8.clone(),
            paths_allow_double_encoding: self.paths_allow_double_encoding.clone(),
        }
    }
}

/// `jwtgate lambda`: runs the authorizer (or, with `--check`, validates the configuration).
pub fn run(args: &LambdaArgs) -> ExitCode {
    let overrides = args.overrides();
    if args.check {
        return check(&overrides, args);
    }
    crate::runtime::run(&overrides, args.config.as_deref())
}

fn check(overrides: &Overrides, args: &LambdaArgs) -> ExitCode {
    match overrides.load(args.config.as_deref()) {
        Ok((config, _)) => {
            print_effective(&config);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("jwtgate: error: {error}");
            ExitCode::from(2)
        }
    }
}

fn print_effective(config: &LambdaConfig) {
    println!("# jwtgate lambda: configuration valid. Effective configuration:");
    println!(
        "# policy resource: {:?}",
        config.effective_policy_resource()
    );
    print!("{}", config.to_toml());
}

/// The binary started as `bootstrap` (the `provided.al2023` convention): options from the
/// environment (and any flags).
#[derive(Debug, Parser)]
#[command(
    name = "bootstrap",
    version,
    about = "jwtgate as an AWS Lambda authorizer"
)]
struct Bootstrap {
    #[command(flatten)]
    args: LambdaArgs,
}

/// Entry point when the binary is named `bootstrap`. A leading `lambda` argument is accepted
/// too (`bootstrap lambda` is `jwtgate lambda`).
pub fn run_bootstrap() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "lambda") {
        args.remove(1);
    }
    run(&Bootstrap::parse_from(args).args)
}

/// True when a program started as `argv0` should run as the Lambda `bootstrap`.
pub fn is_bootstrap(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|name| name == "bootstrap")
}
