//! The `wasi:http` client.
//!
//! Resource order matters to the host: a child (a stream, a pollable,
//! a header list) must be dropped before its parent (the body, the
//! future, the response), so every child here is dropped explicitly.

use std::io::Read;
use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme as WasiScheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use super::{Body, Error, Prepared, ResponseHead, Scheme, show_bytes, show_duration};

/// Bytes moved per stream call: large enough to be fast, small enough
/// to keep memory flat.
const CHUNK: usize = 64 * 1024;

pub(super) fn check(method: &str, url: &str) -> Result<(), String> {
    crate::bindings::backout::step::host::check_request(method, url)
}

/// What the error messages say about the request (never its headers).
struct Target {
    method: String,
    /// `scheme://host:port` followed by the path without the query,
    /// which may carry a token.
    shown: String,
    url: String,
    authority: String,
}

/// When the whole exchange must be over, if the request set a timeout.
struct Deadline {
    at: Option<(u64, Duration)>,
}

impl Deadline {
    fn new(timeout: Option<Duration>) -> Self {
        let at = timeout.map(|t| {
            let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            (monotonic_clock::now().saturating_add(nanos), t)
        });
        Self { at }
    }

    fn timer(&self) -> Option<Pollable> {
        self.at.map(|(at, _)| monotonic_clock::subscribe_instant(at))
    }

    /// `what` did not happen in time (`no response`).
    fn error(&self, what: &str) -> Error {
        let limit = self.at.map(|(_, t)| show_duration(t)).unwrap_or_default();
        Error::Timeout(format!("{what} within {limit}"))
    }
}

/// What `wait_any` saw first.
enum Ready {
    /// The first pollable given.
    Wanted,
    /// The response future (when it was given as the second).
    Response,
    TimedOut,
}

/// Blocks until `wanted` (or `response`, if given) is ready, or the
/// deadline passes.
fn wait_any(wanted: &Pollable, response: Option<&Pollable>, deadline: &Deadline) -> Ready {
    let timer = deadline.timer();
    let mut list = vec![wanted];
    list.extend(response);
    list.extend(timer.as_ref());
    let ready = poll::poll(&list);
    if ready.contains(&0) {
        Ready::Wanted
    } else if response.is_some() && ready.contains(&1) {
        Ready::Response
    } else {
        Ready::TimedOut
    }
}

pub(super) fn exchange(
    request: Prepared,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<ResponseHead, Error> {
    let path = request.url.path_with_query.split('?').next().unwrap_or("/");
    let target = Target {
        method: request.method.clone(),
        shown: format!("{}{path}", request.url.origin()),
        url: request.url.to_string(),
        authority: request.url.authority(),
    };
    let deadline = Deadline::new(request.timeout);

    let outgoing = OutgoingRequest::new(fields(&request.headers)?);
    let invalid = |what: &str| Error::InvalidRequest(format!("the host refused the {what} of {}", target.url));
    outgoing.set_method(&method(&request.method)).map_err(|()| invalid("method"))?;
    let scheme = match request.url.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    outgoing.set_authority(Some(&target.authority)).map_err(|()| invalid("host"))?;
    outgoing.set_path_with_query(Some(&request.url.path_with_query)).map_err(|()| invalid("path"))?;

    let options = RequestOptions::new();
    if let Some(timeout) = request.timeout {
        // The host clamps these to the step's remaining time; a host that
        // does not support one just keeps its own.
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
    }

    // The body handle must be taken before `handle` consumes the
    // request; without one the host sends no body at all.
    let body = match request.body {
        Body::Empty => None,
        source => {
            let body = outgoing.body().map_err(|()| Error::Other("cannot open the request body".to_owned()))?;
            Some((body, source))
        }
    };
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| from_code(code, &target))?;

    // Write the body while the host sends; the response may come first
    // (an early error answer, or the host refusing the request).
    let ready = future.subscribe();
    let mut unfinished = None;
    if let Some((body, source)) = body {
        match write_body(&body, source, &ready, &deadline, &target) {
            // Finishing checks the length against `Content-Length`: a
            // mismatch means the server did not get the request we meant.
            Ok(()) => unfinished = OutgoingBody::finish(body, None).err().map(|code| from_code(code, &target)),
            // The response, or the host's error, arrived first (or the
            // host closed the stream, which it does when it gives up on
            // the request): stop sending. Dropping the body tells the
            // host it is incomplete; the response says what happened.
            Err(WriteStop::ResponseReady | WriteStop::Stream) => drop(body),
            // Our own reader failed or time ran out: that is the error,
            // whatever the host makes of the aborted request.
            Err(WriteStop::Local(error)) => {
                drop(body);
                drop(ready);
                return Err(error);
            }
        }
    }

    let response = wait_for_response(&future, &ready, &deadline, &target);
    drop(ready);
    // A body that did not match its `Content-Length` is our own mistake
    // and says exactly what went wrong; otherwise the response's error
    // (a denial, a refused connection) says more than a broken pipe.
    let response = match (response, unfinished) {
        (_, Some(error)) | (Err(error), None) => return Err(error),
        (Ok(response), None) => response,
    };
    let result = read_response(&response, &deadline, &target, sink);
    drop(response);
    drop(future);
    result
}

/// A header list the host accepts, or which header it refused.
fn fields(headers: &[(String, String)]) -> Result<Fields, Error> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields.append(name, value.as_bytes()).map_err(|e| {
            Error::InvalidRequest(match e {
                HeaderError::Forbidden => format!("header `{name}` is set by the host and cannot be given"),
                HeaderError::InvalidSyntax => format!("header `{name}` has an invalid name or value"),
                HeaderError::Immutable => format!("header `{name}` cannot be set"),
            })
        })?;
    }
    Ok(fields)
}

fn method(method: &str) -> Method {
    match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    }
}

/// Why writing the body stopped early.
enum WriteStop {
    /// The response future resolved while the body was being written.
    ResponseReady,
    /// The host closed or broke the body stream; the response future
    /// says why.
    Stream,
    /// Reading the local source failed, or the deadline passed.
    Local(Error),
}

fn write_body(
    body: &OutgoingBody,
    source: Body,
    response: &Pollable,
    deadline: &Deadline,
    target: &Target,
) -> Result<(), WriteStop> {
    let stream = body.write().map_err(|()| WriteStop::Local(Error::Other("cannot write the request body".into())))?;
    let result = match source {
        Body::Empty => Ok(()),
        Body::Bytes(bytes) => write_all(&stream, &bytes, response, deadline),
        Body::Reader { mut reader, len } => {
            let mut buf = vec![0u8; CHUNK];
            let mut sent: u64 = 0;
            // The host would refuse a length mismatch only at the end,
            // as a broken request; saying so here names the cause.
            let mismatch = |sent: u64, announced: u64| {
                WriteStop::Local(Error::InvalidRequest(format!(
                    "the request body reader gave {} bytes, but {announced} were announced",
                    if sent > announced { format!("more than {announced}") } else { sent.to_string() }
                )))
            };
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => match len {
                        Some(announced) if sent != announced => break Err(mismatch(sent, announced)),
                        _ => break Ok(()),
                    },
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        break Err(WriteStop::Local(Error::Other(format!(
                            "cannot read the request body for {} {}: {e}",
                            target.method, target.shown
                        ))));
                    }
                };
                sent += n as u64;
                if let Some(announced) = len
                    && sent > announced
                {
                    break Err(mismatch(sent, announced));
                }
                if let Err(stop) = write_all(&stream, &buf[..n], response, deadline) {
                    break Err(stop);
                }
            }
        }
    };
    result.and_then(|()| flush(&stream, response, deadline))
}

/// Writes `data` as fast as the stream accepts it.
fn write_all(
    stream: &OutputStream,
    mut data: &[u8],
    response: &Pollable,
    deadline: &Deadline,
) -> Result<(), WriteStop> {
    while !data.is_empty() {
        let permit = stream.check_write().map_err(stream_stop)?;
        if permit == 0 {
            wait_writable(stream, response, deadline)?;
            continue;
        }
        let n = data.len().min(CHUNK).min(usize::try_from(permit).unwrap_or(usize::MAX));
        stream.write(&data[..n]).map_err(stream_stop)?;
        data = &data[n..];
    }
    Ok(())
}

/// Flushes and waits until the host has taken every byte.
fn flush(stream: &OutputStream, response: &Pollable, deadline: &Deadline) -> Result<(), WriteStop> {
    stream.flush().map_err(stream_stop)?;
    while stream.check_write().map_err(stream_stop)? == 0 {
        wait_writable(stream, response, deadline)?;
    }
    Ok(())
}

fn wait_writable(stream: &OutputStream, response: &Pollable, deadline: &Deadline) -> Result<(), WriteStop> {
    let writable = stream.subscribe();
    let ready = wait_any(&writable, Some(response), deadline);
    drop(writable);
    match ready {
        Ready::Wanted => Ok(()),
        Ready::Response => Err(WriteStop::ResponseReady),
        Ready::TimedOut => Err(WriteStop::Local(deadline.error("could not send the request body"))),
    }
}

fn stream_stop(_error: StreamError) -> WriteStop {
    WriteStop::Stream
}

fn wait_for_response(
    future: &FutureIncomingResponse,
    ready: &Pollable,
    deadline: &Deadline,
    target: &Target,
) -> Result<IncomingResponse, Error> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(from_code(code, target)),
            Some(Err(())) => return Err(Error::Other("the response was already taken".to_owned())),
            None => {
                if let Ready::TimedOut = wait_any(ready, None, deadline) {
                    return Err(deadline.error("no response"));
                }
            }
        }
    }
}

fn read_response(
    response: &IncomingResponse,
    deadline: &Deadline,
    target: &Target,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<ResponseHead, Error> {
    let status = response.status();
    let header_fields = response.headers();
    let headers = header_fields
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    drop(header_fields);
    let body = response.consume().map_err(|()| Error::Other("the response body was already taken".into()))?;
    let stream = body.stream().map_err(|()| Error::Other("cannot read the response body".to_owned()))?;
    let read = read_body(&stream, deadline, target, sink);
    drop(stream);
    drop(IncomingBody::finish(body));
    read.map(|()| ResponseHead { status, headers })
}

fn read_body(
    stream: &InputStream,
    deadline: &Deadline,
    target: &Target,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    loop {
        match stream.read(CHUNK as u64) {
            Ok(chunk) if chunk.is_empty() => {
                let readable = stream.subscribe();
                let ready = wait_any(&readable, None, deadline);
                drop(readable);
                if let Ready::TimedOut = ready {
                    return Err(deadline.error("the response body did not arrive"));
                }
            }
            Ok(chunk) => sink(&chunk)?,
            Err(StreamError::Closed) => return Ok(()),
            Err(StreamError::LastOperationFailed(e)) => return Err(from_io_error(&e, target)),
        }
    }
}

fn from_io_error(error: &wasip2::io::error::Error, target: &Target) -> Error {
    match wasip2::http::types::http_error_code(error) {
        Some(code) => from_code(code, target),
        None => Error::Other(format!("{} {}: {}", target.method, target.shown, error.to_debug_string())),
    }
}

/// Turns the host's error code into an [`Error`] an operator can act on.
/// Callers name the request; the messages name only the server.
fn from_code(code: ErrorCode, target: &Target) -> Error {
    let authority = &target.authority;
    match code {
        ErrorCode::HttpRequestDenied => Error::Denied(denial_reason(target)),
        ErrorCode::DestinationIpProhibited => {
            Error::Denied(format!("the host refused the address `{authority}` resolves to"))
        }
        ErrorCode::ConnectionRefused => Error::ConnectionRefused(format!("nothing accepts connections at {authority}")),
        ErrorCode::ConnectionTimeout => Error::Timeout(format!("connecting to {authority}")),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            Error::Timeout(format!("waiting for {authority} to answer"))
        }
        ErrorCode::ConnectionWriteTimeout => Error::Timeout(format!("sending the request to {authority}")),
        ErrorCode::DnsTimeout => Error::Timeout(format!("looking up `{authority}`")),
        ErrorCode::DnsError(payload) => {
            let detail = payload.rcode.map(|r| format!(" ({r})")).unwrap_or_default();
            Error::Dns(format!("`{authority}` could not be resolved{detail}"))
        }
        ErrorCode::DestinationNotFound => Error::Dns(format!("`{authority}` does not resolve to any address")),
        ErrorCode::DestinationUnavailable | ErrorCode::DestinationIpUnroutable => {
            Error::ConnectionRefused(format!("{authority} cannot be reached"))
        }
        ErrorCode::ConnectionTerminated => {
            Error::Protocol(format!("{authority} closed the connection before answering"))
        }
        ErrorCode::HttpResponseIncomplete => Error::Protocol(format!("the response from {authority} ended early")),
        ErrorCode::HttpProtocolError => Error::Protocol(format!("{authority} did not answer with valid HTTP")),
        // The host's cap on what a step may receive (its `max_received`);
        // the payload is the size of the body, not the cap.
        ErrorCode::HttpResponseBodySize(size) => Error::Other(format!(
            "the response body from {authority}{} is more than the step may receive (its `max_received` limit)",
            size.map(|n| format!(" ({})", show_bytes(usize::try_from(n).unwrap_or(usize::MAX)))).unwrap_or_default()
        )),
        ErrorCode::HttpRequestUriInvalid => Error::InvalidUrl(format!("the host refused the URL {}", target.shown)),
        ErrorCode::HttpRequestMethodInvalid => {
            Error::InvalidRequest(format!("the host refused the method `{}`", target.method))
        }
        ErrorCode::HttpRequestBodySize(sent) => Error::InvalidRequest(match sent {
            Some(n) => format!(
                "the request body had {}, not the length its Content-Length announced",
                show_bytes(usize::try_from(n).unwrap_or(usize::MAX))
            ),
            None => "the request body does not have the length its Content-Length announced".to_owned(),
        }),
        ErrorCode::TlsCertificateError => Error::Other(format!(
            "the TLS certificate of {authority} is not trusted (expired, for another name, or from an unknown CA)"
        )),
        ErrorCode::TlsProtocolError => Error::Other(format!("TLS handshake with {authority} failed")),
        ErrorCode::TlsAlertReceived(alert) => Error::Other(format!(
            "{authority} ended the TLS handshake: {}",
            alert.alert_message.unwrap_or_else(|| "alert".to_owned())
        )),
        ErrorCode::InternalError(Some(message)) => Error::Other(format!("{authority}: {message}")),
        other => Error::Other(format!("{authority}: {other:?}")),
    }
}

/// The host's reason for a denial. `wasi:http` carries none, so ask the
/// host's `check-request`: it names what the grant allows. If the URL
/// passes it, the host refused something it checks only when sending
/// (the addresses the name resolves to).
fn denial_reason(target: &Target) -> String {
    match check(&target.method, &target.url) {
        Err(reason) => reason,
        Ok(()) => format!(
            "the host refused {} {} under the step's `net` grant (the URL is granted; an address it resolves to is not)",
            target.method, target.shown
        ),
    }
}
