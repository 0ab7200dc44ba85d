//! Property tests (proptest) of Lambda authorizer event parsing (`jwtgate_lambda::event::parse`)
//! and of the authorizer on top of it:
//!
//! * reading an event from its bytes (`parse_slice`, what the Lambda runtime does) and from a
//!   parsed JSON value (`parse`) gives the same request, or errors of the same kind, for
//!   arbitrary event-shaped JSON, written compactly or with every character escaped;
//! * arbitrary JSON shaped like the three event kinds (REST TOKEN, REST/HTTP API 1.0 REQUEST,
//!   HTTP API 2.0), with random strings, wrong types and missing fields, never panics — neither
//!   the parser nor `Authorizer::authorize`;
//! * a well-formed event of every kind with a method (route) ARN round-trips the method (upper
//!   case) and the path;
//! * two `Authorization` values in a REST `multiValueHeaders` (in one entry, or under two
//!   spellings of the name) are both kept, and the authorizer answers exactly the error
//!   `Unauthorized`, even when both tokens are valid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::AUTHORIZATION;
use jwtgate_lambda::event::{parse, parse_slice, EventError, EventKind};
use jwtgate_lambda::{Authorizer, AuthorizerError, LambdaConfig};
use jwtgate_test_support::Issuer;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

const NOW: i64 = 1_800_000_000;

const REST_TOKEN: &str = include_str!("events/rest-token.json");
const REST_REQUEST: &str = include_str!("events/rest-request.json");
const HTTP_API_V1: &str = include_str!("events/http-api-v1.json");
const HTTP_API_V2: &str = include_str!("events/http-api-v2.json");

/// One authorizer for every case: an issuer's keys from a file, no routes.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuer: Issuer,
    authorizer: Authorizer,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let issuer = Issuer::new().at(NOW);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = format!(
        "[[issuers]]\nissuer = {:?}\naudiences = [{:?}]\njwks_file = {:?}\n",
        issuer.issuer(),
        issuer.audience(),
        issuer.jwks_file().display().to_string()
    );
    let authorizer = LambdaConfig::from_toml(&text, "test.toml")
        .unwrap()
        .build("test.toml")
        .unwrap();
    assert!(runtime.block_on(authorizer.prepare_keys(false)).is_empty());
    Fixture {
        runtime,
        issuer,
        authorizer,
    }
});

fn authorize(event: Value) -> Result<Value, AuthorizerError> {
    let fixture = &*FIXTURE;
    fixture
        .runtime
        .block_on(fixture.authorizer.authorize(event, NOW))
}

/// The documented event with `${TOKEN}` replaced.
fn event(template: &str, token: &str) -> Value {
    serde_json::from_str(&template.replace("${TOKEN}", token)).unwrap()
}

/// Any small JSON value.
fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Absent, a plausible value, or junk.
fn field(plausible: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        3 => plausible.prop_map(Some),
        1 => junk().prop_map(Some),
    ]
}

fn arn_text() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/users"
        )),
        "arn:[a-z:*/]{0,20}:execute-api:[a-z0-9:/*-]{0,30}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
    .boxed()
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Authorization".to_owned()),
        Just("authorization".to_owned()),
        Just("Cookie".to_owned()),
        "[A-Za-z-]{1,12}",
        any::<String>(),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Bearer abc.def.ghi".to_owned()),
        "(Bearer|bearer|Basic)? ?[ -~]{0,20}",
        any::<String>(),
    ]
}

fn headers() -> BoxedStrategy<Value> {
    proptest::collection::btree_map(header_name(), header_value(), 0..4)
        .prop_map(|m| json!(m))
        .boxed()
}

fn multi_value_headers() -> BoxedStrategy<Value> {
    proptest::collection::btree_map(
        header_name(),
        proptest::collection::vec(header_value(), 0..3),
        0..4,
    )
    .prop_map(|m| json!(m))
    .boxed()
}

/// An object shaped like an authorizer event, with any of its fields missing, random or junk.
fn event_like() -> impl Strategy<Value = Value> {
    let type_ = prop_oneof![
        Just(json!("TOKEN")),
        Just(json!("REQUEST")),
        any::<String>().prop_map(Value::from),
    ]
    .boxed();
    let version = prop_oneof![
        Just(json!("1.0")),
        Just(json!("2.0")),
        any::<String>().prop_map(Value::from),
    ]
    .boxed();
    let token = header_value().prop_map(Value::from).boxed();
    let identity_source = proptest::collection::vec(header_value(), 0..3)
        .prop_map(|v| json!(v))
        .boxed();
    (
        field(type_),
        field(version),
        field(arn_text()),
        field(arn_text()),
        field(token),
        field(headers()),
        field(multi_value_headers()),
        field(identity_source),
    )
        .prop_map(
            |(type_, version, method_arn, route_arn, token, headers, multi, identity)| {
                let mut event = Map::new();
                for (name, value) in [
                    ("type", type_),
                    ("version", version),
                    ("methodArn", method_arn),
                    ("routeArn", route_arn),
                    ("authorizationToken", token),
                    ("headers", headers),
                    ("multiValueHeaders", multi),
                    ("identitySource", identity),
                ] {
                    if let Some(value) = value {
                        event.insert(name.into(), value);
                    }
                }
                Value::Object(event)
            },
        )
}

/// `value` as JSON text with every string character written as a `\\uXXXX` escape (so the
/// reader cannot borrow any string from the text).
fn escape_everything(value: &Value) -> String {
    match value {
        Value::String(text) => {
            let mut out = String::from("\"");
            for unit in text.encode_utf16() {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(escape_everything)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    escape_everything(&Value::String(k.clone())),
                    escape_everything(v)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[test]
fn documented_events_read_alike_from_bytes_and_values() {
    for (kind, template, _) in KINDS {
        let text = template.replace("${TOKEN}", "abc.def.ghi");
        let value: Value = serde_json::from_str(&text).unwrap();
        let from_bytes = parse_slice(text.as_bytes()).unwrap();
        assert_eq!(from_bytes.kind, kind);
        assert_eq!(from_bytes, parse(value.clone()).unwrap());
        assert_eq!(
            parse_slice(escape_everything(&value).as_bytes()).unwrap(),
            from_bytes
        );
    }
    assert!(matches!(
        parse_slice(b"not json"),
        Err(EventError::Malformed { .. })
    ));
    assert!(matches!(
        parse_slice(br#"{"type": 5, "version": {"a": [1]}}"#),
        Err(EventError::Unrecognised(_))
    ));
}

/// A documented event of each kind, with the name of its ARN field.
const KINDS: [(EventKind, &str, &str); 4] = [
    (EventKind::RestToken, REST_TOKEN, "methodArn"),
    (EventKind::RestRequest, REST_REQUEST, "methodArn"),
    (EventKind::HttpApiV1, HTTP_API_V1, "methodArn"),
    (EventKind::HttpApiV2, HTTP_API_V2, "routeArn"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn event_like_json_never_panics(event in event_like()) {
        let _ = parse(event.clone());
        let _ = authorize(event);
    }

    #[test]
    fn bytes_and_values_read_alike(event in event_like(), escaped in any::<bool>()) {
        let text = if escaped { escape_everything(&event) } else { event.to_string() };
        let from_bytes = parse_slice(text.as_bytes());
        let from_value = parse(event);
        match (&from_bytes, &from_value) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(EventError::Unrecognised(_)), Err(EventError::Unrecognised(_)))
            | (Err(EventError::Malformed { .. }), Err(EventError::Malformed { .. })) => {}
            _ => prop_assert!(false, "{:?} / {:?}", from_bytes, from_value),
        }
    }

    #[test]
    fn a_method_arn_round_trips_method_and_path(
        kind in 0usize..4,
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        account in "[0-9]{12}",
        api in "[a-z0-9]{10}",
        stage in "[A-Za-z0-9_-]{1,10}|\\*",
        method in "[A-Za-z]{1,7}|\\*",
        path in proptest::collection::vec("[A-Za-z0-9._~:@!$&'()*+,;=%-]{0,10}", 0..5),
    ) {
        let (expected_kind, template, field) = KINDS[kind];
        let path = path.join("/");
        let arn = format!("arn:aws:execute-api:{region}:{account}:{api}/{stage}/{method}/{path}");
        let mut event = event(template, "abc.def.ghi");
        event[field] = json!(arn);
        let request = parse(event).unwrap();
        prop_assert_eq!(request.kind, expected_kind);
        prop_assert_eq!(request.arn.as_str(), arn.as_str());
        prop_assert_eq!(request.arn.method(), method.to_ascii_uppercase());
        prop_assert_eq!(request.arn.path(), format!("/{path}"));
        prop_assert_eq!(
            request.arn.wildcard(),
            format!("arn:aws:execute-api:{region}:{account}:{api}/{stage}/*/*")
        );
    }

    #[test]
    fn two_authorization_values_in_multi_value_headers_are_refused(
        http_api_v1 in any::<bool>(),
        names in proptest::sample::select(vec![
            ("Authorization", "Authorization"),
            ("authorization", "authorization"),
            ("AUTHORIZATION", "AUTHORIZATION"),
            ("Authorization", "authorization"),
            ("authorization", "AUTHORIZATION"),
        ]),
        second_valid in any::<bool>(),
        other in "[A-Za-z0-9._~+/-]{1,40}",
    ) {
        let fixture = &*FIXTURE;
        let good = fixture.issuer.token(json!({}));
        let second = if second_valid {
            fixture.issuer.token(json!({"sub": "auth0|bob"}))
        } else {
            other
        };
        let template = if http_api_v1 { HTTP_API_V1 } else { REST_REQUEST };
        let mut event = event(template, &good);
        let values = [format!("Bearer {good}"), format!("Bearer {second}")];
        // The HTTP API 1.0 sample has no `multiValueHeaders`; real 1.0 payloads do.
        let multi = event
            .as_object_mut()
            .unwrap()
            .entry("multiValueHeaders")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap();
        multi.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
        if names.0 == names.1 {
            multi.insert(names.0.into(), json!(values));
        } else {
            multi.insert(names.0.into(), json!([values[0]]));
            multi.insert(names.1.into(), json!([values[1]]));
        }
        // `headers` (one value per name) alone would let the request through.
        let mut single = event.clone();
        single.as_object_mut().unwrap().remove("multiValueHeaders");
        let single = authorize(single);
        prop_assert!(single.is_ok(), "{:?}", single);

        let request = parse(event.clone()).unwrap();
        prop_assert_eq!(request.headers.get_all(AUTHORIZATION).iter().count(), 2);
        prop_assert_eq!(authorize(event), Err(AuthorizerError::Unauthorized));
    }
}
