//! `GET /authorize` and the login form (`POST /login`): the authorization code flow with PKCE,
//! as auth0-spa-js and openid-client drive it.
//!
//! Until the client and its redirect URI are known to be registered, errors are shown on a page
//! of the issuer's own (RFC 6749 §4.1.2.1: never redirect to an unverified URI). After that,
//! errors go back to the client in its `response_mode`: `query` (a 302 to the redirect URI) or
//! `web_message` (a page that `postMessage`s to the redirect URI's origin — what auth0-spa-js's
//! silent iframe and popup wait for). `state` and `nonce` are echoed byte for byte.

use crate::clients::LookupError;
use crate::config::{valid_username, Config, GrantType, User};
use crate::issuer::{lock, split_scopes, Issuer};
use crate::pages;
use crate::params::{cookie, no_store, OAuthError, Params};
use crate::pattern::origin_of;
use crate::random;
use crate::store::{AuthRequest, ResponseMode, Session};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Seconds a login page stays usable.
const LOGIN_LIFETIME: u64 = 600;

/// Sends `result` (a code, or an error code and description) back to the client.
fn deliver(request: &AuthRequest, result: Result<&str, &OAuthError>) -> Response {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match result {
        Ok(code) => pairs.push(("code", code)),
        Err(error) => {
            pairs.push(("error", error.code));
            pairs.push(("error_description", &error.description));
        }
    }
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    match request.response_mode {
        ResponseMode::Query => {
            let mut target = request.target.clone();
            {
                let mut query = target.query_pairs_mut();
                for (name, value) in &pairs {
                    query.append_pair(name, value);
                }
            }
            let mut response = StatusCode::FOUND.into_response();
            match HeaderValue::from_str(target.as_str()) {
                Ok(location) => {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
            }
            no_store(response.headers_mut());
            response
        }
        ResponseMode::WebMessage => {
            let mut object = Map::new();
            for (name, value) in pairs {
                object.insert(name.to_owned(), Value::String(value.to_owned()));
            }
            pages::web_message_page(&origin_of(&request.target), &Value::Object(object))
        }
    }
}

fn deliver_error(request: &AuthRequest, code: &'static str, description: String) -> Response {
    deliver(request, Err(&OAuthError::new(code, description)))
}

/// Issues a code for `session` and delivers it.
fn complete(issuer: &Issuer, request: &AuthRequest, session: Session) -> Response {
    let shared = &issuer.shared;
    let now = shared.clock.unix();
    let issued = lock(&shared.store).issue_code(
        request.clone(),
        session,
        now,
        shared.config.issuer.code_lifetime,
    );
    match issued {
        Ok(code) => deliver(request, Ok(&code)),
        Err(error) => deliver(
            request,
            Err(&OAuthError::from(crate::IssuerError::from(error))),
        ),
    }
}

fn show_login(issuer: &Issuer, request: AuthRequest, error: Option<&str>) -> Response {
    let now = issuer.shared.clock.unix();
    let parked = lock(&issuer.shared.store).park_login(request.clone(), now, LOGIN_LIFETIME);
    match parked {
        Ok(tx) => pages::login_page(issuer, &request, &tx, error),
        Err(error) => deliver(
            &request,
            Err(&OAuthError::from(crate::IssuerError::from(error))),
        ),
    }
}

fn session_cookie(issuer: &Issuer, value: &str, max_age: u64) -> Option<HeaderValue> {
    let secure = if issuer.shared.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        issuer.shared.cookie
    ))
    .ok()
}

/// The clearing `Set-Cookie` for the session cookie.
pub(crate) fn clear_session_cookie(issuer: &Issuer) -> Option<HeaderValue> {
    session_cookie(issuer, "", 0)
}

/// The live session of the request's cookie.
pub(crate) fn current_session(issuer: &Issuer, headers: &HeaderMap) -> Option<Session> {
    let sid = cookie(headers, &issuer.shared.cookie)?;
    lock(&issuer.shared.store).session(&sid, issuer.shared.clock.unix())
}

/// Why the requested API cannot be the token's audience (RFC 8707 `invalid_target`): an
/// `audience` (Auth0's parameter) or `resource` (RFC 8707) that is no configured API's identifier
/// (compared exactly), or both given and different.
pub(crate) fn target_error(
    config: &Config,
    audience: Option<&str>,
    resource: Option<&str>,
) -> Option<String> {
    if let (Some(audience), Some(resource)) = (audience, resource) {
        if audience != resource {
            return Some(format!(
                "audience {audience:?} and resource {resource:?} differ: name one API"
            ));
        }
    }
    let (name, target) = match (resource, audience) {
        (Some(resource), _) => ("resource", resource),
        (None, Some(audience)) => ("audience", audience),
        (None, None) => return None,
    };
    if config.api(target).is_some() {
        return None;
    }
    let known: Vec<&str> = config.apis.iter().map(|a| a.identifier.as_str()).collect();
    Some(format!(
        "unknown {name} {target:?}: no API with this identifier is configured (known, compared exactly: {})",
        known.join(", ")
    ))
}

/// `GET /authorize`.
pub(crate) async fn authorize(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let bad = |message: String| {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            &message,
        )
    };
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(name) => return bad(format!("the parameter {name} is given more than once")),
    };
    let config = issuer.config();
    let Some(client_id) = params.get("client_id") else {
        return bad("client_id is missing".into());
    };
    let client = match issuer.find_client(client_id).await {
        Ok(client) => client,
        Err(LookupError::Unknown(message)) => {
            let known: Vec<&str> = config.clients.iter().map(|c| c.id.as_str()).collect();
            return bad(format!(
                "{message} (configured clients: {})",
                known.join(", ")
            ));
        }
        Err(error) => return bad(error.description().to_owned()),
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return bad("redirect_uri is missing".into());
    };
    let Some(target) = client.redirect_target(redirect_uri) else {
        let registered: Vec<&str> = client.redirect_uris.iter().map(|p| p.as_str()).collect();
        return bad(format!(
            "redirect_uri {redirect_uri:?} is not registered for client {client_id:?} (registered: {})",
            if registered.is_empty() { "none".to_owned() } else { registered.join(", ") }
        ));
    };
    let (response_mode, mode_error) = match params.get("response_mode") {
        None | Some("query") => (ResponseMode::Query, None),
        Some("web_message") => (ResponseMode::WebMessage, None),
        Some(other) => (
            ResponseMode::Query,
            Some(format!(
                "response_mode {other:?} is not supported (query, web_message)"
            )),
        ),
    };
    let scopes = split_scopes(params.get("scope").unwrap_or_default());
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        target,
        response_mode,
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        scopes,
        audience: params
            .get("resource")
            .or(params.get("audience"))
            .map(str::to_owned),
        resource: params.get("resource").is_some(),
        client_name: client.name.clone(),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        max_age: None,
    };
    if let Some(message) = mode_error {
        return deliver_error(&request, "invalid_request", message);
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return deliver_error(&request, "invalid_request", "response_type is missing".into())
        }
        Some(other) => {
            return deliver_error(
                &request,
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use the authorization code flow (response_type=code)"),
            )
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return deliver_error(
            &request,
            "unauthorized_client",
            format!(
                "client {:?} may not use the authorization code flow",
                client.id
            ),
        );
    }
    match (&request.code_challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => {
            return deliver_error(&request, "invalid_request", "code_challenge_method without code_challenge".into())
        }
        (None, None) if client.is_public() => {
            return deliver_error(
                &request,
                "invalid_request",
                "PKCE is required for public clients: send code_challenge and code_challenge_method=S256".into(),
            )
        }
        (None, None) => {}
        (Some(_), None | Some("plain")) => {
            return deliver_error(
                &request,
                "invalid_request",
                "only code_challenge_method=S256 is supported (plain is refused)".into(),
            )
        }
        (Some(challenge), Some("S256")) => {
            if !random::is_s256_challenge(challenge) {
                return deliver_error(
                    &request,
                    "invalid_request",
                    "code_challenge must be 43 base64url characters (BASE64URL(SHA256(code_verifier)))".into(),
                );
            }
        }
        (Some(_), Some(other)) => {
            return deliver_error(
                &request,
                "invalid_request",
                format!("code_challenge_method {other:?} is not supported (S256)"),
            )
        }
    }
    if let Some(message) = target_error(config, params.get("audience"), params.get("resource")) {
        return deliver_error(&request, "invalid_target", message);
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unknown) = prompts
        .iter()
        .find(|p| !matches!(**p, "none" | "login" | "consent" | "select_account"))
    {
        return deliver_error(
            &request,
            "invalid_request",
            format!("unknown prompt value {unknown:?}"),
        );
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return deliver_error(
            &request,
            "invalid_request",
            "prompt=none cannot be combined with other values".into(),
        );
    }
    let mut request = request;
    if let Some(text) = params.get("max_age") {
        match text.parse::<u64>() {
            Ok(seconds) => request.max_age = Some(seconds),
            Err(_) => {
                return deliver_error(
                    &request,
                    "invalid_request",
                    format!("max_age {text:?} is not a number of seconds"),
                )
            }
        }
    }

    let now = issuer.shared.clock.unix();
    let session = current_session(&issuer, &headers).filter(|s| {
        request.max_age.is_none_or(|max| {
            now.saturating_sub(s.auth_time) <= i64::try_from(max).unwrap_or(i64::MAX)
        })
    });
    let wants_login = prompts.contains(&"login") || prompts.contains(&"select_account");
    match session {
        Some(session) if !wants_login => complete(&issuer, &request, session),
        _ if prompt_none => deliver_error(&request, "login_required", "Login required".into()),
        _ => show_login(&issuer, request, None),
    }
}

/// `POST /login`: the login form's answer.
pub(crate) async fn login(State(issuer): State<Issuer>, body: Bytes) -> Response {
    let expired = || {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired or was already used. Go back to the app and sign in again.",
        )
    };
    let Ok(params) = Params::parse(&body) else {
        return expired();
    };
    let Some(tx) = params.get("tx") else {
        return expired();
    };
    let now = issuer.shared.clock.unix();
    let Some(request) = lock(&issuer.shared.store).take_login(tx, now) else {
        return expired();
    };
    if params.get("cancel").is_some() {
        return deliver_error(
            &request,
            "access_denied",
            "the user cancelled the sign-in".into(),
        );
    }
    let config = issuer.config();
    let user: Result<User, String> = match (params.get("user"), params.get("username")) {
        (Some(name), _) => config
            .user(name)
            .cloned()
            .ok_or_else(|| format!("there is no configured user {name:?}")),
        (None, Some(typed)) => {
            let typed = typed.trim();
            match config.user(typed) {
                Some(user) => Ok(user.clone()),
                None if !config.issuer.allow_any_user => Err(format!(
                    "{typed:?} is not a configured user, and this issuer accepts configured users only"
                )),
                None if valid_username(typed) => Ok(User::ad_hoc(typed)),
                None => Err("a name has 1 to 64 letters, digits or ._@+-".to_owned()),
            }
        }
        (None, None) => Err("pick a user or type a name".to_owned()),
    };
    let user = match user {
        Ok(user) => user,
        Err(message) => return show_login(&issuer, request, Some(&message)),
    };
    let lifetime = config.issuer.session_lifetime;
    let started = lock(&issuer.shared.store).start_session(user, now, lifetime);
    let (cookie_value, session) = match started {
        Ok(started) => started,
        Err(error) => {
            return deliver(
                &request,
                Err(&OAuthError::from(crate::IssuerError::from(error))),
            )
        }
    };
    let cookie = session_cookie(&issuer, &cookie_value, lifetime);
    let mut response = complete(&issuer, &request, session);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
