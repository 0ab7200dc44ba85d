//! Certificate-bound tokens (RFC 8705 §3) through the engine: a token with `cnf["x5t#S256"]`
//! passes only with the certificate it names — from the TLS listener, or from each fronting
//! proxy's header format (nginx escaped PEM, Envoy XFCC `Hash`/`Cert`, Traefik base64 DER) — and
//! every other case is a 401 `invalid_token` naming what is wrong: no certificate, another
//! certificate, a malformed or repeated header, no configured source.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use http::{HeaderMap, HeaderValue};
use jwtgate_engine::dpop::{DpopMode, DpopSection};
use jwtgate_engine::mtls::{
    CertificateSource, CertificateThumbprint, ClientCertFormat, ClientCertHeader,
};
use jwtgate_engine::{Engine, FrontEnd, Outcome, RequestView, TokenInput, Unmatched};
use jwtgate_test_support::certificates::pem_der;
use jwtgate_test_support::Issuer;
use serde_json::json;
use support::Config;

/// A real certificate (the TLS test fixtures of the http crate): its PEM and DER.
fn certificate(name: &str) -> (String, Vec<u8>) {
    let path = format!(
        "{}/../http/tests/data/{name}.crt.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    let der = pem_der(pem.as_bytes());
    (pem, der)
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Fixture {
    issuer: Issuer,
    engine: Engine,
}

impl Fixture {
    fn new(source: CertificateSource, mode: DpopMode) -> Fixture {
        let issuer = Issuer::new();
        let toml = format!(
            "{}[[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n",
            issuer.issuer_toml()
        );
        let config = Config::parse(&toml, "test.toml").unwrap();
        let section = DpopSection {
            mode,
            ..DpopSection::default()
        };
        let dpop =
            jwtgate_engine::rules::dpop_policy(&section, &config.issuers, None, "test.toml", None)
                .unwrap()
                .with_certificate_source(source);
        let engine = config
            .engine_with(&config.routes, Unmatched::resolve(None, true), "test.toml")
            .unwrap()
            .with_dpop(dpop);
        Fixture { issuer, engine }
    }

    fn with_header(name: &str, format: ClientCertFormat) -> Fixture {
        Fixture::new(
            CertificateSource::Header(ClientCertHeader::new(name, format).unwrap()),
            DpopMode::Allowed,
        )
    }

    fn token_bound_to(&self, der: &[u8]) -> String {
        let x5t = CertificateThumbprint::of_der(der).to_base64url();
        self.issuer
            .token(json!({"scope": "read:users", "cnf": {"x5t#S256": x5t}}))
    }

    async fn ask(
        &self,
        token: &str,
        extra: &[(&str, &str)],
        listener: Option<CertificateThumbprint>,
    ) -> Outcome {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        for (name, value) in extra {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let request = RequestView {
            front: FrontEnd::Inline,
            method: "GET",
            target: "/api/users",
            headers: (&headers).into(),
            origin: Some("https://api.example.com"),
            token: TokenInput::FromRequest,
            client_certificate: listener,
            now: self.issuer.now(),
        };
        self.engine.decide(&request).await
    }
}

fn refused(outcome: &Outcome, kind: &str, description_part: &str) {
    let Outcome::Deny(denial) = outcome else {
        panic!("expected a refusal, got {outcome:?}")
    };
    assert_eq!(denial.status(), 401, "{}", denial.challenge());
    assert_eq!(denial.kind(), kind, "{}", denial.description());
    assert!(
        denial.challenge().starts_with("Bearer ")
            && denial.challenge().contains("error=\"invalid_token\""),
        "{}",
        denial.challenge()
    );
    assert!(
        denial.description().contains(description_part),
        "{:?} should mention {description_part:?}",
        denial.description()
    );
}

fn allowed(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Allow(_)), "{outcome:?}");
}

#[tokio::test]
async fn the_listener_certificate_binds() {
    let f = Fixture::new(CertificateSource::Listener, DpopMode::Allowed);
    let (_, der) = certificate("localhost");
    let (_, other) = certificate("ca");
    let token = f.token_bound_to(&der);
    let presented = Some(CertificateThumbprint::of_der(&der));
    allowed(&f.ask(&token, &[], presented).await);
    refused(
        &f.ask(&token, &[], None).await,
        "mtls_no_certificate",
        "without a client certificate",
    );
    refused(
        &f.ask(&token, &[], Some(CertificateThumbprint::of_der(&other)))
            .await,
        "mtls_mismatch",
        "another certificate",
    );
    // A header is not a source here: the listener is.
    let (pem, _) = certificate("localhost");
    refused(
        &f.ask(&token, &[("x-ssl-client-cert", &url_encode(&pem))], None)
            .await,
        "mtls_no_certificate",
        "without a client certificate",
    );
    // Bearer tokens need no certificate.
    let bearer = f.issuer.token(json!({"scope": "read:users"}));
    allowed(&f.ask(&bearer, &[], None).await);
}

#[tokio::test]
async fn a_certificate_bound_token_satisfies_required_dpop() {
    let f = Fixture::new(CertificateSource::Listener, DpopMode::Required);
    let (_, der) = certificate("localhost");
    let token = f.token_bound_to(&der);
    allowed(
        &f.ask(&token, &[], Some(CertificateThumbprint::of_der(&der)))
            .await,
    );
    let bearer = f.issuer.token(json!({"scope": "read:users"}));
    let Outcome::Deny(denial) = f.ask(&bearer, &[], None).await else {
        panic!("a plain bearer token under required")
    };
    assert_eq!(denial.kind(), "dpop_required");
}

#[tokio::test]
async fn nginx_escaped_pem() {
    let f = Fixture::with_header("x-ssl-client-cert", ClientCertFormat::EscapedPem);
    let (pem, der) = certificate("localhost");
    let (other_pem, _) = certificate("ca");
    let token = f.token_bound_to(&der);
    allowed(
        &f.ask(&token, &[("x-ssl-client-cert", &url_encode(&pem))], None)
            .await,
    );
    // The listener's certificate is the proxy's: with a header configured it is not used.
    refused(
        &f.ask(&token, &[], Some(CertificateThumbprint::of_der(&der)))
            .await,
        "mtls_no_certificate",
        "without a client certificate",
    );
    refused(
        &f.ask(
            &token,
            &[("x-ssl-client-cert", &url_encode(&other_pem))],
            None,
        )
        .await,
        "mtls_mismatch",
        "another certificate",
    );
    refused(
        &f.ask(
            &token,
            &[("x-ssl-client-cert", "-----BEGIN%20CERTIFICATE-----%0AMIIB")],
            None,
        )
        .await,
        "mtls_header_malformed",
        "not one PEM certificate",
    );
    refused(
        &f.ask(&token, &[("x-ssl-client-cert", "%ZZ")], None).await,
        "mtls_header_malformed",
        "percent-encoding",
    );
    let twice = url_encode(&format!("{pem}{other_pem}"));
    refused(
        &f.ask(&token, &[("x-ssl-client-cert", &twice)], None).await,
        "mtls_header_malformed",
        "not one PEM certificate",
    );
    let encoded = url_encode(&pem);
    refused(
        &f.ask(
            &token,
            &[
                ("x-ssl-client-cert", &encoded),
                ("x-ssl-client-cert", &encoded),
            ],
            None,
        )
        .await,
        "mtls_header_malformed",
        "more than once",
    );
}

#[tokio::test]
async fn envoy_xfcc() {
    let f = Fixture::with_header("x-forwarded-client-cert", ClientCertFormat::Xfcc);
    let (pem, der) = certificate("localhost");
    let (other_pem, other) = certificate("ca");
    let token = f.token_bound_to(&der);
    let hash = hex(&jwtgate_core::crypto::sha256(&der));
    let other_hash = hex(&jwtgate_core::crypto::sha256(&other));
    let xfcc = |value: &str| [("x-forwarded-client-cert", value.to_owned())];
    let ask = |value: String| {
        let f = &f;
        let token = token.clone();
        async move {
            let pairs = xfcc(&value);
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            f.ask(&token, &pairs, None).await
        }
    };
    allowed(
        &ask(format!(
            "By=spiffe://cluster.local/ns/default/sa/api;Hash={hash};Subject=\"CN=localhost,O=a;b\""
        ))
        .await,
    );
    allowed(&ask(format!("Hash={hash};Cert=\"{}\"", url_encode(&pem))).await);
    allowed(&ask(format!("Cert={}", url_encode(&pem))).await);
    refused(
        &ask(format!("Hash={other_hash}")).await,
        "mtls_mismatch",
        "another certificate",
    );
    refused(
        &ask(format!("Hash={hash};Cert={}", url_encode(&other_pem))).await,
        "mtls_header_malformed",
        "disagree",
    );
    refused(
        &ask(format!("Hash={other_hash},Hash={hash}")).await,
        "mtls_header_malformed",
        "more than one client",
    );
    refused(
        &ask("Hash=abc".into()).await,
        "mtls_header_malformed",
        "64 hex digits",
    );
    refused(
        &ask("By=spiffe://x;Subject=\"CN=a\"".into()).await,
        "mtls_header_malformed",
        "neither Hash nor Cert",
    );
    refused(
        &ask("Subject=\"CN=open".into()).await,
        "mtls_header_malformed",
        "quotes",
    );
}

#[tokio::test]
async fn traefik_base64_der() {
    let f = Fixture::with_header("x-forwarded-tls-client-cert", ClientCertFormat::Base64Der);
    let (pem, der) = certificate("localhost");
    let (other_pem, _) = certificate("ca");
    let token = f.token_bound_to(&der);
    let armorless = |pem: &str| -> String {
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .collect()
    };
    let leaf = armorless(&pem);
    let header = "x-forwarded-tls-client-cert";
    allowed(&f.ask(&token, &[(header, &leaf)], None).await);
    // Traefik before 3 URL-escaped the value; a chain is comma-separated, the leaf first.
    allowed(&f.ask(&token, &[(header, &url_encode(&leaf))], None).await);
    let chain = format!("{leaf},{}", armorless(&other_pem));
    allowed(&f.ask(&token, &[(header, &chain)], None).await);
    let reversed = format!("{},{leaf}", armorless(&other_pem));
    refused(
        &f.ask(&token, &[(header, &reversed)], None).await,
        "mtls_mismatch",
        "another certificate",
    );
    refused(
        &f.ask(&token, &[(header, "not base64!")], None).await,
        "mtls_header_malformed",
        "not base64 DER",
    );
    refused(
        &f.ask(&token, &[(header, "")], None).await,
        "mtls_no_certificate",
        "without a client certificate",
    );
}

#[tokio::test]
async fn a_malformed_thumbprint_claim_is_refused() {
    let f = Fixture::new(CertificateSource::Listener, DpopMode::Allowed);
    let (_, der) = certificate("localhost");
    let token = f
        .issuer
        .token(json!({"scope": "read:users", "cnf": {"x5t#S256": "tooshort"}}));
    refused(
        &f.ask(&token, &[], Some(CertificateThumbprint::of_der(&der)))
            .await,
        "mtls_bad_claim",
        "not a base64url SHA-256",
    );
    let token = f
        .issuer
        .token(json!({"scope": "read:users", "cnf": {"x5t#S256": 42}}));
    let Outcome::Deny(denial) = f
        .ask(&token, &[], Some(CertificateThumbprint::of_der(&der)))
        .await
    else {
        panic!("a numeric x5t#S256")
    };
    assert_eq!(denial.kind(), "unchecked_binding");
}
