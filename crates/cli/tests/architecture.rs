//! The invariants ARCHITECTURE.md states about the code's shape, checked on the sources so that
//! a change breaking one fails here rather than in review:
//!
//! * `jwtgate-core` does no I/O: its only dependencies are AWS-LC, memchr (byte search),
//!   serde, serde_json and thiserror, and its sources name no file, network, process, thread or async runtime API;
//! * only `jwtgate-core` and `jwtgate-issuer` (which signs) use AWS-LC directly;
//! * every front end decides through the engine: outside `jwtgate-engine` (and `jwtgate-core`'s
//!   own verifier, used by the CLI's `verify`), no source normalises paths, matches routes,
//!   extracts bearer tokens or verifies through the key registry itself.
//!
//! (That a token never chooses its key is behaviour, tested in `crates/core/tests/
//! key_selection.rs` and by the Wycheproof vectors; that the front ends agree is
//! `differential.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {}", dir.display());
    found
}

/// The crate directories of the workspace (`crates/*` with a `src/`).
fn crates() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    all.sort();
    all
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let table: toml::Table = text.parse().unwrap();
    table
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// Lines of `text` outside `#[cfg(test)]` modules and comments that contain `needle`.
fn code_lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            !trimmed.starts_with("//") && line.contains(needle)
        })
        .collect()
}

#[test]
fn core_does_no_io() {
    let core = workspace().join("crates/core");
    let mut deps = dependencies(&core.join("Cargo.toml"));
    deps.sort();
    assert_eq!(
        deps,
        ["aws-lc-rs", "memchr", "serde", "serde_json", "thiserror"]
    );
    for (path, text) in sources(&core.join("src")) {
        for api in [
            "std::fs",
            "std::net",
            "std::process",
            "std::thread",
            "std::env",
            "tokio",
            "File::",
        ] {
            let lines = code_lines_with(&text, api);
            assert!(lines.is_empty(), "{} uses {api}: {lines:?}", path.display());
        }
    }
}

#[test]
fn only_core_and_the_issuer_touch_aws_lc() {
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let allowed = name == "core" || name == "issuer";
        let direct = dependencies(&dir.join("Cargo.toml"))
            .iter()
            .any(|d| d == "aws-lc-rs");
        assert!(
            allowed || !direct,
            "crates/{name} depends on aws-lc-rs directly"
        );
        if !allowed {
            for (path, text) in sources(&dir.join("src")) {
                let lines = code_lines_with(&text, "aws_lc_rs");
                assert!(
                    lines.is_empty(),
                    "{} uses AWS-LC: {lines:?}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn front_ends_decide_through_the_engine() {
    // What only the engine does: normalise paths, match routes, find the token, verify through
    // the key registry.
    let decisions = [
        "path::normalize",
        "normalize_with(",
        ".requirement(",
        "bearer::extract(",
        "registry.verify(",
        "registry().verify(",
    ];
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "engine" || name == "core" || name == "keys" {
            continue;
        }
        for (path, text) in sources(&dir.join("src")) {
            for needle in decisions {
                let lines = code_lines_with(&text, needle);
                assert!(
                    lines.is_empty(),
                    "{} decides itself ({needle}): {lines:?}; ask the engine instead",
                    path.display()
                );
            }
        }
    }
}
