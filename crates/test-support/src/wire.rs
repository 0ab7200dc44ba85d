//! A raw HTTP/1.1 client, so a test sees exactly what goes over the wire: the request target
//! and headers are sent byte for byte as given (`..`, `%2e%2e`, `//`, forged spellings), and the
//! answer is read whole (by its length, its chunks or the connection's end).

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer: its status, its headers (names lower-cased, in order) and its body (dechunked).
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, dechunked, as text (lossy).
    pub body: String,
}

impl Reply {
    /// Every value of header `name` (any case), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `name` (fails when it is repeated).
    pub fn one(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(values.len() <= 1, "{name} repeated: {values:?}");
        values.first().copied()
    }

    /// The upstream's record of this request.
    pub fn echoed(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the upstream's echo ({e}): {}", self.body))
    }
}

/// The data of a chunked body (chunk extensions ignored, trailers dropped).
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(
            size_text
                .split(';')
                .next()
                .expect("a well-formed answer")
                .trim(),
            16,
        )
        .expect("a well-formed answer");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

/// Sends one request, written byte for byte as given (the target too: no normalisation, no
/// encoding), with `Host: api.example.com`, `Content-Length: 0` on a POST without one, and
/// `Connection: close` (added to the caller's `Connection` header when there is one, so that a
/// request never carries two). Reads the answer to its end (by its length, chunks or EOF).
pub async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: api.example.com\r\n");
    let mut closing = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            request.push_str(&format!("{name}: {value}, close\r\n"));
            closing = true;
        } else {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if method == "POST"
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        request.push_str("Content-Length: 0\r\n");
    }
    if !closing {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
        let mut raw = Vec::new();
        let mut buffer = [0u8; 16384];
        loop {
            // A reset after the answer (a server closing on unread input) ends it too.
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buffer[..n]);
            if is_complete(&raw, method) {
                break;
            }
        }
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer in 10 s to {method} {target}"));
    parse_reply(&raw, method, target)
}

/// Whether `raw` holds a whole answer: its head, and the body its length or chunks announce.
fn is_complete(raw: &[u8], method: &str) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if method == "HEAD" || status.starts_with('1') || status == "204" || status == "304" {
        return true;
    }
    let body = &raw[split + 4..];
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim() {
            "content-length" => {
                return value.trim().parse().is_ok_and(|n: usize| body.len() >= n);
            }
            "transfer-encoding" if value.contains("chunked") => {
                return body.ends_with(b"0\r\n\r\n");
            }
            _ => {}
        }
    }
    false
}

fn parse_reply(raw: &[u8], method: &str, target: &str) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no answer (or no header end) to {method} {target}: {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .expect("a well-formed answer")
        .split_whitespace()
        .nth(1)
        .expect("a well-formed answer")
        .parse()
        .expect("a well-formed answer");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
