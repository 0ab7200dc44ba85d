//! The decision for one request, shared by the tower layer, the forward-auth endpoint and the
//! reverse proxy: normalise the path, find the route, find the token, verify it (through the
//! verified-token cache), check the route's scopes, and produce either the identity headers or an
//! RFC 6750 denial.

use crate::answer::Denial;
use crate::bearer::{self, BearerToken, TokenLocations};
use crate::cache::TokenCache;
use crate::hygiene;
use crate::identity::IdentityHeaders;
use crate::metrics::GatewayMetrics;
use crate::path::{self, PathPolicy};
use crate::routes::{Requirement, RouteTable};
use http::{HeaderMap, HeaderName, HeaderValue};
use jwtgate_core::Verified;
use jwtgate_keys::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Allowed cross-origin callers; preflight requests from them pass without a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins (exact, e.g. `http://localhost:3000`), or `*`.
    pub origins: Vec<String>,
    /// Allowed methods for preflight answers.
    pub methods: Vec<String>,
    /// Allowed request headers for preflight answers.
    pub headers: Vec<String>,
    /// Preflight cache lifetime in seconds.
    pub max_age: u64,
}

impl Cors {
    /// True when `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// A verified token with its identity headers, as the token cache keeps it.
#[derive(Debug, Clone)]
pub struct CachedPass {
    /// The verified token.
    pub verified: Arc<Verified>,
    /// Its identity headers, sanitised.
    pub identity: Arc<[(HeaderName, HeaderValue)]>,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Let it through, with these identity headers (none for public routes).
    Allow {
        /// Headers to add for the upstream.
        identity: Arc<[(HeaderName, HeaderValue)]>,
        /// The verified token, when one was required.
        verified: Option<Arc<Verified>>,
    },
    /// A CORS preflight from an allowed origin: answer it (or pass it on) without a token.
    Preflight,
    /// Refuse it.
    Deny(Denial),
}

/// Which front end asks for a decision: the boundary checks on headers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontEnd {
    /// jwtgate passes the request on itself (tower layer, reverse proxy).
    Inline,
    /// A proxy asks through the forward-auth endpoint and passes the request on.
    ForwardAuth,
}

/// Everything needed to decide: keys and policies, routes, token locations, identity headers.
pub struct Gatekeeper {
    registry: Registry,
    routes: RouteTable,
    locations: TokenLocations,
    realm: String,
    identity: IdentityHeaders,
    cache: Option<TokenCache<CachedPass>>,
    cors: Option<Cors>,
    path_policy: PathPolicy,
    metrics: GatewayMetrics,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper")
            .field("routes", &self.routes)
            .field("realm", &self.realm)
            .field("path_policy", &self.path_policy)
            .finish_non_exhaustive()
    }
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Gatekeeper {
    /// A gatekeeper with default token locations (header only), identity headers and realm
    /// `jwtgate`, no cache, no CORS and the strict path policy; adjust with the `with_*` methods.
    pub fn new(registry: Registry, routes: RouteTable) -> Gatekeeper {
        Gatekeeper {
            registry,
            routes,
            locations: TokenLocations::default(),
            realm: "jwtgate".to_owned(),
            identity: IdentityHeaders::default(),
            cache: None,
            cors: None,
            path_policy: PathPolicy::default(),
            metrics: GatewayMetrics::default(),
        }
    }

    /// Sets the realm in challenges.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Sets where tokens may come from besides the `Authorization` header.
    pub fn with_locations(mut self, locations: TokenLocations) -> Self {
        self.locations = locations;
        self
    }

    /// Sets the identity headers.
    pub fn with_identity(mut self, identity: IdentityHeaders) -> Self {
        self.identity = identity;
        self
    }

    /// Enables the verified-token cache.
    pub fn with_cache(mut self, cache: TokenCache<CachedPass>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Enables CORS.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Sets which risky path features (encoded slashes, `;`, …) pass as data instead of being
    /// refused.
    pub fn with_path_policy(mut self, policy: PathPolicy) -> Self {
        self.path_policy = policy;
        self
    }

    /// The key registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The routes.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Where tokens are read besides the `Authorization` header.
    pub fn locations(&self) -> &TokenLocations {
        &self.locations
    }

    /// The identity headers.
    pub fn identity(&self) -> &IdentityHeaders {
        &self.identity
    }

    /// The CORS settings, if enabled.
    pub fn cors(&self) -> Option<&Cors> {
        self.cors.as_ref()
    }

    /// The path policy requests are normalised under.
    pub fn path_policy(&self) -> &PathPolicy {
        &self.path_policy
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The counters.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// Decides for `method` on `target` (path and query as sent) with `headers`, at `now`, for a
    /// request that jwtgate itself passes on (tower layer, reverse proxy): client spellings of
    /// the identity headers are removed later ([`crate::apply_identity`]), so only a
    /// `Connection` header naming a protected header is refused here.
    pub async fn decide(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Decision {
        self.decide_as(FrontEnd::Inline, method, target, headers, now)
            .await
    }

    /// Decides for the original request of a forward-auth check. The proxy forwards the
    /// client's request itself, so jwtgate cannot remove anything from it: a request carrying a
    /// variant spelling of an identity header, or a method-override header naming another
    /// method than the checked one, is refused (`invalid_request`).
    pub async fn decide_forward_auth(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Decision {
        self.decide_as(FrontEnd::ForwardAuth, method, target, headers, now)
            .await
    }

    /// The boundary checks on the request's headers ([`crate::hygiene`]), before any token work.
    fn boundary_refusal(
        &self,
        front: FrontEnd,
        method: &str,
        headers: &HeaderMap,
    ) -> Option<Denial> {
        let names = self.identity.names();
        if let Some(named) = hygiene::connection_names_protected(headers, names.iter().copied()) {
            return Some(Denial::invalid_request(
                &self.realm,
                &format!("the Connection header names {named:?}, a header only the gateway sets"),
            ));
        }
        if front == FrontEnd::ForwardAuth {
            if let Some(spoofed) = hygiene::spoofed_spelling(headers, names.iter().copied()) {
                return Some(Denial::invalid_request(
                    &self.realm,
                    &format!("the request carries {spoofed:?}, another spelling of an identity header the gateway sets"),
                ));
            }
            if let Some((name, value)) = hygiene::method_override_mismatch(headers, method) {
                return Some(Denial::invalid_request(
                    &self.realm,
                    &format!("{name}: {value:?} asks for another method than the {method} that is checked"),
                ));
            }
        }
        None
    }

    async fn decide_as(
        &self,
        front: FrontEnd,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Decision {
        let decision = match self.boundary_refusal(front, method, headers) {
            Some(denial) => Decision::Deny(denial),
            None => self.decide_inner(method, target, headers, now).await,
        };
        self.record(method, target, &decision);
        decision
    }

    /// Refuses a request the front end could not even read (e.g. an unusable forward-auth
    /// header) as `invalid_request`, counted like every other decision.
    pub fn refuse_request(&self, method: &str, target: &str, why: &str) -> Decision {
        let decision = Decision::Deny(Denial::invalid_request(&self.realm, why));
        self.record(method, target, &decision);
        decision
    }

    /// Counts a decision and logs a refusal.
    fn record(&self, method: &str, target: &str, decision: &Decision) {
        match decision {
            Decision::Allow { verified, .. } => {
                let reason = if verified.is_some() {
                    "verified"
                } else {
                    "public"
                };
                self.metrics.decision("allow", 200, reason);
            }
            Decision::Preflight => self.metrics.decision("allow", 204, "cors_preflight"),
            Decision::Deny(denial) => {
                self.metrics
                    .decision("deny", denial.status.as_u16(), denial.kind);
                tracing::info!(
                    method,
                    path = target.split('?').next().unwrap_or_default(),
                    status = denial.status.as_u16(),
                    reason = denial.kind,
                    "denied"
                );
            }
        }
    }

    async fn decide_inner(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Decision {
        let path = match path::normalize_with(target, &self.path_policy) {
            Ok(path) => path,
            Err(error) => {
                return Decision::Deny(Denial::invalid_request(&self.realm, &error.to_string()))
            }
        };
        if method == "OPTIONS" && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let origin = headers
                .get(http::header::ORIGIN)
                .and_then(|o| o.to_str().ok());
            if let (Some(cors), Some(origin)) = (&self.cors, origin) {
                if cors.allows(origin) {
                    return Decision::Preflight;
                }
            }
        }
        let requirement = match self.routes.requirement(method, &path) {
            Requirement::Public => {
                return Decision::Allow {
                    identity: Arc::from([]),
                    verified: None,
                }
            }
            Requirement::Deny => return Decision::Deny(Denial::forbidden_route(&self.realm)),
            Requirement::Token(scopes) => scopes,
        };
        let query = target.split_once('?').map(|(_, q)| q);
        let token = match bearer::extract(headers, query, &self.locations) {
            BearerToken::Missing => return Decision::Deny(Denial::missing_token(&self.realm)),
            BearerToken::Invalid(why) => {
                return Decision::Deny(Denial::invalid_request(&self.realm, why))
            }
            BearerToken::Present(token) => token,
        };
        let pass = match self.verify_with_identity(token.as_bytes(), now).await {
            Ok(pass) => pass,
            Err(rejection) => {
                tracing::debug!(token = %jwtgate_core::crypto::fingerprint(token.as_bytes()), %rejection, "token rejected");
                return Decision::Deny(Denial::from_rejection(&self.realm, &rejection));
            }
        };
        if let Err(rejection) = pass.verified.require(requirement) {
            return Decision::Deny(Denial::from_rejection(&self.realm, &rejection));
        }
        Decision::Allow {
            identity: pass.identity,
            verified: Some(pass.verified),
        }
    }

    /// Verifies a token through the cache.
    pub async fn verify(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<Verified>, jwtgate_core::Rejection> {
        Ok(self.verify_with_identity(token, now).await?.verified)
    }

    /// Verifies a token through the cache, with its finished identity headers (computed once per
    /// token and cached with it).
    async fn verify_with_identity(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<CachedPass, jwtgate_core::Rejection> {
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(token, now) {
                self.metrics.cache_lookup(true);
                return Ok(hit);
            }
            self.metrics.cache_lookup(false);
        }
        let started = Instant::now();
        let result = self.registry.verify(token, now).await;
        self.metrics.verify_latency(started.elapsed());
        let verified = Arc::new(result?);
        let pass = CachedPass {
            identity: self.identity.headers_for(&verified).into(),
            verified,
        };
        if let Some(cache) = &self.cache {
            cache.insert_with(token, pass.clone(), &pass.verified, now);
        }
        Ok(pass)
    }
}
