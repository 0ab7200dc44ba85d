//! Strict JSON for JOSE headers and JWT claims.
//!
//! `serde_json::Value` silently keeps the last of duplicate member names, which lets two parsers
//! disagree about what a token says (RFC 8725 §3.5, RFC 7515 §5.2). [`parse_object`] parses through
//! a `DeserializeSeed` that rejects duplicates and limits nesting depth, while still producing
//! ordinary `serde_json` values so callers can use the claims directly. The request path reads
//! only some members, through [`super::members`], which accepts exactly the same documents.

use super::members::scan_members;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;
use thiserror::Error;

/// Maximum nesting depth of arrays and objects accepted in a header or claims set.
pub const MAX_DEPTH: usize = 64;

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// The bytes are not UTF-8 JSON or not well-formed.
    #[error("not well-formed UTF-8 JSON: {0}")]
    Malformed(String),
    /// The document is well-formed but is not a JSON object.
    #[error("expected a JSON object")]
    NotAnObject,
    /// An object has the same member name twice.
    #[error("duplicate member name {0:?}")]
    DuplicateMember(String),
    /// Arrays and objects are nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Parses `bytes` as one JSON object, rejecting duplicate member names and deep nesting.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let failure = RefCell::new(None);
    let classify = |error: serde_json::Error| {
        failure
            .borrow_mut()
            .take()
            .unwrap_or_else(|| JsonError::Malformed(error.to_string()))
    };
    // One UTF-8 check of the whole document (fast, word at a time) instead of one per string.
    let text = std::str::from_utf8(bytes).map_err(|e| JsonError::Malformed(e.to_string()))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = StrictValue {
        depth: 0,
        failure: &failure,
    };
    let value = seed.deserialize(&mut deserializer).map_err(classify)?;
    deserializer.end().map_err(classify)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Validates `bytes` exactly as [`parse_object`] does (UTF-8, one JSON object, no duplicate member
/// names, nesting at most [`MAX_DEPTH`]) without building it: only the top-level members for which
/// `slot_of` returns a slot are kept, as values, in `slots`. This is the request path's parse —
/// a token's claims are checked from a handful of members, and the full map is built only if a
/// caller asks for it (the scan is [`scan_members`]; a kept member is built from the text it
/// validated).
pub fn scan_object(
    bytes: &[u8],
    slot_of: &dyn Fn(&str) -> Option<usize>,
    slots: &mut [Option<Value>],
) -> Result<(), JsonError> {
    let count = slots.len();
    scan_members(
        bytes,
        &|name| slot_of(name).filter(|&slot| slot < count),
        &mut |slot, raw| {
            if let Some(target) = slots.get_mut(slot) {
                *target = Some(raw.to_value());
            }
        },
    )
    .map(|_| ())
}

/// The seed that builds a `Value`, recording the first structural violation in `failure` (serde's
/// error type only carries text, and the caller needs the precise variant).
struct StrictValue<'a> {
    depth: usize,
    failure: &'a RefCell<Option<JsonError>>,
}

impl<'a> StrictValue<'a> {
    fn nested<E: de::Error>(&self) -> Result<StrictValue<'a>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(JsonError::TooDeep));
        }
        Ok(StrictValue {
            depth: self.depth + 1,
            failure: self.failure,
        })
    }

    fn fail<E: de::Error>(&self, error: JsonError) -> E {
        let message = error.to_string();
        *self.failure.borrow_mut() = Some(error);
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(8);
        while let Some(key) = access.next_key::<String>()? {
            // One hash lookup per member: the entry both detects a duplicate and inserts.
            match map.entry(key) {
                serde_json::map::Entry::Occupied(entry) => {
                    return Err(self.fail(JsonError::DuplicateMember(entry.key().clone())));
                }
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(access.next_value_seed(self.nested()?)?);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x"],"c":{"d":1.5}}"#);
        assert_eq!(map.map(|m| m.len()), Ok(3));
    }

    #[test]
    fn rejects_duplicates_at_any_level() {
        assert_eq!(
            parse_object(br#"{"alg":"RS256","alg":"none"}"#),
            Err(JsonError::DuplicateMember("alg".into()))
        );
        assert_eq!(
            parse_object(br#"{"a":{"x":1,"x":2}}"#),
            Err(JsonError::DuplicateMember("x".into()))
        );
        // Escapes are decoded before comparison: "\u0061" is "a".
        assert_eq!(
            parse_object(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateMember("a".into()))
        );
    }

    #[test]
    fn limits_depth() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(63), "]".repeat(63));
        assert!(parse_object(ok.as_bytes()).is_ok());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonError::TooDeep));
    }

    fn scan(bytes: &[u8]) -> Result<Vec<Option<Value>>, JsonError> {
        let names = ["a", "x"];
        let mut slots = vec![None, None];
        scan_object(
            bytes,
            &|name| names.iter().position(|n| *n == name),
            &mut slots,
        )?;
        Ok(slots)
    }

    /// `scan_object` fills the slots of the kept members from `members::scan_members` (whose
    /// tests hold its verdict to `parse_object`'s); a repeat of a kept member is refused.
    #[test]
    fn scan_fills_the_kept_slots() {
        assert_eq!(
            scan(br#"{"a":null,"a":1}"#),
            Err(JsonError::DuplicateMember("a".into()))
        );
        let slots = scan(br#"{"x":[1,{"y":2}],"b":3,"a":"s"}"#).unwrap_or_default();
        assert_eq!(
            slots,
            vec![
                Some(Value::from("s")),
                Some(serde_json::json!([1, {"y": 2}]))
            ]
        );
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotAnObject));
        assert!(matches!(
            parse_object(b"{} x"),
            Err(JsonError::Malformed(_))
        ));
        assert!(matches!(
            parse_object(b"{\"a\":\"\xff\"}"),
            Err(JsonError::Malformed(_))
        ));
        assert!(matches!(
            parse_object(br#"{"a":"\ud800"}"#),
            Err(JsonError::Malformed(_))
        ));
        assert!(matches!(
            parse_object(b"{\"a\":1e999}"),
            Err(JsonError::Malformed(_))
        ));
    }
}
