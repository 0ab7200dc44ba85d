//! Fetching JWKS documents and OIDC discovery documents over HTTP(S), with limits.
//!
//! Every fetch has connect and total timeouts, a body size limit enforced while reading (a large
//! `Content-Length` is refused before reading), a bounded number of redirects, and the URL rule:
//! `https://` always, `http://` only to loopback hosts unless explicitly allowed — for the first
//! URL and every redirect target alike.

use crate::budget::FetchBudget;
use crate::settings::CacheSettings;
use jwtgate_core::jwk::JwksError;
use jwtgate_core::KeySet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// Why fetching keys or a discovery document failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    /// The URL is not a valid absolute URL.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// `http://` to a non-loopback host, or another scheme.
    #[error("refusing {0}: keys are only fetched over https:// (http:// only for loopback hosts)")]
    InsecureUrl(String),
    /// Connection, TLS, redirect or timeout failure.
    #[error("request to {url} failed: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// A status other than 200.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than the limit.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The body is not a key set.
    #[error("{url} did not return a JWKS: {error}")]
    NotJwks {
        /// The URL.
        url: String,
        /// The parse error.
        error: JwksError,
    },
    /// The key set has no usable key.
    #[error("{url} returned a key set with no usable key ({skipped} skipped)")]
    NoUsableKeys {
        /// The URL.
        url: String,
        /// Keys skipped.
        skipped: usize,
    },
    /// The discovery document is not usable.
    #[error("discovery document {url} is unusable: {detail}")]
    Discovery {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The discovery document names another issuer.
    #[error("discovery document {url} is for issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The document's issuer.
        found: String,
    },
    /// The shared fetch budget of tenant issuers is used up for this minute; nothing was sent.
    #[error("not fetching {url}: the tenants' fetch budget of {per_minute} documents per minute is used up")]
    BudgetExhausted {
        /// The URL not fetched.
        url: String,
        /// The budget.
        per_minute: usize,
    },
    /// Reading a local key file failed.
    #[error("cannot read {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// The error.
        detail: String,
    },
}

/// A successfully fetched key set with its caching information.
#[derive(Debug)]
pub struct FetchedKeys {
    /// The keys.
    pub keys: KeySet,
    /// `Cache-Control: max-age` (minus `Age`), when present and not `no-store`/`no-cache`.
    pub max_age: Option<Duration>,
    /// The raw `Cache-Control` header, for display.
    pub cache_control: Option<String>,
    /// The document as received (for display; the keys above are what verification uses).
    pub body: Vec<u8>,
}

/// An HTTP client configured with jwtgate's fetch limits.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body: usize,
    allow_insecure_http: bool,
    budget: Option<Arc<FetchBudget>>,
}

/// True for `https://`, and for `http://` to a loopback host (or any host when allowed).
pub fn url_allowed(url: &Url, allow_insecure_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => allow_insecure_http || is_loopback(url),
        _ => false,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses and checks a key URL.
pub fn parse_url(text: &str, allow_insecure_http: bool) -> Result<Url, FetchError> {
    let url = Url::parse(text).map_err(|_| FetchError::InvalidUrl(text.to_owned()))?;
    if !url_allowed(&url, allow_insecure_http) {
        return Err(FetchError::InsecureUrl(text.to_owned()));
    }
    Ok(url)
}

fn parse_max_age(cache_control: &str, age: Option<u64>) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            max_age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.map(|seconds| Duration::from_secs(seconds.saturating_sub(age.unwrap_or(0))))
}

impl Fetcher {
    /// A client with `settings`' timeouts, limits, redirect rule and `User-Agent`.
    pub fn new(settings: &CacheSettings) -> Result<Fetcher, FetchError> {
        let max_redirects = settings.max_redirects;
        let allow_insecure_http = settings.allow_insecure_http;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if !url_allowed(attempt.url(), allow_insecure_http) {
                let target = attempt.url().to_string();
                attempt.error(format!("redirect to {target} is not allowed (https only)"))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            .redirect(redirect)
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| FetchError::Transport {
                url: String::new(),
                detail: e.to_string(),
            })?;
        Ok(Fetcher {
            client,
            max_body: settings.max_body,
            allow_insecure_http,
            budget: None,
        })
    }

    /// The same client, taking every request from `budget` first (a request over the budget is
    /// refused without any network call).
    pub fn with_budget(mut self, budget: Arc<FetchBudget>) -> Fetcher {
        self.budget = Some(budget);
        self
    }

    /// Whether plain HTTP to non-loopback hosts is allowed.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    async fn get(&self, url: &Url) -> Result<(reqwest::header::HeaderMap, Vec<u8>), FetchError> {
        if !url_allowed(url, self.allow_insecure_http) {
            return Err(FetchError::InsecureUrl(url.to_string()));
        }
        if let Some(budget) = &self.budget {
            if !budget.try_take() {
                return Err(FetchError::BudgetExhausted {
                    url: url.to_string(),
                    per_minute: budget.per_minute(),
                });
            }
        }
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_string(),
            detail: describe_reqwest(&e),
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit: self.max_body,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((headers, body))
    }

    /// Fetches and parses a JWKS. A set with no usable key is an error, so it never replaces
    /// good keys.
    pub async fn fetch_jwks(&self, url: &Url) -> Result<FetchedKeys, FetchError> {
        let (headers, body) = self.get(url).await?;
        let keys = KeySet::from_json(&body).map_err(|error| FetchError::NotJwks {
            url: url.to_string(),
            error,
        })?;
        for skipped in keys.skipped() {
            tracing::warn!(url = %url, "{skipped}");
        }
        if keys.keys().is_empty() {
            return Err(FetchError::NoUsableKeys {
                url: url.to_string(),
                skipped: keys.skipped().len(),
            });
        }
        let cache_control = headers
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let age = headers
            .get(reqwest::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        Ok(FetchedKeys {
            max_age: cache_control
                .as_deref()
                .and_then(|cc| parse_max_age(cc, age)),
            cache_control,
            keys,
            body,
        })
    }

    /// Resolves an issuer's `jwks_uri` through OpenID Connect discovery, falling back to RFC 8414
    /// authorization server metadata. The document's `issuer` must equal `issuer` exactly.
    pub async fn discover(&self, issuer: &str) -> Result<Url, FetchError> {
        let base = parse_url(issuer, self.allow_insecure_http)?;
        let oidc = oidc_discovery_url(issuer)?;
        let first = self.discover_at(&oidc, issuer).await;
        match first {
            Err(FetchError::Status { status: 404, .. }) | Err(FetchError::Discovery { .. }) => {
                let rfc8414 = rfc8414_url(&base)?;
                self.discover_at(&rfc8414, issuer)
                    .await
                    .map_err(|second| match second {
                        FetchError::Status { status: 404, .. } => first.err().unwrap_or(second),
                        other => other,
                    })
            }
            other => other,
        }
    }

    async fn discover_at(&self, url: &Url, issuer: &str) -> Result<Url, FetchError> {
        let (_, body) = self.get(url).await?;
        let bad = |detail: &str| FetchError::Discovery {
            url: url.to_string(),
            detail: detail.to_owned(),
        };
        let document =
            jwtgate_core::internal::json::parse_object(&body).map_err(|e| bad(&e.to_string()))?;
        let found = document
            .get("issuer")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad("no \"issuer\""))?;
        if found != issuer {
            return Err(FetchError::IssuerMismatch {
                url: url.to_string(),
                expected: issuer.to_owned(),
                found: found.to_owned(),
            });
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad("no \"jwks_uri\""))?;
        parse_url(jwks_uri, self.allow_insecure_http)
    }
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery §4).
pub fn oidc_discovery_url(issuer: &str) -> Result<Url, FetchError> {
    let text = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&text).map_err(|_| FetchError::InvalidUrl(text))
}

/// RFC 8414 §3: the well-known segment goes between the host and the issuer's path.
fn rfc8414_url(issuer: &Url) -> Result<Url, FetchError> {
    let path = issuer.path().trim_end_matches('/');
    let mut url = issuer.clone();
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    Ok(url)
}

fn describe_reqwest(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_redirect() {
        "redirect refused".to_owned()
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback() {
        let ok = |u: &str| parse_url(u, false).is_ok();
        assert!(ok("https://tenant.auth0.com/.well-known/jwks.json"));
        assert!(ok("http://127.0.0.1:8080/jwks"));
        assert!(ok("http://127.9.9.9/jwks"));
        assert!(ok("http://[::1]:9/jwks"));
        assert!(ok("http://localhost:3000/"));
        assert!(!ok("http://example.com/jwks"));
        assert!(!ok("http://10.0.0.1/jwks"));
        assert!(!ok("ftp://127.0.0.1/jwks"));
        assert!(!ok("not a url"));
        assert!(parse_url("http://example.com/jwks", true).is_ok());
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=3600", None),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_max_age("max-age=3600", Some(600)),
            Some(Duration::from_secs(3000))
        );
        assert_eq!(parse_max_age("no-store", None), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public", None), None);
        assert_eq!(parse_max_age("max-age=abc", None), None);
    }

    #[test]
    fn discovery_urls() {
        assert_eq!(
            oidc_discovery_url("https://t.auth0.com/").map(|u| u.to_string()),
            Ok("https://t.auth0.com/.well-known/openid-configuration".to_owned())
        );
        let issuer = Url::parse("https://login.example.com/tenant/v2/").ok();
        let url = issuer.as_ref().map(rfc8414_url);
        assert_eq!(
            url.and_then(Result::ok).map(|u| u.to_string()),
            Some(
                "https://login.example.com/.well-known/oauth-authorization-server/tenant/v2"
                    .to_owned()
            )
        );
    }
}
