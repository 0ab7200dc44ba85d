//! `jwtgate`: the command-line front end of jwtgate.
//!
//! Subcommands: `verify` (one token against keys and a policy: exit code and verdict), `decode`
//! (show any token, no verification) and `explain` (every check, one per line). The binary only
//! gathers inputs and renders results; every decision is made by `jwtgate-core`, so the CLI
//! accepts and refuses exactly what the gateway and the Lambda authorizer do.
//!
//! Exit codes: 0 accepted, 1 rejected (or not decodable), 2 usage or configuration error.

mod conditions;
mod config;
mod decode;
mod input;
mod jwks;
mod render;
#[cfg(feature = "gateway")]
mod revoke;
#[cfg(feature = "gateway")]
mod serve;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Verify, decode and explain JWT access tokens.
#[derive(Debug, Parser)]
#[command(name = "jwtgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify one token against a key set and a policy; exit 0 if accepted, 1 if rejected.
    Verify(VerifyArgs),
    /// Show a token's header and claims without verifying anything.
    Decode(DecodeArgs),
    /// Run every check and print each on its own line, with a hint for failures.
    Explain(VerifyArgs),
    /// Fetch an issuer's (or a URL's or file's) key set and list its keys and cache headers.
    Jwks(jwks::JwksArgs),
    /// Run a local OpenID Connect issuer for development and tests, or operate a running one.
    #[cfg(feature = "issuer")]
    Issuer(jwtgate_issuer::cli::IssuerArgs),
    /// Print a token from the development issuer without a browser.
    #[cfg(feature = "issuer")]
    Mint(Box<jwtgate_issuer::cli::MintArgs>),
    /// Run the gateway: forward-auth endpoint and/or reverse proxy with per-route rules.
    #[cfg(feature = "gateway")]
    Serve(Box<serve::ServeArgs>),
    /// Validate a gateway configuration file and print the effective configuration.
    #[cfg(feature = "gateway")]
    CheckConfig(serve::CheckConfigArgs),
    /// Revoke tokens (by jti, subject or client) in Redis or a rules file; list or remove rules.
    #[cfg(feature = "gateway")]
    Revoke(Box<revoke::RevokeArgs>),
    /// The whole system on one machine: issuer, gateway, users API (SQLite) and an SPA.
    #[cfg(feature = "demo")]
    Demo(jwtgate_demo::cli::DemoArgs),
    /// Run as an AWS API Gateway Lambda authorizer (also what a binary named `bootstrap` does).
    #[cfg(feature = "lambda")]
    Lambda(Box<jwtgate_lambda::LambdaArgs>),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable text.
    Text,
    /// One JSON object on one line.
    Json,
}

/// Inputs shared by `verify` and `explain`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// JWKS (or single JWK) file with the issuer's public keys; repeatable.
    #[arg(long = "jwks", value_name = "FILE")]
    jwks: Vec<std::path::PathBuf>,
    /// JWKS URL to fetch the keys from (https://, or http:// to loopback); repeatable.
    #[arg(long = "jwks-url", value_name = "URL")]
    jwks_urls: Vec<String>,
    /// Find the keys by OpenID Connect discovery from the (first) issuer. This is also what
    /// happens when no key source is given at all.
    #[arg(long)]
    discover: bool,
    /// Accepted issuer, compared exactly with `iss` (a trailing slash matters); repeatable.
    #[arg(long = "issuer", value_name = "ISS", required = true)]
    issuers: Vec<String>,
    /// Accepted audience; `aud` must contain one of them; repeatable.
    #[arg(long = "audience", value_name = "AUD", required = true)]
    audiences: Vec<String>,
    /// Required scope (granted by `scope`, `scp` or `permissions`); repeatable, all required.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// With several --scope, any one of them is enough.
    #[arg(long)]
    any_scope: bool,
    /// Allowed algorithm; repeatable. Default: RS256/384/512, PS256/384/512, ES256/384/512,
    /// EdDSA (plus HS256/384/512 when --secret-file is given).
    #[arg(long = "alg", value_name = "ALG")]
    algorithms: Vec<String>,
    /// File holding an HMAC secret (its bytes, minus one trailing newline) for HS256/384/512.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<std::path::PathBuf>,
    /// Clock leeway in seconds for exp, nbf and iat.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    leeway: u64,
    /// Check times as of this Unix time instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", allow_hyphen_values = true)]
    now: Option<i64>,
    /// Require the RFC 9068 access-token profile (typ at+jwt; sub, client_id, jti, iat).
    #[arg(long)]
    strict: bool,
    /// Accepted client (azp or client_id); repeatable.
    #[arg(long = "client", value_name = "CLIENT_ID")]
    clients: Vec<String>,
    /// Refuse tokens issued more than this many seconds ago.
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// Claim condition NAME=VALUE, as a route's `claims` (VALUE as JSON — true, 3, "x",
    /// ["a","b"] for one of — or else the text as a string); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// CEL condition over `claims`, as a route's `when`.
    #[arg(long, value_name = "EXPR")]
    when: Option<String>,
    /// Largest accepted token, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = jwtgate_core::jws::DEFAULT_MAX_TOKEN_LEN)]
    max_token_size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The token, or `-` to read it from standard input. A leading `Bearer ` is accepted.
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    token: String,
}

/// Inputs of `decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Show times relative to this Unix time instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", allow_hyphen_values = true)]
    now: Option<i64>,
    /// The token, or `-` to read it from standard input. A leading `Bearer ` is accepted.
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    token: String,
}

fn main() -> ExitCode {
    #[cfg(feature = "lambda")]
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| jwtgate_lambda::cli::is_bootstrap(&argv0))
    {
        return jwtgate_lambda::cli::run_bootstrap();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => run_verify(&args),
        Command::Explain(args) => run_explain(&args),
        Command::Decode(args) => run_decode(&args),
        Command::Jwks(args) => jwks::run(&args),
        #[cfg(feature = "issuer")]
        Command::Issuer(args) => return jwtgate_issuer::cli::run_issuer(&args),
        #[cfg(feature = "issuer")]
        Command::Mint(args) => return jwtgate_issuer::cli::run_mint(&args),
        #[cfg(feature = "gateway")]
        Command::Serve(args) => return report(serve::run(&args)),
        #[cfg(feature = "gateway")]
        Command::CheckConfig(args) => return report(serve::check_config(&args)),
        #[cfg(feature = "gateway")]
        Command::Revoke(args) => return report(revoke::run(&args)),
        #[cfg(feature = "demo")]
        Command::Demo(args) => return report(jwtgate_demo::cli::run(&args)),
        #[cfg(feature = "lambda")]
        Command::Lambda(args) => return jwtgate_lambda::cli::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("jwtgate: error: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "gateway")]
fn report(result: Result<ExitCode, Box<dyn std::error::Error>>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("jwtgate: error: {error}");
        ExitCode::from(2)
    })
}

fn run_verify(args: &VerifyArgs) -> Result<ExitCode, config::ConfigError> {
    let setup = config::Setup::from_args(args)?;
    let conditions = conditions::from_flags(&args.claims, args.when.as_deref())?;
    let token = input::read_token(&args.token)?;
    let outcome = setup.verifier.verify(token.as_bytes(), setup.now);
    let failed = outcome.as_ref().ok().and_then(|verified| {
        conditions::first_failure(&conditions::results(&conditions, verified.claims()))
    });
    if let Some(description) = failed {
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::json!({"valid": false, "error": "insufficient_scope", "description": description})
            ),
            Format::Text => println!("rejected (insufficient_scope): {description}"),
        }
        return Ok(exit(false));
    }
    let accepted = outcome.is_ok();
    match args.format {
        Format::Json => println!("{}", render::verdict_json(&outcome)),
        Format::Text => print!("{}", render::verdict_text(&outcome, setup.now)),
    }
    Ok(exit(accepted))
}

fn run_explain(args: &VerifyArgs) -> Result<ExitCode, config::ConfigError> {
    let setup = config::Setup::from_args(args)?;
    let token = input::read_token(&args.token)?;
    let explanation = jwtgate_core::explain(
        token.as_bytes(),
        setup.verifier.policy(),
        setup.verifier.keys(),
        setup.now,
    );
    let conditions = conditions::from_flags(&args.claims, args.when.as_deref())?;
    let results = match &explanation.outcome {
        Ok(verified) => Some(conditions::results(&conditions, verified.claims())),
        Err(_) => None,
    };
    let failed = results.as_deref().and_then(conditions::first_failure);
    let accepted = explanation.outcome.is_ok() && failed.is_none();
    match args.format {
        Format::Json => println!(
            "{}",
            render::with_conditions_json(
                &render::explanation_json(&explanation),
                results.as_deref(),
                failed.as_deref()
            )
        ),
        Format::Text => {
            let colour = render::use_colour();
            print!(
                "{}",
                render::explanation_text(&explanation, setup.verifier.keys(), colour)
            );
            if !conditions.is_empty() {
                print!(
                    "{}",
                    render::conditions_text(results.as_deref(), failed.as_deref(), colour)
                );
            }
        }
    }
    Ok(exit(accepted))
}

fn run_decode(args: &DecodeArgs) -> Result<ExitCode, config::ConfigError> {
    let token = input::read_token(&args.token)?;
    let now = args.now.unwrap_or_else(config::system_now);
    let decoded = decode::decode(&token);
    let ok = decoded.is_decodable();
    match args.format {
        Format::Json => println!("{}", decoded.to_json(now)),
        Format::Text => print!("{}", decoded.to_text(now)),
    }
    Ok(exit(ok))
}

fn exit(accepted: bool) -> ExitCode {
    if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
