//! A JSON reader for authorizer events: walks the event's bytes once, hands out the few
//! strings the decision reads (borrowed from the text when they have no escapes) and skips every
//! other value structurally, without building or decoding anything.
//!
//! An API Gateway event is 1–4 KB, most of it values no decision reads (`multiValueHeaders`
//! beside `headers`, `requestContext`, query strings, stage variables). A `serde` visitor with
//! `IgnoredAny` still dispatches on every value and parses every number; [`Cursor::skip_value`]
//! only finds where a value ends, with one loop and no recursion:
//!
//! * first, one pass over the whole event marks its *string stops* — `"`, `\`, control
//!   characters and non-ASCII bytes — in a bitmap, sixteen bytes per vector compare (`Text`,
//!   `block_stops`: `wide`, SSE2 on x86-64, NEON on arm64, no `unsafe` here). A string's end is
//!   then the next stop (a shift and a bit search), whatever its length;
//! * strings: up to the closing `"`, every escape checked (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
//!   `\r`, `\t`, `\uXXXX`), a raw control character refused, each non-ASCII character checked
//!   as UTF-8 (the event's only other bytes are structural ASCII, so this is the whole UTF-8
//!   check: no separate pass) — so a `"` or a bracket inside a string never ends a value early,
//!   and `\\"` never hides the end of one;
//! * objects whose members are all `"name":"value"`, with nothing between the tokens and no stop
//!   in the strings but their closing quotes (most of an event's maps), are read by their stops
//!   and a few byte comparisons per member (`compact_members`; header maps likewise,
//!   [`Cursor::header_until`]); anything else by the general loop;
//! * containers: brackets counted on a stack of up to [`MAX_DEPTH`] kinds, so `{"a": [}` is
//!   refused, with the commas, colons and member names between their items checked;
//! * numbers and `true`/`false`/`null`: their JSON grammar checked.
//!
//! A skipped value is therefore well-formed JSON as `serde_json` reads it, and UTF-8 (the unit
//! tests hold the two to the same verdict on random, mutated and every truncated input); an
//! event that is not is refused as a whole, never half-read. A string handed out as `&str` is
//! converted from its checked bytes.

use std::borrow::Cow;
use thiserror::Error;
use wide::{i8x16, CmpEq, CmpLt};

/// The deepest nesting of arrays and objects [`Cursor::skip_value`] accepts, counted from the
/// skipped value (`serde_json`'s limit, but from the event's root: a skipped value a few levels
/// down may nest that much deeper than `serde_json` would accept; it only ever accepts more).
pub const MAX_DEPTH: u32 = 127;

/// Why the event's text is not the JSON expected at some point (boxed: one word, so that the
/// scanner's results stay small on the path where nothing fails).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{} at byte {}", .0.what, .0.at)]
pub struct ScanError(Box<ScanErrorDetail>);

/// What [`ScanError`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanErrorDetail {
    /// What was expected or found.
    pub what: Cow<'static, str>,
    /// The byte offset in the event's text.
    pub at: usize,
}

impl ScanError {
    /// `what` at byte `at`.
    #[cold]
    pub fn new(what: impl Into<Cow<'static, str>>, at: usize) -> ScanError {
        ScanError(Box::new(ScanErrorDetail {
            what: what.into(),
            at,
        }))
    }
}

/// The bytes the scanner looks at in one go when it searches for the end of a string: a block
/// of the text, starting at a multiple of this size.
const BLOCK: usize = 64;

/// The text being scanned, with a bitmap of where its string stops are.
///
/// A string stop is a byte that ends or interrupts the scan of a string's contents: `"`, `\\`,
/// a control character (refused raw in a string) or a byte of a non-ASCII character (checked
/// as UTF-8 there). The bitmap is computed once for the whole text, [`BLOCK`] bytes to a word,
/// sixteen bytes at a time with vector compares ([`block_stops`]: a few instructions per 64
/// bytes, in one loop over the text), so that [`Text::string_stop`] finds the end of each of
/// an event's many short names and values with a shift and a bit search, and of a long one (a
/// token) with one more word per 64 bytes.
#[derive(Debug, Clone)]
struct Text<'a> {
    bytes: &'a [u8],
    /// Bit `i` of word `w` set: byte `w * BLOCK + i` is a string stop, or past the end of the
    /// text (so the last word always has a bit set at the end).
    stops: Vec<u64>,
}

impl<'a> Text<'a> {
    fn new(bytes: &'a [u8]) -> Text<'a> {
        let whole = bytes.chunks_exact(BLOCK);
        let rest = whole.remainder();
        // Sized up front: no allocation (so no spilled registers) inside the loop.
        let mut stops = vec![0; bytes.len() / BLOCK + 1];
        for (word, block) in stops.iter_mut().zip(whole) {
            *word = block_stops(block);
        }
        let mut padded = [0u8; BLOCK];
        if let Some(head) = padded.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        if let Some(last) = stops.last_mut() {
            *last = block_stops(&padded);
        }
        Text { bytes, stops }
    }

    /// The first string stop at or after `from`, or the end of the text.
    #[inline(always)]
    fn string_stop(&self, mut from: usize) -> usize {
        loop {
            let Some(&stops) = self.stops.get(from / BLOCK) else {
                return self.bytes.len();
            };
            let ahead = stops >> (from % BLOCK);
            if ahead != 0 {
                return (from + ahead.trailing_zeros() as usize).min(self.bytes.len());
            }
            from = (from / BLOCK + 1) * BLOCK;
        }
    }
}

/// The string stops of one block (see [`Text`]) as a bitmap, bit `i` for byte `i`; a byte of
/// zero (the padding of the last block) is a control character, so a stop.
#[inline(always)]
fn block_stops(block: &[u8]) -> u64 {
    let quote = i8x16::splat(b'"' as i8);
    let backslash = i8x16::splat(b'\\' as i8);
    let space = i8x16::splat(0x20);
    let mut stops = 0;
    for (index, lane) in block.chunks_exact(16).enumerate() {
        // Sixteen bytes as they are, read unaligned (never fails: the lane is 16 bytes).
        let Ok(lane) = bytemuck::try_pod_read_unaligned::<i8x16>(lane) else {
            continue;
        };
        // Signed: a byte of 0x80 or above is negative, below 0x20 like a control character.
        let stop = lane.cmp_eq(quote) | lane.cmp_eq(backslash) | lane.cmp_lt(space);
        stops |= u64::from(stop.move_mask() as u16) << (16 * index);
    }
    stops
}

/// A position in a JSON text.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
    scan: Text<'a>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text` (a JSON text, UTF-8 or not: the scanner checks it).
    pub fn new(text: &'a [u8]) -> Cursor<'a> {
        Cursor {
            text,
            pos: 0,
            scan: Text::new(text),
        }
    }

    /// The byte offset of the cursor.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// An error at the cursor.
    #[cold]
    pub fn error(&self, what: impl Into<Cow<'static, str>>) -> ScanError {
        ScanError::new(what, self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Result<u8, ScanError> {
        let byte = self
            .peek()
            .ok_or_else(|| self.error("unexpected end of the event"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Skips JSON whitespace.
    pub fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Whitespace, then `byte`.
    pub fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// True (and past it) when whitespace, then `null` is next.
    pub fn null(&mut self) -> Result<bool, ScanError> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            self.pos += 1;
            self.literal(b"ull")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// True when whitespace, then `byte` is next (not consumed).
    pub fn next_is(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        self.peek() == Some(byte)
    }

    /// Whitespace, then the end of the text.
    pub fn end(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters after the event")),
        }
    }

    /// The contents of the string whose opening quote was just read, the cursor left after its
    /// closing quote: their span and whether they have an escape.
    #[inline(always)]
    fn string_contents(&mut self) -> Result<(usize, usize, bool), ScanError> {
        let start = self.pos;
        match string_end(&self.scan, start) {
            Ok((end, escaped)) => {
                self.pos = end;
                Ok((start, end - 1, escaped))
            }
            Err(problem) => Err(problem.at(self)),
        }
    }

    /// Whitespace, then a string: its text, borrowed when it has no escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, str>, ScanError> {
        let opening = self.pos;
        match self.string_bytes()? {
            // Checked as UTF-8 by the scan: `from_utf8` fails only if the scanner has a bug.
            Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| ScanError::new("a string that is not UTF-8", opening)),
            Cow::Owned(bytes) => String::from_utf8(bytes)
                .map(Cow::Owned)
                .map_err(|_| ScanError::new("a string that is not UTF-8", opening)),
        }
    }

    /// Whitespace, then a string: its bytes (UTF-8), borrowed when it has no escapes.
    #[inline]
    pub fn string_bytes(&mut self) -> Result<Cow<'a, [u8]>, ScanError> {
        self.expect(b'"', "expected a string")?;
        let opening = self.pos - 1;
        let (start, end, escaped) = self.string_contents()?;
        match self.text.get(start..end) {
            Some(text) if !escaped => Ok(Cow::Borrowed(text)),
            _ => self.escaped_string(opening),
        }
    }

    /// The string from `opening` to the cursor (just read), decoded: the rare string with an
    /// escape, kept out of [`Cursor::string_bytes`]'s path.
    #[cold]
    #[inline(never)]
    fn escaped_string(&self, opening: usize) -> Result<Cow<'a, [u8]>, ScanError> {
        let quoted = self.text.get(opening..self.pos).unwrap_or_default();
        serde_json::from_slice::<String>(quoted)
            .map(|text| Cow::Owned(text.into_bytes()))
            .map_err(|e| ScanError::new(format!("an invalid string: {e}"), opening))
    }

    /// `{` (whitespace before it skipped): `false` when `}` follows at once (an empty object,
    /// read whole), `true` when a member follows ([`Cursor::member_until`] or
    /// [`Cursor::header_until`], then its value, then [`Cursor::next_member`]).
    #[inline(always)]
    pub fn object_start(&mut self) -> Result<bool, ScanError> {
        self.expect(b'{', "expected an object")?;
        if self.next_is(b'}') {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a member's value: `true` after a `,` (another member follows), `false` after the
    /// object's `}`.
    #[inline(always)]
    pub fn next_member(&mut self) -> Result<bool, ScanError> {
        self.skip_whitespace();
        match self.next_byte()? {
            b',' => Ok(true),
            b'}' => Ok(false),
            _ => Err(self.error("expected `,` or `}`")),
        }
    }

    /// `null` (`None`) or a string.
    pub fn optional_string(&mut self) -> Result<Option<Cow<'a, str>>, ScanError> {
        if self.null()? {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// A JSON object (whitespace before it skipped) whose members `field` names (an index) are
    /// read by `read`, given the index; the others are skipped whole ([`Cursor::member_until`]).
    /// The object's own punctuation is checked here.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&[u8]) -> Option<usize>,
        mut read: impl FnMut(&mut Cursor<'a>, usize) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        if !self.object_start()? {
            return Ok(());
        }
        loop {
            let mut index = 0;
            let found = self.member_until(|name| field(name).map(|i| index = i).is_some())?;
            if found.is_none() {
                return Ok(());
            }
            read(self, index)?;
            if !self.next_member()? {
                return Ok(());
            }
        }
    }

    /// A JSON array: `item` reads each item.
    pub fn array(
        &mut self,
        mut item: impl FnMut(&mut Cursor<'a>) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        self.expect(b'[', "expected an array")?;
        if self.next_is(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_whitespace();
            match self.next_byte()? {
                b',' => {}
                b']' => return Ok(()),
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// The members of an object up to the first one `wanted` accepts, the others skipped whole
    /// (their values as [`Cursor::skip_value`] does, in the same loop): `Some(name)` with the
    /// cursor after its `:`, at its value, or `None` after the object's `}`. The cursor must be
    /// where a member starts ([`Cursor::object_start`] returned `true`, or
    /// [`Cursor::next_member`] did).
    #[inline]
    pub fn member_until(
        &mut self,
        mut wanted: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<Cow<'a, [u8]>>, ScanError> {
        loop {
            let (name, value) = match member_start(&self.scan, self.pos) {
                Ok((name, value)) => (name, value),
                Err(problem) => return Err(problem.at(self)),
            };
            let name = self.name_at(name)?;
            if wanted(&name) {
                self.pos = value;
                return Ok(Some(name));
            }
            match skip(&self.scan, value).and_then(|end| member_end(self.text, end)) {
                Ok((end, more)) => {
                    self.pos = end;
                    if !more {
                        return Ok(None);
                    }
                }
                Err(problem) => return Err(problem.at(self)),
            }
        }
    }

    /// [`Cursor::member_until`] for a header map, whose values are strings or lists of strings:
    /// each name must pass `valid` (else [`HeaderProblem::Name`]: the caller words the error)
    /// and is counted in `names`; the values of the names `wanted` refuses are skipped (anything
    /// but a string or a list of strings is an error). The common `"name":["value"]` (or
    /// `"value"`) members are read by the string-stop bitmap and a few byte comparisons
    /// ([`compact_name`], [`compact_strings`]), anything else by the general path.
    #[inline]
    pub fn header_until(
        &mut self,
        valid: impl Fn(&[u8]) -> bool,
        mut wanted: impl FnMut(&[u8]) -> bool,
        names: &mut usize,
    ) -> Result<Option<KeptHeader<'a>>, HeaderProblem> {
        loop {
            let start = self.pos;
            let found = match compact_name(&self.scan, start) {
                Some(found) => Ok(found),
                None => member_start(&self.scan, start),
            };
            let (name, value) = match found {
                Ok((name, value)) => (name, value),
                Err(problem) => return Err(HeaderProblem::Scan(problem.at(self))),
            };
            let name = self.name_at(name).map_err(HeaderProblem::Scan)?;
            if !valid(&name) {
                return Err(HeaderProblem::Name(name.into_owned(), start));
            }
            *names += 1;
            if wanted(&name) {
                self.pos = value;
                return Ok(Some(KeptHeader { name, start }));
            }
            if let Some((end, more)) = compact_strings(&self.scan, value) {
                self.pos = end;
                if !more {
                    return Ok(None);
                }
                continue;
            }
            let value = whitespace_end(self.text, value);
            let end = match strings_end(&self.scan, value) {
                Ok(Some(end)) => end,
                Ok(None) => {
                    self.pos = value;
                    return Err(HeaderProblem::Scan(
                        self.error("a header value is not a string or a list of strings"),
                    ));
                }
                Err(problem) => return Err(HeaderProblem::Scan(problem.at(self))),
            };
            match member_end(self.text, end) {
                Ok((end, more)) => {
                    self.pos = end;
                    if !more {
                        return Ok(None);
                    }
                }
                Err(problem) => return Err(HeaderProblem::Scan(problem.at(self))),
            }
        }
    }

    /// A member name found by [`member_start`]: borrowed, or decoded when it has an escape.
    #[inline(always)]
    fn name_at(&mut self, name: NameSpan) -> Result<Cow<'a, [u8]>, ScanError> {
        match self.text.get(name.start..name.end) {
            Some(bytes) if !name.escaped => Ok(Cow::Borrowed(bytes)),
            _ => {
                self.pos = name.end + 1;
                self.escaped_string(name.start - 1)
            }
        }
    }

    /// Whitespace, then a string or an array of strings, skipped (their syntax checked, as
    /// [`Cursor::skip_value`] does); `false` (the cursor not moved past the whitespace) for any
    /// other value. (What [`Cursor::header_until`] does with a value; for the tests.)
    #[cfg(test)]
    pub fn skip_strings(&mut self) -> Result<bool, ScanError> {
        self.skip_whitespace();
        match strings_end(&self.scan, self.pos) {
            Ok(Some(end)) => {
                self.pos = end;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(problem) => Err(problem.at(self)),
        }
    }

    /// Whitespace, then any JSON value, skipped: its text (UTF-8).
    pub fn value_text(&mut self) -> Result<&'a [u8], ScanError> {
        self.skip_whitespace();
        let start = self.pos;
        self.skip_value()?;
        Ok(self.text.get(start..self.pos).unwrap_or_default())
    }

    /// Whitespace, then any JSON value, skipped: only its end is found, with its syntax checked
    /// (see the module documentation).
    pub fn skip_value(&mut self) -> Result<(), ScanError> {
        match skip(&self.scan, self.pos) {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err(problem) => Err(problem.at(self)),
        }
    }

    /// The rest of a literal whose first byte was just read.
    fn literal(&mut self, rest: &[u8]) -> Result<(), ScanError> {
        match literal_end(self.text, self.pos, rest) {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err(problem) => Err(problem.at(self)),
        }
    }
}

/// Where and why [`skip`] stopped: turned into a [`ScanError`] only when something failed.
#[derive(Debug, Clone, Copy)]
struct Problem {
    at: usize,
    what: &'static str,
}

impl Problem {
    #[cold]
    fn at(self, cursor: &mut Cursor<'_>) -> ScanError {
        cursor.pos = self.at;
        cursor.error(self.what)
    }
}

/// The first byte at or after `at` that is not JSON whitespace.
#[inline(always)]
fn whitespace_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The end (after the closing quote) of the string whose contents start at `at`, and whether
/// it has an escape.
#[inline(always)]
fn string_end(text: &Text<'_>, mut at: usize) -> Result<(usize, bool), Problem> {
    let mut escaped = false;
    loop {
        at = text.string_stop(at);
        match text.bytes.get(at) {
            Some(b'"') => return Ok((at + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                at = escape_end(text.bytes, at + 1)?;
            }
            Some(0x80..) => at = character_end(text.bytes, at)?,
            Some(_) => {
                return Err(Problem {
                    at,
                    what: "a control character in a string",
                })
            }
            None => {
                return Err(Problem {
                    at,
                    what: "unterminated string",
                })
            }
        }
    }
}

/// The end of an escape whose backslash ends before `at`: `\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t` or `\u` and four hexadecimal digits.
#[inline(never)]
fn escape_end(bytes: &[u8], at: usize) -> Result<usize, Problem> {
    match bytes.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => match bytes.get(at + 1..at + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(at + 5),
            _ => Err(Problem {
                at,
                what: "an invalid \\u escape",
            }),
        },
        _ => Err(Problem {
            at,
            what: "an invalid escape",
        }),
    }
}

/// The end of the non-ASCII character whose first byte is at `at`, checked as UTF-8 (the
/// shortest form of a scalar value: no surrogate, nothing above U+10FFFF).
#[inline(never)]
fn character_end(bytes: &[u8], at: usize) -> Result<usize, Problem> {
    let width = match bytes.get(at) {
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => 0,
    };
    match bytes.get(at..at + width).map(std::str::from_utf8) {
        Some(Ok(_)) if width > 0 => Ok(at + width),
        _ => Err(Problem {
            at,
            what: "invalid UTF-8 in a string",
        }),
    }
}

/// The end of a literal at `at` that must be `rest`.
fn literal_end(bytes: &[u8], at: usize, rest: &[u8]) -> Result<usize, Problem> {
    let end = at + rest.len();
    if bytes.get(at..end) == Some(rest) {
        Ok(end)
    } else {
        Err(Problem {
            at,
            what: "an invalid literal",
        })
    }
}

/// The end of the digits at `at` (none is allowed).
#[inline(always)]
fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// The end of one or more digits at `at`.
fn some_digits_end(bytes: &[u8], at: usize) -> Result<usize, Problem> {
    let end = digits_end(bytes, at);
    if end == at {
        return Err(Problem {
            at,
            what: "an invalid number",
        });
    }
    Ok(end)
}

/// The end of the number at `at`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(bytes: &[u8], mut at: usize) -> Result<usize, Problem> {
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match bytes.get(at) {
        Some(b'0') => at + 1,
        Some(b'1'..=b'9') => digits_end(bytes, at + 1),
        _ => {
            return Err(Problem {
                at,
                what: "an invalid number",
            })
        }
    };
    if bytes.get(at) == Some(&b'.') {
        at = some_digits_end(bytes, at + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        at = some_digits_end(bytes, at)?;
    }
    Ok(at)
}

/// The end of a member's name and colon, whitespace before them skipped.
#[inline(always)]
fn member_name_end(text: &Text<'_>, at: usize) -> Result<usize, Problem> {
    let bytes = text.bytes;
    let at = whitespace_end(bytes, at);
    if bytes.get(at) != Some(&b'"') {
        return Err(Problem {
            at,
            what: "expected a member name",
        });
    }
    let (at, _) = string_end(text, at + 1)?;
    let at = whitespace_end(bytes, at);
    if bytes.get(at) != Some(&b':') {
        return Err(Problem {
            at,
            what: "expected `:`",
        });
    }
    Ok(at + 1)
}

/// A header [`Cursor::header_until`] stopped at, the cursor at its value.
#[derive(Debug)]
pub struct KeptHeader<'a> {
    /// The header's name as the event gives it (any case).
    pub name: Cow<'a, [u8]>,
    /// Where its member starts in the text.
    pub start: usize,
}

/// Why [`Cursor::header_until`] stopped: a name HTTP does not allow (its bytes and where the
/// member starts), or anything else.
#[derive(Debug)]
pub enum HeaderProblem {
    /// `valid` refused this name.
    Name(Vec<u8>, usize),
    /// The text is not what a header map must be there.
    Scan(ScanError),
}

/// Where a member name's contents are (after the opening quote, before the closing one).
#[derive(Debug, Clone, Copy)]
struct NameSpan {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A member's name and `:` from `at` (whitespace before each skipped): the name's span, and
/// where its value starts (whitespace not skipped).
#[inline(always)]
fn member_start(text: &Text<'_>, at: usize) -> Result<(NameSpan, usize), Problem> {
    let at = whitespace_end(text.bytes, at);
    if text.bytes.get(at) != Some(&b'"') {
        return Err(Problem {
            at,
            what: "expected a member name",
        });
    }
    let (end, escaped) = string_end(text, at + 1)?;
    let colon = whitespace_end(text.bytes, end);
    if text.bytes.get(colon) != Some(&b':') {
        return Err(Problem {
            at: colon,
            what: "expected `:`",
        });
    }
    let name = NameSpan {
        start: at + 1,
        end: end - 1,
        escaped,
    };
    Ok((name, colon + 1))
}

/// After a member's value ending at `at`: past the `,` (`true`, another member follows) or the
/// object's `}` (`false`).
#[inline(always)]
fn member_end(bytes: &[u8], at: usize) -> Result<(usize, bool), Problem> {
    let at = whitespace_end(bytes, at);
    match bytes.get(at) {
        Some(b',') => Ok((at + 1, true)),
        Some(b'}') => Ok((at + 1, false)),
        _ => Err(Problem {
            at,
            what: "expected `,` or `}`",
        }),
    }
}

/// The end of the string or array of strings at `at`; `None` when the value there is neither
/// (an array is neither as soon as an item is not a string).
fn strings_end(text: &Text<'_>, at: usize) -> Result<Option<usize>, Problem> {
    let bytes = text.bytes;
    match bytes.get(at) {
        Some(b'"') => return string_end(text, at + 1).map(|(end, _)| Some(end)),
        Some(b'[') => {}
        _ => return Ok(None),
    }
    let mut at = whitespace_end(bytes, at + 1);
    if bytes.get(at) == Some(&b']') {
        return Ok(Some(at + 1));
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return Ok(None);
        }
        at = whitespace_end(bytes, string_end(text, at + 1)?.0);
        match bytes.get(at) {
            Some(b',') => at = whitespace_end(bytes, at + 1),
            Some(b']') => return Ok(Some(at + 1)),
            _ => {
                return Err(Problem {
                    at,
                    what: "expected `,` or `]`",
                })
            }
        }
    }
}

/// How far [`compact_members`] read.
enum Compact {
    /// The object's `}` was read: it ends here.
    Closed(usize),
    /// A member starts here that is not `"name":"value"` as [`compact_members`] reads it (it
    /// may still be well-formed: the general loop reads it).
    Open(usize),
}

/// The members from `at` on that are written `"name":"value"` with nothing between the tokens
/// and no string stop inside either string but its closing quote (no escape, control
/// character or non-ASCII byte), each followed by `,` or the object's `}`: most of an event's
/// maps (`headers`, stage variables, query strings) are nothing else. Each string's end is
/// the next stop in the bitmap; a few byte comparisons check the rest. Anything else stops it
/// where that member starts, before it reads anything of it.
#[inline(always)]
fn compact_members(text: &Text<'_>, mut at: usize) -> Compact {
    let bytes = text.bytes;
    loop {
        if bytes.get(at) != Some(&b'"') {
            return Compact::Open(at);
        }
        let name_end = text.string_stop(at + 1);
        if bytes.get(name_end..name_end + 3) != Some(b"\":\"") {
            return Compact::Open(at);
        }
        let value_end = text.string_stop(name_end + 3);
        match bytes.get(value_end..value_end + 2) {
            Some(b"\",") => at = value_end + 2,
            Some(b"\"}") => return Compact::Closed(value_end + 2),
            _ => return Compact::Open(at),
        }
    }
}

/// A member name at `at` written `"name":` with no string stop inside the name but its closing
/// quote: its span and where its value starts; `None` for anything else ([`member_start`]
/// reads it).
#[inline(always)]
fn compact_name(text: &Text<'_>, at: usize) -> Option<(NameSpan, usize)> {
    if text.bytes.get(at) != Some(&b'"') {
        return None;
    }
    let end = text.string_stop(at + 1);
    if text.bytes.get(end..end + 2) != Some(b"\":") {
        return None;
    }
    let name = NameSpan {
        start: at + 1,
        end,
        escaped: false,
    };
    Some((name, end + 2))
}

/// A header value at `at` written `"value"` or `["value"]` with no string stop inside but its
/// closing quote, followed at once by `,` or the object's `}`: past that (`true` after a `,`);
/// `None` for anything else (the general path reads it from `at`).
#[inline(always)]
fn compact_strings(text: &Text<'_>, at: usize) -> Option<(usize, bool)> {
    let bytes = text.bytes;
    let (end, after) = match bytes.get(at..at + 2)? {
        [b'"', _] => {
            let end = text.string_stop(at + 1);
            (end, end + 1)
        }
        b"[\"" => {
            let end = text.string_stop(at + 2);
            if bytes.get(end + 1) != Some(&b']') {
                return None;
            }
            (end, end + 2)
        }
        _ => return None,
    };
    if bytes.get(end) != Some(&b'"') {
        return None;
    }
    match bytes.get(after) {
        Some(b',') => Some((after + 1, true)),
        Some(b'}') => Some((after + 1, false)),
        _ => None,
    }
}

/// The end of the JSON value at `at` (whitespace before it skipped), its syntax checked: one
/// loop over the text, nesting kept on a bit stack (no recursion).
fn skip(text: &Text<'_>, mut at: usize) -> Result<usize, Problem> {
    let bytes = text.bytes;
    // Bit `d` set: the container at depth `d + 1` is an object.
    let mut objects: u128 = 0;
    let mut depth: u32 = 0;
    // Whether the innermost open container is an object (bit `depth - 1` of `objects`, kept
    // apart: read after every value, it changes only when a container opens or closes).
    let mut in_object = false;
    'value: loop {
        at = whitespace_end(bytes, at);
        let Some(&byte) = bytes.get(at) else {
            return Err(Problem {
                at,
                what: "unexpected end of the event",
            });
        };
        match byte {
            b'"' => at = string_end(text, at + 1)?.0,
            b'{' | b'[' => {
                let object = byte == b'{';
                if depth >= MAX_DEPTH {
                    return Err(Problem {
                        at,
                        what: "nesting too deep",
                    });
                }
                let inside = whitespace_end(bytes, at + 1);
                if bytes.get(inside) == Some(if object { &b'}' } else { &b']' }) {
                    at = inside + 1;
                } else if object {
                    match compact_members(text, inside) {
                        // Every member a plain string: the object is read whole.
                        Compact::Closed(end) => at = end,
                        Compact::Open(member) => {
                            objects |= 1 << depth;
                            at = member_name_end(text, member)?;
                            depth += 1;
                            in_object = true;
                            continue 'value;
                        }
                    }
                } else {
                    objects &= !(1 << depth);
                    at = inside;
                    depth += 1;
                    in_object = false;
                    continue 'value;
                }
            }
            b't' => at = literal_end(bytes, at + 1, b"rue")?,
            b'f' => at = literal_end(bytes, at + 1, b"alse")?,
            b'n' => at = literal_end(bytes, at + 1, b"ull")?,
            b'-' | b'0'..=b'9' => at = number_end(bytes, at)?,
            _ => {
                return Err(Problem {
                    at,
                    what: "expected a JSON value",
                })
            }
        }
        // After a value: the next item, or the end of its containers.
        loop {
            let Some(top) = depth.checked_sub(1) else {
                return Ok(at);
            };
            at = whitespace_end(bytes, at);
            match bytes.get(at) {
                Some(b',') if in_object => match compact_members(text, at + 1) {
                    Compact::Closed(end) => {
                        at = end;
                        depth = top;
                        in_object = top > 0 && objects >> (top - 1) & 1 == 1;
                    }
                    Compact::Open(member) => {
                        at = member_name_end(text, member)?;
                        continue 'value;
                    }
                },
                Some(b',') => {
                    at += 1;
                    continue 'value;
                }
                Some(b'}') if in_object => {
                    at += 1;
                    depth = top;
                    in_object = top > 0 && objects >> (top - 1) & 1 == 1;
                }
                Some(b']') if !in_object => {
                    at += 1;
                    depth = top;
                    in_object = top > 0 && objects >> (top - 1) & 1 == 1;
                }
                _ => {
                    return Err(Problem {
                        at,
                        what: if in_object {
                            "expected `,` or `}`"
                        } else {
                            "expected `,` or `]`"
                        },
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    /// True when the skipper reads all of `text` as one JSON value.
    fn skips_whole(text: &str) -> bool {
        let mut cursor = Cursor::new(text.as_bytes());
        cursor.skip_value().is_ok() && cursor.end().is_ok()
    }

    /// True when `serde_json` reads all of `text` as one JSON value.
    fn serde_reads(text: &str) -> bool {
        serde_json::from_str::<IgnoredAny>(text).is_ok()
    }

    #[test]
    fn crafted_values_end_where_serde_says() {
        for (text, ok) in [
            (r#""a\"b""#, true),
            (r#""a\\"b""#, false),
            (r#""a\\\"b""#, true),
            (r#"["]", "}", "[", "{"]"#, true),
            (r#"{"a}": "]", "\"": ["\\", "\u00e9\uD83D\uDE00"]}"#, true),
            (r#""\ud800""#, true),
            (r#""\u12G4""#, false),
            (r#""\x""#, false),
            ("\"tab\there\"", false),
            ("\"a", false),
            (r#"{"a": [}"#, false),
            (r#"[{]}"#, false),
            (r#"{"a" 1}"#, false),
            (r#"{"a": 1,}"#, false),
            (r#"[1,]"#, false),
            (r#"[1 2]"#, false),
            (r#"{1: 2}"#, false),
            (r#"[01]"#, false),
            (r#"[-]"#, false),
            (r#"[1.]"#, false),
            (r#"[1e]"#, false),
            (r#"[-0.5e+10, 0, 1E-2, 123]"#, true),
            (r#"[tru]"#, false),
            (r#"[true, false, null]"#, true),
            (" { } ", true),
            ("[] []", false),
            ("", false),
        ] {
            assert_eq!(skips_whole(text), ok, "{text}");
            assert_eq!(serde_reads(text), ok, "serde_json on {text}");
        }
    }

    #[test]
    fn long_strings_end_where_serde_says() {
        // Every special byte at every place of a string longer than the eight-at-a-time part,
        // alone and after an earlier one, inside and around a JSON string.
        for length in [31, 32, 33, 40, 100, 700] {
            for at in 0..length {
                for special in [
                    "\"", "\\", "\\\"", "\\n", "\n", "\u{1f}", "\u{7f}", "é", "\\u00e9",
                ] {
                    let mut text = "a".repeat(length);
                    text.replace_range(at..at + 1, special);
                    for quoted in [format!("\"{text}\""), format!("[\"{text}\", 1]")] {
                        assert_eq!(
                            skips_whole(&quoted),
                            serde_reads(&quoted),
                            "{length} {at} {special:?}"
                        );
                    }
                    let quoted = format!("\"{text}\"");
                    let mut cursor = Cursor::new(quoted.as_bytes());
                    let read = cursor.string().ok().filter(|_| cursor.end().is_ok());
                    let read = read.map(Cow::into_owned);
                    assert_eq!(
                        read,
                        serde_json::from_str::<String>(&quoted).ok(),
                        "{quoted}"
                    );
                }
            }
        }
    }

    #[test]
    fn compact_members_end_where_serde_says() {
        // Objects of plain strings are read by `compact_members`; anything unusual in a name or
        // a value, or between the tokens, must leave it to the general loop, with the same
        // verdict as serde_json's.
        for special in [
            "", "\\\"", "\\n", "\\u00e9", "é", "\n", "\u{1f}", "\u{7f}", "\"", "\\", " ", ":", ",",
            "}", "{", "]", "[",
        ] {
            for text in [
                format!(r#"{{"a":"{special}","b":"c"}}"#),
                format!(r#"{{"a{special}":"b","c":"d"}}"#),
                format!(r#"{{"a":"b","c":"{special}"}}"#),
                format!(r#"{{"a":"b",{special}"c":"d"}}"#),
                format!(r#"{{"a":"b"{special},"c":"d"}}"#),
                format!(r#"{{"a":"b","c":"d"{special}}}"#),
                format!(r#"[{{"a":"b"}},{{"c":"{special}"}},{{"d":"e","f":1}}]"#),
                format!(r#"{{"x":{{"a":"b"}},"y":{{"c":"{special}","d":["e"]}}}}"#),
            ] {
                assert_eq!(skips_whole(&text), serde_reads(&text), "{text}");
            }
        }
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        let text = r#"{"a":"bé€😀c","d":["e",{"f":"g"}],"h":1}"#.as_bytes();
        for at in 0..text.len() {
            for byte in [0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf5, 0xff] {
                let mut bytes = text.to_vec();
                bytes[at] = byte;
                let mut cursor = Cursor::new(&bytes);
                let skipped = cursor.skip_value().is_ok() && cursor.end().is_ok();
                // serde_json skips an ignored string without checking it as UTF-8; the event
                // is text (the runtime hands it over as a `str`), so the verdict to match is
                // "UTF-8, and JSON".
                let text = std::str::from_utf8(&bytes);
                assert_eq!(skipped, text.is_ok_and(serde_reads), "{at} {byte:#x}");
            }
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(skips_whole(&deep(MAX_DEPTH as usize)));
        assert!(!skips_whole(&deep(MAX_DEPTH as usize + 1)));
        assert!(!skips_whole(&"[".repeat(100_000)));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
        assert!(skips_whole(&objects));
    }

    #[test]
    fn strings_are_borrowed_without_escapes_and_decoded_with_them() {
        let mut cursor = Cursor::new(br#" "plain" "a\"\u00e9" "\ud800""#);
        assert!(matches!(cursor.string(), Ok(Cow::Borrowed("plain"))));
        assert!(matches!(cursor.string(), Ok(Cow::Owned(s)) if s == "a\"é"));
        assert!(cursor.string().is_err(), "a lone surrogate is not text");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\"\\\\\\[\\]{}:, a]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                proptest::collection::btree_map("[\"\\\\{}a-c]{0,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn a_value_and_none_of_its_prefixes_read_whole(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            prop_assert!(skips_whole(&text), "{}", text);
            let mut cursor = Cursor::new(text.as_bytes());
            prop_assert_eq!(cursor.value_text().ok(), Some(text.as_bytes()));
            for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)) {
                let prefix = &text[..end];
                prop_assert_eq!(skips_whole(prefix), serde_reads(prefix), "{}", prefix);
            }
        }

        #[test]
        fn strings_are_skipped_exactly_when_the_value_is_strings(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            let strings = match &value {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            };
            let mut cursor = Cursor::new(text.as_bytes());
            prop_assert_eq!(cursor.skip_strings().ok(), Some(strings), "{}", text);
            if strings {
                prop_assert!(cursor.end().is_ok(), "{}", text);
            }
            for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)) {
                let prefix = &text[..end];
                let mut cursor = Cursor::new(prefix.as_bytes());
                let whole = cursor.skip_strings() == Ok(true) && cursor.end().is_ok();
                prop_assert!(!whole || serde_reads(prefix), "{}", prefix);
            }
        }

        #[test]
        fn random_json_like_text_gets_serde_json_s_verdict(
            text in "[\\[\\]{}\",:\\\\ a0-9.eE+tfnrul/-]{0,40}"
        ) {
            prop_assert_eq!(skips_whole(&text), serde_reads(&text), "{}", text);
        }

        #[test]
        fn a_value_with_one_byte_changed_gets_serde_json_s_verdict(
            value in json_value(),
            at in any::<proptest::sample::Index>(),
            byte in proptest::sample::select(b"[]{}\",:\\ a0-.e".to_vec()),
        ) {
            let mut bytes = value.to_string().into_bytes();
            let at = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
            if let Some(slot) = bytes.get_mut(at) {
                *slot = byte;
            }
            if let Ok(text) = String::from_utf8(bytes) {
                prop_assert_eq!(skips_whole(&text), serde_reads(&text), "{}", text);
            }
        }
    }
}
