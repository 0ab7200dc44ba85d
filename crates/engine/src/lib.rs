//! # jwtgate-engine
//!
//! jwtgate's one decision, protocol-neutral. An [`Engine`] takes a [`RequestView`] — method,
//! target, headers, where the token is, the time, and which front end asks — and returns an
//! [`Outcome`]: allow (the verified token, the finished identity headers, the normalised path),
//! a CORS preflight, or a [`Denial`] (status, RFC 6750 code, reason label, description,
//! challenge). It owns everything that decides: path normalisation ([`path`]), route matching
//! ([`routes`]), the header checks at the boundary ([`hygiene`]), bearer extraction
//! ([`bearer`]), the verified-token cache ([`token_cache`]), scope checks, identity headers
//! ([`identity`]) and the counters ([`metrics`]). The rules that build an engine from
//! configuration live in [`rules`].
//!
//! ## Design
//!
//! Every front end — the forward-auth endpoint, the reverse proxy and the tower layer in
//! `jwtgate-http`, the API Gateway authorizer in `jwtgate-lambda` — *renders* an outcome and
//! decides nothing itself. Two copies of a decision drift (they did: issuer scopes were checked
//! one way by the gateway and another by the authorizer); one engine makes "every mode decides
//! the same" true by construction, and a differential test holds it to that. The crate knows
//! HTTP's vocabulary (`http::HeaderMap`) but no server, runtime or AWS type, so the Lambda build
//! stays free of the gateway's server stack.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
pub mod bearer;
pub mod conditions;
pub mod denial;
pub mod dpop;
mod engine;
pub mod hygiene;
pub mod identity;
pub mod mcp;
pub mod metrics;
pub mod mtls;
pub mod path;
pub mod request_headers;
pub mod routes;
pub mod rules;
pub mod token_cache;

pub use denial::Denial;
pub use engine::{
    unix_now, Allow, CachedPass, Cors, Engine, FrontEnd, Inspection, Outcome, RequestBody,
    RequestView, TokenInput,
};
pub use metrics::Metrics;
pub use request_headers::RequestHeaders;

pub use rules::{
    build_policy, build_registry, build_routes, issuer_rules, issuer_scopes, CacheSection,
    ConfigError, IssuerRules, IssuerSection, KeysSection, PolicyParts, RouteSection,
    TenantsSection, Unmatched,
};
