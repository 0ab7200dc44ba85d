//! Fixtures shared by jwtgate's tests (a dev-dependency only, never published): an [`Issuer`]
//! that signs Auth0-shaped tokens with a generated key and publishes its JWKS (as JSON or a
//! file), a loopback [`JwksServer`] that counts fetches, a multi-tenant provider
//! ([`TenantProvider`]: discovery and JWKS per tenant), [`free_port`] and [`now`].
//!
//! A fixture that cannot be built is a broken test, not a condition to handle: helpers fail
//! loudly with a message instead of returning errors, as test code does.

#![allow(clippy::expect_used, clippy::panic)]

mod issuer;
mod server;
mod tenants;

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
