//! In-process tests of the authorization code flow with PKCE, refresh tokens and client
//! credentials: the tokens' shapes, checked with jwtgate-core's verifier, and every way a grant
//! is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::*;
use jwtgate_core::{Policy, ScopeRequirement, Verifier};
use jwtgate_issuer::{Config, KeyRing};
use serde_json::json;

#[tokio::test]
async fn code_flow_with_pkce_issues_auth0_shaped_tokens() {
    let h = Harness::new();
    let (location, cookie) = h.sign_in(&[], "alice").await;
    assert!(location.as_str().starts_with(SPA_REDIRECT));
    // state is echoed byte for byte (it has '=' padding).
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("c3RhdGU9PQ==")
    );
    assert!(cookie.starts_with("jwtgate_session_4400="));
    let code = query_param(&location, "code").unwrap();
    assert!(code.len() >= 43, "codes carry 256 random bits");

    let reply = h.exchange(&code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile read:users offline_access");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "id_token",
            "refresh_token",
            "scope",
            "expires_in",
            "token_type"
        ]
    );

    // The access token: what the API's verifier accepts.
    let access = body["access_token"].as_str().unwrap();
    let verified = h
        .api_verifier(&["read:users"])
        .verify(access.as_bytes(), h.now())
        .unwrap_or_else(|r| panic!("{}", r.description()));
    assert_eq!(verified.subject(), Some("jwtgate|alice"));
    let (header, claims) = decode(access);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].as_str().unwrap().starts_with("rs256-"));
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["aud"], json!([API, format!("{ISS}userinfo")]));
    assert_eq!(claims["azp"], "jwtgate-spa");
    assert_eq!(claims["scope"], "openid profile read:users offline_access");
    assert_eq!(claims["permissions"], json!(["read:users"]));
    assert_eq!(claims["iat"], json!(START));
    assert_eq!(claims["exp"], json!(START + 3600));
    assert!(claims.get("jti").is_none() && claims.get("client_id").is_none());

    // The ID token.
    let id = body["id_token"].as_str().unwrap();
    let (id_header, id_claims) = decode(id);
    assert_eq!(id_header["alg"], "RS256");
    assert_eq!(id_claims["iss"], ISS);
    assert_eq!(id_claims["aud"], "jwtgate-spa");
    assert_eq!(id_claims["sub"], "jwtgate|alice");
    assert_eq!(id_claims["nonce"], "bm9uY2U+Lz0=");
    assert_eq!(id_claims["auth_time"], json!(START));
    assert_eq!(id_claims["exp"], json!(START + 36000));
    assert_eq!(id_claims["name"], "Alice Example");
    assert_eq!(id_claims["nickname"], "alice");
    assert!(id_claims.get("email").is_none(), "no email scope requested");
    assert_eq!(
        id_claims["at_hash"],
        jwtgate_issuer::random::at_hash(access)
    );
    let sid = id_claims["sid"].as_str().unwrap();
    assert!(
        !cookie.contains(sid),
        "sid must not reveal the session cookie"
    );
    // Signed with a published key.
    let policy = Policy::builder()
        .issuer(ISS)
        .audience("jwtgate-spa")
        .build()
        .unwrap();
    assert!(Verifier::new(policy, h.keys())
        .verify(id.as_bytes(), h.now())
        .is_ok());

    // The ID token sent to the API is refused, and the reason says so.
    let rejection = h
        .api_verifier(&["read:users"])
        .verify(id.as_bytes(), h.now())
        .unwrap_err();
    assert_eq!(rejection.code().as_str(), "invalid_token");
    assert!(
        rejection
            .description()
            .contains("this looks like an ID token"),
        "{}",
        rejection.description()
    );
}

#[tokio::test]
async fn scopes_follow_rbac_and_requests() {
    let h = Harness::new();
    // bob has no permissions: the scope is dropped and the API refuses with insufficient_scope.
    let code = h
        .code_for(&[("scope", "openid email read:users write:users")], "bob")
        .await;
    let body = h.exchange(&code).await.json();
    assert_eq!(body["scope"], "openid email");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    let (_, claims) = decode(body["access_token"].as_str().unwrap());
    assert_eq!(claims["permissions"], json!([]));
    let rejection = h
        .api_verifier(&["read:users"])
        .verify(body["access_token"].as_str().unwrap().as_bytes(), h.now())
        .unwrap_err();
    assert_eq!(rejection.code().as_str(), "insufficient_scope");
    let (_, id_claims) = decode(body["id_token"].as_str().unwrap());
    assert_eq!(id_claims["email"], "bob@example.com");
    assert_eq!(id_claims["email_verified"], true);

    // alice asking for write:users does not get it either; unknown scopes are dropped.
    let code = h
        .code_for(&[("scope", "openid write:users read:users bogus")], "alice")
        .await;
    let body = h.exchange(&code).await.json();
    assert_eq!(body["scope"], "openid read:users");

    // Without openid: no ID token, and aud is the API alone.
    let code = h.code_for(&[("scope", "read:users")], "alice").await;
    let body = h.exchange(&code).await.json();
    assert!(body.get("id_token").is_none());
    let (_, claims) = decode(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], API);
}

#[tokio::test]
async fn without_audience_the_access_token_is_opaque() {
    let h = Harness::new();
    let code = h
        .code_for(&[("audience", ""), ("scope", "openid profile")], "alice")
        .await;
    let body = h.exchange(&code).await.json();
    let access = body["access_token"].as_str().unwrap();
    assert!(!access.contains('.'), "opaque: {access}");
    let rejection = h
        .api_verifier(&[])
        .verify(access.as_bytes(), h.now())
        .unwrap_err();
    assert!(
        rejection.description().contains("opaque access token"),
        "{}",
        rejection.description()
    );
    // It is good for /userinfo.
    let info = h
        .send(
            axum::http::Request::get("/userinfo")
                .header("authorization", format!("Bearer {access}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text());
    assert_eq!(info.json()["sub"], "jwtgate|alice");
    assert_eq!(info.json()["name"], "Alice Example");
}

#[tokio::test]
async fn pkce_failures() {
    let h = Harness::new();
    let exchange = |code: String, verifier: Option<&'static str>| {
        let h = &h;
        async move {
            let mut pairs = vec![
                ("grant_type", "authorization_code"),
                ("client_id", "jwtgate-spa"),
                ("code", code.as_str()),
                ("redirect_uri", SPA_REDIRECT),
            ];
            if let Some(v) = verifier {
                pairs.push(("code_verifier", v));
            }
            h.post_form("/oauth/token", &pairs).await
        }
    };
    let code = h.code_for(&[], "alice").await;
    let reply = exchange(code, None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_oauth_error("invalid_grant", "code_verifier is missing");

    let code = h.code_for(&[], "alice").await;
    let reply = exchange(code, Some("wrong-verifier-wrong-verifier-wrong-verifier-0")).await;
    reply.assert_oauth_error("invalid_grant", "PKCE verification failed");

    let code = h.code_for(&[], "alice").await;
    let reply = exchange(code.clone(), Some("too-short")).await;
    reply.assert_description("43 to 128");
    // A failed exchange still consumed the code.
    let reply = h.exchange(&code).await;
    assert_eq!(reply.json()["error"], "invalid_grant");

    // At /authorize: plain, missing and malformed challenges are refused back to the client.
    for (extra, needle) in [
        (
            vec![("code_challenge_method", "plain")],
            "only code_challenge_method=S256",
        ),
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "PKCE is required for public clients",
        ),
        (vec![("code_challenge", "abc")], "43 base64url characters"),
        (vec![("code_challenge_method", "S512")], "not supported"),
    ] {
        let reply = h.get(&h.authorize_path(&extra)).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{needle}");
        let location = reply.location();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_request")
        );
        assert!(
            query_param(&location, "error_description")
                .unwrap()
                .contains(needle),
            "{location}"
        );
        assert_eq!(
            query_param(&location, "state").as_deref(),
            Some("c3RhdGU9PQ==")
        );
    }
}

#[tokio::test]
async fn codes_are_single_use_and_reuse_revokes_what_they_issued() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    let first = h.exchange(&code).await.json();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();

    let again = h.exchange(&code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    again.assert_oauth_error("invalid_grant", "already been used");

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
    assert_eq!(
        reply.json()["error"],
        "invalid_grant",
        "refresh token revoked by code reuse"
    );

    let unknown = h.exchange("never-issued").await;
    assert_eq!(
        unknown.json()["error_description"],
        "unknown authorization code"
    );
}

#[tokio::test]
async fn codes_expire() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    h.clock.advance(std::time::Duration::from_secs(301));
    let reply = h.exchange(&code).await;
    reply.assert_oauth_error_exactly("invalid_grant", "the authorization code has expired");
}

#[tokio::test]
async fn redirect_uri_must_be_registered_and_repeated_exactly() {
    let h = Harness::new();
    // Unregistered: an error page of the issuer, never a redirect there.
    for bad in [
        "https://evil.example/callback",
        "http://localhost:1@evil.example/",
        "http://localhost.evil.example:5173/",
        "http://localhost:5173/callback#frag",
    ] {
        let reply = h.get(&h.authorize_path(&[("redirect_uri", bad)])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.header("location").is_none());
        assert!(
            reply.text().contains("is not registered for client"),
            "{bad}"
        );
    }
    let reply = h.get(&h.authorize_path(&[("client_id", "nobody")])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("unknown client_id"));

    // At the token endpoint the redirect_uri must equal the one sent to /authorize.
    let code = h.code_for(&[], "alice").await;
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "jwtgate-spa"),
                ("code", &code),
                ("redirect_uri", "http://localhost:5173/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    reply.assert_oauth_error("invalid_grant", "differs from the one sent to /authorize");
}

#[tokio::test]
async fn authorize_errors_go_back_to_the_client() {
    let h = Harness::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (
            &[("audience", "https://unknown.example/")],
            "invalid_target",
        ),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("prompt", "sometimes")], "invalid_request"),
        (&[("max_age", "soon")], "invalid_request"),
        (&[("response_mode", "form_post")], "invalid_request"),
    ];
    for (extra, code) in cases {
        let reply = h.get(&h.authorize_path(extra)).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{extra:?}");
        assert_eq!(
            query_param(&reply.location(), "error").as_deref(),
            Some(*code),
            "{extra:?}"
        );
    }
    // A repeated parameter is refused before anything else.
    let path = format!("{}&state=again", h.authorize_path(&[]));
    let reply = h.get(&path).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("more than once"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = Harness::new();
    let code = h.code_for(&[], "alice").await;
    let first = h.exchange(&code).await.json();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let h = &h;
        async move {
            h.post_form(
                "/oauth/token",
                &[
                    ("client_id", "jwtgate-spa"),
                    ("redirect_uri", SPA_REDIRECT),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    h.clock.advance(std::time::Duration::from_secs(10));
    let second = refresh(r1.clone()).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    // Every response has an ID token (auth0-spa-js requires it); no nonce on refresh.
    let (_, id) = decode(second["id_token"].as_str().unwrap());
    assert!(id.get("nonce").is_none());
    assert_eq!(id["auth_time"], json!(START), "the original sign-in time");
    assert_eq!(second["scope"], first["scope"]);
    assert!(h
        .api_verifier(&["read:users"])
        .verify(second["access_token"].as_str().unwrap().as_bytes(), h.now())
        .is_ok());

    // Narrowing the scope is allowed; widening is not (and does not burn the token).
    let wider = h
        .post_form(
            "/oauth/token",
            &[
                ("client_id", "jwtgate-spa"),
                ("grant_type", "refresh_token"),
                ("refresh_token", &r2),
                ("scope", "openid write:users"),
            ],
        )
        .await;
    assert_eq!(wider.json()["error"], "invalid_scope");

    // Reusing r1 (already rotated) revokes r2 too.
    let reuse = refresh(r1).await;
    reuse.assert_oauth_error("invalid_grant", "invalid refresh token");
    let after = refresh(r2).await;
    after.assert_oauth_error_exactly("invalid_grant", "Unknown or invalid refresh token.");
}

#[tokio::test]
async fn client_authentication_failures_are_401_invalid_client() {
    let h = Harness::new();
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let cc = [("grant_type", "client_credentials"), ("audience", API)];
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("client_id", "jwtgate-m2m"), ("client_secret", "wrong")],
            vec![],
            "wrong secret",
        ),
        (
            vec![],
            vec![("authorization", basic("jwtgate-m2m", "wrong"))],
            "wrong secret",
        ),
        (
            vec![("client_id", "nobody"), ("client_secret", "x")],
            vec![],
            "unknown client",
        ),
        (
            vec![("client_id", "jwtgate-m2m")],
            vec![],
            "is confidential",
        ),
        (
            vec![("client_id", "jwtgate-spa"), ("client_secret", "x")],
            vec![],
            "is public",
        ),
        (vec![], vec![], "no client authentication"),
        (
            vec![],
            vec![("authorization", "Basic !!!".to_owned())],
            "malformed",
        ),
    ];
    for (body, headers, needle) in cases {
        let mut pairs = cc.to_vec();
        pairs.extend(body);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = h.post_form_with("/oauth/token", &pairs, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{needle}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"], "invalid_client");
        assert!(
            reply.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            reply.text()
        );
        // A Basic challenge when the client used the Authorization header (RFC 6749 §5.2).
        assert_eq!(
            reply.header("www-authenticate").is_some(),
            headers.iter().any(|(n, _)| *n == "authorization"),
            "{needle}"
        );
    }
    // Both methods at once.
    let mut pairs = cc.to_vec();
    pairs.push(("client_secret", "jwtgate-m2m-secret"));
    let auth = basic("jwtgate-m2m", "jwtgate-m2m-secret");
    let reply = h
        .post_form_with("/oauth/token", &pairs, &[("authorization", &auth)])
        .await;
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[tokio::test]
async fn client_credentials_tokens() {
    let h = Harness::new();
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("jwtgate-m2m:jwtgate-m2m-secret")
    );
    let reply = h
        .post_form_with(
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("audience", API)],
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["scope"], "read:users");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let access = body["access_token"].as_str().unwrap();
    let verified = h
        .api_verifier(&["read:users"])
        .verify(access.as_bytes(), h.now())
        .unwrap();
    assert_eq!(verified.subject(), Some("jwtgate-m2m@clients"));
    let (_, claims) = decode(access);
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["azp"], "jwtgate-m2m");
    assert_eq!(claims["permissions"], json!(["read:users"]));

    // client_secret_post works too; explicit scopes must be granted.
    let post = |extra: Vec<(&'static str, &'static str)>| {
        let h = &h;
        async move {
            let mut pairs = vec![
                ("grant_type", "client_credentials"),
                ("client_id", "jwtgate-m2m"),
                ("client_secret", "jwtgate-m2m-secret"),
            ];
            pairs.extend(extra);
            h.post_form("/oauth/token", &pairs).await
        }
    };
    assert_eq!(
        post(vec![("audience", API), ("scope", "read:users")])
            .await
            .status,
        StatusCode::OK
    );
    let reply = post(vec![("audience", API), ("scope", "read:users write:users")]).await;
    reply.assert_oauth_error("invalid_scope", "write:users");
    let reply = post(vec![]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_oauth_error("invalid_request", "no audience");
    let reply = post(vec![("audience", "https://unknown.example/")]).await;
    assert_eq!(reply.json()["error"], "invalid_target");
    // The m2m client may not use the code flow; the SPA may not use client_credentials.
    let reply = post(vec![
        ("audience", API),
        ("grant_type", "authorization_code"),
    ])
    .await;
    assert_eq!(
        reply.json()["error"],
        "invalid_request",
        "grant_type given twice"
    );
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "jwtgate-spa"),
                ("audience", API),
            ],
        )
        .await;
    assert_eq!(reply.json()["error"], "unauthorized_client");
    let reply = h
        .post_form(
            "/oauth/token",
            &[("grant_type", "password"), ("client_id", "jwtgate-spa")],
        )
        .await;
    assert_eq!(reply.json()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn token_endpoint_takes_json_bodies_too() {
    let h = Harness::new();
    let reply = h
        .send(
            axum::http::Request::post("/oauth/token")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"grant_type": "client_credentials", "client_id": "jwtgate-m2m",
                           "client_secret": "jwtgate-m2m-secret", "audience": API})
                    .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn prompt_none_uses_the_session_cookie_and_web_message() {
    let h = Harness::new();
    let silent = h.authorize_path(&[("prompt", "none"), ("response_mode", "web_message")]);

    // No session: login_required, posted to the redirect URI's origin.
    let reply = h.get(&silent).await;
    assert_eq!(reply.status, StatusCode::OK);
    let page = reply.text();
    assert!(page.contains("\"error\":\"login_required\""), "{page}");
    assert!(page.contains("\"state\":\"c3RhdGU9PQ==\""));
    assert!(page.contains("postMessage("));
    assert!(page.contains(",\"http://localhost:5173\")"), "{page}");
    let csp = reply.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors http://localhost:5173"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        reply.header("x-frame-options").is_none(),
        "must load in the SDK's iframe"
    );

    // With the session cookie: a code, silently.
    let (_, cookie) = h.sign_in(&[], "alice").await;
    let reply = h.get_with_cookie(&silent, &cookie).await;
    let page = reply.text();
    assert!(page.contains("\"type\":\"authorization_response\""));
    let start = page.find("\"code\":\"").unwrap() + 8;
    let code = page[start..].split('"').next().unwrap();
    let body = h.exchange(code).await.json();
    assert!(h
        .api_verifier(&["read:users"])
        .verify(body["access_token"].as_str().unwrap().as_bytes(), h.now())
        .is_ok());

    // The same cookie and a normal redirect: no login page (SSO).
    let reply = h.get_with_cookie(&h.authorize_path(&[]), &cookie).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(query_param(&reply.location(), "code").is_some());

    // prompt=login shows the login page despite the session; max_age too once exceeded.
    let reply = h
        .get_with_cookie(&h.authorize_path(&[("prompt", "login")]), &cookie)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("Sign in to jwtgate SPA"));
    h.clock.advance(std::time::Duration::from_secs(120));
    let reply = h
        .get_with_cookie(
            &h.authorize_path(&[("max_age", "60"), ("prompt", "none")]),
            &cookie,
        )
        .await;
    assert_eq!(
        query_param(&reply.location(), "error").as_deref(),
        Some("login_required")
    );
    let reply = h
        .get_with_cookie(
            &h.authorize_path(&[("max_age", "600"), ("prompt", "none")]),
            &cookie,
        )
        .await;
    assert!(query_param(&reply.location(), "code").is_some());

    // A session expires.
    h.clock.advance(std::time::Duration::from_secs(24 * 3600));
    let reply = h.get_with_cookie(&silent, &cookie).await;
    assert!(reply.text().contains("login_required"));
}

#[tokio::test]
async fn web_message_cannot_be_broken_out_of() {
    let h = Harness::new();
    let reply = h
        .get(&h.authorize_path(&[
            ("prompt", "none"),
            ("response_mode", "web_message"),
            ("state", "</script><script>alert(1)</script>"),
        ]))
        .await;
    let page = reply.text();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("\\u003c/script\\u003e"));
}

#[tokio::test]
async fn login_page_choices() {
    let h = Harness::new();
    let page = h.get(&h.authorize_path(&[])).await;
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    let text = page.text();
    assert!(text.contains("value=\"alice\"") && text.contains("value=\"bob\""));
    assert!(text.contains("read:users"), "shows alice's permissions");
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("form-action 'self' http://localhost:5173"));

    // A typed name is an ad-hoc user without permissions.
    let reply = h
        .post_form("/login", &[("tx", &page.login_tx()), ("username", "carol")])
        .await;
    let code = query_param(&reply.location(), "code").unwrap();
    let body = h.exchange(&code).await.json();
    let (_, claims) = decode(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "jwtgate|carol");
    assert_eq!(claims["permissions"], json!([]));

    // The tx is single-use.
    let reply = h
        .post_form("/login", &[("tx", &page.login_tx()), ("user", "alice")])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("expired or was already used"));

    // An invalid typed name shows the page again with the error.
    let page = h.get(&h.authorize_path(&[])).await;
    let reply = h
        .post_form(
            "/login",
            &[("tx", &page.login_tx()), ("username", "no spaces please")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("a name has 1 to 64"));

    // Cancel: access_denied back to the client.
    let reply = h
        .post_form("/login", &[("tx", &reply.login_tx()), ("cancel", "1")])
        .await;
    assert_eq!(
        query_param(&reply.location(), "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test]
async fn configured_users_only_when_asked() {
    let mut config = Config::builtin().unwrap();
    config.issuer.allow_any_user = false;
    let h = Harness::with(config, KeyRing::ephemeral());
    let page = h.get(&h.authorize_path(&[])).await;
    assert!(!page.text().contains("or type any name"));
    let reply = h
        .post_form(
            "/login",
            &[("tx", &page.login_tx()), ("username", "mallory")],
        )
        .await;
    assert!(reply.text().contains("accepts configured users only"));
}

#[tokio::test]
async fn rfc9068_profile_and_other_algorithms() {
    let toml = r#"
        [[apis]]
        identifier = "https://es.example/"
        permissions = ["read"]
        signing_alg = "ES256"
        profile = "rfc9068"
        [[apis]]
        identifier = "https://ed.example/"
        permissions = ["read"]
        signing_alg = "EdDSA"
        rbac = false
        token_lifetime = 120
        [[clients]]
        id = "web"
        secret = "s3cret"
        redirect_uris = ["https://app.example/cb"]
        [[users]]
        username = "dana"
        [users.permissions]
        "https://es.example/" = ["read"]
        [users.access_token_claims]
        "https://app.example/roles" = ["admin"]
    "#;
    let h = Harness::with(Config::from_toml(toml).unwrap(), KeyRing::ephemeral());
    let extra = [
        ("client_id", "web"),
        ("redirect_uri", "https://app.example/cb"),
        ("audience", "https://es.example/"),
        ("scope", "openid read"),
        ("code_challenge", ""),
        ("code_challenge_method", ""),
    ];
    let code = h.code_for(&extra, "dana").await;
    let exchange = |code: String| {
        let h = &h;
        async move {
            h.post_form(
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "web"),
                    ("client_secret", "s3cret"),
                    ("code", &code),
                    ("redirect_uri", "https://app.example/cb"),
                ],
            )
            .await
        }
    };
    let body = exchange(code).await.json();
    let access = body["access_token"].as_str().unwrap();
    let (header, claims) = decode(access);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["client_id"], "web");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert_eq!(claims["https://app.example/roles"], json!(["admin"]));
    let strict = Policy::builder()
        .issuer(ISS)
        .audience("https://es.example/")
        .require_at_jwt(true)
        .scopes(ScopeRequirement::all_of(["read"]))
        .build()
        .unwrap();
    assert!(Verifier::new(strict, h.keys())
        .verify(access.as_bytes(), h.now())
        .is_ok());
    // The ID token stays RS256 whatever the API uses.
    assert_eq!(decode(body["id_token"].as_str().unwrap()).0["alg"], "RS256");

    // EdDSA, no RBAC: any defined scope is granted; no permissions claim; custom lifetime.
    let mut extra = extra.to_vec();
    extra.retain(|(n, _)| *n != "audience");
    extra.push(("audience", "https://ed.example/"));
    let code = h.code_for(&extra, "dana").await;
    let body = exchange(code).await.json();
    assert_eq!(body["expires_in"], 120);
    let (header, claims) = decode(body["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["scope"], "openid read");
    assert!(claims.get("permissions").is_none());

    // A confidential client may skip PKCE, but a verifier without a challenge is refused.
    let code = h.code_for(&extra, "dana").await;
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "web"),
                ("client_secret", "s3cret"),
                ("code", &code),
                ("redirect_uri", "https://app.example/cb"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    reply.assert_oauth_error("invalid_grant", "no code_challenge");
}
