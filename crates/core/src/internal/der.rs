//! The small part of DER that keys need: the `SubjectPublicKeyInfo` of an X.509 certificate (for
//! JWKs that carry only `x5c`) and PKCS#1 `RSAPublicKey`.
//!
//! Only definite, minimal lengths and single-byte tags are accepted; nothing is allocated. The
//! certificate is not validated as a certificate (no chain, no dates): per RFC 7517 §4.7 the JWK
//! set is the trust anchor, and the certificate is only a container for the public key.

use crate::alg::Curve;
use thiserror::Error;

/// Why DER input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DerError {
    /// Truncated input, a bad length, or an unexpected tag.
    #[error("malformed DER")]
    Malformed,
    /// The key algorithm in the certificate is not one jwtgate verifies with.
    #[error("unsupported public key algorithm in certificate")]
    UnsupportedAlgorithm,
}

/// A public key found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpkiKey<'a> {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: &'a [u8],
        /// Public exponent.
        e: &'a [u8],
    },
    /// An EC point in uncompressed SEC1 form on the named curve.
    Ec {
        /// The curve named in the algorithm parameters.
        curve: Curve,
        /// `04 ‖ x ‖ y`.
        point: &'a [u8],
    },
    /// An Ed25519 public key.
    Ed25519(&'a [u8]),
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xA0;

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one element with `tag`, returning its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        let (&actual, rest) = self.0.split_first().ok_or(DerError::Malformed)?;
        if actual != tag {
            return Err(DerError::Malformed);
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError::Malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7F);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(DerError::Malformed);
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            if bytes[0] == 0 {
                return Err(DerError::Malformed);
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            if len < 0x80 {
                return Err(DerError::Malformed);
            }
            len
        };
        if rest.len() < len {
            return Err(DerError::Malformed);
        }
        let (contents, after) = rest.split_at(len);
        self.0 = after;
        Ok(contents)
    }

    fn read_unsigned_integer(&mut self) -> Result<&'a [u8], DerError> {
        let bytes = self.read(INTEGER)?;
        match bytes {
            [] => Err(DerError::Malformed),
            [first, ..] if first & 0x80 != 0 => Err(DerError::Malformed),
            [0, second, ..] if second & 0x80 == 0 => Err(DerError::Malformed),
            [0, rest @ ..] if !rest.is_empty() => Ok(rest),
            _ => Ok(bytes),
        }
    }
}

/// Extracts the public key from a DER X.509 certificate.
pub fn certificate_public_key(cert: &[u8]) -> Result<SpkiKey<'_>, DerError> {
    let mut outer = Reader(cert);
    let mut certificate = Reader(outer.read(SEQUENCE)?);
    if !outer.is_empty() {
        return Err(DerError::Malformed);
    }
    let mut tbs = Reader(certificate.read(SEQUENCE)?);
    if tbs.peek_tag() == Some(VERSION_TAG) {
        tbs.read(VERSION_TAG)?;
    }
    tbs.read(INTEGER)?; // serialNumber
    tbs.read(SEQUENCE)?; // signature algorithm
    tbs.read(SEQUENCE)?; // issuer
    tbs.read(SEQUENCE)?; // validity
    tbs.read(SEQUENCE)?; // subject
    subject_public_key_info(tbs.read(SEQUENCE)?)
}

/// Reads a PKCS#1 `RSAPublicKey` (`SEQUENCE { n INTEGER, e INTEGER }`), returning `(n, e)`.
pub fn rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), DerError> {
    let mut outer = Reader(der);
    let mut rsa = Reader(outer.read(SEQUENCE)?);
    let n = rsa.read_unsigned_integer()?;
    let e = rsa.read_unsigned_integer()?;
    if !rsa.is_empty() || !outer.is_empty() {
        return Err(DerError::Malformed);
    }
    Ok((n, e))
}

/// Descriptive fields of a certificate, for display only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateInfo {
    /// The subject's common name, when present and a string.
    pub subject_cn: Option<String>,
    /// The end of the validity period as written (`YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`).
    pub not_after: Option<String>,
}

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const SET: u8 = 0x31;

/// Reads the subject common name and `notAfter` of a DER X.509 certificate.
pub fn certificate_info(cert: &[u8]) -> Result<CertificateInfo, DerError> {
    let mut outer = Reader(cert);
    let mut certificate = Reader(outer.read(SEQUENCE)?);
    let mut tbs = Reader(certificate.read(SEQUENCE)?);
    if tbs.peek_tag() == Some(VERSION_TAG) {
        tbs.read(VERSION_TAG)?;
    }
    tbs.read(INTEGER)?;
    tbs.read(SEQUENCE)?;
    tbs.read(SEQUENCE)?;
    let mut validity = Reader(tbs.read(SEQUENCE)?);
    let read_time = |r: &mut Reader<'_>| -> Result<Option<String>, DerError> {
        match r.peek_tag() {
            Some(tag @ (0x17 | 0x18)) => {
                Ok(Some(String::from_utf8_lossy(r.read(tag)?).into_owned()))
            }
            _ => Err(DerError::Malformed),
        }
    };
    read_time(&mut validity)?;
    let not_after = read_time(&mut validity)?;
    let mut subject = Reader(tbs.read(SEQUENCE)?);
    let mut subject_cn = None;
    while !subject.is_empty() {
        let mut rdn = Reader(subject.read(SET)?);
        while !rdn.is_empty() {
            let mut attribute = Reader(rdn.read(SEQUENCE)?);
            let oid = attribute.read(OID)?;
            if oid == OID_COMMON_NAME {
                if let Some(tag) = attribute.peek_tag() {
                    subject_cn = Some(String::from_utf8_lossy(attribute.read(tag)?).into_owned());
                }
            }
        }
    }
    Ok(CertificateInfo {
        subject_cn,
        not_after,
    })
}

fn subject_public_key_info(contents: &[u8]) -> Result<SpkiKey<'_>, DerError> {
    let mut spki = Reader(contents);
    let mut algorithm = Reader(spki.read(SEQUENCE)?);
    let oid = algorithm.read(OID)?;
    let bits = spki.read(BIT_STRING)?;
    let key = match bits {
        [0, key @ ..] => key,
        _ => return Err(DerError::Malformed),
    };
    if oid == OID_RSA {
        let (n, e) = rsa_public_key(key)?;
        Ok(SpkiKey::Rsa { n, e })
    } else if oid == OID_EC {
        let curve = match algorithm.read(OID)? {
            c if c == OID_P256 => Curve::P256,
            c if c == OID_P384 => Curve::P384,
            c if c == OID_P521 => Curve::P521,
            _ => return Err(DerError::UnsupportedAlgorithm),
        };
        Ok(SpkiKey::Ec { curve, point: key })
    } else if oid == OID_ED25519 {
        Ok(SpkiKey::Ed25519(key))
    } else {
        Err(DerError::UnsupportedAlgorithm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_and_non_minimal_lengths() {
        assert_eq!(certificate_public_key(&[]), Err(DerError::Malformed));
        assert_eq!(
            certificate_public_key(&[0x30, 0x81, 0x05]),
            Err(DerError::Malformed)
        );
        assert_eq!(
            certificate_public_key(&[0x30, 0x05, 0x00]),
            Err(DerError::Malformed)
        );
    }

    #[test]
    fn integers_must_be_positive_and_minimal() {
        assert_eq!(
            Reader(&[0x02, 0x01, 0x80]).read_unsigned_integer(),
            Err(DerError::Malformed)
        );
        assert_eq!(
            Reader(&[0x02, 0x02, 0x00, 0x01]).read_unsigned_integer(),
            Err(DerError::Malformed)
        );
        assert_eq!(
            Reader(&[0x02, 0x02, 0x00, 0x80]).read_unsigned_integer(),
            Ok(&[0x80][..])
        );
    }
}
