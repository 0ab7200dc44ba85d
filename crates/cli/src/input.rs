//! Reading the token argument: literal or `-` for standard input, with an optional `Bearer `.

use crate::config::ConfigError;
use std::io::Read;

/// Returns the token text: the argument, or standard input for `-` (one trailing newline
/// removed, nothing else trimmed), without a leading case-insensitive `Bearer ` scheme.
pub fn read_token(argument: &str) -> Result<String, ConfigError> {
    let raw = if argument == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| ConfigError::Stdin(e.to_string()))?;
        strip_one_newline(text)
    } else {
        argument.to_owned()
    };
    Ok(strip_bearer(&raw).to_owned())
}

fn strip_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Removes a leading `Bearer ` (any case), as pasted from an `Authorization` header.
pub fn strip_bearer(text: &str) -> &str {
    const SCHEME: &str = "bearer ";
    match text.get(..SCHEME.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(SCHEME) => &text[SCHEME.len()..],
        _ if text.eq_ignore_ascii_case("bearer") => "",
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_scheme_only() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bEaReR abc"), "abc");
        assert_eq!(strip_bearer("Bearer "), "");
        assert_eq!(strip_bearer("Bearer"), "");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer  abc"), " abc");
    }

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(strip_one_newline("abc\n".into()), "abc");
        assert_eq!(strip_one_newline("abc\r\n".into()), "abc");
        assert_eq!(strip_one_newline("abc\n\n".into()), "abc\n");
        assert_eq!(strip_one_newline(" abc ".into()), " abc ");
    }
}
