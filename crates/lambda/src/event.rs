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
//! Events are read in one pass straight from the invocation's bytes ([`parse_slice`]) by a
//! structural JSON scanner (`crate::scan`) into a borrowing view of the few fields the decision
//! needs — no `serde_json::Value` tree, no copy of the fields it does not need: those are
//! skipped by finding where they end, their JSON syntax and UTF-8 checked all the same, so an
//! event that is not well-formed JSON text is refused as a whole. A field the decision reads given twice makes
//! the event malformed. Header names are case-insensitive; the headers go to the engine, which
//! finds the token as the gateway does. A header given as one string replaces earlier values of
//! the same name (as `HeaderMap::insert`), a list of strings adds each (as `HeaderMap::append`);
//! a header name or value HTTP does not allow, or a header that is neither, makes the event
//! malformed.
//!
//! **Which header map.** REST and HTTP API 1.0 events carry every header twice: `headers` (one
//! value per name, the last) and `multiValueHeaders` (every value of every name, in order).
//! `multiValueHeaders` is the one read whenever it has any entry: it is the superset, the one
//! that shows a repeated `Authorization` as repeated (refused by the engine), and the request
//! API Gateway passes on carries all those values. Reading `headers` instead would let a client
//! send two `Authorization` headers and have us judge only the last, while the backend may read
//! the first. `headers` is then only skipped (its end found, nothing built); it is read when
//! `multiValueHeaders` is absent, `null` or empty (HTTP API 2.0 events have only `headers`).
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
use crate::scan::{Cursor, HeaderProblem, ScanError};
use http::{HeaderMap, HeaderName, HeaderValue};
use jwtgate_engine::bearer::{self, BearerToken};
use jwtgate_engine::mtls::CertificateThumbprint;
use jwtgate_engine::TokenInput;
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
    pub token: EventToken,
    /// `https://host[/stage]`: with the ARN's path, the URI the client used (a DPoP proof's
    /// `htu`); `None` when the event does not say (a `TOKEN` event, or a path that does not end
    /// with the ARN's).
    pub origin: Option<String>,
    /// The thumbprint of the client certificate API Gateway's mutual TLS verified; `None`
    /// without one, when it is not one PEM certificate, or when the [`Reading`] skips it.
    pub client_certificate: Option<CertificateThumbprint>,
}

/// Where an event's token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventToken {
    /// In the request's headers (`REQUEST` and HTTP API events).
    FromHeaders,
    /// A `TOKEN` event's `authorizationToken`, as sent (`None` when absent).
    AuthorizationToken(Option<String>),
}

impl EventToken {
    /// The engine's reading of it: a `TOKEN` event's value is read by `token_value` (an
    /// `Authorization` value, or the bare token).
    pub fn input(&self) -> TokenInput<'_> {
        match self {
            EventToken::FromHeaders => TokenInput::FromRequest,
            EventToken::AuthorizationToken(value) => {
                TokenInput::Given(token_value(value.as_deref()))
            }
        }
    }
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
    value: Option<Cow<'_, str>>,
) -> Result<MethodArn, EventError> {
    let value = value.ok_or_else(|| malformed(kind, format!("`{field}` is missing")))?;
    MethodArn::parse(&value).map_err(|e| malformed(kind, e.to_string()))
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
    let not_json = |e: ScanError| EventError::Malformed {
        kind: ANY_KIND,
        message: e.to_string(),
    };
    // UTF-8 is checked by the scan, in the strings (the only place JSON allows other bytes).
    let mut cursor = Cursor::new(bytes);
    let raw = RawEvent::read(&mut cursor, reading).map_err(not_json)?;
    cursor.end().map_err(not_json)?;
    raw.into_request(reading)
}

/// The fields of an authorizer event the decision reads, borrowed from the event's text where
/// it has no escapes. Every other field is skipped unread ([`Cursor::skip_value`]); a field
/// the decision reads given twice makes the event malformed.
#[derive(Default)]
struct RawEvent<'a> {
    /// `TOKEN` or `REQUEST`; any other JSON value reads as absent (an unrecognised event).
    type_: Option<Cow<'a, str>>,
    /// `1.0` or `2.0` for HTTP APIs; any other JSON value reads as absent.
    version: Option<Cow<'a, str>>,
    method_arn: Option<Cow<'a, str>>,
    route_arn: Option<Cow<'a, str>>,
    authorization_token: Option<Cow<'a, str>>,
    /// Kept as text, read only when it is the map the decision uses: on REST and HTTP API 1.0
    /// `multiValueHeaders` holds the same headers and every value of each, so `headers` is
    /// then only skipped.
    headers: Option<&'a [u8]>,
    /// `headers` read as it was scanned: when the event was already known to be an HTTP API
    /// 2.0 event there (its `type` and `version` came first, as API Gateway writes them), whose
    /// only header map it is — so it is not scanned twice.
    headers_read: Option<HeaderMap>,
    /// REST and HTTP API 1.0: every value of every name, the map used when not empty.
    multi_value_headers: Option<EventHeaders>,
    raw_path: Option<Cow<'a, str>>,
    request_context: Option<RawContext<'a>>,
}

/// The event's top-level fields the decision reads, in the order of [`RawEvent::read`]'s
/// `seen` flags.
const FIELDS: [&str; 9] = [
    "type",
    "version",
    "methodArn",
    "routeArn",
    "authorizationToken",
    "headers",
    "multiValueHeaders",
    "rawPath",
    "requestContext",
];

/// Marks field `index` of `names` seen; seen before is an error (a repeated field the
/// decision reads could be read differently by another reader of the event).
fn first_time(
    cursor: &Cursor<'_>,
    seen: &mut [bool],
    names: &[&'static str],
    index: usize,
) -> Result<(), ScanError> {
    match seen.get_mut(index) {
        Some(flag) if !*flag => {
            *flag = true;
            Ok(())
        }
        _ => Err(cursor.error(format!(
            "duplicate field `{}`",
            names.get(index).copied().unwrap_or("?")
        ))),
    }
}

/// A string, or any other JSON value (skipped) read as absent: `type` and `version`, which
/// only say whether this is an event we know.
fn loose_string<'a>(cursor: &mut Cursor<'a>) -> Result<Option<Cow<'a, str>>, ScanError> {
    if cursor.next_is(b'"') {
        cursor.string().map(Some)
    } else {
        cursor.skip_value().map(|()| None)
    }
}

impl<'a> RawEvent<'a> {
    /// Reads the event's object, `multiValueHeaders` with the [`Reading`]'s header filter.
    fn read(cursor: &mut Cursor<'a>, reading: Reading<'_>) -> Result<RawEvent<'a>, ScanError> {
        let mut event = RawEvent::default();
        let mut seen = [false; FIELDS.len()];
        let field = |name: &[u8]| FIELDS.iter().position(|field| field.as_bytes() == name);
        cursor.object(field, |cursor, index| {
            first_time(cursor, &mut seen, &FIELDS, index)?;
            match index {
                0 => event.type_ = loose_string(cursor)?,
                1 => event.version = loose_string(cursor)?,
                2 => event.method_arn = cursor.optional_string()?,
                3 => event.route_arn = cursor.optional_string()?,
                4 => event.authorization_token = cursor.optional_string()?,
                5 if event.is_http_api_v2() => {
                    event.headers_read = Some(read_headers(cursor, reading.keep_header)?.map);
                }
                5 => event.headers = Some(cursor.value_text()?),
                6 => event.multi_value_headers = Some(read_headers(cursor, reading.keep_header)?),
                7 => event.raw_path = cursor.optional_string()?,
                _ => {
                    event.request_context = if cursor.null()? {
                        None
                    } else {
                        Some(RawContext::read(cursor, reading.client_certificate)?)
                    }
                }
            }
            Ok(())
        })?;
        Ok(event)
    }
}

/// The fields of `requestContext` the DPoP origin needs (REST: `path`; HTTP API 2.0:
/// `domainName`), and where the mutual-TLS client certificate is (REST and HTTP API 1.0:
/// `identity`; HTTP API 2.0: `authentication`).
#[derive(Default)]
struct RawContext<'a> {
    path: Option<Cow<'a, str>>,
    domain_name: Option<Cow<'a, str>>,
    identity: Option<RawCertificateHolder<'a>>,
    authentication: Option<RawCertificateHolder<'a>>,
}

/// The fields of `requestContext` read, in the order of [`RawContext::read`]'s `seen` flags.
const CONTEXT_FIELDS: [&str; 4] = ["path", "domainName", "identity", "authentication"];

impl<'a> RawContext<'a> {
    /// Reads `requestContext`; `identity` and `authentication` only with `certificates` (they
    /// are skipped otherwise, like every field the decision does not read).
    fn read(cursor: &mut Cursor<'a>, certificates: bool) -> Result<RawContext<'a>, ScanError> {
        let mut context = RawContext::default();
        let mut seen = [false; CONTEXT_FIELDS.len()];
        let field = |name: &[u8]| {
            CONTEXT_FIELDS
                .iter()
                .position(|field| field.as_bytes() == name)
                .filter(|&index| certificates || index < 2)
        };
        cursor.object(field, |cursor, index| {
            first_time(cursor, &mut seen, &CONTEXT_FIELDS, index)?;
            match index {
                0 => context.path = cursor.optional_string()?,
                1 => context.domain_name = cursor.optional_string()?,
                2 => context.identity = RawCertificateHolder::read(cursor)?,
                _ => context.authentication = RawCertificateHolder::read(cursor)?,
            }
            Ok(())
        })?;
        Ok(context)
    }
}

/// `identity` or `authentication`: its `clientCert`, kept as text until it is needed.
struct RawCertificateHolder<'a> {
    client_cert: Option<&'a [u8]>,
}

impl<'a> RawCertificateHolder<'a> {
    /// `null` (`None`) or an object.
    fn read(cursor: &mut Cursor<'a>) -> Result<Option<RawCertificateHolder<'a>>, ScanError> {
        if cursor.null()? {
            return Ok(None);
        }
        let mut client_cert = None;
        let mut seen = [false];
        let field = |name: &[u8]| (name == b"clientCert").then_some(0);
        cursor.object(field, |cursor, _| {
            first_time(cursor, &mut seen, &["clientCert"], 0)?;
            client_cert = Some(cursor.value_text()?);
            Ok(())
        })?;
        Ok(Some(RawCertificateHolder { client_cert }))
    }
}

/// `clientCert`: the PEM of the certificate.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClientCert<'a> {
    #[serde(borrow, default)]
    client_cert_pem: Option<Cow<'a, str>>,
}

/// The thumbprint of a `clientCert` object's `clientCertPem`; `None` for anything else.
fn certificate_thumbprint(
    holder: Option<RawCertificateHolder<'_>>,
) -> Option<CertificateThumbprint> {
    let raw = holder?.client_cert?;
    let cert: RawClientCert<'_> = serde_json::from_slice(raw).ok()?;
    CertificateThumbprint::of_pem(&cert.client_cert_pem?)
}

impl RawEvent<'_> {
    /// True once `type` and `version` have been read and make this an HTTP API 2.0 event
    /// (what [`RawEvent::kind`] will say, whatever follows: both are read once).
    fn is_http_api_v2(&self) -> bool {
        self.version.as_deref() == Some("2.0")
            && self.type_.as_deref().is_some_and(|type_| type_ != "TOKEN")
    }

    fn kind(&self) -> Result<EventKind, EventError> {
        let (type_, version) = (self.type_.as_deref(), self.version.as_deref());
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
                token: EventToken::AuthorizationToken(
                    self.authorization_token.map(Cow::into_owned),
                ),
                origin: None,
                client_certificate: None,
            }),
            EventKind::RestRequest | EventKind::HttpApiV1 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                // `multiValueHeaders` holds every value of a repeated header (two
                // `Authorization` headers are a malformed request); `headers` only the last of
                // each. It is the map read whenever it names any header, even with no value
                // (`"Authorization": []` is no token, never the token `headers` may hold).
                let headers = match self.multi_value_headers {
                    Some(multi) if multi.names > 0 => multi.map,
                    _ => header_map(kind, self.headers, reading)?,
                };
                let arn = arn(kind, "methodArn", self.method_arn)?;
                // API Gateway passes the client's Host; the context's path is the one the
                // client used, stage (or base path) included.
                // Exactly one: with two, which one the client meant is unknown.
                let mut hosts = headers.get_all(http::header::HOST).iter();
                let host = match (hosts.next(), hosts.next()) {
                    (Some(host), None) => host.to_str().ok(),
                    _ => None,
                };
                let origin = request_origin(host, context.path.as_deref(), &arn);
                let client_certificate = reading
                    .client_certificate
                    .then(|| certificate_thumbprint(context.identity))
                    .flatten();
                Ok(AuthorizerRequest {
                    kind,
                    arn,
                    headers,
                    token: EventToken::FromHeaders,
                    origin,
                    client_certificate,
                })
            }
            EventKind::HttpApiV2 => {
                let context = self
                    .request_context
                    .ok_or_else(|| malformed(kind, "`requestContext` is missing".into()))?;
                let arn = arn(kind, "routeArn", self.route_arn)?;
                let headers = match self.headers_read {
                    Some(headers) => headers,
                    None => header_map(kind, self.headers, reading)?,
                };
                let origin = request_origin(
                    context.domain_name.as_deref(),
                    self.raw_path.as_deref(),
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
                    token: EventToken::FromHeaders,
                    origin,
                    client_certificate,
                })
            }
        }
    }
}

/// A header map of an event, with the number of names it had before [`Reading::keep_header`]
/// left some out.
struct EventHeaders {
    map: HeaderMap,
    names: usize,
}

/// A header map of the event (`null` or absent: none), read from its text.
fn header_map(
    kind: EventKind,
    text: Option<&[u8]>,
    reading: Reading<'_>,
) -> Result<HeaderMap, EventError> {
    let Some(text) = text else {
        return Ok(HeaderMap::new());
    };
    let mut cursor = Cursor::new(text);
    read_headers(&mut cursor, reading.keep_header)
        .and_then(|headers| cursor.end().map(|()| headers.map))
        .map_err(|e| malformed(kind, format!("headers: {e}")))
}

/// Reads a header map (`null`: none): a JSON object of header names to a string (a name given
/// so more than once, in any case, is malformed: which value the client meant is unknown) or a
/// list of strings (each added, as `HeaderMap::append`), for the names `keep` accepts; the other
/// names are checked, and their values (a string or a list of strings all the same) skipped
/// without being checked as header values. Every name is counted, kept or not.
fn read_headers(
    cursor: &mut Cursor<'_>,
    keep: &dyn Fn(&[u8]) -> bool,
) -> Result<EventHeaders, ScanError> {
    let mut headers = EventHeaders {
        map: HeaderMap::new(),
        names: 0,
    };
    if cursor.null()? || !cursor.object_start()? {
        return Ok(headers);
    }
    loop {
        let found = cursor
            .header_until(is_header_name, keep, &mut headers.names)
            .map_err(|problem| match problem {
                HeaderProblem::Name(name, at) => not_a_header_name(&name, at),
                HeaderProblem::Scan(error) => error,
            })?;
        let Some(kept) = found else {
            return Ok(headers);
        };
        read_header(cursor, &mut headers.map, &kept.name, kept.start)?;
        if !cursor.next_member()? {
            return Ok(headers);
        }
    }
}

/// The error for a header name HTTP does not allow, whose member starts at `at`.
#[cold]
fn not_a_header_name(name: &[u8], at: usize) -> ScanError {
    ScanError::new(
        format!("{:?} is not a header name", String::from_utf8_lossy(name)),
        at,
    )
}

/// The value of a header [`read_headers`] keeps: a string (inserted; a second one for the same
/// name is malformed) or a list of strings (each appended).
fn read_header(
    cursor: &mut Cursor<'_>,
    map: &mut HeaderMap,
    name: &[u8],
    at: usize,
) -> Result<(), ScanError> {
    let header = HeaderName::from_bytes(name).map_err(|_| not_a_header_name(name, at))?;
    let value = |cursor: &mut Cursor<'_>| {
        let at = cursor.position();
        let bytes = cursor.string_bytes()?;
        HeaderValue::from_bytes(&bytes)
            .map_err(|_| ScanError::new(format!("the value of {header} is not a header value"), at))
    };
    let too_many = || ScanError::new("too many header values", at);
    if cursor.next_is(b'[') {
        cursor.array(|cursor| {
            let value = value(cursor)?;
            map.try_append(&header, value).map_err(|_| too_many())?;
            Ok(())
        })
    } else if cursor.next_is(b'"') {
        if map.contains_key(&header) {
            return Err(ScanError::new(format!("{header} is given twice"), at));
        }
        let value = value(cursor)?;
        map.try_insert(&header, value).map_err(|_| too_many())?;
        Ok(())
    } else {
        Err(cursor.error(format!(
            "the value of {header} is not a string or a list of strings"
        )))
    }
}

/// True for a header name HTTP allows (RFC 9110 `token`): what `HeaderName::from_bytes`
/// accepts, checked without making one.
fn is_header_name(name: &[u8]) -> bool {
    // Every byte looked up, without a branch per byte (a name is short and nearly always
    // valid).
    !name.is_empty()
        && name.len() <= usize::from(u16::MAX)
        && name
            .iter()
            .fold(true, |valid, &b| valid & TOKEN_CHARACTERS[usize::from(b)])
}

/// The bytes of an RFC 9110 `token`: letters, digits and ``!#$%&'*+-.^_`|~``.
static TOKEN_CHARACTERS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let symbols = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < symbols.len() {
        table[symbols[i] as usize] = true;
        i += 1;
    }
    table
};

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
fn token_value(value: Option<&str>) -> BearerToken<'_> {
    match value {
        None | Some("") => BearerToken::Missing,
        Some(text) if !text.contains(' ') => {
            if text.eq_ignore_ascii_case("bearer") {
                BearerToken::Invalid("the Authorization header has the Bearer scheme but no token")
            } else {
                BearerToken::Present(text.as_bytes())
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
            parsed.token.input(),
            TokenInput::Given(BearerToken::Present(b"abc"))
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
    fn the_dpop_origin_needs_exactly_one_host() {
        let event = |hosts: &str| {
            format!(
                r#"{{"type": "REQUEST", "requestContext": {{"path": "/prod/x"}},
                "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
                "multiValueHeaders": {{"Host": [{hosts}]}}}}"#
            )
        };
        let origin = |hosts: &str| {
            parse_slice(event(hosts).as_bytes())
                .unwrap_or_else(|e| panic!("{e}"))
                .origin
        };
        assert_eq!(
            origin(r#""api.example""#).as_deref(),
            Some("https://api.example/prod")
        );
        assert_eq!(origin(r#""api.example", "evil.example""#), None);
        assert_eq!(origin(""), None);
    }

    #[test]
    fn multi_value_headers_naming_a_header_is_the_map_read_even_without_values() {
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"Authorization": "Bearer from-headers"},
            "multiValueHeaders": {"Authorization": []}}"#;
        let parsed = parse_slice(event).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.headers.get("authorization").is_none());
        // An empty `multiValueHeaders` is no headers at all: `headers` is read.
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"Authorization": "Bearer from-headers"},
            "multiValueHeaders": {}}"#;
        let parsed = parse_slice(event).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.headers["authorization"], "Bearer from-headers");
    }

    #[test]
    fn headers_lists_add_and_a_repeated_string_is_malformed() {
        let event = br#"{"type": "REQUEST", "requestContext": {},
            "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
            "headers": {"X-A": "1", "X-B": ["1"], "x-b": ["2", "3"], "X-C": []}}"#;
        let parsed = parse_slice(event).unwrap_or_else(|e| panic!("{e}"));
        let values = |name: &str| -> Vec<&str> {
            parsed
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        assert_eq!(values("x-a"), ["1"]);
        assert_eq!(values("x-b"), ["1", "2", "3"]);
        assert!(values("x-c").is_empty());
        // Two strings for one name (any case): the last must not silently win.
        for repeated in [
            r#""Authorization": "Bearer a", "authorization": "Bearer b""#,
            r#""Authorization": ["Bearer a"], "authorization": "Bearer b""#,
            r#""Host": "a.example", "host": "b.example""#,
        ] {
            let event = format!(
                r#"{{"type": "REQUEST", "requestContext": {{}},
                "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x",
                "headers": {{{repeated}}}}}"#
            );
            assert!(parse_slice(event.as_bytes()).is_err(), "{repeated}");
        }
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
            r#"{"x-a": 5}"#,
            r#"{"x-a": [null]}"#,
            r#"{"x-a": {}}"#,
            r#"{"x-a": ["1", 2]}"#,
            r#"{"x-a": "1\x"}"#,
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
    fn fields_the_decision_skips_must_still_be_json() {
        let event = |skipped: &str| {
            format!(
                r#"{{"type": "REQUEST", "requestContext": {{"stage": {skipped}}}, "queryStringParameters": {skipped},
                "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/x", "resource": {skipped},
                "headers": {{"Authorization": "Bearer a"}}, "multiValueHeaders": {{"Authorization": ["Bearer a"]}}}}"#
            )
        };
        // Brackets, quotes and the event's own field names inside skipped strings end nothing.
        for skipped in [
            r#""}, \"methodArn\": \"arn:aws:execute-api:us-east-1:1:api/prod/DELETE/y\", {""#,
            r#"{"a": "]}", "b": ["\\", "\"", "\u005d"], "c": [1, -0.5e3, true, null, {}]}"#,
            r#"[[[[{"headers": {"Authorization": ["Bearer b"]}}]]]]"#,
        ] {
            let parsed =
                parse_slice(event(skipped).as_bytes()).unwrap_or_else(|e| panic!("{skipped}: {e}"));
            assert_eq!(parsed.arn.method(), "GET", "{skipped}");
            assert_eq!(parsed.headers.get_all("authorization").iter().count(), 1);
        }
        // A malformed value anywhere refuses the whole event, never a half-read one.
        for skipped in [
            r#"{"a": [1 2]}"#,
            r#"{"a": [}"#,
            r#"["\q"]"#,
            r#""unterminated"#,
            r#"{"a" 1}"#,
            r#"[01]"#,
            r#"tru"#,
            r#"{"a": 1,}"#,
        ] {
            let parsed = parse_slice(event(skipped).as_bytes());
            assert!(
                matches!(parsed, Err(EventError::Malformed { .. })),
                "{skipped}: {parsed:?}"
            );
        }
        let raw_control = event("\"tab\there\"");
        assert!(parse_slice(raw_control.as_bytes()).is_err());
        let mut broken = event("\"~\"").into_bytes();
        for byte in broken.iter_mut().filter(|b| **b == b'~') {
            *byte = 0xff;
        }
        assert!(
            parse_slice(&broken).is_err(),
            "invalid UTF-8 in a skipped string"
        );
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
        assert_eq!(token_value(Some("abc")), BearerToken::Present(b"abc"));
        assert_eq!(
            token_value(Some("bearer abc")),
            BearerToken::Present(b"abc")
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
