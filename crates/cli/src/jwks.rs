//! `jwtgate jwks`: show an issuer's key set as jwtgate sees it — every key with its type, size,
//! algorithm and use, whether it is usable and why not, and the cache headers of the response.

use crate::config::{block_on, ConfigError};
use clap::Args;
use jwtgate_core::internal::der::certificate_info;
use jwtgate_core::KeySet;
use jwtgate_keys::{CacheSettings, FetchError, Fetcher};
use serde_json::{json, Value};
use std::process::ExitCode;

/// Inputs of `jwks`.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// An issuer (keys found by discovery), a JWKS URL, or a JWKS file.
    #[arg(value_name = "ISSUER_OR_URL")]
    target: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Listing {
    origin: String,
    cache_control: Option<String>,
    keys: KeySet,
    document: Value,
}

fn fetch(target: &str) -> Result<Listing, ConfigError> {
    let path = std::path::Path::new(target);
    if !target.contains("://") && path.exists() {
        let body = std::fs::read(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let keys = KeySet::from_json(&body).map_err(|error| ConfigError::Jwks {
            path: path.to_owned(),
            error,
        })?;
        return Ok(Listing {
            origin: path.display().to_string(),
            cache_control: None,
            keys,
            document: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
    }
    let settings = CacheSettings::default();
    let fetcher = Fetcher::new(&settings)?;
    let url = jwtgate_keys::parse_url(target, settings.allow_insecure_http)?;
    block_on(async {
        // A JWKS URL answers with a key set; anything else is taken to be an issuer.
        let fetched = match fetcher.fetch_jwks(&url).await {
            Ok(fetched) => (fetched, url),
            Err(FetchError::Status { .. } | FetchError::NotJwks { .. }) => {
                let jwks_uri = fetcher.discover(target).await?;
                (fetcher.fetch_jwks(&jwks_uri).await?, jwks_uri)
            }
            Err(other) => return Err(ConfigError::from(other)),
        };
        let (fetched, origin) = fetched;
        Ok(Listing {
            origin: origin.to_string(),
            cache_control: fetched.cache_control,
            document: serde_json::from_slice(&fetched.body).unwrap_or(Value::Null),
            keys: fetched.keys,
        })
    })?
}

fn describe_entry(index: usize, entry: &Value, keys: &KeySet) -> Value {
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
    let certificate = entry
        .get("x5c")
        .and_then(|c| c.get(0))
        .and_then(Value::as_str)
        .and_then(jwtgate_core::internal::base64url::decode_standard)
        .and_then(|der| certificate_info(&der).ok());
    let skipped = keys.skipped().iter().find(|s| s.index == index);
    let usable_index = index - keys.skipped().iter().filter(|s| s.index < index).count();
    let size = match skipped {
        None => keys
            .keys()
            .get(usable_index)
            .map(|k| k.key().kind().describe()),
        Some(_) => None,
    };
    json!({
        "kid": field("kid"),
        "kty": field("kty"),
        "alg": field("alg"),
        "use": field("use"),
        "key": size,
        "usable": skipped.is_none(),
        "skipped": skipped.map(|s| s.reason.to_string()),
        "x5c_subject": certificate.as_ref().and_then(|c| c.subject_cn.clone()),
        "x5c_not_after": certificate.as_ref().and_then(|c| c.not_after.clone()),
    })
}

/// Runs `jwtgate jwks`.
pub fn run(args: &JwksArgs) -> Result<ExitCode, ConfigError> {
    let listing = fetch(&args.target)?;
    let entries: Vec<Value> = match listing.document.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.clone(),
        None => vec![listing.document.clone()],
    };
    let described: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| describe_entry(i, entry, &listing.keys))
        .collect();
    if args.json {
        println!(
            "{}",
            json!({"source": listing.origin, "cache_control": listing.cache_control, "keys": described})
        );
    } else {
        println!("source:        {}", listing.origin);
        println!(
            "cache-control: {}",
            listing.cache_control.as_deref().unwrap_or("(none)")
        );
        println!(
            "{} keys, {} usable\n",
            described.len(),
            listing.keys.keys().len()
        );
        for key in &described {
            let text = |name: &str| key[name].as_str().unwrap_or("-").to_owned();
            println!(
                "kid {:<28} kty {:<4} alg {:<6} use {:<4} {}",
                text("kid"),
                text("kty"),
                text("alg"),
                text("use"),
                key["key"].as_str().unwrap_or("")
            );
            if let Some(reason) = key["skipped"].as_str() {
                println!("    skipped: {reason}");
            }
            if let Some(subject) = key["x5c_subject"].as_str() {
                println!(
                    "    x5c: subject CN={subject}, not after {}",
                    text("x5c_not_after")
                );
            }
        }
    }
    Ok(if listing.keys.keys().is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
