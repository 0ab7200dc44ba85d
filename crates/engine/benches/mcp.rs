//! What an MCP route's inspection costs on the request path, run by
//! `cargo bench -p jwtgate-engine --bench mcp`: the whole cached decision (a verified-token
//! cache hit) for a POST to an MCP route with a typical `tools/call` body — the first pass that
//! asks for the body and the second that checks it — against the same token on a plain route
//! (the baseline), and the JSON-RPC check alone for that body and for a 10-message batch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::Criterion;
use http::{HeaderMap, HeaderValue};
use jwtgate_engine::mcp::{McpRules, ProtectedResource, ResourceSection};
use jwtgate_engine::token_cache::TokenCache;
use jwtgate_engine::{
    build_policy, rules::parse_toml, Engine, FrontEnd, Inspection, IssuerSection, KeysSection,
    Outcome, RequestBody, RequestView, RouteSection, TokenInput, Unmatched,
};
use jwtgate_test_support::Issuer;
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

const RESOURCE: &str = "https://mcp.example.com/mcp";

#[derive(Deserialize)]
struct Config {
    issuers: Vec<IssuerSection>,
    routes: Vec<RouteSection>,
    resource: ResourceSection,
}

fn engine(issuer: &Issuer) -> (Engine, McpRules) {
    let toml = format!(
        r#"
[[issuers]]
issuer = "{}"
audiences = ["{RESOURCE}"]
jwks_file = "{}"

[resource]
resource = "{RESOURCE}"

[[routes]]
path = "/mcp"
mcp = true
scopes = ["mcp:use"]
tools = {{ delete_user = ["admin:users"], "*" = [] }}

[[routes]]
path = "/api/*"
scopes = ["mcp:use"]
"#,
        issuer.issuer(),
        issuer.jwks_file().display()
    );
    let config: Config = parse_toml(&toml, "bench.toml").unwrap();
    let resource = ProtectedResource::new(
        &config.resource,
        &config.issuers,
        &config.routes,
        false,
        "bench.toml",
    )
    .unwrap();
    let routes = resource.apply(&config.routes, "bench.toml").unwrap();
    let rules = McpRules::new(&routes[0]);
    let parts = build_policy(
        &config.issuers,
        &routes,
        Unmatched::Deny,
        &KeysSection::default(),
        "bench.toml",
        None,
    )
    .unwrap();
    let engine = Engine::new(parts.registry, parts.routes)
        .with_issuer_rules(parts.issuer_rules)
        .with_cache(TokenCache::new(1 << 20, Some(100), 300).expect("a cache"))
        .with_resource(resource);
    (engine, rules)
}

/// Polls once: the cached path never waits.
fn poll<F: Future>(future: F) -> F::Output {
    let future = std::pin::pin!(future);
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit never waits"),
    }
}

fn view<'a>(method: &'a str, target: &'a str, headers: &'a HeaderMap, now: i64) -> RequestView<'a> {
    RequestView {
        front: FrontEnd::Inline,
        origin: None,
        client_certificate: None,
        method,
        target,
        headers: headers.into(),
        token: TokenInput::FromRequest,
        now,
    }
}

/// The MCP POST as the proxy runs it: ask, then decide on the body.
fn mcp_post(engine: &Engine, headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let request = view("POST", "/mcp", headers, now);
    match poll(engine.decide_with_body(&request, RequestBody::Deferred)) {
        Inspection::ReadBody { .. } => {}
        other => panic!("{other:?}"),
    }
    matches!(
        poll(engine.decide_with_body(&request, RequestBody::Read(body))),
        Inspection::Decided(Outcome::Allow(_))
    )
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let now = jwtgate_test_support::now();
    let issuer = Issuer::new().at(now).with_audience(RESOURCE);
    let (engine, rules) = engine(&issuer);
    let token = issuer.token(json!({"scope": "mcp:use"}));
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let call = |id: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "list_users", "arguments": {"filter": "active", "limit": 50}}})
    };
    let body = serde_json::to_vec(&call(1)).unwrap();
    let batch = serde_json::to_vec(&(0..10).map(call).collect::<Vec<_>>()).unwrap();
    // Warm the cache, and check both paths allow.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plain = view("POST", "/api/users", &headers, now);
    assert!(matches!(
        runtime.block_on(engine.decide(&plain)),
        Outcome::Allow(_)
    ));
    assert!(mcp_post(&engine, &headers, &body, now));
    let verified = runtime
        .block_on(engine.verify(token.as_bytes(), now))
        .unwrap();
    let base = jwtgate_core::ScopeRequirement::all_of(["mcp:use"]);
    assert!(rules.check(&body, &base, &verified).is_ok());

    let mut group = criterion.benchmark_group("mcp");
    group.bench_function("decide_cached/plain_route", |b| {
        b.iter(|| matches!(poll(engine.decide(black_box(&plain))), Outcome::Allow(_)))
    });
    group.bench_function("decide_cached/mcp_tools_call", |b| {
        b.iter(|| mcp_post(&engine, black_box(&headers), black_box(&body), now))
    });
    group.bench_function("check/tools_call", |b| {
        b.iter(|| rules.check(black_box(&body), &base, &verified).is_ok())
    });
    group.bench_function("check/batch_of_10", |b| {
        b.iter(|| rules.check(black_box(&batch), &base, &verified).is_ok())
    });
    group.finish();
    criterion.final_summary();
}
