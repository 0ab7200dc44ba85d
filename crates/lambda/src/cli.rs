//! `jwtgate lambda` and the `bootstrap` entry point: options from flags or, as Lambda passes
//! them, from `JWTGATE_*` environment variables.
//!
//! Values are taken as text here and checked by [`crate::config`], so a bad value is a
//! configuration error reported to the Runtime API's `/init/error` rather than a usage message
//! nobody reads.

use crate::config::{LambdaConfig, Overrides};
use clap::{Args, Parser};
use jwtgate_engine::args::EngineArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `jwtgate lambda` (every one also read from its environment variable).
#[derive(Debug, Clone, Default, Args)]
pub struct LambdaArgs {
    /// Configuration file (TOML) with [[issuers]], [[routes]], [keys], [cache], [paths] and
    /// [lambda].
    // This text is the option's `--help`: its brackets are TOML tables, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, env = "JWTGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Issuer, route, cache and path settings (shared with `jwtgate serve`).
    #[command(flatten)]
    pub engine: EngineArgs,
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
    /// API Gateway's mutual TLS is on: check certificate-bound tokens (RFC 8705) against the
    /// client certificate in REQUEST events (true/false, default false).
    #[arg(long, env = "JWTGATE_MTLS", value_name = "BOOL")]
    pub mtls: Option<String>,
    /// Only check the configuration and print it (no Runtime API needed); exit 0 if valid.
    #[arg(long)]
    pub check: bool,
}

impl LambdaArgs {
    /// The settings given by flags and environment, to apply over the file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            engine: self.engine.clone(),
            policy_resource: self.policy_resource.clone(),
            context_claims: self.context_claims.clone(),
            http_api_response: self.http_api_response.clone(),
            prefetch: self.prefetch.clone(),
            metrics: self.metrics.clone(),
            mtls: self.mtls.clone(),
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
