//! A strict, single-pass scan of one JSON object's top-level members: the request path's reader
//! of JOSE headers and JWT claims.
//!
//! It accepts exactly the documents [`super::json::parse_object`] accepts — serde_json's grammar,
//! UTF-8, finite numbers, no member name twice in any object (compared after unescaping), nesting
//! at most [`MAX_DEPTH`] — and the tests (unit, property and fuzz) hold it to that. But it builds
//! nothing: every member the caller keeps is handed over as its validated JSON text
//! ([`RawValue`]), every other value is checked and skipped. A caller that keeps strings as
//! spans of one buffer (`crate::claims`) so pays for no `serde_json::Value` and no heap block
//! per string.
//!
//! Two parsers of one document are a classic source of disagreement (RFC 8725 §3.5): this one
//! and serde_json must never differ on whether a token is well-formed, and a kept value is read
//! back from the very text this scan validated.

use super::json::{JsonError, MAX_DEPTH};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;

/// What kind of JSON value a [`RawValue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    String,
    /// A number (finite).
    Number,
    /// An array.
    Array,
    /// An object.
    Object,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

/// One validated JSON value, as its text in the document. Only the scan makes one, so its text
/// is always well-formed JSON of its kind (which is why its readers cannot fail).
#[derive(Debug, Clone, Copy)]
pub struct RawValue<'a> {
    kind: Kind,
    text: &'a str,
    /// A string with a backslash escape (its text needs decoding).
    escaped: bool,
}

impl<'a> RawValue<'a> {
    /// The kind of value.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The value's JSON text (a string with its quotes).
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// A string's contents, unescaped (borrowed when it has no escapes); `None` for other kinds.
    pub fn string(&self) -> Option<Cow<'a, str>> {
        if self.kind != Kind::String {
            return None;
        }
        let inner = self.text.get(1..self.text.len().saturating_sub(1))?;
        if !self.escaped {
            return Some(Cow::Borrowed(inner));
        }
        unescape(inner).map(Cow::Owned)
    }

    /// An array's items, in order (nothing for other kinds).
    pub fn items(&self) -> Items<'a> {
        let mut walker = Walker {
            bytes: self.text.as_bytes(),
            pos: 0,
        };
        let open = self.kind == Kind::Array && walker.eat(b'[');
        Items {
            text: self.text,
            walker,
            state: if open {
                ItemsState::First
            } else {
                ItemsState::Done
            },
        }
    }

    /// The value as a `serde_json::Value` (what [`super::json::parse_object`] makes of it).
    pub fn to_value(&self) -> Value {
        // The text was validated with serde_json's own rules, so this does not fail; `Null`
        // stands in if it ever did. Strings and literals, the common header and claim values,
        // are made directly.
        match self.kind {
            Kind::String => self
                .string()
                .map_or(Value::Null, |text| Value::String(text.into_owned())),
            Kind::Bool => Value::Bool(self.text == "true"),
            Kind::Null => Value::Null,
            Kind::Number | Kind::Array | Kind::Object => {
                serde_json::from_str(self.text).unwrap_or(Value::Null)
            }
        }
    }
}

/// The items of an array [`RawValue`], found by their ends (the scan validated them).
#[derive(Debug, Clone)]
pub struct Items<'a> {
    text: &'a str,
    walker: Walker<'a>,
    state: ItemsState,
}

/// Where [`Items`] is: before the first item, after an item, or past the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemsState {
    First,
    Next,
    Done,
}

impl<'a> Iterator for Items<'a> {
    type Item = RawValue<'a>;

    fn next(&mut self) -> Option<RawValue<'a>> {
        if self.state == ItemsState::Done {
            return None;
        }
        self.walker.whitespace();
        let closing = self.walker.eat(b']');
        let separated = self.state == ItemsState::First || self.walker.eat(b',');
        if closing || !separated {
            self.state = ItemsState::Done;
            return None;
        }
        self.state = ItemsState::Next;
        self.walker.whitespace();
        let start = self.walker.pos;
        // Validated already, so each item only needs its end found (a string, the usual item,
        // directly).
        let found = if self.walker.bytes.get(start) == Some(&b'"') {
            self.walker.string().map(|escaped| (Kind::String, escaped))
        } else {
            self.walker.value()
        };
        match found {
            Some((kind, escaped)) => Some(RawValue {
                kind,
                text: self.text.get(start..self.walker.pos).unwrap_or_default(),
                escaped,
            }),
            None => {
                self.state = ItemsState::Done;
                None
            }
        }
    }
}

/// The order in which [`scan_members`] met the kept members (at most [`MemberOrder::MAX`] are
/// recorded; a document keeping more counts as having other members), and whether it met any
/// other member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberOrder {
    slots: [u8; MemberOrder::MAX],
    len: usize,
    others: bool,
}

impl MemberOrder {
    /// The most slots recorded.
    pub const MAX: usize = 16;

    fn push(&mut self, slot: usize) {
        match (self.slots.get_mut(self.len), u8::try_from(slot)) {
            (Some(entry), Ok(slot)) => {
                *entry = slot;
                self.len += 1;
            }
            _ => self.others = true,
        }
    }

    /// The slots filled, in document order.
    pub fn slots(&self) -> &[u8] {
        self.slots.get(..self.len).unwrap_or_default()
    }

    /// True when the object has a member that was not recorded as a slot.
    pub fn others(&self) -> bool {
        self.others
    }
}

/// The most slots a caller may use (a repeat of a kept member is found by its slot's bit).
pub const MAX_SLOTS: usize = 64;

/// Validates `bytes` as one JSON object exactly as [`super::json::parse_object`] does, handing
/// each top-level member for which `slot_of` gives a slot (below [`MAX_SLOTS`]) to `keep`,
/// in document order. Returns the order of the kept members.
/// (Generic, so the request path's name lookup and keeper are inlined; `&dyn` closures work too.)
pub fn scan_members<'a, S, K>(
    bytes: &'a [u8],
    slot_of: &S,
    keep: &mut K,
) -> Result<MemberOrder, JsonError>
where
    S: Fn(&str) -> Option<usize> + ?Sized,
    K: FnMut(usize, RawValue<'a>) + ?Sized,
{
    // One UTF-8 check of the whole document (word at a time) instead of one per string.
    let text = std::str::from_utf8(bytes).map_err(|e| JsonError::Malformed(e.to_string()))?;
    let mut scanner = Scanner::new(text);
    scanner.whitespace();
    if scanner.peek() != Some(b'{') {
        scanner.value(0)?;
        scanner.end()?;
        return Err(JsonError::NotAnObject);
    }
    scanner.pos += 1;
    let mut order = MemberOrder::default();
    let mut filled: u64 = 0;
    // Made only when a member without a slot is met (often none is).
    let mut seen: Option<SeenNames<'a>> = None;
    scanner.whitespace();
    if !scanner.eat(b'}') {
        loop {
            let name = scanner.name()?;
            let slot = slot_of(&name).filter(|&slot| slot < MAX_SLOTS);
            // A kept member is a repeat exactly when its slot is filled; only the other names
            // are remembered.
            let repeated = match slot {
                Some(slot) => filled & (1 << slot) != 0,
                None => !seen.get_or_insert_with(SeenNames::new).insert(name.clone()),
            };
            if repeated {
                return Err(JsonError::DuplicateMember(name.into_owned()));
            }
            scanner.colon()?;
            // Strings and numbers, most members' values, are read here without a call.
            let start = scanner.pos;
            let (kind, escaped) = match scanner.peek() {
                Some(b'"') => (Kind::String, scanner.string()?),
                Some(b'-' | b'0'..=b'9') => {
                    scanner.number()?;
                    (Kind::Number, false)
                }
                _ => {
                    let (kind, _, escaped) = scanner.value(1)?;
                    (kind, escaped)
                }
            };
            match slot {
                Some(slot) => {
                    filled |= 1 << slot;
                    order.push(slot);
                    keep(
                        slot,
                        RawValue {
                            kind,
                            text: text.get(start..scanner.pos).unwrap_or_default(),
                            escaped,
                        },
                    );
                }
                None => order.others = true,
            }
            if !scanner.another(b'}')? {
                break;
            }
        }
    }
    scanner.end()?;
    Ok(order)
}

/// Past JSON whitespace from `pos`.
#[inline(always)]
pub fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// For a plain one-pass reading of common documents (`crate::claims`): past the closing quote
/// of the string opening at `pos`, when it has no escape and no control character (`None`
/// otherwise: the full scan decides).
#[inline(always)]
pub fn plain_string_end(bytes: &[u8], pos: usize) -> Option<usize> {
    if *bytes.get(pos)? != b'"' {
        return None;
    }
    let end = plain_end(bytes, pos + 1, true);
    (*bytes.get(end)? == b'"').then_some(end + 1)
}

/// For a plain one-pass reading of common documents (`crate::claims`): the kind and end of the
/// string without escapes, integer (below 300 digits, so finite) or literal at `pos` (`None`
/// for anything else: the full scan decides).
#[inline(always)]
pub fn plain_scalar_end(bytes: &[u8], pos: usize) -> Option<(Kind, usize)> {
    let literal = |word: &[u8], kind: Kind| {
        (bytes.get(pos..pos + word.len())? == word).then_some((kind, pos + word.len()))
    };
    match *bytes.get(pos)? {
        b'"' => Some((Kind::String, plain_string_end(bytes, pos)?)),
        b't' => literal(b"true", Kind::Bool),
        b'f' => literal(b"false", Kind::Bool),
        b'n' => literal(b"null", Kind::Null),
        _ => {
            let first = pos + usize::from(bytes.get(pos) == Some(&b'-'));
            let mut end = first;
            while let Some(b'0'..=b'9') = bytes.get(end) {
                end += 1;
            }
            let digits = end - first;
            let leading_zero = digits > 1 && bytes.get(first) == Some(&b'0');
            let more = matches!(bytes.get(end), Some(b'.' | b'e' | b'E'));
            (digits > 0 && digits < 300 && !leading_zero && !more).then_some((Kind::Number, end))
        }
    }
}

/// In a document [`scan_members`] accepted, the top-level member named `name`: found by
/// walking the members and skipping each value by its end alone (strings by their quotes,
/// arrays and objects by their brackets), with none of the scan's checks, which the document
/// passed already. For the claims a verifier does not keep, read on request (`Verified::claim_value`).
///
/// On a document the scan did not accept, the answer is unspecified (`None` or some span of
/// it), but it never panics.
pub fn find_member<'a>(bytes: &'a [u8], name: &str) -> Option<RawValue<'a>> {
    let mut walker = Walker { bytes, pos: 0 };
    walker.whitespace();
    if !walker.eat(b'{') {
        return None;
    }
    loop {
        walker.whitespace();
        if walker.bytes.get(walker.pos) != Some(&b'"') {
            return None;
        }
        let name_start = walker.pos + 1;
        let name_escaped = walker.string()?;
        let member = bytes.get(name_start..walker.pos - 1)?;
        walker.whitespace();
        if !walker.eat(b':') {
            return None;
        }
        walker.whitespace();
        let start = walker.pos;
        let (kind, escaped) = walker.value()?;
        let wanted = if name_escaped {
            std::str::from_utf8(member)
                .ok()
                .and_then(unescape)
                .is_some_and(|member| member == name)
        } else {
            member == name.as_bytes()
        };
        if wanted {
            let text = std::str::from_utf8(bytes.get(start..walker.pos)?).ok()?;
            return Some(RawValue {
                kind,
                text,
                escaped,
            });
        }
        walker.whitespace();
        if !walker.eat(b',') {
            return None;
        }
    }
}

/// A cursor that skips values of a validated document by their ends ([`find_member`],
/// [`Items`]).
#[derive(Debug, Clone)]
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Walker<'_> {
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Moves to the next `"` or `\\` (or the end): the text was validated, so control
    /// characters need no check.
    fn skip_to_quote_or_backslash(&mut self) {
        self.pos = plain_end(self.bytes, self.pos, false);
    }

    /// From a string's opening quote to past its closing one; whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        let mut escaped = false;
        self.pos += 1;
        loop {
            self.skip_to_quote_or_backslash();
            if *self.bytes.get(self.pos)? == b'"' {
                self.pos += 1;
                return Some(escaped);
            }
            // A backslash and the character it escapes (a `\u` escape's four hex digits are
            // plain text).
            escaped = true;
            self.pos += 2;
        }
    }

    /// One value, from its first byte to past its last: its kind, and for a string whether it
    /// has escapes.
    fn value(&mut self) -> Option<(Kind, bool)> {
        let kind = match self.bytes.get(self.pos)? {
            b'"' => return self.string().map(|escaped| (Kind::String, escaped)),
            b'{' | b'[' => {
                let kind = if self.bytes.get(self.pos) == Some(&b'{') {
                    Kind::Object
                } else {
                    Kind::Array
                };
                let mut depth = 0usize;
                loop {
                    match self.bytes.get(self.pos)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.pos += 1;
                                return Some((kind, false));
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => Kind::Number,
        };
        while let Some(byte) = self.bytes.get(self.pos) {
            if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
        Some((kind, false))
    }
}

/// Member names seen in one object, for duplicate detection without allocating a string per
/// name: names without escapes are borrowed from the input, in a fixed array that costs nothing
/// to drop; decoded ones (rare) are kept beside. Small objects are searched linearly; a large
/// one switches to a hash set so a hostile document cannot make it quadratic.
struct SeenNames<'de> {
    borrowed: [&'de str; SeenNames::LINEAR_LIMIT],
    len: usize,
    decoded: Vec<String>,
    set: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenNames<'de> {
    const LINEAR_LIMIT: usize = 16;

    fn new() -> Self {
        SeenNames {
            borrowed: [""; SeenNames::LINEAR_LIMIT],
            len: 0,
            decoded: Vec::new(),
            set: None,
        }
    }

    /// Adds `name`; false when it was already there.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(name);
        }
        let text: &str = &name;
        let borrowed = self.borrowed.get(..self.len).unwrap_or_default();
        if borrowed.contains(&text) || self.decoded.iter().any(|seen| seen == text) {
            return false;
        }
        if self.len + self.decoded.len() >= Self::LINEAR_LIMIT {
            let mut set: HashSet<Cow<'de, str>> = borrowed
                .iter()
                .map(|seen| Cow::Borrowed(*seen))
                .chain(self.decoded.drain(..).map(Cow::Owned))
                .collect();
            set.insert(name);
            self.set = Some(set);
            return true;
        }
        match name {
            Cow::Borrowed(text) => {
                if let Some(slot) = self.borrowed.get_mut(self.len) {
                    *slot = text;
                    self.len += 1;
                }
            }
            Cow::Owned(text) => self.decoded.push(text),
        }
        true
    }
}

/// A cursor over a UTF-8 JSON document.
#[derive(Debug, Clone)]
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// The first `"` or `\` at or after `pos` in `bytes` (with `controls`, also the first byte below
/// 0x20), or the end; eight bytes at a time: the strings of headers and claims are short, where a
/// vector search costs more to set up than it saves.
#[inline(always)]
fn plain_end(bytes: &[u8], mut pos: usize, controls: bool) -> usize {
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // Flags the bytes of `v` below `bound` (at most 0x80); the lowest flagged byte is
        // exact (borrows only run upwards, and a byte from 0x80 up is never flagged).
        let below = |v: u64, bound: u8| v.wrapping_sub(splat(bound)) & !v & splat(0x80);
        // With `controls`, a quote or a control byte in one test: `x ^ 2` is below 0x21
        // exactly for `x` below 0x20 and for `"` (0x22 ^ 2 = 0x20).
        let quote_or_control = if controls {
            below(word ^ splat(0x02), 0x21)
        } else {
            below(word ^ splat(b'"'), 1)
        };
        let special = quote_or_control | below(word ^ splat(b'\\'), 1);
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&byte) = bytes.get(pos) {
        if byte == b'"' || byte == b'\\' || (controls && byte < 0x20) {
            return pos;
        }
        pos += 1;
    }
    pos
}

/// Eight copies of one byte.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    #[cold]
    #[inline(never)]
    fn malformed(&self, what: &str) -> JsonError {
        JsonError::Malformed(format!("{what} at byte {}", self.pos))
    }

    #[inline(always)]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Nothing but whitespace left.
    fn end(&mut self) -> Result<(), JsonError> {
        self.whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.malformed("trailing characters")),
        }
    }

    /// One value at `depth` (a top-level member's value is at depth 1). Returns its kind,
    /// where it starts, and for a string whether it has escapes.
    fn value(&mut self, depth: usize) -> Result<(Kind, usize, bool), JsonError> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'"') => return Ok((Kind::String, start, self.string()?)),
            Some(b'{') => {
                self.object(depth)?;
                Kind::Object
            }
            Some(b'[') => {
                self.array(depth)?;
                Kind::Array
            }
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Number
            }
            Some(b't') => self.literal(b"true", Kind::Bool)?,
            Some(b'f') => self.literal(b"false", Kind::Bool)?,
            Some(b'n') => self.literal(b"null", Kind::Null)?,
            Some(_) => return Err(self.malformed("expected a value")),
            None => return Err(self.malformed("unexpected end of input")),
        };
        Ok((kind, start, false))
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<Kind, JsonError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.malformed("expected a literal"))
        }
    }

    /// An array at `depth`. As [`super::json::parse_object`] counts: the array's items are at
    /// `depth + 1`, and an array at [`MAX_DEPTH`] is too deep even when empty.
    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        self.pos += 1;
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.whitespace();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            if !self.another(b']')? {
                return Ok(());
            }
        }
    }

    /// After an item or member: true at a `,` (another follows), false at `close`.
    #[inline(always)]
    fn another(&mut self, close: u8) -> Result<bool, JsonError> {
        self.whitespace();
        if self.eat(b',') {
            self.whitespace();
            return Ok(true);
        }
        if self.eat(close) {
            return Ok(false);
        }
        Err(self.malformed("expected `,` or the end of an array or object"))
    }

    /// An object at `depth` below the top level: its member values are at `depth + 1`, which
    /// may not pass [`MAX_DEPTH`] (an empty object at [`MAX_DEPTH`] is fine).
    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        self.pos += 1;
        self.whitespace();
        if self.eat(b'}') {
            return Ok(());
        }
        let mut seen = SeenNames::new();
        loop {
            let name = self.name()?;
            if !seen.insert(name.clone()) {
                return Err(JsonError::DuplicateMember(name.into_owned()));
            }
            if depth >= MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            self.colon()?;
            self.value(depth + 1)?;
            if !self.another(b'}')? {
                return Ok(());
            }
        }
    }

    /// A member name, unescaped (borrowed when it has no escapes). Its colon is read by
    /// [`Scanner::colon`] after the name is checked, in serde_json's order of errors.
    #[inline(always)]
    fn name(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.malformed("expected a member name"));
        }
        let start = self.pos + 1;
        let escaped = self.string()?;
        let inner = self
            .text
            .get(start..self.pos - 1)
            .ok_or_else(|| self.malformed("member name"))?;
        if escaped {
            return Ok(Cow::Owned(
                unescape(inner).ok_or_else(|| self.malformed("escape"))?,
            ));
        }
        Ok(Cow::Borrowed(inner))
    }

    /// The colon after a member name, and the whitespace around it.
    #[inline(always)]
    fn colon(&mut self) -> Result<(), JsonError> {
        self.whitespace();
        if !self.eat(b':') {
            return Err(self.malformed("expected `:` after a member name"));
        }
        self.whitespace();
        Ok(())
    }

    /// A string from its opening quote to past its closing one; true when it has escapes.
    /// Control characters are refused, escapes are checked as serde_json checks them (a lone
    /// surrogate is an error).
    #[inline(always)]
    fn string(&mut self) -> Result<bool, JsonError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape()?;
                    escaped = true;
                }
                Some(_) => return Err(self.malformed("control character in a string")),
                None => return Err(self.malformed("unterminated string")),
            }
        }
    }

    /// Moves to the next `"`, `\` or control character (or the end).
    fn skip_plain(&mut self) {
        self.pos = plain_end(self.bytes, self.pos, true);
    }

    /// One escape after its backslash.
    fn escape(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                match unit {
                    0xDC00..=0xDFFF => Err(self.malformed("lone trailing surrogate")),
                    0xD800..=0xDBFF => {
                        if !(self.eat(b'\\') && self.eat(b'u')) {
                            return Err(self.malformed("lone leading surrogate"));
                        }
                        match self.hex4()? {
                            0xDC00..=0xDFFF => Ok(()),
                            _ => Err(self.malformed("lone leading surrogate")),
                        }
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(self.malformed("invalid escape")),
        }
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.malformed("unterminated escape"))?;
        let mut unit = 0u16;
        for &digit in digits {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => return Err(self.malformed("invalid \\u escape")),
            };
            unit = unit << 4 | u16::from(value);
        }
        self.pos += 4;
        Ok(unit)
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number: serde_json's grammar, and finite as serde_json reads it.
    #[inline(always)]
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.eat(b'-');
        let integer = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.malformed("leading zero in a number"));
                }
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.malformed("invalid number")),
        };
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.malformed("invalid number"));
        }
        let exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if exponent {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.malformed("invalid number"));
            }
        }
        // Without an exponent, fewer than 300 integer digits is below 1e300: finite. Otherwise
        // serde_json itself decides (its rounding near the limit is the one to agree with).
        if exponent || integer >= 300 {
            let text = self.text.get(start..self.pos).unwrap_or_default();
            if serde_json::from_str::<serde_json::Number>(text).is_err() {
                return Err(self.malformed("number out of range"));
            }
        }
        Ok(())
    }
}

/// The text of a validated string's contents with its escapes decoded (`None` if an escape is
/// invalid, which a validated string never has).
fn unescape(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(rest.get(..at)?);
        let bytes = rest.as_bytes();
        let (decoded, used) = match bytes.get(at + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let unit = |from: usize| {
                    u32::from_str_radix(std::str::from_utf8(bytes.get(from..from + 4)?).ok()?, 16)
                        .ok()
                };
                let first = unit(at + 2)?;
                if (0xD800..0xDC00).contains(&first) {
                    let second = unit(at + 8)?;
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second.checked_sub(0xDC00)?);
                    (char::from_u32(code)?, 12)
                } else {
                    (char::from_u32(first)?, 6)
                }
            }
            _ => return None,
        };
        out.push(decoded);
        rest = rest.get(at + used..)?;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::json::parse_object;
    use proptest::prelude::*;

    /// The scan's verdict, and every member kept as a value (names `a` and `x` kept).
    fn scan(bytes: &[u8]) -> Result<Vec<(String, Value)>, JsonError> {
        let names = ["a", "x", "aud"];
        let mut kept = Vec::new();
        scan_members(
            bytes,
            &|name| names.iter().position(|n| *n == name),
            &mut |slot, raw| kept.push((names[slot].to_owned(), raw.to_value())),
        )?;
        Ok(kept)
    }

    /// The claims capture's plain scan, when it reads `bytes`, keeps what the full scan keeps.
    /// Returns whether it read them.
    fn plain_agrees(bytes: &[u8]) -> bool {
        crate::claims::plain_scan_agrees(bytes).unwrap_or_else(|| {
            panic!(
                "the plain scan disagrees with the full scan on {:?}",
                String::from_utf8_lossy(bytes)
            )
        })
    }

    #[test]
    fn the_plain_scan_reads_common_documents_and_leaves_the_rest() {
        let read: [&[u8]; 8] = [
            br#"{"iss":"https://i/","sub":"auth0|64f1","aud":["https://api/","https://i/userinfo"],"iat":1700000000,"exp":1700086400,"scope":"openid profile","azp":"Xk2T","permissions":["read:users","write:users"]}"#,
            br#"{}"#,
            b" { \"a\" : [ ] , \"b\":[1, -2,true,false,null, \"s\xc3\xa9\"] ,\"x\":-0}\n",
            br#"{"a":"","b":0,"c":"\u00e9"}"#,
            br#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1}"#,
            br#"{"a":"x","x":"a","aud":"a"}"#,
            br#"{"a":"\u00e9"}"#,
            br#"{"b":"\/"}"#,
        ];
        let expected = [true, true, true, false, true, true, false, false];
        for (document, expected) in read.iter().zip(expected) {
            agree(document);
            assert_eq!(
                plain_agrees(document),
                expected,
                "{:?}",
                String::from_utf8_lossy(document)
            );
        }
        // Outside the subset, or not well-formed: left to the full scan.
        let left: [&[u8]; 22] = [
            br#"{"a":1.5}"#,
            br#"{"a":1e3}"#,
            br#"{"a":01}"#,
            br#"{"a":-}"#,
            br#"{"a":{"b":1}}"#,
            br#"{"a":[[1]]}"#,
            br#"{"a":[{}]}"#,
            br#"{"\u0061":1}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"b":1,"c":2,"b":3}"#,
            br#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1}"#,
            br#"{"a":1,}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":tru}"#,
            br#"{"a":truex}"#,
            br#"{"a":1} x"#,
            br#"[1]"#,
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\xff\"}",
            br#"{"a" 1}"#,
            br#"{"a":1 "b":2}"#,
            br#"{"a":"x"#,
        ];
        for document in left {
            agree(document);
            assert!(
                !plain_agrees(document),
                "{:?}",
                String::from_utf8_lossy(document)
            );
        }
        let long = format!("{{\"a\":{}}}", "9".repeat(299));
        assert!(plain_agrees(long.as_bytes()));
        let longer = format!("{{\"a\":{}}}", "9".repeat(300));
        assert!(!plain_agrees(longer.as_bytes()));
    }

    /// Both readers agree: same verdict (errors of the same variant) and the kept values are
    /// what the full parse holds; and the plain scan, when it reads the document, hands over
    /// what the full scan does.
    fn agree(bytes: &[u8]) {
        plain_agrees(bytes);
        let parsed = parse_object(bytes);
        let scanned = scan(bytes);
        match (&parsed, &scanned) {
            (Ok(map), Ok(kept)) => {
                for (name, value) in kept {
                    assert_eq!(map.get(name), Some(value), "{name}");
                }
                let expected = ["a", "x", "aud"]
                    .iter()
                    .filter(|name| map.contains_key(**name))
                    .count();
                assert_eq!(kept.len(), expected);
            }
            (Err(JsonError::Malformed(_)), Err(JsonError::Malformed(_))) => {}
            (a, b) => assert_eq!(
                a.as_ref().map(|_| ()),
                b.as_ref().map(|_| ()),
                "{:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    #[test]
    fn agrees_on_crafted_documents() {
        let deep = |n: usize, open: &str, close: &str, inner: &str| {
            format!("{{\"b\":{}{inner}{}}}", open.repeat(n), close.repeat(n))
        };
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        let mut cases: Vec<Vec<u8>> = vec![
            br#"{"a":1,"b":[true,null,"x"],"c":{"d":1.5}}"#.to_vec(),
            br#"{"alg":"RS256","alg":"none"}"#.to_vec(),
            br#"{"z":{"x":1,"x":2}}"#.to_vec(),
            br#"{"a":1,"\u0061":2}"#.to_vec(),
            br#"{"a":null,"a":1}"#.to_vec(),
            br#"{"x":1,"b":2,"c":3,"x":[]}"#.to_vec(),
            br#"{"b":1,"c":2,"b":3}"#.to_vec(),
            format!("{{{many}\"k7\":1}}").into_bytes(),
            format!("{{{many}\"k99\":1}}").into_bytes(),
            b"[1]".to_vec(),
            b"[1".to_vec(),
            b"{} x".to_vec(),
            b" {} ".to_vec(),
            b"{}".to_vec(),
            b"{".to_vec(),
            b"{\"a\"}".to_vec(),
            b"{\"a\":}".to_vec(),
            b"{\"a\":1,}".to_vec(),
            b"{,}".to_vec(),
            b"{\"a\":1 \"b\":2}".to_vec(),
            b"{\"a\":\"\xff\"}".to_vec(),
            b"{\"a\":\"tab\there\"}".to_vec(),
            b"{\"a\":\"\x7f\"}".to_vec(),
            br#"{"a":"\ud800"}"#.to_vec(),
            br#"{"a":"\udc00"}"#.to_vec(),
            br#"{"a":"\ud800\u0041"}"#.to_vec(),
            br#"{"a":"\ud83d\ude00 \u00e9 \" \\ \/ \b\f\n\r\t"}"#.to_vec(),
            br#"{"a":"\x"}"#.to_vec(),
            br#"{"a":"\u12"}"#.to_vec(),
            br#"{"a":"\u12G4"}"#.to_vec(),
            br#"{"\"x":1,"x":2,"\u0078":3}"#.to_vec(),
            b"{\"a\":1e999}".to_vec(),
            b"{\"a\":-1e308}".to_vec(),
            b"{\"a\":1.7976931348623157e308}".to_vec(),
            b"{\"a\":1.7976931348623159e308}".to_vec(),
            b"{\"a\":1e-999}".to_vec(),
            b"{\"a\":0e99999}".to_vec(),
            b"{\"a\":01}".to_vec(),
            b"{\"a\":-}".to_vec(),
            b"{\"a\":1.}".to_vec(),
            b"{\"a\":.5}".to_vec(),
            b"{\"a\":1e}".to_vec(),
            b"{\"a\":1e+}".to_vec(),
            b"{\"a\":+1}".to_vec(),
            b"{\"a\":-0.0e-0}".to_vec(),
            b"{\"a\":18446744073709551616}".to_vec(),
            format!("{{\"a\":{}}}", "9".repeat(310)).into_bytes(),
            format!("{{\"a\":{}.5}}", "9".repeat(299)).into_bytes(),
            b"{\"a\":tru}".to_vec(),
            b"{\"a\":nul}".to_vec(),
            b"{\"a\":True}".to_vec(),
            b"{\"aud\":[\"x\", 1, {\"y\":[]}],\"x\":{\"a\":{}}}".to_vec(),
            b"\t{\r\n\"a\" :\n1 }\n".to_vec(),
            b"7".to_vec(),
            b"\"s\"".to_vec(),
            b"".to_vec(),
        ];
        for n in [62, 63, 64, 65] {
            cases.push(deep(n, "[", "]", "1").into_bytes());
            cases.push(deep(n, "[", "]", "").into_bytes());
            cases.push(deep(n, "{\"k\":", "}", "1").into_bytes());
            cases.push(deep(n, "{\"k\":", "}", "{}").into_bytes());
            cases.push(deep(n, "{\"k\":", "}", "[]").into_bytes());
        }
        for case in cases {
            agree(&case);
        }
    }

    #[test]
    fn keeps_members_in_order_with_their_text() {
        let mut kept = Vec::new();
        let document = br#"{"x": [ "p" , "q\"" ,1], "z":{}, "a" :"s\u00e9"}"#;
        let order = scan_members(
            document,
            &|name| ["a", "x"].iter().position(|n| *n == name),
            &mut |slot, raw| kept.push((slot, raw)),
        )
        .unwrap();
        assert_eq!(order.slots(), &[1, 0]);
        assert!(order.others());
        assert_eq!(kept[0].1.kind(), Kind::Array);
        assert_eq!(kept[0].1.text(), r#"[ "p" , "q\"" ,1]"#);
        let items: Vec<_> = kept[0].1.items().map(|item| item.string()).collect();
        assert_eq!(
            items,
            vec![Some("p".into()), Some("q\"".into()), None::<Cow<'_, str>>]
        );
        assert_eq!(kept[1].1.string(), Some(Cow::Owned("s\u{e9}".into())));
        assert_eq!(kept[1].1.items().count(), 0);
    }

    /// Any JSON value, nested a few levels, with awkward strings and numbers.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z\"\\\\/\u{0}-\u{1f}\u{e9}\u{1f600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[axz\"\\\\]{0,3}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// `find_member` finds what the scan keeps, for every name of an accepted document and
    /// for names it does not have.
    fn finds_as_the_scan_keeps(bytes: &[u8], names: &[&str]) {
        if scan_members(bytes, &|_| None, &mut |_, _| {}).is_err() {
            return;
        }
        for name in names {
            let mut kept = None;
            scan_members(
                bytes,
                &|member| (member == *name).then_some(0),
                &mut |_, raw| kept = Some(raw),
            )
            .unwrap();
            let found = find_member(bytes, name);
            assert_eq!(
                found.map(|raw| (raw.kind, raw.text, raw.escaped)),
                kept.map(|raw| (raw.kind, raw.text, raw.escaped)),
                "{name:?} in {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn finds_members_by_their_unescaped_names() {
        let document = br#" { "a" : [1, {"a": "}"}, "]"] , "\u0062" :"x\"y" ,"c":-1.5e3,
            "d":{"e":[[]]},"f" : true,"g":null, "h\\":"\\" } "#;
        finds_as_the_scan_keeps(
            document,
            &[
                "a", "b", "\\u0062", "c", "d", "e", "f", "g", "h\\", "zz", "",
            ],
        );
        let found = find_member(document, "b").expect("b is found by its escaped name");
        assert_eq!(found.string().as_deref(), Some("x\"y"));
        assert_eq!(
            find_member(document, "c").map(|raw| raw.text()),
            Some("-1.5e3")
        );
        assert_eq!(
            find_member(document, "h\\").map(|raw| raw.text()),
            Some("\"\\\\\"")
        );
    }

    proptest! {
        #[test]
        fn finds_every_member_the_scan_keeps(
            members in prop::collection::vec(("[axz\"\\\\]{0,2}|aud", json_value()), 0..8),
        ) {
            let members: Vec<String> = members
                .iter()
                .map(|(name, value)| format!("{}:{}", Value::from(name.as_str()), value))
                .collect();
            let text = format!("{{{}}}", members.join(",")).into_bytes();
            finds_as_the_scan_keeps(&text, &["", "a", "x", "z", "aa", "ax", "aud", "\"", "\\", "q"]);
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), name in "[a\"]{0,2}") {
            let _ = find_member(&bytes, &name);
        }

        #[test]
        fn agrees_with_serde_json_on_documents_and_their_prefixes(
            members in prop::collection::vec(("[axz]{0,2}|aud", json_value()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            // Written member by member, so names may repeat.
            let members: Vec<String> = members
                .iter()
                .map(|(name, value)| format!("{} : {}", Value::from(name.as_str()), value))
                .collect();
            let text = format!("{{ {} }}", members.join(" ,\n")).into_bytes();
            agree(&text);
            agree(&text[..cut.index(text.len() + 1)]);
        }

        #[test]
        fn agrees_with_serde_json_on_mutated_documents(
            document in json_value(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['),
                Just(b']'), Just(b','), Just(b':'), Just(b'0'), Just(b'e'), Just(b'-'),
                Just(b'.'), Just(b'u'), Just(0u8), Just(0xc3), any::<u8>()],
        ) {
            let mut text = serde_json::to_vec(&serde_json::json!({"a": document, "x": 1})).unwrap();
            let at = at.index(text.len());
            text[at] = byte;
            agree(&text);
            text.insert(at, byte);
            agree(&text);
        }
    }
}
