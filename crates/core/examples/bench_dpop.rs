//! Material for the DPoP rows of `bench/http.sh`: an RS256 issuer key and its JWKS, an access token
//! bound to an ES256 client key (`cnf.jkt`) and the same token without the binding (the bearer
//! baseline), and ES256 DPoP proofs as a client sends them — a fresh `jti` per request, for one
//! method and URI — one per line.
//!
//! Run: `cargo run --release -p jwtgate-core --example bench_dpop -- OUT_DIR URI WARM COUNT`.
//! Writes `OUT_DIR/dpop-jwks.json`, `OUT_DIR/dpop-token.txt`, `OUT_DIR/bearer-token.txt`,
//! `OUT_DIR/proofs-warm.txt` (`WARM` proofs for the warm-up run) and `OUT_DIR/proofs.txt` (`COUNT`
//! proofs for the measured run; never the same `jti` twice, so none is a replay). Proofs carry
//! `iat` = now: use them within the gateway's `iat_window` (60 s by default).

use jwtgate_core::dpop::{key_thumbprint, make_proof, ProofClaims};
use jwtgate_core::{Algorithm, SigningKey};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://example.eu.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `count` proofs with `jti`s `{prefix}-0`, `{prefix}-1`, …, signed on every core.
fn proofs(
    key: &SigningKey,
    token: &str,
    uri: &str,
    now: i64,
    prefix: &str,
    count: usize,
) -> Result<Vec<String>, Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sign = |i: usize| -> Result<String, Error> {
        let jti = format!("{prefix}-{i}");
        let claims = ProofClaims {
            method: "GET",
            uri,
            access_token: Some(token),
            iat: now,
            jti: &jti,
            nonce: None,
        };
        Ok(make_proof(key, &claims)?)
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || (t..count).step_by(threads).map(sign).collect()))
            .collect();
        let mut all = Vec::with_capacity(count);
        for handle in handles {
            let part: Result<Vec<String>, Error> = handle
                .join()
                .map_err(|_| Error::from("a signing thread panicked"))?;
            all.extend(part?);
        }
        Ok(all)
    })
}

fn write_lines(path: &Path, lines: &[String]) -> Result<(), Error> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for line in lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, uri, warm, count] = args.as_slice() else {
        return Err("usage: bench_dpop OUT_DIR URI WARM COUNT".into());
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let issuer_key = SigningKey::generate(Algorithm::RS256, "bench-dpop-rs256")?;
    let client_key = SigningKey::generate(Algorithm::ES256, "client")?;
    let claims = |bound: bool| -> Value {
        let mut claims = json!({
            "iss": ISSUER,
            "sub": "auth0|bench-user",
            "aud": [AUDIENCE, format!("{ISSUER}userinfo")],
            "iat": now,
            "exp": now + 3600,
            "azp": "Xq3VpMLD8Wm2kA7nRzT5bC0gYhJ4sEuF",
            "scope": "openid profile email",
            "permissions": ["read:users"],
            "jti": "bench-dpop",
        });
        if bound {
            claims["cnf"] = json!({ "jkt": key_thumbprint(&client_key).unwrap_or_default() });
        }
        claims
    };
    let bound = issuer_key.sign(&Map::new(), &claims(true))?;
    let bearer = issuer_key.sign(&Map::new(), &claims(false))?;
    std::fs::write(
        out.join("dpop-jwks.json"),
        json!({ "keys": [issuer_key.public_jwk()] }).to_string(),
    )?;
    std::fs::write(out.join("dpop-token.txt"), &bound)?;
    std::fs::write(out.join("bearer-token.txt"), &bearer)?;
    let warm_proofs = proofs(&client_key, &bound, uri, now, "warm", warm.parse()?)?;
    write_lines(&out.join("proofs-warm.txt"), &warm_proofs)?;
    let measured = proofs(&client_key, &bound, uri, now, "run", count.parse()?)?;
    write_lines(&out.join("proofs.txt"), &measured)?;
    Ok(())
}
