//! Certificate-bound tokens (RFC 8705 §3) in the authorizer: with `[lambda] mtls = true`, the
//! client certificate API Gateway's mutual TLS verified comes in REQUEST events (REST and HTTP
//! API 1.0: `requestContext.identity.clientCert.clientCertPem`; HTTP API 2.0:
//! `requestContext.authentication.clientCert.clientCertPem`), and a token whose
//! `cnf["x5t#S256"]` names it is allowed; another certificate, none, or a PEM that is not one
//! certificate is a 401 — decided by the engine as in the gateway. Without `mtls` such tokens are
//! refused whatever the event carries, and so are they in `TOKEN` events, which carry no
//! certificate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::internal::base64url;
use jwtgate_lambda::{AuthorizerError, LambdaConfig};
use jwtgate_test_support::certificates::{make_ca, make_client};
use jwtgate_test_support::Issuer;
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const EVENTS: [(&str, &str); 3] = [
    ("rest_request", include_str!("events/rest-request.json")),
    ("http_api_v1", include_str!("events/http-api-v1.json")),
    ("http_api_v2", include_str!("events/http-api-v2.json")),
];

/// Two real client certificates from one CA: their PEM and `x5t#S256`.
struct Certificates {
    alice: (String, String),
    bob: (String, String),
    _dir: tempfile::TempDir,
}

fn certificates() -> Certificates {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    let mut made = ["alice", "bob"].map(|name| {
        let (_, der) = make_client(dir.path(), "ca", name);
        let pem = std::fs::read_to_string(dir.path().join(format!("{name}.crt"))).unwrap();
        let x5t = base64url::encode(&jwtgate_core::crypto::sha256(&der));
        (pem, x5t)
    });
    let bob = std::mem::take(&mut made[1]);
    let alice = std::mem::take(&mut made[0]);
    Certificates {
        alice,
        bob,
        _dir: dir,
    }
}

fn authorizer(issuer: &Issuer, mtls: bool) -> jwtgate_lambda::Authorizer {
    let text = format!(
        "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n[lambda]\nmtls = {mtls}\n",
        issuer.issuer(),
        issuer.audience(),
        issuer.jwks_file().display()
    );
    LambdaConfig::from_toml(&text, "test.toml")
        .unwrap()
        .build("test.toml")
        .unwrap()
}

/// The documented event of `kind` with `token` and this `clientCert` (`None`: the field
/// removed, as without mutual TLS).
fn event(kind: &str, token: &str, client_cert_pem: Option<&str>) -> Value {
    let template = EVENTS.iter().find(|(k, _)| *k == kind).unwrap().1;
    let mut event: Value = serde_json::from_str(&template.replace("${TOKEN}", token)).unwrap();
    let holder = if kind == "http_api_v2" {
        &mut event["requestContext"]["authentication"]
    } else {
        &mut event["requestContext"]["identity"]
    };
    let holder = holder.as_object_mut().unwrap();
    assert!(
        holder.contains_key("clientCert"),
        "{kind}: the documented event has a clientCert"
    );
    match client_cert_pem {
        Some(pem) => holder["clientCert"]["clientCertPem"] = json!(pem),
        None => {
            holder.remove("clientCert");
        }
    }
    event
}

fn effect(answer: &Result<Value, AuthorizerError>) -> String {
    match answer {
        Ok(answer) => answer["policyDocument"]["Statement"][0]["Effect"]
            .as_str()
            .or_else(|| {
                answer["isAuthorized"]
                    .as_bool()
                    .map(|b| if b { "Allow" } else { "Deny" })
            })
            .unwrap_or("?")
            .to_owned(),
        Err(AuthorizerError::Unauthorized) => "Unauthorized".to_owned(),
        Err(other) => format!("error: {other}"),
    }
}

#[tokio::test]
async fn a_bound_token_needs_the_certificate_it_names() {
    let certs = certificates();
    let issuer = Issuer::new().at(NOW);
    let authorizer = authorizer(&issuer, true);
    let bound = issuer.token(json!({"cnf": {"x5t#S256": certs.alice.1}}));
    let (alice, bob) = (certs.alice.0.as_str(), certs.bob.0.as_str());
    let truncated = &alice[..alice.len() / 2];
    let two = format!("{alice}{bob}");
    for (kind, _) in EVENTS {
        let cases: [(&str, Option<&str>, &str); 7] = [
            ("the certificate it names", Some(alice), "Allow"),
            ("another certificate", Some(bob), "Unauthorized"),
            ("no clientCert", None, "Unauthorized"),
            ("an empty PEM", Some(""), "Unauthorized"),
            ("a truncated PEM", Some(truncated), "Unauthorized"),
            ("two certificates", Some(&two), "Unauthorized"),
            ("not PEM at all", Some("CERT_CONTENT"), "Unauthorized"),
        ];
        for (what, pem, expected) in cases {
            let answer = authorizer.authorize(event(kind, &bound, pem), NOW).await;
            assert_eq!(effect(&answer), expected, "{kind}, {what}: {answer:?}");
        }
    }
}

#[tokio::test]
async fn bearer_tokens_pass_with_or_without_a_certificate() {
    let certs = certificates();
    let issuer = Issuer::new().at(NOW);
    let authorizer = authorizer(&issuer, true);
    let bearer = issuer.token(json!({}));
    for (kind, _) in EVENTS {
        for pem in [Some(certs.bob.0.as_str()), None, Some("CERT_CONTENT")] {
            let answer = authorizer.authorize(event(kind, &bearer, pem), NOW).await;
            assert_eq!(effect(&answer), "Allow", "{kind}, {pem:?}: {answer:?}");
        }
    }
}

#[tokio::test]
async fn without_mtls_configured_a_bound_token_is_refused() {
    let certs = certificates();
    let issuer = Issuer::new().at(NOW);
    let authorizer = authorizer(&issuer, false);
    let bound = issuer.token(json!({"cnf": {"x5t#S256": certs.alice.1}}));
    for (kind, _) in EVENTS {
        let answer = authorizer
            .authorize(event(kind, &bound, Some(&certs.alice.0)), NOW)
            .await;
        assert_eq!(effect(&answer), "Unauthorized", "{kind}: {answer:?}");
    }
}

#[tokio::test]
async fn token_events_carry_no_certificate() {
    let certs = certificates();
    let issuer = Issuer::new().at(NOW);
    let authorizer = authorizer(&issuer, true);
    let bound = issuer.token(json!({"cnf": {"x5t#S256": certs.alice.1}}));
    let template = include_str!("events/rest-token.json");
    let event: Value = serde_json::from_str(&template.replace("${TOKEN}", &bound)).unwrap();
    let answer = authorizer.authorize(event, NOW).await;
    assert_eq!(effect(&answer), "Unauthorized", "{answer:?}");
    let bearer = issuer.token(json!({}));
    let event: Value = serde_json::from_str(&template.replace("${TOKEN}", &bearer)).unwrap();
    assert_eq!(effect(&authorizer.authorize(event, NOW).await), "Allow");
}
