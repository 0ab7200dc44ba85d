//! Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf` carries `x5t#S256` is
//! accepted only from a client that presented the certificate it names.
//!
//! The certificate comes from one of two places, and only when configured
//! ([`CertificateSource`]):
//!
//! - **the TLS listener** when jwtgate terminates TLS and asks for client certificates: the front
//!   end puts the verified certificate's [`CertificateThumbprint`] in
//!   [`crate::RequestView::client_certificate`];
//! - **a header set by a trusted fronting proxy** ([`ClientCertHeader`]): nginx
//!   `$ssl_client_escaped_cert` (URL-encoded PEM), Envoy `x-forwarded-client-cert` (`Hash=` the
//!   hex SHA-256 of the DER, or `Cert=` URL-encoded PEM), Traefik `passTLSClientCert`
//!   (base64 DER without PEM armor). When a header is configured it is the only source: the
//!   peer of the listener is then the proxy, not the client.
//!
//! The comparison of thumbprints is constant-time. Without a configured source a
//! certificate-bound token is refused: accepting it as a bearer token would undo its binding.

use crate::request_headers::RequestHeaders;
use http::HeaderName;
use jwtgate_core::internal::base64url;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The SHA-256 of a certificate's DER encoding (`x5t#S256`, RFC 8705 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateThumbprint([u8; 32]);

impl fmt::Debug for CertificateThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateThumbprint({})", self.to_base64url())
    }
}

impl CertificateThumbprint {
    /// The thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> CertificateThumbprint {
        CertificateThumbprint(jwtgate_core::crypto::sha256(der))
    }

    /// The thumbprint of exactly one PEM `CERTIFICATE` block (nothing but whitespace around it,
    /// as API Gateway's mutual TLS hands the client certificate to a Lambda authorizer); `None`
    /// for anything else.
    pub fn of_pem(pem: &str) -> Option<CertificateThumbprint> {
        pem_der(pem).map(|der| CertificateThumbprint::of_der(&der))
    }

    /// The thumbprint of the one certificate in a URL-encoded PEM (nginx
    /// `$ssl_client_escaped_cert`, Envoy's `source.certificate`); `None` when it is not exactly
    /// one PEM certificate.
    pub fn of_escaped_pem(text: &str) -> Option<CertificateThumbprint> {
        let pem = percent_decode(text.trim())?;
        Some(CertificateThumbprint::of_der(&pem_der(&pem)?))
    }

    /// A thumbprint given as its 32 bytes (a SHA-256 computed elsewhere).
    pub fn from_sha256(digest: [u8; 32]) -> CertificateThumbprint {
        CertificateThumbprint(digest)
    }

    /// The thumbprint as in `cnf["x5t#S256"]`: unpadded base64url.
    pub fn to_base64url(&self) -> String {
        base64url::encode(&self.0)
    }

    /// True when `x5t` (a token's `cnf["x5t#S256"]`) names this certificate; the bytes are
    /// compared in constant time.
    pub fn matches(&self, x5t: &str) -> bool {
        let Ok(claimed) = base64url::decode(x5t.as_bytes()) else {
            return false;
        };
        if claimed.len() != self.0.len() {
            return false;
        }
        let difference = claimed
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        difference == 0
    }
}

/// How a fronting proxy encodes the client certificate in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertFormat {
    /// URL-encoded PEM of the leaf certificate: nginx `$ssl_client_escaped_cert`.
    EscapedPem,
    /// Envoy's `x-forwarded-client-cert`: exactly one element (Envoy's `SANITIZE_SET`), whose
    /// `Hash` (hex SHA-256 of the DER) or `Cert` (URL-encoded PEM) names the certificate; with
    /// both they must agree.
    Xfcc,
    /// Base64 DER without PEM armor, certificates separated by `,`, the leaf first (optionally
    /// URL-encoded): Traefik `passTLSClientCert` with `pem = true`.
    Base64Der,
}

impl ClientCertFormat {
    /// The format's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCertFormat::EscapedPem => "escaped-pem",
            ClientCertFormat::Xfcc => "xfcc",
            ClientCertFormat::Base64Der => "base64-der",
        }
    }
}

/// A header name that cannot carry a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("client_cert_header {0:?} is not a valid header name")]
pub struct BadHeaderName(pub String);

/// The header a trusted fronting proxy sets to the client certificate, and its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertHeader {
    name: HeaderName,
    format: ClientCertFormat,
}

/// Why the client-certificate header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertHeaderError {
    /// The header appears more than once.
    #[error("the {0} header appears more than once")]
    Repeated(String),
    /// The header holds several certificates' elements where one is expected.
    #[error(
        "the {0} header names more than one client (the proxy must replace it, not append to it)"
    )]
    SeveralElements(String),
    /// The header is not in the configured format.
    #[error("the {name} header is not {format}: {why}")]
    Malformed {
        /// The header.
        name: String,
        /// The configured format.
        format: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

impl ClientCertHeader {
    /// The header `name` in `format`.
    pub fn new(name: &str, format: ClientCertFormat) -> Result<ClientCertHeader, BadHeaderName> {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| BadHeaderName(name.to_owned()))?;
        Ok(ClientCertHeader { name, format })
    }

    /// The header's name (removed from requests before they go upstream).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The header's format.
    pub fn format(&self) -> ClientCertFormat {
        self.format
    }

    /// The thumbprint of the certificate the header names: `Ok(None)` when the header is absent
    /// or empty (no client certificate), an error when it is repeated or malformed.
    pub fn thumbprint(
        &self,
        headers: RequestHeaders<'_>,
    ) -> Result<Option<CertificateThumbprint>, CertHeaderError> {
        let mut values = headers.get_all(&self.name);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(CertHeaderError::Repeated(self.name.to_string()));
        }
        let malformed = |why: &'static str| CertHeaderError::Malformed {
            name: self.name.to_string(),
            format: self.format.as_str(),
            why,
        };
        let text = crate::request_headers::text(value)
            .ok_or_else(|| malformed("not visible ASCII"))?
            .trim();
        if text.is_empty() {
            return Ok(None);
        }
        let thumbprint = match self.format {
            ClientCertFormat::EscapedPem => {
                let pem = percent_decode(text).ok_or_else(|| malformed("bad percent-encoding"))?;
                CertificateThumbprint::of_der(
                    &pem_der(&pem).ok_or_else(|| malformed("not one PEM certificate"))?,
                )
            }
            ClientCertFormat::Base64Der => {
                let decoded =
                    percent_decode(text).ok_or_else(|| malformed("bad percent-encoding"))?;
                let leaf = decoded.split(',').next().unwrap_or_default().trim();
                let der = base64url::decode_standard(leaf)
                    .filter(|der| der.first() == Some(&0x30))
                    .ok_or_else(|| malformed("not base64 DER"))?;
                CertificateThumbprint::of_der(&der)
            }
            ClientCertFormat::Xfcc => {
                return xfcc_thumbprint(text, &self.name, malformed).map(Some);
            }
        };
        Ok(Some(thumbprint))
    }
}

/// Reads one XFCC element: its `Hash` and `Cert`, which must agree when both are there.
fn xfcc_thumbprint(
    text: &str,
    name: &HeaderName,
    malformed: impl Fn(&'static str) -> CertHeaderError,
) -> Result<CertificateThumbprint, CertHeaderError> {
    let mut hash = None;
    let mut cert = None;
    for pair in split_unquoted(text, b';').ok_or_else(|| malformed("unbalanced quotes"))? {
        if split_unquoted(pair, b',').is_some_and(|parts| parts.len() > 1) {
            return Err(CertHeaderError::SeveralElements(name.to_string()));
        }
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("a part without '='"))?;
        let value = value.trim().trim_matches('"');
        if key.trim().eq_ignore_ascii_case("hash") {
            if hash.is_some() {
                return Err(malformed("two Hash parts"));
            }
            hash = Some(hex_sha256(value).ok_or_else(|| malformed("Hash is not 64 hex digits"))?);
        } else if key.trim().eq_ignore_ascii_case("cert") {
            if cert.is_some() {
                return Err(malformed("two Cert parts"));
            }
            let pem =
                percent_decode(value).ok_or_else(|| malformed("bad percent-encoding in Cert"))?;
            let der = pem_der(&pem).ok_or_else(|| malformed("Cert is not one PEM certificate"))?;
            cert = Some(CertificateThumbprint::of_der(&der));
        }
    }
    match (hash, cert) {
        (Some(hash), Some(cert)) if hash != cert => Err(malformed("Hash and Cert disagree")),
        (Some(thumbprint), _) | (None, Some(thumbprint)) => Ok(thumbprint),
        (None, None) => Err(malformed("neither Hash nor Cert")),
    }
}

/// Splits at `separator` outside double quotes (`\"` escapes a quote); `None` when a quote is
/// left open.
fn split_unquoted(text: &str, separator: u8) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b if b == separator && !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

fn hex_sha256(text: &str) -> Option<CertificateThumbprint> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *out = u8::try_from(high * 16 + low).ok()?;
    }
    Some(CertificateThumbprint(digest))
}

/// Strict percent-decoding (`%XX` only; `+` stays `+`, as in PEM's base64), to UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = char::from(*bytes.get(index + 1)?).to_digit(16)?;
            let low = char::from(*bytes.get(index + 2)?).to_digit(16)?;
            out.push(u8::try_from(high * 16 + low).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The DER of exactly one PEM `CERTIFICATE` block (nothing but whitespace around it).
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = pem.trim().strip_prefix(BEGIN)?.strip_suffix(END)?;
    if body.contains("-----") {
        return None;
    }
    let base64: String = body.split_ascii_whitespace().collect();
    base64url::decode_standard(&base64).filter(|der| der.first() == Some(&0x30))
}

/// Where the client certificate of a request comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CertificateSource {
    /// Nowhere: certificate-bound tokens are refused.
    #[default]
    None,
    /// The TLS listener's verified client certificate, or the one API Gateway's mutual TLS
    /// verified for a Lambda authorizer ([`crate::RequestView::client_certificate`]).
    Listener,
    /// A header set by a trusted fronting proxy.
    Header(ClientCertHeader),
    /// The certificate Envoy's gRPC check carries in `attributes.source.certificate` (Envoy
    /// terminated TLS with the client, `include_peer_certificate: true`): the gRPC front end
    /// puts its thumbprint in [`crate::RequestView::client_certificate`]; a request through
    /// another front end has none.
    ExtAuthzSource,
}

/// Why a certificate-bound token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateRefusal {
    /// No certificate source is configured.
    #[error("the token is certificate-bound (cnf x5t#S256) but this gateway is not configured to see client certificates ([server] client_ca or client_cert_header), so it cannot be accepted")]
    NotConfigured,
    /// The claim is not a 32-byte base64url thumbprint.
    #[error("the token's cnf x5t#S256 is not a base64url SHA-256 thumbprint")]
    BadClaim,
    /// The client presented no certificate.
    #[error("the token is certificate-bound (cnf x5t#S256) but the request came without a client certificate")]
    NoCertificate,
    /// The client's certificate is another one.
    #[error("the token is bound to another certificate than the client's (cnf x5t#S256 {claimed}, client certificate {presented})")]
    Mismatch {
        /// The token's `x5t#S256`.
        claimed: String,
        /// The presented certificate's thumbprint.
        presented: String,
    },
    /// The proxy's header could not be read.
    #[error("the token is certificate-bound but the client certificate is unreadable: {0}")]
    Header(CertHeaderError),
}

impl CertificateRefusal {
    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CertificateRefusal::NotConfigured => "mtls_not_configured",
            CertificateRefusal::BadClaim => "mtls_bad_claim",
            CertificateRefusal::NoCertificate => "mtls_no_certificate",
            CertificateRefusal::Mismatch { .. } => "mtls_mismatch",
            CertificateRefusal::Header(_) => "mtls_header_malformed",
        }
    }
}

impl CertificateSource {
    /// The header to remove from requests going upstream, when one is configured.
    pub fn header(&self) -> Option<&HeaderName> {
        match self {
            CertificateSource::Header(header) => Some(header.name()),
            CertificateSource::None
            | CertificateSource::Listener
            | CertificateSource::ExtAuthzSource => None,
        }
    }

    /// Checks that the request's client certificate is the one `x5t` (the token's
    /// `cnf["x5t#S256"]`) names.
    pub fn check(
        &self,
        x5t: &str,
        listener: Option<&CertificateThumbprint>,
        headers: RequestHeaders<'_>,
    ) -> Result<(), CertificateRefusal> {
        let presented = match self {
            CertificateSource::None => return Err(CertificateRefusal::NotConfigured),
            CertificateSource::Listener | CertificateSource::ExtAuthzSource => listener.copied(),
            CertificateSource::Header(header) => header
                .thumbprint(headers)
                .map_err(CertificateRefusal::Header)?,
        };
        if base64url::decode(x5t.as_bytes()).map_or(true, |bytes| bytes.len() != 32) {
            return Err(CertificateRefusal::BadClaim);
        }
        let presented = presented.ok_or(CertificateRefusal::NoCertificate)?;
        if presented.matches(x5t) {
            Ok(())
        } else {
            Err(CertificateRefusal::Mismatch {
                claimed: x5t.to_owned(),
                presented: presented.to_base64url(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_compare_by_value() {
        let print = CertificateThumbprint::of_der(b"\x30\x03abc");
        assert!(print.matches(&print.to_base64url()));
        let other = CertificateThumbprint::of_der(b"\x30\x03abd");
        assert!(!print.matches(&other.to_base64url()));
        assert!(!print.matches("short"));
        assert!(!print.matches("!!"));
    }

    #[test]
    fn splitting_respects_quotes() {
        assert_eq!(
            split_unquoted(r#"a=1;Subject="x;y,z";b=2"#, b';'),
            Some(vec!["a=1", r#"Subject="x;y,z""#, "b=2"])
        );
        assert_eq!(split_unquoted(r#"a="open"#, b';'), None);
    }

    #[test]
    fn an_escaped_pem_is_one_certificate() {
        let der = b"\x30\x03abc";
        let pem = "-----BEGIN CERTIFICATE-----\nMANhYmM=\n-----END CERTIFICATE-----\n";
        let escaped = pem.replace(' ', "%20").replace('\n', "%0A");
        assert_eq!(
            CertificateThumbprint::of_escaped_pem(&escaped),
            Some(CertificateThumbprint::of_der(der))
        );
        assert_eq!(
            CertificateThumbprint::of_escaped_pem(&format!("{escaped}{escaped}")),
            None
        );
        assert_eq!(CertificateThumbprint::of_escaped_pem("%zz"), None);
        assert_eq!(CertificateThumbprint::of_escaped_pem(""), None);
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b+c"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}
