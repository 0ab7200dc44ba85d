//! # jwtgate-revocation
//!
//! Revocation for JWT access tokens, which are otherwise valid until `exp`: rules that refuse a
//! token by `jti` (until its `exp`), the tokens of an (`iss`, `sub`) issued before a time ("log
//! this user out everywhere"), or the tokens of a client (`client_id`/`azp`) issued before a
//! time ([`rule`]). The engine asks [`Revocations::check`] about every verified token — freshly
//! verified or from the verified-token cache — and refuses a match as `invalid_token`.
//!
//! ## Design
//!
//! **Lookups never touch the network.** Every process holds the full rule set in memory, indexed
//! by what a token carries ([`set`]: hash maps on `jti`, (`iss`, `sub`) and client), behind an
//! `ArcSwap` so the request path takes one lock-free load and at most four hash lookups however
//! many rules there are. Rules are few (revocations are rare and expire with the tokens they
//! target), so holding them all costs little, and a slow or absent source can never slow or fail
//! a request: it only makes the rules older, which `/readyz` reports after `max_stale`.
//!
//! **Sources** ([`config`]): a JSON-lines file ([`file`](mod@file)), or Redis
//! ([`redis_store`], feature `redis`), where each rule is a key expiring with the rule, changes
//! are published on a channel every replica subscribes to, and a periodic full load is the
//! backstop. Redis was chosen
//! because operators already run it (or Valkey) and its pub/sub gives sub-second propagation
//! without a protocol of our own. A Redis that loses its data never un-revokes anything a
//! replica holds ([`handle`]).
//!
//! **DPoP replay across replicas** ([`dpop_replay`]) uses the same Redis: each proof's
//! (`jkt`, `jti`) is recorded with `SET NX` and the proof's window as expiry. Unlike a rule
//! lookup this is one round trip on the request path (bounded by a 50 ms default timeout),
//! because a proof must be known to every replica the moment it is first used.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod dpop_replay;
pub mod file;
#[cfg(feature = "follow")]
pub mod follow;
pub mod handle;
#[cfg(feature = "redis")]
pub mod redis_store;
pub mod rule;
pub mod set;
#[cfg(feature = "redis")]
pub mod writer;

pub use config::{RevocationSection, SectionError, Source};
pub use dpop_replay::{DpopReplayFallback, ReplayUnavailable, SharedDpopReplay};
pub use handle::{Revocations, SourceLabel};
pub use rule::{parse_json_lines, parse_time, to_json_lines, Rule, RuleError, RuleKey};
pub use set::{Match, RuleSet, TokenFacts};

/// Whether this build can follow Redis (feature `redis`).
pub const REDIS_SUPPORTED: bool = cfg!(feature = "redis");

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
