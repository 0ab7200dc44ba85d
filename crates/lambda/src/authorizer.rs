//! The answer to one authorizer event: the engine decides ([`jwtgate_engine::Engine`], exactly
//! as for the gateway — route from the method ARN's method and normalised path, token, cache,
//! scopes), and this module renders the outcome in the event's own format.
//!
//! | outcome | REST / HTTP API 1.0 | HTTP API 2.0 simple | HTTP API 2.0 IAM |
//! | --- | --- | --- | --- |
//! | allow (valid token with the scopes, or a public route) | `Allow` policy | `isAuthorized: true` | `Allow` |
//! | 403: a scope missing, no route allows it | `Deny` policy (403) | `isAuthorized: false` | `Deny` |
//! | 401 / 400: no token, malformed header, refused path (see [`jwtgate_engine::path`]), invalid token | error `Unauthorized` (401) | same | same |

use crate::answer::{HttpApiResponse, Options, PolicyResource};
use crate::arn::MethodArn;
use crate::event::{self, AuthorizerRequest, EventError, EventKind};
use crate::metrics::{emf_line, Reading};
use jwtgate_core::{Rejection, Verified};
use jwtgate_engine::mtls::CertificateSource;
use jwtgate_engine::{Engine, FrontEnd, Outcome, RequestView};
use jwtgate_keys::{Registry, SourceKind};
use lambda_runtime::Diagnostic;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use thiserror::Error;

/// `principalId` when no token was needed or looked at.
pub const ANONYMOUS: &str = "anonymous";

/// Why an invocation fails instead of answering.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthorizerError {
    /// No token, a malformed one, or an invalid one. The message is exactly `Unauthorized`: API
    /// Gateway answers 401 for that message and 500 for any other.
    #[error("Unauthorized")]
    Unauthorized,
    /// Not an authorizer event (API Gateway answers 500; a misconfigured integration).
    #[error("{0}")]
    Event(#[from] EventError),
}

impl From<AuthorizerError> for Diagnostic {
    fn from(error: AuthorizerError) -> Diagnostic {
        let error_type = match &error {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::Event(_) => "jwtgate.InvalidEvent",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The authorizer: the engine (keys and policies, routes, the verified-token cache) and the
/// answer settings. Shared by all invocations of a warm process.
#[derive(Debug)]
pub struct Authorizer {
    engine: Engine,
    options: Options,
}

/// A key source that could not be loaded during init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareFailure {
    /// The source (file, URL or discovery).
    pub source: String,
    /// What went wrong.
    pub error: String,
    /// True for a bundled file: a configuration error that fails the init phase.
    pub fatal: bool,
}

impl Authorizer {
    /// An authorizer (see [`crate::LambdaConfig::build`] for the checked way to make one).
    pub fn new(engine: Engine, options: Options) -> Authorizer {
        Authorizer { engine, options }
    }

    /// The engine that decides.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The key registry.
    pub fn registry(&self) -> &Registry {
        self.engine.registry()
    }

    /// The answer settings.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Loads keys during init: every JWKS file (always), and URL or discovery sources when
    /// `prefetch` is set. Returns what failed; a failed remote fetch is retried on first use.
    pub async fn prepare_keys(&self, prefetch: bool) -> Vec<PrepareFailure> {
        let mut failures = Vec::new();
        for entry in self.engine.registry().entries() {
            let source = entry.source();
            let is_file = matches!(source.kind(), SourceKind::File(_));
            if !is_file && !prefetch {
                continue;
            }
            if let Err(error) = source.refresh_now().await {
                failures.push(PrepareFailure {
                    source: source.kind().to_string(),
                    error: error.to_string(),
                    fatal: is_file,
                });
            }
        }
        failures
    }

    /// Answers one authorizer event at Unix time `now`: the JSON to return, or the error that
    /// fails the invocation. The same as [`Authorizer::answer`] for an event already read into a
    /// [`Value`].
    pub async fn authorize(&self, event: Value, now: i64) -> Result<Value, AuthorizerError> {
        let bytes = serde_json::to_vec(&event).map_err(|e| EventError::Malformed {
            kind: "authorizer",
            message: e.to_string(),
        })?;
        let answer = self.answer(&bytes, now).await?;
        // An answer is plain strings, numbers and booleans; if it ever failed to convert, deny.
        Ok(serde_json::to_value(&answer)
            .unwrap_or_else(|_| serde_json::json!({ "isAuthorized": false })))
    }

    /// Answers one authorizer event given as the invocation's JSON bytes at Unix time `now`:
    /// the answer (serialise it to get the JSON to return), or the error that fails the
    /// invocation. The event is read in one pass, only the fields the decision needs
    /// ([`event::parse_slice`]).
    pub async fn answer(&self, event: &[u8], now: i64) -> Result<Answer, AuthorizerError> {
        let keep_header = |name: &[u8]| {
            name.eq_ignore_ascii_case(b"host") || self.engine.authorizer_reads_header(name)
        };
        let reading = event::Reading {
            keep_header: &keep_header,
            client_certificate: self.reads_client_certificates(),
        };
        let request = event::parse_slice_with(event, reading)?;
        self.decide(&request, now).await
    }

    /// True when certificate-bound tokens are checked against the client certificate of API
    /// Gateway's mutual TLS (`[lambda] mtls`): only then is the event's certificate read.
    fn reads_client_certificates(&self) -> bool {
        *self.engine.dpop().certificate_source() == CertificateSource::Listener
    }

    async fn decide(
        &self,
        request: &AuthorizerRequest,
        now: i64,
    ) -> Result<Answer, AuthorizerError> {
        let view = RequestView {
            front: FrontEnd::Authorizer,
            origin: request.origin.as_deref(),
            method: request.arn.method(),
            target: request.arn.path(),
            headers: &request.headers,
            token: request.token.clone(),
            client_certificate: request.client_certificate,
            now,
        };
        let before = self
            .options
            .metrics
            .then(|| Reading::take(self.engine.metrics()));
        let outcome = self.engine.decide(&view).await;
        if let Some(before) = before {
            println!(
                "{}",
                emf_line(&outcome, request.kind, now, before, self.engine.metrics())
            );
        }
        match outcome {
            Outcome::Allow(allow) => {
                Ok(self.render(request, true, allow.verified.as_deref(), None))
            }
            // API Gateway answers preflights itself; an authorizer never sees one it must pass.
            Outcome::Preflight => Ok(self.render(request, true, None, None)),
            Outcome::Deny(denial) if denial.status() == 403 => {
                let error = denial.code().map_or("forbidden", |code| code.as_str());
                let refused = (error, denial.description());
                Ok(self.render(
                    request,
                    false,
                    denial.verified().map(|v| v.as_ref()),
                    Some(refused),
                ))
            }
            Outcome::Deny(_) => Err(AuthorizerError::Unauthorized),
        }
    }

    /// Verifies a token through the engine's cache.
    pub async fn verify(&self, token: &[u8], now: i64) -> Result<Arc<Verified>, Rejection> {
        self.engine.verify(token, now).await
    }

    fn resource(&self, arn: &MethodArn) -> String {
        match self.options.policy_resource {
            PolicyResource::Wildcard => arn.wildcard(),
            PolicyResource::Method => arn.as_str().to_owned(),
        }
    }

    fn render(
        &self,
        request: &AuthorizerRequest,
        allowed: bool,
        verified: Option<&Verified>,
        refused: Option<(&str, &str)>,
    ) -> Answer {
        let mut context = verified.map_or_else(Vec::new, |v| self.context(v));
        if let Some((error, description)) = refused {
            context.push((Cow::Borrowed("error"), Value::String(error.to_owned())));
            context.push((
                Cow::Borrowed("error_description"),
                Value::String(description.to_owned()),
            ));
        }
        let shape = match (request.kind, self.options.http_api_response) {
            (EventKind::HttpApiV2, HttpApiResponse::Simple) => Shape::Simple,
            (EventKind::HttpApiV2, HttpApiResponse::Iam) => Shape::HttpApiIam,
            _ => Shape::RestIam,
        };
        let (principal, resource) = match shape {
            Shape::Simple => (String::new(), String::new()),
            Shape::HttpApiIam | Shape::RestIam => (
                verified.map_or(ANONYMOUS, principal_id).to_owned(),
                self.resource(&request.arn),
            ),
        };
        Answer {
            shape,
            allowed,
            principal,
            resource,
            context,
        }
    }

    /// `context`: `sub`, `iss` (the concrete issuer), `tenant` (when an issuer template accepted
    /// the token), `scope` (granted scopes, space-separated) and the configured claims, each a
    /// string, number or boolean. A configured key repeated, or equal to a name set before it,
    /// keeps its first place and its last value.
    fn context(&self, verified: &Verified) -> Vec<(Cow<'static, str>, Value)> {
        let mut context = Vec::with_capacity(4 + self.options.context_claims.len());
        if let Some(sub) = verified.subject() {
            context.push((Cow::Borrowed("sub"), Value::String(sub.to_owned())));
        }
        context.push((
            Cow::Borrowed("iss"),
            Value::String(verified.issuer().to_owned()),
        ));
        if let Some(tenant) = self.engine.registry().tenant_of(verified.issuer()) {
            context.push((Cow::Borrowed("tenant"), Value::String(tenant.to_owned())));
        }
        let mut scope = String::new();
        for granted in verified.scopes() {
            if !scope.is_empty() {
                scope.push(' ');
            }
            scope.push_str(granted);
        }
        context.push((Cow::Borrowed("scope"), Value::String(scope)));
        for wanted in &self.options.context_claims {
            if let Some(value) = verified
                .claim_value(&wanted.claim)
                .and_then(|value| flatten(&value))
            {
                match context
                    .iter_mut()
                    .find(|(key, _)| *key == wanted.key.as_str())
                {
                    Some(entry) => entry.1 = value,
                    None => context.push((Cow::Owned(wanted.key.clone()), value)),
                }
            }
        }
        context
    }
}

/// Which answer an event gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// REST and HTTP API 1.0: `principalId`, `policyDocument`, `context`,
    /// `usageIdentifierKey`.
    RestIam,
    /// HTTP API 2.0 with IAM answers: `principalId`, `policyDocument`, `context`.
    HttpApiIam,
    /// HTTP API 2.0 simple answers: `isAuthorized`, `context`.
    Simple,
}

/// The answer to one invocation, serialised straight to the JSON API Gateway expects (no
/// intermediate JSON tree): an IAM policy allowing or denying `execute-api:Invoke` on one
/// resource, or an HTTP API simple answer, with the `context`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    shape: Shape,
    allowed: bool,
    principal: String,
    resource: String,
    context: Vec<(Cow<'static, str>, Value)>,
}

impl Answer {
    /// True for `Allow` (or `isAuthorized: true`).
    pub fn allowed(&self) -> bool {
        self.allowed
    }
}

/// `context` as a JSON object.
struct Context<'a>(&'a [(Cow<'static, str>, Value)]);

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key.as_ref(), value)?;
        }
        map.end()
    }
}

/// `policyDocument`: one statement on one resource.
struct PolicyDocument<'a> {
    allowed: bool,
    resource: &'a str,
}

impl Serialize for PolicyDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("Version", "2012-10-17")?;
        map.serialize_entry("Statement", &[Statement(self)])?;
        map.end()
    }
}

struct Statement<'a>(&'a PolicyDocument<'a>);

impl Serialize for Statement<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("Action", &["execute-api:Invoke"])?;
        map.serialize_entry("Effect", if self.0.allowed { "Allow" } else { "Deny" })?;
        map.serialize_entry("Resource", &[self.0.resource])?;
        map.end()
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let context = Context(&self.context);
        match self.shape {
            Shape::Simple => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("isAuthorized", &self.allowed)?;
                map.serialize_entry("context", &context)?;
                map.end()
            }
            Shape::HttpApiIam | Shape::RestIam => {
                let policy = PolicyDocument {
                    allowed: self.allowed,
                    resource: &self.resource,
                };
                let rest = self.shape == Shape::RestIam;
                let mut map = serializer.serialize_map(Some(if rest { 4 } else { 3 }))?;
                map.serialize_entry("principalId", &self.principal)?;
                map.serialize_entry("policyDocument", &policy)?;
                map.serialize_entry("context", &context)?;
                if rest {
                    map.serialize_entry("usageIdentifierKey", &())?;
                }
                map.end()
            }
        }
    }
}

/// `principalId`: `sub`, or for tokens without one (client credentials at some providers)
/// `client_id` or `azp`.
fn principal_id(verified: &Verified) -> &str {
    verified
        .subject()
        .or_else(|| verified.text("client_id"))
        .or_else(|| verified.text("azp"))
        .unwrap_or(ANONYMOUS)
}

/// A claim as a context value: strings, numbers and booleans as they are; arrays of strings
/// joined with spaces (like `scope`); other arrays and objects as compact JSON text; `null` left
/// out. API Gateway refuses any other value type in `context`.
pub fn flatten(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(value.clone()),
        Value::Array(items) if items.iter().all(Value::is_string) => Some(Value::String(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        )),
        Value::Array(_) | Value::Object(_) => Some(Value::String(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening() {
        assert_eq!(flatten(&json!(null)), None);
        assert_eq!(flatten(&json!("a")), Some(json!("a")));
        assert_eq!(flatten(&json!(3)), Some(json!(3)));
        assert_eq!(flatten(&json!(1.5)), Some(json!(1.5)));
        assert_eq!(flatten(&json!(true)), Some(json!(true)));
        assert_eq!(flatten(&json!(["a", "b"])), Some(json!("a b")));
        assert_eq!(flatten(&json!([1, "b"])), Some(json!("[1,\"b\"]")));
        assert_eq!(flatten(&json!({"x": 1})), Some(json!("{\"x\":1}")));
    }

    #[test]
    fn unauthorized_diagnostic_is_exact() {
        let diagnostic: Diagnostic = AuthorizerError::Unauthorized.into();
        assert_eq!(diagnostic.error_message, "Unauthorized");
        assert_eq!(diagnostic.error_type, "Unauthorized");
    }
}
