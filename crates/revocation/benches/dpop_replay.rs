//! What the shared DPoP replay check adds to a DPoP request: one `SET NX` round trip to a real
//! `redis-server` started on a free loopback port, run by `cargo bench -p jwtgate-revocation
//! --features redis --bench dpop_replay`.
//!
//! * `dpop_replay/first_use` — a fresh proof recorded (`SharedDpopReplay::first_use`, timeout
//!   and all), the path of every accepted DPoP request;
//! * `dpop_replay/replayed` — a proof some replica recorded before;
//! * `dpop_replay/ping` — a bare `PING` on a plain connection to the same server, the baseline
//!   (the loopback round trip itself).
//!
//! Each iteration is one `block_on` of a current-thread runtime, as a request's await would be.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::Criterion;
use jwtgate_revocation::{DpopReplayFallback, SharedDpopReplay};
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let port = jwtgate_test_support::free_port();
    let redis = Redis(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is needed ({e}): apt-get install -y redis-server (scripts/test installs it)")
            }),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SharedDpopReplay::new(
        &url,
        "bench:",
        Duration::from_millis(50),
        DpopReplayFallback::FailClosed,
    )
    .unwrap();
    let until = jwtgate_revocation::unix_now() + 120;
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    assert_eq!(
        runtime.block_on(store.first_use(jkt, "seen", until)),
        Ok(true)
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = runtime
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("dpop_replay");
    let mut counter = 0u64;
    group.bench_function("first_use", |b| {
        b.iter(|| {
            counter += 1;
            let jti = format!("e1j3V_bKic8-LAEB-{counter}");
            let first = runtime.block_on(store.first_use(jkt, &jti, until));
            assert_eq!(first, Ok(true));
        })
    });
    group.bench_function("replayed", |b| {
        b.iter(|| {
            let first = runtime.block_on(store.first_use(jkt, black_box("seen"), until));
            assert_eq!(first, Ok(false));
        })
    });
    group.bench_function("ping", |b| {
        b.iter(|| {
            let pong: String = runtime
                .block_on(redis::cmd("PING").query_async(&mut connection))
                .unwrap();
            black_box(pong)
        })
    });
    group.finish();
    criterion.final_summary();
    drop(redis);
}
