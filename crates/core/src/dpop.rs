//! DPoP proofs (RFC 9449): checking the proof a client sends beside a sender-constrained access
//! token, and making one (for the development issuer, tests and benchmarks).
//!
//! A proof is a JWS the client signs with a key it holds; the access token names that key by its
//! RFC 7638 thumbprint in `cnf.jkt`. [`check_proof`] runs every check of RFC 9449 §4.3 that needs
//! no state, in the order that rejects cheap mistakes first, and names the one that failed:
//!
//! 1. size, three segments, strict JSON header (no duplicate members);
//! 2. `typ` is `dpop+jwt`; `alg` is an asymmetric algorithm of the allowlist (never `none` or
//!    HMAC); `crit` is refused (no extension is understood);
//! 3. `jwk` is a public key only — a private member (`d`, `p`, …) refuses the proof — of a type
//!    that fits `alg`; its thumbprint equals the token's `cnf.jkt`;
//! 4. the signature verifies with that key;
//! 5. claims: `htm` equals the method; `htu` equals the request URI once both are normalised
//!    ([`normalize_htu`]: scheme and host lower-cased, default port dropped, query and fragment
//!    ignored, percent-encodings normalised); `iat` within the window either side of now; `ath`
//!    is the base64url SHA-256 of the access token; `jti` present and at most
//!    [`MAX_JTI_LEN`] bytes; `nonce` equal to the server's when one is required.
//!
//! What needs state — `jti` never seen before inside the window, which nonce is current — is
//! the caller's: [`CheckedProof`] carries the `jti` and the thumbprint for its replay cache.
//!
//! The thumbprint is compared before the signature is checked, so a proof made with another key
//! costs one SHA-256, not a signature verification.
//!
//! A client signs every proof with one key, so its proofs share one header segment. A verifier may
//! keep checked headers ([`ProofKeys`], given in [`ProofContext::keys`]) by that segment's exact
//! bytes and skip parsing the header, the key and its thumbprint again: steps 1–3 depend on
//! nothing but those bytes and the algorithm allowlist, and the thumbprint is still compared with
//! the token's `cnf.jkt` on every proof.

use crate::alg::{Algorithm, AlgorithmSet};
use crate::crypto::sha256;
use crate::internal::base64url;
use crate::internal::json;
use crate::jwk::{self, SkipReason};
use crate::jws::MAX_SIGNATURE_LEN;
use crate::sign::{SignError, SigningKey};
use serde_json::{json, Map, Value};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Largest proof accepted, checked before anything is decoded: 8 KiB holds an RSA-4096 `jwk`
/// and its signature with room to spare.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest header segment kept between proofs (an RSA 4096 `jwk` header is about 1,100
/// characters): longer headers are checked in full every time.
pub const MAX_KEPT_HEADER_LEN: usize = 2 * 1024;

/// Longest `jti` accepted (bytes), bounding what a replay cache holds per proof.
pub const MAX_JTI_LEN: usize = 256;

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// Why a proof was refused: each variant names the exact check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// Longer than [`MAX_PROOF_LEN`].
    #[error("the DPoP proof is {0} bytes, more than the limit of {MAX_PROOF_LEN}")]
    TooLarge(usize),
    /// Not three base64url segments.
    #[error("the DPoP proof is not a compact JWS (three base64url segments)")]
    NotCompact,
    /// The header or payload is not one strict JSON object.
    #[error("the DPoP proof's {segment} is not a JSON object: {error}")]
    Json {
        /// `header` or `payload`.
        segment: &'static str,
        /// What was wrong.
        error: String,
    },
    /// `typ` is missing or not `dpop+jwt`.
    #[error("the DPoP proof's \"typ\" is {0}, not \"dpop+jwt\"")]
    WrongType(String),
    /// `alg` is missing, unknown, symmetric or not allowed.
    #[error("the DPoP proof's \"alg\" {0} is not an accepted asymmetric algorithm")]
    Algorithm(String),
    /// `crit` names extensions, none of which are understood.
    #[error("the DPoP proof has a \"crit\" header parameter, which jwtgate does not understand")]
    Crit,
    /// No `jwk` object in the header.
    #[error("the DPoP proof's header has no \"jwk\" object")]
    MissingJwk,
    /// The `jwk` is private, malformed, or unusable.
    #[error("the DPoP proof's \"jwk\" is not a usable public key: {0}")]
    BadJwk(SkipReason),
    /// The `jwk`'s type does not fit `alg`.
    #[error("the DPoP proof's \"jwk\" is a {kty} key, which cannot verify {alg}")]
    KeyDoesNotFitAlg {
        /// The key's type.
        kty: String,
        /// The header's algorithm.
        alg: Algorithm,
    },
    /// The `jwk`'s thumbprint differs from the token's `cnf.jkt`.
    #[error("the DPoP proof's key (thumbprint {proof}) is not the key the access token is bound to (cnf.jkt {token})")]
    ThumbprintMismatch {
        /// The proof key's thumbprint.
        proof: String,
        /// The token's `cnf.jkt`.
        token: String,
    },
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature does not verify with its \"jwk\"")]
    Signature,
    /// A required claim is missing or not of its type.
    #[error("the DPoP proof has no {0}")]
    MissingClaim(&'static str),
    /// `jti` longer than [`MAX_JTI_LEN`].
    #[error("the DPoP proof's \"jti\" is {0} bytes, more than {MAX_JTI_LEN}")]
    JtiTooLong(usize),
    /// `htm` is another method.
    #[error("the DPoP proof is for method {proof:?}, the request is {request}")]
    MethodMismatch {
        /// The proof's `htm`.
        proof: String,
        /// The request's method.
        request: String,
    },
    /// `htu` is not a usable absolute URI.
    #[error("the DPoP proof's \"htu\" {0:?} is not an absolute http(s) URI")]
    BadHtu(String),
    /// `htu` is another URI.
    #[error("the DPoP proof is for {proof}, the request is {request}")]
    UriMismatch {
        /// The proof's `htu`, normalised.
        proof: String,
        /// The request URI, normalised.
        request: String,
    },
    /// `iat` is outside the window.
    #[error(
        "the DPoP proof was issued at {iat}, {distance} s from now, outside the {window} s window"
    )]
    IatOutsideWindow {
        /// The proof's `iat`.
        iat: i64,
        /// How far from now, in seconds.
        distance: i64,
        /// The window either side of now.
        window: i64,
    },
    /// `ath` is not the hash of the access token sent with it.
    #[error("the DPoP proof's \"ath\" is not the hash of this access token (a proof made for another token)")]
    AccessTokenHashMismatch,
    /// A nonce is required and the proof has none, or an old one.
    #[error("the DPoP proof must carry the server's current nonce (DPoP-Nonce)")]
    NonceRequired,
}

impl ProofError {
    /// The RFC 9449 §7.1 error code: `use_dpop_nonce` when the client only needs the server's
    /// nonce, `invalid_dpop_proof` for everything else.
    pub fn error_code(&self) -> &'static str {
        match self {
            ProofError::NonceRequired => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// What the request and the access token say a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The URI the client used (`https://api.example.com/users?x=1`); query and fragment are
    /// ignored.
    pub uri: &'a str,
    /// The access token sent with the proof (for `ath`); `None` at a token endpoint, where a
    /// proof comes without one.
    pub access_token: Option<&'a [u8]>,
    /// The token's `cnf.jkt`; `None` at a token endpoint, where the proof's key is the one the
    /// new token will be bound to (or, for a bound refresh token, compared by the caller).
    pub jkt: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: i64,
    /// How far `iat` may be from now, either side, in seconds.
    pub iat_window: i64,
    /// The nonce the proof must carry, when the server requires one.
    pub nonce: Option<&'a str>,
    /// Accepted proof algorithms (only the asymmetric ones of the set count).
    pub algorithms: AlgorithmSet,
    /// Checked headers kept between proofs, if the caller keeps any (one store per algorithm
    /// allowlist: what it holds passed this context's `algorithms`).
    pub keys: Option<&'a dyn ProofKeys>,
}

/// A proof header that passed steps 1–3 of the checks (but the comparison with `cnf.jkt`): its
/// algorithm, public key and thumbprint.
#[derive(Debug)]
pub struct ProofKey {
    alg: Algorithm,
    key: jwk::Jwk,
    jkt: String,
}

/// Where checked proof headers are kept between proofs, by the header segment's exact bytes.
pub trait ProofKeys: fmt::Debug + Send + Sync {
    /// The checked header for these header-segment bytes, if kept.
    fn get(&self, header: &[u8]) -> Option<Arc<ProofKey>>;
    /// Keeps a checked header (the store decides for how long; it must be bounded).
    fn insert(&self, header: &[u8], key: Arc<ProofKey>);
}

/// A proof that passed every stateless check: what a replay cache needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// The proof's `jti`.
    pub jti: String,
    /// The proof key's thumbprint (equal to the token's `cnf.jkt`).
    pub jkt: String,
    /// The proof's `iat`.
    pub iat: i64,
}

/// Checks `proof` against `context` (see the module documentation for the order of checks).
pub fn check_proof(proof: &[u8], context: &ProofContext<'_>) -> Result<CheckedProof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLarge(proof.len()));
    }
    let mut dots = memchr::memchr_iter(b'.', proof);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(ProofError::NotCompact);
    };
    let header_b64 = &proof[..first];
    let payload_b64 = &proof[first + 1..second];
    let signature_b64 = &proof[second + 1..];
    let kept = context
        .keys
        .and_then(|keys| keys.get(header_b64))
        .filter(|kept| context.algorithms.contains(kept.alg));
    let proof_key = match &kept {
        Some(kept) => kept.clone(),
        None => Arc::new(check_header(header_b64, context.algorithms)?),
    };
    let ProofKey { alg, key, jkt } = &*proof_key;
    if let Some(expected) = context.jkt {
        if jkt != expected {
            return Err(ProofError::ThumbprintMismatch {
                proof: jkt.clone(),
                token: expected.to_owned(),
            });
        }
    }
    let signing_input = &proof[..second];
    let mut buffer = [0u8; MAX_SIGNATURE_LEN];
    let length =
        base64url::decode_into(signature_b64, &mut buffer).map_err(|_| ProofError::NotCompact)?;
    key.key()
        .verify(*alg, signing_input, &buffer[..length])
        .map_err(|_| ProofError::Signature)?;
    // Kept only once its key matched the token and signed this proof, and only when small: a
    // client cannot fill the store with headers nobody signs, or with padded ones.
    if let (None, Some(keys)) = (&kept, context.keys) {
        if header_b64.len() <= MAX_KEPT_HEADER_LEN {
            keys.insert(header_b64, proof_key.clone());
        }
    }
    let claims = ProofClaimValues::scan(payload_b64)?;
    check_claims(&claims, context, jkt.clone())
}

/// The members of a proof's payload that the checks read, captured from one strict scan (the
/// whole payload is validated — UTF-8, one object, no repeated member, bounded depth — but
/// only these are built).
#[derive(Debug, Default)]
struct ProofClaimValues {
    /// `jti`, `htm`, `htu`, `iat`, `ath`, `nonce`, in that order.
    values: [Option<Value>; 6],
}

impl ProofClaimValues {
    /// The names captured, in slot order.
    const NAMES: [&'static str; 6] = ["jti", "htm", "htu", "iat", "ath", "nonce"];

    fn scan(segment: &[u8]) -> Result<ProofClaimValues, ProofError> {
        let failed = |error: String| ProofError::Json {
            segment: "payload",
            error,
        };
        let bytes = base64url::decode(segment).map_err(|error| failed(error.to_string()))?;
        let mut claims = ProofClaimValues::default();
        let slot_of = |name: &str| Self::NAMES.iter().position(|known| *known == name);
        json::scan_object(&bytes, &slot_of, &mut claims.values)
            .map_err(|error| failed(error.to_string()))?;
        Ok(claims)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        let slot = Self::NAMES.iter().position(|known| *known == name)?;
        self.values[slot].as_ref()
    }
}

/// Steps 1–3 on a header segment: strict JSON, `typ`, `alg` from `algorithms`, no `crit`, a
/// public `jwk` that fits `alg`, and its thumbprint.
fn check_header(header_b64: &[u8], algorithms: AlgorithmSet) -> Result<ProofKey, ProofError> {
    let header = decode_object(header_b64, "header")?;
    match header.get("typ") {
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case(PROOF_TYPE) => {}
        Some(other) => return Err(ProofError::WrongType(other.to_string())),
        None => return Err(ProofError::WrongType("missing".into())),
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => match name.parse::<Algorithm>() {
            Ok(alg) if !alg.is_symmetric() && algorithms.contains(alg) => alg,
            _ => return Err(ProofError::Algorithm(format!("{name:?}"))),
        },
        Some(other) => return Err(ProofError::Algorithm(other.to_string())),
        None => return Err(ProofError::Algorithm("(missing)".into())),
    };
    if header.contains_key("crit") {
        return Err(ProofError::Crit);
    }
    let Some(Value::Object(jwk_object)) = header.get("jwk") else {
        return Err(ProofError::MissingJwk);
    };
    let key = public_key(jwk_object, alg)?;
    let jkt = thumbprint(jwk_object).map_err(ProofError::BadJwk)?;
    Ok(ProofKey { alg, key, jkt })
}

/// [`check_proof`] for a server that issues nonces: the proof must carry `current`, or
/// `previous` (the nonce before the last rotation, which clients may still hold). `context.nonce`
/// is ignored.
pub fn check_proof_with_nonces(
    proof: &[u8],
    context: &ProofContext<'_>,
    current: &str,
    previous: Option<&str>,
) -> Result<CheckedProof, ProofError> {
    let with = |nonce| {
        check_proof(
            proof,
            &ProofContext {
                nonce: Some(nonce),
                ..*context
            },
        )
    };
    match (with(current), previous) {
        (Err(ProofError::NonceRequired), Some(previous)) => with(previous),
        (result, _) => result,
    }
}

/// The stateless claim checks of a proof whose signature verified.
fn check_claims(
    claims: &ProofClaimValues,
    context: &ProofContext<'_>,
    jkt: String,
) -> Result<CheckedProof, ProofError> {
    let text = |name: &'static str| match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.as_str()),
        _ => Err(ProofError::MissingClaim(name)),
    };
    let jti = text("jti")?;
    if jti.len() > MAX_JTI_LEN {
        return Err(ProofError::JtiTooLong(jti.len()));
    }
    let htm = text("htm")?;
    if htm != context.method {
        return Err(ProofError::MethodMismatch {
            proof: htm.to_owned(),
            request: context.method.to_owned(),
        });
    }
    let htu = text("htu")?;
    // Byte-equal without query and fragment is a match (clients send the URL they called);
    // anything else is compared once both are normalised.
    fn without_query(uri: &str) -> &str {
        match memchr::memchr2(b'?', b'#', uri.as_bytes()) {
            Some(end) => &uri[..end],
            None => uri,
        }
    }
    if without_query(htu) != without_query(context.uri) {
        let proof_uri = normalize_htu(htu).ok_or_else(|| ProofError::BadHtu(htu.to_owned()))?;
        let request_uri =
            normalize_htu(context.uri).ok_or_else(|| ProofError::BadHtu(context.uri.to_owned()))?;
        if proof_uri != request_uri {
            return Err(ProofError::UriMismatch {
                proof: proof_uri,
                request: request_uri,
            });
        }
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or(ProofError::MissingClaim("iat"))?,
        _ => return Err(ProofError::MissingClaim("iat")),
    };
    let distance = iat.saturating_sub(context.now);
    if distance.unsigned_abs() > context.iat_window.unsigned_abs() {
        return Err(ProofError::IatOutsideWindow {
            iat,
            distance,
            window: context.iat_window,
        });
    }
    if let Some(access_token) = context.access_token {
        // Decoding is strict (one canonical spelling per digest), so comparing the decoded
        // bytes is comparing the text, without encoding the token's hash.
        let ath = text("ath")?;
        let mut sent = [0u8; 32];
        let matches = base64url::decode_into(ath.as_bytes(), &mut sent) == Ok(sent.len())
            && sent == sha256(access_token);
        if !matches {
            return Err(ProofError::AccessTokenHashMismatch);
        }
    }
    if let Some(nonce) = context.nonce {
        match claims.get("nonce") {
            Some(Value::String(sent)) if sent == nonce => {}
            _ => return Err(ProofError::NonceRequired),
        }
    }
    Ok(CheckedProof {
        jti: jti.to_owned(),
        jkt,
        iat,
    })
}

fn decode_object(segment: &[u8], name: &'static str) -> Result<Map<String, Value>, ProofError> {
    let bytes = base64url::decode(segment).map_err(|error| ProofError::Json {
        segment: name,
        error: error.to_string(),
    })?;
    json::parse_object(&bytes).map_err(|error| ProofError::Json {
        segment: name,
        error: error.to_string(),
    })
}

/// The proof's key: public only, usable, and of a type that verifies `alg`.
fn public_key(object: &Map<String, Value>, alg: Algorithm) -> Result<jwk::Jwk, ProofError> {
    let parsed = jwk::parse_jwk(object).map_err(ProofError::BadJwk)?;
    if !parsed.fits(alg) {
        return Err(ProofError::KeyDoesNotFitAlg {
            kty: parsed.key().kind().describe(),
            alg,
        });
    }
    Ok(parsed)
}

/// The RFC 7638 thumbprint of a public JWK: base64url SHA-256 of its required members, in
/// lexicographic order, as JSON without whitespace.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, SkipReason> {
    let member = |name: &'static str| match jwk.get(name) {
        Some(Value::String(value)) => Ok(value.as_str()),
        _ => Err(SkipReason::BadParameter {
            name,
            problem: "missing or not a string".into(),
        }),
    };
    let canonical = match member("kty")? {
        "RSA" => json!({"e": member("e")?, "kty": "RSA", "n": member("n")?}),
        "EC" => json!({"crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")?}),
        "OKP" => json!({"crv": member("crv")?, "kty": "OKP", "x": member("x")?}),
        other => return Err(SkipReason::UnsupportedKty(other.to_owned())),
    };
    // `json!` objects keep insertion order here (the `preserve_order` feature), which is the
    // lexicographic order written above; serde_json writes no whitespace.
    let bytes = serde_json::to_vec(&canonical).map_err(|_| SkipReason::NotAnObject)?;
    Ok(base64url::encode(&sha256(&bytes)))
}

/// `ath`: the base64url SHA-256 of an access token.
pub fn access_token_hash(access_token: &[u8]) -> String {
    base64url::encode(&sha256(access_token))
}

/// An absolute `http`/`https` URI as RFC 9449 compares it (RFC 3986 §6.2.2–6.2.3): scheme and
/// host lower-cased, the scheme's default port dropped, an empty path read as `/`,
/// percent-encodings upper-cased and unreserved characters decoded; query and fragment
/// removed. `None` for anything else (a relative URI, user information, a bad port).
pub fn normalize_htu(uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => {
            (&authority[..at], Some(&authority[at + 1..]))
        }
        _ => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let mut normal = format!("{scheme}://{}", host.to_ascii_lowercase());
    match port {
        Some(port) if port.is_empty() || port == default_port => {}
        Some(port) => {
            let number: u16 = port.parse().ok()?;
            if number.to_string() != default_port {
                normal.push(':');
                normal.push_str(&number.to_string());
            }
        }
        None => {}
    }
    if path.is_empty() {
        normal.push('/');
    } else {
        normalize_percent_encoding(path, &mut normal)?;
    }
    Some(normal)
}

/// Appends `path` with percent-encodings upper-cased and unreserved characters decoded; `None`
/// for a broken percent-encoding.
fn normalize_percent_encoding(path: &str, out: &mut String) -> Option<()> {
    let bytes = path.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte != b'%' {
            out.push(char::from(byte));
            at += 1;
            continue;
        }
        let hex = bytes.get(at + 1..at + 3)?;
        let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push_str(&format!("{value:02X}"));
        }
        at += 3;
    }
    Some(())
}

/// What a new proof says: the request it is for and, at a resource server, the token it comes
/// with.
#[derive(Debug, Clone, Copy)]
pub struct ProofClaims<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request URI (query and fragment are left out of `htu`).
    pub uri: &'a str,
    /// The access token the proof is sent with (`ath`), none at a token endpoint.
    pub access_token: Option<&'a str>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// A unique identifier for this proof.
    pub jti: &'a str,
    /// The server's nonce, when it asked for one.
    pub nonce: Option<&'a str>,
}

/// Signs a proof with `key` (its public half goes in the header's `jwk`): what a DPoP client
/// sends. For the development issuer's tests, the demo and benchmarks.
pub fn make_proof(key: &SigningKey, claims: &ProofClaims<'_>) -> Result<String, SignError> {
    let mut public = key.public_jwk();
    if let Some(object) = public.as_object_mut() {
        for member in ["kid", "alg", "use"] {
            object.remove(member);
        }
    }
    let header = json!({"typ": PROOF_TYPE, "alg": key.algorithm().name(), "jwk": public});
    let htu = claims.uri.split(['?', '#']).next().unwrap_or_default();
    let mut payload = json!({
        "jti": claims.jti, "htm": claims.method, "htu": htu, "iat": claims.iat,
    });
    if let Some(object) = payload.as_object_mut() {
        if let Some(token) = claims.access_token {
            object.insert("ath".into(), json!(access_token_hash(token.as_bytes())));
        }
        if let Some(nonce) = claims.nonce {
            object.insert("nonce".into(), json!(nonce));
        }
    }
    let header = serde_json::to_vec(&header).map_err(|_| SignError::Sign)?;
    let payload = serde_json::to_vec(&payload).map_err(|_| SignError::Sign)?;
    key.sign_raw(&header, &payload)
}

/// The thumbprint of `key`'s public half: the `cnf.jkt` of tokens bound to it.
pub fn key_thumbprint(key: &SigningKey) -> Result<String, SignError> {
    match key.public_jwk() {
        Value::Object(object) => thumbprint(&object).map_err(|_| SignError::Sign),
        _ => Err(SignError::Sign),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    const URI: &str = "https://api.example.com/users";

    fn key(alg: Algorithm) -> SigningKey {
        SigningKey::generate(alg, "client").unwrap()
    }

    fn claims<'a>() -> ProofClaims<'a> {
        ProofClaims {
            method: "GET",
            uri: URI,
            access_token: Some(TOKEN),
            iat: NOW,
            jti: "proof-1",
            nonce: None,
        }
    }

    fn context(jkt: &str) -> ProofContext<'_> {
        ProofContext {
            method: "GET",
            uri: "https://API.example.com:443/users?page=2",
            access_token: Some(TOKEN.as_bytes()),
            jkt: Some(jkt),
            now: NOW,
            iat_window: 60,
            nonce: None,
            algorithms: AlgorithmSet::asymmetric(),
            keys: None,
        }
    }

    /// Signs exact header and payload objects with `key` (for malformed proofs).
    fn raw_proof(key: &SigningKey, header: &Value, payload: &Value) -> String {
        key.sign_raw(
            &serde_json::to_vec(header).unwrap(),
            &serde_json::to_vec(payload).unwrap(),
        )
        .unwrap()
    }

    fn public_jwk(key: &SigningKey) -> Value {
        let mut jwk = key.public_jwk();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk
    }

    #[test]
    fn accepts_a_good_proof_for_every_asymmetric_family() {
        for alg in [
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::EdDSA,
            Algorithm::PS384,
        ] {
            let key = key(alg);
            let jkt = key_thumbprint(&key).unwrap();
            let proof = make_proof(&key, &claims()).unwrap();
            let checked = check_proof(proof.as_bytes(), &context(&jkt)).unwrap();
            assert_eq!(checked.jti, "proof-1");
            assert_eq!(checked.jkt, jkt);
            assert_eq!(checked.iat, NOW);
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk: Value = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        let jwk = jwk.as_object().unwrap();
        assert_eq!(
            thumbprint(jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn htu_normalisation() {
        let same = [
            ("https://API.Example.com:443/a", "https://api.example.com/a"),
            ("HTTP://h:80", "http://h/"),
            ("http://h:8080/x?q=1#f", "http://h:8080/x"),
            ("https://h/%7euser/%2f", "https://h/~user/%2F"),
            ("https://[::1]:443/", "https://[::1]/"),
        ];
        for (input, expected) in same {
            assert_eq!(normalize_htu(input).as_deref(), Some(expected), "{input}");
        }
        for bad in [
            "/relative",
            "ftp://h/",
            "https://user@h/",
            "https://h:99999/",
            "https:///x",
            "https://h/%zz",
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_each_failed_check_by_name() {
        let key = key(Algorithm::ES256);
        let jkt = key_thumbprint(&key).unwrap();
        let check = |proof: &str| check_proof(proof.as_bytes(), &context(&jkt));
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key)});
        let payload = json!({"jti": "j", "htm": "GET", "htu": URI, "iat": NOW,
            "ath": access_token_hash(TOKEN.as_bytes())});
        assert!(check(&raw_proof(&key, &header, &payload)).is_ok());

        let with = |mut base: Value, name: &str, value: Value| {
            base.as_object_mut().unwrap().insert(name.into(), value);
            base
        };
        let without = |mut base: Value, name: &str| {
            base.as_object_mut().unwrap().remove(name);
            base
        };
        let cases = [
            (
                with(header.clone(), "typ", json!("JWT")),
                payload.clone(),
                "typ",
            ),
            (without(header.clone(), "typ"), payload.clone(), "typ"),
            (
                with(header.clone(), "alg", json!("HS256")),
                payload.clone(),
                "alg",
            ),
            (
                with(header.clone(), "alg", json!("none")),
                payload.clone(),
                "alg",
            ),
            (
                with(header.clone(), "alg", json!("ES384")),
                payload.clone(),
                "cannot verify",
            ),
            (
                with(header.clone(), "crit", json!(["x"])),
                payload.clone(),
                "crit",
            ),
            (
                without(header.clone(), "jwk"),
                payload.clone(),
                "no \"jwk\"",
            ),
            (
                with(
                    header.clone(),
                    "jwk",
                    with(public_jwk(&key), "d", json!("AAAA")),
                ),
                payload.clone(),
                "private key material",
            ),
            (
                header.clone(),
                with(payload.clone(), "htm", json!("POST")),
                "method",
            ),
            (
                header.clone(),
                with(
                    payload.clone(),
                    "htu",
                    json!("https://api.example.com/admin"),
                ),
                "is for https://api.example.com/admin",
            ),
            (
                header.clone(),
                with(payload.clone(), "htu", json!("https://evil.example/users")),
                "is for https://evil.example/users",
            ),
            (
                header.clone(),
                with(payload.clone(), "iat", json!(NOW - 61)),
                "window",
            ),
            (
                header.clone(),
                with(payload.clone(), "iat", json!(NOW + 61)),
                "window",
            ),
            (
                header.clone(),
                with(payload.clone(), "iat", json!("now")),
                "iat",
            ),
            (header.clone(), without(payload.clone(), "jti"), "jti"),
            (
                header.clone(),
                with(payload.clone(), "jti", json!("x".repeat(257))),
                "jti",
            ),
            (header.clone(), without(payload.clone(), "ath"), "ath"),
            (
                header.clone(),
                with(
                    payload.clone(),
                    "ath",
                    json!(access_token_hash(b"another.token.x")),
                ),
                "another token",
            ),
        ];
        // The right digest spelled any other way: padded, cut short, extended, standard alphabet.
        let right = access_token_hash(TOKEN.as_bytes());
        let spellings = [
            format!("{right}="),
            right[..42].to_owned(),
            format!("{right}AA"),
            right.replace('-', "+").replace('_', "/"),
            format!(" {right}"),
        ];
        let mut cases = cases.to_vec();
        for spelling in spellings.into_iter().filter(|s| *s != right) {
            cases.push((
                header.clone(),
                with(payload.clone(), "ath", json!(spelling)),
                "another token",
            ));
        }
        for (header, payload, expected) in cases {
            let error = check(&raw_proof(&key, &header, &payload)).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{header} {payload}: {error} should mention {expected:?}"
            );
            assert_eq!(error.error_code(), "invalid_dpop_proof");
        }
    }

    #[test]
    fn refuses_another_key_and_a_bad_signature() {
        let holder = key(Algorithm::ES256);
        let thief = key(Algorithm::ES256);
        let jkt = key_thumbprint(&holder).unwrap();
        let stolen = make_proof(&thief, &claims()).unwrap();
        assert!(matches!(
            check_proof(stolen.as_bytes(), &context(&jkt)),
            Err(ProofError::ThumbprintMismatch { .. })
        ));
        // The holder's key in the header, signed by the thief.
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&holder)});
        let payload = json!({"jti": "j", "htm": "GET", "htu": URI, "iat": NOW,
            "ath": access_token_hash(TOKEN.as_bytes())});
        let forged = raw_proof(&thief, &header, &payload);
        assert_eq!(
            check_proof(forged.as_bytes(), &context(&jkt)),
            Err(ProofError::Signature)
        );
    }

    /// A store of checked headers for tests and benches: a map under a lock.
    #[derive(Debug, Default)]
    struct KeptHeaders(std::sync::Mutex<std::collections::HashMap<Vec<u8>, Arc<ProofKey>>>);

    impl ProofKeys for KeptHeaders {
        fn get(&self, header: &[u8]) -> Option<Arc<ProofKey>> {
            self.0.lock().unwrap().get(header).cloned()
        }
        fn insert(&self, header: &[u8], key: Arc<ProofKey>) {
            self.0.lock().unwrap().insert(header.to_vec(), key);
        }
    }

    #[test]
    fn a_kept_header_decides_exactly_as_a_parsed_one() {
        let holder = key(Algorithm::ES256);
        let thief = key(Algorithm::ES256);
        let jkt = key_thumbprint(&holder).unwrap();
        let kept = KeptHeaders::default();
        let keeping = ProofContext {
            keys: Some(&kept),
            ..context(&jkt)
        };
        let first = make_proof(&holder, &claims()).unwrap();
        let checked = check_proof(first.as_bytes(), &keeping).unwrap();
        assert_eq!(kept.0.lock().unwrap().len(), 1, "the header is kept");
        // The next proof of the same key reuses it: same outcome as without the store.
        let mut second_claims = claims();
        second_claims.jti = "another";
        let second = make_proof(&holder, &second_claims).unwrap();
        assert_eq!(
            check_proof(second.as_bytes(), &keeping),
            check_proof(second.as_bytes(), &context(&jkt))
        );
        assert_eq!(kept.0.lock().unwrap().len(), 1);
        assert_eq!(checked.jkt, jkt);
        // A kept header is still compared with the token's cnf.jkt, and its key still checks
        // the signature: another token's proof, or the holder's header signed by a thief.
        let other_token = key_thumbprint(&thief).unwrap();
        assert!(matches!(
            check_proof(
                second.as_bytes(),
                &ProofContext {
                    jkt: Some(&other_token),
                    ..keeping
                }
            ),
            Err(ProofError::ThumbprintMismatch { .. })
        ));
        let header_b64 = first.split('.').next().unwrap();
        let payload = json!({"jti": "j", "htm": "GET", "htu": URI, "iat": NOW,
            "ath": access_token_hash(TOKEN.as_bytes())});
        let forged = raw_proof(&thief, &json!({}), &payload);
        let (_, rest) = forged.split_once('.').unwrap();
        let forged = format!("{header_b64}.{rest}");
        assert_eq!(
            check_proof(forged.as_bytes(), &keeping),
            Err(ProofError::Signature)
        );
        // Headers that fail are not kept.
        let none = raw_proof(
            &holder,
            &json!({"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(&holder)}),
            &payload,
        );
        assert!(check_proof(none.as_bytes(), &keeping).is_err());
        assert_eq!(kept.0.lock().unwrap().len(), 1);
        // Nor a well-formed header whose key is not the token's, or whose proof is not signed
        // by it: only a proof that passed keeps its header.
        let thiefs = make_proof(&thief, &claims()).unwrap();
        assert!(check_proof(thiefs.as_bytes(), &keeping).is_err());
        let thief_header = thiefs.split('.').next().unwrap();
        let unsigned = format!("{thief_header}.{rest}");
        let thief_context = ProofContext {
            jkt: Some(&other_token),
            ..keeping
        };
        assert_eq!(
            check_proof(unsigned.as_bytes(), &thief_context),
            Err(ProofError::Signature)
        );
        assert_eq!(kept.0.lock().unwrap().len(), 1, "no failed header is kept");
    }

    #[test]
    fn nonce_when_required() {
        let key = key(Algorithm::ES256);
        let jkt = key_thumbprint(&key).unwrap();
        let mut required = context(&jkt);
        required.nonce = Some("n-1");
        let plain = make_proof(&key, &claims()).unwrap();
        let error = check_proof(plain.as_bytes(), &required).unwrap_err();
        assert_eq!(error, ProofError::NonceRequired);
        assert_eq!(error.error_code(), "use_dpop_nonce");
        let stale = make_proof(
            &key,
            &ProofClaims {
                nonce: Some("n-0"),
                ..claims()
            },
        )
        .unwrap();
        assert_eq!(
            check_proof(stale.as_bytes(), &required),
            Err(ProofError::NonceRequired)
        );
        let fresh = make_proof(
            &key,
            &ProofClaims {
                nonce: Some("n-1"),
                ..claims()
            },
        )
        .unwrap();
        assert!(check_proof(fresh.as_bytes(), &required).is_ok());
        // After a rotation the previous nonce is still good; two rotations later it is not.
        let plain = context(&jkt);
        assert!(check_proof_with_nonces(fresh.as_bytes(), &plain, "n-2", Some("n-1")).is_ok());
        assert_eq!(
            check_proof_with_nonces(fresh.as_bytes(), &plain, "n-3", Some("n-2")),
            Err(ProofError::NonceRequired)
        );
    }

    #[test]
    fn refuses_structural_garbage() {
        let ctx = context("x");
        assert!(matches!(
            check_proof(b"a.b", &ctx),
            Err(ProofError::NotCompact)
        ));
        assert!(matches!(
            check_proof(b"a.b.c.d", &ctx),
            Err(ProofError::NotCompact)
        ));
        assert!(matches!(
            check_proof(b"!.b.c", &ctx),
            Err(ProofError::Json { .. })
        ));
        let big = vec![b'a'; MAX_PROOF_LEN + 1];
        assert!(matches!(
            check_proof(&big, &ctx),
            Err(ProofError::TooLarge(_))
        ));
        // Duplicate members in the header are refused (two parsers could read them differently).
        let header = br#"{"typ":"dpop+jwt","typ":"JWT","alg":"ES256"}"#;
        let proof = format!("{}.e30.c2ln", base64url::encode(header));
        assert!(matches!(
            check_proof(proof.as_bytes(), &ctx),
            Err(ProofError::Json { .. })
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::sync::OnceLock;

        fn fixture() -> &'static (String, String) {
            static FIXTURE: OnceLock<(String, String)> = OnceLock::new();
            FIXTURE.get_or_init(|| {
                let key = key(Algorithm::ES256);
                (
                    make_proof(&key, &claims()).unwrap(),
                    key_thumbprint(&key).unwrap(),
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// No single-byte change of a valid proof is accepted.
            #[test]
            fn no_single_byte_change_is_accepted(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let (proof, jkt) = fixture();
                let mut changed = proof.clone().into_bytes();
                let at = at.index(changed.len());
                prop_assume!(changed[at] != byte);
                changed[at] = byte;
                prop_assert!(check_proof(&changed, &context(jkt)).is_err());
            }
        }
    }
}
