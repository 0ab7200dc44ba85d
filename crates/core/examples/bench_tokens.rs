//! Material for `bench/http.sh`: a fresh RS256 (2048-bit) key, its JWKS and `COUNT` distinct
//! valid Auth0-shaped access tokens (one per line), and the bare aws-lc-rs RS256 verify time
//! measured on this machine (the `t_sig` of the issue's target).
//!
//! Run: `cargo run --release -p jwtgate-core --example bench_tokens -- OUT_DIR [COUNT]`. Writes
//! `OUT_DIR/jwks.json`, `OUT_DIR/tokens.txt` and `OUT_DIR/token.txt` (the first token), then prints
//! `t_sig_us=<microseconds>` for one `ParsedPublicKey::verify_sig` with a pre-parsed key, the
//! median of 15 rounds of 2,000 checks of the tokens' own signatures.

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use jwtgate_core::internal::base64url;
use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://example.eu.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: bench_tokens OUT_DIR [COUNT]")?);
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    std::fs::create_dir_all(&out)?;

    let key = SigningKey::generate(Algorithm::RS256, "bench-rs256")?;
    let jwk = key.public_jwk();
    std::fs::write(out.join("jwks.json"), json!({ "keys": [jwk] }).to_string())?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let claims = json!({
            "iss": ISSUER,
            "sub": format!("auth0|bench-user-{i:05}"),
            "aud": [AUDIENCE, format!("{ISSUER}userinfo")],
            "iat": now,
            "exp": now + 4 * 3600,
            "azp": "Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF",
            "scope": "openid profile email",
            "permissions": ["read:users"],
            "jti": format!("bench-{i:05}"),
        });
        tokens.push(key.sign(&Map::new(), &claims)?);
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("tokens.txt"))?);
    for token in &tokens {
        writeln!(file, "{token}")?;
    }
    file.flush()?;
    std::fs::write(out.join("token.txt"), &tokens[0])?;

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
    let round = || -> Result<f64, Error> {
        const CHECKS: usize = 2000;
        let start = Instant::now();
        for i in 0..CHECKS {
            let (message, signature) = &inputs[i % inputs.len()];
            public
                .verify_sig(std::hint::black_box(message), signature)
                .map_err(|_| "signature did not verify")?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / CHECKS as f64)
    };
    round()?; // warm-up
    let mut rounds = (0..15)
        .map(|_| round())
        .collect::<Result<Vec<f64>, Error>>()?;
    rounds.sort_by(f64::total_cmp);
    println!("tokens={count} dir={}", out.display());
    println!("t_sig_us={:.3}", rounds[rounds.len() / 2]);
    Ok(())
}
