//! The issuer's configuration: TOML, validated once at start-up into the types below.
//!
//! The built-in default ([`Config::builtin`], the file `default.toml` beside this module) is what
//! `jwtgate issuer` runs when no `--config` is given: the API `https://api.jwtgate.local/` with
//! permissions `read:users` and `write:users` (RBAC on), the public SPA client `jwtgate-spa`
//! (redirect URIs and origins `http://localhost:*` and `http://127.0.0.1:*`), the machine client
//! `jwtgate-m2m` with secret `jwtgate-m2m-secret` granted `read:users`, and the users `alice`
//! (`read:users`) and `bob` (no permissions).
//!
//! A configuration file is complete in itself: sections it leaves out are empty (only the
//! `[issuer]` settings have defaults). Unknown keys are errors, so typos do not pass silently.

use crate::pattern::{PatternError, UriPattern};
use jwtgate_core::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The built-in default configuration, as TOML.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// Claims the issuer sets itself; configured custom claims may not replace them.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "azp",
    "scope",
    "permissions",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "sid",
    "client_id",
    "gty",
];

/// The OpenID Connect scopes the issuer understands besides the APIs' permissions.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The text is not valid TOML or has unknown or mistyped keys.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A value is inconsistent or out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A redirect URI, logout URL or origin is not usable.
    #[error("invalid configuration: {0}")]
    Pattern(#[from] PatternError),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Issuer-wide settings (`[issuer]`).
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerSettings {
    /// Address to listen on (default `127.0.0.1:4400`; `--listen` overrides it).
    pub listen: SocketAddr,
    /// The issuer URL clients use (`iss`, discovery); default `http://<listen>/`.
    pub public_url: Option<String>,
    /// Access-token lifetime in seconds, the token response's `expires_in` (default 3600).
    pub access_token_lifetime: u64,
    /// ID-token lifetime in seconds (default 36000, as Auth0).
    pub id_token_lifetime: u64,
    /// Refresh-token lifetime in seconds, renewed at each rotation (default 30 days).
    pub refresh_token_lifetime: u64,
    /// Login-session lifetime in seconds (the issuer's cookie; default 24 h).
    pub session_lifetime: u64,
    /// Authorization-code lifetime in seconds (default 300).
    pub code_lifetime: u64,
    /// Seconds a replaced signing key stays published after a switch (default 900).
    pub rotation_grace: u64,
    /// `Cache-Control: max-age` of the JWKS and discovery responses (default 300).
    pub jwks_max_age: u64,
    /// Whether the login page accepts a typed name that is not a configured user (default true).
    pub allow_any_user: bool,
    /// RFC 7591 dynamic client registration at `/register` (default true).
    pub dynamic_registration: bool,
    /// Most registrations accepted per minute, issuer-wide (default 20).
    pub registrations_per_minute: u32,
    /// Whether an `https://` `client_id` is a Client ID Metadata Document to fetch (default true).
    pub client_metadata_documents: bool,
    /// Whether a `client_id` on a loopback host (`127.0.0.1`, `localhost`, `[::1]`; `http://`
    /// too) is fetched — for tests, where the document is served on a free local port (default
    /// false).
    pub allow_loopback_client_metadata: bool,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 4400)),
            public_url: None,
            access_token_lifetime: 3600,
            id_token_lifetime: 36000,
            refresh_token_lifetime: 30 * 24 * 3600,
            session_lifetime: 24 * 3600,
            code_lifetime: 300,
            rotation_grace: 900,
            jwks_max_age: 300,
            allow_any_user: true,
            dynamic_registration: true,
            registrations_per_minute: 20,
            client_metadata_documents: true,
            allow_loopback_client_metadata: false,
        }
    }
}

/// The access-token format of an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenProfile {
    /// Auth0's shape: header `typ` `JWT`; no `client_id` or `jti`.
    #[default]
    Auth0,
    /// RFC 9068: header `typ` `at+jwt`, plus `client_id` and `jti`.
    Rfc9068,
}

/// An API (resource server) tokens can be requested for with `audience` (`[[apis]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// The identifier: the `audience` clients request and the tokens' `aud`.
    pub identifier: String,
    /// Display name.
    pub name: Option<String>,
    /// The API's permissions (scopes), e.g. `read:users`.
    pub permissions: Vec<String>,
    /// Role-based access control: a user gets only the permissions configured for them, and
    /// tokens carry a `permissions` claim (default true).
    pub rbac: bool,
    /// Algorithm of this API's access tokens: any asymmetric JWS algorithm (default RS256).
    pub signing_alg: Algorithm,
    /// Access-token lifetime for this API, overriding the issuer-wide one.
    pub token_lifetime: Option<u64>,
    /// Token format (default `auth0`).
    pub profile: TokenProfile,
    /// Whether refresh tokens may be issued for this API (default true).
    pub allow_offline_access: bool,
}

/// An OAuth grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code` (with PKCE for public clients).
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials` (confidential clients only).
    ClientCredentials,
}

impl GrantType {
    /// The grant type's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

/// A client application (`[[clients]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Display name (shown on the login page).
    pub name: Option<String>,
    /// The secret of a confidential client; `None` for a public client (an SPA).
    pub secret: Option<String>,
    /// Registered redirect URIs (exact, or `scheme://host:*[/path]`).
    pub redirect_uris: Vec<UriPattern>,
    /// Origins allowed to call the token, revocation and userinfo endpoints from a browser.
    pub allowed_origins: Vec<UriPattern>,
    /// Where logout may return to, besides the redirect URIs.
    pub logout_urls: Vec<UriPattern>,
    /// Grant types allowed. Default: public clients `authorization_code` and `refresh_token`;
    /// confidential clients those and `client_credentials`.
    pub grant_types: Vec<GrantType>,
    /// For `client_credentials`: the permissions granted per API identifier.
    pub grants: BTreeMap<String, Vec<String>>,
}

impl Client {
    /// True for a public client (no secret).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    /// True when the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The registered redirect URI matching `candidate`, as the URL to redirect to.
    pub fn redirect_target(&self, candidate: &str) -> Option<url::Url> {
        self.redirect_uris.iter().find_map(|p| p.matches(candidate))
    }

    /// The logout return URL matching `candidate` (logout URLs and redirect URIs).
    pub fn logout_target(&self, candidate: &str) -> Option<url::Url> {
        self.logout_urls
            .iter()
            .chain(&self.redirect_uris)
            .find_map(|p| p.matches(candidate))
    }

    /// True when a browser page at `origin` may call the issuer's APIs for this client.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|p| p.matches_origin(origin))
    }
}

/// A user who can sign in (`[[users]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The name picked or typed on the login page.
    pub username: String,
    /// The subject, `sub` (default `jwtgate|<username>`).
    pub sub: String,
    /// Full name (`name`, with scope `profile`).
    pub name: Option<String>,
    /// E-mail address (`email`, with scope `email`).
    pub email: Option<String>,
    /// `email_verified` (default true).
    pub email_verified: bool,
    /// Picture URL (`picture`, with scope `profile`).
    pub picture: Option<String>,
    /// Extra claims for the ID token and userinfo, whatever the scope.
    pub claims: Map<String, Value>,
    /// Extra claims for access tokens (e.g. `"https://app.example/roles" = ["admin"]`).
    pub access_token_claims: Map<String, Value>,
    /// Permissions per API identifier (used when the API has RBAC on).
    pub permissions: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user who is not in the configuration: a name typed on the login page (or given to
    /// `jwtgate mint`). No e-mail, no permissions.
    pub fn ad_hoc(username: &str) -> User {
        User {
            username: username.to_owned(),
            sub: format!("jwtgate|{username}"),
            name: Some(username.to_owned()),
            email: None,
            email_verified: false,
            picture: None,
            claims: Map::new(),
            access_token_claims: Map::new(),
            permissions: BTreeMap::new(),
        }
    }

    /// The user's permissions for `api`.
    pub fn permissions_for(&self, api: &str) -> &[String] {
        self.permissions.get(api).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// True when `name` can be a username: 1 to 64 characters of letters, digits and `._@+-`.
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Issuer-wide settings.
    pub issuer: IssuerSettings,
    /// The APIs.
    pub apis: Vec<Api>,
    /// The clients.
    pub clients: Vec<Client>,
    /// The users.
    pub users: Vec<User>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    issuer: RawIssuer,
    #[serde(default)]
    apis: Vec<RawApi>,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    listen: Option<String>,
    public_url: Option<String>,
    access_token_lifetime: Option<u64>,
    id_token_lifetime: Option<u64>,
    refresh_token_lifetime: Option<u64>,
    session_lifetime: Option<u64>,
    code_lifetime: Option<u64>,
    rotation_grace: Option<u64>,
    jwks_max_age: Option<u64>,
    allow_any_user: Option<bool>,
    dynamic_registration: Option<bool>,
    registrations_per_minute: Option<u64>,
    client_metadata_documents: Option<bool>,
    allow_loopback_client_metadata: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    identifier: String,
    name: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    rbac: Option<bool>,
    signing_alg: Option<String>,
    token_lifetime: Option<u64>,
    #[serde(default)]
    profile: TokenProfile,
    allow_offline_access: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: String,
    name: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    logout_urls: Vec<String>,
    grant_types: Option<Vec<GrantType>>,
    #[serde(default)]
    grants: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    sub: Option<String>,
    name: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    picture: Option<String>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    access_token_claims: Map<String, Value>,
    #[serde(default)]
    permissions: BTreeMap<String, Vec<String>>,
}

fn positive(name: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value {
        Some(0) => Err(invalid(format!("{name} must be greater than zero"))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn check_scope_token(what: &str, scope: &str) -> Result<(), ConfigError> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} {scope:?} is not a valid scope token (printable ASCII, no spaces, quotes or backslashes)"
        )))
    }
}

fn check_custom_claims(user: &str, claims: &Map<String, Value>) -> Result<(), ConfigError> {
    for name in claims.keys() {
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(invalid(format!(
                "user {user:?}: claim {name:?} is set by the issuer and cannot be configured"
            )));
        }
    }
    Ok(())
}

impl Config {
    /// The built-in default configuration.
    pub fn builtin() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_CONFIG_TOML)
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Config::from_toml(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let defaults = IssuerSettings::default();
        let listen = match raw.issuer.listen {
            Some(text) => text.parse().map_err(|_| {
                invalid(format!(
                    "issuer.listen {text:?} is not an address like 127.0.0.1:4400"
                ))
            })?,
            None => defaults.listen,
        };
        let issuer = IssuerSettings {
            listen,
            public_url: raw.issuer.public_url,
            access_token_lifetime: positive(
                "issuer.access_token_lifetime",
                raw.issuer.access_token_lifetime,
                defaults.access_token_lifetime,
            )?,
            id_token_lifetime: positive(
                "issuer.id_token_lifetime",
                raw.issuer.id_token_lifetime,
                defaults.id_token_lifetime,
            )?,
            refresh_token_lifetime: positive(
                "issuer.refresh_token_lifetime",
                raw.issuer.refresh_token_lifetime,
                defaults.refresh_token_lifetime,
            )?,
            session_lifetime: positive(
                "issuer.session_lifetime",
                raw.issuer.session_lifetime,
                defaults.session_lifetime,
            )?,
            code_lifetime: positive(
                "issuer.code_lifetime",
                raw.issuer.code_lifetime,
                defaults.code_lifetime,
            )?,
            rotation_grace: raw.issuer.rotation_grace.unwrap_or(defaults.rotation_grace),
            jwks_max_age: raw.issuer.jwks_max_age.unwrap_or(defaults.jwks_max_age),
            allow_any_user: raw.issuer.allow_any_user.unwrap_or(defaults.allow_any_user),
            dynamic_registration: raw
                .issuer
                .dynamic_registration
                .unwrap_or(defaults.dynamic_registration),
            registrations_per_minute: u32::try_from(positive(
                "issuer.registrations_per_minute",
                raw.issuer.registrations_per_minute,
                u64::from(defaults.registrations_per_minute),
            )?)
            .map_err(|_| invalid("issuer.registrations_per_minute is too large"))?,
            client_metadata_documents: raw
                .issuer
                .client_metadata_documents
                .unwrap_or(defaults.client_metadata_documents),
            allow_loopback_client_metadata: raw
                .issuer
                .allow_loopback_client_metadata
                .unwrap_or(defaults.allow_loopback_client_metadata),
        };

        let mut apis = Vec::new();
        for api in raw.apis {
            if api.identifier.is_empty() || api.identifier.contains(char::is_whitespace) {
                return Err(invalid(format!(
                    "API identifier {:?} must be non-empty without spaces",
                    api.identifier
                )));
            }
            if apis.iter().any(|a: &Api| a.identifier == api.identifier) {
                return Err(invalid(format!(
                    "API {:?} is configured twice",
                    api.identifier
                )));
            }
            let mut seen = BTreeSet::new();
            for permission in &api.permissions {
                check_scope_token("permission", permission)?;
                if crate::config::OIDC_SCOPES.contains(&permission.as_str()) {
                    return Err(invalid(format!(
                        "API {:?}: {permission:?} is an OpenID Connect scope, not an API permission",
                        api.identifier
                    )));
                }
                if !seen.insert(permission) {
                    return Err(invalid(format!(
                        "API {:?}: permission {permission:?} listed twice",
                        api.identifier
                    )));
                }
            }
            let alg_name = api.signing_alg.as_deref().unwrap_or("RS256");
            let signing_alg: Algorithm = alg_name.parse().map_err(|_| {
                invalid(format!(
                    "API {:?}: signing_alg {alg_name:?} is not a JWS algorithm",
                    api.identifier
                ))
            })?;
            if signing_alg.is_symmetric() {
                return Err(invalid(format!(
                    "API {:?}: signing_alg {alg_name} is symmetric; use RS256, PS256, ES256 or EdDSA (the key must be publishable in the JWKS)",
                    api.identifier
                )));
            }
            apis.push(Api {
                token_lifetime: match api.token_lifetime {
                    Some(0) => {
                        return Err(invalid(format!(
                            "API {:?}: token_lifetime must be greater than zero",
                            api.identifier
                        )))
                    }
                    other => other,
                },
                identifier: api.identifier,
                name: api.name,
                permissions: api.permissions,
                rbac: api.rbac.unwrap_or(true),
                signing_alg,
                profile: api.profile,
                allow_offline_access: api.allow_offline_access.unwrap_or(true),
            });
        }

        let known_permission = |api_id: &str, permission: &str, whose: &str| match apis
            .iter()
            .find(|a| a.identifier == api_id)
        {
            None => Err(invalid(format!("{whose}: unknown API {api_id:?}"))),
            Some(api) if !api.permissions.iter().any(|p| p == permission) => Err(invalid(format!(
                "{whose}: API {api_id:?} has no permission {permission:?} (it has: {})",
                api.permissions.join(", ")
            ))),
            Some(_) => Ok(()),
        };

        let mut clients: Vec<Client> = Vec::new();
        for client in raw.clients {
            if client.id.is_empty() || !client.id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(format!(
                    "client id {:?} must be non-empty printable ASCII without spaces",
                    client.id
                )));
            }
            if clients.iter().any(|c| c.id == client.id) {
                return Err(invalid(format!(
                    "client {:?} is configured twice",
                    client.id
                )));
            }
            if client.secret.as_deref() == Some("") {
                return Err(invalid(format!(
                    "client {:?}: an empty secret; leave `secret` out for a public client",
                    client.id
                )));
            }
            let grant_types = match client.grant_types {
                Some(list) if list.is_empty() => {
                    return Err(invalid(format!(
                        "client {:?}: grant_types is empty",
                        client.id
                    )))
                }
                Some(list) => list,
                None if client.secret.is_some() => vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::ClientCredentials,
                ],
                None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            };
            if client.secret.is_none() && grant_types.contains(&GrantType::ClientCredentials) {
                return Err(invalid(format!(
                    "client {:?}: client_credentials needs a confidential client (set `secret`)",
                    client.id
                )));
            }
            let whose = format!("client {:?} grants", client.id);
            for (api, permissions) in &client.grants {
                if !apis.iter().any(|a| &a.identifier == api) {
                    return Err(invalid(format!("{whose}: unknown API {api:?}")));
                }
                for permission in permissions {
                    known_permission(api, permission, &whose)?;
                }
            }
            let parse_all = |list: &[String]| -> Result<Vec<UriPattern>, ConfigError> {
                list.iter()
                    .map(|s| UriPattern::parse(s).map_err(ConfigError::from))
                    .collect()
            };
            clients.push(Client {
                redirect_uris: parse_all(&client.redirect_uris)?,
                allowed_origins: parse_all(&client.allowed_origins)?,
                logout_urls: parse_all(&client.logout_urls)?,
                id: client.id,
                name: client.name,
                secret: client.secret,
                grant_types,
                grants: client.grants,
            });
        }

        let mut users: Vec<User> = Vec::new();
        for user in raw.users {
            if !valid_username(&user.username) {
                return Err(invalid(format!(
                    "username {:?}: use 1 to 64 letters, digits or ._@+-",
                    user.username
                )));
            }
            let sub = user
                .sub
                .unwrap_or_else(|| format!("jwtgate|{}", user.username));
            if sub.is_empty() {
                return Err(invalid(format!(
                    "user {:?}: sub must not be empty",
                    user.username
                )));
            }
            if users
                .iter()
                .any(|u| u.username == user.username || u.sub == sub)
            {
                return Err(invalid(format!(
                    "user {:?} (sub {sub:?}) is configured twice",
                    user.username
                )));
            }
            check_custom_claims(&user.username, &user.claims)?;
            check_custom_claims(&user.username, &user.access_token_claims)?;
            let whose = format!("user {:?} permissions", user.username);
            for (api, permissions) in &user.permissions {
                if !apis.iter().any(|a| &a.identifier == api) {
                    return Err(invalid(format!("{whose}: unknown API {api:?}")));
                }
                for permission in permissions {
                    known_permission(api, permission, &whose)?;
                }
            }
            users.push(User {
                username: user.username,
                sub,
                name: user.name,
                email: user.email,
                email_verified: user.email_verified.unwrap_or(true),
                picture: user.picture,
                claims: user.claims,
                access_token_claims: user.access_token_claims,
                permissions: user.permissions,
            });
        }

        Ok(Config {
            issuer,
            apis,
            clients,
            users,
        })
    }

    /// The API with identifier `audience`.
    pub fn api(&self, audience: &str) -> Option<&Api> {
        self.apis.iter().find(|a| a.identifier == audience)
    }

    /// The client with id `client_id`.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == client_id)
    }

    /// The configured user named `username`.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// True when some client allows browser calls from `origin`.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.clients.iter().any(|c| c.allows_origin(origin))
    }

    /// The signing algorithms in use: RS256 (ID tokens) and every API's algorithm.
    pub fn signing_algorithms(&self) -> Vec<Algorithm> {
        let mut algs = vec![Algorithm::RS256];
        for api in &self.apis {
            if !algs.contains(&api.signing_alg) {
                algs.push(api.signing_alg);
            }
        }
        algs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builtin_default_is_as_documented() {
        let config = match Config::builtin() {
            Ok(c) => c,
            Err(e) => unreachable!("{e}"),
        };
        assert_eq!(config.issuer.listen.to_string(), "127.0.0.1:4400");
        let api = config.api("https://api.jwtgate.local/");
        assert!(api.is_some_and(|a| a.rbac
            && a.permissions == ["read:users", "write:users"]
            && a.signing_alg == Algorithm::RS256));
        let spa = config.client("jwtgate-spa");
        assert!(spa.is_some_and(|c| c.is_public()
            && c.redirect_target("http://localhost:5173/callback")
                .is_some()
            && c.allows_origin("http://localhost:5173")
            && !c.allows(GrantType::ClientCredentials)));
        let m2m = config.client("jwtgate-m2m");
        assert!(
            m2m.is_some_and(|c| c.secret.as_deref() == Some("jwtgate-m2m-secret")
                && c.grant_types == [GrantType::ClientCredentials]
                && c.grants.get("https://api.jwtgate.local/")
                    == Some(&vec!["read:users".to_owned()]))
        );
        let alice = config.user("alice");
        assert!(alice.is_some_and(|u| u.sub == "jwtgate|alice"
            && u.permissions_for("https://api.jwtgate.local/") == ["read:users"]));
        let bob = config.user("bob");
        assert!(bob.is_some_and(|u| u.permissions_for("https://api.jwtgate.local/").is_empty()));
    }

    #[test]
    fn typos_and_inconsistencies_are_errors() {
        assert!(err("[issuer]\nlisten_on = \"x\"").contains("unknown field"));
        assert!(err("[[apis]]\nidentifier = \"a\"\nsigning_alg = \"HS256\"").contains("symmetric"));
        assert!(err("[[apis]]\nidentifier = \"a\"\nsigning_alg = \"none\"").contains("not a JWS"));
        assert!(
            err("[[clients]]\nid = \"c\"\ngrant_types = [\"client_credentials\"]")
                .contains("confidential")
        );
        assert!(
            err("[[clients]]\nid = \"c\"\nredirect_uris = [\"http://*:1/\"]")
                .contains("usable URL pattern")
        );
        assert!(err(
            "[[apis]]\nidentifier = \"a\"\npermissions = [\"r\"]\n[[users]]\nusername = \"u\"\n[users.permissions]\na = [\"w\"]"
        )
        .contains("has no permission \"w\""));
        assert!(
            err("[[users]]\nusername = \"u\"\n[users.claims]\nsub = \"x\"")
                .contains("set by the issuer")
        );
        assert!(err("[[users]]\nusername = \"a b\"").contains("username"));
        assert!(err("[issuer]\naccess_token_lifetime = 0").contains("greater than zero"));
        assert!(err("[[users]]\nusername = \"u\"\n[[users]]\nusername = \"u\"").contains("twice"));
    }
}
