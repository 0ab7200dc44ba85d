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
//! * **A front end of the gateway's engine, on its own transport.** It decides with the HTTP
//!   gateway's [`jwtgate_http::SharedEngine`], so one configuration reload applies to both,
//!   under the gateway's connection limits and timeouts ([`transport`]). The transport is the
//!   `h2` crate driven by hand, not hyper and tonic: the server has two unary methods, and
//!   hyper's per-stream task, tonic's router, body and codec layers cost more than the check
//!   itself. Measured with `bench/grpc_callgrind.sh grpc` (instructions per check through
//!   Envoy, one token): 107.3k on hyper + tonic, 87.3k straight on h2 (84.0k with the lighter
//!   decoding; a task spawned per call instead measured 88.2k; docs/envoy.md). HTTP/2
//!   itself (framing, HPACK, flow control, stream state) stays in `h2`, which is maintained and
//!   hardened (rapid-reset and header-list limits); only the gRPC framing of one unary message
//!   ([`framing`]) is written here, and it refuses what it does not expect.
//! * **Remove rather than refuse.** Unlike forward-auth, whose proxy can only copy headers from
//!   the answer, ext_authz lets the answer remove request headers (`headers_to_remove`), so the
//!   engine sees it as [`jwtgate_engine::FrontEnd::ExtAuthz`]: client spellings of identity
//!   headers and override headers are removed, as the reverse proxy does, instead of refused.
//! * **Fail closed in-band.** Whatever the check request lacks is a refusal with its reason,
//!   never a gRPC error, which `failure_mode_allow: true` would turn into an allow.
//! * **Protos from `envoy-types`** (compiled by prost), none hand-written; the request is
//!   decoded reading only what jwtgate uses ([`codec`]). An allow answer, the one every passing
//!   request pays for, is encoded straight from what it borrows ([`answer`]) instead of built
//!   as the generated `CheckResponse`, encoded and dropped (≈ 16k of 80k instructions a check):
//!   hand-written wire encoding, which a property test proves byte-identical to prost's encoding
//!   of the generated type on random answers. Refusals keep the generated type. With this, the
//!   lighter decoding and answers batched per connection write, a check through Envoy measured
//!   80.4k → 63.4k instructions (forward-auth: 25.1k), 59.1k under the Envoy recipe's filter
//!   (fewer header entries per check; `header_map` read as slices like the `headers` map);
//!   `h2` itself is ≈ 30k of them.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod check;
pub mod codec;
pub mod framing;
pub mod service;
pub mod transport;

pub use check::{CheckOptions, Original, Unreadable};
pub use codec::CheckInput;
pub use service::{AUTHORIZATION_SERVICE, CHECK_PATH, HEALTH_CHECK_PATH};
pub use transport::{spawn, Spawned};
