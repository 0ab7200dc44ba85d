//! Hot reload of the gateway's configuration: on `SIGHUP`, or when the configuration file's
//! content changes (polled, so it works without inotify and with editors that replace the file),
//! a new [`Engine`] is built and swapped into the [`SharedEngine`] every front end loads from.
//!
//! * Requests in flight finish on the engine they loaded; new requests get the new one.
//! * Issuers whose key source is unchanged keep it (same cache, same keys, same background
//!   refresher: no refetch); new or changed issuers get new sources, fetched before the swap.
//!   Sources no longer used are dropped with the old engine, and their refreshers end.
//! * The counters carry over; the verified-token cache starts empty (the new rules may allow a
//!   token less than the old ones did).
//! * A configuration with an error is refused with the message `jwtgate check-config` gives,
//!   logged at error level; the running engine keeps serving.
//! * Settings read once at start (the listener, TLS files, connection limits, endpoint paths,
//!   `[proxy]`) keep their running values: a reload changing them logs a warning naming them.
//!
//! Every reload, applied or refused, is counted in `jwtgate_config_reloads_total{result}`.

use crate::config::{BuiltGateway, ConfigError, GatewayConfig};
use crate::server::ServerOptions;
use crate::shared::SharedEngine;
use jwtgate_engine::Engine;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often `--watch-config` reads the file. A change is applied once two consecutive reads
/// agree, so a file caught half-written is never applied; a change is live within about twice
/// this interval.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Reads the configuration again — the file with whatever the process applies on top of it
/// (command-line flags) — and builds the engine replacing the running one (usually with
/// [`rebuild`]), with the same errors as at start.
pub type Loader = dyn Fn(&Engine) -> Result<BuiltGateway, ConfigError> + Send + Sync;

/// Builds the engine replacing `old` from `config` (`file` names it in errors): unchanged
/// issuers keep `old`'s key sources, the counters are `old`'s, the verified-token cache is new.
/// Nothing is fetched here; see [`prepare_new_sources`].
pub fn rebuild(
    old: &Engine,
    config: &GatewayConfig,
    file: &str,
) -> Result<BuiltGateway, ConfigError> {
    config.build_replacing(file, old)
}

/// The settings that differ between the `running` server options and `new` ones but only take
/// effect at start, as configuration keys (`server.listen`, `proxy`, …).
pub fn restart_only_changes(running: &ServerOptions, new: &ServerOptions) -> Vec<&'static str> {
    let (a, b) = (&running.connections, &new.connections);
    let tls_part = |options: &ServerOptions, key: bool| {
        options
            .tls
            .as_ref()
            .map(|(cert, private)| if key { private.clone() } else { cert.clone() })
    };
    [
        ("server.listen", running.listen != new.listen),
        (
            "server.tls_cert",
            tls_part(running, false) != tls_part(new, false),
        ),
        (
            "server.tls_key",
            tls_part(running, true) != tls_part(new, true),
        ),
        ("server.client_ca", running.client_ca != new.client_ca),
        (
            "server.forward_auth_path",
            running.forward_auth_path != new.forward_auth_path,
        ),
        (
            "server.forward_auth_prefix",
            running.forward_auth_prefix != new.forward_auth_prefix,
        ),
        (
            "server.forward_auth_invalid_request_status",
            running.forward_auth_invalid_request_status != new.forward_auth_invalid_request_status,
        ),
        ("server.grpc_listen", running.grpc_listen != new.grpc_listen),
        (
            "server.grpc_forward_token",
            running.grpc_forward_token != new.grpc_forward_token,
        ),
        (
            "server.grpc_claims_metadata",
            running.grpc_claims_metadata != new.grpc_claims_metadata,
        ),
        ("server.health_path", running.health_path != new.health_path),
        ("server.ready_path", running.ready_path != new.ready_path),
        (
            "server.metrics_path",
            running.metrics_path != new.metrics_path,
        ),
        (
            "server.header_read_timeout_ms",
            a.header_read_timeout != b.header_read_timeout,
        ),
        ("server.idle_timeout_ms", a.idle_timeout != b.idle_timeout),
        (
            "server.body_read_timeout_ms",
            a.body_read_timeout != b.body_read_timeout,
        ),
        (
            "server.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "server.http2_max_concurrent_streams",
            a.http2_max_concurrent_streams != b.http2_max_concurrent_streams,
        ),
        (
            "server.http2_max_header_list_size",
            a.http2_max_header_list_size != b.http2_max_header_list_size,
        ),
        ("proxy", running.proxy != new.proxy),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Fetches the keys of every source of `new` that `old` does not have (new or changed issuers),
/// all at once, and starts their background refreshers, like [`crate::server::prepare_keys`] at
/// start; a failed fetch is logged and retried by the refresher. Returns how many sources were
/// new.
pub async fn prepare_new_sources(old: &Engine, new: &Engine) -> usize {
    let fresh: Vec<_> = new
        .registry()
        .entries()
        .iter()
        .map(|entry| entry.source())
        .filter(|source| {
            !old.registry()
                .entries()
                .iter()
                .any(|kept| kept.source().same_source(source))
        })
        .cloned()
        .collect();
    let fetches: Vec<_> = fresh
        .iter()
        .map(|source| {
            let source = source.clone();
            tokio::spawn(async move {
                if let Err(error) = source.refresh_now().await {
                    tracing::warn!(source = %source.kind(), %error, "key fetch for the reloaded configuration failed; will retry");
                }
            })
        })
        .collect();
    for fetch in fetches {
        if let Err(error) = fetch.await {
            tracing::warn!(%error, "key fetch for the reloaded configuration did not finish");
        }
    }
    for source in &fresh {
        tokio::spawn(source.clone().run_refresher());
    }
    fresh.len()
}

/// What an applied reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Key sources carried over from the previous engine.
    pub kept_sources: usize,
    /// Key sources created (and fetched) for new or changed issuers.
    pub new_sources: usize,
    /// Restart-only settings that changed and were not applied.
    pub needs_restart: Vec<&'static str>,
}

/// Reloads the configuration into a [`SharedEngine`], one reload at a time.
pub struct Reloader {
    engine: Arc<SharedEngine>,
    running: ServerOptions,
    load: Box<Loader>,
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// Reloads into `engine`, with `load` reading the configuration and building the engine
    /// that replaces the running one; `running` are the options the server was started with
    /// (changes to them are reported, not applied).
    pub fn new(
        engine: Arc<SharedEngine>,
        running: ServerOptions,
        load: impl Fn(&Engine) -> Result<BuiltGateway, ConfigError> + Send + Sync + 'static,
    ) -> Reloader {
        Reloader {
            engine,
            running,
            load: Box::new(load),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads and builds the configuration and, when it is valid, swaps the new engine in (after
    /// fetching the keys of new issuers). A refused configuration is logged at error level with
    /// the message `jwtgate check-config` gives, and returned; the running engine stays. Both
    /// outcomes are counted.
    pub async fn reload(&self) -> Result<Reloaded, ConfigError> {
        let _one_at_a_time = self.busy.lock().await;
        let old = self.engine.load();
        let built = match (self.load)(&old) {
            Ok(built) => built,
            Err(error) => {
                old.metrics().config_reload(false);
                tracing::error!(%error, "configuration reload refused; the running configuration stays");
                return Err(error);
            }
        };
        let needs_restart = restart_only_changes(&self.running, &built.options);
        if !needs_restart.is_empty() {
            tracing::warn!(
                settings = %needs_restart.join(", "),
                "configuration reload: these settings only change with a restart; their running values stay"
            );
        }
        let new_sources = prepare_new_sources(&old, &built.engine).await;
        if let Some(revocation) = built.engine.revocation() {
            jwtgate_revocation::follow::start(revocation);
        }
        let kept_sources = built
            .engine
            .registry()
            .entries()
            .len()
            .saturating_sub(new_sources);
        self.engine.store(built.engine.clone());
        built.engine.metrics().config_reload(true);
        tracing::info!(
            kept_sources,
            new_sources,
            "configuration reloaded; the verified-token cache starts empty"
        );
        Ok(Reloaded {
            kept_sources,
            new_sources,
            needs_restart,
        })
    }
}

/// Watches one file's content; a change counts once two consecutive reads agree.
struct Watch {
    path: PathBuf,
    applied: Option<Vec<u8>>,
    pending: Option<Vec<u8>>,
    unreadable: bool,
}

impl Watch {
    async fn read(&self) -> Option<Vec<u8>> {
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
            Ok(Ok(content)) => Some(content),
            Ok(Err(error)) => {
                if !self.unreadable {
                    tracing::warn!(file = %self.path.display(), %error, "cannot read the configuration file; still watching it");
                }
                None
            }
            Err(_) => None,
        }
    }

    /// Takes `content`, read just before a reload by signal, as applied: a change made after
    /// that read is seen at the next polls.
    fn applied(&mut self, content: Option<Vec<u8>>) {
        if content.is_some() {
            self.applied = content;
        }
        self.pending = None;
    }

    /// True when the content changed since it was last applied and is the same as at the last
    /// poll; it then counts as applied, whether the reload succeeds or not (a broken file is
    /// reported once, not at every poll).
    async fn changed(&mut self) -> bool {
        let Some(content) = self.read().await else {
            self.unreadable = true;
            self.pending = None;
            return false;
        };
        self.unreadable = false;
        if self.applied.as_ref() == Some(&content) {
            self.pending = None;
            return false;
        }
        if self.pending.as_ref() == Some(&content) {
            self.pending = None;
            self.applied = Some(content);
            return true;
        }
        self.pending = Some(content);
        false
    }
}

/// Starts reloading with `reloader` on `SIGHUP` (Unix) and, with `watch`, whenever that file's
/// content changes (read every [`WATCH_INTERVAL`]). The signal handler is installed before this
/// returns, so a `SIGHUP` sent afterwards never ends the process. Must be called within a Tokio
/// runtime; the task runs until the runtime shuts down.
pub fn spawn(
    reloader: Reloader,
    watch: Option<PathBuf>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    let mut hangup = Some(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::hangup(),
    )?);
    #[cfg(not(unix))]
    let mut hangup: Option<()> = None;
    let mut watch = watch.map(|path| Watch {
        applied: std::fs::read(&path).ok(),
        path,
        pending: None,
        unreadable: false,
    });
    Ok(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let signalled = tokio::select! {
                () = next_hangup(&mut hangup) => true,
                _ = ticks.tick(), if watch.is_some() => false,
            };
            if signalled {
                tracing::info!("SIGHUP: reloading the configuration");
                let content = match &watch {
                    Some(watch) => watch.read().await,
                    None => None,
                };
                let _ = reloader.reload().await;
                if let Some(watch) = &mut watch {
                    watch.applied(content);
                }
            } else if let Some(watch) = &mut watch {
                if watch.changed().await {
                    tracing::info!(file = %watch.path.display(), "configuration file changed: reloading");
                    let _ = reloader.reload().await;
                }
            }
        }
    }))
}

/// Completes at the next `SIGHUP`; never without a handler.
#[cfg(unix)]
async fn next_hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(stream) => {
            if stream.recv().await.is_none() {
                *signal = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Completes at the next `SIGHUP`; never without a handler.
#[cfg(not(unix))]
async fn next_hangup(_signal: &mut Option<()>) {
    std::future::pending::<()>().await
}
