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
//!
//! The authorizer reads events with a [`Reading`] that keeps only the headers the engine can
//! read ([`jwtgate_engine::Engine::authorizer_reads_header`]): the other headers' names are
//! still checked, but their values are skipped like every other field the decision does not
//! read, and an event's twenty-odd browser headers are not copied into a map no one reads.
//!
//! With API Gateway's mutual TLS, REQUEST events carry the client certificate the gateway
//! verified (`requestContext.identity.clientCert.clientCertPem` for REST and HTTP API 1.0,
//! `requestContext.authentication.clientCert.clientCertPem` for HTTP API 2.0): its SHA-256
//! thumbprint goes to the engine for certificate-bound tokens (RFC 8705). A certificate that is
//! not exactly one PEM certificate reads as none, so a token bound to a certificate is refused.

use crate::arn::MethodArn;
use http::{HeaderMap, HeaderName, HeaderValue};
use jwtgate_engine::bearer::{self, BearerToken};
use jwtgate_engine::mtls::CertificateThumbprint;
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
    /// The thumbprint of the client certificate API Gateway's mutual TLS verified; `None`
    /// without one, when it is not one PEM certificate, or when the [`Reading`] skips it.
    pub client_certificate: Option<CertificateThumbprint>,
}

/// What to read from an event besides its kind, ARN and token.
#[derive(Clone, Copy)]
pub struct Reading<'f> {
    /// Whether a header (named as in the event, any case) goes into
    /// [`AuthorizerRequest::headers`]. The name of every header is checked all the same (one
    /// HTTP does not allow makes the event malformed); the values of the others are skipped.
    pub keep_header: &'f dyn Fn(&[u8]) -> bool,
    /// Read the mutual-TLS client certificate.
    pub client_certificate: bool,
}

impl fmt::Debug for Reading<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reading")
            .field("client_certificate", &self.client_certificate)
            .finish_non_exhaustive()
    }
}

fn keep_every_header(_: &[u8]) -> bool {
    true
}

impl Reading<'static> {
    /// Every header and the client certificate.
    pub const EVERYTHING: Reading<'static> = Reading {
        keep_header: &keep_every_header,
        client_certificate: true,
    };
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
    parse_slice_with(bytes, Reading::EVERYTHING)
}

/// [`parse_slice`] keeping only what `reading` asks for.
pub fn parse_slice_with(
    bytes: &[u8],
    reading: Reading<'_>,
) -> Result<AuthorizerRequest, EventError> {
    let not_json = |e: serde_json::Error| EventError::Malformed {
        kind: ANY_KIND,
        message: e.to_string(),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let raw = de::DeserializeSeed::deserialize(EventSeed { reading }, &mut deserializer)
        .map_err(not_json)?;
    deserializer.end().map_err(not_json)?;
    raw.into_request(reading)
}

/// The fields of an authorizer event the decision reads, borrowed from the event's text where
/// it has no escapes. Every other field is skipped unread; a field the decision reads given
/// twice makes the event malformed.
#[derive(Default)]
struct RawEvent<'a> {
    /// `TOKEN` or `REQUEST`; any other JSON value reads as absent (an unrecognised event).
    type_: Loose<'a>,
    /// `1.0` or `2.0` for HTTP APIs; any other JSON value reads as absent.
    version: Loose<'a>,
    method_arn: Option<Text<'a>>,
    route_arn: Option<Text<'a>>,
    authorization_token: Option<Text<'a>>,
    /// Kept as text, read only when it is the map the decision uses (skipping REST's copy of
    /// `multiValueHeaders` costs less than reading it).
    headers: Option<&'a RawValue>,
    /// REST and HTTP API 1.0: every value of every name, the map used when not empty.
    multi_value_headers: Option<EventHeaders>,
    raw_path: Option<Text<'a>>,
    request_context: Option<RawContext<'a>>,
}

/// Reads a [`RawEvent`] in one pass, `multiValueHeaders` with the [`Reading`]'s header filter.
struct EventSeed<'f> {
    reading: Reading<'f>,
}

impl<'de, 'f> de::DeserializeSeed<'de> for EventSeed<'f> {
    type Value = RawEvent<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// Sets a field read once; a second time is an error.
fn once<T, E: de::Error>(
    slot: &mut Option<T>,
    seen: &mut bool,
    name: &'static str,
    value: Option<T>,
) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = value;
    Ok(())
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an API Gateway authorizer event (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = RawEvent::default();
        let mut seen = [false; 9];
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "type" => {
                    if std::mem::replace(&mut seen[0], true) {
                        return Err(de::Error::duplicate_field("type"));
                    }
                    event.type_ = map.next_value()?;
                }
                "version" => {
                    if std::mem::replace(&mut seen[1], true) {
                        return Err(de::Error::duplicate_field("version"));
                    }
                    event.version = map.next_value()?;
                }
                "methodArn" => once(
                    &mut event.method_arn,
                    &mut seen[2],
                    "methodArn",
                    map.next_value()?,
                )?,
                "routeArn" => once(
                    &mut event.route_arn,
                    &mut seen[3],
                    "routeArn",
                    map.next_value()?,
                )?,
                "authorizationToken" => once(
                    &mut event.authorization_token,
                    &mut seen[4],
                    "authorizationToken",
                    map.next_value()?,
                )?,
                "headers" => once(
                    &mut event.headers,
                    &mut seen[5],
                    "headers",
                    map.next_value()?,
                )?,
                "multiValueHeaders" => {
                    let headers = map.next_value_seed(HeadersSeed {
                        keep: self.reading.keep_header,
                    })?;
                    once(
                        &mut event.multi_value_headers,
                        &mut seen[6],
                        "multiValueHeaders",
                        Some(headers),
                    )?;
                }
                "rawPath" => once(
                    &mut event.raw_path,
                    &mut seen[7],
                    "rawPath",
                    map.next_value()?,
                )?,
                "requestContext" => once(
                    &mut event.request_context,
                    &mut seen[8],
                    "requestContext",
                    map.next_value()?,
                )?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(event)
    }
}

/// The fields of `requestContext` the DPoP origin needs (REST: `path`; HTTP API 2.0:
/// `domainName`), and where the mutual-TLS client certificate is (REST and HTTP API 1.0:
/// `identity`; HTTP API 2.0: `authentication`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContext<'a> {
    #[serde(borrow, default)]
    path: Option<Text<'a>>,
    #[serde(borrow, default)]
    domain_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    identity: Option<RawCertificateHolder<'a>>,
    #[serde(borrow, default)]
    authentication: Option<RawCertificateHolder<'a>>,
}

/// `identity` or `authentication`: its `clientCert`, kept as text until it is needed.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificateHolder<'a> {
    #[serde(borrow, default)]
    client_cert: Option<&'a RawValue>,
}

/// `clientCert`: the PEM of the certificate.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClientCert<'a> {
    #[serde(borrow, default)]
    client_cert_pem: Option<Text<'a>>,
}

/// The thumbprint of a `clientCert` object's `clientCertPem`; `None` for anything else.
fn certificate_thumbprint(
    holder: Option<RawCertificateHolder<'_>>,
) -> Option<CertificateThumbprint> {
    let raw = holder?.client_cert?;
    let cert: RawClientCert<'_> = serde_json::from_str(raw.get()).ok()?;
    CertificateThumbprint::of_pem(&cert.client_cert_pem?.0)
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

    fn into_request(self, reading: Reading<'_>) -> Result<AuthorizerRequest, EventError> {
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
                client_certificate: None,
            }),
            EventKind::RestRequest | EventKind::HttpApiV1 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                // `multiValueHeaders` holds every value of a repeated header (two
                // `Authorization` headers are a malformed request); `headers` only the last of
                // each.
                let headers = match self.multi_value_headers {
                    Some(multi) if multi.values > 0 => multi.map,
                    _ => header_map(kind, self.headers, reading)?,
                };
                let arn = arn(kind, "methodArn", self.method_arn)?;
                // API Gateway passes the client's Host; the context's path is the one the
                // client used, stage (or base path) included.
                let host = headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok());
                let origin = request_origin(host, context.path.as_ref().map(|p| &*p.0), &arn);
                let client_certificate = reading
                    .client_certificate
                    .then(|| certificate_thumbprint(context.identity))
                    .flatten();
                Ok(AuthorizerRequest {
                    kind,
                    arn,
                    headers,
                    token: TokenInput::FromRequest,
                    origin,
                    client_certificate,
                })
            }
            EventKind::HttpApiV2 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                let arn = arn(kind, "routeArn", self.route_arn)?;
                let headers = header_map(kind, self.headers, reading)?;
                let origin = request_origin(
                    context.domain_name.as_ref().map(|d| &*d.0),
                    self.raw_path.as_ref().map(|p| &*p.0),
                    &arn,
                );
                let client_certificate = reading
                    .client_certificate
                    .then(|| certificate_thumbprint(context.authentication))
                    .flatten();
                Ok(AuthorizerRequest {
                    kind,
                    arn,
                    headers,
                    token: TokenInput::FromRequest,
                    origin,
                    client_certificate,
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

/// A header map of an event, with the number of values it had before [`Reading::keep_header`]
/// left some out.
struct EventHeaders {
    map: HeaderMap,
    values: usize,
}

/// A header map of the event (`null` or absent: none), read from its text.
fn header_map(
    kind: EventKind,
    raw: Option<&RawValue>,
    reading: Reading<'_>,
) -> Result<HeaderMap, EventError> {
    let Some(raw) = raw else {
        return Ok(HeaderMap::new());
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let seed = HeadersSeed {
        keep: reading.keep_header,
    };
    de::DeserializeSeed::deserialize(seed, &mut deserializer)
        .map(|headers| headers.map)
        .map_err(|e| malformed(kind, format!("headers: {e}")))
}

/// Reads a header map (`null`: none) with [`HeadersVisitor`].
struct HeadersSeed<'f> {
    keep: &'f dyn Fn(&[u8]) -> bool,
}

impl<'de> de::DeserializeSeed<'de> for HeadersSeed<'_> {
    type Value = EventHeaders;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(HeadersVisitor { keep: self.keep })
    }
}

/// Reads a JSON object of header names to a string (replaces earlier values of the name, as
/// `HeaderMap::insert`) or a list of strings (each added, as `HeaderMap::append`), for the
/// names `keep` accepts; the other names are checked and their values skipped unread.
struct HeadersVisitor<'f> {
    keep: &'f dyn Fn(&[u8]) -> bool,
}

impl<'de> Visitor<'de> for HeadersVisitor<'_> {
    type Value = EventHeaders;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map of header names to a string or a list of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(EventHeaders {
            map: HeaderMap::new(),
            values: 0,
        })
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut headers = EventHeaders {
            map: HeaderMap::with_capacity(map.size_hint().unwrap_or(8)),
            values: 0,
        };
        while let Some(name) = map.next_key::<NameBytes<'de>>()? {
            let not_a_name = || {
                de::Error::custom(format!(
                    "{:?} is not a header name",
                    String::from_utf8_lossy(&name.0)
                ))
            };
            if (self.keep)(&name.0) {
                let name = HeaderName::from_bytes(&name.0).map_err(|_| not_a_name())?;
                map.next_value_seed(HeaderValues {
                    headers: &mut headers,
                    name,
                })?;
            } else if is_header_name(&name.0) {
                // Counted as a value, so that a `multiValueHeaders` of only such headers is
                // still the map used, but not read: the decision never looks at it.
                map.next_value::<IgnoredAny>()?;
                headers.values += 1;
            } else {
                return Err(not_a_name());
            }
        }
        Ok(headers)
    }
}

/// A header name as the bytes of its JSON string (checked as a header name, so it needs no
/// UTF-8 check of its own).
struct NameBytes<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for NameBytes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(NameBytesVisitor)
    }
}

struct NameBytesVisitor;

impl<'de> Visitor<'de> for NameBytesVisitor {
    type Value = NameBytes<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a header name")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, name: &'de [u8]) -> Result<Self::Value, E> {
        Ok(NameBytes(Cow::Borrowed(name)))
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Self::Value, E> {
        Ok(NameBytes(Cow::Owned(name.to_vec())))
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(NameBytes(Cow::Borrowed(name.as_bytes())))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(NameBytes(Cow::Owned(name.as_bytes().to_vec())))
    }
}

/// True for a header name HTTP allows (RFC 9110 `token`): what `HeaderName::from_bytes`
/// accepts, checked without making one.
fn is_header_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= usize::from(u16::MAX)
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The values of one kept header name: adds them to `headers`.
struct HeaderValues<'m> {
    headers: &'m mut EventHeaders,
    name: HeaderName,
}

impl HeaderValues<'_> {
    /// One value as a header value.
    fn value<E: de::Error>(&self, text: Text<'_>) -> Result<HeaderValue, E> {
        match text.0 {
            Cow::Borrowed(text) => HeaderValue::from_str(text),
            Cow::Owned(text) => HeaderValue::try_from(text),
        }
        .map_err(|_| de::Error::custom(format!("the value of {} is not a header value", self.name)))
    }

    fn insert<E: de::Error>(self, text: Text<'_>) -> Result<(), E> {
        let value = self.value(text)?;
        self.headers.values += 1;
        self.headers.map.insert(self.name, value);
        Ok(())
    }
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
        self.insert(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.insert(Text(Cow::Borrowed(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(text) = seq.next_element::<Text<'de>>()? {
            let value = self.value(text)?;
            self.headers.values += 1;
            self.headers.map.append(&self.name, value);
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
    fn a_reading_keeps_only_the_headers_it_names_and_checks_the_others() {
        let keep = |name: &[u8]| name.eq_ignore_ascii_case(b"authorization");
        let reading = Reading {
            keep_header: &keep,
            client_certificate: false,
        };
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"Authorization": "Bearer a", "X-A": "1"},
            "multiValueHeaders": {"Authorization": ["Bearer a", "Bearer b"], "X-A": ["1", "2"]}}"#;
        let parsed = parse_slice_with(event, reading).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.headers.len(), 2);
        assert_eq!(parsed.headers.get_all("authorization").iter().count(), 2);
        // Dropped headers still decide which map is used: `multiValueHeaders` with only
        // dropped names is not empty.
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"Authorization": "Bearer a"}, "multiValueHeaders": {"X-A": ["1"]}}"#;
        let parsed = parse_slice_with(event, reading).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.headers.is_empty());
        for headers in [
            r#"{"bad name": "x"}"#,
            r#"{"": "x"}"#,
            r#"{"x-a\n": "x"}"#,
            r#"{"authorization": "line\nbreak"}"#,
            r#"{"Authorization": 5}"#,
            r#"{"authorization": [null]}"#,
        ] {
            let event = format!(
                r#"{{"version": "2.0", "type": "REQUEST", "requestContext": {{}},
                "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x", "headers": {headers}}}"#
            );
            let parsed = parse_slice_with(event.as_bytes(), reading);
            assert!(
                matches!(parsed, Err(EventError::Malformed { .. })),
                "{headers}: {parsed:?}"
            );
        }
        let allowed = br#"{"version": "2.0", "type": "REQUEST", "requestContext": {},
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"x-a!#$%&'*+-.^_`|~9": "tab\there \u00e9 ~", "x-b": "del\u007f"}}"#;
        assert!(parse_slice_with(allowed, reading).is_ok_and(|r| r.headers.is_empty()));
        assert!(parse_slice(allowed).is_err());
        let tchars = br#"{"version": "2.0", "type": "REQUEST", "requestContext": {},
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"x-a!#$%&'*+-.^_`|~9": "x"}}"#;
        assert!(parse_slice(tchars).is_ok_and(|r| r.headers.len() == 1));
    }

    #[test]
    fn a_field_the_decision_reads_given_twice_is_malformed() {
        let arn = r#""arn:aws:execute-api:us-east-1:1:api/prod/GET/x""#;
        for fields in [
            format!(r#""methodArn": {arn}, "methodArn": {arn}"#),
            format!(r#""methodArn": {arn}, "type": "REQUEST""#),
            format!(r#""methodArn": {arn}, "multiValueHeaders": {{}}, "multiValueHeaders": {{}}"#),
            format!(r#""methodArn": {arn}, "headers": null, "headers": {{}}"#),
            format!(r#""methodArn": {arn}, "requestContext": {{}}"#),
        ] {
            let event = format!(r#"{{"type": "REQUEST", "requestContext": {{}}, {fields}}}"#);
            let parsed = parse_slice(event.as_bytes());
            assert!(
                matches!(parsed, Err(EventError::Malformed { .. })),
                "{fields}: {parsed:?}"
            );
        }
        let once = format!(
            r#"{{"type": "REQUEST", "requestContext": {{}}, "methodArn": {arn}, "other": 1, "other": 2}}"#
        );
        assert!(parse_slice(once.as_bytes()).is_ok());
        assert!(parse_slice(b"[]").is_err());
        assert!(parse_slice(b"{} {}").is_err());
    }

    #[test]
    fn the_client_certificate_is_read_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        jwtgate_test_support::certificates::make_ca(dir.path(), "ca");
        jwtgate_test_support::certificates::make_client(dir.path(), "ca", "alice");
        let pem = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
        let event = serde_json::to_vec(&serde_json::json!({"version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "requestContext": {"authentication": {"clientCert": {"clientCertPem": pem}}}}))
        .unwrap();
        let read = |client_certificate| {
            parse_slice_with(
                &event,
                Reading {
                    client_certificate,
                    ..Reading::EVERYTHING
                },
            )
            .unwrap()
            .client_certificate
        };
        assert!(
            read(true).is_some(),
            "a real certificate is read when asked"
        );
        assert!(read(false).is_none(), "and only then");
        let event = br#"{"version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "requestContext": {"authentication": {"clientCert": {"clientCertPem": "not a certificate"}}}}"#;
        assert!(parse_slice(event).is_ok_and(|r| r.client_certificate.is_none()));
        let holders = [
            r#"{"identity": null}"#,
            r#"{"identity": {"clientCert": null}}"#,
            r#"{"identity": {"clientCert": {"clientCertPem": 5}}}"#,
            r#"{"identity": {"clientCert": "x"}}"#,
        ];
        for context in holders {
            let event = format!(
                r#"{{"type": "REQUEST", "requestContext": {context},
                "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"}}"#
            );
            let parsed = parse_slice(event.as_bytes());
            assert!(
                parsed
                    .as_ref()
                    .is_ok_and(|r| r.client_certificate.is_none()),
                "{context}: {parsed:?}"
            );
        }
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
