//! Finding the bearer token in a request (RFC 6750 §2): the `Authorization` header, and — only
//! when configured — a cookie or a query parameter. A token in more than one place, or a
//! malformed `Authorization: Bearer` header, is `invalid_request`; no token at all is the plain
//! 401 challenge.

use crate::request_headers::RequestHeaders;
use http::header::{AUTHORIZATION, COOKIE};

/// Where else than the `Authorization` header a token may come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenLocations {
    /// Cookie name to read the token from, if any.
    pub cookie: Option<String>,
    /// Query parameter to read the token from, if any (RFC 6750 §2.3 discourages it).
    pub query: Option<String>,
}

/// What the request carries. A token is borrowed from the request, as bytes, and is never
/// copied or checked as UTF-8 again on the way to the verifier, which reads bytes and refuses
/// any that base64url does not allow. An `Authorization` header's token is visible ASCII (or
/// holds a tab, which fails verification); a cookie's or query parameter's is the request's text
/// as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerToken<'a> {
    /// No token anywhere (including an `Authorization` header of another scheme).
    Missing,
    /// Exactly one token (non-empty), sent as a bearer token (`Authorization: Bearer`, a cookie
    /// or a query parameter).
    Present(&'a [u8]),
    /// Exactly one token (non-empty), sent as `Authorization: DPoP` (RFC 9449): it must come
    /// with a proof.
    Dpop(&'a [u8]),
    /// A malformed header or several tokens: `invalid_request`.
    Invalid(&'static str),
}

fn from_authorization<'a>(headers: RequestHeaders<'a>) -> BearerToken<'a> {
    let mut values = headers.get_all(&AUTHORIZATION);
    let Some(value) = values.next() else {
        return BearerToken::Missing;
    };
    if values.next().is_some() {
        return BearerToken::Invalid("more than one Authorization header");
    }
    parse_authorization_header(value)
}

const NOT_ASCII: &str = "the Authorization header is not ASCII";
const SPACE_IN_TOKEN: &str = "the bearer token contains a space";

/// An `Authorization` header's value as received: text only if every byte is visible ASCII or a
/// tab (what `HeaderValue::to_str` accepts), then read as [`parse_authorization`] reads text. A
/// `Bearer`/`DPoP` value is checked in one pass over its token, the kilobyte that matters.
fn parse_authorization_header(bytes: &[u8]) -> BearerToken<'_> {
    let (dpop, token) = match credentials(bytes) {
        Ok(credentials) => credentials,
        Err(BearerToken::Missing) if visible_ascii(bytes).is_none() => {
            return BearerToken::Invalid(NOT_ASCII)
        }
        Err(other) => return other,
    };
    // The scheme is letters and the separator spaces, so the token is the only place a byte
    // that is not a token character can be: one branch-free pass finds any byte outside
    // `!`..`~`; only then is it told apart. Shifted down by `!`, the token characters are
    // exactly the bytes up to 0x5D, so the pass is a running maximum (which the compiler
    // vectorises to one subtraction and one unsigned maximum per 16 bytes).
    let highest = token
        .iter()
        .fold(0u8, |highest, &byte| highest.max(byte.wrapping_sub(b'!')));
    if highest > b'~' - b'!' {
        if visible_ascii(token).is_none() {
            return BearerToken::Invalid(NOT_ASCII);
        }
        // Header text allows a tab, which the token keeps (no token has one: it fails later).
        if token.contains(&b' ') {
            return BearerToken::Invalid(SPACE_IN_TOKEN);
        }
    }
    present(dpop, token)
}

/// `bytes` as text when every byte is visible ASCII or a tab (what `HeaderValue::to_str`
/// accepts), checked without a branch per byte so that a token of a kilobyte costs tens of
/// instructions, not thousands.
fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    let invisible = bytes.iter().fold(0u8, |acc, &byte| {
        acc | u8::from(!(byte == b'\t' || (0x20..0x7F).contains(&byte)))
    });
    if invisible != 0 {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Splits `Bearer <token>` / `DPoP <token>` (scheme case-insensitive, one or more spaces):
/// whether the scheme is DPoP, and the token's bytes (non-empty). `Err(Missing)` for another
/// scheme, `Err(Invalid)` for a Bearer/DPoP scheme without a token.
fn credentials(bytes: &[u8]) -> Result<(bool, &[u8]), BearerToken<'static>> {
    // The scheme is a few bytes: found byte by byte, not with a searcher set up for a long text.
    let scheme_end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    let (scheme, rest) = bytes.split_at(scheme_end);
    let dpop = scheme.eq_ignore_ascii_case(b"dpop");
    if !dpop && !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(BearerToken::Missing);
    }
    let token_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    match rest.get(token_start..) {
        Some(token) if !token.is_empty() => Ok((dpop, token)),
        _ => Err(BearerToken::Invalid(if dpop {
            "the Authorization header has the DPoP scheme but no token"
        } else {
            "the Authorization header has the Bearer scheme but no token"
        })),
    }
}

fn present(dpop: bool, token: &[u8]) -> BearerToken<'_> {
    if dpop {
        BearerToken::Dpop(token)
    } else {
        BearerToken::Present(token)
    }
}

/// Reads an `Authorization` value (`Bearer <token>` or `DPoP <token>`, scheme case-insensitive).
/// Another scheme is [`BearerToken::Missing`]; a Bearer/DPoP value without a token, or whose
/// token contains a space, is `invalid_request`.
pub fn parse_authorization(text: &str) -> BearerToken<'_> {
    let (dpop, token) = match credentials(text.as_bytes()) {
        Ok(credentials) => credentials,
        Err(refusal) => return refusal,
    };
    // A kilobyte's token checked without a branch per byte (as `visible_ascii`).
    if token
        .iter()
        .fold(false, |space, &byte| space | (byte == b' '))
    {
        return BearerToken::Invalid(SPACE_IN_TOKEN);
    }
    present(dpop, token)
}

fn from_cookie<'a>(headers: RequestHeaders<'a>, name: &str) -> Vec<&'a [u8]> {
    headers
        .get_all(&COOKIE)
        .filter_map(visible_ascii)
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').as_bytes())
        .collect()
}

fn from_query<'a>(query: Option<&'a str>, name: &str) -> Vec<&'a [u8]> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.as_bytes())
        .collect()
}

/// Finds the token in `headers` (and `query`, the raw query string) according to `locations`.
pub fn extract<'a>(
    headers: RequestHeaders<'a>,
    query: Option<&'a str>,
    locations: &TokenLocations,
) -> BearerToken<'a> {
    // The one token found so far, and whether a second one was.
    let mut found: Option<&'a [u8]> = None;
    let mut more = false;
    let mut dpop = false;
    let mut take = |token: &'a [u8]| {
        if found.is_some() {
            more = true;
        } else {
            found = Some(token);
        }
    };
    match from_authorization(headers) {
        BearerToken::Present(token) => take(token),
        BearerToken::Dpop(token) => {
            dpop = true;
            take(token);
        }
        BearerToken::Invalid(why) => return BearerToken::Invalid(why),
        BearerToken::Missing => {}
    }
    if let Some(name) = &locations.cookie {
        // A Cookie header that is not text could hide the token from this reading and not from
        // the upstream's: refuse rather than guess.
        if headers.get_all(&COOKIE).any(|v| visible_ascii(v).is_none()) {
            return BearerToken::Invalid("a Cookie header is not valid text");
        }
        from_cookie(headers, name).into_iter().for_each(&mut take);
    }
    if let Some(name) = &locations.query {
        from_query(query, name).into_iter().for_each(&mut take);
    }
    match (found, more) {
        (_, true) => BearerToken::Invalid("the token was sent in more than one place"),
        (None, false) => BearerToken::Missing,
        (Some([]), false) => BearerToken::Invalid("the bearer token is empty"),
        (Some(token), false) if dpop => BearerToken::Dpop(token),
        (Some(token), false) => BearerToken::Present(token),
    }
}

/// A `Cookie` header value without the cookies named `name` (RFC 6265 §4.2: `name=value` pairs
/// joined by `; `); `None` when nothing else is left. The other pairs are kept as sent.
pub fn cookie_without(value: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .filter(|pair| {
            pair.trim()
                .split_once('=')
                .is_none_or(|(key, _)| key != name)
        })
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A query string (without `?`) without the parameters named `name` (each removed with one
/// adjoining `&`); every other byte is kept as sent. `None` when nothing is left.
pub fn query_without(query: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').is_none_or(|(key, _)| key != name))
        .collect();
    let rest = kept.join("&");
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(values: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in values {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn extract_map<'a>(
        map: &'a HeaderMap,
        query: Option<&'a str>,
        locations: &TokenLocations,
    ) -> BearerToken<'a> {
        extract(map.into(), query, locations)
    }

    proptest::proptest! {
        /// The header's one-pass reading is exactly "text if visible ASCII, then read as text".
        #[test]
        fn a_header_value_reads_as_its_text(
            scheme in proptest::sample::select(vec!["Bearer", "bearer", "DPoP", "dpop", "Basic", "", "Bearerx"]),
            spaces in 0usize..3,
            token in proptest::collection::vec(proptest::prop_oneof![
                4 => 0x21u8..0x7F,
                1 => proptest::prelude::any::<u8>(),
                1 => proptest::sample::select(vec![b' ', b'\t', 0x7F, 0x80, 0xC3, 0xA9]),
            ], 0..40),
        ) {
            let mut bytes = scheme.as_bytes().to_vec();
            bytes.extend(std::iter::repeat_n(b' ', spaces));
            bytes.extend(&token);
            let expected = match visible_ascii(&bytes) {
                None => BearerToken::Invalid(NOT_ASCII),
                Some(text) => parse_authorization(text),
            };
            proptest::prop_assert_eq!(parse_authorization_header(&bytes), expected);
        }
    }

    /// Every byte value, at the start, middle and end of a token long enough to take the
    /// vectorised pass's main loop: only `!`..`~` pass unread; the others are told apart.
    #[test]
    fn every_byte_of_a_long_token_is_classified() {
        for byte in 0..=u8::MAX {
            for at in [0, 20, 47] {
                let mut token = vec![b'a'; 48];
                token[at] = byte;
                let mut value = b"Bearer ".to_vec();
                value.extend(&token);
                let expected = match byte {
                    0x21..=0x7E => BearerToken::Present(&value[7..]),
                    // A leading space is one more separator.
                    b' ' if at == 0 => BearerToken::Present(&value[8..]),
                    b' ' => BearerToken::Invalid(SPACE_IN_TOKEN),
                    b'\t' => BearerToken::Present(&value[7..]),
                    _ => BearerToken::Invalid(NOT_ASCII),
                };
                assert_eq!(
                    parse_authorization_header(&value),
                    expected,
                    "byte {byte:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn visible_ascii_is_what_header_values_call_text() {
        for byte in 0..=u8::MAX {
            let bytes = [b'a', byte, b'z'];
            let ours = visible_ascii(&bytes).is_some();
            let theirs = http::HeaderValue::from_bytes(&bytes).map(|v| v.to_str().is_ok());
            if let Ok(theirs) = theirs {
                assert_eq!(ours, theirs, "byte {byte:#04x}");
            }
        }
    }

    #[test]
    fn dpop_scheme() {
        let none = TokenLocations::default();
        assert_eq!(
            extract_map(&headers(&[("authorization", "DPoP abc")]), None, &none),
            BearerToken::Dpop(b"abc")
        );
        assert_eq!(
            extract_map(&headers(&[("authorization", "dpop abc")]), None, &none),
            BearerToken::Dpop(b"abc")
        );
        assert!(matches!(
            extract_map(&headers(&[("authorization", "DPoP")]), None, &none),
            BearerToken::Invalid(_)
        ));
        let query = TokenLocations {
            query: Some("access_token".into()),
            ..TokenLocations::default()
        };
        assert!(matches!(
            extract_map(
                &headers(&[("authorization", "DPoP abc")]),
                Some("access_token=def"),
                &query
            ),
            BearerToken::Invalid(_)
        ));
    }

    #[test]
    fn authorization_header() {
        let none = TokenLocations::default();
        assert_eq!(
            extract_map(&headers(&[]), None, &none),
            BearerToken::Missing
        );
        assert_eq!(
            extract_map(&headers(&[("authorization", "Bearer abc")]), None, &none),
            BearerToken::Present(b"abc")
        );
        assert_eq!(
            extract_map(&headers(&[("authorization", "bearer abc")]), None, &none),
            BearerToken::Present(b"abc")
        );
        assert_eq!(
            extract_map(
                &headers(&[("authorization", "Basic dXNlcg==")]),
                None,
                &none
            ),
            BearerToken::Missing
        );
        assert!(matches!(
            extract_map(&headers(&[("authorization", "Bearer")]), None, &none),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            extract_map(&headers(&[("authorization", "Bearer a b")]), None, &none),
            BearerToken::Invalid(_)
        ));
        assert!(matches!(
            extract_map(
                &headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
                None,
                &none
            ),
            BearerToken::Invalid(_)
        ));
    }

    #[test]
    fn cookie_and_query_only_when_configured() {
        let none = TokenLocations::default();
        let both = TokenLocations {
            cookie: Some("access_token".into()),
            query: Some("access_token".into()),
        };
        let cookie = headers(&[("cookie", "a=1; access_token=xyz")]);
        assert_eq!(extract_map(&cookie, None, &none), BearerToken::Missing);
        assert_eq!(
            extract_map(&cookie, None, &both),
            BearerToken::Present(b"xyz")
        );
        assert_eq!(
            extract_map(&headers(&[]), Some("access_token=q1"), &both),
            BearerToken::Present(b"q1")
        );
        assert!(matches!(
            extract_map(
                &headers(&[("authorization", "Bearer abc")]),
                Some("access_token=q1"),
                &both
            ),
            BearerToken::Invalid("the token was sent in more than one place")
        ));
    }

    #[test]
    fn a_cookie_header_that_is_not_text_is_refused_when_cookies_carry_tokens() {
        let mut map = headers(&[("authorization", "Bearer abc")]);
        map.append(
            COOKIE,
            HeaderValue::from_bytes(b"access_token=t\xff").unwrap_or_else(|_| unreachable!()),
        );
        let cookie = TokenLocations {
            cookie: Some("access_token".into()),
            query: None,
        };
        assert_eq!(
            extract_map(&map, None, &cookie),
            BearerToken::Invalid("a Cookie header is not valid text")
        );
        assert_eq!(
            extract_map(&map, None, &TokenLocations::default()),
            BearerToken::Present(b"abc")
        );
    }

    #[test]
    fn token_removed_from_cookie_and_query() {
        assert_eq!(
            cookie_without("a=1; access_token=xyz; b=2", "access_token").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(cookie_without("access_token=xyz", "access_token"), None);
        assert_eq!(
            cookie_without("x_access_token=1;access_token=2", "access_token").as_deref(),
            Some("x_access_token=1")
        );
        assert_eq!(
            query_without("x=1&access_token=t&y=2", "access_token").as_deref(),
            Some("x=1&y=2")
        );
        assert_eq!(
            query_without("access_token=t&y=%2F&&z", "access_token").as_deref(),
            Some("y=%2F&&z")
        );
        assert_eq!(
            query_without("x=1&access_token=t", "access_token").as_deref(),
            Some("x=1")
        );
        assert_eq!(query_without("access_token=t", "access_token"), None);
        assert_eq!(
            query_without("access_token2=t&access_token", "access_token").as_deref(),
            Some("access_token2=t&access_token")
        );
    }
}
