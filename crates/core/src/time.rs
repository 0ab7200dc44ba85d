//! NumericDate claims (`exp`, `nbf`, `iat`) compared exactly, without overflow.
//!
//! A NumericDate is any finite JSON number, integer or fractional (RFC 7519 §2). Integers are
//! compared as integers, whatever their size; fractional values are compared exactly against whole
//! seconds (an `f64` holds every integer up to 2^53 exactly, and the comparison never rounds the
//! time it is compared with). Nothing here can overflow: bounds saturate.

use serde_json::Number;
use std::cmp::Ordering;

/// Seconds since the Unix epoch, the clock every check uses.
pub type UnixTime = i64;

/// Compares a JSON number with a whole number of seconds, exactly.
pub fn compare(number: &Number, seconds: i64) -> Ordering {
    if let Some(value) = number.as_i64() {
        return value.cmp(&seconds);
    }
    if number.as_u64().is_some() {
        // Larger than i64::MAX, so larger than any i64.
        return Ordering::Greater;
    }
    let value = number.as_f64().unwrap_or(f64::NAN);
    compare_f64(value, seconds)
}

fn compare_f64(value: f64, seconds: i64) -> Ordering {
    // 2^63 as f64 is exact; anything at or beyond it is outside i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if value.is_nan() {
        return Ordering::Less;
    }
    if value >= LIMIT {
        return Ordering::Greater;
    }
    if value < -LIMIT {
        return Ordering::Less;
    }
    let floor = value.floor();
    // |floor| < 2^63, so the conversion is exact.
    let whole = floor as i64;
    match whole.cmp(&seconds) {
        Ordering::Equal if value > floor => Ordering::Greater,
        other => other,
    }
}

/// A number as `f64`, for messages only.
pub fn approximate(number: &Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

/// Renders a duration in seconds as "45 s", "12 min", "3 h", "2 d".
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.abs();
    if s < 120.0 {
        format!("{} s", s.round())
    } else if s < 7200.0 {
        format!("{} min", (s / 60.0).round())
    } else if s < 172_800.0 {
        format!("{} h", (s / 3600.0).round())
    } else if s < 63_072_000.0 {
        format!("{} d", (s / 86400.0).round())
    } else if s < 3_155_760_000.0 {
        format!("{} years", (s / 31_557_600.0).round())
    } else {
        "more than 100 years".to_owned()
    }
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp (proleptic Gregorian calendar).
pub fn format_utc(seconds: f64) -> String {
    if !seconds.is_finite() || seconds.abs() > 253_402_300_799.0 {
        return "out of range".to_owned();
    }
    let whole = seconds.floor() as i64;
    let days = whole.div_euclid(86_400);
    let secs = whole.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: serde_json::Value) -> Number {
        match v {
            serde_json::Value::Number(n) => n,
            _ => Number::from(0),
        }
    }

    #[test]
    fn integers_and_fractions_compare_exactly() {
        assert_eq!(compare(&num(json!(100)), 100), Ordering::Equal);
        assert_eq!(compare(&num(json!(100.5)), 100), Ordering::Greater);
        assert_eq!(compare(&num(json!(100.0)), 100), Ordering::Equal);
        assert_eq!(compare(&num(json!(99.999)), 100), Ordering::Less);
        assert_eq!(compare(&num(json!(-0.5)), 0), Ordering::Less);
        assert_eq!(compare(&num(json!(u64::MAX)), i64::MAX), Ordering::Greater);
        assert_eq!(compare(&num(json!(1e300)), i64::MAX), Ordering::Greater);
        assert_eq!(compare(&num(json!(-1e300)), i64::MIN), Ordering::Less);
        assert_eq!(compare(&num(json!(i64::MIN)), i64::MIN), Ordering::Equal);
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_767_225_600.0), "2026-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(-1.0), "1969-12-31T23:59:59Z");
        assert_eq!(human_duration(90.0), "90 s");
        assert_eq!(human_duration(-1380.0), "23 min");
    }
}
