//! Client connections against the gateway's listener, over real loopback sockets with short
//! configured timeouts: a trickled request head is cut after the header timeout, an idle
//! keep-alive connection after the idle timeout while a slow request in flight is not, a stalled
//! request body after the body timeout; at the connection limit the health paths are still
//! answered and everything else gets 503 (counted in /metrics) until the idle connections close;
//! HTTP/2 with prior knowledge advertises the configured stream limit and idles out too; and under a real `ulimit -n 256` (this test
//! binary re-run as the server) 300 idle connections neither shut clients out nor make accept
//! fail with "Too many open files".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::routing::{get, post};
use axum::Router;
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use jwtgate_test_support::Issuer;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::start_config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A gateway whose `/public/*` needs no token; `server` goes into `[server]`, `extra` after.
fn config(issuer: &Issuer, server: &str, extra: &str) -> GatewayConfig {
    let text = format!(
        r#"
        [server]
        {server}

        {issuers}

        [[routes]]
        path = "/public/*"
        public = true
        {extra}
        "#,
        issuers = issuer.issuer_toml(),
    );
    GatewayConfig::from_toml(&text, "test.toml").unwrap()
}

/// An upstream: `/public/slow` answers after 2.5 s, `/public/upload` counts the body it read.
async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route("/public/x", get(|| async { "x" }))
        .route(
            "/public/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                "slow done"
            }),
        )
        .route(
            "/public/upload",
            post(|body: axum::body::Bytes| async move { format!("got {}", body.len()) }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One response read from a keep-alive connection: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (with Content-Length) from `stream`, leaving the connection open.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response head");
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("content-length");
    while raw.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside a response body");
        raw.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned(),
    }
}

async fn exchange(stream: &mut TcpStream, request: &str) -> Answer {
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(stream).await
}

/// Waits (at most `limit`) for the server to close `stream`; returns how long that took and the
/// bytes received meanwhile. A reset counts as closed.
async fn wait_closed(stream: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut chunk)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return (start.elapsed(), received),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_head_is_cut_after_the_header_timeout_but_idle_waits_are_not() {
    let issuer = Issuer::new();
    let gateway = start_config(&config(
        &issuer,
        "header_read_timeout_ms = 1000\nidle_timeout_ms = 3000",
        "",
    ))
    .await;

    // One byte every 300 ms: the head is never complete, and the connection is closed once the
    // header timeout has run, without an answer (no 408).
    let stream = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in
            "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n".bytes()
        {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut received = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut chunk)).await {
            Err(_) => panic!("trickling connection still open after 5 s"),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
    let elapsed = start.elapsed();
    trickle.abort();
    assert!(
        received.is_empty(),
        "closed without an answer, got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2000),
        "closed after {elapsed:?}"
    );

    // A keep-alive connection may wait longer than the header timeout between requests…
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(
        exchange(&mut stream, &get_request("/healthz")).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        exchange(&mut stream, &get_request("/healthz")).await.status,
        200
    );
    // …and is closed once idle for the idle timeout, without an answer.
    let (elapsed, received) = wait_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(received.is_empty());
    assert!(
        elapsed >= Duration::from_millis(2800) && elapsed < Duration::from_millis(4500),
        "idle connection closed after {elapsed:?}"
    );

    // A connection that never sends a byte gets the header timeout, not the idle timeout.
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    let (elapsed, _) = wait_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2000),
        "silent connection closed after {elapsed:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_in_flight_outlives_the_idle_timeout() {
    let issuer = Issuer::new();
    let up = upstream().await;
    let gateway = start_config(&config(
        &issuer,
        "header_read_timeout_ms = 1000\nidle_timeout_ms = 1000",
        &format!("[proxy]\nupstream = \"http://{up}\"\nresponse_timeout_ms = 10000\n"),
    ))
    .await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let start = Instant::now();
    let answer = exchange(&mut stream, &get_request("/public/slow")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "slow done");
    assert!(start.elapsed() >= Duration::from_millis(2500));
    // Now idle: closed one idle timeout after the response.
    let (elapsed, received) = wait_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(received.is_empty());
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(2500),
        "closed after {elapsed:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_is_cut_after_the_body_timeout() {
    let issuer = Issuer::new();
    let up = upstream().await;
    let gateway = start_config(&config(
        &issuer,
        "body_read_timeout_ms = 1000\nidle_timeout_ms = 5000",
        &format!("[proxy]\nupstream = \"http://{up}\"\nresponse_timeout_ms = 10000\n"),
    ))
    .await;

    // A body arriving slowly but steadily (a byte every 600 ms, 3 s in all) is not cut: the
    // timeout counts from the last piece received.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"POST /public/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\n")
        .await
        .unwrap();
    for byte in b"hello" {
        tokio::time::sleep(Duration::from_millis(600)).await;
        stream.write_all(&[*byte]).await.unwrap();
    }
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "got 5");

    // A body that stops: the request fails one body timeout after the last byte.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(
            b"POST /public/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut stream))
        .await
        .expect("an answer to the stalled request");
    let elapsed = start.elapsed();
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "failed after {elapsed:?}"
    );
    // The unread rest of the body cannot be skipped: the connection closes.
    let (_, rest) = wait_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(rest.is_empty());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_health_is_answered_and_the_rest_gets_503() {
    let issuer = Issuer::new();
    let gateway = start_config(&config(
        &issuer,
        "max_connections = 20\nheader_read_timeout_ms = 4000\nidle_timeout_ms = 4000",
        "",
    ))
    .await;
    let check = "GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /public/x\r\nConnection: close\r\n\r\n";
    let mut first = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(exchange(&mut first, check).await.status, 200);

    // 40 connections that send nothing: 20 take the limit, 16 the overload reserve (closed after
    // a second of silence), the rest wait in the backlog.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let health = tokio::time::timeout(
        Duration::from_secs(3),
        exchange(&mut stream, &get_request("/healthz")),
    )
    .await
    .expect("health answered at the limit");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok\n");
    assert_eq!(health.header("connection"), Some("close"));
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let refused = exchange(&mut stream, check).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(
        exchange(&mut stream, &get_request("/readyz")).await.status,
        200
    );
    assert!(
        start.elapsed() < Duration::from_millis(3500),
        "answered while the idle connections still hold the limit"
    );

    // Once the idle connections are closed (header timeout), normal service returns, and the
    // metrics count the connections that met the limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        let answer = exchange(&mut stream, check).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 503);
        assert!(Instant::now() < deadline, "still refused after 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let metrics = exchange(&mut stream, &get_request("/metrics")).await;
    assert_eq!(metrics.status, 200);
    let counted: u64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("jwtgate_connections_over_limit_total "))
        .expect("the counter is exposed")
        .parse()
        .unwrap();
    // 20 idle connections beyond the limit at least, plus the three checks.
    assert!(counted >= 23, "{counted}\n{}", metrics.body);
    drop(idle);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_advertises_the_stream_limit() {
    let issuer = Issuer::new();
    let gateway = start_config(&config(
        &issuer,
        "http2_max_concurrent_streams = 7\nidle_timeout_ms = 1000",
        "",
    ))
    .await;
    let tcp = TcpStream::connect(gateway.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(format!("http://{}/healthz", gateway.addr))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(client.current_max_send_streams(), 7);
    // With no stream open, the connection is closed (GOAWAY) after the idle timeout.
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(4), driver)
        .await
        .expect("HTTP/2 connection closed when idle")
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "closed after {:?}",
        start.elapsed()
    );
    drop(client);
    gateway.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Under a real descriptor limit

/// Set in the environment of the re-run test binary that serves under `ulimit -n 256`.
const CHILD: &str = "JWTGATE_CONNECTIONS_TEST_SERVER";

/// Helper of `descriptor_limit_of_256_with_300_idle_connections`, which runs this test binary
/// again with only this (ignored) test, under `ulimit -n 256`: the gateway with its connection
/// limit derived from the descriptor limit, logging to stderr, serving until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by descriptor_limit_of_256_with_300_idle_connections"]
async fn descriptor_limit_server() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let issuer = Issuer::new();
    let config = config(
        &issuer,
        "header_read_timeout_ms = 2000\nidle_timeout_ms = 2000",
        "",
    );
    let built = config.build("test.toml").unwrap();
    server::prepare_keys(&built.engine).await;
    let app = server::router(
        jwtgate_http::SharedEngine::shared(built.engine.clone()),
        &built.options,
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    server::serve_gateway(
        listener,
        app,
        built.engine.metrics().clone(),
        &built.options,
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_limit_of_256_with_300_idle_connections() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args([
            "descriptor_limit_server",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let addr: SocketAddr = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("the server's address").unwrap();
            if let Some(addr) = line.strip_prefix("listening ") {
                return addr.parse().unwrap();
            }
        }
    })
    .await
    .unwrap();

    let outcome = async {
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let health = tokio::time::timeout(
            Duration::from_secs(5),
            exchange(&mut stream, &get_request("/healthz")),
        )
        .await
        .expect("health answered with 300 idle connections");
        assert_eq!(health.status, 200);
        let health_after = start.elapsed();
        let check = "GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /public/x\r\nConnection: close\r\n\r\n";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let answer = exchange(&mut stream, check).await;
            if answer.status == 200 {
                break;
            }
            assert_eq!(answer.status, 503);
            assert!(Instant::now() < deadline, "still refused after 10 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "health answered after {health_after:?}, normal service after {:?}",
            start.elapsed()
        );
        drop(idle);
    };
    let result = tokio::time::timeout(Duration::from_secs(30), outcome).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(result.is_ok(), "timed out; server log:\n{text}");
    assert!(
        text.contains("max_connections=176"),
        "limit derived from 256 descriptors:\n{text}"
    );
    assert!(
        !text.to_ascii_lowercase().contains("too many open files"),
        "{text}"
    );
    assert!(text.contains("connection limit reached"), "{text}");
}
