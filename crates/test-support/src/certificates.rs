//! Client certificates for mTLS tests, made with the `openssl` command (Debian's `openssl`): a
//! CA, and client certificates it issues (P-256 keys, `clientAuth`, valid two days).

use std::path::Path;
use std::process::Command;

/// Runs `openssl` in `dir`, failing with an install hint when it is missing.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed ({e}): apt-get install -y openssl"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA named `ca` in `dir`.
pub fn make_ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
}

/// A client certificate `name` issued by `ca`: returns its key and certificate (PEM, for
/// reqwest) and the certificate's DER.
pub fn make_client(dir: &Path, ca: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
    )
    .expect("write client.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            "client.ext",
        ],
    );
    let cert =
        std::fs::read(dir.join(format!("{name}.crt"))).expect("the certificate openssl wrote");
    let mut identity =
        std::fs::read(dir.join(format!("{name}.key"))).expect("the key openssl wrote");
    identity.extend_from_slice(&cert);
    (identity, pem_der(&cert))
}

/// The DER of a PEM certificate.
pub fn pem_der(pem: &[u8]) -> Vec<u8> {
    let body: String = String::from_utf8_lossy(pem)
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    jwtgate_core::internal::base64url::decode_standard(&body).expect("a PEM certificate")
}
