//! Property tests (proptest) of request-path normalisation, on paths built from the pieces that
//! path-confusion attacks are made of (dots, slashes, encoded slashes and backslashes, `;`,
//! `%25`, overlong and partial UTF-8, control characters) mixed with ordinary characters:
//!
//! * whatever is accepted normalises to itself (idempotence);
//! * the output has no `.` or `..` segment, no `//` and no empty segment besides the root or one
//!   trailing slash;
//! * under the default policy the output holds no `%2F`, `%5C`, `;`, `\` or double encoding in
//!   any case, decodes to valid UTF-8, and a server that percent-decodes the whole path *before*
//!   resolving dot segments (nginx, Python's http.server, Jetty) arrives at exactly the decoded
//!   form of what jwtgate checked;
//! * with `allow_encoded_slash`, `%2F` never becomes a separator: the output has no more `/` than
//!   the input, and each of its segments is the normalised form of one input segment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_engine::path::{normalize, normalize_with, PathError, PathPolicy};
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "/",
    "/",
    "/",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2F",
    "%2f",
    "%5C",
    "%5c",
    "\\",
    ";",
    "%3B",
    "%25",
    "2F",
    "2e",
    "%32",
    "%46",
    "%41",
    "a",
    "b",
    "api",
    "admin",
    "~",
    "-",
    "%C3%A9",
    "%c3",
    "%a9",
    "%c0%ae",
    "%ff",
    "%e2%82",
    "%e2%82%ac",
    "%00",
    "%0a",
    "%7f",
    "%20",
    "%",
    "?x=/../",
    "#f",
];

/// A path: `/` followed by up to 24 pieces.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24)
        .prop_map(|pieces| format!("/{}", pieces.concat()))
}

fn policy() -> impl Strategy<Value = PathPolicy> {
    prop::array::uniform5(any::<bool>()).prop_map(|allow| PathPolicy {
        allow_encoded_slash: allow[0],
        allow_backslash: allow[1],
        allow_semicolon: allow[2],
        allow_non_utf8: allow[3],
        allow_double_encoding: allow[4],
    })
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes every `%XX` (what the server behind jwtgate does).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let high = bytes.get(i + 1).copied().and_then(hex);
        let low = bytes.get(i + 2).copied().and_then(hex);
        match (bytes[i], high, low) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Merges slashes and resolves dot segments on decoded bytes, keeping one trailing slash.
fn resolve(decoded: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = decoded.len() > 1
        && (decoded.ends_with(b"/") || decoded.ends_with(b"/.") || decoded.ends_with(b"/.."));
    let mut out = Vec::new();
    for segment in segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    out
}

/// True when `%25` is followed by two hex digits (a double encoding) in `text`.
fn has_double_encoding(text: &str) -> bool {
    text.as_bytes()
        .windows(5)
        .any(|w| w.starts_with(b"%25") && hex(w[3]).is_some() && hex(w[4]).is_some())
}

fn path_part(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn accepted_paths_are_fixed_points(target in path(), policy in policy()) {
        if let Ok(normalized) = normalize_with(&target, &policy) {
            prop_assert_eq!(normalize_with(&normalized, &policy), Ok(normalized.clone()));
        }
    }

    #[test]
    fn output_has_no_dot_or_empty_segments(target in path(), policy in policy()) {
        if let Ok(normalized) = normalize_with(&target, &policy) {
            prop_assert!(normalized.starts_with('/'));
            prop_assert!(!normalized.contains("//"), "{}", normalized);
            let body = normalized.strip_prefix('/').unwrap();
            let body = body.strip_suffix('/').unwrap_or(body);
            if !body.is_empty() {
                for segment in body.split('/') {
                    prop_assert!(!matches!(segment, "" | "." | ".."), "{} from {}", normalized, target);
                }
            }
        }
    }

    #[test]
    fn strict_output_holds_no_separator_in_disguise(target in path()) {
        match normalize(&target) {
            Ok(normalized) => {
                let upper = normalized.to_ascii_uppercase();
                for found in ["%2F", "%5C", ";", "\\"] {
                    prop_assert!(!upper.contains(found), "{} in {}", found, normalized);
                }
                prop_assert!(!has_double_encoding(&normalized), "{}", normalized);
                prop_assert!(std::str::from_utf8(&percent_decode(&normalized)).is_ok());
                // A server that decodes first and resolves dot segments after sees what was checked.
                prop_assert_eq!(
                    resolve(&percent_decode(path_part(&target))),
                    percent_decode(&normalized),
                    "{}", target
                );
            }
            Err(error) => prop_assert_ne!(error, PathError::NotAbsolute),
        }
    }

    #[test]
    fn encoded_slash_is_never_a_separator(target in path()) {
        let policy = PathPolicy { allow_encoded_slash: true, ..PathPolicy::default() };
        if let Ok(normalized) = normalize_with(&target, &policy) {
            let input = path_part(&target);
            prop_assert!(normalized.matches('/').count() <= input.matches('/').count());
            let input_segments: Vec<String> = input
                .split('/')
                .filter_map(|raw| normalize_with(&format!("/{raw}"), &policy).ok())
                .collect();
            for segment in normalized.split('/').filter(|s| !s.is_empty()) {
                let segment = format!("/{segment}");
                prop_assert!(input_segments.contains(&segment), "{} of {} from {}", segment, normalized, target);
            }
        }
    }
}

#[test]
fn the_reported_bypasses_are_refused() {
    for target in [
        "/public/..%2Fapi%2Fadmin",
        "/api/users/..%2Fadmin",
        "/public/..%5Capi",
        "/public/..\\api",
        "/public/..;/api/admin",
        "/public/%c0%ae%c0%ae/api/admin",
        "/public/..%252Fapi",
        "/public/%252e%252e/api",
        "/public/%00/../api",
    ] {
        assert!(normalize(target).is_err(), "{target}");
    }
}
