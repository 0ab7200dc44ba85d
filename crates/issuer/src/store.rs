//! What the issuer remembers between requests, in memory: login sessions, sign-ins waiting on the
//! login page, authorization codes, refresh tokens and opaque access tokens.
//!
//! Every entry expires; expired entries are swept whenever something is added, and each table
//! holds at most [`MAX_ENTRIES`] live entries, so unauthenticated requests cannot grow memory
//! without bound. Codes are single-use; a reused code, or a refresh token used again after its
//! rotation, revokes the refresh tokens descended from the same login (RFC 6749 §4.1.2, OAuth 2.0
//! Security BCP §4.14). Nothing here survives a restart: a restarted issuer has no sessions, so
//! users sign in again (the signing keys, which do survive, live in the key ring).

use crate::config::User;
use crate::random::{self, RandomError};
use std::collections::HashMap;
use url::Url;

/// Most live entries in one table.
pub const MAX_ENTRIES: usize = 10_000;

/// The store cannot take the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Randomness failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A table is full of live entries.
    #[error("too many pending entries; try again later")]
    Full,
}

/// How `/authorize` delivers its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// A 302 redirect with the parameters in the query string.
    Query,
    /// An HTML page that `postMessage`s the parameters to the opener or parent window.
    WebMessage,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// `redirect_uri` exactly as sent (the token request must repeat it).
    pub redirect_uri: String,
    /// Where the response goes.
    pub target: Url,
    /// How the response is delivered.
    pub response_mode: ResponseMode,
    /// `state`, echoed byte for byte.
    pub state: Option<String>,
    /// `nonce`, copied into the ID token.
    pub nonce: Option<String>,
    /// Requested scopes, in order, without duplicates.
    pub scopes: Vec<String>,
    /// Requested API: the `resource` (RFC 8707), else the `audience`.
    pub audience: Option<String>,
    /// Whether the API was named with `resource`: the access token's `aud` is then the resource
    /// alone, and a `resource` at the token endpoint must repeat it.
    pub resource: bool,
    /// The client's display name (from the configuration or the client's own metadata).
    pub client_name: Option<String>,
    /// PKCE `S256` challenge.
    pub code_challenge: Option<String>,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user: User,
    /// When they signed in (Unix seconds).
    pub auth_time: i64,
    /// The public session id (`sid` in ID tokens; not the cookie value).
    pub sid: String,
    expires_at: i64,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The request it answers.
    pub request: AuthRequest,
    /// The session it was issued in.
    pub session: Session,
    expires_at: i64,
}

/// What looking up an authorization code found.
#[derive(Debug)]
pub enum CodeLookup {
    /// A valid code, now consumed.
    Fresh(Box<CodeGrant>),
    /// Already exchanged once; the tokens issued for it have just been revoked.
    Reused,
    /// Issued but expired (now consumed).
    Expired,
    /// Never issued.
    Unknown,
}

/// An issued refresh token's grant.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// All refresh tokens rotated from one code exchange share a family.
    pub family: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user: User,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The API.
    pub audience: Option<String>,
    /// Whether the API was named with `resource` (RFC 8707): `aud` is the resource alone.
    pub resource: bool,
    /// The original sign-in time.
    pub auth_time: i64,
    /// The session id at sign-in.
    pub sid: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The DPoP key (thumbprint) a public client's refresh token is bound to: refreshing needs
    /// a proof by that key.
    pub jkt: Option<String>,
}

/// What looking up a refresh token found.
#[derive(Debug)]
pub enum RefreshLookup {
    /// A live token, now consumed (the caller issues its successor).
    Fresh(Box<RefreshGrant>),
    /// A token already rotated away: reuse; its family has just been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// An opaque access token's grant (for `/userinfo`).
#[derive(Debug, Clone)]
pub struct OpaqueGrant {
    /// The user.
    pub user: User,
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

#[derive(Debug)]
struct Pending {
    request: AuthRequest,
    expires_at: i64,
}

#[derive(Debug)]
struct UsedCode {
    family: Option<String>,
    expires_at: i64,
}

#[derive(Debug)]
struct Rotated {
    family: String,
    expires_at: i64,
}

/// The in-memory tables.
#[derive(Debug, Default)]
pub struct Store {
    sessions: HashMap<String, Session>,
    logins: HashMap<String, Pending>,
    codes: HashMap<String, CodeGrant>,
    used_codes: HashMap<String, UsedCode>,
    refresh: HashMap<String, RefreshGrant>,
    rotated: HashMap<String, Rotated>,
    opaque: HashMap<String, OpaqueGrant>,
}

fn admit<V>(
    table: &mut HashMap<String, V>,
    live: impl Fn(&V) -> bool,
    value: V,
) -> Result<String, StoreError> {
    table.retain(|_, v| live(v));
    if table.len() >= MAX_ENTRIES {
        return Err(StoreError::Full);
    }
    let key = random::secret()?;
    table.insert(key.clone(), value);
    Ok(key)
}

impl Store {
    /// Starts a session for `user`; returns the cookie value and the session. The cookie value
    /// is a secret of its own; the session's public `sid` (put in ID tokens) is another random
    /// value, so an ID token never reveals the cookie.
    pub fn start_session(
        &mut self,
        user: User,
        now: i64,
        lifetime: u64,
    ) -> Result<(String, Session), StoreError> {
        let expires_at = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        let session = Session {
            user,
            auth_time: now,
            sid: random::token(16)?,
            expires_at,
        };
        let cookie = admit(&mut self.sessions, |s| s.expires_at > now, session.clone())?;
        Ok((cookie, session))
    }

    /// The live session whose cookie value is `cookie`.
    pub fn session(&self, cookie: &str, now: i64) -> Option<Session> {
        self.sessions
            .get(cookie)
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// Ends the session whose cookie value is `cookie` (logout); returns it, if there was one.
    pub fn end_session(&mut self, cookie: &str) -> Option<Session> {
        self.sessions.remove(cookie)
    }

    /// Parks an authorization request while the login page is shown; returns its id.
    pub fn park_login(
        &mut self,
        request: AuthRequest,
        now: i64,
        lifetime: u64,
    ) -> Result<String, StoreError> {
        let expires_at = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        admit(
            &mut self.logins,
            |p| p.expires_at > now,
            Pending {
                request,
                expires_at,
            },
        )
    }

    /// Takes a parked request (single use).
    pub fn take_login(&mut self, id: &str, now: i64) -> Option<AuthRequest> {
        self.logins
            .remove(id)
            .filter(|p| p.expires_at > now)
            .map(|p| p.request)
    }

    /// Issues an authorization code.
    pub fn issue_code(
        &mut self,
        request: AuthRequest,
        session: Session,
        now: i64,
        lifetime: u64,
    ) -> Result<String, StoreError> {
        let expires_at = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        self.used_codes.retain(|_, u| u.expires_at > now);
        admit(
            &mut self.codes,
            |c| c.expires_at > now,
            CodeGrant {
                request,
                session,
                expires_at,
            },
        )
    }

    /// Consumes a code. A second use revokes the refresh tokens issued for the first.
    pub fn redeem_code(&mut self, code: &str, now: i64) -> CodeLookup {
        if let Some(grant) = self.codes.remove(code) {
            // Remember the code until well after it would have expired, to detect reuse.
            self.used_codes.insert(
                code.to_owned(),
                UsedCode {
                    family: None,
                    expires_at: grant.expires_at.saturating_add(3600),
                },
            );
            if grant.expires_at <= now {
                return CodeLookup::Expired;
            }
            return CodeLookup::Fresh(Box::new(grant));
        }
        match self.used_codes.get(code).map(|u| u.family.clone()) {
            Some(family) => {
                if let Some(family) = family {
                    self.revoke_family(&family);
                }
                CodeLookup::Reused
            }
            None => CodeLookup::Unknown,
        }
    }

    /// Records the refresh-token family issued for a redeemed code.
    pub fn link_code(&mut self, code: &str, family: &str) {
        if let Some(used) = self.used_codes.get_mut(code) {
            used.family = Some(family.to_owned());
        }
    }

    /// Stores a refresh token; returns it.
    pub fn issue_refresh(&mut self, grant: RefreshGrant, now: i64) -> Result<String, StoreError> {
        self.rotated.retain(|_, r| r.expires_at > now);
        admit(&mut self.refresh, |g| g.expires_at > now, grant)
    }

    /// Consumes a refresh token (rotation): the old token is remembered so that a second use is
    /// detected as reuse and revokes the family.
    pub fn redeem_refresh(&mut self, token: &str, now: i64) -> RefreshLookup {
        if let Some(grant) = self.refresh.remove(token) {
            if grant.expires_at <= now {
                return RefreshLookup::Invalid;
            }
            self.rotated.insert(
                token.to_owned(),
                Rotated {
                    family: grant.family.clone(),
                    expires_at: grant.expires_at,
                },
            );
            return RefreshLookup::Fresh(Box::new(grant));
        }
        match self.rotated.remove(token) {
            Some(rotated) => {
                self.revoke_family(&rotated.family);
                RefreshLookup::Reused
            }
            None => RefreshLookup::Invalid,
        }
    }

    /// A live refresh token's grant, without consuming it.
    pub fn peek_refresh(&self, token: &str) -> Option<&RefreshGrant> {
        self.refresh.get(token)
    }

    /// Revokes every refresh token of a family.
    pub fn revoke_family(&mut self, family: &str) {
        self.refresh.retain(|_, g| g.family != family);
        self.rotated.retain(|_, r| r.family != family);
    }

    /// Stores an opaque access token; returns it.
    pub fn issue_opaque(&mut self, grant: OpaqueGrant, now: i64) -> Result<String, StoreError> {
        admit(&mut self.opaque, |g| g.expires_at > now, grant)
    }

    /// The live opaque access token `token`.
    pub fn opaque(&self, token: &str, now: i64) -> Option<OpaqueGrant> {
        self.opaque
            .get(token)
            .filter(|g| g.expires_at > now)
            .cloned()
    }

    /// The client an opaque access token was issued to.
    pub fn opaque_owner(&self, token: &str) -> Option<String> {
        self.opaque.get(token).map(|g| g.client_id.clone())
    }

    /// Revokes an opaque access token.
    pub fn revoke_opaque(&mut self, token: &str) {
        self.opaque.remove(token);
    }
}
