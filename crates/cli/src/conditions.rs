//! `--claim NAME=VALUE` and `--when EXPR` for `verify` and `explain`: the same claim conditions a
//! route or issuer can have in the gateway's configuration, compiled and checked by the engine's
//! [`Conditions`], so `jwtgate explain` shows each condition's result as the gateway would decide.

use jwtgate_engine::conditions::{ConditionResult, Conditions};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Compiles the flags; an unusable flag is a usage error naming it.
pub fn from_flags(
    claims: &[String],
    when: Option<&str>,
) -> Result<Conditions, crate::config::ConfigError> {
    let mut map = BTreeMap::new();
    for flag in claims {
        let Some((name, value)) = flag.split_once('=') else {
            return Err(crate::config::ConfigError::Condition(format!(
                "--claim {flag:?} is not NAME=VALUE"
            )));
        };
        // JSON when it parses (true, 3, ["a","b"], "x"), else the text itself as a string.
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        map.insert(name.to_owned(), value);
    }
    Conditions::new(&map, when).map_err(|e| {
        let flag = match e {
            jwtgate_engine::conditions::ConditionError::ClaimValue { .. } => "--claim",
            _ => "--when",
        };
        crate::config::ConfigError::Condition(format!("{flag}: {e}"))
    })
}

/// Each condition's result on verified `claims`.
pub fn results(conditions: &Conditions, claims: &Map<String, Value>) -> Vec<ConditionResult> {
    conditions.explain(claims)
}

/// The first failed condition's description, for a refusal.
pub fn first_failure(results: &[ConditionResult]) -> Option<String> {
    results.iter().find(|r| !r.passed).map(|r| {
        format!(
            "the token does not meet the condition {}: {}",
            r.condition,
            r.detail.as_deref().unwrap_or("failed")
        )
    })
}
