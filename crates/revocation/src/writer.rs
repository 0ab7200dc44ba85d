//! [`RuleWriter`]: where a program other than `jwtgate revoke` writes rules — the rules file or
//! the Redis the gateways follow. The development issuer writes through it on logout and on
//! `/oauth/revoke`.

use crate::file::FileError;
use crate::redis_store::{RedisStore, StoreError};
use crate::rule::Rule;
use std::path::PathBuf;

/// Why a rule could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The rules file.
    #[error(transparent)]
    File(#[from] FileError),
    /// Redis.
    #[error(transparent)]
    Redis(#[from] StoreError),
}

/// A rules file or a Redis connection to write rules to.
#[derive(Debug, Clone)]
pub enum RuleWriter {
    /// A JSON-lines rules file, rewritten atomically at each write.
    File(PathBuf),
    /// A Redis store (stored and published).
    Redis(RedisStore),
}

impl RuleWriter {
    /// Writes `rule` (replacing the rule with the same key); returns once it is stored (and, for
    /// Redis, published).
    pub async fn add(&self, rule: &Rule, now: i64) -> Result<(), WriteError> {
        match self {
            RuleWriter::File(path) => {
                let path = path.clone();
                let rule = rule.clone();
                let written = tokio::task::spawn_blocking(move || {
                    crate::file::update(&path, now, |rules| rules.insert(&rule))
                })
                .await;
                match written {
                    Ok(result) => Ok(result?),
                    Err(join) => Err(WriteError::File(FileError::Read {
                        path: String::new(),
                        error: std::io::Error::other(join.to_string()),
                    })),
                }
            }
            RuleWriter::Redis(store) => Ok(store.clone().add(rule, now).await?),
        }
    }
}
