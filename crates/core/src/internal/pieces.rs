//! The non-empty pieces of a text between one ASCII separator, found byte by byte: scope strings
//! (`"openid read:users"`) and request paths (`/api/users`) are a few short pieces, for which a
//! searcher set up per piece (`str::split`) costs more than the search.

/// The non-empty pieces of a text between `separator` bytes, in order (what
/// `text.split(separator).filter(|piece| !piece.is_empty())` yields).
#[derive(Debug, Clone)]
pub struct NonEmptyPieces<'a> {
    rest: &'a str,
    separator: u8,
}

impl<'a> NonEmptyPieces<'a> {
    /// The pieces of `text` between `separator`, which must be ASCII so that every cut is a
    /// character boundary: a non-ASCII `separator` never cuts, and `text` (when not empty) is the
    /// one piece.
    pub fn new(text: &'a str, separator: u8) -> NonEmptyPieces<'a> {
        NonEmptyPieces {
            rest: text,
            separator,
        }
    }
}

impl<'a> Iterator for NonEmptyPieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = if self.separator.is_ascii() {
                self.rest
                    .bytes()
                    .position(|byte| byte == self.separator)
                    .unwrap_or(self.rest.len())
            } else {
                self.rest.len()
            };
            let piece = self.rest.get(..end).unwrap_or_default();
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_what_split_keeps_when_empty_ones_are_dropped() {
        let texts = [
            "", " ", "/", "//", "a", "/a", "a/", "/a//b", "//a///b/", "a b  c ", "/é/ü/", "é ü",
        ];
        for text in texts {
            for separator in [b' ', b'/'] {
                let expected: Vec<&str> = text
                    .split(char::from(separator))
                    .filter(|piece| !piece.is_empty())
                    .collect();
                let pieces: Vec<&str> = NonEmptyPieces::new(text, separator).collect();
                assert_eq!(pieces, expected, "{text:?} by {:?}", char::from(separator));
            }
        }
    }

    #[test]
    fn a_non_ascii_separator_never_cuts() {
        let pieces: Vec<&str> = NonEmptyPieces::new("aé\u{e9}b", 0xC3).collect();
        assert_eq!(pieces, ["aé\u{e9}b"]);
        assert_eq!(NonEmptyPieces::new("", 0xC3).count(), 0);
    }
}
