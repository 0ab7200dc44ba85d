//! Rendering verdicts and explanations as text (with optional colour) or single-line JSON.

use jwtgate_core::time::{format_utc, human_duration};
use jwtgate_core::{Explanation, KeySet, Rejection, Status, Verified};
use serde_json::{json, Value};
use std::io::IsTerminal;

/// Colour only on a terminal, and never when `NO_COLOR` is set.
pub fn use_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// The verify contract's JSON: `{"valid":true,"claims":{…}}` or
/// `{"valid":false,"error":"…","description":"…"}`.
pub fn verdict_json(outcome: &Result<Verified, Rejection>) -> String {
    let value = match outcome {
        Ok(verified) => json!({ "valid": true, "claims": verified.claims() }),
        Err(rejection) => json!({
            "valid": false,
            "error": rejection.code().as_str(),
            "description": rejection.description(),
        }),
    };
    value.to_string()
}

fn relative(seconds: f64, now: i64) -> String {
    let delta = seconds - now as f64;
    if delta >= 0.0 {
        format!("in {}", human_duration(delta))
    } else {
        format!("{} ago", human_duration(delta))
    }
}

/// A short human verdict.
pub fn verdict_text(outcome: &Result<Verified, Rejection>, now: i64) -> String {
    match outcome {
        Ok(verified) => {
            let mut text = String::from("valid\n");
            if let Some(sub) = verified.subject() {
                text.push_str(&format!("  subject: {sub}\n"));
            }
            text.push_str(&format!("  issuer:  {}\n", verified.issuer()));
            let scopes = verified.distinct_scopes();
            if !scopes.is_empty() {
                text.push_str(&format!("  scopes:  {}\n", scopes.join(" ")));
            }
            if let Some(exp) = verified.claims().get("exp").and_then(Value::as_f64) {
                text.push_str(&format!(
                    "  expires: {} ({})\n",
                    format_utc(exp),
                    relative(exp, now)
                ));
            }
            text
        }
        Err(rejection) => {
            let mut text = format!(
                "rejected ({}): {}\n",
                rejection.code(),
                rejection.description()
            );
            if let Some(hint) = rejection.hint() {
                text.push_str(&format!("  hint: {hint}\n"));
            }
            text
        }
    }
}

struct Palette {
    pass: &'static str,
    fail: &'static str,
    skip: &'static str,
    dim: &'static str,
    reset: &'static str,
}

const COLOUR: Palette = Palette {
    pass: "\x1b[32m",
    fail: "\x1b[31m",
    skip: "\x1b[33m",
    dim: "\x1b[2m",
    reset: "\x1b[0m",
};

const PLAIN: Palette = Palette {
    pass: "",
    fail: "",
    skip: "",
    dim: "",
    reset: "",
};

/// Every step on its own line: `PASS`, `FAIL` (with hint) or `SKIP`, then the verdict.
pub fn explanation_text(explanation: &Explanation, keys: &KeySet, colour: bool) -> String {
    let p = if colour { &COLOUR } else { &PLAIN };
    let mut text = String::new();
    text.push_str(&format!(
        "{}keys: {} usable, {} skipped{}\n",
        p.dim,
        keys.keys().len() + keys.secrets().len(),
        keys.skipped().len(),
        p.reset
    ));
    for skipped in keys.skipped() {
        text.push_str(&format!("{}  {skipped}{}\n", p.dim, p.reset));
    }
    for step in &explanation.steps {
        match &step.status {
            Status::Pass(detail) => text.push_str(&format!(
                "{}PASS{} {}: {detail}\n",
                p.pass, p.reset, step.name
            )),
            Status::Fail(rejection) => {
                text.push_str(&format!(
                    "{}FAIL{} {}: {}\n",
                    p.fail,
                    p.reset,
                    step.name,
                    rejection.description()
                ));
                if let Some(hint) = rejection.hint() {
                    text.push_str(&format!("     {}hint: {hint}{}\n", p.dim, p.reset));
                }
            }
            Status::Skipped(why) => {
                text.push_str(&format!("{}SKIP{} {}: {why}\n", p.skip, p.reset, step.name))
            }
        }
    }
    match &explanation.outcome {
        Ok(_) => text.push_str(&format!("{}=> accepted{}\n", p.pass, p.reset)),
        Err(rejection) => text.push_str(&format!(
            "{}=> rejected: {} ({}){}\n",
            p.fail,
            rejection.code(),
            rejection.description(),
            p.reset
        )),
    }
    text
}

/// The explanation as one JSON object on one line.
pub fn explanation_json(explanation: &Explanation) -> String {
    let steps: Vec<Value> = explanation
        .steps
        .iter()
        .map(|step| match &step.status {
            Status::Pass(detail) => json!({"check": step.name, "status": "pass", "detail": detail}),
            Status::Fail(rejection) => json!({
                "check": step.name,
                "status": "fail",
                "error": rejection.code().as_str(),
                "description": rejection.description(),
                "hint": rejection.hint(),
            }),
            Status::Skipped(why) => json!({"check": step.name, "status": "skipped", "detail": why}),
        })
        .collect();
    let mut value = match &explanation.outcome {
        Ok(verified) => json!({"valid": true, "claims": verified.claims()}),
        Err(rejection) => json!({
            "valid": false,
            "error": rejection.code().as_str(),
            "description": rejection.description(),
        }),
    };
    if let Some(object) = value.as_object_mut() {
        object.insert("steps".into(), Value::Array(steps));
    }
    value.to_string()
}

/// The claim conditions' lines after an explanation: `PASS`/`FAIL` per condition (`SKIP` when
/// the token was not verified), then the verdict when one failed.
pub fn conditions_text(
    results: Option<&[jwtgate_engine::conditions::ConditionResult]>,
    failed: Option<&str>,
    colour: bool,
) -> String {
    let p = if colour { &COLOUR } else { &PLAIN };
    let Some(results) = results else {
        return format!(
            "{}SKIP{} conditions: the token was not verified\n",
            p.skip, p.reset
        );
    };
    let mut text = String::new();
    for result in results {
        match (&result.detail, result.passed) {
            (_, true) => text.push_str(&format!(
                "{}PASS{} condition {}\n",
                p.pass, p.reset, result.condition
            )),
            (detail, false) => text.push_str(&format!(
                "{}FAIL{} condition {}: {}\n",
                p.fail,
                p.reset,
                result.condition,
                detail.as_deref().unwrap_or("failed")
            )),
        }
    }
    if let Some(description) = failed {
        text.push_str(&format!(
            "{}=> rejected: insufficient_scope ({description}){}\n",
            p.fail, p.reset
        ));
    }
    text
}

/// The explanation's JSON with `conditions` (each `{condition, passed, detail}`) added and, when
/// one failed, `valid` false with the refusal.
pub fn with_conditions_json(
    explanation: &str,
    results: Option<&[jwtgate_engine::conditions::ConditionResult]>,
    failed: Option<&str>,
) -> String {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(explanation) else {
        return explanation.to_owned();
    };
    if let Some(results) = results.filter(|r| !r.is_empty()) {
        let list: Vec<Value> = results
            .iter()
            .map(|r| json!({"condition": r.condition, "passed": r.passed, "detail": r.detail}))
            .collect();
        object.insert("conditions".into(), Value::Array(list));
    }
    if let Some(description) = failed {
        object.insert("valid".into(), Value::Bool(false));
        object.remove("claims");
        object.insert("error".into(), json!("insufficient_scope"));
        object.insert("description".into(), json!(description));
    }
    Value::Object(object).to_string()
}
