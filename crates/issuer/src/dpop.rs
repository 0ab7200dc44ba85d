//! DPoP at the token endpoint (RFC 9449 §5, §8): a client that sends a `DPoP` proof with its
//! token request gets a DPoP-bound access token (`cnf.jkt`, `token_type` `DPoP`), and a public
//! client's refresh token is bound to the same key, so a later refresh needs a proof by it.
//!
//! The proof is checked with `jwtgate_core::dpop::check_proof` — the same checks the gateway
//! runs, less `ath` (no access token comes with a token request) — against `POST` and the token
//! endpoint's URL. Proof identifiers are remembered for the window in the gateway's own replay
//! cache (bounded; it refuses new proofs rather than forgetting live ones). With
//! `--dpop-nonce` the issuer requires a server nonce (§8): a proof without the current one gets
//! `use_dpop_nonce` and the nonce in `DPoP-Nonce`; nonces rotate every [`NONCE_LIFETIME`]
//! seconds and the previous one stays good for one more period.

use crate::params::OAuthError;
use crate::random;
use axum::http::HeaderMap;
use jwtgate_core::dpop::{check_proof, check_proof_with_nonces, ProofContext, ProofError};
use jwtgate_core::AlgorithmSet;
use jwtgate_engine::dpop::{LocalReplayCache, ReplayStore};
use std::sync::Mutex;

/// How far a proof's `iat` may be from now, seconds either side.
pub const IAT_WINDOW: i64 = 60;

/// Proofs remembered at most (for replay detection).
pub const REPLAY_ENTRIES: usize = 50_000;

/// Seconds a server nonce stays current.
pub const NONCE_LIFETIME: i64 = 300;

/// The token endpoint's DPoP state: seen proofs and, when required, the current nonces.
#[derive(Debug)]
pub(crate) struct DpopState {
    seen: LocalReplayCache,
    nonces: Option<Mutex<Nonces>>,
}

#[derive(Debug)]
struct Nonces {
    current: String,
    previous: Option<String>,
    rotates_at: i64,
}

impl DpopState {
    /// State for an issuer that requires server nonces or not.
    pub(crate) fn new(require_nonce: bool) -> DpopState {
        DpopState {
            seen: LocalReplayCache::new(REPLAY_ENTRIES),
            nonces: require_nonce.then(|| {
                Mutex::new(Nonces {
                    current: String::new(),
                    previous: None,
                    rotates_at: i64::MIN,
                })
            }),
        }
    }

    /// The current nonce (rotated when due), when nonces are required.
    fn nonce(&self, now: i64) -> Result<Option<(String, Option<String>)>, OAuthError> {
        let Some(nonces) = &self.nonces else {
            return Ok(None);
        };
        let mut nonces = crate::issuer::lock(nonces);
        if now >= nonces.rotates_at {
            let fresh = random::secret().map_err(OAuthError::server)?;
            let old = std::mem::replace(&mut nonces.current, fresh);
            nonces.previous = (!old.is_empty()).then_some(old);
            nonces.rotates_at = now.saturating_add(NONCE_LIFETIME);
        }
        Ok(Some((nonces.current.clone(), nonces.previous.clone())))
    }

    /// Checks the request's `DPoP` proof, if any, for `POST token_url`: the thumbprint of its
    /// key, or `None` without a proof.
    pub(crate) fn proof_key(
        &self,
        headers: &HeaderMap,
        token_url: &str,
        now: i64,
    ) -> Result<Option<String>, OAuthError> {
        let mut proofs = headers.get_all("dpop").iter();
        let Some(proof) = proofs.next() else {
            return Ok(None);
        };
        if proofs.next().is_some() {
            return Err(invalid_proof("the request has more than one DPoP header"));
        }
        let nonces = self.nonce(now)?;
        let context = ProofContext {
            method: "POST",
            uri: token_url,
            access_token: None,
            jkt: None,
            now,
            iat_window: IAT_WINDOW,
            nonce: None,
            algorithms: AlgorithmSet::asymmetric(),
            keys: None,
        };
        let checked = match &nonces {
            None => check_proof(proof.as_bytes(), &context),
            Some((current, previous)) => {
                check_proof_with_nonces(proof.as_bytes(), &context, current, previous.as_deref())
            }
        };
        let checked = checked.map_err(|error| match error {
            ProofError::NonceRequired => OAuthError::new("use_dpop_nonce", error.to_string())
                .with_dpop_nonce(nonces.map(|(current, _)| current)),
            other => invalid_proof(other.to_string()),
        })?;
        // A proof can be replayed while its iat is inside the window of some later now.
        let keep_until = checked.iat.saturating_add(IAT_WINDOW);
        match self
            .seen
            .first_use(&checked.jkt, &checked.jti, keep_until, now)
        {
            Ok(true) => Ok(Some(checked.jkt)),
            Ok(false) => Err(invalid_proof(
                "the DPoP proof was already used (its jti was seen inside the window): a replay",
            )),
            Err(_) => Err(OAuthError::new(
                "temporarily_unavailable",
                "too many DPoP proofs inside the window; try again shortly",
            )),
        }
    }
}

fn invalid_proof(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_dpop_proof", description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
    use jwtgate_core::{Algorithm, SigningKey};

    const URL: &str = "http://127.0.0.1:9000/oauth/token";
    const NOW: i64 = 1_800_000_000;

    fn headers(proof: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("dpop", HeaderValue::from_str(proof).unwrap());
        headers
    }

    fn proof(key: &SigningKey, jti: &str, nonce: Option<&str>) -> String {
        make_proof(
            key,
            &ProofClaims {
                method: "POST",
                uri: URL,
                access_token: None,
                iat: NOW,
                jti,
                nonce,
            },
        )
        .unwrap()
    }

    #[test]
    fn binds_to_the_proof_key_once_per_proof() {
        let state = DpopState::new(false);
        let key = SigningKey::generate(Algorithm::ES256, "c").unwrap();
        let jkt = state
            .proof_key(&headers(&proof(&key, "1", None)), URL, NOW)
            .unwrap();
        assert_eq!(jkt, Some(key_thumbprint(&key).unwrap()));
        let replay = state
            .proof_key(&headers(&proof(&key, "1", None)), URL, NOW)
            .unwrap_err();
        assert_eq!(replay.code, "invalid_dpop_proof");
        assert_eq!(state.proof_key(&HeaderMap::new(), URL, NOW).unwrap(), None);
        let elsewhere = state
            .proof_key(
                &headers(&proof(&key, "2", None)),
                "http://other/oauth/token",
                NOW,
            )
            .unwrap_err();
        assert_eq!(elsewhere.code, "invalid_dpop_proof");
    }

    #[test]
    fn nonces_are_asked_for_and_rotate() {
        let state = DpopState::new(true);
        let key = SigningKey::generate(Algorithm::ES256, "c").unwrap();
        let asked = state
            .proof_key(&headers(&proof(&key, "1", None)), URL, NOW)
            .unwrap_err();
        assert_eq!(asked.code, "use_dpop_nonce");
        let nonce = asked.dpop_nonce.clone().unwrap();
        assert!(state
            .proof_key(&headers(&proof(&key, "2", Some(&nonce))), URL, NOW)
            .unwrap()
            .is_some());
        // After one rotation the old nonce still works; after two it does not.
        let later = NOW + NONCE_LIFETIME;
        let late_proof = |jti: &str, at: i64| {
            make_proof(
                &key,
                &ProofClaims {
                    method: "POST",
                    uri: URL,
                    access_token: None,
                    iat: at,
                    jti,
                    nonce: Some(&nonce),
                },
            )
            .unwrap()
        };
        assert!(state
            .proof_key(&headers(&late_proof("3", later)), URL, later)
            .is_ok());
        let much_later = later + NONCE_LIFETIME;
        let stale = state
            .proof_key(&headers(&late_proof("4", much_later)), URL, much_later)
            .unwrap_err();
        assert_eq!(stale.code, "use_dpop_nonce");
        assert_ne!(stale.dpop_nonce, Some(nonce));
    }
}
