//! Strict, unpadded base64url (RFC 4648 §5) as JWS compact serialization requires.
//!
//! Only the 64 characters of the URL-safe alphabet are accepted: no padding, no whitespace, no
//! standard-alphabet `+`/`/`. The unused low bits of the last character must be zero, so every byte
//! string has exactly one accepted encoding (a flipped trailing bit can never yield an "equivalent"
//! token that still verifies).

use thiserror::Error;

/// Why a base64url segment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Base64UrlError {
    /// A byte outside the base64url alphabet (this includes `=` padding, `+`, `/` and whitespace).
    #[error("character {byte:#04x} at offset {offset} is not in the unpadded base64url alphabet")]
    InvalidCharacter {
        /// The offending byte.
        byte: u8,
        /// Its offset within the segment.
        offset: usize,
    },
    /// A length of 4k+1 characters cannot encode whole bytes.
    #[error("length {0} is not a valid unpadded base64url length")]
    InvalidLength(usize),
    /// The last character carries non-zero bits that encode nothing (non-canonical encoding).
    #[error("the final character has non-zero unused bits (non-canonical encoding)")]
    NonCanonical,
    /// The decoded value does not fit the caller's buffer.
    #[error("decoded value is longer than {0} bytes")]
    TooLong(usize),
}

const INVALID: u8 = 0xFF;

const DECODE_TABLE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = ALPHABET;
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// What an invalid character contributes to a 24-bit group: bits no valid group can have.
const INVALID_GROUP: u32 = 0xFF00_0000;

/// A decode table for the character at position `position` (0..4) of a four-character quantum:
/// its sextet's bits placed where they land in the three bytes the quantum decodes to, read
/// little-endian (the first byte lowest), so the OR of a quantum's four entries is its three
/// bytes, ready to store; an invalid character maps to a word with its top byte set, which no
/// valid quantum has.
const fn placed_table(position: u32) -> [u32; 256] {
    let mut table = [INVALID_GROUP; 256];
    let mut i = 0;
    while i < 64 {
        // The bits as the big-endian 24-bit group, then its three bytes in store order.
        let group = (i as u32) << (18 - 6 * position);
        table[ALPHABET[i] as usize] = (group >> 16) | (group & 0x00FF00) | ((group & 0xFF) << 16);
        i += 1;
    }
    table
}

/// [`placed_table`] for each position of a quantum (4 KiB in all).
const PLACED: [[u32; 256]; 4] = [
    placed_table(0),
    placed_table(1),
    placed_table(2),
    placed_table(3),
];

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Number of bytes that `encoded_len` base64url characters decode to, or an error for 4k+1.
pub fn decoded_len(encoded_len: usize) -> Result<usize, Base64UrlError> {
    match encoded_len % 4 {
        1 => Err(Base64UrlError::InvalidLength(encoded_len)),
        0 => Ok(encoded_len / 4 * 3),
        rem => Ok(encoded_len / 4 * 3 + rem - 1),
    }
}

/// Decodes `input` into a new vector.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, Base64UrlError> {
    let len = decoded_len(input.len())?;
    let mut out = vec![0u8; len];
    decode_into(input, &mut out)?;
    Ok(out)
}

/// Decodes `input` into the front of `out`, returning the number of bytes written.
pub fn decode_into(input: &[u8], out: &mut [u8]) -> Result<usize, Base64UrlError> {
    let len = decoded_len(input.len())?;
    if len > out.len() {
        return Err(Base64UrlError::TooLong(out.len()));
    }
    let sextet = |offset: usize| -> Result<u32, Base64UrlError> {
        let byte = input[offset];
        match DECODE_TABLE[byte as usize] {
            INVALID => Err(Base64UrlError::InvalidCharacter { byte, offset }),
            value => Ok(u32::from(value)),
        }
    };
    let full_chunks = input.len() / 4;
    // Fast path: four lookups per four characters in tables that hold each sextet already
    // placed in the quantum's three bytes (an invalid character maps to a word with its top
    // byte set), OR-ed into one word; the OR of every quantum is checked once at the end and the
    // offending character is only located on failure.
    let mut invalid = 0u32;
    let group = |chars: &[u8]| -> u32 {
        PLACED[0][usize::from(chars[0])]
            | PLACED[1][usize::from(chars[1])]
            | PLACED[2][usize::from(chars[2])]
            | PLACED[3][usize::from(chars[3])]
    };
    // Sixteen characters into twelve bytes per round of the main loop, then eight into six at
    // most once.
    let mut sixteens = input[..full_chunks * 4].chunks_exact(16);
    let mut twelves = out[..full_chunks * 3].chunks_exact_mut(12);
    for (chars, bytes) in (&mut sixteens).zip(&mut twelves) {
        let (a, b) = (group(&chars[..4]), group(&chars[4..8]));
        let (c, d) = (group(&chars[8..12]), group(&chars[12..]));
        invalid |= a | b | c | d;
        // The twelve bytes as a 64-bit and a 32-bit little-endian store (an invalid quantum's
        // top byte garbles the output, which is then refused).
        let low = u64::from(a) | u64::from(b) << 24 | u64::from(c) << 48;
        let high = c >> 16 | d << 8;
        bytes[..8].copy_from_slice(&low.to_le_bytes());
        bytes[8..].copy_from_slice(&high.to_le_bytes());
    }
    let mut eights = sixteens.remainder().chunks_exact(8);
    let mut sixes = twelves.into_remainder().chunks_exact_mut(6);
    for (chars, bytes) in (&mut eights).zip(&mut sixes) {
        let (first, second) = (group(&chars[..4]), group(&chars[4..]));
        invalid |= first | second;
        let word = u64::from(first) | u64::from(second) << 24;
        bytes.copy_from_slice(&word.to_le_bytes()[..6]);
    }
    let tail = eights.remainder();
    if tail.len() == 4 {
        let word = group(tail);
        invalid |= word;
        if let [x, y, z] = sixes.into_remainder() {
            *x = word as u8;
            *y = (word >> 8) as u8;
            *z = (word >> 16) as u8;
        }
    }
    if invalid & INVALID_GROUP != 0 {
        for offset in 0..full_chunks * 4 {
            sextet(offset)?;
        }
    }
    let mut written = full_chunks * 3;
    let at = full_chunks * 4;
    match input.len() - at {
        2 => {
            let (a, b) = (sextet(at)?, sextet(at + 1)?);
            if b & 0x0F != 0 {
                return Err(Base64UrlError::NonCanonical);
            }
            out[written] = (a << 2 | b >> 4) as u8;
            written += 1;
        }
        3 => {
            let (a, b, c) = (sextet(at)?, sextet(at + 1)?, sextet(at + 2)?);
            if c & 0x03 != 0 {
                return Err(Base64UrlError::NonCanonical);
            }
            let word = a << 12 | b << 6 | c;
            out[written] = (word >> 10) as u8;
            out[written + 1] = (word >> 2) as u8;
            written += 2;
        }
        _ => {}
    }
    Ok(written)
}

/// Decodes padded standard base64 (RFC 4648 §4, as in `x5c`), strictly: the length must be
/// a multiple of four and the URL-safe characters `-` and `_` are refused.
pub fn decode_standard(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    let padding = text.len() - trimmed.len();
    if padding > 2 || (text.len() % 4 != 0) {
        return None;
    }
    let translated: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => Some('-'),
            '/' => Some('_'),
            '-' | '_' => None,
            c => Some(c),
        })
        .collect::<Option<String>>()?;
    decode(translated.as_bytes()).ok()
}

/// Encodes `input` as unpadded base64url.
pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let word = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (word >> (18 - 6 * i)) & 0x3F;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = encode(&data[..len]);
            assert_eq!(decode(encoded.as_bytes()).as_deref(), Ok(&data[..len]));
        }
    }

    #[test]
    fn matches_rfc4648_examples() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"Zm9vYg"), Ok(b"foob".to_vec()));
    }

    #[test]
    fn rejects_padding_and_foreign_characters() {
        assert_eq!(
            decode(b"Zm8="),
            Err(Base64UrlError::InvalidCharacter {
                byte: b'=',
                offset: 3
            })
        );
        assert!(matches!(
            decode(b"+/8"),
            Err(Base64UrlError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            decode(b"Zm 9"),
            Err(Base64UrlError::InvalidCharacter { .. })
        ));
        assert_eq!(decode(b"Zm9vY"), Err(Base64UrlError::InvalidLength(5)));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "Zm9" is canonical for "fo"; "Zm-" sets unused bits.
        assert!(decode(b"Zm8").is_ok());
        assert_eq!(decode(b"Zm9"), Err(Base64UrlError::NonCanonical));
        assert_eq!(decode(b"AB"), Err(Base64UrlError::NonCanonical));
        assert!(decode(b"AA").is_ok());
    }

    #[test]
    fn refuses_output_that_does_not_fit() {
        let mut small = [0u8; 2];
        assert_eq!(
            decode_into(b"Zm9v", &mut small),
            Err(Base64UrlError::TooLong(2))
        );
    }

    /// Decodes one character at a time: the plain reading of RFC 4648 §5 that the fast path
    /// must agree with, error for error.
    fn reference_decode(input: &[u8]) -> Result<Vec<u8>, Base64UrlError> {
        decoded_len(input.len())?;
        let mut values = Vec::with_capacity(input.len());
        for (offset, &byte) in input.iter().enumerate() {
            match ALPHABET.iter().position(|&c| c == byte) {
                Some(value) => values.push(value as u32),
                None => return Err(Base64UrlError::InvalidCharacter { byte, offset }),
            }
        }
        let mut out = Vec::new();
        for quantum in values.chunks(4) {
            let mut word = 0u32;
            for (i, value) in quantum.iter().enumerate() {
                word |= value << (18 - 6 * i);
            }
            let bytes = quantum.len() - 1;
            if bytes < 3 && word & (0xFF_FFFF >> (8 * bytes)) != 0 {
                return Err(Base64UrlError::NonCanonical);
            }
            out.extend_from_slice(&word.to_be_bytes()[1..=bytes]);
        }
        Ok(out)
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference_decoder(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            flip in proptest::option::of((0usize..300, proptest::num::u8::ANY)),
        ) {
            let mut encoded = encode(&data).into_bytes();
            if let Some((at, byte)) = flip {
                if !encoded.is_empty() {
                    let at = at % encoded.len();
                    encoded[at] = byte;
                }
            }
            proptest::prop_assert_eq!(decode(&encoded), reference_decode(&encoded));
        }
    }

    #[test]
    fn finds_the_first_invalid_character_anywhere() {
        let encoded = encode(&[0xA5; 48]).into_bytes();
        for at in 0..encoded.len() {
            for byte in [b'=', b'+', b'/', b' ', 0x00, 0x80, 0xFF] {
                let mut bad = encoded.clone();
                bad[at] = byte;
                assert_eq!(
                    decode(&bad),
                    Err(Base64UrlError::InvalidCharacter { byte, offset: at })
                );
            }
        }
    }

    #[test]
    fn standard_base64_is_strict() {
        assert_eq!(decode_standard("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(decode_standard("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_standard("Zm8"), None);
        assert_eq!(decode_standard("-_8="), None);
    }
}
