//! What the authorizer's answers look like, set by `[lambda]`: which resource a policy
//! statement names, the HTTP API 2.0 answer shape, the claims copied into `context`. Both the
//! configuration ([`crate::config`]) and the renderer ([`crate::authorizer`]) use these; neither
//! depends on the other's internals.

use serde::{Deserialize, Serialize};

/// Which resource an `Allow` or `Deny` statement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyResource {
    /// The whole API stage, `arn:…:apiId/stage/*/*` (default without per-route rules): API
    /// Gateway caches the policy per token, and a policy naming one method would answer 403 on
    /// every other route until the cache entry expires.
    Wildcard,
    /// Exactly the invoked method ARN (default, and required, with per-route rules).
    Method,
}

impl PolicyResource {
    /// Reads `wildcard` or `method` (any case), as the environment gives it.
    pub fn parse(text: &str) -> Option<PolicyResource> {
        match text.trim().to_ascii_lowercase().as_str() {
            "wildcard" => Some(PolicyResource::Wildcard),
            "method" => Some(PolicyResource::Method),
            _ => None,
        }
    }
}

/// The answer shape for HTTP API payload 2.0 events (it must match the authorizer's "simple
/// responses" setting in API Gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpApiResponse {
    /// `{"isAuthorized": …, "context": {…}}` (default).
    #[default]
    Simple,
    /// An IAM policy, like REST.
    Iam,
}

impl HttpApiResponse {
    /// Reads `simple` or `iam` (any case), as the environment gives it.
    pub fn parse(text: &str) -> Option<HttpApiResponse> {
        match text.trim().to_ascii_lowercase().as_str() {
            "simple" => Some(HttpApiResponse::Simple),
            "iam" => Some(HttpApiResponse::Iam),
            _ => None,
        }
    }
}

/// A claim copied into `context`, under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextClaim {
    /// The claim name, exactly (dots are not paths: `https://example.com/roles` is one name).
    pub claim: String,
    /// The context key.
    pub key: String,
}

/// Context keys jwtgate always sets; a configured claim may not take them.
const RESERVED: [&str; 6] = [
    "sub",
    "iss",
    "tenant",
    "scope",
    "error",
    "error_description",
];

impl ContextClaim {
    /// Parses `name` or `name=key`.
    pub fn parse(spec: &str) -> Result<ContextClaim, String> {
        let (claim, key) = match spec.rsplit_once('=') {
            Some((claim, key)) => (claim.trim(), key.trim()),
            None => (spec.trim(), spec.trim()),
        };
        if claim.is_empty() || key.is_empty() {
            return Err(format!("{spec:?} is not `claim` or `claim=key`"));
        }
        if RESERVED.contains(&key) {
            return Err(format!(
                "context key {key:?} is always set by jwtgate; rename it with `{claim}=other_key`"
            ));
        }
        Ok(ContextClaim {
            claim: claim.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// Answer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The resource of policy statements.
    pub policy_resource: PolicyResource,
    /// HTTP API 2.0 answer shape.
    pub http_api_response: HttpApiResponse,
    /// Claims copied into `context`.
    pub context_claims: Vec<ContextClaim>,
    /// Print each decision as a CloudWatch Embedded Metric Format line on stdout.
    pub metrics: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_claim_specs() {
        let parsed = ContextClaim::parse("https://example.com/roles=roles");
        assert_eq!(
            parsed,
            Ok(ContextClaim {
                claim: "https://example.com/roles".into(),
                key: "roles".into()
            })
        );
        assert_eq!(
            ContextClaim::parse(" email "),
            Ok(ContextClaim {
                claim: "email".into(),
                key: "email".into()
            })
        );
        assert!(ContextClaim::parse("=x").is_err());
        assert!(ContextClaim::parse("x=").is_err());
        assert!(ContextClaim::parse("sub").is_err());
        assert!(ContextClaim::parse("sub=subject").is_ok());
    }
}
