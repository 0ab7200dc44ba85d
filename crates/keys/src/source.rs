//! One key source and its cache: the rules that decide when keys are fetched.
//!
//! * Fresh keys (younger than their lifetime) answer lookups with no I/O; past `refresh_ahead`
//!   of the lifetime a lookup starts a refresh in the background and still answers at once.
//! * An unknown `kid` refreshes at most once per cooldown; concurrent lookups share one fetch
//!   (single-flight); a `kid` still unknown afterwards is remembered until the next refresh.
//! * Every attempt, successful or not, starts the cooldown, so a failing provider is asked again
//!   only once per cooldown.
//! * A failed refresh never replaces good keys: they stay in use up to `max_stale` past their
//!   lifetime (stale-if-error). A token whose key cannot be found is still `invalid_token`, with a
//!   description saying the keys could not be refreshed.

use crate::clock::Clock;
use crate::fetch::{FetchError, FetchedKeys, Fetcher};
use crate::metrics::{KeyMetrics, KeyMetricsSnapshot};
use crate::settings::CacheSettings;
use jwtgate_core::jwk::KeySelectionError;
use jwtgate_core::{Header, KeySet, Reason, Rejection};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use url::Url;

/// Most unknown `kid`s remembered at once; the memory an attacker can make the cache use is bounded.
const MAX_NEGATIVE_KIDS: usize = 4096;

/// Where a source's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A JWKS (or single JWK) file, re-read when an unknown `kid` arrives.
    File(PathBuf),
    /// A JWKS URL.
    Url(Url),
    /// An issuer whose `jwks_uri` is found by OIDC discovery (RFC 8414 as fallback).
    Discovery {
        /// The issuer, exactly as in tokens' `iss`.
        issuer: String,
    },
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKind::File(path) => write!(f, "file {}", path.display()),
            SourceKind::Url(url) => write!(f, "{url}"),
            SourceKind::Discovery { issuer } => write!(f, "discovery for {issuer}"),
        }
    }
}

/// The keys held at one moment, with when they were fetched and for how long they are fresh.
#[derive(Debug)]
pub struct Snapshot {
    /// The key set.
    pub keys: Arc<KeySet>,
    /// Clock time of the fetch.
    pub fetched_at: Duration,
    /// Lifetime (clamped `max-age`).
    pub ttl: Duration,
    /// The `Cache-Control` header received, if any.
    pub cache_control: Option<String>,
    /// Where the keys were read from (the resolved JWKS URL for discovery).
    pub origin: String,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Arc<Snapshot>>,
    attempts: u64,
    last_attempt: Option<Duration>,
    last_error: Option<String>,
    jwks_uri: Option<Url>,
    unknown_kids: HashSet<String>,
}

struct Inner {
    kind: SourceKind,
    fetcher: Fetcher,
    settings: CacheSettings,
    clock: Arc<dyn Clock>,
    metrics: KeyMetrics,
    state: RwLock<State>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Woken when the last handle on the source goes away, so its refresher ends at once.
    retired: Arc<tokio::sync::Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // `notify_one` keeps a permit when the refresher is not waiting yet.
        self.retired.notify_one();
    }
}

/// A cached, self-refreshing source of verification keys. Cheap to clone (shared state).
#[derive(Clone)]
pub struct KeySource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

/// What a refresh attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New keys were stored.
    Refreshed,
    /// Another caller's refresh finished while this one waited; its result stands.
    Joined,
    /// The cooldown since the last attempt is still running; nothing was fetched.
    CoolingDown,
    /// The fetch failed; the previous keys (if any) stay.
    Failed(String),
}

fn selection_needs_refresh(error: &KeySelectionError) -> bool {
    matches!(
        error,
        KeySelectionError::UnknownKid { .. } | KeySelectionError::NoKeyForAlg { .. }
    )
}

impl KeySource {
    /// A source with `settings`, timed by `clock`. Nothing is fetched until the first lookup or
    /// [`KeySource::refresh_now`].
    pub fn new(
        kind: SourceKind,
        settings: CacheSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<KeySource, crate::KeysError> {
        settings.validate()?;
        if let SourceKind::Url(url) = &kind {
            crate::fetch::parse_url(url.as_str(), settings.allow_insecure_http)?;
        }
        if let SourceKind::Discovery { issuer } = &kind {
            crate::fetch::parse_url(issuer, settings.allow_insecure_http)?;
        }
        let fetcher = Fetcher::new(&settings)?;
        Ok(KeySource::with_fetcher(kind, settings, clock, fetcher))
    }

    /// A source fetching through `fetcher` (a clone shares its HTTP client and its fetch budget);
    /// the caller has validated `kind` and `settings` as [`KeySource::new`] does.
    pub(crate) fn with_fetcher(
        kind: SourceKind,
        settings: CacheSettings,
        clock: Arc<dyn Clock>,
        fetcher: Fetcher,
    ) -> KeySource {
        KeySource {
            inner: Arc::new(Inner {
                kind,
                fetcher,
                settings,
                clock,
                metrics: KeyMetrics::default(),
                state: RwLock::new(State::default()),
                refresh_lock: tokio::sync::Mutex::new(()),
                retired: Arc::new(tokio::sync::Notify::new()),
            }),
        }
    }

    /// Where the keys come from.
    pub fn kind(&self) -> &SourceKind {
        &self.inner.kind
    }

    /// True when `self` and `other` are handles on the same source (same cache, same state).
    pub fn same_source(&self, other: &KeySource) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The settings in force.
    pub fn settings(&self) -> &CacheSettings {
        &self.inner.settings
    }

    /// The counters.
    pub fn metrics(&self) -> KeyMetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.inner.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.inner.state.write() {
            Ok(mut state) => f(&mut state),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The keys held now, if any.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.read_state(|s| s.current.clone())
    }

    /// The error of the last attempt, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.read_state(|s| s.last_error.clone())
    }

    /// True when keys are held and not past `max_stale` (what `/readyz` reports).
    pub fn is_ready(&self) -> bool {
        let now = self.inner.clock.elapsed();
        self.snapshot().is_some_and(|s| self.usable(&s, now))
    }

    fn fresh(&self, snapshot: &Snapshot, now: Duration) -> bool {
        now.saturating_sub(snapshot.fetched_at) < snapshot.ttl
    }

    fn usable(&self, snapshot: &Snapshot, now: Duration) -> bool {
        now.saturating_sub(snapshot.fetched_at) < snapshot.ttl + self.inner.settings.max_stale
    }

    fn cooling_down(&self, now: Duration) -> bool {
        self.read_state(|s| {
            s.last_attempt
                .is_some_and(|last| now.saturating_sub(last) < self.inner.settings.cooldown)
        })
    }

    /// Fetches now, whatever the cooldown says (for start-up prefetch and operator commands).
    pub async fn refresh_now(&self) -> Result<(), FetchError> {
        let _guard = self.inner.refresh_lock.lock().await;
        self.fetch_and_store().await
    }

    /// One refresh attempt under the single-flight lock, respecting the cooldown.
    pub async fn refresh(&self) -> RefreshOutcome {
        let seen = self.read_state(|s| s.attempts);
        let _guard = self.inner.refresh_lock.lock().await;
        let (attempts, last_error) = self.read_state(|s| (s.attempts, s.last_error.clone()));
        if attempts != seen {
            self.inner.metrics.joined();
            return match last_error {
                None => RefreshOutcome::Joined,
                Some(error) => RefreshOutcome::Failed(error),
            };
        }
        if self.cooling_down(self.inner.clock.elapsed()) {
            self.inner.metrics.cooldown();
            return RefreshOutcome::CoolingDown;
        }
        match self.fetch_and_store().await {
            Ok(()) => RefreshOutcome::Refreshed,
            Err(error) => RefreshOutcome::Failed(error.to_string()),
        }
    }

    async fn fetch_and_store(&self) -> Result<(), FetchError> {
        self.inner.metrics.fetch();
        let result = self.fetch().await;
        let now = self.inner.clock.elapsed();
        match result {
            Ok((fetched, origin)) => {
                let ttl = self.inner.settings.ttl_for(fetched.max_age);
                tracing::info!(
                    source = %self.inner.kind,
                    keys = fetched.keys.keys().len(),
                    ttl_s = ttl.as_secs(),
                    "keys refreshed"
                );
                let snapshot = Arc::new(Snapshot {
                    keys: Arc::new(fetched.keys),
                    fetched_at: now,
                    ttl,
                    cache_control: fetched.cache_control,
                    origin,
                });
                self.write_state(|state| {
                    state.attempts += 1;
                    state.last_attempt = Some(now);
                    state.current = Some(snapshot);
                    state.unknown_kids.clear();
                    state.last_error = None;
                });
                Ok(())
            }
            Err(error) => {
                self.inner.metrics.failure();
                tracing::warn!(
                    source = %self.inner.kind,
                    %error,
                    "key refresh failed; keeping the previous keys"
                );
                self.write_state(|state| {
                    state.attempts += 1;
                    state.last_attempt = Some(now);
                    state.last_error = Some(error.to_string());
                });
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<(FetchedKeys, String), FetchError> {
        let fetcher = &self.inner.fetcher;
        match &self.inner.kind {
            SourceKind::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| FetchError::File {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                let origin = path.display().to_string();
                let keys = KeySet::from_json(&bytes).map_err(|error| FetchError::NotJwks {
                    url: origin.clone(),
                    error,
                })?;
                if keys.keys().is_empty() && keys.secrets().is_empty() {
                    return Err(FetchError::NoUsableKeys {
                        url: origin,
                        skipped: keys.skipped().len(),
                    });
                }
                for skipped in keys.skipped() {
                    tracing::warn!(file = %origin, "{skipped}");
                }
                let fetched = FetchedKeys {
                    keys,
                    max_age: None,
                    cache_control: None,
                    body: bytes,
                };
                Ok((fetched, origin))
            }
            SourceKind::Url(url) => Ok((fetcher.fetch_jwks(url).await?, url.to_string())),
            SourceKind::Discovery { issuer } => {
                let cached = self.read_state(|s| s.jwks_uri.clone());
                let uri = match cached {
                    Some(uri) => uri,
                    None => {
                        let uri = fetcher.discover(issuer).await?;
                        self.write_state(|s| s.jwks_uri = Some(uri.clone()));
                        uri
                    }
                };
                match fetcher.fetch_jwks(&uri).await {
                    Ok(fetched) => Ok((fetched, uri.to_string())),
                    Err(error) => {
                        // The provider may have moved its keys: discover again next time.
                        self.write_state(|s| s.jwks_uri = None);
                        Err(error)
                    }
                }
            }
        }
    }

    fn start_background_refresh(&self) {
        if self.inner.refresh_lock.try_lock().is_err() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let source = self.clone();
        tokio::spawn(async move {
            source.refresh().await;
        });
    }

    /// The keys for `header` if fresh keys are held and can answer it without a refresh. Starts a
    /// background refresh when the keys are due for one. Never waits.
    pub fn cached(&self, header: &Header) -> Option<Arc<KeySet>> {
        let now = self.inner.clock.elapsed();
        let snapshot = self.snapshot()?;
        if !self.fresh(&snapshot, now) {
            return None;
        }
        self.maybe_refresh_ahead(&snapshot, now);
        match snapshot.keys.select(header) {
            Err(error) if selection_needs_refresh(&error) => None,
            _ => {
                self.inner.metrics.hit();
                Some(snapshot.keys.clone())
            }
        }
    }

    fn maybe_refresh_ahead(&self, snapshot: &Snapshot, now: Duration) {
        let due = snapshot.ttl.mul_f64(self.inner.settings.refresh_ahead);
        if now.saturating_sub(snapshot.fetched_at) >= due && !self.cooling_down(now) {
            self.start_background_refresh();
        }
    }

    /// The keys to verify a token with `header`, refreshing when the rules allow. A returned key
    /// set may still fail to select a key (wrong type, ambiguity); verification reports that.
    pub async fn keys_for(&self, header: &Header) -> Result<Arc<KeySet>, Rejection> {
        if let Some(keys) = self.cached(header) {
            return Ok(keys);
        }
        let now = self.inner.clock.elapsed();
        let snapshot = self.snapshot();
        let fresh = snapshot.as_ref().is_some_and(|s| self.fresh(s, now));
        if fresh {
            // Fresh keys that do not know this kid.
            let kid = header.kid.clone().unwrap_or_default();
            if self.read_state(|s| s.unknown_kids.contains(&kid)) {
                self.inner.metrics.negative();
                return Err(self.no_key(header));
            }
            if self.cooling_down(now) {
                self.inner.metrics.cooldown();
                self.remember_unknown(kid);
                return Err(self.no_key(header));
            }
            self.refresh().await;
            return self.select_or_remember(header);
        }
        // No keys, or keys past their lifetime: refresh (single-flight, cooldown after failures).
        let outcome = self.refresh().await;
        let now = self.inner.clock.elapsed();
        match self.snapshot() {
            Some(current) if self.usable(&current, now) => {
                if !self.fresh(&current, now) {
                    self.inner.metrics.stale();
                    tracing::debug!(source = %self.inner.kind, ?outcome, "serving stale keys");
                }
                self.select_or_remember(header)
            }
            _ => Err(Rejection::new(Reason::KeysUnavailable {
                source: self.inner.kind.to_string(),
                error: self
                    .last_error()
                    .unwrap_or_else(|| "keys expired and could not be refreshed".to_owned()),
                selection: None,
            })),
        }
    }

    fn select_or_remember(&self, header: &Header) -> Result<Arc<KeySet>, Rejection> {
        let Some(snapshot) = self.snapshot() else {
            return Err(self.no_key(header));
        };
        match snapshot.keys.select(header) {
            Err(error) if selection_needs_refresh(&error) => {
                self.remember_unknown(header.kid.clone().unwrap_or_default());
                Err(self.no_key(header))
            }
            _ => Ok(snapshot.keys.clone()),
        }
    }

    /// Remembers `kid` as absent from the keys — only when the last fetch succeeded: a `kid` first
    /// seen while the source is failing may well be in the set the provider will serve once it
    /// recovers, so it must not be refused until the refresh after that.
    fn remember_unknown(&self, kid: String) {
        self.write_state(|state| {
            if state.last_error.is_some() {
                return;
            }
            if state.unknown_kids.len() >= MAX_NEGATIVE_KIDS {
                state.unknown_kids.clear();
            }
            state.unknown_kids.insert(kid);
        });
    }

    /// The rejection for a token whose key is not in the held keys.
    fn no_key(&self, header: &Header) -> Rejection {
        let selection = match self.snapshot() {
            Some(snapshot) => snapshot.keys.select(header).err(),
            None => None,
        };
        let selection = selection.unwrap_or(KeySelectionError::NoKeyForAlg { alg: header.alg });
        match self.last_error() {
            Some(error) => Rejection::new(Reason::KeysUnavailable {
                source: self.inner.kind.to_string(),
                error,
                selection: Some(selection),
            }),
            None => Rejection::new(Reason::NoKey(selection)),
        }
    }

    /// Refreshes the keys when `refresh_ahead` of their lifetime has passed (or after a cooldown
    /// when the last attempt failed), so keys stay fresh even when no requests arrive; uses real
    /// time for sleeping. Spawn it once per source in long-running services. It holds the source
    /// only while refreshing and ends as soon as every other handle on the source is gone (a
    /// source dropped by a configuration reload stops being refreshed, and its task ends).
    pub async fn run_refresher(self) {
        let retired = self.inner.retired.clone();
        let weak = Arc::downgrade(&self.inner);
        drop(self);
        loop {
            let Some(wait) = upgrade(&weak).map(|source| source.refresher_wait()) else {
                return;
            };
            let sleep = wait.max(Duration::from_millis(100));
            if tokio::time::timeout(sleep, retired.notified())
                .await
                .is_ok()
            {
                return;
            }
            let Some(source) = upgrade(&weak) else {
                return;
            };
            source.refresh().await;
        }
    }

    /// How long the refresher sleeps before its next attempt.
    fn refresher_wait(&self) -> Duration {
        let now = self.inner.clock.elapsed();
        match self.snapshot() {
            Some(snapshot) if self.last_error().is_none() => {
                let due =
                    snapshot.fetched_at + snapshot.ttl.mul_f64(self.inner.settings.refresh_ahead);
                due.saturating_sub(now)
            }
            _ => {
                let last = self.read_state(|s| s.last_attempt);
                match last {
                    Some(last) => (last + self.inner.settings.cooldown).saturating_sub(now),
                    None => Duration::ZERO,
                }
            }
        }
    }
}

/// A handle on the source behind `weak`, while anything else still holds it.
fn upgrade(weak: &Weak<Inner>) -> Option<KeySource> {
    weak.upgrade().map(|inner| KeySource { inner })
}
