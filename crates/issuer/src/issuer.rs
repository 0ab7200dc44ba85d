//! [`Issuer`]: the configuration, the key ring and the in-memory grants behind every endpoint,
//! and the operations an operator (or `jwtgate demo`) runs on a live issuer — key rotation, JWKS
//! failure injection, minting tokens without a browser.

use crate::clock::{Clock, SystemClock};
use crate::config::{Api, Client, Config, GrantType, TokenProfile, User, OIDC_SCOPES};
use crate::keyring::{KeyInfo, KeyRing, KeyRingError};
use crate::random::{self, RandomError};
use crate::store::{OpaqueGrant, RefreshGrant, Store, StoreError};
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_revocation::writer::RuleWriter;
use jwtgate_revocation::Rule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// Something the issuer could not do.
#[derive(Debug, Error)]
pub enum IssuerError {
    /// The public URL is not usable as an issuer identifier.
    #[error("invalid issuer URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key ring failed (state directory, key generation).
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    /// The grant store is full or randomness failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token could not be signed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// There is no current key for an algorithm.
    #[error("no current {0} signing key")]
    NoKey(Algorithm),
    /// A mint request does not fit the configuration.
    #[error("{0}")]
    Request(String),
}

impl From<RandomError> for IssuerError {
    fn from(error: RandomError) -> Self {
        IssuerError::Store(StoreError::Random(error))
    }
}

/// How the JWKS endpoint misbehaves while a failure is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum JwksFailure {
    /// Answer with this HTTP status (e.g. 500) and a short error body.
    Status {
        /// The status code (400–599).
        status: u16,
    },
    /// Wait this long, then answer normally.
    Slow {
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Answer 200 `application/json` with a body that is not JSON.
    Garbage,
}

/// A failure in force, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureStatus {
    /// The failure.
    #[serde(flatten)]
    pub failure: JwksFailure,
    /// When it ends, in milliseconds since the Unix epoch.
    pub until_ms: u64,
    /// Milliseconds left.
    pub remaining_ms: u64,
}

/// A token request made by an operator instead of a browser (`jwtgate mint`, `POST
/// /admin/mint`). The tokens are exactly what the endpoints would issue for the same user,
/// client, audience and scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The user (a configured username, or any name that could be typed on the login page).
    /// Without a user, the token is a `client_credentials` token for `client`.
    #[serde(default)]
    pub user: Option<String>,
    /// The client (default: the first client allowed the matching grant).
    #[serde(default)]
    pub client: Option<String>,
    /// The API identifier; without it a user gets an opaque access token, as from Auth0.
    #[serde(default)]
    pub audience: Option<String>,
    /// Requested scopes, space-separated (default for users `openid profile email`; for
    /// clients, everything granted).
    #[serde(default)]
    pub scope: Option<String>,
    /// Access-token lifetime in seconds, instead of the configured one.
    #[serde(default)]
    pub lifetime: Option<u64>,
}

/// A token endpoint success response (RFC 6749 §5.1), Auth0's member order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token: a JWT for an API audience, otherwise opaque.
    pub access_token: String,
    /// The ID token, when `openid` was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token, when `offline_access` was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
}

/// Settings for [`Issuer::new`] that are not in the configuration file.
#[derive(Debug, Clone)]
pub struct IssuerOptions {
    /// The issuer URL (`iss`); default the configuration's `public_url`, else
    /// `http://<listen>/`. A missing trailing slash is added; a path other than `/` is refused.
    pub public_url: Option<String>,
    /// The clock (tests use [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
    /// Print one line per request (method, path, status) on standard error.
    pub log_requests: bool,
    /// Require a server nonce in DPoP proofs at the token endpoint (RFC 9449 §8).
    pub dpop_nonce: bool,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        IssuerOptions {
            public_url: None,
            clock: Arc::new(SystemClock),
            log_requests: false,
            dpop_nonce: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ActiveFailure {
    failure: JwksFailure,
    until: Duration,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) url: String,
    pub(crate) secure: bool,
    pub(crate) cookie: String,
    pub(crate) log_requests: bool,
    pub(crate) clock: Arc<dyn Clock>,
    keys: Mutex<KeyRing>,
    pub(crate) store: Mutex<Store>,
    failure: Mutex<Option<ActiveFailure>>,
    pub(crate) dpop: crate::dpop::DpopState,
    pub(crate) clients: crate::clients::Directory,
    revocation: OnceLock<RuleWriter>,
}

/// A running issuer's state. Cheap to clone; every clone is the same issuer.
#[derive(Clone)]
pub struct Issuer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the tables stay
/// consistent: every update is a single insert or remove).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Normalizes an issuer URL: http or https, a host, no user info, query or fragment, path `/`.
pub fn normalize_issuer_url(text: &str) -> Result<Url, IssuerError> {
    let error = |reason| IssuerError::Url {
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text).map_err(|_| error("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(error("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("user info is not allowed"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error("a query or fragment is not allowed"));
    }
    if url.path() != "/" {
        return Err(error(
            "the issuer must be served at the root path (http://host:port/)",
        ));
    }
    Ok(url)
}

/// `DPoP` for a token bound to a key, `Bearer` otherwise (RFC 9449 §5).
fn token_type(jkt: Option<&str>) -> String {
    if jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned()
}

fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What a user-facing grant asks for: the parts every user token is built from.
pub(crate) struct UserGrant<'a> {
    pub(crate) client: &'a Client,
    pub(crate) user: &'a User,
    /// Already granted (see [`Issuer::grant_scopes`]).
    pub(crate) scopes: &'a [String],
    pub(crate) api: Option<&'a Api>,
    pub(crate) auth_time: i64,
    pub(crate) sid: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) lifetime: Option<u64>,
    /// The thumbprint of the client's DPoP key, when the token request carried a proof: the
    /// access token is bound to it (`cnf.jkt`), and so is a public client's refresh token.
    pub(crate) jkt: Option<&'a str>,
    /// Whether the API was named with `resource` (RFC 8707): `aud` is then the API alone, even
    /// with `openid` (the token is for that resource only).
    pub(crate) resource: bool,
}

impl Issuer {
    /// An issuer for `config` with `keys` (a current key is generated, and kept, for every
    /// algorithm the configuration uses).
    pub fn new(
        config: Config,
        mut keys: KeyRing,
        options: IssuerOptions,
    ) -> Result<Issuer, IssuerError> {
        let text = options
            .public_url
            .clone()
            .or_else(|| config.issuer.public_url.clone())
            .unwrap_or_else(|| format!("http://{}/", config.issuer.listen));
        let url = normalize_issuer_url(&text)?;
        let now = options.clock.unix();
        keys.expire(now)?;
        keys.ensure(&config.signing_algorithms(), now)?;
        let cookie = format!(
            "jwtgate_session_{}",
            url.port_or_known_default().unwrap_or(0)
        );
        Ok(Issuer {
            shared: Arc::new(Shared {
                secure: url.scheme() == "https",
                url: url.as_str().to_owned(),
                cookie,
                log_requests: options.log_requests,
                clock: options.clock,
                config,
                keys: Mutex::new(keys),
                store: Mutex::new(Store::default()),
                failure: Mutex::new(None),
                dpop: crate::dpop::DpopState::new(options.dpop_nonce),
                clients: crate::clients::Directory::default(),
                revocation: OnceLock::new(),
            }),
        })
    }

    /// Writes revocation rules to `writer` from now on: at logout, a rule refusing the user's
    /// access tokens issued until then; at `/oauth/revoke`, a rule refusing the access token
    /// revoked (or, for a refresh token, the user's access tokens). Gateways following the same
    /// file or Redis then refuse those tokens at once instead of at `exp`. Set once; false when
    /// a writer was already set.
    pub fn revoke_through(&self, writer: RuleWriter) -> bool {
        self.shared.revocation.set(writer).is_ok()
    }

    /// Revokes the access tokens of `sub` issued until now (this second included, since `iat` is
    /// whole seconds), kept as long as such a token can live. Failures are logged: logout goes on.
    pub(crate) async fn revoke_subject(&self, sub: &str) {
        let now = self.shared.clock.unix();
        self.revoke_subject_until(sub, now.saturating_add(1)).await;
    }

    /// Revokes the access tokens of `sub` issued before `before`, kept as long as such a token
    /// can live.
    pub(crate) async fn revoke_subject_until(&self, sub: &str, before: i64) {
        let Some(writer) = self.shared.revocation.get() else {
            return;
        };
        let now = self.shared.clock.unix();
        let lifetime =
            i64::try_from(self.shared.config.issuer.access_token_lifetime).unwrap_or(i64::MAX);
        let rule = Rule::subject(self.url(), sub, before, before.saturating_add(lifetime));
        self.write_rule(writer, rule, now).await;
    }

    /// Revokes the access token `jti` until its `exp`.
    pub(crate) async fn revoke_jti(&self, jti: &str, exp: i64) {
        let Some(writer) = self.shared.revocation.get() else {
            return;
        };
        let now = self.shared.clock.unix();
        if exp <= now {
            return;
        }
        self.write_rule(writer, Rule::jti(jti, exp), now).await;
    }

    async fn write_rule(
        &self,
        writer: &RuleWriter,
        rule: Result<Rule, jwtgate_revocation::RuleError>,
        now: i64,
    ) {
        let rule = match rule {
            Ok(rule) => rule,
            Err(error) => {
                tracing::warn!(%error, "no revocation rule written");
                return;
            }
        };
        match writer.add(&rule, now).await {
            Ok(()) => tracing::info!(%rule, "revocation rule written"),
            Err(error) => tracing::error!(%rule, %error, "revocation rule NOT written"),
        }
    }

    /// The issuer identifier, with its trailing slash: the `iss` of every token.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The published JWK set.
    pub fn jwks(&self) -> Value {
        let mut keys = lock(&self.shared.keys);
        if let Err(error) = keys.expire(self.shared.clock.unix()) {
            tracing::warn!(%error, "could not retire expired keys");
        }
        keys.jwks()
    }

    /// The OpenID Provider metadata, also served as RFC 8414 authorization server metadata:
    /// `registration_endpoint` while dynamic registration is on, and
    /// `client_id_metadata_document_supported` while metadata documents are fetched.
    pub fn discovery(&self) -> Value {
        let iss = self.url();
        let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for api in &self.shared.config.apis {
            for permission in &api.permissions {
                if !scopes.contains(permission) {
                    scopes.push(permission.clone());
                }
            }
        }
        let settings = &self.shared.config.issuer;
        let mut metadata = json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}authorize"),
            "token_endpoint": format!("{iss}oauth/token"),
            "userinfo_endpoint": format!("{iss}userinfo"),
            "jwks_uri": format!("{iss}.well-known/jwks.json"),
            "revocation_endpoint": format!("{iss}oauth/revoke"),
            "end_session_endpoint": format!("{iss}oidc/logout"),
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "web_message"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"],
            "claims_supported": [
                "aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "name",
                "nickname", "picture", "sid", "sub"
            ],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "client_id_metadata_document_supported": settings.client_metadata_documents,
        });
        if settings.dynamic_registration {
            metadata["registration_endpoint"] = json!(format!("{iss}register"));
        }
        metadata
    }

    /// Every signing key and its state.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let mut keys = lock(&self.shared.keys);
        if let Err(error) = keys.expire(self.shared.clock.unix()) {
            tracing::warn!(%error, "could not retire expired keys");
        }
        keys.describe()
    }

    /// Rotation step 1: publishes a next key per algorithm. Returns the new key ids.
    pub fn publish_next_keys(&self) -> Result<Vec<String>, IssuerError> {
        let now = self.shared.clock.unix();
        Ok(lock(&self.shared.keys).publish_next(now)?)
    }

    /// Rotation step 2: the next keys sign from now on (generated now where none was
    /// published); the replaced keys stay published for `grace` seconds (default: the
    /// configuration's `rotation_grace`). Returns the ids of the keys now current.
    pub fn activate_next_keys(&self, grace: Option<u64>) -> Result<Vec<String>, IssuerError> {
        let now = self.shared.clock.unix();
        let grace = grace.unwrap_or(self.shared.config.issuer.rotation_grace);
        Ok(lock(&self.shared.keys).activate(now, grace)?)
    }

    /// Rotation step 3 at once: unpublishes the replaced keys. Returns their ids.
    pub fn retire_keys(&self) -> Result<Vec<String>, IssuerError> {
        Ok(lock(&self.shared.keys).retire()?)
    }

    /// Makes the JWKS endpoint misbehave for `duration`.
    pub fn fail_jwks(&self, failure: JwksFailure, duration: Duration) -> FailureStatus {
        let until = self.shared.clock.now().saturating_add(duration);
        *lock(&self.shared.failure) = Some(ActiveFailure { failure, until });
        self.status_of(ActiveFailure { failure, until })
    }

    /// Ends an injected JWKS failure now.
    pub fn clear_jwks_failure(&self) {
        *lock(&self.shared.failure) = None;
    }

    /// The JWKS failure in force, if any.
    pub fn jwks_failure(&self) -> Option<FailureStatus> {
        let now = self.shared.clock.now();
        let mut failure = lock(&self.shared.failure);
        match *failure {
            Some(active) if active.until > now => Some(self.status_of(active)),
            Some(_) => {
                *failure = None;
                None
            }
            None => None,
        }
    }

    fn status_of(&self, active: ActiveFailure) -> FailureStatus {
        let now = self.shared.clock.now();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        FailureStatus {
            failure: active.failure,
            until_ms: millis(active.until),
            remaining_ms: millis(active.until.saturating_sub(now)),
        }
    }

    /// Issues tokens without a browser (see [`MintRequest`]).
    pub fn mint(&self, request: &MintRequest) -> Result<TokenResponse, IssuerError> {
        let config = &self.shared.config;
        let bad = |m: String| IssuerError::Request(m);
        let api = match &request.audience {
            Some(aud) => Some(config.api(aud).ok_or_else(|| {
                bad(format!(
                    "unknown audience {aud:?}: not an API in the configuration"
                ))
            })?),
            None => None,
        };
        if let Some(0) = request.lifetime {
            return Err(bad("lifetime must be greater than zero".into()));
        }
        let scopes: Option<Vec<String>> = request.scope.as_deref().map(split_scopes);
        match &request.user {
            None => {
                let client = match &request.client {
                    Some(id) => config
                        .client(id)
                        .ok_or_else(|| bad(format!("unknown client {id:?}")))?,
                    None => config
                        .clients
                        .iter()
                        .find(|c| c.allows(GrantType::ClientCredentials))
                        .ok_or_else(|| bad("no client may use client_credentials".into()))?,
                };
                let api =
                    api.ok_or_else(|| bad("a client token needs an audience (an API)".into()))?;
                let granted = self
                    .client_scopes(client, api, scopes.as_deref())
                    .map_err(bad)?;
                self.issue_client_token(client, api, &granted, request.lifetime, None)
            }
            Some(name) => {
                let ad_hoc;
                let user = match config.user(name) {
                    Some(user) => user,
                    None if crate::config::valid_username(name) => {
                        ad_hoc = User::ad_hoc(name);
                        &ad_hoc
                    }
                    None => return Err(bad(format!("{name:?} is not a valid user name"))),
                };
                let client = match &request.client {
                    Some(id) => config
                        .client(id)
                        .ok_or_else(|| bad(format!("unknown client {id:?}")))?,
                    None => config
                        .clients
                        .iter()
                        .find(|c| c.allows(GrantType::AuthorizationCode))
                        .ok_or_else(|| bad("no client may sign users in".into()))?,
                };
                if !client.allows(GrantType::AuthorizationCode) {
                    return Err(bad(format!("client {:?} cannot sign users in", client.id)));
                }
                let requested = scopes
                    .unwrap_or_else(|| ["openid", "profile", "email"].map(String::from).to_vec());
                let granted = self.grant_scopes(client, user, &requested, api);
                let sid = random::secret()?;
                let (response, _) = self.issue_user_tokens(
                    &UserGrant {
                        client,
                        user,
                        scopes: &granted,
                        api,
                        auth_time: self.shared.clock.unix(),
                        sid: &sid,
                        nonce: None,
                        lifetime: request.lifetime,
                        jkt: None,
                        resource: false,
                    },
                    None,
                )?;
                Ok(response)
            }
        }
    }

    fn signing_key(&self, alg: Algorithm) -> Result<Arc<SigningKey>, IssuerError> {
        let mut keys = lock(&self.shared.keys);
        if let Err(error) = keys.expire(self.shared.clock.unix()) {
            tracing::warn!(%error, "could not retire expired keys");
        }
        keys.current(alg).ok_or(IssuerError::NoKey(alg))
    }

    fn sign(&self, alg: Algorithm, typ: &str, claims: &Value) -> Result<String, IssuerError> {
        let key = self.signing_key(alg)?;
        let mut header = Map::new();
        header.insert("typ".into(), json!(typ));
        key.sign(&header, claims)
            .map_err(|e| IssuerError::Sign(e.to_string()))
    }

    /// The scopes a user gets: OpenID Connect scopes as requested (`offline_access` only where
    /// refresh tokens are allowed), and of the API's permissions those requested — and, with
    /// RBAC, held by the user. Unknown scopes are dropped, as Auth0 does.
    pub(crate) fn grant_scopes(
        &self,
        client: &Client,
        user: &User,
        requested: &[String],
        api: Option<&Api>,
    ) -> Vec<String> {
        let offline =
            client.allows(GrantType::RefreshToken) && api.is_none_or(|a| a.allow_offline_access);
        let mut granted: Vec<String> = Vec::new();
        for scope in requested {
            if granted.contains(scope) {
                continue;
            }
            let keep = match scope.as_str() {
                "offline_access" => offline,
                s if OIDC_SCOPES.contains(&s) => true,
                s => api.is_some_and(|api| {
                    api.permissions.iter().any(|p| p == s)
                        && (!api.rbac
                            || user.permissions_for(&api.identifier).iter().any(|p| p == s))
                }),
            };
            if keep {
                granted.push(scope.clone());
            }
        }
        granted
    }

    /// The scopes of a `client_credentials` token: all granted ones, or the requested ones if
    /// every one of them is granted.
    pub(crate) fn client_scopes(
        &self,
        client: &Client,
        api: &Api,
        requested: Option<&[String]>,
    ) -> Result<Vec<String>, String> {
        let Some(granted) = client.grants.get(&api.identifier) else {
            return Err(format!(
                "client {:?} has no grant for API {:?}",
                client.id, api.identifier
            ));
        };
        match requested {
            None => Ok(granted.clone()),
            Some(requested) => {
                let missing: Vec<&str> = requested
                    .iter()
                    .filter(|s| !granted.contains(s))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    let mut scopes: Vec<String> = Vec::new();
                    for s in requested {
                        if !scopes.contains(s) {
                            scopes.push(s.clone());
                        }
                    }
                    Ok(scopes)
                } else {
                    Err(format!(
                        "client {:?} has not been granted {} for API {:?}",
                        client.id,
                        missing.join(", "),
                        api.identifier
                    ))
                }
            }
        }
    }

    fn access_lifetime(&self, api: Option<&Api>, lifetime: Option<u64>) -> u64 {
        lifetime
            .or_else(|| api.and_then(|a| a.token_lifetime))
            .unwrap_or(self.shared.config.issuer.access_token_lifetime)
    }

    /// Issues the access token, ID token and (with `offline_access`) a refresh token of
    /// `family` (a new family when `None`). Returns the response and the refresh family.
    pub(crate) fn issue_user_tokens(
        &self,
        grant: &UserGrant<'_>,
        family: Option<&str>,
    ) -> Result<(TokenResponse, Option<String>), IssuerError> {
        let now = self.shared.clock.unix();
        let iss = self.url();
        let lifetime = self.access_lifetime(grant.api, grant.lifetime);
        let has = |s: &str| grant.scopes.iter().any(|g| g == s);
        let scope = grant.scopes.join(" ");

        let access_token = match grant.api {
            Some(api) => {
                let mut claims = grant.user.access_token_claims.clone();
                claims.insert("iss".into(), json!(iss));
                claims.insert("sub".into(), json!(grant.user.sub));
                let aud = if has("openid") && !grant.resource {
                    json!([api.identifier, format!("{iss}userinfo")])
                } else {
                    json!(api.identifier)
                };
                claims.insert("aud".into(), aud);
                claims.insert("iat".into(), json!(now));
                claims.insert("exp".into(), json!(now.saturating_add(seconds(lifetime))));
                claims.insert("scope".into(), json!(scope));
                claims.insert("azp".into(), json!(grant.client.id));
                if api.rbac {
                    claims.insert(
                        "permissions".into(),
                        json!(grant.user.permissions_for(&api.identifier)),
                    );
                }
                if let Some(jkt) = grant.jkt {
                    claims.insert("cnf".into(), json!({ "jkt": jkt }));
                }
                self.sign_access_token(api, grant.client, claims)?
            }
            None => lock(&self.shared.store).issue_opaque(
                OpaqueGrant {
                    user: grant.user.clone(),
                    client_id: grant.client.id.clone(),
                    scopes: grant.scopes.to_vec(),
                    expires_at: now.saturating_add(seconds(lifetime)),
                },
                now,
            )?,
        };

        let id_token = if has("openid") {
            let mut claims = profile_claims(grant.user, grant.scopes);
            claims.insert("iss".into(), json!(iss));
            claims.insert("aud".into(), json!(grant.client.id));
            claims.insert("sub".into(), json!(grant.user.sub));
            claims.insert("iat".into(), json!(now));
            let id_lifetime = self.shared.config.issuer.id_token_lifetime;
            claims.insert(
                "exp".into(),
                json!(now.saturating_add(seconds(id_lifetime))),
            );
            claims.insert("auth_time".into(), json!(grant.auth_time));
            claims.insert("sid".into(), json!(grant.sid));
            if let Some(nonce) = grant.nonce {
                claims.insert("nonce".into(), json!(nonce));
            }
            claims.insert("at_hash".into(), json!(random::at_hash(&access_token)));
            Some(self.sign(Algorithm::RS256, "JWT", &Value::Object(claims))?)
        } else {
            None
        };

        let (refresh_token, family) = if has("offline_access") {
            let family = match family {
                Some(f) => f.to_owned(),
                None => random::secret()?,
            };
            let refresh_lifetime = self.shared.config.issuer.refresh_token_lifetime;
            let token = lock(&self.shared.store).issue_refresh(
                RefreshGrant {
                    family: family.clone(),
                    client_id: grant.client.id.clone(),
                    user: grant.user.clone(),
                    scopes: grant.scopes.to_vec(),
                    audience: grant.api.map(|a| a.identifier.clone()),
                    resource: grant.resource,
                    auth_time: grant.auth_time,
                    sid: grant.sid.to_owned(),
                    expires_at: now.saturating_add(seconds(refresh_lifetime)),
                    jkt: grant
                        .jkt
                        .filter(|_| grant.client.is_public())
                        .map(str::to_owned),
                },
                now,
            )?;
            (Some(token), Some(family))
        } else {
            (None, None)
        };

        Ok((
            TokenResponse {
                access_token,
                id_token,
                refresh_token,
                scope,
                expires_in: lifetime,
                token_type: token_type(grant.api.and(grant.jkt)),
            },
            family,
        ))
    }

    /// Issues a `client_credentials` access token (Auth0's machine-to-machine shape: `sub`
    /// `<client_id>@clients`, `gty` `client-credentials`).
    pub(crate) fn issue_client_token(
        &self,
        client: &Client,
        api: &Api,
        scopes: &[String],
        lifetime: Option<u64>,
        jkt: Option<&str>,
    ) -> Result<TokenResponse, IssuerError> {
        let now = self.shared.clock.unix();
        let lifetime = self.access_lifetime(Some(api), lifetime);
        let scope = scopes.join(" ");
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.url()));
        claims.insert("sub".into(), json!(format!("{}@clients", client.id)));
        claims.insert("aud".into(), json!(api.identifier));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(seconds(lifetime))));
        claims.insert("scope".into(), json!(scope));
        claims.insert("gty".into(), json!("client-credentials"));
        claims.insert("azp".into(), json!(client.id));
        if api.rbac {
            claims.insert("permissions".into(), json!(scopes));
        }
        if let Some(jkt) = jkt {
            claims.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let access_token = self.sign_access_token(api, client, claims)?;
        Ok(TokenResponse {
            access_token,
            id_token: None,
            refresh_token: None,
            scope,
            expires_in: lifetime,
            token_type: token_type(jkt),
        })
    }

    fn sign_access_token(
        &self,
        api: &Api,
        client: &Client,
        mut claims: Map<String, Value>,
    ) -> Result<String, IssuerError> {
        let typ = match api.profile {
            TokenProfile::Auth0 => "JWT",
            TokenProfile::Rfc9068 => {
                claims.insert("client_id".into(), json!(client.id));
                claims.insert("jti".into(), json!(random::token(16)?));
                "at+jwt"
            }
        };
        self.sign(api.signing_alg, typ, &Value::Object(claims))
    }
}

/// Splits a space-delimited scope string, dropping empty entries and duplicates.
pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in text.split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|s2| s2 == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// The user's claims for an ID token or userinfo under `scopes`: `name`, `nickname` and
/// `picture` with `profile`; `email` and `email_verified` with `email`; configured custom
/// claims always.
pub(crate) fn profile_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let mut claims = Map::new();
    if has("profile") {
        claims.insert("nickname".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        if let Some(picture) = &user.picture {
            claims.insert("picture".into(), json!(picture));
        }
    }
    if has("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    for (name, value) in &user.claims {
        claims.insert(name.clone(), value.clone());
    }
    claims
}
