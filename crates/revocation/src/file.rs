//! The file source: a JSON-lines file of rules ([`crate::rule::parse_json_lines`]), read at
//! start and again whenever its content changes. A file that cannot be read or holds a bad line
//! is a failed sync: the rules read last stay in force, and `/readyz` reports the source once
//! that lasts longer than `max_stale`.

use crate::handle::Revocations;
use crate::rule::{parse_json_lines, LineError};
use crate::set::RuleSet;
use std::path::Path;

/// Why a rules file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// A line is not a rule.
    #[error("{path}: {error}")]
    Line {
        /// The file.
        path: String,
        /// The line and why.
        error: LineError,
    },
}

/// Reads the rules in `path`.
pub fn load(path: &Path) -> Result<RuleSet, FileError> {
    let text = std::fs::read_to_string(path).map_err(|error| FileError::Read {
        path: path.display().to_string(),
        error,
    })?;
    rules_of(path, &text)
}

fn rules_of(path: &Path, text: &str) -> Result<RuleSet, FileError> {
    let rules = parse_json_lines(text).map_err(|error| FileError::Line {
        path: path.display().to_string(),
        error,
    })?;
    Ok(RuleSet::from_rules(&rules))
}

/// Reads `path` into `revocations` now (a failure is recorded, not returned).
pub fn sync_once(revocations: &Revocations, path: &Path) {
    match load(path) {
        Ok(rules) => {
            revocations.replace_from_source(rules);
            revocations.mark_synced();
        }
        Err(error) => {
            tracing::warn!(%error, "revocation rules file not loaded");
            revocations.mark_failure(error);
        }
    }
}

/// Follows `path` until `revocations` is dropped: reads it every `interval`, applies it when its
/// content changed, and counts every successful read as a sync.
#[cfg(feature = "follow")]
pub async fn follow(
    revocations: std::sync::Weak<Revocations>,
    path: std::path::PathBuf,
    interval: std::time::Duration,
) {
    let mut applied: Option<String> = None;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let read_path = path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(read_path)).await;
        let Some(revocations) = revocations.upgrade() else {
            return;
        };
        revocations.purge(crate::unix_now());
        let text = match read {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => {
                let error = FileError::Read {
                    path: path.display().to_string(),
                    error,
                };
                if revocations.last_error().is_none() {
                    tracing::warn!(%error, "revocation rules file unreadable; the rules read last stay");
                }
                revocations.mark_failure(error);
                continue;
            }
            Err(error) => {
                revocations.mark_failure(error);
                continue;
            }
        };
        if applied.as_deref() == Some(text.as_str()) {
            revocations.mark_synced();
            continue;
        }
        match rules_of(&path, &text) {
            Ok(rules) => {
                tracing::info!(file = %path.display(), rules = rules.len(), "revocation rules loaded");
                revocations.replace_from_source(rules);
                revocations.mark_synced();
                applied = Some(text);
            }
            Err(error) => {
                if revocations.last_error().is_none() {
                    tracing::error!(%error, "revocation rules file refused; the rules read last stay");
                }
                revocations.mark_failure(error);
            }
        }
    }
}

/// Changes the rules file at `path` (a missing file is an empty one): reads it, drops the rules
/// no longer live at `now`, applies `change`, and writes it whole under another name then
/// renames it, so a gateway never reads half a file.
pub fn update(path: &Path, now: i64, change: impl FnOnce(&mut RuleSet)) -> Result<(), FileError> {
    let read_error = |error| FileError::Read {
        path: path.display().to_string(),
        error,
    };
    let mut rules = match std::fs::read_to_string(path) {
        Ok(text) => rules_of(path, &text)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => RuleSet::new(),
        Err(error) => return Err(read_error(error)),
    };
    rules.purge(now);
    change(&mut rules);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, crate::rule::to_json_lines(&rules.rules())).map_err(read_error)?;
    std::fs::rename(&temporary, path).map_err(read_error)
}
