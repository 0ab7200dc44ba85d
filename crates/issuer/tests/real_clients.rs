//! Real clients, end to end, against the issuer on a free loopback port: the real
//! `@auth0/auth0-spa-js` bundle in headless Chromium, `openid-client` and `jose` in Node, and
//! jwtgate's own remote-key verification (jwtgate-keys). The Node side lives in `../e2e/`
//! (`npm ci` there; `bash scripts/test` does it, and installs Debian's `chromium`).
//!
//! These tests fail — they never skip — when Chromium, Node or the npm packages are missing.
//! Screenshots go to `<target>/tmp/issuer-e2e/` (or `$JWTGATE_E2E_ARTIFACTS`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::API;
use jwtgate_issuer::{Issuer, MintRequest};
use jwtgate_keys::Registry;
use jwtgate_test_support::now;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// Fails the test with instructions when a real client is missing.
fn require_real_clients(chromium: bool) {
    let dir = e2e_dir();
    for package in [
        "playwright-core",
        "@auth0/auth0-spa-js",
        "openid-client",
        "jose",
    ] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        assert!(
            manifest.exists(),
            "npm package {package} is missing: run `npm ci` in {} (bash scripts/test does)",
            dir.display()
        );
    }
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js (20 or later)"
    );
    if chromium {
        let path = chromium_path();
        assert!(
            Path::new(&path).exists(),
            "Chromium is missing at {path}: apt-get install chromium (or set JWTGATE_CHROMIUM)"
        );
    }
}

fn chromium_path() -> String {
    std::env::var("JWTGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("JWTGATE_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("issuer-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An issuer served on 127.0.0.1:<free port>, known to clients as `http://localhost:<port>/`
/// (the SPA runs on localhost too: same site, so the silent iframe gets the session cookie).
struct Served {
    issuer: Issuer,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_issuer() -> Served {
    let (issuer, url, stop) = common::serve_builtin("localhost").await;
    Served {
        issuer,
        url,
        _stop: stop,
    }
}

/// A jwtgate gateway in front of a small users API, in process: the tower layer over axum, with
/// the issuer's keys by discovery, CORS for any origin (the SPA's port is chosen by the script)
/// and DPoP server nonces on.
struct Gateway {
    url: String,
    engine: Arc<jwtgate_http::Engine>,
}

async fn serve_gateway(issuer_url: &str) -> Gateway {
    let toml = format!(
        r#"
[[issuers]]
issuer = "{issuer_url}"
audiences = ["{API}"]

[[routes]]
methods = ["GET"]
path = "/api/users"
scopes = ["read:users"]

[cors]
origins = ["*"]
methods = ["GET"]
headers = ["Authorization", "DPoP"]

[dpop]
nonce = true
"#
    );
    let built = jwtgate_http::config::GatewayConfig::from_toml(&toml, "test")
        .unwrap()
        .build("test")
        .unwrap();
    let engine = built.engine.clone();
    let app = axum::Router::new()
        .route(
            "/api/users",
            axum::routing::get(|| async { axum::Json(["alice", "bob"]) }),
        )
        .layer(jwtgate_http::AuthLayer::new(built.engine));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Gateway {
        url: format!("http://localhost:{port}"),
        engine,
    }
}

/// Runs a Node script in e2e/ and returns its JSON result; fails with its output otherwise.
async fn node(script: &str, args: &[&str]) -> Value {
    let run = Command::new("node")
        .arg(e2e_dir().join(script))
        .args(args)
        .current_dir(e2e_dir())
        .env("JWTGATE_CHROMIUM", chromium_path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("node {script} took more than 180 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("node {script} printed no JSON.\nstdout: {stdout}\nstderr: {stderr}")
    });
    assert!(
        output.status.success() && result.get("error").is_none(),
        "node {script} failed: {}\nlog: {}\nstderr: {stderr}",
        result["error"].as_str().unwrap_or("(no error text)"),
        result["log"]
    );
    result
}

fn decode(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&jwtgate_core::internal::base64url::decode(payload.as_bytes()).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_spa_js_in_chromium() {
    require_real_clients(true);
    let served = serve_issuer().await;
    let domain = served.url.trim_end_matches('/');
    let artifacts = artifacts();
    let gateway = serve_gateway(&served.url).await;
    let result = node(
        "spa.mjs",
        &[domain, API, artifacts.to_str().unwrap(), &gateway.url],
    )
    .await;
    let verifier = common::discovery_registry(&served.url);
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{result}");

    for run in runs {
        let mode = run["mode"].as_str().unwrap();
        // getTokenSilently() returns a JWT access token jwtgate accepts for the API and scope.
        for name in ["access_token", "silent_access_token"] {
            let token = run[name].as_str().unwrap();
            let verified = verifier
                .verify(token.as_bytes(), now())
                .await
                .unwrap_or_else(|r| panic!("{mode} {name}: {}", r.description()));
            assert_eq!(verified.subject(), Some("jwtgate|alice"));
            assert_eq!(decode(token)["azp"], "jwtgate-spa");
        }
        assert_eq!(
            run["cached_access_token"], run["access_token"],
            "{mode}: served from cache"
        );

        // getIdTokenClaims().__raw is the ID token; the API refuses it with the ID-token hint.
        let id_token = run["id_token"].as_str().unwrap();
        let claims = decode(id_token);
        assert_eq!(claims["aud"], "jwtgate-spa");
        assert_eq!(claims["iss"], served.url.as_str());
        assert_eq!(run["id_claims"]["sub"], "jwtgate|alice");
        assert!(claims["at_hash"].is_string() && claims["sid"].is_string());
        let rejection = verifier
            .verify(id_token.as_bytes(), now())
            .await
            .unwrap_err();
        assert!(
            rejection.description().contains("looks like an ID token"),
            "{}",
            rejection.description()
        );
        assert_eq!(run["user"]["sub"], "jwtgate|alice");

        let requests = run["requests"].as_array().unwrap();
        let has = |f: &dyn Fn(&Value) -> bool| requests.iter().any(f);
        assert!(
            has(&|r| r["path"] == "/authorize" && r["response_mode"] == "query"),
            "{mode}: {requests:?}"
        );
        assert!(has(&|r| r["path"] == "/v2/logout"), "{mode}: {requests:?}");
        let grants: Vec<&str> = requests
            .iter()
            .filter_map(|r| r["grant_type"].as_str())
            .collect();
        assert_eq!(grants[0], "authorization_code", "{mode}: {requests:?}");
        match mode {
            "iframe" => {
                // getTokenSilently({cacheMode: 'off'}) went through the hidden iframe: prompt=none,
                // web_message, and a second code exchange.
                assert!(
                    has(&|r| r["path"] == "/authorize"
                        && r["prompt"] == "none"
                        && r["response_mode"] == "web_message"),
                    "silent renewal through the iframe: {requests:?}"
                );
                assert!(
                    grants.len() >= 2 && grants.iter().all(|g| *g == "authorization_code"),
                    "{requests:?}"
                );
                assert_eq!(
                    run["after_reload_authenticated"], true,
                    "checkSession after a reload"
                );
                // After logout the issuer's session is gone: silent login is refused by the issuer.
                assert_eq!(run["silent_after_logout"], "login_required");
            }
            "refresh" => {
                // …through the SDK's Web Worker with the refresh token instead.
                assert_eq!(grants[1..], ["refresh_token"], "{requests:?}");
                assert!(
                    !has(&|r| r["prompt"] == "none"),
                    "no iframe fallback: {requests:?}"
                );
                assert_eq!(run["silent_after_logout"], "missing_refresh_token");
            }
            "dpop" => {
                // useDpop: every token request carried a proof and got DPoP-bound tokens, the
                // refresh (bound to the same key) included; the SDK's proof for an API call
                // passes jwtgate's DPoP checks, once.
                assert_eq!(grants[1..], ["refresh_token"], "{requests:?}");
                let token_requests: Vec<&Value> = requests
                    .iter()
                    .filter(|r| r["grant_type"].is_string())
                    .collect();
                assert!(
                    token_requests
                        .iter()
                        .all(|r| r["dpop"] == true && r["token_type"] == "DPoP"),
                    "{requests:?}"
                );
                let first = decode(run["access_token"].as_str().unwrap());
                let renewed = decode(run["silent_access_token"].as_str().unwrap());
                assert!(first["cnf"]["jkt"].is_string(), "{first}");
                assert_eq!(first["cnf"], renewed["cnf"], "one key for the session");
                check_sdk_proof(&verifier, run).await;
                // createFetcher() against the real gateway (DPoP nonces on): the first call is
                // answered use_dpop_nonce and retried by the SDK with the nonce, both pass; the
                // same token as Bearer is a downgrade, refused.
                let calls = run["gateway_calls"].as_array().expect("gateway calls");
                assert_eq!(calls[0]["status"], 200, "{calls:?}");
                assert_eq!(calls[1]["status"], 200, "{calls:?}");
                assert!(calls[0]["body"].as_str().unwrap().contains("alice"));
                assert!(
                    calls[1]["nonce"].is_string(),
                    "a nonce on success: {calls:?}"
                );
                assert_eq!(calls[2]["status"], 401, "{calls:?}");
                let nonce_refusals = gateway.engine.metrics().render(gateway.engine.registry());
                assert!(
                    nonce_refusals.contains("reason=\"dpop_nonce\""),
                    "the SDK met the nonce challenge: {nonce_refusals}"
                );
                assert_eq!(run["silent_after_logout"], "missing_refresh_token");
            }
            other => panic!("unexpected mode {other}"),
        }
        assert_eq!(run["after_logout_authenticated"], false);

        let screenshot = PathBuf::from(run["screenshot"].as_str().unwrap());
        let png = std::fs::read(&screenshot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{}",
            screenshot.display()
        );
        println!("screenshot: {}", screenshot.display());
    }
}

/// The proof auth0-spa-js made with `generateDpopProof` for `GET dpop_url`, checked by jwtgate's
/// DPoP policy with the token it came with: accepted once, refused as a replay, refused for
/// another method.
async fn check_sdk_proof(verifier: &Registry, run: &Value) {
    use jwtgate_engine::dpop::{DpopMode, DpopPolicy, DpopRefusal, ProofRequest, Scheme};
    let token = run["silent_access_token"].as_str().unwrap();
    let proof = run["dpop_proof"]
        .as_str()
        .expect("a proof from generateDpopProof");
    let url = url::Url::parse(run["dpop_url"].as_str().unwrap()).unwrap();
    let origin = url.origin().ascii_serialization();
    let verified = verifier.verify(token.as_bytes(), now()).await.unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("dpop", proof.parse().unwrap());
    let policy = DpopPolicy::default();
    let request = |method| ProofRequest {
        method,
        origin: Some(&origin),
        target: url.path(),
        headers: (&headers).into(),
        token: token.as_bytes(),
        client_certificate: None,
        now: now(),
    };
    let (policy, verified, request) = (&policy, &verified, &request);
    let check = move |method| async move {
        policy
            .check(DpopMode::Required, Scheme::Dpop, verified, &request(method))
            .await
    };
    assert!(
        matches!(check("POST").await, Err(DpopRefusal::Proof(_))),
        "a proof for GET is not one for POST"
    );
    check("GET")
        .await
        .unwrap_or_else(|refusal| panic!("auth0-spa-js's proof: {refusal}"));
    assert_eq!(check("GET").await, Err(DpopRefusal::Replayed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_and_jose() {
    require_real_clients(false);
    let served = serve_issuer().await;
    let result = node("rp.mjs", &[&served.url, API]).await;
    let verifier = common::discovery_registry(&served.url);

    assert_eq!(result["metadata_issuer"], served.url.as_str());
    let code = &result["code"];
    assert_eq!(code["claims"]["sub"], "jwtgate|alice");
    assert_eq!(code["claims"]["email"], "alice@example.com");
    assert_eq!(
        code["scope"],
        "openid profile email read:users offline_access"
    );
    let expires_in = code["expires_in"].as_i64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(code["has_refresh_token"], true);
    assert_eq!(result["refreshed"]["rotated"], true);
    assert_eq!(result["refreshed"]["claims"]["sub"], "jwtgate|alice");
    assert_eq!(result["userinfo"]["sub"], "jwtgate|alice");
    assert_eq!(result["userinfo"]["name"], "Alice Example");
    assert_eq!(result["client_credentials"]["scope"], "read:users");
    assert_eq!(result["client_credentials"]["wrong_secret"]["status"], 401);
    assert_eq!(
        result["client_credentials"]["wrong_secret"]["error"],
        "invalid_client"
    );

    // jose verified every access token against the JWKS, and refused the ID token for the API.
    for name in [
        "code",
        "refreshed",
        "client_credentials",
        "id_token_for_client",
    ] {
        assert_eq!(
            result["jose"][name]["ok"], true,
            "{name}: {}",
            result["jose"][name]
        );
    }
    assert_eq!(
        result["jose"]["client_credentials"]["payload"]["sub"],
        "jwtgate-m2m@clients"
    );
    assert_eq!(
        result["jose"]["id_token_as_access_token"]["code"],
        "ERR_JWT_CLAIM_VALIDATION_FAILED"
    );

    // So did jwtgate.
    for token in [
        &code["access_token"],
        &result["refreshed"]["access_token"],
        &result["client_credentials"]["post"],
        &result["client_credentials"]["basic"],
    ] {
        let token = token.as_str().unwrap();
        verifier
            .verify(token.as_bytes(), now())
            .await
            .unwrap_or_else(|r| panic!("{}", r.description()));
    }
}

/// The jose verifier process: one token per line in, one JSON line out.
struct Jose {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Jose {
    async fn start(issuer_url: &str) -> Jose {
        let mut child = Command::new("node")
            .arg(e2e_dir().join("jose-verifier.mjs"))
            .args([
                &format!("{issuer_url}.well-known/jwks.json"),
                issuer_url,
                API,
                "500",
            ])
            .current_dir(e2e_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next_line().await.unwrap().unwrap();
        assert_eq!(ready, "{\"ready\":true}");
        Jose {
            child,
            stdin,
            lines,
        }
    }

    async fn verify(&mut self, token: &str) -> Value {
        self.stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_without_restarting_jwtgate_or_jose() {
    require_real_clients(false);
    let served = serve_issuer().await;
    let issuer = &served.issuer;
    let mint = || {
        issuer
            .mint(&MintRequest {
                user: Some("alice".into()),
                audience: Some(API.into()),
                scope: Some("openid read:users".into()),
                ..Default::default()
            })
            .unwrap()
            .access_token
    };
    let verifier = common::discovery_registry(&served.url);
    let mut jose = Jose::start(&served.url).await;

    let before = mint();
    let old_kid = decode_header_kid(&before);
    assert!(verifier.verify(before.as_bytes(), now()).await.is_ok());
    assert_eq!(jose.verify(&before).await["ok"], true);

    // Publish ahead, switch, and keep going with the same verifier instances.
    let next = issuer.publish_next_keys().unwrap();
    let active = issuer.activate_next_keys(Some(600)).unwrap();
    assert_eq!(next, active);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = mint();
    assert_eq!(decode_header_kid(&after), active[0]);
    assert_ne!(active[0], old_kid);
    let verified = verifier.verify(after.as_bytes(), now()).await;
    assert!(
        verified.is_ok(),
        "{:?}",
        verified.err().map(|r| r.description())
    );
    let answer = jose.verify(&after).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["kid"], active[0].as_str());
    // Tokens signed before the switch still verify during the grace period.
    assert!(verifier.verify(before.as_bytes(), now()).await.is_ok());
    assert_eq!(jose.verify(&before).await["ok"], true);

    // A second rotation without publishing ahead: both fetch the unknown key on demand.
    let again = issuer.activate_next_keys(Some(600)).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = mint();
    assert_eq!(decode_header_kid(&third), again[0]);
    assert!(verifier.verify(third.as_bytes(), now()).await.is_ok());
    assert_eq!(jose.verify(&third).await["ok"], true);
    jose.child.kill().await.unwrap();
}

fn decode_header_kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &jwtgate_core::internal::base64url::decode(header.as_bytes()).unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
