//! `[revocation]`: where a process takes its revocation rules from. `file` alone selects a
//! JSON-lines file (re-read when it changes), `redis_url` alone selects Redis; the section is
//! shared by the gateway's and the Lambda authorizer's configuration files.

use crate::dpop_replay::{DpopReplayFallback, SharedDpopReplay};
use crate::handle::{Revocations, SourceLabel};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn default_key_prefix() -> String {
    "jwtgate:revocation:".to_owned()
}
fn default_max_stale() -> u64 {
    300
}
fn default_resync_interval() -> u64 {
    30
}
fn default_dpop_replay_timeout_ms() -> u64 {
    u64::try_from(crate::dpop_replay::DEFAULT_TIMEOUT.as_millis()).unwrap_or(50)
}

/// `[revocation]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSection {
    /// A JSON-lines file of rules, re-read when its content changes (checked every 500 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// A Redis URL: `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys and channel (default `jwtgate:revocation:`).
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Seconds without a successful sync after which `/readyz` reports the source (default 300).
    /// Requests keep being decided with the last synced rules.
    #[serde(default = "default_max_stale")]
    pub max_stale: u64,
    /// Seconds between full resyncs from Redis, the backstop to pub/sub (default 30).
    #[serde(default = "default_resync_interval")]
    pub resync_interval: u64,
    /// With `redis_url`, DPoP proofs are recorded in Redis too (a proof seen by another replica
    /// is refused); when Redis does not answer within `dpop_replay_timeout_ms`: `local` (the
    /// default) checks the proof in the per-process cache only and counts it, `fail-closed`
    /// refuses the proof. Only with `redis_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_replay: Option<DpopReplayFallback>,
    /// Milliseconds one DPoP replay check may wait for Redis (default 50, at most 5,000).
    #[serde(default = "default_dpop_replay_timeout_ms")]
    pub dpop_replay_timeout_ms: u64,
}

impl Default for RevocationSection {
    fn default() -> Self {
        RevocationSection {
            file: None,
            redis_url: None,
            key_prefix: default_key_prefix(),
            max_stale: default_max_stale(),
            resync_interval: default_resync_interval(),
            dpop_replay: None,
            dpop_replay_timeout_ms: default_dpop_replay_timeout_ms(),
        }
    }
}

/// A `[revocation]` setting that is wrong: the key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("revocation.{key}: {message}")]
pub struct SectionError {
    /// The key under `[revocation]`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Where the rules are synced from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A JSON-lines file.
    File(PathBuf),
    /// Redis.
    Redis(RedisSource),
}

/// The Redis settings of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSource {
    /// The URL (with credentials, if any).
    pub url: String,
    /// Prefix of the keys and the channel.
    pub key_prefix: String,
    /// Time between full resyncs.
    pub resync_interval: Duration,
    /// What the engine does when a DPoP replay check gets no answer in time.
    pub dpop_replay: DpopReplayFallback,
    /// The bound on one DPoP replay check.
    pub dpop_replay_timeout: Duration,
}

/// `url` with the password (if any) replaced by `***`, for logs and readiness.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') || !user.is_empty() {
                format!("{user}:***@")
            } else {
                String::new()
            };
            format!("{scheme}://{hidden}{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl RevocationSection {
    /// Checks the section and names the source.
    pub fn source(&self) -> Result<Source, SectionError> {
        let invalid = |key, message: &str| SectionError {
            key,
            message: message.to_owned(),
        };
        if self.max_stale == 0 {
            return Err(invalid("max_stale", "must be positive (seconds)"));
        }
        match (&self.file, &self.redis_url) {
            (Some(_), Some(_)) => Err(invalid(
                "file",
                "give either file or redis_url, not both (a Redis deployment can be restored from a file with `jwtgate revoke --import`)",
            )),
            (None, None) => Err(invalid("file", "give file or redis_url")),
            (Some(path), None) => {
                if self.dpop_replay.is_some() {
                    return Err(invalid(
                        "dpop_replay",
                        "applies only with redis_url (with a file, DPoP proofs are checked per process)",
                    ));
                }
                if path.as_os_str().is_empty() {
                    return Err(invalid("file", "must not be empty"));
                }
                Ok(Source::File(path.clone()))
            }
            (None, Some(url)) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(invalid(
                        "redis_url",
                        "must start with redis:// or rediss:// (TLS)",
                    ));
                }
                if self.key_prefix.is_empty() {
                    return Err(invalid("key_prefix", "must not be empty"));
                }
                if self.resync_interval == 0 {
                    return Err(invalid("resync_interval", "must be positive (seconds)"));
                }
                let dpop_replay_timeout = Duration::from_millis(self.dpop_replay_timeout_ms);
                if dpop_replay_timeout.is_zero()
                    || dpop_replay_timeout > crate::dpop_replay::MAX_TIMEOUT
                {
                    return Err(invalid(
                        "dpop_replay_timeout_ms",
                        "must be 1 to 5000 (milliseconds)",
                    ));
                }
                Ok(Source::Redis(RedisSource {
                    url: url.clone(),
                    key_prefix: self.key_prefix.clone(),
                    resync_interval: Duration::from_secs(self.resync_interval),
                    dpop_replay: self.dpop_replay.unwrap_or_default(),
                    dpop_replay_timeout,
                }))
            }
        }
    }

    /// The revocation state this section describes, not yet synced (and nothing started):
    /// [`crate::follow::start`] loads and follows the source. A file is read once here already,
    /// so a process starts with its rules.
    pub fn build(&self) -> Result<Arc<Revocations>, SectionError> {
        let source = self.source()?;
        let max_stale = Duration::from_secs(self.max_stale);
        let revocations = match &source {
            Source::File(path) => {
                let revocations =
                    Revocations::unsynced(SourceLabel::File(path.display().to_string()), max_stale);
                crate::file::sync_once(&revocations, path);
                revocations
            }
            Source::Redis(redis) => {
                let replay = SharedDpopReplay::new(
                    &redis.url,
                    &redis.key_prefix,
                    redis.dpop_replay_timeout,
                    redis.dpop_replay,
                )
                .map_err(|e| SectionError {
                    key: "redis_url",
                    message: e.to_string(),
                })?;
                Revocations::unsynced(SourceLabel::Redis(redact_url(&redis.url)), max_stale)
                    .with_dpop_replay(Arc::new(replay))
            }
        };
        Ok(Arc::new(revocations.with_source(source)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_exactly() {
        let mut section = RevocationSection::default();
        assert!(section
            .source()
            .unwrap_err()
            .to_string()
            .contains("give file or redis_url"));
        section.file = Some("r.jsonl".into());
        section.redis_url = Some("redis://127.0.0.1/".into());
        assert!(section
            .source()
            .unwrap_err()
            .to_string()
            .contains("not both"));
        section.file = None;
        assert!(matches!(section.source(), Ok(Source::Redis(_))));
        section.redis_url = Some("http://x".into());
        assert_eq!(section.source().unwrap_err().key, "redis_url");
    }

    #[test]
    fn dpop_replay_is_checked_and_named() {
        let parse = |text: &str| toml::from_str::<RevocationSection>(text);
        let redis = "redis_url = \"redis://127.0.0.1/\"\n";
        let section = parse(redis).unwrap();
        let Ok(Source::Redis(source)) = section.source() else {
            panic!("a Redis source");
        };
        assert_eq!(source.dpop_replay, DpopReplayFallback::Local);
        assert_eq!(source.dpop_replay_timeout, Duration::from_millis(50));
        let section = parse(&format!(
            "{redis}dpop_replay = \"fail-closed\"\ndpop_replay_timeout_ms = 200\n"
        ))
        .unwrap();
        let Ok(Source::Redis(source)) = section.source() else {
            panic!("a Redis source");
        };
        assert_eq!(source.dpop_replay, DpopReplayFallback::FailClosed);
        assert_eq!(source.dpop_replay_timeout, Duration::from_millis(200));
        // An unknown value is a load error naming the key.
        let error = parse(&format!("{redis}dpop_replay = \"closed\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("revocation.dpop_replay is \"closed\""),
            "{error}"
        );
        assert!(error.contains("\"fail-closed\""), "{error}");
        let zero = parse(&format!("{redis}dpop_replay_timeout_ms = 0\n")).unwrap();
        assert_eq!(zero.source().unwrap_err().key, "dpop_replay_timeout_ms");
        let slow = parse(&format!("{redis}dpop_replay_timeout_ms = 5001\n")).unwrap();
        assert_eq!(slow.source().unwrap_err().key, "dpop_replay_timeout_ms");
        // Without Redis there is nothing to share.
        let file = parse("file = \"r.jsonl\"\ndpop_replay = \"local\"\n").unwrap();
        assert_eq!(file.source().unwrap_err().key, "dpop_replay");
    }

    #[test]
    fn passwords_never_reach_labels() {
        assert_eq!(
            redact_url("rediss://gate:s3cret@redis.internal:6380/2"),
            "rediss://gate:***@redis.internal:6380/2"
        );
        assert_eq!(redact_url("redis://:s3cret@h/"), "redis://:***@h/");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    }
}
