//! Starting the background task that keeps a process's [`Revocations`] in step with their
//! source. The task holds only a weak reference: it ends when the last engine using the rules is
//! dropped.

use crate::config::Source;
use crate::handle::Revocations;
use std::sync::Arc;
use std::time::Duration;

/// How often the file source is read.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Starts following the source of `revocations` (once per [`Revocations`], whoever calls it
/// first); must be called within a Tokio runtime. Nothing happens for fixed rules.
pub fn start(revocations: &Arc<Revocations>) {
    let Some(source) = revocations.followed_source().cloned() else {
        return;
    };
    if !revocations.claim_following() {
        return;
    }
    let weak = Arc::downgrade(revocations);
    match source {
        Source::File(path) => {
            tokio::spawn(crate::file::follow(weak, path, FILE_POLL_INTERVAL));
        }
        Source::Redis(redis) => start_redis(weak, redis),
    }
}

#[cfg(feature = "redis")]
fn start_redis(weak: std::sync::Weak<Revocations>, redis: crate::config::RedisSource) {
    tokio::spawn(crate::redis_store::follow(weak, redis));
}

#[cfg(not(feature = "redis"))]
fn start_redis(weak: std::sync::Weak<Revocations>, _redis: crate::config::RedisSource) {
    if let Some(revocations) = weak.upgrade() {
        tracing::error!("revocation.redis_url is set, and this build has no Redis support");
        revocations.mark_failure("this build has no Redis support (feature `redis`)");
    }
}
