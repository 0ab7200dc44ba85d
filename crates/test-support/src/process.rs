//! Real programs a test runs (nginx, Caddy, Envoy, Traefik, redis-server, `jwtgate` itself):
//! finding them or failing with how to install them, child processes killed and reaped when the
//! test ends however it ends, with their output in a log file, and starting them on free
//! loopback ports, retried when a port was taken in the meantime.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the system programs the tests run (`scripts/test` lists them).
pub const INSTALL_HINT: &str = "`.ci/run` installs it (scripts/test, its \"system packages\" \
     stage); on a developer machine: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get \
     install -y --no-install-recommends nginx caddy redis-server wrk openssl \
     default-jdk-headless libjetty9-java";

/// The installed program `name` (on `PATH`, or in `/usr/sbin` or `/usr/bin`), or a failure
/// saying how to install it: tests that run a real program never skip.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, and this test runs the real {name} (it does not \
                 skip): {INSTALL_HINT}"
            )
        })
}

/// The real nginx (Debian's `nginx`) running `conf` in the foreground, single process, logging
/// to stderr, with `prefix` as its prefix: `conf` is written to `{prefix}/nginx.conf`, and
/// `{prefix}/tmp` made for the temp paths a configuration may name there.
pub fn nginx_command(prefix: &Path, conf: &str) -> Command {
    std::fs::create_dir_all(prefix.join("tmp"))
        .unwrap_or_else(|e| panic!("{}: {e}", prefix.display()));
    std::fs::write(prefix.join("nginx.conf"), conf)
        .unwrap_or_else(|e| panic!("{}: {e}", prefix.display()));
    let mut command = Command::new(require_program("nginx"));
    command
        .args(["-e", "stderr", "-p"])
        .arg(format!("{}/", prefix.display()))
        .args(["-c", "nginx.conf"]);
    command
}

/// A loopback address on a port that was free a moment ago (see [`crate::free_port`]).
pub fn free_loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::free_port()))
}

/// Whether something accepts TCP connections on `addr` now.
pub async fn accepts(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

/// A child process killed (and reaped) when dropped, its output in a log file.
#[derive(Debug)]
pub struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` (`name` names it in failures) with stdout and stderr in `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Running {
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let stdout = file.try_clone().expect("a second handle on the log file");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(file));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running { name, child, log }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Polls `ready` until it holds. `Err` with the log when the process exits first (a port
    /// taken in the meantime can then be retried); fails when it is still not ready `within`.
    pub async fn wait_for<F: Future<Output = bool>>(
        &mut self,
        what: &str,
        within: Duration,
        ready: impl Fn() -> F,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return Err(format!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log()
                ));
            }
            if ready().await {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} is not {what} after {within:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (15 s at most) until `addr` accepts connections; `Err` with the log when the
    /// process exits first.
    pub async fn wait_until_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
        let what = format!("listening on {addr}");
        self.wait_for(&what, Duration::from_secs(15), || accepts(addr))
            .await
    }

    /// [`Running::wait_until_listening`], failing the test with the log when the process exits
    /// first.
    pub async fn expect_listening(&mut self, addr: SocketAddr) {
        if let Err(log) = self.wait_until_listening(addr).await {
            panic!("{log}");
        }
    }

    /// Sends SIGTERM and waits (10 s at most) for a clean exit (status 0).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -TERM {}", self.name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running 10 s after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `name` (log `{dir}/{name}.log`) on what `ports` chooses (free loopback ports), with
/// the `command` for them, until `ready` holds for them (20 s at most). When the process exits
/// before, e.g. because a port was taken in the meantime, it is started again on other ports
/// (three tries, then a failure with every log).
pub async fn start_with_ports<T: Clone, F: Future<Output = bool>>(
    name: &'static str,
    dir: &Path,
    ports: impl Fn() -> T,
    command: impl Fn(&T) -> Command,
    ready: impl Fn(T) -> F,
) -> (Running, T) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let chosen = ports();
        let log = dir.join(format!("{name}.log"));
        let mut running = Running::spawn(name, command(&chosen), log);
        let waited = running
            .wait_for("ready", Duration::from_secs(20), || ready(chosen.clone()))
            .await;
        match waited {
            Ok(()) => return (running, chosen),
            Err(log) => failures.push(log),
        }
    }
    panic!("{name} did not start:\n{}", failures.join("\n"))
}

/// Starts `name` listening on a free loopback address, with the `command` for that address;
/// ready once it accepts connections (retried as [`start_with_ports`] says).
pub async fn start_on_free_port(
    name: &'static str,
    dir: &Path,
    command: impl Fn(SocketAddr) -> Command,
) -> (Running, SocketAddr) {
    start_with_ports(
        name,
        dir,
        free_loopback_addr,
        |listen| command(*listen),
        accepts,
    )
    .await
}
