//! The gateway's configuration: a TOML file (`jwtgate serve --config FILE`), or the same settings
//! from flags for the single-issuer case. Every setting and its default is documented in
//! `docs/configuration.md`; [`GatewayConfig::build`] turns a configuration into a ready
//! [`Engine`] and [`ServerOptions`], failing with the key that is wrong and why.

use crate::bearer::TokenLocations;
use crate::path::PathPolicy;
use crate::proxy::ProxyOptions;
use crate::server::{ConnectionLimits, ServerOptions};
use jwtgate_engine::dpop::{DpopMode, DpopSection};
use jwtgate_engine::identity::{IdentityHeaders, DEFAULT_MAX_VALUE_LEN};
use jwtgate_engine::mcp::{ProtectedResource, ResourceSection};
use jwtgate_engine::{Cors, Engine};
use jwtgate_keys::CacheSettings;
use jwtgate_revocation::RevocationSection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use jwtgate_engine::rules::{
    build_registry, build_routes, issuer_scopes, CacheSection, ConfigError, IssuerSection,
    KeysSection, RouteSection, Unmatched,
};

/// The smallest `http2_max_header_list_size` accepted: below it, ordinary requests would fail.
const MIN_HEADER_LIST_SIZE: u32 = 4096;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_realm() -> String {
    "jwtgate".to_owned()
}
fn default_forward_auth() -> String {
    "/auth".to_owned()
}
fn default_health() -> String {
    "/healthz".to_owned()
}
fn default_ready() -> String {
    "/readyz".to_owned()
}
fn default_metrics() -> String {
    "/metrics".to_owned()
}
fn default_true() -> bool {
    true
}
fn is_true(value: &bool) -> bool {
    *value
}
fn default_invalid_request_status() -> u16 {
    400
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_body_read_timeout_ms() -> u64 {
    30_000
}
fn default_http2_max_concurrent_streams() -> u32 {
    100
}
fn default_http2_max_header_list_size() -> u32 {
    65_536
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The origin clients use, `scheme://host[:port]` (e.g. `https://api.example.com`): DPoP
    /// proofs are checked against it (default: what each mode reads from the request — `Host`
    /// and the listener's scheme, or the proxy's `X-Forwarded-Proto`/`-Host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Realm in `WWW-Authenticate` (default `jwtgate`).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Forward-auth endpoint path (default `/auth`; empty disables it). A literal path: the
    /// original request comes from `X-Forwarded-*`/`X-Original-*` headers.
    #[serde(default = "default_forward_auth")]
    pub forward_auth_path: String,
    /// Forward-auth prefix (default none): a request to this prefix + a path (Envoy's HTTP
    /// ext_authz `path_prefix`) is checked as that path, with the request's own method.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forward_auth_prefix: String,
    /// Listen address of the gRPC ext_authz server (Envoy's `envoy.service.auth.v3`
    /// Authorization and gRPC health; default none: off). Same engine, TLS and limits as
    /// `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_listen: Option<SocketAddr>,
    /// With gRPC ext_authz, leave the token in the request Envoy forwards (default false: the
    /// upstream gets the identity headers, not `Authorization`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grpc_forward_token: bool,
    /// With gRPC ext_authz, send the verified token's `sub`, `iss` and scopes as the answer's
    /// `dynamic_metadata` for Envoy's RBAC and Lua filters (default true); false saves Envoy
    /// the parsing and storing of it on every check.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub grpc_claims_metadata: bool,
    /// Status for `invalid_request` at the forward-auth endpoint (default 400; nginx's
    /// `auth_request` only understands 2xx/401/403, so its recipe sets 401).
    #[serde(default = "default_invalid_request_status")]
    pub forward_auth_invalid_request_status: u16,
    /// Liveness path (default `/healthz`).
    #[serde(default = "default_health")]
    pub health_path: String,
    /// Readiness path: 200 when every issuer's keys are loaded (default `/readyz`).
    #[serde(default = "default_ready")]
    pub ready_path: String,
    /// Prometheus metrics path (default `/metrics`).
    #[serde(default = "default_metrics")]
    pub metrics_path: String,
    /// What a request matching no route gets: `deny`, `authenticated` (any valid token) or
    /// `public` (default: `deny` with routes, `authenticated` without; see
    /// [`Unmatched::resolve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<Unmatched>,
    /// TLS certificate chain (PEM) for the listener; with `tls_key`, the listener serves HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) for client certificates: the TLS listener asks for one and
    /// certificate-bound tokens (RFC 8705) are checked against it (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// The header a trusted fronting proxy sets to the client certificate (default none);
    /// certificate-bound tokens are checked against it, and it is removed before upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_header: Option<String>,
    /// The format of `client_cert_header`: `escaped-pem` (nginx), `xfcc` (Envoy) or
    /// `base64-der` (Traefik).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_header_format: Option<jwtgate_engine::mtls::ClientCertFormat>,
    /// `"ext-authz"`: client certificates come from Envoy's gRPC check
    /// (`attributes.source.certificate`, `include_peer_certificate: true`), for Envoy terminating
    /// TLS with the client (default none; not with `client_cert_header` or `client_ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_source: Option<ClientCertSource>,
    /// Time to receive a request head, in milliseconds (default 10000).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Time a connection with no request in flight stays open, in milliseconds (default 60000).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Longest pause between two pieces of a request body, in milliseconds (default 30000).
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Connections served at once (default 0: derived from the descriptor limit).
    #[serde(default)]
    pub max_connections: usize,
    /// HTTP/2 streams per connection at once (default 100).
    #[serde(default = "default_http2_max_concurrent_streams")]
    pub http2_max_concurrent_streams: u32,
    /// Largest HTTP/2 header list, in bytes (default 65536).
    #[serde(default = "default_http2_max_header_list_size")]
    pub http2_max_header_list_size: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            public_url: None,
            realm: default_realm(),
            forward_auth_path: default_forward_auth(),
            forward_auth_prefix: String::new(),
            grpc_listen: None,
            grpc_forward_token: false,
            grpc_claims_metadata: true,
            forward_auth_invalid_request_status: default_invalid_request_status(),
            health_path: default_health(),
            ready_path: default_ready(),
            metrics_path: default_metrics(),
            unmatched: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            client_cert_header: None,
            client_cert_header_format: None,
            client_cert_source: None,
            header_read_timeout_ms: default_header_read_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_connections: 0,
            http2_max_concurrent_streams: default_http2_max_concurrent_streams(),
            http2_max_header_list_size: default_http2_max_header_list_size(),
        }
    }
}

/// `[token]`: where else the token may be.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Cookie holding the token.
    #[serde(default)]
    pub cookie: Option<String>,
    /// Query parameter holding the token (discouraged by RFC 6750).
    #[serde(default)]
    pub query: Option<String>,
}

fn subject_header() -> String {
    "X-Auth-Subject".to_owned()
}
fn issuer_header() -> String {
    "X-Auth-Issuer".to_owned()
}
fn scopes_header() -> String {
    "X-Auth-Scopes".to_owned()
}
fn max_value_len() -> usize {
    DEFAULT_MAX_VALUE_LEN
}

/// `[identity]`: the headers carrying the verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Subject header (default `X-Auth-Subject`).
    #[serde(default = "subject_header")]
    pub subject: String,
    /// Issuer header (default `X-Auth-Issuer`).
    #[serde(default = "issuer_header")]
    pub issuer: String,
    /// Scopes header (default `X-Auth-Scopes`).
    #[serde(default = "scopes_header")]
    pub scopes: String,
    /// Further claims: claim name → header name.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Longest value copied; longer ones are left out (default 4096).
    #[serde(default = "max_value_len")]
    pub max_value_len: usize,
}

impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            subject: subject_header(),
            issuer: issuer_header(),
            scopes: scopes_header(),
            claims: BTreeMap::new(),
            max_value_len: max_value_len(),
        }
    }
}

/// `[cors]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    /// Allowed origins (exact) or `*`.
    pub origins: Vec<String>,
    /// Allowed methods (default GET, POST, PUT, PATCH, DELETE).
    #[serde(default = "cors_methods")]
    pub methods: Vec<String>,
    /// Allowed request headers (default Authorization, Content-Type).
    #[serde(default = "cors_headers")]
    pub headers: Vec<String>,
    /// Preflight cache lifetime in seconds (default 600).
    #[serde(default = "cors_max_age")]
    pub max_age: u64,
}

impl CorsSection {
    /// CORS for `origins` with the default methods, headers and preflight lifetime.
    pub fn new(origins: Vec<String>) -> CorsSection {
        CorsSection {
            origins,
            methods: cors_methods(),
            headers: cors_headers(),
            max_age: cors_max_age(),
        }
    }
}

fn cors_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}
fn cors_headers() -> Vec<String> {
    ["Authorization", "Content-Type"].map(String::from).to_vec()
}
fn cors_max_age() -> u64 {
    600
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listener and endpoints.
    #[serde(default)]
    pub server: ServerSection,
    /// Accepted issuers (at least one).
    #[serde(default)]
    pub issuers: Vec<IssuerSection>,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// Token locations.
    #[serde(default)]
    pub token: TokenSection,
    /// Identity headers.
    #[serde(default)]
    pub identity: IdentitySection,
    /// Verified-token cache.
    #[serde(default)]
    pub cache: CacheSection,
    /// Key cache.
    #[serde(default)]
    pub keys: KeysSection,
    /// CORS.
    #[serde(default)]
    pub cors: Option<CorsSection>,
    /// Reverse proxy.
    #[serde(default)]
    pub proxy: Option<ProxyOptions>,
    /// `[paths]`: which risky request-path features pass as data (all refused by default).
    #[serde(default)]
    pub paths: PathPolicy,
    /// `[revocation]`: where revocation rules come from (a file or Redis); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationSection>,
    /// `[dpop]`: sender-constrained tokens (RFC 9449).
    #[serde(default)]
    pub dpop: DpopSection,
    /// `[resource]`: the protected resource (an MCP server) this gateway fronts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceSection>,
}

/// A built gateway: the decision maker and the server options.
#[derive(Debug)]
pub struct BuiltGateway {
    /// Decides every request.
    pub engine: Arc<Engine>,
    /// Listener, endpoints, proxy.
    pub options: ServerOptions,
}

impl GatewayConfig {
    /// Parses TOML; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<GatewayConfig, ConfigError> {
        jwtgate_engine::rules::parse_toml(text, file)
    }

    /// The effective configuration as TOML (defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything and builds the gateway; `file` names the source in errors.
    pub fn build(&self, file: &str) -> Result<BuiltGateway, ConfigError> {
        self.build_from(file, None)
    }

    /// Like [`GatewayConfig::build`], for a reload replacing `previous`: unchanged issuers keep
    /// their key sources ([`jwtgate_engine::rules::build_registry_reusing`]) and the counters
    /// carry over; the verified-token cache starts empty.
    pub fn build_replacing(
        &self,
        file: &str,
        previous: &Engine,
    ) -> Result<BuiltGateway, ConfigError> {
        self.build_from(file, Some(previous))
    }

    fn build_from(
        &self,
        file: &str,
        previous: Option<&Engine>,
    ) -> Result<BuiltGateway, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message,
        };
        let unmatched = Unmatched::resolve(self.server.unmatched, !self.routes.is_empty());
        let resource = self
            .resource
            .as_ref()
            .map(|section| {
                ProtectedResource::new(
                    section,
                    &self.issuers,
                    &self.routes,
                    self.token.query.is_some(),
                    file,
                )
            })
            .transpose()?;
        let routes = match &resource {
            Some(resource) => resource.apply(&self.routes, file)?,
            None => self.routes.clone(),
        };
        let parts = jwtgate_engine::build_policy(
            &self.issuers,
            &routes,
            unmatched,
            &self.keys,
            file,
            previous.map(Engine::registry),
        )?;
        let mut identity = IdentityHeaders::with_names(
            &self.identity.subject,
            &self.identity.issuer,
            &self.identity.scopes,
        )
        .map_err(|e| invalid("identity".into(), e.to_string()))?
        .max_value_len(self.identity.max_value_len);
        for (claim, header) in &self.identity.claims {
            identity = identity
                .map_claim(claim, header)
                .map_err(|e| invalid(format!("identity.claims.{claim}"), e.to_string()))?;
        }
        let mut engine = Engine::new(parts.registry, parts.routes)
            .with_issuer_rules(parts.issuer_rules)
            .with_realm(self.server.realm.clone())
            .with_identity(identity)
            .with_path_policy(self.paths)
            .with_issuer_scopes(issuer_scopes(&self.issuers))
            .with_locations(TokenLocations {
                cookie: self.token.cookie.clone(),
                query: self.token.query.clone(),
            });
        if let Some(old) = previous {
            engine = engine.with_metrics(old.metrics().clone());
        }
        engine = engine.with_dpop(
            jwtgate_engine::rules::dpop_policy(
                &self.dpop,
                &self.issuers,
                self.server.public_url.as_deref(),
                file,
                previous,
            )?
            .with_certificate_source(self.certificate_source(file)?),
        );
        if let Some(resource) = resource {
            let modes = self
                .issuers
                .iter()
                .map(|issuer| issuer.dpop.unwrap_or(self.dpop.mode));
            let resource = match engine.dpop().mode("", None) {
                DpopMode::Off if self.issuers.iter().all(|i| i.dpop.is_none()) => resource,
                _ => {
                    let algs: Vec<String> = engine
                        .dpop()
                        .algs()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect();
                    let required = modes.into_iter().all(|mode| mode == DpopMode::Required);
                    resource.with_dpop(&algs, required)
                }
            };
            engine = engine.with_resource(resource);
        }
        if let Some(section) = &self.revocation {
            let source = section
                .source()
                .map_err(|e| invalid(format!("revocation.{}", e.key), e.message))?;
            // A reload keeps the rules held and their follower; a changed source needs a restart.
            let revocations = match previous.and_then(|old| old.revocation()) {
                Some(held) => {
                    if held.followed_source() != Some(&source) {
                        tracing::warn!("configuration reload: [revocation] changed its source or DPoP replay settings; the running ones stay until a restart");
                    }
                    held.clone()
                }
                None => section
                    .build()
                    .map_err(|e| invalid(format!("revocation.{}", e.key), e.message))?,
            };
            engine = engine.with_revocation(revocations);
        }
        if let Some(cache) = self
            .cache
            .build()
            .map_err(|e| invalid("cache".into(), e.to_string()))?
        {
            engine = engine.with_cache(cache);
        }
        if let Some(cors) = &self.cors {
            if cors.origins.is_empty() {
                return Err(invalid(
                    "cors.origins".into(),
                    "list at least one origin".into(),
                ));
            }
            engine = engine.with_cors(Cors {
                origins: cors.origins.clone(),
                methods: cors.methods.clone(),
                headers: cors.headers.clone(),
                max_age: cors.max_age,
            });
        }
        for (name, path) in [
            ("server.forward_auth_path", &self.server.forward_auth_path),
            ("server.health_path", &self.server.health_path),
            ("server.ready_path", &self.server.ready_path),
            ("server.metrics_path", &self.server.metrics_path),
        ] {
            if !path.is_empty() && !path.starts_with('/') {
                return Err(invalid(
                    name.into(),
                    "must start with '/' (or be empty to disable)".into(),
                ));
            }
            if path.contains(['{', '}', '*']) {
                return Err(invalid(
                    name.into(),
                    "must be a literal path ('{', '}' and '*' are not patterns here); to check every path under a prefix, as Envoy's HTTP ext_authz sends them, set server.forward_auth_prefix".into(),
                ));
            }
        }
        let prefix = &self.server.forward_auth_prefix;
        if !prefix.is_empty()
            && (!prefix.starts_with('/')
                || prefix.ends_with('/')
                || prefix.contains(['{', '}', '*', '?', '#'])
                || prefix.contains("//"))
        {
            return Err(invalid(
                "server.forward_auth_prefix".into(),
                format!("{prefix:?} must be a literal path starting with '/' and not ending with '/', e.g. \"/ext-authz\" (or empty to disable)"),
            ));
        }
        // The endpoints must not collide: the router could not tell them apart.
        let endpoints = [
            ("server.forward_auth_path", &self.server.forward_auth_path),
            ("server.health_path", &self.server.health_path),
            ("server.ready_path", &self.server.ready_path),
            ("server.metrics_path", &self.server.metrics_path),
        ];
        for (i, (name, path)) in endpoints.iter().enumerate() {
            if path.is_empty() {
                continue;
            }
            if let Some((other, _)) = endpoints[..i].iter().find(|(_, p)| p == path) {
                return Err(invalid(
                    (*name).into(),
                    format!("{path:?} is also {other}: each endpoint needs its own path"),
                ));
            }
            if !prefix.is_empty() && path.starts_with(&format!("{prefix}/")) {
                return Err(invalid(
                    (*name).into(),
                    format!("{path:?} lies under server.forward_auth_prefix {prefix:?}, where every path is a check"),
                ));
            }
        }
        if let Some(resource) = &self.resource {
            // The metadata is served at fixed paths: no other endpoint may take them.
            let metadata = ["/.well-known/oauth-protected-resource"];
            for (name, path) in endpoints.iter() {
                if path.starts_with(metadata[0]) {
                    return Err(invalid(
                        (*name).into(),
                        format!("{path:?} is where [resource] {:?} serves its protected resource metadata", resource.resource),
                    ));
                }
            }
            if !prefix.is_empty() && metadata[0].starts_with(&format!("{prefix}/")) {
                return Err(invalid(
                    "server.forward_auth_prefix".into(),
                    "the protected resource metadata path lies under it".into(),
                ));
            }
        }
        if self.server.grpc_listen.is_some_and(|grpc| {
            grpc.port() != 0 && grpc.port() == self.server.listen.port() && {
                let (a, b) = (grpc.ip(), self.server.listen.ip());
                a == b || a.is_unspecified() || b.is_unspecified()
            }
        }) {
            return Err(invalid(
                "server.grpc_listen".into(),
                "is the address of server.listen: gRPC needs its own port".into(),
            ));
        }
        let invalid_request_status = match self.server.forward_auth_invalid_request_status {
            code @ (400 | 401 | 403) => code,
            other => {
                return Err(invalid(
                    "server.forward_auth_invalid_request_status".into(),
                    format!("{other} is not 400, 401 or 403"),
                ))
            }
        };
        for (name, value) in [
            (
                "server.header_read_timeout_ms",
                self.server.header_read_timeout_ms,
            ),
            ("server.idle_timeout_ms", self.server.idle_timeout_ms),
            (
                "server.body_read_timeout_ms",
                self.server.body_read_timeout_ms,
            ),
            (
                "server.http2_max_concurrent_streams",
                u64::from(self.server.http2_max_concurrent_streams),
            ),
        ] {
            if value == 0 {
                return Err(invalid(name.into(), "must be positive".into()));
            }
        }
        if self.server.http2_max_header_list_size < MIN_HEADER_LIST_SIZE {
            return Err(invalid(
                "server.http2_max_header_list_size".into(),
                format!("must be at least {MIN_HEADER_LIST_SIZE}"),
            ));
        }
        if let Some(proxy) = &self.proxy {
            proxy
                .validate()
                .map_err(|message| invalid(format!("proxy.{}", message.0), message.1))?;
        }
        Ok(BuiltGateway {
            engine: Arc::new(engine),
            options: ServerOptions {
                listen: self.server.listen,
                forward_auth_path: non_empty(&self.server.forward_auth_path),
                forward_auth_prefix: non_empty(&self.server.forward_auth_prefix),
                forward_auth_invalid_request_status: invalid_request_status,
                grpc_listen: self.server.grpc_listen,
                grpc_forward_token: self.server.grpc_forward_token,
                grpc_claims_metadata: self.server.grpc_claims_metadata,
                health_path: non_empty(&self.server.health_path),
                ready_path: non_empty(&self.server.ready_path),
                metrics_path: non_empty(&self.server.metrics_path),
                proxy: self.proxy.clone(),
                tls: self
                    .server
                    .tls_cert
                    .clone()
                    .zip(self.server.tls_key.clone()),
                client_ca: self.server.client_ca.clone(),
                connections: ConnectionLimits {
                    header_read_timeout: Duration::from_millis(self.server.header_read_timeout_ms),
                    idle_timeout: Duration::from_millis(self.server.idle_timeout_ms),
                    body_read_timeout: Duration::from_millis(self.server.body_read_timeout_ms),
                    max_connections: self.server.max_connections,
                    http2_max_concurrent_streams: self.server.http2_max_concurrent_streams,
                    http2_max_header_list_size: self.server.http2_max_header_list_size,
                },
            },
        })
    }

    /// Where client certificates come from ([`jwtgate_engine::mtls`]): the proxy's header when
    /// `client_cert_header` is set (the listener's peer is then the proxy), else the TLS
    /// listener with `client_ca`, else nowhere.
    fn certificate_source(
        &self,
        file: &str,
    ) -> Result<jwtgate_engine::mtls::CertificateSource, ConfigError> {
        use jwtgate_engine::mtls::{CertificateSource, ClientCertHeader};
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.server.client_cert_source == Some(ClientCertSource::ExtAuthz) {
            if self.server.client_cert_header.is_some() || self.server.client_ca.is_some() {
                return Err(invalid(
                    "server.client_cert_source",
                    "\"ext-authz\" takes client certificates from Envoy's gRPC check only: remove client_cert_header and client_ca".into(),
                ));
            }
            return Ok(CertificateSource::ExtAuthzSource);
        }
        if self.server.client_ca.is_some() && self.server.client_cert_header.is_some() {
            // The listener asks for certificates without requiring one, so a client reaching
            // jwtgate directly could send the header and name any certificate: one source only.
            return Err(invalid(
                "server.client_cert_header",
                "cannot be combined with client_ca: the certificate comes either from jwtgate's own TLS listener (client_ca) or from a trusted proxy's header, not both".into(),
            ));
        }
        if self.server.client_ca.is_some() && self.server.tls_cert.is_none() {
            return Err(invalid(
                "server.client_ca",
                "needs tls_cert and tls_key: client certificates come with TLS".into(),
            ));
        }
        match (
            &self.server.client_cert_header,
            self.server.client_cert_header_format,
        ) {
            (Some(name), Some(format)) => ClientCertHeader::new(name, format)
                .map(CertificateSource::Header)
                .map_err(|e| invalid("server.client_cert_header", e.to_string())),
            (Some(_), None) => Err(invalid(
                "server.client_cert_header_format",
                "is needed with client_cert_header: \"escaped-pem\" (nginx $ssl_client_escaped_cert), \"xfcc\" (Envoy x-forwarded-client-cert) or \"base64-der\" (Traefik passTLSClientCert)".into(),
            )),
            (None, Some(_)) => Err(invalid(
                "server.client_cert_header_format",
                "has no client_cert_header to describe".into(),
            )),
            (None, None) if self.server.client_ca.is_some() => Ok(CertificateSource::Listener),
            (None, None) => Ok(CertificateSource::None),
        }
    }

    /// The key cache settings with this file's overrides.
    pub fn key_settings(&self) -> CacheSettings {
        self.keys.settings()
    }
}

/// Where client certificates come from when neither jwtgate's listener nor a header brings them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertSource {
    /// Envoy's gRPC check: `attributes.source.certificate`, the URL-encoded PEM of the
    /// certificate the client presented to Envoy.
    ExtAuthz,
}

fn non_empty(path: &str) -> Option<String> {
    (!path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_agree_with_the_file_defaults() {
        let proxy: ProxyOptions = toml::from_str(r#"upstream = "http://127.0.0.1:9""#).unwrap();
        assert_eq!(ProxyOptions::new("http://127.0.0.1:9"), proxy);
        let cors: CorsSection = toml::from_str(r#"origins = ["https://app"]"#).unwrap();
        assert_eq!(CorsSection::new(vec!["https://app".into()]), cors);
    }

    #[test]
    fn minimal_file_builds_with_defaults() {
        let config = GatewayConfig::from_toml(
            r#"
            [[issuers]]
            issuer = "https://t.auth0.com/"
            audiences = ["https://api/"]
            jwks_url = "https://t.auth0.com/.well-known/jwks.json"

            [[routes]]
            methods = ["GET"]
            path = "/api/users"
            scopes = ["read:users"]
            "#,
            "test.toml",
        );
        let config = config.unwrap_or_default();
        assert_eq!(config.server.listen, default_listen());
        let built = config.build("test.toml");
        assert!(built.is_ok(), "{built:?}");
        if let Ok(built) = built {
            assert_eq!(built.options.connections, ConnectionLimits::default());
        }
    }

    #[test]
    fn paths_section_sets_the_engines_path_policy() {
        let issuer = "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_url = \"https://i/k\"\n";
        let policy = |paths: &str| {
            GatewayConfig::from_toml(&format!("{issuer}{paths}"), "gw.toml")
                .and_then(|c| c.build("gw.toml"))
                .map(|built| *built.engine.path_policy())
                .map_err(|e| e.to_string())
        };
        assert_eq!(policy(""), Ok(PathPolicy::default()));
        assert_eq!(
            policy("[paths]\nallow_encoded_slash = true\nallow_semicolon = true\n"),
            Ok(PathPolicy {
                allow_encoded_slash: true,
                allow_semicolon: true,
                ..PathPolicy::default()
            })
        );
        assert_eq!(
            policy(
                "[paths]\nallow_backslash = true\nallow_non_utf8 = true\nallow_double_encoding = true\n"
            ),
            Ok(PathPolicy {
                allow_backslash: true,
                allow_non_utf8: true,
                allow_double_encoding: true,
                ..PathPolicy::default()
            })
        );
        let unknown = policy("[paths]\nallow_encoded_slashes = true\n");
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("unknown field")),
            "{unknown:?}"
        );
        let config = GatewayConfig::from_toml(
            &format!("{issuer}[paths]\nallow_semicolon = true\n"),
            "gw.toml",
        )
        .unwrap();
        assert!(config
            .to_toml()
            .contains("[paths]\nallow_encoded_slash = false"));
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let err = |text: &str| match GatewayConfig::from_toml(text, "gw.toml")
            .and_then(|c| c.build("gw.toml").map(|_| ()))
        {
            Err(e) => e.to_string(),
            Ok(()) => "ok".to_owned(),
        };
        assert_eq!(
            err(""),
            "gw.toml: `issuers`: at least one issuer is required"
        );
        assert!(
            err("[[issuers]]\nissuer = \"https://i/\"\naudiences = []\n")
                .starts_with("gw.toml: `issuers[0].audiences`")
        );
        assert!(err(
            "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\n"
        )
        .contains("issuers[0].algorithms"));
        assert!(err("[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_url = \"http://example.com/k\"\n").contains("issuers[0].jwks_url"));
        assert!(err("[server]\nlisten = 5\n").starts_with("gw.toml: "));
        assert!(err("[serverr]\n").contains("unknown field"));
        let issuer =
            "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_file = \"/k.json\"\n";
        assert!(err(&format!("[server]\nidle_timeout_ms = 0\n{issuer}"))
            .contains("server.idle_timeout_ms"));
        assert!(err(&format!(
            "[server]\nhttp2_max_header_list_size = 100\n{issuer}"
        ))
        .contains("server.http2_max_header_list_size"));
        assert!(err("[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\n[[routes]]\npath = \"api\"\n").contains("routes[0]"));
    }

    #[test]
    fn endpoints_may_not_collide() {
        let message = |server: &str| {
            let text = format!(
                "[server]\n{server}\n[[issuers]]\nissuer = \"https://i.example/\"\naudiences = [\"a\"]\njwks_url = \"https://i.example/jwks\"\n"
            );
            GatewayConfig::from_toml(&text, "t.toml")
                .and_then(|c| c.build("t.toml"))
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        assert!(message("ready_path = \"/healthz\"").contains("is also server.health_path"));
        assert!(
            message("forward_auth_prefix = \"/ops\"\nmetrics_path = \"/ops/metrics\"")
                .contains("lies under server.forward_auth_prefix")
        );
        assert_eq!(message("forward_auth_prefix = \"/ext-authz\""), "");
    }
}
