//! Verification as a sequence of typed states: [`UnverifiedToken`] (structure and header checked)
//! → [`SignedToken`] (signature checked with the one selected key) → [`Verified`] (claims checked
//! against the [`Policy`]). A state can only be reached through the one before it, so a caller
//! cannot read trusted claims without a verified signature.
//!
//! [`Verifier`] chains the three for the common case; [`explain`] runs every check and reports each.

use crate::alg::Algorithm;
use crate::claims::{captured_slot, Claim, ClaimSet, CompactClaims, StringItems};
use crate::internal::{json, members};
use crate::jwk::{KeySet, SelectedKey};
use crate::jws::{CompactJws, Header, MAX_SIGNATURE_LEN};
use crate::policy::Policy;
use crate::rejection::{IdTokenSigns, Reason, Rejection};
use crate::scope::{self, ScopeRequirement};
use crate::time::{self, UnixTime};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

/// A parsed token whose header passed the structural rules and the algorithm allowlist.
/// Nothing in it is trusted yet.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    jws: CompactJws<'a>,
}

impl<'a> UnverifiedToken<'a> {
    /// Parses `token` under `policy`'s size limit and algorithm allowlist.
    pub fn parse(token: &'a [u8], policy: &Policy) -> Result<UnverifiedToken<'a>, Rejection> {
        let jws = CompactJws::parse(token, policy.max_token_len).map_err(Reason::Malformed)?;
        UnverifiedToken::allowed(jws, policy)
    }

    /// [`UnverifiedToken::parse`] for a caller that verifies the token next and chooses its
    /// keys in between (the key registry): a token that starts with a recently parsed header
    /// segment is cut without the parse's whole-token pass, as [`Verifier::verify`] cuts it.
    /// Every refusal of the result — its own, and the caller's after
    /// [`TokenToVerify::check_structure`] — is the one the steps in order give.
    pub fn parse_to_verify(
        token: &'a [u8],
        policy: &Policy,
    ) -> Result<TokenToVerify<'a>, Rejection> {
        let Some(jws) = CompactJws::parse_after_recent_header(token, policy.max_token_len) else {
            return Ok(TokenToVerify {
                unverified: UnverifiedToken::parse(token, policy)?,
                skipped_pass: None,
            });
        };
        let to_verify = |unverified| TokenToVerify {
            unverified,
            skipped_pass: Some((token, policy.max_token_len)),
        };
        match UnverifiedToken::allowed(jws, policy) {
            Ok(unverified) => Ok(to_verify(unverified)),
            Err(refusal) => Err(structural_refusal(token, policy.max_token_len).unwrap_or(refusal)),
        }
    }

    /// The parsed token, when `policy` allows its algorithm.
    fn allowed(jws: CompactJws<'a>, policy: &Policy) -> Result<UnverifiedToken<'a>, Rejection> {
        let alg = jws.header().alg;
        if !policy.algorithms.contains(alg) {
            return Err(Reason::AlgorithmNotAllowed {
                alg,
                allowed: policy.algorithms,
            }
            .into());
        }
        Ok(UnverifiedToken { jws })
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        self.jws.header()
    }

    /// Decodes the claims *without* verifying anything: only for choosing a key source by `iss`
    /// or for display. Never base a decision on these.
    pub fn unverified_claims(&self) -> Result<Map<String, Value>, Rejection> {
        self.jws
            .decode_claims()
            .map_err(|e| Reason::BadPayload(e).into())
    }

    /// Chooses the key from `keys`, checks the signature, and validates the payload as a strict
    /// JSON object (capturing the registered claims the policy checks read).
    pub fn verify_signature(self, keys: &KeySet) -> Result<SignedToken, Rejection> {
        self.check_signature(keys)?;
        let payload_b64 = self.jws.payload_b64();
        let mut signed = SignedToken {
            header: self.jws.into_shared_header(),
            payload: None,
            captured: CompactClaims::default(),
            claims: OnceLock::new(),
        };
        signed.payload = CompactClaims::decode_and_scan_into(
            payload_b64,
            signed.header.kid.as_deref(),
            signed.header.typ.as_deref(),
            &mut signed.captured,
        )
        .map_err(Reason::BadPayload)?;
        Ok(signed)
    }

    /// [`UnverifiedToken::verify_signature`], then [`SignedToken::check`], into `verified` (a
    /// [`Verified::empty`]), filled where it is (not built in one state and moved into the
    /// next: the copies of a value this size, just written, cost more than the checks).
    #[inline(always)]
    fn verify_and_check(
        self,
        keys: &KeySet,
        policy: &Policy,
        now: UnixTime,
        verified: &mut Verified,
    ) -> Result<(), Rejection> {
        self.check_signature(keys)?;
        let payload_b64 = self.jws.payload_b64();
        let header = self.jws.into_shared_header();
        verified.alg = header.alg;
        verified.payload = CompactClaims::decode_and_scan_into(
            payload_b64,
            header.kid.as_deref(),
            header.typ.as_deref(),
            &mut verified.captured,
        )
        .map_err(Reason::BadPayload)?;
        verified.expires_at = exp_seconds(verified.captured.number("exp"));
        verified.check_claims(policy, &header, now)
    }

    /// Checks the signature and returns the raw payload bytes, whatever they are: the JWS layer
    /// alone, for payloads that are not JWT claims.
    pub fn verify_jws(&self, keys: &KeySet) -> Result<Vec<u8>, Rejection> {
        self.check_signature(keys)?;
        self.jws
            .decode_payload()
            .map_err(|e| Reason::BadPayload(e).into())
    }

    /// Chooses the key and checks the signature only (the payload is not decoded).
    pub(crate) fn check_signature(&self, keys: &KeySet) -> Result<(), Rejection> {
        let header = self.jws.header();
        let key = keys.select(header).map_err(Reason::NoKey)?;
        // A buffer no larger than the signature's size class: zeroing room for an RSA 8192
        // signature costs more than decoding a P-256 one.
        // (Four characters hold three bytes; a final group of two or three holds one or two.)
        let decoded_len = self.jws.signature_b64().len().saturating_mul(3) / 4;
        if decoded_len <= SMALL_SIGNATURE_LEN {
            self.check_with(key, &mut [0u8; SMALL_SIGNATURE_LEN])
        } else if decoded_len <= RSA_2048_LEN {
            self.check_with(key, &mut [0u8; RSA_2048_LEN])
        } else {
            self.check_with(key, &mut [0u8; MAX_SIGNATURE_LEN])
        }
    }

    /// [`UnverifiedToken::check_signature`] with the signature decoded into `buffer`.
    #[inline(always)]
    fn check_with(&self, key: SelectedKey<'_>, buffer: &mut [u8]) -> Result<(), Rejection> {
        let header = self.jws.header();
        let signature = self
            .jws
            .decode_signature_into(buffer)
            .map_err(Reason::Malformed)?;
        let message = self.jws.signing_input();
        let result = match key {
            SelectedKey::Public(jwk) => jwk.key().verify(header.alg, message, signature),
            SelectedKey::Secret(secret) => secret.key().verify(header.alg, message, signature),
        };
        result.map_err(|error| {
            Reason::BadSignature {
                alg: header.alg,
                kid: header.kid.clone(),
                error,
            }
            .into()
        })
    }
}

/// The longest ECDSA (P-521: 132 bytes) or EdDSA signature, decoded.
const SMALL_SIGNATURE_LEN: usize = 132;
/// An RSA 2048 signature (the most common), decoded.
const RSA_2048_LEN: usize = 256;

/// A token whose signature verified; its claims are authentic but not yet checked against policy.
#[derive(Debug, Clone)]
pub struct SignedToken {
    header: Arc<Header>,
    /// The decoded payload, kept only when it has members beyond the captured ones.
    payload: Option<Box<[u8]>>,
    /// The captured claims (and `kid`, `typ`), scanned from the payload.
    captured: CompactClaims,
    claims: OnceLock<Map<String, Value>>,
}

impl SignedToken {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The authentic, unchecked claims.
    pub fn claims(&self) -> &Map<String, Value> {
        self.claims.get_or_init(|| match &self.payload {
            // Validated by the scan with the same rules, so this cannot fail.
            Some(payload) => json::parse_object(payload).unwrap_or_default(),
            None => self.captured.to_map(),
        })
    }

    /// Applies `policy` at time `now`. The checks read the captured claims as the accepted
    /// token keeps them (a claim the policy names beyond those comes from the full map).
    pub fn check(self, policy: &Policy, now: UnixTime) -> Result<Verified, Rejection> {
        let header = self.header;
        let claims = OnceLock::new();
        if let Some(map) = self.claims.into_inner() {
            let _ = claims.set(Box::new(map));
        }
        let verified = Verified {
            alg: header.alg,
            expires_at: exp_seconds(self.captured.number("exp")),
            // A payload whose every member was captured is rebuilt from the captured members
            // when asked for, so it is not kept twice.
            payload: self.payload,
            captured: self.captured,
            claims,
        };
        verified.check_claims(policy, &header, now)?;
        Ok(verified)
    }
}

/// `exp` as Unix seconds (fractional values floored; 0 when absent, which a verified token never
/// is).
fn exp_seconds(exp: Option<f64>) -> i64 {
    exp.map_or(0, |exp| {
        // Truncated (saturating, NaN to 0), then one less when that rounded a negative
        // fraction up: `floor` without a call into libm (the baseline x86-64 has no rounding
        // instruction).
        let truncated = exp as i64;
        if (truncated as f64) > exp {
            truncated.saturating_sub(1)
        } else {
            truncated
        }
    })
}

/// An accepted token: signature, issuer, audience, times and policy scopes all checked.
///
/// Kept compact, as a verified-token cache holds many: the header's algorithm, `kid` and `typ`;
/// the captured registered claims that are present, as spans of one text buffer (see
/// `CompactClaims` in `claims.rs`); the decoded payload only when it has other members too;
/// and the full claims map only once someone asks for it ([`Verified::claims`], or
/// [`Verified::claim`] of a claim not kept as a JSON value). Per-request readers use the typed
/// accessors ([`Verified::text`], [`Verified::items`], [`Verified::number`],
/// [`Verified::claim_value`]), which never build the map.
#[derive(Debug, Clone)]
pub struct Verified {
    alg: Algorithm,
    expires_at: i64,
    payload: Option<Box<[u8]>>,
    captured: CompactClaims,
    claims: OnceLock<Box<Map<String, Value>>>,
}

impl PartialEq for Verified {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.payload == other.payload && self.captured == other.captured
    }
}

impl ClaimSet for Verified {
    fn claim(&self, name: &str) -> Option<&Value> {
        Verified::claim(self, name)
    }

    #[inline(always)]
    fn get(&self, name: &str) -> Claim<'_> {
        if captured_slot(name).is_some() {
            return self.captured.get(name);
        }
        Claim::of_value(self.claim(name))
    }

    fn as_map(&self) -> Option<&Map<String, Value>> {
        Some(self.claims())
    }

    #[inline(always)]
    fn text(&self, name: &str) -> Option<&str> {
        Verified::text(self, name)
    }

    #[inline(always)]
    fn items(&self, name: &str) -> StringItems<'_> {
        Verified::items(self, name)
    }
}

impl Verified {
    /// A value to verify a token into (no claims; never handed out as it is).
    fn empty() -> Verified {
        Verified {
            alg: Algorithm::RS256,
            expires_at: 0,
            payload: None,
            captured: CompactClaims::default(),
            claims: OnceLock::new(),
        }
    }

    /// Runs every check `policy` asks for, in order, on these claims (signed under `header`).
    #[inline(always)]
    fn check_claims(
        &self,
        policy: &Policy,
        header: &Header,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        // Each check of `Check::ALL` by its constant index, in order: straight-line code, each
        // check's own arm only (a loop dispatches every check through one indirect jump).
        const _: () = assert!(Check::ALL.len() == 12);
        macro_rules! run {
            ($($index:literal)*) => {$(
                let check = Check::ALL[$index];
                if check.applies(policy) && check.run_inline(policy, header, self, now).is_err() {
                    // Run the failing check again on every claim, for the complete diagnosis.
                    check.run(policy, header, &self.to_claims(), now)?;
                }
            )*};
        }
        run!(0 1 2 3 4 5 6 7 8 9 10 11);
        Ok(())
    }

    /// The algorithm the token was signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The header's `kid`, when present.
    pub fn kid(&self) -> Option<&str> {
        self.captured.kid()
    }

    /// The header's `typ`, when present.
    pub fn typ(&self) -> Option<&str> {
        self.captured.typ()
    }

    /// Every claim (the map is built on first use, from the payload or, when every member was
    /// captured, from the captured members).
    pub fn claims(&self) -> &Map<String, Value> {
        self.claims.get_or_init(|| {
            Box::new(match &self.payload {
                // Validated by `scan_object` with the same rules, so this cannot fail.
                Some(payload) => json::parse_object(payload).unwrap_or_default(),
                None => self.captured.to_map(),
            })
        })
    }

    /// A copy of every claim, without keeping the map in this value (see [`Verified::claims`]).
    pub fn to_claims(&self) -> Map<String, Value> {
        if let Some(map) = self.claims.get() {
            return (**map).clone();
        }
        match &self.payload {
            Some(payload) => json::parse_object(payload).unwrap_or_default(),
            None => self.captured.to_map(),
        }
    }

    /// Consumes the result, returning the claims.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims();
        self.claims.into_inner().map(|map| *map).unwrap_or_default()
    }

    /// One claim by name, borrowed. A captured claim kept as a JSON value (an object such as
    /// `cnf`) is returned as it is; any other claim comes from the full claims map, built on
    /// first use and kept (it grows the value): per-request code reads with
    /// [`Verified::claim_value`] or the typed accessors instead.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        if let Some(value) = self.captured.json(name) {
            return Some(value);
        }
        let absent = match captured_slot(name) {
            Some(_) => !self.captured.contains(name),
            None => self.payload.is_none(),
        };
        if absent {
            return None;
        }
        self.claims().get(name)
    }

    /// One claim by name, without building the full claims map: a captured claim is borrowed
    /// or rebuilt from its text, another one is found in the payload (or taken from the full
    /// map when already built).
    pub fn claim_value(&self, name: &str) -> Option<Cow<'_, Value>> {
        if captured_slot(name).is_some() {
            return self.captured.value(name);
        }
        if let Some(map) = self.claims.get() {
            return map.get(name).map(Cow::Borrowed);
        }
        // The payload passed the scan when it was verified, so the member is found by skipping
        // the others by their ends, and only it is built.
        let payload = self.payload.as_ref()?;
        members::find_member(payload, name).map(|raw| Cow::Owned(raw.to_value()))
    }

    /// A captured claim's text, when it is a string (`iss`, `sub`, `azp`, `client_id`, `jti`,
    /// `scope`, `scp`).
    #[inline(always)]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.captured.text(name)
    }

    /// The strings of a captured claim that is an array (`aud`, `scp`, `permissions`).
    #[inline(always)]
    pub fn items(&self, name: &str) -> StringItems<'_> {
        self.captured.items(name)
    }

    /// A captured numeric claim (`exp`, `nbf`, `iat`).
    #[inline(always)]
    pub fn number(&self, name: &str) -> Option<f64> {
        self.captured.number(name)
    }

    /// The audiences: `aud` as a string or the strings of `aud` as an array.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.text("aud").into_iter().chain(self.items("aud"))
    }

    /// An estimate of the memory this value holds: its own size plus every heap block (with the
    /// allocator's per-block overhead). A cache weighs entries with it.
    pub fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Verified>()
            + crate::claims::BLOCK_OVERHEAD
            + self
                .payload
                .as_ref()
                .map_or(0, |payload| payload.len() + crate::claims::BLOCK_OVERHEAD)
            + self.captured.heap_bytes()
            + self.claims.get().map_or(0, |map| {
                std::mem::size_of::<Map<String, Value>>()
                    + crate::claims::BLOCK_OVERHEAD
                    + crate::claims::map_heap_bytes(map)
            })
    }

    /// `sub`, when it is a string.
    #[inline(always)]
    pub fn subject(&self) -> Option<&str> {
        self.text("sub")
    }

    /// `exp` as Unix seconds (always present in a verified token; fractional values floored).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `iss` (always present in a verified token).
    #[inline(always)]
    pub fn issuer(&self) -> &str {
        self.text("iss").unwrap_or_default()
    }

    /// Every scope granted through `scope`, `scp` or `permissions` (a scope granted by two
    /// claims appears twice; see [`Verified::distinct_scopes`]).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        scope::granted(self)
    }

    /// The granted scopes without repeats, in first-seen order.
    pub fn distinct_scopes(&self) -> Vec<&str> {
        scope::distinct(self)
    }

    /// Checks a further requirement (for example a route's), giving `insufficient_scope` if unmet.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), Rejection> {
        if requirement.is_met(self) {
            return Ok(());
        }
        // A copy for the refusal: building the map into this value would grow a cached token
        // after the cache weighed it.
        check_scopes(requirement, &self.to_claims())
    }
}

/// Verifies tokens against one policy and one key set.
#[derive(Debug)]
pub struct Verifier {
    policy: Policy,
    keys: KeySet,
}

impl Verifier {
    /// A verifier for `policy` using `keys`. If the key set holds HMAC secrets, the HMAC
    /// algorithms they serve must also be in the policy's allowlist to be used.
    pub fn new(policy: Policy, keys: KeySet) -> Verifier {
        Verifier { policy, keys }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `token` (without any `Bearer ` prefix) at time `now`.
    ///
    /// The same as `UnverifiedToken::parse`, then [`UnverifiedToken::verify_signature`], then
    /// [`SignedToken::check`], with the same result and the same refusal, but without the
    /// parse's whole-token pass (printable bytes, where the dots are) for a token whose header
    /// segment was parsed recently: what that pass refuses, the payload's and signature's
    /// decoding refuses too, so it is run only for a token about to be refused, whose refusal
    /// it names when it has one (it would have come first).
    pub fn verify(&self, token: &[u8], now: UnixTime) -> Result<Verified, Rejection> {
        // The result is made first and the token verified into it, so the value (216 bytes)
        // is written once, where the caller receives it, not copied out of each step.
        let mut outcome = Ok(Verified::empty());
        if let Ok(verified) = &mut outcome {
            if let Err(refusal) = self.verify_into(token, now, verified) {
                outcome = Err(refusal);
            }
        }
        outcome
    }

    /// [`Verifier::verify`] into `verified` (a [`Verified::empty`]).
    #[inline(always)]
    fn verify_into(
        &self,
        token: &[u8],
        now: UnixTime,
        verified: &mut Verified,
    ) -> Result<(), Rejection> {
        UnverifiedToken::parse_to_verify(token, &self.policy)?.verify_into(
            &self.keys,
            &self.policy,
            now,
            verified,
        )
    }
}

/// A token about to be verified ([`UnverifiedToken::parse_to_verify`]), perhaps cut without the
/// parse's whole-token pass (printable bytes, where the dots are). What that pass refuses, the
/// payload's and the signature's decoding refuse too, so it runs only for a token about to be
/// refused, and names the refusal when it has one: it would have come first.
#[derive(Debug, Clone)]
pub struct TokenToVerify<'a> {
    unverified: UnverifiedToken<'a>,
    /// The whole token and the size limit, when the pass was skipped.
    skipped_pass: Option<(&'a [u8], usize)>,
}

impl<'a> TokenToVerify<'a> {
    /// The checked header.
    pub fn header(&self) -> &Header {
        self.unverified.header()
    }

    /// [`UnverifiedToken::unverified_claims`] (never base a decision on these), after the
    /// skipped pass: its refusal comes first, as in the parse.
    pub fn unverified_claims(&self) -> Result<Map<String, Value>, Rejection> {
        self.check_structure()?;
        self.unverified.unverified_claims()
    }

    /// Runs the skipped whole-token pass now: the parse's refusal, when it has one. A caller
    /// that refuses the token for its own reasons, or is about to do costly work for it (fetch
    /// keys for its `kid`), calls this first, so that its refusal is the one the steps in order
    /// give and a token the parse refuses costs nothing more.
    pub fn check_structure(&self) -> Result<(), Rejection> {
        parse_refusal(self.skipped_pass).map_or(Ok(()), Err)
    }

    /// [`UnverifiedToken::verify_signature`], then [`SignedToken::check`], in one step: the same
    /// result and the same refusal as the steps in order, without the [`SignedToken`] in between
    /// (the [`Verified`] is filled where it is, not moved from state to state).
    pub fn verify(
        self,
        keys: &KeySet,
        policy: &Policy,
        now: UnixTime,
    ) -> Result<Verified, Rejection> {
        let mut verified = Verified::empty();
        self.verify_into(keys, policy, now, &mut verified)?;
        Ok(verified)
    }

    /// [`TokenToVerify::verify`] into `verified` (a [`Verified::empty`]).
    #[inline(always)]
    fn verify_into(
        self,
        keys: &KeySet,
        policy: &Policy,
        now: UnixTime,
        verified: &mut Verified,
    ) -> Result<(), Rejection> {
        let skipped_pass = self.skipped_pass;
        self.unverified
            .verify_and_check(keys, policy, now, verified)
            .map_err(|refusal| parse_refusal(skipped_pass).unwrap_or(refusal))
    }
}

/// The refusal of the parse's whole-token pass when it was skipped (`Some((token, max_len))`)
/// and has one.
fn parse_refusal(skipped_pass: Option<(&[u8], usize)>) -> Option<Rejection> {
    skipped_pass.and_then(|(token, max_len)| structural_refusal(token, max_len))
}

/// The parse's refusal of `token`, when it has one.
#[cold]
#[inline(never)]
fn structural_refusal(token: &[u8], max_len: usize) -> Option<Rejection> {
    CompactJws::parse(token, max_len)
        .err()
        .map(|error| Reason::Malformed(error).into())
}

/// One claims check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `typ` is `at+jwt` (strict RFC 9068 mode only).
    AccessTokenType,
    /// `iss` equals a configured issuer.
    Issuer,
    /// `aud` contains a configured audience.
    Audience,
    /// `exp` is present and in the future.
    Expiry,
    /// `nbf`, if present, is not in the future.
    NotBefore,
    /// `iat`, if present, is not in the future.
    IssuedAt,
    /// `iat` is within the maximum age (when configured).
    MaxAge,
    /// `sub`, `client_id`, `jti` and `iat` present (strict RFC 9068 mode only).
    ProfileClaims,
    /// `azp`/`client_id` is an allowed client (when configured).
    Client,
    /// Claims required with fixed values (when configured).
    RequiredClaims,
    /// The token grants at most [`scope::MAX_GRANTED_SCOPES`] scope entries.
    ScopeCount,
    /// The policy's scopes are granted.
    Scopes,
}

impl Check {
    /// All checks in evaluation order (`invalid_token` causes before `insufficient_scope`).
    pub const ALL: [Check; 12] = [
        Check::AccessTokenType,
        Check::Issuer,
        Check::Audience,
        Check::Expiry,
        Check::NotBefore,
        Check::IssuedAt,
        Check::MaxAge,
        Check::ProfileClaims,
        Check::Client,
        Check::RequiredClaims,
        Check::ScopeCount,
        Check::Scopes,
    ];

    /// A short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            Check::AccessTokenType => "typ is at+jwt",
            Check::Issuer => "issuer",
            Check::Audience => "audience",
            Check::Expiry => "expiry (exp)",
            Check::NotBefore => "not before (nbf)",
            Check::IssuedAt => "issued at (iat)",
            Check::MaxAge => "maximum age",
            Check::ProfileClaims => "RFC 9068 claims",
            Check::Client => "client (azp/client_id)",
            Check::RequiredClaims => "required claims",
            Check::ScopeCount => "scope count",
            Check::Scopes => "scopes",
        }
    }

    /// Whether the policy asks for this check at all.
    pub fn applies(self, policy: &Policy) -> bool {
        match self {
            Check::AccessTokenType | Check::ProfileClaims => policy.require_at_jwt,
            Check::MaxAge => policy.max_age.is_some(),
            Check::Client => !policy.allowed_clients.is_empty(),
            Check::RequiredClaims => !policy.required_claims.is_empty(),
            _ => true,
        }
    }

    /// Runs the check (generic over the claim set, so that the request path's reads of
    /// [`Verified`] by constant names compile to direct slot reads).
    pub fn run<C: ClaimSet>(
        self,
        policy: &Policy,
        header: &Header,
        claims: &C,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        self.run_inline(policy, header, claims, now)
    }

    /// [`Check::run`], inlined into the request path's one loop over the checks (a call per
    /// check, with its frame, cost more than most checks).
    #[inline(always)]
    fn run_inline<C: ClaimSet>(
        self,
        policy: &Policy,
        header: &Header,
        claims: &C,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        let leeway = policy.leeway;
        let leeway_i = i64::try_from(leeway).unwrap_or(i64::MAX);
        match self {
            Check::AccessTokenType => {
                if header.is_access_token_type() {
                    Ok(())
                } else {
                    fail(Reason::NotAccessTokenType {
                        typ: header.typ.clone(),
                    })
                }
            }
            Check::Issuer => {
                let iss = string_claim(claims, "iss")?;
                if policy.issuers.iter().any(|i| i == iss) {
                    Ok(())
                } else {
                    fail(Reason::IssuerMismatch {
                        found: iss.to_owned(),
                        expected: policy.issuers.clone(),
                    })
                }
            }
            Check::Audience => check_audience(policy, claims),
            Check::Expiry => {
                let exp =
                    number_claim(claims, "exp")?.ok_or_else(|| Reason::MissingClaim("exp"))?;
                if time::compare(&exp, now.saturating_sub(leeway_i)) == Ordering::Greater {
                    Ok(())
                } else {
                    fail(Reason::Expired {
                        exp: time::approximate(&exp),
                        now,
                        leeway,
                    })
                }
            }
            Check::NotBefore => match number_claim(claims, "nbf")? {
                Some(nbf)
                    if time::compare(&nbf, now.saturating_add(leeway_i)) == Ordering::Greater =>
                {
                    fail(Reason::NotYetValid {
                        nbf: time::approximate(&nbf),
                        now,
                        leeway,
                    })
                }
                _ => Ok(()),
            },
            Check::IssuedAt => match number_claim(claims, "iat")? {
                Some(iat)
                    if time::compare(&iat, now.saturating_add(leeway_i)) == Ordering::Greater =>
                {
                    fail(Reason::IssuedInFuture {
                        iat: time::approximate(&iat),
                        now,
                        leeway,
                    })
                }
                _ => Ok(()),
            },
            Check::MaxAge => {
                let max_age = policy.max_age.unwrap_or(u64::MAX);
                let iat =
                    number_claim(claims, "iat")?.ok_or_else(|| Reason::MissingClaim("iat"))?;
                let oldest = now
                    .saturating_sub(i64::try_from(max_age).unwrap_or(i64::MAX))
                    .saturating_sub(leeway_i);
                if time::compare(&iat, oldest) == Ordering::Less {
                    fail(Reason::TooOld {
                        iat: time::approximate(&iat),
                        now,
                        max_age,
                    })
                } else {
                    Ok(())
                }
            }
            Check::ProfileClaims => {
                for name in ["sub", "client_id", "jti"] {
                    string_claim(claims, name)?;
                }
                number_claim(claims, "iat")?.ok_or_else(|| Reason::MissingClaim("iat"))?;
                Ok(())
            }
            Check::Client => {
                let client =
                    optional_string(claims, "azp")?.or(optional_string(claims, "client_id")?);
                match client {
                    Some(client) if policy.allowed_clients.iter().any(|c| c == client) => Ok(()),
                    client => fail(Reason::ClientNotAllowed {
                        client: client.map(str::to_owned),
                        allowed: policy.allowed_clients.clone(),
                    }),
                }
            }
            Check::RequiredClaims => {
                for (name, expected) in &policy.required_claims {
                    let found = claims.get(name);
                    if !found.equals(expected) {
                        return fail(Reason::ClaimValueMismatch {
                            name: name.clone(),
                            expected: expected.clone(),
                            found: found.to_value(),
                        });
                    }
                }
                Ok(())
            }
            Check::ScopeCount => match scope::exceeds_cap(claims) {
                Some(count) => fail(Reason::TooManyScopes {
                    count,
                    max: scope::MAX_GRANTED_SCOPES,
                }),
                None => Ok(()),
            },
            Check::Scopes => {
                if policy.scopes.is_met(claims) {
                    return Ok(());
                }
                check_scopes(&policy.scopes, claims)
            }
        }
    }
}

fn fail<T>(reason: Reason) -> Result<T, Rejection> {
    Err(reason.into())
}

#[inline(always)]
fn string_claim<'c, C: ClaimSet + ?Sized>(
    claims: &'c C,
    name: &'static str,
) -> Result<&'c str, Rejection> {
    optional_string(claims, name)?.ok_or_else(|| Reason::MissingClaim(name).into())
}

#[inline(always)]
fn optional_string<'c, C: ClaimSet + ?Sized>(
    claims: &'c C,
    name: &'static str,
) -> Result<Option<&'c str>, Rejection> {
    match claims.get(name) {
        Claim::Absent => Ok(None),
        Claim::Text(value) => Ok(Some(value)),
        _ => fail(Reason::InvalidClaim {
            name,
            expected: "a string",
        }),
    }
}

#[inline(always)]
fn number_claim<C: ClaimSet + ?Sized>(
    claims: &C,
    name: &'static str,
) -> Result<Option<serde_json::Number>, Rejection> {
    match claims.get(name) {
        Claim::Absent => Ok(None),
        Claim::Number(number) => Ok(Some(number)),
        _ => fail(Reason::InvalidClaim {
            name,
            expected: "a number (NumericDate)",
        }),
    }
}

fn check_audience<C: ClaimSet>(policy: &Policy, claims: &C) -> Result<(), Rejection> {
    let invalid = || Reason::InvalidClaim {
        name: "aud",
        expected: "a string or an array of strings",
    };
    let matches = |aud: &str| policy.audiences.iter().any(|a| a == aud);
    let ok = match claims.get("aud") {
        Claim::Absent => return fail(Reason::MissingClaim("aud")),
        Claim::Text(aud) => matches(aud),
        Claim::Strings(mut items) => items.any(matches),
        Claim::Json(Value::Array(items)) => {
            let mut any = false;
            for item in items {
                any |= matches(item.as_str().ok_or_else(invalid)?);
            }
            any
        }
        _ => return fail(invalid()),
    };
    if ok {
        return Ok(());
    }
    let found = audiences(claims);
    let claims: &dyn ClaimSet = claims;
    fail(Reason::AudienceMismatch {
        id_token: id_token_signs(claims, &found),
        found,
        expected: policy.audiences.clone(),
    })
}

/// The string audiences of `aud` (a string or an array; other members are left out).
pub fn audiences(claims: &dyn ClaimSet) -> Vec<String> {
    match claims.get("aud") {
        Claim::Text(aud) => vec![aud.to_owned()],
        Claim::Strings(items) => items.map(str::to_owned).collect(),
        Claim::Json(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Looks for the marks of an OpenID Connect ID token.
pub fn id_token_signs(claims: &dyn ClaimSet, audiences: &[String]) -> IdTokenSigns {
    let claims_found = ["nonce", "at_hash", "c_hash"]
        .into_iter()
        .filter(|name| claims.claim(name).is_some())
        .collect();
    let azp = claims.text("azp");
    let aud_is_client_id = audiences.len() == 1 && azp.is_some_and(|azp| azp == audiences[0]);
    IdTokenSigns {
        claims: claims_found,
        aud_is_client_id,
    }
}

fn check_scopes(requirement: &ScopeRequirement, claims: &dyn ClaimSet) -> Result<(), Rejection> {
    let missing = requirement.missing(claims);
    if missing.is_empty() {
        return Ok(());
    }
    let elsewhere = missing
        .iter()
        .flat_map(|scope| {
            claims
                .as_map()
                .map(|all| scope::found_elsewhere(all, scope))
                .unwrap_or_default()
                .into_iter()
                .map(move |claim| ((*scope).to_owned(), claim.to_owned()))
        })
        .collect();
    fail(Reason::InsufficientScope {
        required: requirement.clone(),
        missing: missing.into_iter().map(str::to_owned).collect(),
        granted: scope::distinct(claims)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        elsewhere,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use serde_json::json;

    /// `exp` is floored into the i64 range, at every edge, as clamping then `floor` does.
    #[test]
    fn exp_seconds_floors_and_saturates() {
        let reference = |exp: f64| exp.clamp(i64::MIN as f64, i64::MAX as f64).floor() as i64;
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            1.999_999,
            -1.000_001,
            1.8e9,
            1_800_000_000.75,
            -1_800_000_000.25,
            9.007_199_254_740_993e15,
            -9.007_199_254_740_993e15,
            i64::MAX as f64,
            i64::MIN as f64,
            9.3e18,
            -9.3e18,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut x = 0.3_f64;
        for _ in 0..2_000 {
            x = x * -3.7 + 0.123;
            if x.abs() > 1e25 {
                x = x.fract() * 1e3 - 0.77;
            }
            values.push(x);
            values.push(x.trunc());
        }
        for exp in values {
            assert_eq!(exp_seconds(Some(exp)), reference(exp), "{exp:?}");
        }
        assert_eq!(exp_seconds(None), 0);
    }

    /// A signed token's claims read the same whether the payload had members beyond the
    /// captured ones (kept, and parsed on request) or not (rebuilt from the captured members),
    /// and its header is the one the token carries, found among the recent headers or not.
    #[test]
    fn signed_claims_read_back_with_or_without_a_kept_payload() {
        let key = SigningKey::generate(Algorithm::ES256, "kid-signed").unwrap();
        let keys = KeySet::from_json(json!({ "keys": [key.public_jwk()] }).to_string().as_bytes())
            .unwrap();
        let policy = Policy::builder().issuer("i").audience("a").build().unwrap();
        for claims in [
            json!({"iss": "i", "aud": "a", "exp": 2_000, "sub": "s"}),
            json!({"iss": "i", "aud": "a", "exp": 2_000, "tenant": "t", "nested": {"x": [1]}}),
        ] {
            let token = key
                .sign(json!({"typ": "at+jwt"}).as_object().unwrap(), &claims)
                .unwrap();
            for _ in 0..2 {
                let signed = UnverifiedToken::parse(token.as_bytes(), &policy)
                    .unwrap()
                    .verify_signature(&keys)
                    .unwrap();
                assert_eq!(signed.claims(), claims.as_object().unwrap());
                assert_eq!(signed.header().kid.as_deref(), Some("kid-signed"));
                assert_eq!(signed.header().typ.as_deref(), Some("at+jwt"));
                let verified = signed.check(&policy, 1_000).unwrap();
                assert_eq!(verified.claims(), claims.as_object().unwrap());
                assert_eq!(verified.kid(), Some("kid-signed"));
            }
        }
    }

    /// Every check, passing and failing, reads the captured claims as the accepted token keeps
    /// them: the full claims map is never built for it (it would grow every cached token).
    #[test]
    fn the_checks_do_not_build_the_claims_map() {
        let key = SigningKey::generate(Algorithm::ES256, "k").unwrap();
        let keys = KeySet::from_json(json!({ "keys": [key.public_jwk()] }).to_string().as_bytes())
            .unwrap();
        let policy = |scope: &str, client: &str, azp: &str| {
            Policy::builder()
                .issuer("https://i/")
                .audience("api")
                .scopes(ScopeRequirement::all_of([scope]))
                .require_at_jwt(true)
                .allowed_client(client)
                .max_age(600)
                .require_claim("azp", Value::from(azp))
                .require_claim("aud", json!(["api", "other"]))
                .require_claim("iat", json!(1_000))
                .build()
                .unwrap()
        };
        let claims = json!({
            "iss": "https://i/", "aud": ["api", "other"], "exp": 2_000, "iat": 1_000,
            "nbf": 999.5, "sub": "s", "client_id": "c", "azp": "c", "jti": "j",
            "scope": "read:users write:users", "permissions": ["p"], "tenant": {"id": 7},
        });
        let token = key
            .sign(json!({"typ": "at+jwt"}).as_object().unwrap(), &claims)
            .unwrap();
        let verify = |policy: &Policy| {
            UnverifiedToken::parse(token.as_bytes(), policy)?
                .verify_signature(&keys)?
                .check(policy, 1_100)
        };
        let verified = verify(&policy("read:users", "c", "c")).unwrap();
        assert!(verified.claims.get().is_none(), "map built by the checks");
        assert_eq!(verified.claims(), claims.as_object().unwrap());
        // Refusals read the claims the same way, then diagnose from a copy.
        for (scope, client, azp, code) in [
            ("admin", "c", "c", "insufficient_scope"),
            ("read:users", "d", "c", "invalid_token"),
            ("read:users", "c", "x", "invalid_token"),
        ] {
            let refused = verify(&policy(scope, client, azp)).unwrap_err();
            assert_eq!(refused.code().as_str(), code, "{refused}");
        }
    }
}
