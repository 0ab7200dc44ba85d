//! The Redis source: where `jwtgate revoke` writes rules and every replica follows them.
//!
//! Layout, under a prefix (default `jwtgate:revocation:`):
//!
//! * `<prefix>rule:<key>` — one rule as its JSON line, expiring (`EXAT`) when the rule stops
//!   mattering, so Redis forgets it by itself; `<key>` is the rule's [`RuleKey::id`];
//! * `<prefix>changes` — the pub/sub channel announcing each write
//!   (`{"op":"add","rule":…}`, `{"op":"remove","key":…}`);
//! * `<prefix>generation` — a random marker set (`SET NX`) by the first write to a Redis. A
//!   replica that finds another marker, or none, after having seen one knows the Redis lost its
//!   data (restarted empty, flushed): it keeps the rules it holds instead of dropping them.
//!
//! Writing a rule stores it and publishes the change in one `MULTI`/`EXEC` transaction; a
//! replica subscribes first, then loads the full set (`SCAN` + `MGET`), applies changes as they
//! arrive, and loads the full set again every `resync_interval` as a backstop for anything a
//! subscription missed. The DPoP replay check across replicas uses the same Redis and keys
//! (`SET <prefix>dpop:<digest> 1 NX EXAT <until>`, [`crate::dpop_replay`]): "seen by any
//! replica?" in one round trip.

use crate::config::{redact_url, RedisSource};
use crate::handle::Revocations;
use crate::rule::{Rule, RuleKey};
use crate::set::RuleSet;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use serde::{Deserialize, Serialize};
use std::sync::Weak;
use std::time::Duration;

/// Time to connect to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for one command's answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between reconnection attempts of a follower.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Keys asked for per `MGET`.
const BATCH: usize = 500;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or could not be reached.
    #[error("redis {url}: {error}")]
    Redis {
        /// The URL, password hidden.
        url: String,
        /// The client's error.
        error: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error("redis {0}: no answer in time")]
    Timeout(String),
    /// The rule has already stopped mattering: storing it would do nothing.
    #[error("the rule ({0}) has already expired; nothing to revoke")]
    AlreadyExpired(String),
    /// The subscription ended (Redis closed the connection).
    #[error("redis {0}: the subscription ended")]
    SubscriptionEnded(String),
}

/// One change announced on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A rule was stored.
    Add {
        /// The rule.
        rule: Rule,
        /// The generation marker of the Redis it was stored in.
        generation: String,
    },
    /// A rule was removed.
    Remove {
        /// Its key.
        key: RuleKey,
    },
}

/// Everything a full load read: the generation marker and the rules.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The generation marker, if the Redis has one.
    pub generation: Option<String>,
    /// The rules stored.
    pub rules: Vec<Rule>,
    /// Stored values that are not rules (written by something else), skipped.
    pub unreadable: usize,
}

/// Names of the keys and channel under one prefix.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn rule(&self, key: &RuleKey) -> String {
        format!("{}rule:{}", self.prefix, key.id())
    }
    fn rule_pattern(&self) -> String {
        let mut pattern = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str("rule:*");
        pattern
    }
    fn channel(&self) -> String {
        format!("{}changes", self.prefix)
    }
    fn generation(&self) -> String {
        format!("{}generation", self.prefix)
    }
}

fn new_generation() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}

/// A connection for writing and reading rules (`jwtgate revoke`, the dev issuer, a program).
#[derive(Clone)]
pub struct RedisStore {
    connection: MultiplexedConnection,
    names: Names,
    url: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.names.prefix)
            .finish_non_exhaustive()
    }
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

impl RedisStore {
    /// Connects to `url` (`redis://`, `rediss://`, with `user:password@` for ACL users), keys
    /// under `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let redacted = redact_url(url);
        let error = |error| StoreError::Redis {
            url: redacted.clone(),
            error,
        };
        let client = Client::open(url).map_err(error)?;
        let connection = client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await
            .map_err(error)?;
        Ok(RedisStore {
            connection,
            names: Names {
                prefix: prefix.to_owned(),
            },
            url: redacted,
        })
    }

    fn error(&self, error: redis::RedisError) -> StoreError {
        StoreError::Redis {
            url: self.url.clone(),
            error,
        }
    }

    /// Stores `rule` (replacing the rule with the same key) until it stops mattering, and
    /// publishes it; returns once Redis has done both. A rule already expired at `now` is
    /// refused.
    pub async fn add(&mut self, rule: &Rule, now: i64) -> Result<(), StoreError> {
        if !rule.is_live(now) {
            return Err(StoreError::AlreadyExpired(rule.to_string()));
        }
        let (generation,): (String,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.names.generation())
            .arg(new_generation())
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(self.names.generation())
            .query_async(&mut self.connection)
            .await
            .map_err(|e| self.error(e))?;
        let change = Change::Add {
            rule: rule.clone(),
            generation,
        };
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.names.rule(rule.key()))
            .arg(rule.to_json_line())
            .arg("EXAT")
            .arg(rule.until())
            .ignore()
            .cmd("PUBLISH")
            .arg(self.names.channel())
            .arg(serde_json::to_string(&change).unwrap_or_default())
            .ignore()
            .query_async::<()>(&mut self.connection)
            .await
            .map_err(|e| self.error(e))
    }

    /// Removes the rule with `key` and publishes the removal; true when Redis had it.
    pub async fn remove(&mut self, key: &RuleKey) -> Result<bool, StoreError> {
        let change = Change::Remove { key: key.clone() };
        let (deleted,): (u64,) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.names.rule(key))
            .cmd("PUBLISH")
            .arg(self.names.channel())
            .arg(serde_json::to_string(&change).unwrap_or_default())
            .ignore()
            .query_async(&mut self.connection)
            .await
            .map_err(|e| self.error(e))?;
        Ok(deleted > 0)
    }

    /// Records the DPoP proof `(jkt, jti)` for every replica until `keep_until` (Unix seconds):
    /// `true` the first time, `false` when any replica recorded it before (a replay). One
    /// `SET <prefix>dpop:<digest> 1 NX EXAT <keep_until>` round trip, the key of
    /// [`crate::dpop_replay::replay_key`]; the gateway checks through
    /// [`crate::SharedDpopReplay`], which bounds the wait.
    pub async fn dpop_first_use(
        &mut self,
        jkt: &str,
        jti: &str,
        keep_until: i64,
    ) -> Result<bool, StoreError> {
        let key = crate::dpop_replay::replay_key(&self.names.prefix, jkt, jti);
        let stored: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(keep_until)
            .query_async(&mut self.connection)
            .await
            .map_err(|e| self.error(e))?;
        Ok(stored.is_some())
    }

    /// Every rule stored, in key order.
    pub async fn list(&mut self) -> Result<Vec<Rule>, StoreError> {
        let mut rules = self.snapshot().await?.rules;
        rules.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(rules)
    }

    /// Reads the generation marker and every rule.
    pub async fn snapshot(&mut self) -> Result<Snapshot, StoreError> {
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.names.rule_pattern())
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.connection)
                .await
                .map_err(|e| self.error(e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        let generation: Option<String> = redis::cmd("GET")
            .arg(self.names.generation())
            .query_async(&mut self.connection)
            .await
            .map_err(|e| self.error(e))?;
        let mut snapshot = Snapshot {
            generation,
            ..Snapshot::default()
        };
        for chunk in keys.chunks(BATCH) {
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(chunk)
                .query_async(&mut self.connection)
                .await
                .map_err(|e| self.error(e))?;
            // A key that expired between SCAN and MGET reads as nil.
            for value in values.into_iter().flatten() {
                match Rule::from_json_line(&value) {
                    Ok(rule) => snapshot.rules.push(rule),
                    Err(_) => snapshot.unreadable += 1,
                }
            }
        }
        Ok(snapshot)
    }
}

/// Follows a Redis source until `revocations` is dropped: subscribe, load everything, apply
/// changes, resync every `resync_interval`; on any error, record it and start over after a short
/// pause (at most [`MAX_RECONNECT_DELAY`]). The rules held stay in force throughout.
pub async fn follow(revocations: Weak<Revocations>, source: RedisSource) {
    let redacted = redact_url(&source.url);
    let client = match Client::open(source.url.as_str()) {
        Ok(client) => client,
        Err(error) => {
            if let Some(revocations) = revocations.upgrade() {
                tracing::error!(url = %redacted, %error, "revocation.redis_url unusable");
                revocations.mark_failure(error);
            }
            return;
        }
    };
    let names = Names {
        prefix: source.key_prefix.clone(),
    };
    let mut follower = Follower {
        revocations,
        client,
        names,
        url: redacted,
        resync_interval: source.resync_interval,
        generation: None,
    };
    let mut delay = Duration::from_millis(100);
    let mut failing = false;
    loop {
        match follower.session(&mut delay).await {
            Ok(()) => return,
            Err(error) => {
                let Some(revocations) = follower.revocations.upgrade() else {
                    return;
                };
                if !failing {
                    tracing::warn!(%error, "revocation sync from Redis failed; serving the rules held, retrying");
                }
                failing = true;
                revocations.mark_failure(&error);
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

struct Follower {
    revocations: Weak<Revocations>,
    client: Client,
    names: Names,
    url: String,
    resync_interval: Duration,
    /// The generation marker seen at the last full load.
    generation: Option<String>,
}

impl Follower {
    fn error(&self, error: redis::RedisError) -> StoreError {
        StoreError::Redis {
            url: self.url.clone(),
            error,
        }
    }

    /// One connected session; `Ok` only when the rules were dropped (the follower ends).
    async fn session(&mut self, delay: &mut Duration) -> Result<(), StoreError> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| StoreError::Timeout(self.url.clone()))?
            .map_err(|e| self.error(e))?;
        let mut pubsub = pubsub;
        tokio::time::timeout(RESPONSE_TIMEOUT, pubsub.subscribe(self.names.channel()))
            .await
            .map_err(|_| StoreError::Timeout(self.url.clone()))?
            .map_err(|e| self.error(e))?;
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await
            .map_err(|e| self.error(e))?;
        let mut store = RedisStore {
            connection,
            names: self.names.clone(),
            url: self.url.clone(),
        };
        if !self.full_sync(&mut store).await? {
            return Ok(());
        }
        *delay = Duration::from_millis(100);
        let mut messages = pubsub.into_on_message();
        let mut ticks = tokio::time::interval(self.resync_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(StoreError::SubscriptionEnded(self.url.clone()));
                    };
                    let Some(revocations) = self.revocations.upgrade() else {
                        return Ok(());
                    };
                    self.apply(&revocations, message.get_payload_bytes());
                }
                _ = ticks.tick() => {
                    if !self.full_sync(&mut store).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Applies one message from the channel (a malformed one is logged and ignored: the next
    /// full sync corrects whatever it meant). A rule stored under another generation marker than
    /// the one last seen means the Redis lost its data in between: the rules held are kept.
    fn apply(&mut self, revocations: &Revocations, payload: &[u8]) {
        match serde_json::from_slice::<Change>(payload) {
            Ok(Change::Add { rule, generation }) => {
                if self.generation.as_ref() != Some(&generation) {
                    if self.generation.is_some() {
                        tracing::warn!(url = %self.url, "Redis lost its revocation rules (a new generation): keeping the rules held until they expire");
                        revocations.source_lost_data(RuleSet::new());
                    }
                    self.generation = Some(generation);
                }
                revocations.add(&rule);
            }
            Ok(Change::Remove { key }) => revocations.remove(&key),
            Err(error) => tracing::warn!(%error, "unreadable revocation change message ignored"),
        }
    }

    /// Loads everything into the rules; false when the rules were dropped.
    async fn full_sync(&mut self, store: &mut RedisStore) -> Result<bool, StoreError> {
        let snapshot = store.snapshot().await?;
        let Some(revocations) = self.revocations.upgrade() else {
            return Ok(false);
        };
        if snapshot.unreadable > 0 {
            tracing::warn!(
                count = snapshot.unreadable,
                "Redis holds revocation keys that are not rules; skipped"
            );
        }
        let now = crate::unix_now();
        let rules = RuleSet::from_rules(snapshot.rules.iter().filter(|r| r.is_live(now)));
        let lost = self.generation.is_some() && snapshot.generation != self.generation;
        if lost {
            tracing::warn!(
                url = %self.url,
                "Redis lost its revocation rules (restarted empty or flushed): keeping the rules held until they expire; restore the rest with `jwtgate revoke --import`"
            );
            revocations.source_lost_data(rules);
        } else {
            revocations.replace_from_source(rules);
        }
        revocations.purge(now);
        revocations.mark_synced();
        self.generation = snapshot.generation;
        Ok(true)
    }
}
