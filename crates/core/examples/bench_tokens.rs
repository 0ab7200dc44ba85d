//! Material for `bench/http.sh`: a fresh RS256 (2048-bit) key, its JWKS and `COUNT` distinct
//! valid Auth0-shaped access tokens (one per line), and the bare aws-lc-rs RS256 verify time
//! measured on this machine (the `t_sig` of the issue's target).
//!
//! Run: `cargo run --release -p jwtgate-core --example bench_tokens -- OUT_DIR [COUNT]`. Writes
//! `OUT_DIR/jwks.json`, `OUT_DIR/tokens.txt` and `OUT_DIR/token.txt` (the first token), then prints
//! `t_sig_us=<microseconds>` for one `ParsedPublicKey::verify_sig` with a pre-parsed key, the
//! median of 15 rounds of 2,000 checks of the tokens' own signatures, and `t_sig_cold_us`: the
//! same check when 1 MiB of other memory (this machine's L2 per core) is touched between
//! checks, as a server's network stack and HTTP code do between two verifications (the
//! touching is not timed). The difference is what a cache-cold signature check costs.
//!
//! Signing 200,000 RS256 tokens takes minutes, so a set is kept: when `OUT_DIR` already holds at
//! least `COUNT` tokens valid for another 2 hours (`OUT_DIR/expires`), they are reused; otherwise
//! a new key signs new tokens (valid 24 hours) on every core.

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use jwtgate_core::internal::base64url;
use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://example.eu.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The kept tokens, when there are at least `count` valid for another 2 hours.
fn kept_tokens(out: &Path, count: usize, now: u64) -> Option<Vec<String>> {
    let expires: u64 = std::fs::read_to_string(out.join("expires"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if expires < now + 2 * 3600 || !out.join("jwks.json").exists() {
        return None;
    }
    let text = std::fs::read_to_string(out.join("tokens.txt")).ok()?;
    let tokens: Vec<String> = text.lines().map(str::to_owned).collect();
    (tokens.len() >= count).then_some(tokens)
}

/// A new key and `count` tokens signed with it, on every core; written to `out`.
fn new_tokens(out: &Path, count: usize, now: u64) -> Result<Vec<String>, Error> {
    let key = SigningKey::generate(Algorithm::RS256, "bench-rs256")?;
    let exp = now + 24 * 3600;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sign = |i: usize| -> Result<String, Error> {
        let claims = json!({
            "iss": ISSUER,
            "sub": format!("auth0|bench-user-{i:06}"),
            "aud": [AUDIENCE, format!("{ISSUER}userinfo")],
            "iat": now,
            "exp": exp,
            "azp": "Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF",
            "scope": "openid profile email",
            "permissions": ["read:users"],
            "jti": format!("bench-{i:06}"),
        });
        Ok(key.sign(&Map::new(), &claims)?)
    };
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || (t..count).step_by(threads).map(sign).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::from("a signing thread panicked"))?
            })
            .collect::<Result<Vec<Vec<String>>, Error>>()
    })?;
    let mut tokens = vec![String::new(); count];
    for (t, part) in parts.into_iter().enumerate() {
        for (j, token) in part.into_iter().enumerate() {
            tokens[t + j * threads] = token;
        }
    }
    std::fs::write(
        out.join("jwks.json"),
        json!({ "keys": [key.public_jwk()] }).to_string(),
    )?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("tokens.txt"))?);
    for token in &tokens {
        writeln!(file, "{token}")?;
    }
    file.flush()?;
    std::fs::write(out.join("token.txt"), &tokens[0])?;
    std::fs::write(out.join("expires"), exp.to_string())?;
    Ok(tokens)
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: bench_tokens OUT_DIR [COUNT]")?);
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    std::fs::create_dir_all(&out)?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let tokens = match kept_tokens(&out, count, now) {
        Some(tokens) => tokens,
        None => new_tokens(&out, count, now)?,
    };
    let jwks: Value = serde_json::from_slice(&std::fs::read(out.join("jwks.json"))?)?;
    let jwk = jwks["keys"][0].clone();

    // The bare signature check: aws-lc-rs with the key parsed once, no JWS or JSON work.
    let component = |name: &str| -> Result<Vec<u8>, Error> {
        let text = jwk.get(name).and_then(Value::as_str).ok_or("JWK member")?;
        Ok(base64url::decode(text.as_bytes())?)
    };
    let (n, e) = (component("n")?, component("e")?);
    let public = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| "aws-lc-rs refused the key")?;
    let mut inputs = Vec::new();
    for token in tokens.iter().take(64) {
        let (signing_input, signature) = token.rsplit_once('.').ok_or("token")?;
        inputs.push((
            signing_input.as_bytes().to_vec(),
            base64url::decode(signature.as_bytes())?,
        ));
    }
    // Memory touched between cold checks: one write per cache line.
    let mut other = vec![0u8; 1 << 20];
    let mut round = |cold: bool| -> Result<f64, Error> {
        const CHECKS: usize = 2000;
        let mut elapsed = std::time::Duration::ZERO;
        for i in 0..CHECKS {
            if cold {
                for line in other.iter_mut().step_by(64) {
                    *line = line.wrapping_add(1);
                }
                std::hint::black_box(&other);
            }
            let (message, signature) = &inputs[i % inputs.len()];
            let start = Instant::now();
            public
                .verify_sig(std::hint::black_box(message), signature)
                .map_err(|_| "signature did not verify")?;
            elapsed += start.elapsed();
        }
        Ok(elapsed.as_secs_f64() * 1e6 / CHECKS as f64)
    };
    let mut median = |cold: bool| -> Result<f64, Error> {
        round(cold)?; // warm-up
        let mut rounds = (0..15)
            .map(|_| round(cold))
            .collect::<Result<Vec<f64>, Error>>()?;
        rounds.sort_by(f64::total_cmp);
        Ok(rounds[rounds.len() / 2])
    };
    let (hot, cold) = (median(false)?, median(true)?);
    println!("tokens={count} dir={}", out.display());
    println!("t_sig_us={hot:.3}");
    println!("t_sig_cold_us={cold:.3}");
    Ok(())
}
