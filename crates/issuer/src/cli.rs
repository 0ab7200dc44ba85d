//! The `jwtgate issuer` and `jwtgate mint` commands: argument structs (clap) and `run`
//! functions, so the `jwtgate` binary only adds two subcommands that call into this module.
//!
//! * `jwtgate issuer [--listen ADDR] [--public-url URL] [--config FILE] [--state-dir DIR |
//!   --ephemeral]` runs the issuer until Ctrl-C.
//! * `jwtgate issuer keys list|publish-next|activate|retire [--url URL]` and `jwtgate issuer
//!   fail-jwks MODE [--seconds N] [--url URL]` operate a running issuer through its loopback-only
//!   admin endpoints.
//! * `jwtgate issuer default-config` prints the built-in configuration.
//! * `jwtgate mint --user alice --audience https://api.jwtgate.local/ …` prints a token, signed
//!   with the keys in the state directory (or by a running issuer with `--url`).
//!
//! Exit codes: 0 success, 1 the issuer refused an operator request, 2 usage or configuration
//! error (unreadable files, bad URLs, an unreachable issuer).

use crate::admin::parse_failure;
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, DEFAULT_CONFIG_TOML};
use crate::http::{exposure_warning, serve};
use crate::issuer::{Issuer, IssuerError, IssuerOptions, MintRequest, TokenResponse};
use crate::keyring::{KeyInfo, KeyRing, KeyRingError, KeyState};
use clap::{Args, Subcommand};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// The admin URL the operator commands use by default: the default listen address.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:4400/";

/// Run a local OpenID Connect issuer for development and tests, or operate a running one.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IssuerArgs {
    /// Operate a running issuer instead of starting one.
    #[command(subcommand)]
    pub action: Option<IssuerAction>,
    /// How to run the issuer.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Operator commands for a running issuer.
#[derive(Debug, Subcommand)]
pub enum IssuerAction {
    /// List or rotate a running issuer's signing keys.
    Keys(KeysArgs),
    /// Make a running issuer's JWKS endpoint fail (500, slow, garbage) for a while, or stop it.
    FailJwks(FailJwksArgs),
    /// Print the built-in default configuration (TOML), a starting point for --config.
    DefaultConfig,
}

/// Options for running the issuer.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: the config's issuer.listen, 127.0.0.1:4400]. Anything but
    /// loopback is refused by nobody, but warned about loudly.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The issuer URL clients use (`iss`, discovery), e.g. http://localhost:4400/ [default:
    /// http://<listen address>/]. The SPA must use the same host name (auth0-spa-js compares
    /// `iss` exactly, and silent login needs the issuer's cookie on the same site).
    // This text is the option's `--help`: `<listen address>` is a placeholder, not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Configuration file (TOML) [default: the built-in configuration; see `jwtgate issuer
    /// default-config`].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory where the signing keys are kept across restarts [default:
    /// $XDG_STATE_HOME/jwtgate/issuer, or ~/.local/state/jwtgate/issuer].
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    pub state_dir: Option<PathBuf>,
    /// Keep keys in memory only: new keys at every start.
    #[arg(long)]
    pub ephemeral: bool,
    /// Require a server nonce in DPoP proofs at the token endpoint (RFC 9449 §8): clients get
    /// `use_dpop_nonce` and a `DPoP-Nonce` header, and retry with it.
    #[arg(long)]
    pub dpop_nonce: bool,
    /// Write revocation rules to this JSON-lines file (a gateway's `[revocation] file`) at
    /// logout and `/oauth/revoke`, so the gateway refuses those tokens at once.
    #[arg(long, value_name = "FILE", conflicts_with = "revocation_redis")]
    pub revocation_file: Option<PathBuf>,
    /// Write revocation rules to this Redis (a gateway's `[revocation] redis_url`, default key
    /// prefix) at logout and `/oauth/revoke`.
    #[arg(long, value_name = "URL")]
    pub revocation_redis: Option<String>,
}

/// `jwtgate issuer keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
    /// The running issuer (a loopback URL).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ADMIN_URL, global = true)]
    pub url: String,
    /// Print the issuer's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Key operations.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List the keys: next (published, not signing), current, retiring (published until a time).
    List,
    /// Rotation step 1: publish the next key of each algorithm ahead of the switch.
    PublishNext,
    /// Rotation step 2: sign with the next key from now on (generated now if none was
    /// published); the old key stays published for the grace period.
    #[command(alias = "rotate")]
    Activate {
        /// Seconds the replaced key stays in the JWKS [default: the config's rotation_grace].
        #[arg(long, value_name = "SECONDS")]
        grace: Option<u64>,
    },
    /// Rotation step 3, now: remove the replaced keys from the JWKS.
    Retire,
}

/// `jwtgate issuer fail-jwks`.
#[derive(Debug, Args)]
pub struct FailJwksArgs {
    /// An HTTP status to answer with (400-599, e.g. 500), `slow`, `garbage` (200 with a body that
    /// is not JSON), or `off` to end a failure now.
    #[arg(value_name = "MODE")]
    pub mode: String,
    /// How long the failure lasts.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::admin::DEFAULT_FAILURE_SECONDS)]
    pub seconds: u64,
    /// With `slow`: the delay before each answer, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// The running issuer (a loopback URL).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ADMIN_URL)]
    pub url: String,
}

/// Print a token from the development issuer without a browser.
#[derive(Debug, Args)]
pub struct MintArgs {
    /// The user: a configured username or any name [default: none, which mints a
    /// client_credentials token for --client].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The client [default: the first client allowed the flow].
    #[arg(long, value_name = "CLIENT_ID")]
    pub client: Option<String>,
    /// The API (audience); without it a user's access token is opaque, as from Auth0.
    #[arg(long, value_name = "API")]
    pub audience: Option<String>,
    /// Requested scope; repeatable [default: users `openid profile email`, clients all granted].
    /// Scopes are granted as the issuer would (RBAC applies).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Access-token lifetime in seconds [default: the configured one].
    #[arg(long, value_name = "SECONDS")]
    pub lifetime: Option<u64>,
    /// Print the ID token instead of the access token.
    #[arg(long, conflicts_with = "json")]
    pub id_token: bool,
    /// Print the whole token response as JSON.
    #[arg(long)]
    pub json: bool,
    /// Ask a running issuer (a loopback URL) instead of signing with the state directory's keys.
    #[arg(long, value_name = "URL", conflicts_with_all = ["config", "state_dir", "public_url", "listen"])]
    pub url: Option<String>,
    /// Configuration file, as given to `jwtgate issuer`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Key directory, as given to `jwtgate issuer` [default: as there].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The issuer URL for `iss`, as given to `jwtgate issuer`.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// The listen address, as given to `jwtgate issuer` (for the default issuer URL).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// A command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keys could not be loaded or stored.
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    /// The issuer could not be set up or refused a mint request.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// A usage problem.
    #[error("{0}")]
    Usage(String),
    /// Networking or the runtime failed.
    #[error("{0}")]
    Io(String),
    /// The running issuer refused the request (exit code 1).
    #[error("the issuer refused: {0}")]
    Refused(String),
}

fn exit_for(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ CliError::Refused(_)) => {
            eprintln!("jwtgate: {error}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("jwtgate: error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs `jwtgate issuer …`.
pub fn run_issuer(args: &IssuerArgs) -> ExitCode {
    exit_for(match &args.action {
        None => run_server(&args.serve),
        Some(IssuerAction::Keys(keys)) => run_keys(keys),
        Some(IssuerAction::FailJwks(fail)) => run_fail_jwks(fail),
        Some(IssuerAction::DefaultConfig) => {
            print!("{DEFAULT_CONFIG_TOML}");
            Ok(())
        }
    })
}

/// Runs `jwtgate mint …`.
pub fn run_mint(args: &MintArgs) -> ExitCode {
    exit_for(mint(args))
}

/// The default key directory: `$XDG_STATE_HOME/jwtgate/issuer`, else
/// `$HOME/.local/state/jwtgate/issuer`.
pub fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("jwtgate").join("issuer"));
    }
    non_empty("HOME").map(|home| {
        PathBuf::from(home)
            .join(".local")
            .join("state")
            .join("jwtgate")
            .join("issuer")
    })
}

fn state_dir(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    match explicit {
        Some(dir) => Ok(dir.to_owned()),
        None => default_state_dir().ok_or_else(|| {
            CliError::Usage(
                "no state directory: set --state-dir (or HOME), or use --ephemeral".into(),
            )
        }),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    Ok(match path {
        Some(path) => Config::from_file(path)?,
        None => Config::builtin()?,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))
}

fn run_server(args: &ServeArgs) -> Result<(), CliError> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.issuer.listen = listen;
    }
    let (keys, keys_note) = if args.ephemeral {
        (
            KeyRing::ephemeral(),
            "in memory only (--ephemeral): new keys at every start".to_owned(),
        )
    } else {
        let dir = state_dir(args.state_dir.as_deref())?;
        let note = format!("kept in {}", dir.display());
        (KeyRing::open(&dir)?, note)
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.issuer.listen)
            .await
            .map_err(|e| CliError::Io(format!("cannot listen on {}: {e}", config.issuer.listen)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::Io(e.to_string()))?;
        config.issuer.listen = bound;
        let issuer = Issuer::new(
            config,
            keys,
            IssuerOptions {
                public_url: args.public_url.clone(),
                clock: Arc::new(SystemClock),
                log_requests: true,
                dpop_nonce: args.dpop_nonce,
            },
        )?;
        if let Some(path) = &args.revocation_file {
            issuer.revoke_through(jwtgate_revocation::writer::RuleWriter::File(path.clone()));
        }
        if let Some(url) = &args.revocation_redis {
            let store =
                jwtgate_revocation::redis_store::RedisStore::connect(url, "jwtgate:revocation:")
                    .await
                    .map_err(|e| CliError::Io(format!("--revocation-redis: {e}")))?;
            issuer.revoke_through(jwtgate_revocation::writer::RuleWriter::Redis(store));
        }
        if let Some(warning) = exposure_warning(bound) {
            let rule = "!".repeat(78);
            eprintln!("{rule}\n{warning}\n{rule}");
        }
        println!("{}", banner(&issuer, bound, &keys_note));
        let _ = std::io::stdout().flush();
        serve(listener, issuer, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Io(format!("the server failed: {e}")))
    })
}

fn banner(issuer: &Issuer, bound: SocketAddr, keys_note: &str) -> String {
    let iss = issuer.url();
    let config = issuer.config();
    let users: Vec<&str> = config.users.iter().map(|u| u.username.as_str()).collect();
    let clients: Vec<String> = config
        .clients
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                c.id,
                if c.is_public() {
                    "public"
                } else {
                    "confidential"
                }
            )
        })
        .collect();
    let apis: Vec<&str> = config.apis.iter().map(|a| a.identifier.as_str()).collect();
    let mut more_clients = Vec::new();
    if config.issuer.dynamic_registration {
        more_clients.push(format!("registration at {iss}register"));
    }
    if config.issuer.client_metadata_documents {
        more_clients.push("https:// client_id metadata documents".to_owned());
    }
    let more_clients = if more_clients.is_empty() {
        String::new()
    } else {
        format!("\n                {}", more_clients.join("; "))
    };
    let domain = iss.trim_end_matches('/');
    let any = if config.issuer.allow_any_user {
        " (or type any name)"
    } else {
        ""
    };
    format!(
        "jwtgate issuer listening on {bound}\n  \
         issuer (iss)  {iss}\n  \
         discovery     {iss}.well-known/openid-configuration\n  \
         JWKS          {iss}.well-known/jwks.json\n  \
         keys          {keys_note}\n  \
         APIs          {}\n  \
         clients       {}{more_clients}\n  \
         users         {}{any}\n  \
         auth0-spa-js  domain: '{domain}' (no trailing slash; do not set `issuer`)\n  \
         operate       jwtgate issuer keys list --url {iss}\n                \
         jwtgate issuer fail-jwks 500 --seconds 30 --url {iss}\n                \
         jwtgate mint --url {iss} --user alice --audience {}",
        apis.join(", "),
        clients.join(", "),
        users.join(", "),
        apis.first().copied().unwrap_or("<api>"),
    )
}

/// Parses an admin URL and refuses anything but loopback: the admin endpoints answer loopback
/// clients only, and operator commands never talk to another machine.
pub fn admin_url(text: &str) -> Result<Url, CliError> {
    let url =
        crate::issuer::normalize_issuer_url(text).map_err(|e| CliError::Usage(e.to_string()))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !loopback || url.scheme() != "http" {
        return Err(CliError::Usage(format!(
            "{text} is not a loopback http URL; the issuer's admin endpoints answer loopback clients only"
        )));
    }
    Ok(url)
}

/// Calls an admin endpoint and returns its JSON answer.
fn admin_call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> Result<serde_json::Value, CliError> {
    let url = admin_url(base)?
        .join(path)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    runtime()?.block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CliError::Io(e.to_string()))?;
        let mut request = client.request(method, url.clone());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Io(format!("cannot reach the issuer at {url}: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::Io(e.to_string()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            CliError::Io(format!(
                "{url} answered {status} with something other than JSON: is it a jwtgate issuer?"
            ))
        })?;
        if status.is_success() {
            Ok(value)
        } else {
            let description = value
                .get("error_description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no description")
                .to_owned();
            Err(CliError::Refused(format!("{status}: {description}")))
        }
    })
}

fn key_table(value: &serde_json::Value) -> String {
    let keys: Vec<KeyInfo> = value
        .get("keys")
        .cloned()
        .and_then(|k| serde_json::from_value(k).ok())
        .unwrap_or_default();
    let mut out = String::new();
    for key in keys {
        let state = match key.state {
            KeyState::Next => "next (published, not signing yet)".to_owned(),
            KeyState::Current => "current (signing)".to_owned(),
            KeyState::Retiring { retire_at } => {
                format!("retiring (published until Unix time {retire_at})")
            }
        };
        out.push_str(&format!("{:<24} {:<6} {state}\n", key.kid, key.alg));
    }
    out
}

fn run_keys(args: &KeysArgs) -> Result<(), CliError> {
    let (method, path, list) = match &args.action {
        KeysAction::List => (reqwest::Method::GET, "admin/keys".to_owned(), None),
        KeysAction::PublishNext => (
            reqwest::Method::POST,
            "admin/keys/publish-next".to_owned(),
            Some("published"),
        ),
        KeysAction::Activate { grace } => (
            reqwest::Method::POST,
            match grace {
                Some(g) => format!("admin/keys/activate?grace={g}"),
                None => "admin/keys/activate".to_owned(),
            },
            Some("activated"),
        ),
        KeysAction::Retire => (
            reqwest::Method::POST,
            "admin/keys/retire".to_owned(),
            Some("retired"),
        ),
    };
    let value = admin_call(&args.url, method, &path, None)?;
    if args.json {
        println!("{value}");
        return Ok(());
    }
    if let Some(name) = list {
        let kids: Vec<&str> = value
            .get(name)
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if kids.is_empty() {
            println!("{name}: nothing to do");
        } else {
            println!("{name}: {}", kids.join(", "));
        }
    }
    print!("{}", key_table(&value));
    Ok(())
}

fn run_fail_jwks(args: &FailJwksArgs) -> Result<(), CliError> {
    if args.mode == "off" {
        admin_call(
            &args.url,
            reqwest::Method::DELETE,
            "admin/jwks-failure",
            None,
        )?;
        println!("the JWKS endpoint answers normally again");
        return Ok(());
    }
    parse_failure(&args.mode, args.delay_ms).map_err(CliError::Usage)?;
    let mut path = format!(
        "admin/jwks-failure?mode={}&seconds={}",
        args.mode, args.seconds
    );
    if let Some(delay) = args.delay_ms {
        path.push_str(&format!("&delay_ms={delay}"));
    }
    let value = admin_call(&args.url, reqwest::Method::POST, &path, None)?;
    println!(
        "the JWKS endpoint fails ({}) for {} s",
        value["failure"], args.seconds
    );
    Ok(())
}

fn mint(args: &MintArgs) -> Result<(), CliError> {
    let request = MintRequest {
        user: args.user.clone(),
        client: args.client.clone(),
        audience: args.audience.clone(),
        scope: (!args.scopes.is_empty()).then(|| args.scopes.join(" ")),
        lifetime: args.lifetime,
    };
    let response: TokenResponse = match &args.url {
        Some(url) => {
            let body = serde_json::to_string(&request).map_err(|e| CliError::Io(e.to_string()))?;
            let value = admin_call(url, reqwest::Method::POST, "admin/mint", Some(body))?;
            serde_json::from_value(value)
                .map_err(|e| CliError::Io(format!("unexpected answer from the issuer: {e}")))?
        }
        None => {
            let mut config = load_config(args.config.as_deref())?;
            if let Some(listen) = args.listen {
                config.issuer.listen = listen;
            }
            let dir = state_dir(args.state_dir.as_deref())?;
            let keys = KeyRing::open(&dir)?;
            if keys.describe().is_empty() {
                eprintln!(
                    "jwtgate: note: no keys in {} yet; new ones are generated and kept there \
                     (start `jwtgate issuer` with the same state directory to publish them)",
                    dir.display()
                );
            }
            let issuer = Issuer::new(
                config,
                keys,
                IssuerOptions {
                    public_url: args.public_url.clone(),
                    ..IssuerOptions::default()
                },
            )?;
            issuer.mint(&request).map_err(|error| match error {
                IssuerError::Request(message) => CliError::Usage(message),
                other => CliError::Issuer(other),
            })?
        }
    };
    if args.json {
        let text = serde_json::to_string(&response).map_err(|e| CliError::Io(e.to_string()))?;
        println!("{text}");
    } else if args.id_token {
        match &response.id_token {
            Some(token) => println!("{token}"),
            None => {
                return Err(CliError::Usage(
                    "no ID token: the granted scope has no `openid` (or no --user was given)"
                        .into(),
                ))
            }
        }
    } else {
        println!("{}", response.access_token);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_are_loopback_only() {
        for good in [
            "http://127.0.0.1:4400/",
            "http://localhost:1",
            "http://[::1]:9/",
        ] {
            assert!(admin_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://192.0.2.1:4400/",
            "http://example.com/",
            "https://localhost:4400/",
            "http://localhost:4400/x/",
            "localhost:4400",
        ] {
            assert!(admin_url(bad).is_err(), "{bad}");
        }
    }
}
