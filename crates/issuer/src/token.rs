//! `POST /oauth/token` (authorization code with PKCE, refresh token with rotation, client
//! credentials), `POST /oauth/revoke` (RFC 7009) and `/userinfo`.
//!
//! Client authentication: HTTP Basic (`client_secret_basic`), `client_secret` in the body
//! (`client_secret_post`), or none for public clients — exactly one way per request. A wrong or
//! missing secret, an unknown client, or a secret sent by a public client is 401 `invalid_client`
//! (RFC 6749 §5.2); every other failure is a 400 with the RFC's code and a description that says
//! what to fix.

use crate::config::{Client, GrantType, User};
use crate::issuer::{lock, profile_claims, split_scopes, Issuer, UserGrant};
use crate::params::{no_store, OAuthError, Params};
use crate::random;
use crate::store::{CodeLookup, RefreshLookup};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jwtgate_core::{KeySet, Policy, Verifier};
use serde_json::{json, Value};
use std::borrow::Cow;

/// Reads the body by its content type: JSON, or form-encoded (the default).
fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json {
        Params::parse_json(body).map_err(OAuthError::invalid_request)
    } else {
        Params::parse(body).map_err(|name| {
            OAuthError::invalid_request(format!("the parameter {name} is given more than once"))
        })
    }
}

/// Client id and secret from `Authorization: Basic` (each form-urlencoded, RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("malformed Basic authorization header");
    let text = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(format!(
            "the token endpoint takes Basic client authentication, not {scheme}"
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Authenticates the client of a token or revocation request. A client that used the
/// `Authorization` header gets a `Basic` challenge with a 401.
async fn authenticate<'a>(
    issuer: &'a Issuer,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Cow<'a, Client>, OAuthError> {
    authenticate_inner(issuer, headers, params)
        .await
        .map_err(|mut error| {
            error.basic_challenge = headers.contains_key(header::AUTHORIZATION);
            error
        })
}

async fn authenticate_inner<'a>(
    issuer: &'a Issuer,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Cow<'a, Client>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let (id, secret) = match (basic, body_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: Basic or client_secret in the body, not both",
            ))
        }
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            (id, Some(secret))
        }
        (None, secret) => match body_id {
            Some(id) => (id.to_owned(), secret.map(str::to_owned)),
            None => return Err(OAuthError::invalid_client("no client authentication: send client_id (and client_secret for confidential clients)")),
        },
    };
    let client = issuer
        .find_client(&id)
        .await
        .map_err(|error| OAuthError::invalid_client(error.description()))?;
    match (&client.secret, secret) {
        (Some(expected), Some(given)) if random::secrets_equal(expected, &given) => Ok(client),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client(format!(
            "client authentication failed: wrong secret for client {id:?}"
        ))),
        (Some(_), None) => Err(OAuthError::invalid_client(format!(
            "client {id:?} is confidential: authenticate with its secret (Basic or client_secret)"
        ))),
        (None, Some(_)) => Err(OAuthError::invalid_client(format!(
            "client {id:?} is public and has no secret; send client_id only (with PKCE)"
        ))),
        (None, None) => Ok(client),
    }
}

fn token_json(value: &impl serde::Serialize) -> Response {
    let mut response = axum::Json(value).into_response();
    no_store(response.headers_mut());
    response
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token_inner(&issuer, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn token_inner(
    issuer: &Issuer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let params = body_params(headers, body)?;
    let client = authenticate(issuer, headers, &params).await?;
    let client = client.as_ref();
    let token_url = format!("{}oauth/token", issuer.url());
    let jkt = issuer
        .shared
        .dpop
        .proof_key(headers, &token_url, issuer.shared.clock.unix())?;
    let jkt = jkt.as_deref();
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let grant = match grant_type {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported (authorization_code, refresh_token, client_credentials)"),
            ))
        }
    };
    if !client.allows(grant) {
        return Err(OAuthError::new(
            "unauthorized_client",
            match grant {
                GrantType::ClientCredentials if client.is_public() => format!(
                    "client {:?} is public; client_credentials needs a confidential client (one with a secret)",
                    client.id
                ),
                _ => format!("client {:?} may not use grant_type {grant_type}", client.id),
            },
        ));
    }
    match grant {
        GrantType::AuthorizationCode => authorization_code(issuer, client, &params, jkt),
        GrantType::RefreshToken => refresh_token(issuer, client, &params, jkt),
        GrantType::ClientCredentials => client_credentials(issuer, client, &params, jkt),
    }
}

fn authorization_code(
    issuer: &Issuer,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        OAuthError::invalid_request("redirect_uri is missing: send the one used at /authorize")
    })?;
    let now = issuer.shared.clock.unix();
    let lookup = lock(&issuer.shared.store).redeem_code(code, now);
    let grant = match lookup {
        CodeLookup::Fresh(grant) => grant,
        CodeLookup::Reused => {
            return Err(OAuthError::invalid_grant(
                "the authorization code has already been used; codes are single-use, and the refresh tokens issued for it are now revoked",
            ))
        }
        CodeLookup::Expired => return Err(OAuthError::invalid_grant("the authorization code has expired")),
        CodeLookup::Unknown => return Err(OAuthError::invalid_grant("unknown authorization code")),
    };
    let request = &grant.request;
    if request.client_id != client.id {
        return Err(OAuthError::invalid_grant(format!(
            "the authorization code was issued to client {:?}, not {:?}",
            request.client_id, client.id
        )));
    }
    if request.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(format!(
            "redirect_uri {redirect_uri:?} differs from the one sent to /authorize ({:?})",
            request.redirect_uri
        )));
    }
    let verifier = params.get("code_verifier");
    match (&request.code_challenge, verifier) {
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is missing: the authorization request had a code_challenge (PKCE)",
            ))
        }
        (Some(challenge), Some(verifier)) => {
            if !random::is_pkce_verifier(verifier) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
                ));
            }
            if !random::secrets_equal(&random::pkce_s256(verifier), challenge) {
                return Err(OAuthError::invalid_grant(
                    "PKCE verification failed: BASE64URL(SHA256(code_verifier)) does not equal the code_challenge",
                ));
            }
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    if let Some(resource) = params.get("resource") {
        if request.audience.as_deref() != Some(resource) {
            return Err(OAuthError::new(
                "invalid_target",
                format!(
                    "resource {resource:?} is not the one the authorization was for ({}); a code is bound to the resource named at /authorize",
                    request.audience.as_deref().map_or("none".to_owned(), |a| format!("{a:?}"))
                ),
            ));
        }
    }
    let config = issuer.config();
    let api = match &request.audience {
        Some(aud) => Some(config.api(aud).ok_or_else(|| {
            OAuthError::invalid_grant(format!("API {aud:?} is no longer configured"))
        })?),
        None => None,
    };
    let user = &grant.session.user;
    let scopes = issuer.grant_scopes(client, user, &request.scopes, api);
    let (response, family) = issuer.issue_user_tokens(
        &UserGrant {
            client,
            user,
            scopes: &scopes,
            api,
            auth_time: grant.session.auth_time,
            sid: &grant.session.sid,
            nonce: request.nonce.as_deref(),
            lifetime: None,
            jkt,
            resource: request.resource || params.get("resource").is_some(),
        },
        None,
    )?;
    if let Some(family) = family {
        lock(&issuer.shared.store).link_code(code, &family);
    }
    Ok(token_json(&response))
}

fn refresh_token(
    issuer: &Issuer,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let now = issuer.shared.clock.unix();
    let invalid = || OAuthError::invalid_grant("Unknown or invalid refresh token.");
    let requested = params.get("scope").map(split_scopes);
    // Check the owner and the scope before consuming, so that neither another client nor a bad
    // request burns the token.
    if let Some(grant) = lock(&issuer.shared.store).peek_refresh(token) {
        if grant.client_id != client.id {
            return Err(OAuthError::invalid_grant(format!(
                "Unknown or invalid refresh token. (it was issued to client {:?})",
                grant.client_id
            )));
        }
        if let Some(bound) = &grant.jkt {
            if jkt != Some(bound.as_str()) {
                return Err(OAuthError::new(
                    "invalid_dpop_proof",
                    "the refresh token is bound to a DPoP key: send a DPoP proof made with that key",
                ));
            }
        }
        if let Some(resource) = params.get("resource") {
            if grant.audience.as_deref() != Some(resource) {
                return Err(OAuthError::new(
                    "invalid_target",
                    format!("resource {resource:?} is not the resource this refresh token was issued for"),
                ));
            }
        }
        if let Some(extra) = requested
            .iter()
            .flatten()
            .find(|s| !grant.scopes.contains(s))
        {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope {extra:?} was not granted to this refresh token"),
            ));
        }
    }
    let lookup = lock(&issuer.shared.store).redeem_refresh(token, now);
    let grant = match lookup {
        RefreshLookup::Fresh(grant) => grant,
        RefreshLookup::Reused => {
            return Err(OAuthError::invalid_grant(
                "Unknown or invalid refresh token. (it was already used: refresh tokens rotate, and reuse revokes every refresh token of this sign-in)",
            ))
        }
        RefreshLookup::Invalid => return Err(invalid()),
    };
    let scopes = requested.unwrap_or_else(|| grant.scopes.clone());
    let config = issuer.config();
    let api = grant.audience.as_deref().and_then(|aud| config.api(aud));
    if grant.audience.is_some() && api.is_none() {
        return Err(OAuthError::invalid_grant(
            "the refresh token's API is no longer configured",
        ));
    }
    // A configured user's current settings apply (permissions may have changed); a typed name
    // keeps its ad-hoc profile.
    let user: User = config
        .users
        .iter()
        .find(|u| u.sub == grant.user.sub)
        .cloned()
        .unwrap_or_else(|| grant.user.clone());
    let (response, _) = issuer.issue_user_tokens(
        &UserGrant {
            client,
            user: &user,
            scopes: &scopes,
            api,
            auth_time: grant.auth_time,
            sid: &grant.sid,
            nonce: None,
            lifetime: None,
            jkt: grant.jkt.as_deref().or(jkt),
            resource: grant.resource,
        },
        Some(&grant.family),
    )?;
    Ok(token_json(&response))
}

fn client_credentials(
    issuer: &Issuer,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let config = issuer.config();
    if let Some(message) =
        crate::authorize::target_error(config, params.get("audience"), params.get("resource"))
    {
        return Err(OAuthError::new("invalid_target", message));
    }
    let Some(audience) = params.get("resource").or(params.get("audience")) else {
        return Err(OAuthError::invalid_request(
            "no audience parameter was provided: client_credentials needs the identifier of a configured API (audience or resource)",
        ));
    };
    let api = config.api(audience).ok_or_else(|| {
        OAuthError::new(
            "invalid_target",
            format!("unknown audience {audience:?}: no API with this identifier is configured"),
        )
    })?;
    let requested = params.get("scope").map(split_scopes);
    let scopes = issuer
        .client_scopes(client, api, requested.as_deref())
        .map_err(|message| {
            if client.grants.contains_key(&api.identifier) {
                OAuthError::new("invalid_scope", message)
            } else {
                OAuthError::new("unauthorized_client", message)
            }
        })?;
    let response = issuer.issue_client_token(client, api, &scopes, None, jkt)?;
    Ok(token_json(&response))
}

/// `POST /oauth/revoke` (RFC 7009): revokes a refresh token (and its family), an opaque access
/// token, or — when the issuer writes revocation rules ([`Issuer::revoke_through`]) — a JWT access
/// token of this issuer: a rule by `jti` until its `exp`, or for a token without `jti` (Auth0's
/// profile) a rule refusing the user's tokens issued up to that one's `iat`; revoking a refresh
/// token then also revokes the user's access tokens issued so far. Unknown tokens answer 200, as
/// the RFC asks.
pub(crate) async fn revoke(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    /// The revocation rule to write once the store is released.
    enum Rule {
        Subject(String),
        Jti(String, i64),
        SubjectUpTo(String, i64),
    }
    let authenticated = match body_params(&headers, &body) {
        Ok(params) => match authenticate(&issuer, &headers, &params).await {
            Ok(client) => Ok((params, client.into_owned())),
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    let outcome = (|| -> Result<Option<Rule>, OAuthError> {
        let (params, client) = authenticated?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let not_yours = || {
            OAuthError::new(
                "unauthorized_client",
                "the token was issued to another client",
            )
        };
        let mut store = lock(&issuer.shared.store);
        if let Some((owner, family, sub)) = store
            .peek_refresh(token)
            .map(|g| (g.client_id.clone(), g.family.clone(), g.user.sub.clone()))
        {
            if owner != client.id {
                return Err(not_yours());
            }
            store.revoke_family(&family);
            return Ok(Some(Rule::Subject(sub)));
        }
        if let Some(owner) = store.opaque_owner(token) {
            if owner != client.id {
                return Err(not_yours());
            }
            store.revoke_opaque(token);
            return Ok(None);
        }
        drop(store);
        match own_access_token(&issuer, token) {
            Some(access) if access.client != client.id => Err(not_yours()),
            Some(OwnAccessToken {
                jti: Some(jti),
                exp,
                ..
            }) => Ok(Some(Rule::Jti(jti, exp))),
            Some(OwnAccessToken {
                sub: Some(sub),
                iat: Some(iat),
                ..
            }) => Ok(Some(Rule::SubjectUpTo(sub, iat))),
            Some(_) | None => Ok(None),
        }
    })();
    match outcome {
        Ok(rule) => {
            match rule {
                Some(Rule::Subject(sub)) => issuer.revoke_subject(&sub).await,
                Some(Rule::Jti(jti, exp)) => issuer.revoke_jti(&jti, exp).await,
                Some(Rule::SubjectUpTo(sub, iat)) => {
                    issuer
                        .revoke_subject_until(&sub, iat.saturating_add(1))
                        .await
                }
                None => {}
            }
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// What `/oauth/revoke` needs from a JWT access token of this issuer.
struct OwnAccessToken {
    /// `client_id`, else `azp`.
    client: String,
    jti: Option<String>,
    sub: Option<String>,
    iat: Option<i64>,
    exp: i64,
}

/// A JWT access token signed by this issuer; `None` for anything else.
fn own_access_token(issuer: &Issuer, token: &str) -> Option<OwnAccessToken> {
    let policy = jwtgate_core::Policy::builder()
        .issuer(issuer.url())
        .audience("any")
        .build()
        .ok()?;
    let keys = jwtgate_core::KeySet::from_json(issuer.jwks().to_string().as_bytes()).ok()?;
    let signed = jwtgate_core::UnverifiedToken::parse(token.as_bytes(), &policy)
        .and_then(|t| t.verify_signature(&keys))
        .ok()?;
    let claims = signed.claims();
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.url()) {
        return None;
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
    Some(OwnAccessToken {
        client: text("client_id").or_else(|| text("azp"))?,
        jti: text("jti"),
        sub: text("sub"),
        iat: time("iat"),
        exp: time("exp")?,
    })
}

fn bearer_error(status: StatusCode, code: &str, description: &str) -> Response {
    let clean: String = description
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    let mut response = (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "Bearer realm=\"jwtgate issuer\", error=\"{code}\", error_description=\"{clean}\""
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `GET|POST /userinfo`: the user's claims for a JWT access token whose audience includes
/// `<issuer>userinfo`, or for an opaque access token.
pub(crate) async fn userinfo(State(issuer): State<Issuer>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
    else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"jwtgate issuer\""),
        );
        return response;
    };
    let now = issuer.shared.clock.unix();
    let config = issuer.config();
    let (user, scopes) = if token.matches('.').count() == 2 {
        let policy = Policy::builder()
            .issuer(issuer.url())
            .audience(format!("{}userinfo", issuer.url()))
            .build();
        let keys = KeySet::from_json(issuer.jwks().to_string().as_bytes());
        let (policy, keys) = match (policy, keys) {
            (Ok(p), Ok(k)) => (p, k),
            _ => {
                return bearer_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "cannot load the issuer's keys",
                )
            }
        };
        let verified = match Verifier::new(policy, keys).verify(token.as_bytes(), now) {
            Ok(v) => v,
            Err(rejection) => {
                return bearer_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    &rejection.description(),
                )
            }
        };
        let sub = verified.subject().unwrap_or_default().to_owned();
        let scopes = split_scopes(
            verified
                .claims()
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let user = config
            .users
            .iter()
            .find(|u| u.sub == sub)
            .cloned()
            .unwrap_or_else(|| match sub.strip_prefix("jwtgate|") {
                Some(name) if crate::config::valid_username(name) => User::ad_hoc(name),
                _ => {
                    let mut user = User::ad_hoc("unknown");
                    user.sub = sub.clone();
                    user.name = None;
                    user
                }
            });
        (user, scopes)
    } else {
        match lock(&issuer.shared.store).opaque(&token, now) {
            Some(grant) => (grant.user, grant.scopes),
            None => {
                return bearer_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "unknown or expired access token",
                )
            }
        }
    };
    if !scopes.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "userinfo needs a token with the openid scope",
        );
    }
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(user.sub));
    claims.extend(profile_claims(&user, &scopes));
    let mut response = axum::Json(Value::Object(claims)).into_response();
    no_store(response.headers_mut());
    response
}
