//! # jwtgate-grpc
//!
//! jwtgate as Envoy's external authorization service over gRPC
//! (`envoy.service.auth.v3.Authorization/Check`, with `grpc.health.v1.Health`): the front end for
//! Envoy, Istio (`envoyExtAuthzGrpc`), Envoy Gateway and the Gateway API implementations that
//! only speak gRPC. It reads the original request from the `CheckRequest`, asks the one engine
//! ([`jwtgate_engine::Engine::decide`]) and renders the outcome ([`check`]); it decides nothing.
//!
//! ## Design
//!
//! * **A front end of the gateway, not a server of its own.** It decides with the HTTP
//!   gateway's [`jwtgate_http::SharedEngine`], so one configuration reload applies to both, and
//!   it is served by the gateway's accept loop ([`jwtgate_http::server::serve_gateway`]) as an
//!   axum router: the same h2c/TLS handling, timeouts and connection limits, no second stack.
//! * **Remove rather than refuse.** Unlike forward-auth, whose proxy can only copy headers from
//!   the answer, ext_authz lets the answer remove request headers (`headers_to_remove`), so the
//!   engine sees it as [`jwtgate_engine::FrontEnd::ExtAuthz`]: client spellings of identity
//!   headers and override headers are removed, as the reverse proxy does, instead of refused.
//! * **Fail closed in-band.** Whatever the check request lacks is a refusal with its reason,
//!   never a gRPC error, which `failure_mode_allow: true` would turn into an allow.
//! * **Protos from `envoy-types`** (compiled, on tonic), none hand-written.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod codec;
pub mod framing;
pub mod service;
pub mod transport;

pub use check::{CheckOptions, Original, Unreadable};
pub use codec::CheckInput;
pub use service::{AUTHORIZATION_SERVICE, CHECK_PATH, HEALTH_CHECK_PATH};
pub use transport::{spawn, Spawned};
