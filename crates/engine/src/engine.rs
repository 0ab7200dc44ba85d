//! The one decision every front end asks for: normalise the path, find the route, check the
//! request's headers at the boundary, find the token, verify it (through the verified-token
//! cache), check the route's scopes — and return an [`Outcome`] that a front end only renders
//! (an HTTP answer, an IAM policy, a gRPC check response).

use crate::bearer::{self, BearerToken, TokenLocations};
use crate::denial::Denial;
use crate::dpop::{DpopMode, DpopPolicy, DpopRefusal, ProofRequest, Scheme};
use crate::hygiene::{self, ForwardAuthRefusal};
use crate::identity::IdentityHeaders;
use crate::mcp::{ProtectedResource, SessionBindings};
use crate::metrics::Metrics;
use crate::mtls::CertificateThumbprint;
use crate::path::{self, PathPolicy};
use crate::request_headers::RequestHeaders;
use crate::routes::{Requirement, RouteTable};
use crate::token_cache::TokenCache;
use http::{HeaderName, HeaderValue};
use jwtgate_core::{ScopeRequirement, Verified};
use jwtgate_keys::Registry;
use jwtgate_revocation::Revocations;
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

/// A verified token with its identity headers (built for each request from the token the cache
/// keeps: cheaper in memory than keeping them, see `token_cache`).
#[derive(Debug, Clone)]
pub struct CachedPass {
    /// The verified token.
    pub verified: Arc<Verified>,
    /// Its identity headers, sanitised.
    pub identity: Vec<(HeaderName, HeaderValue)>,
}

/// Which front end asks: the boundary checks on headers, and where the token may be, differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// jwtgate passes the request on itself (tower layer, reverse proxy): client spellings of
    /// the identity headers are removed later, so only a `Connection` header naming a protected
    /// header is refused.
    Inline,
    /// A proxy asks through the forward-auth endpoint and passes the request on itself:
    /// jwtgate cannot remove anything from it, so a variant spelling of an identity header, or
    /// a method override naming another method, is refused.
    ForwardAuth,
    /// Envoy's external authorization (gRPC `Check`): Envoy forwards the request itself but
    /// applies the header changes of the answer, so — as with `Inline` — client spellings of the
    /// identity headers and override headers are removed (`headers_to_remove`) rather than
    /// refused, and only a `Connection` header naming a protected header is refused.
    ExtAuthz,
    /// An API Gateway Lambda authorizer event: API Gateway forwards the request, jwtgate only
    /// answers allow or deny (its `context` comes from the token: an allow carries no identity
    /// headers).
    Authorizer,
}

/// Where the bearer token of a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenInput<'a> {
    /// Read it from the headers (and the configured cookie or query parameter).
    FromRequest,
    /// The front end already has it (an API Gateway `TOKEN` event's `authorizationToken`).
    Given(BearerToken<'a>),
}

/// The protocol-neutral view of one request.
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    /// Which front end asks.
    pub front: FrontEnd,
    /// The method as sent (`GET`, …).
    pub method: &'a str,
    /// The path and query as sent (`/api/users?x=1`).
    pub target: &'a str,
    /// The request's headers: a `HeaderMap` or the fields as received
    /// ([`crate::request_headers`]; names are case-insensitive).
    pub headers: RequestHeaders<'a>,
    /// What precedes `target`'s path in the URI the client used — `scheme://host[:port]`, plus
    /// any prefix the front end strips (an API Gateway stage) — when the front end knows it: a
    /// DPoP proof's `htu` must equal it followed by the path. `None` makes every DPoP proof a
    /// refusal.
    pub origin: Option<&'a str>,
    /// Where the token is.
    pub token: TokenInput<'a>,
    /// The client certificate the TLS listener verified (RFC 8705 certificate-bound tokens),
    /// when jwtgate terminates TLS with client certificates; `None` otherwise.
    pub client_certificate: Option<CertificateThumbprint>,
    /// The time of the decision, Unix seconds.
    pub now: i64,
}

/// The request body, as far as the front end has it. Only an MCP route's POST needs it
/// ([`crate::mcp`]); the engine asks for it ([`Inspection::ReadBody`]) only once the token and
/// the route's scopes have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// This front end never sees bodies (forward-auth, gRPC ext_authz, Lambda): an MCP route's
    /// POST is refused.
    Unavailable,
    /// The front end can read it when asked.
    Deferred,
    /// The whole body, exactly as it will be forwarded.
    Read(&'a [u8]),
    /// The body is longer than the limit the engine asked for.
    TooLarge,
}

/// The answer of [`Engine::decide_with_body`]: a decision, or a request for the body first.
#[derive(Debug, Clone)]
pub enum Inspection {
    /// The decision.
    Decided(Outcome),
    /// Read the body (at most `limit` bytes: a longer one is [`RequestBody::TooLarge`]) and ask
    /// again with it.
    ReadBody {
        /// The largest body inspected.
        limit: usize,
    },
}

/// A request that may pass.
#[derive(Debug, Clone)]
pub struct Allow {
    /// Headers for the upstream: the verified identity (none for public routes, nor for the
    /// Lambda authorizer, whose context comes from the token).
    pub identity: Vec<(HeaderName, HeaderValue)>,
    /// The verified token, when the route needed one.
    pub verified: Option<Arc<Verified>>,
    /// The normalised path that was checked: what a proxy must send upstream.
    pub path: String,
    /// The server nonce for the client's next DPoP proof (`DPoP-Nonce`, RFC 9449 §8.2), when a
    /// proof was checked and nonces are required.
    pub dpop_nonce: Option<String>,
    /// An MCP route's request: a front end that sees the upstream's answer binds the session
    /// it names to the token ([`Engine::bind_mcp_session`]).
    pub mcp: bool,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Let it through.
    Allow(Allow),
    /// A CORS preflight from an allowed origin: answer it (or pass it on) without a token.
    Preflight,
    /// Refuse it.
    Deny(Denial),
}

/// Everything needed to decide: keys and policies, routes, token locations, path rules,
/// identity headers, the verified-token cache, CORS and the counters.
pub struct Engine {
    registry: Registry,
    routes: RouteTable,
    locations: TokenLocations,
    paths: PathPolicy,
    realm: Arc<str>,
    identity: IdentityHeaders,
    cache: Option<TokenCache>,
    cors: Option<Cors>,
    issuer_scopes: Vec<(String, ScopeRequirement)>,
    issuer_rules: Vec<crate::rules::IssuerRules>,
    metrics: Arc<Metrics>,
    revocation: Option<Arc<Revocations>>,
    dpop: DpopPolicy,
    resource: Option<Arc<ProtectedResource>>,
    mcp_sessions: SessionBindings,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("routes", &self.routes)
            .field("realm", &self.realm)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Engine {
    /// An engine with default token locations (header only), strict path rules, default
    /// identity headers and realm `jwtgate`, no cache and no CORS; adjust with the `with_*`
    /// methods.
    pub fn new(registry: Registry, routes: RouteTable) -> Engine {
        Engine {
            registry,
            routes,
            locations: TokenLocations::default(),
            paths: PathPolicy::default(),
            realm: Arc::from("jwtgate"),
            identity: IdentityHeaders::default(),
            cache: None,
            cors: None,
            issuer_scopes: Vec::new(),
            issuer_rules: Vec::new(),
            metrics: Arc::default(),
            revocation: None,
            dpop: DpopPolicy::default(),
            resource: None,
            mcp_sessions: SessionBindings::default(),
        }
    }

    /// Sets the realm in challenges.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Arc::from(realm.into());
        self
    }

    /// Sets where tokens may come from besides the `Authorization` header.
    pub fn with_locations(mut self, locations: TokenLocations) -> Self {
        self.locations = locations;
        self
    }

    /// Sets which risky path features (encoded slashes, `;`, …) pass as data instead of being
    /// refused (strict by default).
    pub fn with_path_policy(mut self, paths: PathPolicy) -> Self {
        self.paths = paths;
        self
    }

    /// Sets the identity headers.
    pub fn with_identity(mut self, identity: IdentityHeaders) -> Self {
        self.identity = identity;
        self
    }

    /// Enables the verified-token cache.
    pub fn with_cache(mut self, cache: TokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Enables CORS.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Scopes every token of an issuer needs, on every route: checked after verification like a
    /// route's scopes (a verified token short of them is `insufficient_scope`, and stays cached).
    pub fn with_issuer_scopes(mut self, scopes: Vec<(String, ScopeRequirement)>) -> Self {
        self.issuer_scopes = scopes;
        self
    }

    /// Each issuer's audiences and claim conditions ([`crate::rules::issuer_rules`]), checked
    /// after verification on every request, cache hits included.
    pub fn with_issuer_rules(mut self, rules: Vec<crate::rules::IssuerRules>) -> Self {
        self.issuer_rules = rules;
        self
    }

    /// Counts into `metrics` (shared with an engine this one replaces, so a reload keeps them).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Refuses verified tokens (fresh or cached) that a rule of `revocation` matches; share one
    /// [`Revocations`] between an engine and the one replacing it, like the counters. When the
    /// rules come from Redis, DPoP proofs are recorded there too (the shared replay store).
    pub fn with_revocation(mut self, revocation: Arc<Revocations>) -> Self {
        if let Some(replay) = revocation.dpop_replay() {
            let fallback = replay.fallback();
            self.dpop = self.dpop.with_shared_replay_store(replay.clone(), fallback);
        }
        self.revocation = Some(revocation);
        self
    }

    /// Sets the DPoP modes and proof checks (default: `allowed` everywhere, a per-process replay
    /// cache); a shared replay store already set (by [`Engine::with_revocation`]) stays unless
    /// `dpop` brings its own.
    pub fn with_dpop(mut self, dpop: DpopPolicy) -> Self {
        let shared = self
            .dpop
            .shared_replay_store()
            .map(|(store, fallback)| (store.clone(), fallback));
        self.dpop = match (dpop.shared_replay_store().is_some(), shared) {
            (false, Some((store, fallback))) => dpop.with_shared_replay_store(store, fallback),
            _ => dpop,
        };
        self
    }

    /// Fronts a protected resource (an MCP server): every refusal names its metadata
    /// (`resource_metadata`), and MCP routes inspect JSON-RPC bodies up to its limit.
    pub fn with_resource(mut self, resource: ProtectedResource) -> Self {
        self.resource = Some(Arc::new(resource));
        self
    }

    /// Binds an MCP session the upstream named (`Mcp-Session-Id` in its answer to an allowed
    /// request) to the token's principal: a later request naming it with another principal's
    /// token is refused.
    pub fn bind_mcp_session(&self, session: &str, verified: &Verified) {
        self.mcp_sessions.bind(session, verified);
    }

    /// The protected resource, when configured.
    pub fn resource(&self) -> Option<&Arc<ProtectedResource>> {
        self.resource.as_ref()
    }

    /// True when a decision for an API Gateway authorizer ([`FrontEnd::Authorizer`]) may read
    /// the request header `name` (any case): the token's `Authorization` and cookie, `DPoP`,
    /// a CORS preflight's `Origin` and `Access-Control-Request-Method`, an MCP route's body and
    /// session headers, and a configured client-certificate header. A front end that has to
    /// build a header map for each request (the Lambda's events) can leave every other header
    /// out. Keep it beside the reads it names: a header read for an authorizer's decision and
    /// missing here would be invisible to the Lambda.
    #[inline]
    pub fn authorizer_reads_header(&self, name: &[u8]) -> bool {
        const READ: [&str; 10] = [
            "authorization",
            "cookie",
            crate::dpop::PROOF_HEADER,
            "origin",
            "access-control-request-method",
            "content-length",
            "content-type",
            "content-encoding",
            "transfer-encoding",
            crate::mcp::SESSION_HEADER,
        ];
        // The lengths of the names above (all under 64 bytes): most headers of an event have
        // another length and are answered with one test (an authorizer asks for each).
        const LENGTHS: u64 = {
            let mut lengths = 0;
            let mut i = 0;
            while i < READ.len() {
                lengths |= 1 << READ[i].len();
                i += 1;
            }
            lengths
        };
        let maybe_read = name.len() < 64 && LENGTHS >> name.len() & 1 == 1;
        maybe_read
            && READ
                .iter()
                .any(|read| read.as_bytes().eq_ignore_ascii_case(name))
            || self
                .dpop
                .certificate_source()
                .header()
                .is_some_and(|header| header.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The DPoP settings.
    pub fn dpop(&self) -> &DpopPolicy {
        &self.dpop
    }

    /// The revocation rules, when enabled.
    pub fn revocation(&self) -> Option<&Arc<Revocations>> {
        self.revocation.as_ref()
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

    /// The path rules requests are normalised under.
    pub fn path_policy(&self) -> &PathPolicy {
        &self.paths
    }

    /// The identity headers.
    pub fn identity(&self) -> &IdentityHeaders {
        &self.identity
    }

    /// Every header only the gateway's side may set: the identity headers and the configured
    /// client-certificate header. A client's copy in any spelling (any case, `_` for `-`) is
    /// removed before upstream, or refused where it cannot be removed (forward-auth).
    pub fn protected_headers(&self) -> impl Iterator<Item = &HeaderName> + Clone + '_ {
        self.identity
            .names()
            .chain(self.dpop.certificate_source().header())
    }

    /// The CORS settings, if enabled.
    pub fn cors(&self) -> Option<&Cors> {
        self.cors.as_ref()
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Decides for one request whose body this front end does not see, counts the outcome and
    /// logs a refusal.
    pub async fn decide(&self, request: &RequestView<'_>) -> Outcome {
        match self
            .decide_with_body(request, RequestBody::Unavailable)
            .await
        {
            Inspection::Decided(outcome) => outcome,
            // Only a deferred body is asked for; refuse rather than panic if that ever changes.
            Inspection::ReadBody { .. } => self.refuse(
                request.method,
                request.target,
                Denial::body_unavailable(&self.realm),
            ),
        }
    }

    /// Decides for one request, with its body as far as the front end has it: an MCP route's
    /// POST with a [`RequestBody::Deferred`] body gets [`Inspection::ReadBody`] once everything
    /// else has passed; ask again with the body. Decisions are counted and refusals logged;
    /// requests for the body are not.
    pub async fn decide_with_body(
        &self,
        request: &RequestView<'_>,
        body: RequestBody<'_>,
    ) -> Inspection {
        let outcome = match self.boundary_refusal(request) {
            Some(denial) => Outcome::Deny(denial),
            None => match self.decide_request(request, body).await {
                Ok(outcome) => outcome,
                Err(limit) => return Inspection::ReadBody { limit },
            },
        };
        let outcome = match (outcome, &self.resource) {
            (Outcome::Deny(denial), Some(resource)) => {
                let scopes = self.route_scopes(request);
                Outcome::Deny(
                    denial.with_resource_metadata(Arc::from(resource.metadata_url()), scopes),
                )
            }
            (outcome, _) => outcome,
        };
        self.record(request.method, request.target, &outcome);
        Inspection::Decided(outcome)
    }

    /// The scopes the route of `request` needs, as a challenge lists them (for a refusal without
    /// a token when a protected resource is configured).
    fn route_scopes(&self, request: &RequestView<'_>) -> Option<String> {
        let path = path::normalize_with(request.target, &self.paths).ok()?;
        match self.routes.rule(request.method, &path).0 {
            Requirement::Token(scopes) => Some(scopes.scopes().join(" ")),
            _ => None,
        }
    }

    /// Refuses a request the front end could not even read (for example a forward-auth check
    /// whose original-request headers are unusable), counted like every other decision.
    pub fn refuse(&self, method: &str, target: &str, denial: Denial) -> Outcome {
        let outcome = Outcome::Deny(denial);
        self.record(method, target, &outcome);
        outcome
    }

    /// The boundary checks on the request's headers ([`crate::hygiene`]), before any token work.
    fn boundary_refusal(&self, request: &RequestView<'_>) -> Option<Denial> {
        let names = self.protected_headers();
        let headers = request.headers;
        if request.front != FrontEnd::Authorizer {
            if let Some(named) = hygiene::connection_names_protected(headers, names.clone()) {
                return Some(Denial::invalid_request(
                    &self.realm,
                    format!(
                        "the Connection header names {named:?}, a header only the gateway sets"
                    ),
                ));
            }
        }
        if request.front == FrontEnd::ForwardAuth {
            let why = match hygiene::forward_auth_refusal(headers, names, request.method)? {
                ForwardAuthRefusal::IdentitySpelling(spoofed) => format!(
                    "the request carries {spoofed:?}, another spelling of an identity header the gateway sets"
                ),
                ForwardAuthRefusal::PathOverride(name) => format!(
                    "the request carries {name:?}, which makes some servers serve another path than the one checked"
                ),
                ForwardAuthRefusal::MethodOverride(name, value) => format!(
                    "{name}: {value:?} asks for another method than the {} that is checked",
                    request.method
                ),
            };
            return Some(Denial::invalid_request(&self.realm, why));
        }
        None
    }

    /// The decision, or `Err(limit)`: read the body (at most `limit` bytes) and ask again.
    async fn decide_request(
        &self,
        request: &RequestView<'_>,
        body: RequestBody<'_>,
    ) -> Result<Outcome, usize> {
        let path = match path::normalize_with(request.target, &self.paths) {
            Ok(path) => path,
            Err(error) => {
                return Ok(Outcome::Deny(Denial::invalid_request(
                    &self.realm,
                    error.to_string(),
                )))
            }
        };
        let headers = request.headers;
        if request.method == "OPTIONS"
            && headers.contains(&http::header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let origin = headers
                .get(&http::header::ORIGIN)
                .and_then(crate::request_headers::text);
            if let (Some(cors), Some(origin)) = (&self.cors, origin) {
                if cors.allows(origin) {
                    return Ok(Outcome::Preflight);
                }
            }
        }
        let (requirement, route_policy) = self.routes.rule(request.method, &path);
        let requirement = match requirement {
            Requirement::Public => {
                return Ok(Outcome::Allow(Allow {
                    identity: Vec::new(),
                    verified: None,
                    path,
                    dpop_nonce: None,
                    mcp: false,
                }))
            }
            Requirement::Deny => return Ok(Outcome::Deny(Denial::no_route(&self.realm))),
            Requirement::Token(scopes) => scopes,
        };
        let found = match &request.token {
            TokenInput::Given(token) => *token,
            TokenInput::FromRequest => {
                let query = request.target.split_once('?').map(|(_, q)| q);
                bearer::extract(headers, query, &self.locations)
            }
        };
        // Before the token is verified its issuer is unknown: refusals carry a DPoP challenge
        // when the request used DPoP or DPoP is required by default.
        let default_mode = self.dpop.mode("", route_policy.dpop());
        let early = |denial: Denial, scheme: Scheme| {
            if scheme == Scheme::Dpop || default_mode == DpopMode::Required {
                denial.with_dpop_challenge(self.dpop.algs(), default_mode != DpopMode::Required)
            } else {
                denial
            }
        };
        let (token, scheme) = match found {
            BearerToken::Missing => {
                return Ok(Outcome::Deny(early(
                    Denial::missing_token(&self.realm),
                    Scheme::Bearer,
                )))
            }
            BearerToken::Invalid(why) => {
                return Ok(Outcome::Deny(early(
                    Denial::invalid_request(&self.realm, why),
                    Scheme::Bearer,
                )))
            }
            BearerToken::Present(token) => (token, Scheme::Bearer),
            BearerToken::Dpop(token) => (token, Scheme::Dpop),
        };
        // An authorizer renders its answer from the token: no identity headers to build.
        let identity = request.front != FrontEnd::Authorizer;
        let pass = match self
            .verify_with_identity(token, request.now, identity)
            .await
        {
            Ok(pass) => pass,
            Err(rejection) => {
                tracing::debug!(token = %jwtgate_core::crypto::fingerprint(token), %rejection, "token rejected");
                return Ok(Outcome::Deny(early(
                    Denial::from_rejection(&self.realm, &rejection),
                    scheme,
                )));
            }
        };
        // An MCP route's POST needs its body: ask for it now that the token is genuine, and
        // before any check with a side effect (the DPoP replay store) runs on the first pass.
        if body == RequestBody::Deferred && request.method == "POST" && route_policy.mcp().is_some()
        {
            return Err(self.mcp_body_limit());
        }
        // Per-request checks on the verified token (cached or not): the route's issuers and
        // audiences, then scopes, then conditions. Issuer settings are found by the configured
        // issuer (a template for a tenant's token).
        let issuer = self
            .registry
            .configured_issuer(pass.verified.issuer())
            .unwrap_or(pass.verified.issuer());
        let mode = self.dpop.mode(issuer, route_policy.dpop());
        let proof_request = ProofRequest {
            method: request.method,
            origin: request.origin,
            target: request.target,
            headers,
            token,
            client_certificate: request.client_certificate.as_ref(),
            now: request.now,
        };
        let checked = self
            .dpop
            .check(mode, scheme, &pass.verified, &proof_request)
            .await;
        if let Ok(crate::dpop::ReplayRecord::LocalFallback) = checked {
            self.metrics.dpop_replay_fallback();
        }
        if let Err(refusal) = checked {
            tracing::debug!(%refusal, "DPoP refusal");
            let nonce = (refusal.error_code() == "use_dpop_nonce")
                .then(|| self.dpop.current_nonce(request.now))
                .flatten();
            let denial = Denial::dpop_refusal(&self.realm, &refusal).with_dpop_nonce(nonce);
            // A certificate-bound token comes as a bearer token: its refusal is a Bearer
            // challenge unless DPoP is required.
            let certificate = matches!(refusal, DpopRefusal::Certificate(_));
            let denial = if mode == DpopMode::Off || (certificate && mode == DpopMode::Allowed) {
                denial
            } else {
                denial.with_dpop_challenge(self.dpop.algs(), mode != DpopMode::Required)
            };
            return Ok(Outcome::Deny(denial));
        }
        // A fresh nonce on success too (RFC 9449 §8.2), so clients switch before it expires.
        let dpop_nonce = (scheme == Scheme::Dpop)
            .then(|| self.dpop.current_nonce(request.now))
            .flatten();
        let rules = self.issuer_rules.iter().find(|r| r.issuer == issuer);
        let audiences = rules.map(|r| r.audiences.as_slice());
        if let Err(rejection) = route_policy.admits(&pass.verified, issuer, audiences) {
            return Ok(Outcome::Deny(Denial::from_rejection(
                &self.realm,
                &rejection,
            )));
        }
        let issuer_scopes = self
            .issuer_scopes
            .iter()
            .filter(|(name, _)| name == issuer)
            .map(|(_, scopes)| scopes);
        for scopes in issuer_scopes.chain([requirement]) {
            if let Err(rejection) = pass.verified.require(scopes) {
                let denial = Denial::from_rejection(&self.realm, &rejection);
                return Ok(Outcome::Deny(denial.for_verified(pass.verified)));
            }
        }
        let conditions = rules.map(|r| &r.conditions).into_iter();
        for conditions in conditions.chain([route_policy.conditions()]) {
            if let Err(failure) = conditions.check_shared(&pass.verified) {
                let denial = Denial::condition_failed(&self.realm, failure);
                return Ok(Outcome::Deny(denial.for_verified(pass.verified)));
            }
        }
        if let Some(rules) = route_policy.mcp() {
            if let Some(denial) =
                self.mcp_refusal(rules, request, body, requirement, &pass.verified)?
            {
                return Ok(Outcome::Deny(denial.for_verified(pass.verified)));
            }
        }
        Ok(Outcome::Allow(Allow {
            identity: pass.identity,
            verified: Some(pass.verified),
            path,
            dpop_nonce,
            mcp: route_policy.mcp().is_some(),
        }))
    }

    /// The largest JSON-RPC body an MCP route inspects.
    fn mcp_body_limit(&self) -> usize {
        self.resource
            .as_ref()
            .map_or(crate::mcp::DEFAULT_MAX_BODY_BYTES, |r| r.max_body_bytes())
    }

    /// An MCP route's checks of the request body: `Ok(None)` passes, `Err(limit)` asks for the
    /// body first.
    fn mcp_refusal(
        &self,
        rules: &crate::mcp::McpRules,
        request: &RequestView<'_>,
        body: RequestBody<'_>,
        requirement: &ScopeRequirement,
        verified: &Verified,
    ) -> Result<Option<Denial>, usize> {
        let limit = self.mcp_body_limit();
        for session in request.headers.get_all(&crate::mcp::SESSION_HEADER_NAME) {
            let admitted = crate::request_headers::text(session)
                .is_some_and(|id| self.mcp_sessions.admits(id, verified));
            if !admitted {
                return Ok(Some(Denial::mcp_session_unknown(&self.realm)));
            }
        }
        if request.method != "POST" {
            if crate::mcp::has_body(request.headers) {
                return Ok(Some(Denial::mcp_refusal(
                    &self.realm,
                    crate::mcp::McpRefusal::Invalid(format!(
                        "an MCP endpoint takes a body only with POST, not {}",
                        request.method
                    )),
                )));
            }
            return Ok(None);
        }
        if let Err(refusal) = crate::mcp::McpRules::check_headers(request.headers) {
            return Ok(Some(Denial::mcp_refusal(&self.realm, refusal)));
        }
        let bytes = match body {
            RequestBody::Unavailable => return Ok(Some(Denial::body_unavailable(&self.realm))),
            RequestBody::Deferred => return Err(limit),
            RequestBody::TooLarge => return Ok(Some(Denial::body_too_large(&self.realm, limit))),
            RequestBody::Read(bytes) if bytes.len() > limit => {
                return Ok(Some(Denial::body_too_large(&self.realm, limit)))
            }
            RequestBody::Read(bytes) => bytes,
        };
        Ok(rules
            .check(bytes, requirement, verified)
            .err()
            .map(|refusal| Denial::mcp_refusal(&self.realm, refusal)))
    }

    /// Counts an outcome and logs a refusal.
    fn record(&self, method: &str, target: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Allow(allow) => {
                let reason = if allow.verified.is_some() {
                    "verified"
                } else {
                    "public"
                };
                self.metrics.decision("allow", 200, reason);
            }
            Outcome::Preflight => self.metrics.decision("allow", 204, "cors_preflight"),
            Outcome::Deny(denial) => {
                self.metrics
                    .decision("deny", denial.status(), denial.kind());
                tracing::info!(
                    method,
                    path = target.split('?').next().unwrap_or_default(),
                    status = denial.status(),
                    reason = denial.kind(),
                    "denied"
                );
            }
        }
    }

    /// Verifies a token through the cache: signature, issuer, times, and an audience that the
    /// issuer or any route accepts. What a route adds — its issuers and audiences, scopes and
    /// conditions — only [`Engine::decide`] checks: decide, not this, whether a request passes.
    pub async fn verify(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<Verified>, jwtgate_core::Rejection> {
        let verified = self.verify_cached(token, now).await?;
        if let Some(rule) = self
            .revocation
            .as_ref()
            .and_then(|revocation| revocation.check(&verified, now))
        {
            return Err(jwtgate_core::Reason::Revoked {
                rule: rule.to_string(),
            }
            .into());
        }
        Ok(verified)
    }

    /// Verifies a token through the cache and the revocation rules (a cached token too: a rule
    /// added after it was cached refuses it at once), with its identity headers: built for each
    /// request, as keeping them in the cache would double an entry's weight; none when
    /// `identity` is false.
    async fn verify_with_identity(
        &self,
        token: &[u8],
        now: i64,
        identity: bool,
    ) -> Result<CachedPass, jwtgate_core::Rejection> {
        let verified = self.verify(token, now).await?;
        let identity = if identity {
            self.identity.headers_for(&verified)
        } else {
            Vec::new()
        };
        Ok(CachedPass { identity, verified })
    }

    async fn verify_cached(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<Verified>, jwtgate_core::Rejection> {
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
        if let Some(cache) = &self.cache {
            cache.insert(token, verified.clone(), now);
        }
        Ok(verified)
    }
}
