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
use jwtgate_engine::args::{blame, EngineArgs, EngineSettings};
use jwtgate_engine::mcp::ResourceSection;
use jwtgate_engine::RouteSection;
use jwtgate_http::config::{BuiltGateway, ConfigError, CorsSection, GatewayConfig};
use jwtgate_http::proxy::ProxyOptions;
use jwtgate_http::{reload, server};
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
    /// Issuer, route, cache and path settings (shared with `jwtgate lambda`).
    #[command(flatten)]
    engine: EngineArgs,
    /// Forward-auth prefix: a request to PREFIX + a path is checked as that path (Envoy's HTTP
    /// ext_authz `path_prefix`).
    #[arg(long, env = "JWTGATE_FORWARD_AUTH_PREFIX", value_name = "PREFIX")]
    forward_auth_prefix: Option<String>,
    /// Also serve Envoy's gRPC external authorization (and gRPC health) on this address.
    #[arg(long, env = "JWTGATE_GRPC_LISTEN", value_name = "ADDR")]
    grpc_listen: Option<SocketAddr>,
    /// Upstream to proxy authorised requests to (proxy mode).
    #[arg(long, env = "JWTGATE_UPSTREAM", value_name = "URL")]
    upstream: Option<String>,
    /// Front an MCP server: the route at the resource's path is an MCP route (any valid token
    /// for the resource, JSON-RPC bodies inspected), and the protected resource metadata is
    /// served. The resource defaults to `[server] public_url` + `/mcp`, or to
    /// `http://LISTEN/mcp` on a loopback listener.
    #[arg(long, env = "JWTGATE_MCP")]
    mcp: bool,
    /// The protected resource's canonical URI (`[resource] resource`), e.g.
    /// `https://mcp.example.com/mcp`.
    #[arg(long, env = "JWTGATE_RESOURCE", value_name = "URL")]
    resource: Option<String>,
    /// Authorization server named in the resource metadata; repeatable (default: the issuers).
    #[arg(
        long = "authorization-server",
        env = "JWTGATE_AUTHORIZATION_SERVERS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    authorization_servers: Vec<String>,
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

/// Options of `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The configuration file to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Check it as the Lambda authorizer's configuration (the default when it has a `[lambda]`
    /// section).
    #[arg(long)]
    lambda: bool,
    /// Check it as a Lambda `TOKEN` authorizer's (implies `--lambda`): such an event carries no
    /// DPoP proof, so `[dpop]` required anywhere is an error, allowed a note.
    #[arg(long)]
    token_authorizer: bool,
}

/// A configuration from the file and the flags, and how many issuers and routes came from the
/// file (errors about the others name the flag's variable).
struct Loaded {
    config: GatewayConfig,
    name: String,
    file_issuers: usize,
    file_routes: usize,
}

impl Loaded {
    /// Builds the gateway, blaming an error about a flag-added issuer or route on its flag.
    fn build(&self) -> Result<BuiltGateway, ConfigError> {
        self.config
            .build(&self.name)
            .map_err(|e| blame("flags", e, self.file_issuers, self.file_routes))
    }

    /// Builds the engine replacing `old` on a reload (its unchanged key sources and its
    /// counters carried over), with the same errors as [`Loaded::build`].
    fn build_replacing(&self, old: &jwtgate_http::Engine) -> Result<BuiltGateway, ConfigError> {
        reload::rebuild(old, &self.config, &self.name)
            .map_err(|e| blame("flags", e, self.file_issuers, self.file_routes))
    }
}

fn load(args: &ServeArgs) -> Result<Loaded, ConfigError> {
    let (mut config, name) = match &args.config {
        Some(path) => jwtgate_engine::rules::read_toml(path)?,
        None => (GatewayConfig::default(), "flags".to_owned()),
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(realm) = &args.realm {
        config.server.realm = realm.clone();
    }
    if let Some(prefix) = &args.forward_auth_prefix {
        config.server.forward_auth_prefix = prefix.clone();
    }
    if let Some(grpc) = args.grpc_listen {
        config.server.grpc_listen = Some(grpc);
    }
    let (file_issuers, file_routes) = (config.issuers.len(), config.routes.len());
    apply_resource(args, &mut config)?;
    // `--mcp --issuer ISS` without `--audience`: the issuer's tokens are for the resource.
    let mut engine_args = args.engine.clone();
    if let (true, Some(section)) = (args.mcp, &config.resource) {
        if engine_args.issuer.is_some() && engine_args.audiences.is_empty() {
            engine_args.audiences = vec![section.resource.clone()];
        }
    }
    engine_args.apply(
        "flags",
        EngineSettings {
            issuers: &mut config.issuers,
            routes: &mut config.routes,
            unmatched: &mut config.server.unmatched,
            cache: &mut config.cache,
            paths: &mut config.paths,
        },
    )?;
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
    add_mcp_route(args, &mut config);
    Ok(Loaded {
        config,
        name,
        file_issuers,
        file_routes,
    })
}

/// `--resource`, `--authorization-server` and `--mcp` over the file's `[resource]` and routes.
fn apply_resource(args: &ServeArgs, config: &mut GatewayConfig) -> Result<(), ConfigError> {
    let flag_error = |message: String| ConfigError::Invalid {
        file: "flags".into(),
        key: "mcp".into(),
        message,
    };
    if let Some(uri) = &args.resource {
        match &mut config.resource {
            Some(section) => section.resource = uri.clone(),
            None => config.resource = Some(ResourceSection::new(uri.clone())),
        }
    }
    if args.mcp && config.resource.is_none() {
        let uri = match &config.server.public_url {
            Some(public) => format!("{}/mcp", public.trim_end_matches('/')),
            None if config.server.listen.ip().is_loopback() => {
                format!("http://{}/mcp", config.server.listen)
            }
            None => {
                return Err(flag_error(
                    "--mcp needs the MCP server's public URI: set --resource (e.g. https://mcp.example.com/mcp) or [server] public_url".into(),
                ))
            }
        };
        config.resource = Some(ResourceSection::new(uri));
    }
    if !args.authorization_servers.is_empty() {
        match &mut config.resource {
            Some(section) => {
                section.authorization_servers = args.authorization_servers.clone();
            }
            None => {
                return Err(flag_error(
                    "--authorization-server needs --resource or --mcp".into(),
                ))
            }
        }
    }
    Ok(())
}

/// `--mcp`: the route at the resource's path is an MCP route (after the others: put it in the
/// file to place it before a catch-all), unless the file has one.
fn add_mcp_route(args: &ServeArgs, config: &mut GatewayConfig) {
    if args.mcp && !config.routes.iter().any(|route| route.mcp) {
        let Some(section) = &config.resource else {
            return;
        };
        let path = url::Url::parse(&section.resource)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        config.routes.push(RouteSection {
            path,
            mcp: true,
            ..RouteSection::default()
        });
    }
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
    let built = load(args)?.build()?;
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
        let options = built.options.clone();
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "listening on a non-loopback address");
        }
        let tls = match &options.tls {
            Some((cert, key)) => Some(server::tls_acceptor_with_client_ca(
                cert,
                key,
                options.client_ca.as_deref(),
            )?),
            None => None,
        };
        // One shutdown for both listeners: a signal, or either server ending.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stop_on_signal = stop.clone();
        tokio::spawn(async move {
            server::shutdown_signal().await;
            let _ = stop_on_signal.send(true);
        });
        let when_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let grpc_listener = match options.grpc_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (server.grpc_listen): {e}"))?,
            ),
            None => None,
        };
        let gateway =
            server::spawn(&built, listener, tls.clone(), when_stopped(stopped.clone())).await?;
        let grpc = match grpc_listener {
            Some(listener) => {
                let check = jwtgate_grpc::CheckOptions::of(&options);
                let grpc = jwtgate_grpc::spawn(
                    gateway.engine.clone(),
                    listener,
                    &options,
                    check,
                    tls,
                    when_stopped(stopped),
                )?;
                let scheme = if options.tls.is_some() { "TLS" } else { "h2c" };
                tracing::info!(address = %grpc.addr, "gRPC ext_authz listening");
                eprintln!("jwtgate: gRPC ext_authz on {} ({scheme})", grpc.addr);
                Some(grpc)
            }
            None => None,
        };
        // Only the shared engine holds the first engine from here: a reload drops it (and the
        // key sources only it used) once its requests finish.
        drop(built);
        let reloader = reload::Reloader::new(gateway.engine, options.clone(), move |old| {
            load(&reload_args)?.build_replacing(old)
        });
        reload::spawn(reloader, watch)?;
        let mode = match &options.proxy {
            Some(proxy) => format!("proxy to {}", proxy.upstream),
            None => "forward-auth".to_owned(),
        };
        tracing::info!(%address, %mode, forward_auth = ?options.forward_auth_path, "jwtgate listening");
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        eprintln!("jwtgate: listening on {scheme}://{address} ({mode})");
        let served = match grpc {
            Some(grpc) => {
                // Whichever ends first (a signal, or an error) stops the other.
                let (http_task, grpc_task) = (gateway.task, grpc.task);
                let stop_http = stop.clone();
                let http = async move {
                    let result = http_task.await;
                    let _ = stop_http.send(true);
                    result
                };
                let grpc = async move {
                    let result = grpc_task.await;
                    let _ = stop.send(true);
                    result
                };
                let (http, grpc) = tokio::join!(http, grpc);
                http.map_err(|e| e.to_string())?
                    .and(grpc.map_err(|e| e.to_string())?)
            }
            None => gateway.task.await.map_err(|e| e.to_string())?,
        };
        served?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Validates a configuration file — as the gateway reads it, or as the Lambda authorizer does
/// when the file has a `[lambda]` section or `--lambda` is given — and prints the effective
/// configuration.
pub fn check_config(args: &CheckConfigArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{name}: {e}"))?;
    let has_lambda_section = text
        .parse::<toml::Table>()
        .is_ok_and(|table| table.contains_key("lambda"));
    if args.lambda || args.token_authorizer || has_lambda_section {
        return check_lambda_config(&text, &name, args.token_authorizer);
    }
    let config = GatewayConfig::from_toml(&text, &name)?;
    config.build(&name)?;
    println!("# {name}: valid gateway configuration. Effective configuration, defaults included:");
    print!("{}", config.to_toml());
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "lambda")]
fn check_lambda_config(
    text: &str,
    name: &str,
    token_authorizer: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = jwtgate_lambda::LambdaConfig::from_toml(text, name)?;
    config.build(name)?;
    if token_authorizer {
        for note in config.token_authorizer_notes(name)? {
            println!("# note: {note}");
        }
    }
    println!("# {name}: valid Lambda authorizer configuration. Effective configuration, defaults included:");
    print!("{}", config.to_toml());
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "lambda"))]
fn check_lambda_config(
    _text: &str,
    name: &str,
    _token_authorizer: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    Err(format!("{name}: a Lambda authorizer configuration, and this jwtgate was built without the `lambda` feature").into())
}
