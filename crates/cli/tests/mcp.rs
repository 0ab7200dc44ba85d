//! jwtgate in front of an MCP server, with the real `@modelcontextprotocol/sdk` on both sides
//! (`crates/cli/e2e`, `npm ci` there; `bash scripts/test` does it): the SDK's `McpServer` over
//! Streamable HTTP behind `jwtgate serve --upstream`, unchanged, and the SDK's client in front.
//!
//! What must hold: the 401 names the RFC 9728 metadata and the metadata names the authorization
//! server; a token for the resource lists tools, calls a permitted one, reads a prompt, and the
//! session's SSE responses and `Mcp-Session-Id` pass through (the session ends with DELETE); a
//! tool needing another scope is 403 `insufficient_scope` with `scope=` and never reaches the
//! server; another user's token naming a session is 404 and never reaches the server; a token
//! for another resource is 401; bodies the server could read differently from
//! the gateway (not JSON-RPC, too large, content-encoded, duplicate members) are refused and never
//! forwarded; the token itself is never forwarded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::Algorithm;
use jwtgate_test_support::{free_port, Issuer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ISS: &str = "https://example.eu.auth0.com/";

mod e2e_support;

use e2e_support::{e2e_dir, require_node_and_sdk, IssuerProcess};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The SDK's MCP server, and every line it logged (one JSON object each).
struct McpServer {
    _child: Running,
    port: u16,
    log: Arc<Mutex<Vec<Value>>>,
}

impl McpServer {
    fn start() -> McpServer {
        require_node_and_sdk();
        let port = free_port();
        let mut child = Command::new("node")
            .arg("mcp-server.mjs")
            .arg(port.to_string())
            .current_dir(e2e_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is missing: install Node.js 20 or later");
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready, listening) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).unwrap_or(json!({ "raw": line }));
                if value.get("listening").is_some() {
                    let _ = ready.send(());
                }
                lines.lock().unwrap().push(value);
            }
        });
        listening
            .recv_timeout(Duration::from_secs(20))
            .expect("the MCP server did not start");
        McpServer {
            _child: Running(child),
            port,
            log,
        }
    }

    fn seen(&self, key: &str) -> Vec<Value> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|v| v.get(key).is_some())
            .cloned()
            .collect()
    }
}

struct Gateway {
    _process: jwtgate_test_support::process::Running,
    addr: SocketAddr,
    log: PathBuf,
}

/// `jwtgate serve` with `config`, once it listens on `addr` (15 s at most).
fn start_gateway(dir: &Path, config: &str, addr: SocketAddr) -> Gateway {
    let path = dir.join("jwtgate.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.join("jwtgate.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate"));
    command.args(["serve", "--config"]).arg(&path);
    let mut process =
        jwtgate_test_support::process::Running::spawn("jwtgate serve", command, log.clone());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(process.expect_listening(addr));
    Gateway {
        _process: process,
        addr,
        log,
    }
}

/// One raw HTTP/1.1 request; the status line, the headers (lower-case names) and the body.
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn post(addr: SocketAddr, token: &str, extra_headers: &str, body: &[u8]) -> (u16, String) {
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: application/json, text/event-stream\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let (status, headers, _) = raw(addr, &request);
    let challenge = headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (status, challenge)
}

struct Fixture {
    _dir: tempfile::TempDir,
    issuer: Issuer,
    server: McpServer,
    gateway: Gateway,
    resource: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let resource = format!("http://{addr}/mcp");
        let issuer = Issuer::new()
            .with_key(Algorithm::RS256, "mcp-key")
            .with_issuer(ISS)
            .with_audience(&resource);
        let server = McpServer::start();
        let config = format!(
            r#"
[server]
listen = "{addr}"

[[issuers]]
issuer = "{ISS}"
audiences = ["https://api.example.com"]
jwks_file = "{jwks}"

[resource]
resource = "{resource}"
resource_documentation = "https://docs.example.com/mcp"
max_body_bytes = 65536

[[routes]]
path = "/mcp"
mcp = true
scopes = ["mcp:use"]
tools = {{ delete_user = ["admin:users"] }}
resources = {{ "*" = ["docs:read"] }}

[proxy]
upstream = "http://127.0.0.1:{upstream}"
"#,
            jwks = issuer.jwks_file().display(),
            upstream = server.port,
        );
        let gateway = start_gateway(dir.path(), &config, addr);
        Fixture {
            _dir: dir,
            issuer,
            server,
            gateway,
            resource,
        }
    }

    fn token(&self, scopes: &str, audience: &str) -> String {
        self.issuer
            .token(json!({ "scope": scopes, "aud": audience }))
    }
}

#[test]
fn the_mcp_sdk_client_and_server_work_through_the_gateway_and_its_rules_hold() {
    let fixture = Fixture::new();
    let user = fixture.token("mcp:use", &fixture.resource);
    let bob = fixture
        .issuer
        .token(json!({ "scope": "mcp:use", "aud": fixture.resource, "sub": "auth0|bob" }));
    let admin = fixture.token("mcp:use admin:users docs:read", &fixture.resource);
    let other = fixture.token("mcp:use admin:users", "https://other.example.com/mcp");
    let run = Command::new("node")
        .arg("mcp-client.mjs")
        .arg(&fixture.resource)
        .env("USER_TOKEN", &user)
        .env("OTHER_USER_TOKEN", &bob)
        .env("ADMIN_TOKEN", &admin)
        .env("OTHER_RESOURCE_TOKEN", &other)
        .current_dir(e2e_dir())
        .output()
        .expect("node is missing: install Node.js 20 or later");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the MCP client failed: {}\n{stdout}\ngateway log:\n{}",
        String::from_utf8_lossy(&run.stderr),
        std::fs::read_to_string(&fixture.gateway.log).unwrap_or_default()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        fixture.gateway.addr
    );

    // Discovery: the 401 names the metadata (and the route's scope); the metadata names the AS.
    assert_eq!(result["unauthenticated"]["status"], 401, "{result}");
    let challenge = result["unauthenticated"]["challenge"].as_str().unwrap();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:use\""), "{challenge}");
    let metadata = &result["metadata"];
    assert_eq!(metadata["resource"], fixture.resource.as_str(), "{result}");
    assert_eq!(metadata["authorization_servers"], json!([ISS]));
    assert_eq!(
        metadata["scopes_supported"],
        json!(["admin:users", "docs:read", "mcp:use"])
    );
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    assert_eq!(
        metadata["resource_documentation"],
        "https://docs.example.com/mcp"
    );
    // DPoP is allowed by default: the metadata says which proofs, and that it is optional.
    assert!(metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("ES256")));
    assert_eq!(metadata["dpop_bound_access_tokens_required"], false);

    // A user: tools, a permitted call, a prompt; the session passed and ended with DELETE.
    assert_eq!(result["tools"], json!(["delete_user", "list_users"]));
    assert_eq!(result["list_users"], "[\"alice\",\"bob\"]");
    assert_eq!(result["prompt"], "hello");
    assert!(result["session"].is_string(), "{result}");
    assert_eq!(result["terminated"], true);
    let http = fixture.server.seen("http");
    assert!(
        http.iter().any(|r| r["http"] == "DELETE"),
        "the DELETE never reached the server: {http:?}"
    );
    assert!(
        http.iter()
            .filter(|r| r["http"] == "POST" && r["session"].is_string())
            .count()
            >= 3,
        "Mcp-Session-Id did not pass: {http:?}"
    );
    // The token is never forwarded; the verified identity is.
    assert!(
        http.iter().all(|r| r["authorization"].is_null()),
        "{http:?}"
    );
    assert!(http
        .iter()
        .all(|r| r["subject"].is_null() || r["subject"] == "auth0|alice"));

    // Another user's token cannot drive alice's session: 404, as for a session that does not
    // exist, and the server never sees the request.
    assert_eq!(result["hijack"]["status"], 404, "{result}");
    assert!(http.iter().all(|r| r["body"]
        .as_str()
        .is_none_or(|body| !body.contains("\"id\":10"))));

    // A tool needing admin:users: 403 with every scope the call needs, never forwarded.
    assert_eq!(result["user_delete"]["code"], 403, "{result}");
    assert!(
        result["user_delete"]["error"]
            .as_str()
            .unwrap()
            .contains("insufficient_scope"),
        "{result}"
    );
    assert_eq!(result["user_delete_http"]["status"], 403);
    let refused = result["user_delete_http"]["challenge"].as_str().unwrap();
    assert!(
        refused.contains("error=\"insufficient_scope\""),
        "{refused}"
    );
    assert!(
        refused.contains("scope=\"mcp:use admin:users\""),
        "{refused}"
    );
    assert!(refused.contains("resource_metadata="), "{refused}");
    let deletes = fixture.server.seen("tool");
    assert_eq!(
        deletes
            .iter()
            .filter(|t| t["tool"] == "delete_user")
            .count(),
        1,
        "only the administrator's delete_user reached the server: {deletes:?}"
    );
    assert_eq!(result["admin_delete"], "deleted bob");
    assert_eq!(result["admin_read"], "read me");

    // A token for another resource: 401.
    assert_eq!(result["other_resource"]["code"], 401, "{result}");
    assert!(
        result["other_resource"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid_token"),
        "{result}"
    );
}

#[test]
fn bodies_the_server_could_read_differently_are_refused_and_never_forwarded() {
    let fixture = Fixture::new();
    let admin = fixture.token("mcp:use admin:users docs:read", &fixture.resource);
    let addr = fixture.gateway.addr;
    let json = "Content-Type: application/json\r\n";
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
        )
    };
    let before = fixture.server.seen("http").len();
    // Not JSON-RPC, or ambiguous: 400.
    for body in [
        "not json".to_owned(),
        "[]".to_owned(),
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#.to_owned(),
        // Two names: the gateway and the server must not each pick a different one.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_user"}}"#.to_owned(),
    ] {
        let (status, challenge) = post(addr, &admin, json, body.as_bytes());
        assert_eq!(status, 400, "{body}: {challenge}");
        assert!(challenge.contains("invalid_request"), "{challenge}");
    }
    // Another media type, or an encoding: the server would read other bytes than we checked.
    let (status, _) = post(
        addr,
        &admin,
        "Content-Type: text/plain\r\n",
        call("list_users").as_bytes(),
    );
    assert_eq!(status, 400);
    // UTF-7: servers that decode with the declared charset (the SDK's SSE transport, Express's
    // body parser) read "+AGQ-elete_user" as "delete_user".
    let utf7 = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"+AGQ-elete_user","arguments":{"name":"bob"}}}"#;
    let user = fixture.token("mcp:use", &fixture.resource);
    let (status, _) = post(
        addr,
        &user,
        "Content-Type: application/json; charset=utf-7\r\n",
        utf7.as_bytes(),
    );
    assert_eq!(status, 400);
    let (status, _) = post(
        addr,
        &admin,
        "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
        call("list_users").as_bytes(),
    );
    assert_eq!(status, 400);
    // Over the inspection limit: 413.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"list_users","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(70_000)
    );
    let (status, _) = post(addr, &admin, json, big.as_bytes());
    assert_eq!(status, 413);
    // A batch passes only when every element does.
    let batch = format!("[{},{}]", call("list_users"), call("delete_user"));
    let (status, challenge) = post(addr, &user, json, batch.as_bytes());
    assert_eq!(status, 403, "{challenge}");
    // A body on another method than POST.
    let request = format!(
        "DELETE /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    assert_eq!(raw(addr, request.as_bytes()).0, 400);
    assert_eq!(
        fixture.server.seen("http").len(),
        before,
        "a refused request reached the MCP server"
    );
    // A permitted call with the same headers does reach it (the refusals above were the rules).
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let (status, _) = post(addr, &admin, json, initialize.as_bytes());
    assert_eq!(status, 200);
    assert!(fixture.server.seen("http").len() > before);
    // The metadata is public, cacheable and readable from any origin, at both paths.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let (status, headers, body) = raw(addr, request.as_bytes());
        assert_eq!(status, 200, "{path}");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("access-control-allow-origin"), Some("*"));
        assert!(header("cache-control").unwrap().contains("max-age"));
        let document: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(document["resource"], fixture.resource.as_str());
    }
}

#[test]
fn the_one_line_mcp_mode_fronts_an_unchanged_server() {
    let server = McpServer::start();
    let provider = jwtgate_test_support::JwksServer::start(&Issuer::new().jwks());
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let resource = format!("http://{addr}/mcp");
    let issuer = Issuer::new()
        .with_issuer(&provider.issuer())
        .with_audience(&resource);
    provider.set_jwks(&issuer.jwks());
    let child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(["serve", "--mcp", "--listen", &addr.to_string()])
        .args(["--upstream", &format!("http://127.0.0.1:{}", server.port)])
        .args(["--issuer", &provider.issuer()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _gateway = Running(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "jwtgate is not listening");
        std::thread::sleep(Duration::from_millis(25));
    }
    let request = format!(
        "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = raw(addr, request.as_bytes());
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["resource"], resource.as_str());
    assert_eq!(
        document["authorization_servers"],
        json!([provider.issuer()])
    );
    // The issuer's tokens are for the resource; one passes, one for another API does not.
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let json = "Content-Type: application/json\r\n";
    let token = issuer.token(json!({}));
    assert_eq!(post(addr, &token, json, initialize.as_bytes()).0, 200);
    let other = issuer.token(json!({"aud": "https://api.example.com"}));
    let (status, challenge) = post(addr, &other, json, initialize.as_bytes());
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // Every other path is refused: the MCP endpoint is the only route.
    let request = format!("GET /admin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(addr, request.as_bytes()).0, 403);
}

/// The whole loop, nothing configured in the client but the MCP URL: the SDK's client with its
/// own OAuth provider discovers the authorization server from the gateway's 401, registers,
/// signs alice in at `jwtgate issuer` with PKCE and the resource, and calls tools through
/// `jwtgate serve --mcp`; a tool alice lacks the scope for is 403 with `scope=`, the SDK steps
/// up (a second authorization asking for that scope), the issuer cannot grant it, and the call
/// stays refused; a user holding the permission passes at once.
#[test]
fn the_sdk_client_discovers_registers_signs_in_and_calls_tools_through_the_gateway() {
    let server = McpServer::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let resource = format!("http://{addr}/mcp");
    let dir = tempfile::tempdir().unwrap();
    let issuer_config = dir.path().join("issuer.toml");
    std::fs::write(
        &issuer_config,
        format!(
            r#"
[[apis]]
identifier = "{resource}"
permissions = ["mcp:use", "admin:users"]

[[users]]
username = "alice"
name = "Alice Example"
email = "alice@example.com"

[users.permissions]
"{resource}" = ["mcp:use"]

[[users]]
username = "root"
name = "Root Example"
email = "root@example.com"

[users.permissions]
"{resource}" = ["mcp:use", "admin:users"]
"#
        ),
    )
    .unwrap();
    let issuer = IssuerProcess::start(&issuer_config);
    let gateway_config = format!(
        r#"
[server]
listen = "{addr}"

[[issuers]]
issuer = "{iss}"
audiences = ["{resource}"]

[resource]
resource = "{resource}"

[[routes]]
path = "/mcp"
mcp = true
scopes = ["mcp:use"]
tools = {{ delete_user = ["admin:users"] }}

[proxy]
upstream = "http://127.0.0.1:{upstream}"
"#,
        iss = issuer.url,
        upstream = server.port,
    );
    let gateway = start_gateway(dir.path(), &gateway_config, addr);
    let client = |user: &str| -> Value {
        let run = Command::new("node")
            .args(["mcp-oauth-client.mjs", &resource, user])
            .current_dir(e2e_dir())
            .output()
            .expect("node is missing: install Node.js 20 or later");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "the MCP client failed: {}\n{stdout}\ngateway log:\n{}",
            String::from_utf8_lossy(&run.stderr),
            std::fs::read_to_string(&gateway.log).unwrap_or_default()
        );
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    let result = client("alice");
    // Registered, signed in with PKCE S256 for the resource; the token is for the resource alone.
    assert!(
        result["client_id"].as_str().unwrap().starts_with("dcr-"),
        "{result}"
    );
    let first = &result["authorizations"][0];
    assert_eq!(first["resource"], resource.as_str(), "{result}");
    assert_eq!(first["code_challenge_method"], "S256");
    assert_eq!(result["token_claims"]["aud"], resource.as_str());
    assert_eq!(result["token_claims"]["iss"], issuer.url.as_str());
    assert_eq!(result["tools"], json!(["delete_user", "list_users"]));
    assert_eq!(result["list_users"], "[\"alice\",\"bob\"]");
    // The step-up: the SDK asked again for what the 403 named, and stays refused.
    let authorizations = result["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 2, "{result}");
    assert_eq!(authorizations[1]["scope"], "mcp:use admin:users");
    assert_eq!(
        result["stepped_up_scope"], "mcp:use",
        "the issuer grants alice no admin:users: {result}"
    );
    assert_eq!(result["delete_user"]["code"], 403, "{result}");
    assert!(
        result["delete_user"]["error"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{result}"
    );
    assert!(server
        .seen("tool")
        .iter()
        .all(|t| t["tool"] != "delete_user"));
    // A user who holds admin:users: as with Auth0's RBAC, the token's `permissions` carry every
    // permission of the user for the API (its `scope` only what was asked), so the call passes
    // without a step-up.
    let result = client("root");
    assert_eq!(result["token_claims"]["scope"], "mcp:use", "{result}");
    assert_eq!(
        result["token_claims"]["permissions"],
        json!(["mcp:use", "admin:users"])
    );
    assert_eq!(result["delete_user"], "allowed", "{result}");
    assert_eq!(result["authorizations"].as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .seen("tool")
            .iter()
            .filter(|t| t["tool"] == "delete_user")
            .count(),
        1
    );
}
