//! Sender-constrained tokens in the decision: DPoP (RFC 9449) binding checks, the `[dpop]`
//! settings, and the replay cache of proof identifiers.
//!
//! After a token verifies (fresh or from the verified-token cache), [`DpopPolicy::check`] decides
//! whether the way it was presented fits its binding and the mode in force for its issuer and
//! route ([`DpopMode`]):
//!
//! | token | scheme | `off` | `allowed` | `required` |
//! | --- | --- | --- | --- | --- |
//! | no `cnf` | `Bearer` | pass | pass | refused (DPoP required) |
//! | no `cnf` | `DPoP` | refused | refused (not bound) | refused (not bound) |
//! | `cnf.jkt` | `Bearer` | refused | refused (downgrade) | refused (downgrade) |
//! | `cnf.jkt` | `DPoP` | refused | proof checked | proof checked |
//! | `cnf["x5t#S256"]` | `Bearer` | pass with its certificate | pass with its certificate | pass with its certificate |
//!
//! A certificate-bound token (RFC 8705, `cnf["x5t#S256"]`) must come with the certificate it
//! names ([`crate::mtls`]); without a configured certificate source it is refused, never
//! accepted as a plain bearer token. A token bound both ways needs both.
//!
//! A proof is checked by `jwtgate_core::dpop::check_proof` against the URI the client used
//! (the front end supplies the scheme and authority in [`crate::RequestView::origin`]; without
//! it a proof cannot be checked and the request is refused, never guessed) and then recorded in
//! the [`ReplayStore`]: a `jti` seen before for the same key inside the window is refused.
//!
//! The replay store is per process by default ([`LocalReplayCache`]); behind N replicas a proof
//! could be replayed once per replica inside the window. A [`SharedReplayStore`] (Redis, set up
//! by `[revocation] redis_url`: `jwtgate_revocation::SharedDpopReplay`) closes that gap: a proof
//! is first recorded in the local cache (a replay to the same replica is refused without the
//! network), then in the shared store (a proof any replica saw is refused). When the shared
//! store does not answer in time, [`DpopReplayFallback`] decides, here and nowhere else: `local`
//! accepts on the local cache's word and reports [`ReplayRecord::LocalFallback`] (counted as
//! `jwtgate_dpop_replay_fallback_total`), `fail-closed` refuses the proof
//! ([`DpopRefusal::ReplayStoreUnavailable`], `401 invalid_dpop_proof`: a client error the
//! fronting proxy passes on as it is, never a 5xx it might retry or hide).

use crate::mtls::{CertificateRefusal, CertificateSource, CertificateThumbprint};
use jwtgate_core::dpop::{self, ProofContext, ProofError};
use jwtgate_core::{Algorithm, AlgorithmSet, Verified};
pub use jwtgate_revocation::DpopReplayFallback;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Default `iat` window, seconds either side of now.
pub const DEFAULT_IAT_WINDOW: u64 = 60;

/// Default replay-cache size: 100,000 proofs (about 40 bytes each, ~4 MiB when full) — at the
/// default window that is over 800 proofs per second sustained.
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 100_000;

/// Whether sender-constrained (DPoP) tokens are accepted, allowed or required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpopMode {
    /// Bearer tokens only: a DPoP-bound token, or the `DPoP` scheme, is refused.
    Off,
    /// Both: bearer tokens as `Bearer`, DPoP-bound tokens as `DPoP` with a proof.
    #[default]
    Allowed,
    /// DPoP-bound tokens with a proof only.
    Required,
}

impl DpopMode {
    /// The mode when an issuer and a route both have one: `required` if either requires it,
    /// else `off` if either turns it off, else `allowed`.
    pub fn combine(self, other: DpopMode) -> DpopMode {
        use DpopMode::{Allowed, Off, Required};
        match (self, other) {
            (Required, _) | (_, Required) => Required,
            (Off, _) | (_, Off) => Off,
            (Allowed, Allowed) => Allowed,
        }
    }

    /// The mode's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopMode::Off => "off",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }
}

impl std::str::FromStr for DpopMode {
    type Err = String;

    fn from_str(text: &str) -> Result<DpopMode, String> {
        match text {
            "off" => Ok(DpopMode::Off),
            "allowed" => Ok(DpopMode::Allowed),
            "required" => Ok(DpopMode::Required),
            other => Err(format!(
                "dpop is {other:?}; expected \"off\", \"allowed\" or \"required\""
            )),
        }
    }
}

fn default_iat_window() -> u64 {
    DEFAULT_IAT_WINDOW
}

fn default_replay_cache_entries() -> usize {
    DEFAULT_REPLAY_CACHE_ENTRIES
}

/// `[dpop]`: the default mode and how proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSection {
    /// The mode for issuers and routes that set none (default `allowed`).
    #[serde(default)]
    pub mode: DpopMode,
    /// How far a proof's `iat` may be from now, seconds either side (default 60).
    #[serde(default = "default_iat_window")]
    pub iat_window: u64,
    /// Most proofs remembered for replay detection (default 100,000).
    #[serde(default = "default_replay_cache_entries")]
    pub replay_cache_entries: usize,
    /// Accepted proof algorithms (default: every asymmetric one).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Require server nonces in proofs (RFC 9449 §8): a proof without the current nonce gets
    /// `use_dpop_nonce` and the nonce in `DPoP-Nonce` (default `false`).
    #[serde(default)]
    pub nonce: bool,
}

/// Seconds a server nonce stays current; the previous one stays good for one more period.
pub const NONCE_LIFETIME: i64 = 300;

/// Server nonces: the current one and the one before, rotated every [`NONCE_LIFETIME`].
#[derive(Debug, Default)]
pub struct Nonces {
    state: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    current: String,
    previous: Option<String>,
    rotates_at: i64,
}

impl Nonces {
    /// The current nonce and the previous one, rotating first when due; `None` when the system's
    /// random generator fails (no nonce can be checked: proofs are refused).
    pub fn at(&self, now: i64) -> Option<(String, Option<String>)> {
        let mut state = self.state.lock().ok()?;
        if state.current.is_empty() || now >= state.rotates_at {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).ok()?;
            let fresh = jwtgate_core::internal::base64url::encode(&bytes);
            let old = std::mem::replace(&mut state.current, fresh);
            state.previous = (!old.is_empty()).then_some(old);
            state.rotates_at = now.saturating_add(NONCE_LIFETIME);
        }
        Some((state.current.clone(), state.previous.clone()))
    }
}

impl Default for DpopSection {
    fn default() -> Self {
        DpopSection {
            mode: DpopMode::Allowed,
            iat_window: DEFAULT_IAT_WINDOW,
            replay_cache_entries: DEFAULT_REPLAY_CACHE_ENTRIES,
            algorithms: Vec::new(),
            nonce: false,
        }
    }
}

/// The replay store refused to record a proof: it is full of proofs still inside their window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the DPoP replay cache is full of proofs still inside their window")]
pub struct ReplayStoreFull;

/// Where proof identifiers are remembered until they can no longer be replayed.
pub trait ReplayStore: Send + Sync + fmt::Debug {
    /// Records the proof `(jkt, jti)` until `keep_until` (Unix seconds): `Ok(true)` the first
    /// time, `Ok(false)` when it was seen before and is still remembered.
    fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<bool, ReplayStoreFull>;
}

/// A [`SharedReplayStore`] did not answer within its bound: why, for the refusal and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct SharedReplayUnavailable(pub String);

impl From<jwtgate_revocation::ReplayUnavailable> for SharedReplayUnavailable {
    fn from(unavailable: jwtgate_revocation::ReplayUnavailable) -> SharedReplayUnavailable {
        SharedReplayUnavailable(unavailable.to_string())
    }
}

/// What a [`SharedReplayStore`] check resolves to: `Ok(true)` the first time any replica
/// records the proof, `Ok(false)` for a replay, `Err` when the store did not answer within its
/// bound.
pub type SharedReplayAnswer<'a> =
    Pin<Box<dyn Future<Output = Result<bool, SharedReplayUnavailable>> + Send + 'a>>;

/// A replay store shared by replicas, asked after the per-process cache. Implementations bound
/// their own wait (the request waits on it) and answer `Err` past it.
pub trait SharedReplayStore: Send + Sync + fmt::Debug {
    /// Records the proof `(jkt, jti)` for every replica until `keep_until` (Unix seconds).
    fn first_use<'a>(
        &'a self,
        jkt: &'a str,
        jti: &'a str,
        keep_until: i64,
    ) -> SharedReplayAnswer<'a>;
}

impl SharedReplayStore for jwtgate_revocation::SharedDpopReplay {
    fn first_use<'a>(
        &'a self,
        jkt: &'a str,
        jti: &'a str,
        keep_until: i64,
    ) -> SharedReplayAnswer<'a> {
        Box::pin(async move {
            jwtgate_revocation::SharedDpopReplay::first_use(self, jkt, jti, keep_until)
                .await
                .map_err(SharedReplayUnavailable::from)
        })
    }
}

/// How an accepted proof was recorded against replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRecord {
    /// No proof was checked (a bearer token).
    NoProof,
    /// In the per-process cache, the only store.
    Local,
    /// In the per-process cache and the shared store.
    Shared,
    /// In the per-process cache only: the shared store did not answer and the fallback is
    /// `local` (a replay to another replica would not be seen).
    LocalFallback,
}

/// The per-process replay store: a bounded set of 128-bit digests of `(jkt, jti)`, forgotten
/// in insertion order once their time has passed.
///
/// The digest is SHA-256 truncated to 128 bits: a collision would only refuse a fresh proof as
/// a replay (never admit one), and needs about 2^64 proofs. When the set is full of proofs that
/// could still be replayed, new proofs are refused ([`ReplayStoreFull`]) rather than making
/// room by forgetting one that could then be replayed.
pub struct LocalReplayCache {
    capacity: usize,
    inner: Mutex<ReplayInner>,
}

#[derive(Default)]
struct ReplayInner {
    seen: HashSet<[u8; 16]>,
    order: VecDeque<([u8; 16], i64)>,
}

impl fmt::Debug for LocalReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalReplayCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl LocalReplayCache {
    /// A cache of at most `capacity` proofs (at least one).
    pub fn new(capacity: usize) -> LocalReplayCache {
        LocalReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(ReplayInner::default()),
        }
    }

    /// Proofs currently remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.seen.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn replay_digest(jkt: &str, jti: &str) -> [u8; 16] {
    let mut input = Vec::with_capacity(jkt.len() + 1 + jti.len());
    input.extend_from_slice(jkt.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    let hash = jwtgate_core::crypto::sha256(&input);
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&hash[..16]);
    digest
}

impl ReplayStore for LocalReplayCache {
    fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<bool, ReplayStoreFull> {
        let digest = replay_digest(jkt, jti);
        let mut inner = self.inner.lock().map_err(|_| ReplayStoreFull)?;
        // Deadlines grow with insertion time (now + a fixed span), so the oldest is in front.
        while let Some(&(old, until)) = inner.order.front() {
            if until >= now {
                break;
            }
            inner.order.pop_front();
            inner.seen.remove(&old);
        }
        if inner.seen.contains(&digest) {
            return Ok(false);
        }
        if inner.seen.len() >= self.capacity {
            return Err(ReplayStoreFull);
        }
        inner.seen.insert(digest);
        inner.order.push_back((digest, keep_until));
        Ok(true)
    }
}

/// How a token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`, or a cookie or query parameter.
    Bearer,
    /// `Authorization: DPoP`.
    Dpop,
}

/// Why a token's presentation does not fit its binding or the mode in force.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DpopRefusal {
    /// A DPoP-bound token sent as a bearer token.
    #[error("the token is DPoP-bound (cnf.jkt): send it as \"Authorization: DPoP\" with a DPoP proof, not as a bearer token")]
    Downgrade,
    /// A token without `cnf.jkt` where DPoP is required.
    #[error("this API requires DPoP-bound tokens (cnf.jkt) sent with a DPoP proof")]
    Required,
    /// The `DPoP` scheme with a token that is not bound to a key.
    #[error("the token was sent with the DPoP scheme but is not DPoP-bound (no cnf.jkt)")]
    NotBound,
    /// DPoP is off here.
    #[error("DPoP is not accepted here; send a bearer token")]
    Off,
    /// A `cnf` jwtgate cannot honour (an unknown or malformed binding).
    #[error(
        "the token is bound by cnf {0} that jwtgate does not check here, so it cannot be accepted"
    )]
    UncheckedBinding(String),
    /// No `DPoP` header.
    #[error("the request has no DPoP proof header")]
    NoProof,
    /// Two or more `DPoP` headers.
    #[error("the request has more than one DPoP header")]
    SeveralProofs,
    /// The proof failed a check.
    #[error(transparent)]
    Proof(ProofError),
    /// The proof's `jti` was used before.
    #[error("the DPoP proof was already used (its jti was seen inside the window): a replay")]
    Replayed,
    /// The replay store cannot record more proofs.
    #[error(transparent)]
    StoreFull(ReplayStoreFull),
    /// The shared replay store did not answer and the fallback is `fail-closed`. What went
    /// wrong (it names the store's address) is logged, never sent to the client.
    #[error("the DPoP proof cannot be checked for replay across replicas (the replay store is unavailable); send the request again with a fresh proof")]
    ReplayStoreUnavailable(SharedReplayUnavailable),
    /// The front end cannot tell which URI the client used.
    #[error("cannot check the DPoP proof: {0}")]
    UnknownUri(String),
    /// A certificate-bound token without its certificate (RFC 8705).
    #[error(transparent)]
    Certificate(CertificateRefusal),
}

impl DpopRefusal {
    /// The error code of the `DPoP` challenge (RFC 9449 §7.1).
    pub fn error_code(&self) -> &'static str {
        match self {
            DpopRefusal::Proof(error) => error.error_code(),
            DpopRefusal::NoProof
            | DpopRefusal::SeveralProofs
            | DpopRefusal::Replayed
            | DpopRefusal::StoreFull(_)
            | DpopRefusal::ReplayStoreUnavailable(_) => "invalid_dpop_proof",
            DpopRefusal::Off => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DpopRefusal::Downgrade => "dpop_downgrade",
            DpopRefusal::Required => "dpop_required",
            DpopRefusal::NotBound => "dpop_not_bound",
            DpopRefusal::Off => "dpop_off",
            DpopRefusal::UncheckedBinding(_) => "unchecked_binding",
            DpopRefusal::NoProof | DpopRefusal::SeveralProofs => "dpop_proof_missing",
            DpopRefusal::Proof(ProofError::NonceRequired) => "dpop_nonce",
            DpopRefusal::Proof(_) => "dpop_proof_invalid",
            DpopRefusal::Replayed => "dpop_replay",
            DpopRefusal::StoreFull(_) => "dpop_replay_cache_full",
            DpopRefusal::ReplayStoreUnavailable(_) => "dpop_replay_unavailable",
            DpopRefusal::UnknownUri(_) => "dpop_uri_unknown",
            DpopRefusal::Certificate(refusal) => refusal.kind(),
        }
    }
}

/// True when the request carries a `DPoP` proof header: only then is the URI the client used
/// (the origin a front end passes in `RequestView::origin`) ever read, so a front end finds it
/// only for such requests.
pub fn carries_proof(headers: &http::HeaderMap) -> bool {
    headers.contains_key(&PROOF_HEADER_NAME)
}

/// The request header that carries a DPoP proof (RFC 9449 §4.1).
pub const PROOF_HEADER: &str = "dpop";

/// [`PROOF_HEADER`] as a header name, built once (a `&str` name is parsed again on every
/// lookup).
pub static PROOF_HEADER_NAME: http::HeaderName = http::HeaderName::from_static(PROOF_HEADER);

/// `scheme://authority` from the fronting proxy's `X-Forwarded-Proto` and `X-Forwarded-Host`
/// (forward-auth, ext_authz): exactly one of each, `http` or `https`, a plain authority.
/// `None` when either is missing, repeated or malformed — the request URI is then unknown and
/// a proof cannot be checked (never guessed from other headers).
pub fn forwarded_origin(headers: &http::HeaderMap) -> Option<String> {
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        let value = values.next()?.to_str().ok()?;
        values.next().is_none().then_some(value)
    };
    origin(single("x-forwarded-proto")?, single("x-forwarded-host")?)
}

/// `scheme://authority` for a request that reached jwtgate directly (proxy mode, tower layer):
/// `authority` is the request's `Host` (or HTTP/2 `:authority`), `scheme` the listener's.
pub fn origin(scheme: &str, authority: &str) -> Option<String> {
    // Per request on the Lambda authorizer: no allocation but the result's.
    let scheme = ["http", "https"]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(scheme))?;
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    plain.then(|| [scheme, "://", authority].concat())
}

/// Checks `[server] public_url`: `scheme://host[:port]` with no path, query or user
/// information; returns it without a trailing `/`.
pub fn public_origin(url: &str) -> Result<String, String> {
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    let (scheme, authority) = trimmed
        .split_once("://")
        .ok_or_else(|| format!("public_url {url:?} is not scheme://host[:port]"))?;
    if authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "public_url {url:?} must be scheme://host[:port], without a path, query or user"
        ));
    }
    origin(scheme, authority)
        .ok_or_else(|| format!("public_url {url:?} is not an http(s) scheme://host[:port]"))
}

/// The binding a verified token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding<'a> {
    /// No `cnf`: a bearer token.
    None,
    /// `cnf.jkt` and/or `cnf["x5t#S256"]`: bound to a DPoP key with this thumbprint, to a
    /// client certificate with this thumbprint, or both.
    Bound {
        /// The DPoP key's RFC 7638 thumbprint (`jkt`).
        jkt: Option<&'a str>,
        /// The certificate's SHA-256 thumbprint (`x5t#S256`, RFC 8705).
        x5t: Option<&'a str>,
    },
    /// A `cnf` that is not a binding jwtgate can check (named in the refusal).
    Unchecked(String),
}

/// Reads the token's `cnf` (RFC 7800): `jkt` (RFC 9449), `x5t#S256` (RFC 8705), or something
/// else.
pub fn binding(verified: &Verified) -> Binding<'_> {
    let cnf = match verified.claim("cnf") {
        None => return Binding::None,
        Some(Value::Object(cnf)) => cnf,
        Some(_) => return Binding::Unchecked("that is not an object".into()),
    };
    let member = |name: &str| match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if !value.is_empty() => Ok(Some(value.as_str())),
        Some(_) => Err(Binding::Unchecked(format!(
            "with a {name:?} that is not a string"
        ))),
    };
    let (jkt, x5t) = match (member("jkt"), member("x5t#S256")) {
        (Ok(jkt), Ok(x5t)) => (jkt, x5t),
        (Err(unchecked), _) | (_, Err(unchecked)) => return unchecked,
    };
    if jkt.is_none() && x5t.is_none() {
        return Binding::Unchecked(format!(
            "members {:?}",
            cnf.keys().map(String::as_str).collect::<Vec<_>>()
        ));
    }
    Binding::Bound { jkt, x5t }
}

/// The request facts a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The request's method.
    pub method: &'a str,
    /// `scheme://authority` of the URI the client used, when the front end knows it.
    pub origin: Option<&'a str>,
    /// The request target as sent (path and query).
    pub target: &'a str,
    /// The request's headers (for `DPoP`).
    pub headers: crate::RequestHeaders<'a>,
    /// The token as sent.
    pub token: &'a [u8],
    /// The client certificate the TLS listener verified, when there is one.
    pub client_certificate: Option<&'a CertificateThumbprint>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// The DPoP settings of an engine: default and per-issuer modes, the proof checks' settings and
/// the replay store.
#[derive(Debug, Clone)]
pub struct DpopPolicy {
    default_mode: DpopMode,
    issuer_modes: HashMap<String, DpopMode>,
    iat_window: i64,
    algorithms: AlgorithmSet,
    replay: Arc<dyn ReplayStore>,
    shared_replay: Option<(Arc<dyn SharedReplayStore>, DpopReplayFallback)>,
    public_origin: Option<String>,
    nonces: Option<Arc<Nonces>>,
    certificates: CertificateSource,
    proof_keys: Arc<ProofKeyCache>,
}

/// Most checked proof headers kept (~1 KiB each at most with their keys: a few MiB when full).
const PROOF_KEY_CACHE_ENTRIES: usize = 4_096;

/// Checked DPoP proof headers by their segment's exact bytes
/// (`jwtgate_core::dpop::ProofKeys`): a client's proofs share one header, so its key is parsed
/// and thumbprinted once, not on every request. Bounded; one per [`DpopPolicy`], whose algorithm
/// allowlist everything it holds passed. Only proofs sent with a verified DPoP-bound token reach
/// it.
#[derive(Debug)]
pub struct ProofKeyCache(quick_cache::sync::Cache<Box<[u8]>, Arc<dpop::ProofKey>>);

impl Default for ProofKeyCache {
    fn default() -> Self {
        ProofKeyCache(quick_cache::sync::Cache::new(PROOF_KEY_CACHE_ENTRIES))
    }
}

impl dpop::ProofKeys for ProofKeyCache {
    fn get(&self, header: &[u8]) -> Option<Arc<dpop::ProofKey>> {
        self.0.get(header)
    }

    fn insert(&self, header: &[u8], key: Arc<dpop::ProofKey>) {
        self.0.insert(Box::from(header), key);
    }
}

/// A `[dpop]` setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DpopConfigError {
    /// An algorithm name that is unknown or symmetric.
    #[error("[dpop] algorithms: {0:?} is not an asymmetric JWS algorithm")]
    Algorithm(String),
    /// A window of zero seconds or more than an hour.
    #[error("[dpop] iat_window is {0} s; use 1 to 3600")]
    Window(u64),
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            default_mode: DpopMode::Allowed,
            issuer_modes: HashMap::new(),
            iat_window: i64::try_from(DEFAULT_IAT_WINDOW).unwrap_or(60),
            algorithms: AlgorithmSet::asymmetric(),
            replay: Arc::new(LocalReplayCache::new(DEFAULT_REPLAY_CACHE_ENTRIES)),
            shared_replay: None,
            public_origin: None,
            nonces: None,
            certificates: CertificateSource::None,
            proof_keys: Arc::default(),
        }
    }
}

impl DpopPolicy {
    /// The policy of a `[dpop]` section, with a new per-process replay cache.
    pub fn from_section(section: &DpopSection) -> Result<DpopPolicy, DpopConfigError> {
        if section.iat_window == 0 || section.iat_window > 3600 {
            return Err(DpopConfigError::Window(section.iat_window));
        }
        let algorithms = if section.algorithms.is_empty() {
            AlgorithmSet::asymmetric()
        } else {
            let mut set = AlgorithmSet::EMPTY;
            for name in &section.algorithms {
                match name.parse::<Algorithm>() {
                    Ok(alg) if !alg.is_symmetric() => set.insert(alg),
                    _ => return Err(DpopConfigError::Algorithm(name.clone())),
                }
            }
            set
        };
        Ok(DpopPolicy {
            default_mode: section.mode,
            issuer_modes: HashMap::new(),
            iat_window: i64::try_from(section.iat_window).unwrap_or(60),
            algorithms,
            replay: Arc::new(LocalReplayCache::new(section.replay_cache_entries)),
            shared_replay: None,
            public_origin: None,
            nonces: section.nonce.then(Arc::default),
            certificates: CertificateSource::None,
            proof_keys: Arc::default(),
        })
    }

    /// Shares the server nonces of the engine this one replaces (a reload keeps the nonce
    /// clients hold), when both require nonces.
    pub fn with_nonces_of(mut self, previous: &DpopPolicy) -> DpopPolicy {
        if let (Some(_), Some(old)) = (&self.nonces, &previous.nonces) {
            self.nonces = Some(old.clone());
        }
        self
    }

    /// The nonce a client must put in its next proof, when nonces are required.
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.nonces
            .as_ref()
            .and_then(|nonces| nonces.at(now))
            .map(|(current, _)| current)
    }

    /// The origin clients use (`[server] public_url`, checked by [`public_origin`]): proofs are
    /// checked against it instead of what each front end reads from the request.
    pub fn with_public_origin(mut self, origin: Option<String>) -> DpopPolicy {
        self.public_origin = origin;
        self
    }

    /// Where client certificates come from, for certificate-bound tokens (RFC 8705; default
    /// nowhere: such tokens are refused).
    pub fn with_certificate_source(mut self, certificates: CertificateSource) -> DpopPolicy {
        self.certificates = certificates;
        self
    }

    /// Where client certificates come from.
    pub fn certificate_source(&self) -> &CertificateSource {
        &self.certificates
    }

    /// Sets an issuer's own mode (replacing the default for its tokens).
    pub fn with_issuer_mode(mut self, issuer: impl Into<String>, mode: DpopMode) -> DpopPolicy {
        self.issuer_modes.insert(issuer.into(), mode);
        self
    }

    /// Replaces the replay store (a shared one across replicas, or the one of an engine this
    /// one replaces on reload, so proofs seen before a reload stay seen).
    pub fn with_replay_store(mut self, replay: Arc<dyn ReplayStore>) -> DpopPolicy {
        self.replay = replay;
        self
    }

    /// The replay store.
    pub fn replay_store(&self) -> &Arc<dyn ReplayStore> {
        &self.replay
    }

    /// Also records proofs in `shared` (after the per-process store), and when it does not
    /// answer, does what `fallback` says.
    pub fn with_shared_replay_store(
        mut self,
        shared: Arc<dyn SharedReplayStore>,
        fallback: DpopReplayFallback,
    ) -> DpopPolicy {
        self.shared_replay = Some((shared, fallback));
        self
    }

    /// The shared replay store and its fallback, when there is one.
    pub fn shared_replay_store(&self) -> Option<(&Arc<dyn SharedReplayStore>, DpopReplayFallback)> {
        self.shared_replay
            .as_ref()
            .map(|(store, fallback)| (store, *fallback))
    }

    /// The mode for a token of `issuer` (the configured issuer, a template for a tenant) on a
    /// route with `route_mode`.
    pub fn mode(&self, issuer: &str, route_mode: Option<DpopMode>) -> DpopMode {
        let issuer_mode = self
            .issuer_modes
            .get(issuer)
            .copied()
            .unwrap_or(self.default_mode);
        route_mode.map_or(issuer_mode, |route| issuer_mode.combine(route))
    }

    /// The accepted proof algorithms, space-separated (the challenge's `algs`).
    pub fn algs(&self) -> String {
        self.algorithms
            .iter()
            .map(Algorithm::name)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks how a verified token was presented against its binding and `mode` (see the
    /// module documentation); for a DPoP-bound token, checks its proof and records it (and says
    /// where).
    pub async fn check(
        &self,
        mode: DpopMode,
        scheme: Scheme,
        verified: &Verified,
        request: &ProofRequest<'_>,
    ) -> Result<ReplayRecord, DpopRefusal> {
        let (jkt, x5t) = match binding(verified) {
            Binding::Unchecked(what) => return Err(DpopRefusal::UncheckedBinding(what)),
            Binding::None => (None, None),
            Binding::Bound { jkt, x5t } => (jkt, x5t),
        };
        if let Some(x5t) = x5t {
            self.certificates
                .check(x5t, request.client_certificate, request.headers)
                .map_err(DpopRefusal::Certificate)?;
        }
        let jkt = match (jkt, scheme) {
            // A certificate-bound token is sender-constrained: it passes `required` as a
            // bearer token once its certificate matched.
            (None, Scheme::Bearer) if x5t.is_some() => return Ok(ReplayRecord::NoProof),
            (None, Scheme::Bearer) => {
                return match mode {
                    DpopMode::Required => Err(DpopRefusal::Required),
                    DpopMode::Off | DpopMode::Allowed => Ok(ReplayRecord::NoProof),
                }
            }
            (_, Scheme::Dpop) if mode == DpopMode::Off => return Err(DpopRefusal::Off),
            (Some(_), Scheme::Bearer) => return Err(DpopRefusal::Downgrade),
            (None, Scheme::Dpop) => return Err(DpopRefusal::NotBound),
            (Some(jkt), Scheme::Dpop) => jkt,
        };
        let mut proofs = request.headers.get_all(&PROOF_HEADER_NAME);
        let proof = proofs.next().ok_or(DpopRefusal::NoProof)?;
        if proofs.next().is_some() {
            return Err(DpopRefusal::SeveralProofs);
        }
        let origin = self.public_origin.as_deref().or(request.origin).ok_or_else(|| {
            DpopRefusal::UnknownUri(
                "the URI the client used is not known (the proxy must send X-Forwarded-Proto and X-Forwarded-Host, or set [server] public_url)".into(),
            )
        })?;
        let path = request.target.split(['?', '#']).next().unwrap_or_default();
        let uri = format!("{origin}{path}");
        let context = ProofContext {
            method: request.method,
            uri: &uri,
            access_token: Some(request.token),
            jkt: Some(jkt),
            now: request.now,
            iat_window: self.iat_window,
            nonce: None,
            algorithms: self.algorithms,
            keys: Some(&*self.proof_keys),
        };
        let nonces = match &self.nonces {
            None => None,
            Some(nonces) => Some(
                nonces
                    .at(request.now)
                    .ok_or(DpopRefusal::Proof(ProofError::NonceRequired))?,
            ),
        };
        let checked = match &nonces {
            None => dpop::check_proof(proof, &context),
            Some((current, previous)) => {
                dpop::check_proof_with_nonces(proof, &context, current, previous.as_deref())
            }
        }
        .map_err(DpopRefusal::Proof)?;
        // A proof can be replayed while its iat is inside the window of some later now: until
        // iat + window at most, itself at most now + 2 × window.
        let keep_until = checked.iat.saturating_add(self.iat_window);
        match self
            .replay
            .first_use(&checked.jkt, &checked.jti, keep_until, request.now)
        {
            Ok(true) => {}
            Ok(false) => return Err(DpopRefusal::Replayed),
            Err(full) => return Err(DpopRefusal::StoreFull(full)),
        }
        let Some((shared, fallback)) = &self.shared_replay else {
            return Ok(ReplayRecord::Local);
        };
        match shared
            .first_use(&checked.jkt, &checked.jti, keep_until)
            .await
        {
            Ok(true) => Ok(ReplayRecord::Shared),
            Ok(false) => Err(DpopRefusal::Replayed),
            Err(why) => match fallback {
                DpopReplayFallback::Local => {
                    tracing::debug!(%why, "DPoP replay checked per process only");
                    Ok(ReplayRecord::LocalFallback)
                }
                DpopReplayFallback::FailClosed => {
                    tracing::debug!(%why, "DPoP proof refused: the shared replay store is unavailable");
                    Err(DpopRefusal::ReplayStoreUnavailable(why))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_combine_strictest_first() {
        use DpopMode::{Allowed, Off, Required};
        assert_eq!(Allowed.combine(Allowed), Allowed);
        assert_eq!(Allowed.combine(Off), Off);
        assert_eq!(Off.combine(Required), Required);
        assert_eq!(Required.combine(Allowed), Required);
        assert_eq!("required".parse::<DpopMode>(), Ok(Required));
        assert!("on".parse::<DpopMode>().is_err());
    }

    #[test]
    fn replay_cache_remembers_until_the_deadline_and_fails_closed_when_full() {
        let cache = LocalReplayCache::new(2);
        assert_eq!(cache.first_use("k", "a", 100, 0), Ok(true));
        assert_eq!(cache.first_use("k", "a", 100, 50), Ok(false));
        assert_eq!(cache.first_use("other", "a", 100, 50), Ok(true));
        // Full of proofs that could still be replayed: refuse rather than forget one.
        assert_eq!(cache.first_use("k", "b", 110, 60), Err(ReplayStoreFull));
        assert_eq!(cache.first_use("k", "a", 100, 60), Ok(false));
        // Past the deadline they are forgotten and there is room again.
        assert_eq!(cache.first_use("k", "b", 200, 101), Ok(true));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn origins() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(forwarded_origin(&headers), None);
        headers.insert("x-forwarded-proto", http::HeaderValue::from_static("https"));
        headers.insert(
            "x-forwarded-host",
            http::HeaderValue::from_static("api.example.com"),
        );
        assert_eq!(
            forwarded_origin(&headers).as_deref(),
            Some("https://api.example.com")
        );
        headers.append(
            "x-forwarded-host",
            http::HeaderValue::from_static("evil.example"),
        );
        assert_eq!(forwarded_origin(&headers), None);
        assert_eq!(origin("ftp", "h"), None);
        assert_eq!(origin("http", "h/x"), None);
        assert_eq!(
            public_origin("https://api.example.com:8443/").as_deref(),
            Ok("https://api.example.com:8443")
        );
        assert!(public_origin("https://api.example.com/v1").is_err());
        assert!(public_origin("api.example.com").is_err());
    }

    #[test]
    fn section_validation() {
        let bad_window = DpopSection {
            iat_window: 0,
            ..DpopSection::default()
        };
        assert_eq!(
            DpopPolicy::from_section(&bad_window).unwrap_err(),
            DpopConfigError::Window(0)
        );
        let hmac = DpopSection {
            algorithms: vec!["HS256".into()],
            ..DpopSection::default()
        };
        assert!(DpopPolicy::from_section(&hmac).is_err());
        let es = DpopSection {
            algorithms: vec!["ES256".into(), "EdDSA".into()],
            ..DpopSection::default()
        };
        assert_eq!(DpopPolicy::from_section(&es).unwrap().algs(), "ES256 EdDSA");
    }
}
