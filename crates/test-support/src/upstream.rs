//! An upstream API for tests that put a proxy or the gateway in front of one: it answers every
//! request with a JSON record of what it received (method, URI, every header in order, repeated
//! ones too) and keeps those records, so a test can tell whether a request got through and
//! exactly which headers reached the API.

use axum::extract::{Request, State};
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Every request the upstream received, as the records it answered with.
#[derive(Clone, Debug, Default)]
pub struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    /// Every record so far, oldest first.
    pub fn all(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests it received so far.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn push(&self, record: Value) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

async fn echo(State(seen): State<Seen>, request: Request) -> axum::Json<Value> {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let record = json!({
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "headers": headers,
    });
    seen.push(record.clone());
    axum::Json(record)
}

/// Starts the echoing upstream on a free loopback port (in the test's runtime): its address and
/// its records.
pub async fn start_echo_upstream() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(echo).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// The values of header `name` (any case) in an upstream record, in the order received.
pub fn header_values(record: &Value, name: &str) -> Vec<String> {
    matching_values(record, |header| header.eq_ignore_ascii_case(name))
}

/// The values of every header in an upstream record whose name reads as `name` to a server that
/// folds case and `_` to `-` (CGI, WSGI, PHP).
pub fn folded_values(record: &Value, name: &str) -> Vec<String> {
    matching_values(record, |header| {
        header.replace('_', "-").eq_ignore_ascii_case(name)
    })
}

fn matching_values(record: &Value, matches: impl Fn(&str) -> bool) -> Vec<String> {
    record["headers"]
        .as_array()
        .expect("an upstream record has headers")
        .iter()
        .filter(|pair| matches(pair[0].as_str().expect("a header name")))
        .map(|pair| pair[1].as_str().expect("a header value").to_owned())
        .collect()
}
