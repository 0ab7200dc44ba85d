//! The floor of `bench/http.sh`: an axum hello-world with no authentication, on the same runtime
//! set-up as `jwtgate serve` (tokio multi-threaded, one worker per core it may run on).
//!
//! Run: `cargo run --release -p jwtgate-http --example hello -- 127.0.0.1:8081`.

use axum::routing::any;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let app = Router::new()
        .route("/auth", any(|| async { "hello\n" }))
        .fallback(|| async { "hello\n" });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("hello: listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
