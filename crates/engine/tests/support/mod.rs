//! How the engine's tests and benchmarks build an engine and ask it: a configuration read from
//! TOML (`[[issuers]]`, `[[routes]]`, `[keys]`), the engine its policy makes (with the verified-token
//! cache the gateway has, or without), and a bearer `GET` decided in-line. The benchmarks include
//! this module with `#[path]`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderValue};
use jwtgate_engine::token_cache::TokenCache;
use jwtgate_engine::{
    build_policy, rules::parse_toml, ConfigError, Engine, FrontEnd, IssuerSection, KeysSection,
    Outcome, RequestView, RouteSection, TokenInput, Unmatched,
};
use serde::Deserialize;

/// The sections of a test configuration the policy is built from.
#[derive(Deserialize)]
pub struct Config {
    /// `[[issuers]]`.
    pub issuers: Vec<IssuerSection>,
    /// `[[routes]]` (none when absent).
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// `[keys]` (the defaults when absent).
    #[serde(default)]
    pub keys: KeysSection,
}

impl Config {
    /// Reads `toml`, named `file` in errors.
    pub fn parse(toml: &str, file: &str) -> Result<Config, ConfigError> {
        parse_toml(toml, file)
    }

    /// The engine of this configuration's issuers and `routes` (its own, or routes derived from
    /// them), with `unmatched` for requests no route matches; no verified-token cache.
    pub fn engine_with(
        &self,
        routes: &[RouteSection],
        unmatched: Unmatched,
        file: &str,
    ) -> Result<Engine, ConfigError> {
        let parts = build_policy(&self.issuers, routes, unmatched, &self.keys, file, None)?;
        Ok(Engine::new(parts.registry, parts.routes).with_issuer_rules(parts.issuer_rules))
    }

    /// [`Config::engine_with`] its own routes, requests no route matches refused when it has
    /// any.
    pub fn engine(&self) -> Result<Engine, ConfigError> {
        let unmatched = Unmatched::resolve(None, !self.routes.is_empty());
        self.engine_with(&self.routes, unmatched, "test.toml")
    }
}

/// The verified-token cache the tests give an engine: 1 MiB, at most 100 entries, 300 s.
pub fn cache() -> TokenCache {
    TokenCache::new(1 << 20, Some(100), 300).expect("a cache")
}

/// The engine `toml` configures (see [`Config::engine`]), with the [`cache`].
pub fn cached_engine(toml: &str) -> Result<Engine, ConfigError> {
    Ok(Config::parse(toml, "test.toml")?
        .engine()?
        .with_cache(cache()))
}

/// Headers holding `Authorization: {authorization}`.
pub fn authorization(authorization: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(authorization).unwrap(),
    );
    headers
}

/// An in-line `GET target` with `headers` at `now`, without origin or client certificate.
pub fn get<'a>(target: &'a str, headers: &'a HeaderMap, now: i64) -> RequestView<'a> {
    RequestView {
        front: FrontEnd::Inline,
        origin: None,
        method: "GET",
        target,
        headers: headers.into(),
        token: TokenInput::FromRequest,
        client_certificate: None,
        now,
    }
}

/// Decides `GET path` with `token` as a bearer token, now.
pub async fn ask_bearer(engine: &Engine, path: &str, token: &str) -> Outcome {
    let headers = authorization(&format!("Bearer {token}"));
    engine
        .decide(&get(path, &headers, jwtgate_test_support::now()))
        .await
}
