//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037) and the key set a verifier selects from.
//!
//! A key set is loaded once and every key is checked then: a key that cannot safely verify
//! signatures is *skipped* with a recorded [`SkipReason`] (RFC 7517 §5), never fatal to the set.
//! Selection follows jwtgate's policy: keys never come from the token; the candidates are the
//! usable keys whose `kid` equals the header's `kid` (when it has one), whose type fits the
//! header's `alg`, and whose own `alg` (if any) equals it; exactly one candidate must remain.
//! HMAC secrets are only ever added explicitly with [`KeySet::add_secret`].

use crate::alg::{Algorithm, Curve};
use crate::crypto::{strip_leading_zeros, HmacKey, KeyError, PublicKey};
use crate::internal::base64url;
use crate::internal::der::{self, SpkiKey};
use crate::internal::json::{self, JsonError};
use crate::jws::Header;
use serde_json::{Map, Value};
use std::fmt;
use thiserror::Error;

/// A usable public key from a key set.
#[derive(Debug)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: PublicKey,
}

impl Jwk {
    /// The key id, when the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWK's own `alg`, which pins the algorithm it may verify.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The parsed key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// True when this key is a candidate for `alg` (type fits and its own `alg`, if any, equals).
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.kind().fits(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// Why a key in a set was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkipReason {
    /// The entry is not a JSON object.
    #[error("entry is not a JSON object")]
    NotAnObject,
    /// No `kty` string.
    #[error("no \"kty\"")]
    MissingKty,
    /// A `kty` jwtgate does not verify with.
    #[error("unsupported key type {0:?}")]
    UnsupportedKty(String),
    /// A symmetric (`oct`) key: secrets are never taken from a key set.
    #[error(
        "symmetric (oct) keys are never taken from a key set; configure HMAC secrets explicitly"
    )]
    Symmetric,
    /// A curve jwtgate does not verify with (e.g. X25519, secp256k1, Ed448).
    #[error("unsupported curve {0:?}")]
    UnsupportedCurve(String),
    /// `use` other than `sig`.
    #[error("\"use\" is {0:?}, not \"sig\"")]
    NotForSignatures(String),
    /// `key_ops` without `verify`.
    #[error("\"key_ops\" does not include \"verify\"")]
    KeyOpsWithoutVerify,
    /// The JWK's `alg` is not a supported algorithm, or does not fit the key type.
    #[error("\"alg\" {alg:?} does not fit a {kty} key")]
    AlgMismatch {
        /// The JWK's `alg`.
        alg: String,
        /// The key's type.
        kty: String,
    },
    /// `kid` is present but not a string.
    #[error("\"kid\" is not a string")]
    KidNotString,
    /// The key carries private parameters: a published set must never hold private keys.
    #[error("the key carries private key material (\"{0}\"); a verification key set must hold public keys only")]
    PrivateKeyMaterial(&'static str),
    /// A required parameter is missing or not valid base64url / the right type.
    #[error("parameter \"{name}\" is {problem}")]
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The certificate in `x5c` could not be read, or its key differs from the JWK's members.
    #[error("\"x5c\" {0}")]
    Certificate(String),
    /// The key material itself is unusable (size, exponent, ROCA, point not on curve…).
    #[error("{0}")]
    Key(#[from] KeyError),
}

/// A key that was skipped, with where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// Its `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Its `kty`, when it had one.
    pub kty: Option<String>,
    /// Why it was not loaded.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key #{}", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid {kid:?})")?;
        }
        write!(f, " skipped: {}", self.reason)
    }
}

/// The key set document itself is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwksError {
    /// Not a strict JSON object.
    #[error("the key set is not a valid JSON object: {0}")]
    Json(#[from] JsonError),
    /// No `keys` array (and not a single JWK either).
    #[error("the document has no \"keys\" array and is not a single JWK")]
    NoKeys,
}

/// An HMAC secret given explicitly in configuration.
#[derive(Debug)]
pub struct Secret {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: HmacKey,
}

impl Secret {
    /// Prepares a secret. `alg` pins it to one HMAC algorithm; the secret must be at least as long
    /// as that hash's output (32 bytes for HS256 when unpinned).
    pub fn new(
        bytes: &[u8],
        kid: Option<String>,
        alg: Option<Algorithm>,
    ) -> Result<Secret, KeyError> {
        Ok(Secret {
            kid,
            alg,
            key: HmacKey::new(bytes, alg)?,
        })
    }

    /// The key id this secret answers to, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The prepared MAC key.
    pub fn key(&self) -> &HmacKey {
        &self.key
    }

    fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg)
    }
}

/// The key chosen for a token.
#[derive(Debug, Clone, Copy)]
pub enum SelectedKey<'a> {
    /// A public key from the set.
    Public(&'a Jwk),
    /// An explicitly configured secret.
    Secret(&'a Secret),
}

impl SelectedKey<'_> {
    /// The chosen key's id.
    pub fn kid(&self) -> Option<&str> {
        match self {
            SelectedKey::Public(jwk) => jwk.kid(),
            SelectedKey::Secret(secret) => secret.kid(),
        }
    }
}

/// Why no single key could be chosen for a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeySelectionError {
    /// No usable key has the header's `kid`.
    #[error("no key with kid {kid:?} in the key set ({available} usable keys{skipped_note})", skipped_note = skipped.as_ref().map(|r| format!("; a key with this kid was skipped: {r}")).unwrap_or_default())]
    UnknownKid {
        /// The header's `kid`.
        kid: String,
        /// How many usable keys the set has.
        available: usize,
        /// The reason a key with this kid was skipped at load time, if one was.
        skipped: Option<SkipReason>,
    },
    /// Keys with the `kid` exist, but none fits the header's `alg`.
    #[error("the key with kid {kid:?} is {found} and cannot verify {alg}{pinned}", pinned = pinned.map(|a| format!(" (the key is pinned to {a})")).unwrap_or_default())]
    KeyDoesNotFitAlg {
        /// The header's `kid`.
        kid: String,
        /// The header's `alg`.
        alg: Algorithm,
        /// What the key is ("RSA 2048").
        found: String,
        /// The key's own `alg`, when that is what excludes it.
        pinned: Option<Algorithm>,
    },
    /// No `kid` in the header and no key fits the `alg`.
    #[error("the token has no kid and no key in the set can verify {alg}")]
    NoKeyForAlg {
        /// The header's `alg`.
        alg: Algorithm,
    },
    /// More than one candidate: jwtgate never guesses.
    #[error("{count} keys match (kid {kid:?}, alg {alg}); the choice is ambiguous, so the token is refused")]
    Ambiguous {
        /// The header's `kid`.
        kid: Option<String>,
        /// The header's `alg`.
        alg: Algorithm,
        /// Number of candidates.
        count: usize,
    },
    /// An HMAC token, and no secret is configured.
    #[error("the token uses {0}, an HMAC algorithm, and no secret is configured (HMAC keys never come from a key set)")]
    NoSecret(Algorithm),
    /// An HMAC token whose algorithm the configured secrets cannot serve (too short or pinned).
    #[error("no configured secret can verify {alg}{kid_note}", kid_note = kid.as_ref().map(|k| format!(" with kid {k:?}")).unwrap_or_default())]
    NoSecretForAlg {
        /// The header's `alg`.
        alg: Algorithm,
        /// The header's `kid`.
        kid: Option<String>,
    },
}

/// The keys a verifier may use: public keys loaded from JWKS documents, plus explicit HMAC secrets.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
    secrets: Vec<Secret>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// Parses a JWKS document (`{"keys":[…]}`) or a single JWK object. Unusable keys are skipped,
    /// with their reasons in [`KeySet::skipped`].
    pub fn from_json(document: &[u8]) -> Result<KeySet, JwksError> {
        let mut set = KeySet::new();
        set.extend_from_json(document)?;
        Ok(set)
    }

    /// Adds the keys of another JWKS document (or single JWK) to this set.
    pub fn extend_from_json(&mut self, document: &[u8]) -> Result<(), JwksError> {
        let object = json::parse_object(document)?;
        let base = self.keys.len() + self.skipped.len();
        match object.get("keys") {
            Some(Value::Array(keys)) => {
                for (index, entry) in keys.iter().enumerate() {
                    self.add_entry(base + index, entry);
                }
            }
            None if object.contains_key("kty") => self.add_entry(base, &Value::Object(object)),
            _ => return Err(JwksError::NoKeys),
        }
        Ok(())
    }

    fn add_entry(&mut self, index: usize, entry: &Value) {
        let object = entry.as_object();
        let kid = object
            .and_then(|o| o.get("kid"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kty = object
            .and_then(|o| o.get("kty"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match object.ok_or(SkipReason::NotAnObject).and_then(parse_jwk) {
            Ok(jwk) => self.keys.push(jwk),
            Err(reason) => self.skipped.push(SkippedKey {
                index,
                kid,
                kty,
                reason,
            }),
        }
    }

    /// Moves every key, skipped entry and secret of `other` into this set.
    pub fn absorb(&mut self, other: KeySet) {
        let base = self.keys.len() + self.skipped.len();
        self.keys.extend(other.keys);
        self.skipped
            .extend(other.skipped.into_iter().map(|mut skipped| {
                skipped.index += base;
                skipped
            }));
        self.secrets.extend(other.secrets);
    }

    /// Adds an already-built public key.
    pub fn add_public_key(&mut self, key: PublicKey, kid: Option<String>, alg: Option<Algorithm>) {
        self.keys.push(Jwk { kid, alg, key });
    }

    /// Adds an HMAC secret given explicitly in configuration.
    pub fn add_secret(&mut self, secret: Secret) {
        self.secrets.push(secret);
    }

    /// The usable public keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The keys that were skipped, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The explicitly configured secrets.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// True when there is nothing to verify with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.secrets.is_empty()
    }

    /// Chooses the one key for `header`, or says precisely why there is none.
    pub fn select(&self, header: &Header) -> Result<SelectedKey<'_>, KeySelectionError> {
        let alg = header.alg;
        let kid = header.kid.as_deref();
        let kid_matches = |own: Option<&str>| kid.is_none() || own == kid;
        if alg.is_symmetric() {
            if self.secrets.is_empty() {
                return Err(KeySelectionError::NoSecret(alg));
            }
            let mut candidates = self
                .secrets
                .iter()
                .filter(|s| kid_matches(s.kid()) && s.fits(alg) && s.key.supports(alg));
            return match (candidates.next(), candidates.count()) {
                (Some(secret), 0) => Ok(SelectedKey::Secret(secret)),
                (None, _) => Err(KeySelectionError::NoSecretForAlg {
                    alg,
                    kid: header.kid.clone(),
                }),
                (Some(_), more) => Err(KeySelectionError::Ambiguous {
                    kid: header.kid.clone(),
                    alg,
                    count: more + 1,
                }),
            };
        }
        let mut first = None;
        let mut count = 0;
        for jwk in &self.keys {
            if kid_matches(jwk.kid()) && jwk.fits(alg) {
                count += 1;
                first.get_or_insert(jwk);
            }
        }
        match (first, count) {
            (Some(jwk), 1) => Ok(SelectedKey::Public(jwk)),
            (Some(_), count) => Err(KeySelectionError::Ambiguous {
                kid: header.kid.clone(),
                alg,
                count,
            }),
            (None, _) => Err(self.explain_no_candidate(header)),
        }
    }

    fn explain_no_candidate(&self, header: &Header) -> KeySelectionError {
        let alg = header.alg;
        let Some(kid) = header.kid.clone() else {
            return KeySelectionError::NoKeyForAlg { alg };
        };
        if let Some(jwk) = self.keys.iter().find(|k| k.kid() == Some(kid.as_str())) {
            let pinned = jwk
                .alg
                .filter(|own| *own != alg && jwk.key.kind().fits(alg));
            return KeySelectionError::KeyDoesNotFitAlg {
                kid,
                alg,
                found: jwk.key.kind().describe(),
                pinned,
            };
        }
        let skipped = self
            .skipped
            .iter()
            .find(|s| s.kid.as_deref() == Some(kid.as_str()))
            .map(|s| s.reason.clone());
        KeySelectionError::UnknownKid {
            kid,
            available: self.keys.len(),
            skipped,
        }
    }
}

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

pub(crate) fn parse_jwk(object: &Map<String, Value>) -> Result<Jwk, SkipReason> {
    let kty = match object.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        _ => return Err(SkipReason::MissingKty),
    };
    if kty == "oct" {
        return Err(SkipReason::Symmetric);
    }
    let kid = match object.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(SkipReason::KidNotString),
    };
    match object.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(other) => {
            return Err(SkipReason::NotForSignatures(
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned),
            ))
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let has_verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !has_verify {
            return Err(SkipReason::KeyOpsWithoutVerify);
        }
    }
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(SkipReason::PrivateKeyMaterial(member));
    }
    let alg = match object.get("alg") {
        None => None,
        Some(Value::String(name)) => {
            Some(
                name.parse::<Algorithm>()
                    .map_err(|_| SkipReason::AlgMismatch {
                        alg: name.clone(),
                        kty: kty.to_owned(),
                    })?,
            )
        }
        Some(other) => {
            return Err(SkipReason::AlgMismatch {
                alg: other.to_string(),
                kty: kty.to_owned(),
            })
        }
    };
    let certificate = certificate_key(object)?;
    let key = match kty {
        "RSA" => rsa_key(object, certificate.as_ref(), alg)?,
        "EC" => ec_key(object, certificate.as_ref())?,
        "OKP" => okp_key(object, certificate.as_ref())?,
        other => return Err(SkipReason::UnsupportedKty(other.to_owned())),
    };
    if let Some(alg) = alg {
        if !key.kind().fits(alg) {
            return Err(SkipReason::AlgMismatch {
                alg: alg.name().to_owned(),
                kty: key.kind().describe(),
            });
        }
    }
    Ok(Jwk { kid, alg, key })
}

/// The DER of the first certificate in `x5c`, when present (standard base64, RFC 7517 §4.7).
fn certificate_key(object: &Map<String, Value>) -> Result<Option<Vec<u8>>, SkipReason> {
    let Some(chain) = object.get("x5c") else {
        return Ok(None);
    };
    let first = chain
        .as_array()
        .and_then(|c| c.first())
        .and_then(Value::as_str)
        .ok_or_else(|| SkipReason::Certificate("is not a non-empty array of strings".into()))?;
    base64url::decode_standard(first)
        .map(Some)
        .ok_or_else(|| SkipReason::Certificate("is not valid base64".into()))
}

fn param(object: &Map<String, Value>, name: &'static str) -> Result<Option<Vec<u8>>, SkipReason> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => {
            base64url::decode(text.as_bytes())
                .map(Some)
                .map_err(|e| SkipReason::BadParameter {
                    name,
                    problem: format!("not valid base64url ({e})"),
                })
        }
        Some(_) => Err(SkipReason::BadParameter {
            name,
            problem: "not a string".into(),
        }),
    }
}

fn required(value: Option<Vec<u8>>, name: &'static str) -> Result<Vec<u8>, SkipReason> {
    value.ok_or(SkipReason::BadParameter {
        name,
        problem: "missing".into(),
    })
}

fn from_certificate(der: &[u8]) -> Result<SpkiKey<'_>, SkipReason> {
    der::certificate_public_key(der)
        .map_err(|e| SkipReason::Certificate(format!("certificate: {e}")))
}

fn mismatch() -> SkipReason {
    SkipReason::Certificate("certificate key differs from the JWK's key members".into())
}

fn rsa_key(
    object: &Map<String, Value>,
    certificate: Option<&Vec<u8>>,
    alg: Option<Algorithm>,
) -> Result<PublicKey, SkipReason> {
    let n = param(object, "n")?;
    let e = param(object, "e")?;
    let from_cert = match certificate {
        Some(der) => match from_certificate(der)? {
            SpkiKey::Rsa { n, e } => Some((n.to_vec(), e.to_vec())),
            _ => return Err(mismatch()),
        },
        None => None,
    };
    let (n, e) = match (n, e, from_cert) {
        (None, None, Some(cert)) => cert,
        (n, e, cert) => {
            let (n, e) = (required(n, "n")?, required(e, "e")?);
            if let Some((cn, ce)) = cert {
                if strip_leading_zeros(&cn) != strip_leading_zeros(&n)
                    || strip_leading_zeros(&ce) != strip_leading_zeros(&e)
                {
                    return Err(mismatch());
                }
            }
            (n, e)
        }
    };
    Ok(PublicKey::rsa(&n, &e, alg)?)
}

fn ec_key(
    object: &Map<String, Value>,
    certificate: Option<&Vec<u8>>,
) -> Result<PublicKey, SkipReason> {
    let curve = match object.get("crv").and_then(Value::as_str) {
        Some("P-256") => Some(Curve::P256),
        Some("P-384") => Some(Curve::P384),
        Some("P-521") => Some(Curve::P521),
        Some(other) => return Err(SkipReason::UnsupportedCurve(other.to_owned())),
        None => None,
    };
    let x = param(object, "x")?;
    let y = param(object, "y")?;
    let from_cert = match certificate {
        Some(der) => match from_certificate(der)? {
            SpkiKey::Ec { curve, point } => Some((curve, point.to_vec())),
            _ => return Err(mismatch()),
        },
        None => None,
    };
    let (curve, point) = match (curve, x, y, from_cert) {
        (None, None, None, Some(cert)) => cert,
        (curve, x, y, cert) => {
            let curve = curve.ok_or(SkipReason::BadParameter {
                name: "crv",
                problem: "missing".into(),
            })?;
            let (x, y) = (required(x, "x")?, required(y, "y")?);
            let size = curve.coordinate_len();
            if x.len() != size || y.len() != size {
                return Err(SkipReason::BadParameter {
                    name: if x.len() != size { "x" } else { "y" },
                    problem: format!("not {size} bytes as {} requires", curve.name()),
                });
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if let Some(cert) = cert {
                if cert != (curve, point.clone()) {
                    return Err(mismatch());
                }
            }
            (curve, point)
        }
    };
    Ok(PublicKey::ec(curve, &point)?)
}

fn okp_key(
    object: &Map<String, Value>,
    certificate: Option<&Vec<u8>>,
) -> Result<PublicKey, SkipReason> {
    match object.get("crv").and_then(Value::as_str) {
        Some("Ed25519") => {}
        Some(other) => return Err(SkipReason::UnsupportedCurve(other.to_owned())),
        None if certificate.is_some() && !object.contains_key("x") => {}
        None => {
            return Err(SkipReason::BadParameter {
                name: "crv",
                problem: "missing".into(),
            })
        }
    }
    let x = param(object, "x")?;
    let from_cert = match certificate {
        Some(der) => match from_certificate(der)? {
            SpkiKey::Ed25519(key) => Some(key.to_vec()),
            _ => return Err(mismatch()),
        },
        None => None,
    };
    let x = match (x, from_cert) {
        (None, Some(cert)) => cert,
        (x, cert) => {
            let x = required(x, "x")?;
            if cert.is_some_and(|c| c != x) {
                return Err(mismatch());
            }
            x
        }
    };
    Ok(PublicKey::ed25519(&x)?)
}

/// Standard base64 with padding (used by `x5c` only), strict: canonical, no whitespace.
#[cfg(test)]
mod tests {
    use super::*;

    fn header(alg: Algorithm, kid: Option<&str>) -> Header {
        Header::new(alg, kid.map(str::to_owned), None)
    }

    #[test]
    fn skips_unusable_keys_with_reasons() {
        let set = KeySet::from_json(
            br#"{"keys":[
                {"kty":"oct","k":"AAAA"},
                {"kty":"OKP","crv":"X25519","x":"AAAA"},
                {"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"},
                {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"},
                {"kty":"RSA","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":5,"n":"AQAB","e":"AQAB"},
                "nonsense",
                {"kty":"XYZ"}
            ]}"#,
        );
        let set = set.unwrap_or_default();
        let reasons: Vec<_> = set.skipped().iter().map(|s| s.reason.clone()).collect();
        assert_eq!(set.keys().len(), 0);
        assert_eq!(reasons.len(), 9);
        assert_eq!(reasons[0], SkipReason::Symmetric);
        assert_eq!(reasons[1], SkipReason::UnsupportedCurve("X25519".into()));
        assert_eq!(reasons[2], SkipReason::UnsupportedCurve("secp256k1".into()));
        assert_eq!(reasons[3], SkipReason::NotForSignatures("enc".into()));
        assert_eq!(reasons[4], SkipReason::KeyOpsWithoutVerify);
        assert_eq!(reasons[5], SkipReason::Key(KeyError::RsaSize { bits: 17 }));
        assert_eq!(reasons[6], SkipReason::KidNotString);
        assert_eq!(reasons[7], SkipReason::NotAnObject);
        assert_eq!(reasons[8], SkipReason::UnsupportedKty("XYZ".into()));
    }

    #[test]
    fn documents_without_keys_are_errors() {
        assert_eq!(KeySet::from_json(b"{}").err(), Some(JwksError::NoKeys));
        assert_eq!(
            KeySet::from_json(br#"{"keys":{}}"#).err(),
            Some(JwksError::NoKeys)
        );
        assert!(matches!(KeySet::from_json(b"[]"), Err(JwksError::Json(_))));
    }

    #[test]
    fn hmac_selection_needs_explicit_secrets() {
        let mut set = KeySet::new();
        assert_eq!(
            set.select(&header(Algorithm::HS256, None)).err(),
            Some(KeySelectionError::NoSecret(Algorithm::HS256))
        );
        let secret = Secret::new(&[7u8; 32], Some("a".into()), None);
        assert!(secret.is_ok());
        if let Ok(secret) = secret {
            set.add_secret(secret);
        }
        assert!(set.select(&header(Algorithm::HS256, Some("a"))).is_ok());
        assert!(set.select(&header(Algorithm::HS256, None)).is_ok());
        assert!(set.select(&header(Algorithm::HS256, Some("b"))).is_err());
        // 32 bytes is too short for HS512.
        assert!(set.select(&header(Algorithm::HS512, Some("a"))).is_err());
        assert!(matches!(
            Secret::new(&[1u8; 31], None, None),
            Err(KeyError::SecretTooShort {
                len: 31,
                required: 32,
                ..
            })
        ));
    }
}
