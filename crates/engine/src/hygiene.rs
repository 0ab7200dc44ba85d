//! Request hygiene at the HTTP boundary: the header names a client must not be able to choose,
//! and what to do with them before a request is decided or forwarded.
//!
//! Servers behind jwtgate do not all read header names the way HTTP does. CGI, WSGI, PHP and
//! nginx with `underscores_in_headers on` fold `X_Auth_Subject` and `X-Auth-Subject` into the same
//! variable, so removing the exact identity header names is not enough: every name that *folds*
//! to an identity header (lower case, `_` read as `-`) must go. And a client's `Connection`
//! header names headers for a proxy to delete: if it may name an identity header, the proxy
//! deletes the verified value the gateway set. So:
//!
//! * [`connection_names_protected`]: a `Connection` header naming a protected header
//!   (an identity header, `Authorization`, or one the gateway sets: `X-Forwarded-For/-Host/-Proto`)
//!   makes the request `invalid_request` — no legitimate client does this;
//! * [`remove_spoofed`]: every client header whose folded name is an identity header is removed
//!   before the verified ones are added (tower layer and proxy);
//! * [`forward_auth_refusal`]: the forward-auth endpoint cannot remove anything from the request
//!   the proxy forwards, so it refuses one that carries a variant spelling (with `_`) of an
//!   identity header (no proxy configuration can strip every spelling), a path override, or a
//!   method override naming another method;
//! * [`METHOD_OVERRIDE_HEADERS`]: `X-HTTP-Method-Override` and friends make some frameworks run
//!   another method than the one decided on; the proxy removes them, forward-auth refuses a value
//!   that differs from the checked method;
//! * [`PATH_OVERRIDE_HEADERS`]: `X-Original-URL` and `X-Rewrite-URL` make some frameworks serve
//!   another path than the one checked; the proxy removes them, forward-auth refuses them;
//! * [`upgrade_is_websocket`]: only a WebSocket upgrade may pass the proxy.

use crate::request_headers::{text, RequestHeaders};
use http::{HeaderMap, HeaderName};

/// Headers that make frameworks (Rails, Laravel, Express `method-override`, Spring's
/// `HiddenHttpMethodFilter` variants) treat a request as another method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers that make frameworks serve another path than the request line's (Symfony's and
/// Zend's `X-Original-URL`/`X-Rewrite-URL`, from IIS URL Rewrite): a path chosen by a header
/// would never have been checked.
pub const PATH_OVERRIDE_HEADERS: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// Headers the gateway sets on forwarded requests, besides the identity headers.
pub const FORWARDING_HEADERS: [&str; 3] =
    ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"];

/// True when `name` (as received) reads as `canonical` (lower case, `-`-separated) to a server
/// that folds case and reads `_` as `-`.
pub fn folds_to(name: impl AsRef<[u8]>, canonical: &str) -> bool {
    let name = name.as_ref();
    name.len() == canonical.len()
        && name.iter().zip(canonical.bytes()).all(|(&a, b)| {
            let a = match a.to_ascii_lowercase() {
                b'_' => b'-',
                other => other,
            };
            a == b
        })
}

/// The first protected header that a `Connection` header names, if any. `protected` holds
/// canonical (lower-case) names; `Authorization` and the forwarding headers are always protected.
pub fn connection_names_protected<'a>(
    headers: RequestHeaders<'_>,
    protected: impl Iterator<Item = &'a HeaderName> + Clone,
) -> Option<String> {
    let always = ["authorization"].into_iter().chain(FORWARDING_HEADERS);
    headers
        .get_all(&http::header::CONNECTION)
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|token| String::from_utf8_lossy(token).trim().to_owned())
        .find(|token| {
            always.clone().any(|name| folds_to(token, name))
                || protected.clone().any(|name| folds_to(token, name.as_str()))
        })
}

/// What the forward-auth endpoint refuses in a request's headers, found in one pass: a variant
/// spelling (with `_`) of one of `identity`, a path-override header, or a method-override header
/// whose value is not `method`. Header names arrive lower-cased, so only names with `_` need
/// folding.
pub fn forward_auth_refusal<'a>(
    headers: RequestHeaders<'_>,
    identity: impl Iterator<Item = &'a HeaderName> + Clone,
    method: &str,
) -> Option<ForwardAuthRefusal> {
    let lossy = |name: &[u8]| String::from_utf8_lossy(name).into_owned();
    for (name, value) in headers.iter() {
        let folded = name.contains(&b'_');
        if folded && identity.clone().any(|n| folds_to(name, n.as_str())) {
            return Some(ForwardAuthRefusal::IdentitySpelling(lossy(name)));
        }
        let is = |canonical: &str| {
            if folded {
                folds_to(name, canonical)
            } else {
                name == canonical.as_bytes()
            }
        };
        if PATH_OVERRIDE_HEADERS.iter().any(|n| is(n)) {
            return Some(ForwardAuthRefusal::PathOverride(lossy(name)));
        }
        if METHOD_OVERRIDE_HEADERS.iter().any(|n| is(n))
            && !text(value).is_some_and(|v| v.trim().eq_ignore_ascii_case(method))
        {
            return Some(ForwardAuthRefusal::MethodOverride(
                lossy(name),
                lossy(value),
            ));
        }
    }
    None
}

/// Why [`forward_auth_refusal`] refuses a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardAuthRefusal {
    /// Another spelling of an identity header (`x_auth_subject`), as received.
    IdentitySpelling(String),
    /// `X-Original-URL` or `X-Rewrite-URL`, as received.
    PathOverride(String),
    /// A method override naming another method: (header name, value).
    MethodOverride(String, String),
}

/// Removes every header whose name folds to one of `names` (exact spellings included).
pub fn remove_spoofed<'a>(
    headers: &mut HeaderMap,
    names: impl Iterator<Item = &'a HeaderName> + Clone,
) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|key| {
            names
                .clone()
                .any(|name| folds_to(key.as_str(), name.as_str()))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Removes every header whose name is a variant spelling (with `_`) of one of `names`
/// (canonical, lower case); the exact spellings stay.
pub fn remove_variant_spellings(headers: &mut HeaderMap, names: &[&str]) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|key| key.as_str().contains('_'))
        .filter(|key| names.iter().any(|name| folds_to(key.as_str(), name)))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Removes the method-override and path-override headers, in every spelling: the decision was
/// made on the request's own method and path.
pub fn remove_overrides(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|key| {
            METHOD_OVERRIDE_HEADERS
                .iter()
                .chain(&PATH_OVERRIDE_HEADERS)
                .any(|name| folds_to(key.as_str(), name))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// `None` without an `Upgrade` header; otherwise whether it asks for exactly one protocol,
/// `websocket` (any case, optionally with a version such as `websocket/13`).
pub fn upgrade_is_websocket(headers: &HeaderMap) -> Option<bool> {
    let mut values = headers.get_all(http::header::UPGRADE).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(false);
    }
    let protocol = first.to_str().unwrap_or_default().trim();
    let name = protocol.split('/').next().unwrap_or_default();
    Some(!protocol.contains(',') && name.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| unreachable!()),
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        headers
    }

    fn identity() -> Vec<HeaderName> {
        ["x-auth-subject", "x-auth-scopes"]
            .iter()
            .map(|n| HeaderName::from_static(n))
            .collect()
    }

    #[test]
    fn folding() {
        assert!(folds_to("X_Auth_Subject", "x-auth-subject"));
        assert!(folds_to("x-auth_subject", "x-auth-subject"));
        assert!(folds_to("x-auth-subject", "x-auth-subject"));
        assert!(!folds_to("x-auth-subjects", "x-auth-subject"));
        assert!(!folds_to("x.auth.subject", "x-auth-subject"));
    }

    #[test]
    fn spoofed_spellings_are_removed() {
        let mut headers = map(&[
            ("x_auth_subject", "admin"),
            ("x-auth_scopes", "admin"),
            ("x-auth-subject", "admin"),
            ("x_other", "kept"),
        ]);
        let names = identity();
        remove_spoofed(&mut headers, names.iter());
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x_other"]);

        let mut forwarded = map(&[
            ("x_forwarded_for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        remove_variant_spellings(&mut forwarded, &FORWARDING_HEADERS);
        let left: Vec<&str> = forwarded.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-forwarded-for"]);
    }

    #[test]
    fn connection_may_not_name_protected_headers() {
        let names = identity();
        let check = |value: &str| {
            connection_names_protected((&map(&[("connection", value)])).into(), names.iter())
        };
        assert_eq!(check("keep-alive"), None);
        assert_eq!(check("Upgrade, keep-alive"), None);
        assert_eq!(
            check("close, X-Auth-Subject"),
            Some("X-Auth-Subject".into())
        );
        assert_eq!(check("x_auth_scopes"), Some("x_auth_scopes".into()));
        assert_eq!(check("Authorization"), Some("Authorization".into()));
        assert_eq!(check("x-forwarded-for"), Some("x-forwarded-for".into()));
    }

    #[test]
    fn method_overrides() {
        let mut headers = map(&[
            ("x-http-method-override", "DELETE"),
            ("X_HTTP_Method", "PUT"),
        ]);
        remove_overrides(&mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn forward_auth_refusals_in_one_pass() {
        let names = identity();
        let check = |pairs: &[(&str, &str)]| {
            forward_auth_refusal((&map(pairs)).into(), names.iter(), "GET")
        };
        assert_eq!(
            check(&[("x-auth-subject", "admin"), ("accept", "*/*")]),
            None
        );
        assert!(matches!(
            check(&[("x_auth_scopes", "admin")]),
            Some(ForwardAuthRefusal::IdentitySpelling(_))
        ));
        assert!(matches!(
            check(&[("x_rewrite_url", "/admin")]),
            Some(ForwardAuthRefusal::PathOverride(_))
        ));
        assert_eq!(
            check(&[("x-http-method", "DELETE")]),
            Some(ForwardAuthRefusal::MethodOverride(
                "x-http-method".into(),
                "DELETE".into()
            ))
        );
        assert_eq!(check(&[("x-http-method-override", "get")]), None);
    }

    #[test]
    fn every_override_name_is_refused_in_both_spellings() {
        let names = identity();
        for name in METHOD_OVERRIDE_HEADERS.iter().chain(&PATH_OVERRIDE_HEADERS) {
            for spelling in [name.to_string(), name.replace('-', "_")] {
                let headers = map(&[(&spelling, "DELETE")]);
                let refusal = forward_auth_refusal((&headers).into(), names.iter(), "GET");
                assert!(refusal.is_some(), "{spelling} passed");
            }
        }
    }

    #[test]
    fn path_overrides() {
        let mut headers = map(&[("X-Original-URL", "/admin"), ("x_rewrite_url", "/admin")]);
        remove_overrides(&mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn upgrades() {
        assert_eq!(upgrade_is_websocket(&map(&[])), None);
        assert_eq!(
            upgrade_is_websocket(&map(&[("upgrade", "websocket")])),
            Some(true)
        );
        assert_eq!(
            upgrade_is_websocket(&map(&[("upgrade", "WebSocket")])),
            Some(true)
        );
        assert_eq!(
            upgrade_is_websocket(&map(&[("upgrade", "h2c")])),
            Some(false)
        );
        assert_eq!(
            upgrade_is_websocket(&map(&[("upgrade", "websocket, h2c")])),
            Some(false)
        );
        assert_eq!(
            upgrade_is_websocket(&map(&[("upgrade", "websocket"), ("upgrade", "h2c")])),
            Some(false)
        );
    }
}
