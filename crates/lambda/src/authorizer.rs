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
use crate::event::{self, AuthorizerRequest, EventError, EventKind};
use crate::metrics::{emf_line, Reading};
use crate::render::JsonText;
use jwtgate_core::{Rejection, Verified};
use jwtgate_engine::mtls::CertificateSource;
use jwtgate_engine::{Engine, FrontEnd, Outcome, RequestView};
use jwtgate_keys::{Registry, SourceKind};
use lambda_runtime::Diagnostic;
use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;
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
        // An answer is checked JSON text; if it ever failed to read back, deny.
        Ok(serde_json::from_str(answer.json())
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

    /// Renders the answer: straight to its JSON text ([`crate::render`]), in the event's own
    /// format.
    fn render(
        &self,
        request: &AuthorizerRequest,
        allowed: bool,
        verified: Option<&Verified>,
        refused: Option<(&str, &str)>,
    ) -> Answer {
        let shape = match (request.kind, self.options.http_api_response) {
            (EventKind::HttpApiV2, HttpApiResponse::Simple) => Shape::Simple,
            (EventKind::HttpApiV2, HttpApiResponse::Iam) => Shape::HttpApiIam,
            _ => Shape::RestIam,
        };
        // Room for the constant parts, the resource and a typical context: one allocation.
        let mut json = JsonText::with_capacity(
            ANSWER_CAPACITY + request.arn.as_str().len() + verified.map_or(0, |_| 256),
        );
        match shape {
            Shape::Simple => {
                json.raw(if allowed {
                    r#"{"isAuthorized":true,"context":"#
                } else {
                    r#"{"isAuthorized":false,"context":"#
                });
                self.context(&mut json, verified, refused);
                json.raw("}");
            }
            Shape::HttpApiIam | Shape::RestIam => {
                json.raw(r#"{"principalId":"#);
                json.string(verified.map_or(ANONYMOUS, principal_id));
                json.raw(r#","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"#);
                json.raw(if allowed { r#""Allow""# } else { r#""Deny""# });
                json.raw(r#","Resource":[""#);
                match self.options.policy_resource {
                    PolicyResource::Wildcard => {
                        json.string_contents(request.arn.stage_prefix());
                        json.raw("/*/*");
                    }
                    PolicyResource::Method => json.string_contents(request.arn.as_str()),
                }
                json.raw(r#""]}]},"context":"#);
                self.context(&mut json, verified, refused);
                json.raw(if shape == Shape::RestIam {
                    r#","usageIdentifierKey":null}"#
                } else {
                    "}"
                });
            }
        }
        Answer::new(allowed, json)
    }

    /// `context`: `sub`, `iss` (the concrete issuer), `tenant` (when an issuer template accepted
    /// the token), `scope` (granted scopes, space-separated) and the configured claims, each a
    /// string, number or boolean; then, for a refusal, `error` and `error_description`. A
    /// configured key repeated keeps its first place and its last value.
    fn context(
        &self,
        json: &mut JsonText,
        verified: Option<&Verified>,
        refused: Option<(&str, &str)>,
    ) {
        json.raw("{");
        let mut first = true;
        let mut key = |json: &mut JsonText, name: &str| {
            if !std::mem::take(&mut first) {
                json.raw(",");
            }
            json.string(name);
            json.raw(":");
        };
        if let Some(verified) = verified {
            if let Some(sub) = verified.subject() {
                key(json, "sub");
                json.string(sub);
            }
            key(json, "iss");
            json.string(verified.issuer());
            if let Some(tenant) = self.engine.registry().tenant_of(verified.issuer()) {
                key(json, "tenant");
                json.string(tenant);
            }
            key(json, "scope");
            json.raw("\"");
            for (index, granted) in verified.scopes().enumerate() {
                if index > 0 {
                    json.raw(" ");
                }
                json.string_contents(granted);
            }
            json.raw("\"");
            for (key_text, value) in self.claims(verified) {
                key(json, key_text);
                json.context_value(&value);
            }
        }
        if let Some((error, description)) = refused {
            key(json, "error");
            json.string(error);
            key(json, "error_description");
            json.string(description);
        }
        json.raw("}");
    }

    /// The configured context claims present in the token (`null` counts as absent), each key
    /// once: at the place of its first present claim, with the value of its last.
    fn claims<'v>(&self, verified: &'v Verified) -> Vec<(&str, Cow<'v, Value>)> {
        let wanted = &self.options.context_claims;
        let mut claims: Vec<(&str, Cow<'v, Value>)> = Vec::new();
        for wanted in wanted {
            let Some(value) = verified
                .claim_value(&wanted.claim)
                .filter(|value| !value.is_null())
            else {
                continue;
            };
            match claims.iter_mut().find(|(key, _)| *key == wanted.key) {
                Some(entry) => entry.1 = value,
                None => claims.push((&wanted.key, value)),
            }
        }
        claims
    }
}

/// The bytes of an answer besides its resource and context (the IAM policy's skeleton).
const ANSWER_CAPACITY: usize = 256;

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

/// The answer to one invocation, as the JSON API Gateway expects: an IAM policy allowing or
/// denying `execute-api:Invoke` on one resource, or an HTTP API simple answer, with the
/// `context`. Rendered once ([`crate::render`]); serialising it writes that text as it is.
#[derive(Debug, Clone)]
pub struct Answer {
    allowed: bool,
    json: Box<RawValue>,
}

impl Answer {
    /// The answer from its rendered text. The text is checked as JSON once more here: were it
    /// ever malformed, the answer is a denial (`{"isAuthorized":false}`, which every shape
    /// reads as no access) rather than text API Gateway could read differently.
    fn new(allowed: bool, json: JsonText) -> Answer {
        match RawValue::from_string(json.into_string()) {
            Ok(json) => Answer { allowed, json },
            Err(_) => Answer {
                allowed: false,
                json: RawValue::from_string(DENIED.to_owned()).unwrap_or_default(),
            },
        }
    }

    /// True for `Allow` (or `isAuthorized: true`).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The answer's JSON text.
    pub fn json(&self) -> &str {
        self.json.get()
    }
}

/// The answer when rendering failed.
const DENIED: &str = r#"{"isAuthorized":false}"#;

impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        self.allowed == other.allowed && self.json() == other.json()
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
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
