//! Registered redirect URIs, logout URLs and web origins: exact strings, or a pattern whose port
//! is `*` (`http://localhost:*`, `http://localhost:*/callback`) so a development SPA may run on
//! any port.
//!
//! * An exact entry matches only the identical string (byte for byte, RFC 6749 §3.1.2.3 and
//!   OAuth 2.0 Security BCP §4.1.3).
//! * A port-wildcard entry matches a URL with the same scheme and host, any port, no user info and
//!   no fragment; with a path in the pattern the path must be equal, without one any path is
//!   allowed. Candidates are parsed as a browser would (WHATWG URL), so tricks such as
//!   `http://localhost:1@evil.example/` or `http://localhost:1\@evil.example` do not match.

use thiserror::Error;
use url::Url;

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{pattern:?} is not a usable URL pattern: {reason}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact,
    AnyPort {
        scheme: String,
        host: String,
        path: Option<String>,
    },
}

/// One registered URI or URI pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriPattern {
    raw: String,
    kind: Kind,
}

impl UriPattern {
    /// Parses an exact URI or a `scheme://host:*[/path]` pattern.
    pub fn parse(raw: &str) -> Result<UriPattern, PatternError> {
        let error = |reason| PatternError {
            pattern: raw.to_owned(),
            reason,
        };
        if raw.contains('#') {
            return Err(error("a redirect URI must not contain a fragment"));
        }
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(error("expected scheme://host…"));
        };
        if let Some(star) = rest.find(":*") {
            let host = &rest[..star];
            let after = &rest[star + 2..];
            if host.is_empty() || host.contains(['@', '/', '*', '\\', '?']) {
                return Err(error("the host before :* must be a plain host name"));
            }
            if !(after.is_empty() || after.starts_with('/')) || after.contains(['*', '?']) {
                return Err(error("after :* only a path may follow"));
            }
            // Check the pattern stands for real URLs by parsing it with a concrete port.
            let probe = format!("{scheme}://{host}:1{after}");
            let url = Url::parse(&probe).map_err(|_| error("not a URL"))?;
            if url.host_str().is_none() {
                return Err(error("no host"));
            }
            let path = match after {
                "" => None,
                _ => Some(url.path().to_owned()),
            };
            return Ok(UriPattern {
                raw: raw.to_owned(),
                kind: Kind::AnyPort {
                    scheme: url.scheme().to_owned(),
                    host: url.host_str().unwrap_or_default().to_owned(),
                    path,
                },
            });
        }
        if raw.contains('*') {
            return Err(error("`*` is only allowed as the port (host:*)"));
        }
        Url::parse(raw).map_err(|_| error("not a URL"))?;
        Ok(UriPattern {
            raw: raw.to_owned(),
            kind: Kind::Exact,
        })
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL to redirect to when `candidate` matches this entry: the registered string itself
    /// for exact entries, the parsed (normalized) URL for patterns.
    pub fn matches(&self, candidate: &str) -> Option<Url> {
        match &self.kind {
            Kind::Exact => (candidate == self.raw)
                .then(|| Url::parse(candidate).ok())
                .flatten(),
            Kind::AnyPort { scheme, host, path } => {
                if candidate.contains('#') {
                    return None;
                }
                let url = Url::parse(candidate).ok()?;
                let fits = url.scheme() == scheme
                    && url.host_str() == Some(host.as_str())
                    && url.username().is_empty()
                    && url.password().is_none()
                    && path.as_deref().is_none_or(|p| url.path() == p);
                fits.then_some(url)
            }
        }
    }

    /// True when `origin` (an `Origin` header value: `scheme://host[:port]`) matches.
    pub fn matches_origin(&self, origin: &str) -> bool {
        match &self.kind {
            Kind::Exact => self.raw.trim_end_matches('/') == origin,
            Kind::AnyPort { scheme, host, .. } => {
                // An origin has no path: the scheme and host decide, whatever the pattern's path.
                Url::parse(origin).is_ok_and(|url| {
                    url.path() == "/"
                        && url.origin().ascii_serialization() == origin
                        && url.scheme() == scheme
                        && url.host_str() == Some(host.as_str())
                })
            }
        }
    }
}

/// The serialized origin of `url` (`scheme://host[:port]`), as `postMessage` wants it.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> UriPattern {
        match UriPattern::parse(s) {
            Ok(p) => p,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn exact_entries_match_only_themselves() {
        let e = p("https://app.example/callback");
        assert!(e.matches("https://app.example/callback").is_some());
        assert!(e.matches("https://app.example/callback/").is_none());
        assert!(e.matches("https://app.example/callback?x=1").is_none());
        assert!(e.matches("HTTPS://app.example/callback").is_none());
    }

    #[test]
    fn port_wildcards() {
        let any = p("http://localhost:*");
        assert!(any.matches("http://localhost:3000/callback").is_some());
        assert!(any.matches("http://localhost:5173").is_some());
        assert!(any.matches("http://localhost:1@evil.example/").is_none());
        assert!(any
            .matches("http://localhost:1\\@evil.example/")
            .is_some_and(|u| u.host_str() == Some("localhost")));
        assert!(any.matches("http://localhost.evil.example:3000/").is_none());
        assert!(any.matches("https://localhost:3000/").is_none());
        assert!(any.matches("http://user@localhost:3000/").is_none());
        assert!(any.matches("http://localhost:3000/#x").is_none());
        let path = p("http://localhost:*/callback");
        assert!(path.matches("http://localhost:8080/callback").is_some());
        assert!(path.matches("http://localhost:8080/callback2").is_none());
        assert!(path.matches("http://localhost:8080/").is_none());
    }

    #[test]
    fn origins() {
        let any = p("http://localhost:*");
        assert!(any.matches_origin("http://localhost:3000"));
        assert!(!any.matches_origin("http://localhost:3000/x"));
        assert!(!any.matches_origin("http://127.0.0.1:3000"));
        assert!(!any.matches_origin("null"));
        let with_path = p("http://127.0.0.1:*/callback");
        assert!(with_path.matches_origin("http://127.0.0.1:6274"));
        assert!(!with_path.matches_origin("http://localhost:6274"));
        let exact = p("https://app.example");
        assert!(exact.matches_origin("https://app.example"));
        assert!(!exact.matches_origin("https://app.example:8443"));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "localhost:3000",
            "http://*:3000/",
            "http://localhost:*x",
            "http://a@localhost:*",
            "http://localhost:3000/#frag",
            "http://local*host:3000/",
        ] {
            assert!(UriPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
