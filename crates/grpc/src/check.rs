//! One `Check` of Envoy's external authorization protocol: the original request read from the
//! `CheckRequest` into a [`RequestView`], the engine's [`Outcome`] rendered as a `CheckResponse`.
//!
//! Nothing is decided here. The rendering follows what Envoy does with an answer:
//!
//! * **Allow** is gRPC `OK` with `ok_response.headers` carrying the identity headers, each with
//!   `OVERWRITE_IF_EXISTS_OR_ADD` (a client's copy of the same name is replaced, never joined),
//!   and `headers_to_remove` listing what the client sent that the upstream must not read: other
//!   spellings of the identity headers (`x_auth_subject`, or `x-auth-subject` when this request
//!   sets no subject), method and path overrides, underscore spellings of the forwarding headers,
//!   and the token (`authorization`, the token cookie, the token query parameter) unless
//!   `forward_token`. Envoy applies `headers_to_remove` *after* the headers it sets, so a header
//!   this answer sets is never listed (it would delete the verified value).
//! * **Deny** is `UNAUTHENTICATED` (401), `PERMISSION_DENIED` (403) or `INVALID_ARGUMENT` (400)
//!   with `denied_response` carrying the HTTP gateway's own answer for the [`Denial`]
//!   ([`jwtgate_http::answer::denial_response`]: status, `WWW-Authenticate`, content type,
//!   `Cache-Control`) and the same JSON body.
//! * A `CheckRequest` without `attributes.request.http`, or with a header that is not HTTP, is a
//!   refusal with its reason, never a gRPC error: Envoy's `failure_mode_allow` turns errors, not
//!   refusals, into an allow.
//! * The verified token's `sub`, `iss` and scopes go into `dynamic_metadata` (Envoy stores them
//!   under the `envoy.filters.http.ext_authz` namespace for RBAC, Lua and access logs).

use crate::answer::{AllowAnswer, Claims};
use crate::codec::CheckInput;
use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue as PbHeader, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, DeniedHttpResponse};
use envoy_types::pb::google::rpc::Status;
use http::{HeaderName, HeaderValue};
use jwtgate_engine::mtls::{CertificateSource, CertificateThumbprint};
use jwtgate_engine::request_headers::{self, HeaderFields};
use jwtgate_engine::{
    bearer, hygiene, unix_now, Allow, Denial, Engine, FrontEnd, Inspection, Outcome, RequestBody,
    RequestHeaders, RequestView, TokenInput,
};
use std::borrow::Cow;

/// gRPC status codes of `google.rpc.Code` used in answers.
pub(crate) mod code {
    /// The request may pass.
    pub const OK: i32 = 0;
    /// A 400 refusal.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// A 403 refusal.
    pub const PERMISSION_DENIED: i32 = 7;
    /// A 401 refusal.
    pub const UNAUTHENTICATED: i32 = 16;
}

/// How allowed requests are rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Leave the token (`Authorization`, cookie, query parameter) in the request Envoy forwards
    /// (default: removed; the upstream gets the identity headers).
    pub forward_token: bool,
    /// Leave the verified token's `sub`, `iss` and scopes out of the answer's
    /// `dynamic_metadata` (default: sent). Envoy parses and stores the metadata on every
    /// allowed check — about 8.5 % of its CPU for an ext_authz check (docs/envoy.md) — so a
    /// deployment whose RBAC or Lua filters do not read it saves that.
    pub omit_claims_metadata: bool,
}

impl CheckOptions {
    /// The options `[server]` sets (`grpc_forward_token`, `grpc_claims_metadata`).
    pub fn of(server: &jwtgate_http::server::ServerOptions) -> CheckOptions {
        CheckOptions {
            forward_token: server.grpc_forward_token,
            omit_claims_metadata: !server.grpc_claims_metadata,
        }
    }
}

/// The original request of a `CheckRequest`, as the engine reads it.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    /// The method (`GET`, …).
    pub method: &'a str,
    /// The request target as sent: path and query.
    pub target: &'a str,
    /// The request headers as received (pseudo-headers such as `:path` left out), borrowed
    /// from the check: the engine reads them as they are, no `HeaderMap` built.
    pub headers: HeaderFields<'a>,
    /// `scheme://host` of the URI the client used, from the check's `scheme` and `host`; only
    /// when the request carries a `DPoP` header (nothing else reads it).
    pub origin: Option<String>,
    /// The request body as Envoy sent it (`with_request_body` with `pack_as_bytes`), for an MCP
    /// route's inspection.
    pub body: CheckBody<'a>,
}

/// What a check carries of the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckBody<'a> {
    /// Nothing (`with_request_body` off), or only the UTF-8 `body` string, whose bytes may differ
    /// from those Envoy forwards: not inspectable.
    Absent,
    /// The whole body (`raw_body`).
    Whole(&'a [u8]),
    /// The start of a longer body (`allow_partial_message`, marked by Envoy's
    /// `x-envoy-auth-partial-body: true`).
    Partial,
}

impl CheckBody<'_> {
    /// The engine's view of it.
    pub fn view(&self) -> RequestBody<'_> {
        match self {
            CheckBody::Absent => RequestBody::Unavailable,
            CheckBody::Whole(bytes) => RequestBody::Read(bytes),
            CheckBody::Partial => RequestBody::TooLarge,
        }
    }
}

/// Why a `CheckRequest` does not describe an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// No `attributes.request.http`: not an HTTP filter's check (or a broken client).
    #[error("the check request has no attributes.request.http: jwtgate authorises HTTP requests (configure Envoy's HTTP ext_authz filter, not the network filter)")]
    NoHttpRequest,
    /// A header name or value that is not valid HTTP.
    #[error("the request header {0:?} is not a valid HTTP header")]
    BadHeader(String),
}

/// Envoy's mark of a body cut at `max_request_bytes` (`allow_partial_message`).
const PARTIAL_BODY: &[u8] = b"x-envoy-auth-partial-body";

/// Reads the original request from `check`: method, path with query, and headers from the
/// `headers` map or, when Envoy sends raw headers (`encode_raw_headers`), from `header_map`
/// (both decoded into [`CheckInput::headers`]; names given twice are kept twice; names are
/// lower-cased by the decoding), checked as the HTTP gateway's `HeaderMap` would check them.
pub fn read_request(check: &CheckInput) -> Result<Original<'_>, Unreadable> {
    let http = check.http.as_ref().ok_or(Unreadable::NoHttpRequest)?;
    // Every entry is kept, never merged: two entries of one name (`authorization` twice) stay
    // two headers, which the engine refuses as it does over HTTP, instead of one silently
    // winning. Pseudo-headers (`:path`, …) are Envoy's own. The two names read here are noted
    // as the fields are gathered (the first value of the partial body mark, as a header
    // map's `get` would give), not looked up again.
    let mut dpop = false;
    let mut partial: Option<&[u8]> = None;
    let mut fields = Vec::with_capacity(check.headers.len());
    for header in &check.headers {
        let (name, value) = (&header.name[..], &header.value[..]);
        if name.starts_with(b":") {
            continue;
        }
        if name == jwtgate_engine::dpop::PROOF_HEADER.as_bytes() {
            dpop = true;
        } else if name == PARTIAL_BODY && partial.is_none() {
            partial = Some(value);
        }
        fields.push((name, value));
    }
    let headers =
        HeaderFields::new(fields).map_err(|invalid| Unreadable::BadHeader(invalid.name))?;
    let partial = partial.is_some_and(|v| v.eq_ignore_ascii_case(b"true"));
    let body = match (http.raw_body.is_empty(), partial) {
        (true, _) => CheckBody::Absent,
        (false, true) => CheckBody::Partial,
        (false, false) => CheckBody::Whole(&http.raw_body),
    };
    // Only a DPoP proof's `htu` is compared with the origin, and the engine reads the origin
    // only after finding a `DPoP` header: without one, it is not formatted.
    let origin = if dpop {
        jwtgate_engine::dpop::origin(&http.scheme, &http.host)
    } else {
        None
    };
    Ok(Original {
        method: &http.method,
        target: &http.path,
        headers,
        origin,
        body,
    })
}

/// The client certificate of the check: `attributes.source.certificate` when the engine takes
/// certificates from Envoy's check ([`CertificateSource::ExtAuthzSource`]), else none.
fn client_certificate(engine: &Engine, check: &CheckInput) -> Option<CertificateThumbprint> {
    if *engine.dpop().certificate_source() != CertificateSource::ExtAuthzSource
        || check.source_certificate.is_empty()
    {
        return None;
    }
    let thumbprint = CertificateThumbprint::of_escaped_pem(&check.source_certificate);
    if thumbprint.is_none() {
        // A certificate-bound token is then refused for want of a certificate.
        tracing::warn!("the check's source.certificate is not one URL-encoded PEM certificate");
    }
    thumbprint
}

/// Decides one `Check` request, as prost decodes it whole, with `engine` (see [`check_input`]).
pub async fn check(
    engine: &Engine,
    request: &CheckRequest,
    options: CheckOptions,
) -> CheckResponse {
    check_input(engine, &CheckInput::from(request.clone()), options).await
}

/// Decides one `Check` with `engine` and renders the answer as the generated message.
pub async fn check_input(
    engine: &Engine,
    request: &CheckInput,
    options: CheckOptions,
) -> CheckResponse {
    decide(engine, request, options, |answer| answer.to_message()).await
}

/// Decides one `Check` with `engine` and renders the answer framed as one gRPC message: what
/// the server sends.
pub async fn check_framed(engine: &Engine, request: &CheckInput, options: CheckOptions) -> Bytes {
    decide(engine, request, options, |answer| answer.frame()).await
}

/// Decides one `Check` with `engine` and hands the rendered answer to `emit`.
async fn decide<R>(
    engine: &Engine,
    request: &CheckInput,
    options: CheckOptions,
    emit: impl FnOnce(Rendered<'_>) -> R,
) -> R {
    let original = match read_request(request) {
        Ok(original) => original,
        Err(problem) => {
            let denial = match problem {
                Unreadable::NoHttpRequest => {
                    tracing::error!("ext_authz check without attributes.request.http: check the Envoy configuration");
                    Denial::proxy_contract(engine.realm(), problem.to_string())
                }
                Unreadable::BadHeader(_) => {
                    Denial::invalid_request(engine.realm(), problem.to_string())
                }
            };
            let outcome = engine.refuse("", "", denial);
            let none = HeaderFields::default();
            return emit(rendered(engine, (&none).into(), "", &outcome, options));
        }
    };
    let view = RequestView {
        front: FrontEnd::ExtAuthz,
        method: original.method,
        target: original.target,
        headers: (&original.headers).into(),
        origin: original.origin.as_deref(),
        token: TokenInput::FromRequest,
        client_certificate: client_certificate(engine, request),
        now: unix_now(),
    };
    let outcome = match engine.decide_with_body(&view, original.body.view()).await {
        Inspection::Decided(outcome) => outcome,
        // A body is asked for only when deferred, which a check never is.
        Inspection::ReadBody { .. } => engine.refuse(
            original.method,
            original.target,
            Denial::body_unavailable(engine.realm()),
        ),
    };
    emit(rendered(
        engine,
        (&original.headers).into(),
        original.target,
        &outcome,
        options,
    ))
}

/// A rendered answer: an allow, encoded from what it borrows ([`AllowAnswer`]), or a refusal as
/// the generated message (refusals are rare and carry the HTTP gateway's answer).
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered<'a> {
    /// `OK`.
    Allow(AllowAnswer<'a>),
    /// A refusal.
    Deny(CheckResponse),
}

impl Rendered<'_> {
    /// The answer as the generated `CheckResponse`.
    pub fn to_message(&self) -> CheckResponse {
        match self {
            Rendered::Allow(allow) => allow.to_message(),
            Rendered::Deny(response) => response.clone(),
        }
    }

    /// The answer framed as one uncompressed gRPC message.
    pub fn frame(&self) -> Bytes {
        match self {
            Rendered::Allow(allow) => allow.frame(),
            Rendered::Deny(response) => crate::framing::frame(response),
        }
    }
}

/// Renders `outcome` for the request with `headers` and `target` as the generated message (see
/// the module docs).
pub fn render(
    engine: &Engine,
    headers: RequestHeaders<'_>,
    target: &str,
    outcome: &Outcome,
    options: CheckOptions,
) -> CheckResponse {
    rendered(engine, headers, target, outcome, options).to_message()
}

/// Renders `outcome` for the request with `headers` and `target` (see the module docs).
pub fn rendered<'a>(
    engine: &'a Engine,
    headers: RequestHeaders<'a>,
    target: &'a str,
    outcome: &'a Outcome,
    options: CheckOptions,
) -> Rendered<'a> {
    match outcome {
        Outcome::Allow(allow) => {
            Rendered::Allow(render_allow(engine, headers, target, Some(allow), options))
        }
        Outcome::Preflight => Rendered::Allow(render_allow(engine, headers, target, None, options)),
        Outcome::Deny(denial) => Rendered::Deny(render_deny(denial)),
    }
}

/// A header value as protobuf text: nearly always UTF-8 already (identity values are sanitised
/// text), checked by `str::from_utf8` (its ASCII fast path reads a word at a time, where the
/// lossy conversion walks chunks), else converted lossily.
fn text(value: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    }
}

fn overwrite(name: &str, value: &[u8]) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(PbHeader {
            key: name.to_owned(),
            value: text(value).into_owned(),
            raw_value: Vec::new(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

/// `OK`, with the identity headers set and the client's spellings, overrides and token removed.
fn render_allow<'a>(
    engine: &'a Engine,
    headers: RequestHeaders<'a>,
    target: &'a str,
    allow: Option<&'a Allow>,
    options: CheckOptions,
) -> AllowAnswer<'a> {
    let identity: &[(HeaderName, HeaderValue)] = allow.map_or(&[], |a| &a.identity);
    let mut set: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(identity.len() + 1);
    set.extend(
        identity
            .iter()
            .map(|(name, value)| (name.as_str(), text(value.as_bytes()))),
    );
    let is_set = |name: &[u8]| identity.iter().any(|(n, _)| n.as_str().as_bytes() == name);
    let mut remove: Vec<&str> = Vec::new();
    let locations = engine.locations();
    for (name, _) in headers.iter() {
        let spoofed = engine
            .protected_headers()
            .any(|n| hygiene::folds_to(name, n.as_str()));
        let overriding = hygiene::METHOD_OVERRIDE_HEADERS
            .iter()
            .chain(&hygiene::PATH_OVERRIDE_HEADERS)
            .any(|n| hygiene::folds_to(name, n));
        let forwarding_variant = name.contains(&b'_')
            && hygiene::FORWARDING_HEADERS
                .iter()
                .any(|n| hygiene::folds_to(name, n));
        let token = !options.forward_token && name == b"authorization";
        if !(spoofed || overriding || forwarding_variant || token) || is_set(name) {
            continue;
        }
        // Names are lower-case ASCII (`HeaderName`'s, or checked by `HeaderFields::new`); a
        // name received twice is listed once.
        if let Ok(name) = std::str::from_utf8(name) {
            if !remove.contains(&name) {
                remove.push(name);
            }
        }
    }
    let mut query_remove = None;
    if !options.forward_token {
        if let Some(cookie_name) = locations.cookie.as_deref() {
            let cookies: Vec<&str> = headers
                .get_all(&http::header::COOKIE)
                .filter_map(request_headers::text)
                .collect();
            if !cookies.is_empty() {
                match bearer::cookie_without(&cookies.join("; "), cookie_name) {
                    Some(rest) => set.push(("cookie", Cow::Owned(rest))),
                    None => remove.push("cookie"),
                }
            }
        }
        if let (Some(parameter), Some((_, query))) = (&locations.query, target.split_once('?')) {
            if query
                .split('&')
                .any(|pair| pair.split('=').next() == Some(parameter.as_str()))
            {
                query_remove = Some(parameter.as_str());
            }
        }
    }
    let claims = allow
        .filter(|_| !options.omit_claims_metadata)
        .and_then(|a| a.verified.as_ref())
        .map(|verified| Claims {
            subject: verified.subject(),
            issuer: verified.issuer(),
            scopes: verified.distinct_scopes(),
        });
    AllowAnswer {
        set,
        remove,
        query_remove,
        dpop_nonce: allow.and_then(|a| a.dpop_nonce.as_deref()),
        claims,
    }
}

/// A refusal: the HTTP gateway's answer for `denial` as `denied_response`.
fn render_deny(denial: &Denial) -> CheckResponse {
    let answer = jwtgate_http::answer::denial_response(denial);
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .map(|(name, value)| overwrite(name.as_str(), value.as_bytes()))
        .collect();
    let code = match status {
        401 => code::UNAUTHENTICATED,
        400 => code::INVALID_ARGUMENT,
        _ => code::PERMISSION_DENIED,
    };
    CheckResponse {
        status: Some(Status {
            code,
            message: denial.description().to_owned(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: denial.body(),
        })),
        dynamic_metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderMap as PbHeaderMap;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, OkHttpResponse};
    use http::HeaderMap;
    use jwtgate_http::config::GatewayConfig;
    use jwtgate_test_support::Issuer;
    use prost::Message;
    use std::sync::Arc;

    /// An engine for the shared test issuer, with `extra` TOML (token locations); the issuer
    /// is returned to keep its JWKS file.
    fn engine_with(extra: &str) -> (Issuer, Arc<Engine>) {
        let issuer = Issuer::new();
        let toml = format!(
            "{extra}\n[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\n",
            issuer.issuer(),
            issuer.audience(),
            issuer.jwks_file().display()
        );
        let built = GatewayConfig::from_toml(&toml, "test")
            .unwrap()
            .build("test")
            .unwrap();
        (issuer, built.engine)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn allow(identity: &[(&'static str, &str)]) -> Outcome {
        let identity: Vec<(HeaderName, HeaderValue)> = identity
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_static(n),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect();
        Outcome::Allow(Allow {
            identity,
            verified: None,
            path: "/api".to_owned(),
            dpop_nonce: None,
            mcp: false,
        })
    }

    #[test]
    fn allow_rotates_the_dpop_nonce_and_removes_the_certificate_header() {
        let (_issuer, engine) = engine_with(
            "[server]\nclient_cert_header = \"x-forwarded-client-cert\"\nclient_cert_header_format = \"xfcc\"",
        );
        let sent = headers(&[("x-forwarded-client-cert", "Hash=00"), ("accept", "*/*")]);
        let Outcome::Allow(mut allowed) = allow(&[]) else {
            unreachable!()
        };
        allowed.dpop_nonce = Some("n-1".into());
        let outcome = Outcome::Allow(allowed);
        let response = render_plain(&engine, (&sent).into(), "/api", &outcome);
        let ok = ok(&response);
        assert_eq!(ok.headers_to_remove, ["x-forwarded-client-cert"]);
        let added: Vec<(&str, &str)> = ok
            .response_headers_to_add
            .iter()
            .map(|h| {
                let header = h.header.as_ref().unwrap();
                (header.key.as_str(), header.value.as_str())
            })
            .collect();
        assert_eq!(added, [("dpop-nonce", "n-1")]);
    }

    /// [`render`] with the default options.
    fn render_plain(
        engine: &Engine,
        headers: RequestHeaders<'_>,
        target: &str,
        outcome: &Outcome,
    ) -> CheckResponse {
        render(engine, headers, target, outcome, CheckOptions::default())
    }

    fn ok(response: &CheckResponse) -> &OkHttpResponse {
        assert_eq!(response.status.as_ref().unwrap().code, code::OK);
        match response.http_response.as_ref().unwrap() {
            HttpResponse::OkResponse(ok) => ok,
            other => panic!("not an ok response: {other:?}"),
        }
    }

    fn set_names(ok: &OkHttpResponse) -> Vec<&str> {
        ok.headers
            .iter()
            .map(|h| h.header.as_ref().unwrap().key.as_str())
            .collect()
    }

    #[test]
    fn allow_overwrites_identity_and_removes_only_what_it_does_not_set() {
        let (_issuer, engine) = engine_with("");
        let sent = headers(&[
            ("authorization", "Bearer t"),
            ("x-auth-subject", "admin"),
            ("x_auth_subject", "admin"),
            ("x-auth-scopes", "admin"),
            ("x_forwarded_for", "1.2.3.4"),
            ("x-http-method-override", "DELETE"),
            ("x-original-url", "/admin"),
            ("accept", "*/*"),
        ]);
        let outcome = allow(&[("x-auth-subject", "alice"), ("x-auth-issuer", "https://i/")]);
        let response = render_plain(&engine, (&sent).into(), "/api", &outcome);
        let ok = ok(&response);
        assert_eq!(set_names(ok), ["x-auth-subject", "x-auth-issuer"]);
        for option in &ok.headers {
            assert_eq!(
                option.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            );
        }
        let mut removed = ok.headers_to_remove.clone();
        removed.sort();
        assert_eq!(
            removed,
            [
                "authorization",
                "x-auth-scopes",
                "x-http-method-override",
                "x-original-url",
                "x_auth_subject",
                "x_forwarded_for",
            ]
        );
        // Envoy removes after it sets: a header set here must never be listed for removal.
        for name in set_names(ok) {
            assert!(!ok.headers_to_remove.iter().any(|r| r == name), "{name}");
        }
    }

    #[test]
    fn forward_token_keeps_the_token_everywhere() {
        let (_issuer, engine) = engine_with("[token]\ncookie = \"at\"\nquery = \"access_token\"");
        let sent = headers(&[
            ("authorization", "Bearer t"),
            ("cookie", "at=t; theme=dark"),
        ]);
        let target = "/api?access_token=t&x=1";
        let options = CheckOptions {
            forward_token: true,
            ..CheckOptions::default()
        };
        let response = render(&engine, (&sent).into(), target, &allow(&[]), options);
        let kept = ok(&response);
        assert!(kept.headers_to_remove.is_empty());
        assert!(kept.headers.is_empty());
        assert!(kept.query_parameters_to_remove.is_empty());
        // Without it, the cookie is rewritten and the parameter removed.
        let response = render_plain(&engine, (&sent).into(), target, &allow(&[]));
        let removed = ok(&response);
        assert_eq!(removed.headers_to_remove, ["authorization"]);
        let cookie = removed.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (cookie.key.as_str(), cookie.value.as_str()),
            ("cookie", "theme=dark")
        );
        assert_eq!(removed.query_parameters_to_remove, ["access_token"]);
        // A cookie header holding only the token goes.
        let only = headers(&[("cookie", "at=t")]);
        let response = render_plain(&engine, (&only).into(), "/api", &allow(&[]));
        assert_eq!(ok(&response).headers_to_remove, ["cookie"]);
    }

    #[test]
    fn a_preflight_passes_without_identity_but_still_loses_spoofed_headers() {
        let (_issuer, engine) = engine_with("");
        let sent = headers(&[("x-auth-subject", "admin"), ("origin", "http://a")]);
        let response = render_plain(&engine, (&sent).into(), "/api", &Outcome::Preflight);
        let ok = ok(&response);
        assert!(ok.headers.is_empty());
        assert_eq!(ok.headers_to_remove, ["x-auth-subject"]);
        assert!(response.dynamic_metadata.is_none());
    }

    #[test]
    fn denials_carry_the_http_gateways_answer() {
        let (_issuer, engine) = engine_with("");
        let cases = [
            (Denial::missing_token("api"), 401, code::UNAUTHENTICATED),
            (Denial::no_route("api"), 403, code::PERMISSION_DENIED),
            (
                Denial::invalid_request("api", "bad"),
                400,
                code::INVALID_ARGUMENT,
            ),
        ];
        for (denial, status, grpc) in cases {
            let response = render_plain(
                &engine,
                (&HeaderMap::new()).into(),
                "/",
                &Outcome::Deny(denial.clone()),
            );
            assert_eq!(response.status.as_ref().unwrap().code, grpc);
            let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
                panic!("not denied: {response:?}");
            };
            assert_eq!(denied.status.as_ref().unwrap().code, status);
            assert_eq!(denied.body, denial.body());
            let header = |name: &str| {
                denied
                    .headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .find(|h| h.key == name)
                    .map(|h| h.value.clone())
            };
            assert_eq!(header("www-authenticate"), Some(denial.challenge()));
            assert_eq!(header("content-type").as_deref(), Some("application/json"));
            assert_eq!(header("cache-control").as_deref(), Some("no-store"));
        }
    }

    fn check_request(http: Option<HttpRequest>) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request { time: None, http }),
                ..AttributeContext::default()
            }),
        }
    }

    #[tokio::test]
    async fn a_check_without_an_http_request_is_refused_not_an_error() {
        let (_issuer, engine) = engine_with("");
        for request in [CheckRequest::default(), check_request(None)] {
            let response = check(&engine, &request, CheckOptions::default()).await;
            assert_eq!(
                response.status.as_ref().unwrap().code,
                code::PERMISSION_DENIED
            );
            let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
                panic!("not denied: {response:?}");
            };
            assert!(
                denied.body.contains("attributes.request.http"),
                "{}",
                denied.body
            );
        }
    }

    #[test]
    fn header_values_become_text_as_the_lossy_conversion_makes_them() {
        for value in [
            &b"auth0|alice"[..],
            b"",
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"a\xc3",
        ] {
            assert_eq!(text(value), String::from_utf8_lossy(value));
        }
        assert!(matches!(text(b"read:users"), Cow::Borrowed("read:users")));
    }

    /// The engine's header rules, read from the check's fields (no `HeaderMap`): a duplicated
    /// credential in any spelling, a credential that is not text, a `Connection` header naming
    /// an identity header, a token both in the header and the cookie, and a cookie that is not
    /// text. (DPoP over gRPC: `crates/cli/tests/envoy_traefik.rs`, through Envoy.)
    #[tokio::test]
    async fn the_engines_header_rules_hold_on_the_checks_fields() {
        let (issuer, engine) = engine_with(
            "[token]\ncookie = \"at\"\n[[routes]]\npath = \"/api/*\"\nscopes = [\"read:users\"]",
        );
        let bearer = format!("Bearer {}", issuer.token("{}".parse().unwrap()));
        let decide = |entries: Vec<(&str, Vec<u8>)>| {
            let http = HttpRequest {
                method: "GET".into(),
                path: "/api/users".into(),
                header_map: Some(PbHeaderMap {
                    headers: entries
                        .into_iter()
                        .map(|(key, value)| PbHeader {
                            key: key.into(),
                            value: String::new(),
                            raw_value: value,
                        })
                        .collect(),
                }),
                ..HttpRequest::default()
            };
            let encoded = Bytes::from(check_request(Some(http)).encode_to_vec());
            let input = crate::codec::decode_check(&encoded, false).unwrap();
            let engine = engine.clone();
            async move {
                let response = check_input(&engine, &input, CheckOptions::default()).await;
                match &response.http_response {
                    Some(HttpResponse::DeniedResponse(denied)) => {
                        (denied.status.as_ref().unwrap().code, denied.body.clone())
                    }
                    _ => (200, String::new()),
                }
            }
        };
        let token = bearer.clone().into_bytes();
        assert_eq!(decide(vec![("authorization", token.clone())]).await.0, 200);
        let refused = [
            (
                vec![
                    ("authorization", token.clone()),
                    ("Authorization", token.clone()),
                ],
                "more than one Authorization header",
            ),
            (
                vec![("authorization", b"Bearer \xfftoken".to_vec())],
                "not ASCII",
            ),
            (
                vec![
                    ("authorization", token.clone()),
                    ("connection", b"close, X-Auth-Subject".to_vec()),
                ],
                "a header only the gateway sets",
            ),
            (
                vec![
                    ("authorization", token.clone()),
                    ("cookie", format!("at={}", &bearer[7..]).into_bytes()),
                ],
                "more than one place",
            ),
            (
                vec![
                    ("cookie", b"a=\xff".to_vec()),
                    ("authorization", token.clone()),
                ],
                "not valid text",
            ),
        ];
        for (entries, why) in refused {
            let (status, body) = decide(entries.clone()).await;
            assert_eq!(status, 400, "{entries:?}: {body}");
            assert!(body.contains(why), "{entries:?}: {body}");
        }
    }

    #[tokio::test]
    async fn reading_the_original_request() {
        let mut http = HttpRequest {
            method: "POST".into(),
            path: "/api/users?x=1".into(),
            ..HttpRequest::default()
        };
        http.headers.insert(":path".into(), "/api/users?x=1".into());
        http.headers.insert("x-a".into(), "1".into());
        let input = CheckInput::from(check_request(Some(http.clone())));
        let original = read_request(&input).unwrap();
        assert_eq!(original.method, "POST");
        assert_eq!(original.target, "/api/users?x=1");
        assert_eq!(original.headers.as_slice().len(), 1);
        http.headers.insert("bad name".into(), "1".into());
        assert_eq!(
            read_request(&CheckInput::from(check_request(Some(http.clone())))).unwrap_err(),
            Unreadable::BadHeader("bad name".into())
        );
        // Raw headers (`encode_raw_headers: true`) are read as the map's: every entry kept, in
        // order, a bad name refused, the client's spellings there to be removed.
        http.headers.clear();
        let raw = |key: &str, value: &[u8]| PbHeader {
            key: key.into(),
            value: String::new(),
            raw_value: value.to_vec(),
        };
        http.header_map = Some(PbHeaderMap {
            headers: vec![
                raw(":path", b"/api/users?x=1"),
                raw("authorization", b"Bearer t"),
                raw("X_Auth_Subject", b"admin"),
                raw("x-a", b"\xff"),
                raw("x_auth_subject", b"root"),
            ],
        });
        let encoded = Bytes::from(check_request(Some(http.clone())).encode_to_vec());
        let input = crate::codec::decode_check(&encoded, false).unwrap();
        let original = read_request(&input).unwrap();
        // Names are lower-cased as a `HeaderMap`'s; a name given twice is read twice and
        // removed once.
        let fields: Vec<(&str, &[u8])> = original
            .headers
            .as_slice()
            .iter()
            .map(|(name, value)| (std::str::from_utf8(name).unwrap(), *value))
            .collect();
        assert_eq!(
            fields,
            [
                ("authorization", &b"Bearer t"[..]),
                ("x_auth_subject", b"admin"),
                ("x-a", b"\xff"),
                ("x_auth_subject", b"root"),
            ]
        );
        let view = RequestHeaders::from(&original.headers);
        let subject = HeaderName::from_static("x_auth_subject");
        assert_eq!(
            view.get_all(&subject).collect::<Vec<_>>(),
            [&b"admin"[..], b"root"]
        );
        let (_issuer, engine) = engine_with("");
        let response = render_plain(&engine, view, "/api", &allow(&[]));
        assert_eq!(
            ok(&response).headers_to_remove,
            ["authorization", "x_auth_subject"]
        );
        http.header_map = Some(PbHeaderMap {
            headers: vec![raw("bad name", b"1")],
        });
        let encoded = Bytes::from(check_request(Some(http.clone())).encode_to_vec());
        let input = crate::codec::decode_check(&encoded, false).unwrap();
        assert_eq!(
            read_request(&input).unwrap_err(),
            Unreadable::BadHeader("bad name".into())
        );
        // A malformed path is the engine's refusal, with its reason.
        http.header_map = None;
        http.path = "api".into();
        let response = check(&engine, &check_request(Some(http)), CheckOptions::default()).await;
        let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
            panic!("not denied: {response:?}");
        };
        assert_eq!(denied.status.as_ref().unwrap().code, 400);
        assert!(
            denied.body.contains("must start with '/'"),
            "{}",
            denied.body
        );
    }
}
