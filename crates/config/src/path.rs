//! Request-path normalisation before route matching, so that `/api/../admin`, `/api//users` or
//! `/api/%75sers` cannot dodge a rule that names `/admin` or `/api/users`.
//!
//! Steps (RFC 3986 §6.2.2): drop the query; decode percent-encoded *unreserved* characters
//! (letters, digits, `-._~`) and upper-case the hex of the others; collapse repeated slashes;
//! remove `.` and `..` segments (never above the root). An encoded slash (`%2F`) stays encoded:
//! it is part of a segment, not a separator, so it cannot split or join segments. Malformed
//! percent-encoding and control characters are refused.

use thiserror::Error;

/// A path that cannot be normalised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// Not starting with `/` (and not `*`).
    #[error("the request path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in the request path")]
    BadPercentEncoding,
    /// Control characters, spaces or non-ASCII bytes.
    #[error("the request path contains a character that is not allowed")]
    BadCharacter,
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Normalises a request target (path with optional query) to the path used for route matching.
pub fn normalize(target: &str) -> Result<String, PathError> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // 1. Percent-decoding of unreserved characters; canonical upper-case hex for the rest.
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(PathError::BadPercentEncoding);
            };
            let value = high << 4 | low;
            if is_unreserved(value) {
                decoded.push(char::from(value));
            } else {
                decoded.push_str(&format!("%{value:02X}"));
            }
            i += 3;
            continue;
        }
        if !(0x21..0x7F).contains(&byte) {
            return Err(PathError::BadCharacter);
        }
        decoded.push(char::from(byte));
        i += 1;
    }
    // 2. Segments: empty ones (repeated slashes) and "." dropped, ".." pops.
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing_slash = decoded.len() > 1
        && (decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/.."));
    let mut normalized = String::with_capacity(decoded.len());
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() || trailing_slash {
        normalized.push('/');
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_slashes() {
        let n = |p: &str| normalize(p).unwrap_or_else(|e| format!("ERR {e}"));
        assert_eq!(n("/api/users"), "/api/users");
        assert_eq!(n("/api/../admin"), "/admin");
        assert_eq!(n("/api/./users"), "/api/users");
        assert_eq!(n("//api///users"), "/api/users");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/api/users/"), "/api/users/");
        assert_eq!(n("/api/users/.."), "/api/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/api/users?x=/../admin"), "/api/users");
    }

    #[test]
    fn percent_encoding() {
        let n = |p: &str| normalize(p).unwrap_or_else(|e| format!("ERR {e}"));
        assert_eq!(n("/api/%75sers"), "/api/users");
        assert_eq!(n("/api/%2e%2e/admin"), "/admin");
        assert_eq!(n("/api/%2E%2E%2Fadmin"), "/api/..%2Fadmin");
        assert_eq!(n("/api%2fusers"), "/api%2Fusers");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(
            n("/a%zz"),
            "ERR malformed percent-encoding in the request path"
        );
        assert_eq!(
            n("/a%2"),
            "ERR malformed percent-encoding in the request path"
        );
        assert_eq!(
            n("/a b"),
            "ERR the request path contains a character that is not allowed"
        );
        assert_eq!(n("api"), "ERR the request path must start with '/'");
    }
}
