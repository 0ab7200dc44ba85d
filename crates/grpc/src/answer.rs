//! The allow answer of a `Check` ([`AllowAnswer`]), encoded as a `CheckResponse` straight from
//! what it borrows (the request's header names, the engine's identity headers, the verified
//! token's claims), without building the generated message and dropping it.
//!
//! Under Envoy, building the generated `CheckResponse` (a `String` per header name and value, a
//! `HashMap` for the claims), encoding it (prost walks it twice, for lengths and bytes) and
//! dropping it cost about 16k instructions per check, a fifth of the whole gRPC check
//! (`bench/grpc_callgrind.sh grpc`, docs/envoy.md). [`AllowAnswer::encode`] writes the same
//! bytes from borrowed parts, with prost's own primitives (`encode_key`, `encode_varint`).
//!
//! **The wire encoding here is hand-written, so it is proven identical to prost's**: the property
//! test `hand_encoding_is_prosts_encoding` in this module builds random answers (any header names,
//! values and scopes, empty ones, non-UTF-8 values, long ones whose lengths take several varint
//! bytes) and checks that [`AllowAnswer::encode`] gives byte for byte what prost gives for the
//! generated type ([`AllowAnswer::to_message`]), and that prost decodes it back to that message.
//! The one place prost's own bytes vary is the claims `Struct`, a protobuf map that prost writes
//! in its `HashMap`'s order: the test compares it entry by entry, in the order written here
//! (`sub`, `iss`, `scopes`), which protobuf readers accept in any order. Refusals are rare and
//! carry the HTTP gateway's answer: they keep the generated type ([`crate::check::render`]).

use bytes::{BufMut, Bytes};
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue as PbHeader, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckResponse, OkHttpResponse};
use envoy_types::pb::google::protobuf::{value::Kind, ListValue, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use std::borrow::Cow;

/// An allowed check's answer: gRPC `OK` and an `ok_response` (see [`crate::check`] for what
/// goes in it and why).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowAnswer<'a> {
    /// Request headers to set, each `OVERWRITE_IF_EXISTS_OR_ADD`: name and value.
    pub set: Vec<(&'a str, Cow<'a, str>)>,
    /// Request headers to remove (`headers_to_remove`).
    pub remove: Vec<&'a str>,
    /// The query parameter to remove (`query_parameters_to_remove`), if any.
    pub query_remove: Option<&'a str>,
    /// The `DPoP-Nonce` to send the client (`response_headers_to_add`, overwriting), if any.
    pub dpop_nonce: Option<&'a str>,
    /// The verified token's claims for `dynamic_metadata`, if a token was verified.
    pub claims: Option<Claims<'a>>,
}

/// The claims an allow answer carries as `dynamic_metadata`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims<'a> {
    /// `sub`, when the token has one.
    pub subject: Option<&'a str>,
    /// `iss`.
    pub issuer: &'a str,
    /// The granted scopes, without repeats.
    pub scopes: Vec<&'a str>,
}

/// The response header carrying a rotated DPoP nonce.
const DPOP_NONCE: &str = "dpop-nonce";

/// Field numbers of the messages written here (from `external_auth.proto`, `base.proto` and
/// `struct.proto`).
mod field {
    /// `CheckResponse.status`.
    pub const RESPONSE_STATUS: u32 = 1;
    /// `CheckResponse.ok_response`.
    pub const RESPONSE_OK: u32 = 3;
    /// `CheckResponse.dynamic_metadata`.
    pub const RESPONSE_METADATA: u32 = 4;
    /// `OkHttpResponse.headers`.
    pub const OK_HEADERS: u32 = 2;
    /// `OkHttpResponse.headers_to_remove`.
    pub const OK_HEADERS_TO_REMOVE: u32 = 5;
    /// `OkHttpResponse.response_headers_to_add`.
    pub const OK_RESPONSE_HEADERS: u32 = 6;
    /// `OkHttpResponse.query_parameters_to_remove`.
    pub const OK_QUERY_TO_REMOVE: u32 = 8;
    /// `HeaderValueOption.header`.
    pub const OPTION_HEADER: u32 = 1;
    /// `HeaderValueOption.append_action`.
    pub const OPTION_APPEND_ACTION: u32 = 3;
    /// `HeaderValue.key`.
    pub const HEADER_KEY: u32 = 1;
    /// `HeaderValue.value`.
    pub const HEADER_VALUE: u32 = 2;
    /// `Struct.fields` (a map: each entry a message of `key` = 1, `value` = 2).
    pub const STRUCT_FIELDS: u32 = 1;
    /// A map entry's key.
    pub const ENTRY_KEY: u32 = 1;
    /// A map entry's value.
    pub const ENTRY_VALUE: u32 = 2;
    /// `Value.string_value`.
    pub const VALUE_STRING: u32 = 3;
    /// `Value.list_value`.
    pub const VALUE_LIST: u32 = 6;
    /// `ListValue.values`.
    pub const LIST_VALUES: u32 = 1;
}

/// The length of a length-delimited field of `tag` whose payload is `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Writes the key and length of a length-delimited field of `tag`.
fn put_delimited(tag: u32, len: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Writes a string (or bytes) field, as prost does for a `repeated string` element or a
/// `oneof` member: always, even when empty.
fn put_text(tag: u32, text: &str, buf: &mut impl BufMut) {
    put_delimited(tag, text.len(), buf);
    buf.put_slice(text.as_bytes());
}

/// The length of a singular proto3 string field: nothing when empty (the default is not sent).
fn singular_text_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        delimited_len(tag, text.len())
    }
}

/// Writes a singular proto3 string field, nothing when empty.
fn put_singular_text(tag: u32, text: &str, buf: &mut impl BufMut) {
    if !text.is_empty() {
        put_text(tag, text, buf);
    }
}

/// The payload length of a `HeaderValueOption` setting `name` to `value`, overwriting.
fn option_len(name: &str, value: &str) -> usize {
    let header =
        singular_text_len(field::HEADER_KEY, name) + singular_text_len(field::HEADER_VALUE, value);
    delimited_len(field::OPTION_HEADER, header) + option_action_len()
}

/// The length of `append_action: OVERWRITE_IF_EXISTS_OR_ADD` (a varint field).
fn option_action_len() -> usize {
    prost::encoding::key_len(field::OPTION_APPEND_ACTION)
        + encoded_len_varint(HeaderAppendAction::OverwriteIfExistsOrAdd as u64)
}

/// Writes a `HeaderValueOption` field of `tag` setting `name` to `value`, overwriting.
fn put_option(tag: u32, name: &str, value: &str, buf: &mut impl BufMut) {
    let header =
        singular_text_len(field::HEADER_KEY, name) + singular_text_len(field::HEADER_VALUE, value);
    put_delimited(
        tag,
        delimited_len(field::OPTION_HEADER, header) + option_action_len(),
        buf,
    );
    put_delimited(field::OPTION_HEADER, header, buf);
    put_singular_text(field::HEADER_KEY, name, buf);
    put_singular_text(field::HEADER_VALUE, value, buf);
    encode_key(field::OPTION_APPEND_ACTION, WireType::Varint, buf);
    encode_varint(HeaderAppendAction::OverwriteIfExistsOrAdd as u64, buf);
}

/// The payload length of a `Value` holding `text`.
fn string_value_len(text: &str) -> usize {
    delimited_len(field::VALUE_STRING, text.len())
}

/// Writes a `Value` field of `tag` holding `text`.
fn put_string_value(tag: u32, text: &str, buf: &mut impl BufMut) {
    put_delimited(tag, string_value_len(text), buf);
    put_text(field::VALUE_STRING, text, buf);
}

impl Claims<'_> {
    /// The payload length of the `ListValue` of the scopes.
    fn scopes_len(&self) -> usize {
        self.scopes
            .iter()
            .map(|scope| delimited_len(field::LIST_VALUES, string_value_len(scope)))
            .sum()
    }

    /// The payload length of the `Value` holding the scopes' list.
    fn scopes_value_len(&self) -> usize {
        delimited_len(field::VALUE_LIST, self.scopes_len())
    }

    /// The payload length of a map entry of `key` whose `Value` payload is `value_len` bytes.
    fn entry_len(key: &str, value_len: usize) -> usize {
        delimited_len(field::ENTRY_KEY, key.len()) + delimited_len(field::ENTRY_VALUE, value_len)
    }

    /// The length of the map entry of `key` holding the string `text`.
    fn text_entry_len(key: &str, text: &str) -> usize {
        delimited_len(
            field::STRUCT_FIELDS,
            Self::entry_len(key, string_value_len(text)),
        )
    }

    /// Writes the map entry of `key` holding the string `text`.
    fn put_text_entry(key: &str, text: &str, buf: &mut impl BufMut) {
        put_delimited(
            field::STRUCT_FIELDS,
            Self::entry_len(key, string_value_len(text)),
            buf,
        );
        put_text(field::ENTRY_KEY, key, buf);
        put_string_value(field::ENTRY_VALUE, text, buf);
    }

    /// The payload length of the `Struct`: its entries `sub` (when present), `iss`, `scopes`.
    fn encoded_len(&self) -> usize {
        self.subject
            .map_or(0, |subject| Self::text_entry_len("sub", subject))
            + Self::text_entry_len("iss", self.issuer)
            + delimited_len(
                field::STRUCT_FIELDS,
                Self::entry_len("scopes", self.scopes_value_len()),
            )
    }

    /// Writes the `Struct`'s payload, its entries in the order of [`Claims::encoded_len`].
    fn encode(&self, buf: &mut impl BufMut) {
        if let Some(subject) = self.subject {
            Self::put_text_entry("sub", subject, buf);
        }
        Self::put_text_entry("iss", self.issuer, buf);
        let value_len = self.scopes_value_len();
        put_delimited(
            field::STRUCT_FIELDS,
            Self::entry_len("scopes", value_len),
            buf,
        );
        put_text(field::ENTRY_KEY, "scopes", buf);
        put_delimited(field::ENTRY_VALUE, value_len, buf);
        put_delimited(field::VALUE_LIST, self.scopes_len(), buf);
        for scope in &self.scopes {
            put_string_value(field::LIST_VALUES, scope, buf);
        }
    }

    /// The claims as the generated `Struct`.
    pub fn to_message(&self) -> Struct {
        let text = |s: &str| Value {
            kind: Some(Kind::StringValue(s.to_owned())),
        };
        let mut fields = std::collections::HashMap::with_capacity(3);
        if let Some(subject) = self.subject {
            fields.insert("sub".to_owned(), text(subject));
        }
        fields.insert("iss".to_owned(), text(self.issuer));
        let scopes = self.scopes.iter().map(|s| text(s)).collect();
        fields.insert(
            "scopes".to_owned(),
            Value {
                kind: Some(Kind::ListValue(ListValue { values: scopes })),
            },
        );
        Struct { fields }
    }
}

/// The payload lengths of an answer's nested messages.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    /// The `OkHttpResponse`.
    ok: usize,
    /// The claims' `Struct`, when there are claims.
    claims: Option<usize>,
}

impl Lengths {
    /// The length of the whole `CheckResponse`.
    fn total(self) -> usize {
        // `status` is `OK` with no message: an empty message, still present.
        delimited_len(field::RESPONSE_STATUS, 0)
            + delimited_len(field::RESPONSE_OK, self.ok)
            + self
                .claims
                .map_or(0, |claims| delimited_len(field::RESPONSE_METADATA, claims))
    }
}

impl AllowAnswer<'_> {
    /// The payload length of the `OkHttpResponse`.
    fn ok_len(&self) -> usize {
        let set: usize = self
            .set
            .iter()
            .map(|(name, value)| delimited_len(field::OK_HEADERS, option_len(name, value)))
            .sum();
        let remove: usize = self
            .remove
            .iter()
            .map(|name| delimited_len(field::OK_HEADERS_TO_REMOVE, name.len()))
            .sum();
        let nonce = self.dpop_nonce.map_or(0, |nonce| {
            delimited_len(field::OK_RESPONSE_HEADERS, option_len(DPOP_NONCE, nonce))
        });
        let query = self.query_remove.map_or(0, |parameter| {
            delimited_len(field::OK_QUERY_TO_REMOVE, parameter.len())
        });
        set + remove + nonce + query
    }

    /// The length of the encoded `CheckResponse`.
    pub fn encoded_len(&self) -> usize {
        self.lengths().total()
    }

    /// The lengths of the parts, computed once for an encoding.
    fn lengths(&self) -> Lengths {
        Lengths {
            ok: self.ok_len(),
            claims: self.claims.as_ref().map(Claims::encoded_len),
        }
    }

    /// Appends the `CheckResponse` (fields in number order, as prost writes them).
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let lengths = self.lengths();
        buf.reserve(lengths.total());
        self.encode_with(lengths, buf);
    }

    /// Appends the `CheckResponse` whose parts have `lengths`.
    fn encode_with(&self, lengths: Lengths, buf: &mut impl BufMut) {
        put_delimited(field::RESPONSE_STATUS, 0, buf);
        put_delimited(field::RESPONSE_OK, lengths.ok, buf);
        for (name, value) in &self.set {
            put_option(field::OK_HEADERS, name, value, buf);
        }
        for name in &self.remove {
            put_text(field::OK_HEADERS_TO_REMOVE, name, buf);
        }
        if let Some(nonce) = self.dpop_nonce {
            put_option(field::OK_RESPONSE_HEADERS, DPOP_NONCE, nonce, buf);
        }
        if let Some(parameter) = self.query_remove {
            put_text(field::OK_QUERY_TO_REMOVE, parameter, buf);
        }
        if let (Some(claims), Some(claims_len)) = (&self.claims, lengths.claims) {
            put_delimited(field::RESPONSE_METADATA, claims_len, buf);
            claims.encode(buf);
        }
    }

    /// The answer framed as one uncompressed gRPC message.
    pub fn frame(&self) -> Bytes {
        let lengths = self.lengths();
        let length = lengths.total();
        // A `Vec` rather than a `BytesMut`: its small writes are pushes, not reserve-and-copy
        // calls, and sized exactly it becomes `Bytes` without a copy.
        let mut framed = Vec::with_capacity(crate::framing::PREFIX_LEN + length);
        framed.put_u8(0);
        // An answer is far below 4 GiB; the length saturates rather than wraps.
        framed.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
        self.encode_with(lengths, &mut framed);
        Bytes::from(framed)
    }

    /// The answer as the generated `CheckResponse`.
    pub fn to_message(&self) -> CheckResponse {
        let option = |name: &str, value: &str| HeaderValueOption {
            header: Some(PbHeader {
                key: name.to_owned(),
                value: value.to_owned(),
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..HeaderValueOption::default()
        };
        CheckResponse {
            status: Some(Status {
                code: crate::check::code::OK,
                message: String::new(),
                details: Vec::new(),
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: self.set.iter().map(|(n, v)| option(n, v)).collect(),
                headers_to_remove: self.remove.iter().map(|n| (*n).to_owned()).collect(),
                query_parameters_to_remove: self
                    .query_remove
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                response_headers_to_add: self
                    .dpop_nonce
                    .iter()
                    .map(|nonce| option(DPOP_NONCE, nonce))
                    .collect(),
                ..OkHttpResponse::default()
            })),
            dynamic_metadata: self.claims.as_ref().map(Claims::to_message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    /// Text of any characters (multi-byte ones included), sometimes empty, sometimes long
    /// enough for a length of two or three varint bytes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => ".{0,12}",
            1 => Just(String::new()),
            1 => "[a-z]{100,300}",
            1 => "x{16380,16400}",
        ]
    }

    prop_compose! {
        fn claims()(
            subject in proptest::option::of(text()),
            issuer in text(),
            scopes in proptest::collection::vec(text(), 0..6),
        ) -> (Option<String>, String, Vec<String>) {
            (subject, issuer, scopes)
        }
    }

    prop_compose! {
        fn answer()(
            set in proptest::collection::vec((text(), text()), 0..6),
            remove in proptest::collection::vec(text(), 0..6),
            query in proptest::option::of(text()),
            nonce in proptest::option::of(text()),
            claims in proptest::option::of(claims()),
        ) -> (Vec<(String, String)>, Vec<String>, Option<String>, Option<String>, Option<(Option<String>, String, Vec<String>)>) {
            (set, remove, query, nonce, claims)
        }
    }

    /// prost's encoding of `claims`' `Struct`, its entries in the order [`Claims::encode`]
    /// writes them: each one-entry `Struct` is exactly that entry's field.
    fn prost_claims_in_order(claims: &Claims<'_>) -> Vec<u8> {
        let whole = claims.to_message();
        let mut bytes = Vec::new();
        for key in ["sub", "iss", "scopes"] {
            if let Some(value) = whole.fields.get(key) {
                let one = Struct {
                    fields: [(key.to_owned(), value.clone())].into(),
                };
                bytes.extend(one.encode_to_vec());
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn hand_encoding_is_prosts_encoding((set, remove, query, nonce, claims) in answer()) {
            let claims = claims.as_ref().map(|(subject, issuer, scopes)| Claims {
                subject: subject.as_deref(),
                issuer,
                scopes: scopes.iter().map(String::as_str).collect(),
            });
            let answer = AllowAnswer {
                set: set.iter().map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str()))).collect(),
                remove: remove.iter().map(String::as_str).collect(),
                query_remove: query.as_deref(),
                dpop_nonce: nonce.as_deref(),
                claims,
            };
            let mut hand = Vec::new();
            answer.encode(&mut hand);
            prop_assert_eq!(hand.len(), answer.encoded_len());
            let message = answer.to_message();
            // Byte for byte, the claims `Struct` in the order written here.
            let mut expected = CheckResponse { dynamic_metadata: None, ..message.clone() }.encode_to_vec();
            if let Some(claims) = &answer.claims {
                let entries = prost_claims_in_order(claims);
                prop_assert_eq!(entries.len(), message.dynamic_metadata.as_ref().map_or(0, Message::encoded_len));
                encode_key(field::RESPONSE_METADATA, WireType::LengthDelimited, &mut expected);
                encode_varint(entries.len() as u64, &mut expected);
                expected.extend(entries);
            }
            prop_assert_eq!(&hand[..], &expected[..]);
            // And prost reads back the generated message.
            prop_assert_eq!(CheckResponse::decode(&hand[..]).unwrap(), message);
            let framed = answer.frame();
            prop_assert_eq!(&framed[5..], &hand[..]);
            prop_assert_eq!(&framed[..5], &[0, (hand.len() >> 24) as u8, (hand.len() >> 16) as u8, (hand.len() >> 8) as u8, hand.len() as u8][..]);
        }
    }

    #[test]
    fn an_answer_without_claims_is_prosts_encoding_whole() {
        // Without the claims' map there is no order to choose: the whole `CheckResponse`.
        let answer = AllowAnswer {
            set: vec![("x-auth-subject", Cow::Borrowed("alice"))],
            remove: vec!["authorization"],
            claims: None,
            ..AllowAnswer::default()
        };
        let mut hand = Vec::new();
        answer.encode(&mut hand);
        assert_eq!(&hand[..], &answer.to_message().encode_to_vec()[..]);
    }
}
