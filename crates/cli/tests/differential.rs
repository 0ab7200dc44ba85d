//! Every front end decides the same: one corpus of requests (methods, paths with dot segments
//! and encodings, missing, duplicate and malformed tokens, wrong issuer or audience, expired,
//! tampered, ID and opaque tokens, tokens short of a scope, public and unmatched routes) goes
//! through the gateway's forward-auth endpoint, the gateway in proxy mode, the tower layer in an
//! axum service, Envoy's gRPC ext_authz `Check`, and the Lambda authorizer with REST `REQUEST` and
//! HTTP API 2.0 events — all
//! configured from one TOML file. For each request, every front end must reach the same
//! (decision, status, reason) — read from each engine's counters — and answer in its own
//! protocol exactly as that outcome says (HTTP status; `denied_response` status; `Allow`/`Deny`/
//! `Unauthorized`).
//!
//! Not in the corpus, because they differ by design and are tested where they are rendered: the
//! header checks only a front end that forwards the request can make (client spellings of
//! identity headers, `Connection`, method overrides: `crates/http/tests/header_hygiene.rs`),
//! and REST `TOKEN` events, which carry no path rules' input but the token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::routing::any;
use axum::Router;
use jwtgate_core::Algorithm;
use jwtgate_http::config::GatewayConfig;
use jwtgate_http::proxy::ProxyOptions;
use jwtgate_http::{server, AuthLayer, Engine};
use jwtgate_lambda::{Authorizer, LambdaConfig};
use jwtgate_test_support::{Issuer, AUDIENCE as AUD, ISSUER as ISS};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

const ARN_PREFIX: &str = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod";

/// (decision, status, reason), as the engine counts it.
type Label = (&'static str, u16, &'static str);

/// The one configuration every front end is built from.
fn shared_toml(jwks: &str) -> String {
    format!(
        r#"
        [[issuers]]
        issuer = "{ISS}"
        audiences = ["{AUD}"]
        jwks_file = "{jwks}"

        [[routes]]
        methods = ["GET", "HEAD"]
        path = "/api/users"
        scopes = ["read:users"]

        [[routes]]
        methods = ["POST"]
        path = "/api/users"
        scopes = ["write:users"]

        [[routes]]
        methods = ["GET"]
        path = "/api/users/{{id}}"
        scopes = ["read:users"]

        [[routes]]
        methods = ["DELETE"]
        path = "/api/users/{{id}}"
        scopes = ["admin:users", "write:users"]
        any = true

        [[routes]]
        path = "/public/*"
        public = true
        "#
    )
}

struct Tokens {
    reader: String,
    writer: String,
    expired: String,
    wrong_audience: String,
    wrong_issuer: String,
    tampered: String,
    id_token: String,
    unknown_key: String,
}

fn tokens(issuer: &Issuer) -> Tokens {
    let reader = issuer.token(json!({}));
    // One signature character changed (not the last: its low bits must stay canonical).
    let mut tampered: Vec<char> = reader.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let stranger = Issuer::new().with_key(Algorithm::ES256, "k2");
    Tokens {
        writer: issuer.token(json!({"permissions": ["read:users", "write:users"]})),
        expired: issuer.expired(),
        wrong_audience: issuer.token(json!({"aud": "https://other.example/"})),
        wrong_issuer: issuer.token(json!({"iss": "https://evil.example/"})),
        id_token: issuer.id_token("Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF", json!({})),
        unknown_key: stranger.token(json!({})),
        tampered: tampered.into_iter().collect(),
        reader,
    }
}

/// One request of the corpus: method, target, `Authorization` values, and what every front end
/// must decide.
struct Case {
    method: &'static str,
    target: String,
    authorization: Vec<String>,
    expected: Label,
}

fn corpus(t: &Tokens) -> Vec<Case> {
    let bearer = |token: &str| vec![format!("Bearer {token}")];
    let case = |method, target: &str, authorization: Vec<String>, expected| Case {
        method,
        target: target.to_owned(),
        authorization,
        expected,
    };
    let allowed = ("allow", 200, "verified");
    let public = ("allow", 200, "public");
    let missing = ("deny", 401, "missing_token");
    let scope = ("deny", 403, "insufficient_scope");
    let no_route = ("deny", 403, "no_route");
    let bad_request = ("deny", 400, "invalid_request");
    vec![
        case("GET", "/api/users", bearer(&t.reader), allowed),
        case("HEAD", "/api/users", bearer(&t.reader), allowed),
        case("GET", "/api/users/42", bearer(&t.reader), allowed),
        case("POST", "/api/users", bearer(&t.writer), allowed),
        case("POST", "/api/users", bearer(&t.reader), scope),
        case("DELETE", "/api/users/42", bearer(&t.writer), allowed),
        case("DELETE", "/api/users/42", bearer(&t.reader), scope),
        case("GET", "/api/users", vec![], missing),
        case(
            "GET",
            "/api/users",
            vec!["Basic dXNlcjpwdw==".into()],
            missing,
        ),
        case("GET", "/api/users", vec!["Bearer".into()], bad_request),
        case("GET", "/api/users", vec!["Bearer a b".into()], bad_request),
        case(
            "GET",
            "/api/users",
            vec![
                format!("Bearer {}", t.reader),
                format!("Bearer {}", t.writer),
            ],
            bad_request,
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.expired),
            ("deny", 401, "expired"),
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.wrong_audience),
            ("deny", 401, "audience_mismatch"),
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.wrong_issuer),
            ("deny", 401, "issuer_mismatch"),
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.tampered),
            ("deny", 401, "bad_signature"),
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.id_token),
            ("deny", 401, "id_token"),
        ),
        case(
            "GET",
            "/api/users",
            bearer(&t.unknown_key),
            ("deny", 401, "no_key"),
        ),
        case(
            "GET",
            "/api/users",
            bearer("an-opaque-token"),
            ("deny", 401, "opaque_token"),
        ),
        case("GET", "/public/logo.png", vec![], public),
        case("GET", "/public/logo.png", bearer(&t.expired), public),
        case("GET", "/admin", bearer(&t.writer), no_route),
        case("PUT", "/api/users", bearer(&t.writer), no_route),
        // Dot segments and encodings resolve before routes are matched.
        case("GET", "/public/../api/users", vec![], missing),
        case("POST", "/public/%2e%2e/api/users", bearer(&t.reader), scope),
        case("GET", "/api/%75sers", bearer(&t.reader), allowed),
        case("GET", "//api///users/./", bearer(&t.reader), allowed),
        case("GET", "/api/users/42/..", bearer(&t.reader), allowed),
        case(
            "GET",
            "/api/users/42/../../admin",
            bearer(&t.writer),
            no_route,
        ),
        // Paths a server behind jwtgate could read differently are refused.
        case("GET", "/public/..%2Fapi%2Fadmin", vec![], bad_request),
        case(
            "GET",
            "/api/users/..%2fadmin",
            bearer(&t.reader),
            bad_request,
        ),
        case("GET", "/public/..%252Fapi", vec![], bad_request),
        case("GET", "/public/..;/api/users", vec![], bad_request),
        case("GET", "/public/%c0%ae%c0%ae/api/users", vec![], bad_request),
        case("GET", "/public/%00", vec![], bad_request),
    ]
}

/// What one engine counted since `before`: exactly one decision.
fn counted(engine: &Engine, before: &BTreeMap<Label, u64>) -> Label {
    let now = engine.metrics().decisions();
    let changed: Vec<Label> = now
        .iter()
        .filter(|(label, count)| before.get(*label).copied().unwrap_or(0) < **count)
        .map(|(label, _)| *label)
        .collect();
    assert_eq!(changed.len(), 1, "one decision per request: {changed:?}");
    changed[0]
}

/// A raw HTTP/1.1 exchange: the status.
async fn status_of(addr: SocketAddr, head: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}Host: gw\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

fn authorization_lines(case: &Case) -> String {
    case.authorization
        .iter()
        .map(|value| format!("Authorization: {value}\r\n"))
        .collect()
}

async fn start_gateway(config: &GatewayConfig) -> (SocketAddr, Arc<Engine>) {
    let built = config.build("differential.toml").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = server::spawn(&built, listener, None, std::future::pending())
        .await
        .unwrap();
    (gateway.addr, built.engine)
}

async fn start_upstream() -> SocketAddr {
    let app = Router::new().fallback(any(|| async { "upstream\n" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Envoy's gRPC ext_authz check for a case, with the headers as Envoy sends them with
/// `encode_raw_headers` (repeated ones kept), and the HTTP status its answer gives the client.
async fn ext_authz_status(engine: &Engine, case: &Case) -> u16 {
    use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
    let headers = case
        .authorization
        .iter()
        .map(|value| HeaderValue {
            key: "authorization".into(),
            raw_value: value.as_bytes().to_vec(),
            ..HeaderValue::default()
        })
        .collect();
    let http = HttpRequest {
        method: case.method.into(),
        path: case.target.clone(),
        header_map: Some(HeaderMap { headers }),
        ..HttpRequest::default()
    };
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(http),
            }),
            ..AttributeContext::default()
        }),
    };
    let answer = jwtgate_grpc::check::check(engine, &request, Default::default()).await;
    match answer.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(denied)) => {
            u16::try_from(denied.status.unwrap().code).unwrap()
        }
        other => panic!("no answer: {other:?}"),
    }
}

/// The HTTP status a gateway front end must answer for a label.
fn http_status(label: Label) -> u16 {
    label.1
}

fn rest_request_event(case: &Case) -> Value {
    let mut headers = Map::new();
    let mut multi = Map::new();
    if let Some(last) = case.authorization.last() {
        headers.insert("Authorization".into(), json!(last));
        multi.insert("Authorization".into(), json!(case.authorization));
    }
    let path = case.target.split('?').next().unwrap_or_default();
    json!({
        "type": "REQUEST",
        "methodArn": format!("{ARN_PREFIX}/{}{path}", case.method),
        "resource": path, "path": path, "httpMethod": case.method,
        "headers": headers, "multiValueHeaders": multi,
        "queryStringParameters": {}, "multiValueQueryStringParameters": {},
        "pathParameters": {}, "stageVariables": {},
        "requestContext": {"path": path, "stage": "prod", "httpMethod": case.method}
    })
}

fn http_api_v2_event(case: &Case) -> Value {
    let mut headers = Map::new();
    if !case.authorization.is_empty() {
        // HTTP APIs join repeated headers with commas.
        headers.insert("authorization".into(), json!(case.authorization.join(",")));
    }
    let path = case.target.split('?').next().unwrap_or_default();
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": format!("{ARN_PREFIX}/{}{path}", case.method),
        "identitySource": case.authorization,
        "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": case.method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "test"}}
    })
}

/// What a Lambda answer says: `allow`, `deny` (403) or `unauthorized` (401).
fn lambda_answer(result: Result<Value, jwtgate_lambda::AuthorizerError>) -> &'static str {
    match result {
        Err(jwtgate_lambda::AuthorizerError::Unauthorized) => "unauthorized",
        Err(other) => panic!("not an authorizer answer: {other}"),
        Ok(answer) => {
            let allowed = answer["isAuthorized"]
                .as_bool()
                .unwrap_or_else(|| answer["policyDocument"]["Statement"][0]["Effect"] == "Allow");
            if allowed {
                "allow"
            } else {
                "deny"
            }
        }
    }
}

/// The Lambda answer an outcome must produce.
fn lambda_expected(label: Label) -> &'static str {
    match label {
        ("allow", _, _) => "allow",
        (_, 403, _) => "deny",
        _ => "unauthorized",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_end_decides_the_same() {
    let issuer = Issuer::new();
    let text = shared_toml(&issuer.jwks_file().display().to_string());
    let now = issuer.now();
    let tokens = tokens(&issuer);

    // Forward-auth, proxy and the tower layer from the file as the gateway reads it.
    let gateway_config = GatewayConfig::from_toml(&text, "differential.toml").unwrap();
    let (forward_auth, forward_engine) = start_gateway(&gateway_config).await;
    let mut proxy_config = gateway_config.clone();
    proxy_config.proxy = Some(ProxyOptions::new(format!(
        "http://{}",
        start_upstream().await
    )));
    let (proxy, proxy_engine) = start_gateway(&proxy_config).await;
    let layered = gateway_config.build("differential.toml").unwrap().engine;
    server::prepare_keys(&layered).await;
    let ext_authz = gateway_config.build("differential.toml").unwrap().engine;
    server::prepare_keys(&ext_authz).await;
    let service = Router::new()
        .fallback(any(|| async { "service\n" }))
        .layer(AuthLayer::new(layered.clone()));
    // The authorizer from the same file as the Lambda reads it.
    let lambda_config = LambdaConfig::from_toml(&text, "differential.toml").unwrap();
    let authorizer: Authorizer = lambda_config.build("differential.toml").unwrap();
    assert!(authorizer.prepare_keys(true).await.is_empty());

    let corpus = corpus(&tokens);
    for case in &corpus {
        let what = format!("{} {} ({:?})", case.method, case.target, case.expected);
        let auth = authorization_lines(case);

        let before = forward_engine.metrics().decisions();
        let head = format!(
            "GET /auth HTTP/1.1\r\nX-Forwarded-Method: {}\r\nX-Forwarded-Uri: {}\r\n{auth}",
            case.method, case.target
        );
        let status = status_of(forward_auth, &head).await;
        let label = counted(&forward_engine, &before);
        assert_eq!(label, case.expected, "forward-auth: {what}");
        assert_eq!(status, http_status(label), "forward-auth status: {what}");

        let before = proxy_engine.metrics().decisions();
        let head = format!("{} {} HTTP/1.1\r\n{auth}", case.method, case.target);
        let status = status_of(proxy, &head).await;
        let label = counted(&proxy_engine, &before);
        assert_eq!(label, case.expected, "proxy: {what}");
        assert_eq!(status, http_status(label), "proxy status: {what}");

        let before = layered.metrics().decisions();
        let mut request = http::Request::builder()
            .method(case.method)
            .uri(case.target.as_str());
        for value in &case.authorization {
            request = request.header("authorization", value);
        }
        let response = service
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let label = counted(&layered, &before);
        assert_eq!(label, case.expected, "tower layer: {what}");
        assert_eq!(
            response.status(),
            http_status(label),
            "tower layer status: {what}"
        );

        let before = ext_authz.metrics().decisions();
        let status = ext_authz_status(&ext_authz, case).await;
        let label = counted(&ext_authz, &before);
        assert_eq!(label, case.expected, "gRPC ext_authz: {what}");
        assert_eq!(status, http_status(label), "gRPC ext_authz status: {what}");

        for (kind, event) in [
            ("REST REQUEST", rest_request_event(case)),
            ("HTTP API 2.0", http_api_v2_event(case)),
        ] {
            let before = authorizer.engine().metrics().decisions();
            let answer = lambda_answer(authorizer.authorize(event, now).await);
            let label = counted(authorizer.engine(), &before);
            assert_eq!(label, case.expected, "Lambda {kind}: {what}");
            assert_eq!(
                answer,
                lambda_expected(label),
                "Lambda {kind} answer: {what}"
            );
        }
    }
    // Every request was decided once by each engine (nothing decided twice, nothing skipped).
    let total = |engine: &Engine| engine.metrics().decisions().values().sum::<u64>();
    assert_eq!(total(&forward_engine), corpus.len() as u64);
    assert_eq!(total(&proxy_engine), corpus.len() as u64);
    assert_eq!(total(&layered), corpus.len() as u64);
    assert_eq!(total(&ext_authz), corpus.len() as u64);
    assert_eq!(total(authorizer.engine()), 2 * corpus.len() as u64);
}
