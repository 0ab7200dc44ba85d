//! # jwtgate-http
//!
//! jwtgate over HTTP: three front ends that render the one decision of
//! [`jwtgate_engine::Engine`] and decide nothing themselves.
//!
//! * [`AuthLayer`], a tower `Layer` for Rust services, with the [`VerifiedToken`] axum extractor;
//! * the forward-auth endpoint ([`server`]) for nginx `auth_request`, Caddy `forward_auth`,
//!   Traefik `ForwardAuth` and Envoy `ext_authz` (HTTP);
//! * the reverse proxy ([`proxy`]), which guards an upstream with the same layer and sends it
//!   exactly the path that was checked.
//!
//! ## Design
//!
//! * **Render, never decide.** Every answer comes from an [`Outcome`]: RFC 6750 refusals
//!   ([`answer`]) with the status, challenge and body built from one [`Denial`]; identity
//!   headers from the engine, client spellings of them removed first.
//! * **One engine at a time, swappable.** Front ends load the engine from a [`SharedEngine`] per
//!   request, so a configuration reload swaps it atomically while requests in
//!   flight finish on the old one.
//! * **Hot reload** ([`reload`]): `SIGHUP` or a changed file builds a new engine that keeps the
//!   key caches of unchanged issuers, and swaps it in.
//! * **Connections are bounded** ([`server`]): header, idle and body timeouts and a connection
//!   limit derived from the descriptor limit, each connection's timeouts checked by its
//!   [`watchdog`], which costs a request nothing.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod config;
mod layer;
pub mod proxy;
pub mod reload;
pub mod server;
mod shared;
pub mod watchdog;

pub use jwtgate_engine::token_cache as cache;
pub use jwtgate_engine::{bearer, hygiene, identity, metrics, path, routes};
pub use jwtgate_engine::{unix_now, CachedPass, Cors, Denial, Engine, Outcome};

pub use layer::{
    add_cors, add_dpop_nonce, apply_identity, preflight_response, AuthLayer, AuthService,
    CheckedRequest, TlsClientCertificate, VerifiedToken,
};
pub use shared::SharedEngine;
