//! Turning command-line options into a `Verifier`: reading key files, building the policy.
//!
//! Every problem here is a configuration error (exit code 2), never a token rejection: an
//! unreadable JWKS file says nothing about the token.

use crate::VerifyArgs;
use jwtgate_core::{Algorithm, AlgorithmSet, KeySet, Policy, ScopeRequirement, Secret, Verifier};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A usage or configuration problem (exit code 2).
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A key file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A JWKS file is not a key set.
    #[error("{path} is not a usable JWKS: {error}")]
    Jwks {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: jwtgate_core::jwk::JwksError,
    },
    /// The HMAC secret is unusable.
    #[error("the secret in {path} is unusable: {error}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: jwtgate_core::crypto::KeyError,
    },
    /// Fetching remote keys failed.
    #[error("{0}")]
    Fetch(#[from] jwtgate_keys::FetchError),
    /// The HTTP client or async runtime could not start.
    #[error("cannot start the HTTP client: {0}")]
    Runtime(String),
    /// Key files were given, but no key in them is usable.
    #[error("no usable key in the given key files ({0} skipped; see the warnings above)")]
    NoUsableKeys(usize),
    /// An --alg value is not an algorithm.
    #[error("--alg {0:?} is not a supported algorithm (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512)")]
    UnknownAlgorithm(String),
    /// The policy options are inconsistent.
    #[error("{0}")]
    Policy(#[from] jwtgate_core::PolicyError),
    /// Standard input could not be read.
    #[error("cannot read the token from standard input: {0}")]
    Stdin(String),
    /// A --claim or --when condition is unusable.
    #[error("{0}")]
    Condition(String),
}

/// A ready verifier and the time to check against.
pub struct Setup {
    /// Keys and policy.
    pub verifier: Verifier,
    /// Unix time used for exp/nbf/iat.
    pub now: i64,
}

/// The current Unix time in seconds.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })
}

impl Setup {
    /// Reads the key files and builds the policy. Skipped keys are reported on standard error.
    pub fn from_args(args: &VerifyArgs) -> Result<Setup, ConfigError> {
        let mut keys = KeySet::new();
        let no_source =
            args.jwks.is_empty() && args.jwks_urls.is_empty() && args.secret_file.is_none();
        if !args.jwks_urls.is_empty() || args.discover || no_source {
            let issuer = (args.discover || no_source).then(|| args.issuers[0].clone());
            if no_source && !args.discover {
                eprintln!(
                    "jwtgate: no key source given: discovering the keys of {}",
                    args.issuers[0]
                );
            }
            keys.absorb(fetch_remote(&args.jwks_urls, issuer.as_deref())?);
        }
        for path in &args.jwks {
            let document = read(path)?;
            let before = keys.skipped().len();
            keys.extend_from_json(&document)
                .map_err(|error| ConfigError::Jwks {
                    path: path.clone(),
                    error,
                })?;
            for skipped in &keys.skipped()[before..] {
                eprintln!("jwtgate: warning: {}: {skipped}", path.display());
            }
        }
        if keys.keys().is_empty() && args.secret_file.is_none() {
            return Err(ConfigError::NoUsableKeys(keys.skipped().len()));
        }
        let mut algorithms: AlgorithmSet = args
            .algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>()
                    .map_err(|_| ConfigError::UnknownAlgorithm(name.clone()))
            })
            .collect::<Result<_, _>>()?;
        if let Some(path) = &args.secret_file {
            let mut bytes = read(path)?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            let only = single_hmac(algorithms);
            let secret = Secret::new(&bytes, None, only).map_err(|error| ConfigError::Secret {
                path: path.clone(),
                error,
            })?;
            keys.add_secret(secret);
        }
        if args.algorithms.is_empty() {
            algorithms = AlgorithmSet::asymmetric();
            if args.secret_file.is_some() {
                algorithms = algorithms.union(AlgorithmSet::hmac());
            }
        }
        let scopes = if args.any_scope {
            ScopeRequirement::any_of(args.scopes.iter().cloned())
        } else {
            ScopeRequirement::all_of(args.scopes.iter().cloned())
        };
        let mut builder = Policy::builder()
            .algorithms(algorithms)
            .scopes(scopes)
            .leeway(args.leeway)
            .require_at_jwt(args.strict)
            .max_token_len(args.max_token_size);
        for issuer in &args.issuers {
            builder = builder.issuer(issuer.clone());
        }
        for audience in &args.audiences {
            builder = builder.audience(audience.clone());
        }
        for client in &args.clients {
            builder = builder.allowed_client(client.clone());
        }
        if let Some(max_age) = args.max_age {
            builder = builder.max_age(max_age);
        }
        let policy = builder.build()?;
        Ok(Setup {
            verifier: Verifier::new(policy, keys),
            now: args.now.unwrap_or_else(system_now),
        })
    }
}

/// Runs `future` to completion on a small single-threaded runtime (the CLI is otherwise
/// synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, ConfigError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConfigError::Runtime(e.to_string()))?;
    Ok(runtime.block_on(future))
}

/// Fetches every JWKS URL, and the issuer's keys by discovery when `discover_issuer` is given.
fn fetch_remote(urls: &[String], discover_issuer: Option<&str>) -> Result<KeySet, ConfigError> {
    let settings = jwtgate_keys::CacheSettings::default();
    let fetcher = jwtgate_keys::Fetcher::new(&settings)?;
    block_on(async {
        let mut keys = KeySet::new();
        let mut targets = Vec::new();
        for url in urls {
            targets.push(jwtgate_keys::parse_url(url, settings.allow_insecure_http)?);
        }
        if let Some(issuer) = discover_issuer {
            targets.push(fetcher.discover(issuer).await?);
        }
        for url in targets {
            let fetched = fetcher.fetch_jwks(&url).await?;
            for skipped in fetched.keys.skipped() {
                eprintln!("jwtgate: warning: {url}: {skipped}");
            }
            keys.absorb(fetched.keys);
        }
        Ok(keys)
    })?
}

/// When exactly one HMAC algorithm is allowed, the secret is pinned to it (and its length is
/// checked against that hash); otherwise the secret serves every HMAC algorithm it is long enough for.
fn single_hmac(algorithms: AlgorithmSet) -> Option<Algorithm> {
    let mut hmac = algorithms.iter().filter(|alg| alg.is_symmetric());
    match (hmac.next(), hmac.next()) {
        (Some(alg), None) => Some(alg),
        _ => None,
    }
}
