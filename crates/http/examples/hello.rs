//! The floor of `bench/http.sh`: an axum hello-world with no authentication, on the same runtime
//! set-up as `jwtgate serve` (tokio multi-threaded, one worker per core it may run on).
//!
//! With a second argument, a directory of `bench_tokens` material (`jwks.json`, `tokens.txt`),
//! every request also checks one RS256 signature — the bare check through core's crypto
//! boundary, with the key parsed once, over a token's signing input — and nothing else: the
//! floor plus exactly one signature check, measured in the server, where the network stack and
//! the HTTP code run between two checks (the `floor-sig` server of `bench/http.sh`).
//!
//! Run: `cargo run --release -p jwtgate-http --example hello -- 127.0.0.1:8081 [TOKENS_DIR]`.

use axum::http::StatusCode;
use axum::routing::any;
use axum::Router;
use jwtgate_core::internal::base64url;
use jwtgate_core::{Algorithm, KeySet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Signed tokens and the key that checks them: one signature check per request, taken in turn.
struct Signatures {
    keys: KeySet,
    /// Each token's signing input and decoded signature.
    tokens: Vec<(Vec<u8>, Vec<u8>)>,
    next: AtomicUsize,
}

impl Signatures {
    fn load(dir: &std::path::Path) -> Result<Signatures, Error> {
        let keys = KeySet::from_json(&std::fs::read(dir.join("jwks.json"))?)?;
        let mut tokens = Vec::new();
        // The first 64 tokens only: the file holds up to 200,000, which the floor must not hold.
        let file = std::io::BufReader::new(std::fs::File::open(dir.join("tokens.txt"))?);
        for token in std::io::BufRead::lines(file).take(64) {
            let token = token?;
            let (input, signature) = token.rsplit_once('.').ok_or("a token without a dot")?;
            tokens.push((
                input.as_bytes().to_vec(),
                base64url::decode(signature.as_bytes())?,
            ));
        }
        if keys.keys().is_empty() || tokens.is_empty() {
            return Err("no key or no token".into());
        }
        Ok(Signatures {
            keys,
            tokens,
            next: AtomicUsize::new(0),
        })
    }

    /// Checks the next token's signature; `false` when it does not verify.
    fn check(&self) -> bool {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.tokens.len();
        let (input, signature) = &self.tokens[index];
        self.keys.keys()[0]
            .key()
            .verify(Algorithm::RS256, input, signature)
            .is_ok()
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let signatures = match args.next() {
        Some(dir) => Some(Arc::new(Signatures::load(std::path::Path::new(&dir))?)),
        None => None,
    };
    let answer = move || {
        let signatures = signatures.clone();
        async move {
            match signatures {
                // A failed check is an error answer, which bench/http.sh refuses to count.
                Some(signatures) if !signatures.check() => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "signature did not verify\n",
                ),
                _ => (StatusCode::OK, "hello\n"),
            }
        }
    };
    let app = Router::new()
        .route("/auth", any(answer.clone()))
        .fallback(answer);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("hello: listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
