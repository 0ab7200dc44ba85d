//! `jwtgate demo --check`: the demo's whole flow without a browser, as a smoke test of a new
//! machine and as the project's end-to-end test. An HTTP client does what the SPA does
//! (authorization code + PKCE at the issuer, choosing a user on its login page) and calls the API
//! through the gateway: as alice and bob, with the ID token, without an audience, with a
//! DPoP-bound token (its proof, a replayed proof, the token stolen without its key), and across a
//! key rotation. Every step's expectation is checked; the report lists each as PASS or FAIL.

use crate::{Demo, API_AUDIENCE, SPA_CLIENT};
use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_issuer::random;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use std::fmt::Write as _;

/// One checked step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// What was checked.
    pub name: String,
    /// Whether it behaved as expected.
    pub passed: bool,
    /// What was observed.
    pub detail: String,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Every step in order.
    pub steps: Vec<StepResult>,
}

impl Report {
    /// True when every step passed.
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.passed)
    }

    fn record(&mut self, name: &str, passed: bool, detail: String) {
        self.steps.push(StepResult {
            name: name.to_owned(),
            passed,
            detail,
        });
    }

    /// The report as text, one line per step and a summary line.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            let mark = if step.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(text, "{mark} {}: {}", step.name, step.detail);
        }
        let passed = self.steps.iter().filter(|s| s.passed).count();
        let _ = writeln!(
            text,
            "{passed} passed, {} failed",
            self.steps.len() - passed
        );
        text
    }
}

/// Tokens from one login.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token (a JWT with an audience, opaque without).
    pub access_token: String,
    /// The ID token.
    pub id_token: String,
}

/// Logs in as `user` the way the SPA does; `audience` as the SPA would request it.
pub async fn login(demo: &Demo, user: &str, audience: Option<&str>) -> Result<Tokens, String> {
    login_with(demo, user, audience, None).await
}

/// A DPoP proof by `key` for `method` `uri`, with the access token it comes with (none at the
/// token endpoint).
pub fn proof(
    key: &SigningKey,
    method: &str,
    uri: &str,
    access_token: Option<&str>,
) -> Result<String, String> {
    let jti = random::token(16).map_err(|e| e.to_string())?;
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    make_proof(
        key,
        &ProofClaims {
            method,
            uri,
            access_token,
            iat: i64::try_from(iat).map_err(|e| e.to_string())?,
            jti: &jti,
            nonce: None,
        },
    )
    .map_err(|e| e.to_string())
}

/// [`login`], with a DPoP proof by `dpop` at the token endpoint when given (the tokens are then
/// bound to that key).
pub async fn login_with(
    demo: &Demo,
    user: &str,
    audience: Option<&str>,
    dpop: Option<&SigningKey>,
) -> Result<Tokens, String> {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let verifier = random::token(48).map_err(|e| e.to_string())?;
    let state = random::token(16).map_err(|e| e.to_string())?;
    let challenge = random::pkce_s256(&verifier);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", SPA_CLIENT),
        ("redirect_uri", demo.app_url.as_str()),
        ("scope", "openid profile email read:users write:users"),
        ("state", state.as_str()),
        ("nonce", "check-nonce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "login"),
    ];
    if let Some(audience) = audience {
        params.push(("audience", audience));
    }
    let authorize = format!("{}authorize", demo.issuer_url);
    let page = client
        .get(&authorize)
        .query(&params)
        .send()
        .await
        .map_err(|e| format!("authorize: {e}"))?;
    let page = page.text().await.map_err(|e| e.to_string())?;
    let tx = page
        .split("name=\"tx\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("the login page has no sign-in form")?;
    let redirect = client
        .post(format!("{}login", demo.issuer_url))
        .form(&[("tx", tx), ("user", user)])
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    let location = redirect
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("login answered {} without a redirect", redirect.status()))?;
    let location = url::Url::parse(location).map_err(|e| e.to_string())?;
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("state").as_deref() != Some(state.as_str()) {
        return Err("the redirect's state does not match".into());
    }
    let code = get("code").ok_or_else(|| format!("no code in {location}"))?;
    let token_url = format!("{}oauth/token", demo.issuer_url);
    let mut request = client.post(&token_url);
    if let Some(key) = dpop {
        request = request.header("DPoP", proof(key, "POST", &token_url, None)?);
    }
    let response = request
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA_CLIENT),
            ("code", code.as_str()),
            ("redirect_uri", demo.app_url.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("token: {e}"))?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Tokens {
        access_token: text("access_token").ok_or_else(|| format!("no access token: {body}"))?,
        id_token: text("id_token").ok_or_else(|| format!("no ID token: {body}"))?,
    })
}

/// An API call through the gateway: status, `WWW-Authenticate`, body.
pub async fn call(
    demo: &Demo,
    method: &str,
    token: Option<&str>,
) -> Result<(StatusCode, String, String), String> {
    let authorization = token.map(|token| format!("Bearer {token}"));
    call_with(demo, method, authorization.as_deref(), None).await
}

/// The URL of the demo's users API.
pub fn users_url(demo: &Demo) -> String {
    format!("{}api/users", demo.app_url)
}

/// An API call with this `Authorization` value and `DPoP` proof.
pub async fn call_with(
    demo: &Demo,
    method: &str,
    authorization: Option<&str>,
    dpop: Option<&str>,
) -> Result<(StatusCode, String, String), String> {
    let client = reqwest::Client::new();
    let url = users_url(demo);
    let mut request = match method {
        "POST" => client
            .post(&url)
            .json(&serde_json::json!({"name": "Check User", "email": "check@example.com"})),
        _ => client.get(&url),
    };
    if let Some(authorization) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} /api/users: {e}"))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.unwrap_or_default();
    Ok((status, challenge, body))
}

fn expect(
    report: &mut Report,
    name: &str,
    outcome: Result<(StatusCode, String, String), String>,
    status: u16,
    words: &str,
) {
    match outcome {
        Ok((got, challenge, body)) => {
            let ok = got.as_u16() == status && (words.is_empty() || challenge.contains(words));
            let detail = if challenge.is_empty() {
                format!("{got} {}", body.chars().take(80).collect::<String>())
            } else {
                format!("{got} {challenge}")
            };
            report.record(name, ok, detail);
        }
        Err(error) => report.record(name, false, error),
    }
}

/// Runs the whole flow against a running demo.
pub async fn run(demo: &Demo) -> Report {
    let mut report = Report::default();
    let discovery = reqwest::get(format!(
        "{}.well-known/openid-configuration",
        demo.issuer_url
    ))
    .await;
    let discovery_ok = discovery.as_ref().is_ok_and(|r| r.status().is_success());
    report.record(
        "issuer discovery",
        discovery_ok,
        format!("{}.well-known/openid-configuration", demo.issuer_url),
    );
    let page = reqwest::get(demo.app_url.clone()).await;
    let page_ok = match page {
        Ok(page) => page.text().await.is_ok_and(|t| t.contains("jwtgate demo")),
        Err(_) => false,
    };
    report.record(
        "SPA page served through the gateway",
        page_ok,
        demo.app_url.clone(),
    );

    expect(
        &mut report,
        "no token is refused",
        call(demo, "GET", None).await,
        401,
        "Bearer realm=",
    );
    let alice = login(demo, "alice", Some(API_AUDIENCE)).await;
    report.record(
        "alice logs in (code + PKCE)",
        alice.is_ok(),
        alice.as_ref().map_or_else(Clone::clone, |t| {
            format!("access token of {} bytes", t.access_token.len())
        }),
    );
    if let Ok(alice) = &alice {
        expect(
            &mut report,
            "alice reads users",
            call(demo, "GET", Some(&alice.access_token)).await,
            200,
            "",
        );
        expect(
            &mut report,
            "alice cannot create users",
            call(demo, "POST", Some(&alice.access_token)).await,
            403,
            "insufficient_scope",
        );
        expect(
            &mut report,
            "the ID token is refused with the ID-token hint",
            call(demo, "GET", Some(&alice.id_token)).await,
            401,
            "looks like an ID token",
        );
    }
    dpop_steps(demo, &mut report).await;
    let bob = login(demo, "bob", Some(API_AUDIENCE)).await;
    report.record(
        "bob logs in",
        bob.is_ok(),
        bob.as_ref().map_or_else(Clone::clone, |_| "ok".to_owned()),
    );
    if let Ok(bob) = &bob {
        expect(
            &mut report,
            "bob cannot read users",
            call(demo, "GET", Some(&bob.access_token)).await,
            403,
            "insufficient_scope",
        );
    }
    let opaque = login(demo, "alice", None).await;
    match &opaque {
        Ok(tokens) => {
            let is_opaque = tokens.access_token.split('.').count() != 3;
            report.record(
                "without an audience the access token is opaque",
                is_opaque,
                format!("{} characters", tokens.access_token.len()),
            );
            expect(
                &mut report,
                "the opaque token is refused with the audience hint",
                call(demo, "GET", Some(&tokens.access_token)).await,
                401,
                "opaque",
            );
        }
        Err(error) => report.record("login without audience", false, error.clone()),
    }
    let rotation = reqwest::Client::new()
        .post(format!("{}demo/rotate", demo.app_url))
        .send()
        .await;
    let rotated = rotation.as_ref().is_ok_and(|r| r.status().is_success());
    report.record(
        "issuer key rotated",
        rotated,
        rotation.map_or_else(|e| e.to_string(), |r| r.status().to_string()),
    );
    if let Ok(alice) = &alice {
        expect(
            &mut report,
            "a token signed before the rotation still works",
            call(demo, "GET", Some(&alice.access_token)).await,
            200,
            "",
        );
    }
    match login(demo, "alice", Some(API_AUDIENCE)).await {
        Ok(fresh) => {
            let old_kid = alice.as_ref().ok().and_then(|t| kid(&t.access_token));
            let new_kid = kid(&fresh.access_token);
            report.record(
                "new tokens use the new key",
                new_kid.is_some() && new_kid != old_kid,
                format!("kid {new_kid:?} (was {old_kid:?})"),
            );
            expect(
                &mut report,
                "a token signed after the rotation works",
                call(demo, "GET", Some(&fresh.access_token)).await,
                200,
                "",
            );
            // Last: from here on alice's tokens issued so far are refused.
            let revoked = reqwest::Client::new()
                .post(format!("{}oauth/revoke", demo.issuer_url))
                .form(&[("client_id", SPA_CLIENT), ("token", &fresh.access_token)])
                .send()
                .await;
            report.record(
                "the SPA revokes its access token at the issuer",
                revoked.as_ref().is_ok_and(|r| r.status().is_success()),
                revoked.map_or_else(|e| e.to_string(), |r| r.status().to_string()),
            );
            // The gateway reads the rules file within half a second of a change.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            let refused = loop {
                let outcome = call(demo, "GET", Some(&fresh.access_token)).await;
                let done = matches!(&outcome, Ok((status, _, _)) if status.as_u16() == 401);
                if done || std::time::Instant::now() >= deadline {
                    break outcome;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            expect(
                &mut report,
                "the revoked token is refused by the gateway within a second",
                refused,
                401,
                "token revoked",
            );
        }
        Err(error) => report.record("login after rotation", false, error),
    }
    report
}

/// DPoP: alice logs in with a key of her own, calls the API with a proof, and neither a
/// replayed proof nor the token without its key (a stolen copy) gets through.
async fn dpop_steps(demo: &Demo, report: &mut Report) {
    let key = match SigningKey::generate(Algorithm::ES256, "demo-check") {
        Ok(key) => key,
        Err(error) => return report.record("DPoP key", false, error.to_string()),
    };
    let tokens = match login_with(demo, "alice", Some(API_AUDIENCE), Some(&key)).await {
        Ok(tokens) => tokens,
        Err(error) => return report.record("alice logs in with DPoP", false, error),
    };
    let jkt = key_thumbprint(&key).ok();
    let bound = claims(&tokens.access_token)
        .and_then(|c| c.get("cnf")?.get("jkt")?.as_str().map(str::to_owned));
    report.record(
        "alice logs in with DPoP: the token is bound to her key",
        bound.is_some() && bound == jkt,
        format!("cnf.jkt {bound:?}"),
    );
    let token = tokens.access_token.as_str();
    let authorization = format!("DPoP {token}");
    let proof = match proof(&key, "GET", &users_url(demo), Some(token)) {
        Ok(proof) => proof,
        Err(error) => return report.record("DPoP proof", false, error),
    };
    expect(
        report,
        "alice reads users with the token and a proof",
        call_with(demo, "GET", Some(&authorization), Some(&proof)).await,
        200,
        "",
    );
    expect(
        report,
        "the same proof sent again is refused as a replay",
        call_with(demo, "GET", Some(&authorization), Some(&proof)).await,
        401,
        "invalid_dpop_proof",
    );
    expect(
        report,
        "the bound token copied without its key is refused",
        call(demo, "GET", Some(token)).await,
        401,
        "DPoP-bound",
    );
}

fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = jwtgate_core::internal::base64url::decode(payload.as_bytes()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = jwtgate_core::internal::base64url::decode(header.as_bytes()).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}
