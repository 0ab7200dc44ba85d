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

/// The real redis-server (Debian's `redis-server`), empty and non-persistent, on loopback
/// `port`, its files in `dir`.
pub fn redis_command(port: u16, dir: &Path) -> Command {
    let mut command = Command::new(require_program("redis-server"));
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
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

    /// Waits (15 s at most) until `addr` accepts connections on a socket this process (or one
    /// it started) holds ([`listening`]): a server of another test that took the port in the
    /// meantime is not mistaken for this one. `Err` with the log when the process exits first
    /// (which it does when the port was taken).
    pub async fn wait_until_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
        let what = format!("listening on {addr}");
        let pid = self.id();
        self.wait_for(&what, Duration::from_secs(15), || listening(addr, pid))
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
/// the `command` for them, until `ready` holds for them and the process id (20 s at most). When
/// the process exits before, e.g. because a port was taken in the meantime, it is started again
/// on other ports (three tries, then a failure with every log). `ready` should require
/// [`holds_listener`] for the ports it reads: a port another test's server took in the meantime
/// would otherwise look ready (that server answers, while this program fails to bind and exits
/// or, like nginx, retries for seconds first), and the test would talk to the wrong server.
pub async fn start_with_ports<T: Clone, F: Future<Output = bool>>(
    name: &'static str,
    dir: &Path,
    ports: impl Fn() -> T,
    command: impl Fn(&T) -> Command,
    ready: impl Fn(T, u32) -> F,
) -> (Running, T) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let chosen = ports();
        let log = dir.join(format!("{name}.log"));
        let mut running = Running::spawn(name, command(&chosen), log);
        let pid = running.id();
        let waited = running
            .wait_for("ready", Duration::from_secs(20), || {
                ready(chosen.clone(), pid)
            })
            .await;
        match waited {
            Ok(()) => return (running, chosen),
            Err(log) => failures.push(log),
        }
    }
    panic!("{name} did not start:\n{}", failures.join("\n"))
}

/// Starts `name` listening on a free loopback address, with the `command` for that address;
/// ready once it accepts connections there on a socket it (or a process it started) holds
/// ([`start_with_ports`]).
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
        listening,
    )
    .await
}

/// Whether process `pid` (or one it started) accepts connections on `addr` on its own socket.
pub async fn listening(addr: SocketAddr, pid: u32) -> bool {
    accepts(addr).await && holds_listener(pid, addr.port())
}

/// Whether process `pid`, or a process it started, holds a TCP socket listening on `port`
/// (Linux: the socket's inode in `/proc/net/tcp{,6}` among the processes' open files). True
/// where `/proc/net/tcp` cannot be read (another system: the check is then skipped).
pub fn holds_listener(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let Ok(tcp4) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let tcp6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let inodes: Vec<String> = tcp4
        .lines()
        .chain(tcp6.lines())
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = fields.get(3) == Some(&LISTEN);
            (listening && u16::from_str_radix(local_port, 16).ok() == Some(port))
                .then(|| format!("socket:[{}]", fields.get(9).unwrap_or(&"")))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    process_tree(pid).into_iter().any(|member| {
        std::fs::read_dir(format!("/proc/{member}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .any(|target| {
                inodes
                    .iter()
                    .any(|inode| target.as_os_str() == inode.as_str())
            })
    })
}

/// `pid` and every process descended from it (by the parent ids in `/proc/*/stat`).
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let after_comm = stat.rsplit_once(')')?.1;
            let parent = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            Some((child, parent))
        })
        .collect();
    let mut tree = vec![pid];
    let mut next = 0;
    while let Some(&member) = tree.get(next) {
        for &(child, parent) in &parents {
            if parent == member && !tree.contains(&child) {
                tree.push(child);
            }
        }
        next += 1;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_held_by_its_process_and_no_other() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(holds_listener(std::process::id(), port));
        let mut other = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(!holds_listener(other.id(), port));
        let _ = other.kill();
        let _ = other.wait();
        drop(listener);
        assert!(!holds_listener(std::process::id(), port));
    }

    #[test]
    fn the_tree_holds_what_a_process_started() {
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_tree(shell.id()).len() < 2 {
            assert!(Instant::now() < deadline, "the shell's sleep never showed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(process_tree(shell.id())[0], shell.id());
        let _ = shell.kill();
        let _ = shell.wait();
    }
}
