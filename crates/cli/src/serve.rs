//! `jwtgate serve` (the gateway) and `jwtgate check-config`.
//!
//! Settings come from a TOML file (`--config`), from flags, or both: flags are applied on top of
//! the file (`--listen` replaces the address, `--issuer` adds an issuer, `--route` and `--public`
//! add routes after the file's, `--upstream` sets the proxy). Every flag also reads a
//! `JWTGATE_*` environment variable.
//!
//! `SIGHUP`, and with `--watch-config` a change of the file's content, reloads the configuration
//! (file and flags again) without a restart; see [`jwtgate_http::reload`].

use clap::{Args, ValueEnum};
use jwtgate_http::config::{
    BuiltGateway, ConfigError, CorsSection, GatewayConfig, IssuerSection, RouteSection, Unmatched,
};
use jwtgate_http::proxy::ProxyOptions;
use jwtgate_http::{reload, server, SharedEngine};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `serve` and `check-config`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, env = "JWTGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address.
    #[arg(long, env = "JWTGATE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Accepted issuer (adds an issuer to the file's).
    #[arg(long, env = "JWTGATE_ISSUER", value_name = "ISS")]
    issuer: Option<String>,
    /// Accepted audience of --issuer; repeatable (comma-separated in the environment).
    #[arg(
        long = "audience",
        env = "JWTGATE_AUDIENCE",
        value_delimiter = ',',
        value_name = "AUD"
    )]
    audiences: Vec<String>,
    /// JWKS URL of --issuer (default: OIDC discovery from the issuer).
    #[arg(long, env = "JWTGATE_JWKS_URL", value_name = "URL")]
    jwks_url: Option<String>,
    /// JWKS file of --issuer.
    #[arg(long = "jwks", env = "JWTGATE_JWKS_FILE", value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// Allowed algorithms of --issuer (comma-separated).
    #[arg(
        long = "alg",
        env = "JWTGATE_ALGORITHMS",
        value_delimiter = ',',
        value_name = "ALG"
    )]
    algorithms: Vec<String>,
    /// Clock leeway of --issuer, in seconds.
    #[arg(long, env = "JWTGATE_LEEWAY", value_name = "SECONDS")]
    leeway: Option<u64>,
    /// A route rule `METHODS PATH [SCOPE …]`, e.g. 'GET /api/users read:users'; repeatable
    /// (semicolon-separated in the environment).
    #[arg(
        long = "route",
        env = "JWTGATE_ROUTES",
        value_delimiter = ';',
        value_name = "RULE"
    )]
    routes: Vec<String>,
    /// A path (pattern) that needs no token, any method; repeatable.
    #[arg(
        long = "public",
        env = "JWTGATE_PUBLIC",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    public: Vec<String>,
    /// What requests matching no route get.
    #[arg(long, env = "JWTGATE_UNMATCHED", value_enum)]
    unmatched: Option<UnmatchedArg>,
    /// Upstream to proxy authorised requests to (proxy mode).
    #[arg(long, env = "JWTGATE_UPSTREAM", value_name = "URL")]
    upstream: Option<String>,
    /// Allowed CORS origin; repeatable.
    #[arg(
        long = "cors-origin",
        env = "JWTGATE_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    cors_origins: Vec<String>,
    /// Realm in WWW-Authenticate.
    #[arg(long, env = "JWTGATE_REALM")]
    realm: Option<String>,
    /// Reload the configuration when the file's content changes (polled every 250 ms), besides
    /// on SIGHUP.
    #[arg(long, env = "JWTGATE_WATCH_CONFIG", requires = "config")]
    watch_config: bool,
    /// Log format.
    #[arg(long, env = "JWTGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `unmatched` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnmatchedArg {
    /// Refuse.
    Deny,
    /// Any valid token.
    Authenticated,
    /// No token needed.
    Public,
}

/// Options of `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The configuration file to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn load(args: &ServeArgs) -> Result<(GatewayConfig, String), ConfigError> {
    let (mut config, name) = match &args.config {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Syntax {
                file: name.clone(),
                message: e.to_string(),
            })?;
            (GatewayConfig::from_toml(&text, &name)?, name)
        }
        None => (GatewayConfig::default(), "flags".to_owned()),
    };
    let flag_error = |key: &str, message: String| ConfigError::Invalid {
        file: "flags".to_owned(),
        key: key.to_owned(),
        message,
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(realm) = &args.realm {
        config.server.realm = realm.clone();
    }
    if let Some(issuer) = &args.issuer {
        config.issuers.push(IssuerSection {
            issuer: issuer.clone(),
            audiences: args.audiences.clone(),
            jwks_url: args.jwks_url.clone(),
            jwks_file: args.jwks_file.clone(),
            algorithms: args.algorithms.clone(),
            leeway: args.leeway.unwrap_or(0),
            scopes: Vec::new(),
            strict: false,
            clients: Vec::new(),
        });
    } else if !args.audiences.is_empty() || args.jwks_url.is_some() || args.jwks_file.is_some() {
        return Err(flag_error(
            "--issuer",
            "--audience, --jwks-url and --jwks need --issuer".into(),
        ));
    }
    for spec in &args.routes {
        config
            .routes
            .push(RouteSection::parse_spec(spec).map_err(|e| flag_error("--route", e))?);
    }
    for path in &args.public {
        config.routes.push(RouteSection {
            methods: Vec::new(),
            path: path.clone(),
            scopes: Vec::new(),
            any: false,
            public: true,
        });
    }
    if let Some(unmatched) = args.unmatched {
        config.server.unmatched = match unmatched {
            UnmatchedArg::Deny => Unmatched::Deny,
            UnmatchedArg::Authenticated => Unmatched::Authenticated,
            UnmatchedArg::Public => Unmatched::Public,
        };
    }
    if let Some(upstream) = &args.upstream {
        config.proxy = Some(match config.proxy.take() {
            Some(existing) => ProxyOptions {
                upstream: upstream.clone(),
                ..existing
            },
            None => ProxyOptions::new(upstream.clone()),
        });
    }
    if !args.cors_origins.is_empty() {
        config.cors = Some(CorsSection::new(args.cors_origins.clone()));
    }
    Ok((config, name))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JWTGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the gateway until SIGTERM/SIGINT, reloading its configuration on SIGHUP (and on file
/// changes with `--watch-config`).
pub fn run(args: &ServeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    init_logging(args.log_format);
    let (config, name) = load(args)?;
    let BuiltGateway { engine, options } = config.build(&name)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reload_args = args.clone();
    let watch = if args.watch_config {
        args.config.clone()
    } else {
        None
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "listening on a non-loopback address");
        }
        server::prepare_keys(&engine).await;
        let metrics = engine.metrics().clone();
        // Only the shared engine holds it from here: a reload drops it once requests finish.
        let shared = SharedEngine::shared(engine);
        let app = server::router(shared.clone(), &options)?;
        let reloader = reload::Reloader::new(shared, options.clone(), move || load(&reload_args));
        reload::spawn(reloader, watch)?;
        let mode = match &options.proxy {
            Some(proxy) => format!("proxy to {}", proxy.upstream),
            None => "forward-auth".to_owned(),
        };
        tracing::info!(%address, %mode, forward_auth = ?options.forward_auth_path, "jwtgate listening");
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        eprintln!("jwtgate: listening on {scheme}://{address} ({mode})");
        let tls = match &options.tls {
            Some((cert, key)) => Some(server::tls_acceptor(cert, key)?),
            None => None,
        };
        server::serve_gateway(listener, app, metrics, &options, tls, server::shutdown_signal())
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Validates a configuration file and prints the effective configuration.
pub fn check_config(args: &CheckConfigArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{name}: {e}"))?;
    let config = GatewayConfig::from_toml(&text, &name)?;
    config.build(&name)?;
    println!("# {name}: valid. Effective configuration, defaults included:");
    print!("{}", config.to_toml());
    Ok(ExitCode::SUCCESS)
}
