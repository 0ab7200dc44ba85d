//! # jwtgate-config
//!
//! The rules every jwtgate deployment mode shares, with no HTTP server or AWS code in them:
//! which issuers are accepted and where their keys come from ([`rules`]), which routes need which
//! scopes ([`routes`]), where the bearer token is in a request ([`bearer`]), how request paths
//! are normalised before matching ([`path`]), and the bounded cache of verified tokens
//! ([`token_cache`]).
//!
//! ## Design
//!
//! The gateway (`jwtgate-http`) and the Lambda authorizer (`jwtgate-lambda`) read the same
//! `[[issuers]]` and `[[routes]]` configuration and must decide identically; keeping these rules
//! in one small crate makes that true by construction and keeps the Lambda build free of the
//! gateway's server stack.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bearer;
pub mod path;
pub mod routes;
pub mod rules;
pub mod token_cache;

pub use rules::{
    build_registry, build_routes, ConfigError, IssuerSection, KeysSection, RouteSection, Unmatched,
};
