//! Every check of a verification, one by one, for people debugging a refused token.
//!
//! [`explain`] runs the same checks as [`Verifier::verify`](crate::Verifier::verify), in the same
//! order, but keeps going after a failure wherever the later checks still make sense: when the
//! signature fails, the claims are still checked (and marked unverified) so one run shows
//! everything that is wrong. The overall outcome is always exactly what `verify` would return.

use crate::jwk::{KeySet, SelectedKey};
use crate::jws::{CompactJws, JwsError};
use crate::policy::Policy;
use crate::rejection::{Reason, Rejection};
use crate::scope;
use crate::time::{self, UnixTime};
use crate::verify::{Check, UnverifiedToken, Verified};
use serde_json::{Map, Value};

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The check passed; the text says what was found.
    Pass(String),
    /// The check failed.
    Fail(Rejection),
    /// The check could not run; the text says why.
    Skipped(String),
}

/// One line of an explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What was checked.
    pub name: String,
    /// How it went.
    pub status: Status,
}

/// Everything [`explain`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Each check in order.
    pub steps: Vec<Step>,
    /// The decoded header, when it could be decoded.
    pub header: Option<Map<String, Value>>,
    /// The decoded claims (verified or not), when they could be decoded.
    pub claims: Option<Map<String, Value>>,
    /// Exactly what `Verifier::verify` returns for the same inputs.
    pub outcome: Result<Verified, Rejection>,
}

fn step(name: impl Into<String>, status: Status) -> Step {
    Step {
        name: name.into(),
        status,
    }
}

/// Runs every check on `token` and reports each.
pub fn explain(token: &[u8], policy: &Policy, keys: &KeySet, now: UnixTime) -> Explanation {
    let mut steps = Vec::new();
    let mut first_failure: Option<Rejection> = None;
    let mut fail = |steps: &mut Vec<Step>, name: &str, rejection: Rejection| {
        if first_failure.is_none() {
            first_failure = Some(rejection.clone());
        }
        steps.push(step(name, Status::Fail(rejection)));
    };

    steps.push(step(
        "size",
        if token.len() <= policy.max_token_len() {
            Status::Pass(format!(
                "{} bytes (limit {})",
                token.len(),
                policy.max_token_len()
            ))
        } else {
            Status::Fail(
                Reason::Malformed(JwsError::TooLarge {
                    len: token.len(),
                    max: policy.max_token_len(),
                })
                .into(),
            )
        },
    ));
    let jws = match CompactJws::parse(token, policy.max_token_len()) {
        Ok(jws) => jws,
        Err(error) => {
            let rejection = Rejection::new(Reason::Malformed(error));
            if matches!(steps.last().map(|s| &s.status), Some(Status::Fail(_))) {
                return finish(steps, None, None, rejection);
            }
            steps.push(step(
                "structure and header",
                Status::Fail(rejection.clone()),
            ));
            return finish(steps, None, None, rejection);
        }
    };
    let header = jws.header().clone();
    steps.push(step(
        "structure and header",
        Status::Pass(format!(
            "JWS compact, alg {}{}{}",
            header.alg,
            header
                .kid
                .as_ref()
                .map(|k| format!(", kid {k:?}"))
                .unwrap_or_default(),
            header
                .typ
                .as_ref()
                .map(|t| format!(", typ {t:?}"))
                .unwrap_or_default(),
        )),
    ));
    let raw_header = Some(header.raw().clone());
    let token_state = match UnverifiedToken::parse(token, policy) {
        Ok(state) => {
            steps.push(step(
                "algorithm allowed",
                Status::Pass(format!("{} (allowed: {})", header.alg, policy.algorithms())),
            ));
            Some(state)
        }
        Err(rejection) => {
            fail(&mut steps, "algorithm allowed", rejection);
            None
        }
    };

    let mut signature_ok = false;
    match keys.select(&header) {
        Ok(key) => {
            let description = match key {
                SelectedKey::Public(jwk) => format!(
                    "{} key{}",
                    jwk.key().kind().describe(),
                    jwk.kid().map(|k| format!(" {k:?}")).unwrap_or_default()
                ),
                SelectedKey::Secret(secret) => {
                    format!("configured secret ({} bytes)", secret.key().len())
                }
            };
            steps.push(step("key selection", Status::Pass(description)));
            match &token_state {
                Some(state) => match state.check_signature(keys) {
                    Ok(()) => {
                        signature_ok = true;
                        steps.push(step(
                            "signature",
                            Status::Pass(format!("valid {}", header.alg)),
                        ));
                    }
                    Err(rejection) => fail(&mut steps, "signature", rejection),
                },
                None => steps.push(step(
                    "signature",
                    Status::Skipped("algorithm not allowed".into()),
                )),
            }
        }
        Err(error) => {
            fail(&mut steps, "key selection", Reason::NoKey(error).into());
            steps.push(step("signature", Status::Skipped("no key".into())));
        }
    }

    let claims = match jws
        .decode_claims()
        .map_err(|e| Rejection::from(Reason::BadPayload(e)))
    {
        Ok(claims) => {
            steps.push(step(
                "claims",
                Status::Pass(format!("JSON object with {} claims", claims.len())),
            ));
            claims
        }
        Err(rejection) => {
            fail(&mut steps, "claims", rejection.clone());
            let outcome = first_failure.unwrap_or(rejection);
            return finish(steps, raw_header, None, outcome);
        }
    };
    let suffix = if signature_ok {
        ""
    } else {
        " (unverified claims)"
    };
    for check in Check::ALL {
        if !check.applies(policy) {
            continue;
        }
        let name = format!("{}{suffix}", check.name());
        match check.run(policy, &header, &claims, now) {
            Ok(()) => steps.push(step(
                name,
                Status::Pass(pass_detail(check, policy, &claims, now)),
            )),
            Err(rejection) => fail(&mut steps, &name, rejection),
        }
    }
    let outcome = UnverifiedToken::parse(token, policy)
        .and_then(|state| state.verify_signature(keys))
        .and_then(|signed| signed.check(policy, now));
    Explanation {
        steps,
        header: raw_header,
        claims: Some(claims),
        outcome,
    }
}

fn finish(
    steps: Vec<Step>,
    header: Option<Map<String, Value>>,
    claims: Option<Map<String, Value>>,
    rejection: Rejection,
) -> Explanation {
    Explanation {
        steps,
        header,
        claims,
        outcome: Err(rejection),
    }
}

fn when(claims: &Map<String, Value>, name: &str, now: UnixTime) -> Option<String> {
    let value = claims.get(name)?.as_f64()?;
    let delta = value - now as f64;
    let relative = if delta >= 0.0 {
        format!("in {}", time::human_duration(delta))
    } else {
        format!("{} ago", time::human_duration(delta))
    };
    Some(format!("{} ({relative})", time::format_utc(value)))
}

fn pass_detail(
    check: Check,
    policy: &Policy,
    claims: &Map<String, Value>,
    now: UnixTime,
) -> String {
    let text = |name: &str| claims.get(name).map(|v| v.to_string()).unwrap_or_default();
    match check {
        Check::AccessTokenType => "at+jwt".to_owned(),
        Check::Issuer => text("iss"),
        Check::Audience => {
            let wanted: Vec<&str> = policy.audiences().iter().map(String::as_str).collect();
            format!("{} (accepted: {})", text("aud"), wanted.join(", "))
        }
        Check::Expiry => when(claims, "exp", now).unwrap_or_default(),
        Check::NotBefore => when(claims, "nbf", now).unwrap_or_else(|| "absent".to_owned()),
        Check::IssuedAt => when(claims, "iat", now).unwrap_or_else(|| "absent".to_owned()),
        Check::MaxAge => format!("issued within {} s", policy.max_age().unwrap_or_default()),
        Check::ProfileClaims => "sub, client_id, jti, iat present".to_owned(),
        Check::Client => format!(
            "{}",
            claims
                .get("azp")
                .or_else(|| claims.get("client_id"))
                .cloned()
                .unwrap_or(Value::Null)
        ),
        Check::RequiredClaims => "all present with the required values".to_owned(),
        Check::ScopeCount => format!(
            "{} scope entries (at most {})",
            scope::granted(claims).count(),
            scope::MAX_GRANTED_SCOPES
        ),
        Check::Scopes => {
            let granted = scope::distinct(claims);
            if policy.scopes().is_empty() {
                format!("none required (granted: {})", granted.join(" "))
            } else {
                format!("{} granted", policy.scopes())
            }
        }
    }
}
