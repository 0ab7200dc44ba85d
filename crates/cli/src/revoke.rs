//! `jwtgate revoke`: writes, lists and removes revocation rules in Redis (every replica
//! following it enforces a rule within a second) or in a JSON-lines rules file.
//!
//! Every input is checked before anything is written: a malformed time, a missing `--exp`, or a
//! selector mixed with another is a usage error (exit 2) that leaves the store untouched. The
//! command returns once Redis has stored and published the rule.

use clap::{ArgGroup, Args};
use jwtgate_revocation::redis_store::RedisStore;
use jwtgate_revocation::rule::DEFAULT_KEEP_SECONDS;
use jwtgate_revocation::{parse_json_lines, parse_time, to_json_lines, Rule, RuleKey};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `revoke`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("store").required(true).args(["redis", "file"])))]
#[command(group(ArgGroup::new("what").required(true).args(["jti", "issuer", "client", "list", "import"])))]
pub struct RevokeArgs {
    /// Redis holding the rules: redis://[user[:password]@]host[:port][/db], or rediss:// (TLS).
    // This text is the option's `--help`: its brackets are optional URL parts, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, env = "JWTGATE_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// A JSON-lines rules file (the gateway's `[revocation] file`), rewritten atomically (a
    /// missing file is created).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Prefix of the Redis keys and channel (the gateway's `[revocation] key_prefix`).
    #[arg(long, default_value = "jwtgate:revocation:", value_name = "PREFIX")]
    key_prefix: String,
    /// Revoke the token with this `jti`...
    #[arg(long, value_name = "ID", conflicts_with_all = ["issuer", "client"])]
    jti: Option<String>,
    /// ...until its `exp` (Unix seconds or RFC 3339).
    #[arg(long, value_name = "TIME", requires = "jti")]
    exp: Option<String>,
    /// Revoke the tokens of this issuer's `--subject`...
    #[arg(
        long,
        value_name = "ISS",
        requires = "subject",
        conflicts_with = "client"
    )]
    issuer: Option<String>,
    /// ...the subject (`sub`).
    #[arg(long, value_name = "SUB", requires = "issuer")]
    subject: Option<String>,
    /// Revoke the tokens whose `client_id` or `azp` is this client.
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// With --subject or --client: revoke the tokens issued before this time (`iat` < TIME;
    /// Unix seconds or RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    before: Option<String>,
    /// With --subject or --client: keep the rule until this time (default 24 hours after
    /// --before, the longest usual access-token lifetime).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Remove the rule the selector names instead of adding it.
    #[arg(long, conflicts_with_all = ["exp", "before", "until"])]
    remove: bool,
    /// Print every rule as JSON lines (the rules-file format: a backup to `--import`).
    #[arg(long, conflicts_with = "remove")]
    list: bool,
    /// Add every rule of a JSON-lines file (a `--list` backup, or a rules file), e.g. to
    /// restore a Redis that lost its data.
    #[arg(long, value_name = "FILE", conflicts_with = "remove")]
    import: Option<PathBuf>,
}

/// What to do, with every input checked.
enum Action {
    Add(Vec<Rule>),
    Remove(RuleKey),
    List,
}

/// A usage error: exit 2, nothing written.
fn usage(message: impl Into<String>) -> Box<dyn std::error::Error> {
    message.into().into()
}

fn time(flag: &str, text: &str) -> Result<i64, Box<dyn std::error::Error>> {
    parse_time(text).map_err(|e| usage(format!("--{flag}: {e}")))
}

fn action(args: &RevokeArgs, now: i64) -> Result<Action, Box<dyn std::error::Error>> {
    if args.list {
        return Ok(Action::List);
    }
    if let Some(path) = &args.import {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--import {}: {e}", path.display())))?;
        let rules = parse_json_lines(&text)
            .map_err(|e| usage(format!("--import {}: {e}", path.display())))?;
        return Ok(Action::Add(
            rules.into_iter().filter(|r| r.is_live(now)).collect(),
        ));
    }
    if args.exp.is_some() && args.jti.is_none() {
        return Err(usage(
            "--exp goes with --jti; --subject and --client take --before/--until",
        ));
    }
    let key = match (&args.jti, &args.issuer, &args.subject, &args.client) {
        (Some(jti), _, _, _) => RuleKey::Jti { jti: jti.clone() },
        (None, Some(iss), Some(sub), _) => RuleKey::Subject {
            iss: iss.clone(),
            sub: sub.clone(),
        },
        (None, None, None, Some(client)) => RuleKey::Client {
            client: client.clone(),
        },
        _ => return Err(usage("give --jti, --issuer with --subject, or --client")),
    };
    if args.remove {
        return Ok(Action::Remove(key));
    }
    let rule = match key {
        RuleKey::Jti { jti } => {
            if args.before.is_some() || args.until.is_some() {
                return Err(usage(
                    "--jti takes --exp (the token's exp), not --before/--until",
                ));
            }
            let exp = args.exp.as_deref().ok_or_else(|| {
                usage("--jti needs --exp, the token's exp: the rule is kept until then")
            })?;
            Rule::jti(jti, time("exp", exp)?)
        }
        RuleKey::Subject { iss, sub } => {
            let (before, until) = window(args, now)?;
            Rule::subject(iss, sub, before, until)
        }
        RuleKey::Client { client } => {
            let (before, until) = window(args, now)?;
            Rule::client(client, before, until)
        }
    }
    .map_err(|e| usage(e.to_string()))?;
    if !rule.is_live(now) {
        return Err(usage(format!(
            "the rule ({rule}) would already have expired: nothing to revoke"
        )));
    }
    Ok(Action::Add(vec![rule]))
}

fn window(args: &RevokeArgs, now: i64) -> Result<(i64, i64), Box<dyn std::error::Error>> {
    let before = match &args.before {
        Some(text) => time("before", text)?,
        None => now,
    };
    let until = match &args.until {
        Some(text) => time("until", text)?,
        None => before.saturating_add(DEFAULT_KEEP_SECONDS),
    };
    Ok((before, until))
}

/// Runs `revoke`: exit 0 done, 2 for bad input (nothing written) or an unreachable store.
pub fn run(args: &RevokeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let now = jwtgate_revocation::unix_now();
    let action = action(args, now)?;
    match (&args.redis, &args.file) {
        (Some(url), _) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(in_redis(url, &args.key_prefix, action, now))
        }
        (None, Some(path)) => in_file(path, action, now),
        (None, None) => Err(usage("give --redis URL or --file FILE")),
    }
}

async fn in_redis(
    url: &str,
    prefix: &str,
    action: Action,
    now: i64,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut store = RedisStore::connect(url, prefix).await?;
    match action {
        Action::List => print!("{}", to_json_lines(&store.list().await?)),
        Action::Add(rules) => {
            for rule in &rules {
                store.add(rule, now).await?;
                println!("{}", rule.to_json_line());
            }
            eprintln!(
                "jwtgate: revoked ({} rule(s) stored and published)",
                rules.len()
            );
        }
        Action::Remove(key) => {
            let removed = store.remove(&key).await?;
            report_removal(&key, removed);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_removal(key: &RuleKey, removed: bool) {
    if removed {
        eprintln!("jwtgate: removed the rule for {key}");
    } else {
        eprintln!("jwtgate: there was no rule for {key}");
    }
}

fn in_file(path: &Path, action: Action, now: i64) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match action {
        Action::List => {
            let rules = match jwtgate_revocation::file::load(path) {
                Ok(rules) => rules.rules(),
                Err(jwtgate_revocation::file::FileError::Read { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound =>
                {
                    Vec::new()
                }
                Err(error) => return Err(error.into()),
            };
            print!(
                "{}",
                to_json_lines(rules.iter().filter(|rule| rule.is_live(now)))
            );
        }
        Action::Add(rules) => {
            jwtgate_revocation::file::update(path, now, |set| {
                for rule in &rules {
                    set.insert(rule);
                }
            })?;
            for rule in &rules {
                println!("{}", rule.to_json_line());
            }
        }
        Action::Remove(key) => {
            let mut removed = false;
            jwtgate_revocation::file::update(path, now, |set| removed = set.remove(&key))?;
            report_removal(&key, removed);
        }
    }
    Ok(ExitCode::SUCCESS)
}
