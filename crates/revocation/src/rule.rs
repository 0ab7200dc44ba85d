//! One revocation rule: what it refuses, until when it must be kept, and its JSON-lines form.
//!
//! Three kinds, one model:
//!
//! * **by `jti`**: the token with that `jti`, until that token's `exp` (after which it is refused
//!   as expired anyway);
//! * **by subject**: tokens of (`iss`, `sub`) issued before a time ("log this user out
//!   everywhere"), kept `until` the last of them has expired;
//! * **by client**: tokens whose `client_id` or `azp` names the client, issued before a time.
//!
//! "Issued before T" means `iat < T`; a token without `iat` cannot show when it was issued and is
//! refused by a matching subject or client rule (fail closed).
//!
//! A rule's [`RuleKey`] says *what* it targets; two rules with the same key are the same rule (a
//! later write replaces an earlier one).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How long a subject or client rule is kept by default after its `before` time: the longest
/// access-token lifetime expected (Auth0's default is 24 hours).
pub const DEFAULT_KEEP_SECONDS: i64 = 86_400;

/// Longest identifier (jti, issuer, subject, client) a rule accepts, in bytes.
pub const MAX_ID_LEN: usize = 4096;

/// Why a rule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// An identifier is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// An identifier is longer than [`MAX_ID_LEN`].
    #[error("{0} is longer than {MAX_ID_LEN} bytes")]
    TooLong(&'static str),
    /// A time is not positive.
    #[error("{0} must be a positive Unix time")]
    BadTime(&'static str),
    /// `until` is before `before`: the rule would end before it starts to matter.
    #[error("until ({until}) must not be earlier than before ({before})")]
    EndsTooEarly {
        /// The rule's `before`.
        before: i64,
        /// The rule's `until`.
        until: i64,
    },
    /// A JSON line is not a rule.
    #[error("not a revocation rule: {0}")]
    Json(String),
}

/// What a rule targets; rules with equal keys are one rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKey {
    /// The token with this `jti`.
    Jti {
        /// The token's `jti`.
        jti: String,
    },
    /// Tokens of this issuer and subject.
    Subject {
        /// The issuer (`iss`), exactly as in the tokens.
        iss: String,
        /// The subject (`sub`).
        sub: String,
    },
    /// Tokens whose `client_id` or `azp` is this client.
    Client {
        /// The client id.
        client: String,
    },
}

impl RuleKey {
    /// The key as one unambiguous string (its JSON form), for storage keys and removal.
    pub fn id(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), RuleError> {
        let fields: &[(&'static str, &str)] = match self {
            RuleKey::Jti { jti } => &[("jti", jti)],
            RuleKey::Subject { iss, sub } => &[("issuer", iss), ("subject", sub)],
            RuleKey::Client { client } => &[("client", client)],
        };
        for (name, value) in fields {
            if value.is_empty() {
                return Err(RuleError::Empty(name));
            }
            if value.len() > MAX_ID_LEN {
                return Err(RuleError::TooLong(name));
            }
        }
        Ok(())
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKey::Jti { jti } => write!(f, "jti {jti:?}"),
            RuleKey::Subject { iss, sub } => write!(f, "subject {sub:?} of issuer {iss:?}"),
            RuleKey::Client { client } => write!(f, "client {client:?}"),
        }
    }
}

/// Which kind of rule a JSON line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Jti,
    Subject,
    Client,
}

/// The JSON-lines form, checked into a [`Rule`] on reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    by: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
}

/// A revocation rule. Invariant (checked by the constructors and on reading): identifiers are
/// non-empty and at most [`MAX_ID_LEN`] bytes, times are positive, and a subject or client rule
/// is kept at least until its `before` time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct Rule {
    key: RuleKey,
    /// For subject and client rules, `iat` must be at least this for a matching token to pass;
    /// `None` for a jti rule (every token with that jti is refused).
    before: Option<i64>,
    /// When the rule may be forgotten (Unix seconds).
    until: i64,
}

fn field<T>(value: Option<T>, kind: &str, name: &str) -> Result<T, RuleError> {
    value.ok_or_else(|| RuleError::Json(format!("a {kind} rule needs \"{name}\"")))
}

impl TryFrom<RawRule> for Rule {
    type Error = RuleError;

    fn try_from(raw: RawRule) -> Result<Rule, RuleError> {
        let foreign = |kind: &str, fields: &[(&str, bool)]| -> Result<(), RuleError> {
            match fields.iter().find(|(_, present)| *present) {
                Some((name, _)) => Err(RuleError::Json(format!("a {kind} rule has no \"{name}\""))),
                None => Ok(()),
            }
        };
        match raw.by {
            Kind::Jti => {
                foreign(
                    "jti",
                    &[
                        ("iss", raw.iss.is_some()),
                        ("sub", raw.sub.is_some()),
                        ("client", raw.client.is_some()),
                        ("before", raw.before.is_some()),
                        ("until", raw.until.is_some()),
                    ],
                )?;
                Rule::jti(field(raw.jti, "jti", "jti")?, field(raw.exp, "jti", "exp")?)
            }
            Kind::Subject => {
                foreign(
                    "subject",
                    &[
                        ("jti", raw.jti.is_some()),
                        ("client", raw.client.is_some()),
                        ("exp", raw.exp.is_some()),
                    ],
                )?;
                Rule::subject(
                    field(raw.iss, "subject", "iss")?,
                    field(raw.sub, "subject", "sub")?,
                    field(raw.before, "subject", "before")?,
                    field(raw.until, "subject", "until")?,
                )
            }
            Kind::Client => {
                foreign(
                    "client",
                    &[
                        ("jti", raw.jti.is_some()),
                        ("iss", raw.iss.is_some()),
                        ("sub", raw.sub.is_some()),
                        ("exp", raw.exp.is_some()),
                    ],
                )?;
                Rule::client(
                    field(raw.client, "client", "client")?,
                    field(raw.before, "client", "before")?,
                    field(raw.until, "client", "until")?,
                )
            }
        }
    }
}

impl From<Rule> for RawRule {
    fn from(rule: Rule) -> RawRule {
        let mut raw = RawRule {
            by: Kind::Jti,
            jti: None,
            iss: None,
            sub: None,
            client: None,
            exp: None,
            before: None,
            until: None,
        };
        match rule.key {
            RuleKey::Jti { jti } => {
                raw.jti = Some(jti);
                raw.exp = Some(rule.until);
            }
            RuleKey::Subject { iss, sub } => {
                raw.by = Kind::Subject;
                raw.iss = Some(iss);
                raw.sub = Some(sub);
            }
            RuleKey::Client { client } => {
                raw.by = Kind::Client;
                raw.client = Some(client);
            }
        }
        if let Some(before) = rule.before {
            raw.before = Some(before);
            raw.until = Some(rule.until);
        }
        raw
    }
}

fn positive(name: &'static str, time: i64) -> Result<i64, RuleError> {
    if time > 0 {
        Ok(time)
    } else {
        Err(RuleError::BadTime(name))
    }
}

impl Rule {
    /// Refuses the token with this `jti` until `exp` (the token's own `exp`).
    pub fn jti(jti: impl Into<String>, exp: i64) -> Result<Rule, RuleError> {
        let key = RuleKey::Jti { jti: jti.into() };
        key.validate()?;
        Ok(Rule {
            key,
            before: None,
            until: positive("exp", exp)?,
        })
    }

    /// Refuses tokens of (`iss`, `sub`) issued before `before`, keeping the rule until `until`.
    pub fn subject(
        iss: impl Into<String>,
        sub: impl Into<String>,
        before: i64,
        until: i64,
    ) -> Result<Rule, RuleError> {
        let key = RuleKey::Subject {
            iss: iss.into(),
            sub: sub.into(),
        };
        Rule::issued_before(key, before, until)
    }

    /// Refuses tokens whose `client_id` or `azp` is `client`, issued before `before`, keeping
    /// the rule until `until`.
    pub fn client(client: impl Into<String>, before: i64, until: i64) -> Result<Rule, RuleError> {
        let key = RuleKey::Client {
            client: client.into(),
        };
        Rule::issued_before(key, before, until)
    }

    fn issued_before(key: RuleKey, before: i64, until: i64) -> Result<Rule, RuleError> {
        if let RuleKey::Jti { .. } = key {
            return Err(RuleError::Json("a jti rule has no \"before\"".into()));
        }
        key.validate()?;
        let before = positive("before", before)?;
        let until = positive("until", until)?;
        if until < before {
            return Err(RuleError::EndsTooEarly { before, until });
        }
        Ok(Rule {
            key,
            before: Some(before),
            until,
        })
    }

    /// What the rule targets.
    pub fn key(&self) -> &RuleKey {
        &self.key
    }

    /// For subject and client rules: tokens issued at or after this time pass.
    pub fn before(&self) -> Option<i64> {
        self.before
    }

    /// When the rule may be forgotten: a jti rule at the token's `exp`, the others when the
    /// last token issued before `before` has expired.
    pub fn until(&self) -> i64 {
        self.until
    }

    /// True while the rule still matters at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        now < self.until
    }

    /// The rule as one line of JSON (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads one JSON line.
    pub fn from_json_line(line: &str) -> Result<Rule, RuleError> {
        serde_json::from_str(line).map_err(|e| RuleError::Json(e.to_string()))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.before {
            None => write!(f, "{}", self.key),
            Some(before) => write!(
                f,
                "{}, issued before {}",
                self.key,
                jwtgate_core::time::format_utc(before as f64)
            ),
        }
    }
}

/// A JSON-lines document that is not all rules: the 1-based line and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub error: RuleError,
}

/// Reads rules from JSON lines: one rule per line; blank lines and lines starting with `#` are
/// skipped. Any bad line fails the whole document (a half-read list would silently drop rules).
pub fn parse_json_lines(text: &str) -> Result<Vec<Rule>, LineError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let trimmed = line.trim();
            !trimmed.is_empty() && !trimmed.starts_with('#')
        })
        .map(|(index, line)| {
            Rule::from_json_line(line.trim()).map_err(|error| LineError {
                line: index + 1,
                error,
            })
        })
        .collect()
}

/// Writes rules as JSON lines, each ending with a newline.
pub fn to_json_lines<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> String {
    let mut out = String::new();
    for rule in rules {
        out.push_str(&rule.to_json_line());
        out.push('\n');
    }
    out
}

/// Why a time given on the command line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither Unix seconds nor an RFC 3339 time (2026-11-30T10:00:00Z)")]
pub struct TimeError(pub String);

/// Reads a time as Unix seconds (`1764496800`) or RFC 3339 (`2026-11-30T10:00:00Z`,
/// `2026-11-30T11:00:00+01:00`, fractions of a second dropped).
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let error = || TimeError(text.to_owned());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| error());
    }
    parse_rfc3339(text).ok_or_else(error)
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = zone.get(0..2)?.parse().ok()?;
            let minutes: i64 = zone.get(3..5)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_json_lines() {
        let rules = vec![
            Rule::jti("abc", 1_800_000_000).unwrap(),
            Rule::subject("https://i/", "user|1", 1_700_000_000, 1_700_086_400).unwrap(),
            Rule::client("spa", 1_700_000_000, 1_700_000_000).unwrap(),
        ];
        let text = to_json_lines(&rules);
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"by":"jti","jti":"abc","exp":1800000000}"#
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r#"{"by":"subject","iss":"https://i/","sub":"user|1","before":1700000000,"until":1700086400}"#
        );
        let commented = format!("# revoked\n\n{text}");
        assert_eq!(parse_json_lines(&commented).unwrap(), rules);
    }

    #[test]
    fn bad_lines_name_their_line_and_fail_the_document() {
        for (text, needle) in [
            (
                "{\"by\":\"jti\",\"jti\":\"\",\"exp\":5}",
                "jti must not be empty",
            ),
            ("{\"by\":\"jti\",\"jti\":\"a\"}", "needs \"exp\""),
            (
                "{\"by\":\"jti\",\"jti\":\"a\",\"exp\":5,\"before\":1}",
                "has no \"before\"",
            ),
            (
                "{\"by\":\"client\",\"client\":\"c\",\"before\":10,\"until\":5}",
                "must not be earlier",
            ),
            (
                "{\"by\":\"client\",\"client\":\"c\",\"before\":10}",
                "needs \"until\"",
            ),
            (
                "{\"by\":\"user\",\"jti\":\"a\",\"exp\":5}",
                "unknown variant",
            ),
            (
                "{\"by\":\"jti\",\"jti\":\"a\",\"exp\":5,\"extra\":1}",
                "unknown field",
            ),
            ("{\"by\":\"jti\",\"jti\":\"a\",\"exp\":-5}", "positive"),
            ("not json", "not a revocation rule"),
        ] {
            let document = format!("{{\"by\":\"jti\",\"jti\":\"ok\",\"exp\":9}}\n{text}\n");
            let error = parse_json_lines(&document).unwrap_err();
            assert_eq!(error.line, 2, "{text}");
            assert!(error.to_string().contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn keys_are_unambiguous() {
        let a = Rule::subject("a|b", "c", 1, 2).unwrap();
        let b = Rule::subject("a", "b|c", 1, 2).unwrap();
        assert_ne!(a.key().id(), b.key().id());
        assert_eq!(a.key().id(), r#"{"by":"subject","iss":"a|b","sub":"c"}"#);
    }

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1796032800"), Ok(1_796_032_800));
        assert_eq!(parse_time("2026-11-30T10:00:00Z"), Ok(1_796_032_800));
        assert_eq!(
            parse_time("2026-11-30T11:00:00.250+01:00"),
            Ok(1_796_032_800)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            "",
            "-5",
            "2026-11-30",
            "2026-11-30T10:00:00",
            "2026-02-30T10:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T10:00:00+1:00",
            "2026-11-30T10:00:00.Z",
            "yesterday",
            "99999999999999999999999",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
