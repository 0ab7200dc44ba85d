//! The demo page in real headless Chromium (Debian `chromium`, driven by npm `playwright-core`
//! from `crates/demo/e2e`): log in as alice, list users, POST refused, the ID-token and
//! no-audience cases, key rotation, bob refused, DPoP (a bound token with proofs; the token
//! replayed without its proof refused), log out. Screenshots are written to
//! `target/demo-screenshots/`; `docs/demo.png` (the README's picture) is refreshed from it when
//! `JWTGATE_UPDATE_SCREENSHOT=1`.
//!
//! This test fails — it does not skip — when Chromium or the npm packages are missing:
//! `bash scripts/test` installs them (`apt-get install chromium`, `npm ci` in `crates/demo/e2e`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_demo::{Demo, DemoOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_clicking_through_the_demo_page() {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "npm packages missing: run `npm ci` in {} (bash scripts/test does)",
        e2e.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium missing at {chromium}: apt-get install chromium (bash scripts/test does)"
    );

    let state = tempfile::tempdir().unwrap();
    let demo = Demo::start(&DemoOptions {
        app_port: 0,
        issuer_port: 0,
        state_dir: state.path().into(),
    })
    .await
    .unwrap();
    let out: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/demo-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let app_url = demo.app_url.clone();
    let script = e2e.join("demo.mjs");
    let out_arg = out.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(&app_url)
            .arg(&out_arg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    demo.stop().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "browser steps failed:\n{stdout}");
    for step in [
        "PASS log in as alice",
        "PASS alice: GET /api/users is allowed",
        "PASS alice: POST /api/users is refused with 403",
        "PASS the ID token is refused with the ID-token hint",
        "PASS calls still succeed after the rotation",
        "PASS bob: GET /api/users is refused with 403",
        "PASS the opaque token is refused with the audience hint",
        "PASS log in as alice with DPoP",
        "PASS alice with DPoP: GET /api/users is allowed (token + proof)",
        "PASS the token replayed without its proof is refused",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in\n{stdout}");
    }
    assert!(out.join("demo-alice.png").is_file());
    if std::env::var_os("JWTGATE_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/demo.png");
        std::fs::copy(out.join("demo-alice.png"), docs).unwrap();
    }
}
