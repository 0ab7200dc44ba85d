//! The gRPC transport under attack, over a real socket with the `h2` crate's client (or raw
//! bytes): malformed and oversized messages, compressed messages, trailing bytes, unknown
//! methods, slow bodies, silent and garbage connections, huge headers, the connection limit
//! and shutdown. An unreadable `Check` is denied in-band (a `CheckResponse`, which no
//! `failure_mode_allow` can turn into an allow); anything else is refused with a gRPC error or
//! a closed connection, and the server keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use http::HeaderMap;
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use jwtgate_test_support::Issuer;
use prost::Message;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    engine: std::sync::Arc<jwtgate_http::SharedEngine>,
    _issuer: Issuer,
}

/// jwtgate's gRPC listener with `server` settings added to `[server]`.
async fn start(server_settings: &str) -> Running {
    start_with(server_settings, |_| {}).await
}

/// As [`start`], with the built options changed by `adjust` (values no configuration file
/// can hold, for an embedding program).
async fn start_with(
    server_settings: &str,
    adjust: impl FnOnce(&mut server::ServerOptions),
) -> Running {
    let issuer = Issuer::new();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\n{server_settings}\n\
         [[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n\
         [[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n",
        issuer.issuer(),
        issuer.audience(),
        issuer.jwks_file().display()
    );
    let mut built = GatewayConfig::from_toml(&toml, "test")
        .unwrap()
        .build("test")
        .unwrap();
    adjust(&mut built.options);
    let serving = support::serve(&built).await;
    Running {
        addr: serving.addr,
        stop: serving.stop,
        task: serving.task,
        engine: serving.engine,
        _issuer: issuer,
    }
}

async fn connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    connect_driven(addr).await.0
}

/// A client and the task driving its connection, which ends when the connection does.
async fn connect_driven(
    addr: SocketAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driven = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, driven)
}

/// Asserts the server closes the connection `driven` drives (GOAWAY, then the close) soon.
async fn assert_closed(driven: tokio::task::JoinHandle<()>, what: &str) {
    assert_closed_within(driven, Duration::from_secs(5), what).await;
}

/// Asserts the server closes the connection `driven` drives within `limit`.
async fn assert_closed_within(driven: tokio::task::JoinHandle<()>, limit: Duration, what: &str) {
    let ended = tokio::time::timeout(limit, driven).await;
    assert!(ended.is_ok(), "{what}: the connection stayed open");
}

/// A framed gRPC message: `flag`, the length of `message`, `message`.
fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut body = vec![flag];
    body.extend((message.len() as u32).to_be_bytes());
    body.extend(message);
    body
}

fn check_message(headers: &[(&str, &str)]) -> Vec<u8> {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/api/users".into(),
                    headers: headers
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
    .encode_to_vec()
}

/// What came back for one call.
#[derive(Debug)]
struct Answer {
    headers: HeaderMap,
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl Answer {
    /// `grpc-status`, from the trailers or a trailers-only answer's headers.
    fn status(&self) -> Option<u8> {
        let headers = self.trailers.as_ref().unwrap_or(&self.headers);
        headers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }

    /// The one message of an answer.
    fn message(&self) -> &[u8] {
        assert_eq!(self.data[0], 0);
        let length = u32::from_be_bytes(self.data[1..5].try_into().unwrap()) as usize;
        assert_eq!(self.data.len(), 5 + length, "one message");
        &self.data[5..]
    }
}

/// Sends a call with `method`, `path`, extra `headers`, and its body in `chunks` (each one
/// DATA frame, the last ending the stream); an error when the stream fails.
async fn call_with(
    client: &mut h2::client::SendRequest<Bytes>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    chunks: Vec<Vec<u8>>,
) -> Result<Answer, h2::Error> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://jwtgate{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut ready = client.clone().ready().await?;
    let (response, mut body) = ready.send_request(request.body(()).unwrap(), chunks.is_empty())?;
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        // The server may answer (and end the stream) before the body is all sent.
        if body.send_data(Bytes::from(chunk), i + 1 == count).is_err() {
            break;
        }
    }
    let response = response.await?;
    let (parts, mut received) = response.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk?;
        let _ = received.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = received.trailers().await?;
    Ok(Answer {
        headers: parts.headers,
        data,
        trailers,
    })
}

async fn call(
    client: &mut h2::client::SendRequest<Bytes>,
    path: &str,
    chunks: Vec<Vec<u8>>,
) -> Answer {
    call_with(client, "POST", path, &[], chunks).await.unwrap()
}

/// A malformed call: what it is, its path, extra headers, body frames, the status expected.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<Vec<u8>>, u8);

const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// A check without a token: answered in-band with UNAUTHENTICATED.
async fn assert_check_answers(client: &mut h2::client::SendRequest<Bytes>) {
    let answer = call(client, CHECK, vec![framed(0, &check_message(&[]))]).await;
    assert_eq!(answer.status(), Some(0), "{answer:?}");
    let response = CheckResponse::decode(answer.message()).unwrap();
    assert_eq!(response.status.unwrap().code, 16);
}

#[tokio::test]
async fn a_message_split_across_frames_is_read_whole() {
    let running = start("").await;
    let mut client = connect(running.addr).await;
    let body = framed(0, &check_message(&[("x-a", "1")]));
    // One byte per DATA frame, the prefix split too.
    let chunks: Vec<Vec<u8>> = body.iter().map(|b| vec![*b]).collect();
    let answer = call(&mut client, CHECK, chunks).await;
    assert_eq!(answer.status(), Some(0), "{answer:?}");
    assert_eq!(
        answer.headers["content-type"], "application/grpc",
        "{answer:?}"
    );
    let response = CheckResponse::decode(answer.message()).unwrap();
    assert_eq!(response.status.unwrap().code, 16);
}

/// The denial (an HTTP status) in a check's answer, which must be a `CheckResponse`.
fn denied_status(answer: &Answer) -> i32 {
    assert_eq!(answer.status(), Some(0), "{answer:?}");
    let response = CheckResponse::decode(answer.message()).unwrap();
    let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
        panic!("{response:?}");
    };
    denied.status.unwrap().code
}

/// A check message whose `path` holds the byte 0xFF (not UTF-8).
fn non_utf8_path_check() -> Vec<u8> {
    let mut message = check_message(&[]);
    let at = message
        .windows(10)
        .position(|w| w == b"/api/users")
        .unwrap();
    message[at + 5] = 0xff;
    message
}

#[tokio::test]
async fn unreadable_checks_are_denied_in_band_never_grpc_errors() {
    let running = start("").await;
    let check = check_message(&[]);
    let mut trailing = framed(0, &check);
    trailing.push(0);
    let mut two = framed(0, &check);
    two.extend(framed(0, &check));
    type Unreadable<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<Vec<u8>>);
    let cases: Vec<Unreadable> = vec![
        (
            "non-UTF-8 path",
            vec![],
            vec![framed(0, &non_utf8_path_check())],
        ),
        ("compressed", vec![], vec![framed(1, &check)]),
        ("bad flag", vec![], vec![framed(2, &check)]),
        ("trailing byte", vec![], vec![trailing]),
        ("two messages", vec![], vec![two]),
        ("no body", vec![], vec![]),
        ("truncated", vec![], vec![framed(0, &check)[..9].to_vec()]),
        ("not protobuf", vec![], vec![framed(0, &[0xff; 9])]),
        (
            "gzip",
            vec![("grpc-encoding", "gzip")],
            vec![framed(0, &check)],
        ),
    ];
    for (what, headers, chunks) in cases {
        // A connection each: an unreadable call ends its connection.
        let (mut client, driven) = connect_driven(running.addr).await;
        let answer = call_with(&mut client, "POST", CHECK, &headers, chunks)
            .await
            .unwrap();
        assert_eq!(denied_status(&answer), 400, "{what}");
        // The client still holds its connection: the server ends it.
        assert_closed(driven, what).await;
        drop(client);
    }
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
}

#[tokio::test]
async fn calls_that_are_not_checks_are_grpc_errors_and_the_connection_keeps_serving() {
    let running = start("").await;
    let mut client = connect(running.addr).await;
    let check = check_message(&[]);
    let cases: Vec<Case> = vec![
        (
            "unknown method",
            "/envoy.service.auth.v3.Authorization/Other",
            vec![],
            vec![framed(0, &check)],
            12,
        ),
        (
            "reflection",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            vec![],
            vec![framed(0, b"")],
            12,
        ),
        (
            "health of another service",
            HEALTH,
            vec![],
            vec![framed(
                0,
                &HealthCheckRequest {
                    service: "other".into(),
                }
                .encode_to_vec(),
            )],
            5,
        ),
    ];
    for (what, path, headers, chunks, expected) in cases {
        let answer = call_with(&mut client, "POST", path, &headers, chunks)
            .await
            .unwrap();
        assert_eq!(answer.status(), Some(expected), "{what}: {answer:?}");
        assert!(answer.data.is_empty(), "{what}: no message: {answer:?}");
        assert!(
            answer.headers.contains_key("grpc-message"),
            "{what}: a reason: {answer:?}"
        );
    }
    let get = call_with(&mut client, "GET", CHECK, &[], vec![])
        .await
        .unwrap();
    assert_eq!(get.status(), Some(12), "{get:?}");
    // The same connection still decides.
    assert_check_answers(&mut client).await;
}

#[tokio::test]
async fn a_check_over_the_message_limit_is_denied_in_band_from_its_prefix() {
    let running = start("").await;
    let mut client = connect(running.addr).await;
    // 4 MiB + 1 announced: refused from the prefix, the rest never sent; a denial (413) that
    // `failure_mode_allow: true` cannot turn into an allow, not a gRPC error.
    let answer = call(&mut client, CHECK, vec![vec![0, 0, 0x40, 0, 1]]).await;
    assert_eq!(answer.status(), Some(0), "{answer:?}");
    assert_eq!(denied_status(&answer), 413);
    // Counted as what it is, not as an MCP body.
    let decisions = running.engine.load().metrics().decisions();
    assert!(
        decisions
            .keys()
            .any(|&(_, status, reason)| status == 413 && reason == "request_too_large"),
        "{decisions:?}"
    );
    assert!(!decisions
        .keys()
        .any(|&(_, _, reason)| reason.starts_with("mcp")));
    // Health's own limit is small, and a gRPC error. (Each refusal closes its connection.)
    let mut client = connect(running.addr).await;
    let health = call(&mut client, HEALTH, vec![framed(0, &[0; 2048])]).await;
    assert_eq!(health.status(), Some(8), "{health:?}");
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
}

#[tokio::test]
async fn health_is_served_by_the_hand_driven_transport() {
    let running = start("").await;
    let mut client = connect(running.addr).await;
    for service in ["", jwtgate_grpc::AUTHORIZATION_SERVICE] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let answer = call(
            &mut client,
            HEALTH,
            vec![framed(0, &request.encode_to_vec())],
        )
        .await;
        assert_eq!(answer.status(), Some(0), "{answer:?}");
        let health = HealthCheckResponse::decode(answer.message()).unwrap();
        assert_eq!(health.status, 1, "SERVING");
    }
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_refused() {
    let running = start("body_read_timeout_ms = 300").await;
    let (client, driven) = connect_driven(running.addr).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://jwtgate{CHECK}"))
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut body) = ready.send_request(request, false).unwrap();
    // The prefix only; the stream stays open.
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 9]), false)
        .unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(response.headers()["grpc-status"], "4");
    drop(body);
    // A trickling client does not keep its connection; a new one is served.
    assert_closed(driven, "after DEADLINE_EXCEEDED").await;
    drop(client);
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
}

/// Reads until the server closes the connection (or `limit` passes: a failure).
async fn closed_within(mut tcp: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

#[tokio::test]
async fn silent_slow_and_garbage_connections_are_closed() {
    let running = start("header_read_timeout_ms = 300").await;
    // Silent: no preface within the header read timeout.
    let silent = TcpStream::connect(running.addr).await.unwrap();
    let took = closed_within(silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
    // Slowloris: the preface a byte at a time, never a call.
    let mut slow = TcpStream::connect(running.addr).await.unwrap();
    let (mut reader, mut writer) = slow.split();
    let trickle = async {
        for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::future::pending::<()>().await;
    };
    let read_until_closed = async {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let started = Instant::now();
    tokio::select! {
        () = trickle => {}
        () = read_until_closed => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => panic!("slowloris kept open"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Garbage instead of the HTTP/2 preface.
    let mut garbage = TcpStream::connect(running.addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_within(garbage, Duration::from_secs(5)).await;
    // Still serving.
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
}

#[tokio::test]
async fn a_header_list_over_the_limit_is_refused_and_the_server_keeps_serving() {
    let running = start("http2_max_header_list_size = 16384").await;
    let mut client = connect(running.addr).await;
    let huge = "a".repeat(40_000);
    let answer = call_with(
        &mut client,
        "POST",
        CHECK,
        &[("x-huge", &huge)],
        vec![framed(0, &check_message(&[]))],
    )
    .await;
    // h2 refuses the stream (or the client refuses to send it): never a decision.
    if let Ok(answer) = &answer {
        assert_ne!(answer.status(), Some(0), "{answer:?}");
    }
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
}

#[tokio::test]
async fn over_the_connection_limit_checks_are_unavailable_and_health_answers() {
    let running = start("max_connections = 1").await;
    let mut first = connect(running.addr).await;
    assert_check_answers(&mut first).await;
    let (mut second, second_driven) = connect_driven(running.addr).await;
    let refused = call(&mut second, CHECK, vec![framed(0, &check_message(&[]))]).await;
    assert_eq!(refused.status(), Some(14), "{refused:?}");
    // The overloaded connection closes after its first call, so its client reconnects under
    // the limit rather than being refused for the connection's whole life.
    // Well before the overload reserve's one-second idle timeout would close it anyway.
    assert_closed_within(
        second_driven,
        Duration::from_millis(700),
        "the overloaded connection",
    )
    .await;
    drop(second);
    let (mut third, third_driven) = connect_driven(running.addr).await;
    let health = call(
        &mut third,
        HEALTH,
        vec![framed(0, &HealthCheckRequest::default().encode_to_vec())],
    )
    .await;
    assert_eq!(health.status(), Some(0), "{health:?}");
    assert_closed(third_driven, "the overloaded health connection").await;
    drop(third);
    assert_eq!(running.engine.load().metrics().connections_over_limit(), 2);
    // The first connection is served as before; once it is gone, a new one is under the limit.
    assert_check_answers(&mut first).await;
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = connect(running.addr).await;
        let answer = call(&mut client, CHECK, vec![framed(0, &check_message(&[]))]).await;
        if answer.status() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never back under the limit: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn shutdown_finishes_and_stops_accepting() {
    let mut running = start("").await;
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
    drop(running.stop.take());
    // The open connection gets GOAWAY and closes; the server task ends.
    tokio::time::timeout(Duration::from_secs(5), &mut running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(running.addr).await.is_err());
}

#[tokio::test]
async fn an_idle_connection_gets_goaway_and_closes() {
    let running = start("idle_timeout_ms = 300").await;
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driven = tokio::spawn(connection);
    assert_check_answers(&mut client).await;
    let started = Instant::now();
    // The server says goodbye after the idle timeout, and the connection ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), driven).await;
    assert!(ended.is_ok(), "the idle connection stayed open");
    assert!(started.elapsed() >= Duration::from_millis(250));
    drop(client);
}

#[tokio::test]
async fn huge_configured_timeouts_do_not_panic_the_listener() {
    // Duration::MAX, which a program embedding the listener may pass: `Instant + MAX` overflows.
    let mut running = start_with("", |options| {
        options.connections.header_read_timeout = Duration::MAX;
        options.connections.body_read_timeout = Duration::MAX;
        options.connections.idle_timeout = Duration::MAX;
    })
    .await;
    let mut client = connect(running.addr).await;
    assert_check_answers(&mut client).await;
    // Shutdown's grace is the body timeout: it must not overflow either.
    drop(running.stop.take());
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), &mut running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A JWKS endpoint that answers its first fetch with `jwks`, then accepts connections and never
/// answers: a later fetch (an unknown `kid`) waits on it.
async fn jwks_then_silence(jwks: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = first.read(&mut request).await;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
            jwks.len()
        );
        first.write_all(answer.as_bytes()).await.unwrap();
        drop(first);
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    (addr, held)
}

#[tokio::test]
async fn a_reset_stream_drops_its_call_at_once() {
    let issuer = Issuer::new();
    let (jwks, _held) = jwks_then_silence(issuer.jwks().to_string()).await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = 300\n\
         [keys]\nconnect_timeout = 30\ntotal_timeout = 30\ncooldown = 0\n\
         [[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_url = \"http://{jwks}/jwks\"\n\
         [[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n",
        issuer.issuer(),
        issuer.audience(),
    );
    let built = GatewayConfig::from_toml(&toml, "test")
        .unwrap()
        .build("test")
        .unwrap();
    let serving = support::serve(&built).await;
    let ready_by = Instant::now() + Duration::from_secs(5);
    while !server::not_ready_reasons(&serving.engine.load()).is_empty() {
        assert!(Instant::now() < ready_by, "the keys never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (client, driven) = connect_driven(serving.addr).await;
    // A key the endpoint has not published yet: the check fetches the keys again, and waits.
    let rotated = Issuer::new().with_key(jwtgate_core::Algorithm::ES256, "k2");
    let token = rotated.token(serde_json::json!({ "scope": "read:users" }));
    let authorization = format!("Bearer {token}");
    let message = check_message(&[("authorization", &authorization)]);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://jwtgate{CHECK}"))
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut body) = ready.send_request(request, false).unwrap();
    body.send_data(Bytes::from(framed(0, &message)), true)
        .unwrap();
    // The check now waits on the silent key endpoint; the client gives up and resets.
    let waited = tokio::time::timeout(Duration::from_millis(500), response).await;
    assert!(waited.is_err(), "the check answered: {waited:?}");
    body.send_reset(h2::Reason::CANCEL);
    let started = Instant::now();
    // With its one call dropped, the connection is idle and closes after `idle_timeout_ms`,
    // long before the key fetch's 30 seconds.
    assert_closed(driven, "after its only call was reset").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(client);
}
