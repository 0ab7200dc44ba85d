//! Authorizer events: which kind an event is (from the event itself), and what the decision
//! needs from it — the method ARN (or route ARN) and the bearer token.
//!
//! | kind | recognised by | token from |
//! | --- | --- | --- |
//! | REST `TOKEN` | `"type": "TOKEN"` | `authorizationToken` (`Bearer ` optional) |
//! | REST `REQUEST` | `"type": "REQUEST"`, no `version` | the `Authorization` header |
//! | HTTP API 1.0 | `"type": "REQUEST"`, `"version": "1.0"` | the `Authorization` header |
//! | HTTP API 2.0 | `"version": "2.0"` | the `Authorization` header |
//!
//! Events are read in one pass straight from the invocation's bytes ([`parse_slice`]) into a
//! borrowing view of the few fields the decision needs — no `serde_json::Value` tree, no copy of
//! the fields it does not need (those are skipped, not checked). Header names are
//! case-insensitive; the headers (REST's `multiValueHeaders` when present, so a repeated
//! `Authorization` is seen as repeated) go to the engine, which finds the token as the gateway
//! does. A header given as one string replaces earlier values of the same name (as
//! `HeaderMap::insert`), a list of strings adds each (as `HeaderMap::append`); a header name or
//! value HTTP does not allow, or a header that is neither, makes the event malformed.

use crate::arn::MethodArn;
use http::{HeaderMap, HeaderName, HeaderValue};
use jwtgate_engine::bearer::{self, BearerToken};
use jwtgate_engine::TokenInput;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use thiserror::Error;

/// The kind of authorizer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// REST API `TOKEN` authorizer.
    RestToken,
    /// REST API `REQUEST` authorizer (also WebSocket `$connect`).
    RestRequest,
    /// HTTP API, payload format 1.0 (answered like REST).
    HttpApiV1,
    /// HTTP API, payload format 2.0.
    HttpApiV2,
}

impl EventKind {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::RestToken => "rest_token",
            EventKind::RestRequest => "rest_request",
            EventKind::HttpApiV1 => "http_api_v1",
            EventKind::HttpApiV2 => "http_api_v2",
        }
    }
}

/// What the decision needs from an event: the engine's request view is built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerRequest {
    /// The event kind (decides the answer's shape).
    pub kind: EventKind,
    /// The method ARN (`methodArn`, or `routeArn` for HTTP API 2.0): the method and path.
    pub arn: MethodArn,
    /// The request's headers, every value of every name (a `TOKEN` event has none).
    pub headers: HeaderMap,
    /// Where the token is: the headers, or a `TOKEN` event's `authorizationToken`.
    pub token: TokenInput,
    /// `https://host[/stage]`: with the ARN's path, the URI the client used (a DPoP proof's
    /// `htu`); `None` when the event does not say (a `TOKEN` event, or a path that does not end
    /// with the ARN's).
    pub origin: Option<String>,
}

/// An event that is not an authorizer event jwtgate understands.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    /// Not a TOKEN/REQUEST authorizer event of a known payload version.
    #[error("not an API Gateway authorizer event: {0}")]
    Unrecognised(String),
    /// The event has the right type but a field is missing or mistyped.
    #[error("malformed {kind} event: {message}")]
    Malformed {
        /// The kind it claimed to be.
        kind: &'static str,
        /// The deserializer's message.
        message: String,
    },
}

/// The name of an event whose kind is not known yet, in [`EventError::Malformed`].
const ANY_KIND: &str = "authorizer";

fn malformed(kind: EventKind, message: String) -> EventError {
    EventError::Malformed {
        kind: kind.name(),
        message,
    }
}

fn arn(
    kind: EventKind,
    field: &'static str,
    value: Option<Text<'_>>,
) -> Result<MethodArn, EventError> {
    let value = value.ok_or_else(|| malformed(kind, format!("`{field}` is missing")))?;
    MethodArn::parse(&value.0).map_err(|e| malformed(kind, e.to_string()))
}

/// Detects the kind of `event` and takes out the ARN and the token.
pub fn parse(event: Value) -> Result<AuthorizerRequest, EventError> {
    parse_value(&event)
}

/// [`parse`] without taking the value (written out as JSON and read like the invocation's
/// bytes, so both paths read events exactly alike).
pub fn parse_value(event: &Value) -> Result<AuthorizerRequest, EventError> {
    let bytes = serde_json::to_vec(event).map_err(|e| EventError::Malformed {
        kind: ANY_KIND,
        message: e.to_string(),
    })?;
    parse_slice(&bytes)
}

/// Detects the kind of the event in `bytes` (the invocation's JSON) and takes out the ARN and
/// the token, reading only those fields. Not JSON at all is [`EventError::Malformed`].
pub fn parse_slice(bytes: &[u8]) -> Result<AuthorizerRequest, EventError> {
    let raw: RawEvent<'_> = serde_json::from_slice(bytes).map_err(|e| EventError::Malformed {
        kind: ANY_KIND,
        message: e.to_string(),
    })?;
    raw.into_request()
}

/// The fields of an authorizer event the decision reads, borrowed from the event's text where
/// it has no escapes. Every other field is skipped unread.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    /// `TOKEN` or `REQUEST`; any other JSON value reads as absent (an unrecognised event).
    #[serde(rename = "type", borrow, default)]
    type_: Loose<'a>,
    /// `1.0` or `2.0` for HTTP APIs; any other JSON value reads as absent.
    #[serde(borrow, default)]
    version: Loose<'a>,
    #[serde(borrow, default)]
    method_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    route_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    authorization_token: Option<Text<'a>>,
    /// Kept as text: read only when it is the map the decision uses.
    #[serde(borrow, default)]
    headers: Option<&'a RawValue>,
    /// Read as it comes (REST and HTTP API 1.0 send it; it is the map used when not empty).
    #[serde(default)]
    multi_value_headers: Headers,
    #[serde(borrow, default)]
    raw_path: Option<Text<'a>>,
    #[serde(borrow, default)]
    request_context: Option<RawContext<'a>>,
}

/// The fields of `requestContext` the DPoP origin needs (REST: `path`; HTTP API 2.0:
/// `domainName`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContext<'a> {
    #[serde(borrow, default)]
    path: Option<Text<'a>>,
    #[serde(borrow, default)]
    domain_name: Option<Text<'a>>,
}

impl RawEvent<'_> {
    fn kind(&self) -> Result<EventKind, EventError> {
        let (type_, version) = (self.type_.as_str(), self.version.as_str());
        Ok(match (type_, version) {
            (Some("TOKEN"), _) => EventKind::RestToken,
            (_, Some("2.0")) => EventKind::HttpApiV2,
            (Some("REQUEST"), Some("1.0")) => EventKind::HttpApiV1,
            (Some("REQUEST"), None) => EventKind::RestRequest,
            (type_, version) => {
                return Err(EventError::Unrecognised(format!(
                    "type {type_:?}, version {version:?} (expected a TOKEN or REQUEST authorizer event, payload version 1.0 or 2.0)"
                )))
            }
        })
    }

    fn into_request(self) -> Result<AuthorizerRequest, EventError> {
        let kind = self.kind()?;
        match kind {
            EventKind::RestToken => Ok(AuthorizerRequest {
                kind,
                arn: arn(kind, "methodArn", self.method_arn)?,
                headers: HeaderMap::new(),
                token: TokenInput::Given(token_value(
                    self.authorization_token.as_ref().map(|t| &*t.0),
                )),
                origin: None,
            }),
            EventKind::RestRequest | EventKind::HttpApiV1 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                // `multiValueHeaders` holds every value of a repeated header (two
                // `Authorization` headers are a malformed request); `headers` only the last of
                // each.
                let headers = if self.multi_value_headers.0.is_empty() {
                    header_map(kind, self.headers)?
                } else {
                    self.multi_value_headers.0
                };
                let arn = arn(kind, "methodArn", self.method_arn)?;
                // API Gateway passes the client's Host; the context's path is the one the
                // client used, stage (or base path) included.
                let host = headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok());
                let origin = request_origin(host, context.path.as_ref().map(|p| &*p.0), &arn);
                Ok(AuthorizerRequest {
                    kind,
                    arn,
                    headers,
                    token: TokenInput::FromRequest,
                    origin,
                })
            }
            EventKind::HttpApiV2 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                let arn = arn(kind, "routeArn", self.route_arn)?;
                let headers = header_map(kind, self.headers)?;
                let origin = request_origin(
                    context.domain_name.as_ref().map(|d| &*d.0),
                    self.raw_path.as_ref().map(|p| &*p.0),
                    &arn,
                );
                Ok(AuthorizerRequest {
                    kind,
                    arn,
                    headers,
                    token: TokenInput::FromRequest,
                    origin,
                })
            }
        }
    }
}

/// A JSON string, borrowed from the event's text when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

/// A string field whose other JSON values (numbers, objects, …) read as absent rather than as
/// a malformed event: `type` and `version`, which only say whether this is an event we know.
#[derive(Default)]
struct Loose<'a>(Option<Text<'a>>);

impl Loose<'_> {
    fn as_str(&self) -> Option<&str> {
        self.0.as_ref().map(|t| &*t.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Loose(Some(Text(Cow::Borrowed(text)))))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Loose(Some(Text(Cow::Owned(text.to_owned())))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Loose(Some(Text(Cow::Owned(text)))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }
}

/// A header map of the event (`null` or absent: none), read from its text.
fn header_map(kind: EventKind, raw: Option<&RawValue>) -> Result<HeaderMap, EventError> {
    let Some(raw) = raw else {
        return Ok(HeaderMap::new());
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let headers = deserializer
        .deserialize_option(HeadersVisitor)
        .map_err(|e| malformed(kind, format!("headers: {e}")))?;
    Ok(headers)
}

/// A header map read straight from the event (`null`: none).
#[derive(Default)]
struct Headers(HeaderMap);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(HeadersVisitor).map(Headers)
    }
}

/// Reads a JSON object of header names to a string (replaces earlier values of the name, as
/// `HeaderMap::insert`) or a list of strings (each added, as `HeaderMap::append`).
struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = HeaderMap;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map of header names to a string or a list of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(HeaderMap::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(HeaderMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut headers = HeaderMap::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let name = HeaderName::from_bytes(name.0.as_bytes())
                .map_err(|_| de::Error::custom(format!("{:?} is not a header name", name.0)))?;
            map.next_value_seed(HeaderValues {
                headers: &mut headers,
                name,
            })?;
        }
        Ok(headers)
    }
}

/// The value of one header name: adds it to `headers`.
struct HeaderValues<'m> {
    headers: &'m mut HeaderMap,
    name: HeaderName,
}

fn header_value<E: de::Error>(name: &HeaderName, text: Text<'_>) -> Result<HeaderValue, E> {
    match text.0 {
        Cow::Borrowed(text) => HeaderValue::from_str(text),
        Cow::Owned(text) => HeaderValue::try_from(text),
    }
    .map_err(|_| de::Error::custom(format!("the value of {name} is not a header value")))
}

impl<'de> de::DeserializeSeed<'de> for HeaderValues<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeaderValues<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string or a list of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<(), E> {
        let value = header_value(&self.name, Text(Cow::Borrowed(text)))?;
        self.headers.insert(self.name, value);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        let value = header_value(&self.name, Text(Cow::Borrowed(text)))?;
        self.headers.insert(self.name, value);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(text) = seq.next_element::<Text<'de>>()? {
            let value = header_value(&self.name, text)?;
            self.headers.append(&self.name, value);
        }
        Ok(())
    }
}

/// `https://host` plus whatever precedes the ARN's path in the path the client used (the stage
/// or a custom domain's base path), so that origin + ARN path is the URI the client used.
fn request_origin(host: Option<&str>, full_path: Option<&str>, arn: &MethodArn) -> Option<String> {
    let prefix = full_path?.strip_suffix(arn.path())?;
    let mut origin = jwtgate_engine::dpop::origin("https", host?)?;
    origin.push_str(prefix);
    Some(origin)
}

/// A TOKEN event's `authorizationToken`: the value of the configured token-source header. With
/// the `Bearer` scheme it is read like an `Authorization` header; a value without any space is
/// taken as the bare token (for token sources such as `X-Access-Token`).
fn token_value(value: Option<&str>) -> BearerToken {
    match value {
        None | Some("") => BearerToken::Missing,
        Some(text) if !text.contains(' ') => {
            if text.eq_ignore_ascii_case("bearer") {
                BearerToken::Invalid("the Authorization header has the Bearer scheme but no token")
            } else {
                BearerToken::Present(text.to_owned())
            }
        }
        Some(text) => match bearer::parse_authorization(text) {
            BearerToken::Missing => BearerToken::Invalid("the token is not a Bearer token"),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_detected() {
        let token = json!({"type": "TOKEN", "authorizationToken": "Bearer abc",
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"});
        let parsed = parse(token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.kind, EventKind::RestToken);
        assert_eq!(
            parsed.token,
            TokenInput::Given(BearerToken::Present("abc".into()))
        );

        let unknown = parse(json!({"type": "SOMETHING"}));
        assert!(matches!(unknown, Err(EventError::Unrecognised(_))));
        let no_arn = parse(json!({"type": "TOKEN", "authorizationToken": "x"}));
        assert!(
            matches!(&no_arn, Err(EventError::Malformed { message, .. }) if message.contains("methodArn")),
            "{no_arn:?}"
        );
    }

    #[test]
    fn headers_one_string_replaces_a_list_adds() {
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"X-A": "1", "x-a": "2", "X-B": ["1"], "x-b": ["2", "3"], "X-C": []}}"#;
        let parsed = parse_slice(event).unwrap_or_else(|e| panic!("{e}"));
        let values = |name: &str| -> Vec<&str> {
            parsed
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        assert_eq!(values("x-a"), ["2"]);
        assert_eq!(values("x-b"), ["1", "2", "3"]);
        assert!(values("x-c").is_empty());
    }

    #[test]
    fn headers_http_does_not_allow_are_malformed() {
        for headers in [
            r#"{"bad name": "x"}"#,
            r#"{"x-a": "line\nbreak"}"#,
            r#"{"x-a": 5}"#,
            r#"{"x-a": null}"#,
            r#"{"x-a": [5]}"#,
            r#"["x-a"]"#,
        ] {
            let event = format!(
                r#"{{"version": "2.0", "type": "REQUEST", "requestContext": {{}},
                "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x", "headers": {headers}}}"#
            );
            let parsed = parse_slice(event.as_bytes());
            assert!(
                matches!(parsed, Err(EventError::Malformed { .. })),
                "{headers}: {parsed:?}"
            );
        }
        let null = br#"{"version": "2.0", "type": "REQUEST", "requestContext": {},
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x", "headers": null}"#;
        assert!(parse_slice(null).is_ok_and(|r| r.headers.is_empty()));
        let no_context = br#"{"version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"}"#;
        assert!(matches!(
            parse_slice(no_context),
            Err(EventError::Malformed { .. })
        ));
    }

    #[test]
    fn token_values() {
        assert_eq!(token_value(None), BearerToken::Missing);
        assert_eq!(token_value(Some("")), BearerToken::Missing);
        assert_eq!(token_value(Some("abc")), BearerToken::Present("abc".into()));
        assert_eq!(
            token_value(Some("bearer abc")),
            BearerToken::Present("abc".into())
        );
        assert!(matches!(
            token_value(Some("Bearer")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Bearer ")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Basic dXNlcg==")),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            token_value(Some("Bearer a b")),
            BearerToken::Invalid(_)
        ));
    }
}
