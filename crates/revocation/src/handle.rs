//! [`Revocations`]: the rules one process enforces, shared by every engine it builds (a
//! configuration reload keeps them), with the state of the source they are synced from.
//!
//! The request path reads the current [`RuleSet`] through an `ArcSwap` (a lock-free load, no
//! I/O); the follower of the source replaces it. The rules are held in two parts: those the
//! source currently has, replaced at every full sync, and rules *kept* from a source that lost
//! its data (a Redis restarted empty): those stay until they expire or are removed explicitly,
//! so a source that forgets never silently un-revokes a token.

use crate::config::Source;
use crate::dpop_replay::SharedDpopReplay;
use crate::rule::{Rule, RuleKey};
use crate::set::{Match, RuleSet, TokenFacts};
use arc_swap::ArcSwap;
use jwtgate_core::Verified;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Default `max_stale`: how long a source may go without a successful sync before `/readyz`
/// reports it.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(300);

/// Where the rules come from, as a label for readiness and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLabel {
    /// Rules given by the program; nothing to sync.
    Fixed,
    /// A JSON-lines file.
    File(String),
    /// Redis (the URL without its password).
    Redis(String),
}

impl std::fmt::Display for SourceLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceLabel::Fixed => f.write_str("fixed rules"),
            SourceLabel::File(path) => write!(f, "file {path}"),
            SourceLabel::Redis(url) => write!(f, "redis {url}"),
        }
    }
}

/// The two parts of the rules (see the module documentation).
#[derive(Debug, Default)]
struct Parts {
    from_source: RuleSet,
    kept: RuleSet,
}

impl Parts {
    fn effective(&self) -> RuleSet {
        if self.kept.is_empty() {
            return self.from_source.clone();
        }
        let mut all = self.kept.clone();
        for rule in self.from_source.rules() {
            all.insert(&rule);
        }
        all
    }
}

/// The revocation rules of one process and the health of their source.
#[derive(Debug)]
pub struct Revocations {
    current: ArcSwap<RuleSet>,
    parts: Mutex<Parts>,
    source: SourceLabel,
    max_stale: Duration,
    /// Wall-clock milliseconds of the last successful sync; 0 before the first.
    synced_at_ms: AtomicI64,
    sync_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    follow: Option<Source>,
    following: AtomicBool,
    dpop_replay: Option<Arc<SharedDpopReplay>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Revocations {
    /// Rules fixed by the program (a library user's own list): always ready.
    pub fn fixed(rules: RuleSet) -> Arc<Revocations> {
        let revocations = Revocations::unsynced(SourceLabel::Fixed, DEFAULT_MAX_STALE);
        revocations.replace_from_source(rules);
        revocations.mark_synced();
        Arc::new(revocations)
    }

    /// No rules yet, waiting for the first sync from `source`; not ready until then, nor when
    /// the last sync is older than `max_stale`.
    pub fn unsynced(source: SourceLabel, max_stale: Duration) -> Revocations {
        Revocations {
            current: ArcSwap::from_pointee(RuleSet::new()),
            parts: Mutex::new(Parts::default()),
            source,
            max_stale,
            synced_at_ms: AtomicI64::new(0),
            sync_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            follow: None,
            following: AtomicBool::new(false),
            dpop_replay: None,
        }
    }

    /// Sets the source [`crate::follow::start`] follows.
    pub fn with_source(mut self, source: Source) -> Revocations {
        self.follow = Some(source);
        self
    }

    /// Shares DPoP proof identifiers between replicas through `replay` (the Redis the rules come
    /// from); an engine using these rules checks proofs against it too.
    pub fn with_dpop_replay(mut self, replay: Arc<SharedDpopReplay>) -> Revocations {
        self.dpop_replay = Some(replay);
        self
    }

    /// The store sharing DPoP proof identifiers between replicas, when there is one.
    pub fn dpop_replay(&self) -> Option<&Arc<SharedDpopReplay>> {
        self.dpop_replay.as_ref()
    }

    /// The source to follow, if any.
    pub fn followed_source(&self) -> Option<&Source> {
        self.follow.as_ref()
    }

    /// True the first time it is called: whoever gets `true` starts the follower (so an engine
    /// rebuilt on reload, sharing these rules, never starts a second one).
    pub fn claim_following(&self) -> bool {
        !self.following.swap(true, Ordering::AcqRel)
    }

    /// The rule refusing `verified` at `now`, if any: a lock-free read of the current set.
    pub fn check(&self, verified: &Verified, now: i64) -> Option<Match> {
        self.check_facts(&TokenFacts::of(verified), now)
    }

    /// Like [`Revocations::check`], for facts gathered by the caller.
    pub fn check_facts(&self, token: &TokenFacts<'_>, now: i64) -> Option<Match> {
        self.current.load().check(token, now)
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Where the rules come from.
    pub fn source(&self) -> &SourceLabel {
        &self.source
    }

    fn update(&self, change: impl FnOnce(&mut Parts)) {
        let mut parts = lock(&self.parts);
        change(&mut parts);
        self.current.store(Arc::new(parts.effective()));
    }

    /// A full sync: the source holds exactly `rules` (rules kept from a lost source stay).
    pub fn replace_from_source(&self, rules: RuleSet) {
        self.update(|parts| parts.from_source = rules);
    }

    /// The source lost its data (it answers, but no longer knows the rules it had): every rule
    /// held so far is kept until it expires or is removed, and the source's rules are `rules`.
    pub fn source_lost_data(&self, rules: RuleSet) {
        self.update(|parts| {
            for rule in parts.from_source.rules() {
                parts.kept.insert(&rule);
            }
            parts.from_source = rules;
        });
    }

    /// One rule added at the source.
    pub fn add(&self, rule: &Rule) {
        self.update(|parts| parts.from_source.insert(rule));
    }

    /// One rule removed at the source (also from the kept rules: removing is explicit).
    pub fn remove(&self, key: &RuleKey) {
        self.update(|parts| {
            parts.from_source.remove(key);
            parts.kept.remove(key);
        });
    }

    /// Forgets rules that no longer matter at `now`.
    pub fn purge(&self, now: i64) {
        self.update(|parts| {
            parts.from_source.purge(now);
            parts.kept.purge(now);
        });
    }

    /// Records a successful sync (now).
    pub fn mark_synced(&self) {
        self.synced_at_ms.store(now_ms().max(1), Ordering::Relaxed);
        *lock(&self.last_error) = None;
    }

    /// Records a failed sync attempt.
    pub fn mark_failure(&self, error: impl std::fmt::Display) {
        self.sync_failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error.to_string());
    }

    /// Time since the last successful sync; `None` before the first.
    pub fn last_sync_age(&self) -> Option<Duration> {
        match self.synced_at_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_millis(
                u64::try_from(now_ms().saturating_sub(at)).unwrap_or(0),
            )),
        }
    }

    /// Failed sync attempts so far.
    pub fn sync_failures(&self) -> u64 {
        self.sync_failures.load(Ordering::Relaxed)
    }

    /// The last sync error, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// `Ok` when synced within `max_stale`; otherwise why not, for `/readyz`. Requests are
    /// decided with the last synced rules either way.
    pub fn readiness(&self) -> Result<(), String> {
        let error = self
            .last_error()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        match self.last_sync_age() {
            None => Err(format!(
                "revocation rules from {}: not synced yet{error}",
                self.source
            )),
            Some(age) if age > self.max_stale => Err(format!(
                "revocation rules from {}: last synced {} s ago, more than max_stale ({} s){error}",
                self.source,
                age.as_secs(),
                self.max_stale.as_secs()
            )),
            Some(_) => Ok(()),
        }
    }

    /// The Prometheus text of the revocation metrics: rules held, seconds since the last sync
    /// (absent before the first), sync failures.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP jwtgate_revocation_rules Revocation rules held.\n# TYPE jwtgate_revocation_rules gauge\njwtgate_revocation_rules {}",
            self.current.load().len()
        );
        let _ = writeln!(
            out,
            "# HELP jwtgate_revocation_synced Whether the revocation rules have been synced at least once.\n# TYPE jwtgate_revocation_synced gauge\njwtgate_revocation_synced {}",
            u8::from(self.last_sync_age().is_some())
        );
        if let Some(age) = self.last_sync_age() {
            let _ = writeln!(
                out,
                "# HELP jwtgate_revocation_last_sync_age_seconds Seconds since the last successful sync of the revocation rules.\n# TYPE jwtgate_revocation_last_sync_age_seconds gauge\njwtgate_revocation_last_sync_age_seconds {}",
                age.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "# HELP jwtgate_revocation_sync_failures_total Failed syncs of the revocation rules.\n# TYPE jwtgate_revocation_sync_failures_total counter\njwtgate_revocation_sync_failures_total {}",
            self.sync_failures()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn facts(jti: &str) -> TokenFacts<'_> {
        TokenFacts {
            iss: "https://i/",
            jti: Some(jti),
            ..TokenFacts::default()
        }
    }

    #[test]
    fn readiness_follows_the_syncs() {
        let revocations = Revocations::unsynced(
            SourceLabel::File("r.jsonl".into()),
            Duration::from_millis(50),
        );
        revocations.mark_failure("no such file");
        let not_ready = revocations.readiness().unwrap_err();
        assert!(
            not_ready.contains("not synced yet (last error: no such file)"),
            "{not_ready}"
        );
        assert!(revocations
            .render_metrics()
            .contains("jwtgate_revocation_synced 0\n"));
        revocations.mark_synced();
        assert_eq!(revocations.readiness(), Ok(()));
        std::thread::sleep(Duration::from_millis(1100));
        let stale = revocations.readiness().unwrap_err();
        assert!(
            stale.contains("last synced 1 s ago, more than max_stale"),
            "{stale}"
        );
        let metrics = revocations.render_metrics();
        assert!(
            metrics.contains("jwtgate_revocation_sync_failures_total 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("jwtgate_revocation_last_sync_age_seconds 1."),
            "{metrics}"
        );
    }

    #[test]
    fn rules_of_a_source_that_lost_its_data_are_kept_until_removed() {
        let revocations = Revocations::unsynced(SourceLabel::Fixed, DEFAULT_MAX_STALE);
        let old = Rule::jti("old", NOW + 60).unwrap();
        revocations.replace_from_source(RuleSet::from_rules(std::slice::from_ref(&old)));
        revocations.source_lost_data(RuleSet::new());
        let new = Rule::jti("new", NOW + 60).unwrap();
        revocations.add(&new);
        // A full sync with only the new rule keeps the old one.
        revocations.replace_from_source(RuleSet::from_rules(std::slice::from_ref(&new)));
        assert_eq!(
            revocations.check_facts(&facts("old"), NOW),
            Some(Match::Jti)
        );
        assert_eq!(
            revocations.check_facts(&facts("new"), NOW),
            Some(Match::Jti)
        );
        revocations.remove(old.key());
        assert_eq!(revocations.check_facts(&facts("old"), NOW), None);
        assert_eq!(revocations.current().len(), 1);
        revocations.purge(NOW + 60);
        assert!(revocations.current().is_empty());
    }
}
