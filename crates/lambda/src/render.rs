//! JSON text for the authorizer's answers, written straight into one buffer: the constant parts
//! (the policy statement's skeleton, the member names) as literal text, the strings from the
//! token and the event escaped exactly as `serde_json` escapes them (`"`, `\`, and the control
//! characters: `\b`, `\t`, `\n`, `\f`, `\r` or `\u00XX`; nothing else), runs that need no escape
//! copied whole. No `serde_json::Value` is built for the strings jwtgate sets, and none is
//! serialised through `serde`'s per-value dispatch.
//!
//! The finished text is checked once more as JSON when it becomes the answer
//! ([`serde_json::value::RawValue::from_string`]), so a rendering mistake could only ever fail
//! an invocation, never send API Gateway a malformed or differently read answer.

use crate::scan::string_stop;
use serde_json::Value;

/// A JSON text being written.
#[derive(Debug)]
pub(crate) struct JsonText {
    text: String,
}

impl JsonText {
    /// An empty text with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> JsonText {
        JsonText {
            text: String::with_capacity(capacity),
        }
    }

    /// The text written.
    pub(crate) fn into_string(self) -> String {
        self.text
    }

    /// Literal JSON text, written as it is (constant parts only: never text from a token or
    /// an event).
    #[inline(always)]
    pub(crate) fn raw(&mut self, json: &str) {
        self.text.push_str(json);
    }

    /// `text` as a JSON string.
    pub(crate) fn string(&mut self, text: &str) {
        self.text.push('"');
        self.string_contents(text);
        self.text.push('"');
    }

    /// `text` escaped as the contents of a JSON string (no quotes): the runs between the bytes
    /// to escape found eight bytes at a time ([`crate::scan::string_stop`] stops at exactly
    /// those bytes) and copied whole.
    pub(crate) fn string_contents(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut run = 0;
        loop {
            let at = string_stop(bytes, run);
            // `at` is an ASCII byte or the end, so both spans are on character boundaries.
            self.text.push_str(text.get(run..at).unwrap_or_default());
            let Some(&byte) = bytes.get(at) else {
                return;
            };
            match byte {
                b'"' => self.text.push_str("\\\""),
                b'\\' => self.text.push_str("\\\\"),
                b'\x08' => self.text.push_str("\\b"),
                b'\t' => self.text.push_str("\\t"),
                b'\n' => self.text.push_str("\\n"),
                b'\x0c' => self.text.push_str("\\f"),
                b'\r' => self.text.push_str("\\r"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.text.push_str("\\u00");
                    self.text.push(char::from(HEX[usize::from(byte >> 4)]));
                    self.text.push(char::from(HEX[usize::from(byte & 0xf)]));
                }
            }
            run = at + 1;
        }
    }

    /// A claim as a context value (see [`crate::authorizer::flatten`], which this writes
    /// without building it): strings, numbers and booleans as they are; an array of strings
    /// joined with spaces; other arrays and objects as their compact JSON text, as a string.
    /// `null` writes nothing and returns false (the member is left out).
    pub(crate) fn context_value(&mut self, value: &Value) -> bool {
        match value {
            Value::Null => return false,
            Value::String(text) => self.string(text),
            Value::Number(number) => self.text.push_str(&number.to_string()),
            Value::Bool(true) => self.raw("true"),
            Value::Bool(false) => self.raw("false"),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                self.text.push('"');
                for (index, item) in items.iter().filter_map(Value::as_str).enumerate() {
                    if index > 0 {
                        self.text.push(' ');
                    }
                    self.string_contents(item);
                }
                self.text.push('"');
            }
            Value::Array(_) | Value::Object(_) => self.string(&value.to_string()),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorizer::flatten;
    use proptest::prelude::*;
    use serde_json::json;

    fn rendered(text: &str) -> String {
        let mut json = JsonText::with_capacity(0);
        json.string(text);
        json.into_string()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "a\"b\\c",
            "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} ",
            "é 🦀 \u{2028}\u{2029} \u{7f} </script>",
            "\"\"\\\\",
        ] {
            assert_eq!(rendered(text), serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn context_values_are_what_flatten_makes() {
        for value in [
            json!(null),
            json!("a\"b"),
            json!(3),
            json!(-1.5e300),
            json!(u64::MAX),
            json!(true),
            json!(false),
            json!(["a", "b\n", ""]),
            json!([]),
            json!([1, "b"]),
            json!({"x": {"y": ["\"", null]}}),
        ] {
            let mut json = JsonText::with_capacity(0);
            let written = json.context_value(&value);
            let expected = flatten(&value).map(|v| serde_json::to_string(&v).unwrap());
            assert_eq!(written.then(|| json.into_string()), expected, "{value}");
        }
    }

    proptest! {
        #[test]
        fn any_string_reads_back_as_itself(text in any::<String>()) {
            let json = rendered(&text);
            prop_assert_eq!(&json, &serde_json::to_string(&text).unwrap());
            prop_assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
        }
    }
}
