//! The harness shared by the HTTP gateway's tests: the `docs/recipes/` files and their
//! placeholders, an issuer minting tokens, the in-process gateway (from a recipe, or from a
//! [`GatewayConfig`] with or without TLS), child processes on free loopback ports (nginx, Caddy
//! and others), and a raw HTTP/1.1 client that sends exactly the bytes it is given.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The issuer and audience written in the recipes.
pub const ISS: &str = "https://example.eu.auth0.com/";
pub const AUD: &str = "https://api.example.com";
/// The realm the recipes set.
pub const CHALLENGE: &str = "Bearer realm=\"api\"";

pub const INSTALL_HINT: &str =
    "`.ci/run` installs it (its \"system packages\" stage); on a developer \
     machine: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
     --no-install-recommends nginx caddy wrk default-jdk-headless libjetty9-java";

// ---------------------------------------------------------------------------------------------
// Recipes and placeholders

pub fn repo_root() -> PathBuf {
    // Canonical, so that a workspace reached through symlinks still finds the repository's docs/.
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .expect("repository root")
}

pub fn recipe(name: &str) -> String {
    let path = repo_root().join("docs/recipes").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces every `@NAME@` placeholder; fails if one is left (a recipe and this test disagree).
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        assert!(text.contains(name), "the recipe has no {name} placeholder");
        text = text.replace(name, value);
    }
    let leftover: Vec<&str> = text
        .split('@')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .collect();
    assert!(
        leftover.is_empty(),
        "placeholders not substituted: {leftover:?}"
    );
    text
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens

pub use jwtgate_test_support::{free_port, Issuer};

/// The shared issuer fixture under the issuer and audience the recipes name: its tokens carry
/// `sub` auth0|alice and `permissions` read:users.
pub fn recipe_issuer() -> Issuer {
    Issuer::new().with_issuer(ISS).with_audience(AUD)
}

// ---------------------------------------------------------------------------------------------
// The gateway (in-process) and the upstream

/// Starts the gateway from a recipe on a free loopback port; it stops when the sender drops.
pub async fn start_gateway(
    recipe_name: &str,
    issuer: &Issuer,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let jwks = issuer.jwks_file().display().to_string();
    start_gateway_with(recipe_name, |addr| {
        render(
            &recipe(recipe_name),
            &[("@JWTGATE_ADDR@", addr.to_string()), ("@JWKS_FILE@", jwks)],
        )
    })
    .await
}

/// Starts the gateway on a free loopback port from the TOML `config` writes for that address;
/// `name` names it in errors. It stops when the sender drops.
pub async fn start_gateway_with(
    name: &str,
    config: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = GatewayConfig::from_toml(&config(addr), name).unwrap();
    assert_eq!(config.server.listen, addr);
    let gateway = serve(&config, name, listener).await;
    (gateway.addr, gateway.stop.unwrap())
}

/// A gateway serving in the test's runtime.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine it was built with.
    pub engine: std::sync::Arc<jwtgate_http::Engine>,
    /// Stops it when sent to or dropped (taken by [`Gateway::stop`]).
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task: it ends once stopped and its requests are done.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// Stops it and waits (10 s at most) for its task to end without an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the gateway stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// Starts the gateway built from `config` (named `test.toml` in errors) on a free loopback port.
pub async fn start_config(config: &GatewayConfig) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(config, "test.toml", listener).await
}

/// Serves `config` on `listener`: over TLS when it names `tls_cert`/`tls_key`, asking for client
/// certificates from its `client_ca` when it names one.
pub async fn serve(config: &GatewayConfig, name: &str, listener: TcpListener) -> Gateway {
    let built = config.build(name).unwrap();
    let tls = built.options.tls.as_ref().map(|(cert, key)| {
        server::tls_acceptor_with_client_ca(cert, key, built.options.client_ca.as_deref()).unwrap()
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = server::spawn(&built, listener, tls, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Gateway {
        addr: spawned.addr,
        engine: built.engine,
        stop: Some(tx),
        task: spawned.task,
    }
}

// ---------------------------------------------------------------------------------------------
// The real proxies

/// Finds an installed program, or fails the test saying how to install it.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, and this test runs the real {name} (it does not \
                 skip): {INSTALL_HINT}"
            )
        })
}

/// A child process that is killed (and reaped) when the test ends, however it ends.
pub struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Running {
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running { name, child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until `addr` accepts connections (at most 15 s). If the process exits first, returns
    /// its log (so a port taken in the meantime can be retried), and fails on a timeout.
    pub async fn wait_until_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "{} exited ({status}) before listening on {addr}:\n{}",
                    self.name,
                    self.log()
                ));
            }
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} is not listening on {addr} after 15 s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a proxy on a free loopback port; a port taken between choosing and binding it is
/// retried with another (twice at most).
pub async fn start_on_free_port(
    name: &'static str,
    dir: &Path,
    command: impl Fn(SocketAddr) -> Command,
) -> (Running, SocketAddr) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut running = Running::spawn(name, command(listen), dir.join(format!("{name}.log")));
        match running.wait_until_listening(listen).await {
            Ok(()) => return (running, listen),
            Err(log) if log.to_ascii_lowercase().contains("address already in use") => {
                failures.push(log);
            }
            Err(log) => panic!("{log}"),
        }
    }
    panic!("{name} found no free port:\n{}", failures.join("\n"))
}

/// nginx from `docs/recipes/nginx.conf`, single process, in the foreground.
pub async fn start_nginx(
    dir: &Path,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let nginx = require_program("nginx");
    let template = recipe("nginx.conf");
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("tmp")).unwrap();
    start_on_free_port("nginx", dir, |listen| {
        let conf = render(
            &template,
            &[
                ("@LISTEN_ADDR@", listen.to_string()),
                ("@JWTGATE_ADDR@", jwtgate.to_string()),
                ("@UPSTREAM_ADDR@", upstream.to_string()),
            ],
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let mut command = Command::new(&nginx);
        command
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(format!("{}/", prefix.display()))
            .arg("-c")
            .arg("nginx.conf");
        command
    })
    .await
}

/// Caddy from `docs/recipes/Caddyfile`, admin endpoint off, state in the temp dir.
pub async fn start_caddy(
    dir: &Path,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let caddy = require_program("caddy");
    let template = recipe("Caddyfile");
    let home = dir.join("caddy");
    std::fs::create_dir_all(&home).unwrap();
    start_on_free_port("caddy", dir, |listen| {
        let caddyfile = render(
            &template,
            &[
                ("@LISTEN_PORT@", listen.port().to_string()),
                ("@LISTEN_HOST@", listen.ip().to_string()),
                ("@JWTGATE_ADDR@", jwtgate.to_string()),
                ("@UPSTREAM_ADDR@", upstream.to_string()),
            ],
        );
        std::fs::write(home.join("Caddyfile"), caddyfile).unwrap();
        let mut command = Command::new(&caddy);
        command
            .current_dir(&home)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .args(["run", "--adapter", "caddyfile", "--config", "Caddyfile"]);
        command
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client, so the test sees exactly what goes over the wire

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
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

pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
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
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
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
