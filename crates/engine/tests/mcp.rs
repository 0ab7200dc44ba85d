//! MCP routes through the engine (`Engine::decide_with_body`): the resource's canonical URI and
//! metadata, the audience rule, the body asked for only after the token passed, the JSON-RPC
//! rules by method, tool, prompt and resource, and what a front end without the body gets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderValue};
use jwtgate_engine::mcp::{ProtectedResource, ResourceSection};
use jwtgate_engine::token_cache::TokenCache;
use jwtgate_engine::{
    build_policy, rules::parse_toml, ConfigError, Engine, FrontEnd, Inspection, IssuerSection,
    KeysSection, Outcome, RequestBody, RequestView, RouteSection, TokenInput, Unmatched,
};
use jwtgate_test_support::Issuer;
use serde::Deserialize;
use serde_json::json;

const ISS: &str = "https://issuer.example/";
const RESOURCE: &str = "https://mcp.example.com/mcp";

#[derive(Deserialize)]
struct Config {
    issuers: Vec<IssuerSection>,
    #[serde(default)]
    routes: Vec<RouteSection>,
    resource: Option<ResourceSection>,
}

fn engine_for(toml: &str) -> Result<Engine, ConfigError> {
    let config: Config = parse_toml(toml, "test.toml")?;
    let resource = config
        .resource
        .as_ref()
        .map(|r| ProtectedResource::new(r, &config.issuers, &config.routes, false, "test.toml"))
        .transpose()?;
    let routes = match &resource {
        Some(resource) => resource.apply(&config.routes, "test.toml")?,
        None => config.routes.clone(),
    };
    let parts = build_policy(
        &config.issuers,
        &routes,
        Unmatched::resolve(None, true),
        &KeysSection::default(),
        "test.toml",
        None,
    )?;
    let mut engine = Engine::new(parts.registry, parts.routes)
        .with_issuer_rules(parts.issuer_rules)
        .with_cache(TokenCache::new(1 << 20, Some(100), 300).unwrap());
    if let Some(resource) = resource {
        engine = engine.with_resource(resource);
    }
    Ok(engine)
}

fn issuer() -> Issuer {
    Issuer::new().with_issuer(ISS).with_audience(RESOURCE)
}

fn config(issuer: &Issuer, route_extra: &str) -> String {
    format!(
        r#"
[[issuers]]
issuer = "{ISS}"
audiences = ["https://api.example.com"]
jwks_file = "{}"

[resource]
resource = "{RESOURCE}"
max_body_bytes = 4096

[[routes]]
path = "/mcp"
mcp = true
scopes = ["mcp:use"]
{route_extra}

[[routes]]
path = "/api/*"
"#,
        issuer.jwks_file().display()
    )
}

const RULES: &str = r#"tools = { delete_user = ["admin:users"], "*" = ["tools:other"] }
prompts = { secret = ["prompts:secret"] }
resources = { "docs://private" = ["docs:private"] }
rpc_methods = { "logging/setLevel" = ["admin:logs"] }"#;

/// What the engine answers a POST to `/mcp` with `body` (asked for when it wants it).
async fn post(engine: &Engine, token: &str, body: &[u8]) -> (u16, String, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let view = RequestView {
        front: FrontEnd::Inline,
        origin: None,
        method: "POST",
        target: "/mcp",
        headers: (&headers).into(),
        token: TokenInput::FromRequest,
        client_certificate: None,
        now: jwtgate_test_support::now(),
    };
    let mut inspection = engine.decide_with_body(&view, RequestBody::Deferred).await;
    if let Inspection::ReadBody { limit } = inspection {
        let read = if body.len() > limit {
            RequestBody::TooLarge
        } else {
            RequestBody::Read(body)
        };
        inspection = engine.decide_with_body(&view, read).await;
    }
    match inspection {
        Inspection::Decided(Outcome::Allow(_)) => (200, String::new(), String::new()),
        Inspection::Decided(Outcome::Deny(denial)) => (
            denial.status(),
            denial.challenge(),
            denial.description().to_owned(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// A POST to `/mcp` with `headers`.
fn view(headers: &HeaderMap) -> RequestView<'_> {
    RequestView {
        front: FrontEnd::Inline,
        origin: None,
        method: "POST",
        target: "/mcp",
        headers: headers.into(),
        token: TokenInput::FromRequest,
        client_certificate: None,
        now: jwtgate_test_support::now(),
    }
}

fn call(method: &str, params: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .unwrap()
}

#[tokio::test]
async fn calls_need_the_scopes_of_their_method_tool_prompt_and_resource() {
    let issuer = issuer();
    let engine = engine_for(&config(&issuer, RULES)).unwrap();
    let user = issuer.token(json!({"scope": "mcp:use"}));
    let tool = |name: &str| call("tools/call", json!({"name": name, "arguments": {}}));
    assert_eq!(
        post(&engine, &user, &call("tools/list", json!({}))).await.0,
        200
    );
    let (status, challenge, description) = post(&engine, &user, &tool("delete_user")).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("scope=\"mcp:use admin:users\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    assert_eq!(description, "tool \"delete_user\" needs scope admin:users");
    // A tool not listed takes "*".
    assert_eq!(post(&engine, &user, &tool("anything")).await.0, 403);
    let admin = issuer.token(json!({"scope": "mcp:use admin:users"}));
    assert_eq!(post(&engine, &admin, &tool("delete_user")).await.0, 200);
    assert_eq!(post(&engine, &admin, &tool("anything")).await.0, 403);
    let prompt = call("prompts/get", json!({"name": "secret"}));
    assert_eq!(post(&engine, &user, &prompt).await.0, 403);
    let public_prompt = call("prompts/get", json!({"name": "hello"}));
    assert_eq!(post(&engine, &user, &public_prompt).await.0, 200);
    let read = call("resources/read", json!({"uri": "docs://private"}));
    assert_eq!(post(&engine, &user, &read).await.0, 403);
    let method = call("logging/setLevel", json!({"level": "debug"}));
    assert_eq!(post(&engine, &user, &method).await.0, 403);
    // A batch passes only when every element does; a response to the server passes.
    let batch = format!(
        "[{},{}]",
        String::from_utf8(call("tools/list", json!({}))).unwrap(),
        String::from_utf8(tool("delete_user")).unwrap()
    );
    assert_eq!(post(&engine, &user, batch.as_bytes()).await.0, 403);
    let answer = br#"{"jsonrpc":"2.0","id":"s-1","result":{"action":"accept"}}"#;
    assert_eq!(post(&engine, &user, answer).await.0, 200);
    let null_result = br#"{"jsonrpc":"2.0","id":7,"result":null}"#;
    assert_eq!(post(&engine, &user, null_result).await.0, 200);
}

#[tokio::test]
async fn bodies_that_are_not_unambiguous_json_rpc_are_refused() {
    let issuer = issuer();
    let engine = engine_for(&config(&issuer, RULES)).unwrap();
    let admin = issuer.token(json!({"scope": "mcp:use admin:users tools:other"}));
    for body in [
        &b"not json"[..],
        b"[]",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"method\":\"tools/call\"}",
        b"{\"id\":1,\"method\":\"tools/list\"}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"tools/list\"}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":7}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":[\"delete_user\"]}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":{}}",
        b"\xff",
        // Bytes that are not UTF-8 in a member the rules do not read.
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_users\",\"arguments\":{\"q\":\"\xff\"}}}",
        // A message, or its params, as an array: members by position are not what the server reads.
        b"[[\"2.0\",1,\"tools/call\",{\"name\":\"list_users\"}]]",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"name\":\"delete_user\"}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"params\":{\"name\":\"delete_user\"}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"} trailing",
    ] {
        let (status, challenge, _) = post(&engine, &admin, body).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        assert!(challenge.contains("invalid_request"), "{challenge}");
    }
    let big = vec![b' '; 5000];
    assert_eq!(post(&engine, &admin, &big).await.0, 413);
}

#[tokio::test]
async fn the_body_is_asked_for_only_after_the_token_passed_and_only_where_it_can_be_read() {
    let issuer = issuer();
    let engine = engine_for(&config(&issuer, RULES)).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // No token: refused at once, with the metadata and the route's scope, no body read.
    match engine
        .decide_with_body(&view(&headers), RequestBody::Deferred)
        .await
    {
        Inspection::Decided(Outcome::Deny(denial)) => {
            assert_eq!(denial.status(), 401);
            assert_eq!(
                denial.challenge(),
                "Bearer realm=\"jwtgate\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:use\""
            );
        }
        other => panic!("{other:?}"),
    }
    // A token for another audience: refused before the body too.
    let other = issuer.token(json!({"scope": "mcp:use", "aud": "https://api.example.com"}));
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {other}")).unwrap(),
    );
    match engine
        .decide_with_body(&view(&headers), RequestBody::Deferred)
        .await
    {
        Inspection::ReadBody { .. } => {}
        other => panic!("a genuine token gets the body read: {other:?}"),
    }
    match engine
        .decide_with_body(
            &view(&headers),
            RequestBody::Read(&call("tools/list", json!({}))),
        )
        .await
    {
        Inspection::Decided(Outcome::Deny(denial)) => {
            assert_eq!(denial.status(), 401, "{}", denial.description());
        }
        other => panic!("{other:?}"),
    }
    // The issuer's own audience still passes its other routes.
    let mut api = HeaderMap::new();
    api.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {other}")).unwrap(),
    );
    let get = RequestView {
        method: "GET",
        target: "/api/users",
        ..view(&api)
    };
    assert!(matches!(engine.decide(&get).await, Outcome::Allow(_)));
    // A front end without the body refuses an MCP POST, even with a good token.
    let user = issuer.token(json!({"scope": "mcp:use"}));
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {user}")).unwrap(),
    );
    match engine.decide(&view(&headers)).await {
        Outcome::Deny(denial) => assert_eq!(denial.kind(), "mcp_body_unavailable"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_resource_uri_must_be_canonical_and_an_mcp_route_needs_it() {
    let issuer = issuer();
    for (uri, fragment) in [
        (
            "https://MCP.example.com/mcp",
            "\"https://mcp.example.com/mcp\"",
        ),
        (
            "https://mcp.example.com:443/mcp",
            "\"https://mcp.example.com/mcp\"",
        ),
        (
            "https://mcp.example.com/mcp/",
            "\"https://mcp.example.com/mcp\"",
        ),
        ("https://mcp.example.com/mcp#x", "fragment"),
        ("https://mcp.example.com/mcp?x=1", "query"),
        ("http://mcp.example.com/mcp", "loopback"),
    ] {
        let text = config(&issuer, "").replace(RESOURCE, uri);
        let error = engine_for(&text).unwrap_err().to_string();
        assert!(error.contains(fragment), "{uri}: {error}");
    }
    assert!(
        engine_for(&config(&issuer, "").replace(RESOURCE, "http://127.0.0.1:8080/mcp")).is_ok()
    );
    // Without [resource], an MCP route has no audience: a configuration error.
    let text = config(&issuer, "").replace(
        &format!("[resource]\nresource = \"{RESOURCE}\"\nmax_body_bytes = 4096\n"),
        "",
    );
    let error = engine_for(&text).unwrap_err().to_string();
    assert!(error.contains("needs [resource]"), "{error}");
    // MCP rules on a route that is not MCP.
    let text = config(&issuer, "").replace("mcp = true\n", "tools = { x = [\"y\"] }\n");
    let error = engine_for(&text).unwrap_err().to_string();
    assert!(error.contains("add mcp = true"), "{error}");
    // Other audiences on an MCP route.
    let error = engine_for(&config(
        &issuer,
        "audiences = [\"https://api.example.com\"]",
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("RFC 8707"), "{error}");
}

#[test]
fn the_metadata_document_names_the_resource_and_its_servers() {
    let issuer = issuer();
    let config: Config = parse_toml(&config(&issuer, RULES), "test.toml").unwrap();
    let resource = ProtectedResource::new(
        config.resource.as_ref().unwrap(),
        &config.issuers,
        &config.routes,
        true,
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        resource.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        resource.metadata_paths(),
        [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp"
        ]
    );
    let document: serde_json::Value = serde_json::from_str(&resource.document()).unwrap();
    assert_eq!(
        document,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [ISS],
            "scopes_supported": ["admin:logs", "admin:users", "docs:private", "mcp:use", "prompts:secret", "tools:other"],
            "bearer_methods_supported": ["header", "query"],
        })
    );
    let root = ProtectedResource::new(
        &ResourceSection::new("https://mcp.example.com"),
        &config.issuers,
        &[],
        false,
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        root.audiences(),
        ["https://mcp.example.com", "https://mcp.example.com/"]
    );
    assert_eq!(
        root.metadata_paths(),
        ["/.well-known/oauth-protected-resource"]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One engine for every case (keys from a file, no network).
    fn fixture() -> &'static (Issuer, Engine) {
        static FIXTURE: std::sync::OnceLock<(Issuer, Engine)> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let issuer = issuer();
            let engine = engine_for(&config(&issuer, RULES)).unwrap();
            (issuer, engine)
        })
    }

    fn decide(token: &str, body: &[u8]) -> u16 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(post(&fixture().1, token, body)).0
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary bytes are refused or allowed, never a panic; anything allowed is JSON-RPC.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let token = fixture().0.token(json!({"scope": "mcp:use admin:users tools:other prompts:secret docs:private admin:logs"}));
            let status = decide(&token, &body);
            prop_assert!(matches!(status, 200 | 400 | 403 | 413), "{status}");
            if status == 200 {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
            }
        }

        /// A tools/call passes exactly when the token holds the tool's scopes (the route's
        /// `mcp:use`, then the tool's own or the `"*"` entry's).
        #[test]
        fn tool_calls_pass_exactly_with_their_scopes(
            tool in prop_oneof![Just("delete_user".to_owned()), Just("list_users".to_owned()), "[a-z_]{1,12}"],
            granted in proptest::sample::subsequence(vec!["mcp:use", "admin:users", "tools:other"], 0..=3),
        ) {
            let token = fixture().0.token(json!({"scope": granted.join(" ")}));
            let body = call("tools/call", json!({"name": tool, "arguments": {}}));
            let needed: &[&str] = if tool == "delete_user" { &["mcp:use", "admin:users"] } else { &["mcp:use", "tools:other"] };
            let expected = if needed.iter().all(|s| granted.contains(s)) { 200 } else { 403 };
            prop_assert_eq!(decide(&token, &body), expected);
        }
    }
}
