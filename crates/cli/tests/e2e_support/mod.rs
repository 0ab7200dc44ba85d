//! What the end-to-end tests share: the npm folder with the MCP SDK, and a `jwtgate issuer`
//! process on a free loopback port (the MCP tests, `issuer.rs`, `openid_client_dpop.rs`).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `crates/cli/e2e`.
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// Fails (never skips) when Node or the npm packages are missing.
pub fn require_node_and_sdk() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js (20 or later)"
    );
    let sdk = e2e_dir().join("node_modules/@modelcontextprotocol/sdk/package.json");
    assert!(
        sdk.exists(),
        "npm package @modelcontextprotocol/sdk is missing: run `npm ci` in {} (bash scripts/test does)",
        e2e_dir().display()
    );
}

/// A `jwtgate issuer` process on a free loopback port; killed when dropped.
pub struct IssuerProcess {
    child: Child,
    /// The issuer URL (`http://127.0.0.1:PORT/`).
    pub url: String,
    /// What it printed after its first line, line by line.
    output: mpsc::Receiver<String>,
}

impl IssuerProcess {
    /// Starts `jwtgate issuer --config CONFIG` with ephemeral keys.
    pub fn start(config: &Path) -> IssuerProcess {
        IssuerProcess::start_with(&[
            OsStr::new("--ephemeral"),
            OsStr::new("--config"),
            config.as_os_str(),
        ])
    }

    /// Starts `jwtgate issuer --listen 127.0.0.1:0` with `args` added.
    pub fn start_with(args: &[&OsStr]) -> IssuerProcess {
        IssuerProcess::start_on("127.0.0.1:0", args)
    }

    /// Starts `jwtgate issuer --listen LISTEN` with `args` added, and reads the address it
    /// listens on from its first line.
    pub fn start_on(listen: &str, args: &[&OsStr]) -> IssuerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
            .args(["issuer", "--listen", listen])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first
            .strip_prefix("jwtgate issuer listening on ")
            .unwrap_or_else(|| panic!("unexpected banner: {first}"))
            .to_owned();
        // Keep draining stdout so the server never blocks on a full pipe.
        let (sender, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        IssuerProcess {
            child,
            url: format!("http://{addr}/"),
            output,
        }
    }

    /// The next line it printed that starts with `prefix` (leading spaces aside), waiting 10 s
    /// at most.
    pub fn line_starting_with(&self, prefix: &str) -> String {
        loop {
            let line = self
                .output
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("no line starting with {prefix:?}: {e}"));
            if line.trim_start().starts_with(prefix) {
                return line;
            }
        }
    }
}

impl Drop for IssuerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
