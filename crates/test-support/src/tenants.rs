//! A loopback multi-tenant identity provider, shaped like Entra ID: every tenant has its own
//! issuer `{base}/{tenant}/v2.0`, its own discovery document
//! (`{issuer}/.well-known/openid-configuration`) and its own JWKS (`{base}/{tenant}/discovery/keys`),
//! signed for by its own [`Issuer`]. Every request is counted, known tenant or not, so tests can
//! prove that a refused tenant cost no network call.

use crate::Issuer;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
struct Shared {
    jwks: HashMap<String, String>,
    requests: AtomicUsize,
    by_tenant: Mutex<HashMap<String, usize>>,
    stopped: AtomicBool,
}

/// A provider serving several tenants on `127.0.0.1`, stopped when dropped.
#[derive(Debug)]
pub struct TenantProvider {
    addr: SocketAddr,
    base: String,
    shared: Arc<Shared>,
}

impl TenantProvider {
    /// Serves `tenants`: each tenant name with the issuer whose keys it publishes. The issuers'
    /// own `iss` is not used: tokens for a tenant are made with [`TenantProvider::issuer`].
    pub fn start(tenants: &[(&str, &Issuer)]) -> TenantProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let base = format!("http://{addr}");
        let shared = Arc::new(Shared {
            jwks: tenants
                .iter()
                .map(|(name, issuer)| ((*name).to_owned(), issuer.jwks().to_string()))
                .collect(),
            requests: AtomicUsize::new(0),
            by_tenant: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        });
        let serving = shared.clone();
        let serving_base = base.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, base) = (serving.clone(), serving_base.clone());
                std::thread::spawn(move || answer(stream, &shared, &base));
            }
        });
        TenantProvider { addr, base, shared }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The issuer template: `{base}/{tenant}/v2.0`.
    pub fn template(&self) -> String {
        format!("{}/{{tenant}}/v2.0", self.base)
    }

    /// The concrete issuer of `tenant`.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    /// Every request so far (discovery, JWKS, and unknown paths or tenants).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests so far whose path named `tenant`.
    pub fn requests_for(&self, tenant: &str) -> usize {
        self.shared
            .by_tenant
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TenantProvider {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(stream: TcpStream, shared: &Shared, base: &str) {
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
    if shared.stopped.load(Ordering::SeqCst) {
        return;
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let tenant = parts.next().unwrap_or_default().to_owned();
    let rest = parts.next().unwrap_or_default();
    *shared
        .by_tenant
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(tenant.clone())
        .or_default() += 1;
    let (status, body) = match (shared.jwks.get(&tenant), rest) {
        (Some(_), "v2.0/.well-known/openid-configuration") => (
            "200 OK",
            serde_json::json!({
                "issuer": format!("{base}/{tenant}/v2.0"),
                "jwks_uri": format!("{base}/{tenant}/discovery/keys"),
            })
            .to_string(),
        ),
        (Some(jwks), "discovery/keys") => ("200 OK", jwks.clone()),
        _ => ("404 Not Found", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nCache-Control: public, max-age=600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}
