//! The one boundary to the cryptographic provider (AWS-LC through `aws-lc-rs`).
//!
//! Everything that touches key material or signature arithmetic lives here, so the provider can be
//! audited (or replaced) in one place. Keys are parsed once, when a key set is loaded: each public
//! key holds a provider key object per algorithm it may verify, so the request path does no key
//! parsing, no allocation and no lookup beyond an array index.

use crate::alg::{Algorithm, Curve, KeyFamily};
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm};
use aws_lc_rs::{digest, hmac};
use thiserror::Error;

/// Smallest RSA modulus accepted, in bits (RFC 8725 §3.5, NIST SP 800-131A).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds the cost of one verification).
pub const RSA_MAX_BITS: usize = 8192;

/// Why a public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// RSA modulus shorter than [`RSA_MIN_BITS`] or longer than [`RSA_MAX_BITS`].
    #[error("RSA modulus of {bits} bits is outside {RSA_MIN_BITS}..={RSA_MAX_BITS}")]
    RsaSize {
        /// Modulus size in bits.
        bits: usize,
    },
    /// RSA public exponent below 3, even, or longer than 64 bits.
    #[error("RSA public exponent is unusable (must be odd, at least 3 and at most 64 bits)")]
    RsaExponent,
    /// RSA modulus carries the ROCA fingerprint (CVE-2017-15361).
    #[error(
        "RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key is recoverable"
    )]
    Roca,
    /// The EC point is malformed or not on the curve.
    #[error("EC public key is not a valid point on {0}")]
    InvalidPoint(&'static str),
    /// The Ed25519 key is not 32 bytes or was refused by the provider.
    #[error("Ed25519 public key is invalid")]
    InvalidEd25519,
    /// An HMAC secret shorter than the hash output of its algorithm.
    #[error("HMAC secret of {len} bytes is shorter than the {required} bytes {alg} requires")]
    SecretTooShort {
        /// Secret length.
        len: usize,
        /// Minimum length.
        required: usize,
        /// The algorithm it was meant for.
        alg: Algorithm,
    },
    /// The provider refused the key for another reason.
    #[error("the key was refused by the cryptographic provider")]
    Refused,
}

/// A public verification key, parsed once for every algorithm it may be used with.
pub struct PublicKey {
    kind: PublicKeyKind,
    /// Indexed by `Algorithm as usize`; `None` where the algorithm does not fit the key.
    parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()],
}

/// What kind of public key this is, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
        /// Modulus size in bytes (also the signature size).
        modulus_len: usize,
    },
    /// ECDSA on `curve`.
    Ec(Curve),
    /// Ed25519.
    Ed25519,
}

impl PublicKeyKind {
    /// The JWK `kty` of this key.
    pub fn kty(self) -> &'static str {
        match self {
            PublicKeyKind::Rsa { .. } => "RSA",
            PublicKeyKind::Ec(_) => "EC",
            PublicKeyKind::Ed25519 => "OKP",
        }
    }

    /// True when `alg` is meant for keys of this kind.
    pub fn fits(self, alg: Algorithm) -> bool {
        match (self, alg.key_family()) {
            (PublicKeyKind::Rsa { .. }, KeyFamily::Rsa) => true,
            (PublicKeyKind::Ec(curve), KeyFamily::Ec(wanted)) => curve == wanted,
            (PublicKeyKind::Ed25519, KeyFamily::Ed25519) => true,
            _ => false,
        }
    }

    /// A short human description ("RSA 2048", "EC P-256", "OKP Ed25519").
    pub fn describe(self) -> String {
        match self {
            PublicKeyKind::Rsa { bits, .. } => format!("RSA {bits}"),
            PublicKeyKind::Ec(curve) => format!("EC {}", curve.name()),
            PublicKeyKind::Ed25519 => "OKP Ed25519".to_owned(),
        }
    }
}

fn provider_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return None,
    })
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// `bytes` without its leading zero octets (big-endian integers compare equal this way).
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

impl PublicKey {
    /// Builds an RSA key from big-endian modulus and exponent, enforcing size, exponent and ROCA
    /// rules. `only` restricts the algorithms it is prepared for (a JWK's own `alg`).
    pub fn rsa(n: &[u8], e: &[u8], only: Option<Algorithm>) -> Result<PublicKey, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = n.first().map_or(0, |&top| {
            (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::RsaSize { bits });
        }
        let exponent_ok = match e {
            [] => false,
            _ if e.len() > 8 => false,
            [.., last] if last & 1 == 0 => false,
            [single] => *single >= 3,
            _ => true,
        };
        if !exponent_ok {
            return Err(KeyError::RsaExponent);
        }
        if crate::roca::has_roca_fingerprint(n) {
            return Err(KeyError::Roca);
        }
        let kind = PublicKeyKind::Rsa {
            bits,
            modulus_len: n.len(),
        };
        let components = RsaPublicKeyComponents { n, e };
        let mut parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
        for alg in Algorithm::ALL {
            if !kind.fits(alg) || only.is_some_and(|pin| pin != alg) {
                continue;
            }
            let params = rsa_parameters(alg).ok_or(KeyError::Refused)?;
            let key = components
                .to_parsed_public_key(params)
                .map_err(|_| KeyError::Refused)?;
            parsed[alg as usize] = Some(key);
        }
        Ok(PublicKey { kind, parsed })
    }

    /// Builds an EC key from an uncompressed SEC1 point (`04 ‖ x ‖ y`), checking it is on `curve`.
    pub fn ec(curve: Curve, point: &[u8]) -> Result<PublicKey, KeyError> {
        let alg = match curve {
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
            Curve::P521 => Algorithm::ES512,
        };
        let expected_len = 1 + 2 * curve.coordinate_len();
        if point.len() != expected_len || point.first() != Some(&0x04) {
            return Err(KeyError::InvalidPoint(curve.name()));
        }
        let provider = provider_algorithm(alg).ok_or(KeyError::Refused)?;
        let key = ParsedPublicKey::new(provider, point)
            .map_err(|_| KeyError::InvalidPoint(curve.name()))?;
        let mut parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
        parsed[alg as usize] = Some(key);
        Ok(PublicKey {
            kind: PublicKeyKind::Ec(curve),
            parsed,
        })
    }

    /// Builds an Ed25519 key from its 32 bytes.
    pub fn ed25519(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::InvalidEd25519);
        }
        let key = ParsedPublicKey::new(&signature::ED25519, bytes)
            .map_err(|_| KeyError::InvalidEd25519)?;
        let mut parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
        parsed[Algorithm::EdDSA as usize] = Some(key);
        Ok(PublicKey {
            kind: PublicKeyKind::Ed25519,
            parsed,
        })
    }

    /// The key's kind and size.
    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// True when this key was prepared for `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.parsed[alg as usize].is_some()
    }

    /// Verifies `signature` over `message` with `alg`. Signature lengths are checked exactly first:
    /// an RSA signature is as long as the modulus, an ECDSA one is `R‖S` of twice the coordinate
    /// size (so DER is refused), an Ed25519 one is 64 bytes.
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let key = self.parsed[alg as usize]
            .as_ref()
            .ok_or(SignatureError::WrongKeyType)?;
        let expected_len = match self.kind {
            PublicKeyKind::Rsa { modulus_len, .. } => modulus_len,
            PublicKeyKind::Ec(curve) => 2 * curve.coordinate_len(),
            PublicKeyKind::Ed25519 => 64,
        };
        if sig.len() != expected_len {
            return Err(SignatureError::Length {
                expected: expected_len,
                actual: sig.len(),
            });
        }
        key.verify_sig(message, sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .finish()
    }
}

/// Why a signature check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The signature has the wrong length for the key and algorithm.
    #[error("signature is {actual} bytes, the key and algorithm need exactly {expected}")]
    Length {
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// The key was not prepared for this algorithm.
    #[error("the key does not fit the algorithm")]
    WrongKeyType,
    /// The signature does not verify.
    #[error("signature does not match")]
    Mismatch,
}

/// An HMAC secret configured explicitly (never read from a key set), prepared for the HMAC
/// algorithms its length allows.
pub struct HmacKey {
    len: usize,
    keys: [Option<hmac::Key>; 3],
}

impl HmacKey {
    /// Prepares `secret`; it must be at least as long as the hash of `only` when given, else of
    /// HS256 (32 bytes). Longer secrets also serve HS384/HS512 when long enough for them.
    pub fn new(secret: &[u8], only: Option<Algorithm>) -> Result<HmacKey, KeyError> {
        let candidates = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        let minimum = only.unwrap_or(Algorithm::HS256);
        if !minimum.is_symmetric() {
            return Err(KeyError::Refused);
        }
        if secret.len() < minimum.hash_len() {
            return Err(KeyError::SecretTooShort {
                len: secret.len(),
                required: minimum.hash_len(),
                alg: minimum,
            });
        }
        let mut keys: [Option<hmac::Key>; 3] = Default::default();
        for (slot, alg) in keys.iter_mut().zip(candidates) {
            if only.is_some_and(|pin| pin != alg) || secret.len() < alg.hash_len() {
                continue;
            }
            let provider = match alg {
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => hmac::HMAC_SHA256,
            };
            *slot = Some(hmac::Key::new(provider, secret));
        }
        Ok(HmacKey {
            len: secret.len(),
            keys,
        })
    }

    fn slot(alg: Algorithm) -> Option<usize> {
        match alg {
            Algorithm::HS256 => Some(0),
            Algorithm::HS384 => Some(1),
            Algorithm::HS512 => Some(2),
            _ => None,
        }
    }

    /// Secret length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty secret cannot be constructed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the secret may verify `alg` (right family, long enough, not pinned elsewhere).
    pub fn supports(&self, alg: Algorithm) -> bool {
        Self::slot(alg).is_some_and(|slot| self.keys[slot].is_some())
    }

    /// Checks the MAC `tag` over `message` in constant time.
    pub fn verify(&self, alg: Algorithm, message: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
        let key = Self::slot(alg)
            .and_then(|slot| self.keys[slot].as_ref())
            .ok_or(SignatureError::WrongKeyType)?;
        if tag.len() != alg.hash_len() {
            return Err(SignatureError::Length {
                expected: alg.hash_len(),
                actual: tag.len(),
            });
        }
        hmac::verify(key, message, tag).map_err(|_| SignatureError::Mismatch)
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacKey")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of `data`: cache keys and log fingerprints of tokens (a token is never logged whole).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// A short, non-reversible name for a token in logs: the first 12 hex digits of its SHA-256.
pub fn fingerprint(token: &[u8]) -> String {
    sha256(token)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
