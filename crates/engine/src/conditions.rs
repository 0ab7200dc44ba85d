//! Claim conditions, per route and per issuer, checked after the signature on every request
//! (cache hits included): `claims = { email_verified = true, org_id = ["org_a", "org_b"] }` for
//! equality or one-of, and `when = '<CEL expression>'` for the rest.
//!
//! * **`claims`**: each named claim must be present with exactly the value written, or one of the
//!   values of a list, compared with their JSON types: `true` is not `"true"`, `1` is not `"1"`.
//!   A missing claim, or one of another type, fails the condition. Values are strings, booleans
//!   or integers (a list: one of them); anything else is refused when the configuration loads.
//! * **`when`**: a [CEL](https://cel.dev) expression over the variable `claims` (the token's
//!   claims as a map), evaluated with the `cel` crate. It is compiled when the configuration
//!   loads: a syntax error, a variable other than `claims`, or a function the CEL standard
//!   library does not declare is a load error. Only `true` passes; `false` fails; an evaluation
//!   error (a missing claim, a wrong type, a result that is not a boolean) is a refusal too,
//!   never an allow. Both are 403 `insufficient_scope` — the token is valid, it does not grant
//!   this request — with a description naming the condition (`condition_failed` or
//!   `condition_error` in metrics).
//!
//! Only the claims a `when` expression names as `claims.NAME` or `claims["NAME"]` are converted
//! for CEL (all of them when the expression uses `claims` any other way). A condition's result
//! depends on the token's claims alone (no clock, no request data), so [`Conditions::check_shared`]
//! remembers it per verified token (the `Arc` the verified-token cache hands out): a cached token
//! pays for a CEL evaluation once per thread, not on every request.

use cel::common::ast::{EntryExpr, Expr, LiteralValue};
use cel::{Context, Env, IdedExpr, Program, Value as CelValue};
use jwtgate_core::Verified;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock, Weak};
use thiserror::Error;

/// A condition that cannot be used, found when the configuration loads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConditionError {
    /// A `claims` value that is not a string, boolean, integer or a non-empty list of them.
    #[error("claim {name:?}: {message}")]
    ClaimValue {
        /// The claim.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The `when` expression does not parse.
    #[error("CEL syntax error: {0}")]
    Syntax(String),
    /// The expression calls a function the CEL standard library does not declare.
    #[error("CEL expression calls {0:?}, which is not a function of the CEL standard library")]
    UnknownFunction(String),
    /// The expression names a variable other than `claims`.
    #[error("CEL expression names the variable {0:?}; the only variable is `claims`")]
    UnknownVariable(String),
}

/// A condition a token did not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionFailure {
    /// Which condition and why, for `error_description`.
    pub description: String,
    /// True when the condition could not be evaluated (rather than evaluating to false).
    pub error: bool,
}

/// One condition's result, for `jwtgate explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionResult {
    /// The condition as written (`claims.org_id in ["a", "b"]`, `when: …`).
    pub condition: String,
    /// True when the token meets it.
    pub passed: bool,
    /// What was found, when it failed.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimCondition {
    name: String,
    accepted: Vec<Value>,
    list: bool,
}

impl ClaimCondition {
    fn describe(&self) -> String {
        let values: Vec<String> = self.accepted.iter().map(Value::to_string).collect();
        if self.list {
            format!("claims.{} in [{}]", self.name, values.join(", "))
        } else {
            format!("claims.{} == {}", self.name, values.join(""))
        }
    }

    /// `None` when met, else what was found.
    fn check(&self, found: Option<&Value>) -> Option<String> {
        match found {
            Some(value) if self.accepted.contains(value) => None,
            Some(value) => Some(format!("found {value}")),
            None => Some("the claim is missing".to_owned()),
        }
    }
}

/// Which claims a `when` expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClaimUse {
    /// Only these names, as `claims.NAME` or `claims["NAME"]`.
    Named(Vec<String>),
    /// The map as a whole.
    All,
}

/// A compiled `when` expression.
struct When {
    source: String,
    program: Program,
    uses: ClaimUse,
}

impl std::fmt::Debug for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("When")
            .field("source", &self.source)
            .field("uses", &self.uses)
            .finish_non_exhaustive()
    }
}

/// The CEL standard environment, built once per process.
fn environment() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

/// True when the CEL standard library declares a function named `name` (the crate refuses to
/// add a function under a name it declares an overload for), or when `name` is an operator
/// (`_&&_`, `@in`, `!_`, …): the parser alone writes those, and no identifier contains their
/// punctuation.
fn declared_function(name: &str) -> bool {
    let operator = name
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
    if operator {
        return true;
    }
    let mut probe = Context::with_env(environment().clone());
    probe.add_function(name, |a: i64| a).is_err()
}

/// Walks the expression: collects the claims named, refuses unknown functions and variables.
fn inspect(
    expr: &IdedExpr,
    bound: &mut Vec<String>,
    names: &mut Vec<String>,
    whole: &mut bool,
) -> Result<(), ConditionError> {
    match &expr.expr {
        Expr::Ident(name) => {
            if name == "claims" {
                // Reached only when `claims` is used other than by a field or key.
                *whole = true;
            } else if !bound.iter().any(|b| b == name) && !name.starts_with('@') {
                return Err(ConditionError::UnknownVariable(name.clone()));
            }
        }
        Expr::Select(select) => {
            if matches!(&select.operand.expr, Expr::Ident(n) if n == "claims") {
                names.push(select.field.clone());
            } else {
                inspect(&select.operand, bound, names, whole)?;
            }
        }
        Expr::Call(call) => {
            let key = match (call.func_name.as_str(), call.args.as_slice()) {
                ("_[_]", [target, key]) if matches!(&target.expr, Expr::Ident(n) if n == "claims") => {
                    match &key.expr {
                        Expr::Literal(LiteralValue::String(text)) => Some(text.inner().to_owned()),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(key) = key {
                names.push(key);
                return Ok(());
            }
            if !declared_function(&call.func_name) {
                return Err(ConditionError::UnknownFunction(call.func_name.clone()));
            }
            if let Some(target) = &call.target {
                inspect(target, bound, names, whole)?;
            }
            for arg in &call.args {
                inspect(arg, bound, names, whole)?;
            }
        }
        Expr::Comprehension(comprehension) => {
            inspect(&comprehension.iter_range, bound, names, whole)?;
            let before = bound.len();
            bound.push(comprehension.iter_var.clone());
            bound.extend(comprehension.iter_var2.clone());
            bound.push(comprehension.accu_var.clone());
            for part in [
                &comprehension.accu_init,
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                inspect(part, bound, names, whole)?;
            }
            bound.truncate(before);
        }
        Expr::List(list) => {
            for element in &list.elements {
                inspect(element, bound, names, whole)?;
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(e) => {
                        inspect(&e.key, bound, names, whole)?;
                        inspect(&e.value, bound, names, whole)?;
                    }
                    EntryExpr::StructField(field) => inspect(&field.value, bound, names, whole)?,
                }
            }
        }
        Expr::Struct(structure) => {
            for entry in &structure.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    inspect(&field.value, bound, names, whole)?;
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
    Ok(())
}

impl When {
    fn compile(source: &str) -> Result<When, ConditionError> {
        let program = environment()
            .compile(source)
            .map_err(|e| ConditionError::Syntax(e.to_string().replace('\n', " ")))?;
        let mut names = Vec::new();
        let mut whole = false;
        inspect(
            program.expression(),
            &mut Vec::new(),
            &mut names,
            &mut whole,
        )?;
        let uses = if whole {
            ClaimUse::All
        } else {
            let mut seen = HashSet::new();
            names.retain(|n| seen.insert(n.clone()));
            ClaimUse::Named(names)
        };
        Ok(When {
            source: source.to_owned(),
            program,
            uses,
        })
    }

    /// `Ok(true)` to pass, `Ok(false)` to fail, `Err` when it cannot be evaluated.
    fn evaluate(
        &self,
        claim: &dyn Fn(&str) -> Option<Value>,
        all: &dyn Fn() -> Map<String, Value>,
    ) -> Result<bool, String> {
        let map: HashMap<String, CelValue> = match &self.uses {
            ClaimUse::Named(names) => names
                .iter()
                .filter_map(|name| claim(name).map(|value| (name.clone(), to_cel(&value))))
                .collect(),
            ClaimUse::All => all()
                .iter()
                .map(|(name, value)| (name.clone(), to_cel(value)))
                .collect(),
        };
        let mut context = Context::with_env(environment().clone());
        context.add_variable_from_value("claims", map);
        match self.program.execute(&context) {
            Ok(CelValue::Bool(result)) => Ok(result),
            Ok(other) => Err(format!("it evaluated to {other:?}, not a boolean")),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A JSON claim as a CEL value: integers as `int` (`uint` above `i64::MAX`), other numbers as
/// `double`.
fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let map: HashMap<String, CelValue> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            CelValue::from(map)
        }
    }
}

/// Mixes the memo's keys (a conditions id and an address, both already unique).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(29) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
}

/// (conditions id, address of the verified token's `Arc`) → (that `Arc`, weakly; the result).
type Remembered = HashMap<
    (u64, usize),
    (Weak<Verified>, Result<(), ConditionFailure>),
    BuildHasherDefault<KeyHasher>,
>;

/// Most results one thread remembers.
const MEMO_CAPACITY: usize = 4096;

thread_local! {
    /// Results remembered per thread, so a hit takes no lock and no atomic operation. An entry
    /// holds a `Weak` to the token's `Arc`, so that allocation (and its address) cannot be reused
    /// while the entry exists: a live token found at a remembered address is the token
    /// remembered. Conditions are told apart by an id never reused (an address could be, after a
    /// reload). Bounded: at [`MEMO_CAPACITY`] entries those of tokens no longer alive are dropped,
    /// and everything if that is not enough.
    static REMEMBERED: std::cell::RefCell<Remembered> = std::cell::RefCell::default();
}

/// Ids for [`Conditions`], never reused in a process.
static NEXT_CONDITIONS_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn remembered(id: u64, verified: &Arc<Verified>) -> Option<Result<(), ConditionFailure>> {
    let key = (id, Arc::as_ptr(verified) as usize);
    REMEMBERED.with(|map| map.borrow().get(&key).map(|(_, result)| result.clone()))
}

fn remember(id: u64, verified: &Arc<Verified>, result: &Result<(), ConditionFailure>) {
    let key = (id, Arc::as_ptr(verified) as usize);
    REMEMBERED.with(|map| {
        let mut map = map.borrow_mut();
        if map.len() >= MEMO_CAPACITY {
            map.retain(|_, (weak, _)| weak.strong_count() > 0);
            if map.len() >= MEMO_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (Arc::downgrade(verified), result.clone()));
    });
}

/// The conditions of one route or issuer: claim equalities and an optional CEL expression.
pub struct Conditions {
    claims: Vec<ClaimCondition>,
    when: Option<When>,
    id: u64,
}

impl std::fmt::Debug for Conditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditions")
            .field("claims", &self.claims)
            .field("when", &self.when)
            .finish_non_exhaustive()
    }
}

impl Default for Conditions {
    /// No condition.
    fn default() -> Conditions {
        Conditions {
            claims: Vec::new(),
            when: None,
            id: NEXT_CONDITIONS_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Conditions are equal when written the same.
impl PartialEq for Conditions {
    fn eq(&self, other: &Conditions) -> bool {
        self.claims == other.claims
            && self.when.as_ref().map(|w| &w.source) == other.when.as_ref().map(|w| &w.source)
    }
}

impl Eq for Conditions {}

impl Conditions {
    /// Compiles `claims` (name → value or list of values) and `when`.
    pub fn new(
        claims: &BTreeMap<String, Value>,
        when: Option<&str>,
    ) -> Result<Conditions, ConditionError> {
        let mut compiled = Vec::new();
        for (name, value) in claims {
            let bad = |message: &str| ConditionError::ClaimValue {
                name: name.clone(),
                message: message.to_owned(),
            };
            let scalar = |v: &Value| {
                matches!(v, Value::String(_) | Value::Bool(_))
                    || matches!(v, Value::Number(n) if n.is_i64() || n.is_u64())
            };
            let (accepted, list) = match value {
                Value::Array(items) if items.is_empty() => {
                    return Err(bad("an empty list accepts nothing"))
                }
                Value::Array(items) if items.iter().all(scalar) => (items.clone(), true),
                Value::Array(_) => {
                    return Err(bad(
                        "a list may only hold strings, booleans and integers",
                    ))
                }
                v if scalar(v) => (vec![v.clone()], false),
                _ => {
                    return Err(bad(
                        "the value must be a string, a boolean, an integer, or a list of them (one of); use `when` for anything else",
                    ))
                }
            };
            if name.is_empty() {
                return Err(bad("the claim name is empty"));
            }
            compiled.push(ClaimCondition {
                name: name.clone(),
                accepted,
                list,
            });
        }
        let when = when.map(When::compile).transpose()?;
        Ok(Conditions {
            claims: compiled,
            when,
            id: NEXT_CONDITIONS_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// [`Conditions::check`] for a shared verified token, remembering the result for as long as
    /// that token is alive (the verified-token cache keeps it): the same claims give the same
    /// answer, so a cached token is evaluated once.
    pub fn check_shared(&self, verified: &Arc<Verified>) -> Result<(), ConditionFailure> {
        if self.is_empty() {
            return Ok(());
        }
        if let Some(result) = remembered(self.id, verified) {
            return result;
        }
        let result = self.check(verified);
        remember(self.id, verified, &result);
        result
    }

    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.when.is_none()
    }

    /// Checks `verified` against every condition, in order; the first unmet one is the answer.
    pub fn check(&self, verified: &Verified) -> Result<(), ConditionFailure> {
        for condition in &self.claims {
            if let Some(found) = condition.check(verified.claim_value(&condition.name).as_deref()) {
                return Err(ConditionFailure {
                    description: format!(
                        "the token does not meet the condition {}: {found}",
                        condition.describe()
                    ),
                    error: false,
                });
            }
        }
        if let Some(when) = &self.when {
            // Owned copies: the map is not built into a value the token cache keeps.
            let claim = |name: &str| verified.claim_value(name).map(Cow::into_owned);
            let all = || verified.to_claims();
            return match when.evaluate(&claim, &all) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ConditionFailure {
                    description: format!(
                        "the token does not meet the condition when `{}`",
                        when.source
                    ),
                    error: false,
                }),
                Err(error) => Err(ConditionFailure {
                    description: format!(
                        "the condition when `{}` could not be evaluated on this token ({error}); refused",
                        when.source
                    ),
                    error: true,
                }),
            };
        }
        Ok(())
    }

    /// Every condition's result on `claims` (for `jwtgate explain`).
    pub fn explain(&self, claims: &Map<String, Value>) -> Vec<ConditionResult> {
        let mut results: Vec<ConditionResult> = self
            .claims
            .iter()
            .map(|condition| {
                let detail = condition.check(claims.get(&condition.name));
                ConditionResult {
                    condition: condition.describe(),
                    passed: detail.is_none(),
                    detail,
                }
            })
            .collect();
        if let Some(when) = &self.when {
            let claim = |name: &str| claims.get(name).cloned();
            let all = || claims.clone();
            let (passed, detail) = match when.evaluate(&claim, &all) {
                Ok(true) => (true, None),
                Ok(false) => (false, Some("evaluated to false".to_owned())),
                Err(error) => (false, Some(format!("evaluation error: {error}"))),
            };
            results.push(ConditionResult {
                condition: format!("when `{}`", when.source),
                passed,
                detail,
            });
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(claims: Value, when: Option<&str>) -> Result<Conditions, ConditionError> {
        let map: BTreeMap<String, Value> = serde_json::from_value(claims).unwrap_or_default();
        Conditions::new(&map, when)
    }

    fn results(c: &Conditions, claims: Value) -> Vec<bool> {
        let map = claims.as_object().cloned().unwrap_or_default();
        c.explain(&map).iter().map(|r| r.passed).collect()
    }

    #[test]
    fn claims_compare_exact_types() {
        let c = conditions(
            json!({"email_verified": true, "org_id": ["org_a", "org_b"], "level": 3}),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            results(
                &c,
                json!({"email_verified": true, "org_id": "org_b", "level": 3})
            ),
            [true, true, true]
        );
        assert_eq!(
            results(
                &c,
                json!({"email_verified": "true", "org_id": ["org_a"], "level": 3.0})
            ),
            [false, false, false]
        );
        assert_eq!(results(&c, json!({})), [false, false, false]);
    }

    #[test]
    fn claim_values_are_checked_at_load() {
        for bad in [
            json!({"a": []}),
            json!({"a": {"b": 1}}),
            json!({"a": 1.5}),
            json!({"a": [[1]]}),
            json!({"a": null}),
        ] {
            assert!(conditions(bad.clone(), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn when_expressions() {
        let c = conditions(
            json!({}),
            Some(r#"claims.org_id == "acme" && "admin" in claims.roles"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.when.as_ref().map(|w| w.uses.clone()),
            Some(ClaimUse::Named(vec!["org_id".into(), "roles".into()]))
        );
        assert_eq!(
            results(&c, json!({"org_id": "acme", "roles": ["admin"]})),
            [true]
        );
        assert_eq!(
            results(&c, json!({"org_id": "acme", "roles": ["user"]})),
            [false]
        );
        let missing = c.explain(&Map::new());
        assert!(!missing[0].passed);
        assert!(missing[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("evaluation error"));
        let wrong_type =
            conditions(json!({}), Some("claims.n > 3")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(results(&wrong_type, json!({"n": "x"})), [false]);
        assert_eq!(results(&wrong_type, json!({"n": 4})), [true]);
        let not_bool = conditions(json!({}), Some("claims.n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(results(&not_bool, json!({"n": 1})), [false]);
        let macros = conditions(
            json!({}),
            Some(r#"has(claims.roles) && claims.roles.exists(r, r.startsWith("adm")) && size(claims["tid"]) > 0"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            results(&macros, json!({"roles": ["admin"], "tid": "t"})),
            [true]
        );
        let whole =
            conditions(json!({}), Some(r#""org_id" in claims"#)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            whole.when.as_ref().map(|w| w.uses.clone()),
            Some(ClaimUse::All)
        );
        assert_eq!(results(&whole, json!({"org_id": 1})), [true]);
    }

    #[test]
    fn when_errors_at_load() {
        assert!(matches!(
            conditions(json!({}), Some("claims.a ==")),
            Err(ConditionError::Syntax(_))
        ));
        assert_eq!(
            conditions(json!({}), Some("frobnicate(claims.a)")).err(),
            Some(ConditionError::UnknownFunction("frobnicate".into()))
        );
        assert_eq!(
            conditions(json!({}), Some("request.path == '/'")).err(),
            Some(ConditionError::UnknownVariable("request".into()))
        );
    }
}
