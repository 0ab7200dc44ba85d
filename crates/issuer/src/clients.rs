//! Clients that are not in the configuration file, as MCP clients arrive: registered at
//! `/register` (RFC 7591 dynamic client registration), or named by an `https://` `client_id`
//! whose Client ID Metadata Document the issuer fetches (draft-ietf-oauth-client-id-metadata-
//! document, MCP 2025-11-25 "Client ID Metadata Documents").
//!
//! Both kinds are **public clients only** (`token_endpoint_auth_method` `none`, so PKCE `S256`
//! is required at `/authorize`) whose redirect URIs are exact `https://` URLs or `http://`
//! loopback URLs (`127.0.0.1`, `localhost`, `[::1]`; any port at request time, RFC 8252 §7.3,
//! the host and path exact): no wildcards, no custom schemes, no fragments, no user info. One
//! validation (`client_from_metadata`) serves both.
//!
//! Their browser calls to the token, revocation and userinfo endpoints are allowed (CORS) from
//! the origins of their redirect URIs.
//!
//! Memory is bounded: at most [`MAX_REGISTERED`] registered clients (the oldest registration is
//! forgotten first) and [`MAX_CACHED_DOCUMENTS`] cached documents; registrations are rate-limited
//! issuer-wide (`[issuer] registrations_per_minute`). A metadata document is fetched with no
//! redirects, a [`FETCH_TIMEOUT`], at most [`MAX_DOCUMENT_BYTES`] and at most
//! [`MAX_CONCURRENT_FETCHES`] at a time, and cached for its
//! `Cache-Control: max-age` (default [`DEFAULT_DOCUMENT_MAX_AGE`], at most
//! [`MAX_DOCUMENT_MAX_AGE`]); `no-store` or `no-cache` is not cached. Nothing here survives a
//! restart.

use crate::config::{Client, GrantType};
use crate::issuer::{lock, Issuer};
use crate::params::{no_store, OAuthError};
use crate::pattern::UriPattern;
use crate::random;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// Most registered clients held; a new registration beyond it forgets the oldest one.
pub const MAX_REGISTERED: usize = 1_000;
/// Most metadata documents cached.
pub const MAX_CACHED_DOCUMENTS: usize = 1_000;
/// Largest registration request body, in bytes.
pub const MAX_REGISTRATION_BYTES: usize = 16 * 1024;
/// Largest Client ID Metadata Document, in bytes (the draft suggests 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Time allowed for fetching a metadata document, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds a document without `Cache-Control: max-age` stays cached.
pub const DEFAULT_DOCUMENT_MAX_AGE: u64 = 300;
/// The longest a document stays cached, whatever its `max-age`.
pub const MAX_DOCUMENT_MAX_AGE: u64 = 24 * 3600;
/// Most metadata documents fetched at once; more are refused, not queued.
pub const MAX_CONCURRENT_FETCHES: usize = 8;
/// Most redirect URIs per client.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI.
const MAX_URI_LENGTH: usize = 2048;
/// Longest echoed text member (`client_name`, `scope`, …).
const MAX_TEXT_LENGTH: usize = 512;
/// Text members kept and echoed (RFC 7591 §2); others are ignored, as §2 requires.
const TEXT_MEMBERS: &[&str] = &[
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
];

/// Why a client id names no usable client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// Not configured, not registered, and not a metadata document URL the issuer fetches.
    Unknown(String),
    /// A metadata document URL whose document could not be fetched or is not acceptable.
    Document(String),
}

impl LookupError {
    /// What went wrong, for a developer.
    pub(crate) fn description(&self) -> &str {
        match self {
            LookupError::Unknown(text) | LookupError::Document(text) => text,
        }
    }
}

/// Client metadata that cannot be accepted: the RFC 7591 §3.2.2 error code and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub(crate) code: &'static str,
    /// What to fix.
    pub(crate) description: String,
}

fn bad_metadata(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: "invalid_client_metadata",
        description: description.into(),
    }
}

fn bad_redirect(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: "invalid_redirect_uri",
        description: description.into(),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks one redirect URI of a registered or metadata-document client: an exact `https://` URL,
/// or an exact `http://` URL on a loopback host; no `*`, fragment or user info.
pub(crate) fn redirect_uri(text: &str) -> Result<UriPattern, MetadataError> {
    let refuse = |why: &str| bad_redirect(format!("redirect URI {text:?} {why}"));
    if text.len() > MAX_URI_LENGTH {
        return Err(refuse("is too long"));
    }
    if text.contains('*') {
        return Err(refuse("contains `*`: registered redirect URIs are exact"));
    }
    if text.contains('#') {
        return Err(refuse("has a fragment"));
    }
    let url = Url::parse(text).map_err(|_| refuse("is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("has user info"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(refuse(
                "uses http on a host that is not loopback (127.0.0.1, localhost, [::1]); use https",
            ))
        }
        _ => return Err(refuse("is neither https nor http on a loopback host")),
    }
    // RFC 8252 §7.3: a native app's loopback listener gets a port at run time, so any port is
    // allowed for a loopback redirect URI; the host and path stay exact.
    let pattern = match (url.scheme(), url.host_str(), url.query()) {
        ("http", Some(host), None) => format!("http://{host}:*{}", url.path()),
        _ => text.to_owned(),
    };
    UriPattern::parse(&pattern).map_err(|e| refuse(&e.to_string()))
}

/// A public client from RFC 7591 metadata (a registration request or a metadata document),
/// and the metadata as registered (what a registration response echoes).
pub(crate) fn client_from_metadata(
    id: &str,
    metadata: &Map<String, Value>,
) -> Result<(Client, Map<String, Value>), MetadataError> {
    let mut registered = Map::new();

    let uris = match metadata.get("redirect_uris") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) | None => {
            return Err(bad_redirect(
                "redirect_uris is required: at least one redirect URI",
            ))
        }
        Some(_) => return Err(bad_redirect("redirect_uris must be an array of strings")),
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(bad_redirect(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    let mut redirect_uris = Vec::new();
    for uri in uris {
        let Value::String(text) = uri else {
            return Err(bad_redirect("redirect_uris must be an array of strings"));
        };
        redirect_uris.push(redirect_uri(text)?);
    }
    registered.insert("redirect_uris".into(), Value::Array(uris.to_vec()));

    match metadata.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(method)) if method == "none" => {}
        Some(other) => {
            return Err(bad_metadata(format!(
                "token_endpoint_auth_method {other}: only public clients (\"none\", with PKCE) are accepted"
            )))
        }
    }
    if metadata.contains_key("client_secret") {
        return Err(bad_metadata(
            "client_secret: only public clients are accepted",
        ));
    }
    registered.insert("token_endpoint_auth_method".into(), json!("none"));

    let strings = |name: &str| -> Result<Option<Vec<String>>, MetadataError> {
        match metadata.get(name) {
            None => Ok(None),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad_metadata(format!("{name} must be an array of strings")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad_metadata(format!("{name} must be an array of strings"))),
        }
    };
    let grant_names =
        strings("grant_types")?.unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    let mut grant_types = Vec::new();
    for name in &grant_names {
        let grant = match name.as_str() {
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            other => {
                return Err(bad_metadata(format!(
                    "grant type {other:?} is not available to these clients (authorization_code, refresh_token)"
                )))
            }
        };
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(bad_metadata("grant_types must include authorization_code"));
    }
    registered.insert(
        "grant_types".into(),
        json!(grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()),
    );
    let response_types = strings("response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.is_empty() || response_types.iter().any(|t| t != "code") {
        return Err(bad_metadata(
            "response_types must be [\"code\"] (the authorization code flow)",
        ));
    }
    registered.insert("response_types".into(), json!(["code"]));

    for name in TEXT_MEMBERS {
        match metadata.get(*name) {
            None => {}
            Some(Value::String(text)) if text.len() <= MAX_TEXT_LENGTH => {
                registered.insert((*name).to_owned(), json!(text));
            }
            Some(Value::String(_)) => {
                return Err(bad_metadata(format!(
                    "{name} is longer than {MAX_TEXT_LENGTH} bytes"
                )))
            }
            Some(_) => return Err(bad_metadata(format!("{name} must be a string"))),
        }
    }

    let client = Client {
        id: id.to_owned(),
        name: registered
            .get("client_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        secret: None,
        redirect_uris,
        allowed_origins: Vec::new(),
        logout_urls: Vec::new(),
        grant_types,
        grants: Default::default(),
    };
    Ok((client, registered))
}

/// The `Cache-Control` lifetime of a document, in seconds (0: do not cache).
fn document_max_age(headers: &reqwest::header::HeaderMap) -> u64 {
    let Some(value) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_DOCUMENT_MAX_AGE;
    };
    let mut max_age = DEFAULT_DOCUMENT_MAX_AGE;
    for directive in value.split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return 0;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse().unwrap_or(0);
        }
    }
    max_age.min(MAX_DOCUMENT_MAX_AGE)
}

struct Registered {
    client: Client,
}

struct CachedDocument {
    client: Client,
    expires_at: i64,
}

/// The clients beyond the configuration, held by the issuer.
pub(crate) struct Directory {
    registered: Mutex<HashMap<String, Registered>>,
    /// Registered client ids, oldest first.
    order: Mutex<VecDeque<String>>,
    /// Times (Unix seconds) of the registrations of the last minute.
    recent: Mutex<VecDeque<i64>>,
    documents: Mutex<HashMap<String, CachedDocument>>,
    http: OnceLock<Result<reqwest::Client, String>>,
    fetches: tokio::sync::Semaphore,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            registered: Mutex::default(),
            order: Mutex::default(),
            recent: Mutex::default(),
            documents: Mutex::default(),
            http: OnceLock::new(),
            fetches: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        }
    }
}

impl Directory {
    /// True when a registered client, or a cached metadata-document client, has a redirect URI
    /// at `origin`: such a browser client may call the token, revocation and userinfo endpoints.
    pub(crate) fn allows_origin(&self, origin: &str, now: i64) -> bool {
        let at_origin = |client: &Client| {
            client
                .redirect_uris
                .iter()
                .any(|uri| match Url::parse(uri.as_str()) {
                    Ok(url) => crate::pattern::origin_of(&url) == origin,
                    Err(_) => uri.matches_origin(origin),
                })
        };
        lock(&self.registered)
            .values()
            .any(|r| at_origin(&r.client))
            || lock(&self.documents)
                .values()
                .any(|d| d.expires_at > now && at_origin(&d.client))
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(FETCH_TIMEOUT)
                    .timeout(FETCH_TIMEOUT)
                    .user_agent(concat!("jwtgate-issuer/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Fetches a document: status 200, at most [`MAX_DOCUMENT_BYTES`], no redirects.
async fn fetch_document(
    http: &reqwest::Client,
    url: &Url,
) -> Result<(Map<String, Value>, u64), String> {
    let mut response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("fetching {url} timed out")
            } else {
                format!("cannot fetch {url}: connection failed")
            }
        })?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "{url} answered {} (redirects are not followed; the document must be served at the client_id itself)",
            status.as_u16()
        ));
    }
    let too_large = || format!("{url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let max_age = document_max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| format!("{url}: the connection failed while reading the document"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(document)) => Ok((document, max_age)),
        _ => Err(format!("{url}: the document is not a JSON object")),
    }
}

impl Issuer {
    /// The client `client_id` names: a configured one, a registered one, or the client whose
    /// metadata document is at the URL `client_id` (fetched, or from the cache).
    pub(crate) async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Cow<'_, Client>, LookupError> {
        if let Some(client) = self.config().client(client_id) {
            return Ok(Cow::Borrowed(client));
        }
        if let Some(found) = lock(&self.shared.clients.registered).get(client_id) {
            return Ok(Cow::Owned(found.client.clone()));
        }
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.document_client(client_id).await.map(Cow::Owned);
        }
        Err(LookupError::Unknown(format!(
            "unknown client_id {client_id:?}: not configured, not registered (POST /register), and not an https:// client metadata document URL"
        )))
    }

    /// The client of the metadata document at `client_id`.
    async fn document_client(&self, client_id: &str) -> Result<Client, LookupError> {
        let settings = &self.config().issuer;
        let unknown = |why: &str| LookupError::Unknown(format!("client_id {client_id:?}: {why}"));
        if !settings.client_metadata_documents {
            return Err(unknown(
                "client metadata documents are off at this issuer ([issuer] client_metadata_documents = false)",
            ));
        }
        let url = Url::parse(client_id).map_err(|_| unknown("not a URL"))?;
        if url.as_str() != client_id {
            return Err(unknown(
                "not in normalized form (no dot segments, default ports, upper-case scheme or host)",
            ));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(unknown(
                "a client metadata document URL has no fragment or user info",
            ));
        }
        if url.path() == "/" {
            return Err(unknown(
                "a client metadata document URL needs a path (e.g. https://app.example/oauth/client.json)",
            ));
        }
        let loopback = is_loopback_host(&url);
        match url.scheme() {
            _ if loopback && !settings.allow_loopback_client_metadata => {
                return Err(unknown(
                    "metadata documents on loopback hosts are fetched only with [issuer] allow_loopback_client_metadata = true (for tests)",
                ))
            }
            "https" => {}
            "http" if loopback => {}
            _ => return Err(unknown("client metadata documents are fetched over https only")),
        }
        let now = self.shared.clock.unix();
        let directory = &self.shared.clients;
        if let Some(cached) = lock(&directory.documents).get(client_id) {
            if cached.expires_at > now {
                return Ok(cached.client.clone());
            }
        }
        let http = directory.http().map_err(LookupError::Document)?;
        let Ok(_permit) = directory.fetches.try_acquire() else {
            return Err(LookupError::Document(format!(
                "{MAX_CONCURRENT_FETCHES} client metadata documents are being fetched already; try again shortly"
            )));
        };
        let (document, max_age) = fetch_document(http, &url)
            .await
            .map_err(LookupError::Document)?;
        match document.get("client_id") {
            Some(Value::String(id)) if id == client_id => {}
            Some(Value::String(id)) => {
                return Err(LookupError::Document(format!(
                    "the metadata document at {client_id} names client_id {id:?}, not its own URL"
                )))
            }
            _ => {
                return Err(LookupError::Document(format!(
                    "the metadata document at {client_id} has no client_id"
                )))
            }
        }
        let (client, _) = client_from_metadata(client_id, &document).map_err(|e| {
            LookupError::Document(format!(
                "the metadata document at {client_id} is not acceptable ({}): {}",
                e.code, e.description
            ))
        })?;
        if max_age > 0 {
            let mut documents = lock(&directory.documents);
            documents.retain(|_, d| d.expires_at > now);
            if documents.len() < MAX_CACHED_DOCUMENTS {
                documents.insert(
                    client_id.to_owned(),
                    CachedDocument {
                        client: client.clone(),
                        expires_at: now.saturating_add(i64::try_from(max_age).unwrap_or(0)),
                    },
                );
            }
        }
        Ok(client)
    }

    /// Registers a client (RFC 7591 §3.1); returns the registration response's members.
    fn register(&self, metadata: &Map<String, Value>) -> Result<Map<String, Value>, OAuthError> {
        let directory = &self.shared.clients;
        let now = self.shared.clock.unix();
        let per_minute = self.config().issuer.registrations_per_minute;
        {
            let mut recent = lock(&directory.recent);
            while recent.front().is_some_and(|t| *t <= now - 60) {
                recent.pop_front();
            }
            if recent.len() >= usize::try_from(per_minute).unwrap_or(usize::MAX) {
                let mut error = OAuthError::new(
                    "temporarily_unavailable",
                    format!(
                        "too many registrations: at most {per_minute} per minute at this issuer; try again shortly"
                    ),
                );
                error.status = StatusCode::TOO_MANY_REQUESTS;
                return Err(error);
            }
        }
        let id = format!(
            "dcr-{}",
            random::token(16).map_err(|e| OAuthError::from(crate::IssuerError::from(e)))?
        );
        let (client, mut registered) = client_from_metadata(&id, metadata)
            .map_err(|e| OAuthError::new(e.code, e.description))?;
        lock(&directory.recent).push_back(now);
        {
            let mut clients = lock(&directory.registered);
            let mut order = lock(&directory.order);
            while clients.len() >= MAX_REGISTERED {
                match order.pop_front() {
                    Some(oldest) => {
                        clients.remove(&oldest);
                    }
                    None => break,
                }
            }
            clients.insert(id.clone(), Registered { client });
            order.push_back(id.clone());
        }
        let mut response = Map::new();
        response.insert("client_id".into(), json!(id));
        response.insert("client_id_issued_at".into(), json!(now));
        response.append(&mut registered);
        Ok(response)
    }
}

/// `POST /register`: RFC 7591 dynamic client registration (public clients only).
pub(crate) async fn register(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = (|| {
        if !issuer.config().issuer.dynamic_registration {
            let mut error = OAuthError::new(
                "access_denied",
                "dynamic client registration is off at this issuer ([issuer] dynamic_registration = false)",
            );
            error.status = StatusCode::FORBIDDEN;
            return Err(error);
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Err(bad_request(
                "send the client metadata as a JSON object (Content-Type: application/json)",
            ));
        }
        if body.len() > MAX_REGISTRATION_BYTES {
            return Err(bad_request(format!(
                "the request is larger than {MAX_REGISTRATION_BYTES} bytes"
            )));
        }
        let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(&body) else {
            return Err(bad_request("the body is not a JSON object"));
        };
        issuer.register(&metadata)
    })();
    match outcome {
        Ok(registered) => {
            let mut response =
                (StatusCode::CREATED, axum::Json(Value::Object(registered))).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => {
            let retry = error.status == StatusCode::TOO_MANY_REQUESTS;
            let mut response = error.into_response();
            if retry {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            response
        }
    }
}

fn bad_request(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", description)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn redirect_uris_are_exact_https_or_loopback_http() {
        for good in [
            "https://app.example/callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:8080/cb",
            "http://[::1]:9/",
        ] {
            assert!(redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/callback",
            "http://127.0.0.1.nip.io/cb",
            "http://localhost:*",
            "https://app.example/cb#x",
            "https://user@app.example/cb",
            "myapp://callback",
            "javascript:alert(1)",
            "/relative",
        ] {
            assert_eq!(
                redirect_uri(bad).map_err(|e| e.code),
                Err("invalid_redirect_uri"),
                "{bad}"
            );
        }
    }

    #[test]
    fn loopback_redirect_uris_allow_any_port() {
        let loopback = redirect_uri("http://127.0.0.1:33418/callback");
        let loopback = loopback.unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(loopback
            .matches("http://127.0.0.1:33418/callback")
            .is_some());
        assert!(loopback
            .matches("http://127.0.0.1:40000/callback")
            .is_some());
        assert!(loopback.matches("http://127.0.0.1:40000/other").is_none());
        assert!(loopback
            .matches("http://localhost:33418/callback")
            .is_none());
        assert!(loopback
            .matches("https://127.0.0.1:33418/callback")
            .is_none());
        let v6 = redirect_uri("http://[::1]/").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(v6.matches("http://[::1]:5/").is_some());
        let https =
            redirect_uri("https://app.example:8443/cb").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(https.matches("https://app.example:8443/cb").is_some());
        assert!(https.matches("https://app.example:9443/cb").is_none());
        let query =
            redirect_uri("http://127.0.0.1:1/cb?a=1").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(query.matches("http://127.0.0.1:1/cb?a=1").is_some());
        assert!(query.matches("http://127.0.0.1:2/cb?a=1").is_none());
    }

    #[test]
    fn public_clients_only() {
        let ok = client_from_metadata(
            "c",
            &metadata(
                json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "client_name": "x", "unknown": 1}),
            ),
        );
        let (client, registered) = ok.unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(client.is_public());
        assert_eq!(client.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(registered["token_endpoint_auth_method"], "none");
        assert!(!registered.contains_key("unknown"));
        for (bad, code) in [
            (json!({}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": ["https://a.example/"], "token_endpoint_auth_method": "client_secret_basic"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/"], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/"], "client_name": 5}),
                "invalid_client_metadata",
            ),
        ] {
            assert_eq!(
                client_from_metadata("c", &metadata(bad.clone()))
                    .map(|_| ())
                    .map_err(|e| e.code),
                Err(code),
                "{bad}"
            );
        }
    }

    #[test]
    fn document_lifetimes() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(document_max_age(&headers), DEFAULT_DOCUMENT_MAX_AGE);
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("public, max-age=60"),
        );
        assert_eq!(document_max_age(&headers), 60);
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("max-age=99999999"),
        );
        assert_eq!(document_max_age(&headers), MAX_DOCUMENT_MAX_AGE);
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("no-store"),
        );
        assert_eq!(document_max_age(&headers), 0);
    }
}
