//! gRPC's message framing over HTTP/2 for unary calls: the request body read as exactly one
//! length-prefixed message, the answer's message framed, and gRPC statuses as headers.
//!
//! A unary request body is one message: a compressed flag byte, a 4-byte big-endian length,
//! then the message. [`UnaryBody`] takes the body's DATA frames as they come and refuses as
//! early as it can: a compressed message (jwtgate accepts only `identity`), a flag that is
//! neither 0 nor 1, a length over the limit (before the message arrives), and any byte after
//! the message (a second message, or garbage). [`UnaryBody::finish`] refuses a body that ended
//! before its message did.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Bytes before each message: the compressed flag and the length.
pub const PREFIX_LEN: usize = 5;

/// gRPC status codes (`google.rpc.Code`) the transport answers with.
pub mod status {
    /// The call succeeded (its answer is in the message).
    pub const OK: u8 = 0;
    /// The message could not be read.
    pub const INVALID_ARGUMENT: u8 = 3;
    /// The request body did not arrive in time.
    pub const DEADLINE_EXCEEDED: u8 = 4;
    /// The health of an unknown service was asked for.
    pub const NOT_FOUND: u8 = 5;
    /// The message is larger than the limit.
    pub const RESOURCE_EXHAUSTED: u8 = 8;
    /// An unknown method, or a compressed message.
    pub const UNIMPLEMENTED: u8 = 12;
    /// The request is not a well-formed gRPC call.
    pub const INTERNAL: u8 = 13;
    /// The server is over its connection limit.
    pub const UNAVAILABLE: u8 = 14;
}

/// Why a unary request body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The compressed flag is set: only `identity` is accepted.
    #[error("compressed messages are not accepted (grpc-encoding identity only)")]
    Compressed,
    /// A compressed flag other than 0 or 1.
    #[error("invalid compressed flag {0} in the message prefix")]
    BadFlag(u8),
    /// The message is longer than the limit.
    #[error("message of {length} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The length the prefix announces.
        length: u64,
        /// The largest message accepted.
        limit: usize,
    },
    /// The body ended before its message did (an empty body included).
    #[error("the request body ended inside its message (or carried none)")]
    Truncated,
    /// Bytes after the one message of a unary call.
    #[error("the request body carries more than one message")]
    TrailingBytes,
}

impl FrameError {
    /// The gRPC status this refusal is answered with.
    pub fn status(&self) -> u8 {
        match self {
            FrameError::Compressed => status::UNIMPLEMENTED,
            FrameError::TooLarge { .. } => status::RESOURCE_EXHAUSTED,
            FrameError::BadFlag(_) | FrameError::Truncated | FrameError::TrailingBytes => {
                status::INTERNAL
            }
        }
    }
}

/// The body of a unary call as it arrives, holding at most its prefix and a message within
/// the limit (see the module docs).
#[derive(Debug)]
pub struct UnaryBody {
    received: Received,
    limit: usize,
}

/// The bytes received so far: a body in one DATA frame is kept as it came, without a copy.
#[derive(Debug)]
enum Received {
    Nothing,
    One(Bytes),
    Several(BytesMut),
}

impl UnaryBody {
    /// An empty body whose message may be at most `limit` bytes.
    pub fn new(limit: usize) -> UnaryBody {
        UnaryBody {
            received: Received::Nothing,
            limit,
        }
    }

    /// The bytes received so far.
    fn bytes(&self) -> &[u8] {
        match &self.received {
            Received::Nothing => &[],
            Received::One(bytes) => bytes,
            Received::Several(bytes) => bytes,
        }
    }

    /// Adds one DATA frame's bytes; refuses as soon as the bytes so far cannot be one message
    /// within the limit.
    pub fn push(&mut self, chunk: Bytes) -> Result<(), FrameError> {
        if chunk.is_empty() {
            return Ok(());
        }
        // Nothing beyond one prefix and one message is ever stored: the check runs before the
        // copy, on the lengths.
        let total = self.bytes().len() + chunk.len();
        if total >= PREFIX_LEN {
            let mut prefix = [0u8; PREFIX_LEN];
            let have = self.bytes();
            let from_have = have.len().min(PREFIX_LEN);
            prefix[..from_have].copy_from_slice(&have[..from_have]);
            prefix[from_have..].copy_from_slice(&chunk[..PREFIX_LEN - from_have]);
            let length = self.message_length(&prefix)?;
            if total as u64 > PREFIX_LEN as u64 + length {
                return Err(FrameError::TrailingBytes);
            }
        }
        self.received = match std::mem::replace(&mut self.received, Received::Nothing) {
            Received::Nothing => Received::One(chunk),
            Received::One(first) => {
                let mut joined = BytesMut::with_capacity(total);
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
                Received::Several(joined)
            }
            Received::Several(mut joined) => {
                joined.extend_from_slice(&chunk);
                Received::Several(joined)
            }
        };
        Ok(())
    }

    /// The message's length from a complete prefix, refused when flagged compressed or over
    /// the limit.
    fn message_length(&self, prefix: &[u8; PREFIX_LEN]) -> Result<u64, FrameError> {
        match prefix[0] {
            0 => {}
            1 => return Err(FrameError::Compressed),
            flag => return Err(FrameError::BadFlag(flag)),
        }
        let length = u64::from(u32::from_be_bytes([
            prefix[1], prefix[2], prefix[3], prefix[4],
        ]));
        if length > self.limit as u64 {
            return Err(FrameError::TooLarge {
                length,
                limit: self.limit,
            });
        }
        Ok(length)
    }

    /// The one message, once the body has ended.
    pub fn finish(self) -> Result<Bytes, FrameError> {
        let bytes = match self.received {
            Received::Nothing => return Err(FrameError::Truncated),
            Received::One(bytes) => bytes,
            Received::Several(bytes) => bytes.freeze(),
        };
        if bytes.len() < PREFIX_LEN {
            return Err(FrameError::Truncated);
        }
        // `push` checked the prefix and that nothing follows the message.
        let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() != PREFIX_LEN + length {
            return Err(FrameError::Truncated);
        }
        Ok(bytes.slice(PREFIX_LEN..))
    }
}

/// `message` framed as one uncompressed gRPC message.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut framed = BytesMut::with_capacity(PREFIX_LEN + length);
    framed.put_u8(0);
    // A message jwtgate builds is far below 4 GiB; the length saturates rather than wraps.
    framed.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    // Encoding into a buffer of `encoded_len` bytes cannot run out of room; a failure leaves a
    // short message, which the client refuses.
    let _ = message.encode(&mut framed);
    framed.freeze()
}

/// The trailers of a call ending with `code`, and `message` (percent-encoded as gRPC says)
/// when not empty.
pub fn status_headers(code: u8, message: &str) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(2);
    let code = match code {
        status::OK => HeaderValue::from_static("0"),
        other => HeaderValue::from(u16::from(other)),
    };
    headers.insert(HeaderName::from_static("grpc-status"), code);
    if !message.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
            headers.insert(HeaderName::from_static("grpc-message"), value);
        }
    }
    headers
}

/// `text` with every byte outside printable ASCII, and `%`, percent-encoded (the
/// `grpc-message` encoding).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut body = vec![flag];
        body.extend((message.len() as u32).to_be_bytes());
        body.extend(message);
        body
    }

    /// `body` pushed in chunks of `size` bytes, then finished.
    fn read(body: &[u8], size: usize, limit: usize) -> Result<Bytes, FrameError> {
        let mut unary = UnaryBody::new(limit);
        for chunk in body.chunks(size) {
            unary.push(Bytes::copy_from_slice(chunk))?;
        }
        unary.finish()
    }

    #[test]
    fn one_message_in_any_split_is_read() {
        let body = framed(0, b"hello, check");
        for size in 1..=body.len() {
            assert_eq!(
                read(&body, size, 64).unwrap(),
                &b"hello, check"[..],
                "{size}"
            );
        }
        assert_eq!(read(&framed(0, b""), 5, 64).unwrap(), &b""[..]);
    }

    #[test]
    fn every_malformed_body_is_refused_in_any_split() {
        let mut trailing = framed(0, b"abc");
        trailing.push(0);
        let mut two = framed(0, b"abc");
        two.extend(framed(0, b"d"));
        let cases: [(&[u8], FrameError); 7] = [
            (&[], FrameError::Truncated),
            (&[0, 0, 0], FrameError::Truncated),
            (&framed(0, b"abc")[..6], FrameError::Truncated),
            (&framed(1, b"abc"), FrameError::Compressed),
            (&framed(7, b"abc"), FrameError::BadFlag(7)),
            (&trailing, FrameError::TrailingBytes),
            (&two, FrameError::TrailingBytes),
        ];
        for (body, expected) in cases {
            for size in 1..=body.len().max(1) {
                assert_eq!(
                    read(body, size, 64),
                    Err(expected.clone()),
                    "{body:?} {size}"
                );
            }
        }
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_prefix() {
        let mut unary = UnaryBody::new(16);
        // The prefix alone announces 4 GiB - 1: refused before any of it is stored.
        assert_eq!(
            unary.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff])),
            Err(FrameError::TooLarge {
                length: u64::from(u32::MAX),
                limit: 16
            })
        );
        assert!(read(&framed(0, &[0; 16]), 3, 16).is_ok());
        assert_eq!(
            read(&framed(0, &[0; 17]), 3, 16),
            Err(FrameError::TooLarge {
                length: 17,
                limit: 16
            })
        );
    }

    #[test]
    fn frames_and_statuses_are_encoded_as_grpc_says() {
        let health = tonic_health::pb::HealthCheckResponse { status: 1 };
        let framed = frame(&health);
        assert_eq!(&framed[..], &[0, 0, 0, 0, 2, 0x08, 0x01]);
        let headers = status_headers(status::UNIMPLEMENTED, "no /x ünknown 100%");
        assert_eq!(headers["grpc-status"], "12");
        assert_eq!(headers["grpc-message"], "no /x %C3%BCnknown 100%25");
        assert!(!status_headers(status::OK, "").contains_key("grpc-message"));
    }
}
