//! Client certificates for mTLS tests, made with the `openssl` command (Debian's `openssl`): a
//! CA, and client certificates it issues (P-256 keys, `clientAuth`, valid two days); their
//! `x5t#S256` thumbprint and nginx's escaped form; and an HTTPS client (reqwest) that trusts
//! the gateway's test CA and presents one of them.

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

/// A client certificate `name` issued by the CA `ca` in `dir`, making the CA first when it is
/// not there yet: like [`make_client`], its key and certificate as one PEM and its DER.
pub fn client_certificate(dir: &Path, ca: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
    if !dir.join(format!("{ca}.crt")).exists() {
        make_ca(dir, ca);
    }
    make_client(dir, ca, name)
}

/// RFC 8705 `x5t#S256` of a certificate: the base64url SHA-256 of its DER, computed here
/// independently of the engine's own `CertificateThumbprint`.
pub fn x5t(der: &[u8]) -> String {
    jwtgate_core::internal::base64url::encode(&jwtgate_core::crypto::sha256(der))
}

/// A certificate as nginx's `$ssl_client_escaped_cert` passes it: every byte of the PEM that is
/// not an ASCII letter or digit percent-encoded (`%2D`, `%0A`, …).
pub fn escaped_pem(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The HTTP gateway's test TLS material (`crates/http/tests/data`): `ca.crt.pem`, and the
/// `localhost.crt.pem`/`localhost.key.pem` server certificate it issued for `localhost` and
/// `127.0.0.1`.
pub fn tls_data() -> std::path::PathBuf {
    crate::workspace_root().join("crates/http/tests/data")
}

/// An HTTPS client trusting the test CA of [`tls_data`], presenting `identity` (a key and
/// certificate as one PEM, as [`make_client`] returns) when given.
pub fn tls_client(identity: Option<&[u8]>) -> reqwest::Client {
    let ca = std::fs::read(tls_data().join("ca.crt.pem")).expect("the test CA certificate");
    let root = reqwest::Certificate::from_pem(&ca).expect("the test CA is a PEM certificate");
    let mut builder = reqwest::Client::builder().add_root_certificate(root);
    if let Some(identity) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(identity).expect("a PEM key and certificate"));
    }
    builder.build().expect("an HTTPS client")
}

/// `issuer`'s access token bound to the certificate `der` (`cnf.x5t#S256`, RFC 8705).
pub fn bound_token(issuer: &crate::Issuer, der: &[u8]) -> String {
    issuer.token(serde_json::json!({"cnf": {"x5t#S256": x5t(der)}}))
}
