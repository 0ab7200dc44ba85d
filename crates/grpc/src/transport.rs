//! The gRPC listener, driven by hand on the `h2` crate: the accept loop, each connection's
//! HTTP/2 state machine, and its calls, with the gateway's connection limits.
//!
//! * **Connections**, admitted as the gateway's are ([`Admission`]): at most its
//!   `max_connections` (derived from the descriptor limit when 0), plus an overload reserve
//!   whose `Check` calls get `UNAVAILABLE` (a denial for Envoy with `failure_mode_allow: false`)
//!   while health is still answered; a reserve connection gets `GOAWAY` at its first call (and
//!   is closed after one second idle), so Envoy, which keeps its connections, reconnects under
//!   the limit after a spike. Beyond that, accepting pauses and new clients wait in the
//!   kernel's backlog.
//! * **Clocks** (the gateway's [`ConnectionLimits`]): the TLS handshake, the HTTP/2 preface and
//!   the first call's headers within `header_read_timeout`; a connection with no call in
//!   flight for `idle_timeout` gets `GOAWAY` and one second to close; a call's body must arrive
//!   within `body_read_timeout` (it is one small message). A call whose body came too late or
//!   could not be read starts the connection's graceful close (`GOAWAY`, one second to finish).
//! * **HTTP/2** (`h2_builder`): the gateway's `http2_max_concurrent_streams` and
//!   `http2_max_header_list_size`, the rapid-reset and local-error-reset limits, a send buffer
//!   per stream of 64 KiB, and windows sized for one check (see `INITIAL_WINDOW`).
//! * **Calls** of one connection are polled by the connection's own task (a
//!   `FuturesUnordered`), not spawned: no task, no cross-task wake-up per call. Every stream
//!   already received is taken, and every call ready finished, before the connection is polled
//!   again: answers to checks that arrived together are written (and flushed) together, by the
//!   one poll that then waits for more (1.3 polls of the connection per check under load,
//!   against 3.4 when a `select!` in random order alternated the connection and the calls). One
//!   connection's checks therefore share one core; Envoy opens a connection per worker thread
//!   (and more when one reaches its stream limit), so the load spreads over cores with
//!   Envoy's workers. The connection's clocks (a tick) and the stop signal
//!   (`jwtgate_http::watchdog::Watchdog`) wake the task through a waker of their own and are
//!   polled only after they did, not on every check's wake-up.
//! * **Shutdown**: accepting stops, every connection gets `GOAWAY`, calls in flight finish
//!   (within `body_read_timeout`: a peer that never acknowledges the `GOAWAY` cannot hold it).

use crate::check::CheckOptions;
use crate::service::{AfterCall, Services, MAX_MESSAGE_SIZE};
use futures_util::stream::{FuturesUnordered, StreamExt};
use jwtgate_engine::Metrics;
use jwtgate_http::server::{
    effective_max_connections, Admission, Admitted, ConnectionLimits, OVERLOAD_TIMEOUT,
};
use jwtgate_http::watchdog::{Watchdog, WatchdogEvent};
use jwtgate_http::SharedEngine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a connection closing (idle, overloaded, or after an unreadable or late call) may
/// take to say goodbye after `GOAWAY`.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Streams a client may open and reset before the server answers them, per connection (the
/// "rapid reset" flood, CVE-2023-44487); the gateway's value.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset for protocol errors before closing the connection.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Each stream's receive window: one check request (headers travel in HEADERS frames; the body
/// is the `CheckRequest`, a few hundred bytes to a few KiB, more with `with_request_body`).
/// h2's default (65,535) already holds a check in one round trip; the connection window is
/// raised so many concurrent checks do not wait on `WINDOW_UPDATE`s.
const INITIAL_WINDOW: u32 = 65_535;
/// The connection's receive window: a full stream window for each of 16 concurrent checks.
const CONNECTION_WINDOW: u32 = 16 * 65_535;
/// Bytes h2 buffers per stream for a peer that does not read its answers.
const MAX_SEND_BUFFER: usize = 64 << 10;

/// What the listener serves with.
struct Listening {
    services: Arc<Services>,
    limits: ConnectionLimits,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
    metrics: Arc<Metrics>,
}

/// The HTTP/2 settings of every connection (see the module docs).
fn h2_builder(limits: &ConnectionLimits) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(limits.http2_max_header_list_size)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .initial_window_size(INITIAL_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    builder
}

/// Serves the gRPC services on `listener` until `shutdown` completes, then lets the calls in
/// flight finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<SharedEngine>,
    limits: ConnectionLimits,
    options: CheckOptions,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = engine.load().metrics().clone();
    let max_connections = effective_max_connections(&limits, false);
    tracing::info!(max_connections, "gRPC connection limit");
    let services = Arc::new(Services::new(
        engine,
        options,
        limits.body_read_timeout,
        MAX_MESSAGE_SIZE,
    ));
    let listening = Listening {
        services,
        limits,
        max_connections,
        tls,
        metrics,
    };
    accept_loop(listener, listening, shutdown).await
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    listening: Listening,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut last_overload_log: Option<Instant> = None;
    let mut admission = Admission::new(listening.max_connections);
    tokio::pin!(shutdown);
    while let Some(Admitted {
        stream,
        peer,
        permit,
        overloaded,
    }) = admission.next(&listener, shutdown.as_mut()).await
    {
        let mut limits = listening.limits;
        if overloaded {
            listening.metrics.connection_over_limit();
            if last_overload_log.is_none_or(|last| last.elapsed() >= Duration::from_secs(10)) {
                last_overload_log = Some(Instant::now());
                tracing::warn!(
                    max_connections = listening.max_connections,
                    "gRPC connection limit reached: checks on new connections get UNAVAILABLE"
                );
            }
            limits.header_read_timeout = limits.header_read_timeout.min(OVERLOAD_TIMEOUT);
            limits.idle_timeout = limits.idle_timeout.min(OVERLOAD_TIMEOUT);
        }
        let connection = Connection {
            services: listening.services.clone(),
            limits,
            overloaded,
            stopped: stopped.clone(),
        };
        let tls = listening.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = tokio::time::Instant::from_std(deadline_after(
                Instant::now(),
                limits.header_read_timeout,
            ));
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout_at(deadline, acceptor.accept(stream)).await
                    else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    connection.serve(tls, deadline).await;
                }
                None => connection.serve(stream, deadline).await,
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    stop.closed().await;
    Ok(())
}

/// An accepted connection, ready to be served.
struct Connection {
    services: Arc<Services>,
    limits: ConnectionLimits,
    overloaded: bool,
    stopped: watch::Receiver<bool>,
}

/// How often a connection looks at its clocks: a quarter of the shorter of the header and idle
/// timeouts, at least 10 ms and at most a second (a huge configured timeout must not overflow
/// the interval's next instant, and closing connections are looked at within a second).
fn watchdog_tick(limits: &ConnectionLimits) -> Duration {
    (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// A century: the deadline of a configured timeout too large to be anything but "never".
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + timeout`, saturating at [`FAR_FUTURE`] from now: a huge configured timeout must not
/// overflow `Instant` and panic the connection.
fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

impl Connection {
    /// Drives the HTTP/2 connection and its calls until it closes, a clock runs out, or the
    /// server shuts down (gracefully: calls in flight finish). `first_call_by` is when the
    /// first call's headers must have arrived.
    async fn serve<T>(self, io: T, first_call_by: tokio::time::Instant)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let Connection {
            services,
            limits,
            overloaded,
            stopped,
        } = self;
        let handshake = h2_builder(&limits).handshake::<T, bytes::Bytes>(io);
        let mut connection = match tokio::time::timeout_at(first_call_by, handshake).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                tracing::debug!(%error, "HTTP/2 handshake failed");
                return;
            }
            Err(_) => return,
        };
        let services = &*services;
        let mut calls = FuturesUnordered::new();
        let mut waiting_first = true;
        let mut idle_since = Instant::now();
        let mut closing: Option<Instant> = None;
        if *stopped.borrow() {
            connection.graceful_shutdown();
            closing = Some(Instant::now() + CLOSE_GRACE);
        }
        // The tick and the stop signal are polled only when one of them woke the task, not on
        // every wake-up of a check.
        let mut watchdog = Watchdog::new(watchdog_tick(&limits), stopped);
        std::future::poll_fn(|cx| loop {
            // Every stream received is taken (h2 reads all that arrived in the first poll and
            // hands the streams over one a poll), then every call ready is finished, then the
            // connection is polled again, which writes their answers together (and flushes
            // once) and registers the task for what comes next.
            loop {
                match connection.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        waiting_first = false;
                        // Boxed: the call's future (its body read, timer and decision) is
                        // large, and the set moves what it holds.
                        calls.push(Box::pin(services.call(request, respond, overloaded)));
                        // An overloaded connection serves this call and closes, so that its
                        // client (Envoy keeps one connection per worker) reconnects under the
                        // limit instead of getting UNAVAILABLE for the connection's whole life.
                        if overloaded {
                            close_gracefully(&mut connection, &mut closing);
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        tracing::debug!(%error, "gRPC connection ended with an error");
                        return Poll::Ready(());
                    }
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            let mut answered = false;
            while let Poll::Ready(Some(after)) = calls.poll_next_unpin(cx) {
                answered = true;
                if after == AfterCall::Close {
                    tracing::debug!("an unreadable or late gRPC call: closing its connection");
                    close_gracefully(&mut connection, &mut closing);
                }
            }
            if answered {
                if calls.is_empty() {
                    idle_since = Instant::now();
                }
                continue;
            }
            match watchdog.poll_event(cx) {
                None => return Poll::Pending,
                Some(WatchdogEvent::Stop) => {
                    connection.graceful_shutdown();
                    // A peer that never acknowledges the GOAWAY does not hold the shutdown:
                    // calls in flight get as long as a body may take, then the socket closes.
                    let grace =
                        deadline_after(Instant::now(), limits.body_read_timeout.max(CLOSE_GRACE));
                    closing = Some(closing.map_or(grace, |earlier| earlier.min(grace)));
                    continue;
                }
                Some(WatchdogEvent::Tick) => {}
            }
            let now = Instant::now();
            if let Some(grace) = closing {
                if now >= grace {
                    return Poll::Ready(());
                }
            } else if waiting_first {
                if tokio::time::Instant::now() >= first_call_by {
                    tracing::debug!("no gRPC call in time: closing");
                    return Poll::Ready(());
                }
            } else if calls.is_empty() && now.duration_since(idle_since) >= limits.idle_timeout {
                close_gracefully(&mut connection, &mut closing);
            }
        })
        .await;
    }
}

/// Starts `connection`'s graceful shutdown (`GOAWAY`, calls in flight finish) with
/// [`CLOSE_GRACE`] to complete, unless it is already closing.
fn close_gracefully<T, B>(
    connection: &mut h2::server::Connection<T, B>,
    closing: &mut Option<Instant>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    B: bytes::Buf,
{
    if closing.is_none() {
        connection.graceful_shutdown();
        *closing = Some(Instant::now() + CLOSE_GRACE);
    }
}

/// A gRPC server started by [`spawn`].
#[derive(Debug)]
pub struct Spawned {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The serving task; it ends after the shutdown future completes and calls finish.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves the gRPC services on `listener`, deciding with `engine` (the HTTP gateway's, so
/// reloads apply to both), under `gateway`'s connection limits and timeouts, over TLS with
/// `tls`, until `shutdown` completes.
pub fn spawn(
    engine: Arc<SharedEngine>,
    listener: tokio::net::TcpListener,
    gateway: &jwtgate_http::server::ServerOptions,
    options: CheckOptions,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Spawned> {
    let addr = listener.local_addr()?;
    let limits = gateway.connections;
    let task = tokio::spawn(serve(listener, engine, limits, options, tls, shutdown));
    Ok(Spawned { addr, task })
}
