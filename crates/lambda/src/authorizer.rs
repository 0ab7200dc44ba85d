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
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::{Arc, Mutex};
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
    policies: PolicyDocuments,
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
        Authorizer {
            engine,
            options,
            policies: PolicyDocuments::default(),
        }
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
            headers: (&request.headers).into(),
            token: request.token.input(),
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
            Outcome::Allow(allow) => Ok(self.render(request, true, allow.verified, None)),
            // API Gateway answers preflights itself; an authorizer never sees one it must pass.
            Outcome::Preflight => Ok(self.render(request, true, None, None)),
            Outcome::Deny(denial) if denial.status() == 403 => {
                let error = denial.code().map_or("forbidden", |code| code.as_str());
                let refused = (error, denial.description());
                Ok(self.render(request, false, denial.verified().cloned(), Some(refused)))
            }
            Outcome::Deny(_) => Err(AuthorizerError::Unauthorized),
        }
    }

    /// Verifies a token through the engine's cache.
    pub async fn verify(&self, token: &[u8], now: i64) -> Result<Arc<Verified>, Rejection> {
        self.engine.verify(token, now).await
    }

    /// The answer in the event's own format: what it says, with the verified token it is
    /// about; its JSON is written when it is serialised ([`Answer`]).
    fn render(
        &self,
        request: &AuthorizerRequest,
        allowed: bool,
        verified: Option<Arc<Verified>>,
        refused: Option<(&'static str, &str)>,
    ) -> Answer {
        let shape = match (request.kind, self.options.http_api_response) {
            (EventKind::HttpApiV2, HttpApiResponse::Simple) => Shape::Simple,
            (EventKind::HttpApiV2, HttpApiResponse::Iam) => Shape::HttpApiIam,
            _ => Shape::RestIam,
        };
        let tenant = verified
            .as_deref()
            .and_then(|verified| self.engine.registry().tenant_of(verified.issuer()))
            .map(str::to_owned);
        let claims = verified
            .as_deref()
            .map_or_else(Vec::new, |verified| self.claims(verified));
        let policy = match shape {
            Shape::Simple => None,
            Shape::HttpApiIam | Shape::RestIam => Some(self.policies.get(
                allowed,
                self.options.policy_resource,
                &request.arn,
            )),
        };
        Answer {
            shape,
            allowed,
            policy,
            verified,
            tenant,
            claims,
            refused: refused.map(|(error, description)| (error, description.to_owned())),
        }
    }

    /// The configured context claims present in the token (`null` counts as absent), each key
    /// once: at the place of its first present claim, with the value of its last.
    fn claims(&self, verified: &Verified) -> Vec<(String, Value)> {
        let mut claims: Vec<(String, Value)> = Vec::new();
        for wanted in &self.options.context_claims {
            let Some(value) = verified
                .claim_value(&wanted.claim)
                .filter(|value| !value.is_null())
            else {
                continue;
            };
            match claims.iter_mut().find(|(key, _)| *key == wanted.key) {
                Some(entry) => entry.1 = value.into_owned(),
                None => claims.push((wanted.key.clone(), value.into_owned())),
            }
        }
        claims
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

/// The answer to one invocation: an IAM policy allowing or denying `execute-api:Invoke` on one
/// resource, or an HTTP API simple answer, with the `context`. It holds what the answer says —
/// the verified token (shared with the cache), the method ARN, the configured claims found —
/// and serialises straight to the JSON API Gateway expects: the policy's constant parts as
/// constants, `principalId`, the resource, `sub`, `iss` and `scope` written from the token and
/// the ARN as they are (no copy, no intermediate JSON tree).
#[derive(Debug, Clone)]
pub struct Answer {
    shape: Shape,
    allowed: bool,
    /// `policyDocument` (IAM answers), shared by the answers with the same effect and resource.
    policy: Option<Arc<RawValue>>,
    verified: Option<Arc<Verified>>,
    tenant: Option<String>,
    claims: Vec<(String, Value)>,
    refused: Option<(&'static str, String)>,
}

impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        fn policy(answer: &Answer) -> Option<&str> {
            answer.policy.as_deref().map(RawValue::get)
        }
        self.shape == other.shape
            && self.allowed == other.allowed
            && policy(self) == policy(other)
            && self.verified == other.verified
            && self.tenant == other.tenant
            && self.claims == other.claims
            && self.refused == other.refused
    }
}

impl Answer {
    /// True for `Allow` (or `isAuthorized: true`).
    pub fn allowed(&self) -> bool {
        self.allowed
    }
}

/// `context`: `sub`, `iss` (the concrete issuer), `tenant` (when an issuer template accepted
/// the token), `scope` (granted scopes, space-separated) and the configured claims, each a
/// string, number or boolean ([`flatten`]); for a refusal, `error` and `error_description`.
struct Context<'a>(&'a Answer);

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let answer = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(verified) = answer.verified.as_deref() {
            if let Some(sub) = verified.subject() {
                map.serialize_entry("sub", sub)?;
            }
            map.serialize_entry("iss", verified.issuer())?;
            if let Some(tenant) = &answer.tenant {
                map.serialize_entry("tenant", tenant)?;
            }
            map.serialize_entry("scope", &joined(verified.scopes()))?;
            for (key, value) in &answer.claims {
                map.serialize_entry(key, &ContextValue(value))?;
            }
        }
        if let Some((error, description)) = &answer.refused {
            map.serialize_entry("error", error)?;
            map.serialize_entry("error_description", description)?;
        }
        map.end()
    }
}

/// Strings joined with spaces (room for a typical `scope` made up front: one allocation).
fn joined<'s>(items: impl Iterator<Item = &'s str>) -> String {
    let mut text = String::with_capacity(128);
    for item in items {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(item);
    }
    text
}

/// A claim as a context value, written as [`flatten`] makes it without making it.
struct ContextValue<'a>(&'a Value);

impl Serialize for ContextValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) if items.iter().all(Value::is_string) => {
                let mut text = String::new();
                for (index, item) in items.iter().filter_map(Value::as_str).enumerate() {
                    if index > 0 {
                        text.push(' ');
                    }
                    text.push_str(item);
                }
                serializer.serialize_str(&text)
            }
            // Compact JSON text, as a string.
            value @ (Value::Array(_) | Value::Object(_)) => serializer.collect_str(value),
            value => value.serialize(serializer),
        }
    }
}

/// How many distinct `policyDocument`s [`PolicyDocuments`] keeps (an effect and a resource
/// each: with the default wildcard resource, one API stage needs one or two).
const POLICY_DOCUMENTS: usize = 32;

/// The `policyDocument`s answered recently, as JSON text: a policy depends only on the effect
/// and the resource (the API stage's wildcard, or the method ARN), never on the token, so the
/// same few are answered over and over. Each is written by `serde_json` once and then copied
/// as it is into every answer that names it.
#[derive(Debug, Default)]
struct PolicyDocuments {
    /// Most recent last; at most [`POLICY_DOCUMENTS`].
    recent: Mutex<Vec<PolicyEntry>>,
}

/// One policy of [`PolicyDocuments`]: what it says, and its text.
#[derive(Debug)]
struct PolicyEntry {
    allowed: bool,
    resource: PolicyResource,
    /// The text the resource depends on: the ARN's stage prefix, or the whole ARN.
    key: Box<str>,
    policy: Arc<RawValue>,
}

impl PolicyDocuments {
    /// The policy `allowed` or denying `execute-api:Invoke` on `arn` (or, for
    /// [`PolicyResource::Wildcard`], on every method and path of its API stage).
    fn get(&self, allowed: bool, resource: PolicyResource, arn: &MethodArn) -> Arc<RawValue> {
        // The text the resource depends on: the stage prefix, or the whole ARN.
        let key = match resource {
            PolicyResource::Wildcard => arn.stage_prefix(),
            PolicyResource::Method => arn.as_str(),
        };
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = recent
            .iter()
            .rev()
            .find(|e| e.allowed == allowed && e.resource == resource && *e.key == *key)
        {
            return Arc::clone(&entry.policy);
        }
        let policy = Arc::from(policy_document(allowed, resource, arn));
        if recent.len() >= POLICY_DOCUMENTS {
            recent.remove(0);
        }
        recent.push(PolicyEntry {
            allowed,
            resource,
            key: Box::from(key),
            policy: Arc::clone(&policy),
        });
        policy
    }
}

/// `policyDocument`: one statement allowing or denying `execute-api:Invoke` on one resource.
fn policy_document(allowed: bool, resource: PolicyResource, arn: &MethodArn) -> Box<RawValue> {
    let resource = match resource {
        PolicyResource::Wildcard => arn.wildcard(),
        PolicyResource::Method => arn.as_str().to_owned(),
    };
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Action": ["execute-api:Invoke"],
            "Effect": if allowed { "Allow" } else { "Deny" },
            "Resource": [resource],
        }],
    });
    // A JSON value written by serde_json always reads back; were it ever not to, the answer
    // names no resource at all (`null` grants nothing).
    serde_json::value::to_raw_value(&document)
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let context = Context(self);
        match self.shape {
            Shape::Simple => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("isAuthorized", &self.allowed)?;
                map.serialize_entry("context", &context)?;
                map.end()
            }
            Shape::HttpApiIam | Shape::RestIam => {
                let rest = self.shape == Shape::RestIam;
                let principal = self.verified.as_deref().map_or(ANONYMOUS, principal_id);
                let mut map = serializer.serialize_map(Some(if rest { 4 } else { 3 }))?;
                map.serialize_entry("principalId", principal)?;
                map.serialize_entry("policyDocument", &self.policy)?;
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
    fn context_values_are_written_as_flatten_makes_them() {
        for value in [
            json!("a\"b\n\u{2028}"),
            json!(3),
            json!(-1.5e300),
            json!(u64::MAX),
            json!(true),
            json!(["a", "b\n", ""]),
            json!([]),
            json!([1, "b"]),
            json!({"x": {"y": ["\"", null]}}),
        ] {
            let written = serde_json::to_string(&ContextValue(&value)).unwrap();
            let flattened = flatten(&value).map(|v| serde_json::to_string(&v).unwrap());
            assert_eq!(Some(written), flattened, "{value}");
        }
    }

    #[test]
    fn policy_documents_are_reused_only_for_the_same_effect_and_resource() {
        let policies = PolicyDocuments::default();
        let arn = |text: &str| MethodArn::parse(text).unwrap();
        let get = MethodArn::parse("arn:aws:execute-api:us-east-1:1:api/prod/GET/a").unwrap();
        let post = arn("arn:aws:execute-api:us-east-1:1:api/prod/POST/b");
        let other_stage = arn("arn:aws:execute-api:us-east-1:1:api/test/GET/a");
        let text = |allowed, resource, arn: &MethodArn| {
            let policy = policies.get(allowed, resource, arn);
            let value: Value = serde_json::from_str(policy.get()).unwrap();
            (
                value["Statement"][0]["Effect"].as_str().unwrap().to_owned(),
                value["Statement"][0]["Resource"][0]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        };
        let wildcard = PolicyResource::Wildcard;
        let method = PolicyResource::Method;
        let stage = "arn:aws:execute-api:us-east-1:1:api/prod/*/*";
        for _ in 0..2 {
            assert_eq!(text(true, wildcard, &get), ("Allow".into(), stage.into()));
            assert_eq!(text(true, wildcard, &post), ("Allow".into(), stage.into()));
            assert_eq!(text(false, wildcard, &get), ("Deny".into(), stage.into()));
            assert_eq!(
                text(true, wildcard, &other_stage).1,
                "arn:aws:execute-api:us-east-1:1:api/test/*/*"
            );
            assert_eq!(text(true, method, &get).1, get.as_str());
            assert_eq!(text(true, method, &post).1, post.as_str());
        }
        assert!(Arc::ptr_eq(
            &policies.get(true, wildcard, &get),
            &policies.get(true, wildcard, &post)
        ));
        for n in 0..100 {
            let arn = arn(&format!("arn:aws:execute-api:us-east-1:1:api/prod/GET/{n}"));
            assert_eq!(text(true, method, &arn).1, arn.as_str());
        }
        let kept = policies.recent.lock().unwrap().len();
        assert_eq!(kept, POLICY_DOCUMENTS);
        // A resource with JSON's special characters is written as a JSON string.
        let odd = arn("arn:aws:execute-api:us-east-1:1:api/prod/GET/\"quoted\"\\");
        assert_eq!(text(true, method, &odd).1, odd.as_str());
    }

    #[test]
    fn unauthorized_diagnostic_is_exact() {
        let diagnostic: Diagnostic = AuthorizerError::Unauthorized.into();
        assert_eq!(diagnostic.error_message, "Unauthorized");
        assert_eq!(diagnostic.error_type, "Unauthorized");
    }
}
