//! # jwtgate-lambda
//!
//! jwtgate as an AWS API Gateway Lambda authorizer. One [`Authorizer`] answers every kind of
//! authorizer event, detected from the event itself:
//!
//! | event | answer |
//! | --- | --- |
//! | REST API `TOKEN` (`authorizationToken`, `methodArn`) | IAM policy |
//! | REST API `REQUEST` (headers, `methodArn`, …) | IAM policy |
//! | HTTP API payload format 1.0 | IAM policy |
//! | HTTP API payload format 2.0 (`routeArn`, headers, …) | `{isAuthorized, context}` or IAM policy |
//!
//! A token that is missing, malformed or invalid fails the invocation with exactly the error
//! message `Unauthorized`, which API Gateway turns into 401. A valid token lacking a required
//! scope gets a `Deny` policy (or `isAuthorized: false`): 403. A valid token with the scopes gets
//! `Allow` with `principalId` = `sub` and a `context` of `sub`, `scope`, `iss` and configured
//! claims, flattened to strings, numbers and booleans (the only values API Gateway accepts).
//!
//! ## Design
//!
//! * **The gateway's decision, not a copy of it.** The authorizer builds the engine's request
//!   view from the event and renders the [`jwtgate_engine::Engine`]'s outcome: issuers, key
//!   sources, per-route rules, path normalisation, bearer parsing, the verified-token cache and
//!   the counters are the engine's, so it decides exactly like `jwtgate serve` (a differential
//!   test holds both to that). Counters can be printed in CloudWatch Embedded Metric Format
//!   ([`metrics`]).
//! * **Cache-safe policies.** By default the `Allow` names the whole API
//!   (`arn:…:apiId/stage/*/*`), so API Gateway's authorizer cache never turns one route's answer
//!   into 403s elsewhere. With per-route rules the decision depends on the route, so the policy
//!   names the method ARN instead, and a wildcard policy is refused as a configuration error.
//! * **Warm invocations are cheap.** Keys are cached across invocations (and prefetched during
//!   init), and a token seen before is answered from the verified-token cache without a
//!   signature check.
//! * **Configuration errors fail the init phase** ([`runtime`]): the message goes to the Runtime
//!   API's `/init/error` and the log, and the process exits non-zero.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod arn;
pub mod authorizer;
pub mod cli;
pub mod config;
pub mod event;
pub mod metrics;
pub mod runtime;
mod scan;

pub use answer::{ContextClaim, HttpApiResponse, Options, PolicyResource};
pub use authorizer::{Answer, Authorizer, AuthorizerError};
pub use cli::LambdaArgs;
pub use config::LambdaConfig;
