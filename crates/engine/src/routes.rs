//! Per-route rules: method and path pattern → the scopes a request needs, or public.
//!
//! Patterns are matched against the normalised path ([`crate::path::normalize`]), segment by
//! segment: a literal segment matches itself, `{name}` matches any one segment, and a final `*`
//! matches the rest (one or more segments). Rules are tried in order and the first match wins;
//! a request that matches no rule gets the table's default (deny unless configured otherwise).
//!
//! Besides its scopes, a rule may carry a [`RoutePolicy`]: the issuers and audiences it accepts
//! (replacing the defaults for that route, so one gateway fronts several APIs or providers) and
//! claim [`Conditions`]. The engine checks them after verification on every request, cache hits
//! included: the verified-token cache is keyed by the token alone, so an entry verified for one
//! route's audience must never be an allow for a route whose audience it lacks.

use crate::conditions::Conditions;
use jwtgate_core::internal::pieces::NonEmptyPieces;
use jwtgate_core::{Reason, Rejection, ScopeRequirement, Verified};
use std::sync::Arc;
use thiserror::Error;

/// What a route asks of a verified token besides scopes. The default asks nothing more than the
/// issuer's own settings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    issuers: Vec<String>,
    audiences: Vec<String>,
    conditions: Conditions,
    dpop: Option<crate::dpop::DpopMode>,
    mcp: Option<crate::mcp::McpRules>,
}

impl RoutePolicy {
    /// A policy accepting tokens of `issuers` (configured issuers or templates, as written; empty:
    /// every configured issuer) for `audiences` (empty: the issuer's own audiences), meeting
    /// `conditions`.
    pub fn new(
        issuers: Vec<String>,
        audiences: Vec<String>,
        conditions: Conditions,
    ) -> RoutePolicy {
        RoutePolicy {
            issuers,
            audiences,
            conditions,
            dpop: None,
            mcp: None,
        }
    }

    /// The same policy for an MCP endpoint with these JSON-RPC rules (`None`: not MCP).
    pub fn with_mcp(mut self, rules: Option<crate::mcp::McpRules>) -> RoutePolicy {
        self.mcp = rules;
        self
    }

    /// The route's MCP rules, when it is an MCP endpoint.
    pub fn mcp(&self) -> Option<&crate::mcp::McpRules> {
        self.mcp.as_ref()
    }

    /// The same policy with the route's own DPoP mode (combined with the issuer's: the stricter
    /// wins).
    pub fn with_dpop(mut self, mode: Option<crate::dpop::DpopMode>) -> RoutePolicy {
        self.dpop = mode;
        self
    }

    /// The route's DPoP mode, if it sets one.
    pub fn dpop(&self) -> Option<crate::dpop::DpopMode> {
        self.dpop
    }

    /// The accepted issuers (empty: any configured issuer).
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The accepted audiences (empty: the token's issuer's audiences).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The route's claim conditions.
    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// Checks a verified token's issuer and audience for this route: `configured` is the
    /// configured issuer (or template) that accepted the token, `default_audiences` that
    /// issuer's own audiences. A token of another issuer, or for another API, is `invalid_token`
    /// here, exactly as if this route's settings had been the verifier's.
    pub fn admits(
        &self,
        verified: &Verified,
        configured: &str,
        default_audiences: Option<&[String]>,
    ) -> Result<(), Rejection> {
        if !self.issuers.is_empty() && !self.issuers.iter().any(|i| i == configured) {
            return Err(Reason::IssuerMismatch {
                found: verified.issuer().to_owned(),
                expected: self.issuers.clone(),
            }
            .into());
        }
        let expected = match (self.audiences.as_slice(), default_audiences) {
            ([], None) => return Ok(()),
            ([], Some(defaults)) => defaults,
            (route, _) => route,
        };
        let accepted = verified
            .audiences()
            .any(|aud| expected.iter().any(|e| e == aud));
        if accepted {
            return Ok(());
        }
        // A copy, not `claims()`: that would grow the cached token after the cache weighed it.
        let claims = verified.to_claims();
        let found = jwtgate_core::audiences(&claims);
        Err(Reason::AudienceMismatch {
            id_token: jwtgate_core::id_token_signs(&claims, &found),
            found,
            expected: expected.to_vec(),
        }
        .into())
    }
}

/// What a matched route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No token needed.
    Public,
    /// A valid token granting these scopes (an empty requirement: any valid token).
    Token(ScopeRequirement),
    /// Always refused (the default for unmatched requests).
    Deny,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    methods: Vec<String>,
    pattern: Vec<PatternSegment>,
    source: String,
    requirement: Requirement,
    policy: Arc<RoutePolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    Any,
    Rest,
}

/// A route pattern or rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// The pattern does not start with `/`.
    #[error("route pattern {0:?} must start with '/'")]
    NotAbsolute(String),
    /// `*` anywhere but the last segment.
    #[error("route pattern {0:?}: '*' may only be the whole last segment")]
    MisplacedWildcard(String),
    /// Not `METHOD PATH [scope …]`.
    #[error("route {0:?} is not 'METHODS PATH [SCOPE …]' (e.g. 'GET /api/users read:users')")]
    Syntax(String),
    /// A method name that is not an HTTP token.
    #[error("route {0:?}: {1:?} is not an HTTP method")]
    Method(String, String),
}

impl Route {
    /// A rule for `methods` (empty or `*`: any method) on `pattern`.
    pub fn new(
        methods: &[&str],
        pattern: &str,
        requirement: Requirement,
    ) -> Result<Route, RouteError> {
        if !pattern.starts_with('/') {
            return Err(RouteError::NotAbsolute(pattern.to_owned()));
        }
        let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "*" if index + 1 == parts.len() => PatternSegment::Rest,
                p if p.contains('*') => {
                    return Err(RouteError::MisplacedWildcard(pattern.to_owned()))
                }
                p if p.starts_with('{') && p.ends_with('}') => PatternSegment::Any,
                p => PatternSegment::Literal(p.to_owned()),
            });
        }
        let mut upper = Vec::new();
        for method in methods {
            if *method == "*" {
                upper.clear();
                break;
            }
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(RouteError::Method(pattern.to_owned(), (*method).to_owned()));
            }
            upper.push(method.to_ascii_uppercase());
        }
        Ok(Route {
            methods: upper,
            pattern: segments,
            source: pattern.to_owned(),
            requirement,
            policy: Arc::default(),
        })
    }

    /// The same rule with `policy` (issuers, audiences, conditions).
    pub fn with_policy(mut self, policy: RoutePolicy) -> Route {
        self.policy = Arc::new(policy);
        self
    }

    /// The rule's issuers, audiences and conditions.
    pub fn policy(&self) -> &RoutePolicy {
        &self.policy
    }

    /// Parses the command-line form `METHODS PATH [SCOPE …]`, e.g. `GET,HEAD /api/users
    /// read:users`; `METHODS PATH public` makes the route public; `any:` before the scopes makes
    /// them any-of.
    pub fn parse(spec: &str) -> Result<Route, RouteError> {
        let mut words = spec.split_whitespace();
        let (Some(methods), Some(path)) = (words.next(), words.next()) else {
            return Err(RouteError::Syntax(spec.to_owned()));
        };
        let rest: Vec<&str> = words.collect();
        let requirement = match rest.as_slice() {
            ["public"] => Requirement::Public,
            ["deny"] => Requirement::Deny,
            [first, more @ ..] if first.starts_with("any:") => {
                let mut scopes = vec![first.trim_start_matches("any:")];
                scopes.extend(more);
                Requirement::Token(ScopeRequirement::any_of(
                    scopes.into_iter().filter(|s| !s.is_empty()),
                ))
            }
            scopes => Requirement::Token(ScopeRequirement::all_of(scopes.iter().copied())),
        };
        let methods: Vec<&str> = methods.split(',').collect();
        Route::new(&methods, path, requirement)
    }

    /// The rule's requirement.
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.source
    }

    /// The methods (empty: any).
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.methods.is_empty() || self.methods.iter().any(|m| m == method);
        method_ok && self.path_matches(path)
    }

    fn path_matches(&self, path: &str) -> bool {
        let mut segments = NonEmptyPieces::new(path, b'/');
        for part in &self.pattern {
            match part {
                PatternSegment::Rest => return segments.next().is_some(),
                PatternSegment::Any => {
                    if segments.next().is_none() {
                        return false;
                    }
                }
                PatternSegment::Literal(literal) => {
                    if segments.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        segments.next().is_none()
    }
}

/// Ordered rules with a default for requests that match none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    default: Requirement,
    default_policy: Arc<RoutePolicy>,
}

impl RouteTable {
    /// A table; `default` applies when no rule matches (jwtgate's default is [`Requirement::Deny`]).
    pub fn new(routes: Vec<Route>, default: Requirement) -> RouteTable {
        RouteTable {
            routes,
            default,
            default_policy: Arc::default(),
        }
    }

    /// The requirement and policy for `method` and the normalised `path`.
    pub fn rule(&self, method: &str, path: &str) -> (&Requirement, &RoutePolicy) {
        match self.find(method, path) {
            Some(route) => (&route.requirement, &route.policy),
            None => (&self.default, &self.default_policy),
        }
    }

    /// The rules.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first rule matching `method` and the *normalised* `path`, or `None` (the default applies).
    pub fn find(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(method, path))
    }

    /// The requirement for `method` and the normalised `path`.
    pub fn requirement(&self, method: &str, path: &str) -> &Requirement {
        self.find(method, path)
            .map_or(&self.default, Route::requirement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let routes = [
            "GET /healthz public",
            "GET,HEAD /api/users read:users",
            "POST /api/users write:users",
            "GET /api/users/{id} read:users",
            "* /api/admin/* admin",
            "GET /api/reports any:read:reports admin",
        ]
        .iter()
        .map(|s| Route::parse(s).unwrap_or_else(|e| panic!("{e}")))
        .collect();
        RouteTable::new(routes, Requirement::Deny)
    }

    #[test]
    fn first_match_wins_and_default_denies() {
        let t = table();
        assert_eq!(t.requirement("GET", "/healthz"), &Requirement::Public);
        assert_eq!(
            t.requirement("HEAD", "/api/users"),
            &Requirement::Token(ScopeRequirement::all_of(["read:users"]))
        );
        assert_eq!(
            t.requirement("POST", "/api/users"),
            &Requirement::Token(ScopeRequirement::all_of(["write:users"]))
        );
        assert_eq!(t.requirement("DELETE", "/api/users"), &Requirement::Deny);
        assert_eq!(
            t.requirement("GET", "/api/users/42"),
            &Requirement::Token(ScopeRequirement::all_of(["read:users"]))
        );
        assert_eq!(t.requirement("GET", "/api/users/42/x"), &Requirement::Deny);
        assert_eq!(
            t.requirement("DELETE", "/api/admin/x/y"),
            &Requirement::Token(ScopeRequirement::all_of(["admin"]))
        );
        assert_eq!(t.requirement("GET", "/api/admin"), &Requirement::Deny);
        assert_eq!(
            t.requirement("GET", "/api/reports"),
            &Requirement::Token(ScopeRequirement::any_of(["read:reports", "admin"]))
        );
    }

    #[test]
    fn bad_routes() {
        assert!(Route::parse("GET").is_err());
        assert!(Route::parse("GET api").is_err());
        assert!(Route::parse("GET /a/*/b x").is_err());
        assert!(Route::parse("G3T /a x").is_err());
        assert!(Route::parse("GET /a/b*").is_err());
    }
}
