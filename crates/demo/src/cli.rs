//! `jwtgate demo`: start everything and print where to go, or `--check` the whole flow headlessly.

use crate::{check, Demo, DemoOptions};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options of `jwtgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port of the app: the SPA and the API, behind the gateway.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port of the OpenID Connect issuer.
    #[arg(long, default_value_t = 4400)]
    issuer_port: u16,
    /// Where the SQLite database and the issuer's keys live (default: `.jwtgate-demo` in the
    /// current directory; with `--check`, a temporary directory).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Start every component on free ports, run the whole flow without a browser, print a
    /// report, stop, and exit 0 only if every step passed.
    #[arg(long)]
    check: bool,
}

/// Runs `jwtgate demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if args.check {
            let temporary = tempfile::tempdir()?;
            let state_dir = args.state_dir.clone().unwrap_or_else(|| temporary.path().to_path_buf());
            let started = Instant::now();
            let demo = Demo::start(&DemoOptions { app_port: 0, issuer_port: 0, state_dir }).await?;
            println!("jwtgate demo --check: issuer {}, app {}", demo.issuer_url, demo.app_url);
            let report = tokio::time::timeout(Duration::from_secs(60), check::run(&demo)).await;
            demo.stop().await;
            let Ok(report) = report else {
                println!("FAIL the flow did not finish within 60 s");
                return Ok(ExitCode::from(1));
            };
            print!("{}", report.render());
            println!("finished in {:.1} s", started.elapsed().as_secs_f64());
            return Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        let state_dir = args.state_dir.clone().unwrap_or_else(|| PathBuf::from(".jwtgate-demo"));
        let demo = Demo::start(&DemoOptions {
            app_port: args.port,
            issuer_port: args.issuer_port,
            state_dir: state_dir.clone(),
        })
        .await?;
        println!(
            "jwtgate demo is running (state in {}).\n\n  Open {}\n\n  \
             1. Log in as alice → GET /api/users answers 200 with the users; POST is refused (403, missing write:users).\n  \
             2. Log in as bob → GET is refused (403, missing read:users).\n  \
             3. \"Call with the ID token instead\" → 401: the gateway says it looks like an ID token.\n  \
             4. \"Log in without audience\" → an opaque access token → 401 with the audience hint.\n  \
             5. \"Rotate issuer key\" → calls keep working.\n\n  \
             Issuer: {} (users: alice, bob)   Gateway metrics: {}metrics\n  Press Ctrl+C to stop.",
            state_dir.display(),
            demo.app_url,
            demo.issuer_url,
            demo.app_url,
        );
        jwtgate_http::server::shutdown_signal().await;
        demo.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
