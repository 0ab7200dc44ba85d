//! MCP servers as OAuth resource servers: the protected resource (its canonical URI and its
//! RFC 9728 metadata document) and the rules an MCP route applies to the JSON-RPC body of a POST.
//!
//! The MCP authorization specification makes every HTTP MCP server a resource server: it
//! publishes protected resource metadata, names it in every 401 (`resource_metadata="…"`), and
//! accepts only tokens whose audience is its own canonical URI (RFC 8707). jwtgate does all three
//! for an unchanged MCP server behind it.
//!
//! Key decision: the body rules are part of the engine's one decision, and the body is read only
//! when the engine asks for it — after the token and the route's scopes have passed — so an
//! unauthenticated client never makes the gateway buffer a body. A front end that can read the
//! body (reverse proxy, tower layer) hands the bytes over and forwards exactly those bytes; a
//! front end that never sees it (forward-auth, gRPC, Lambda) gets a refusal for an MCP route's
//! POST, never an allow the rules did not check. What the upstream could read differently from
//! us is refused rather than guessed: duplicate member names, a `Content-Encoding`, a media type
//! other than JSON, a body on a method other than POST.

use crate::request_headers::{text, RequestHeaders};
use crate::rules::{ConfigError, IssuerSection, RouteSection};
use jwtgate_core::{ScopeRequirement, Verified};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The default largest JSON-RPC body an MCP route inspects (1 MiB); a larger one is refused with
/// 413 and never forwarded.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The well-known path of RFC 9728 protected resource metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// `[resource]`: the protected resource this gateway fronts (an MCP server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSection {
    /// The canonical URI (`https://mcp.example.com/mcp`): the audience MCP routes accept.
    pub resource: String,
    /// Authorization servers clients may get tokens from (default: the configured issuers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// Scopes advertised (default: every scope the MCP routes name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// A page for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Largest JSON-RPC body an MCP route inspects, in bytes (default 1 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl ResourceSection {
    /// A section for `resource` with every other setting at its default.
    pub fn new(resource: impl Into<String>) -> ResourceSection {
        ResourceSection {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            resource_documentation: None,
            resource_name: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A validated protected resource: its canonical URI, the audiences that name it, where its
/// metadata is served, and the document.
///
/// Invariant (enforced by [`ProtectedResource::new`]): the URI is canonical — lowercase scheme
/// and host, no default port, no query, no fragment, no trailing slash — `https`, or `http` on a
/// loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    uri: String,
    audiences: Vec<String>,
    metadata_url: String,
    metadata_paths: Vec<String>,
    document: Map<String, Value>,
    max_body_bytes: usize,
}

/// `http` is accepted for loopback hosts only, as for JWKS URLs.
fn check_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("{url:?} has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(format!(
            "{url:?}: http is accepted for loopback hosts only; use https"
        )),
        other => Err(format!("{url:?}: scheme {other:?} is not https")),
    }
}

/// The canonical form of a resource URI (MCP authorization, "Canonical Server URI").
fn canonical(parsed: &url::Url) -> Result<String, String> {
    if parsed.fragment().is_some() {
        return Err("a resource URI has no fragment (RFC 8707 §2)".into());
    }
    if parsed.query().is_some() {
        return Err("a resource URI has no query".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a resource URI has no user information".into());
    }
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    Ok(format!("{}://{host}{port}{path}", parsed.scheme()))
}

/// Scopes an MCP route names: its own and those of its method, tool, prompt and resource rules.
fn route_scopes(route: &RouteSection) -> impl Iterator<Item = &String> {
    route.scopes.iter().chain(
        [
            &route.rpc_methods,
            &route.tools,
            &route.prompts,
            &route.resources,
        ]
        .into_iter()
        .flat_map(|rules| rules.values().flatten()),
    )
}

impl ProtectedResource {
    /// Validates `section` against the configured `issuers` and `routes` (for the defaults of
    /// `authorization_servers` and `scopes_supported`); `query_token` says whether tokens may come
    /// in a query parameter (`bearer_methods_supported`). `file` names the source in errors.
    pub fn new(
        section: &ResourceSection,
        issuers: &[IssuerSection],
        routes: &[RouteSection],
        query_token: bool,
        file: &str,
    ) -> Result<ProtectedResource, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key: format!("resource.{key}"),
            message,
        };
        let parsed = check_url(&section.resource).map_err(|m| invalid("resource", m))?;
        let uri = canonical(&parsed).map_err(|m| invalid("resource", m))?;
        if uri != section.resource {
            return Err(invalid(
                "resource",
                format!(
                    "{:?} is not in canonical form (lowercase scheme and host, no default port, no trailing slash): write {uri:?}",
                    section.resource
                ),
            ));
        }
        let mut servers = section.authorization_servers.clone();
        if servers.is_empty() {
            servers = issuers
                .iter()
                .filter(|i| !i.issuer.contains('{'))
                .map(|i| i.issuer.clone())
                .collect();
        }
        if servers.is_empty() {
            return Err(invalid(
                "authorization_servers",
                "name at least one authorization server (the issuers are all templates)".into(),
            ));
        }
        for server in &servers {
            check_url(server).map_err(|m| invalid("authorization_servers", m))?;
        }
        if let Some(page) = &section.resource_documentation {
            check_url(page).map_err(|m| invalid("resource_documentation", m))?;
        }
        if section.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be positive".into()));
        }
        let scopes: Vec<String> = if section.scopes_supported.is_empty() {
            let mut all = BTreeSet::new();
            for route in routes.iter().filter(|r| r.mcp) {
                all.extend(route_scopes(route).cloned());
            }
            all.into_iter().collect()
        } else {
            section.scopes_supported.clone()
        };
        let path = parsed.path().trim_end_matches('/');
        let origin = uri.strip_suffix(path).unwrap_or(&uri).to_owned();
        let mut metadata_paths = vec![METADATA_PATH.to_owned()];
        if !path.is_empty() {
            metadata_paths.push(format!("{METADATA_PATH}{path}"));
        }
        let metadata_url = format!("{origin}{}", metadata_paths[metadata_paths.len() - 1]);
        // A client that turns an origin-only URI into a URL object sends it with a slash.
        let mut audiences = vec![uri.clone()];
        if path.is_empty() {
            audiences.push(format!("{uri}/"));
        }
        let mut methods = vec![json!("header")];
        if query_token {
            methods.push(json!("query"));
        }
        let mut document = Map::new();
        document.insert("resource".into(), json!(uri));
        document.insert("authorization_servers".into(), json!(servers));
        document.insert("scopes_supported".into(), json!(scopes));
        document.insert("bearer_methods_supported".into(), Value::Array(methods));
        if let Some(page) = &section.resource_documentation {
            document.insert("resource_documentation".into(), json!(page));
        }
        if let Some(name) = &section.resource_name {
            document.insert("resource_name".into(), json!(name));
        }
        Ok(ProtectedResource {
            uri,
            audiences,
            metadata_url,
            metadata_paths,
            document,
            max_body_bytes: section.max_body_bytes,
        })
    }

    /// The same resource advertising DPoP (RFC 9728 §2): the accepted proof algorithms, and
    /// whether every token must be DPoP-bound.
    pub fn with_dpop(mut self, algs: &[String], required: bool) -> ProtectedResource {
        self.document
            .insert("dpop_signing_alg_values_supported".into(), json!(algs));
        self.document
            .insert("dpop_bound_access_tokens_required".into(), json!(required));
        self
    }

    /// The canonical URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The audiences an MCP route accepts: the canonical URI (and, for an origin-only URI, the
    /// same with a trailing slash).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where clients fetch the metadata: the path-suffixed form of RFC 9728 §3.1 (the URL every
    /// 401 names in `resource_metadata`).
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The local paths the metadata is served at: `/.well-known/oauth-protected-resource` and,
    /// for a URI with a path, the path-suffixed form.
    pub fn metadata_paths(&self) -> &[String] {
        &self.metadata_paths
    }

    /// The metadata document, as JSON.
    pub fn document(&self) -> String {
        Value::Object(self.document.clone()).to_string()
    }

    /// The largest JSON-RPC body inspected.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The MCP routes of `routes` with this resource as their audience. An MCP route naming
    /// other audiences is an error: the MCP authorization specification accepts only tokens for
    /// the server's own URI.
    pub fn apply(
        &self,
        routes: &[RouteSection],
        file: &str,
    ) -> Result<Vec<RouteSection>, ConfigError> {
        let mut applied = routes.to_vec();
        for (i, route) in applied.iter_mut().enumerate().filter(|(_, r)| r.mcp) {
            if !route.audiences.is_empty() && route.audiences != self.audiences {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    key: format!("routes[{i}].audiences"),
                    message: format!(
                        "an MCP route accepts only tokens for its resource {:?} (RFC 8707); remove audiences",
                        self.uri
                    ),
                });
            }
            route.audiences = self.audiences.clone();
        }
        Ok(applied)
    }
}

/// The extra scopes per name: `"*"` is every name not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedScopes {
    named: BTreeMap<String, Vec<String>>,
    other: Option<Vec<String>>,
}

impl NamedScopes {
    /// Rules from the file's table (`{ delete_user = ["admin:users"], "*" = [] }`).
    pub fn new(table: &BTreeMap<String, Vec<String>>) -> NamedScopes {
        let mut rules = NamedScopes::default();
        for (name, scopes) in table {
            if name == "*" {
                rules.other = Some(scopes.clone());
            } else {
                rules.named.insert(name.clone(), scopes.clone());
            }
        }
        rules
    }

    fn scopes_for(&self, name: &str) -> &[String] {
        self.named
            .get(name)
            .or(self.other.as_ref())
            .map_or(&[], Vec::as_slice)
    }
}

/// An MCP route's JSON-RPC rules: extra scopes by method, and by tool, prompt and resource name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpRules {
    methods: NamedScopes,
    tools: NamedScopes,
    prompts: NamedScopes,
    resources: NamedScopes,
}

/// Why an MCP request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpRefusal {
    /// The body is not what an MCP server reads unambiguously: 400 `invalid_request`.
    Invalid(String),
    /// A call needs scopes the token lacks: 403 `insufficient_scope` with `scope` = every scope
    /// this call needs (the route's and the call's).
    Scope {
        /// What is refused and why.
        description: String,
        /// The scopes the call needs.
        needed: Vec<String>,
    },
}

/// `application/json`, with no parameter but `charset=utf-8`: servers decode the body with the
/// declared charset (the MCP SDK's SSE transport and Express's body parser do), and a body read
/// as UTF-7 or Latin-1 there is not the body inspected here (`"+AGQ-elete_user"` is
/// `"delete_user"` in UTF-7).
fn is_utf8_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|parameter| {
            let Some((name, value)) = parameter.split_once('=') else {
                return false;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
        })
}

/// Where the value a rule keys on lives, for the methods that name something.
fn named_target(method: &str) -> Option<(&'static str, &'static str)> {
    match method {
        "tools/call" => Some(("name", "tool")),
        "prompts/get" => Some(("name", "prompt")),
        "resources/read" => Some(("uri", "resource")),
        _ => None,
    }
}

impl McpRules {
    /// Rules from a route's tables.
    pub fn new(route: &RouteSection) -> McpRules {
        McpRules {
            methods: NamedScopes::new(&route.rpc_methods),
            tools: NamedScopes::new(&route.tools),
            prompts: NamedScopes::new(&route.prompts),
            resources: NamedScopes::new(&route.resources),
        }
    }

    /// Checks the media type and encoding a POST declares: the body must be what the upstream
    /// parses as JSON, byte for byte as inspected.
    pub fn check_headers(headers: RequestHeaders<'_>) -> Result<(), McpRefusal> {
        for coding in headers.get_all(&http::header::CONTENT_ENCODING) {
            if !text(coding).is_some_and(|c| c.trim().eq_ignore_ascii_case("identity")) {
                return Err(McpRefusal::Invalid(
                    "an MCP request body must not be content-encoded: it is inspected as sent"
                        .into(),
                ));
            }
        }
        let mut types = headers.get_all(&http::header::CONTENT_TYPE);
        let json = match (types.next(), types.next()) {
            (Some(value), None) => text(value).is_some_and(is_utf8_json),
            _ => false,
        };
        if json {
            Ok(())
        } else {
            Err(McpRefusal::Invalid(
                "an MCP request must have exactly one Content-Type: application/json (charset utf-8 or none)".into(),
            ))
        }
    }

    /// Checks a JSON-RPC body (one message or a batch): every element must be a JSON-RPC 2.0
    /// message and every call must be allowed to `verified` on top of `base` (the route's scopes,
    /// already checked).
    pub fn check(
        &self,
        body: &[u8],
        base: &ScopeRequirement,
        verified: &Verified,
    ) -> Result<(), McpRefusal> {
        let not_json_rpc = |e: serde_json::Error| {
            McpRefusal::Invalid(format!("the body is not a JSON-RPC message: {e}"))
        };
        // The whole body is UTF-8, read or not: serde skips the strings it does not build
        // without checking them.
        let body = std::str::from_utf8(body)
            .map_err(|e| McpRefusal::Invalid(format!("the body is not UTF-8 JSON: {e}")))?;
        let first = body.bytes().find(|b| !b.is_ascii_whitespace());
        if first == Some(b'[') {
            let batch: Vec<Object<Message<'_>>> =
                serde_json::from_str(body).map_err(not_json_rpc)?;
            if batch.is_empty() {
                return Err(McpRefusal::Invalid(
                    "an empty JSON-RPC batch is not a request".into(),
                ));
            }
            batch
                .iter()
                .try_for_each(|message| self.check_message(&message.0, base, verified))
        } else {
            let message: Object<Message<'_>> = serde_json::from_str(body).map_err(not_json_rpc)?;
            self.check_message(&message.0, base, verified)
        }
    }

    fn check_message(
        &self,
        message: &Message<'_>,
        base: &ScopeRequirement,
        verified: &Verified,
    ) -> Result<(), McpRefusal> {
        let invalid = |why: &str| Err(McpRefusal::Invalid(why.to_owned()));
        if message.jsonrpc.as_deref() != Some("2.0") {
            return invalid("a JSON-RPC message must have \"jsonrpc\": \"2.0\"");
        }
        let Some(method) = &message.method else {
            // A response to a request of the server (sampling, elicitation, roots).
            if message.id.is_some() && (message.result ^ message.error) {
                return Ok(());
            }
            return invalid(
                "a JSON-RPC message needs a method, or an id and one of result or error",
            );
        };
        if message.result || message.error {
            return invalid("a JSON-RPC request has no result or error");
        }
        let mut needed: Vec<&String> = self.methods.scopes_for(method).iter().collect();
        let mut subject = format!("method {method:?}");
        if let Some((key, what)) = named_target(method) {
            let name = message.params.as_ref().and_then(|Object(p)| match key {
                "name" => p.name.as_deref(),
                _ => p.uri.as_deref(),
            });
            let Some(name) = name else {
                return Err(McpRefusal::Invalid(format!(
                    "{method} needs params.{key} as a string"
                )));
            };
            let rules = match what {
                "tool" => &self.tools,
                "prompt" => &self.prompts,
                _ => &self.resources,
            };
            needed.extend(rules.scopes_for(name));
            subject = format!("{what} {name:?}");
        }
        if needed.is_empty() {
            return Ok(());
        }
        let extra = ScopeRequirement::all_of(needed.iter().map(|s| s.as_str()));
        if verified.require(&extra).is_ok() {
            return Ok(());
        }
        let mut all: Vec<String> = base.scopes().to_vec();
        for scope in needed {
            if !all.contains(scope) {
                all.push(scope.clone());
            }
        }
        let missing: Vec<&str> = needed_missing(&extra, verified);
        Err(McpRefusal::Scope {
            description: format!("{subject} needs scope {}", missing.join(" ")),
            needed: all,
        })
    }
}

/// One JSON-RPC message, as far as the rules read it. Parsed with serde's derive, which refuses
/// a member it reads given twice (`"method"` twice: parsers disagree on which one counts), and
/// with `serde_json`, which checks the whole document — members not read here included — is
/// well-formed UTF-8 JSON (nesting at most 128). The rest (`arguments`, …) is skipped unbuilt.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<Id>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Object<Params<'a>>>,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

/// The `params` members the rules key on.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// A value that must be a JSON object: serde's derived structs also accept arrays (members by
/// position), which a JSON-RPC message and its `params` are not to the server.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Object<T>, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

/// A JSON-RPC id: a string or an integer (no fraction, no null).
struct Id;

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC id (a string or an integer)")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Id, E> {
                Ok(Id)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Id, E> {
                Ok(Id)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Id, E> {
                Ok(Id)
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// True for a member that is there, whatever its value (`"result": null` is a result).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

fn needed_missing<'a>(extra: &'a ScopeRequirement, verified: &Verified) -> Vec<&'a str> {
    extra
        .scopes()
        .iter()
        .map(String::as_str)
        .filter(|scope| !verified.scopes().any(|granted| granted == *scope))
        .collect()
}

/// The header carrying a Streamable HTTP session.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// [`SESSION_HEADER`] as a header name, built once.
pub static SESSION_HEADER_NAME: http::HeaderName = http::HeaderName::from_static(SESSION_HEADER);

/// Most sessions remembered (least recently used forgotten first).
const SESSION_BINDINGS: usize = 100_000;

/// Which principal (`iss`, `sub`) each MCP session belongs to, so that one user's valid token
/// cannot drive another user's session (session hijacking, MCP security best practices): a
/// request naming a session bound to another principal is refused as if the session did not
/// exist. Sessions are bound when the upstream answers an allowed request with a session ID;
/// both the ID and the principal are held as 128-bit digests, at most 100,000 of them (~5 MiB).
/// A session the gateway has not seen (another replica created it, or it was forgotten) passes:
/// the upstream decides whether it exists.
#[derive(Debug)]
pub struct SessionBindings {
    bindings: quick_cache::sync::Cache<[u8; 16], [u8; 16]>,
}

impl Default for SessionBindings {
    fn default() -> Self {
        SessionBindings {
            bindings: quick_cache::sync::Cache::new(SESSION_BINDINGS),
        }
    }
}

fn digest(parts: &[&str]) -> [u8; 16] {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(&(part.len() as u64).to_be_bytes());
        joined.extend_from_slice(part.as_bytes());
    }
    let full = jwtgate_core::crypto::sha256(&joined);
    let mut short = [0; 16];
    short.copy_from_slice(&full[..16]);
    short
}

fn principal(verified: &Verified) -> [u8; 16] {
    digest(&[verified.issuer(), verified.subject().unwrap_or_default()])
}

impl SessionBindings {
    /// Binds `session` to the principal of `verified` (the first binding stays: a session never
    /// changes hands).
    pub fn bind(&self, session: &str, verified: &Verified) {
        let key = digest(&[session]);
        if self.bindings.get(&key).is_none() {
            self.bindings.insert(key, principal(verified));
        }
    }

    /// False when `session` is bound to another principal than `verified`'s.
    pub fn admits(&self, session: &str, verified: &Verified) -> bool {
        self.bindings
            .get(&digest(&[session]))
            .is_none_or(|owner| owner == principal(verified))
    }
}

/// A non-POST request to an MCP route must not carry a body the upstream might read as a call.
pub fn has_body(headers: RequestHeaders<'_>) -> bool {
    headers.contains(&http::header::TRANSFER_ENCODING)
        || headers
            .get(&http::header::CONTENT_LENGTH)
            .is_some_and(|length| length != b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_json_is_inspected() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_utf8_json(ok), "{ok}");
        }
        for refused in [
            "application/json; charset=utf-7",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
            "application/json; boundary=x",
            "application/json;",
            "text/plain",
            "application/jsonx",
        ] {
            assert!(!is_utf8_json(refused), "{refused}");
        }
    }

    #[test]
    fn canonical_resource_uris() {
        let canon = |u: &str| canonical(&url::Url::parse(u).unwrap()).unwrap();
        assert_eq!(
            canon("HTTPS://MCP.Example.com:443/mcp/"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(canon("https://mcp.example.com"), "https://mcp.example.com");
        assert_eq!(
            canon("http://127.0.0.1:8080/a/b"),
            "http://127.0.0.1:8080/a/b"
        );
        assert!(canonical(&url::Url::parse("https://u:p@mcp.example.com/").unwrap()).is_err());
    }
}
