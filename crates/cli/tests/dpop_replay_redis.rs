//! DPoP replay protection shared by `jwtgate serve` replicas through a real `redis-server`
//! (`[revocation] redis_url`), through forward-auth:
//!
//! * one proof sent to two replicas is accepted once and refused as a replay on the other (in
//!   both orders, across forward-auth and proxy mode, and when sent to both at the same moment);
//! * Redis killed: a `dpop_replay = "local"` replica keeps accepting fresh proofs, keeps refusing
//!   replays it saw itself, and counts `jwtgate_dpop_replay_fallback_total` — and, the documented
//!   risk, a proof it accepted can be replayed once against another replica; a
//!   `dpop_replay = "fail-closed"` replica refuses proofs with `401 invalid_dpop_proof` (bearer
//!   tokens keep passing);
//! * Redis back: proofs are shared again;
//! * `jwtgate check-config` refuses a bad `dpop_replay` or `dpop_replay_timeout_ms` (exit 2)
//!   naming the key, and prints the effective values;
//! * the Lambda authorizer (full build) shares proofs through the same Redis: two function
//!   instances, one proof, allowed once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_test_support::{free_port, now, DpopClient, Issuer, AUDIENCE, ISSUER};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod redis_support;

use redis_support::{start_redis, Running};

const HOST: &str = "api.example.com";
const PATH: &str = "/api/users";

/// A replica: `jwtgate serve` with its rules and DPoP replay store in the Redis at
/// `redis_port`, and `dpop_replay` as the fallback.
struct Replica {
    process: Running,
    addr: SocketAddr,
}

async fn start_replica(dir: &Path, jwks: &Path, redis_port: u16, dpop_replay: &str) -> Replica {
    start_replica_with(dir, jwks, redis_port, dpop_replay, "", "").await
}

/// A replica in proxy mode in front of `upstream`, its clients using `https://api.example.com`.
async fn start_proxy_replica(
    dir: &Path,
    jwks: &Path,
    redis_port: u16,
    upstream: SocketAddr,
) -> Replica {
    let server = format!("public_url = \"https://{HOST}\"\n");
    let proxy = format!("[proxy]\nupstream = \"http://{upstream}\"\n");
    start_replica_with(dir, jwks, redis_port, "local", &server, &proxy).await
}

async fn start_replica_with(
    dir: &Path,
    jwks: &Path,
    redis_port: u16,
    dpop_replay: &str,
    server: &str,
    sections: &str,
) -> Replica {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // The replay check's bound is raised from the 50 ms default: this machine is shared and a
    // stall of the test's own process must not turn into a fallback the test did not cause.
    let config = format!(
        r#"
[server]
listen = "{addr}"
{server}
[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{}"

[revocation]
redis_url = "redis://127.0.0.1:{redis_port}/"
dpop_replay = "{dpop_replay}"
dpop_replay_timeout_ms = 1000
max_stale = 5
resync_interval = 1

{sections}"#,
        jwks.display()
    );
    let path = dir.join(format!("replica-{}.toml", addr.port()));
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
    command.arg("serve").arg("--config").arg(&path);
    let log = dir.join(format!("replica-{}.log", addr.port()));
    let mut process = Running::spawn("jwtgate serve", command, log);
    process.expect_listening(addr).await;
    Replica { process, addr }
}

/// `client`'s fresh proof for `GET https://api.example.com/api/users`.
fn users_proof(client: &DpopClient, jti: &str) -> String {
    client.proof("GET", &format!("https://{HOST}{PATH}"), jti, None)
}

/// A forward-auth check of `GET https://api.example.com/api/users` with the token as `DPoP` and
/// `proof`: (status, WWW-Authenticate).
async fn check(
    http: &reqwest::Client,
    replica: &Replica,
    authorization: &str,
    proof: Option<&str>,
) -> (u16, String) {
    let mut request = http
        .get(format!("http://{}/auth", replica.addr))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", PATH)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", HOST)
        .header("Authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

/// The same request through a proxy-mode replica: (status, WWW-Authenticate or the body).
async fn through_proxy(
    http: &reqwest::Client,
    replica: &Replica,
    client: &DpopClient,
    proof: &str,
) -> (u16, String) {
    let response = http
        .get(format!("http://{}{PATH}", replica.addr))
        .header("Authorization", client.authorization())
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap_or_default();
    (status, challenge.unwrap_or(text))
}

/// The API behind the proxy-mode replica: 200 "api" for everything.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "api" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn send_proof(
    http: &reqwest::Client,
    replica: &Replica,
    client: &DpopClient,
    proof: &str,
) -> (u16, String) {
    check(http, replica, &client.authorization(), Some(proof)).await
}

fn assert_accepted((status, challenge): (u16, String), what: &str) {
    assert_eq!(status, 200, "{what}: {challenge}");
}

fn assert_refused((status, challenge): (u16, String), description: &str, what: &str) {
    assert_eq!(status, 401, "{what}: {challenge}");
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{what}: {challenge}"
    );
    assert!(challenge.contains(description), "{what}: {challenge}");
}

const REPLAYED: &str = "already used";
const UNAVAILABLE: &str = "cannot be checked for replay across replicas";

/// The value of the counter `name` in a replica's `/metrics`.
async fn counter(http: &reqwest::Client, replica: &Replica, name: &str) -> u64 {
    let text = http
        .get(format!("http://{}/metrics", replica.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Waits until every replica has synced its rules from Redis (`/readyz` 200).
async fn wait_ready(http: &reqwest::Client, replicas: &[&Replica]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for replica in replicas {
        loop {
            let ready = http
                .get(format!("http://{}/readyz", replica.addr))
                .send()
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready:\n{}",
                replica.addr,
                replica.process.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_is_accepted_once_across_replicas_and_redis_outages_follow_dpop_replay() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let redis_port = free_port();
    let redis = start_redis(dir.path(), redis_port).await;
    let one = start_replica(dir.path(), issuer.jwks_file(), redis_port, "local").await;
    let two = start_replica(dir.path(), issuer.jwks_file(), redis_port, "local").await;
    let closed = start_replica(dir.path(), issuer.jwks_file(), redis_port, "fail-closed").await;
    let upstream = start_upstream().await;
    let proxy = start_proxy_replica(dir.path(), issuer.jwks_file(), redis_port, upstream).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &[&one, &two, &closed, &proxy]).await;
    let client = DpopClient::new(&issuer);
    const FALLBACK: &str = "jwtgate_dpop_replay_fallback_total";

    // One proof, two replicas: accepted once, in either order.
    let proof = users_proof(&client, "shared-1");
    assert_accepted(
        send_proof(&http, &one, &client, &proof).await,
        "first use on one",
    );
    assert_refused(
        send_proof(&http, &two, &client, &proof).await,
        REPLAYED,
        "replay on two",
    );
    assert_refused(
        send_proof(&http, &one, &client, &proof).await,
        REPLAYED,
        "replay on one",
    );
    let proof = users_proof(&client, "shared-2");
    assert_accepted(
        send_proof(&http, &two, &client, &proof).await,
        "first use on two",
    );
    assert_refused(
        send_proof(&http, &one, &client, &proof).await,
        REPLAYED,
        "replay on one",
    );
    assert_refused(
        send_proof(&http, &closed, &client, &proof).await,
        REPLAYED,
        "replay on the third",
    );
    // Across front ends: forward-auth and proxy mode share the proofs too.
    let proof = users_proof(&client, "shared-3");
    let answer = through_proxy(&http, &proxy, &client, &proof).await;
    assert_eq!(
        answer,
        (200, "api".to_owned()),
        "first use through the proxy"
    );
    assert_refused(
        send_proof(&http, &one, &client, &proof).await,
        REPLAYED,
        "replay at forward-auth",
    );
    let proof = users_proof(&client, "shared-4");
    assert_accepted(
        send_proof(&http, &two, &client, &proof).await,
        "first use at forward-auth",
    );
    let (status, challenge) = through_proxy(&http, &proxy, &client, &proof).await;
    assert_eq!(status, 401, "replay through the proxy: {challenge}");
    assert!(challenge.contains(REPLAYED), "{challenge}");
    // Sent to both at once: exactly one replica accepts it.
    for round in 0..5 {
        let proof = users_proof(&client, &format!("race-{round}"));
        let (a, b) = tokio::join!(
            send_proof(&http, &one, &client, &proof),
            send_proof(&http, &two, &client, &proof)
        );
        let accepted = [&a, &b].iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(accepted, 1, "round {round}: {a:?} {b:?}");
    }
    for replica in [&one, &two, &closed] {
        assert_eq!(counter(&http, replica, FALLBACK).await, 0);
    }

    // Redis killed.
    drop(redis);
    // `local`: fresh proofs keep passing, counted as fallbacks; a replay to the same replica is
    // still refused by its own cache.
    let during_outage = users_proof(&client, "outage-1");
    assert_accepted(
        send_proof(&http, &one, &client, &during_outage).await,
        "a fresh proof while Redis is down",
    );
    for i in 2..5 {
        let fresh = users_proof(&client, &format!("outage-{i}"));
        assert_accepted(
            send_proof(&http, &one, &client, &fresh).await,
            "another fresh proof",
        );
    }
    assert_refused(
        send_proof(&http, &one, &client, &during_outage).await,
        REPLAYED,
        "a replay to the replica that saw it",
    );
    assert_eq!(counter(&http, &one, FALLBACK).await, 4);
    // The documented risk of `local`: while Redis is out, another replica has not seen it.
    assert_accepted(
        send_proof(&http, &two, &client, &during_outage).await,
        "the same proof on another replica during the outage (the risk of `local`)",
    );
    assert_eq!(counter(&http, &two, FALLBACK).await, 1);
    // `fail-closed`: proofs are refused, with a clear description; bearer tokens still pass.
    let refused = send_proof(&http, &closed, &client, &users_proof(&client, "closed-1")).await;
    assert!(
        !refused.1.contains("redis://"),
        "Redis's address is for the logs: {refused:?}"
    );
    assert_refused(refused, UNAVAILABLE, "fail-closed while Redis is down");
    let bearer = issuer.token(json!({}));
    assert_accepted(
        check(&http, &closed, &format!("Bearer {bearer}"), None).await,
        "a bearer token on the fail-closed replica",
    );
    assert_eq!(counter(&http, &closed, FALLBACK).await, 0);

    // Redis back (empty): proofs are shared again once the replicas reconnect.
    let _redis = start_redis(dir.path(), redis_port).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = 0;
    loop {
        round += 1;
        let proof = users_proof(&client, &format!("back-{round}"));
        let first = send_proof(&http, &closed, &client, &proof).await;
        let replay = send_proof(&http, &two, &client, &proof).await;
        if first.0 == 200 && replay.0 == 401 && replay.1.contains(REPLAYED) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "proofs not shared again 10 s after Redis came back: {first:?} {replay:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The HTTP API 2.0 event of `GET https://id.execute-api.us-east-1.amazonaws.com/test/users`
/// with this `Authorization` value and `DPoP` proof.
fn lambda_event(authorization: &str, proof: &str) -> serde_json::Value {
    let text = include_str!("../../lambda/tests/events/http-api-v2.json").replace("${TOKEN}", "x");
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let headers = event["headers"].as_object_mut().unwrap();
    headers.insert("authorization".into(), json!(authorization));
    headers.insert("dpop".into(), json!(proof));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_instances_share_proofs_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let redis_port = free_port();
    let _redis = start_redis(dir.path(), redis_port).await;
    let text = format!(
        "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = {:?}\n\n\
         [revocation]\nredis_url = \"redis://127.0.0.1:{redis_port}/\"\ndpop_replay_timeout_ms = 1000\n",
        issuer.jwks_file().display().to_string()
    );
    let instance = || {
        jwtgate_lambda::LambdaConfig::from_toml(&text, "lambda.toml")
            .unwrap()
            .build("lambda.toml")
            .unwrap()
    };
    let (one, two) = (instance(), instance());
    let client = DpopClient::new(&issuer);
    let allowed = |answer: &Result<serde_json::Value, jwtgate_lambda::AuthorizerError>| matches!(answer, Ok(value) if value["isAuthorized"] == json!(true));
    let authorization = client.authorization();
    let uri = "https://id.execute-api.us-east-1.amazonaws.com/test/users";
    for round in 0..3 {
        let proof = client.proof("GET", uri, &format!("lambda-{round}"), None);
        let (first, second) = if round % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let answer = first
            .authorize(lambda_event(&authorization, &proof), now())
            .await;
        assert!(allowed(&answer), "round {round}, first use: {answer:?}");
        let answer = second
            .authorize(lambda_event(&authorization, &proof), now())
            .await;
        assert!(
            matches!(answer, Err(jwtgate_lambda::AuthorizerError::Unauthorized)),
            "round {round}, the other instance: {answer:?}"
        );
    }
    for instance in [&one, &two] {
        assert_eq!(instance.engine().metrics().dpop_replay_fallbacks(), 0);
    }
}

#[test]
fn check_config_names_a_bad_dpop_replay_setting() {
    let dir = tempfile::tempdir().unwrap();
    let run = |revocation: &str| {
        let path = dir.path().join("gateway.toml");
        let text = format!(
            "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = \"/nonexistent\"\n\n\
             [revocation]\nredis_url = \"redis://127.0.0.1:1/\"\n{revocation}"
        );
        std::fs::write(&path, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = run("dpop_replay = \"closed\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "revocation.dpop_replay is \"closed\"; expected \"local\" or \"fail-closed\""
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run("dpop_replay_timeout_ms = 0\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("revocation.dpop_replay_timeout_ms"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run("");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("dpop_replay_timeout_ms = 50\n"),
        "the default is printed: {stdout}"
    );
    let (code, stdout, stderr) = run("dpop_replay = \"fail-closed\"\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("dpop_replay = \"fail-closed\"\n"),
        "{stdout}"
    );
}
