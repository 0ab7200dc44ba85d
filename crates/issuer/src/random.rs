//! Randomness and hashes for the protocol: authorization codes, refresh tokens, session ids and
//! key ids come from AWS-LC's CSPRNG; PKCE `S256` and `at_hash` use AWS-LC's SHA-256. Nothing here
//! implements a primitive itself.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use jwtgate_core::internal::base64url;
use thiserror::Error;

/// The system random generator failed (it should never happen; the caller fails closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `bytes` random bytes from the CSPRNG, base64url-encoded (unpadded).
pub fn token(bytes: usize) -> Result<String, RandomError> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .map_err(|_| RandomError)?;
    Ok(base64url::encode(&buffer))
}

/// A secret handed to a client (authorization code, refresh token, opaque access token, session
/// id): 256 bits of randomness.
pub fn secret() -> Result<String, RandomError> {
    token(32)
}

/// SHA-256 of `input`.
pub fn sha256(input: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, input).as_ref().to_vec()
}

/// The PKCE `S256` challenge of a verifier: `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636
/// §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    base64url::encode(&sha256(verifier.as_bytes()))
}

/// True when `verifier` has the RFC 7636 §4.1 form: 43 to 128 characters of
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// True when `challenge` can be an `S256` challenge: 43 characters of unpadded base64url.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && base64url::decode(challenge.as_bytes()).is_ok_and(|d| d.len() == 32)
}

/// The OpenID Connect `at_hash` of an access token for an ID token signed with a SHA-256
/// algorithm: the base64url of the left half of SHA-256 of the token's ASCII bytes.
pub fn at_hash(access_token: &str) -> String {
    let hash = sha256(access_token.as_bytes());
    base64url::encode(&hash[..hash.len() / 2])
}

/// Compares two secrets without a timing side channel on their contents (both are hashed first,
/// so lengths leak nothing either).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(a.as_bytes()), &sha256(b.as_bytes()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_pkce_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_pkce_verifier("short"));
        assert!(!is_pkce_verifier(&"a+".repeat(30)));
    }

    #[test]
    fn tokens_are_random_and_sized() {
        let a = secret().unwrap_or_default();
        let b = secret().unwrap_or_default();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal("jwtgate-m2m-secret", "jwtgate-m2m-secret"));
        assert!(!secrets_equal("jwtgate-m2m-secret", "jwtgate-m2m-secreT"));
        assert!(!secrets_equal("", "x"));
    }

    #[test]
    fn at_hash_is_half_sha256() {
        // 16 bytes -> 22 base64url characters.
        assert_eq!(at_hash("token").len(), 22);
    }
}
