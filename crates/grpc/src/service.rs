//! The gRPC server: `envoy.service.auth.v3.Authorization` deciding with the gateway's
//! [`SharedEngine`] (so a configuration reload applies to it at once), and
//! `grpc.health.v1.Health`, `SERVING` exactly when `/readyz` says ready. It is served by the
//! HTTP gateway's own accept loop ([`jwtgate_http::server::serve_gateway`]): h2c, or TLS with
//! the gateway's certificate, under the same connection limits and timeouts.

use crate::check::{check_input, CheckOptions};
use crate::codec::{CheckCodec, CheckInput};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use jwtgate_engine::mtls::CertificateSource;
use jwtgate_http::server::{not_ready_reasons, serve_gateway, ServerOptions};
use jwtgate_http::SharedEngine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The service name Envoy's gRPC health checks may name (the empty name is the whole server).
pub const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";

/// The path of the `Check` method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// How often readiness is looked at again for the health service.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// `envoy.service.auth.v3.Authorization` over the engine `engine` holds at each check.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    engine: Arc<SharedEngine>,
    options: CheckOptions,
}

impl ExtAuthz {
    /// Decides with whatever engine `engine` holds at each check.
    pub fn new(engine: Arc<SharedEngine>, options: CheckOptions) -> ExtAuthz {
        ExtAuthz { engine, options }
    }
}

impl tonic::server::UnaryService<CheckInput> for ExtAuthz {
    type Response = CheckResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<CheckResponse>, tonic::Status>>
                + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<CheckInput>) -> Self::Future {
        let engine = self.engine.load();
        let options = self.options;
        Box::pin(async move {
            let answer = check_input(&engine, request.get_ref(), options).await;
            Ok(tonic::Response::new(answer))
        })
    }
}

impl tower::Service<http::Request<axum::body::Body>> for ExtAuthz {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    /// One `Check` call, decoded by [`CheckCodec`] (only the fields read; the client
    /// certificate when the engine takes it from the check).
    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let source_certificate =
            *self.engine.load().dpop().certificate_source() == CertificateSource::ExtAuthzSource;
        let service = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(CheckCodec { source_certificate });
            Ok(grpc.unary(service, request).await)
        })
    }
}

/// The gRPC services as an axum router (Authorization's `Check` on its exact path, Health),
/// and the reporter of the health service's status (hand it to [`track_readiness`]).
pub fn router(engine: Arc<SharedEngine>, options: CheckOptions) -> (axum::Router, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let app = tonic::service::Routes::new(health)
        .into_axum_router()
        .route_service(CHECK_PATH, ExtAuthz::new(engine, options));
    (app, reporter)
}

/// Sets the health status from key readiness: `SERVING` while every issuer's keys are loaded
/// (as `/readyz`), `NOT_SERVING` otherwise, for the whole server and for
/// [`AUTHORIZATION_SERVICE`]; `last` is the status set before (nothing is sent when unchanged).
async fn report_readiness(
    engine: &SharedEngine,
    reporter: &HealthReporter,
    last: &mut Option<ServingStatus>,
) {
    let status = if not_ready_reasons(&engine.load()).is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    if *last != Some(status) {
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status(AUTHORIZATION_SERVICE, status)
            .await;
        *last = Some(status);
    }
}

/// Keeps the health status in step with key readiness ([`report_readiness`]), forever.
pub async fn track_readiness(engine: Arc<SharedEngine>, reporter: HealthReporter) {
    let mut last = None;
    loop {
        report_readiness(&engine, &reporter, &mut last).await;
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// A gRPC server started by [`spawn`].
#[derive(Debug)]
pub struct Spawned {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The serving task; it ends after the shutdown future completes and checks finish.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves the gRPC services on `listener`, deciding with `engine` (the HTTP gateway's, so
/// reloads apply to both), under `gateway`'s connection limits, over TLS with `tls`, until
/// `shutdown` completes.
pub fn spawn(
    engine: Arc<SharedEngine>,
    listener: tokio::net::TcpListener,
    gateway: &ServerOptions,
    options: CheckOptions,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Spawned> {
    let addr = listener.local_addr()?;
    let metrics = engine.load().metrics().clone();
    let (app, reporter) = router(engine.clone(), options);
    // The gRPC listener has no HTTP endpoints: over the connection limit, every call gets 503
    // (an error Envoy turns into a refusal with failure_mode_allow: false).
    let grpc_options = ServerOptions {
        health_path: None,
        ready_path: None,
        metrics_path: None,
        forward_auth_path: None,
        forward_auth_prefix: None,
        proxy: None,
        ..gateway.clone()
    };
    let task = tokio::spawn(async move {
        // The first status is set before the first connection is served (it waits in the
        // listener's backlog): a health check never finds the service unknown.
        report_readiness(&engine, &reporter, &mut None).await;
        let health = tokio::spawn(track_readiness(engine, reporter));
        let served = serve_gateway(listener, app, metrics, &grpc_options, tls, shutdown).await;
        health.abort();
        served
    });
    Ok(Spawned { addr, task })
}
