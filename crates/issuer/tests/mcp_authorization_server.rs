//! The issuer as an MCP authorization server, in process: RFC 8414 metadata, RFC 8707 `resource`
//! on the authorization and token endpoints, RFC 7591 dynamic client registration (public
//! clients, loopback or https redirect URIs, rate-limited) and Client ID Metadata Documents
//! served by a real local HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use jwtgate_issuer::{Config, KeyRing};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const MCP: &str = "http://127.0.0.1:4321/mcp";
const OTHER_MCP: &str = "http://127.0.0.1:4322/mcp";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:33418/callback";

fn config(extra_issuer: &str) -> Config {
    Config::from_toml(&format!(
        r#"
[issuer]
{extra_issuer}

[[apis]]
identifier = "{MCP}"
permissions = ["mcp:use", "mcp:admin"]
rbac = false

[[apis]]
identifier = "{OTHER_MCP}"
permissions = ["mcp:use"]
rbac = false

[[clients]]
id = "m2m"
secret = "m2m-secret"
grant_types = ["client_credentials"]
[clients.grants]
"{MCP}" = ["mcp:use"]
"#
    ))
    .unwrap()
}

fn harness(extra_issuer: &str) -> Harness {
    Harness::with(config(extra_issuer), KeyRing::ephemeral())
}

async fn post_json(h: &Harness, path: &str, body: &Value) -> Reply {
    h.send(
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn register(h: &Harness, metadata: Value) -> Reply {
    post_json(h, "/register", &metadata).await
}

async fn registered_client(h: &Harness) -> String {
    let reply = register(
        h,
        json!({
            "client_name": "MCP test client",
            "redirect_uris": [CLIENT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:use"
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()["client_id"].as_str().unwrap().to_owned()
}

/// `/authorize` for `client` with `extra` parameters (an empty value removes one).
fn authorize_path(client: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", client),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "mcp:use offline_access"),
        ("resource", MCP),
        ("state", "s1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    format!("/authorize?{}", form(&params))
}

/// Signs `alice` in for `client`; returns the code.
async fn code(h: &Harness, client: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let page = h.get(&authorize_path(client, redirect, extra)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let tx = page.login_tx();
    let reply = h
        .post_form("/login", &[("tx", &tx), ("username", "alice")])
        .await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    let location = reply.location();
    assert!(location.as_str().starts_with(redirect), "{location}");
    query_param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

async fn exchange(
    h: &Harness,
    client: &str,
    redirect: &str,
    code: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend_from_slice(extra);
    h.post_form("/oauth/token", &pairs).await
}

/// The error an `/authorize` redirect carries.
fn redirected_error(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    query_param(&reply.location(), "error").unwrap_or_default()
}

#[tokio::test]
async fn metadata_is_rfc_8414_with_registration_and_metadata_documents() {
    let h = harness("");
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let reply = h.get(path).await;
        assert_eq!(reply.status, StatusCode::OK);
        let metadata = reply.json();
        assert_eq!(metadata["issuer"], ISS);
        assert_eq!(metadata["registration_endpoint"], format!("{ISS}register"));
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert_eq!(metadata["client_id_metadata_document_supported"], true);
        assert_eq!(metadata["response_types_supported"], json!(["code"]));
        let methods = metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("none")));
        assert!(metadata["dpop_signing_alg_values_supported"].is_array());
        assert!(metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("mcp:use")));
    }

    // Both switches off: neither is announced, and /register refuses.
    let h = harness("dynamic_registration = false\nclient_metadata_documents = false");
    let metadata = h
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert!(metadata.get("registration_endpoint").is_none());
    assert_eq!(metadata["client_id_metadata_document_supported"], false);
    let reply = register(&h, json!({"redirect_uris": [CLIENT_REDIRECT]})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let page = h
        .get(&authorize_path(
            "https://app.example/client.json",
            "https://app.example/cb",
            &[],
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text().contains("client_metadata_documents = false"),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn a_registered_client_gets_a_token_for_the_resource_alone() {
    let h = harness("");
    let reply = register(
        &h,
        json!({
            "client_name": "MCP test client",
            "redirect_uris": [CLIENT_REDIRECT, "https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "software_id": "mcp-e2e",
            "jwks_uri": "https://ignored.example/jwks"
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let registered = reply.json();
    let client = registered["client_id"].as_str().unwrap();
    assert!(client.starts_with("dcr-") && client.len() > 20, "{client}");
    assert_eq!(registered["client_id_issued_at"], json!(START));
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    assert_eq!(
        registered["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(registered["response_types"], json!(["code"]));
    assert_eq!(registered["client_name"], "MCP test client");
    assert_eq!(registered["software_id"], "mcp-e2e");
    assert_eq!(
        registered["redirect_uris"],
        json!([CLIENT_REDIRECT, "https://app.example/cb"])
    );
    assert!(registered.get("client_secret").is_none());
    assert!(
        registered.get("jwks_uri").is_none(),
        "unknown metadata is ignored"
    );

    // The login page names the client by its registered name.
    let page = h.get(&authorize_path(client, CLIENT_REDIRECT, &[])).await;
    assert!(page.text().contains("Sign in to MCP test client"));
    assert!(page.text().contains("not configured: it described itself"));

    // openid is granted too, and still the access token is for the resource alone.
    let code = code(
        &h,
        client,
        CLIENT_REDIRECT,
        &[("scope", "openid mcp:use offline_access")],
    )
    .await;
    let reply = exchange(&h, client, CLIENT_REDIRECT, &code, &[("resource", MCP)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let tokens = reply.json();
    assert_eq!(tokens["scope"], "openid mcp:use offline_access");
    let (_, claims) = decode(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);
    assert_eq!(claims["azp"], client);
    assert_eq!(claims["sub"], "jwtgate|alice");
    assert!(tokens["id_token"].is_string());

    // The refresh token keeps the resource; naming another one is invalid_target.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client),
                ("refresh_token", refresh),
                ("resource", OTHER_MCP),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_target");
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client),
                ("refresh_token", refresh),
                ("resource", MCP),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (_, claims) = decode(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);

    // A registered client is public: a secret is refused.
    let code = self::code(&h, client, CLIENT_REDIRECT, &[]).await;
    let reply = exchange(
        &h,
        client,
        CLIENT_REDIRECT,
        &code,
        &[("client_secret", "guess")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_client");

    // An unregistered redirect URI is never redirected to; a loopback one may change its port
    // (RFC 8252 §7.3), not its host or path.
    for unregistered in [
        "http://127.0.0.1:33418/other",
        "http://localhost:33418/callback",
        "https://app.example/cb2",
        "https://app.example:8443/cb",
    ] {
        let page = h.get(&authorize_path(client, unregistered, &[])).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{unregistered}");
        assert!(page.header("location").is_none());
    }
    let other_port = "http://127.0.0.1:40001/callback";
    let code = self::code(&h, client, other_port, &[]).await;
    let reply = exchange(&h, client, other_port, &code, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn the_resource_is_a_configured_api_compared_exactly() {
    let h = harness("");
    let client = registered_client(&h).await;
    for (resource, audience) in [
        ("http://127.0.0.1:4321/mcp/", ""),
        ("http://localhost:4321/mcp", ""),
        ("HTTP://127.0.0.1:4321/mcp", ""),
        ("http://127.0.0.1:4321/MCP", ""),
        (MCP, OTHER_MCP),
    ] {
        let reply = h
            .get(&authorize_path(
                &client,
                CLIENT_REDIRECT,
                &[("resource", resource), ("audience", audience)],
            ))
            .await;
        assert_eq!(
            redirected_error(&reply),
            "invalid_target",
            "{resource} {audience}"
        );
        assert_eq!(
            query_param(&reply.location(), "state").as_deref(),
            Some("s1")
        );
    }
    // The same API as audience and resource is fine.
    let page = h
        .get(&authorize_path(
            &client,
            CLIENT_REDIRECT,
            &[("audience", MCP)],
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());

    // The code is bound to its resource.
    let code = code(&h, &client, CLIENT_REDIRECT, &[]).await;
    let reply = exchange(
        &h,
        &client,
        CLIENT_REDIRECT,
        &code,
        &[("resource", OTHER_MCP)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = reply.json();
    assert_eq!(error["error"], "invalid_target");
    assert!(error["error_description"]
        .as_str()
        .unwrap()
        .contains("bound"));
    // A code requested without any resource cannot be turned into one for a resource.
    let code = self::code(&h, &client, CLIENT_REDIRECT, &[("resource", "")]).await;
    let reply = exchange(&h, &client, CLIENT_REDIRECT, &code, &[("resource", MCP)]).await;
    assert_eq!(reply.json()["error"], "invalid_target");

    // Named with audience (Auth0's way) and openid: aud also lists userinfo, unless the token
    // request names the resource.
    let by_audience = [
        ("resource", ""),
        ("audience", MCP),
        ("scope", "openid mcp:use"),
    ];
    let code = self::code(&h, &client, CLIENT_REDIRECT, &by_audience).await;
    let reply = exchange(&h, &client, CLIENT_REDIRECT, &code, &[]).await;
    let (_, claims) = decode(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!([MCP, format!("{ISS}userinfo")]));
    let code = self::code(&h, &client, CLIENT_REDIRECT, &by_audience).await;
    let reply = exchange(&h, &client, CLIENT_REDIRECT, &code, &[("resource", MCP)]).await;
    let (_, claims) = decode(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);

    // client_credentials: resource works as audience does, and an unknown one is invalid_target.
    let m2m = |extra: Vec<(&'static str, &'static str)>| {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", "m2m"),
            ("client_secret", "m2m-secret"),
        ];
        pairs.extend(extra);
        pairs
    };
    let reply = h
        .post_form("/oauth/token", &m2m(vec![("resource", MCP)]))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (_, claims) = decode(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);
    let reply = h
        .post_form(
            "/oauth/token",
            &m2m(vec![("resource", "https://unknown.example/mcp")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_target");
    let reply = h
        .post_form(
            "/oauth/token",
            &m2m(vec![("resource", MCP), ("audience", OTHER_MCP)]),
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_target");
}

#[tokio::test]
async fn browser_clients_register_and_call_the_token_endpoint_from_their_redirect_origin() {
    let h = harness("");
    // The preflight of a `POST` to `path` from `origin`: answered (with that origin, or `*`,
    // allowed) or refused (with no origin allowed).
    let check = |path: &'static str, origin: &'static str, allowed: Option<&'static str>| {
        let h = &h;
        async move {
            let request = Request::builder()
                .method("OPTIONS")
                .uri(path)
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
                .body(Body::empty())
                .unwrap();
            let reply = h.send(request).await;
            let status = match allowed {
                Some(_) => StatusCode::NO_CONTENT,
                None => StatusCode::FORBIDDEN,
            };
            assert_eq!(reply.status, status, "{path} from {origin}");
            assert_eq!(
                reply.header("access-control-allow-origin").as_deref(),
                allowed,
                "{path} from {origin}"
            );
        }
    };
    // Registration is public: any origin may register (it reads no cookie).
    check("/register", "http://localhost:6274", Some("*")).await;
    // The token endpoint answers a registered client's redirect origin, and no other.
    check("/oauth/token", "http://localhost:6274", None).await;
    let reply = register(
        &h,
        json!({"redirect_uris": ["http://localhost:6274/oauth/callback"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let localhost = "http://localhost:6274";
    check("/oauth/token", localhost, Some(localhost)).await;
    // A loopback redirect URI allows any port (RFC 8252 §7.3), so its origin does too; not
    // another host or scheme.
    let other_port = "http://localhost:6275";
    check("/oauth/token", other_port, Some(other_port)).await;
    for other in ["http://127.0.0.1:6274", "https://localhost:6274"] {
        check("/oauth/token", other, None).await;
    }
    // An https redirect URI's origin is exact.
    let reply = register(
        &h,
        json!({"redirect_uris": ["https://inspector.example/cb"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let inspector = "https://inspector.example";
    check("/oauth/token", inspector, Some(inspector)).await;
    check("/oauth/token", "https://inspector.example:8443", None).await;
}

#[tokio::test]
async fn pkce_s256_is_required_for_registered_clients() {
    let h = harness("");
    let client = registered_client(&h).await;
    let no_pkce = h
        .get(&authorize_path(
            &client,
            CLIENT_REDIRECT,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ))
        .await;
    assert_eq!(redirected_error(&no_pkce), "invalid_request");
    assert!(query_param(&no_pkce.location(), "error_description")
        .unwrap()
        .contains("PKCE"));
    let plain = h
        .get(&authorize_path(
            &client,
            CLIENT_REDIRECT,
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ))
        .await;
    assert_eq!(redirected_error(&plain), "invalid_request");
    // Without the verifier, or with another one, the code is worth nothing.
    let code = code(&h, &client, CLIENT_REDIRECT, &[]).await;
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("redirect_uri", CLIENT_REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn registration_refuses_what_it_cannot_hold_safely() {
    let h = harness("");
    for (metadata, code) in [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": "http://127.0.0.1:1/cb"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://localhost:*/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["cursor://callback"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1:1@evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CLIENT_REDIRECT], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CLIENT_REDIRECT], "grant_types": ["implicit"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (json!([CLIENT_REDIRECT]), "invalid_client_metadata"),
    ] {
        let reply = register(&h, metadata.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(reply.json()["error"], code, "{metadata}: {}", reply.text());
    }
    // Form-encoded is not a registration request.
    let reply = h
        .post_form("/register", &[("redirect_uris", CLIENT_REDIRECT)])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // A huge request is refused.
    let name = "x".repeat(20_000);
    let reply = register(
        &h,
        json!({"redirect_uris": [CLIENT_REDIRECT], "client_name": name}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_is_rate_limited() {
    let h = harness("registrations_per_minute = 3");
    for _ in 0..3 {
        registered_client(&h).await;
    }
    let reply = register(&h, json!({"redirect_uris": [CLIENT_REDIRECT]})).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after").as_deref(), Some("60"));
    reply.assert_description("3 per minute");
    // Refused requests do not count; a minute later there is room again.
    h.clock.advance(std::time::Duration::from_secs(61));
    registered_client(&h).await;
}

/// What the document server answers for one path: status, headers, body.
type Document = (u16, Vec<(String, String)>, String);

/// A local HTTP server for metadata documents: path → (status, headers, body); counts requests.
struct DocumentServer {
    base: String,
    hits: Arc<AtomicUsize>,
    /// Paths starting with `/slow` wait for a permit of this gate before answering.
    gate: Arc<tokio::sync::Semaphore>,
    documents: Arc<Mutex<std::collections::HashMap<String, Document>>>,
}

impl DocumentServer {
    async fn start() -> DocumentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let documents: Arc<Mutex<std::collections::HashMap<_, _>>> = Arc::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (served_hits, served, served_gate) = (hits.clone(), documents.clone(), gate.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (hits, documents, gate) =
                (served_hits.clone(), served.clone(), served_gate.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if uri.path().starts_with("/slow") {
                    gate.acquire().await.unwrap().forget();
                }
                let found = documents.lock().unwrap().get(uri.path()).cloned();
                let Some((status, headers, body)) = found else {
                    return axum::response::Response::builder()
                        .status(404)
                        .body(Body::empty())
                        .unwrap();
                };
                let mut response = axum::response::Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "application/json");
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(body)).unwrap()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DocumentServer {
            base,
            hits,
            gate,
            documents,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn serve(&self, path: &str, status: u16, headers: &[(&str, &str)], body: String) {
        self.documents.lock().unwrap().insert(
            path.to_owned(),
            (
                status,
                headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                body,
            ),
        );
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn loopback_metadata_documents_need_the_test_switch() {
    let server = DocumentServer::start().await;
    let client = server.url("/client.json");
    server.serve(
        "/client.json",
        200,
        &[],
        json!({"client_id": client, "redirect_uris": [CLIENT_REDIRECT]}).to_string(),
    );
    let h = harness("");
    let page = h.get(&authorize_path(&client, CLIENT_REDIRECT, &[])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text().contains("allow_loopback_client_metadata"),
        "{}",
        page.text()
    );
    assert_eq!(server.hits(), 0, "nothing is fetched");
    // Nor over https on a loopback host (the issuer is no probe for local services).
    for client in [
        "https://127.0.0.1:1/client.json",
        "https://localhost/client.json",
    ] {
        let page = h.get(&authorize_path(client, CLIENT_REDIRECT, &[])).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client}");
        assert!(
            page.text().contains("allow_loopback_client_metadata"),
            "{client}"
        );
    }
}

#[tokio::test]
async fn a_metadata_document_client_signs_in_and_its_document_is_cached() {
    let server = DocumentServer::start().await;
    let client = server.url("/oauth/client.json");
    server.serve(
        "/oauth/client.json",
        200,
        &[("cache-control", "public, max-age=120")],
        json!({
            "client_id": client,
            "client_name": "Document client",
            "redirect_uris": [CLIENT_REDIRECT],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none"
        })
        .to_string(),
    );
    let h = harness("allow_loopback_client_metadata = true");
    let code = code(&h, &client, CLIENT_REDIRECT, &[]).await;
    assert_eq!(server.hits(), 1);
    let reply = exchange(&h, &client, CLIENT_REDIRECT, &code, &[("resource", MCP)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (_, claims) = decode(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);
    assert_eq!(claims["azp"], client.as_str());
    assert_eq!(
        server.hits(),
        1,
        "the token request used the cached document"
    );
    // No refresh_token grant in the document: none is issued, and the grant is refused.
    assert!(reply.json().get("refresh_token").is_none());

    // After max-age the document is fetched again, and a changed one takes effect.
    h.clock.advance(std::time::Duration::from_secs(121));
    server.serve(
        "/oauth/client.json",
        200,
        &[],
        json!({"client_id": client, "redirect_uris": ["https://elsewhere.example/cb"]}).to_string(),
    );
    let page = h.get(&authorize_path(&client, CLIENT_REDIRECT, &[])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text().contains("is not registered"), "{}", page.text());
    assert_eq!(server.hits(), 2);

    // no-store: fetched at every use.
    server.serve(
        "/fresh.json",
        200,
        &[("cache-control", "no-store")],
        json!({"client_id": server.url("/fresh.json"), "redirect_uris": [CLIENT_REDIRECT]})
            .to_string(),
    );
    for expected in [3, 4] {
        let page = h
            .get(&authorize_path(
                &server.url("/fresh.json"),
                CLIENT_REDIRECT,
                &[],
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert_eq!(server.hits(), expected);
    }
}

#[tokio::test]
async fn metadata_documents_that_do_not_fit_are_refused() {
    let server = DocumentServer::start().await;
    let h = harness("allow_loopback_client_metadata = true");
    let doc = |path: &str, extra: Value| {
        let mut document =
            json!({"client_id": server.url(path), "redirect_uris": [CLIENT_REDIRECT]});
        test_support_merge(&mut document, extra);
        document.to_string()
    };
    server.serve(
        "/other-id.json",
        200,
        &[],
        doc(
            "/other-id.json",
            json!({"client_id": "https://evil.example/c.json"}),
        ),
    );
    server.serve(
        "/no-id.json",
        200,
        &[],
        doc("/no-id.json", json!({"client_id": null})),
    );
    server.serve(
        "/secret.json",
        200,
        &[],
        doc(
            "/secret.json",
            json!({"token_endpoint_auth_method": "client_secret_post"}),
        ),
    );
    server.serve(
        "/http-redirect.json",
        200,
        &[],
        doc(
            "/http-redirect.json",
            json!({"redirect_uris": ["http://app.example/cb"]}),
        ),
    );
    server.serve(
        "/big.json",
        200,
        &[],
        doc("/big.json", json!({"client_name": "x".repeat(6_000)})),
    );
    server.serve(
        "/moved.json",
        302,
        &[("location", "/good.json")],
        String::new(),
    );
    server.serve("/gone.json", 404, &[], String::new());
    server.serve("/garbage.json", 200, &[], "<html>".into());
    server.serve("/good.json", 200, &[], doc("/good.json", json!({})));
    for (path, expected) in [
        ("/other-id.json", "names client_id"),
        ("/no-id.json", "has no client_id"),
        ("/secret.json", "only public clients"),
        ("/http-redirect.json", "not loopback"),
        ("/big.json", "larger than 5120 bytes"),
        ("/moved.json", "answered 302"),
        ("/gone.json", "answered 404"),
        ("/garbage.json", "not a JSON object"),
    ] {
        let page = h
            .get(&authorize_path(&server.url(path), CLIENT_REDIRECT, &[]))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.header("location").is_none(), "{path}");
        assert!(page.text().contains(expected), "{path}: {}", page.text());
    }
    assert_eq!(server.hits(), 8, "the redirect was not followed");
    // URLs that are not in normalized form, or have no path, are not fetched.
    for client in [
        format!("{}/a/../good.json", server.base),
        format!("{}/", server.base),
        format!("{}/good.json#x", server.base),
    ] {
        let page = h.get(&authorize_path(&client, CLIENT_REDIRECT, &[])).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client}");
    }
    assert_eq!(server.hits(), 8);
    // The token endpoint refuses an unusable document client as invalid_client.
    let reply = exchange(&h, &server.url("/other-id.json"), CLIENT_REDIRECT, "x", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_client");
    // And the good one works.
    let page = h
        .get(&authorize_path(
            &server.url("/good.json"),
            CLIENT_REDIRECT,
            &[],
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
}

fn test_support_merge(target: &mut Value, patch: Value) {
    if let (Value::Object(target), Value::Object(patch)) = (target, patch) {
        for (name, value) in patch {
            if value.is_null() {
                target.remove(&name);
            } else {
                target.insert(name, value);
            }
        }
    }
}

#[tokio::test]
async fn metadata_document_fetches_are_bounded() {
    let server = DocumentServer::start().await;
    let h = Arc::new(harness("allow_loopback_client_metadata = true"));
    let mut pending = Vec::new();
    for i in 0..8 {
        let path = format!("/slow-{i}.json");
        server.serve(
            &path,
            200,
            &[],
            json!({"client_id": server.url(&path), "redirect_uris": [CLIENT_REDIRECT]}).to_string(),
        );
        let (h, client) = (h.clone(), server.url(&path));
        pending.push(tokio::spawn(async move {
            h.get(&authorize_path(&client, CLIENT_REDIRECT, &[]))
                .await
                .status
        }));
    }
    // Wait until the eight fetches hang at the server.
    for _ in 0..500 {
        if server.hits() == 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.hits(), 8);
    server.serve(
        "/ninth.json",
        200,
        &[],
        json!({"client_id": server.url("/ninth.json"), "redirect_uris": [CLIENT_REDIRECT]})
            .to_string(),
    );
    let page = h
        .get(&authorize_path(
            &server.url("/ninth.json"),
            CLIENT_REDIRECT,
            &[],
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text().contains("being fetched already"),
        "{}",
        page.text()
    );
    assert_eq!(server.hits(), 8, "the ninth was not fetched");
    server.gate.add_permits(8);
    for task in pending {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let page = h
        .get(&authorize_path(
            &server.url("/ninth.json"),
            CLIENT_REDIRECT,
            &[],
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
}
