//! Sender-constrained tokens through the gateway's own listeners: certificate-bound tokens
//! (RFC 8705) with real TLS client certificates made by the `openssl` CLI against the TLS
//! listener (`[server] client_ca`), and through a trusted proxy's header
//! (`[server] client_cert_header`, removed before upstream) — also behind the real nginx
//! terminating TLS (`$ssl_client_escaped_cert`); and DPoP server nonces rotated to
//! the client on successful answers (RFC 9449 §8.2) at forward-auth and in proxy mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::routing::get;
use axum::Router;
use jwtgate_http::config::GatewayConfig;
use jwtgate_test_support::certificates::{
    bound_token, escaped_pem, make_ca, make_client, tls_client,
};
use jwtgate_test_support::client::{get_bearer, www_authenticate};
use jwtgate_test_support::{DpopClient, Issuer};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use tokio::net::TcpListener;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn config(issuer: &Issuer, upstream: SocketAddr, extra: &str) -> GatewayConfig {
    let text = format!(
        r#"
        [server]
        {extra}

        {issuers}

        [[routes]]
        path = "/api/*"
        scopes = ["read:users"]

        [proxy]
        upstream = "http://{upstream}"
        "#,
        issuers = issuer.issuer_toml(),
    );
    GatewayConfig::from_toml(&text, "test.toml").unwrap()
}

/// An upstream that answers with the headers it received.
async fn echo_upstream() -> SocketAddr {
    let app = Router::new().route(
        "/api/{*rest}",
        get(|headers: axum::http::HeaderMap| async move {
            let seen: Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                .collect();
            axum::Json(json!({"headers": seen}))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Starts the gateway (with TLS when configured); it stops when the sender drops.
async fn start(config: &GatewayConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let gateway = support::start_config(config).await;
    (gateway.addr, gateway.stop.unwrap())
}

#[tokio::test]
async fn the_tls_listener_binds_tokens_to_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "clients");
    make_ca(dir.path(), "stranger");
    let (alice, alice_der) = make_client(dir.path(), "clients", "alice");
    let (bob, _) = make_client(dir.path(), "clients", "bob");
    let (mallory, mallory_der) = make_client(dir.path(), "stranger", "mallory");
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let extra = format!(
        "tls_cert = \"{DATA}/localhost.crt.pem\"\ntls_key = \"{DATA}/localhost.key.pem\"\nclient_ca = \"{}\"",
        dir.path().join("clients.crt").display()
    );
    let (addr, _stop) = start(&config(&issuer, upstream, &extra)).await;
    let url = format!("https://localhost:{}/api/users", addr.port());
    let token = bound_token(&issuer, &alice_der);

    let response = tls_client(Some(&alice))
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The same token from a client without a certificate, or with another one the CA issued.
    let (status, challenge) = get_bearer(&tls_client(None), &url, &token, &[]).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("error=\"invalid_token\"")
            && challenge.contains("without a client certificate"),
        "{challenge}"
    );
    let (status, challenge) = get_bearer(&tls_client(Some(&bob)), &url, &token, &[]).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another certificate"), "{challenge}");

    // A certificate the configured CA did not issue does not get through the handshake, even
    // with a token bound to it.
    let stranger = tls_client(Some(&mallory))
        .get(&url)
        .bearer_auth(bound_token(&issuer, &mallory_der))
        .send()
        .await;
    assert!(stranger.is_err(), "{stranger:?}");

    // Plain bearer tokens need no certificate.
    let response = tls_client(None)
        .get(&url)
        .bearer_auth(issuer.token(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_trusted_proxys_header_binds_and_never_reaches_upstream() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "clients");
    let (_, alice_der) = make_client(dir.path(), "clients", "alice");
    let alice_pem = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
    let escaped = escaped_pem(&alice_pem);
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let extra =
        "client_cert_header = \"X-SSL-Client-Cert\"\nclient_cert_header_format = \"escaped-pem\"";
    let (addr, _stop) = start(&config(&issuer, upstream, extra)).await;
    let client = reqwest::Client::new();
    let token = bound_token(&issuer, &alice_der);

    let response = client
        .get(format!("http://{addr}/api/users"))
        .bearer_auth(&token)
        .header("X-SSL-Client-Cert", &escaped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        echoed["headers"].get("x-ssl-client-cert").is_none(),
        "the certificate header reached upstream: {echoed}"
    );
    // A bearer request with the header, or with another spelling of it (which CGI, WSGI and
    // PHP upstreams read as the same header): every one is removed.
    let response = client
        .get(format!("http://{addr}/api/users"))
        .bearer_auth(issuer.token(json!({})))
        .header("X-SSL-Client-Cert", "anything")
        .header("x_ssl_client_cert", "anything")
        .header("X-SSL_Client-Cert", "anything")
        .send()
        .await
        .unwrap();
    let echoed: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let spellings: Vec<&String> = echoed["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| {
            name.replace('_', "-")
                .eq_ignore_ascii_case("x-ssl-client-cert")
        })
        .collect();
    assert!(
        spellings.is_empty(),
        "{spellings:?} reached upstream: {echoed}"
    );

    // Forward-auth reads the same header from the proxy's check.
    let check = |cert: &'static str| {
        let request = client
            .get(format!("http://{addr}/auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/api/users")
            .bearer_auth(&token);
        if cert.is_empty() {
            request
        } else {
            request.header("X-SSL-Client-Cert", cert)
        }
    };
    let response = check("")
        .header("X-SSL-Client-Cert", &escaped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, challenge) = www_authenticate(check("").send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
    let (status, challenge) =
        www_authenticate(check("-----BEGIN%20CERTIFICATE").send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("is not escaped-pem"), "{challenge}");
    // Forward-auth cannot remove a client's other spelling from what the proxy forwards, so
    // the check refuses it.
    let response = check("")
        .header("X-SSL-Client-Cert", &escaped)
        .header("x_ssl_client_cert", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[test]
fn certificate_settings_are_checked() {
    let issuer = Issuer::new();
    let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let error = |extra: &str| {
        config(&issuer, upstream, extra)
            .build("test.toml")
            .unwrap_err()
            .to_string()
    };
    assert!(error("client_ca = \"/ca.pem\"").contains("needs tls_cert"));
    assert!(error("client_cert_header = \"x-client-cert\"").contains("client_cert_header_format"));
    assert!(error("client_cert_header_format = \"xfcc\"").contains("no client_cert_header"));
    assert!(
        error("client_cert_header = \"bad header\"\nclient_cert_header_format = \"xfcc\"")
            .contains("not a valid header name")
    );
    // One source: a header beside the listener's own verification would be trusted from any
    // peer, since the listener serves clients without a certificate.
    let both = error(&format!(
        "tls_cert = \"{DATA}/localhost.crt.pem\"\ntls_key = \"{DATA}/localhost.key.pem\"\nclient_ca = \"/ca.pem\"\nclient_cert_header = \"x-client-cert\"\nclient_cert_header_format = \"xfcc\""
    ));
    assert!(both.contains("cannot be combined with client_ca"), "{both}");
    // Envoy's gRPC check is the only source when chosen.
    for other in [
        "client_cert_header = \"x-forwarded-client-cert\"\nclient_cert_header_format = \"xfcc\"",
        "client_ca = \"/ca.pem\"",
    ] {
        let message = error(&format!("client_cert_source = \"ext-authz\"\n{other}"));
        assert!(message.contains("client_cert_source"), "{message}");
    }
    let built = config(&issuer, upstream, "client_cert_source = \"ext-authz\"")
        .build("test.toml")
        .unwrap();
    assert_eq!(
        *built.engine.dpop().certificate_source(),
        jwtgate_engine::mtls::CertificateSource::ExtAuthzSource
    );
}

#[tokio::test]
async fn a_fresh_dpop_nonce_rides_on_successful_answers() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let mut config = config(
        &issuer,
        upstream,
        "public_url = \"https://api.example.com\"",
    );
    config.dpop.nonce = true;
    let (addr, _stop) = start(&config).await;
    let client = reqwest::Client::new();
    let dpop = DpopClient::new(&issuer);
    let proof = |jti: &str, nonce: Option<&str>| {
        dpop.proof("GET", "https://api.example.com/api/users", jti, nonce)
    };
    let call = |url: &str, proof: String| {
        client
            .get(url)
            .header("Authorization", dpop.authorization())
            .header("DPoP", proof)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/api/users")
            .send()
    };
    let proxied = format!("http://{addr}/api/users");
    let forward_auth = format!("http://{addr}/auth");
    // The first proof has no nonce: refused with one.
    let refusal = call(&proxied, proof("a", None)).await.unwrap();
    assert_eq!(refusal.status(), 401);
    let nonce = refusal.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // With it, both front ends pass and hand the nonce on for the next proof.
    for (url, jti) in [(&proxied, "b"), (&forward_auth, "c")] {
        let response = call(url, proof(jti, Some(&nonce))).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response
                .headers()
                .get("dpop-nonce")
                .map(|v| v.to_str().unwrap()),
            Some(nonce.as_str()),
            "{url}"
        );
    }
    // A bearer request gets none.
    let response = client
        .get(&proxied)
        .bearer_auth(issuer.token(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("dpop-nonce").is_none());
}

/// nginx terminating TLS with client certificates (`ssl_verify_client optional`) in front of
/// jwtgate's forward-auth, passing `$ssl_client_escaped_cert` as docs/mtls.md shows: the real
/// certificate binds, another one or none (with a forged header) does not, and the API never
/// sees the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "clients");
    let (alice, alice_der) = make_client(dir.path(), "clients", "alice");
    let (bob, _) = make_client(dir.path(), "clients", "bob");
    let alice_pem = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gateway = GatewayConfig::from_toml(
        &format!(
            r#"
            [server]
            forward_auth_invalid_request_status = 401
            client_cert_header = "X-SSL-Client-Cert"
            client_cert_header_format = "escaped-pem"

            {issuers}

            [[routes]]
            path = "/api/*"
            scopes = ["read:users"]
            "#,
            issuers = issuer.issuer_toml(),
        ),
        "test.toml",
    )
    .unwrap();
    let (jwtgate, _stop) = start(&gateway).await;
    let prefix = dir.path().join("nginx");
    let client_ca = dir.path().join("clients.crt");
    let (_nginx, addr) = support::start_on_free_port("nginx", dir.path(), |listen| {
        support::nginx_command(
            &prefix,
            &format!(
                r#"
daemon off;
master_process off;
worker_processes 1;
pid nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {{
        listen {listen} ssl;
        ssl_certificate {DATA}/localhost.crt.pem;
        ssl_certificate_key {DATA}/localhost.key.pem;
        ssl_client_certificate {ca};
        ssl_verify_client optional;
        location / {{
            auth_request /_jwtgate;
            auth_request_set $jwtgate_challenge $upstream_http_www_authenticate;
            proxy_set_header X-SSL-Client-Cert "";
            proxy_pass http://{upstream};
        }}
        location = /_jwtgate {{
            internal;
            proxy_pass http://{jwtgate}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
}}
"#,
                ca = client_ca.display(),
            ),
        )
    })
    .await;
    let url = format!("https://localhost:{}/api/users", addr.port());
    let token = bound_token(&issuer, &alice_der);

    let response = tls_client(Some(&alice))
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        echoed["headers"].get("x-ssl-client-cert").is_none(),
        "{echoed}"
    );

    let (status, challenge) = get_bearer(&tls_client(Some(&bob)), &url, &token, &[]).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another certificate"), "{challenge}");

    // Without a certificate, a client's own copy of the header does not reach jwtgate.
    let forged = escaped_pem(&alice_pem);
    let (status, challenge) = get_bearer(
        &tls_client(None),
        &url,
        &token,
        &[("X-SSL-Client-Cert", &forged)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
}
