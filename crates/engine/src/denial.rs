//! A refusal, as every front end renders it: the HTTP status, the RFC 6750 error code (if any),
//! a short reason label for metrics and logs, the description, and the `WWW-Authenticate`
//! challenge.
//!
//! The fields are private and each kind of refusal has one constructor, so the status, the
//! challenge's `error` and the JSON body's `error` cannot disagree: the challenge and the body are
//! both built from the same fields when rendered. No token at all gets the bare challenge
//! (`Bearer realm="…"`, no error code, RFC 6750 §3.1); a proxy that did not send what the
//! forward-auth contract needs gets no error code either (it is not the client's fault) but a
//! description naming what is missing; everything else carries `error` and `error_description`,
//! and 403 `insufficient_scope` adds `scope`. Parameter values are reduced to the characters
//! RFC 6750 allows inside quoted strings, so no claim or description text can break the header.

use jwtgate_core::{ErrorCode, Reason, Rejection, Verified};
use serde_json::json;
use std::sync::Arc;

/// A refusal ready to render.
#[derive(Debug, Clone)]
pub struct Denial {
    status: u16,
    code: Option<ErrorCode>,
    kind: &'static str,
    description: String,
    realm: String,
    scope: Option<String>,
    verified: Option<Arc<Verified>>,
    dpop: Option<DpopChallenge>,
    dpop_nonce: Option<String>,
    resource_metadata: Option<Arc<str>>,
}

/// The `DPoP` challenge a refusal carries when DPoP is in play (RFC 9449 §7.1): the accepted
/// proof algorithms, and whether a `Bearer` challenge follows (both schemes accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DpopChallenge {
    algs: String,
    bearer_too: bool,
}

/// Keeps only the characters allowed in RFC 6750 quoted values (%x20-21 / %x23-5B / %x5D-7E).
pub fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl Denial {
    /// No token at all: 401 with only the realm.
    pub fn missing_token(realm: &str) -> Denial {
        Denial {
            status: 401,
            code: None,
            kind: "missing_token",
            description: "a bearer token is required".to_owned(),
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// A malformed request (bad `Authorization` header, token in two places, a refused path, a
    /// header only the gateway may set): 400 `invalid_request`.
    pub fn invalid_request(realm: &str, why: impl Into<String>) -> Denial {
        Denial {
            status: 400,
            code: Some(ErrorCode::InvalidRequest),
            kind: "invalid_request",
            description: why.into(),
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// A request no route allows (no matching rule, default deny): 403 without a token check.
    pub fn no_route(realm: &str) -> Denial {
        Denial {
            status: 403,
            code: Some(ErrorCode::InsufficientScope),
            kind: "no_route",
            description: "no route allows this request".to_owned(),
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// The proxy in front of the forward-auth endpoint did not send the original request as the
    /// contract says (a missing header, or conflicting copies of it): 403 without an error code,
    /// since the client did nothing wrong; the description names the header.
    pub fn proxy_contract(realm: &str, why: impl Into<String>) -> Denial {
        Denial {
            status: 403,
            code: None,
            kind: "proxy_headers",
            description: why.into(),
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// A verified token that does not meet a claim condition of its issuer or route (or one that
    /// could not be evaluated on it): 403 `insufficient_scope` naming the condition, without
    /// `scope` (no scope would help).
    pub fn condition_failed(realm: &str, failure: crate::conditions::ConditionFailure) -> Denial {
        Denial {
            status: 403,
            code: Some(ErrorCode::InsufficientScope),
            kind: if failure.error {
                "condition_error"
            } else {
                "condition_failed"
            },
            description: failure.description,
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// The answer for a rejected token: 401 `invalid_token`, 403 `insufficient_scope` (with
    /// `scope`) or 400 `invalid_request` (an empty token).
    pub fn from_rejection(realm: &str, rejection: &Rejection) -> Denial {
        let code = rejection.code();
        let scope = match rejection.reason() {
            Reason::InsufficientScope { required, .. } => Some(
                required
                    .scopes()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        };
        Denial {
            status: code.http_status(),
            code: Some(code),
            kind: rejection.kind(),
            description: rejection.description(),
            realm: realm.to_owned(),
            scope,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// A token presented in a way its binding or the DPoP mode does not allow, or a DPoP proof
    /// that fails ([`crate::dpop::DpopRefusal`]): 401 with the RFC 9449 error code; a front end
    /// that cannot tell the request URI is the proxy's contract (403, no code). Add the challenge
    /// with [`Denial::with_dpop_challenge`].
    pub fn dpop_refusal(realm: &str, refusal: &crate::dpop::DpopRefusal) -> Denial {
        if let crate::dpop::DpopRefusal::UnknownUri(_) = refusal {
            let mut denial = Denial::proxy_contract(realm, refusal.to_string());
            denial.kind = refusal.kind();
            return denial;
        }
        let code = match refusal.error_code() {
            "invalid_dpop_proof" => ErrorCode::InvalidDpopProof,
            "use_dpop_nonce" => ErrorCode::UseDpopNonce,
            "invalid_request" => ErrorCode::InvalidRequest,
            _ => ErrorCode::InvalidToken,
        };
        Denial {
            status: code.http_status(),
            code: Some(code),
            kind: refusal.kind(),
            description: refusal.to_string(),
            realm: realm.to_owned(),
            scope: None,
            verified: None,
            dpop: None,
            dpop_nonce: None,
            resource_metadata: None,
        }
    }

    /// A JSON-RPC body an MCP route refuses: 400 `invalid_request`, or 403
    /// `insufficient_scope` whose `scope` lists every scope the call needs (the route's and the
    /// call's, so a client that replaces its scopes with the challenge's keeps those it needs).
    pub fn mcp_refusal(realm: &str, refusal: crate::mcp::McpRefusal) -> Denial {
        match refusal {
            crate::mcp::McpRefusal::Invalid(why) => {
                let mut denial = Denial::invalid_request(realm, why);
                denial.kind = "mcp_invalid_request";
                denial
            }
            crate::mcp::McpRefusal::Scope {
                description,
                needed,
            } => Denial {
                status: 403,
                code: Some(ErrorCode::InsufficientScope),
                kind: "mcp_insufficient_scope",
                description,
                realm: realm.to_owned(),
                scope: Some(needed.join(" ")),
                verified: None,
                dpop: None,
                dpop_nonce: None,
                resource_metadata: None,
            },
        }
    }

    /// An MCP request naming a session another principal's token opened: 404, as the MCP
    /// specification answers an unknown session (the client starts a new one), without saying
    /// whose it is.
    pub fn mcp_session_unknown(realm: &str) -> Denial {
        let mut denial = Denial::invalid_request(
            realm,
            "no such MCP session for this token: start a new session",
        );
        denial.status = 404;
        denial.kind = "mcp_session_mismatch";
        denial
    }

    /// An MCP request body over the inspection limit: 413 `invalid_request`, never forwarded.
    pub fn body_too_large(realm: &str, limit: usize) -> Denial {
        let mut denial = Denial::invalid_request(
            realm,
            format!("the MCP request body is larger than the {limit} bytes the gateway inspects"),
        );
        denial.status = 413;
        denial.kind = "mcp_body_too_large";
        denial
    }

    /// An authorization check (Envoy's `CheckRequest`) over the front end's message limit —
    /// the request's headers, or the body Envoy's `with_request_body` sends: 413
    /// `invalid_request`, the request refused.
    pub fn check_too_large(realm: &str, limit: usize) -> Denial {
        let mut denial = Denial::invalid_request(
            realm,
            format!("the request is larger than the {limit} bytes an authorization check accepts"),
        );
        denial.status = 413;
        denial.kind = "request_too_large";
        denial
    }

    /// An MCP route's POST reached a front end that never sees request bodies (forward-auth,
    /// gRPC, Lambda): its rules cannot be checked, so it is refused (403, no error code: not the
    /// client's fault).
    pub fn body_unavailable(realm: &str) -> Denial {
        let mut denial = Denial::proxy_contract(
            realm,
            "this MCP route's rules inspect the JSON-RPC body, which this front end does not receive: put jwtgate serve --upstream in front of the MCP server, or send the body (Envoy ext_authz: with_request_body with pack_as_bytes)",
        );
        denial.kind = "mcp_body_unavailable";
        denial
    }

    /// The same refusal naming the protected resource metadata (`resource_metadata="…"`, RFC
    /// 9728 §5.1) and, for a request without a token, the scopes its route needs (MCP clients
    /// ask for them).
    pub fn with_resource_metadata(mut self, url: Arc<str>, route_scopes: Option<String>) -> Denial {
        self.resource_metadata = Some(url);
        if self.kind == "missing_token" && self.scope.is_none() {
            self.scope = route_scopes.filter(|s| !s.is_empty());
        }
        self
    }

    /// The same refusal with a `DPoP` challenge first, carrying the error (`algs` lists the
    /// accepted proof algorithms), followed by a bare `Bearer` challenge when bearer tokens are
    /// accepted too.
    pub fn with_dpop_challenge(mut self, algs: String, bearer_too: bool) -> Denial {
        self.dpop = Some(DpopChallenge { algs, bearer_too });
        self
    }

    /// The same refusal with the nonce the client's next DPoP proof must carry (`DPoP-Nonce`).
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Denial {
        self.dpop_nonce = nonce;
        self
    }

    /// The server nonce to send as `DPoP-Nonce`, if any.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// The HTTP status: 400, 401 or 403.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The RFC 6750 error code, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// A short label for metrics and logs (`missing_token`, `expired`, `no_route`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What was wrong.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The scopes a 403 `insufficient_scope` names (`scope="…"`).
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The verified token a scope check refused (a valid token short of a scope): who was
    /// refused, for answers that name the principal (API Gateway's `Deny` policy).
    pub fn verified(&self) -> Option<&Arc<Verified>> {
        self.verified.as_ref()
    }

    /// The refusal of a verified token's request (see [`Denial::verified`]).
    pub fn for_verified(mut self, verified: Arc<Verified>) -> Denial {
        self.verified = Some(verified);
        self
    }

    /// The same refusal answered with another status (the forward-auth endpoint's
    /// `forward_auth_invalid_request_status` for `invalid_request`, for proxies that only
    /// understand 401 and 403).
    pub fn with_status(mut self, status: u16) -> Denial {
        self.status = status;
        self
    }

    /// The `WWW-Authenticate` value: `Bearer realm="…"` and, unless no token was sent at all,
    /// `error`, `error_description` and `scope`. With a DPoP challenge, `DPoP algs="…"` carries
    /// them instead, followed by `Bearer realm="…"` when bearer tokens are accepted too (two
    /// challenges in one header value, RFC 9110 §11.6.1).
    pub fn challenge(&self) -> String {
        if let Some(dpop) = &self.dpop {
            let mut challenge = format!("DPoP algs=\"{}\"", quoted_safe(&dpop.algs));
            self.push_resource_parameters(&mut challenge);
            if self.kind != "missing_token" {
                self.push_error_parameters(&mut challenge);
            }
            if dpop.bearer_too {
                challenge.push_str(&format!(", Bearer realm=\"{}\"", quoted_safe(&self.realm)));
            }
            return challenge;
        }
        let mut challenge = format!("Bearer realm=\"{}\"", quoted_safe(&self.realm));
        self.push_resource_parameters(&mut challenge);
        if self.kind != "missing_token" {
            self.push_error_parameters(&mut challenge);
        }
        challenge
    }

    /// `resource_metadata` and, without a token, the route's `scope`, when a resource is
    /// configured.
    fn push_resource_parameters(&self, challenge: &mut String) {
        if let Some(url) = &self.resource_metadata {
            challenge.push_str(&format!(", resource_metadata=\"{}\"", quoted_safe(url)));
            if self.kind == "missing_token" {
                if let Some(scope) = &self.scope {
                    challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(scope)));
                }
            }
        }
    }

    /// The protected resource metadata URL this refusal names, if any.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    /// `error`, `error_description` and `scope` parameters, as far as this refusal has them.
    fn push_error_parameters(&self, challenge: &mut String) {
        if let Some(code) = self.code {
            challenge.push_str(&format!(", error=\"{}\"", code.as_str()));
        }
        challenge.push_str(&format!(
            ", error_description=\"{}\"",
            quoted_safe(&self.description)
        ));
        if let Some(scope) = &self.scope {
            challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(scope)));
        }
    }

    /// The JSON body: `{"error": …, "error_description": …}`, without `error` when there is no
    /// error code.
    pub fn body(&self) -> String {
        match self.code {
            Some(code) => json!({
                "error": code.as_str(),
                "error_description": self.description,
            }),
            None => json!({ "error_description": self.description }),
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_check_is_its_own_refusal_not_an_mcp_one() {
        let d = Denial::check_too_large("api", 4096);
        assert_eq!(d.status(), 413);
        assert_eq!(d.kind(), "request_too_large");
        assert_eq!(d.code(), Some(ErrorCode::InvalidRequest));
        assert!(
            d.description().contains("4096 bytes"),
            "{}",
            d.description()
        );
        assert!(!d.description().contains("MCP"), "{}", d.description());
    }

    #[test]
    fn challenges_and_bodies_agree() {
        let missing = Denial::missing_token("api");
        assert_eq!(missing.challenge(), "Bearer realm=\"api\"");
        assert_eq!(
            missing.body(),
            "{\"error_description\":\"a bearer token is required\"}"
        );
        let d = Denial::invalid_request("api", "bad \"header\"");
        assert_eq!(d.status(), 400);
        assert_eq!(
            d.challenge(),
            "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"bad 'header'\""
        );
        assert!(d.body().contains("\"error\":\"invalid_request\""));
        let proxy = Denial::proxy_contract("api", "the proxy did not send X-Forwarded-Uri");
        assert_eq!(
            proxy.challenge(),
            "Bearer realm=\"api\", error_description=\"the proxy did not send X-Forwarded-Uri\""
        );
        assert!(!proxy.body().contains("\"error\":"));
        assert_eq!(quoted_safe("é\\\n"), "?/?");
        let replay = Denial::dpop_refusal("api", &crate::dpop::DpopRefusal::Replayed)
            .with_dpop_challenge("ES256 RS256".into(), true);
        assert_eq!(replay.status(), 401);
        assert!(replay
            .challenge()
            .starts_with("DPoP algs=\"ES256 RS256\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was already used"));
        assert!(replay.challenge().ends_with(", Bearer realm=\"api\""));
        assert!(replay.body().contains("\"error\":\"invalid_dpop_proof\""));
        let required = Denial::missing_token("api").with_dpop_challenge("ES256".into(), false);
        assert_eq!(required.challenge(), "DPoP algs=\"ES256\"");
    }
}
