//! Access to a token's claims by name, from either the full claims map or the handful of members
//! the request path captures.
//!
//! Verifying a token needs about a dozen registered claims; building a map of every claim costs
//! more than all other parsing together. So the request path validates the whole payload
//! strictly but keeps only [`CAPTURED`] members, and the full map is built when someone asks for
//! it (an application reading custom claims, a diagnostic after a failure).

use crate::internal::base64url;
use crate::internal::json::JsonError;
use crate::internal::members::{self, Kind, MemberOrder, RawValue};
use crate::jws::{JwsError, Segment};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// One claim as a check reads it: its type and contents, borrowed where the claim set keeps
/// them (a set that keeps strings as text answers without building JSON values).
#[derive(Debug, Clone)]
pub enum Claim<'a> {
    /// Not in the token.
    Absent,
    /// A string.
    Text(&'a str),
    /// A number.
    Number(Number),
    /// An array whose items are all strings.
    Strings(StringItems<'a>),
    /// Any other value (an object, a mixed array, a boolean, null; or an array of strings a
    /// claim set keeps as a JSON value).
    Json(&'a Value),
}

impl<'a> Claim<'a> {
    /// A claim held as a JSON value (`None`: absent).
    pub fn of_value(value: Option<&'a Value>) -> Claim<'a> {
        match value {
            None => Claim::Absent,
            Some(Value::String(text)) => Claim::Text(text),
            Some(Value::Number(number)) => Claim::Number(number.clone()),
            Some(value) => Claim::Json(value),
        }
    }

    /// True when the claim is in the token.
    pub fn is_present(&self) -> bool {
        !matches!(self, Claim::Absent)
    }

    /// True when the claim equals `expected` as JSON.
    pub fn equals(&self, expected: &Value) -> bool {
        match (self, expected) {
            (Claim::Absent, _) => false,
            (Claim::Text(text), Value::String(expected)) => text == expected,
            (Claim::Number(number), Value::Number(expected)) => number == expected,
            (Claim::Strings(items), Value::Array(expected)) => items
                .clone()
                .map(Some)
                .eq(expected.iter().map(Value::as_str)),
            (Claim::Json(value), expected) => *value == expected,
            _ => false,
        }
    }

    /// The claim as a JSON value (`None` when absent).
    pub fn to_value(&self) -> Option<Value> {
        Some(match self {
            Claim::Absent => return None,
            Claim::Text(text) => Value::String((*text).to_owned()),
            Claim::Number(number) => Value::Number(number.clone()),
            Claim::Strings(items) => items.clone().map(Value::from).collect(),
            Claim::Json(value) => (*value).clone(),
        })
    }
}

/// Looks up claims by name.
pub trait ClaimSet {
    /// The claim's value, when present.
    fn claim(&self, name: &str) -> Option<&Value>;

    /// The claim's type and contents (what the claims checks read).
    fn get(&self, name: &str) -> Claim<'_> {
        Claim::of_value(self.claim(name))
    }

    /// Every claim, when this set holds them all (diagnostics that scan all claims need it).
    fn as_map(&self) -> Option<&Map<String, Value>> {
        None
    }

    /// The claim's text, when it is a string.
    fn text(&self, name: &str) -> Option<&str> {
        self.claim(name).and_then(Value::as_str)
    }

    /// The strings of the claim, when it is an array (other members skipped); nothing otherwise.
    fn items(&self, name: &str) -> StringItems<'_> {
        match self.claim(name) {
            Some(Value::Array(items)) => StringItems(Items::Values(items.iter())),
            _ => StringItems(Items::Spans(None, [].iter())),
        }
    }
}

/// The strings of an array claim (see [`ClaimSet::items`]).
#[derive(Debug, Clone)]
pub struct StringItems<'a>(Items<'a>);

#[derive(Debug, Clone)]
enum Items<'a> {
    Values(std::slice::Iter<'a, Value>),
    Spans(Option<&'a CompactClaims>, std::slice::Iter<'a, Span>),
}

impl StringItems<'_> {
    /// True when one of the strings equals `wanted` (a kept item's length is compared before
    /// its text is looked up).
    pub fn contains(&self, wanted: &str) -> bool {
        match &self.0 {
            Items::Values(values) => values.clone().any(|value| value.as_str() == Some(wanted)),
            // Never made with spans (what it would yield is an empty string per span).
            Items::Spans(None, spans) => wanted.is_empty() && spans.len() > 0,
            Items::Spans(Some(claims), spans) => spans
                .clone()
                .any(|span| usize::from(span.len) == wanted.len() && claims.at(*span) == wanted),
        }
    }
}

impl<'a> Iterator for StringItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match &mut self.0 {
            Items::Values(values) => values.find_map(Value::as_str),
            Items::Spans(claims, spans) => {
                let span = spans.next()?;
                Some(claims.map_or("", |claims| claims.at(*span)))
            }
        }
    }
}

impl ClaimSet for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }

    fn as_map(&self) -> Option<&Map<String, Value>> {
        Some(self)
    }
}

/// The claims the policy checks and the gateway's identity headers read, kept on the request
/// path (diagnostics that need more, such as ID-token signs, use the full map). `cnf` is read
/// for every request (DPoP binding): capturing it keeps the full map from being built for each
/// token (about 2 KB held per cached token, and its parse on every miss).
pub const CAPTURED: [&str; 13] = [
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "sub",
    "azp",
    "client_id",
    "jti",
    "scope",
    "scp",
    "permissions",
    "cnf",
];

/// The slot of a captured claim name: its index in [`CAPTURED`]. Inlined, so a lookup by a
/// constant name folds to its slot at compile time (always: left to the inliner, a match on
/// thirteen strings looks too large, and each lookup by name pays a call and the comparisons).
#[inline(always)]
pub fn captured_slot(name: &str) -> Option<usize> {
    captured_slot_of_bytes(name.as_bytes())
}

/// [`captured_slot`] of a name's bytes (the plain scan looks names up without making them
/// `str`s first).
#[inline(always)]
fn captured_slot_of_bytes(name: &[u8]) -> Option<usize> {
    // A match compiles to a length switch and one comparison, not a scan of the list.
    Some(match name {
        b"iss" => 0,
        b"aud" => 1,
        b"exp" => 2,
        b"nbf" => 3,
        b"iat" => 4,
        b"sub" => 5,
        b"azp" => 6,
        b"client_id" => 7,
        b"jti" => 8,
        b"scope" => 9,
        b"scp" => 10,
        b"permissions" => 11,
        b"cnf" => 12,
        _ => return None,
    })
}

/// What the allocator spends on one heap block beyond its contents (glibc: a 16-byte header,
/// sizes rounded up to 16).
pub(crate) const BLOCK_OVERHEAD: usize = 16;

/// The heap memory held by `value`: each block with [`BLOCK_OVERHEAD`].
pub(crate) fn value_heap_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.capacity() + BLOCK_OVERHEAD,
        Value::Array(items) => {
            items.capacity() * std::mem::size_of::<Value>()
                + BLOCK_OVERHEAD
                + items.iter().map(value_heap_bytes).sum::<usize>()
        }
        Value::Object(map) => map_heap_bytes(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// The heap memory held by a claims map (B-tree nodes estimated per entry).
pub(crate) fn map_heap_bytes(map: &serde_json::Map<String, Value>) -> usize {
    map.iter()
        .map(|(name, value)| {
            name.capacity()
                + BLOCK_OVERHEAD
                + std::mem::size_of::<(String, Value)>()
                + value_heap_bytes(value)
        })
        .sum()
}

/// The captured claims that are usually the same in every token of one issuer and client
/// (`iss`, `aud`, `azp`, `client_id`, `scope`, `scp`, `permissions`), kept in the shared text
/// buffer with the header's `kid` and `typ`.
const SHARED_SLOTS: [usize; 7] = [0, 1, 6, 7, 9, 10, 11];

/// Whether the claim in `slot` goes to the shared buffer ([`SHARED_SLOTS`] as one bit mask).
#[inline(always)]
fn is_shared(slot: usize) -> bool {
    const MASK: u64 = {
        let mut mask = 0u64;
        let mut index = 0;
        while index < SHARED_SLOTS.len() {
            mask |= 1 << SHARED_SLOTS[index];
            index += 1;
        }
        mask
    };
    slot < 64 && MASK & (1 << slot) != 0
}

/// The most distinct shared buffers [`intern`] remembers (then it starts afresh).
const INTERNED_MAX: usize = 4096;

/// The longest shared buffer [`intern`] remembers (1 KiB: the table holds at most 4 MiB).
const INTERNED_LEN_MAX: usize = 1024;

/// The one copy of `text` this process keeps for verified tokens: the tokens of one issuer
/// and client, whose issuer, audiences, client and scopes are the same, share one buffer. The
/// table is bounded ([`INTERNED_MAX`] buffers; full, it is emptied, and tokens already holding
/// a buffer keep it) and holds only what verified tokens said. `text` is UTF-8 (`None` when
/// not, which the scans never give): it is checked only when it is not the last one interned,
/// which it equals byte for byte.
fn intern(text: &[u8]) -> Option<Arc<str>> {
    // Real shared text is a few hundred bytes; a larger one is not shared, so the table holds
    // at most `INTERNED_MAX * INTERNED_LEN_MAX` bytes beside what the cache weighs.
    if text.len() > INTERNED_LEN_MAX {
        return Some(Arc::from(std::str::from_utf8(text).ok()?));
    }
    thread_local! {
        /// The buffer this thread interned last: consecutive tokens mostly come from one
        /// issuer and client, so one comparison usually finds it without a hash or the lock.
        static LAST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    }
    let last = LAST
        .try_with(|last| {
            last.try_borrow().ok().and_then(|last| {
                last.as_ref()
                    .filter(|last| last.as_bytes() == text)
                    .cloned()
            })
        })
        .ok()
        .flatten();
    if let Some(found) = last {
        return Some(found);
    }
    let shared = intern_in_table(std::str::from_utf8(text).ok()?);
    // A thread that cannot remember it simply takes the table's path next time.
    let _ = LAST.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(shared.clone());
        }
    });
    Some(shared)
}

/// [`intern`] through the process-wide table.
fn intern_in_table(text: &str) -> Arc<str> {
    static TABLE: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let Ok(mut table) = TABLE.get_or_init(Mutex::default).lock() else {
        return Arc::from(text);
    };
    if let Some(found) = table.get(text) {
        return found.clone();
    }
    if table.len() >= INTERNED_MAX {
        table.clear();
    }
    let shared: Arc<str> = Arc::from(text);
    table.insert(shared.clone());
    shared
}

/// The value of a number written as up to 19 decimal digits and nothing else (what `exp`,
/// `nbf` and `iat` are), without serde_json's general number parser; `None` for anything else
/// (a sign, a fraction, an exponent, more digits), which takes the general path.
/// The digits after the first `len % 8` are read eight at a time (a Unix time has ten).
#[inline(always)]
fn plain_integer(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 19 || (bytes.len() > 1 && bytes.first() == Some(&b'0')) {
        return None;
    }
    let (head, eights) = bytes.split_at(bytes.len() % 8);
    let mut value = head.iter().try_fold(0u64, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u64::from(byte - b'0'))
    })?;
    for chunk in eights.chunks_exact(8) {
        // Nineteen digits at most, so this never exceeds `u64::MAX`.
        value = value * 100_000_000 + u64::from(eight_digits(chunk)?);
    }
    Some(value)
}

/// The value of eight ASCII digits (the first the most significant); `None` when a byte is not
/// a digit.
#[inline(always)]
fn eight_digits(chunk: &[u8]) -> Option<u32> {
    const fn splat(byte: u8) -> u64 {
        0x0101_0101_0101_0101 * byte as u64
    }
    let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
    // Each byte minus `'0'`: a byte below `'0'` borrows and sets its top bit, a byte from
    // `':'` up is 10 or more, which adding 0x76 carries into the top bit (a byte of 0x8A or
    // more has it set already; only such a byte carries on into the next).
    let digits = word.wrapping_sub(splat(b'0'));
    if (digits | digits.wrapping_add(splat(0x76))) & splat(0x80) != 0 {
        return None;
    }
    // Pairs, then quads, then the eight (little-endian: the first digit is the lowest byte).
    let pairs = (digits * 10 + (digits >> 8)) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs * 100 + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    u32::try_from((quads * 10_000 + (quads >> 32)) & 0xFFFF_FFFF).ok()
}

/// A piece of one of a [`CompactClaims`]'s two text buffers: the token's own or the shared one
/// (the top bit of `start`). Fifteen bits suffice for real tokens; a claim beyond them is kept
/// as a JSON value instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u16,
    len: u16,
}

impl Span {
    const SHARED: u16 = 1 << 15;
}

/// How a [`CompactClaims`] holds one captured claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kept {
    /// Not in the token.
    #[default]
    Absent,
    /// A string: its text.
    Text(Span),
    /// A number: its JSON text.
    Number(Span),
    /// An array of strings only: `count` spans from `first` in the item list.
    Strings { first: u16, count: u16 },
    /// Anything else (an object such as `cnf`, a mixed array, a boolean, null): a JSON value
    /// in the value list.
    Value(u16),
}

/// The [`CAPTURED`] claims a verified token keeps, compactly: strings, numbers and arrays of
/// strings as spans of one text buffer (no `serde_json::Value` of 72 bytes and a heap block per
/// string), anything else as a JSON value; and the document order, to rebuild the claims.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CompactClaims {
    text: Box<str>,
    /// `None` only before the scan: a default `Arc<str>` is one process-wide static, whose
    /// count each clone and drop would change atomically, from every thread.
    shared: Option<Arc<str>>,
    slots: [Kept; CAPTURED.len()],
    items: ItemSpans,
    values: Box<[Value]>,
    order: [u8; CAPTURED.len()],
    kid: Option<Span>,
    typ: Option<Span>,
}

/// The spans of a [`CompactClaims`]'s array items, in one list: up to [`ItemSpans::INLINE`]
/// kept in the value itself (an Auth0 token's two audiences and two permissions: no heap
/// block, so no allocation per token and 32 bytes less held), more in a heap block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ItemSpans {
    /// At most [`ItemSpans::INLINE`] spans: the first `len` of `spans`.
    Inline {
        spans: [Span; ItemSpans::INLINE],
        len: u8,
    },
    /// More.
    Heap(Box<[Span]>),
}

impl ItemSpans {
    /// How many spans are kept without a heap block.
    const INLINE: usize = 4;

    /// The list `spans`.
    fn new(spans: &[Span]) -> ItemSpans {
        let mut inline = [Span::default(); ItemSpans::INLINE];
        match (inline.get_mut(..spans.len()), u8::try_from(spans.len())) {
            (Some(front), Ok(len)) => {
                front.copy_from_slice(spans);
                ItemSpans::Inline { spans: inline, len }
            }
            _ => ItemSpans::Heap(Box::from(spans)),
        }
    }

    /// The spans.
    #[inline(always)]
    fn as_slice(&self) -> &[Span] {
        match self {
            ItemSpans::Inline { spans, len } => spans.get(..usize::from(*len)).unwrap_or_default(),
            ItemSpans::Heap(spans) => spans,
        }
    }

    /// The heap block's size (0 when inline).
    fn heap_len(&self) -> usize {
        match self {
            ItemSpans::Inline { .. } => 0,
            ItemSpans::Heap(spans) => std::mem::size_of_val::<[Span]>(spans),
        }
    }
}

impl Default for ItemSpans {
    fn default() -> ItemSpans {
        ItemSpans::Inline {
            spans: [Span::default(); ItemSpans::INLINE],
            len: 0,
        }
    }
}

/// Builds a [`CompactClaims`]: appends texts to one buffer.
#[derive(Default)]
struct CompactBuilder {
    /// The decoded payload being scanned.
    payload: Vec<u8>,
    /// The token's own text and the shared text, as bytes: every piece is a whole string of
    /// a validated UTF-8 document (or a `kid`/`typ`), so each buffer is UTF-8; it is made a
    /// `str` once, at the end (the shared one only when it is not the last one interned).
    text: Vec<u8>,
    shared: Vec<u8>,
    items: Vec<Span>,
    values: Vec<Value>,
}

impl CompactBuilder {
    /// The most bytes of text a reused builder keeps between scans (what a large token grew
    /// beyond it is given back).
    const KEPT_CAPACITY: usize = 16 * 1024;

    /// Empties the buffers, keeping their memory.
    fn clear(&mut self) {
        self.text.clear();
        self.shared.clear();
        self.items.clear();
        self.values.clear();
    }

    /// Gives back what a large token made the buffers grow to.
    fn trim(&mut self) {
        self.payload.shrink_to(Self::KEPT_CAPACITY);
        self.text.shrink_to(Self::KEPT_CAPACITY);
        self.shared.shrink_to(Self::KEPT_CAPACITY);
        self.items.shrink_to(Self::KEPT_CAPACITY / 4);
    }

    /// Appends `text` to the shared buffer or the token's own; `None` past fifteen bits.
    #[inline(always)]
    fn push(&mut self, text: &[u8], shared: bool) -> Option<Span> {
        let buffer = if shared {
            &mut self.shared
        } else {
            &mut self.text
        };
        let end = buffer.len() + text.len();
        if end >= usize::from(Span::SHARED) {
            return None;
        }
        let span = Span {
            start: u16::try_from(buffer.len()).ok()? | if shared { Span::SHARED } else { 0 },
            len: u16::try_from(text.len()).ok()?,
        };
        buffer.extend_from_slice(text);
        Some(span)
    }

    /// Appends the items of an array of strings, their spans straight into the item list;
    /// `None` (both left as they were) past fifteen bits or when an item is not a string.
    fn push_strings<'v>(
        &mut self,
        items: impl Iterator<Item = RawValue<'v>>,
        shared: bool,
    ) -> Option<Kept> {
        let first_item = self.items.len();
        let text_len = (self.text.len(), self.shared.len());
        let mut complete = true;
        for item in items {
            match item
                .string()
                .and_then(|text| self.push(text.as_bytes(), shared))
            {
                Some(span) => self.items.push(span),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        let first = u16::try_from(first_item).ok();
        let count = u16::try_from(self.items.len() - first_item).ok();
        match (complete, first, count) {
            (true, Some(first), Some(count)) => Some(Kept::Strings { first, count }),
            _ => {
                self.items.truncate(first_item);
                self.text.truncate(text_len.0);
                self.shared.truncate(text_len.1);
                None
            }
        }
    }

    /// Keeps one validated member: strings, numbers (their JSON text) and arrays of strings as
    /// spans, anything else (or text past fifteen bits) as a JSON value.
    fn keep(&mut self, raw: &RawValue<'_>, shared: bool) -> Kept {
        let compact = match raw.kind() {
            Kind::String => raw
                .string()
                .and_then(|text| self.push(text.as_bytes(), shared))
                .map(Kept::Text),
            Kind::Number => self.push(raw.text().as_bytes(), false).map(Kept::Number),
            Kind::Array => self.push_strings(raw.items(), shared),
            Kind::Object | Kind::Bool | Kind::Null => None,
        };
        match (compact, u16::try_from(self.values.len())) {
            (Some(kept), _) => kept,
            (None, Ok(index)) => {
                self.values.push(raw.to_value());
                Kept::Value(index)
            }
            (None, Err(_)) => Kept::Absent,
        }
    }
}

impl CompactBuilder {
    /// The plain one-pass reading of the common claims document, straight into the buffers:
    /// member names and strings without escapes, integers, `true`/`false`/`null`, and flat
    /// arrays of those, with every captured member a string, a number or an array of strings
    /// (the subset `members::plain_scalar_end` and `members::plain_string_end` read). For such
    /// a document it keeps exactly what the full scan with [`CompactBuilder::keep`] keeps, in
    /// `slots` and `order`, and returns whether the payload has other members; for any other
    /// document, well-formed or not, `None`, and the caller empties the buffers and runs the
    /// full scan, which decides.
    fn scan_plain(
        &mut self,
        slots: &mut [Kept; CAPTURED.len()],
        order: &mut [u8; CAPTURED.len()],
        payload: &[u8],
    ) -> Option<bool> {
        use members::{plain_scalar_end, plain_string_end, skip_whitespace};
        const OTHER_NAMES: usize = 16;
        // The whole document is UTF-8 (this is what refuses a bad byte in a string the scan
        // only skips), so every string cut at its quotes is too. ASCII, as claims mostly are,
        // is UTF-8, and quicker to tell.
        if !is_ascii(payload) {
            std::str::from_utf8(payload).ok()?;
        }
        let bytes = payload;
        let mut filled: u64 = 0;
        let mut kept_count = 0usize;
        let mut other_names: [&[u8]; OTHER_NAMES] = [&[]; OTHER_NAMES];
        let mut others = 0usize;
        let mut pos = skip_whitespace(bytes, 0);
        if *bytes.get(pos)? != b'{' {
            return None;
        }
        pos = skip_whitespace(bytes, pos + 1);
        if bytes.get(pos) == Some(&b'}') {
            pos += 1;
        } else {
            loop {
                let name_end = plain_string_end(bytes, pos)?;
                // Plain (no escapes), so its bytes are the name.
                let name = bytes.get(pos + 1..name_end - 1)?;
                pos = skip_whitespace(bytes, name_end);
                if *bytes.get(pos)? != b':' {
                    return None;
                }
                pos = skip_whitespace(bytes, pos + 1);
                let slot = captured_slot_of_bytes(name);
                match slot {
                    Some(slot) if filled & (1 << slot) != 0 => return None,
                    Some(slot) => filled |= 1 << slot,
                    None => {
                        if other_names.get(..others)?.contains(&name) {
                            return None;
                        }
                        *other_names.get_mut(others)? = name;
                        others += 1;
                    }
                }
                let shared = slot.is_some_and(is_shared);
                let kept = if *bytes.get(pos)? == b'[' {
                    let first = self.items.len();
                    pos = skip_whitespace(bytes, pos + 1);
                    if bytes.get(pos) != Some(&b']') {
                        loop {
                            let (kind, end) = plain_scalar_end(bytes, pos)?;
                            if slot.is_some() {
                                if kind != Kind::String {
                                    return None;
                                }
                                let span = self.push(bytes.get(pos + 1..end - 1)?, shared)?;
                                self.items.push(span);
                            }
                            pos = skip_whitespace(bytes, end);
                            match *bytes.get(pos)? {
                                b',' => pos = skip_whitespace(bytes, pos + 1),
                                b']' => break,
                                _ => return None,
                            }
                        }
                    }
                    pos += 1;
                    Kept::Strings {
                        first: u16::try_from(first).ok()?,
                        count: u16::try_from(self.items.len() - first).ok()?,
                    }
                } else {
                    let (kind, end) = plain_scalar_end(bytes, pos)?;
                    let kept = match (slot, kind) {
                        (None, _) => Kept::Absent,
                        (Some(_), Kind::String) => {
                            Kept::Text(self.push(bytes.get(pos + 1..end - 1)?, shared)?)
                        }
                        (Some(_), Kind::Number) => {
                            Kept::Number(self.push(bytes.get(pos..end)?, false)?)
                        }
                        (Some(_), _) => return None,
                    };
                    pos = end;
                    kept
                };
                if let Some(slot) = slot {
                    *slots.get_mut(slot)? = kept;
                    *order.get_mut(kept_count)? = u8::try_from(slot).ok()?;
                    kept_count += 1;
                }
                pos = skip_whitespace(bytes, pos);
                match *bytes.get(pos)? {
                    b',' => pos = skip_whitespace(bytes, pos + 1),
                    b'}' => {
                        pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_whitespace(bytes, pos) == bytes.len()).then_some(others > 0)
    }
}

/// Whether every byte is ASCII: one OR of all of them, which the compiler vectorises (the
/// standard library's word-at-a-time check does more per byte).
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |all, &byte| all | byte) < 0x80
}

/// Whether the plain scan ([`CompactBuilder::scan_plain`]) agrees with the full scan on
/// `payload`: `Some(true)` when it read the document and kept exactly what the full scan keeps
/// (the same spans, texts, order and other-members flag), `Some(false)` when it left the
/// document to the full scan, `None` when they disagree. For the tests and the fuzz targets.
#[doc(hidden)]
pub fn plain_scan_agrees(payload: &[u8]) -> Option<bool> {
    let mut plain = CompactBuilder::default();
    let mut plain_slots = [Kept::Absent; CAPTURED.len()];
    let mut plain_order = [u8::MAX; CAPTURED.len()];
    let Some(others) = plain.scan_plain(&mut plain_slots, &mut plain_order, payload) else {
        return Some(false);
    };
    let mut full = CompactBuilder::default();
    let mut full_slots = [Kept::Absent; CAPTURED.len()];
    let order = members::scan_members(payload, &captured_slot, &mut |slot, raw| {
        if let Some(target) = full_slots.get_mut(slot) {
            *target = full.keep(&raw, is_shared(slot));
        }
    })
    .ok()?;
    let mut full_order = [u8::MAX; CAPTURED.len()];
    for (position, &slot) in full_order.iter_mut().zip(order.slots()) {
        *position = slot;
    }
    let same = plain_slots == full_slots
        && plain_order == full_order
        && others == order.others()
        && plain.text == full.text
        && plain.shared == full.shared
        && plain.items == full.items
        && plain.values.is_empty()
        && full.values.is_empty();
    same.then_some(true)
}

/// Whether the scope readings of the captured claims of `payload` (`scope::grants`,
/// `scope::granted`, `scope::distinct`, as a verified token answers them) agree with their
/// definition over the full claims map: the non-empty space-separated words of `scope` and `scp`
/// (strings), then the string items of `scp` and `permissions` (arrays). Tried with every
/// granted scope, each with its last character dropped, every whole scope string and the empty
/// string. `Some(true)`: they agree; `Some(false)`: not a JSON object; `None`: they disagree
/// (or the capture refused a document the full parse accepts). For the tests and the fuzz
/// targets.
#[doc(hidden)]
pub fn scope_readings_agree(payload: &[u8]) -> Option<bool> {
    let Ok(map) = crate::internal::json::parse_object(payload) else {
        return Some(false);
    };
    let (compact, _) =
        with_scratch(|builder| CompactClaims::scanned(builder, payload, None, None)).ok()?;
    let view = CapturedView(&compact);
    let text = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or_default();
    let items = |name: &str| {
        map.get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut granted: Vec<&str> = Vec::new();
    for name in ["scope", "scp"] {
        granted.extend(text(name).split(' ').filter(|word| !word.is_empty()));
    }
    granted.extend(items("scp"));
    granted.extend(items("permissions"));
    let mut candidates: Vec<&str> = granted.clone();
    for scope in &granted {
        let last = scope.chars().last().map_or(0, char::len_utf8);
        candidates.push(scope.get(..scope.len() - last).unwrap_or_default());
    }
    candidates.extend(["", text("scope"), text("scp")]);
    for candidate in candidates {
        if crate::scope::grants(&view, candidate) != granted.contains(&candidate) {
            return None;
        }
    }
    if !crate::scope::granted(&view).eq(granted.iter().copied()) {
        return None;
    }
    let mut distinct: Vec<&str> = Vec::new();
    for scope in &granted {
        if !distinct.contains(scope) {
            distinct.push(scope);
        }
    }
    (crate::scope::distinct(&view) == distinct).then_some(true)
}

/// The captured claims as a claim set, as a verified token reads them (for
/// [`scope_readings_agree`]).
struct CapturedView<'a>(&'a CompactClaims);

impl ClaimSet for CapturedView<'_> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.0.json(name)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.text(name)
    }

    fn items(&self, name: &str) -> StringItems<'_> {
        self.0.items(name)
    }
}

/// A decoded payload kept beside its captured claims (`None`: they are all of it).
pub(crate) type KeptPayload = Option<Box<[u8]>>;

/// Runs `work` with this thread's reused builder (emptied first, trimmed after), or with a
/// fresh one when that is unavailable (re-entered, or the thread is ending).
fn with_scratch<T>(mut work: impl FnMut(&mut CompactBuilder) -> T) -> T {
    thread_local! {
        /// The buffers claims are gathered in before their exact-size copies, reused by
        /// every scan on this thread (no allocation for them per token).
        static SCRATCH: RefCell<CompactBuilder> = RefCell::default();
    }
    let mut run = |builder: &mut CompactBuilder| {
        builder.clear();
        let result = work(builder);
        builder.trim();
        result
    };
    let reused = SCRATCH.try_with(|scratch| {
        scratch
            .try_borrow_mut()
            .ok()
            .map(|mut builder| run(&mut builder))
    });
    match reused {
        Ok(Some(result)) => result,
        _ => run(&mut CompactBuilder::default()),
    }
}

impl CompactClaims {
    #[cfg(test)]
    /// Validates `payload` as a strict JSON object ([`members::scan_members`]: exactly what
    /// [`crate::internal::json::parse_object`] accepts) and keeps its [`CAPTURED`] members,
    /// straight from the text the scan validated, with the header's `kid` and `typ`. Also
    /// returns whether the payload has other members.
    pub fn scan(
        payload: &[u8],
        kid: Option<&str>,
        typ: Option<&str>,
    ) -> Result<(CompactClaims, bool), JsonError> {
        with_scratch(|builder| Self::scanned(builder, payload, kid, typ))
    }

    /// [`CompactClaims::scan_into`] a new value.
    fn scanned(
        builder: &mut CompactBuilder,
        payload: &[u8],
        kid: Option<&str>,
        typ: Option<&str>,
    ) -> Result<(CompactClaims, bool), JsonError> {
        let mut compact = CompactClaims::default();
        let others = Self::scan_into(builder, payload, kid, typ, &mut compact)?;
        Ok((compact, others))
    }

    /// Decodes the base64url payload segment `payload_b64` into a reused buffer and scans it as
    /// [`CompactClaims::scan`] does, into `compact` (a default value: it is filled where it is,
    /// so the request path does not copy it around). Returns an owned copy of the payload when
    /// it has members beyond the captured ones (otherwise the captured claims are all of it,
    /// and nothing else is kept).
    pub(crate) fn decode_and_scan_into(
        payload_b64: &[u8],
        kid: Option<&str>,
        typ: Option<&str>,
        compact: &mut CompactClaims,
    ) -> Result<KeptPayload, JwsError> {
        with_scratch(|builder| {
            let mut payload = std::mem::take(&mut builder.payload);
            let scanned = Self::decode_into(&mut payload, payload_b64).and_then(|()| {
                let others =
                    Self::scan_into(builder, &payload, kid, typ, compact).map_err(|error| {
                        JwsError::Json {
                            segment: Segment::Payload,
                            error,
                        }
                    })?;
                Ok(others.then(|| Box::from(payload.as_slice())))
            });
            builder.payload = payload;
            scanned
        })
    }

    /// Decodes the payload segment into `payload` (emptied first).
    fn decode_into(payload: &mut Vec<u8>, payload_b64: &[u8]) -> Result<(), JwsError> {
        let error = |error| JwsError::Base64 {
            segment: Segment::Payload,
            error,
        };
        payload.clear();
        payload.resize(base64url::decoded_len(payload_b64.len()).map_err(error)?, 0);
        base64url::decode_into(payload_b64, payload).map_err(error)?;
        Ok(())
    }

    /// [`CompactClaims::scan`] with `builder`'s (empty) buffers, into `compact` (a default
    /// value); returns whether the payload has other members.
    fn scan_into(
        builder: &mut CompactBuilder,
        payload: &[u8],
        kid: Option<&str>,
        typ: Option<&str>,
        compact: &mut CompactClaims,
    ) -> Result<bool, JsonError> {
        // No buffer outgrows the payload (escapes only shrink text), so none grows while filled.
        let shared_len = payload.len() + kid.map_or(0, str::len) + typ.map_or(0, str::len);
        builder.text.reserve(payload.len());
        builder.shared.reserve(shared_len);
        compact.order = [u8::MAX; CAPTURED.len()];
        // The common document in one pass; anything else (or any error) by the full scan,
        // from the start.
        let others = match builder.scan_plain(&mut compact.slots, &mut compact.order, payload) {
            Some(others) => others,
            None => {
                builder.clear();
                compact.slots = Default::default();
                compact.order = [u8::MAX; CAPTURED.len()];
                let order: MemberOrder =
                    members::scan_members(payload, &captured_slot, &mut |slot, raw| {
                        if let Some(target) = compact.slots.get_mut(slot) {
                            *target = builder.keep(&raw, is_shared(slot));
                        }
                    })?;
                for (position, &slot) in compact.order.iter_mut().zip(order.slots()) {
                    *position = slot;
                }
                order.others()
            }
        };
        compact.kid = kid.and_then(|kid| builder.push(kid.as_bytes(), true));
        compact.typ = typ.and_then(|typ| builder.push(typ.as_bytes(), true));
        // Exact-size copies: shrinking a grown buffer in place would leave a sliver of free
        // memory beside every cached token.
        // Whole UTF-8 strings put together, so neither check fails.
        let not_utf8 = || JsonError::Malformed("captured text is not UTF-8".to_owned());
        compact.text = Box::from(std::str::from_utf8(&builder.text).map_err(|_| not_utf8())?);
        compact.shared = Some(intern(&builder.shared).ok_or_else(not_utf8)?);
        compact.items = ItemSpans::new(&builder.items);
        compact.values = std::mem::take(&mut builder.values).into_boxed_slice();
        Ok(others)
    }

    /// A span's text (empty if out of range, which the constructor never makes).
    #[inline(always)]
    fn at(&self, span: Span) -> &str {
        let (buffer, start) = if span.start & Span::SHARED != 0 {
            (
                self.shared.as_deref().unwrap_or_default(),
                span.start & !Span::SHARED,
            )
        } else {
            (&*self.text, span.start)
        };
        let start = usize::from(start);
        buffer
            .get(start..start + usize::from(span.len))
            .unwrap_or_default()
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.map(|span| self.at(span))
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.typ.map(|span| self.at(span))
    }

    #[inline(always)]
    fn kept(&self, name: &str) -> Kept {
        captured_slot(name)
            .and_then(|slot| self.slots.get(slot).copied())
            .unwrap_or_default()
    }

    /// True when the claim was captured and is in the token.
    #[inline(always)]
    pub fn contains(&self, name: &str) -> bool {
        self.kept(name) != Kept::Absent
    }

    /// The claim as a JSON value: borrowed when kept as one, otherwise built from its text.
    pub fn value(&self, name: &str) -> Option<std::borrow::Cow<'_, Value>> {
        use std::borrow::Cow;
        Some(match self.kept(name) {
            Kept::Absent => return None,
            Kept::Text(span) => Cow::Owned(Value::String(self.at(span).to_owned())),
            Kept::Number(span) => Cow::Owned(Value::Number(
                self.at(span).parse::<serde_json::Number>().ok()?,
            )),
            Kept::Strings { .. } => Cow::Owned(Value::Array(
                self.items(name)
                    .map(|item| Value::String(item.to_owned()))
                    .collect(),
            )),
            Kept::Value(index) => Cow::Borrowed(self.values.get(usize::from(index))?),
        })
    }

    /// A numeric claim as a float.
    #[inline(always)]
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.kept(name) {
            // Both conversions round to the nearest float, so a plain integer reads the same.
            Kept::Number(span) => match plain_integer(self.at(span)) {
                Some(integer) => Some(integer as f64),
                None => self.at(span).parse().ok(),
            },
            // A number that no longer fit the own buffer was kept as a JSON value.
            Kept::Value(index) => self.values.get(usize::from(index)).and_then(Value::as_f64),
            _ => None,
        }
    }

    /// The members in document order, as JSON values.
    pub fn to_map(&self) -> Map<String, Value> {
        self.order
            .iter()
            .filter_map(|&slot| CAPTURED.get(usize::from(slot)))
            .filter_map(|name| Some(((*name).to_owned(), self.value(name)?.into_owned())))
            .collect()
    }

    /// The heap memory held: the text buffer, the item list and any JSON values.
    pub(crate) fn heap_bytes(&self) -> usize {
        let block = |len: usize| if len == 0 { 0 } else { len + BLOCK_OVERHEAD };
        // The shared text is counted only while no other token shares it.
        let shared = match &self.shared {
            Some(shared) if Arc::strong_count(shared) <= 2 => block(shared.len()),
            _ => 0,
        };
        block(self.text.len())
            + shared
            + block(self.items.heap_len())
            + block(self.values.len() * std::mem::size_of::<Value>())
            + self.values.iter().map(value_heap_bytes).sum::<usize>()
    }
}

/// Not a [`ClaimSet`]: most claims are not kept as JSON values, so a `claim` lookup would miss
/// them (`crate::Verified` is the claim set, falling back to its full claims map).
impl CompactClaims {
    /// The claim when kept as a JSON value (objects, mixed arrays, booleans, null).
    pub fn json(&self, name: &str) -> Option<&Value> {
        match self.kept(name) {
            Kept::Value(index) => self.values.get(usize::from(index)),
            _ => None,
        }
    }

    /// The claim's type and contents (see [`ClaimSet::get`]), without building JSON values.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Claim<'_> {
        match self.kept(name) {
            Kept::Absent => Claim::Absent,
            Kept::Text(span) => Claim::Text(self.at(span)),
            // The scan validated the text with serde_json's grammar, so it parses.
            Kept::Number(span) => match plain_integer(self.at(span)) {
                Some(integer) => Claim::Number(Number::from(integer)),
                None => self
                    .at(span)
                    .parse::<Number>()
                    .map_or(Claim::Absent, Claim::Number),
            },
            Kept::Strings { .. } => Claim::Strings(self.items(name)),
            Kept::Value(index) => Claim::of_value(self.values.get(usize::from(index))),
        }
    }

    /// The claim's text, when it is a string.
    #[inline(always)]
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.kept(name) {
            Kept::Text(span) => Some(self.at(span)),
            Kept::Value(index) => self.values.get(usize::from(index)).and_then(Value::as_str),
            _ => None,
        }
    }

    /// The strings of the claim, when it is an array.
    #[inline(always)]
    pub fn items(&self, name: &str) -> StringItems<'_> {
        match self.kept(name) {
            Kept::Strings { first, count } => {
                let spans = self
                    .items
                    .as_slice()
                    .get(usize::from(first)..usize::from(first) + usize::from(count))
                    .unwrap_or_default();
                StringItems(Items::Spans(Some(self), spans.iter()))
            }
            Kept::Value(index) => match self.values.get(usize::from(index)) {
                Some(Value::Array(items)) => StringItems(Items::Values(items.iter())),
                _ => StringItems(Items::Spans(None, [].iter())),
            },
            _ => StringItems(Items::Spans(None, [].iter())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_text_is_one_buffer_whether_it_was_last_or_not() {
        let first = intern(b"interned-a").unwrap();
        assert!(
            Arc::ptr_eq(&first, &intern(b"interned-a").unwrap()),
            "the last one"
        );
        let other = intern(b"interned-b").unwrap();
        assert_eq!(&*other, "interned-b");
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(
            Arc::ptr_eq(&first, &intern(b"interned-a").unwrap()),
            "from the table"
        );
        assert!(
            Arc::ptr_eq(&other, &intern(b"interned-b").unwrap()),
            "from the table"
        );
        let from_another_thread = std::thread::spawn(|| intern(b"interned-a").unwrap())
            .join()
            .expect("thread runs");
        assert!(Arc::ptr_eq(&first, &from_another_thread));
    }

    #[test]
    fn plain_integers_read_as_serde_json_reads_them() {
        let mut texts: Vec<String> = [
            "0",
            "7",
            "1796151325",
            "9007199254740993",
            "18446744073709551615",
            "9999999999999999999",
            "99999999999999999999",
            "-1",
            "1.0",
            "1e3",
            "01",
            "",
        ]
        .iter()
        .map(|text| (*text).to_owned())
        .collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            texts.push((seed >> (seed % 64)).to_string());
        }
        // Every length, with one byte at every position replaced by a byte next to the digits
        // (or far from them): none of these is a plain integer.
        for len in 1..=20 {
            let digits: String = (0..len).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            for at in 0..len {
                for foreign in ['/', ':', ' ', '\u{0}', '\u{b0}', '\u{3a0}', 'a', '~'] {
                    let mut text: String = digits.chars().take(at).collect();
                    text.push(foreign);
                    text.extend(digits.chars().skip(at + 1));
                    texts.push(text);
                }
            }
            texts.push(digits);
            texts.push("9".repeat(len));
        }
        for text in &texts {
            let serde_number = text.parse::<Number>().ok();
            match plain_integer(text) {
                Some(integer) => {
                    assert_eq!(Some(Number::from(integer)), serde_number, "{text}");
                    assert_eq!(Some(integer as f64), text.parse::<f64>().ok(), "{text}");
                }
                None => assert!(
                    text.len() > 19
                        || !text.bytes().all(|b| b.is_ascii_digit())
                        || text.starts_with('0') && text.len() > 1
                        || text.is_empty(),
                    "{text} should take the fast path"
                ),
            }
        }
    }

    /// The plain scan reads the common shapes of captured claims and leaves every other one to
    /// the full scan, and whenever it reads, it keeps what the full scan keeps.
    #[test]
    fn the_plain_scan_keeps_what_the_full_scan_keeps() {
        let read: [&[u8]; 6] = [
            br#"{"iss":"https://i/","sub":"s","aud":["a","b"],"iat":1,"exp":2,"scope":"x y","azp":"z","permissions":["p","q"],"gty":"client-credentials","org_id":"o"}"#,
            br#"{"aud":"a","scp":[],"permissions":[],"exp":-0,"nbf":0,"jti":"","client_id":"c"}"#,
            b" {\n \"iss\" : \"\xc3\xa9\" ,\t\"x\":[1,true,null,\"s\"], \"y\":false } ",
            br#"{"sub":"s","custom":[1,2,3],"flag":true,"none":null}"#,
            br#"{}"#,
            br#"{"aud":["a","a","a"]}"#,
        ];
        for document in read {
            assert_eq!(
                plain_scan_agrees(document),
                Some(true),
                "{:?}",
                String::from_utf8_lossy(document)
            );
        }
        let left: [&[u8]; 14] = [
            br#"{"aud":["a",1]}"#,
            br#"{"aud":[["a"]]}"#,
            br#"{"jti":null}"#,
            br#"{"exp":true}"#,
            br#"{"exp":1.5}"#,
            br#"{"exp":1e9}"#,
            br#"{"cnf":{"jkt":"t"}}"#,
            br#"{"iss":"a","iss":"b"}"#,
            br#"{"x":1,"x":2}"#,
            br#"{"sub":"a\"b"}"#,
            br#"{"s\u0075b":"a"}"#,
            br#"{"iss":"a",}"#,
            br#"{"iss":"a"} {}"#,
            br#"{"iss":"a""#,
        ];
        for document in left {
            assert_eq!(
                plain_scan_agrees(document),
                Some(false),
                "{:?}",
                String::from_utf8_lossy(document)
            );
        }
    }

    /// A captured or other claim's value: the shapes the plain scan reads, and some it leaves.
    fn claim_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            "[a-z:/ |\u{e9}]{0,12}".prop_map(|text| format!("\"{text}\"")),
            "[a-z\"\\\\\u{1}]{0,4}".prop_map(|text| Value::from(text).to_string()),
            any::<u32>().prop_map(|number| number.to_string()),
            any::<i64>().prop_map(|number| number.to_string()),
            Just("1.5".to_owned()),
            Just("01".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
        ];
        prop_oneof![
            3 => scalar.clone(),
            2 => proptest::collection::vec(scalar, 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            1 => Just(r#"{"jkt":"t"}"#.to_owned()),
            1 => Just("[[1]]".to_owned()),
        ]
    }

    proptest::proptest! {
        #[test]
        fn plain_and_full_scans_agree_on_claims_documents(
            members in proptest::collection::vec(
                (proptest::sample::select(vec![
                    "iss", "aud", "exp", "nbf", "iat", "sub", "azp", "client_id", "jti",
                    "scope", "scp", "permissions", "cnf", "gty", "org", "x",
                ]), claim_value()),
                0..10,
            ),
            spaced in proptest::bool::ANY,
            cut in proptest::sample::select(vec![0usize, 1, 2, 7]),
        ) {
            let separator = if spaced { " , " } else { "," };
            let members: Vec<String> =
                members.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
            let text = format!("{{{}}}", members.join(separator)).into_bytes();
            proptest::prop_assert!(plain_scan_agrees(&text).is_some(), "{}", String::from_utf8_lossy(&text));
            proptest::prop_assert!(scope_readings_agree(&text).is_some(), "{}", String::from_utf8_lossy(&text));
            let cut = text.len().saturating_sub(cut);
            proptest::prop_assert!(plain_scan_agrees(&text[..cut]).is_some());
        }
    }

    /// The scope readings of captured claims (plain or full scan, text or items, escapes,
    /// mixed arrays, repeats) are their definition over the full map.
    #[test]
    fn scope_readings_of_captured_claims_follow_the_definition() {
        let documents: [&[u8]; 8] = [
            br#"{"scope":"openid profile email read:users","permissions":["read:users","write:users"]}"#,
            br#"{"scope":"  a  b ","scp":"b c","permissions":["a","",7,"d",null]}"#,
            br#"{"scp":["x","y","x"],"scope":"read:users2 read:user"}"#,
            br#"{"scope":"a\u0020b\tc","permissions":["e\u0301","\u00e9"]}"#,
            "{\"scope\":\"\u{e9} \u{a0}x x\u{a0} \u{120}\",\"scp\":{\"a\":1}}".as_bytes(),
            br#"{"permissions":"a b","scp":true,"scope":["a"]}"#,
            br#"{}"#,
            br#"{"scope":"abcdefgh ijklmnop qrstuvwx yz abcdefgh","permissions":["abcdefgh"]}"#,
        ];
        for document in documents {
            assert_eq!(
                scope_readings_agree(document),
                Some(true),
                "{:?}",
                String::from_utf8_lossy(document)
            );
        }
        assert_eq!(scope_readings_agree(b"[1]"), Some(false));
    }

    /// A byte that is not UTF-8, in a captured string, a skipped one or an array item, refuses
    /// the document: the buffers filled as bytes never hold one.
    #[test]
    fn text_that_is_not_utf8_is_refused_wherever_it_is() {
        let documents: [&[u8]; 5] = [
            b"{\"sub\":\"a\xffb\"}",
            b"{\"other\":\"a\xc3\"}",
            b"{\"aud\":[\"a\",\"\xe2\x82\"]}",
            b"{\"scope\":\"a b\",\"x\":\"\xed\xa0\x80\"}",
            b"{\"iss\":\"i\",\"\xff\":1}",
        ];
        for document in documents {
            assert!(
                CompactClaims::scan(document, None, None).is_err(),
                "{document:?}"
            );
            assert_eq!(plain_scan_agrees(document), Some(false), "{document:?}");
            assert_eq!(scope_readings_agree(document), Some(false), "{document:?}");
        }
    }

    #[test]
    fn shared_slots_are_the_listed_ones() {
        for slot in 0..80 {
            assert_eq!(is_shared(slot), SHARED_SLOTS.contains(&slot), "{slot}");
        }
    }

    #[test]
    fn slots_follow_the_list() {
        for (index, name) in CAPTURED.iter().enumerate() {
            assert_eq!(captured_slot(name), Some(index));
        }
        assert_eq!(captured_slot("nonce"), None);
    }

    #[test]
    fn every_captured_claim_reads_back_as_it_was() {
        let documents = [
            serde_json::json!({
                "sub": "a\"b\u{e9}\n", "iss": "https://i/", "aud": "api", "exp": 1.5e9,
                "nbf": -3, "iat": 18446744073709551615u64, "scope": " a  b ", "scp": "c d",
                "permissions": ["p", "q"], "jti": "", "azp": "z", "client_id": "c",
                "cnf": {"jkt": "t", "x5t#S256": "u"},
            }),
            serde_json::json!({
                "aud": ["x", "y", "x"], "scp": ["s", 1, null, "t"], "permissions": "not-an-array",
                "sub": 42, "exp": 2.25, "cnf": "not-an-object", "jti": null, "iss": true,
                "scope": ["arr"], "azp": [], "iat": 0,
            }),
            // Past sixteen bits of text: kept as JSON values, still read back.
            serde_json::json!({
                "sub": "x".repeat(70_000), "scope": "a b", "aud": ["y".repeat(40_000), "z"],
                "iss": "i", "exp": 5,
            }),
            // The own buffer filled by a long subject before the times: they are kept as JSON
            // values and must still read as numbers.
            serde_json::json!({
                "sub": "x".repeat(32_760), "exp": 1_800_000_000, "iat": 1_700_000_000,
                "iss": "i",
            }),
            // Items kept inline (four in all) and on the heap (more).
            serde_json::json!({"aud": ["a", "b"], "permissions": ["p", "q"], "iss": "i"}),
            serde_json::json!({"aud": ["a", "b", "c", "d"], "iss": "i"}),
            serde_json::json!({"aud": ["a", "b", "c"], "scp": ["s", "t"], "iss": "i"}),
            serde_json::json!({
                "aud": ["a"], "scp": [], "permissions": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
            }),
            // An array whose first item fits and whose second does not, then more arrays.
            serde_json::json!({
                "aud": ["z", "y".repeat(40_000)], "scope": "a b", "iss": "i",
                "permissions": ["p", "q"], "exp": 5,
            }),
        ];
        let mut texts: Vec<Vec<u8>> = documents
            .iter()
            .map(|document| serde_json::to_vec(document).unwrap())
            .collect();
        // Numbers as issuers may write them, and escapes: kept as written, read as parsed.
        texts.push(
            br#"{"exp":1.5e9,"iat":-0,"nbf":1E2,"aud":["a\u0062","\\"],"sub":"\ud83d\ude00"}"#
                .to_vec(),
        );
        for text in texts {
            let document = Value::Object(crate::internal::json::parse_object(&text).unwrap());
            let object = document.as_object().unwrap();
            let compact = CompactClaims::scan(&text, Some("kid-1"), None).unwrap().0;
            for name in CAPTURED {
                let claim = compact.get(name);
                assert_eq!(claim.to_value().as_ref(), object.get(name), "{name}");
                assert_eq!(
                    claim.is_present() && claim.equals(&object[name]),
                    object.contains_key(name),
                    "{name}"
                );
                assert!(!claim.equals(&Value::from("other")), "{name}");
                assert_eq!(
                    compact.value(name).map(std::borrow::Cow::into_owned),
                    object.get(name).cloned(),
                    "{name}"
                );
                assert_eq!(
                    compact.text(name),
                    object.claim(name).and_then(Value::as_str)
                );
                assert!(compact.items(name).eq(object.items(name)), "{name}");
                assert_eq!(
                    compact.number(name),
                    object.get(name).and_then(Value::as_f64),
                    "{name}"
                );
            }
            let map = compact.to_map();
            let names: Vec<&String> = map.keys().collect();
            assert_eq!(names, object.keys().collect::<Vec<_>>(), "document order");
            assert_eq!(&compact.to_map(), object);
            assert_eq!(compact.kid(), Some("kid-1"));
            assert_eq!(compact.typ(), None);
            assert!(
                crate::scope::granted(object).eq(crate::scope::granted(&CapturedView(&compact)))
            );
        }
    }
}
