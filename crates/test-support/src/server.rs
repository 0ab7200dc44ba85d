//! A loopback HTTP server playing an identity provider's key endpoints: `/jwks` and
//! `/.well-known/openid-configuration`, each fetch counted. It runs on plain threads, so that
//! synchronous tests (driving the `jwtgate` binary) and async ones can both use it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What the server answers; changed by the test while it runs.
#[derive(Debug)]
struct Answers {
    jwks: String,
    document_issuer: String,
    cache_control: Option<String>,
}

#[derive(Debug)]
struct Shared {
    answers: Mutex<Answers>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: AtomicUsize,
    stopped: AtomicBool,
}

/// A JWKS and discovery server on `127.0.0.1`, stopped when dropped.
///
/// `/jwks` answers the JWKS with `Cache-Control: public, max-age=600` (see
/// [`JwksServer::set_cache_control`]); `/.well-known/openid-configuration` names the issuer
/// [`JwksServer::issuer`] (see [`JwksServer::set_document_issuer`]) and `jwks_uri`
/// [`JwksServer::jwks_url`]. Anything else is 404.
#[derive(Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    base: String,
    shared: Arc<Shared>,
}

impl JwksServer {
    /// Starts serving `jwks`.
    pub fn start(jwks: &Value) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let base = format!("http://{addr}");
        let shared = Arc::new(Shared {
            answers: Mutex::new(Answers {
                jwks: jwks.to_string(),
                document_issuer: format!("{base}/"),
                cache_control: Some("public, max-age=600".to_owned()),
            }),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            discovery_fetches: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        });
        let serving = shared.clone();
        let jwks_uri = format!("{base}/jwks");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, jwks_uri) = (serving.clone(), jwks_uri.clone());
                std::thread::spawn(move || answer(stream, &shared, &jwks_uri));
            }
        });
        JwksServer { addr, base, shared }
    }

    /// `http://127.0.0.1:{port}`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The issuer this server is the provider of: [`JwksServer::base`] with a trailing slash
    /// (discovery finds `{issuer}.well-known/openid-configuration`).
    pub fn issuer(&self) -> String {
        format!("{}/", self.base)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// Serves `jwks` from now on.
    pub fn set_jwks(&self, jwks: &Value) {
        self.answers().jwks = jwks.to_string();
    }

    /// Names `issuer` in the discovery document from now on (e.g. an impostor).
    pub fn set_document_issuer(&self, issuer: &str) {
        self.answers().document_issuer = issuer.to_owned();
    }

    /// Sends this `Cache-Control` with the JWKS from now on (`None`: no such header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.answers().cache_control = value.map(str::to_owned);
    }

    /// JWKS fetches so far.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The JWKS fetch counter itself, for other fixtures that sample it.
    pub fn jwks_counter(&self) -> Arc<AtomicUsize> {
        self.shared.jwks_fetches.clone()
    }

    /// Discovery-document fetches so far.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    fn answers(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head and answers it; the connection is closed after the answer.
fn answer(stream: TcpStream, shared: &Shared, jwks_uri: &str) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let (status, body, cache_control) = {
        let answers = shared
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match path {
            "/jwks" => {
                shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                (
                    "200 OK",
                    answers.jwks.clone(),
                    answers.cache_control.clone(),
                )
            }
            "/.well-known/openid-configuration" => {
                shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                let document = json!({"issuer": answers.document_issuer, "jwks_uri": jwks_uri});
                ("200 OK", document.to_string(), None)
            }
            _ => ("404 Not Found", String::new(), None),
        }
    };
    let cache_control = cache_control
        .map(|value| format!("Cache-Control: {value}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{cache_control}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}
