//! The authorizer's answers to the event JSON AWS documents (REST TOKEN, REST REQUEST, HTTP API
//! 1.0 and 2.0): allow, deny, missing and malformed headers, expired tokens, wrong audiences,
//! missing scopes — every answer compared field by field with the JSON API Gateway expects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::Algorithm;
use jwtgate_lambda::{Authorizer, AuthorizerError, LambdaConfig};
use jwtgate_test_support::{merge, Issuer};
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://tenant.example.com/";
const AUDIENCE: &str = "https://api.example.com";

const REST_TOKEN: &str = include_str!("events/rest-token.json");
const REST_REQUEST: &str = include_str!("events/rest-request.json");
const HTTP_API_V1: &str = include_str!("events/http-api-v1.json");
const HTTP_API_V2: &str = include_str!("events/http-api-v2.json");

const REST_ARN: &str = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/GET/users";
const REST_WILDCARD: &str = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/*/*";
const REQUEST_WILDCARD: &str = "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/*/*";
const V1_WILDCARD: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*";
const V2_WILDCARD: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*";

/// The issuer's keys (a JWKS file) and its tokens, dated [`NOW`].
struct Fixture {
    issuer: Issuer,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            issuer: Issuer::new()
                .with_key(Algorithm::ES256, "key-1")
                .with_issuer(ISSUER)
                .with_audience(AUDIENCE)
                .at(NOW),
        }
    }

    /// The JWKS file.
    fn jwks(&self) -> &std::path::Path {
        self.issuer.jwks_file()
    }

    /// An authorizer from TOML (the issuer section is added here).
    async fn authorizer(&self, extra: &str) -> Authorizer {
        let text = format!(
            "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = {:?}\n{extra}",
            self.jwks().display().to_string()
        );
        let config = LambdaConfig::from_toml(&text, "test.toml").unwrap();
        let authorizer = config.build("test.toml").unwrap();
        assert!(authorizer.prepare_keys(false).await.is_empty());
        authorizer
    }

    /// Alice's token (several audiences, scopes and permissions, profile claims), `changes`
    /// applied (a `null` removes a claim).
    fn token(&self, changes: Value) -> String {
        let mut claims = self.issuer.claims(json!({
            "aud": [AUDIENCE, "https://tenant.example.com/userinfo"],
            "scope": "openid read:users",
            "permissions": ["write:users"],
            "email": "alice@example.com",
            "email_verified": true,
            "org": {"id": "o1"},
            "https://example.com/roles": ["admin", "ops"],
            "level": 3,
        }));
        merge(&mut claims, changes);
        self.issuer.sign(&claims)
    }
}

/// The event with `${TOKEN}` replaced by `token`.
fn event(template: &str, token: &str) -> Value {
    serde_json::from_str(&template.replace("${TOKEN}", token)).unwrap()
}

/// A REST event whose Authorization header (or TOKEN value) is exactly `value`, or absent.
fn with_header(template: &str, value: Option<&str>) -> Value {
    let mut event = event(template, "x");
    let object = event.as_object_mut().unwrap();
    if object.contains_key("authorizationToken") && object.get("version").is_none() {
        match value {
            Some(v) => object["authorizationToken"] = json!(v),
            None => {
                object.remove("authorizationToken");
            }
        }
        return event;
    }
    for headers in ["headers", "multiValueHeaders"] {
        let Some(map) = object.get_mut(headers).and_then(Value::as_object_mut) else {
            continue;
        };
        map.retain(|k, _| !k.eq_ignore_ascii_case("authorization"));
        if let Some(v) = value {
            let entry = if headers == "headers" {
                json!(v)
            } else {
                json!([v])
            };
            map.insert("Authorization".into(), entry);
        }
    }
    event
}

fn alice_context() -> Value {
    json!({
        "sub": "auth0|alice",
        "iss": ISSUER,
        "scope": "openid read:users write:users",
    })
}

fn iam(principal: &str, effect: &str, resource: &str, context: Value) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": ["execute-api:Invoke"],
                "Effect": effect,
                "Resource": [resource],
            }],
        },
        "context": context,
        "usageIdentifierKey": null,
    })
}

fn insufficient(context: Value, description_part: &str, answer: &Value) -> Value {
    let description = answer["context"]["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        description.contains(description_part),
        "{description:?} should mention {description_part:?}"
    );
    let mut context = context;
    context["error"] = json!("insufficient_scope");
    context["error_description"] = json!(description);
    context
}

/// Compares two answers field by field, naming the first difference.
fn assert_json(actual: &Value, expected: &Value) {
    fn walk(path: &str, actual: &Value, expected: &Value) {
        match (actual, expected) {
            (Value::Object(a), Value::Object(e)) => {
                let mut keys: Vec<&String> = a.keys().chain(e.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    walk(
                        &format!("{path}.{key}"),
                        a.get(key).unwrap_or(&Value::Null),
                        e.get(key).unwrap_or(&Value::Null),
                    );
                }
                assert_eq!(
                    a.keys().collect::<std::collections::BTreeSet<_>>(),
                    e.keys().collect::<std::collections::BTreeSet<_>>(),
                    "{path}: keys"
                );
            }
            (Value::Array(a), Value::Array(e)) => {
                assert_eq!(a.len(), e.len(), "{path}: length");
                for (i, (a, e)) in a.iter().zip(e).enumerate() {
                    walk(&format!("{path}[{i}]"), a, e);
                }
            }
            _ => assert_eq!(actual, expected, "{path}"),
        }
    }
    walk("$", actual, expected);
}

async fn answer(authorizer: &Authorizer, event: Value) -> Result<Value, AuthorizerError> {
    authorizer.authorize(event, NOW).await
}

#[tokio::test]
async fn rest_token_allow_and_every_refusal() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    let good = fx.token(json!({}));

    let allowed = answer(&authorizer, event(REST_TOKEN, &good)).await.unwrap();
    assert_json(
        &allowed,
        &iam("auth0|alice", "Allow", REST_WILDCARD, alice_context()),
    );

    // The bare token (a token source other than Authorization) is accepted too.
    let bare = answer(&authorizer, with_header(REST_TOKEN, Some(&good)))
        .await
        .unwrap();
    assert_json(&bare, &allowed);

    let refusals = [
        ("missing header", with_header(REST_TOKEN, None)),
        ("empty header", with_header(REST_TOKEN, Some(""))),
        ("scheme only", with_header(REST_TOKEN, Some("Bearer"))),
        (
            "other scheme",
            with_header(REST_TOKEN, Some("Basic dXNlcjpwdw==")),
        ),
        (
            "space in token",
            with_header(REST_TOKEN, Some("Bearer a b")),
        ),
        ("not a JWT", event(REST_TOKEN, "opaque-token-value")),
        (
            "expired",
            event(REST_TOKEN, &fx.token(json!({"exp": NOW - 1}))),
        ),
        (
            "wrong audience",
            event(
                REST_TOKEN,
                &fx.token(json!({"aud": "https://other.example.com"})),
            ),
        ),
        (
            "wrong issuer",
            event(
                REST_TOKEN,
                &fx.token(json!({"iss": "https://evil.example.com/"})),
            ),
        ),
        ("bad signature", event(REST_TOKEN, &tamper(&good))),
        (
            "an ID token",
            event(REST_TOKEN, &fx.issuer.id_token("spa-client", json!({}))),
        ),
    ];
    for (what, event) in refusals {
        assert_eq!(
            answer(&authorizer, event).await,
            Err(AuthorizerError::Unauthorized),
            "{what}"
        );
    }
}

#[tokio::test]
async fn rest_request_allow_and_every_refusal() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    let good = fx.token(json!({}));

    let allowed = answer(&authorizer, event(REST_REQUEST, &good))
        .await
        .unwrap();
    assert_json(
        &allowed,
        &iam("auth0|alice", "Allow", REQUEST_WILDCARD, alice_context()),
    );

    // Header names are case-insensitive.
    let mut lower = event(REST_REQUEST, &good);
    let value = lower["headers"]
        .as_object_mut()
        .unwrap()
        .remove("Authorization")
        .unwrap();
    lower["headers"]["authorization"] = value;
    assert_json(&answer(&authorizer, lower).await.unwrap(), &allowed);

    let mut twice = event(REST_REQUEST, &good);
    twice["multiValueHeaders"]["Authorization"] =
        json!([format!("Bearer {good}"), format!("Bearer {good}")]);
    let refusals = [
        ("missing header", with_header(REST_REQUEST, None)),
        ("scheme only", with_header(REST_REQUEST, Some("Bearer"))),
        (
            "other scheme",
            with_header(REST_REQUEST, Some("Basic dXNlcjpwdw==")),
        ),
        ("bare token", with_header(REST_REQUEST, Some(&good))),
        ("two Authorization headers", twice),
        (
            "expired",
            event(REST_REQUEST, &fx.token(json!({"exp": NOW - 1}))),
        ),
        (
            "wrong audience",
            event(
                REST_REQUEST,
                &fx.token(json!({"aud": "https://other.example.com"})),
            ),
        ),
    ];
    for (what, event) in refusals {
        assert_eq!(
            answer(&authorizer, event).await,
            Err(AuthorizerError::Unauthorized),
            "{what}"
        );
    }
}

#[tokio::test]
async fn http_api_v1_is_answered_with_a_policy() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    let allowed = answer(&authorizer, event(HTTP_API_V1, &fx.token(json!({}))))
        .await
        .unwrap();
    assert_json(
        &allowed,
        &iam("auth0|alice", "Allow", V1_WILDCARD, alice_context()),
    );
    assert_eq!(
        answer(&authorizer, with_header(HTTP_API_V1, None)).await,
        Err(AuthorizerError::Unauthorized)
    );
}

#[tokio::test]
async fn http_api_v2_simple_answers() {
    let fx = Fixture::new();
    let authorizer = fx
        .authorizer("[lambda]\nhttp_api_response = \"simple\"\n")
        .await;
    let allowed = answer(&authorizer, event(HTTP_API_V2, &fx.token(json!({}))))
        .await
        .unwrap();
    assert_json(
        &allowed,
        &json!({ "isAuthorized": true, "context": alice_context() }),
    );

    let mut missing = event(HTTP_API_V2, "x");
    missing["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let mut malformed = event(HTTP_API_V2, "x");
    malformed["headers"]["authorization"] = json!("Bearer");
    // HTTP API joins repeated headers with commas.
    let mut repeated = event(HTTP_API_V2, "x");
    let good = fx.token(json!({}));
    repeated["headers"]["authorization"] = json!(format!("Bearer {good},Bearer {good}"));
    let refusals = [
        ("missing header", missing),
        ("malformed header", malformed),
        ("repeated header", repeated),
        (
            "expired",
            event(HTTP_API_V2, &fx.token(json!({"exp": NOW - 1}))),
        ),
        (
            "wrong audience",
            event(
                HTTP_API_V2,
                &fx.token(json!({"aud": "https://other.example.com"})),
            ),
        ),
    ];
    for (what, event) in refusals {
        assert_eq!(
            answer(&authorizer, event).await,
            Err(AuthorizerError::Unauthorized),
            "{what}"
        );
    }
}

#[tokio::test]
async fn http_api_v2_iam_answers() {
    let fx = Fixture::new();
    let authorizer = fx
        .authorizer("[lambda]\nhttp_api_response = \"iam\"\n")
        .await;
    let allowed = answer(&authorizer, event(HTTP_API_V2, &fx.token(json!({}))))
        .await
        .unwrap();
    let mut expected = iam("auth0|alice", "Allow", V2_WILDCARD, alice_context());
    // The HTTP API IAM answer has no usage identifier key.
    expected
        .as_object_mut()
        .unwrap()
        .remove("usageIdentifierKey");
    assert_json(&allowed, &expected);
}

#[tokio::test]
async fn missing_scope_is_a_deny_policy_in_every_format() {
    let fx = Fixture::new();
    // Scopes every token needs (JWTGATE_SCOPES), held by issuer.
    let text = |extra: &str| {
        format!(
            "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\njwks_file = {:?}\nscopes = [\"admin:all\"]\n{extra}",
            fx.jwks().display().to_string()
        )
    };
    for (http_api, v2_simple) in [("simple", true), ("iam", false)] {
        let config = LambdaConfig::from_toml(
            &text(&format!("[lambda]\nhttp_api_response = {http_api:?}\n")),
            "t.toml",
        )
        .unwrap();
        let authorizer = config.build("t.toml").unwrap();
        let token = fx.token(json!({}));

        let denied = answer(&authorizer, event(REST_TOKEN, &token))
            .await
            .unwrap();
        let context = insufficient(alice_context(), "admin:all", &denied);
        assert_json(
            &denied,
            &iam("auth0|alice", "Deny", REST_WILDCARD, context.clone()),
        );
        let denied = answer(&authorizer, event(REST_REQUEST, &token))
            .await
            .unwrap();
        assert_json(
            &denied,
            &iam("auth0|alice", "Deny", REQUEST_WILDCARD, context.clone()),
        );
        let denied = answer(&authorizer, event(HTTP_API_V2, &token))
            .await
            .unwrap();
        if v2_simple {
            assert_json(
                &denied,
                &json!({ "isAuthorized": false, "context": context }),
            );
        } else {
            let mut expected = iam("auth0|alice", "Deny", V2_WILDCARD, context);
            expected
                .as_object_mut()
                .unwrap()
                .remove("usageIdentifierKey");
            assert_json(&denied, &expected);
        }

        // An invalid token wins over a missing scope: 401, not 403.
        let expired = fx.token(json!({"exp": NOW - 1}));
        assert_eq!(
            answer(&authorizer, event(REST_TOKEN, &expired)).await,
            Err(AuthorizerError::Unauthorized)
        );
    }
}

#[tokio::test]
async fn per_route_rules_use_the_method_arn() {
    let fx = Fixture::new();
    let authorizer = fx
        .authorizer(
            r#"
            [[routes]]
            methods = ["GET"]
            path = "/users"
            scopes = ["read:users"]

            [[routes]]
            methods = ["DELETE"]
            path = "/users/{id}"
            scopes = ["delete:users"]

            [[routes]]
            path = "/health"
            public = true
            "#,
        )
        .await;
    let token = fx.token(json!({}));
    let at = |method: &str, path: &str, token: &str| {
        let mut event = event(REST_TOKEN, token);
        event["methodArn"] = json!(format!(
            "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/{method}{path}"
        ));
        event
    };

    let allowed = answer(&authorizer, event(REST_TOKEN, &token))
        .await
        .unwrap();
    assert_json(
        &allowed,
        &iam("auth0|alice", "Allow", REST_ARN, alice_context()),
    );

    // A scope the token lacks: Deny on exactly this method.
    let delete_arn = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/DELETE/users/42";
    let denied = answer(&authorizer, at("DELETE", "/users/42", &token))
        .await
        .unwrap();
    let context = insufficient(alice_context(), "delete:users", &denied);
    assert_json(&denied, &iam("auth0|alice", "Deny", delete_arn, context));

    // Dot segments cannot dodge a rule: /health/../users/42 is /users/42.
    let dodged = answer(&authorizer, at("DELETE", "/health/../users/42", &token))
        .await
        .unwrap();
    assert_eq!(dodged["policyDocument"]["Statement"][0]["Effect"], "Deny");

    // No rule matches: denied without looking at the token.
    let unmatched_arn = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/POST/admin";
    let unmatched = answer(&authorizer, at("POST", "/admin", "not-even-a-token"))
        .await
        .unwrap();
    assert_json(
        &unmatched,
        &iam(
            "anonymous",
            "Deny",
            unmatched_arn,
            json!({"error": "insufficient_scope", "error_description": "no route allows this request"}),
        ),
    );

    // A public route needs no token.
    let health_arn = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/GET/health";
    let mut no_token = at("GET", "/health", "x");
    no_token
        .as_object_mut()
        .unwrap()
        .remove("authorizationToken");
    let public = answer(&authorizer, no_token).await.unwrap();
    assert_json(&public, &iam("anonymous", "Allow", health_arn, json!({})));
}

/// A method ARN path the API's backend may read differently from jwtgate (`..%2F` climbing out of
/// a public prefix) is refused like a malformed request, unless `[paths]` allows it as data.
#[tokio::test]
async fn refused_paths_are_unauthorized_unless_allowed() {
    let fx = Fixture::new();
    let routes = "[[routes]]\npath = \"/public/*\"\npublic = true\n";
    let mut event = event(REST_TOKEN, "x");
    event.as_object_mut().unwrap().remove("authorizationToken");
    let arn = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/prod/GET/public/..%2Fadmin";
    event["methodArn"] = json!(arn);

    let strict = fx.authorizer(routes).await;
    let refused = answer(&strict, event.clone()).await;
    assert_eq!(refused, Err(AuthorizerError::Unauthorized));

    let relaxed = fx
        .authorizer(&format!("{routes}[paths]\nallow_encoded_slash = true\n"))
        .await;
    let public = answer(&relaxed, event).await.unwrap();
    assert_json(&public, &iam("anonymous", "Allow", arn, json!({})));
}

#[tokio::test]
async fn wildcard_policies_with_routes_are_refused() {
    let config = LambdaConfig::from_toml(
        "[[issuers]]\nissuer = \"https://i/\"\naudiences = [\"a\"]\njwks_url = \"https://i/jwks\"\n\
         [[routes]]\npath = \"/users\"\nscopes = [\"read\"]\n[lambda]\npolicy_resource = \"wildcard\"\n",
        "w.toml",
    )
    .unwrap();
    let error = config.build("w.toml").unwrap_err().to_string();
    assert!(
        error.starts_with(
            "w.toml: `lambda.policy_resource`: `wildcard` cannot be combined with per-route rules"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn method_resource_and_context_claims() {
    let fx = Fixture::new();
    let authorizer = fx
        .authorizer(
            "[lambda]\npolicy_resource = \"method\"\ncontext_claims = [\"email\", \"email_verified\", \"level\", \"org\", \"https://example.com/roles=roles\", \"absent\"]\n",
        )
        .await;
    let allowed = answer(&authorizer, event(REST_TOKEN, &fx.token(json!({}))))
        .await
        .unwrap();
    let mut context = alice_context();
    context["email"] = json!("alice@example.com");
    context["email_verified"] = json!(true);
    context["level"] = json!(3);
    context["org"] = json!("{\"id\":\"o1\"}");
    context["roles"] = json!("admin ops");
    assert_json(&allowed, &iam("auth0|alice", "Allow", REST_ARN, context));
}

#[tokio::test]
async fn a_repeated_context_key_keeps_its_first_place_and_its_last_value() {
    let fx = Fixture::new();
    let authorizer = fx
        .authorizer(
            "[lambda]\ncontext_claims = [\"absent=contact\", \"level\", \"email=contact\", \"nothing=contact\", \"quote=contact\"]\n",
        )
        .await;
    let token = fx.token(json!({"quote": "a \"quoted\"\nline\u{2028}", "scope": "read:users"}));
    let event = serde_json::to_vec(&event(REST_TOKEN, &token)).unwrap();
    let answer = authorizer.answer(&event, NOW).await.unwrap();
    assert!(answer.allowed());
    // The exact text: members in this order, strings escaped as serde_json escapes them.
    let context = format!(
        r#""context":{{"sub":"auth0|alice","iss":{},"scope":"read:users write:users","level":3,"contact":{}}}"#,
        serde_json::to_string(ISSUER).unwrap(),
        serde_json::to_string("a \"quoted\"\nline\u{2028}").unwrap()
    );
    let json = serde_json::to_string(&answer).unwrap();
    assert!(json.contains(&context), "{json}");
}

#[tokio::test]
async fn principal_without_sub() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    let token = fx.token(json!({"sub": null, "client_id": "m2m-client"}));
    let allowed = answer(&authorizer, event(REST_TOKEN, &token))
        .await
        .unwrap();
    assert_eq!(allowed["principalId"], "m2m-client");
    assert!(allowed["context"].get("sub").is_none());
}

#[tokio::test]
async fn warm_invocations_reuse_the_verified_token() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    let token = fx.token(json!({}));
    let first = authorizer.verify(token.as_bytes(), NOW).await.unwrap();
    let second = authorizer.verify(token.as_bytes(), NOW).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second call should hit the cache"
    );
    // Past exp the cached entry is not used: the token is checked again and refused.
    assert!(authorizer
        .verify(token.as_bytes(), NOW + 601)
        .await
        .is_err());

    let uncached = fx.authorizer("[cache]\ncapacity = 0\n").await;
    let a = uncached.verify(token.as_bytes(), NOW).await.unwrap();
    let b = uncached.verify(token.as_bytes(), NOW).await.unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
}

#[tokio::test]
async fn events_that_are_not_authorizer_events_fail_loudly() {
    let fx = Fixture::new();
    let authorizer = fx.authorizer("").await;
    for bad in [
        json!({}),
        json!({"type": "TOKEN", "authorizationToken": "x"}),
        json!({"type": "TOKEN", "authorizationToken": "x", "methodArn": "arn:aws:s3:::bucket"}),
        json!({"version": "2.0", "type": "REQUEST"}),
        json!({"Records": []}),
    ] {
        let result = answer(&authorizer, bad.clone()).await;
        match result {
            Err(AuthorizerError::Event(error)) => {
                assert_ne!(error.to_string(), "Unauthorized", "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

/// `token` with one signature character changed (to a different character, so the test cannot
/// pass by accident when the original already was that character).
fn tamper(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}
