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

use jwtgate_test_support::certificates::{bound_token, client_certificate, tls_client, tls_data};
use jwtgate_test_support::client::get_bearer;
use jwtgate_test_support::process::{
    free_loopback_addr, holds_listener, listening, start_with_ports, Running,
};
use jwtgate_test_support::recipes::{recipe, render};
use jwtgate_test_support::upstream::{folded_values, start_echo_upstream, Seen};
use jwtgate_test_support::wire::{send, Reply};
use jwtgate_test_support::{proxy_tool, workspace_root, DpopClient, Issuer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

const ISS: &str = "https://example.eu.auth0.com/";
const AUD: &str = "https://api.example.com";
const CHALLENGE: &str = "Bearer realm=\"api\"";

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
        || (free_loopback_addr(), free_loopback_addr()),
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
        |(http, grpc), pid| async move {
            if tls {
                return listening(grpc, pid).await;
            }
            listening(http, pid).await && send(http, "GET", "/readyz", &[]).await.status == 200
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
        free_loopback_addr,
        |listen| command(*listen),
        |listen, pid| async move {
            listening(listen, pid).await
                && send(listen, "GET", "/public/ready", &[]).await.status == 200
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
    start_proxy("envoy", dir, |listen| {
        let config = render_envoy(&template, recipe_name, listen, jwtgate, upstream);
        envoy_command(dir, recipe_name, change(config))
    })
    .await
}

/// The Envoy recipe `recipe_name` (`template`) listening on `listen`, asking `jwtgate` (its gRPC
/// or HTTP listener, as the recipe uses) and forwarding to `upstream`.
fn render_envoy(
    template: &str,
    recipe_name: &str,
    listen: SocketAddr,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
) -> String {
    let (host, port) = if recipe_name == "envoy-grpc.yaml" {
        ("@JWTGATE_GRPC_HOST@", "@JWTGATE_GRPC_PORT@")
    } else {
        ("@JWTGATE_HOST@", "@JWTGATE_PORT@")
    };
    render(
        template,
        &[
            ("@LISTEN_HOST@", listen.ip().to_string()),
            ("@LISTEN_PORT@", listen.port().to_string()),
            (host, jwtgate.ip().to_string()),
            (port, jwtgate.port().to_string()),
            ("@UPSTREAM_HOST@", upstream.ip().to_string()),
            ("@UPSTREAM_PORT@", upstream.port().to_string()),
        ],
    )
}

async fn start_envoy_tls(
    dir: &Path,
    recipe_name: &'static str,
    jwtgate: SocketAddr,
    upstream: SocketAddr,
    client_ca: &Path,
    change: impl Fn(String) -> String,
) -> (Running, SocketAddr) {
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
        data = tls_data().display(),
        ca = client_ca.display(),
    );
    let plain = "      filter_chains:\n        - filters:\n";
    let template = recipe(recipe_name);
    start_with_ports(
        "envoy",
        dir,
        free_loopback_addr,
        |listen| {
            let config = render_envoy(&template, recipe_name, *listen, jwtgate, upstream);
            assert!(config.contains(plain), "the recipe's listener moved");
            envoy_command(dir, recipe_name, change(config.replacen(plain, &tls, 1)))
        },
        |listen, pid| {
            let ready =
                tls_client(None).get(format!("https://localhost:{}/public/ready", listen.port()));
            let own = holds_listener(pid, listen.port());
            async move { own && ready.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
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
    let client = DpopClient::new(issuer);
    let dpop = client.authorization();
    let proof = |uri: &str, jti: &str| client.proof("GET", uri, jti, None);
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
    let (upstream, seen) = start_echo_upstream().await;
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
    let (upstream, seen) = start_echo_upstream().await;
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
    let (upstream, seen) = start_echo_upstream().await;
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
    let (upstream, seen) = start_echo_upstream().await;
    let (_jwtgate, (http, grpc)) = start_jwtgate_with(
        dir.path(),
        "jwtgate-envoy.toml",
        &issuer,
        |text| format!("{text}\n[dpop]\nnonce = true\n"),
        false,
    )
    .await;
    let client = DpopClient::new(&issuer);
    let dpop = client.authorization();
    let proof = |jti: &str, nonce: Option<&str>| {
        client.proof("GET", "http://api.example.com/api/users", jti, nonce)
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

/// A certificate-bound token through a proxy terminating TLS: with the certificate it is bound
/// to (`owner`, a PEM identity) it passes, and reaches the API when `seen` watches it; with
/// `other`'s it is refused as sent with another certificate, without reaching it.
async fn assert_bound(url: &str, token: &str, owner: &[u8], other: &[u8], seen: Option<&Seen>) {
    let before = seen.map(Seen::count);
    let response = tls_client(Some(owner))
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (status, challenge) = get_bearer(&tls_client(Some(other)), url, token, &[]).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another certificate"), "{challenge}");
    if let (Some(seen), Some(before)) = (seen, before) {
        assert_eq!(
            seen.count(),
            before + 1,
            "the bound token's request alone reached the API"
        );
    }
}

/// What the client-certificate tests share: a temp dir whose `certs` hold the CA `clients` and
/// the certificates it issued to alice and bob (key and certificate as one PEM, and the DER), the
/// recipes' issuer, the echoing upstream, and `jwtgate serve` from the recipe `toml` with
/// `server` added to its `[server]` section (its HTTP and gRPC listeners).
struct WithCertificates {
    dir: tempfile::TempDir,
    certs: std::path::PathBuf,
    alice: (Vec<u8>, Vec<u8>),
    bob: (Vec<u8>, Vec<u8>),
    issuer: Issuer,
    upstream: SocketAddr,
    seen: Seen,
    jwtgate: Running,
    listeners: (SocketAddr, SocketAddr),
}

impl WithCertificates {
    async fn start(toml: &'static str, server: &str) -> WithCertificates {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let alice = client_certificate(&certs, "clients", "alice");
        let bob = client_certificate(&certs, "clients", "bob");
        let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
        let (upstream, seen) = start_echo_upstream().await;
        let section = format!("[server]\n{server}");
        let (jwtgate, listeners) = start_jwtgate_with(
            dir.path(),
            toml,
            &issuer,
            |text| text.replacen("[server]\n", &section, 1),
            false,
        )
        .await;
        WithCertificates {
            dir,
            certs,
            alice,
            bob,
            issuer,
            upstream,
            seen,
            jwtgate,
            listeners,
        }
    }
}

/// Envoy terminating TLS with client certificates in front of the HTTP ext_authz recipe, with
/// `forward_client_cert_details: SANITIZE_SET` and the certificate in `x-forwarded-client-cert`
/// (docs/mtls.md), and jwtgate reading that header (`client_cert_header_format = "xfcc"`): the
/// certificate a token is bound to passes, another one does not, and a client without one that
/// sends its own XFCC is refused (Envoy replaces it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_passes_the_client_certificate_in_xfcc() {
    let WithCertificates {
        dir,
        certs,
        alice: (alice, alice_der),
        bob: (bob, bob_der),
        issuer,
        upstream,
        seen,
        jwtgate: _jwtgate,
        listeners: (http, _),
    } = WithCertificates::start(
        "jwtgate-envoy.toml",
        "client_cert_header = \"x-forwarded-client-cert\"\nclient_cert_header_format = \"xfcc\"\n",
    )
    .await;
    let (_envoy, proxy) = start_envoy_tls(
        dir.path(),
        "envoy-http.yaml",
        http,
        upstream,
        &certs.join("clients.crt"),
        |text| {
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
        },
    )
    .await;
    let client = tls_client;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = bound_token(&issuer, &alice_der);
    assert_bound(&url, &token, &alice, &bob, Some(&seen)).await;

    let forged = format!(
        "Hash={}",
        jwtgate_core::crypto::sha256(&alice_der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let (status, challenge) = get_bearer(
        &client(None),
        &url,
        &token,
        &[("x-forwarded-client-cert", &forged)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
    // Bob's own bound token passes with Bob's certificate.
    let bobs = bound_token(&issuer, &bob_der);
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
    let WithCertificates {
        dir,
        certs,
        alice: (alice, alice_der),
        bob: (bob, _),
        issuer,
        upstream,
        seen,
        jwtgate: _jwtgate,
        listeners: (_, grpc),
    } = WithCertificates::start("jwtgate-envoy.toml", "client_cert_source = \"ext-authz\"\n").await;
    let (_envoy, proxy) = start_envoy_tls(
        dir.path(),
        "envoy-grpc.yaml",
        grpc,
        upstream,
        &certs.join("clients.crt"),
        |text| {
            text.replacen(
                "                      failure_mode_allow: false\n",
                "                      failure_mode_allow: false\n                      include_peer_certificate: true\n",
                1,
            )
        },
    )
    .await;
    let client = tls_client;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = bound_token(&issuer, &alice_der);
    assert_bound(&url, &token, &alice, &bob, Some(&seen)).await;
    let before = seen.count();
    let (status, challenge) = get_bearer(&client(None), &url, &token, &[]).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("without a client certificate"),
        "{challenge}"
    );
    assert_eq!(seen.count(), before, "a refused request reached the API");
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
    let WithCertificates {
        dir,
        certs,
        alice: (alice, alice_der),
        bob: (bob, _),
        issuer,
        upstream,
        jwtgate: _jwtgate,
        listeners: (http, _),
        ..
    } = WithCertificates::start(
        "jwtgate-caddy.toml",
        "client_cert_header = \"X-Forwarded-Tls-Client-Cert\"\nclient_cert_header_format = \"base64-der\"\n",
    )
    .await;
    let data = tls_data();
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
    let client = tls_client;
    let (_traefik, proxy) = start_with_ports(
        "traefik",
        dir.path(),
        free_loopback_addr,
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
        |listen, pid| {
            let ready =
                client(None).get(format!("https://localhost:{}/public/ready", listen.port()));
            let own = holds_listener(pid, listen.port());
            async move { own && ready.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    let url = format!("https://localhost:{}/api/users", proxy.port());
    let token = bound_token(&issuer, &alice_der);
    assert_bound(&url, &token, &alice, &bob, None).await;

    let forged: String = String::from_utf8_lossy(&std::fs::read(certs.join("alice.crt")).unwrap())
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let (status, challenge) = get_bearer(
        &client(None),
        &url,
        &token,
        &[("X-Forwarded-Tls-Client-Cert", &forged)],
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
    let data = tls_data();
    let issuer = Issuer::new().with_issuer(ISS).with_audience(AUD);
    let (upstream, seen) = start_echo_upstream().await;
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
