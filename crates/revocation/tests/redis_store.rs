//! The Redis store through the library, against a real `redis-server` started on a free
//! loopback port: rules added, listed, replaced and removed; an expired rule refused; keys
//! expiring with their rules; a follower picking up changes and surviving a flush; the DPoP
//! first-use check shared by every connection, and the gateway's bounded replay store
//! ([`SharedDpopReplay`]): first use once, keys expiring with the proof's window, a slow Redis
//! (writes paused) given up on at the bound, a Redis that stops answering reported at once and
//! left alone for a moment, then used again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_revocation::dpop_replay::{replay_key, RETRY_AFTER};
use jwtgate_revocation::redis_store::{RedisStore, StoreError};
use jwtgate_revocation::{
    DpopReplayFallback, Match, RevocationSection, Rule, SharedDpopReplay, TokenFacts,
};
use jwtgate_test_support::now;
use jwtgate_test_support::process::{redis_command, require_program, start_on_free_port, Running};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "test:revocation:";

/// A redis-server of this test's own (killed when dropped), its log in `dir`.
struct Redis {
    server: Running,
    url: String,
    port: u16,
    dir: tempfile::TempDir,
}

/// A redis-server on a free loopback port, ready once it holds that port itself: a port another
/// test's server took in the meantime is not mistaken for this one (the server is started again
/// on another port).
async fn start_redis() -> Redis {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start_on_free_port("redis-server", dir.path(), |addr| {
        redis_command(addr.port(), dir.path())
    })
    .await;
    Redis {
        server,
        url: format!("redis://{addr}/"),
        port: addr.port(),
        dir,
    }
}

fn facts(jti: &str) -> TokenFacts<'_> {
    TokenFacts {
        iss: "https://i/",
        sub: Some("alice"),
        jti: Some(jti),
        iat: Some(1.0),
        ..TokenFacts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_through_the_library_and_a_follower() {
    let redis = start_redis().await;
    let mut store = RedisStore::connect(&redis.url, PREFIX).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());

    let jti = Rule::jti("j1", now() + 2).unwrap();
    let subject = Rule::subject("https://i/", "alice", now(), now() + 3600).unwrap();
    store.add(&jti, now()).await.unwrap();
    store.add(&subject, now()).await.unwrap();
    // The same key again replaces the rule.
    let later = Rule::subject("https://i/", "alice", now() + 5, now() + 3600).unwrap();
    store.add(&later, now()).await.unwrap();
    assert_eq!(
        store.list().await.unwrap(),
        vec![jti.clone(), later.clone()]
    );
    let expired = Rule::jti("old", now() - 1).unwrap();
    assert!(matches!(
        store.add(&expired, now()).await,
        Err(StoreError::AlreadyExpired(_))
    ));

    // A follower loads them and follows changes.
    let section = RevocationSection {
        redis_url: Some(redis.url.clone()),
        key_prefix: PREFIX.into(),
        resync_interval: 1,
        ..RevocationSection::default()
    };
    let revocations = section.build().unwrap();
    jwtgate_revocation::follow::start(&revocations);
    let deadline = Instant::now() + Duration::from_secs(5);
    while revocations.readiness().is_err() {
        assert!(Instant::now() < deadline, "{:?}", revocations.readiness());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        revocations.check_facts(&facts("j1"), now()),
        Some(Match::Jti)
    );
    store
        .add(&Rule::jti("j2", now() + 600).unwrap(), now())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while revocations.check_facts(&facts("j2"), now()).is_none() {
        assert!(Instant::now() < deadline, "the change did not arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(store.remove(later.key()).await.unwrap());
    assert!(!store.remove(later.key()).await.unwrap());

    // Redis forgets the jti rule at its exp (EXAT).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let keys: Vec<String> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.key().id())
        .collect();
    assert_eq!(keys, [r#"{"by":"jti","jti":"j2"}"#]);

    // FLUSHALL (a Redis that lost its data): the follower keeps what it holds.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(revocations.readiness().is_ok());
    assert_eq!(
        revocations.check_facts(&facts("j2"), now()),
        Some(Match::Jti)
    );
    let _ = redis.port;
}

#[tokio::test]
async fn dpop_proofs_are_first_used_once_across_connections() {
    let redis = start_redis().await;
    let mut one = RedisStore::connect(&redis.url, PREFIX).await.unwrap();
    let mut two = RedisStore::connect(&redis.url, PREFIX).await.unwrap();
    let until = now() + 120;
    assert!(one.dpop_first_use("jkt-a", "proof-1", until).await.unwrap());
    assert!(!two.dpop_first_use("jkt-a", "proof-1", until).await.unwrap());
    assert!(!one.dpop_first_use("jkt-a", "proof-1", until).await.unwrap());
    assert!(two.dpop_first_use("jkt-b", "proof-1", until).await.unwrap());
    assert!(two.dpop_first_use("jkt-a", "proof-2", until).await.unwrap());
}

#[tokio::test]
async fn the_shared_replay_store_is_bounded_and_comes_back() {
    let redis = start_redis().await;
    let replica = |timeout| {
        SharedDpopReplay::new(&redis.url, PREFIX, timeout, DpopReplayFallback::Local).unwrap()
    };
    let one = replica(Duration::from_millis(1000));
    let two = replica(Duration::from_millis(1000));
    let until = now() + 120;
    assert_eq!(one.first_use("jkt-a", "p1", until).await, Ok(true));
    assert_eq!(two.first_use("jkt-a", "p1", until).await, Ok(false));
    assert_eq!(two.first_use("jkt-b", "p1", until).await, Ok(true));
    // The key is the digest the store writes too, and expires one second after the window.
    let mut store = RedisStore::connect(&redis.url, PREFIX).await.unwrap();
    assert!(!store.dpop_first_use("jkt-a", "p1", until).await.unwrap());
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let expires: i64 = redis::cmd("EXPIRETIME")
        .arg(replay_key(PREFIX, "jkt-a", "p1"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(expires, until + 1);

    // Redis slow (writes paused): the answer is an error once the bound has passed, not when
    // Redis answers.
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "2000", "WRITE"])
        .query_async(&mut connection)
        .await
        .unwrap();
    let hasty = replica(Duration::from_millis(50));
    let started = Instant::now();
    let error = hasty.first_use("jkt-a", "slow", until).await.unwrap_err();
    assert!(error.why.contains("did not answer within 50 ms"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(1000), "bounded");
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut connection)
        .await
        .unwrap();

    // Redis gone: the answer is an error at once, then Redis is not asked for a moment.
    let port = redis.port;
    let dir = redis.dir;
    drop(redis.server);
    let started = Instant::now();
    let error = one.first_use("jkt-a", "p2", until).await.unwrap_err();
    assert!(started.elapsed() <= Duration::from_millis(1500), "bounded");
    assert!(error.url.contains(&port.to_string()), "{error}");
    let error = one.first_use("jkt-a", "p3", until).await.unwrap_err();
    assert!(error.why.contains("not asked"), "{error}");
    // A store that never connected answers within its bound too.
    let fresh = SharedDpopReplay::new(
        &format!("redis://127.0.0.1:{port}/"),
        PREFIX,
        Duration::from_millis(50),
        DpopReplayFallback::FailClosed,
    )
    .unwrap();
    let started = Instant::now();
    assert!(fresh.first_use("jkt-a", "p4", until).await.is_err());
    assert!(started.elapsed() < Duration::from_millis(1000));

    // Redis back on the same port: used again once the pause is over.
    let _back = Running::spawn(
        "redis-server",
        redis_command(port, dir.path()),
        dir.path().join("redis-back.log"),
    );
    tokio::time::sleep(RETRY_AFTER).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match one.first_use("jkt-a", "p5", until).await {
            Ok(first) => {
                assert!(first);
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "still unavailable: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(two.first_use("jkt-a", "p5", until).await, Ok(false));
}

/// Runs `openssl` with `args` in `dir`, failing with an install hint when it is missing.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl is needed ({e}): apt-get install -y openssl"));
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test]
async fn tls_with_a_private_ca_and_an_acl_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    openssl(
        path,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=jwtgate test CA",
        ],
    );
    openssl(
        path,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        path.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        path,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
    // Killed on drop, also when an assertion fails; started again on another port when the
    // one chosen was taken in the meantime.
    let (_server, addr) = start_on_free_port("redis-server", path, |addr| {
        let mut command = Command::new(require_program("redis-server"));
        command
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &addr.port().to_string()])
            .args(["--tls-cert-file", "leaf.pem", "--tls-key-file", "leaf.key"])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--user", "gate", "on", ">gate-secret", "~test:revocation:*"])
            .args(["&test:revocation:*", "+@all"])
            .current_dir(path);
        command
    })
    .await;
    let port = addr.port();
    // The private CA is trusted through SSL_CERT_FILE (read when a TLS connection is made).
    std::env::set_var("SSL_CERT_FILE", path.join("ca.pem"));
    let url = format!("rediss://gate:gate-secret@127.0.0.1:{port}/");
    let mut store = RedisStore::connect(&url, PREFIX).await.unwrap();
    let rule = Rule::jti("over-tls", now() + 600).unwrap();
    store.add(&rule, now()).await.unwrap();
    assert_eq!(store.list().await.unwrap(), vec![rule]);
    // A wrong password, and a prefix outside the user's keys, are refused; errors hide the
    // password.
    let wrong = format!("rediss://gate:nope@127.0.0.1:{port}/");
    let error = RedisStore::connect(&wrong, PREFIX)
        .await
        .unwrap_err()
        .to_string();
    assert!(!error.contains("nope"), "{error}");
    let mut outside = RedisStore::connect(&url, "other:").await.unwrap();
    assert!(outside
        .add(&Rule::jti("x", now() + 600).unwrap(), now())
        .await
        .is_err());
    std::env::remove_var("SSL_CERT_FILE");
}
