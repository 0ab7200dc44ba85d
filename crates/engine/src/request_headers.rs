//! The request's headers as the engine reads them: a borrowed view over either an
//! [`http::HeaderMap`] (the HTTP front ends, the Lambda) or the header fields a front end
//! received as byte slices (gRPC ext_authz: Envoy's `CheckRequest` entries), so that a front end
//! which has its headers as slices does not build a `HeaderMap` for each request only for the
//! engine to read a few names and drop it.
//!
//! Both views read the same: names are matched exactly against a lower-case name (a
//! `HeaderMap`'s names are lower case; [`HeaderFields::new`] admits only lower-case names), a
//! repeated name gives every value in the order received (`HeaderMap::get_all`), [`RequestHeaders::get`]
//! gives the first, and a value is text only when every byte is visible ASCII or a tab
//! ([`text`], `HeaderValue::to_str`'s rule). [`HeaderFields::new`] checks every name and value
//! as `HeaderName::from_bytes` and `HeaderValue::from_bytes` would, so a request the HTTP
//! gateway could not represent is refused by the front end before the engine sees it.

use http::{HeaderMap, HeaderName, HeaderValue};

/// One header field as received: name and value.
pub type HeaderField<'a> = (&'a [u8], &'a [u8]);

/// The request's headers, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum RequestHeaders<'a> {
    /// An `http` header map.
    Map(&'a HeaderMap),
    /// Header fields as received, in order, each checked ([`HeaderFields::new`]).
    Fields(&'a HeaderFields<'a>),
}

impl<'a> From<&'a HeaderMap> for RequestHeaders<'a> {
    fn from(map: &'a HeaderMap) -> RequestHeaders<'a> {
        RequestHeaders::Map(map)
    }
}

impl<'a> From<&'a HeaderFields<'a>> for RequestHeaders<'a> {
    fn from(fields: &'a HeaderFields<'a>) -> RequestHeaders<'a> {
        RequestHeaders::Fields(fields)
    }
}

/// Header fields whose names are lower-case HTTP header names (tokens of RFC 9110 §5.6.2) and
/// whose values are valid HTTP header values (no control byte but a tab): what a `HeaderMap`
/// would hold, in the order received, a repeated name kept as often as it came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFields<'a> {
    fields: Vec<HeaderField<'a>>,
}

/// A header field [`HeaderFields::new`] refuses: its name is not a lower-case HTTP header name,
/// or its value is not a valid header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request header {name:?} is not a valid HTTP header")]
pub struct InvalidHeader {
    /// The field's name (lossily as text).
    pub name: String,
}

/// The longest header name `http` accepts.
const MAX_NAME_LEN: usize = (1 << 16) - 1;

/// The bytes of a lower-case header name: `tchar` of RFC 9110 §5.6.2 without `A`–`Z`.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let symbols = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < symbols.len() {
        table[symbols[i] as usize] = true;
        i += 1;
    }
    let mut byte = b'0';
    while byte <= b'9' {
        table[byte as usize] = true;
        byte += 1;
    }
    let mut byte = b'a';
    while byte <= b'z' {
        table[byte as usize] = true;
        byte += 1;
    }
    table
};

/// True when `name` is a lower-case HTTP header name.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .iter()
            .fold(true, |valid, &byte| valid & NAME_BYTES[usize::from(byte)])
}

/// True when `value` is a valid header value (`HeaderValue::from_bytes`'s rule: no byte under
/// 0x20 but a tab, and no 0x7F), checked without a branch per byte (values are tokens of a
/// kilobyte: the compiler turns this fold into vector instructions; a hand-written word test
/// was measured two and a half times dearer).
fn valid_value(value: &[u8]) -> bool {
    value.iter().fold(true, |valid, &byte| {
        valid & ((byte >= 0x20 && byte != 0x7F) || byte == b'\t')
    })
}

impl<'a> HeaderFields<'a> {
    /// Checks every field: a name that is not a lower-case HTTP header name (an upper-case one
    /// included: lower-case it first), or a value with a control byte, is refused.
    pub fn new(fields: Vec<HeaderField<'a>>) -> Result<HeaderFields<'a>, InvalidHeader> {
        for (name, value) in &fields {
            if !valid_name(name) || !valid_value(value) {
                return Err(InvalidHeader {
                    name: String::from_utf8_lossy(name).into_owned(),
                });
            }
        }
        Ok(HeaderFields { fields })
    }

    /// The fields, in the order received.
    pub fn as_slice(&self) -> &[HeaderField<'a>] {
        &self.fields
    }
}

/// `value` as text when every byte is visible ASCII or a tab (what `HeaderValue::to_str`
/// accepts), checked without a branch per byte so that a token of a kilobyte costs tens of
/// instructions, not thousands.
pub fn text(value: &[u8]) -> Option<&str> {
    let invisible = value.iter().fold(0u8, |acc, &byte| {
        acc | u8::from(!(byte == b'\t' || (0x20..0x7F).contains(&byte)))
    });
    if invisible != 0 {
        return None;
    }
    std::str::from_utf8(value).ok()
}

impl<'a> RequestHeaders<'a> {
    /// Every value of `name`, in the order received.
    #[inline]
    pub fn get_all(self, name: &HeaderName) -> Values<'a> {
        Values(match self {
            RequestHeaders::Map(map) => ValuesOf::Map(map.get_all(name).into_iter()),
            RequestHeaders::Fields(fields) => ValuesOf::Fields {
                rest: fields.fields.iter(),
                name: name.clone(),
            },
        })
    }

    /// The first value of `name`.
    #[inline]
    pub fn get(self, name: &HeaderName) -> Option<&'a [u8]> {
        match self {
            RequestHeaders::Map(map) => map.get(name).map(HeaderValue::as_bytes),
            RequestHeaders::Fields(_) => self.get_all(name).next(),
        }
    }

    /// True when the request has a header `name`.
    #[inline]
    pub fn contains(self, name: &HeaderName) -> bool {
        match self {
            RequestHeaders::Map(map) => map.contains_key(name),
            RequestHeaders::Fields(_) => self.get(name).is_some(),
        }
    }

    /// Every header as (lower-case name, value): a `HeaderMap`'s in its order (the values of a
    /// name together), fields in the order received.
    pub fn iter(self) -> impl Iterator<Item = HeaderField<'a>> {
        let (map, fields) = match self {
            RequestHeaders::Map(map) => (Some(map), None),
            RequestHeaders::Fields(fields) => (None, Some(&fields.fields)),
        };
        map.into_iter()
            .flat_map(|map| map.iter())
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
            .chain(fields.into_iter().flatten().copied())
    }
}

/// The values of one header name ([`RequestHeaders::get_all`]).
#[derive(Debug)]
pub struct Values<'a>(ValuesOf<'a>);

#[derive(Debug)]
enum ValuesOf<'a> {
    Map(http::header::ValueIter<'a, HeaderValue>),
    Fields {
        rest: std::slice::Iter<'a, HeaderField<'a>>,
        /// The name (a clone: a standard name is a tag, another a static or shared string).
        name: HeaderName,
    },
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            ValuesOf::Map(values) => values.next().map(HeaderValue::as_bytes),
            ValuesOf::Fields { rest, name } => {
                let name = name.as_str().as_bytes();
                rest.find(|(field, _)| *field == name)
                    .map(|(_, value)| *value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    /// Both views of the same headers answer every read the same.
    fn same_reads(pairs: &[(&str, &[u8])]) {
        let map = map(pairs);
        let fields: Vec<HeaderField<'_>> = pairs
            .iter()
            .map(|(name, value)| (name.as_bytes(), *value))
            .collect();
        let fields = HeaderFields::new(fields).unwrap();
        let views = [RequestHeaders::from(&map), RequestHeaders::from(&fields)];
        for name in ["authorization", "dpop", "cookie", "x-absent", "connection"] {
            let name = HeaderName::from_static(name);
            let [a, b] = views.map(|view| {
                (
                    view.get_all(&name).collect::<Vec<_>>(),
                    view.get(&name),
                    view.contains(&name),
                )
            });
            assert_eq!(a, b, "{name}");
        }
        let [mut a, mut b] = views.map(|view| view.iter().collect::<Vec<_>>());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn a_map_and_its_fields_read_the_same() {
        same_reads(&[]);
        same_reads(&[("authorization", b"Bearer a")]);
        same_reads(&[
            ("authorization", b"Bearer a"),
            ("cookie", b"a=1"),
            ("authorization", b"Bearer b"),
            ("dpop", b"proof"),
            ("cookie", b"b=2"),
            ("connection", b"x-auth-subject"),
        ]);
        same_reads(&[("authorization", b"Bearer \xff"), ("dpop", b"")]);
    }

    #[test]
    fn upper_case_and_invalid_names_and_control_bytes_are_refused() {
        for name in [
            &b"Authorization"[..],
            b"",
            b"bad name",
            b"a:b",
            b"\xc3\xa9",
            b"x\0",
        ] {
            let fields = vec![(name, &b"v"[..])];
            assert_eq!(
                HeaderFields::new(fields).unwrap_err().name,
                String::from_utf8_lossy(name)
            );
        }
        for value in [&b"a\nb"[..], b"\r", b"\x7f", b"\0"] {
            let fields = vec![(&b"x-a"[..], value)];
            assert!(HeaderFields::new(fields).is_err());
        }
        let fields = vec![(&b"x-a"[..], &b"\tvisible \x80\xff"[..])];
        assert!(HeaderFields::new(fields).is_ok());
    }

    #[test]
    fn values_are_checked_as_http_checks_them() {
        // Every byte at every position of a value longer than a vector word, and pairs.
        for byte in 0..=u8::MAX {
            for at in 0..19 {
                let mut value = *b"eyJhbGciOiJSUzI1NiJ9";
                value[at] = byte;
                assert_eq!(
                    valid_value(&value),
                    HeaderValue::from_bytes(&value).is_ok(),
                    "{byte:#04x} at {at}"
                );
                value[19 - at] = 0x7F ^ byte;
                assert_eq!(valid_value(&value), HeaderValue::from_bytes(&value).is_ok());
            }
        }
    }

    #[test]
    fn text_is_header_values_to_str() {
        for value in [
            &b"plain"[..],
            b"tab\there",
            b"",
            b"\x80",
            b"caf\xc3\xa9",
            b"~ !",
        ] {
            let header = HeaderValue::from_bytes(value).unwrap();
            assert_eq!(text(value), header.to_str().ok());
        }
    }

    proptest! {
        /// A field passes exactly when `http` takes its name unchanged and its value.
        #[test]
        fn fields_are_checked_as_http_checks_them(
            name in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..12),
                "[!-~]{1,8}".prop_map(String::into_bytes),
            ],
            value in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let fields = vec![(&name[..], &value[..])];
            let http_takes = HeaderName::from_bytes(&name)
                .is_ok_and(|parsed| parsed.as_str().as_bytes() == name.as_slice())
                && HeaderValue::from_bytes(&value).is_ok();
            prop_assert_eq!(HeaderFields::new(fields).is_ok(), http_takes);
        }

        /// Names drawn from a small alphabet so they repeat: every read agrees.
        #[test]
        fn both_views_agree(
            entries in proptest::collection::vec((0usize..5, "[ -~]{0,6}"), 0..10),
        ) {
            const NAMES: [&str; 5] = ["authorization", "dpop", "cookie", "connection", "x-other"];
            let pairs: Vec<(&str, &[u8])> = entries
                .iter()
                .map(|(name, value)| (NAMES[*name], value.as_bytes()))
                .collect();
            same_reads(&pairs);
        }
    }
}
