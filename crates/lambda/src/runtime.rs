//! The Lambda process: the init phase (configuration, keys), then `lambda_runtime`'s loop over
//! the Runtime API (`AWS_LAMBDA_RUNTIME_API`) with one [`Authorizer`] shared by every
//! invocation, so keys and verified tokens stay cached while the process is warm.
//!
//! A configuration that cannot be used is reported to the Runtime API's
//! `/2018-06-01/runtime/init/error` and logged, and the process exits with status 1: Lambda then
//! shows the message for the failed init instead of timing out invocations.

use crate::authorizer::Authorizer;
use crate::config::{LambdaConfig, Overrides};
use http::{Method, Request, Uri};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::PooledClient;
use serde_json::value::RawValue;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The environment Lambda sets for every function, which `lambda_runtime` requires.
const LAMBDA_VARIABLES: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Posts an init failure to `/2018-06-01/runtime/init/error` of the Runtime API at `api`
/// (`host:port`, or a base URL as `cargo lambda watch` gives it).
pub async fn report_init_error(api: &str, error_type: &str, message: &str) -> Result<(), String> {
    let base = if api.contains("://") {
        api.to_owned()
    } else {
        format!("http://{api}")
    };
    let base: Uri = base
        .parse()
        .map_err(|e| format!("AWS_LAMBDA_RUNTIME_API {api:?} is not host:port: {e}"))?;
    let client = PooledClient::builder().with_endpoint(base).build();
    let diagnostic = Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message.to_owned(),
    };
    let body = serde_json::to_vec(&diagnostic).map_err(|e| e.to_string())?;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = client.call(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered {}", response.status()))
    }
}

/// Everything the init phase produced.
struct Ready {
    authorizer: Arc<Authorizer>,
}

/// Loads the configuration and the keys. `Err` is the message for `/init/error`.
async fn init(overrides: &Overrides, file: Option<&Path>) -> Result<Ready, String> {
    for variable in LAMBDA_VARIABLES {
        if std::env::var_os(variable).is_none() {
            return Err(format!(
                "{variable} is not set: the Lambda environment is incomplete"
            ));
        }
    }
    let (config, authorizer) = overrides.load(file).map_err(|e| e.to_string())?;
    for failure in authorizer.prepare_keys(config.lambda.prefetch).await {
        if failure.fatal {
            return Err(format!(
                "cannot load keys from {}: {}",
                failure.source, failure.error
            ));
        }
        tracing::warn!(source = %failure.source, error = %failure.error, "key prefetch failed; the keys will be fetched on first use");
    }
    if let Some(revocation) = authorizer.engine().revocation() {
        // Follows the source while the function runs (between invocations Lambda freezes it; a
        // Redis follower reconnects and resyncs when thawed).
        jwtgate_revocation::follow::start(revocation);
        if let Err(why) = revocation.readiness() {
            tracing::warn!(%why, "deciding without synced revocation rules");
        }
    }
    log_ready(&config);
    Ok(Ready {
        authorizer: Arc::new(authorizer),
    })
}

fn log_ready(config: &LambdaConfig) {
    let issuers: Vec<&str> = config.issuers.iter().map(|i| i.issuer.as_str()).collect();
    tracing::info!(
        issuers = ?issuers,
        routes = config.routes.len(),
        policy_resource = ?config.effective_policy_resource(),
        http_api_response = ?config.lambda.http_api_response,
        "jwtgate authorizer ready"
    );
    if !config.routes.is_empty() {
        tracing::warn!("per-route rules are configured: key API Gateway's authorizer cache on the route too (identity sources with the method and path, or $context.routeKey), or set the result TTL to 0; see docs/aws-lambda.md");
    }
}

/// Logs to standard output (CloudWatch), as Lambda's advanced logging controls ask:
/// `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines, `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) the level
/// (default INFO). No timestamps (Lambda adds them) and no colours unless on a terminal.
fn init_logging() {
    use lambda_runtime::tracing::subscriber::filter::LevelFilter;
    use std::io::IsTerminal;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|text| text.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stdout().is_terminal())
        .with_max_level(level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the authorizer until the Runtime API goes away. Returns the process exit status:
/// 1 when the init phase failed (reported to `/init/error`) or the runtime stopped with an
/// error, 2 when not running under a Lambda Runtime API at all.
pub fn run(overrides: &Overrides, file: Option<&Path>) -> ExitCode {
    init_logging();
    let Some(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("jwtgate: error: AWS_LAMBDA_RUNTIME_API is not set: `jwtgate lambda` runs inside AWS Lambda (or under `cargo lambda watch`); use `jwtgate lambda --check` to validate the configuration");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("jwtgate: error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let ready = match init(overrides, file).await {
            Ok(ready) => ready,
            Err(message) => {
                tracing::error!(error = %message, "init failed: invalid configuration");
                if let Err(report) =
                    report_init_error(&api, "jwtgate.ConfigurationError", &message).await
                {
                    tracing::error!(error = %report, "could not report the init error");
                }
                return ExitCode::from(1);
            }
        };
        let authorizer = ready.authorizer;
        // The event stays the invocation's JSON text: the authorizer reads only the fields it
        // needs, in one pass, and its answer serialises straight to the response body.
        let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| {
            let authorizer = authorizer.clone();
            async move {
                authorizer
                    .answer(event.payload.get().as_bytes(), unix_now())
                    .await
            }
        });
        match lambda_runtime::run(handler).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "the Lambda runtime stopped");
                ExitCode::from(1)
            }
        }
    })
}
