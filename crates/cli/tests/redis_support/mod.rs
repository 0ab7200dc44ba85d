//! What the Redis replica tests share: finding the real programs, child processes killed when
//! dropped, and a `redis-server` on a loopback port.

#![allow(dead_code)]

use jwtgate_test_support::now;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "`.ci/run` installs it (scripts/test); on a developer machine: \
     apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
     redis-server nginx";

/// The installed program `name`, or a failure naming how to install it.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed, and this test runs the real one: {INSTALL_HINT}")
        })
}

/// A child process killed and reaped when dropped.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with its output in `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Running {
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        Running {
            child: command.spawn().unwrap(),
            log,
        }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` accepts connections (fails if the process exits first).
    pub async fn wait_until_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "exited ({status}) before listening on {addr}:\n{}",
                    self.log()
                );
            }
            assert!(Instant::now() < deadline, "nothing listens on {addr}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An empty, non-persistent redis-server on `port`.
pub async fn start_redis(dir: &Path, port: u16) -> Running {
    let mut command = Command::new(require_program("redis-server"));
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    let log = dir.join(format!("redis-{}-{}.log", port, now()));
    let mut redis = Running::spawn(command, log);
    redis
        .wait_until_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await;
    redis
}
