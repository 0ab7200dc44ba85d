//! The Envoy and Traefik recipes of `docs/recipes/`, run as written: the `jwtgate` binary
//! (`jwtgate serve --config`, from `jwtgate-envoy.toml` or `jwtgate-caddy.toml`) behind the real
//! Envoy 1.40 — gRPC ext_authz (`envoy-grpc.yaml`) and HTTP ext_authz with `path_prefix`
//! (`envoy-http.yaml`) — and the real Traefik 3.7 ForwardAuth (`traefik.yml`,
//! `traefik-dynamic.yml`), each in front of an upstream that echoes what it received.
//!
//! For each: a valid token reaches the upstream with the identity headers and without
//! `Authorization`; a client's own `X-Auth-Subject` (any case, and with `_`) never reaches it;
//! no token is 401 with jwtgate's challenge, a missing scope 403, an expired token 401
//! `invalid_token`; `/public/../…`, `%2e%2e` and `//` are decided on the normalised path; and with
//! jwtgate stopped (SIGTERM: both its listeners close), the proxy refuses, public routes too. A
//! DPoP request passes through each (the proxy tells jwtgate the scheme and host the client
//! used), and a proof made for another URI is refused.
//!
//! Envoy and Traefik come from `scripts/test` (`target/proxies-venv/bin`); a missing one fails the
//! test with the install hint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{Request, State};
use axum::Router;
use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_test_support::{certificates, free_port, proxy_tool, workspace_root, Issuer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ISS: &str = "https://example.eu.auth0.com/";
const AUD: &str = "https://api.example.com";
const CHALLENGE: &str = "Bearer realm=\"api\"";

// ---------------------------------------------------------------------------------------------
// Recipes

fn recipe(name: &str) -> String {
    let path = workspace_root().join("docs/recipes").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces every `@NAME@` placeholder; fails if one is missing or left over.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        assert!(text.contains(name), "the recipe has no {name} placeholder");
        text = text.replace(name, value);
    }
    let leftover: Vec<&str> = text
        .split('@')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .collect();
    assert!(leftover.is_empty(), "placeholders left: {leftover:?}");
    text
}

#[test]
fn docs_show_the_tested_recipes() {
    for (page, files) in [
        (
            "envoy.md",
            &["jwtgate-envoy.toml", "envoy-grpc.yaml", "envoy-http.yaml"][..],
        ),
        ("traefik.md", &["traefik.yml", "traefik-dynamic.yml"][..]),
    ] {
        let text = std::fs::read_to_string(workspace_root().join("docs").join(page)).unwrap();
        for file in files {
            assert!(
                text.contains(&recipe(file)),
                "docs/{page} does not show docs/recipes/{file} as it is: copy the file into the page"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The upstream

/// Every request the upstream received: method, URI and headers (repeated ones too).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn echo(State(seen): State<Seen>, request: Request) -> axum::Json<Value> {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let record = json!({
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "headers": headers,
    });
    seen.0.lock().unwrap().push(record.clone());
    axum::Json(record)
}

async fn start_upstream() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(echo).with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// The values of every header of an echoed request whose name reads as `name` to a server that
/// folds case and `_` (CGI, WSGI, PHP).
fn folded_values(record: &Value, name: &str) -> Vec<String> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| {
            pair[0]
                .as_str()
                .unwrap()
                .replace('_', "-")
                .eq_ignore_ascii_case(name)
        })
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: paths are sent byte for byte (`..`, `%2e%2e`, `//`)

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn one(&self, name: &str) -> Option<&str> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(values.len() <= 1, "{name} repeated: {values:?}");
        values.first().copied()
    }

    fn echoed(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the upstream's echo ({e}): {}", self.body))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&body[..end]).unwrap().trim();
        let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: api.example.com\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap_or(0);
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} {target} in 10 s"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process killed (and reaped) when the test ends, however it ends.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> Running {
        let log = dir.join(format!("{name}.log"));
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it holds (20 s at most); `Err` with the log if the process exits.
    async fn wait_for<F: std::future::Future<Output = bool>>(
        &mut self,
        ready: impl Fn() -> F,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("{} exited ({status}):\n{}", self.name, self.log()));
            }
            if ready().await {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after 20 s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (10 s at most) for a clean exit.
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running 10 s after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}

/// Starts a process on free loopback ports chosen by `command` (called again with new ones when
/// the process exits before `ready`, e.g. a port taken in the meantime; three tries).
async fn start_with_ports<T: Clone, F: std::future::Future<Output = bool>>(
    name: &'static str,
    dir: &Path,
    ports: impl Fn() -> T,
    command: impl Fn(&T) -> Command,
    ready: impl Fn(T) -> F,
) -> (Running, T) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let chosen = ports();
        let mut running = Running::spawn(name, command(&chosen), dir);
        match running.wait_for(|| ready(chosen.clone())).await {
            Ok(()) => return (running, chosen),
            Err(log) => failures.push(log),
        }
    }
    panic!("{name} did not start:\n{}", failures.join("\n"))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// `jwtgate serve` from the recipe `toml`, with its HTTP (and gRPC) listeners on free ports;
/// ready when `/readyz` answers 200.
async fn start_jwtgate(
    dir: &Path,
    toml: &'static str,
    issuer: &Issuer,
) -> (Running, (SocketAddr, SocketAddr)) {
    start_jwtgate_with(dir, toml, issuer, |text| text, false).await
}

/// [`start_jwtgate`] with `change` applied to the rendered configuration; with `tls`, it is
/// ready once the gRPC listener accepts (its `/readyz` speaks HTTPS).
async fn start_jwtgate_with(
    dir: &Path,
    toml: &'static str,
    issuer: &Issuer,
    change: impl Fn(String) -> String,
    tls: bool,
) -> (Running, (SocketAddr, SocketAddr)) {
    let template = recipe(toml);
    let jwks = issuer.jwks_file().display().to_string();
    let config = dir.join(toml);
    start_with_ports(
        "jwtgate",
        dir,
        || (loopback(), loopback()),
        |(http, grpc)| {
            let mut values = vec![
                ("@JWTGATE_ADDR@", http.to_string()),
                ("@JWKS_FILE@", jwks.clone()),
            ];
            if template.contains("@JWTGATE_GRPC_ADDR@") {
                values.push(("@JWTGATE_GRPC_ADDR@", grpc.to_string()));
            }
            std::fs::write(&config, change(render(&template, &values))).unwrap();
            let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
            command
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .env("JWTGATE_LOG", "warn");
            command
        },
        |(http, grpc)| async move {
            if tls {
                return accepts(grpc).await;
            }
            accepts(http).await && send(http, "GET", "/readyz", &[]).await.status == 200
        },
    )
    .await
}

/// A proxy from its recipe, ready once `/public/ready` reaches the upstream through it.
async fn start_proxy(
    name: &'static str,
    dir: &Path,
    command: impl Fn(SocketAddr) -> Command,
) -> (Running, SocketAddr) {
    start_with_ports(
        name,
        dir,
        loopback,
        |listen| command(*listen),
        |listen| async move {
            accepts(listen).await && send(listen, "GET", "/public/ready", &[]).await.status == 200
        },
    )
    .await
}

fn envoy_command(dir: &Path, file: &str, config: String) -> Command {
    let path = dir.join(file);
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(proxy_tool("envoy"));
    command.arg("-c").arg(&path).args([
        "--concurrency",
        "1",
        "--disable-hot-restart",
        "--log-level",
        "error",
    ]);
    command
}

async fn start_envoy(
    dir: &Path,
    recipe_name: &'static str,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    start_envoy_with(dir, recipe_name, jwtgate, upstream, |text| text).await
}

/// [`start_envoy`] with `change` applied to the rendered configuration.
async fn start_envoy_with(
    dir: &Path,
    recipe_name: &'static str,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
    change: impl Fn(String) -> String,
) -> (Running, SocketAddr) {
    let template = recipe(recipe_name);
    let (host, port) = if recipe_name == "envoy-grpc.yaml" {
        ("@JWTGATE_GRPC_HOST@", "@JWTGATE_GRPC_PORT@")
    } else {
        ("@JWTGATE_HOST@", "@JWTGATE_PORT@")
    };
    start_proxy("envoy", dir, |listen| {
        let config = render(
            &template,
            &[
                ("@LISTEN_HOST@", listen.ip().to_string()),
                ("@LISTEN_PORT@", listen.port().to_string()),
                (host, jwtgate.ip().to_string()),
                (port, jwtgate.port().to_string()),
                ("@UPSTREAM_HOST@", upstream.ip().to_string()),
                ("@UPSTREAM_PORT@", upstream.port().to_string()),
            ],
        );
        envoy_command(dir, recipe_name, change(config))
    })
    .await
}

async fn start_traefik(
    dir: &Path,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> (Running, SocketAddr) {
    let dynamic = dir.join("traefik-dynamic.yml");
    let rendered = render(
        &recipe("traefik-dynamic.yml"),
        &[
            ("@JWTGATE_ADDR@", jwtgate.to_string()),
            ("@UPSTREAM_ADDR@", upstream.to_string()),
        ],
    );
    std::fs::write(&dynamic, rendered).unwrap();
    let template = recipe("traefik.yml");
    start_proxy("traefik", dir, |listen| {
        let config = render(
            &template,
            &[
                ("@LISTEN_ADDR@", listen.to_string()),
                ("@DYNAMIC_FILE@", dynamic.display().to_string()),
            ],
        );
        let path = dir.join("traefik.yml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(proxy_tool("traefik"));
        command.arg(format!("--configFile={}", path.display()));
        command
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    EnvoyGrpc,
    EnvoyHttp,
    Traefik,
}

/// Sends `request` through the proxy and returns the reply, with the upstream's record of it
/// when it got there (`None` when it did not).
async fn through(
    proxy: SocketAddr,
    seen: &Seen,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (Reply, Option<Value>) {
    let before = seen.count();
    let reply = send(proxy, method, target, headers).await;
    let reached = (seen.count() > before).then(|| reply.echoed());
    (reply, reached)
}

fn assert_refused(reply: &Reply, reached: &Option<Value>, status: u16, challenge: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(
        reached.is_none(),
        "the upstream got a refused request: {reached:?}"
    );
    let got = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        got.contains(challenge),
        "challenge {got:?} lacks {challenge:?}"
    );
}

async fn run_cases(front: Front, proxy: SocketAddr, seen: &Seen, issuer: &Issuer) {
    let good = format!("Bearer {}", issuer.token(json!({})));

    // A valid token: the upstream gets the verified identity, once, and no Authorization; the
    // client's own identity headers, in any case, are replaced.
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/api/users?page=2",
        &[
            ("Authorization", &good),
            ("X-AUTH-SUBJECT", "admin"),
            ("x-auth-scopes", "admin"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{front:?}: {}", reply.body);
    let record = reached.unwrap();
    assert_eq!(record["uri"], "/api/users?page=2");
    assert_eq!(folded_values(&record, "x-auth-subject"), ["auth0|alice"]);
    assert_eq!(folded_values(&record, "x-auth-issuer"), [ISS]);
    assert_eq!(
        folded_values(&record, "x-auth-scopes"),
        ["openid read:users"]
    );
    assert!(
        folded_values(&record, "authorization").is_empty(),
        "{front:?}: {record}"
    );

    // A spelling with `_`, which CGI, WSGI and PHP read as X-Auth-Subject: removed from the
    // request (gRPC ext_authz's headers_to_remove), dropped by Envoy (HTTP recipe), or refused
    // by jwtgate (Traefik forward-auth, where jwtgate cannot remove it).
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/api/users",
        &[("Authorization", &good), ("X_Auth_Subject", "admin")],
    )
    .await;
    match front {
        Front::EnvoyGrpc | Front::EnvoyHttp => {
            assert_eq!(reply.status, 200, "{front:?}: {}", reply.body);
            let record = reached.unwrap();
            assert_eq!(folded_values(&record, "x-auth-subject"), ["auth0|alice"]);
        }
        Front::Traefik => assert_refused(&reply, &reached, 400, "error=\"invalid_request\""),
    }

    // A public route: no token needed, and the client's identity headers still never arrive.
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/public/logo.png",
        &[("x-auth-subject", "admin"), ("X-Auth-Issuer", ISS)],
    )
    .await;
    assert_eq!(reply.status, 200, "{front:?}: {}", reply.body);
    let record = reached.unwrap();
    assert!(
        folded_values(&record, "x-auth-subject").is_empty(),
        "{record}"
    );
    assert!(
        folded_values(&record, "x-auth-issuer").is_empty(),
        "{record}"
    );

    // No token: 401 with the bare challenge and jwtgate's body.
    let (reply, reached) = through(proxy, seen, "GET", "/api/users", &[]).await;
    assert_refused(&reply, &reached, 401, CHALLENGE);
    assert_eq!(reply.one("www-authenticate"), Some(CHALLENGE));
    assert!(
        reply.body.contains("a bearer token is required"),
        "{}",
        reply.body
    );

    // A scope the token lacks: 403 insufficient_scope naming it.
    let (reply, reached) = through(
        proxy,
        seen,
        "POST",
        "/api/users",
        &[("Authorization", &good)],
    )
    .await;
    assert_refused(&reply, &reached, 403, "error=\"insufficient_scope\"");
    assert!(reply
        .one("www-authenticate")
        .unwrap()
        .contains("scope=\"write:users\""));
    assert!(reply.body.contains("insufficient_scope"), "{}", reply.body);

    // Expired: 401 invalid_token.
    let expired = format!("Bearer {}", issuer.expired());
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/api/users",
        &[("Authorization", &expired)],
    )
    .await;
    assert_refused(&reply, &reached, 401, "error=\"invalid_token\"");

    // Path tricks are decided on the normalised path: without a token, nothing outside
    // /public/ is served, and what is served is a clean path (the proxy's normalisation is what
    // the upstream gets and what jwtgate checked: Envoy resolves `/public//../x` to
    // `/public/x`, dot segments before repeated slashes).
    for target in [
        "/public/../api/users",
        "/public/%2e%2e/api/users",
        "/public/%2E%2E/api/users",
        "//api/users",
        "/public//../api/users",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "//admin",
    ] {
        let (reply, reached) = through(proxy, seen, "GET", target, &[]).await;
        match reached {
            Some(record) => {
                let uri = record["uri"].as_str().unwrap().to_owned();
                assert_eq!(reply.status, 200, "{front:?} {target}");
                assert!(
                    uri.starts_with("/public/")
                        && !uri.contains("..")
                        && !uri.contains("//")
                        && !uri.to_ascii_lowercase().contains("%2e"),
                    "{front:?} {target}: the upstream got {uri} without a token"
                );
            }
            None => assert!(
                [400, 401, 403].contains(&reply.status),
                "{front:?} {target}: {} {}",
                reply.status,
                reply.body
            ),
        }
        if target.ends_with("/api/users") && reply.status != 200 {
            assert_eq!(reply.status, 401, "{front:?} {target}: {}", reply.body);
        }
        if target.ends_with("/admin") && reply.status != 200 {
            assert_eq!(reply.status, 403, "{front:?} {target}: {}", reply.body);
        }
    }
    // With a valid token, the upstream gets the path that was checked.
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/public/../api/users",
        &[("Authorization", &good)],
    )
    .await;
    assert_eq!(reply.status, 200, "{front:?}: {}", reply.body);
    assert_eq!(reached.unwrap()["uri"], "/api/users", "{front:?}");

    // DPoP: a proof for the URI the client used passes; one for another URI is refused.
    let key = SigningKey::generate(Algorithm::ES256, "client").unwrap();
    let bound = issuer.token(json!({"cnf": {"jkt": key_thumbprint(&key).unwrap()}}));
    let dpop = format!("DPoP {bound}");
    let proof = |uri: &str, jti: &str| {
        make_proof(
            &key,
            &ProofClaims {
                method: "GET",
                uri,
                access_token: Some(&bound),
                iat: jwtgate_test_support::now(),
                jti,
                nonce: None,
            },
        )
        .unwrap()
    };
    let good_proof = proof("http://api.example.com/api/users", "through-the-proxy");
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/api/users?page=2",
        &[("Authorization", &dpop), ("DPoP", &good_proof)],
    )
    .await;
    assert_eq!(reply.status, 200, "{front:?}: DPoP: {}", reply.body);
    assert!(reached.is_some(), "{front:?}");
    let other_proof = proof("http://api.example.com/api/other", "another-uri");
    let (reply, reached) = through(
        proxy,
        seen,
        "GET",
        "/api/users",
        &[("Authorization", &dpop), ("DPoP", &other_proof)],
    )
    .await;
    assert_refused(&reply, &reached, 401, "error=\"invalid_dpop_proof\"");
    assert!(
        reply
            .one("www-authenticate")
            .unwrap()
            .contains("the request is http://api.example.com/api/users"),
        "{front:?}: {:?}",
        reply.one("www-authenticate")
    );
}

/// With jwtgate gone, the proxy refuses every request (public routes too): nothing unchecked
/// reaches the upstream.
async fn assert_fails_closed(front: Front, proxy: SocketAddr, seen: &Seen, status: u16) {
    for target in ["/public/logo.png", "/api/users"] {
        let (reply, reached) = through(proxy, seen, "GET", target, &[]).await;
        assert_eq!(reply.status, status, "{front:?} {target}: {}", reply.body);
        assert!(
            reached.is_none(),
            "{front:?} {target}: the upstream got {reached:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_grpc_ext_authz_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (mut jwtgate, (_, grpc)) = start_jwtgate(dir.path(), "jwtgate-envoy.toml", &issuer).await;
    let (envoy, proxy) = start_envoy(dir.path(), "envoy-grpc.yaml", grpc, upstream).await;
    run_cases(Front::EnvoyGrpc, proxy, &seen, &issuer).await;
    jwtgate.terminate();
    assert_fails_closed(Front::EnvoyGrpc, proxy, &seen, 403).await;
    drop(envoy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_http_ext_authz_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (mut jwtgate, (http, _)) = start_jwtgate(dir.path(), "jwtgate-envoy.toml", &issuer).await;
    let (envoy, proxy) = start_envoy(dir.path(), "envoy-http.yaml", http, upstream).await;
    run_cases(Front::EnvoyHttp, proxy, &seen, &issuer).await;
    jwtgate.terminate();
    assert_fails_closed(Front::EnvoyHttp, proxy, &seen, 403).await;
    drop(envoy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (mut jwtgate, (http, _)) = start_jwtgate(dir.path(), "jwtgate-caddy.toml", &issuer).await;
    let (traefik, proxy) = start_traefik(dir.path(), http, upstream).await;
    run_cases(Front::Traefik, proxy, &seen, &issuer).await;
    jwtgate.terminate();
    assert_fails_closed(Front::Traefik, proxy, &seen, 500).await;
    drop(traefik);
}

/// With `[dpop] nonce = true` added to the recipe's jwtgate, both Envoy recipes hand jwtgate's
/// `DPoP-Nonce` to the client: with the `use_dpop_nonce` refusal, and with the answer to the retry
/// that carries it (gRPC: `ok_response.response_headers_to_add`; HTTP:
/// `allowed_client_headers_on_success`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_recipes_pass_dpop_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (_jwtgate, (http, grpc)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-envoy.toml",
        &issuer,
        |text| format!("{text}\n[dpop]\nnonce = true\n"),
        false,
    )
    .await;
    let key = SigningKey::generate(Algorithm::ES256, "client").unwrap();
    let bound = issuer.token(json!({"cnf": {"jkt": key_thumbprint(&key).unwrap()}}));
    let dpop = format!("DPoP {bound}");
    let proof = |jti: &str, nonce: Option<&str>| {
        make_proof(
            &key,
            &ProofClaims {
                method: "GET",
                uri: "http://api.example.com/api/users",
                access_token: Some(&bound),
                iat: jwtgate_test_support::now(),
                jti,
                nonce,
            },
        )
        .unwrap()
    };
    for (recipe_name, jwtgate) in [("envoy-grpc.yaml", grpc), ("envoy-http.yaml", http)] {
        let envoy_dir = dir.path().join(recipe_name);
        std::fs::create_dir_all(&envoy_dir).unwrap();
        let (envoy, proxy) = start_envoy(&envoy_dir, recipe_name, jwtgate, upstream).await;
        let first = format!("{recipe_name}-first");
        let (reply, reached) = through(
            proxy,
            &seen,
            "GET",
            "/api/users",
            &[("Authorization", &dpop), ("DPoP", &proof(&first, None))],
        )
        .await;
        assert_refused(&reply, &reached, 401, "error=\"use_dpop_nonce\"");
        let nonce = reply
            .one("dpop-nonce")
            .unwrap_or_else(|| panic!("{recipe_name}: no DPoP-Nonce: {:?}", reply.headers))
            .to_owned();
        let retry = format!("{recipe_name}-retry");
        let (reply, reached) = through(
            proxy,
            &seen,
            "GET",
            "/api/users",
            &[
                ("Authorization", &dpop),
                ("DPoP", &proof(&retry, Some(&nonce))),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{recipe_name}: {}", reply.body);
        assert!(reached.is_some(), "{recipe_name}");
        assert_eq!(
            reply.one("dpop-nonce"),
            Some(nonce.as_str()),
            "{recipe_name}"
        );
        drop(envoy);
    }
}

/// An HTTPS client trusting the test CA in `data` (`ca.crt.pem`), presenting `identity` (a key
/// and certificate as one PEM) when given.
fn tls_client(data: &Path, identity: Option<&[u8]>) -> reqwest::Client {
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(data.join("ca.crt.pem")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().add_root_certificate(root);
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity).unwrap());
    }
    builder.build().unwrap()
}

/// RFC 8705 `x5t#S256`: the base64url SHA-256 of a certificate's DER.
fn x5t(der: &[u8]) -> String {
    jwtgate_core::internal::base64url::encode(&jwtgate_core::crypto::sha256(der))
}

/// A client certificate `name` issued by the CA `ca` (made first when missing) in `dir`: its key
/// and certificate as one PEM (for reqwest), and the certificate's DER.
fn client_certificate(dir: &Path, ca: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
    if !dir.join(format!("{ca}.crt")).exists() {
        certificates::make_ca(dir, ca);
    }
    certificates::make_client(dir, ca, name)
}

/// Envoy terminating TLS with client certificates in front of the HTTP ext_authz recipe, with
/// `forward_client_cert_details: SANITIZE_SET` and the certificate in `x-forwarded-client-cert`
/// (docs/mtls.md), and jwtgate reading that header (`client_cert_header_format = "xfcc"`): the
/// certificate a token is bound to passes, another one does not, and a client without one that
/// sends its own XFCC is refused (Envoy replaces it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_passes_the_client_certificate_in_xfcc() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (alice, alice_der) = client_certificate(&certs, "clients", "alice");
    let (bob, bob_der) = client_certificate(&certs, "clients", "bob");
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (_jwtgate, (http, _)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-envoy.toml",
        &issuer,
        |text| {
            text.replacen(
                "[server]\n",
                "[server]\nclient_cert_header = \"x-forwarded-client-cert\"\nclient_cert_header_format = \"xfcc\"\n",
                1,
            )
        },
        false,
    )
    .await;
    let data = workspace_root().join("crates/http/tests/data");
    let tls = format!(
        r#"      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              require_client_certificate: false
              common_tls_context:
                tls_certificates:
                  - certificate_chain: {{ filename: "{data}/localhost.crt.pem" }}
                    private_key: {{ filename: "{data}/localhost.key.pem" }}
                validation_context:
                  trusted_ca: {{ filename: "{ca}" }}
          filters:
"#,
        data = data.display(),
        ca = certs.join("clients.crt").display(),
    );
    let change = |text: String| {
        let text = text.replacen("      filter_chains:\n        - filters:\n", &tls, 1);
        let text = text.replacen(
            "                stat_prefix: api\n",
            "                stat_prefix: api\n                forward_client_cert_details: SANITIZE_SET\n                set_current_client_cert_details: {cert: true}\n",
            1,
        );
        text.replacen(
            "                          - exact: dpop\n",
            "                          - exact: dpop\n                          - exact: x-forwarded-client-cert\n",
            1,
        )
    };
    let client = |identity: Option<&[u8]>| tls_client(&data, identity);
    let template = recipe("envoy-http.yaml");
    let (_envoy, proxy) = start_with_ports(
        "envoy",
        dir.path(),
        loopback,
        |listen| {
            let config = render(
                &template,
                &[
                    ("@LISTEN_HOST@", listen.ip().to_string()),
                    ("@LISTEN_PORT@", listen.port().to_string()),
                    ("@JWTGATE_HOST@", http.ip().to_string()),
                    ("@JWTGATE_PORT@", http.port().to_string()),
                    ("@UPSTREAM_HOST@", upstream.ip().to_string()),
                    ("@UPSTREAM_PORT@", upstream.port().to_string()),
                ],
            );
            envoy_command(dir.path(), "envoy-http.yaml", change(config))
        },
        |listen| {
            let ready =
                client(None).get(format!("https://localhost:{}/public/ready", listen.port()));
            async move { ready.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = issuer.token(json!({"cnf": {"x5t#S256": x5t(&alice_der)}}));
    let before = seen.count();
    let response = client(Some(&alice))
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(seen.count(), before + 1);

    let refused = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, challenge)
    };
    let (status, challenge) = refused(
        client(Some(&bob))
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another certificate"), "{challenge}");

    let forged = format!(
        "Hash={}",
        jwtgate_core::crypto::sha256(&alice_der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let (status, challenge) = refused(
        client(None)
            .get(&url)
            .bearer_auth(&token)
            .header("x-forwarded-client-cert", forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
    // Bob's own bound token passes with Bob's certificate.
    let bobs = issuer.token(json!({"cnf": {"x5t#S256": x5t(&bob_der)}}));
    let response = client(Some(&bob))
        .get(&url)
        .bearer_auth(&bobs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Envoy terminating TLS with client certificates in front of the gRPC ext_authz recipe, with
/// `include_peer_certificate: true` (the certificate in the check's `attributes.source`), and
/// jwtgate taking it from there (`client_cert_source = "ext-authz"`, docs/mtls.md): the
/// certificate a token is bound to passes, another one does not, none does not (Envoy asks for a
/// certificate without requiring one, so that jwtgate's refusal is what is tested), and a
/// token bound to no certificate still passes without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_grpc_check_carries_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (alice, alice_der) = client_certificate(&certs, "clients", "alice");
    let (bob, _) = client_certificate(&certs, "clients", "bob");
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let (_jwtgate, (_, grpc)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-envoy.toml",
        &issuer,
        |text| {
            text.replacen(
                "[server]\n",
                "[server]\nclient_cert_source = \"ext-authz\"\n",
                1,
            )
        },
        false,
    )
    .await;
    let data = workspace_root().join("crates/http/tests/data");
    let tls = format!(
        r#"      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              require_client_certificate: false
              common_tls_context:
                tls_certificates:
                  - certificate_chain: {{ filename: "{data}/localhost.crt.pem" }}
                    private_key: {{ filename: "{data}/localhost.key.pem" }}
                validation_context:
                  trusted_ca: {{ filename: "{ca}" }}
          filters:
"#,
        data = data.display(),
        ca = certs.join("clients.crt").display(),
    );
    let change = |text: String| {
        let text = text.replacen("      filter_chains:\n        - filters:\n", &tls, 1);
        text.replacen(
            "                      failure_mode_allow: false\n",
            "                      failure_mode_allow: false\n                      include_peer_certificate: true\n",
            1,
        )
    };
    let client = |identity: Option<&[u8]>| tls_client(&data, identity);
    let template = recipe("envoy-grpc.yaml");
    let (_envoy, proxy) = start_with_ports(
        "envoy",
        dir.path(),
        loopback,
        |listen| {
            let config = render(
                &template,
                &[
                    ("@LISTEN_HOST@", listen.ip().to_string()),
                    ("@LISTEN_PORT@", listen.port().to_string()),
                    ("@JWTGATE_GRPC_HOST@", grpc.ip().to_string()),
                    ("@JWTGATE_GRPC_PORT@", grpc.port().to_string()),
                    ("@UPSTREAM_HOST@", upstream.ip().to_string()),
                    ("@UPSTREAM_PORT@", upstream.port().to_string()),
                ],
            );
            envoy_command(dir.path(), "envoy-grpc.yaml", change(config))
        },
        |listen| {
            let ready =
                client(None).get(format!("https://localhost:{}/public/ready", listen.port()));
            async move { ready.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = issuer.token(json!({"cnf": {"x5t#S256": x5t(&alice_der)}}));
    let before = seen.count();
    let response = client(Some(&alice))
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(seen.count(), before + 1);

    for (identity, expected) in [
        (Some(&bob[..]), "another certificate"),
        (None, "without a client certificate"),
    ] {
        let response = client(identity)
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(challenge.contains(expected), "{challenge}");
    }
    assert_eq!(
        seen.count(),
        before + 1,
        "a refused request reached the API"
    );
    // A token bound to no certificate needs none.
    let response = client(None)
        .get(&url)
        .bearer_auth(issuer.token(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Traefik terminating TLS with client certificates (`VerifyClientCertIfGiven`) and
/// `passTLSClientCert` (`pem: true`) before the ForwardAuth to jwtgate (`client_cert_header_format
/// = "base64-der"`): the certificate a token is bound to passes, another one does not, and a
/// client without one that sends its own `X-Forwarded-Tls-Client-Cert` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_passes_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (alice, alice_der) = client_certificate(&certs, "clients", "alice");
    let (bob, _) = client_certificate(&certs, "clients", "bob");
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, _seen) = start_upstream().await;
    let (_jwtgate, (http, _)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-caddy.toml",
        &issuer,
        |text| {
            text.replacen(
                "[server]\n",
                "[server]\nclient_cert_header = \"X-Forwarded-Tls-Client-Cert\"\nclient_cert_header_format = \"base64-der\"\n",
                1,
            )
        },
        false,
    )
    .await;
    let data = workspace_root().join("crates/http/tests/data");
    let dynamic = dir.path().join("traefik-mtls.yml");
    std::fs::write(
        &dynamic,
        format!(
            r#"tls:
  certificates:
    - certFile: "{data}/localhost.crt.pem"
      keyFile: "{data}/localhost.key.pem"
  options:
    default:
      clientAuth:
        caFiles: ["{ca}"]
        clientAuthType: VerifyClientCertIfGiven
http:
  middlewares:
    client-cert:
      passTLSClientCert:
        pem: true
    jwtgate:
      forwardAuth:
        address: "http://{http}/auth"
  routers:
    api:
      entryPoints: [websecure]
      rule: "PathPrefix(`/`)"
      tls: {{}}
      middlewares: [client-cert, jwtgate]
      service: api
  services:
    api:
      loadBalancer:
        servers:
          - url: "http://{upstream}"
"#,
            data = data.display(),
            ca = certs.join("clients.crt").display(),
        ),
    )
    .unwrap();
    let client = |identity: Option<&[u8]>| tls_client(&data, identity);
    let (_traefik, proxy) = start_with_ports(
        "traefik",
        dir.path(),
        loopback,
        |listen| {
            let path = dir.path().join("traefik-static.yml");
            std::fs::write(
                &path,
                format!(
                    "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  websecure:\n    address: \"{listen}\"\nproviders:\n  file:\n    filename: \"{}\"\nlog:\n  level: ERROR\n",
                    dynamic.display()
                ),
            )
            .unwrap();
            let mut command = Command::new(proxy_tool("traefik"));
            command.arg(format!("--configFile={}", path.display()));
            command
        },
        |listen| {
            let ready =
                client(None).get(format!("https://localhost:{}/public/ready", listen.port()));
            async move { ready.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = issuer.token(json!({"cnf": {"x5t#S256": x5t(&alice_der)}}));
    let response = client(Some(&alice))
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let refused = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, challenge)
    };
    let (status, challenge) = refused(
        client(Some(&bob))
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another certificate"), "{challenge}");

    let forged: String = String::from_utf8_lossy(&std::fs::read(certs.join("alice.crt")).unwrap())
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let (status, challenge) = refused(
        client(None)
            .get(&url)
            .bearer_auth(&token)
            .header("X-Forwarded-Tls-Client-Cert", forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status, 401,
        "a forged X-Forwarded-Tls-Client-Cert got through Traefik"
    );
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
}

/// The gRPC recipe over TLS: jwtgate's listeners with `tls_cert`/`tls_key` (the HTTP gateway's
/// test certificate for 127.0.0.1), Envoy's `jwtgate` cluster with a TLS `transport_socket`
/// trusting its CA; health checks and checks pass over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_grpc_ext_authz_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace_root().join("crates/http/tests/data");
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_upstream().await;
    let tls = format!(
        "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        data.join("localhost.crt.pem").display(),
        data.join("localhost.key.pem").display()
    );
    let (_jwtgate, (_, grpc)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-envoy.toml",
        &issuer,
        |text| text.replacen("[server]\n", &tls, 1),
        true,
    )
    .await;
    let ca = data.join("ca.crt.pem").display().to_string();
    let cluster = "    - name: jwtgate\n      type: STATIC\n";
    let transport = format!(
        "{cluster}      transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n          sni: localhost\n          common_tls_context:\n            alpn_protocols: [h2]\n            validation_context:\n              trusted_ca: {{ filename: \"{ca}\" }}\n"
    );
    let (_envoy, proxy) = start_envoy_with(dir.path(), "envoy-grpc.yaml", grpc, upstream, |text| {
        assert!(text.contains(cluster), "the recipe's jwtgate cluster moved");
        text.replacen(cluster, &transport, 1)
    })
    .await;
    let good = format!("Bearer {}", issuer.token(json!({})));
    let (reply, reached) = through(
        proxy,
        &seen,
        "GET",
        "/api/users",
        &[("Authorization", &good)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        folded_values(&reached.unwrap(), "x-auth-subject"),
        ["auth0|alice"]
    );
    let (reply, reached) = through(proxy, &seen, "GET", "/api/users", &[]).await;
    assert_refused(&reply, &reached, 401, CHALLENGE);
}
