//! The harness shared by the HTTP gateway's tests: the `docs/recipes/` files and their
//! placeholders, an issuer minting tokens, the in-process gateway (from a recipe, or from a
//! [`GatewayConfig`] with or without TLS), child processes on free loopback ports (nginx, Caddy
//! and others), and a raw HTTP/1.1 client that sends exactly the bytes it is given.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::net::TcpListener;

pub use jwtgate_test_support::process::{
    nginx_command, require_program, start_on_free_port, Running, INSTALL_HINT,
};
pub use jwtgate_test_support::recipes::{recipe, render};
pub use jwtgate_test_support::wire::{send, Reply};
pub use jwtgate_test_support::workspace_root as repo_root;

/// The issuer and audience written in the recipes.
pub const ISS: &str = "https://example.eu.auth0.com/";
pub const AUD: &str = "https://api.example.com";
/// The realm the recipes set.
pub const CHALLENGE: &str = "Bearer realm=\"api\"";

// ---------------------------------------------------------------------------------------------
// Keys and tokens

pub use jwtgate_test_support::{free_port, Issuer};

/// The shared issuer fixture under the issuer and audience the recipes name: its tokens carry
/// `sub` auth0|alice and `permissions` read:users.
pub fn recipe_issuer() -> Issuer {
    Issuer::new().with_issuer(ISS).with_audience(AUD)
}

// ---------------------------------------------------------------------------------------------
// The gateway (in-process) and the upstream

/// Starts the gateway from a recipe on a free loopback port; it stops when the sender drops.
pub async fn start_gateway(
    recipe_name: &str,
    issuer: &Issuer,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let jwks = issuer.jwks_file().display().to_string();
    start_gateway_with(recipe_name, |addr| {
        render(
            &recipe(recipe_name),
            &[("@JWTGATE_ADDR@", addr.to_string()), ("@JWKS_FILE@", jwks)],
        )
    })
    .await
}

/// Starts the gateway on a free loopback port from the TOML `config` writes for that address;
/// `name` names it in errors. It stops when the sender drops.
pub async fn start_gateway_with(
    name: &str,
    config: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = GatewayConfig::from_toml(&config(addr), name).unwrap();
    assert_eq!(config.server.listen, addr);
    let gateway = serve(&config, name, listener).await;
    (gateway.addr, gateway.stop.unwrap())
}

/// A gateway serving in the test's runtime.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine it was built with.
    pub engine: std::sync::Arc<jwtgate_http::Engine>,
    /// Stops it when sent to or dropped (taken by [`Gateway::stop`]).
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task: it ends once stopped and its requests are done.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// Stops it and waits (10 s at most) for its task to end without an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the gateway stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// Starts the gateway built from `config` (named `test.toml` in errors) on a free loopback port.
pub async fn start_config(config: &GatewayConfig) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(config, "test.toml", listener).await
}

/// Serves `config` on `listener`: over TLS when it names `tls_cert`/`tls_key`, asking for client
/// certificates from its `client_ca` when it names one.
pub async fn serve(config: &GatewayConfig, name: &str, listener: TcpListener) -> Gateway {
    let built = config.build(name).unwrap();
    let tls = built.options.tls.as_ref().map(|(cert, key)| {
        server::tls_acceptor_with_client_ca(cert, key, built.options.client_ca.as_deref()).unwrap()
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = server::spawn(&built, listener, tls, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Gateway {
        addr: spawned.addr,
        engine: built.engine,
        stop: Some(tx),
        task: spawned.task,
    }
}

/// The users API the gateway tests protect, with `extra` TOML after it: `issuer`'s `[[issuers]]`
/// entry; `GET /api/users` needs `read:users`, `POST` `write:users`; `/public/*` is public; the
/// `email` claim goes to `X-Auth-Email`.
pub fn users_api_config(issuer: &Issuer, extra: &str) -> GatewayConfig {
    let text = format!(
        r#"
        {issuers}

        [[routes]]
        methods = ["GET"]
        path = "/api/users"
        scopes = ["read:users"]

        [[routes]]
        methods = ["POST"]
        path = "/api/users"
        scopes = ["write:users"]

        [[routes]]
        path = "/public/*"
        public = true

        [identity.claims]
        email = "X-Auth-Email"
        {extra}
        "#,
        issuers = issuer.issuer_toml(),
    );
    GatewayConfig::from_toml(&text, "test.toml").unwrap()
}

// ---------------------------------------------------------------------------------------------
// The real proxies

/// nginx from `docs/recipes/nginx.conf`, single process, in the foreground.
pub async fn start_nginx(
    dir: &Path,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let template = recipe("nginx.conf");
    let prefix = dir.join("nginx");
    start_on_free_port("nginx", dir, |listen| {
        let conf = render(
            &template,
            &[
                ("@LISTEN_ADDR@", listen.to_string()),
                ("@JWTGATE_ADDR@", jwtgate.to_string()),
                ("@UPSTREAM_ADDR@", upstream.to_string()),
            ],
        );
        nginx_command(&prefix, &conf)
    })
    .await
}

/// Caddy from `docs/recipes/Caddyfile`, admin endpoint off, state in the temp dir.
pub async fn start_caddy(
    dir: &Path,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let caddy = require_program("caddy");
    let template = recipe("Caddyfile");
    let home = dir.join("caddy");
    std::fs::create_dir_all(&home).unwrap();
    start_on_free_port("caddy", dir, |listen| {
        let caddyfile = render(
            &template,
            &[
                ("@LISTEN_PORT@", listen.port().to_string()),
                ("@LISTEN_HOST@", listen.ip().to_string()),
                ("@JWTGATE_ADDR@", jwtgate.to_string()),
                ("@UPSTREAM_ADDR@", upstream.to_string()),
            ],
        );
        std::fs::write(home.join("Caddyfile"), caddyfile).unwrap();
        let mut command = Command::new(&caddy);
        command
            .current_dir(&home)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .args(["run", "--adapter", "caddyfile", "--config", "Caddyfile"]);
        command
    })
    .await
}
