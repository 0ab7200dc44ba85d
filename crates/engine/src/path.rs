//! Request-path normalisation before route matching, so that `/api/../admin`, `/api//users` or
//! `/api/%75sers` cannot dodge a rule that names `/admin` or `/api/users`, and refusal of the
//! paths that the server behind jwtgate could read differently from jwtgate.
//!
//! Steps (RFC 3986 §6.2.2): drop the query and fragment; decode percent-encoded *unreserved*
//! characters (letters, digits, `-._~`) and upper-case the hex of the others; collapse repeated
//! slashes; remove `.` and `..` segments (never above the root).
//!
//! Refused, because common servers decode or split them where jwtgate would not (so that
//! `/public/..%2Fapi%2Fadmin` would match a public route here and reach `/api/admin` there),
//! unless the [`PathPolicy`] setting named in the error allows them:
//!
//! * an encoded slash or backslash (`%2F`, `%5C`, any case): `allow_encoded_slash` keeps them
//!   encoded as data inside their segment;
//! * a raw backslash (`\`): `allow_backslash`;
//! * a `;` (path parameters, e.g. `..;` on Tomcat and Spring): `allow_semicolon`;
//! * percent-encoded bytes that are not valid UTF-8 once decoded (`%C0%AE`, `%FF`):
//!   `allow_non_utf8`;
//! * a double encoding, `%25` followed by two hex digits (`%252F`, `%252e`): `allow_double_encoding`.
//!
//! Always refused, with no setting: malformed percent-encoding, raw control characters, spaces
//! and non-ASCII bytes, and percent-encoded control characters (`%00`–`%1F`, `%7F`), which
//! servers written in C may cut the path at. Everything runs in time linear in the path.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Which risky path features pass as data instead of being refused; every one is off by default.
///
/// It is also the `[paths]` section of the gateway's and the Lambda authorizer's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathPolicy {
    /// Pass `%2F` and `%5C` as data inside their segment (they are never separators here).
    pub allow_encoded_slash: bool,
    /// Pass a raw `\` as data.
    pub allow_backslash: bool,
    /// Pass `;` (path parameters) as data.
    pub allow_semicolon: bool,
    /// Pass percent-encoded bytes that do not decode to valid UTF-8.
    pub allow_non_utf8: bool,
    /// Pass `%25` followed by two hex digits (a double percent-encoding).
    pub allow_double_encoding: bool,
}

/// A path that cannot be normalised, or that the [`PathPolicy`] refuses.
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
    /// A percent-encoded control character (`%00`–`%1F`, `%7F`); always refused.
    #[error("the request path holds a percent-encoded control character ({0}), which servers written in C may cut the path at; it is always refused")]
    EncodedControl(String),
    /// `%2F` in any case, without [`PathPolicy::allow_encoded_slash`].
    #[error("the request path holds an encoded slash ({0}), which the server behind jwtgate may decode into a separator; set paths.allow_encoded_slash = true to pass it as data")]
    EncodedSlash(String),
    /// `%5C` in any case, without [`PathPolicy::allow_encoded_slash`].
    #[error("the request path holds an encoded backslash ({0}), which the server behind jwtgate may decode into a separator; set paths.allow_encoded_slash = true to pass it as data")]
    EncodedBackslash(String),
    /// A raw `\`, without [`PathPolicy::allow_backslash`].
    #[error("the request path holds a backslash (\\), which the server behind jwtgate may treat as a separator; set paths.allow_backslash = true to pass it as data")]
    Backslash,
    /// A `;`, without [`PathPolicy::allow_semicolon`].
    #[error("the request path holds a ';', which the server behind jwtgate may read as the start of path parameters and cut from the segment (`..;` becomes `..`); set paths.allow_semicolon = true to pass it as data")]
    Semicolon,
    /// Percent-encoded bytes that are not valid UTF-8, without [`PathPolicy::allow_non_utf8`].
    #[error("the request path holds percent-encoded bytes that are not valid UTF-8 ({0}), which servers decode differently (an overlong %C0%AE may become '.'); set paths.allow_non_utf8 = true to pass them as data")]
    NonUtf8(String),
    /// `%25` followed by two hex digits, without [`PathPolicy::allow_double_encoding`].
    #[error("the request path holds a double percent-encoding ({0}), which a server that decodes twice turns into another character; set paths.allow_double_encoding = true to pass it as data")]
    DoubleEncoding(String),
}

/// Longest excerpt of the path quoted in an error.
const MAX_QUOTED: usize = 24;

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

/// `text` shortened to [`MAX_QUOTED`] characters for an error message (it is ASCII).
fn quoted(text: &str) -> String {
    match text.get(..MAX_QUOTED) {
        Some(head) if head.len() < text.len() => format!("{head}…"),
        _ => text.to_owned(),
    }
}

/// Normalises a request target (path with optional query) to the path used for route matching,
/// under the default (strict) [`PathPolicy`].
pub fn normalize(target: &str) -> Result<String, PathError> {
    normalize_with(target, &PathPolicy::default())
}

/// Normalises a request target (path with optional query) to the path used for route matching,
/// refusing what `policy` does not allow.
pub fn normalize_with(target: &str, policy: &PathPolicy) -> Result<String, PathError> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_already_normal(path) {
        return Ok(path.to_owned());
    }
    let decoded = decode_unreserved(path, policy)?;
    if !policy.allow_double_encoding {
        let double = decoded.as_bytes().windows(5).position(|w| {
            w.starts_with(b"%25") && hex_value(w[3]).is_some() && hex_value(w[4]).is_some()
        });
        if let Some(start) = double {
            let found = decoded.get(start..start + 5).unwrap_or_default();
            return Err(PathError::DoubleEncoding(found.to_owned()));
        }
    }
    Ok(remove_dot_segments(&decoded))
}

/// True for the common path that every step would leave as it is: printable ASCII without `%`,
/// `\`, `;`, repeated slashes or dot segments (a `/` followed by `.`). Such a path is its own
/// normal form under every policy, and is returned without decoding or splitting.
fn is_already_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(i, &byte)| {
        matches!(byte, 0x21..=0x7E)
            && !matches!(byte, b'%' | b'\\' | b';')
            && !(byte == b'/' && matches!(bytes.get(i + 1), Some(b'/' | b'.')))
    })
}

/// Step 1: decodes percent-encoded unreserved characters and upper-cases the hex of the other
/// escapes, refusing what `policy` does not allow along the way.
fn decode_unreserved(path: &str, policy: &PathPolicy) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    // Start (in `path`) and decoded bytes of the current run of encoded non-ASCII bytes.
    let mut run_start = 0;
    let mut run: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte != b'%' {
            check_run(path, run_start, i, &mut run, policy)?;
            match byte {
                b'\\' if !policy.allow_backslash => return Err(PathError::Backslash),
                b';' if !policy.allow_semicolon => return Err(PathError::Semicolon),
                0x21..=0x7E => decoded.push(char::from(byte)),
                _ => return Err(PathError::BadCharacter),
            }
            i += 1;
            continue;
        }
        let high = bytes.get(i + 1).copied().and_then(hex_value);
        let low = bytes.get(i + 2).copied().and_then(hex_value);
        let (Some(high), Some(low)) = (high, low) else {
            return Err(PathError::BadPercentEncoding);
        };
        let escape = path.get(i..i + 3).unwrap_or_default();
        let value = high << 4 | low;
        if value >= 0x80 {
            if run.is_empty() {
                run_start = i;
            }
            run.push(value);
        } else {
            check_run(path, run_start, i, &mut run, policy)?;
        }
        match value {
            0x00..=0x1F | 0x7F => return Err(PathError::EncodedControl(escape.to_owned())),
            b'/' if !policy.allow_encoded_slash => {
                return Err(PathError::EncodedSlash(escape.to_owned()))
            }
            b'\\' if !policy.allow_encoded_slash => {
                return Err(PathError::EncodedBackslash(escape.to_owned()))
            }
            _ if is_unreserved(value) => decoded.push(char::from(value)),
            _ => decoded.push_str(&format!("%{value:02X}")),
        }
        i += 3;
    }
    check_run(path, run_start, bytes.len(), &mut run, policy)?;
    Ok(decoded)
}

/// Ends a run of encoded non-ASCII bytes (`path[start..end]`, decoded in `run`): they must form
/// valid UTF-8 unless `policy` allows otherwise. ASCII cannot continue a UTF-8 sequence, so
/// checking each run is checking the whole decoded path.
fn check_run(
    path: &str,
    start: usize,
    end: usize,
    run: &mut Vec<u8>,
    policy: &PathPolicy,
) -> Result<(), PathError> {
    if run.is_empty() {
        return Ok(());
    }
    if !policy.allow_non_utf8 && std::str::from_utf8(run).is_err() {
        let found = path.get(start..end).unwrap_or_default();
        return Err(PathError::NonUtf8(quoted(found)));
    }
    run.clear();
    Ok(())
}

/// Steps 2 and 3: empty segments (repeated slashes) and `.` dropped, `..` pops (never above the
/// root); one trailing slash kept.
fn remove_dot_segments(decoded: &str) -> String {
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
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> String {
        normalize(path).unwrap_or_else(|e| format!("ERR {e}"))
    }

    fn with(policy: PathPolicy, path: &str) -> String {
        normalize_with(path, &policy).unwrap_or_else(|e| format!("ERR {e}"))
    }

    fn refused(path: &str) -> Option<PathError> {
        normalize(path).err()
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(n("/api/users"), "/api/users");
        assert_eq!(n("/api/../admin"), "/admin");
        assert_eq!(n("/api/./users"), "/api/users");
        assert_eq!(n("//api///users"), "/api/users");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/api/users/"), "/api/users/");
        assert_eq!(n("/api/users/.."), "/api/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/api/users?x=/../admin"), "/api/users");
        assert_eq!(n("/api/users?x=%2F;\\"), "/api/users");
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(n("/api/%75sers"), "/api/users");
        assert_eq!(n("/api/%2e%2e/admin"), "/admin");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a%3fb%3Bc"), "/a%3Fb%3Bc");
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

    #[test]
    fn encoded_slashes_are_refused_in_any_case() {
        let slash = |found: &str| Some(PathError::EncodedSlash(found.to_owned()));
        let backslash = |found: &str| Some(PathError::EncodedBackslash(found.to_owned()));
        assert_eq!(refused("/public/..%2Fapi%2Fadmin"), slash("%2F"));
        assert_eq!(refused("/api%2fusers"), slash("%2f"));
        assert_eq!(refused("/api/%2E%2E%2Fadmin"), slash("%2F"));
        assert_eq!(refused("/public/..%5Capi"), backslash("%5C"));
        assert_eq!(refused("/public/..%5capi"), backslash("%5c"));
        assert_eq!(
            n("/a%2fb"),
            "ERR the request path holds an encoded slash (%2f), which the server behind jwtgate may decode into a separator; set paths.allow_encoded_slash = true to pass it as data"
        );
    }

    #[test]
    fn allow_encoded_slash_keeps_them_as_data() {
        let policy = PathPolicy {
            allow_encoded_slash: true,
            ..PathPolicy::default()
        };
        assert_eq!(with(policy, "/api/%2E%2E%2Fadmin"), "/api/..%2Fadmin");
        assert_eq!(with(policy, "/api%2fusers"), "/api%2Fusers");
        assert_eq!(
            with(policy, "/public/..%2Fapi%2Fadmin"),
            "/public/..%2Fapi%2Fadmin"
        );
        assert_eq!(with(policy, "/public/..%5capi"), "/public/..%5Capi");
        // Only that: a raw backslash is still refused.
        assert_eq!(
            with(policy, "/a\\b"),
            format!("ERR {}", PathError::Backslash)
        );
    }

    #[test]
    fn backslash() {
        assert_eq!(refused("/public/..\\api"), Some(PathError::Backslash));
        let policy = PathPolicy {
            allow_backslash: true,
            ..PathPolicy::default()
        };
        assert_eq!(with(policy, "/public/..\\api"), "/public/..\\api");
        assert!(with(policy, "/a%5Cb")
            .starts_with("ERR the request path holds an encoded backslash (%5C)"));
    }

    #[test]
    fn semicolon() {
        assert_eq!(refused("/public/..;/api/admin"), Some(PathError::Semicolon));
        assert_eq!(refused("/app;jsessionid=x"), Some(PathError::Semicolon));
        assert_eq!(refused("/app/;/x"), Some(PathError::Semicolon));
        let policy = PathPolicy {
            allow_semicolon: true,
            ..PathPolicy::default()
        };
        assert_eq!(
            with(policy, "/public/..;/api/admin"),
            "/public/..;/api/admin"
        );
        assert_eq!(with(policy, "/app;jsessionid=x"), "/app;jsessionid=x");
    }

    #[test]
    fn non_utf8() {
        let non_utf8 = |found: &str| Some(PathError::NonUtf8(found.to_owned()));
        assert_eq!(
            refused("/public/%c0%ae%c0%ae/api"),
            non_utf8("%c0%ae%c0%ae")
        );
        assert_eq!(refused("/a%ff"), non_utf8("%ff"));
        assert_eq!(refused("/a%e2%82"), non_utf8("%e2%82"));
        assert_eq!(refused("/a%e2%82x%ac"), non_utf8("%e2%82"));
        assert_eq!(refused("/a%e2%82/%ac"), non_utf8("%e2%82"));
        assert!(n(&format!("/{}", "%ff".repeat(40))).contains(&format!("({}…)", "%ff".repeat(8))));
        assert_eq!(n("/caf%C3%A9"), "/caf%C3%A9");
        assert_eq!(n("/caf%c3%a9/%e2%82%ac"), "/caf%C3%A9/%E2%82%AC");
        let policy = PathPolicy {
            allow_non_utf8: true,
            ..PathPolicy::default()
        };
        assert_eq!(
            with(policy, "/public/%c0%ae%c0%ae/api"),
            "/public/%C0%AE%C0%AE/api"
        );
        assert_eq!(with(policy, "/a%ff"), "/a%FF");
    }

    #[test]
    fn double_encoding() {
        let double = |found: &str| Some(PathError::DoubleEncoding(found.to_owned()));
        assert_eq!(refused("/public/..%252Fapi"), double("%252F"));
        assert_eq!(refused("/a/%252e%252e/b"), double("%252e"));
        assert_eq!(refused("/a%255c"), double("%255c"));
        // Hex digits sent encoded are still hex digits to a second decoder.
        assert_eq!(refused("/a%25%32%46"), double("%252F"));
        // A `%25` not followed by two hex digits is an ordinary percent sign.
        assert_eq!(n("/100%25"), "/100%25");
        assert_eq!(n("/100%25off"), "/100%25off");
        assert_eq!(n("/a%25/2F"), "/a%25/2F");
        let policy = PathPolicy {
            allow_double_encoding: true,
            ..PathPolicy::default()
        };
        assert_eq!(with(policy, "/public/..%252Fapi"), "/public/..%252Fapi");
        assert_eq!(with(policy, "/a/%252e%252e/b"), "/a/%252e%252e/b");
    }

    #[test]
    fn encoded_control_characters_are_always_refused() {
        let everything = PathPolicy {
            allow_encoded_slash: true,
            allow_backslash: true,
            allow_semicolon: true,
            allow_non_utf8: true,
            allow_double_encoding: true,
        };
        for (path, found) in [
            ("/a%00", "%00"),
            ("/a%0a", "%0a"),
            ("/%1F", "%1F"),
            ("/a%7f", "%7f"),
        ] {
            assert_eq!(
                normalize_with(path, &everything),
                Err(PathError::EncodedControl(found.to_owned())),
                "{path}"
            );
        }
        assert_eq!(normalize_with("/a%20", &everything), Ok("/a%20".to_owned()));
    }

    proptest::proptest! {
        /// The shortcut for paths already in normal form gives exactly what the full steps give.
        #[test]
        fn the_shortcut_agrees_with_the_full_steps(path in "/[a-z./_~-]{0,24}") {
            let policy = PathPolicy::default();
            let full = decode_unreserved(&path, &policy).map(|d| remove_dot_segments(&d));
            if is_already_normal(&path) {
                proptest::prop_assert_eq!(Ok(path.clone()), full.clone());
            }
            proptest::prop_assert_eq!(normalize_with(&path, &policy), full);
        }
    }
}
