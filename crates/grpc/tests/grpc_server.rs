//! The gRPC server over a real socket, with tonic's client: `Check` decides with the gateway's
//! shared engine (a reload applies at once), gRPC health follows key readiness, and TLS serves
//! the same services.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use jwtgate_http::config::GatewayConfig;
use jwtgate_test_support::Issuer;
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn config(issuer: &Issuer, jwks_file: &str, routes: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\n\
         [[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{jwks_file}\"\n{routes}",
        issuer.issuer(),
        issuer.audience(),
    )
}

const ROUTES: &str = "[[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n";

async fn start(toml: &str) -> support::Serving {
    let built = GatewayConfig::from_toml(toml, "test")
        .unwrap()
        .build("test")
        .unwrap();
    support::serve(&built).await
}

fn request(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let http = HttpRequest {
        method: "GET".into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        ..HttpRequest::default()
    };
    check_of(http)
}

/// The check Envoy sends for `http`.
fn check_of(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(http),
            }),
            ..AttributeContext::default()
        }),
    }
}

async fn check(addr: std::net::SocketAddr, request: CheckRequest) -> CheckResponse {
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client.check(request).await.unwrap().into_inner()
}

fn status(response: &CheckResponse) -> i32 {
    response.status.as_ref().unwrap().code
}

#[tokio::test]
async fn checks_decide_with_the_shared_engine_and_follow_a_reload() {
    let issuer = Issuer::new();
    let jwks = issuer.jwks_file().display().to_string();
    let running = start(&config(&issuer, &jwks, ROUTES)).await;
    let token = issuer.token(json!({"permissions": ["read:users"]}));
    let bearer = format!("Bearer {token}");
    let allowed = check(
        running.addr,
        request("/api/users?x=1", &[("authorization", &bearer)]),
    )
    .await;
    assert_eq!(status(&allowed), 0, "{allowed:?}");
    let Some(HttpResponse::OkResponse(ok)) = &allowed.http_response else {
        panic!("{allowed:?}");
    };
    let subject = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "x-auth-subject")
        .unwrap();
    assert_eq!(subject.value, "auth0|alice");
    assert_eq!(ok.headers_to_remove, ["authorization"]);
    let metadata = allowed.dynamic_metadata.as_ref().unwrap();
    assert!(metadata.fields.contains_key("sub"));

    let missing = check(running.addr, request("/api/users", &[])).await;
    assert_eq!(status(&missing), 16);

    // A reload that requires another scope applies to the next check.
    let stricter = "[[routes]]\npath = \"/api/*\"\nscopes = [\"admin\"]\n";
    let reloaded = GatewayConfig::from_toml(&config(&issuer, &jwks, stricter), "test")
        .unwrap()
        .build_replacing("test", &running.engine.load())
        .unwrap();
    running.engine.store(reloaded.engine);
    let refused = check(
        running.addr,
        request("/api/users", &[("authorization", &bearer)]),
    )
    .await;
    assert_eq!(status(&refused), 7, "{refused:?}");
    let Some(HttpResponse::DeniedResponse(denied)) = &refused.http_response else {
        panic!("{refused:?}");
    };
    assert_eq!(denied.status.as_ref().unwrap().code, 403);
    assert!(
        denied.body.contains("insufficient_scope"),
        "{}",
        denied.body
    );
}

#[tokio::test]
async fn claims_metadata_can_be_left_out() {
    let issuer = Issuer::new();
    let jwks = issuer.jwks_file().display().to_string();
    let toml = config(&issuer, &jwks, ROUTES).replacen(
        "[server]\n",
        "[server]\ngrpc_claims_metadata = false\n",
        1,
    );
    let running = start(&toml).await;
    let token = issuer.token(json!({"permissions": ["read:users"]}));
    let allowed = check(
        running.addr,
        request(
            "/api/users",
            &[("authorization", &format!("Bearer {token}"))],
        ),
    )
    .await;
    assert_eq!(status(&allowed), 0, "{allowed:?}");
    assert!(allowed.dynamic_metadata.is_none(), "{allowed:?}");
    // The identity headers are still set.
    let Some(HttpResponse::OkResponse(ok)) = &allowed.http_response else {
        panic!("{allowed:?}");
    };
    assert!(ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .any(|h| h.key == "x-auth-subject" && h.value == "auth0|alice"));
}

#[tokio::test]
async fn health_is_serving_once_keys_are_ready() {
    let issuer = Issuer::new();
    // Keys from a JWKS URL nobody serves: never ready.
    let port = jwtgate_test_support::free_port();
    let unready = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\n\
         [[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_url = \"http://127.0.0.1:{port}/jwks\"\n",
        issuer.issuer(),
        issuer.audience(),
    );
    let jwks = issuer.jwks_file().display().to_string();
    for (toml, expected) in [
        (config(&issuer, &jwks, ROUTES), ServingStatus::Serving),
        (unready, ServingStatus::NotServing),
    ] {
        let running = start(&toml).await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        for service in ["", jwtgate_grpc::AUTHORIZATION_SERVICE] {
            let answer = client
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(answer.status(), expected, "{service:?}");
        }
    }
}

/// An MCP route behind Envoy's ext_authz: the body Envoy sends as bytes (`with_request_body`,
/// `pack_as_bytes`) is inspected like the proxy's; a check without it, with only the UTF-8
/// `body` string, or with a partial body is refused, never allowed unchecked.
#[tokio::test]
async fn an_mcp_route_inspects_the_body_envoy_sends_as_bytes_and_refuses_without_it() {
    let resource = "https://mcp.example.com/mcp";
    let issuer = Issuer::new().with_audience(resource);
    let jwks = issuer.jwks_file().display().to_string();
    let routes = format!(
        "[resource]\nresource = \"{resource}\"\n\
         [[routes]]\npath = \"/mcp\"\nmcp = true\nscopes = [\"mcp:use\"]\ntools = {{ delete_user = [\"admin:users\"] }}\n"
    );
    let running = start(&config(&issuer, &jwks, &routes)).await;
    let bearer = format!("Bearer {}", issuer.token(json!({"scope": "mcp:use"})));
    let call = |name: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#)
    };
    let post = |body: Option<String>, text: Option<String>, partial: bool| {
        let mut headers = vec![
            ("authorization".to_owned(), bearer.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        if partial {
            headers.push(("x-envoy-auth-partial-body".into(), "true".into()));
        }
        let http = HttpRequest {
            method: "POST".into(),
            path: "/mcp".into(),
            headers: headers.into_iter().collect(),
            raw_body: body.map(String::into_bytes).unwrap_or_default(),
            body: text.unwrap_or_default(),
            ..HttpRequest::default()
        };
        check_of(http)
    };
    let denied_status = |response: &CheckResponse| match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied.status.as_ref().map_or(0, |s| s.code),
        other => panic!("not denied: {other:?}"),
    };
    let allowed = check(running.addr, post(Some(call("list_users")), None, false)).await;
    assert_eq!(status(&allowed), 0, "{allowed:?}");
    let refused = check(running.addr, post(Some(call("delete_user")), None, false)).await;
    assert_eq!(denied_status(&refused), 403);
    let without = check(running.addr, post(None, None, false)).await;
    assert_eq!(denied_status(&without), 403);
    let text_only = check(running.addr, post(None, Some(call("list_users")), false)).await;
    assert_eq!(denied_status(&text_only), 403);
    let partial = check(running.addr, post(Some(call("list_users")), None, true)).await;
    assert_eq!(denied_status(&partial), 413);
}
