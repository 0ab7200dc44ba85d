//! `jwtgate serve --watch-config` reloading under load: client tasks keep sending forward-auth
//! checks over keep-alive connections while the test rewrites the configuration (in place and by
//! replacing the file), sends SIGHUP, and writes a broken file once. Every answer must be one of
//! the two rule sets' answers, every change must be live within a second, and the JWKS server
//! must see only the initial fetch.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_test_support::process::{
    free_loopback_addr, holds_listener, start_with_ports, Running,
};
use serde_json::{json, Map};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const ISS: &str = "https://tenant.example/";
const AUD: &str = "https://api.example/";
/// Client tasks sending checks while the configuration changes.
const CLIENTS: usize = 3;
/// Checks per client at most (the load stops earlier, when the changes are done).
const MAX_CHECKS: usize = 5_000;

/// `jwtgate serve --watch-config` and the address it listens on.
struct Gateway {
    process: Running,
    addr: SocketAddr,
}

impl Gateway {
    fn log(&self) -> String {
        self.process.log()
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.process.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn config(addr: SocketAddr, jwks_url: &str, scope: &str) -> String {
    format!(
        "[server]\nlisten = \"{addr}\"\n\n[[issuers]]\nissuer = \"{ISS}\"\naudiences = [\"{AUD}\"]\njwks_url = \"{jwks_url}\"\n\n[[routes]]\nmethods = [\"GET\"]\npath = \"/api/report\"\nscopes = [\"{scope}\"]\n"
    )
}

/// Starts `jwtgate serve --config FILE --watch-config` on a free loopback port and waits for an
/// answer; a port taken between choosing and binding it is retried with another.
async fn start_gateway(dir: &Path, jwks_url: &str) -> Gateway {
    let path = dir.join("jwtgate.toml");
    let log = dir.join("jwtgate.log");
    let (process, addr) = start_with_ports(
        "jwtgate",
        dir,
        free_loopback_addr,
        |addr| {
            std::fs::write(&path, config(*addr, jwks_url, "read:reports")).unwrap();
            let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
            command
                .args(["serve", "--watch-config", "--config"])
                .arg(&path)
                .env("NO_COLOR", "1");
            command
        },
        // The "listening" line comes after the SIGHUP handler is installed.
        |addr, pid| {
            let listening = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("jwtgate: listening")
                && holds_listener(pid, addr.port());
            async move { listening }
        },
    )
    .await;
    Gateway { process, addr }
}

/// One keep-alive connection sending forward-auth checks.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            reader: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// The status of one check of `GET /api/report`, or the I/O problem.
    async fn check(&mut self, token: Option<&str>) -> Result<u16, String> {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /auth HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/report\r\n{auth}\r\n"
        );
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .await
            .map_err(|e| e.to_string())?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed mid-answer".into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| "bad length".to_owned())?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

async fn serve_jwks(State((body, fetches)): State<(String, Arc<AtomicUsize>)>) -> String {
    fetches.fetch_add(1, Ordering::SeqCst);
    body
}

/// How the test changes the configuration.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Rewrites the file in place (truncate and write).
    InPlace,
    /// Writes a new file and renames it over the old one (what many editors do).
    Replace,
    /// Rewrites the file in place and sends SIGHUP at once.
    Hangup,
}

fn write(path: &Path, text: &str, how: Change) {
    match how {
        Change::InPlace | Change::Hangup => std::fs::write(path, text).unwrap(),
        Change::Replace => {
            let temporary = path.with_extension("toml.new");
            std::fs::write(&temporary, text).unwrap();
            std::fs::rename(&temporary, path).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_answer_every_request_and_fetch_no_keys() {
    let started = Instant::now();
    let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks", jwks_listener.local_addr().unwrap());
    let body = json!({"keys": [key.public_jwk()]}).to_string();
    let app = Router::new()
        .route("/jwks", get(serve_jwks))
        .with_state((body, fetches.clone()));
    tokio::spawn(async move { axum::serve(jwks_listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(dir.path(), &jwks_url).await;
    let path = dir.path().join("jwtgate.toml");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    let now = jwtgate_http_now();
    let token = key
        .sign(
            &Map::new(),
            &json!({"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 600,
                    "permissions": ["read:reports"]}),
        )
        .unwrap();

    // The load: every answer is 200 or 403 with the token (allowed by one rule set, refused by
    // the other) and 401 without; anything else, or a connection error, is a failure.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (stop, token, addr) = (stop.clone(), token.clone(), gateway.addr);
        clients.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            let (mut sent, mut failures) = (0usize, Vec::new());
            while !stop.load(Ordering::SeqCst) && sent < MAX_CHECKS {
                let with_token = sent % 2 == 0;
                let answer = client.check(with_token.then_some(token.as_str())).await;
                match (with_token, &answer) {
                    (true, Ok(200 | 403)) | (false, Ok(401)) => {}
                    _ => failures.push(format!("token {with_token}: {answer:?}")),
                }
                sent += 1;
                if answer.is_err() {
                    client = Client::connect(addr).await;
                }
            }
            (sent, failures)
        }));
    }

    // The changes: the route's scope alternates between one the token has and one it lacks.
    let mut probe = Client::connect(gateway.addr).await;
    let changes = [
        Change::InPlace,
        Change::Replace,
        Change::Hangup,
        Change::InPlace,
        Change::Hangup,
        Change::Replace,
    ];
    let mut latencies = Vec::new();
    for (i, how) in changes.into_iter().enumerate() {
        let (scope, expected) = if i % 2 == 0 {
            ("admin", 403)
        } else {
            ("read:reports", 200)
        };
        let changed = Instant::now();
        write(&path, &config(gateway.addr, &jwks_url, scope), how);
        if let Change::Hangup = how {
            gateway.hangup();
        }
        loop {
            if probe.check(Some(&token)).await == Ok(expected) {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "change {i} ({how:?}) not live after 1 s:\n{}",
                gateway.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies.push((how, changed.elapsed()));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // A broken file is refused with check-config's message; the last rules keep answering.
    let broken = config(gateway.addr, &jwks_url, "admin").replace("\"/api/report\"", "\"api\"");
    write(&path, &broken, Change::InPlace);
    let check = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    let message = String::from_utf8_lossy(&check.stderr)
        .trim()
        .strip_prefix("jwtgate: error: ")
        .unwrap()
        .to_owned();
    assert!(message.contains("routes[0]"), "{message}");
    let refused = Instant::now();
    while !gateway.log().contains(&message) {
        assert!(
            refused.elapsed() < Duration::from_secs(1),
            "refusal not logged:\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(probe.check(Some(&token)).await, Ok(200));
    tokio::time::sleep(Duration::from_millis(150)).await;

    stop.store(true, Ordering::SeqCst);
    let (mut sent, mut failures) = (0, Vec::new());
    for client in clients {
        let (n, f) = client.await.unwrap();
        sent += n;
        failures.extend(f);
    }
    let log = gateway.log();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}\n{log}",
        failures.len()
    );
    assert!(sent >= CLIENTS * 100, "only {sent} checks sent");
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(&message)),
        "{log}"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "{log}");
    let hangups = changes
        .iter()
        .filter(|c| matches!(c, Change::Hangup))
        .count();
    assert_eq!(
        log.matches("SIGHUP: reloading the configuration").count(),
        hangups,
        "{log}"
    );

    let mut metrics = TcpStream::connect(gateway.addr).await.unwrap();
    metrics
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    metrics.read_to_string(&mut text).await.unwrap();
    assert!(
        text.contains(&format!(
            "jwtgate_config_reloads_total{{result=\"success\"}} {}\n",
            changes.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("jwtgate_config_reloads_total{result=\"failure\"} 1\n"),
        "{text}"
    );
    eprintln!(
        "{sent} checks by {CLIENTS} clients, 0 failures, 1 JWKS fetch; change latencies: {latencies:?}; test took {:?}",
        started.elapsed()
    );
}

fn jwtgate_http_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
