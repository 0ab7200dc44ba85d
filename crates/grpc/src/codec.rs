//! The `Check` request's decoding, reading only what jwtgate uses.
//!
//! Envoy's `CheckRequest` carries much that jwtgate never reads (the destination, context
//! extensions, metadata, TLS session), and the request headers as a protobuf
//! `map<string, string>`, which the generic decoding builds into a `HashMap` (SipHash, growth,
//! two strings an entry) only for jwtgate to copy it into an [`http::HeaderMap`] and drop it.
//! Under Envoy this decoding was the largest single cost of a check (callgrind, docs/envoy.md).
//!
//! [`decode_check`] walks the message's fields (one-byte keys and lengths read inline) and
//! decodes only `attributes.request.http` into envoy-types' [`HttpRequest`] (its `method`,
//! `path`, `host` and `scheme` strings set directly, last occurrence winning as in prost;
//! `raw_body` by prost's generated code) and,
//! when asked, `attributes.source` (envoy-types' [`Peer`], for `source.certificate`); every other
//! field is skipped by its wire type. Each entry of the `headers` map but the pseudo-headers
//! (`:path`, …, Envoy's own) becomes a [`MapHeader`]:
//! the entry's key and value (fields 1 and 2, the layout the protobuf specification gives every
//! map entry) as slices of the received buffer, with no copy and no `HashMap`; so does each
//! `HeaderValue` of `header_map`, which Envoy sends instead of the map with
//! `encode_raw_headers: true` (the recipe's setting: Envoy builds it more cheaply), its
//! `raw_value` (field 3) being the value. A name that
//! arrives twice (a repeated key, or two spellings of one header) is not merged as a protobuf
//! map would (last value wins): [`read_request`](crate::check::read_request) appends every
//! entry, so the engine sees both and refuses a duplicated credential as it does over HTTP.
//! No Envoy message is defined here: every other value is an envoy-types type, decoded by
//! prost's generated code.

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use prost::Message;

/// Field numbers of `envoy.service.auth.v3` messages read here (from `attribute_context.proto`
/// and `external_auth.proto`).
mod field {
    /// `CheckRequest.attributes`.
    pub const CHECK_ATTRIBUTES: u32 = 1;
    /// `AttributeContext.source`.
    pub const ATTRIBUTES_SOURCE: u32 = 1;
    /// `AttributeContext.request`.
    pub const ATTRIBUTES_REQUEST: u32 = 4;
    /// `AttributeContext.Request.http`.
    pub const REQUEST_HTTP: u32 = 2;
    /// `AttributeContext.HttpRequest.method`.
    pub const HTTP_METHOD: u32 = 2;
    /// `AttributeContext.HttpRequest.headers` (`map<string, string>`).
    pub const HTTP_HEADERS: u32 = 3;
    /// `AttributeContext.HttpRequest.path`.
    pub const HTTP_PATH: u32 = 4;
    /// `AttributeContext.HttpRequest.host`.
    pub const HTTP_HOST: u32 = 5;
    /// `AttributeContext.HttpRequest.scheme`.
    pub const HTTP_SCHEME: u32 = 6;
    /// `AttributeContext.HttpRequest.raw_body`.
    pub const HTTP_RAW_BODY: u32 = 12;
    /// `AttributeContext.HttpRequest.header_map`.
    pub const HTTP_HEADER_MAP: u32 = 13;
    /// `envoy.config.core.v3.HeaderMap.headers` (in `base.proto`).
    pub const HEADER_MAP_HEADERS: u32 = 1;
}

/// One request header of the check (an entry of the `headers` map, or a `HeaderValue` of
/// `header_map`), sharing the buffer it was received in.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct MapHeader {
    /// The entry's key (UTF-8): a header name, lower-cased (a copy only if it was not).
    pub name: Bytes,
    /// The entry's value (not checked here: see how an entry is read, below).
    pub value: Bytes,
}

impl MapHeader {
    /// Reads one map entry (`key` = 1, `value` = 2, both strings; others skipped; a repeated
    /// field keeps its last value, as prost does). The key is checked to be UTF-8; the value
    /// is not: it becomes an [`http::HeaderValue`], whose own check (the HTTP gateway's) is
    /// the one that matters, and a token-sized UTF-8 scan was a tenth of a check's decoding.
    /// `None` for a pseudo-header (`:path`, …): Envoy's own, never read as a request header,
    /// so not kept.
    fn decode(buffer: &Bytes, entry: &[u8]) -> Result<Option<MapHeader>, CheckDecodeError> {
        MapHeader::decode_fields(buffer, entry, false)
    }

    /// Reads one `envoy.config.core.v3.HeaderValue` of `header_map` (what Envoy sends with
    /// `encode_raw_headers: true`): `key` = 1 and `value` = 2 as a map entry's, and
    /// `raw_value` = 3 (bytes), which is the value when it is not empty (Envoy sets only it).
    /// Checked as [`MapHeader::decode`] checks a map entry; `None` for a pseudo-header.
    fn decode_raw(buffer: &Bytes, entry: &[u8]) -> Result<Option<MapHeader>, CheckDecodeError> {
        MapHeader::decode_fields(buffer, entry, true)
    }

    fn decode_fields(
        buffer: &Bytes,
        entry: &[u8],
        raw: bool,
    ) -> Result<Option<MapHeader>, CheckDecodeError> {
        let (mut name, mut value, mut raw_value): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
        fields(entry, |tag, _, payload| {
            let slot = match tag {
                1 => &mut name,
                2 => &mut value,
                3 if raw => &mut raw_value,
                _ => return Ok(()),
            };
            let text = payload.ok_or(CheckDecodeError::NotAMessage(tag))?;
            // Names are ASCII (checked word by word, inline); any other is checked whole.
            if tag == 1 && !text.is_ascii() {
                std::str::from_utf8(text).map_err(|_| CheckDecodeError::NotUtf8(tag))?;
            }
            *slot = text;
            Ok(())
        })?;
        if is_pseudo(name) {
            return Ok(None);
        }
        if !raw_value.is_empty() {
            value = raw_value;
        }
        Ok(Some(MapHeader {
            name: lower_case(name).unwrap_or_else(|| buffer.slice_ref(name)),
            value: buffer.slice_ref(value),
        }))
    }
}

/// `name` lower-cased, when it has an upper-case letter (never from Envoy, which lower-cases
/// every name; a copy then): header names are case-insensitive, and the engine reads them
/// lower-cased, as an `http::HeaderName` holds them.
fn lower_case(name: &[u8]) -> Option<Bytes> {
    name.iter()
        .any(u8::is_ascii_uppercase)
        .then(|| Bytes::from(name.to_ascii_lowercase()))
}

/// True for a pseudo-header name (`:path`, `:authority`, …).
fn is_pseudo(name: &[u8]) -> bool {
    name.first() == Some(&b':')
}

/// What a `Check` request says of the request to authorise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckInput {
    /// `attributes.request.http` with only the fields jwtgate reads (`method`, `path`, `host`,
    /// `scheme`, `raw_body`), its `headers` map and `header_map` left empty (their entries are
    /// in [`CheckInput::headers`]); `None` when the request has none.
    pub http: Option<HttpRequest>,
    /// The entries of `attributes.request.http.headers` and of `header_map` (Envoy's
    /// `encode_raw_headers: true`, each value its `raw_value`, or its `value` when that is
    /// empty), in the order received, but for the pseudo-headers (`:path`, …), which are
    /// Envoy's own.
    pub headers: Vec<MapHeader>,
    /// `attributes.source.certificate`: the URL-encoded PEM of the client's certificate when
    /// Envoy terminated TLS with it and sends it (`include_peer_certificate: true`); empty when
    /// not read or absent.
    pub source_certificate: String,
}

impl From<CheckRequest> for CheckInput {
    fn from(request: CheckRequest) -> CheckInput {
        let attributes = request.attributes.unwrap_or_default();
        let source_certificate = attributes
            .source
            .map(|peer| peer.certificate)
            .unwrap_or_default();
        let mut http = attributes.request.and_then(|r| r.http);
        let headers = http
            .as_mut()
            .map(|http| {
                let raw = http
                    .header_map
                    .take()
                    .map(|map| map.headers)
                    .unwrap_or_default();
                std::mem::take(&mut http.headers)
                    .into_iter()
                    .map(|(key, value)| (key, value.into_bytes()))
                    .chain(raw.into_iter().map(|header| {
                        let value = if header.raw_value.is_empty() {
                            header.value.into_bytes()
                        } else {
                            header.raw_value
                        };
                        (header.key, value)
                    }))
                    .filter(|(key, _)| !is_pseudo(key.as_bytes()))
                    .map(|(key, value)| MapHeader {
                        name: lower_case(key.as_bytes()).unwrap_or_else(|| Bytes::from(key)),
                        value: Bytes::from(value),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CheckInput {
            http,
            headers,
            source_certificate,
        }
    }
}

/// Why a `CheckRequest` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckDecodeError {
    /// Not valid protobuf, or a field not of its type.
    #[error(transparent)]
    Wire(#[from] prost::DecodeError),
    /// A length-delimited field (`tag`) longer than what is left of its message.
    #[error("field {0} of a check request message is longer than the message")]
    Truncated(u32),
    /// A string field (`tag`) of a map entry that is not UTF-8.
    #[error("field {0} of a header entry is not UTF-8")]
    NotUtf8(u32),
    /// A message field (`tag`) not encoded as a length-delimited field.
    #[error("field {0} of a check request message is not length-delimited")]
    NotAMessage(u32),
}

/// Reads a varint: a one-byte varint (every key and most lengths of a check) without a call,
/// any other by prost.
#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<u64, CheckDecodeError> {
    match buf.split_first() {
        Some((&byte, rest)) if byte < 0x80 => {
            *buf = rest;
            Ok(u64::from(byte))
        }
        _ => Ok(decode_varint(buf)?),
    }
}

/// Reads a field's key: a one-byte key of a valid tag and wire type without a call, any other
/// (and every invalid one, for its error) by prost.
#[inline(always)]
fn read_key(buf: &mut &[u8]) -> Result<(u32, WireType), CheckDecodeError> {
    if let Some((&byte, rest)) = buf.split_first() {
        if (8..0x80).contains(&byte) {
            if let Ok(wire_type) = WireType::try_from(u64::from(byte & 0x07)) {
                *buf = rest;
                return Ok((u32::from(byte >> 3), wire_type));
            }
        }
    }
    Ok(decode_key(buf)?)
}

/// The fields of one message: calls `each(tag, field, payload)` with the field's whole encoding
/// (key included) and, for a length-delimited field, its payload.
fn fields<'a>(
    mut buf: &'a [u8],
    mut each: impl FnMut(u32, &'a [u8], Option<&'a [u8]>) -> Result<(), CheckDecodeError>,
) -> Result<(), CheckDecodeError> {
    while !buf.is_empty() {
        let start = buf;
        let (tag, wire_type) = read_key(&mut buf)?;
        let payload = if wire_type == WireType::LengthDelimited {
            let len = usize::try_from(read_varint(&mut buf)?).unwrap_or(usize::MAX);
            if len > buf.len() {
                return Err(CheckDecodeError::Truncated(tag));
            }
            let (payload, rest) = buf.split_at(len);
            buf = rest;
            Some(payload)
        } else {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
            None
        };
        let whole = &start[..start.len() - buf.len()];
        each(tag, whole, payload)?;
    }
    Ok(())
}

/// A string field's text; an error for a field of another wire type, or not UTF-8.
fn text(tag: u32, payload: Option<&[u8]>) -> Result<&str, CheckDecodeError> {
    std::str::from_utf8(message_payload(tag, payload)?).map_err(|_| CheckDecodeError::NotUtf8(tag))
}

/// A sub-message field's payload; an error for a field of another wire type.
fn message_payload(tag: u32, payload: Option<&[u8]>) -> Result<&[u8], CheckDecodeError> {
    payload.ok_or(CheckDecodeError::NotAMessage(tag))
}

/// Header entries room is made for at the first one kept: what Envoy sends for a plain request
/// (the token, `x-forwarded-proto`, `x-request-id`, the client's own).
const EXPECTED_HEADERS: usize = 16;

/// Sets a singular string field to the text of `payload`.
fn set_text(slot: &mut String, tag: u32, payload: Option<&[u8]>) -> Result<(), CheckDecodeError> {
    let value = text(tag, payload)?;
    slot.clear();
    slot.push_str(value);
    Ok(())
}

/// Decodes the parts of a `CheckRequest` jwtgate reads (see the module docs);
/// `source_certificate` asks for `attributes.source.certificate`.
pub fn decode_check(
    bytes: &Bytes,
    source_certificate: bool,
) -> Result<CheckInput, CheckDecodeError> {
    let mut input = CheckInput::default();
    fields(&bytes[..], |tag, _, payload| {
        if tag != field::CHECK_ATTRIBUTES {
            return Ok(());
        }
        fields(
            message_payload(tag, payload)?,
            |tag, _, payload| match tag {
                field::ATTRIBUTES_SOURCE if source_certificate => {
                    let mut peer = Peer::default();
                    peer.merge(message_payload(tag, payload)?)?;
                    if !peer.certificate.is_empty() {
                        input.source_certificate = peer.certificate;
                    }
                    Ok(())
                }
                field::ATTRIBUTES_REQUEST => {
                    fields(message_payload(tag, payload)?, |tag, _, payload| {
                        if tag != field::REQUEST_HTTP {
                            return Ok(());
                        }
                        let http = input.http.get_or_insert_with(HttpRequest::default);
                        let mut keep = |entry: Option<MapHeader>| {
                            if let Some(entry) = entry {
                                if input.headers.capacity() == 0 {
                                    input.headers.reserve(EXPECTED_HEADERS);
                                }
                                input.headers.push(entry);
                            }
                        };
                        fields(message_payload(tag, payload)?, |tag, whole, payload| {
                            match tag {
                                field::HTTP_HEADERS => {
                                    keep(MapHeader::decode(bytes, message_payload(tag, payload)?)?);
                                    Ok(())
                                }
                                field::HTTP_HEADER_MAP => {
                                    fields(message_payload(tag, payload)?, |tag, _, payload| {
                                        if tag == field::HEADER_MAP_HEADERS {
                                            let entry = message_payload(tag, payload)?;
                                            keep(MapHeader::decode_raw(bytes, entry)?);
                                        }
                                        Ok(())
                                    })
                                }
                                // Singular strings: the last occurrence wins, as prost merges
                                // them (each one's own allocation, not prost's generic merge).
                                field::HTTP_METHOD => set_text(&mut http.method, tag, payload),
                                field::HTTP_PATH => set_text(&mut http.path, tag, payload),
                                field::HTTP_HOST => set_text(&mut http.host, tag, payload),
                                field::HTTP_SCHEME => set_text(&mut http.scheme, tag, payload),
                                field::HTTP_RAW_BODY => Ok(http.merge(whole)?),
                                // `id`, `query`, `fragment`, `size`, `protocol`, `body`: not
                                // read (their wire format checked by `fields`).
                                _ => Ok(()),
                            }
                        })
                    })
                }
                _ => Ok(()),
            },
        )
    })?;
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{
        Address, HeaderMap as PbHeaderMap, HeaderValue as PbHeader,
    };
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::Request;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use std::collections::HashMap;

    fn full_request() -> CheckRequest {
        let mut headers = HashMap::new();
        headers.insert("authorization".to_owned(), "Bearer t".to_owned());
        headers.insert(":path".to_owned(), "/api?x=1".to_owned());
        headers.insert("x-a".to_owned(), "1".to_owned());
        let mut extensions = HashMap::new();
        extensions.insert("k".to_owned(), "v".to_owned());
        CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(Peer {
                    address: Some(Address::default()),
                    principal: "spiffe://client".into(),
                    certificate: "-----BEGIN%20CERTIFICATE-----".into(),
                    ..Peer::default()
                }),
                destination: Some(Peer {
                    certificate: "not the client".into(),
                    ..Peer::default()
                }),
                request: Some(Request {
                    time: None,
                    http: Some(HttpRequest {
                        id: "42".into(),
                        method: "POST".into(),
                        headers,
                        header_map: Some(PbHeaderMap {
                            headers: vec![
                                PbHeader {
                                    key: "x-raw".into(),
                                    value: String::new(),
                                    raw_value: b"r".to_vec(),
                                },
                                PbHeader {
                                    key: "x-text".into(),
                                    value: "t".into(),
                                    raw_value: Vec::new(),
                                },
                                PbHeader {
                                    key: ":authority".into(),
                                    value: String::new(),
                                    raw_value: b"api.example".to_vec(),
                                },
                            ],
                        }),
                        path: "/api?x=1".into(),
                        host: "api.example".into(),
                        scheme: "https".into(),
                        raw_body: b"{}".to_vec(),
                        body: "{}".into(),
                        protocol: "HTTP/1.1".into(),
                        query: "x=1".into(),
                        size: 2,
                        ..HttpRequest::default()
                    }),
                }),
                context_extensions: extensions,
                ..AttributeContext::default()
            }),
        }
    }

    /// `http` with only the fields [`decode_check`] reads.
    fn read_fields(http: Option<HttpRequest>) -> Option<HttpRequest> {
        http.map(|http| HttpRequest {
            method: http.method,
            path: http.path,
            host: http.host,
            scheme: http.scheme,
            raw_body: http.raw_body,
            header_map: http.header_map,
            headers: http.headers,
            ..HttpRequest::default()
        })
    }

    fn sorted(mut headers: Vec<MapHeader>) -> Vec<MapHeader> {
        headers.sort();
        headers
    }

    #[test]
    fn decodes_what_the_generic_decoding_gives_for_the_fields_read() {
        let request = full_request();
        let bytes = Bytes::from(request.encode_to_vec());
        let slim = decode_check(&bytes, true).unwrap();
        let full = CheckInput::from(CheckRequest::decode(&bytes[..]).unwrap());
        assert_eq!(slim.http, read_fields(full.http.clone()));
        assert_eq!(slim.http.as_ref().unwrap().id, "", "not read");
        // The pseudo-header `:path` is Envoy's own: not kept.
        let names: Vec<&[u8]> = slim.headers.iter().map(|h| &h.name[..]).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(!names.contains(&&b":path"[..]));
        assert!(!names.contains(&&b":authority"[..]));
        // `header_map` entries: `raw_value` is the value, `value` when it is empty.
        let value_of = |name: &[u8]| {
            slim.headers
                .iter()
                .find(|h| &h.name[..] == name)
                .map(|h| h.value.clone())
        };
        assert_eq!(value_of(b"x-raw").as_deref(), Some(&b"r"[..]));
        assert_eq!(value_of(b"x-text").as_deref(), Some(&b"t"[..]));
        assert_eq!(slim.http.as_ref().unwrap().header_map, None);
        assert_eq!(full.http.as_ref().unwrap().id, "42");
        assert_eq!(sorted(slim.headers), sorted(full.headers));
        assert_eq!(slim.source_certificate, "-----BEGIN%20CERTIFICATE-----");
        assert_eq!(full.source_certificate, slim.source_certificate);
        // Not asked for, the source is not read.
        assert_eq!(decode_check(&bytes, false).unwrap().source_certificate, "");
    }

    #[test]
    fn a_repeated_message_field_merges_as_protobuf_says() {
        // Two encodings of `attributes` back to back: the second's http fields override the
        // first's, its headers add to them.
        let mut first = full_request();
        let mut second = CheckRequest::default();
        let mut http = HttpRequest {
            path: "/second".into(),
            ..HttpRequest::default()
        };
        http.headers.insert("x-b".into(), "2".into());
        second.attributes = Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(http),
            }),
            ..AttributeContext::default()
        });
        let mut joined = first.encode_to_vec();
        joined.extend(second.encode_to_vec());
        let bytes = Bytes::from(joined);
        let slim = decode_check(&bytes, false).unwrap();
        let full = CheckInput::from(CheckRequest::decode(&bytes[..]).unwrap());
        assert_eq!(slim.http, read_fields(full.http.clone()));
        assert_eq!(slim.http.as_ref().unwrap().path, "/second");
        assert_eq!(slim.http.as_ref().unwrap().method, "POST");
        assert_eq!(sorted(slim.headers), sorted(full.headers));
        first.attributes = None;
        assert_eq!(
            decode_check(&Bytes::from(first.encode_to_vec()), true).unwrap(),
            CheckInput::default()
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_partial_request() {
        let bytes = Bytes::from(full_request().encode_to_vec());
        for cut in 1..bytes.len() {
            let prefix = bytes.slice(..cut);
            assert_eq!(
                decode_check(&prefix, true).is_err(),
                CheckRequest::decode(&prefix[..]).is_err(),
                "cut at {cut}"
            );
        }
        // `attributes` with the varint wire type.
        assert!(decode_check(&Bytes::from_static(&[0x08, 0x01]), false).is_err());
        // A header entry whose key is not UTF-8.
        let entry = [0x0a, 0x01, 0xff];
        let mut http = vec![0x1a, entry.len() as u8];
        http.extend(entry);
        let mut request = vec![0x12, http.len() as u8];
        request.extend(&http);
        let mut attributes = vec![0x22, request.len() as u8];
        attributes.extend(&request);
        let mut check = vec![0x0a, attributes.len() as u8];
        check.extend(&attributes);
        assert_eq!(
            decode_check(&Bytes::from(check.clone()), false),
            Err(CheckDecodeError::NotUtf8(1))
        );
        assert!(CheckRequest::decode(&check[..]).is_err());
        // Keys that are not keys, on the one-byte fast path and past it: tag 0, wire types 6
        // and 7, a key over 32 bits.
        for key in [
            &[0x02, 0x00][..],
            &[0x0e],
            &[0x0f],
            &[0xff, 0xff, 0xff, 0xff, 0x7f],
        ] {
            assert!(
                decode_check(&Bytes::copy_from_slice(key), false).is_err(),
                "{key:?}"
            );
            assert!(CheckRequest::decode(key).is_err(), "{key:?}");
        }
        // A string of the request read with another wire type.
        let method_as_varint = [0x0a, 0x06, 0x22, 0x04, 0x12, 0x02, 0x10, 0x01];
        assert_eq!(
            decode_check(&Bytes::copy_from_slice(&method_as_varint), false),
            Err(CheckDecodeError::NotAMessage(field::HTTP_METHOD))
        );
        assert!(CheckRequest::decode(&method_as_varint[..]).is_err());
    }
}
