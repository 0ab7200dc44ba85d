//! What the MCP end-to-end tests share: the npm folder with the MCP SDK, and a `jwtgate issuer`
//! process on a free loopback port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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
}

impl IssuerProcess {
    /// Starts `jwtgate issuer --config CONFIG` with ephemeral keys.
    pub fn start(config: &std::path::Path) -> IssuerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
            .args([
                "issuer",
                "--listen",
                "127.0.0.1:0",
                "--ephemeral",
                "--config",
            ])
            .arg(config)
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
        std::thread::spawn(move || for _ in lines {});
        IssuerProcess {
            child,
            url: format!("http://{addr}/"),
        }
    }
}

impl Drop for IssuerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
