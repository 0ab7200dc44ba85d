//! The claims policy (DESIGN.md §Security policy items 7–8 and the optional rules), on real
//! signed tokens: `iss` required and exact (trailing slash), `aud` string or array of strings,
//! `exp` required, NumericDate types (a string `exp` is invalid, never ignored), fractional and
//! huge values without overflow, leeway boundaries exactly, scopes through `scope`/`scp`/
//! `permissions` (exact match, all-of and any-of), `invalid_token` winning over
//! `insufficient_scope`, [`Verified::require`] for route requirements, strict RFC 9068 mode,
//! allowed clients, maximum age and required claim values, and the cap on granted scopes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jwtgate_core::scope::ScopeMode;
use jwtgate_core::{
    ErrorCode, Policy, PolicyError, Reason, Rejection, ScopeRequirement, Verified, Verifier,
};
use serde_json::{json, Value};

/// Signs `claims` with the Ed25519 key (fast) and verifies under `policy` at `now`.
fn check(policy: Policy, claims: &Value, now: i64) -> Result<Verified, Rejection> {
    let token = sign(&keys().ed, claims);
    verify(policy, all_keys(), &token, now)
}

fn default_check(claims: &Value) -> Result<Verified, Rejection> {
    check(policy().build().unwrap(), claims, NOW)
}

fn reason(result: Result<Verified, Rejection>) -> Reason {
    match result {
        Ok(v) => panic!("accepted: {:?}", v.claims()),
        Err(r) => {
            // Every claims failure is a token problem, never a request problem.
            if !matches!(r.reason(), Reason::InsufficientScope { .. }) {
                assert_eq!(r.code(), ErrorCode::InvalidToken, "{r}");
            }
            r.reason().clone()
        }
    }
}

fn rejection(result: Result<Verified, Rejection>) -> Rejection {
    match result {
        Ok(v) => panic!("accepted: {:?}", v.claims()),
        Err(r) => r,
    }
}

fn invalid(name: &'static str, expected: &'static str) -> Reason {
    Reason::InvalidClaim { name, expected }
}

const NUMERIC: &str = "a number (NumericDate)";

#[test]
fn the_baseline_token_is_accepted() {
    let v = default_check(&base_claims()).unwrap();
    assert_eq!(v.issuer(), ISS);
    assert_eq!(v.subject(), Some("auth0|alice"));
    assert_eq!(v.scopes().collect::<Vec<_>>(), vec!["openid", "read:users"]);
}

// ---------------------------------------------------------------------------------------------
// iss
// ---------------------------------------------------------------------------------------------

#[test]
fn iss_is_required_and_a_string() {
    assert_eq!(
        reason(default_check(&claims(json!({"iss": null})))),
        Reason::MissingClaim("iss")
    );
    for bad in [json!(1), json!([ISS]), json!({"url": ISS}), json!(true)] {
        let r = rejection(default_check(&claims(json!({ "iss": bad }))));
        assert_eq!(r.reason(), &invalid("iss", "a string"));
        assert_eq!(r.description(), "the \"iss\" claim must be a string");
    }
}

#[test]
fn iss_must_equal_a_configured_issuer_byte_for_byte() {
    for other in [
        "https://tenant.example.com",
        "https://tenant.example.com//",
        "HTTPS://tenant.example.com/",
        "https://TENANT.example.com/",
        "https://tenant.example.com/ ",
        "https://evil.example.com/",
        "",
    ] {
        let r = rejection(default_check(&claims(json!({ "iss": other }))));
        assert_eq!(
            r.reason(),
            &Reason::IssuerMismatch {
                found: other.into(),
                expected: vec![ISS.into()]
            },
            "{other:?}"
        );
    }
    // Several issuers: any one matches.
    let two = policy().issuer("https://other.example/").build().unwrap();
    assert!(check(two, &claims(json!({"iss": "https://other.example/"})), NOW).is_ok());
}

#[test]
fn a_trailing_slash_difference_is_named() {
    let r = rejection(default_check(&claims(
        json!({"iss": "https://tenant.example.com"}),
    )));
    let d = r.description();
    assert!(d.contains("only by a trailing slash"), "{d}");
    assert!(d.contains("\"https://tenant.example.com\""), "{d}");
    assert!(r.hint().is_some_and(|h| h.contains("trailing slash")));

    // The other way round: configured without, token with.
    let no_slash = Policy::builder()
        .issuer("https://tenant.example.com")
        .audience(AUD)
        .build()
        .unwrap();
    let r = rejection(check(no_slash, &base_claims(), NOW));
    assert!(r.description().contains("only by a trailing slash"));

    // A genuinely different issuer does not get the trailing-slash wording.
    let r = rejection(default_check(&claims(
        json!({"iss": "https://evil.example/"}),
    )));
    assert!(!r.description().contains("trailing slash"));
    assert!(r.description().contains("is not accepted"));
}

// ---------------------------------------------------------------------------------------------
// aud
// ---------------------------------------------------------------------------------------------

#[test]
fn aud_may_be_a_string_or_an_array_of_strings() {
    assert!(default_check(&claims(json!({"aud": AUD}))).is_ok());
    assert!(default_check(&claims(json!({"aud": [AUD]}))).is_ok());
    assert!(default_check(&claims(
        json!({"aud": ["https://tenant.example.com/userinfo", AUD]})
    ))
    .is_ok());
    // Several configured audiences: any one matches.
    let two = policy().audience("https://b.example").build().unwrap();
    assert!(check(two, &claims(json!({"aud": ["https://b.example"]})), NOW).is_ok());
}

#[test]
fn aud_is_required() {
    assert_eq!(
        reason(default_check(&claims(json!({"aud": null})))),
        Reason::MissingClaim("aud")
    );
}

#[test]
fn aud_of_the_wrong_type_is_invalid() {
    let expected = invalid("aud", "a string or an array of strings");
    for bad in [
        json!(1),
        json!({"aud": AUD}),
        json!(true),
        // A non-string element is invalid even next to the right audience.
        json!([AUD, 1]),
        json!([1, AUD]),
        json!([AUD, null]),
        json!([[AUD]]),
    ] {
        assert_eq!(
            reason(default_check(&claims(json!({ "aud": bad })))),
            expected,
            "{bad}"
        );
    }
}

#[test]
fn aud_must_contain_a_configured_audience() {
    for (aud, found) in [
        (
            json!("https://api.example.com/"),
            vec!["https://api.example.com/"],
        ),
        (
            json!(["https://other.example"]),
            vec!["https://other.example"],
        ),
        (json!([]), vec![]),
        (
            json!("HTTPS://api.example.com"),
            vec!["HTTPS://api.example.com"],
        ),
    ] {
        let r = rejection(default_check(&claims(json!({ "aud": aud }))));
        let Reason::AudienceMismatch {
            found: f,
            expected,
            id_token,
        } = r.reason()
        else {
            panic!("{r:?}");
        };
        assert_eq!(f, &found);
        assert_eq!(expected, &vec![AUD.to_owned()]);
        assert!(!id_token.any());
        assert!(r
            .description()
            .contains("does not include \"https://api.example.com\""));
        assert!(!r.description().contains("ID token"));
    }
}

// ---------------------------------------------------------------------------------------------
// exp / nbf / iat
// ---------------------------------------------------------------------------------------------

#[test]
fn exp_is_required() {
    let r = rejection(default_check(&claims(json!({"exp": null}))));
    assert_eq!(r.reason(), &Reason::MissingClaim("exp"));
    assert_eq!(r.description(), "the token has no \"exp\" claim");
}

#[test]
fn numeric_dates_must_be_numbers_never_ignored() {
    for name in ["exp", "nbf", "iat"] {
        for bad in [
            json!((NOW + 600).to_string()),
            json!("soon"),
            json!(true),
            json!([NOW + 600]),
            json!({"$date": NOW}),
        ] {
            let mut c = base_claims();
            c[name] = bad.clone();
            let r = rejection(default_check(&c));
            let name: &'static str = match name {
                "exp" => "exp",
                "nbf" => "nbf",
                _ => "iat",
            };
            assert_eq!(r.reason(), &invalid(name, NUMERIC), "{name}: {bad}");
            assert!(r.description().contains("must be a number"));
        }
    }
    // A JSON null is not a number either (it is not treated as absent).
    for name in ["exp", "nbf", "iat"] {
        let mut c = base_claims();
        c[name] = Value::Null;
        let r = rejection(default_check(&c));
        assert!(
            matches!(r.reason(), Reason::InvalidClaim { name: n, expected } if *n == name && *expected == NUMERIC),
            "{name}: {r:?}"
        );
    }
}

#[test]
fn expiry_boundary_without_leeway() {
    let p = || policy().build().unwrap();
    let exp = NOW + 100;
    let c = claims(json!({ "exp": exp }));
    assert!(check(p(), &c, exp - 1).is_ok());
    let r = rejection(check(p(), &c, exp));
    assert_eq!(
        r.reason(),
        &Reason::Expired {
            exp: exp as f64,
            now: exp,
            leeway: 0
        }
    );
    assert!(check(p(), &c, exp + 1).is_err());
}

#[test]
fn leeway_boundaries_are_exact() {
    const L: i64 = 30;
    let p = || policy().leeway(L as u64).build().unwrap();
    let exp = NOW;
    let c = claims(json!({ "exp": exp, "iat": NOW - 100 }));
    // now == exp + L - 1: accepted; now == exp + L: rejected.
    assert!(check(p(), &c, exp + L - 1).is_ok());
    let r = rejection(check(p(), &c, exp + L));
    assert_eq!(
        r.reason(),
        &Reason::Expired {
            exp: exp as f64,
            now: exp + L,
            leeway: 30
        }
    );
    assert!(
        r.description().contains("(leeway 30 s)"),
        "{}",
        r.description()
    );

    // nbf: rejected iff nbf > now + L.
    let c = claims(json!({ "nbf": NOW + L }));
    assert!(check(p(), &c, NOW).is_ok());
    let c = claims(json!({ "nbf": NOW + L + 1 }));
    assert_eq!(
        reason(check(p(), &c, NOW)),
        Reason::NotYetValid {
            nbf: (NOW + L + 1) as f64,
            now: NOW,
            leeway: 30
        }
    );
    // iat: rejected iff iat > now + L.
    let c = claims(json!({ "iat": NOW + L }));
    assert!(check(p(), &c, NOW).is_ok());
    let c = claims(json!({ "iat": NOW + L + 1 }));
    assert_eq!(
        reason(check(p(), &c, NOW)),
        Reason::IssuedInFuture {
            iat: (NOW + L + 1) as f64,
            now: NOW,
            leeway: 30
        }
    );
    // Without leeway, nbf == now and iat == now are fine, one second later is not.
    let p0 = || policy().build().unwrap();
    assert!(check(p0(), &claims(json!({"nbf": NOW, "iat": NOW})), NOW).is_ok());
    assert!(check(p0(), &claims(json!({"nbf": NOW + 1})), NOW).is_err());
    assert!(check(p0(), &claims(json!({"iat": NOW + 1})), NOW).is_err());
}

#[test]
fn leeway_is_bounded_by_configuration() {
    assert_eq!(
        policy().leeway(86_401).build().err(),
        Some(PolicyError::LeewayTooLarge(86_401))
    );
    assert!(policy().leeway(86_400).build().is_ok());
}

#[test]
fn fractional_times_are_compared_exactly() {
    let p = || policy().build().unwrap();
    // exp = now + 0.5: still valid at now, expired at now + 1.
    let c = claims(json!({ "exp": NOW as f64 + 0.5 }));
    assert!(check(p(), &c, NOW).is_ok());
    assert!(check(p(), &c, NOW + 1).is_err());
    // exp = now - 0.5 has expired.
    let c = claims(json!({ "exp": NOW as f64 - 0.5 }));
    assert!(matches!(
        reason(check(p(), &c, NOW)),
        Reason::Expired { .. }
    ));
    // exp = now + 0.001 is valid at now; exactly now is not; 1800000000.0 equals 1800000000.
    assert!(check(p(), &claims(json!({"exp": NOW as f64 + 0.001})), NOW).is_ok());
    let text = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{NOW}.0}}"#);
    let token = sign_raw(&keys().ed, r#"{"alg":"EdDSA","kid":"ed-1"}"#, &text);
    assert!(matches!(reject(&token).reason(), Reason::Expired { .. }));
    let text = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{}.0}}"#, NOW + 1);
    accept(&sign_raw(
        &keys().ed,
        r#"{"alg":"EdDSA","kid":"ed-1"}"#,
        &text,
    ));
    // nbf = now + 0.5 is in the future (no leeway).
    assert!(matches!(
        reason(check(p(), &claims(json!({"nbf": NOW as f64 + 0.5})), NOW)),
        Reason::NotYetValid { .. }
    ));
    // With leeway 10, nbf = now + 10.5 is rejected and now + 10.0 accepted.
    let pl = || policy().leeway(10).build().unwrap();
    assert!(check(pl(), &claims(json!({"nbf": NOW as f64 + 10.5})), NOW).is_err());
    assert!(check(pl(), &claims(json!({"nbf": NOW as f64 + 10.0})), NOW).is_ok());
    // exp in scientific notation.
    let text = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":1.8000006e9}}"#);
    accept(&sign_raw(
        &keys().ed,
        r#"{"alg":"EdDSA","kid":"ed-1"}"#,
        &text,
    ));
}

fn raw_claims_token(times: &str) -> String {
    let text = format!(r#"{{"iss":"{ISS}","aud":"{AUD}",{times}}}"#);
    sign_raw(&keys().ed, r#"{"alg":"EdDSA","kid":"ed-1"}"#, &text)
}

#[test]
fn huge_and_extreme_times_do_not_overflow() {
    // Far-future expiry: valid (it is a real number larger than now).
    for exp in [
        "1e300",
        "18446744073709551616",
        "18446744073709551615",
        "9223372036854775807",
        "9223372036854775808",
        "1.7976931348623157e308",
    ] {
        let token = raw_claims_token(&format!(r#""exp":{exp}"#));
        accept(&token);
        // Even at the end of time with maximum leeway, nothing panics.
        let v = Verifier::new(policy().leeway(86_400).build().unwrap(), all_keys());
        let _ = v.verify(token.as_bytes(), i64::MAX);
        let _ = v.verify(token.as_bytes(), i64::MIN);
    }
    // Far-past expiry: expired.
    for exp in [
        "-1e300",
        "-18446744073709551616",
        "-9223372036854775808",
        "0",
        "-0.5",
    ] {
        let r = reject(&raw_claims_token(&format!(r#""exp":{exp}"#)));
        assert!(matches!(r.reason(), Reason::Expired { .. }), "{exp}: {r:?}");
    }
    // Huge nbf / iat are in the future, not wrapped into the past.
    for value in ["1e300", "18446744073709551616", "9223372036854775808"] {
        let r = reject(&raw_claims_token(&format!(r#""exp":1e300,"nbf":{value}"#)));
        assert!(matches!(r.reason(), Reason::NotYetValid { .. }), "{value}");
        let r = reject(&raw_claims_token(&format!(r#""exp":1e300,"iat":{value}"#)));
        assert!(
            matches!(r.reason(), Reason::IssuedInFuture { .. }),
            "{value}"
        );
    }
    // Numbers JSON cannot represent as finite doubles are malformed claims.
    let r = reject(&raw_claims_token(r#""exp":1e400"#));
    assert!(matches!(r.reason(), Reason::BadPayload(_)), "{r:?}");
    // Boundary times for `now` itself.
    let v = Verifier::new(policy().leeway(86_400).build().unwrap(), all_keys());
    let token = raw_claims_token(r#""exp":-9223372036854775808,"nbf":9223372036854775807"#);
    assert!(v.verify(token.as_bytes(), i64::MIN).is_err());
    assert!(v.verify(token.as_bytes(), i64::MAX).is_err());
}

// ---------------------------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------------------------

fn needs(requirement: ScopeRequirement) -> Policy {
    policy().scopes(requirement).build().unwrap()
}

fn scope_check(requirement: ScopeRequirement, grant: Value) -> Result<Verified, Rejection> {
    let mut c = claims(json!({"scope": null}));
    merge(&mut c, grant);
    check(needs(requirement), &c, NOW)
}

#[test]
fn scopes_are_granted_by_scope_scp_and_permissions() {
    let req = || ScopeRequirement::all_of(["read:users"]);
    for grant in [
        json!({"scope": "read:users"}),
        json!({"scope": "openid profile read:users email"}),
        json!({"scope": "  read:users  "}),
        json!({"scp": "read:users"}),
        json!({"scp": "openid read:users"}),
        json!({"scp": ["openid", "read:users"]}),
        json!({"permissions": ["read:users"]}),
        json!({"scope": "openid", "permissions": ["write:users", "read:users"]}),
    ] {
        let v = scope_check(req(), grant.clone());
        assert!(v.is_ok(), "{grant}: {v:?}");
    }
}

#[test]
fn scopes_match_exactly_and_case_sensitively() {
    let req = || ScopeRequirement::all_of(["read:users"]);
    for grant in [
        json!({"scope": "read:users2"}),
        json!({"scope": "read:user"}),
        json!({"scope": "Read:Users"}),
        json!({"scope": "read:users:all"}),
        json!({"scope": "xread:users"}),
        json!({"scope": "read:users,write:users"}),
        json!({"scope": "read:users\twrite:users"}),
        json!({"scp": ["read:users2"]}),
        json!({"permissions": ["read:users2", "READ:USERS"]}),
        // `permissions` must be an array, `scope` a string.
        json!({"permissions": "read:users"}),
        json!({"scope": ["read:users"]}),
        json!({}),
    ] {
        let r = rejection(scope_check(req(), grant.clone()));
        assert_eq!(r.code(), ErrorCode::InsufficientScope, "{grant}");
        assert_eq!(r.code().http_status(), 403);
        let Reason::InsufficientScope {
            required, missing, ..
        } = r.reason()
        else {
            panic!("{r:?}");
        };
        assert_eq!(required, &req());
        assert_eq!(missing, &vec!["read:users".to_owned()]);
        assert!(r.description().starts_with("missing scope read:users ("));
    }
}

#[test]
fn all_of_needs_every_scope() {
    let req = || ScopeRequirement::all_of(["read:users", "write:users"]);
    assert!(scope_check(req(), json!({"scope": "write:users read:users"})).is_ok());
    // Granted across different claims.
    assert!(scope_check(
        req(),
        json!({"scope": "read:users", "permissions": ["write:users"]})
    )
    .is_ok());
    let r = rejection(scope_check(req(), json!({"scope": "openid read:users"})));
    assert_eq!(
        r.reason(),
        &Reason::InsufficientScope {
            required: req(),
            missing: vec!["write:users".into()],
            granted: vec!["openid".into(), "read:users".into()],
            elsewhere: vec![],
        }
    );
    assert_eq!(
        r.description(),
        "missing scope write:users (the token grants: openid read:users)"
    );
    let r = rejection(scope_check(req(), json!({})));
    assert_eq!(
        r.description(),
        "missing scope read:users write:users (the token grants no scopes)"
    );
}

#[test]
fn any_of_needs_one_scope() {
    let req = || ScopeRequirement::any_of(["admin", "read:users"]);
    assert_eq!(req().mode(), ScopeMode::AnyOf);
    assert!(scope_check(req(), json!({"scope": "read:users"})).is_ok());
    assert!(scope_check(req(), json!({"scp": ["admin"]})).is_ok());
    let r = rejection(scope_check(req(), json!({"scope": "openid"})));
    assert_eq!(r.code(), ErrorCode::InsufficientScope);
    assert!(matches!(
        r.reason(),
        Reason::InsufficientScope { missing, .. } if missing == &vec!["admin".to_owned(), "read:users".to_owned()]
    ));
    assert_eq!(
        r.description(),
        "needs one of the scopes admin read:users (the token grants: openid)"
    );
}

#[test]
fn invalid_token_wins_over_insufficient_scope() {
    let p = || needs(ScopeRequirement::all_of(["admin"]));
    // Expired and short of scope: invalid_token (401), not 403.
    let r = rejection(check(p(), &claims(json!({"exp": NOW - 1})), NOW));
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    assert!(matches!(r.reason(), Reason::Expired { .. }));
    // Wrong audience and short of scope.
    let r = rejection(check(p(), &claims(json!({"aud": "x"})), NOW));
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    // Wrong issuer and short of scope.
    let r = rejection(check(p(), &claims(json!({"iss": "x"})), NOW));
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    // A bad signature and short of scope.
    let token = sign(&keys().es, &base_claims());
    let [h, p64, _] = segments(&token);
    let forged = format!(
        "{h}.{p64}.{}",
        segments(&sign(&keys().es2, &base_claims()))[2]
    );
    let r = verify(p(), all_keys(), &forged, NOW).unwrap_err();
    assert_eq!(r.code(), ErrorCode::InvalidToken);
    // Valid but short of scope: 403.
    let r = rejection(check(p(), &base_claims(), NOW));
    assert_eq!(r.code(), ErrorCode::InsufficientScope);
}

#[test]
fn route_requirements_with_verified_require() {
    let v = default_check(&claims(json!({
        "scope": "openid read:users",
        "permissions": ["write:orders"]
    })))
    .unwrap();
    assert_eq!(v.require(&ScopeRequirement::all_of(["read:users"])), Ok(()));
    assert_eq!(
        v.require(&ScopeRequirement::all_of(["read:users", "write:orders"])),
        Ok(())
    );
    assert_eq!(v.require(&ScopeRequirement::default()), Ok(()));
    assert_eq!(
        v.require(&ScopeRequirement::any_of(["admin", "write:orders"])),
        Ok(())
    );
    let r = v
        .require(&ScopeRequirement::all_of(["read:users", "admin"]))
        .unwrap_err();
    assert_eq!(r.code(), ErrorCode::InsufficientScope);
    assert_eq!(
        r.reason(),
        &Reason::InsufficientScope {
            required: ScopeRequirement::all_of(["read:users", "admin"]),
            missing: vec!["admin".into()],
            granted: vec!["openid".into(), "read:users".into(), "write:orders".into()],
            elsewhere: vec![],
        }
    );
    let r = v
        .require(&ScopeRequirement::all_of(["read:users2"]))
        .unwrap_err();
    assert_eq!(r.code(), ErrorCode::InsufficientScope);
}

#[test]
fn empty_scope_names_are_refused_by_configuration() {
    assert_eq!(
        policy()
            .scopes(ScopeRequirement::all_of(["read", ""]))
            .build()
            .err(),
        Some(PolicyError::Empty("a scope"))
    );
}

// ---------------------------------------------------------------------------------------------
// Strict RFC 9068 mode
// ---------------------------------------------------------------------------------------------

fn strict() -> Policy {
    policy().require_at_jwt(true).build().unwrap()
}

fn profile_claims() -> Value {
    claims(json!({"client_id": "spa-client", "jti": "id-123", "iat": NOW - 5}))
}

fn strict_check(typ: Option<&str>, c: &Value) -> Result<Verified, Rejection> {
    let k = keys();
    let token = match typ {
        Some(typ) => sign_h(&k.es, json!({ "typ": typ }), c),
        None => sign(&k.es, c),
    };
    verify(strict(), all_keys(), &token, NOW)
}

#[test]
fn strict_mode_requires_typ_at_jwt() {
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        assert!(strict_check(Some(typ), &profile_claims()).is_ok(), "{typ}");
    }
    let r = rejection(strict_check(None, &profile_claims()));
    assert_eq!(r.reason(), &Reason::NotAccessTokenType { typ: None });
    assert!(r.description().contains("typ is absent"));
    assert!(r.description().contains("RFC 9068"));
    for typ in ["JWT", "application/jwt"] {
        let r = rejection(strict_check(Some(typ), &profile_claims()));
        assert_eq!(
            r.reason(),
            &Reason::NotAccessTokenType {
                typ: Some(typ.into())
            }
        );
    }
    // Default mode accepts JWT and no typ.
    assert!(default_check(&profile_claims()).is_ok());
}

#[test]
fn strict_mode_requires_sub_client_id_jti_and_iat() {
    for name in ["sub", "client_id", "jti", "iat"] {
        let mut c = profile_claims();
        c.as_object_mut().unwrap().remove(name);
        let r = rejection(strict_check(Some("at+jwt"), &c));
        assert_eq!(
            r.reason(),
            &Reason::MissingClaim(match name {
                "sub" => "sub",
                "client_id" => "client_id",
                "jti" => "jti",
                _ => "iat",
            })
        );
        // Not required by default (Auth0's access tokens lack some of them).
        assert!(default_check(&c).is_ok(), "{name}");
    }
    // They must have the right types.
    for (name, bad, expected) in [
        ("sub", json!(42), "a string"),
        ("client_id", json!(["spa"]), "a string"),
        ("jti", json!(7), "a string"),
        ("iat", json!("yesterday"), NUMERIC),
    ] {
        let mut c = profile_claims();
        c[name] = bad;
        let r = rejection(strict_check(Some("at+jwt"), &c));
        assert!(
            matches!(r.reason(), Reason::InvalidClaim { name: n, expected: e } if *n == name && *e == expected),
            "{name}: {r:?}"
        );
    }
    // typ is checked first.
    let r = rejection(strict_check(Some("JWT"), &claims(json!({}))));
    assert!(matches!(r.reason(), Reason::NotAccessTokenType { .. }));
}

// ---------------------------------------------------------------------------------------------
// Allowed clients, maximum age, required claims
// ---------------------------------------------------------------------------------------------

#[test]
fn allowed_clients_via_azp_or_client_id() {
    let p = || {
        policy()
            .allowed_client("spa")
            .allowed_client("cli")
            .build()
            .unwrap()
    };
    assert!(check(p(), &claims(json!({"azp": "spa"})), NOW).is_ok());
    assert!(check(p(), &claims(json!({"client_id": "cli"})), NOW).is_ok());
    let r = rejection(check(p(), &claims(json!({"azp": "evil"})), NOW));
    assert_eq!(
        r.reason(),
        &Reason::ClientNotAllowed {
            client: Some("evil".into()),
            allowed: vec!["spa".into(), "cli".into()]
        }
    );
    assert!(r.description().contains("client \"evil\" is not allowed"));
    // azp takes precedence over client_id.
    assert!(check(
        p(),
        &claims(json!({"azp": "evil", "client_id": "spa"})),
        NOW
    )
    .is_err());
    // No client at all.
    let r = rejection(check(p(), &base_claims(), NOW));
    assert_eq!(
        r.reason(),
        &Reason::ClientNotAllowed {
            client: None,
            allowed: vec!["spa".into(), "cli".into()]
        }
    );
    assert!(r.description().contains("names no client"));
    // Case matters; non-strings are invalid.
    assert!(check(p(), &claims(json!({"azp": "SPA"})), NOW).is_err());
    assert_eq!(
        reason(check(p(), &claims(json!({"azp": ["spa"]})), NOW)),
        invalid("azp", "a string")
    );
    // Without the rule any client is fine.
    assert!(default_check(&claims(json!({"azp": "evil"}))).is_ok());
}

#[test]
fn maximum_age_since_iat() {
    let p = || policy().max_age(3600).build().unwrap();
    assert!(check(p(), &claims(json!({"iat": NOW - 3600})), NOW).is_ok());
    let r = rejection(check(p(), &claims(json!({"iat": NOW - 3601})), NOW));
    assert_eq!(
        r.reason(),
        &Reason::TooOld {
            iat: (NOW - 3601) as f64,
            now: NOW,
            max_age: 3600
        }
    );
    assert!(r.description().contains("maximum age of 3600 s"));
    // iat becomes required.
    assert_eq!(
        reason(check(p(), &claims(json!({"iat": null})), NOW)),
        Reason::MissingClaim("iat")
    );
    // Fractional: 0.5 s too old.
    assert!(check(p(), &claims(json!({"iat": (NOW - 3600) as f64 - 0.5})), NOW).is_err());
    // Leeway extends the age by L.
    let pl = || policy().max_age(3600).leeway(30).build().unwrap();
    assert!(check(pl(), &claims(json!({"iat": NOW - 3630})), NOW).is_ok());
    assert!(check(pl(), &claims(json!({"iat": NOW - 3631})), NOW).is_err());
}

#[test]
fn required_claim_values() {
    let p = || {
        policy()
            .require_claim("org_id", json!("acme"))
            .require_claim("tier", json!(2))
            .build()
            .unwrap()
    };
    assert!(check(p(), &claims(json!({"org_id": "acme", "tier": 2})), NOW).is_ok());
    let r = rejection(check(
        p(),
        &claims(json!({"org_id": "evil", "tier": 2})),
        NOW,
    ));
    assert_eq!(
        r.reason(),
        &Reason::ClaimValueMismatch {
            name: "org_id".into(),
            expected: json!("acme"),
            found: Some(json!("evil"))
        }
    );
    assert_eq!(
        r.description(),
        "claim \"org_id\" is \"evil\", expected \"acme\""
    );
    let r = rejection(check(p(), &claims(json!({"tier": 2})), NOW));
    assert_eq!(
        r.reason(),
        &Reason::ClaimValueMismatch {
            name: "org_id".into(),
            expected: json!("acme"),
            found: None
        }
    );
    assert!(r.description().contains("is missing"));
    // Types matter: "2" is not 2, ["acme"] is not "acme".
    assert!(check(p(), &claims(json!({"org_id": "acme", "tier": "2"})), NOW).is_err());
    assert!(check(p(), &claims(json!({"org_id": ["acme"], "tier": 2})), NOW).is_err());
}

#[test]
fn a_policy_needs_an_issuer_and_an_audience() {
    assert_eq!(
        Policy::builder().audience(AUD).build().err(),
        Some(PolicyError::NoIssuer)
    );
    assert_eq!(
        Policy::builder().issuer(ISS).build().err(),
        Some(PolicyError::NoAudience)
    );
    assert_eq!(
        policy().audience("").build().err(),
        Some(PolicyError::Empty("an audience"))
    );
}

/// A token granting more scope entries than the cap is refused as `invalid_token` (it wins
/// over a missing scope), whichever claims hold them together.
#[test]
fn too_many_scopes_is_invalid_token() {
    use jwtgate_core::scope::MAX_GRANTED_SCOPES;
    let half: Vec<String> = (0..MAX_GRANTED_SCOPES / 2)
        .map(|i| format!("s{i}"))
        .collect();
    let at_cap = json!({"scope": half.join(" "), "permissions": half});
    let result = scope_check(ScopeRequirement::all_of(["read:users"]), at_cap);
    assert!(matches!(reason(result), Reason::InsufficientScope { .. }));
    let over = json!({"scope": half.join(" "), "permissions": half, "scp": ["read:users"]});
    let refused = rejection(scope_check(ScopeRequirement::all_of(["read:users"]), over));
    assert_eq!(refused.code(), ErrorCode::InvalidToken);
    assert_eq!(
        refused.reason(),
        &Reason::TooManyScopes {
            count: MAX_GRANTED_SCOPES + 1,
            max: MAX_GRANTED_SCOPES
        }
    );
    assert!(refused.description().contains("1025"), "{refused}");
}
