//! `jwtgate serve` in proxy mode, the real binary run from `docs/recipes/jwtgate-proxy.toml`, in
//! front of a small upstream that speaks plain HTTP and WebSocket (RFC 6455, written out here so
//! that the test needs nothing but std): an authorised request reaches the upstream with the
//! verified identity and without the token or any client-sent identity header; a WebSocket
//! upgrade with a valid token is passed through and messages flow both ways; without a token the
//! upgrade is refused with 401 and never reaches the upstream; without the scope, 403.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::Algorithm;
use jwtgate_test_support::process::{start_on_free_port, Running};
use jwtgate_test_support::recipes::{recipe, render};
use jwtgate_test_support::Issuer;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISS: &str = "https://example.eu.auth0.com/";
const AUD: &str = "https://api.example.com";
/// RFC 6455 §1.3's example key and the accept value it must produce.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// SHA-1 and base64, just enough for Sec-WebSocket-Accept

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64) * 8;
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(value);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn websocket_accept(key: &str) -> String {
    base64(&sha1(
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    ))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 heads and WebSocket frames over std sockets

/// Reads up to and including the blank line, byte by byte, so nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let first = lines.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((first, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn write_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let mut frame = vec![0x80 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => frame.push(mask_bit | n as u8),
        n => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => frame.extend_from_slice(payload),
    }
    stream.write_all(&frame).unwrap();
}

/// One frame: (opcode, unmasked payload, was it masked).
fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>, bool)> {
    let mut start = [0u8; 2];
    stream.read_exact(&mut start).ok()?;
    let opcode = start[0] & 0x0f;
    let masked = start[1] & 0x80 != 0;
    let len = match start[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).ok()?;
            usize::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).ok()?;
            usize::try_from(u64::from_be_bytes(n)).ok()?
        }
        n => usize::from(n),
    };
    let mut key = [0u8; 4];
    if masked {
        stream.read_exact(&mut key).ok()?;
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Some((opcode, payload, masked))
}

// ---------------------------------------------------------------------------------------------
// The upstream: echoes plain requests as JSON; upgrades WebSocket requests and echoes messages

/// A request the upstream got: its request line and headers (names lower-cased).
type Received = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

fn serve_connection(mut stream: TcpStream, seen: &Seen) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let Some((line, headers)) = read_head(&mut stream) else {
        return;
    };
    seen.0.lock().unwrap().push((line.clone(), headers.clone()));
    let upgrade = header(&headers, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        let body = json!({"request": line, "headers": headers}).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        return;
    }
    let key = header(&headers, "sec-websocket-key").unwrap_or_default();
    let subject = header(&headers, "x-auth-subject")
        .unwrap_or("nobody")
        .to_owned();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        websocket_accept(key)
    );
    // A greeting in the same write as the 101: bytes that arrive with the response head must
    // not be lost by the proxy.
    let mut first = response.into_bytes();
    let greeting = format!("welcome {subject}");
    first.extend_from_slice(&[0x81, u8::try_from(greeting.len()).unwrap()]);
    first.extend_from_slice(greeting.as_bytes());
    stream.write_all(&first).unwrap();
    while let Some((opcode, payload, masked)) = read_frame(&mut stream) {
        assert!(masked, "client frames reach the upstream masked, as sent");
        match opcode {
            0x1 => {
                let reply = format!("echo: {} as {subject}", String::from_utf8_lossy(&payload));
                write_frame(&mut stream, 0x1, reply.as_bytes(), None);
            }
            0x8 => {
                write_frame(&mut stream, 0x8, &payload, None);
                return;
            }
            _ => {}
        }
    }
}

fn start_upstream() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = shared.clone();
            std::thread::spawn(move || serve_connection(stream, &seen));
        }
    });
    (addr, seen)
}

// ---------------------------------------------------------------------------------------------
// jwtgate serve

/// `jwtgate serve` and the address it listens on.
struct Gateway {
    _process: Running,
    addr: SocketAddr,
}

/// Starts `jwtgate serve` from the recipe on a free loopback port, retried on another when the
/// port was taken in the meantime (test-support's `start_on_free_port`).
fn start_gateway(dir: &Path, upstream: SocketAddr, jwks: &Path) -> Gateway {
    let template = recipe("jwtgate-proxy.toml");
    let path = dir.join("jwtgate.toml");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (process, addr) = runtime.block_on(start_on_free_port("jwtgate", dir, |addr| {
        let config = render(
            &template,
            &[
                ("@LISTEN_ADDR@", addr.to_string()),
                ("@UPSTREAM_ADDR@", upstream.to_string()),
                ("@JWKS_FILE@", jwks.display().to_string()),
            ],
        );
        assert!(!config.contains('@'), "placeholder left:\n{config}");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
        command.arg("serve").arg("--config").arg(&path);
        command
    }));
    Gateway {
        _process: process,
        addr,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

fn upgrade_request(token: Option<&str>) -> String {
    let mut request = "GET /api/live HTTP/1.1\r\nHost: api.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n".to_owned();
    request.push_str(&format!(
        "Sec-WebSocket-Key: {WS_KEY}\r\nX-Auth-Subject: admin\r\n"
    ));
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request
}

// ---------------------------------------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    issuer: Issuer,
    gateway: Gateway,
    seen: Seen,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::new()
            .with_key(Algorithm::RS256, "proxy-key")
            .with_issuer(ISS)
            .with_audience(AUD);
        let (upstream, seen) = start_upstream();
        let gateway = start_gateway(dir.path(), upstream, issuer.jwks_file());
        Fixture {
            _dir: dir,
            issuer,
            gateway,
            seen,
        }
    }

    /// Alice's token with these permissions (and no `scope`).
    fn token(&self, permissions: &[&str]) -> String {
        self.issuer
            .token(json!({"scope": null, "permissions": permissions}))
    }

    fn upstream_requests(&self, path: &str) -> usize {
        let seen = self.seen.0.lock().unwrap();
        seen.iter().filter(|(line, _)| line.contains(path)).count()
    }
}

#[test]
fn websocket_upgrade_passes_through_after_authorisation() {
    let fixture = Fixture::new();
    let good = fixture.token(&["read:users"]);

    let mut stream = connect(fixture.gateway.addr);
    stream
        .write_all(upgrade_request(Some(&good)).as_bytes())
        .unwrap();
    let (status, headers) = read_head(&mut stream).expect("an answer to the upgrade");
    assert!(status.starts_with("HTTP/1.1 101"), "{status} {headers:?}");
    assert_eq!(header(&headers, "sec-websocket-accept"), Some(WS_ACCEPT));
    assert!(header(&headers, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")));

    let (opcode, payload, _) = read_frame(&mut stream).expect("the greeting");
    assert_eq!((opcode, payload), (0x1, b"welcome auth0|alice".to_vec()));

    // Messages flow both ways, several times, over the one upgraded connection.
    for (i, text) in ["hello", "second message", &"x".repeat(300)]
        .iter()
        .enumerate()
    {
        write_frame(&mut stream, 0x1, text.as_bytes(), Some([1, 2, 3, i as u8]));
        let (opcode, payload, masked) = read_frame(&mut stream).expect("an echoed message");
        assert_eq!(opcode, 0x1);
        assert!(!masked);
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            format!("echo: {text} as auth0|alice"),
            "the upstream saw the verified subject, not the client's"
        );
    }
    write_frame(&mut stream, 0x8, &1000u16.to_be_bytes(), Some([9, 9, 9, 9]));
    let (opcode, payload, _) = read_frame(&mut stream).expect("the close answer");
    assert_eq!((opcode, payload), (0x8, 1000u16.to_be_bytes().to_vec()));

    // What the upstream got on the upgrade request: identity headers, no token, no forged value.
    {
        let seen = fixture.seen.0.lock().unwrap();
        let (_, headers) = seen
            .iter()
            .find(|(line, _)| line.contains("/api/live"))
            .unwrap();
        let subjects: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == "x-auth-subject")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(subjects, ["auth0|alice"]);
        assert!(header(headers, "authorization").is_none(), "{headers:?}");
        assert_eq!(header(headers, "sec-websocket-key"), Some(WS_KEY));
    }

    // Without a token: 401 with the challenge; the upstream never sees the upgrade.
    let mut stream = connect(fixture.gateway.addr);
    stream.write_all(upgrade_request(None).as_bytes()).unwrap();
    let (status, headers) = read_head(&mut stream).expect("an answer");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some("Bearer realm=\"api\"")
    );

    // A valid token without the route's scope: 403.
    let weak = fixture.token(&[]);
    let mut stream = connect(fixture.gateway.addr);
    stream
        .write_all(upgrade_request(Some(&weak)).as_bytes())
        .unwrap();
    let (status, headers) = read_head(&mut stream).expect("an answer");
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));

    assert_eq!(fixture.upstream_requests("/api/live"), 1);
}

#[test]
fn plain_requests_carry_the_verified_identity_only() {
    let fixture = Fixture::new();
    let good = fixture.token(&["read:users"]);
    let request = format!(
        "GET /api/users?page=2 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {good}\r\nX-Auth-Subject: admin\r\nx-auth-scopes: everything\r\nConnection: close\r\n\r\n"
    );
    let mut stream = connect(fixture.gateway.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let echoed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(echoed["request"], "GET /api/users?page=2 HTTP/1.1");
    let headers: Vec<(String, String)> = serde_json::from_value(echoed["headers"].clone()).unwrap();
    let mut identity: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-auth-"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    identity.sort_unstable();
    assert_eq!(
        identity,
        [
            ("x-auth-issuer", ISS),
            ("x-auth-scopes", "read:users"),
            ("x-auth-subject", "auth0|alice"),
        ]
    );
    assert!(header(&headers, "authorization").is_none());

    // No token: 401, and the upstream is not asked.
    let mut stream = connect(fixture.gateway.addr);
    stream
        .write_all(b"GET /api/users HTTP/1.1\r\nHost: a\r\nX-Auth-Subject: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert_eq!(fixture.upstream_requests("/api/users"), 1);
}

#[test]
fn sha1_and_base64_match_rfc_6455() {
    assert_eq!(websocket_accept(WS_KEY), WS_ACCEPT);
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}
