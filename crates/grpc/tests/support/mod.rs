//! How the gRPC tests start jwtgate: the HTTP gateway of a built configuration (which loads the
//! keys) and the gRPC listener on its engine, each on a free loopback port.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_http::config::BuiltGateway;
use jwtgate_http::{server, SharedEngine};
use std::net::SocketAddr;
use std::sync::Arc;

/// A gRPC listener being served.
pub struct Serving {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine it decides with.
    pub engine: Arc<SharedEngine>,
    /// Stops it when sent to or dropped.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The listener's task: it ends once stopped and its calls are done.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts `built`'s gateway and its gRPC listener on free loopback ports.
pub async fn serve(built: &BuiltGateway) -> Serving {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = server::spawn(built, http, None, std::future::pending())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let spawned = jwtgate_grpc::spawn(
        gateway.engine.clone(),
        grpc,
        &built.options,
        jwtgate_grpc::CheckOptions::of(&built.options),
        None,
        async {
            let _ = stopped.await;
        },
    )
    .unwrap();
    Serving {
        addr: spawned.addr,
        engine: gateway.engine,
        stop: Some(stop),
        task: spawned.task,
    }
}
