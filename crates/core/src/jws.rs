//! JWS compact serialization (RFC 7515 §7.1), parsed strictly and without trusting anything yet.
//!
//! [`CompactJws::parse`] checks the size limit before decoding anything, splits exactly three
//! segments, decodes the header as canonical base64url into a strict JSON object and reads the
//! parameters jwtgate acts on. The payload and signature stay encoded until they are needed, so a
//! token that fails early costs almost nothing.

use crate::alg::Algorithm;
use crate::internal::base64url::{self, Base64UrlError};
use crate::internal::json::{self, JsonError};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// Default maximum size of a whole token: 64 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 64 * 1024;

/// Largest signature jwtgate can meet (RSA 8192), decoded.
pub const MAX_SIGNATURE_LEN: usize = 1024;

/// Which of the three segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The protected header.
    Header,
    /// The payload (claims).
    Payload,
    /// The signature.
    Signature,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// Structural problems: the input is not a well-formed JWS.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwsError {
    /// Nothing at all.
    #[error("the token is empty")]
    Empty,
    /// Longer than the configured limit (checked before decoding).
    #[error("the token is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Token length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No `.` at all: an opaque access token, not a JWT.
    #[error("the token is opaque (no '.' separators): not a JWT")]
    Opaque,
    /// Five segments: a JWE (encrypted token), which jwtgate cannot and should not verify.
    #[error("the token is a JWE (encrypted, five segments), not a signed JWT")]
    Jwe {
        /// The JWE header's `alg` and `enc`, when they could be read.
        alg_enc: Option<(String, String)>,
    },
    /// Not three segments.
    #[error("the token has {0} segments; a signed JWT has exactly three")]
    SegmentCount(usize),
    /// An empty header or signature segment.
    #[error("the {0} segment is empty")]
    EmptySegment(Segment),
    /// Bytes outside printable ASCII (JWS compact is base64url and dots only).
    #[error("the token contains a byte ({0:#04x}) that cannot appear in a JWS")]
    NotAscii(u8),
    /// A segment is not canonical unpadded base64url.
    #[error("the {segment} segment is not valid base64url: {error}")]
    Base64 {
        /// Which segment.
        segment: Segment,
        /// What was wrong.
        error: Base64UrlError,
    },
    /// The header or payload is not a strict JSON object.
    #[error("the {segment} is not a valid JSON object: {error}")]
    Json {
        /// Which segment.
        segment: Segment,
        /// What was wrong.
        error: JsonError,
    },
    /// The header breaks a rule of jwtgate's policy.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// Header parameters that are present but not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// No `alg`.
    #[error("the header has no \"alg\"")]
    MissingAlg,
    /// `alg` is not a string.
    #[error("the header's \"alg\" is not a string")]
    AlgNotString,
    /// `alg` is `none` in any spelling: unsecured JWS is never accepted.
    #[error("the header's \"alg\" is {0:?}: unsigned tokens are never accepted")]
    AlgNone(String),
    /// `alg` names an algorithm jwtgate does not implement.
    #[error("the header's \"alg\" {0:?} is not a supported algorithm")]
    UnsupportedAlg(String),
    /// `kid` is present but not a string.
    #[error("the header's \"kid\" is not a string")]
    KidNotString,
    /// `crit` is present: jwtgate understands no extensions, so it must refuse (RFC 7515 §4.1.11).
    #[error("the header has \"crit\"; no critical extensions are understood")]
    Crit,
    /// `b64` is present (RFC 7797 unencoded payloads are not accepted).
    #[error("the header has \"b64\"; unencoded payloads (RFC 7797) are not accepted")]
    B64,
    /// `typ` is not a string.
    #[error("the header's \"typ\" is not a string")]
    TypNotString,
    /// `typ` names another kind of token.
    #[error("the header's \"typ\" is {0:?}, which is not an access token type")]
    WrongTyp(String),
}

/// The protected header, with the parameters jwtgate acts on already checked.
///
/// `jwk`, `jku`, `x5u` and `x5c` are deliberately not exposed as fields: keys never come from the
/// token. Every parameter is available for display through [`Header::raw`], built on first use.
#[derive(Debug, Clone)]
pub struct Header {
    /// The algorithm, one jwtgate implements (not yet checked against a policy's allowlist).
    pub alg: Algorithm,
    /// The key id, when present.
    pub kid: Option<String>,
    /// The declared type, when present; one of the accepted token types.
    pub typ: Option<String>,
    /// The decoded header JSON (already validated), for [`Header::raw`].
    json: Box<[u8]>,
    raw: OnceLock<Map<String, Value>>,
}

impl PartialEq for Header {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg
            && self.kid == other.kid
            && self.typ == other.typ
            && self.raw() == other.raw()
    }
}

impl Header {
    /// True when `typ` declares an RFC 9068 access token (`at+jwt` or `application/at+jwt`).
    pub fn is_access_token_type(&self) -> bool {
        self.typ.as_deref().is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ == "at+jwt" || typ == "application/at+jwt"
        })
    }

    /// Every header parameter (for display and diagnostics).
    pub fn raw(&self) -> &Map<String, Value> {
        self.raw
            .get_or_init(|| json::parse_object(&self.json).unwrap_or_default())
    }

    /// A header with just these parameters (for tests and key-selection callers).
    pub fn new(alg: Algorithm, kid: Option<String>, typ: Option<String>) -> Header {
        let mut raw = Map::new();
        raw.insert("alg".into(), Value::from(alg.name()));
        if let Some(kid) = &kid {
            raw.insert("kid".into(), Value::from(kid.as_str()));
        }
        if let Some(typ) = &typ {
            raw.insert("typ".into(), Value::from(typ.as_str()));
        }
        Header {
            alg,
            kid,
            typ,
            json: Box::default(),
            raw: OnceLock::from(raw),
        }
    }
}

/// Accepted `typ` values, compared case-insensitively.
const ACCEPTED_TYPES: [&str; 4] = ["at+jwt", "application/at+jwt", "jwt", "application/jwt"];

/// The header parameters jwtgate acts on, in the order [`check_parameters`] takes them.
const HEADER_PARAMETERS: [&str; 5] = ["alg", "kid", "typ", "crit", "b64"];

type Checked = (Algorithm, Option<String>, Option<String>);

/// Checks the parameters, taking the strings out of the values (no copies on the request path).
fn check_parameters(values: [Option<Value>; 5]) -> Result<Checked, HeaderError> {
    let [alg, kid, typ, crit, b64] = values;
    let alg = match alg {
        None => return Err(HeaderError::MissingAlg),
        Some(Value::String(name)) => {
            if name.eq_ignore_ascii_case("none") {
                return Err(HeaderError::AlgNone(name));
            }
            match name.parse::<Algorithm>() {
                Ok(alg) => alg,
                Err(_) => return Err(HeaderError::UnsupportedAlg(name)),
            }
        }
        Some(_) => return Err(HeaderError::AlgNotString),
    };
    if crit.is_some() {
        return Err(HeaderError::Crit);
    }
    if b64.is_some() {
        return Err(HeaderError::B64);
    }
    let kid = match kid {
        None => None,
        Some(Value::String(kid)) => Some(kid),
        Some(_) => return Err(HeaderError::KidNotString),
    };
    let typ = match typ {
        None => None,
        Some(Value::String(typ)) => {
            if !ACCEPTED_TYPES.iter().any(|t| t.eq_ignore_ascii_case(&typ)) {
                return Err(HeaderError::WrongTyp(typ));
            }
            Some(typ)
        }
        Some(_) => return Err(HeaderError::TypNotString),
    };
    Ok((alg, kid, typ))
}

impl Header {
    /// Reads and checks the parameters of a decoded header object.
    pub fn from_object(raw: Map<String, Value>) -> Result<Header, HeaderError> {
        let (alg, kid, typ) =
            check_parameters(HEADER_PARAMETERS.map(|name| raw.get(name).cloned()))?;
        Ok(Header {
            alg,
            kid,
            typ,
            json: Box::default(),
            raw: OnceLock::from(raw),
        })
    }

    /// Validates decoded header JSON strictly and checks its parameters, without building the
    /// parameter map (that happens only if [`Header::raw`] is called).
    pub fn parse(json_bytes: Vec<u8>) -> Result<Header, JwsError> {
        let mut slots: [Option<Value>; 5] = Default::default();
        let slot_of = |name: &str| HEADER_PARAMETERS.iter().position(|p| *p == name);
        json::scan_object(&json_bytes, &slot_of, &mut slots).map_err(|error| JwsError::Json {
            segment: Segment::Header,
            error,
        })?;
        let (alg, kid, typ) = check_parameters(slots)?;
        Ok(Header {
            alg,
            kid,
            typ,
            json: json_bytes.into_boxed_slice(),
            raw: OnceLock::new(),
        })
    }
}

/// The last few headers this thread parsed, by their exact base64url text. Every token one key signs
/// carries the same header segment, so most tokens find theirs here and skip decoding and
/// scanning it. An entry is what [`Header::parse`] made of exactly those bytes, so a hit is the
/// header a fresh parse would give; only headers that parsed are kept, and only short ones.
struct RecentHeaders {
    /// Each segment and its header, shared with the tokens that carry it (a hit copies nothing).
    entries: Vec<(Box<[u8]>, Arc<Header>)>,
    /// The entry replaced next.
    next: usize,
}

impl RecentHeaders {
    /// How many headers are kept.
    const ENTRIES: usize = 8;
    /// The longest header segment kept (a real one is under 200 bytes).
    const MAX_LEN: usize = 256;

    /// Runs `read` on this thread's table (`None` when it is in use or the thread is ending).
    /// Per thread, so a lookup takes no lock: each thread parses a header once.
    fn with<T>(read: impl FnOnce(&mut RecentHeaders) -> Option<T>) -> Option<T> {
        thread_local! {
            static TABLE: RefCell<RecentHeaders> = const {
                RefCell::new(RecentHeaders {
                    entries: Vec::new(),
                    next: 0,
                })
            };
        }
        TABLE
            .try_with(|table| read(&mut *table.try_borrow_mut().ok()?))
            .ok()
            .flatten()
    }

    /// The header parsed from exactly `segment`, when kept (shared: a hit copies nothing).
    fn find(segment: &[u8]) -> Option<Arc<Header>> {
        if segment.len() > Self::MAX_LEN {
            return None;
        }
        Self::with(|table| {
            table
                .entries
                .iter()
                .find(|(kept, _)| **kept == *segment)
                .map(|(_, header)| Arc::clone(header))
        })
    }

    /// The header kept for the segment `token` starts with, followed by a `.`, and that
    /// segment's length (at most one entry can match: a kept segment holds no `.`).
    fn find_leading(token: &[u8]) -> Option<(usize, Arc<Header>)> {
        Self::with(|table| {
            table
                .entries
                .iter()
                .find(|(kept, _)| token.get(kept.len()) == Some(&b'.') && token.starts_with(kept))
                .map(|(kept, header)| (kept.len(), Arc::clone(header)))
        })
    }

    /// Keeps `header`, parsed from `segment`.
    fn remember(segment: &[u8], header: &Arc<Header>) {
        if segment.len() > Self::MAX_LEN {
            return;
        }
        let entry = (Box::from(segment), Arc::clone(header));
        Self::with(|table| {
            let next = table.next;
            match table.entries.get_mut(next) {
                Some(slot) => *slot = entry,
                None => table.entries.push(entry),
            }
            table.next = (next + 1) % Self::ENTRIES;
            Some(())
        });
    }
}

/// A parsed but unverified JWS: the header is decoded and checked, nothing else is trusted.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    /// Shared with the recent-header table when found there (a hit copies nothing).
    header: Arc<Header>,
    signing_input: &'a [u8],
    payload: &'a [u8],
    signature: &'a [u8],
}

impl<'a> CompactJws<'a> {
    /// Parses `token` (with no `Bearer ` prefix), refusing anything longer than `max_len` bytes
    /// before decoding it.
    pub fn parse(token: &'a [u8], max_len: usize) -> Result<CompactJws<'a>, JwsError> {
        if token.is_empty() {
            return Err(JwsError::Empty);
        }
        if token.len() > max_len {
            return Err(JwsError::TooLarge {
                len: token.len(),
                max: max_len,
            });
        }
        let (printable, count, dots) = scan(token);
        if !printable {
            let byte = token
                .iter()
                .copied()
                .find(|&byte| !is_token_byte(byte))
                .unwrap_or_default();
            return Err(JwsError::NotAscii(byte));
        }
        match count {
            0 => return Err(JwsError::Opaque),
            2 => {}
            4 => {
                return Err(JwsError::Jwe {
                    alg_enc: jwe_alg_enc(token),
                })
            }
            _ => return Err(JwsError::SegmentCount(count + 1)),
        }
        let header_b64 = &token[..dots[0]];
        let payload = &token[dots[0] + 1..dots[1]];
        let signature = &token[dots[1] + 1..];
        if header_b64.is_empty() {
            return Err(JwsError::EmptySegment(Segment::Header));
        }
        // The header is read first so an unsigned `alg: none` token is named as such.
        let header = match RecentHeaders::find(header_b64) {
            Some(header) => header,
            None => {
                let header_json =
                    base64url::decode(header_b64).map_err(|error| JwsError::Base64 {
                        segment: Segment::Header,
                        error,
                    })?;
                let header = Arc::new(Header::parse(header_json)?);
                RecentHeaders::remember(header_b64, &header);
                header
            }
        };
        if signature.is_empty() {
            return Err(JwsError::EmptySegment(Segment::Signature));
        }
        Ok(CompactJws {
            header,
            signing_input: &token[..dots[1]],
            payload,
            signature,
        })
    }

    /// For the verify path ([`crate::Verifier::verify`]): the token cut as
    /// [`CompactJws::parse`] cuts it, without its whole-token pass, when it starts with a
    /// recently parsed header segment and a `.`, and ends with a `.` and a non-empty segment
    /// without one; `None` otherwise (the caller parses).
    ///
    /// The header is the one `parse` gives, and when `parse` accepts the token the segments are
    /// the ones it gives. `parse` also refuses what this does not look at: an unprintable byte
    /// anywhere, a `.` in the payload. Base64url decoding refuses both in the payload and the
    /// signature, so a token this cuts that then passes every check is one `parse` accepts;
    /// a caller that refuses it must refuse it with `parse`'s error when `parse` has one
    /// (it came first), which [`crate::Verifier::verify`] does.
    pub(crate) fn parse_after_recent_header(
        token: &'a [u8],
        max_len: usize,
    ) -> Option<CompactJws<'a>> {
        if token.len() > max_len {
            return None;
        }
        let (header_len, header) = RecentHeaders::find_leading(token)?;
        let last_dot = memchr::memrchr(b'.', token)?;
        if last_dot <= header_len || last_dot + 1 == token.len() {
            return None;
        }
        Some(CompactJws {
            header,
            signing_input: token.get(..last_dot)?,
            payload: token.get(header_len + 1..last_dot)?,
            signature: token.get(last_dot + 1..)?,
        })
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Consumes the token, returning its header (a copy when the header is shared).
    pub fn into_header(self) -> Header {
        Arc::unwrap_or_clone(self.header)
    }

    /// Consumes the token, returning its header as shared (never a copy).
    pub(crate) fn into_shared_header(self) -> Arc<Header> {
        self.header
    }

    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    pub fn signing_input(&self) -> &'a [u8] {
        self.signing_input
    }

    /// The still-encoded payload segment.
    pub fn payload_b64(&self) -> &'a [u8] {
        self.payload
    }

    /// The still-encoded signature segment.
    pub fn signature_b64(&self) -> &'a [u8] {
        self.signature
    }

    /// Decodes the payload (it may be empty in a JWS; a JWT needs an object).
    pub fn decode_payload(&self) -> Result<Vec<u8>, JwsError> {
        base64url::decode(self.payload).map_err(|error| JwsError::Base64 {
            segment: Segment::Payload,
            error,
        })
    }

    /// Decodes the payload as a strict JSON object, trusting nothing: for choosing a key source
    /// by `iss`, for display and for diagnostics.
    pub fn decode_claims(&self) -> Result<Map<String, Value>, JwsError> {
        let payload = self.decode_payload()?;
        json::parse_object(&payload).map_err(|error| JwsError::Json {
            segment: Segment::Payload,
            error,
        })
    }

    /// Decodes the signature into `buffer`, returning the filled part.
    pub fn decode_signature<'b>(
        &self,
        buffer: &'b mut [u8; MAX_SIGNATURE_LEN],
    ) -> Result<&'b [u8], JwsError> {
        self.decode_signature_into(buffer)
    }

    /// [`CompactJws::decode_signature`] into a buffer of any size (`TooLong` with its size
    /// when the signature does not fit).
    pub(crate) fn decode_signature_into<'b>(
        &self,
        buffer: &'b mut [u8],
    ) -> Result<&'b [u8], JwsError> {
        let len =
            base64url::decode_into(self.signature, buffer).map_err(|error| JwsError::Base64 {
                segment: Segment::Signature,
                error,
            })?;
        Ok(&buffer[..len])
    }
}

/// Printable ASCII (`0x21..0x7F`, which includes `.`).
fn is_token_byte(byte: u8) -> bool {
    byte.wrapping_sub(0x21) < 0x5E
}

/// Whether every byte is printable ASCII, how many `.` there are and where the first two are.
/// The printable check is a branch-free reduction the compiler vectorises; the dots are found
/// with `memchr` (SIMD), so an ordinary token costs a few hundred instructions, not a branch per
/// byte.
fn scan(token: &[u8]) -> (bool, usize, [usize; 2]) {
    let unprintable = token
        .iter()
        .fold(0u8, |acc, &byte| acc | u8::from(!is_token_byte(byte)));
    let mut dots = 0usize;
    let mut positions = [0usize; 2];
    for index in memchr::memchr_iter(b'.', token) {
        if let Some(slot) = positions.get_mut(dots) {
            *slot = index;
        }
        dots += 1;
    }
    (unprintable == 0, dots, positions)
}

/// Best-effort read of a JWE header's `alg` and `enc`, for the error message only.
fn jwe_alg_enc(token: &[u8]) -> Option<(String, String)> {
    let end = token.iter().position(|&b| b == b'.')?;
    let header = json::parse_object(&base64url::decode(&token[..end]).ok()?).ok()?;
    let alg = header.get("alg")?.as_str()?.to_owned();
    let enc = header.get("enc")?.as_str()?.to_owned();
    Some((alg, enc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::base64url::encode;

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            encode(header.as_bytes()),
            encode(payload.as_bytes()),
            sig
        )
    }

    /// A header found among the recent ones is the header its exact bytes parse to: headers
    /// that differ in one parameter, or only in their encoding's text, are never confused, and
    /// more distinct headers than are kept all still parse right.
    #[test]
    fn recent_headers_are_found_by_their_exact_text() {
        let headers: Vec<String> = (0..20)
            .map(|i| format!(r#"{{"alg":"RS256","kid":"k{i}","typ":"JWT"}}"#))
            .chain([
                r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#.to_owned(),
                r#"{"alg":"RS256","kid":"k1"}"#.to_owned(),
                r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#.to_owned(),
                r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#.to_owned(),
            ])
            .collect();
        for round in 0..3 {
            for (i, header) in headers.iter().enumerate() {
                let text = token(header, "{}", "c2ln");
                let parsed = CompactJws::parse(text.as_bytes(), 1 << 16).unwrap();
                let fresh = Header::parse(header.as_bytes().to_vec()).unwrap();
                assert_eq!(parsed.header(), &fresh, "round {round}, header {i}");
                assert_eq!(parsed.header().raw(), fresh.raw());
            }
        }
        // A refused header is never kept: it is refused every time.
        for _ in 0..2 {
            let text = token(r#"{"alg":"none"}"#, "{}", "c2ln");
            assert!(CompactJws::parse(text.as_bytes(), 1 << 16).is_err());
        }
    }

    /// After its header was parsed, a token is cut without the whole-token pass exactly as the
    /// parse cuts it whenever the parse accepts it; what the cut leaves to the decoding (a
    /// foreign byte, a further `.`) the parse refuses; structural oddities are left to the parse.
    #[test]
    fn a_token_after_a_recent_header_is_cut_as_the_parse_cuts_it() {
        let header = r#"{"alg":"ES256","kid":"cut"}"#;
        let good = token(header, r#"{"a":1}"#, "c2lnbmF0dXJl");
        let parsed = CompactJws::parse(good.as_bytes(), 1 << 16).unwrap();
        let cut = CompactJws::parse_after_recent_header(good.as_bytes(), 1 << 16).unwrap();
        assert!(Arc::ptr_eq(&parsed.header, &cut.header));
        assert_eq!(
            (parsed.signing_input, parsed.payload, parsed.signature),
            (cut.signing_input, cut.payload, cut.signature)
        );
        let (head, rest) = good.split_once('.').unwrap();
        for (text, cut_too) in [
            (format!("{head}.e30.a b"), true),
            (format!("{head}.e\u{7f}30.abc"), true),
            (format!("{head}.e30.x.abc"), true),
            (format!("{head}.e30."), false),
            (format!("{head}.e30"), false),
            (format!("{head}x.{rest}"), false),
            (format!("x{head}.{rest}"), false),
            (format!(" {head}.{rest}"), false),
        ] {
            let cut = CompactJws::parse_after_recent_header(text.as_bytes(), 1 << 16);
            assert_eq!(cut.is_some(), cut_too, "{text}");
            assert!(
                CompactJws::parse(text.as_bytes(), 1 << 16).is_err(),
                "{text}"
            );
        }
        assert!(CompactJws::parse_after_recent_header(good.as_bytes(), good.len() - 1).is_none());
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#, "{}", "AAAA");
        let jws = CompactJws::parse(t.as_bytes(), DEFAULT_MAX_TOKEN_LEN);
        let jws = jws.as_ref().map(CompactJws::header);
        assert_eq!(jws.map(|h| h.alg), Ok(Algorithm::RS256));
        assert_eq!(jws.map(|h| h.kid.clone()), Ok(Some("k1".into())));
        assert_eq!(jws.map(Header::is_access_token_type), Ok(true));
    }

    #[test]
    fn classifies_segment_counts() {
        let parse = |t: &str| CompactJws::parse(t.as_bytes(), DEFAULT_MAX_TOKEN_LEN).err();
        assert_eq!(parse(""), Some(JwsError::Empty));
        assert_eq!(parse("abcdef"), Some(JwsError::Opaque));
        assert_eq!(parse("a.b"), Some(JwsError::SegmentCount(2)));
        assert_eq!(parse("a.b.c.d"), Some(JwsError::SegmentCount(4)));
        let jwe = format!("{}.x.y.z.w", encode(br#"{"alg":"dir","enc":"A256GCM"}"#));
        assert_eq!(
            parse(&jwe),
            Some(JwsError::Jwe {
                alg_enc: Some(("dir".into(), "A256GCM".into()))
            })
        );
        assert_eq!(
            parse(".e30.AAAA"),
            Some(JwsError::EmptySegment(Segment::Header))
        );
        assert_eq!(
            parse(&format!("{}.e30.", encode(br#"{"alg":"RS256"}"#))),
            Some(JwsError::EmptySegment(Segment::Signature))
        );
        assert_eq!(parse("a b.c.d"), Some(JwsError::NotAscii(b' ')));
        // The classic unsigned token is named as unsigned, not as an empty signature.
        assert_eq!(
            parse(&format!("{}.e30.", encode(br#"{"alg":"none"}"#))),
            Some(JwsError::Header(HeaderError::AlgNone("none".into())))
        );
    }

    #[test]
    fn scan_finds_every_dot() {
        let inputs = [
            "a.b.c",
            "abcdefgh.ijklmnop.q",
            ".",
            "........",
            "abcdefghijklmnopq",
            "ab.cdefghijklmnop.qrstuvwxyz.0123",
        ];
        for input in inputs {
            let naive: Vec<usize> = input
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'.')
                .map(|(i, _)| i)
                .collect();
            let (printable, count, positions) = scan(input.as_bytes());
            assert!(printable);
            assert_eq!(count, naive.len(), "{input}");
            for (i, position) in naive.iter().take(2).enumerate() {
                assert_eq!(positions[i], *position, "{input}");
            }
        }
        assert!(!scan(b"abc\x7fdefgh").0);
        assert!(!scan(b"abcdefgh ijk").0);
        // An unprintable byte in any segment, before or after the second dot, and a further
        // dot after it, are all seen.
        for bad in [
            &b"a b.c.d"[..],
            b"a.b c.d",
            b"a.b.c d",
            b"a.b.cd\x80",
            b"a.b.\x00",
            b"a.b.c.d\x7f",
        ] {
            assert!(!scan(bad).0, "{bad:?}");
        }
        assert_eq!(scan(b"a.b.c.d.e").1, 4);
        assert_eq!(scan(b"a.b.c..").1, 4);
        assert!(scan(b"a.b.c").0);
    }

    #[test]
    fn size_limit_is_checked_before_decoding() {
        let long = "x".repeat(100);
        assert_eq!(
            CompactJws::parse(long.as_bytes(), 99).err(),
            Some(JwsError::TooLarge { len: 100, max: 99 })
        );
    }

    #[test]
    fn header_rules() {
        let header = |h: &str| {
            let t = token(h, "{}", "AAAA");
            CompactJws::parse(t.as_bytes(), DEFAULT_MAX_TOKEN_LEN).err()
        };
        let err = |e: HeaderError| Some(JwsError::Header(e));
        assert_eq!(
            header(r#"{"alg":"none"}"#),
            err(HeaderError::AlgNone("none".into()))
        );
        assert_eq!(
            header(r#"{"alg":"nOnE"}"#),
            err(HeaderError::AlgNone("nOnE".into()))
        );
        assert_eq!(
            header(r#"{"alg":"rs256"}"#),
            err(HeaderError::UnsupportedAlg("rs256".into()))
        );
        assert_eq!(header(r#"{"typ":"JWT"}"#), err(HeaderError::MissingAlg));
        assert_eq!(header(r#"{"alg":256}"#), err(HeaderError::AlgNotString));
        assert_eq!(
            header(r#"{"alg":"RS256","kid":7}"#),
            err(HeaderError::KidNotString)
        );
        assert_eq!(
            header(r#"{"alg":"RS256","crit":[]}"#),
            err(HeaderError::Crit)
        );
        assert_eq!(
            header(r#"{"alg":"RS256","b64":true}"#),
            err(HeaderError::B64)
        );
        assert_eq!(
            header(r#"{"alg":"RS256","typ":"dpop+jwt"}"#),
            err(HeaderError::WrongTyp("dpop+jwt".into()))
        );
        assert_eq!(
            header(r#"{"alg":"RS256","typ":1}"#),
            err(HeaderError::TypNotString)
        );
        assert_eq!(
            header(r#"{"alg":"RS256","typ":"Application/JWT","jku":"https://evil"}"#),
            None
        );
        assert!(matches!(
            header(r#"{"alg":"RS256","alg":"none"}"#),
            Some(JwsError::Json {
                error: JsonError::DuplicateMember(_),
                ..
            })
        ));
    }
}
