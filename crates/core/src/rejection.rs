//! Why a token was refused: an RFC 6750 error code, a machine-readable [`Reason`], and a
//! description a developer can act on.
//!
//! The code decides the HTTP answer (400 `invalid_request`, 401 `invalid_token`, 403
//! `insufficient_scope`); the reason is for programs, metrics and tests; the description names the
//! real cause ("this looks like an ID token", "the issuer differs only by a trailing slash").

use crate::alg::{Algorithm, AlgorithmSet};
use crate::crypto::SignatureError;
use crate::jwk::KeySelectionError;
use crate::jws::{HeaderError, JwsError};
use crate::scope::ScopeRequirement;
use crate::time::{human_duration, UnixTime};
use serde_json::Value;
use std::fmt;

/// The RFC 6750 §3.1 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (an empty token, a bad `Authorization` header): HTTP 400.
    InvalidRequest,
    /// The token is malformed, forged, expired, or not for this API: HTTP 401.
    InvalidToken,
    /// The token is valid but lacks a required scope: HTTP 403.
    InsufficientScope,
    /// The DPoP proof sent with a sender-constrained token is missing or fails a check
    /// (RFC 9449 §7.1): HTTP 401.
    InvalidDpopProof,
    /// The DPoP proof must carry the server's nonce (RFC 9449 §9): HTTP 401.
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as it appears in `WWW-Authenticate` and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The HTTP status RFC 6750 pairs with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => 401,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signs that a token is an OpenID Connect ID token rather than an access token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdTokenSigns {
    /// Claims only ID tokens carry (`nonce`, `at_hash`, `c_hash`).
    pub claims: Vec<&'static str>,
    /// `aud` is a single value equal to `azp`: a client id.
    pub aud_is_client_id: bool,
}

impl IdTokenSigns {
    /// True when anything points at an ID token.
    pub fn any(&self) -> bool {
        !self.claims.is_empty() || self.aud_is_client_id
    }

    /// Each sign in words: "aud is a client id", "has nonce", …
    pub fn descriptions(&self) -> Vec<String> {
        let mut signs = Vec::new();
        if self.aud_is_client_id {
            signs.push("aud is a client id".to_owned());
        }
        signs.extend(self.claims.iter().map(|c| format!("has {c}")));
        signs
    }
}

/// The precise cause of a rejection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The token could not be parsed (includes opaque tokens, JWEs and header rule violations).
    Malformed(JwsError),
    /// The header's algorithm is not in the allowlist.
    AlgorithmNotAllowed {
        /// The header's algorithm.
        alg: Algorithm,
        /// What the policy allows.
        allowed: AlgorithmSet,
    },
    /// No single key could be chosen.
    NoKey(KeySelectionError),
    /// The issuer's keys could not be obtained, or no key fits and refreshing the set failed.
    /// Still `invalid_token`: a key source problem is never a server error for the token.
    KeysUnavailable {
        /// Where the keys come from (a URL, file or issuer).
        source: String,
        /// Why fetching failed.
        error: String,
        /// The selection failure on the keys still held, if any were.
        selection: Option<KeySelectionError>,
    },
    /// The signature does not verify.
    BadSignature {
        /// The algorithm.
        alg: Algorithm,
        /// The key id used.
        kid: Option<String>,
        /// The failure.
        error: SignatureError,
    },
    /// The payload is not a JSON object (or not valid base64url).
    BadPayload(JwsError),
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type.
    InvalidClaim {
        /// Claim name.
        name: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// `iss` is not a configured issuer.
    IssuerMismatch {
        /// The token's `iss`.
        found: String,
        /// The configured issuers.
        expected: Vec<String>,
    },
    /// `aud` contains no configured audience.
    AudienceMismatch {
        /// The token's audiences.
        found: Vec<String>,
        /// The configured audiences.
        expected: Vec<String>,
        /// Whether this looks like an ID token.
        id_token: IdTokenSigns,
    },
    /// `now ≥ exp + leeway`.
    Expired {
        /// The token's `exp`.
        exp: f64,
        /// The time checked against.
        now: UnixTime,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// `nbf > now + leeway`.
    NotYetValid {
        /// The token's `nbf`.
        nbf: f64,
        /// The time checked against.
        now: UnixTime,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// `iat > now + leeway`.
    IssuedInFuture {
        /// The token's `iat`.
        iat: f64,
        /// The time checked against.
        now: UnixTime,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// Older than the policy's maximum age.
    TooOld {
        /// The token's `iat`.
        iat: f64,
        /// The time checked against.
        now: UnixTime,
        /// The maximum age in seconds.
        max_age: u64,
    },
    /// Strict RFC 9068 mode and `typ` is not `at+jwt`.
    NotAccessTokenType {
        /// The header's `typ`.
        typ: Option<String>,
    },
    /// `azp`/`client_id` is not an allowed client.
    ClientNotAllowed {
        /// The token's client, if it names one.
        client: Option<String>,
        /// The allowed clients.
        allowed: Vec<String>,
    },
    /// A claim required with a given value is missing or different.
    ClaimValueMismatch {
        /// Claim name.
        name: String,
        /// The required value.
        expected: Value,
        /// The token's value.
        found: Option<Value>,
    },
    /// The token grants more scope entries than the cap ([`crate::scope::MAX_GRANTED_SCOPES`]).
    TooManyScopes {
        /// Entries granted (repeats counted).
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A required scope is not granted.
    InsufficientScope {
        /// What was required.
        required: ScopeRequirement,
        /// The required scopes not granted.
        missing: Vec<String>,
        /// The scopes the token does grant.
        granted: Vec<String>,
        /// Claims other than scope/scp/permissions that contain a missing scope: (scope, claim).
        elsewhere: Vec<(String, String)>,
    },
    /// A revocation rule refuses the (otherwise valid) token.
    Revoked {
        /// Which rule, in words (`jti`, `subject, issued before …`).
        rule: String,
    },
}

/// A refused token: code, reason and description. The reason is boxed so that `Result<_,
/// Rejection>` stays small on the accepting path.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    reason: Box<Reason>,
}

impl Rejection {
    /// Wraps a reason.
    pub fn new(reason: Reason) -> Rejection {
        Rejection {
            reason: Box::new(reason),
        }
    }

    /// The machine-readable cause.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The RFC 6750 error code.
    pub fn code(&self) -> ErrorCode {
        match self.reason.as_ref() {
            Reason::Malformed(JwsError::Empty) => ErrorCode::InvalidRequest,
            Reason::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            _ => ErrorCode::InvalidToken,
        }
    }

    /// A one-sentence description for `error_description` and logs.
    pub fn description(&self) -> String {
        describe(&self.reason)
    }

    /// A suggestion for fixing the cause, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        hint(&self.reason)
    }

    /// A short, stable label for the cause (for metrics and logs): `expired`, `bad_signature`, …
    pub fn kind(&self) -> &'static str {
        match self.reason.as_ref() {
            Reason::Malformed(JwsError::Empty) => "empty_token",
            Reason::Malformed(JwsError::Opaque) => "opaque_token",
            Reason::Malformed(JwsError::Jwe { .. }) => "jwe",
            Reason::Malformed(JwsError::TooLarge { .. }) => "too_large",
            Reason::Malformed(JwsError::Header(_)) => "bad_header",
            Reason::Malformed(_) => "malformed",
            Reason::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Reason::NoKey(_) => "no_key",
            Reason::KeysUnavailable { .. } => "keys_unavailable",
            Reason::BadSignature { .. } => "bad_signature",
            Reason::BadPayload(_) => "bad_payload",
            Reason::MissingClaim(_) => "missing_claim",
            Reason::InvalidClaim { .. } => "invalid_claim",
            Reason::IssuerMismatch { .. } => "issuer_mismatch",
            Reason::AudienceMismatch { id_token, .. } if id_token.any() => "id_token",
            Reason::AudienceMismatch { .. } => "audience_mismatch",
            Reason::Expired { .. } => "expired",
            Reason::NotYetValid { .. } => "not_yet_valid",
            Reason::IssuedInFuture { .. } => "issued_in_future",
            Reason::TooOld { .. } => "too_old",
            Reason::NotAccessTokenType { .. } => "not_access_token_type",
            Reason::ClientNotAllowed { .. } => "client_not_allowed",
            Reason::ClaimValueMismatch { .. } => "claim_value_mismatch",
            Reason::TooManyScopes { .. } => "too_many_scopes",
            Reason::InsufficientScope { .. } => "insufficient_scope",
            Reason::Revoked { .. } => "revoked",
        }
    }
}

impl From<Reason> for Rejection {
    fn from(reason: Reason) -> Self {
        Rejection::new(reason)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

impl std::error::Error for Rejection {}

/// The most granted scopes a description lists (it becomes a header value).
const SCOPES_SHOWN: usize = 32;

fn list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    quoted.join(", ")
}

const OPAQUE_HINT: &str = "an opaque access token is not a JWT and cannot be verified locally; \
Auth0 issues opaque access tokens when no `audience` is requested: request the token with \
`audience` set to this API's identifier (auth0-spa-js: authorizationParams.audience)";

fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Malformed(JwsError::Empty) => "the bearer token is empty".to_owned(),
        Reason::Malformed(JwsError::Opaque) => {
            "token is an opaque access token, not a JWT: request it with an `audience`".to_owned()
        }
        Reason::Malformed(JwsError::Jwe { alg_enc }) => {
            let detail = alg_enc
                .as_ref()
                .map(|(alg, enc)| format!(" (alg {alg}, enc {enc})"))
                .unwrap_or_default();
            format!(
                "token is an encrypted JWE{detail}, not a signed JWT; Auth0 returns such opaque \
                 tokens when no `audience` is requested: request it with an `audience`"
            )
        }
        Reason::Malformed(JwsError::Header(HeaderError::AlgNone(name))) => {
            format!("the token is unsigned (alg {name:?}); unsigned tokens are never accepted")
        }
        Reason::Malformed(error) => format!("malformed token: {error}"),
        Reason::AlgorithmNotAllowed { alg, allowed } => {
            format!("algorithm {alg} is not allowed (allowed: {allowed})")
        }
        Reason::NoKey(error) => format!("no verification key: {error}"),
        Reason::KeysUnavailable {
            source,
            error,
            selection,
        } => match selection {
            Some(selection) => format!(
                "no verification key: {selection}; the keys could not be refreshed from {source}: {error}"
            ),
            None => format!("the issuer's keys could not be loaded from {source}: {error}"),
        },
        Reason::BadSignature { alg, kid, error } => {
            let kid = kid
                .as_ref()
                .map(|k| format!(" with key {k:?}"))
                .unwrap_or_default();
            format!("the {alg} signature is invalid{kid}: {error}")
        }
        Reason::BadPayload(error) => format!("malformed claims: {error}"),
        Reason::MissingClaim(name) => format!("the token has no \"{name}\" claim"),
        Reason::InvalidClaim { name, expected } => {
            format!("the \"{name}\" claim must be {expected}")
        }
        Reason::IssuerMismatch { found, expected } => {
            let slash = expected
                .iter()
                .find(|e| e.trim_end_matches('/') == found.trim_end_matches('/'));
            match slash {
                Some(close) => format!(
                    "issuer {found:?} differs from the configured {close:?} only by a trailing \
                     slash; issuers are compared exactly (Auth0's issuer ends with '/')"
                ),
                None => format!(
                    "issuer {found:?} is not accepted (expected {})",
                    list(expected)
                ),
            }
        }
        Reason::AudienceMismatch {
            found,
            expected,
            id_token,
        } => {
            let mut text = format!(
                "audience {} does not include {}",
                list(found),
                list(expected)
            );
            if id_token.any() {
                let signs = id_token.descriptions();
                text.push_str(&format!(
                    "; this looks like an ID token ({}): send the access token instead",
                    signs.join(", ")
                ));
            }
            text
        }
        Reason::Expired { exp, now, leeway } => {
            let ago = *now as f64 - exp;
            let mut text = format!("the token expired {} ago", human_duration(ago));
            if *leeway > 0 {
                text.push_str(&format!(" (leeway {leeway} s)"));
            }
            if ago <= 300.0 {
                text.push_str("; if the clocks differ slightly, allow a leeway");
            }
            text
        }
        Reason::NotYetValid { nbf, now, .. } => format!(
            "the token is not valid yet (nbf is {} in the future): clock skew between the issuer \
             and this machine?",
            human_duration(nbf - *now as f64)
        ),
        Reason::IssuedInFuture { iat, now, .. } => format!(
            "the token was issued {} in the future (iat): the issuer's clock is ahead of this \
             machine's (clock skew); allow a leeway",
            human_duration(iat - *now as f64)
        ),
        Reason::TooOld { iat, now, max_age } => format!(
            "the token was issued {} ago, more than the maximum age of {max_age} s",
            human_duration(*now as f64 - iat)
        ),
        Reason::NotAccessTokenType { typ } => format!(
            "the token's typ is {}, not \"at+jwt\" (RFC 9068 access token profile required)",
            typ.as_deref()
                .map_or_else(|| "absent".to_owned(), |t| format!("{t:?}"))
        ),
        Reason::ClientNotAllowed { client, allowed } => match client {
            Some(client) => format!(
                "client {client:?} is not allowed (allowed: {})",
                list(allowed)
            ),
            None => "the token names no client (azp or client_id) and the policy requires one"
                .to_owned(),
        },
        Reason::ClaimValueMismatch {
            name,
            expected,
            found,
        } => match found {
            Some(found) => format!("claim {name:?} is {found}, expected {expected}"),
            None => format!("claim {name:?} is missing, expected {expected}"),
        },
        Reason::TooManyScopes { count, max } => format!(
            "the token grants {count} scope entries (scope, scp and permissions together); \
             at most {max} are accepted"
        ),
        Reason::InsufficientScope {
            required,
            missing,
            granted,
            elsewhere,
        } => {
            let granted_text = if granted.is_empty() {
                "the token grants no scopes".to_owned()
            } else if granted.len() > SCOPES_SHOWN {
                format!(
                    "the token grants: {} … and {} more",
                    granted[..SCOPES_SHOWN].join(" "),
                    granted.len() - SCOPES_SHOWN
                )
            } else {
                format!("the token grants: {}", granted.join(" "))
            };
            let what = match required.mode() {
                crate::scope::ScopeMode::AllOf => format!("missing scope {}", missing.join(" ")),
                crate::scope::ScopeMode::AnyOf => {
                    format!("needs one of the scopes {}", missing.join(" "))
                }
            };
            let mut text = format!("{what} ({granted_text})");
            for (scope, claim) in elsewhere {
                text.push_str(&format!(
                    "; {scope} appears only in claim {claim:?}, which does not grant scopes \
                     (use scope, scp or permissions)"
                ));
            }
            text
        }
        Reason::Revoked { rule } => format!("token revoked (by {rule})"),
    }
}

fn hint(reason: &Reason) -> Option<String> {
    Some(match reason {
        Reason::Malformed(JwsError::Opaque) | Reason::Malformed(JwsError::Jwe { .. }) => {
            OPAQUE_HINT.to_owned()
        }
        Reason::Malformed(JwsError::SegmentCount(_)) => format!(
            "a signed JWT is three base64url segments separated by dots; a token of another \
             shape may be an opaque access token from your provider: {OPAQUE_HINT}"
        ),
        Reason::Malformed(JwsError::Empty) => {
            "send `Authorization: Bearer <access token>` with a non-empty token".to_owned()
        }
        Reason::Malformed(JwsError::TooLarge { .. }) => {
            "tokens this large are refused before decoding; raise the limit only if your issuer \
             really issues them"
                .to_owned()
        }
        Reason::Malformed(JwsError::Header(HeaderError::UnsupportedAlg(_))) => {
            "jwtgate verifies RS/PS/ES 256-512, EdDSA, and HS256-512 with an explicit secret"
                .to_owned()
        }
        Reason::AlgorithmNotAllowed { .. } => {
            "allow the algorithm explicitly (--alg) if your issuer really signs with it".to_owned()
        }
        Reason::NoKey(KeySelectionError::UnknownKid { .. }) => {
            "the issuer may have rotated its keys, or the token comes from another issuer or \
             tenant: compare the token's kid with the JWKS"
                .to_owned()
        }
        Reason::NoKey(KeySelectionError::NoSecret(_)) => {
            "HMAC tokens need the shared secret configured explicitly (--secret-file); an \
             issuer's JWKS never carries it"
                .to_owned()
        }
        Reason::NoKey(_) => {
            "check that the key set is the issuer's and lists this token's key".to_owned()
        }
        Reason::KeysUnavailable { .. } => {
            "the issuer's JWKS endpoint is failing or unreachable from here: check its URL, the \
             network path and the provider's status"
                .to_owned()
        }
        Reason::BadSignature { .. } => {
            "the token was altered, or signed by a different key with the same kid (another \
             tenant or environment?)"
                .to_owned()
        }
        Reason::IssuerMismatch { .. } => {
            "configure the issuer exactly as the token's iss claim (including any trailing slash)"
                .to_owned()
        }
        Reason::AudienceMismatch { id_token, .. } if id_token.any() => {
            "an ID token is for the client; APIs accept access tokens (auth0-spa-js: \
             getTokenSilently() with authorizationParams.audience, not getIdTokenClaims().__raw)"
                .to_owned()
        }
        Reason::AudienceMismatch { .. } => {
            "request the token with this API's identifier as `audience`".to_owned()
        }
        Reason::Expired { .. } => "get a fresh token (refresh or log in again)".to_owned(),
        Reason::NotYetValid { .. } | Reason::IssuedInFuture { .. } => {
            "synchronise clocks (NTP) or allow a small leeway (--leeway 30)".to_owned()
        }
        Reason::InsufficientScope { .. } => {
            "request the scope when getting the token; with Auth0 RBAC, grant the permission to \
             the user or role and enable \"Add Permissions in the Access Token\""
                .to_owned()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc6750() {
        assert_eq!(
            Rejection::new(Reason::Malformed(JwsError::Empty)).code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            Rejection::new(Reason::MissingClaim("exp")).code(),
            ErrorCode::InvalidToken
        );
        let scope = Reason::InsufficientScope {
            required: ScopeRequirement::all_of(["read:users"]),
            missing: vec!["read:users".into()],
            granted: vec![],
            elsewhere: vec![],
        };
        assert_eq!(Rejection::new(scope).code().http_status(), 403);
    }

    #[test]
    fn trailing_slash_is_named() {
        let r = Rejection::new(Reason::IssuerMismatch {
            found: "https://t.auth0.com".into(),
            expected: vec!["https://t.auth0.com/".into()],
        });
        assert!(r.description().contains("only by a trailing slash"));
    }

    #[test]
    fn opaque_tokens_mention_audience() {
        let r = Rejection::new(Reason::Malformed(JwsError::Opaque));
        assert!(r.description().contains("opaque"));
        assert!(r.hint().is_some_and(
            |h| h.contains("Auth0 issues opaque access tokens when no `audience` is requested")
        ));
    }
}
