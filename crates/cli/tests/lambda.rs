//! `jwtgate lambda` for real: the built binary runs against a small Lambda Runtime API on
//! loopback, with keys from an issuer on loopback (discovery + JWKS), or from a bundled file.
//! Checks the answers of every event kind, the exact `Unauthorized` error, init failures on bad
//! configuration (reported to `/init/error`), that the JWKS is fetched once (during init) across
//! many invocations, and the `bootstrap` name. An ignored test measures cold start and warm
//! invocations (`bench/lambda.sh` runs it against the release build).

#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod lambda_support;

use lambda_support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn assert_unauthorized(result: Result<Value, (Value, Option<String>)>, what: &str) {
    match result {
        Err((body, _)) => {
            assert_eq!(body["errorMessage"], "Unauthorized", "{what}: {body}");
            assert_eq!(body["errorType"], "Unauthorized", "{what}: {body}");
        }
        Ok(body) => panic!("{what}: expected Unauthorized, got {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_loop_answers_and_fetches_keys_once() {
    let issuer = Issuer::start();
    let api = RuntimeApi::start(issuer.server.jwks_counter()).await;
    let env = lambda_env(
        &api.address,
        &[
            ("JWTGATE_ISSUER", &issuer.issuer),
            ("JWTGATE_AUDIENCE", AUDIENCE),
            (
                "JWTGATE_ROUTES",
                "GET /users read:users; DELETE /users/{id} admin",
            ),
            ("JWTGATE_CONTEXT_CLAIMS", "email"),
        ],
    );
    let function = Function::start(&binary(), &["lambda"], &env);

    // Many invocations, each with its own token (so every one checks a signature with the
    // cached keys rather than hitting the verified-token cache).
    for i in 0..25 {
        let sub = format!("user-{i}");
        let answer = api
            .call(event(REST_TOKEN, &issuer.token(&sub, json!({}))))
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", function.output()));
        assert_eq!(
            answer,
            json!({
                "principalId": sub,
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": ["execute-api:Invoke"],
                        "Effect": "Allow",
                        "Resource": ["arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/GET/users"],
                    }],
                },
                "context": {
                    "sub": sub,
                    "iss": issuer.issuer,
                    "scope": "openid read:users",
                    "email": format!("{sub}@example.com"),
                },
                "usageIdentifierKey": null,
            })
        );
    }
    let token = issuer.token("alice", json!({}));
    let request = api.call(event(REST_REQUEST, &token)).await.unwrap();
    assert_eq!(request["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(
        request["policyDocument"]["Statement"][0]["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/GET/users"
    );
    let v2 = api.call(event(HTTP_API_V2, &token)).await.unwrap();
    assert_eq!(v2["isAuthorized"], true);
    assert_eq!(v2["context"]["sub"], "alice");

    // A valid token lacking the route's scope: Deny (403).
    let mut delete = event(REST_TOKEN, &token);
    delete["methodArn"] =
        json!("arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/DELETE/users/7");
    let denied = api.call(delete).await.unwrap();
    assert_eq!(denied["principalId"], "alice");
    assert_eq!(denied["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(denied["context"]["error"], "insufficient_scope");

    // Invalid tokens and missing or malformed headers: exactly `Unauthorized` (401).
    let mut missing = event(REST_TOKEN, "x");
    missing
        .as_object_mut()
        .unwrap()
        .remove("authorizationToken");
    let mut malformed = event(REST_REQUEST, "x");
    malformed["headers"]["Authorization"] = json!("Bearer");
    let refusals = [
        ("missing header", missing),
        ("malformed header", malformed),
        (
            "expired",
            event(REST_TOKEN, &issuer.token("bob", json!({"exp": now() - 60}))),
        ),
        (
            "wrong audience",
            event(
                REST_TOKEN,
                &issuer.token("bob", json!({"aud": "https://other.example.com"})),
            ),
        ),
        ("opaque token", event(HTTP_API_V2, "an-opaque-access-token")),
    ];
    for (what, event) in refusals {
        assert_unauthorized(api.call(event).await, what);
    }

    // Not an authorizer event: a different error (API Gateway answers 500).
    match api.call(json!({"Records": []})).await {
        Err((body, _)) => {
            assert_eq!(body["errorType"], "jwtgate.InvalidEvent");
            assert_ne!(body["errorMessage"], "Unauthorized");
        }
        Ok(body) => panic!("{body}"),
    }

    // The keys were fetched once, during init (before the first /next), and never again.
    assert_eq!(issuer.server.discovery_fetches(), 1);
    assert_eq!(issuer.server.jwks_fetches(), 1);
    assert_eq!(api.jwks_hits_at_first_next().await, Some(1));
    let output = function.output();
    assert!(output.contains("jwtgate authorizer ready"), "{output}");
    assert!(
        !output.contains(&token),
        "tokens must never be logged whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_name_with_a_bundled_jwks_file() {
    let issuer = Issuer::start();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, issuer.signer.jwks().to_string()).unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::os::unix::fs::symlink(binary(), &bootstrap).unwrap();

    let api = RuntimeApi::start(issuer.server.jwks_counter()).await;
    let env = lambda_env(
        &api.address,
        &[
            ("JWTGATE_ISSUER", &issuer.issuer),
            ("JWTGATE_AUDIENCE", AUDIENCE),
            ("JWTGATE_JWKS_FILE", jwks.to_str().unwrap()),
            ("JWTGATE_HTTP_API_RESPONSE", "iam"),
        ],
    );
    // No arguments at all: the name alone selects Lambda mode (`bootstrap lambda` works too).
    let function = Function::start(&bootstrap, &[], &env);
    let mut also = Function::start(&bootstrap, &["lambda", "--check"], &env);
    assert_eq!(
        also.exit_code(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        also.output()
    );
    let token = issuer.token("carol", json!({}));
    let answer = api
        .call(event(HTTP_API_V2, &token))
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", function.output()));
    assert_eq!(answer["principalId"], "carol");
    assert_eq!(
        answer["policyDocument"]["Statement"][0]["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
    );
    assert_unauthorized(api.call(event(REST_TOKEN, "x.y.z")).await, "garbage");
    // The bundled file means no network at all.
    assert_eq!(issuer.server.discovery_fetches(), 0);
    assert_eq!(issuer.server.jwks_fetches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_fails_the_init_phase() {
    let issuer = Issuer::start();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "no issuer configured"),
        (
            vec![("JWTGATE_ISSUER", &issuer.issuer)],
            "`JWTGATE_AUDIENCE`: JWTGATE_ISSUER is",
        ),
        (
            vec![
                ("JWTGATE_ISSUER", &issuer.issuer),
                ("JWTGATE_AUDIENCE", AUDIENCE),
                ("JWTGATE_POLICY_RESOURCE", "everything"),
            ],
            "environment: `JWTGATE_POLICY_RESOURCE`: \"everything\" is not wildcard or method",
        ),
        (
            vec![
                ("JWTGATE_ISSUER", &issuer.issuer),
                ("JWTGATE_AUDIENCE", AUDIENCE),
                ("JWTGATE_ROUTES", "GET users read"),
            ],
            "`JWTGATE_ROUTES`: route pattern \"users\" must start with '/'",
        ),
        (
            vec![
                ("JWTGATE_ISSUER", &issuer.issuer),
                ("JWTGATE_AUDIENCE", AUDIENCE),
                ("JWTGATE_JWKS_FILE", "/nonexistent/jwks.json"),
            ],
            "cannot load keys from file /nonexistent/jwks.json",
        ),
        (
            vec![("JWTGATE_CONFIG", "/nonexistent/authorizer.toml")],
            "/nonexistent/authorizer.toml: cannot read the configuration file",
        ),
    ];
    for (vars, expected) in cases {
        let api = RuntimeApi::start(issuer.server.jwks_counter()).await;
        let env = lambda_env(&api.address, &vars);
        let mut function = Function::start(&binary(), &["lambda"], &env);
        let posted = api.posted(Duration::from_secs(20)).await;
        let Posted::InitError { body, error_type } = posted else {
            panic!("{vars:?}: expected an init error, got {posted:?}");
        };
        let message = body["errorMessage"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains(expected),
            "{vars:?}: {message:?} lacks {expected:?}"
        );
        assert_eq!(body["errorType"], "jwtgate.ConfigurationError");
        assert_eq!(error_type.as_deref(), Some("Runtime.InitError"));
        assert_eq!(function.exit_code(Duration::from_secs(20)).await, Some(1));
        assert_eq!(
            api.next_calls(),
            0,
            "{vars:?}: no invocation after a failed init"
        );
        let output = function.output();
        assert!(
            output.contains(expected),
            "{vars:?}: the log lacks the message:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_lambda_and_check_mode() {
    let no_api = lambda_env("", &[]);
    let mut env = no_api.clone();
    env.remove("AWS_LAMBDA_RUNTIME_API");
    env.insert(
        "JWTGATE_ISSUER".into(),
        "https://tenant.example.com/".into(),
    );
    env.insert("JWTGATE_AUDIENCE".into(), AUDIENCE.into());
    let mut function = Function::start(&binary(), &["lambda"], &env);
    assert_eq!(function.exit_code(Duration::from_secs(20)).await, Some(2));
    assert!(function
        .output()
        .contains("AWS_LAMBDA_RUNTIME_API is not set"));

    let mut check = Function::start(&binary(), &["lambda", "--check"], &env);
    assert_eq!(check.exit_code(Duration::from_secs(20)).await, Some(0));
    let output = check.output();
    assert!(output.contains("configuration valid"), "{output}");
    assert!(
        output.contains("issuer = \"https://tenant.example.com/\""),
        "{output}"
    );

    env.insert("JWTGATE_LEEWAY".into(), "soon".into());
    let mut bad = Function::start(&binary(), &["lambda", "--check"], &env);
    assert_eq!(bad.exit_code(Duration::from_secs(20)).await, Some(2));
    assert!(bad
        .output()
        .contains("environment: `JWTGATE_LEEWAY`: \"soon\" is not a number of seconds"));
}

/// Cold start and warm invocations, measured against the binary in `JWTGATE_BIN` (see
/// `bench/lambda.sh`, which builds the release Lambda-only binary first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by bench/lambda.sh"]
async fn measure_cold_start_and_warm_invocations() {
    let issuer = Issuer::start();
    let token = issuer.token("alice", json!({}));
    let runs = 20;
    let mut cold = Vec::new();
    for _ in 0..runs {
        let api = RuntimeApi::start(issuer.server.jwks_counter()).await;
        let env = lambda_env(
            &api.address,
            &[
                ("JWTGATE_ISSUER", &issuer.issuer),
                ("JWTGATE_AUDIENCE", AUDIENCE),
                ("JWTGATE_JWKS_URL", &issuer.server.jwks_url()),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ],
        );
        api.invoke(event(REST_TOKEN, &token));
        let started = Instant::now();
        let function = Function::start(&binary(), &["lambda"], &env);
        let Posted::Response { at, body, .. } = api.posted(Duration::from_secs(20)).await else {
            panic!("no answer: {}", function.output());
        };
        assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
        cold.push(at.duration_since(started));
        drop(function);
    }
    cold.sort();

    // Warm: one process, the same token again and again (verified-token cache), timed from
    // handing out the event to receiving the answer (Runtime API round trip included).
    let api = RuntimeApi::start(issuer.server.jwks_counter()).await;
    let env = lambda_env(
        &api.address,
        &[
            ("JWTGATE_ISSUER", &issuer.issuer),
            ("JWTGATE_AUDIENCE", AUDIENCE),
            ("JWTGATE_JWKS_URL", &issuer.server.jwks_url()),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        ],
    );
    let _function = Function::start(&binary(), &["lambda"], &env);
    api.call(event(REST_TOKEN, &token)).await.unwrap();
    let invocations = 2000;
    let started = Instant::now();
    for _ in 0..invocations {
        api.call(event(REST_TOKEN, &token)).await.unwrap();
    }
    let warm = started.elapsed() / invocations;
    println!(
        "cold start to first answer over {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        cold[0].as_secs_f64() * 1e3,
        cold[runs / 2].as_secs_f64() * 1e3,
        cold[runs - 1].as_secs_f64() * 1e3
    );
    println!(
        "warm invocation round trip through the Runtime API (cached token): {:.1} µs",
        warm.as_secs_f64() * 1e6
    );
}
