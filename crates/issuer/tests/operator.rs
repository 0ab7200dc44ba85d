//! In-process tests of the operator controls: the loopback-only admin endpoints, key rotation
//! with publish-ahead and a grace period, JWKS failure injection, minting, and keys kept in a
//! state directory across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use jwtgate_issuer::{Config, JwksFailure, KeyRing, MintRequest};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn admin(h: &Harness, method: &str, path: &str) -> Reply {
    h.send(
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn kid_of(token: &str) -> String {
    decode(token).0["kid"].as_str().unwrap().to_owned()
}

fn mint_alice(h: &Harness) -> String {
    h.issuer
        .mint(&MintRequest {
            user: Some("alice".into()),
            audience: Some(API.into()),
            ..Default::default()
        })
        .unwrap()
        .access_token
}

#[tokio::test]
async fn admin_answers_loopback_without_origin_only() {
    let remote = Harness::with_peer(
        Config::builtin().unwrap(),
        KeyRing::ephemeral(),
        SocketAddr::from(([192, 0, 2, 10], 40000)),
    );
    let reply = admin(&remote, "POST", "/admin/keys/activate").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    reply.assert_description("loopback");

    let v6 = Harness::with_peer(
        Config::builtin().unwrap(),
        KeyRing::ephemeral(),
        "[::1]:40000".parse().unwrap(),
    );
    assert_eq!(
        admin(&v6, "GET", "/admin/keys").await.status,
        StatusCode::OK
    );

    let h = Harness::new();
    let reply = h
        .send(
            Request::post("/admin/keys/activate")
                .header("origin", "http://localhost:5173")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    reply.assert_description("browser");
    assert_eq!(h.issuer.keys().len(), 1, "nothing rotated");
}

#[tokio::test]
async fn rotation_publishes_ahead_switches_and_retires_after_the_grace_period() {
    let h = Harness::new();
    let before = mint_alice(&h);
    let old_kid = kid_of(&before);

    // Step 1: the next key is published but signs nothing yet.
    let reply = admin(&h, "POST", "/admin/keys/publish-next").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let next_kid = reply.json()["published"][0].as_str().unwrap().to_owned();
    let jwks = h.get("/.well-known/jwks.json").await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old_kid.as_str(), next_kid.as_str()]);
    assert_eq!(kid_of(&mint_alice(&h)), old_kid);
    // A verifier that cached the JWKS now already holds the next key.
    let cached = h.api_verifier(&["read:users"]);

    // Step 2: switch, with a 60 s grace period.
    let reply = admin(&h, "POST", "/admin/keys/activate?grace=60").await;
    assert_eq!(reply.json()["activated"], json!([next_kid]));
    let after = mint_alice(&h);
    assert_eq!(kid_of(&after), next_kid);
    assert!(
        cached.verify(after.as_bytes(), h.now()).is_ok(),
        "published ahead"
    );
    let states = reply.json()["keys"].clone();
    assert_eq!(states[0]["state"], "retiring");
    assert_eq!(states[0]["retire_at"], json!(START + 60));
    assert_eq!(states[1]["state"], "current");
    // Old tokens verify during the grace period…
    assert!(h
        .api_verifier(&[])
        .verify(before.as_bytes(), h.now())
        .is_ok());
    // …and not after it: the old key has left the JWKS.
    h.clock.advance(Duration::from_secs(61));
    let jwks = h.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let rejection = h
        .api_verifier(&[])
        .verify(before.as_bytes(), h.now())
        .unwrap_err();
    assert!(
        rejection.description().contains(&old_kid),
        "{}",
        rejection.description()
    );

    // Activation without a published key, then immediate retirement.
    let reply = admin(&h, "POST", "/admin/keys/activate").await;
    let newest = reply.json()["activated"][0].as_str().unwrap().to_owned();
    assert_ne!(newest, next_kid);
    assert_eq!(
        reply.json()["keys"][0]["retire_at"],
        json!(START + 61 + 900),
        "default grace"
    );
    let reply = admin(&h, "POST", "/admin/keys/retire").await;
    assert_eq!(reply.json()["retired"], json!([next_kid]));
    assert_eq!(
        admin(&h, "GET", "/admin/keys").await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        admin(&h, "POST", "/admin/keys/activate?grace=soon")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn jwks_failures_on_command() {
    let h = Harness::new();
    let reply = admin(&h, "POST", "/admin/jwks-failure?mode=503&seconds=30").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["failure"]["mode"], "status");
    assert_eq!(reply.json()["failure"]["status"], 503);
    assert_eq!(reply.json()["failure"]["remaining_ms"], 30000);
    assert_eq!(
        h.get("/.well-known/jwks.json").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Discovery keeps working; only the JWKS fails.
    assert_eq!(
        h.get("/.well-known/openid-configuration").await.status,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_secs(29));
    assert_eq!(
        h.get("/.well-known/jwks.json").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(
        h.get("/.well-known/jwks.json").await.status,
        StatusCode::OK,
        "over after 30 s"
    );
    assert_eq!(
        admin(&h, "GET", "/admin/jwks-failure").await.json(),
        json!({"failure": null})
    );

    admin(&h, "POST", "/admin/jwks-failure?mode=garbage&seconds=5").await;
    let reply = h.get("/.well-known/jwks.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).is_err());
    assert_eq!(
        admin(&h, "DELETE", "/admin/jwks-failure").await.status,
        StatusCode::OK
    );
    assert!(h.get("/.well-known/jwks.json").await.json()["keys"].is_array());

    admin(
        &h,
        "POST",
        "/admin/jwks-failure?mode=slow&delay_ms=300&seconds=5",
    )
    .await;
    let started = Instant::now();
    let reply = h.get("/.well-known/jwks.json").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(reply.json()["keys"].is_array(), "slow, then correct");

    for bad in [
        "mode=200",
        "mode=teapot",
        "seconds=5",
        "mode=500&seconds=-1",
    ] {
        let reply = admin(&h, "POST", &format!("/admin/jwks-failure?{bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // The library call the demo uses.
    h.issuer
        .fail_jwks(JwksFailure::Status { status: 500 }, Duration::from_secs(1));
    assert_eq!(
        h.get("/.well-known/jwks.json").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn mint_without_a_browser() {
    let h = Harness::new();
    let reply = h
        .send(
            Request::post("/admin/mint")
                .body(Body::from(json!({"user": "alice", "audience": API, "scope": "openid read:users", "lifetime": 60}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["scope"], "openid read:users");
    let access = body["access_token"].as_str().unwrap();
    assert!(h
        .api_verifier(&["read:users"])
        .verify(access.as_bytes(), h.now())
        .is_ok());
    assert_eq!(decode(access).1["exp"], json!(START + 60));
    assert_eq!(
        decode(body["id_token"].as_str().unwrap()).1["aud"],
        "jwtgate-spa"
    );

    // Machine tokens; ad-hoc users; the errors.
    let m2m = h
        .issuer
        .mint(&MintRequest {
            audience: Some(API.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(decode(&m2m.access_token).1["sub"], "jwtgate-m2m@clients");
    let carol = h
        .issuer
        .mint(&MintRequest {
            user: Some("carol".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!carol.access_token.contains('.'), "no audience: opaque");
    assert_eq!(
        decode(carol.id_token.as_deref().unwrap()).1["sub"],
        "jwtgate|carol"
    );
    for (request, needle) in [
        (
            MintRequest {
                user: Some("a b".into()),
                ..Default::default()
            },
            "not a valid user name",
        ),
        (
            MintRequest {
                audience: Some("https://x.example/".into()),
                ..Default::default()
            },
            "unknown audience",
        ),
        (
            MintRequest {
                ..Default::default()
            },
            "needs an audience",
        ),
        (
            MintRequest {
                user: Some("alice".into()),
                client: Some("jwtgate-m2m".into()),
                ..Default::default()
            },
            "cannot sign users in",
        ),
        (
            MintRequest {
                audience: Some(API.into()),
                scope: Some("write:users".into()),
                ..Default::default()
            },
            "has not been granted write:users",
        ),
        (
            MintRequest {
                user: Some("alice".into()),
                lifetime: Some(0),
                ..Default::default()
            },
            "greater than zero",
        ),
    ] {
        let error = h.issuer.mint(&request).unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
    let reply = h
        .send(
            Request::post("/admin/mint")
                .body(Body::from("{\"usr\":1}"))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn keys_survive_restarts_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Harness::with(
        Config::builtin().unwrap(),
        KeyRing::open(dir.path()).unwrap(),
    );
    let token = mint_alice(&first);
    let cached = first.api_verifier(&["read:users"]);
    drop(first);

    let second = Harness::with(
        Config::builtin().unwrap(),
        KeyRing::open(dir.path()).unwrap(),
    );
    let again = mint_alice(&second);
    assert_eq!(kid_of(&again), kid_of(&token));
    assert!(
        cached.verify(again.as_bytes(), second.now()).is_ok(),
        "a verifier's cached keys still work"
    );
    assert!(second
        .api_verifier(&[])
        .verify(token.as_bytes(), second.now())
        .is_ok());
    // Rotation is kept too.
    second.issuer.activate_next_keys(Some(60)).unwrap();
    let rotated = kid_of(&mint_alice(&second));
    let third = Harness::with(
        Config::builtin().unwrap(),
        KeyRing::open(dir.path()).unwrap(),
    );
    assert_eq!(kid_of(&mint_alice(&third)), rotated);
    assert_eq!(third.issuer.keys().len(), 2);

    // Ephemeral issuers start with new keys every time.
    let a = Harness::new();
    let b = Harness::new();
    assert_ne!(kid_of(&mint_alice(&a)), kid_of(&mint_alice(&b)));
}

#[tokio::test]
async fn config_algorithms_get_keys() {
    let toml = r#"
        [[apis]]
        identifier = "https://es.example/"
        signing_alg = "ES256"
    "#;
    let h = Harness::with(Config::from_toml(toml).unwrap(), KeyRing::ephemeral());
    let algs: Vec<String> = h.issuer.keys().into_iter().map(|k| k.alg).collect();
    assert_eq!(
        algs,
        ["RS256", "ES256"],
        "RS256 for ID tokens, ES256 for the API"
    );
}
