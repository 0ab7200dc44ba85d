//! The issuer writes revocation rules through the gateway's model when told to
//! ([`Issuer::revoke_through`]): `/oauth/revoke` of a JWT access token writes a rule by its `jti`
//! until its `exp`, revoking a refresh token and logging out write a rule refusing the user's
//! access tokens issued so far, and the rules refuse exactly those tokens. Without a writer,
//! nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{decode, Harness, API};
use jwtgate_revocation::writer::RuleWriter;
use jwtgate_revocation::{parse_json_lines, Match, RuleSet, TokenFacts};
use serde_json::Value;

/// Signs `user` in for the API: (access token, refresh token, session cookie).
async fn tokens(h: &Harness, user: &str) -> (String, String, String) {
    let extra = [("audience", API), ("scope", "openid offline_access")];
    let (location, cookie) = h.sign_in(&extra, user).await;
    let code = common::query_param(&location, "code").unwrap();
    let reply = h.exchange(&code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    let text = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    (text("access_token"), text("refresh_token"), cookie)
}

fn rules(path: &std::path::Path) -> RuleSet {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    RuleSet::from_rules(&parse_json_lines(&text).unwrap())
}

/// What the gateway's lookup says about `token` at `now`.
fn verdict(rules: &RuleSet, token: &str, now: i64) -> Option<Match> {
    let (_, claims) = decode(token);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let facts = TokenFacts {
        iss: text("iss").unwrap(),
        sub: text("sub"),
        jti: text("jti"),
        client_id: text("client_id"),
        azp: text("azp"),
        iat: claims.get("iat").and_then(Value::as_f64),
    };
    rules.check(&facts, now)
}

#[tokio::test]
async fn revoke_and_logout_write_rules_that_refuse_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked.jsonl");
    let h = Harness::new();
    assert!(h.issuer.revoke_through(RuleWriter::File(file.clone())));
    let (alice_access, _, _) = tokens(&h, "alice").await;
    let (bob_access, bob_refresh, _) = tokens(&h, "bob").await;
    h.clock.advance(std::time::Duration::from_secs(2));
    let (alice_second, _, alice_cookie) = tokens(&h, "alice").await;
    let now = h.now();

    // An access token (JWT) revoked: Auth0's profile has no jti, so a rule refusing alice's
    // tokens issued up to that one's iat, kept as long as they live.
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[("client_id", "jwtgate-spa"), ("token", &alice_access)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let held = rules(&file);
    assert!(matches!(
        verdict(&held, &alice_access, now),
        Some(Match::Subject { .. })
    ));
    assert_eq!(verdict(&held, &alice_second, now), None, "issued later");
    let (_, claims) = decode(&alice_access);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(verdict(&held, &alice_access, exp).is_some());
    assert_eq!(
        verdict(&held, &alice_access, exp + 1),
        None,
        "kept as long as such a token lives, no longer"
    );
    assert_eq!(verdict(&held, &bob_access, now), None);
    // Another client may not revoke it.
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[
                ("client_id", "jwtgate-m2m"),
                ("client_secret", "jwtgate-m2m-secret"),
                ("token", &bob_access),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(verdict(&rules(&file), &bob_access, now), None);

    // A refresh token revoked: the user's access tokens issued so far are refused too.
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[("client_id", "jwtgate-spa"), ("token", &bob_refresh)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(matches!(
        verdict(&rules(&file), &bob_access, now),
        Some(Match::Subject { .. })
    ));

    // Logout: alice's tokens issued until now are refused ("log out everywhere").
    assert_eq!(verdict(&rules(&file), &alice_second, now), None);
    let reply = h.get_with_cookie("/v2/logout", &alice_cookie).await;
    assert!(reply.status.is_success() || reply.status.is_redirection());
    let held = rules(&file);
    assert!(matches!(
        verdict(&held, &alice_second, now),
        Some(Match::Subject { .. })
    ));
    assert_eq!(held.len(), 2, "one rule per user: {:?}", held.rules());
    // A token alice gets after logging in again (a later second) passes.
    h.clock.advance(std::time::Duration::from_secs(2));
    let (alice_again, _, _) = tokens(&h, "alice").await;
    assert_eq!(verdict(&rules(&file), &alice_again, h.now()), None);
}

#[tokio::test]
async fn without_a_writer_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked.jsonl");
    let h = Harness::new();
    let (access, _, cookie) = tokens(&h, "alice").await;
    let reply = h
        .post_form(
            "/oauth/revoke",
            &[("client_id", "jwtgate-spa"), ("token", &access)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    h.get_with_cookie("/v2/logout", &cookie).await;
    assert!(!file.exists());
}
