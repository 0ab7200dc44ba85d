//! What the Redis replica tests share: a `redis-server` on a loopback port (the real programs
//! and their processes come from `jwtgate_test_support::process`).

#![allow(dead_code)]

use jwtgate_test_support::now;
use std::net::SocketAddr;
use std::path::Path;

use jwtgate_test_support::process::redis_command;
pub use jwtgate_test_support::process::Running;

/// An empty, non-persistent redis-server on `port`, ready once it holds that port itself (a
/// server of another test that took the port in the meantime fails this start with the log,
/// rather than answering for it: [`Running::expect_listening`]).
pub async fn start_redis(dir: &Path, port: u16) -> Running {
    let command = redis_command(port, dir);
    let log = dir.join(format!("redis-{}-{}.log", port, now()));
    let mut redis = Running::spawn("redis-server", command, log);
    redis
        .expect_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await;
    redis
}
