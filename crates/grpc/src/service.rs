//! The gRPC services, one unary call at a time: `envoy.service.auth.v3.Authorization/Check`
//! deciding with the gateway's [`SharedEngine`] (so a configuration reload applies at once), and
//! `grpc.health.v1.Health/Check`, `SERVING` exactly when `/readyz` says ready. Each call is one
//! HTTP/2 stream handed over by [`crate::transport`]: its body read as one message
//! ([`UnaryBody`]), decoded ([`decode_check`]), decided by the engine, and answered with
//! response headers, one DATA frame and the `grpc-status` trailers. Every `Check` that cannot
//! be read (compressed, malformed, oversized, not UTF-8) is a denial in a `CheckResponse`, as
//! are refusals of the request Envoy asks about ([`crate::check`]): a gRPC error could become an
//! allow under Envoy's `failure_mode_allow: true`. gRPC errors remain only for what is not a
//! `Check` (unknown method, health), a body that fails or does not arrive in time, and the
//! overload reserve's `UNAVAILABLE`.
//!
//! `grpc-timeout` is read by nobody, deliberately: a check waits on nothing but a key fetch
//! (bounded by its own timeout) and the request body (bounded by `body_read_timeout`), and the
//! client enforces its deadline by resetting the stream. A reset stream drops its call at once
//! (the call waits on the answer and on the reset together), so resetting streams cannot pile
//! up calls beyond `http2_max_concurrent_streams`.

use crate::check::{check_framed, render, CheckOptions};
use crate::codec::decode_check;
use crate::framing::{frame, status, status_headers, FrameError, UnaryBody};
use bytes::Bytes;
use futures_util::FutureExt;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use jwtgate_engine::mtls::CertificateSource;
use jwtgate_engine::request_headers::HeaderFields;
use jwtgate_engine::{Denial, Engine};
use jwtgate_http::server::not_ready_reasons;
use jwtgate_http::SharedEngine;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The service name Envoy's gRPC health checks may name (the empty name is the whole server).
pub const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";

/// The path of the `Check` method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The path of the health service's `Check` method.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The largest request message accepted (gRPC's usual default, 4 MiB): a check carries the
/// request's headers and, with Envoy's `with_request_body`, at most its configured body size.
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;

/// The header naming a request message's compression.
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// The health service's request is one short service name.
const MAX_HEALTH_MESSAGE_SIZE: usize = 1024;

/// The services of one listener.
#[derive(Debug)]
pub struct Services {
    engine: Arc<SharedEngine>,
    options: CheckOptions,
    body_timeout: Duration,
    max_message_size: usize,
}

/// What the connection does after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum AfterCall {
    /// Serve the connection's next calls.
    KeepServing,
    /// Close the connection gracefully (`GOAWAY`): its client sent a call that could not be
    /// read, or not in time.
    Close,
}

/// How a call ends when it is not answered with a message.
struct CallError {
    code: u8,
    message: String,
}

impl CallError {
    fn new(code: u8, message: impl Into<String>) -> CallError {
        CallError {
            code,
            message: message.into(),
        }
    }
}

/// Why a call's message was not read.
enum Unread {
    /// The body is not one message within the limit.
    Frame(FrameError),
    /// The body failed or came too slowly.
    Call(CallError),
}

impl From<CallError> for Unread {
    fn from(error: CallError) -> Unread {
        Unread::Call(error)
    }
}

impl From<Unread> for CallError {
    fn from(unread: Unread) -> CallError {
        match unread {
            Unread::Frame(error) => CallError::new(error.status(), error.to_string()),
            Unread::Call(error) => error,
        }
    }
}

impl Services {
    /// Services deciding with whatever `engine` holds at each check; a request body must arrive
    /// within `body_timeout`, its message at most `max_message_size` bytes.
    pub fn new(
        engine: Arc<SharedEngine>,
        options: CheckOptions,
        body_timeout: Duration,
        max_message_size: usize,
    ) -> Services {
        Services {
            engine,
            options,
            body_timeout,
            max_message_size,
        }
    }

    /// Answers one call; on a connection over the connection limit (`overloaded`), `Check`
    /// gets `UNAVAILABLE` and health is answered as usual. Says whether the connection should
    /// close: after a body that did not arrive in time, or a message that could not be read
    /// (a client that trickles or garbles its calls does not keep its connection).
    pub async fn call(
        &self,
        request: Request<RecvStream>,
        mut respond: SendResponse<Bytes>,
        overloaded: bool,
    ) -> AfterCall {
        let (head, body) = request.into_parts();
        let mut after = AfterCall::KeepServing;
        let answer = self.answer(head, body, overloaded, &mut after);
        // A stream the client resets (Envoy's timeout, or an attacker freeing its stream slot
        // to open another) drops the call at once: h2 no longer counts the stream against
        // `http2_max_concurrent_streams`, so a call outliving it would escape that limit.
        let reset = std::future::poll_fn(|cx| respond.poll_reset(cx));
        let answered = tokio::select! {
            answer = answer => Some(answer),
            _ = reset => None,
        };
        if let Some(answer) = answered {
            send(&mut respond, answer);
        }
        after
    }

    /// The answer to one call (see [`Services::call`]).
    async fn answer(
        &self,
        head: http::request::Parts,
        body: RecvStream,
        overloaded: bool,
        after: &mut AfterCall,
    ) -> Result<Bytes, CallError> {
        if head.method != Method::POST {
            Err(CallError::new(
                status::UNIMPLEMENTED,
                format!("gRPC calls are POST requests, not {}", head.method),
            ))
        } else if let Some(encoding) = head
            .headers
            .get(GRPC_ENCODING)
            .filter(|e| e.as_bytes() != b"identity")
        {
            let why = format!(
                "grpc-encoding {} is not accepted (identity only)",
                String::from_utf8_lossy(encoding.as_bytes())
            );
            if head.uri.path() == CHECK_PATH && !overloaded {
                *after = AfterCall::Close;
                return Ok(self.unreadable(&self.engine.load(), why));
            }
            Err(CallError::new(status::UNIMPLEMENTED, why))
        } else {
            match head.uri.path() {
                CHECK_PATH if overloaded => Err(CallError::new(
                    status::UNAVAILABLE,
                    "overloaded: too many connections",
                )),
                CHECK_PATH => self.check(body, after).await,
                HEALTH_CHECK_PATH => self.health(body, after).await,
                path => Err(CallError::new(
                    status::UNIMPLEMENTED,
                    format!("unknown method {path}"),
                )),
            }
        }
    }

    /// `Authorization/Check`: one engine load for the decoding and the decision. A message that
    /// cannot be read as one `CheckRequest` (compressed, truncated, followed by more bytes, not
    /// protobuf, a non-UTF-8 string) is denied in-band with 400, and one over the limit
    /// (Envoy's `with_request_body` with a larger `max_request_bytes`) with 413: never a gRPC
    /// error, which `failure_mode_allow: true` would let pass.
    async fn check(&self, body: RecvStream, after: &mut AfterCall) -> Result<Bytes, CallError> {
        let read = self.read(body, self.max_message_size).await;
        if read.is_err() {
            *after = AfterCall::Close;
        }
        let engine = self.engine.load();
        let message = match read {
            Ok(message) => message,
            Err(Unread::Frame(FrameError::TooLarge { .. })) => {
                let denial = Denial::check_too_large(engine.realm(), self.max_message_size);
                return Ok(self.deny(&engine, denial));
            }
            Err(Unread::Frame(error)) => {
                let why = format!("the check request is not one gRPC message: {error}");
                return Ok(self.unreadable(&engine, why));
            }
            Err(Unread::Call(error)) => return Err(error),
        };
        let source_certificate =
            *engine.dpop().certificate_source() == CertificateSource::ExtAuthzSource;
        let input = match decode_check(&message, source_certificate) {
            Ok(input) => input,
            Err(error) => {
                *after = AfterCall::Close;
                let why = format!("the check request cannot be decoded: {error}");
                return Ok(self.unreadable(&engine, why));
            }
        };
        // Boxed: the decision's future is kilobytes, and a call future that held it inline
        // would be copied whole into the connection's set of calls.
        Ok(Box::pin(check_framed(&engine, &input, self.options)).await)
    }

    /// A check whose request cannot be read, denied in-band as `invalid_request` (`why`).
    fn unreadable(&self, engine: &Engine, why: String) -> Bytes {
        self.deny(engine, Denial::invalid_request(engine.realm(), why))
    }

    /// A check refused before its request could be read: the engine records `denial` and it
    /// is answered as a `CheckResponse` with the denial's status.
    fn deny(&self, engine: &Engine, denial: Denial) -> Bytes {
        let outcome = engine.refuse("", "", denial);
        frame(&render(
            engine,
            (&HeaderFields::default()).into(),
            "",
            &outcome,
            self.options,
        ))
    }

    /// `Health/Check`: `SERVING` while every issuer's keys are loaded (as `/readyz`),
    /// `NOT_SERVING` otherwise, for the whole server (`""`) and [`AUTHORIZATION_SERVICE`];
    /// `NOT_FOUND` for any other service, as the health protocol says.
    async fn health(&self, body: RecvStream, after: &mut AfterCall) -> Result<Bytes, CallError> {
        let message = self
            .read(body, MAX_HEALTH_MESSAGE_SIZE)
            .await
            .map_err(|unread| {
                *after = AfterCall::Close;
                CallError::from(unread)
            })?;
        let request = HealthCheckRequest::decode(message).map_err(|e| {
            *after = AfterCall::Close;
            CallError::new(
                status::INVALID_ARGUMENT,
                format!("decoding the health request: {e}"),
            )
        })?;
        if !request.service.is_empty() && request.service != AUTHORIZATION_SERVICE {
            return Err(CallError::new(
                status::NOT_FOUND,
                format!("unknown service {}", request.service),
            ));
        }
        let serving = if not_ready_reasons(&self.engine.load()).is_empty() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        Ok(frame(&HealthCheckResponse {
            status: serving as i32,
        }))
    }

    /// The request body's one message (at most `limit` bytes), received within the body
    /// timeout; flow-control capacity is given back as frames arrive.
    async fn read(&self, mut body: RecvStream, limit: usize) -> Result<Bytes, Unread> {
        let mut unary = UnaryBody::new(limit);
        let receive = async {
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|e| {
                    CallError::new(status::INTERNAL, format!("reading the request: {e}"))
                })?;
                let _ = body.flow_control().release_capacity(chunk.len());
                unary.push(chunk).map_err(Unread::Frame)?;
            }
            Ok::<(), Unread>(())
        };
        // A body already received (nearly always: Envoy sends a check's HEADERS and DATA
        // together, and h2 reads both before handing over the stream) is read without arming
        // a timer; the clock starts at once otherwise.
        let received = {
            let mut receive = std::pin::pin!(receive);
            match receive.as_mut().now_or_never() {
                Some(received) => Some(received),
                None => tokio::time::timeout(self.body_timeout, receive).await.ok(),
            }
        };
        match received {
            Some(received) => received?,
            None => {
                return Err(CallError::new(
                    status::DEADLINE_EXCEEDED,
                    "the request body did not arrive in time",
                )
                .into())
            }
        }
        unary.finish().map_err(Unread::Frame)
    }
}

/// Sends the answer: response headers, the message and `grpc-status: 0`; or, for an error,
/// one HEADERS frame carrying the status ("trailers-only"). A stream the client has reset
/// fails to send, which ends the call.
fn send(respond: &mut SendResponse<Bytes>, answer: Result<Bytes, CallError>) {
    let mut response = Response::new(());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    match answer {
        Ok(message) => {
            let Ok(mut stream) = respond.send_response(response, false) else {
                return;
            };
            if stream.send_data(message, false).is_ok() {
                let _ = stream.send_trailers(status_headers(status::OK, ""));
            }
        }
        Err(error) => {
            let headers: HeaderMap = status_headers(error.code, &error.message);
            response.headers_mut().extend(headers);
            let _ = respond.send_response(response, true);
        }
    }
}
