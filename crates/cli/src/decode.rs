//! `jwtgate decode`: show what a token says without verifying it.
//!
//! Decoding is deliberately lenient where verification is strict: a token that jwtgate would
//! refuse (unsigned, wrong `typ`, duplicate members) is still shown, with notes on what makes it
//! unacceptable, because that is exactly when people need to look inside.

use jwtgate_core::internal::base64url;
use jwtgate_core::time::{format_utc, human_duration};
use serde_json::{json, Map, Value};

/// What the input turned out to be.
pub enum Decoded {
    /// A three-segment JWS whose header (and maybe payload) could be read.
    Jws {
        /// Header object.
        header: Map<String, Value>,
        /// Claims object, or why it could not be read.
        claims: Result<Map<String, Value>, String>,
        /// Signature length in bytes, when decodable.
        signature_len: Option<usize>,
        /// Observations (strictness problems, ID-token signs).
        notes: Vec<String>,
    },
    /// A five-segment JWE.
    Jwe {
        /// Its protected header, when readable.
        header: Option<Map<String, Value>>,
    },
    /// No dots: an opaque token.
    Opaque {
        /// Its length.
        len: usize,
    },
    /// Anything else.
    Malformed(String),
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, String> {
    let bytes = base64url::decode(segment.as_bytes()).map_err(|e| format!("not base64url: {e}"))?;
    match jwtgate_core::internal::json::parse_object(&bytes) {
        Ok(map) => Ok(map),
        Err(strict_error) => {
            // Show it anyway if a lenient parser can, but say why verification will refuse it.
            let lenient: Value =
                serde_json::from_slice(&bytes).map_err(|_| strict_error.to_string())?;
            lenient
                .as_object()
                .cloned()
                .ok_or_else(|| strict_error.to_string())
        }
    }
}

/// Decodes `token` (any `Bearer ` prefix already removed).
pub fn decode(token: &str) -> Decoded {
    if token.is_empty() {
        return Decoded::Malformed("the token is empty".into());
    }
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        1 => Decoded::Opaque { len: token.len() },
        5 => Decoded::Jwe {
            header: decode_object(segments[0]).ok(),
        },
        3 => {
            let header = match decode_object(segments[0]) {
                Ok(header) => header,
                Err(e) => return Decoded::Malformed(format!("the header is unreadable: {e}")),
            };
            let mut notes = Vec::new();
            if let Some(Ok(bytes)) = Some(base64url::decode(segments[0].as_bytes())) {
                if let Err(e) = jwtgate_core::internal::json::parse_object(&bytes) {
                    notes.push(format!("header: {e} (verification will refuse it)"));
                }
            }
            if let Err(e) = jwtgate_core::Header::from_object(header.clone()) {
                notes.push(format!("header: {e}"));
            }
            let claims = decode_object(segments[1]);
            if let Ok(bytes) = base64url::decode(segments[1].as_bytes()) {
                if let Err(e) = jwtgate_core::internal::json::parse_object(&bytes) {
                    notes.push(format!("payload: {e} (verification will refuse it)"));
                }
            }
            if let Ok(claims) = &claims {
                let audiences = jwtgate_core::audiences(claims);
                let signs = jwtgate_core::id_token_signs(claims, &audiences).descriptions();
                if !signs.is_empty() {
                    notes.push(format!(
                        "this looks like an ID token ({}); APIs should receive the access token",
                        signs.join(", ")
                    ));
                }
            }
            let signature_len = base64url::decode(segments[2].as_bytes())
                .ok()
                .map(|s| s.len());
            if signature_len.is_none() {
                notes.push("signature: not valid base64url".into());
            }
            Decoded::Jws {
                header,
                claims,
                signature_len,
                notes,
            }
        }
        n => Decoded::Malformed(format!("{n} segments; a JWT has 3 (a JWE 5)")),
    }
}

const TIME_CLAIMS: [&str; 4] = ["exp", "nbf", "iat", "auth_time"];

fn time_line(name: &str, seconds: f64, now: i64) -> String {
    let delta = seconds - now as f64;
    let relative = match (name, delta >= 0.0) {
        ("exp", true) => format!("expires in {}", human_duration(delta)),
        ("exp", false) => format!("expired {} ago", human_duration(delta)),
        (_, true) => format!("in {}", human_duration(delta)),
        (_, false) => format!("{} ago", human_duration(delta)),
    };
    format!("{} ({relative})", format_utc(seconds))
}

impl Decoded {
    /// True when the input is a JWS whose claims could be read.
    pub fn is_decodable(&self) -> bool {
        matches!(self, Decoded::Jws { claims: Ok(_), .. })
    }

    /// Human-readable rendering.
    pub fn to_text(&self, now: i64) -> String {
        let pretty = |map: &Map<String, Value>| {
            serde_json::to_string_pretty(map).unwrap_or_else(|_| "{}".to_owned())
        };
        match self {
            Decoded::Opaque { len } => format!(
                "opaque token ({len} characters): not a JWT, nothing to decode.\n\
                 Auth0 issues opaque access tokens when no `audience` is requested: request the \
                 token with `audience` set to your API's identifier.\n"
            ),
            Decoded::Jwe { header } => {
                let mut text = String::from(
                    "JWE (encrypted token, five segments): its claims cannot be read without the \
                     issuer's decryption key.\nAuth0 returns such opaque access tokens when no \
                     `audience` is requested.\n",
                );
                if let Some(header) = header {
                    text.push_str(&format!("Header:\n{}\n", pretty(header)));
                }
                text
            }
            Decoded::Malformed(why) => format!("not a decodable token: {why}\n"),
            Decoded::Jws {
                header,
                claims,
                signature_len,
                notes,
            } => {
                let mut text = format!("Header:\n{}\n", pretty(header));
                match claims {
                    Ok(claims) => {
                        text.push_str(&format!("Claims:\n{}\n", pretty(claims)));
                        let times: Vec<String> = TIME_CLAIMS
                            .iter()
                            .filter_map(|name| {
                                let value = claims.get(*name)?.as_f64()?;
                                Some(format!("  {name:<9} {}", time_line(name, value, now)))
                            })
                            .collect();
                        if !times.is_empty() {
                            text.push_str(&format!("Times (UTC):\n{}\n", times.join("\n")));
                        }
                    }
                    Err(why) => text.push_str(&format!("Claims: unreadable ({why})\n")),
                }
                if let Some(len) = signature_len {
                    text.push_str(&format!(
                        "Signature: {len} bytes, NOT verified (use `jwtgate verify`)\n"
                    ));
                }
                for note in notes {
                    text.push_str(&format!("Note: {note}\n"));
                }
                text
            }
        }
    }

    /// One-line JSON rendering.
    pub fn to_json(&self, now: i64) -> String {
        let value = match self {
            Decoded::Opaque { len } => json!({"kind": "opaque", "length": len}),
            Decoded::Jwe { header } => json!({"kind": "jwe", "header": header}),
            Decoded::Malformed(why) => json!({"kind": "malformed", "error": why}),
            Decoded::Jws {
                header,
                claims,
                signature_len,
                notes,
            } => {
                let times: Map<String, Value> = claims
                    .as_ref()
                    .map(|claims| {
                        TIME_CLAIMS
                            .iter()
                            .filter_map(|name| {
                                let value = claims.get(*name)?.as_f64()?;
                                Some(((*name).to_owned(), json!(time_line(name, value, now))))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "kind": "jws",
                    "header": header,
                    "claims": claims.as_ref().ok(),
                    "claims_error": claims.as_ref().err(),
                    "times": times,
                    "signature_bytes": signature_len,
                    "verified": false,
                    "notes": notes,
                })
            }
        };
        value.to_string()
    }
}
