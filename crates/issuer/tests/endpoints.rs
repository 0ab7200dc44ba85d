//! In-process tests of the issuer's other endpoints: discovery, JWKS, userinfo, logout,
//! revocation and CORS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use jwtgate_core::KeySet;
use serde_json::json;

#[tokio::test]
async fn discovery_documents() {
    let h = Harness::new();
    let oidc = h.get("/.well-known/openid-configuration").await;
    assert_eq!(oidc.status, StatusCode::OK);
    assert_eq!(
        oidc.header("cache-control").as_deref(),
        Some("public, max-age=300")
    );
    let doc = oidc.json();
    assert_eq!(doc["issuer"], ISS);
    assert_eq!(doc["authorization_endpoint"], format!("{ISS}authorize"));
    assert_eq!(doc["token_endpoint"], format!("{ISS}oauth/token"));
    assert_eq!(doc["jwks_uri"], format!("{ISS}.well-known/jwks.json"));
    assert_eq!(doc["userinfo_endpoint"], format!("{ISS}userinfo"));
    assert_eq!(doc["end_session_endpoint"], format!("{ISS}oidc/logout"));
    assert_eq!(doc["revocation_endpoint"], format!("{ISS}oauth/revoke"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert!(doc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("read:users")));
    let oauth = h
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(oauth, doc);
}

#[tokio::test]
async fn jwks_publishes_the_signing_keys() {
    let h = Harness::new();
    let reply = h.get("/.well-known/jwks.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("public, max-age=300")
    );
    let jwks = reply.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "the default config uses RS256 only");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private material");
    let set = KeySet::from_json(reply.body.as_slice()).unwrap();
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
}

#[tokio::test]
async fn userinfo() {
    let h = Harness::new();
    let code = h
        .code_for(&[("scope", "openid profile email read:users")], "alice")
        .await;
    let body = h.exchange(&code).await.json();
    let call = |token: String, method: &'static str| {
        let h = &h;
        async move {
            h.send(
                Request::builder()
                    .method(method)
                    .uri("/userinfo")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    for method in ["GET", "POST"] {
        let reply = call(body["access_token"].as_str().unwrap().to_owned(), method).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            reply.json(),
            json!({"sub": "jwtgate|alice", "nickname": "alice", "name": "Alice Example",
                   "email": "alice@example.com", "email_verified": true})
        );
    }
    // The ID token is not an access token for userinfo.
    let reply = call(body["id_token"].as_str().unwrap().to_owned(), "GET").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"jwtgate issuer\", error=\"invalid_token\""),
        "{challenge}"
    );
    // No token: a bare challenge (RFC 6750 §3.1).
    let reply = h.get("/userinfo").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"jwtgate issuer\"")
    );
    // An expired token.
    h.clock.advance(std::time::Duration::from_secs(3601));
    let reply = call(body["access_token"].as_str().unwrap().to_owned(), "GET").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    reply.assert_description("expired");
    // A token without openid.
    let m2m = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "jwtgate-m2m"),
                ("client_secret", "jwtgate-m2m-secret"),
                ("audience", API),
            ],
        )
        .await
        .json();
    let reply = call(m2m["access_token"].as_str().unwrap().to_owned(), "GET").await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "aud lacks <issuer>userinfo"
    );
}

#[tokio::test]
async fn v2_logout_ends_the_session_and_returns_only_to_registered_urls() {
    let h = Harness::new();
    let (_, cookie) = h.sign_in(&[], "alice").await;
    let silent = h.authorize_path(&[("prompt", "none")]);
    assert!(query_param(
        &h.get_with_cookie(&silent, &cookie).await.location(),
        "code"
    )
    .is_some());

    let reply = h
        .get_with_cookie(
            &format!(
                "/v2/logout?client_id=jwtgate-spa&returnTo={}&auth0Client=eyJ9",
                "http%3A%2F%2Flocalhost%3A5173%2F"
            ),
            &cookie,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.location().as_str(), "http://localhost:5173/");
    let cleared = reply.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("jwtgate_session_4400=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The session is gone on the server too, so the old cookie no longer works.
    let reply = h.get_with_cookie(&silent, &cookie).await;
    assert_eq!(
        query_param(&reply.location(), "error").as_deref(),
        Some("login_required")
    );

    let reply = h
        .get("/v2/logout?client_id=jwtgate-spa&returnTo=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.header("location").is_none());
    let reply = h.get("/v2/logout").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("Signed out"));
}

#[tokio::test]
async fn oidc_logout_with_id_token_hint() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    let id_token = h.exchange(&code).await.json()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/oidc/logout?{}",
        form(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "http://localhost:5173/bye"),
            ("state", "s=1"),
        ])
    );
    // Even after the ID token expired.
    h.clock.advance(std::time::Duration::from_secs(40000));
    let reply = h.get(&path).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    assert_eq!(
        reply.location().as_str(),
        "http://localhost:5173/bye?state=s%3D1"
    );

    // POST works; a forged hint is refused; a redirect without a client is refused.
    let reply = h
        .post_form(
            "/oidc/logout",
            &[
                ("client_id", "jwtgate-spa"),
                ("post_logout_redirect_uri", "http://localhost:1/"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FOUND);
    let mut forged = id_token.clone();
    forged.pop();
    forged.push(if id_token.ends_with('A') { 'B' } else { 'A' });
    let reply = h
        .get(&format!(
            "/oidc/logout?{}",
            form(&[("id_token_hint", &forged)])
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("not an ID token of this issuer"));
    let reply = h
        .get("/oidc/logout?post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A1%2F")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revocation() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    let refresh = h.exchange(&code).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another client cannot revoke it.
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[
                ("client_id", "jwtgate-m2m"),
                ("client_secret", "jwtgate-m2m-secret"),
                ("token", &refresh),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[
                ("client_id", "jwtgate-spa"),
                ("token_type_hint", "refresh_token"),
                ("token", &refresh),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "jwtgate-spa"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_grant");
    // Unknown tokens: 200 (RFC 7009 §2.2); bad client: 401.
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[("client_id", "jwtgate-spa"), ("token", "nope")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[("client_id", "nobody"), ("token", "nope")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cors_as_auth0_spa_js_needs_it() {
    let h = Harness::new();
    let preflight = |origin: &'static str| {
        let h = &h;
        async move {
            h.send(
                Request::builder()
                    .method("OPTIONS")
                    .uri("/oauth/token")
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .header(
                        "access-control-request-headers",
                        "auth0-client,content-type",
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let reply = preflight("http://localhost:5173").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("auth0-client") && allowed.contains("content-type"));
    assert!(reply
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert_eq!(reply.header("vary").as_deref(), Some("Origin"));

    let reply = preflight("https://evil.example").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.header("access-control-allow-origin").is_none());

    // Error responses carry the header too.
    let reply = h
        .post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "jwtgate-spa"),
                ("code", "x"),
                ("redirect_uri", SPA_REDIRECT),
            ],
            &[("origin", "http://localhost:5173")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    let reply = h
        .post_form_with(
            "/oauth/token",
            &[("grant_type", "x")],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(reply.header("access-control-allow-origin").is_none());

    // Discovery and the JWKS are public.
    let reply = h
        .send(
            Request::get("/.well-known/jwks.json")
                .header("origin", "https://anywhere.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    // The login page is not readable cross-origin.
    let reply = h
        .send(
            Request::get(h.authorize_path(&[]))
                .header("origin", "http://localhost:5173")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(reply.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn landing_page() {
    let h = Harness::new();
    let reply = h.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    assert!(text.contains("http://localhost:4400/.well-known/openid-configuration"));
    assert!(text.contains("alice, bob"));
    assert!(text.contains("http://localhost:4400/register"));
}
