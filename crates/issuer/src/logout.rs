//! Logout: Auth0's `GET /v2/logout?client_id&returnTo` (what auth0-spa-js calls) and the
//! standard RP-initiated logout `GET|POST /oidc/logout` (`id_token_hint`,
//! `post_logout_redirect_uri`, `state`). Both end the issuer's session and clear its cookie;
//! they redirect only to a URL registered for the client (its logout URLs or redirect URIs),
//! never to an arbitrary one.

use crate::authorize::clear_session_cookie;
use crate::issuer::{lock, Issuer};
use crate::pages;
use crate::params::{cookie, no_store, Params};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jwtgate_core::{KeySet, Policy, UnverifiedToken};
use serde_json::Value;
use url::Url;

/// Ends the issuer's session and, when the issuer writes revocation rules, revokes the user's
/// access tokens issued so far ("log out everywhere").
async fn end_session(issuer: &Issuer, headers: &HeaderMap) {
    let ended = cookie(headers, &issuer.shared.cookie)
        .and_then(|value| lock(&issuer.shared.store).end_session(&value));
    if let Some(session) = ended {
        issuer.revoke_subject(&session.user.sub).await;
    }
}

fn with_cleared_cookie(issuer: &Issuer, mut response: Response) -> Response {
    if let Some(value) = clear_session_cookie(issuer) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn redirect(target: &Url) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(target.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    no_store(response.headers_mut());
    response
}

fn refused(message: String) -> Response {
    pages::error_page(StatusCode::BAD_REQUEST, "Logout refused", &message)
}

/// Finds where logout may return to: the named client's URLs, or with no client named, any
/// client's.
fn logout_target(issuer: &Issuer, client_id: Option<&str>, url: &str) -> Result<Url, String> {
    let config = issuer.config();
    match client_id {
        Some(id) => {
            let client = config
                .client(id)
                .ok_or_else(|| format!("unknown client_id {id:?}"))?;
            client.logout_target(url).ok_or_else(|| {
                format!("{url:?} is not an allowed logout URL or redirect URI of client {id:?}")
            })
        }
        None => config
            .clients
            .iter()
            .find_map(|c| c.logout_target(url))
            .ok_or_else(|| format!("{url:?} is not an allowed logout URL of any client")),
    }
}

/// `GET /v2/logout`.
pub(crate) async fn v2_logout(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(&issuer, &headers).await;
    let response = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Err(name) => refused(format!("the parameter {name} is given more than once")),
        Ok(params) => match params.get("returnTo") {
            None => pages::signed_out_page(),
            Some(url) => match logout_target(&issuer, params.get("client_id"), url) {
                Ok(target) => redirect(&target),
                Err(message) => refused(message),
            },
        },
    };
    with_cleared_cookie(&issuer, response)
}

/// The client ids in a genuine `id_token_hint` of this issuer (expired hints are fine).
fn hint_audiences(issuer: &Issuer, hint: &str) -> Result<Vec<String>, String> {
    let policy = Policy::builder()
        .issuer(issuer.url())
        .audience("id_token_hint")
        .build()
        .map_err(|e| e.to_string())?;
    let keys =
        KeySet::from_json(issuer.jwks().to_string().as_bytes()).map_err(|e| e.to_string())?;
    let signed = UnverifiedToken::parse(hint.as_bytes(), &policy)
        .and_then(|t| t.verify_signature(&keys))
        .map_err(|r| {
            format!(
                "id_token_hint is not an ID token of this issuer: {}",
                r.description()
            )
        })?;
    let claims = signed.claims();
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.url()) {
        return Err("id_token_hint was issued by another issuer".into());
    }
    Ok(match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    })
}

/// `GET|POST /oidc/logout` (OpenID Connect RP-Initiated Logout 1.0).
pub(crate) async fn oidc_logout(
    State(issuer): State<Issuer>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let input = if method == Method::POST {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    end_session(&issuer, &headers).await;
    let response = match Params::parse(&input) {
        Err(name) => refused(format!("the parameter {name} is given more than once")),
        Ok(params) => oidc_logout_response(&issuer, &params),
    };
    with_cleared_cookie(&issuer, response)
}

fn oidc_logout_response(issuer: &Issuer, params: &Params) -> Response {
    let mut client_id = params.get("client_id").map(str::to_owned);
    if let Some(hint) = params.get("id_token_hint") {
        let audiences = match hint_audiences(issuer, hint) {
            Ok(a) => a,
            Err(message) => return refused(message),
        };
        match &client_id {
            Some(id) if !audiences.contains(id) => {
                return refused(format!(
                    "client_id {id:?} is not the audience of id_token_hint"
                ))
            }
            Some(_) => {}
            None => client_id = audiences.into_iter().next(),
        }
    }
    let Some(url) = params.get("post_logout_redirect_uri") else {
        return pages::signed_out_page();
    };
    let Some(client_id) = client_id else {
        return refused("post_logout_redirect_uri needs client_id or id_token_hint".into());
    };
    match logout_target(issuer, Some(&client_id), url) {
        Ok(mut target) => {
            if let Some(state) = params.get("state") {
                target.query_pairs_mut().append_pair("state", state);
            }
            redirect(&target)
        }
        Err(message) => refused(message),
    }
}
