//! DPoP (RFC 9449) through the engine, with the verified-token cache on: every check of a
//! sender-constrained request has a refusing test (a replayed `jti`, a proof for another token,
//! another method, another URI, `iat` out of the window, `none` and HS256 proofs, a private key
//! in `jwk`, a thumbprint mismatch, two `DPoP` headers, a downgrade to `Bearer`), the modes
//! (`off`, `allowed`, `required`) decide as documented, and refusals carry RFC 9449 challenges.
//! With a shared replay store (Redis) that does not answer, `[revocation] dpop_replay` decides:
//! `local` accepts on the per-process cache and counts it, `fail-closed` refuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use http::{HeaderMap, HeaderValue};
use jwtgate_core::dpop::{access_token_hash, key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use jwtgate_engine::dpop::{DpopMode, DpopReplayFallback, DpopSection};
use jwtgate_engine::{Engine, FrontEnd, Outcome, RequestView, TokenInput, Unmatched};
use jwtgate_revocation::{Revocations, SharedDpopReplay, SourceLabel};
use jwtgate_test_support::Issuer;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::Config;

const ORIGIN: &str = "https://api.example.com";
const PATH: &str = "/api/users";
const DEFAULT_ROUTES: &str = "[[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n";

struct Fixture {
    issuer: Issuer,
    engine: Engine,
    client: SigningKey,
}

impl Fixture {
    fn new(mode: DpopMode) -> Fixture {
        Fixture::with_issuer_mode(mode, None)
    }

    fn with_issuer_mode(mode: DpopMode, issuer_mode: Option<&str>) -> Fixture {
        let section = DpopSection {
            mode,
            ..DpopSection::default()
        };
        Fixture::with_section(&section, issuer_mode, DEFAULT_ROUTES)
    }

    fn with_section(section: &DpopSection, issuer_mode: Option<&str>, routes: &str) -> Fixture {
        let issuer = Issuer::new();
        let issuer_dpop = issuer_mode.map_or(String::new(), |m| format!("dpop = \"{m}\"\n"));
        let toml = format!("{}{issuer_dpop}{routes}", issuer.issuer_toml());
        let config = Config::parse(&toml, "test.toml").unwrap();
        let dpop =
            jwtgate_engine::rules::dpop_policy(section, &config.issuers, None, "test.toml", None)
                .unwrap();
        let engine = config
            .engine_with(&config.routes, Unmatched::resolve(None, true), "test.toml")
            .unwrap()
            .with_cache(support::cache())
            .with_dpop(dpop);
        Fixture {
            issuer,
            engine,
            client: SigningKey::generate(Algorithm::ES256, "client").unwrap(),
        }
    }

    /// An access token bound to the client's key.
    fn bound_token(&self) -> String {
        let jkt = key_thumbprint(&self.client).unwrap();
        self.issuer
            .token(json!({"scope": "read:users", "cnf": {"jkt": jkt}}))
    }

    fn bearer_token(&self) -> String {
        self.issuer.token(json!({"scope": "read:users"}))
    }

    fn proof(&self, token: &str, jti: &str) -> String {
        self.proof_with(ProofClaims {
            method: "GET",
            uri: &format!("{ORIGIN}{PATH}"),
            access_token: Some(token),
            iat: self.issuer.now(),
            jti,
            nonce: None,
        })
    }

    fn proof_with(&self, claims: ProofClaims<'_>) -> String {
        make_proof(&self.client, &claims).unwrap()
    }

    async fn ask(&self, authorization: &str, proofs: &[&str]) -> Outcome {
        self.ask_at("GET", PATH, Some(ORIGIN), authorization, proofs)
            .await
    }

    async fn ask_at(
        &self,
        method: &str,
        target: &str,
        origin: Option<&str>,
        authorization: &str,
        proofs: &[&str],
    ) -> Outcome {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        for proof in proofs {
            headers.append("dpop", HeaderValue::from_str(proof).unwrap());
        }
        self.decide(method, target, origin, &headers).await
    }

    /// A `GET` of `target` without any token.
    async fn ask_without_token(&self, target: &str) -> Outcome {
        self.decide("GET", target, Some(ORIGIN), &HeaderMap::new())
            .await
    }

    async fn decide(
        &self,
        method: &str,
        target: &str,
        origin: Option<&str>,
        headers: &HeaderMap,
    ) -> Outcome {
        let request = RequestView {
            front: FrontEnd::Inline,
            origin,
            method,
            target,
            headers: headers.into(),
            token: TokenInput::FromRequest,
            client_certificate: None,
            now: self.issuer.now(),
        };
        self.engine.decide(&request).await
    }
}

fn refused(outcome: &Outcome) -> (u16, String, String, &'static str) {
    match outcome {
        Outcome::Deny(denial) => (
            denial.status(),
            denial.challenge(),
            denial.description().to_owned(),
            denial.kind(),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_refused(outcome: &Outcome, code: &str, description_part: &str) {
    let (status, challenge, description, _) = refused(outcome);
    assert_eq!(status, 401, "{challenge}");
    assert!(
        challenge.starts_with("DPoP algs=\""),
        "a DPoP challenge first: {challenge}"
    );
    assert!(
        challenge.contains(&format!("error=\"{code}\"")),
        "{challenge}"
    );
    assert!(
        description.contains(description_part),
        "{description:?} should mention {description_part:?}"
    );
}

#[tokio::test]
async fn a_bound_token_with_its_proof_passes_every_time_with_a_fresh_proof() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    for jti in ["p-1", "p-2", "p-3"] {
        let outcome = f
            .ask(&format!("DPoP {token}"), &[&f.proof(&token, jti)])
            .await;
        assert!(matches!(outcome, Outcome::Allow(_)), "{outcome:?}");
    }
    // The token is in the verified-token cache now; the proof is still checked on every hit.
    let outcome = f.ask(&format!("DPoP {token}"), &[]).await;
    assert_refused(&outcome, "invalid_dpop_proof", "no DPoP proof");
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    let proof = f.proof(&token, "once");
    assert!(matches!(
        f.ask(&format!("DPoP {token}"), &[&proof]).await,
        Outcome::Allow(_)
    ));
    let again = f.ask(&format!("DPoP {token}"), &[&proof]).await;
    assert_refused(&again, "invalid_dpop_proof", "already used");
}

#[tokio::test]
async fn each_failed_proof_check_is_named() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    let other_token = f.bound_token().replace("read:users", "read:users ");
    let now = f.issuer.now();
    let uri = format!("{ORIGIN}{PATH}");
    let base = ProofClaims {
        method: "GET",
        uri: &uri,
        access_token: Some(&token),
        iat: now,
        jti: "j",
        nonce: None,
    };
    let cases: Vec<(String, &str)> = vec![
        (
            f.proof_with(ProofClaims {
                access_token: Some(&other_token),
                jti: "a",
                ..base
            }),
            "another token",
        ),
        (
            f.proof_with(ProofClaims {
                method: "POST",
                jti: "b",
                ..base
            }),
            "method",
        ),
        (
            f.proof_with(ProofClaims {
                uri: "https://api.example.com/api/admin",
                jti: "c",
                ..base
            }),
            "is for https://api.example.com/api/admin",
        ),
        (
            f.proof_with(ProofClaims {
                uri: "https://evil.example/api/users",
                jti: "d",
                ..base
            }),
            "is for https://evil.example/api/users",
        ),
        (
            f.proof_with(ProofClaims {
                iat: now - 120,
                jti: "e",
                ..base
            }),
            "window",
        ),
        (
            f.proof_with(ProofClaims {
                iat: now + 120,
                jti: "f",
                ..base
            }),
            "window",
        ),
    ];
    for (proof, expected) in cases {
        let outcome = f.ask(&format!("DPoP {token}"), &[&proof]).await;
        assert_refused(&outcome, "invalid_dpop_proof", expected);
    }
}

/// Proofs built by hand: `none` and HS256, a private key in `jwk`, another key's proof.
#[tokio::test]
async fn forged_proofs_are_refused() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    let now = f.issuer.now();
    let b64 = |value: &serde_json::Value| {
        jwtgate_core::internal::base64url::encode(&serde_json::to_vec(value).unwrap())
    };
    let mut jwk = f.client.public_jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    let payload = json!({"jti": "forged", "htm": "GET", "htu": format!("{ORIGIN}{PATH}"),
        "iat": now, "ath": access_token_hash(token.as_bytes())});
    let none = format!(
        "{}.{}.",
        b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk})),
        b64(&payload)
    );
    let outcome = f.ask(&format!("DPoP {token}"), &[&none]).await;
    assert_refused(&outcome, "invalid_dpop_proof", "alg");

    let hs = jwtgate_core::sign::sign_hmac(
        Algorithm::HS256,
        b"0123456789abcdef0123456789abcdef",
        &serde_json::to_vec(&json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk})).unwrap(),
        &serde_json::to_vec(&payload).unwrap(),
    )
    .unwrap();
    let outcome = f.ask(&format!("DPoP {token}"), &[&hs]).await;
    assert_refused(&outcome, "invalid_dpop_proof", "alg");

    let mut private = jwk.clone();
    private
        .as_object_mut()
        .unwrap()
        .insert("d".into(), json!("AAAA"));
    let with_private = f
        .client
        .sign_raw(
            &serde_json::to_vec(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}))
                .unwrap(),
            &serde_json::to_vec(&payload).unwrap(),
        )
        .unwrap();
    let outcome = f.ask(&format!("DPoP {token}"), &[&with_private]).await;
    assert_refused(&outcome, "invalid_dpop_proof", "private key material");

    let thief = SigningKey::generate(Algorithm::ES256, "thief").unwrap();
    let stolen = make_proof(
        &thief,
        &ProofClaims {
            method: "GET",
            uri: &format!("{ORIGIN}{PATH}"),
            access_token: Some(&token),
            iat: now,
            jti: "thief",
            nonce: None,
        },
    )
    .unwrap();
    let outcome = f.ask(&format!("DPoP {token}"), &[&stolen]).await;
    assert_refused(
        &outcome,
        "invalid_dpop_proof",
        "not the key the access token is bound to",
    );
}

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    let outcome = f
        .ask(
            &format!("DPoP {token}"),
            &[&f.proof(&token, "x"), &f.proof(&token, "y")],
        )
        .await;
    assert_refused(&outcome, "invalid_dpop_proof", "more than one DPoP header");
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_a_downgrade() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    // Warm the cache with a proper request first: the downgrade is refused on a cache hit too.
    assert!(matches!(
        f.ask(&format!("DPoP {token}"), &[&f.proof(&token, "warm")])
            .await,
        Outcome::Allow(_)
    ));
    let outcome = f.ask(&format!("Bearer {token}"), &[]).await;
    assert_refused(&outcome, "invalid_token", "DPoP-bound");
    let (_, challenge, _, kind) = refused(&outcome);
    assert_eq!(kind, "dpop_downgrade");
    assert!(
        challenge.ends_with(", Bearer realm=\"jwtgate\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn modes() {
    // allowed: bearer tokens pass as before, with the plain Bearer challenge on refusals.
    let allowed = Fixture::new(DpopMode::Allowed);
    let bearer = allowed.bearer_token();
    assert!(matches!(
        allowed.ask(&format!("Bearer {bearer}"), &[]).await,
        Outcome::Allow(_)
    ));
    let (_, challenge, _, _) = refused(&allowed.ask("Bearer not.a.jwt", &[]).await);
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    // The DPoP scheme with an unbound token.
    let outcome = allowed
        .ask(&format!("DPoP {bearer}"), &[&allowed.proof(&bearer, "u")])
        .await;
    assert_refused(&outcome, "invalid_token", "not DPoP-bound");

    // required: a bearer token is refused with a DPoP challenge and no Bearer one; so is a
    // request without any token.
    let required = Fixture::new(DpopMode::Required);
    let bearer = required.bearer_token();
    let outcome = required.ask(&format!("Bearer {bearer}"), &[]).await;
    assert_refused(&outcome, "invalid_token", "requires DPoP");
    let (_, challenge, _, _) = refused(&outcome);
    assert!(!challenge.contains("Bearer"), "{challenge}");
    let (status, challenge, _, _) = refused(&required.ask_without_token(PATH).await);
    assert_eq!(
        (status, challenge.as_str()),
        (
            401,
            "DPoP algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA\""
        )
    );
    let token = required.bound_token();
    assert!(matches!(
        required
            .ask(&format!("DPoP {token}"), &[&required.proof(&token, "r")])
            .await,
        Outcome::Allow(_)
    ));

    // off: bearer tokens only.
    let off = Fixture::new(DpopMode::Off);
    let token = off.bound_token();
    let (status, _, description, _) = refused(
        &off.ask(&format!("DPoP {token}"), &[&off.proof(&token, "o")])
            .await,
    );
    assert_eq!(status, 400);
    assert!(description.contains("not accepted"), "{description}");
    let (status, _, description, _) = refused(&off.ask(&format!("Bearer {token}"), &[]).await);
    assert_eq!(status, 401);
    assert!(description.contains("DPoP-bound"), "{description}");
}

#[tokio::test]
async fn an_issuer_can_require_dpop() {
    let f = Fixture::with_issuer_mode(DpopMode::Allowed, Some("required"));
    let bearer = f.bearer_token();
    let outcome = f.ask(&format!("Bearer {bearer}"), &[]).await;
    assert_refused(&outcome, "invalid_token", "requires DPoP");
}

#[tokio::test]
async fn a_proof_needs_a_known_request_uri() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f.bound_token();
    let outcome = f
        .ask_at(
            "GET",
            PATH,
            None,
            &format!("DPoP {token}"),
            &[&f.proof(&token, "n")],
        )
        .await;
    let (status, _, description, kind) = refused(&outcome);
    assert_eq!((status, kind), (403, "dpop_uri_unknown"));
    assert!(description.contains("X-Forwarded-Proto"), "{description}");
    // The origin is compared after normalisation; the query is not part of htu.
    let outcome = f
        .ask_at(
            "GET",
            &format!("{PATH}?page=2"),
            Some("HTTPS://API.example.com:443"),
            &format!("DPoP {token}"),
            &[&f.proof(&token, "q")],
        )
        .await;
    assert!(matches!(outcome, Outcome::Allow(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_certificate_bound_token_never_passes_as_a_bearer_token_without_a_certificate_source() {
    let f = Fixture::new(DpopMode::Allowed);
    let token = f
        .issuer
        .token(json!({"scope": "read:users", "cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}));
    let (status, challenge, description, kind) =
        refused(&f.ask(&format!("Bearer {token}"), &[]).await);
    assert_eq!((status, kind), (401, "mtls_not_configured"));
    assert!(description.contains("x5t#S256"), "{description}");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
}

#[tokio::test]
async fn server_nonces_are_asked_for_and_then_accepted() {
    let section = DpopSection {
        nonce: true,
        ..DpopSection::default()
    };
    let f = Fixture::with_section(&section, None, DEFAULT_ROUTES);
    let token = f.bound_token();
    let outcome = f
        .ask(&format!("DPoP {token}"), &[&f.proof(&token, "n-0")])
        .await;
    assert_refused(&outcome, "use_dpop_nonce", "nonce");
    let Outcome::Deny(denial) = &outcome else {
        panic!("{outcome:?}")
    };
    let nonce = denial
        .dpop_nonce()
        .expect("a DPoP-Nonce to retry with")
        .to_owned();
    let uri = format!("{ORIGIN}{PATH}");
    let retry = f.proof_with(ProofClaims {
        method: "GET",
        uri: &uri,
        access_token: Some(&token),
        iat: f.issuer.now(),
        jti: "n-1",
        nonce: Some(&nonce),
    });
    let outcome = f.ask(&format!("DPoP {token}"), &[&retry]).await;
    let Outcome::Allow(allow) = &outcome else {
        panic!("{outcome:?}")
    };
    // The nonce rides on the success too (RFC 9449 §8.2), for the next proof.
    assert_eq!(allow.dpop_nonce.as_deref(), Some(nonce.as_str()));
    let bearer = f.ask(&format!("Bearer {}", f.bearer_token()), &[]).await;
    let Outcome::Allow(allow) = &bearer else {
        panic!("{bearer:?}")
    };
    assert_eq!(allow.dpop_nonce, None, "a bearer request gets no nonce");
    let stale = f.proof_with(ProofClaims {
        method: "GET",
        uri: &uri,
        access_token: Some(&token),
        iat: f.issuer.now(),
        jti: "n-2",
        nonce: Some("not-the-nonce"),
    });
    let outcome = f.ask(&format!("DPoP {token}"), &[&stale]).await;
    assert_refused(&outcome, "use_dpop_nonce", "nonce");
}

#[tokio::test]
async fn a_route_can_require_dpop() {
    let routes =
        "[[routes]]\npath = \"/api/admin/*\"\nscopes = [\"read:users\"]\ndpop = \"required\"\n\
                  [[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]\n";
    let f = Fixture::with_section(&DpopSection::default(), None, routes);
    let bearer = f.bearer_token();
    let ask = |target: &'static str| {
        let authorization = format!("Bearer {bearer}");
        let f = &f;
        async move {
            f.ask_at("GET", target, Some(ORIGIN), &authorization, &[])
                .await
        }
    };
    assert!(matches!(ask(PATH).await, Outcome::Allow(_)));
    let outcome = ask("/api/admin/keys").await;
    assert_refused(&outcome, "invalid_token", "requires DPoP");
    let (_, challenge, _, _) = refused(&outcome);
    assert!(!challenge.contains("Bearer"), "{challenge}");
    // Without any token, the required route's challenge is DPoP only.
    let (status, challenge, _, _) = refused(&f.ask_without_token("/api/admin/keys").await);
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
}

#[test]
fn a_public_route_cannot_set_dpop() {
    let toml =
        "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_file = \"/nonexistent\"\n\
                [[routes]]\npath = \"/health\"\npublic = true\ndpop = \"required\"\n";
    let config = Config::parse(toml, "test.toml").unwrap();
    let error = config
        .engine_with(&config.routes, Unmatched::resolve(None, true), "test.toml")
        .err()
        .unwrap();
    assert!(error.to_string().contains("dpop"), "{error}");
}

/// The engine with its rules (and so its DPoP replay store) from a Redis nothing listens on.
fn with_unreachable_redis(f: Fixture, fallback: DpopReplayFallback) -> Fixture {
    let url = format!("redis://127.0.0.1:{}/", jwtgate_test_support::free_port());
    let replay = SharedDpopReplay::new(&url, "t:", Duration::from_millis(50), fallback).unwrap();
    let revocations = Revocations::unsynced(SourceLabel::Redis(url), Duration::from_secs(60))
        .with_dpop_replay(Arc::new(replay));
    let engine = f.engine.with_revocation(Arc::new(revocations));
    // A DPoP policy set afterwards (a reload builds it first, but order must not matter) keeps
    // the shared store.
    let dpop =
        jwtgate_engine::rules::dpop_policy(&DpopSection::default(), &[], None, "test.toml", None)
            .unwrap();
    let engine = engine.with_dpop(dpop);
    assert_eq!(
        engine.dpop().shared_replay_store().map(|(_, f)| f),
        Some(fallback)
    );
    Fixture { engine, ..f }
}

#[tokio::test]
async fn an_unreachable_replay_store_falls_back_to_the_local_cache_and_counts_it() {
    let f = with_unreachable_redis(Fixture::new(DpopMode::Allowed), DpopReplayFallback::Local);
    let token = f.bound_token();
    let first = f.proof(&token, "fresh-1");
    for proof in [&first, &f.proof(&token, "fresh-2")] {
        let outcome = f.ask(&format!("DPoP {token}"), &[proof]).await;
        assert!(matches!(outcome, Outcome::Allow(_)), "{outcome:?}");
    }
    assert_eq!(f.engine.metrics().dpop_replay_fallbacks(), 2);
    // A replay to the same process is still refused, by the local cache, without asking Redis.
    let again = f.ask(&format!("DPoP {token}"), &[&first]).await;
    assert_refused(&again, "invalid_dpop_proof", "already used");
    assert_eq!(f.engine.metrics().dpop_replay_fallbacks(), 2);
    let rendered = f.engine.metrics().render(f.engine.registry());
    assert!(
        rendered.contains("jwtgate_dpop_replay_fallback_total 2\n"),
        "{rendered}"
    );
    // Bearer tokens never touch the replay stores.
    let bearer = f.bearer_token();
    assert!(matches!(
        f.ask(&format!("Bearer {bearer}"), &[]).await,
        Outcome::Allow(_)
    ));
    assert_eq!(f.engine.metrics().dpop_replay_fallbacks(), 2);
}

#[tokio::test]
async fn an_unreachable_replay_store_refuses_proofs_when_fail_closed() {
    let f = with_unreachable_redis(
        Fixture::new(DpopMode::Allowed),
        DpopReplayFallback::FailClosed,
    );
    let token = f.bound_token();
    let outcome = f
        .ask(&format!("DPoP {token}"), &[&f.proof(&token, "fresh-1")])
        .await;
    assert_refused(
        &outcome,
        "invalid_dpop_proof",
        "cannot be checked for replay across replicas",
    );
    let (_, _, description, kind) = refused(&outcome);
    assert_eq!(kind, "dpop_replay_unavailable");
    // The store's address is for the logs, not for clients.
    assert!(!description.contains("127.0.0.1"), "{description}");
    assert_eq!(f.engine.metrics().dpop_replay_fallbacks(), 0);
    // Bearer tokens are not affected.
    let bearer = f.bearer_token();
    assert!(matches!(
        f.ask(&format!("Bearer {bearer}"), &[]).await,
        Outcome::Allow(_)
    ));
}
