//! Shared by the Lambda tests: an issuer on loopback (jwtgate-test-support's discovery and JWKS
//! server, counting fetches), tokens, the documented authorizer events, a small implementation of the Lambda
//! Runtime API (`/2018-06-01/runtime/...`), and starting the `jwtgate` binary against it.

#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwtgate_core::Algorithm;
pub use jwtgate_test_support::now;
use jwtgate_test_support::{self as support, JwksServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

pub const AUDIENCE: &str = "https://api.example.com";

pub const REST_TOKEN: &str = include_str!("../../../lambda/tests/events/rest-token.json");
pub const REST_REQUEST: &str = include_str!("../../../lambda/tests/events/rest-request.json");
pub const HTTP_API_V2: &str = include_str!("../../../lambda/tests/events/http-api-v2.json");

/// The binary under test: `JWTGATE_BIN` (e.g. a release build, for measurements) or the one
/// Cargo built for these tests.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("JWTGATE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_jwtgate").into())
}

/// The event with `${TOKEN}` replaced.
pub fn event(template: &str, token: &str) -> Value {
    serde_json::from_str(&template.replace("${TOKEN}", token)).unwrap()
}

/// An OpenID issuer on loopback: jwtgate-test-support's discovery and JWKS server (each fetch
/// counted) in front of its signer.
pub struct Issuer {
    /// The issuer URL (`{server}/`), as discovery expects it.
    pub issuer: String,
    /// The discovery and JWKS server.
    pub server: JwksServer,
    /// Signs the tokens (ES256, kid `key-1`).
    pub signer: support::Issuer,
}

impl Issuer {
    pub fn start() -> Issuer {
        let signer = support::Issuer::new()
            .with_key(Algorithm::ES256, "key-1")
            .with_audience(AUDIENCE);
        let server = JwksServer::start(&signer.jwks());
        let issuer = server.issuer();
        Issuer {
            signer: signer.with_issuer(&issuer),
            issuer,
            server,
        }
    }

    /// A token for `sub` (scopes `openid read:users`, email `{sub}@example.com`) with `extra`
    /// claims (a `null` removes a claim).
    pub fn token(&self, sub: &str, extra: Value) -> String {
        let mut claims = self.signer.claims(json!({
            "sub": sub,
            "scope": "openid read:users",
            "permissions": null,
            "email": format!("{sub}@example.com"),
        }));
        support::merge(&mut claims, extra);
        self.signer.sign(&claims)
    }
}

/// What the function posted to the Runtime API.
#[derive(Debug, Clone)]
pub enum Posted {
    /// `/invocation/{id}/response`.
    Response {
        id: String,
        body: Value,
        at: Instant,
    },
    /// `/invocation/{id}/error`.
    Error {
        id: String,
        body: Value,
        error_type: Option<String>,
    },
    /// `/init/error`.
    InitError {
        body: Value,
        error_type: Option<String>,
    },
}

struct ApiState {
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    posted: mpsc::UnboundedSender<Posted>,
    next_calls: AtomicUsize,
    /// JWKS fetches seen when the first `/next` arrived (to check the init-phase prefetch).
    jwks_hits_at_first_next: Mutex<Option<usize>>,
    jwks_hits: Arc<AtomicUsize>,
}

/// A Runtime API on loopback: events are queued by the test and handed out by `/next`; what
/// the function posts back is received with [`RuntimeApi::posted`].
pub struct RuntimeApi {
    pub address: String,
    events: mpsc::UnboundedSender<(String, Value)>,
    posted: Mutex<mpsc::UnboundedReceiver<Posted>>,
    state: Arc<ApiState>,
    counter: AtomicUsize,
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    if state.next_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        *state.jwks_hits_at_first_next.lock().await = Some(state.jwks_hits.load(Ordering::SeqCst));
    }
    let mut events = state.events.lock().await;
    let Some((id, event)) = events.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:authorizer".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793".to_owned(),
            ),
        ],
        Json(event),
    )
        .into_response()
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = state.posted.send(Posted::Response {
        id,
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = state.posted.send(Posted::Error {
        id,
        body,
        error_type: error_type(&headers),
    });
    StatusCode::ACCEPTED
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = state.posted.send(Posted::InitError {
        body,
        error_type: error_type(&headers),
    });
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts the API; `jwks_hits` is sampled when the first `/next` arrives.
    pub async fn start(jwks_hits: Arc<AtomicUsize>) -> RuntimeApi {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (posted_tx, posted_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            events: Mutex::new(events_rx),
            posted: posted_tx,
            next_calls: AtomicUsize::new(0),
            jwks_hits_at_first_next: Mutex::new(None),
            jwks_hits,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            address,
            events: events_tx,
            posted: Mutex::new(posted_rx),
            state,
            counter: AtomicUsize::new(0),
        }
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let id = format!("req-{}", self.counter.fetch_add(1, Ordering::SeqCst));
        self.events.send((id.clone(), event)).unwrap();
        id
    }

    /// The next thing the function posted (panics after `wait`).
    pub async fn posted(&self, wait: Duration) -> Posted {
        let mut posted = self.posted.lock().await;
        tokio::time::timeout(wait, posted.recv())
            .await
            .expect("the function did not answer in time")
            .expect("the Runtime API stopped")
    }

    /// Invokes and waits for the answer: `Ok(response)` or `Err((error body, error type))`.
    pub async fn call(&self, event: Value) -> Result<Value, (Value, Option<String>)> {
        let id = self.invoke(event);
        match self.posted(Duration::from_secs(20)).await {
            Posted::Response { id: got, body, .. } => {
                assert_eq!(got, id);
                Ok(body)
            }
            Posted::Error {
                id: got,
                body,
                error_type,
            } => {
                assert_eq!(got, id);
                Err((body, error_type))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// `/next` calls so far.
    pub fn next_calls(&self) -> usize {
        self.state.next_calls.load(Ordering::SeqCst)
    }

    /// JWKS fetches counted when the first `/next` arrived.
    pub async fn jwks_hits_at_first_next(&self) -> Option<usize> {
        *self.state.jwks_hits_at_first_next.lock().await
    }
}

/// The Lambda environment for a function talking to `api`, plus `vars`.
pub fn lambda_env(api: &str, vars: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("AWS_LAMBDA_RUNTIME_API", api),
        ("AWS_LAMBDA_FUNCTION_NAME", "authorizer"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(path) = std::env::var_os("PATH") {
        env.insert("PATH".into(), path.to_string_lossy().into_owned());
    }
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// A started function process; killed when dropped. Its output goes to a file.
pub struct Function {
    pub child: tokio::process::Child,
    pub log: tempfile::NamedTempFile,
}

impl Function {
    /// Starts `program` with `args` in exactly the environment `env`.
    pub fn start(
        program: &std::path::Path,
        args: &[&str],
        env: &HashMap<String, String>,
    ) -> Function {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Function { child, log }
    }

    /// Everything the function logged so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits for the process to exit (panics after `wait`).
    pub async fn exit_code(&mut self, wait: Duration) -> Option<i32> {
        let status = tokio::time::timeout(wait, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the function did not exit; output:\n{}", self.output()))
            .unwrap();
        status.code()
    }
}
