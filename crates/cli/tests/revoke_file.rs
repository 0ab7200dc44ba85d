//! `jwtgate revoke --file`: rules added, replaced, listed, imported and removed in a JSON-lines
//! rules file the gateway follows; bad input is exit 2 and leaves the file as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_revocation::{parse_json_lines, Rule};
use jwtgate_test_support::now;
use std::path::Path;
use std::process::Command;

fn revoke(file: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .arg("revoke")
        .arg("--file")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn rules(file: &Path) -> Vec<Rule> {
    parse_json_lines(&std::fs::read_to_string(file).unwrap()).unwrap()
}

#[test]
fn a_rules_file_is_written_listed_imported_and_left_alone_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked.jsonl");
    let exp = (now() + 600).to_string();
    assert_eq!(revoke(&file, &["--jti", "j1", "--exp", &exp]).0, 0);
    let (code, _, stderr) = revoke(
        &file,
        &[
            "--issuer",
            "https://i/",
            "--subject",
            "alice",
            "--before",
            "2030-01-01T00:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(revoke(&file, &["--client", "rogue"]).0, 0);
    let held = rules(&file);
    assert_eq!(held.len(), 3, "{held:?}");
    let alice = held
        .iter()
        .find(|r| r.to_string().contains("alice"))
        .unwrap();
    assert_eq!(alice.before(), Some(1_893_456_000));
    assert_eq!(
        alice.until(),
        1_893_456_000 + 86_400,
        "kept 24 h by default"
    );

    // Bad input: exit 2, the file untouched.
    let before = std::fs::read(&file).unwrap();
    for bad in [
        vec!["--jti", "j2", "--exp", "soon"],
        vec!["--jti", "j2"],
        vec!["--jti", "j2", "--exp", "5"],
        vec!["--client", "c", "--before", "10", "--until", "5"],
        vec!["--issuer", "https://i/"],
        vec!["--client", "c", "--exp", "5"],
    ] {
        let (code, _, stderr) = revoke(&file, &bad);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);

    let (code, listed, _) = revoke(&file, &["--list"]);
    assert_eq!(code, 0);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    // A --list is an --import: into another file, the same rules.
    let backup = dir.path().join("backup.jsonl");
    std::fs::write(&backup, &listed).unwrap();
    let restored = dir.path().join("restored.jsonl");
    assert_eq!(
        revoke(&restored, &["--import", backup.to_str().unwrap()]).0,
        0
    );
    assert_eq!(rules(&restored), rules(&file));

    let (code, _, stderr) = revoke(&file, &["--jti", "j1", "--remove"]);
    assert_eq!(code, 0);
    assert!(
        stderr.contains("removed the rule for jti \"j1\""),
        "{stderr}"
    );
    assert_eq!(rules(&file).len(), 2);
}
