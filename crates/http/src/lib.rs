//! # jwtgate-http
//!
//! jwtgate over HTTP. One decision — [`Gatekeeper::decide`]: normalise the path, match the
//! route, find the bearer token, verify it (keys from `jwtgate-keys`, policy from
//! `jwtgate-core`), check the route's scopes — serves three front ends:
//!
//! * [`AuthLayer`], a tower `Layer` for Rust services, with the [`VerifiedToken`] axum extractor;
//! * the forward-auth endpoint for nginx `auth_request`, Caddy `forward_auth`, Traefik
//!   `ForwardAuth` and Envoy `ext_authz` (HTTP);
//! * the reverse proxy, which guards an upstream with the same layer.
//!
//! ## Design
//!
//! * **Deny by default.** A request matching no route is refused unless configured otherwise;
//!   paths are normalised first ([`path`]) so dot segments, encoded characters and repeated
//!   slashes cannot dodge a rule.
//! * **RFC 6750 answers** ([`answer`]): 401 without an error code when no token was sent; 400
//!   `invalid_request` for malformed headers or tokens in several places; 401 `invalid_token`;
//!   403 `insufficient_scope` with `scope=`.
//! * **Identity is the gateway's, never the client's**: inbound identity headers are removed
//!   before the verified ones are added, and values are sanitised ([`identity`]).
//! * **Pay for a signature once per token** with the bounded verified-token [`cache`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod config;
mod gatekeeper;
pub mod hygiene;
pub mod identity;
mod layer;
pub mod metrics;
pub mod proxy;
pub mod server;

pub use jwtgate_config::token_cache as cache;
pub use jwtgate_config::{bearer, path, routes};

pub use gatekeeper::{unix_now, CachedPass, Cors, Decision, Gatekeeper};
pub use layer::{
    add_cors, apply_identity, preflight_response, AuthLayer, AuthService, VerifiedToken,
};
