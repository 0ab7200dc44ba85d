//! The recipes of `docs/recipes/` with the real proxies: nginx (`auth_request`, Debian `nginx`)
//! and Caddy (`forward_auth`, Debian `caddy`) each run from the documented configuration in a
//! temp dir, in front of a small upstream that echoes the headers it got, asking the jwtgate
//! gateway (in-process, on a free loopback port, configured from the matching
//! `docs/recipes/jwtgate-*.toml`).
//!
//! For each proxy: a good token reaches the upstream with `X-Auth-Subject`/`-Issuer`/`-Scopes`;
//! no token is 401 with `WWW-Authenticate: Bearer realm=…`; a token lacking the route's scope is
//! 403 `insufficient_scope`; a client-sent identity header never reaches the upstream (with and
//! without a token, on protected and public routes), nor can a client-sent
//! `X-Forwarded-Uri`/`X-Original-URI` change the route jwtgate checks.
//!
//! The Envoy recipe's jwtgate side is checked with requests shaped as Envoy's HTTP ext_authz
//! filter sends them (Envoy itself is not packaged for Debian), and every `docs/*.md` recipe page
//! must show its `docs/recipes/` files verbatim, so the pages show what is tested.
//!
//! These tests fail (they do not skip) when nginx or caddy is missing: `.ci/run` installs both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{Request, State};
use axum::Router;
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::server;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The issuer and audience written in the recipes.
const ISS: &str = "https://example.eu.auth0.com/";
const AUD: &str = "https://api.example.com";
/// The realm the recipes set.
const CHALLENGE: &str = "Bearer realm=\"api\"";

const INSTALL_HINT: &str = "`.ci/run` installs it (its \"system packages\" stage); on a developer \
     machine: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
     --no-install-recommends nginx caddy wrk";

// ---------------------------------------------------------------------------------------------
// Recipes and placeholders

fn repo_root() -> PathBuf {
    // Canonical, so that a workspace reached through symlinks still finds the repository's docs/.
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .expect("repository root")
}

fn recipe(name: &str) -> String {
    let path = repo_root().join("docs/recipes").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces every `@NAME@` placeholder; fails if one is left (a recipe and this test disagree).
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

struct Issuer {
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl Issuer {
    fn new() -> Issuer {
        let key = SigningKey::generate(Algorithm::RS256, "recipe-key").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("jwks.json"),
            json!({"keys": [key.public_jwk()]}).to_string(),
        )
        .unwrap();
        Issuer { key, dir }
    }

    fn jwks(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// An Auth0-shaped access token with `read:users`; `extra` overrides claims.
    fn token(&self, extra: Value) -> String {
        let now = jwtgate_http::unix_now();
        let mut claims = json!({
            "iss": ISS, "aud": [AUD, format!("{ISS}userinfo")], "sub": "auth0|alice",
            "azp": "spa-client", "exp": now + 600, "iat": now,
            "scope": "openid profile", "permissions": ["read:users"],
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.key.sign(&Map::new(), &claims).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway (in-process) and the upstream

/// Starts the gateway from a recipe on a free loopback port; it stops when the sender drops.
async fn start_gateway(
    recipe_name: &str,
    issuer: &Issuer,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = render(
        &recipe(recipe_name),
        &[
            ("@JWTGATE_ADDR@", addr.to_string()),
            ("@JWKS_FILE@", issuer.jwks().display().to_string()),
        ],
    );
    let config = GatewayConfig::from_toml(&text, recipe_name).unwrap();
    assert_eq!(config.server.listen, addr);
    let built = config.build(recipe_name).unwrap();
    server::prepare_keys(&built.engine).await;
    let app = server::router(
        jwtgate_http::SharedEngine::shared(built.engine.clone()),
        &built.options,
    )
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::serve(listener, app, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

/// Every request the upstream received: method, URI and all headers (repeated ones too).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
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

/// The values of header `name` in an upstream record.
fn seen_values(record: &Value, name: &str) -> Vec<String> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The real proxies

/// Finds an installed program, or fails the test saying how to install it.
fn require_program(name: &str) -> PathBuf {
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

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed (and reaped) when the test ends, however it ends.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Running {
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

    /// Polls until `addr` accepts connections (at most 15 s). If the process exits first, returns
    /// its log (so a port taken in the meantime can be retried), and fails on a timeout.
    async fn wait_until_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
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
async fn start_on_free_port(
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
async fn start_nginx(
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
async fn start_caddy(
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

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `name` (fails when it is repeated).
    fn one(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(values.len() <= 1, "{name} repeated: {values:?}");
        values.first().copied()
    }

    /// The upstream's record of this request.
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
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
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
    if method == "POST"
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer in 10 s to {method} {target}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(&raw)));
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

// ---------------------------------------------------------------------------------------------
// The checks, the same for every proxy

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proxy {
    Nginx,
    Caddy,
}

/// Identity headers a client might forge, in assorted spellings.
const FORGED: [(&str, &str); 4] = [
    ("X-Auth-Subject", "admin"),
    ("x-auth-subject", "root"),
    ("X-AUTH-SCOPES", "write:users admin"),
    ("X-Auth-Issuer", "https://evil.example/"),
];

/// `headers` plus every forged identity header.
fn with_forged<'a>(mut headers: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    headers.extend(FORGED);
    headers
}

async fn check_recipe(proxy: Proxy, addr: SocketAddr, issuer: &Issuer, seen: &Seen) {
    let good = issuer.token(json!({}));
    let bearer = format!("Bearer {good}");
    let auth = ("Authorization", bearer.as_str());
    let mut expected_upstream_requests = 0;

    // A good token reaches the upstream with the verified identity, and only that.
    for forged in [false, true] {
        let mut headers = vec![auth];
        if forged {
            headers.extend(FORGED);
        }
        let reply = send(addr, "GET", "/api/users?page=2", &headers).await;
        assert_eq!(
            reply.status, 200,
            "{proxy:?} forged={forged}: {}",
            reply.body
        );
        expected_upstream_requests += 1;
        let echoed = reply.echoed();
        assert_eq!(echoed["uri"], "/api/users?page=2");
        assert_eq!(seen_values(&echoed, "x-auth-subject"), ["auth0|alice"]);
        assert_eq!(seen_values(&echoed, "x-auth-issuer"), [ISS]);
        let scopes = seen_values(&echoed, "x-auth-scopes");
        assert_eq!(scopes.len(), 1, "{scopes:?}");
        assert!(
            scopes[0].split(' ').any(|s| s == "read:users") && !scopes[0].contains("admin"),
            "{scopes:?}"
        );
    }

    // No token: 401 with the bare challenge (exactly one), never reaching the upstream.
    for forged in [false, true] {
        let headers = if forged { with_forged(vec![]) } else { vec![] };
        let reply = send(addr, "GET", "/api/users", &headers).await;
        assert_eq!(reply.status, 401, "{proxy:?}: {}", reply.body);
        assert_eq!(reply.one("www-authenticate"), Some(CHALLENGE), "{proxy:?}");
    }

    // A client-sent X-Forwarded-Uri / X-Original-URI cannot make jwtgate check another route.
    let spoofed = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri", "/public/logo.png"),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/public/logo.png"),
    ];
    let reply = send(addr, "GET", "/api/users", &spoofed).await;
    // Refused either way: 401 when the proxy cleared the client's copies (the real path is
    // checked), 403 when a copy got through and conflicts with the proxy's own header.
    assert!(
        reply.status == 401
            || (reply.status == 403
                && reply
                    .body
                    .contains("conflicting X-Forwarded-*/X-Original-*")),
        "{proxy:?}: spoofed original URI: {} {}",
        reply.status,
        reply.body
    );
    // Nor can dot segments: /public/../api/users is /api/users.
    let reply = send(addr, "GET", "/public/../api/users", &[]).await;
    assert_eq!(reply.status, 401, "{proxy:?}: dot segments");

    // A valid token without the route's scope: 403 insufficient_scope with scope=.
    let reply = send(addr, "POST", "/api/users", &with_forged(vec![auth])).await;
    assert_eq!(reply.status, 403, "{proxy:?}: {}", reply.body);
    let challenge = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"api\"")
            && challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"write:users\""),
        "{proxy:?}: {challenge}"
    );

    // A bad token: 401 invalid_token.
    let expired = format!(
        "Bearer {}",
        issuer.token(json!({"exp": jwtgate_http::unix_now() - 60}))
    );
    let reply = send(addr, "GET", "/api/users", &[("Authorization", &expired)]).await;
    assert_eq!(reply.status, 401, "{proxy:?}");
    let challenge = reply.one("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("expired"),
        "{proxy:?}: {challenge}"
    );

    // A malformed Authorization header: RFC 6750 says 400 invalid_request; nginx's auth_request
    // would turn a 400 into a 500, so its recipe answers 401.
    let reply = send(addr, "GET", "/api/users", &[("Authorization", "Bearer")]).await;
    let expected = if proxy == Proxy::Nginx { 401 } else { 400 };
    assert_eq!(reply.status, expected, "{proxy:?}: {}", reply.body);
    assert!(
        reply
            .one("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"invalid_request\""),
        "{proxy:?}: {:?}",
        reply.headers
    );

    // A route no rule allows: 403, even with a good token.
    let reply = send(addr, "GET", "/admin", &[auth]).await;
    assert_eq!(reply.status, 403, "{proxy:?}");

    // Public routes need no token, and no identity header reaches the upstream there, whatever
    // the client sent (with or without a token).
    for headers in [with_forged(vec![]), with_forged(vec![auth])] {
        let reply = send(addr, "GET", "/public/logo.png", &headers).await;
        assert_eq!(reply.status, 200, "{proxy:?}: {}", reply.body);
        expected_upstream_requests += 1;
        let echoed = reply.echoed();
        for name in ["x-auth-subject", "x-auth-scopes", "x-auth-issuer"] {
            assert_eq!(
                seen_values(&echoed, name),
                Vec::<String>::new(),
                "{proxy:?}: {name} on a public route"
            );
        }
    }

    // Over the whole run: only the allowed requests reached the upstream, and no forged value
    // ever did.
    let all = seen.all();
    assert_eq!(all.len(), expected_upstream_requests, "{proxy:?}: {all:#?}");
    for record in &all {
        for name in ["x-auth-subject", "x-auth-scopes", "x-auth-issuer"] {
            for value in seen_values(record, name) {
                assert!(
                    !FORGED.iter().any(|(_, forged)| *forged == value),
                    "{proxy:?}: forged {name}: {value} reached the upstream"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_recipe() {
    let issuer = Issuer::new();
    let (jwtgate, _stop) = start_gateway("jwtgate-nginx.toml", &issuer).await;
    let (upstream, seen) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (nginx, addr) = start_nginx(dir.path(), jwtgate, upstream).await;
    check_recipe(Proxy::Nginx, addr, &issuer, &seen).await;
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_recipe() {
    let issuer = Issuer::new();
    let (jwtgate, _stop) = start_gateway("jwtgate-caddy.toml", &issuer).await;
    let (upstream, seen) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (caddy, addr) = start_caddy(dir.path(), jwtgate, upstream).await;
    check_recipe(Proxy::Caddy, addr, &issuer, &seen).await;
    drop(caddy);
}

/// Envoy's HTTP ext_authz check request, as its `ext_authz_http_impl.cc` builds it: the original
/// method, `path_prefix` + the original path and query, `Content-Length: 0`, and of the original
/// headers only `Authorization`, `Host` and the `allowed_headers` (here the `X-Original-*` ones
/// that the recipe's `header_mutation` filter sets).
async fn envoy_check(
    jwtgate: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("X-Original-URI", target),
        ("X-Original-Method", method),
        ("Content-Length", "0"),
    ];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    send(jwtgate, method, &format!("/auth{target}"), &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ext_authz_check_requests() {
    let issuer = Issuer::new();
    let (jwtgate, _stop) = start_gateway("jwtgate-envoy.toml", &issuer).await;
    let good = issuer.token(json!({}));

    let reply = envoy_check(jwtgate, "GET", "/api/users?page=2", Some(&good)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.one("x-auth-subject"), Some("auth0|alice"));
    assert_eq!(reply.one("x-auth-issuer"), Some(ISS));
    assert!(reply.one("x-auth-scopes").unwrap().contains("read:users"));

    let reply = envoy_check(jwtgate, "GET", "/api/users", None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.one("www-authenticate"), Some(CHALLENGE));

    let reply = envoy_check(jwtgate, "POST", "/api/users", Some(&good)).await;
    assert_eq!(reply.status, 403);
    assert!(reply
        .one("www-authenticate")
        .unwrap()
        .contains("scope=\"write:users\""));

    let reply = envoy_check(jwtgate, "GET", "/public/../api/users", None).await;
    assert_eq!(reply.status, 401, "dot segments");

    let reply = envoy_check(jwtgate, "GET", "/public/logo.png", None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.all("x-auth-subject").is_empty());

    let reply = envoy_check(jwtgate, "GET", "/admin", Some(&good)).await;
    assert_eq!(reply.status, 403);
}

#[test]
fn docs_show_the_tested_recipes() {
    let root = repo_root();
    for (page, files) in [
        ("nginx.md", &["jwtgate-nginx.toml", "nginx.conf"][..]),
        ("caddy.md", &["jwtgate-caddy.toml", "Caddyfile"][..]),
        ("envoy.md", &["jwtgate-envoy.toml", "envoy.yaml"][..]),
        ("proxy-mode.md", &["jwtgate-proxy.toml"][..]),
    ] {
        let text = std::fs::read_to_string(root.join("docs").join(page)).unwrap();
        for file in files {
            assert!(
                text.contains(&recipe(file)),
                "docs/{page} does not show docs/recipes/{file} as it is: copy the file into the page"
            );
        }
    }
}
