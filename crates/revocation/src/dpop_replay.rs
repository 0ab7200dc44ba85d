//! DPoP proof identifiers shared by every replica through Redis: [`SharedDpopReplay`] answers
//! "has any replica seen the proof (`jkt`, `jti`) inside its window?" with one
//! `SET <prefix>dpop:<digest> 1 NX EXAT <until>` round trip, bounded by a short timeout.
//!
//! It only answers; what happens when Redis does not answer in time — fall back to the
//! per-process cache, or refuse the proof ([`DpopReplayFallback`], `[revocation] dpop_replay`)
//! — is decided by the engine, in one place. The connection is made lazily on first use (a
//! replica whose Redis is down still starts), reconnects by itself, and after a failure Redis is
//! left alone for [`RETRY_AFTER`] so an outage costs requests nothing but the fallback.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Default bound on one replay check against Redis: 50 ms. Redis on the same network answers
/// in well under a millisecond; past this the request would wait on a Redis in trouble.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// Longest `dpop_replay_timeout_ms` accepted (a request waits this long at most).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5);

/// After Redis failed to answer, how long replay checks skip it (and take the fallback at once)
/// before one request tries again.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// What the engine does with a DPoP proof when the shared replay store does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DpopReplayFallback {
    /// Check and record the proof in the per-process cache only, and count it: the proof could
    /// be replayed once against each other replica while Redis is out.
    #[default]
    Local,
    /// Refuse the proof (`401 invalid_dpop_proof`): no replay is ever possible, and DPoP
    /// clients are refused while Redis is out.
    FailClosed,
}

impl DpopReplayFallback {
    /// The value's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopReplayFallback::Local => "local",
            DpopReplayFallback::FailClosed => "fail-closed",
        }
    }
}

impl TryFrom<String> for DpopReplayFallback {
    type Error = String;

    fn try_from(text: String) -> Result<DpopReplayFallback, String> {
        match text.as_str() {
            "local" => Ok(DpopReplayFallback::Local),
            "fail-closed" => Ok(DpopReplayFallback::FailClosed),
            other => Err(format!(
                "revocation.dpop_replay is {other:?}; expected \"local\" or \"fail-closed\""
            )),
        }
    }
}

impl From<DpopReplayFallback> for String {
    fn from(fallback: DpopReplayFallback) -> String {
        fallback.as_str().to_owned()
    }
}

/// The shared replay store did not answer: unreachable, slow, refusing, or skipped for a moment
/// after such a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared DPoP replay store (redis {url}) {why}")]
pub struct ReplayUnavailable {
    /// The Redis URL, password hidden.
    pub url: String,
    /// What happened.
    pub why: String,
}

/// The Redis key recording the proof (`jkt`, `jti`) under `prefix`: a SHA-256 digest of both
/// (separated by a NUL byte, which neither contains), so keys have one size whatever a client
/// puts in `jti`.
pub fn replay_key(prefix: &str, jkt: &str, jti: &str) -> String {
    let mut input = Vec::with_capacity(jkt.len() + 1 + jti.len());
    input.extend_from_slice(jkt.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    let digest = jwtgate_core::crypto::sha256(&input);
    format!(
        "{prefix}dpop:{}",
        jwtgate_core::internal::base64url::encode(&digest)
    )
}

/// DPoP proof identifiers recorded in Redis for every replica (see the module documentation).
pub struct SharedDpopReplay {
    url: String,
    prefix: String,
    timeout: Duration,
    fallback: DpopReplayFallback,
    /// Wall-clock milliseconds before which Redis is not asked (after a failure); 0 when fine.
    skip_until_ms: AtomicI64,
    #[cfg(feature = "redis")]
    connection: redis_connection::Lazy,
}

impl std::fmt::Debug for SharedDpopReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDpopReplay")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SharedDpopReplay {
    /// A store on the Redis at `url` (credentials included), keys under `prefix`, each check
    /// bounded by `timeout`; nothing is connected until the first check.
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        fallback: DpopReplayFallback,
    ) -> Result<SharedDpopReplay, ReplayUnavailable> {
        let redacted = crate::config::redact_url(url);
        #[cfg(feature = "redis")]
        let connection = redis_connection::Lazy::new(url).map_err(|error| ReplayUnavailable {
            url: redacted.clone(),
            why: format!("cannot be used: {error}"),
        })?;
        Ok(SharedDpopReplay {
            url: redacted,
            prefix: prefix.to_owned(),
            timeout,
            fallback,
            skip_until_ms: AtomicI64::new(0),
            #[cfg(feature = "redis")]
            connection,
        })
    }

    /// What the engine does when this store does not answer.
    pub fn fallback(&self) -> DpopReplayFallback {
        self.fallback
    }

    /// The bound on one check.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Records the proof (`jkt`, `jti`) for every replica until `keep_until` (Unix seconds):
    /// `Ok(true)` the first time, `Ok(false)` when some replica recorded it before (a replay),
    /// `Err` when Redis did not answer within the timeout (or failed less than [`RETRY_AFTER`]
    /// ago, in which case it is not asked).
    pub async fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        keep_until: i64,
    ) -> Result<bool, ReplayUnavailable> {
        let skip_until = self.skip_until_ms.load(Ordering::Relaxed);
        if skip_until != 0 && now_ms() < skip_until {
            return Err(self.unavailable(format!(
                "failed less than {} ms ago; not asked",
                RETRY_AFTER.as_millis()
            )));
        }
        let key = replay_key(&self.prefix, jkt, jti);
        // One second past the deadline: a clock a little behind Redis's still keeps the key
        // for the whole window.
        let answer = self.set_nx(key, keep_until.saturating_add(1)).await;
        match answer {
            Ok(first) => {
                if skip_until != 0 {
                    self.skip_until_ms.store(0, Ordering::Relaxed);
                    tracing::info!(url = %self.url, "the shared DPoP replay store answers again");
                }
                Ok(first)
            }
            Err(why) => {
                if skip_until == 0 {
                    tracing::warn!(url = %self.url, %why, fallback = self.fallback.as_str(), "the shared DPoP replay store does not answer; [revocation] dpop_replay decides until it does");
                }
                let retry_ms = i64::try_from(RETRY_AFTER.as_millis()).unwrap_or(500);
                self.skip_until_ms
                    .store(now_ms().saturating_add(retry_ms), Ordering::Relaxed);
                Err(self.unavailable(why))
            }
        }
    }

    fn unavailable(&self, why: String) -> ReplayUnavailable {
        ReplayUnavailable {
            url: self.url.clone(),
            why,
        }
    }

    #[cfg(feature = "redis")]
    async fn set_nx(&self, key: String, until: i64) -> Result<bool, String> {
        let ask = async {
            let command = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EXAT")
                .arg(until)
                .clone();
            // A connection Redis dropped (a restart) fails its next command once while the
            // manager reconnects: that one is asked again, on the new connection.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let mut connection = self.connection.get().map_err(|e| e.to_string())?;
                match command.query_async::<Option<String>>(&mut connection).await {
                    Ok(stored) => return Ok(stored.is_some()),
                    Err(error) if attempts == 1 && error.is_connection_dropped() => continue,
                    Err(error) => return Err(error.to_string()),
                }
            }
        };
        match tokio::time::timeout(self.timeout, ask).await {
            Ok(answer) => answer.map_err(|e: String| format!("failed: {e}")),
            Err(_) => Err(format!(
                "did not answer within {} ms",
                self.timeout.as_millis()
            )),
        }
    }

    #[cfg(not(feature = "redis"))]
    async fn set_nx(&self, _key: String, _until: i64) -> Result<bool, String> {
        Err("cannot be used: this build has no Redis support (feature `redis`)".to_owned())
    }
}

#[cfg(feature = "redis")]
mod redis_connection {
    //! The connection, made on first use inside the runtime that uses it.

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use redis::{Client, RedisError};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// A Redis client whose reconnecting connection is created on first use.
    pub(super) struct Lazy {
        client: Client,
        manager: OnceLock<ConnectionManager>,
    }

    impl Lazy {
        /// Checks the URL; connects nothing.
        pub(super) fn new(url: &str) -> Result<Lazy, RedisError> {
            Ok(Lazy {
                client: Client::open(url)?,
                manager: OnceLock::new(),
            })
        }

        /// The connection manager (it connects, and reconnects after a failure, by itself);
        /// must be called within a Tokio runtime.
        pub(super) fn get(&self) -> Result<ConnectionManager, RedisError> {
            if let Some(manager) = self.manager.get() {
                return Ok(manager.clone());
            }
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
            Ok(self.manager.get_or_init(|| manager).clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_values() {
        assert_eq!(
            DpopReplayFallback::try_from("fail-closed".to_owned()),
            Ok(DpopReplayFallback::FailClosed)
        );
        assert_eq!(
            DpopReplayFallback::try_from("local".to_owned()),
            Ok(DpopReplayFallback::Local)
        );
        let error = DpopReplayFallback::try_from("fail_closed".to_owned()).unwrap_err();
        assert!(error.contains("revocation.dpop_replay"), "{error}");
        assert_eq!(DpopReplayFallback::default(), DpopReplayFallback::Local);
    }

    #[test]
    fn keys_are_digests_of_both_parts() {
        let key = replay_key("p:", "jkt", "jti");
        assert!(key.starts_with("p:dpop:"), "{key}");
        assert_eq!(key.len(), "p:dpop:".len() + 43);
        assert_ne!(key, replay_key("p:", "jk", "tjti"));
        assert_ne!(key, replay_key("p:", "jkt", "jti2"));
    }
}
