//! Outgoing HTTP(S) requests, blocking, through `wasi:http/outgoing-handler`.
//!
//! A step never opens a socket or looks up a name: it hands each request to
//! the host, which checks it against the step's `net` grant (scheme, host
//! and port), resolves the name itself and checks the addresses, clamps the
//! timeouts to the step's remaining time, caps the bytes received, and
//! allows only `GET` and `HEAD` while `plan` runs. A request the grant does
//! not allow fails with [`Error::Denied`] before any byte leaves the machine.
//! [`check`] asks the same question without sending anything, so `plan` can
//! prove every target is granted.
//!
//! Plugins are synchronous, so this client is too: [`send`] returns when the
//! whole response is read (up to [`Request::max_body`] bytes), [`send_to`]
//! streams a large body into any [`std::io::Write`].
//!
//! ```ignore
//! use std::time::Duration;
//! use backout_sdk::http::{self, Request};
//!
//! let response = http::send(
//!     Request::get("http://127.0.0.1:6333/collections/docs")
//!         .header("api-key", backout_sdk::vars::env("QDRANT_API_KEY").unwrap_or_default())
//!         .timeout(Duration::from_secs(5)),
//! )?;
//! if response.status == 200 {
//!     let status = response.json()?["result"]["status"].clone();
//! }
//! ```
//!
//! Outside a component (a plugin's native unit tests) the functions compile
//! but every request fails with [`Error::Other`]: test the logic around them
//! with a fake instead.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::time::Duration;

/// Default [`Request::max_body`]: 16 MiB, plenty for API answers while a
/// runaway response cannot exhaust the plugin's memory.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// An HTTP request to send with [`send`] or [`send_to`].
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, … (any case; sent upper-cased).
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, in order; a name may repeat. `Host`,
    /// `Connection`, `Transfer-Encoding` and the like are set by the host
    /// and refused here.
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Limit for the whole exchange, from sending the request to the last
    /// byte of the body. `None`: the host's limit, which is never more than
    /// the time left to the step.
    pub timeout: Option<Duration>,
    /// [`send`] refuses a response body larger than this, with
    /// [`Error::BodyTooLarge`]. [`send_to`] ignores it.
    pub max_body: usize,
}

/// What a [`Request`] sends after its headers.
pub enum Body {
    /// No body at all (no `Content-Length` either).
    Empty,
    /// These bytes, with a `Content-Length`.
    Bytes(Vec<u8>),
    /// Streams from `reader` in bounded chunks, for uploads too large to
    /// hold in memory. With `len`, a `Content-Length` is sent and a reader
    /// that yields a different number of bytes fails the request; without
    /// it, the body is sent chunked.
    Reader { reader: Box<dyn Read>, len: Option<u64> },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Reader { len, .. } => f.debug_struct("Reader").field("len", len).finish_non_exhaustive(),
        }
    }
}

impl Request {
    /// A request with `method` to `url`, no headers, no body, no timeout of
    /// its own and the default [`max_body`](Self::max_body).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// Adds a header (a name may repeat, as HTTP allows).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `bytes` as the body.
    pub fn body_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(bytes.into());
        self
    }

    /// Sends `value` as JSON, with `Content-Type: application/json` unless a
    /// content type was already given (add yours before calling this).
    pub fn body_json(mut self, value: &serde_json::Value) -> Self {
        if header_value(&self.headers, "content-type").is_none() {
            self.headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        self.body = Body::Bytes(value.to_string().into_bytes());
        self
    }

    /// Streams the body from `reader`; see [`Body::Reader`].
    pub fn body_reader(mut self, reader: impl Read + 'static, len: Option<u64>) -> Self {
        self.body = Body::Reader { reader: Box::new(reader), len };
        self
    }

    /// Limits the whole exchange to `timeout`; see [`Request::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`Request::max_body`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

/// Status and headers of a response whose body went elsewhere ([`send_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Names as the host reports them (lowercase), values decoded lossily.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// A response read whole by [`send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names as the host reports them (lowercase), values decoded lossily.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; invalid UTF-8 becomes `�`.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body deserialized into `T`.
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Why a request failed. The messages are written for an operator reading
/// a failed step's report; none of them contains a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The host refused the request: the step's `net` grant does not allow
    /// it (or not in this call: `plan` may only `GET` and `HEAD`). The text
    /// is the host's reason. Retrying cannot help.
    Denied(String),
    /// The URL is not an absolute `http://` or `https://` URL we can send.
    InvalidUrl(String),
    /// The request cannot be sent as given: a malformed or host-controlled
    /// header, an invalid method. Retrying cannot help.
    InvalidRequest(String),
    /// No connection, response or body in time.
    Timeout(String),
    /// Nothing listens at the address (yet): the service may be starting.
    ConnectionRefused(String),
    /// The name could not be resolved.
    Dns(String),
    /// The response body is larger than the request's `max_body`. (The
    /// host's own cap, the step's `max_received`, is [`Error::Other`].)
    BodyTooLarge { limit: usize },
    /// The server broke HTTP: a malformed or truncated response, a closed
    /// connection.
    Protocol(String),
    /// Anything else, including TLS failures, with the host's description.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::Timeout(m) => write!(f, "timed out: {m}"),
            Self::ConnectionRefused(m) => write!(f, "connection refused: {m}"),
            Self::Dns(m) => write!(f, "name lookup failed: {m}"),
            Self::BodyTooLarge { limit } => {
                write!(f, "the response body is larger than the limit of {}", show_bytes(*limit))
            }
            Self::Protocol(m) => write!(f, "HTTP error: {m}"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// `1 MiB`, `512 KiB`, `100 bytes`: a byte count as people read it.
fn show_bytes(n: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

// ---------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// An absolute `http(s)` URL split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Lowercase name, IPv4 address, or IPv6 address in brackets (`[::1]`).
    pub host: String,
    /// The port written in the URL, if any.
    pub port: Option<u16>,
    /// Starts with `/`; includes `?query`; the `#fragment` is dropped.
    pub path_with_query: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. Refused: other
    /// schemes, credentials (`user:pass@`; send them in a header), spaces,
    /// control and non-ASCII characters (percent-encode them).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::InvalidUrl(format!("`{text}` {why}"));
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            let what = if c.is_whitespace() { "whitespace".to_owned() } else { format!("the character {c:?}") };
            return Err(bad(format!("contains {what}; percent-encode it (a space is `%20`)")));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad("is not an absolute URL; write it as `http://host:port/path`".to_owned()));
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(bad(format!("has the scheme `{scheme}`; only `http` and `https` are supported")));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("contains credentials (`user:password@`); send them in a header instead".to_owned()));
        }
        if tail.contains('\\') {
            return Err(bad("contains a backslash; percent-encode it (`%5C`)".to_owned()));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let path_with_query = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
        Ok(Self { scheme, host, port, path_with_query })
    }

    /// `host` or `host:port`, as sent in the `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The port, or the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `scheme://host:port` with the port always written: what a `net`
    /// grant names.
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port_or_default())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.authority(), self.path_with_query)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    if authority.is_empty() {
        return Err("has no host".to_owned());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("has an IPv6 address without its closing `]`".to_owned());
        };
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("has an invalid IPv6 address `[{inside}]`"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("has unexpected text `{after}` after `]`"))?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("has no host".to_owned());
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(format!("has an invalid host `{host}`"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("has an invalid port `{p}` (write 1 to 65535, or leave it out)")),
        },
    };
    Ok((host, port))
}

// ---------------------------------------------------------------------------
// Methods and headers
// ---------------------------------------------------------------------------

/// Whether `b` may appear in a method or header name (an RFC 9110 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The method upper-cased, or why it cannot be sent.
pub fn normalize_method(method: &str) -> Result<String, Error> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Error::InvalidRequest(format!("`{method}` is not an HTTP method")));
    }
    Ok(method.to_ascii_uppercase())
}

/// Headers the host sets itself; `wasi:http` refuses them from a guest.
const HOST_CONTROLLED: [&str; 9] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Checks one header; the message never shows the value, which may be secret.
pub fn validate_header(name: &str, value: &str) -> Result<(), Error> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(Error::InvalidRequest(format!("`{name}` is not a valid header name")));
    }
    if HOST_CONTROLLED.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(Error::InvalidRequest(format!("header `{name}` is set by the host and cannot be given")));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::InvalidRequest(format!(
            "the value of header `{name}` contains a line break or another control character"
        )));
    }
    Ok(())
}

/// The headers to send: the request's, checked, plus `Content-Length` for a
/// body of known size unless the request gives one.
fn headers_to_send(request: &Request) -> Result<Vec<(String, String)>, Error> {
    for (name, value) in &request.headers {
        validate_header(name, value)?;
    }
    let mut headers = request.headers.clone();
    let known_len = match &request.body {
        Body::Empty => None,
        Body::Bytes(b) => Some(b.len() as u64),
        Body::Reader { len, .. } => *len,
    };
    if let Some(len) = known_len
        && header_value(&headers, "content-length").is_none()
    {
        headers.push(("content-length".to_owned(), len.to_string()));
    }
    Ok(headers)
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

/// Sends `request` and reads the whole response body, up to
/// `request.max_body` bytes ([`Error::BodyTooLarge`] past that).
///
/// A status of 4xx or 5xx is a response, not an error: check `status`.
/// Redirects are not followed (the next hop would need its own grant).
pub fn send(request: Request) -> Result<Response, Error> {
    let limit = request.max_body;
    let mut body = Vec::new();
    let head = exchange(request, &mut |chunk| {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        body.extend_from_slice(chunk);
        Ok(())
    })?;
    Ok(Response { status: head.status, headers: head.headers, body })
}

/// Sends `request` and streams the response body into `sink` as it
/// arrives, in bounded memory, whatever its size (`max_body` does not
/// apply; the host's own cap does). For large downloads.
///
/// The body is written whatever the status: check the returned head before
/// trusting what `sink` received.
pub fn send_to(request: Request, sink: &mut dyn std::io::Write) -> Result<ResponseHead, Error> {
    exchange(request, &mut |chunk| {
        sink.write_all(chunk).map_err(|e| Error::Other(format!("cannot store the response body: {e}")))
    })
}

/// Asks the host whether a request with `method` to `url` would pass the
/// step's `net` grant in the current call, without sending anything or
/// looking up any name: `Ok`, or the host's reason for refusing it.
pub fn check(method: &str, url: &str) -> Result<(), String> {
    let method = normalize_method(method).map_err(|e| e.to_string())?;
    Url::parse(url).map_err(|e| e.to_string())?;
    imp::check(&method, url)
}

/// Validates `request`, then lets the platform send it; `sink` receives the
/// body in chunks.
fn exchange(request: Request, sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>) -> Result<ResponseHead, Error> {
    let prepared = Prepared {
        method: normalize_method(&request.method)?,
        url: Url::parse(&request.url)?,
        headers: headers_to_send(&request)?,
        body: request.body,
        timeout: request.timeout,
    };
    imp::exchange(prepared, sink)
}

/// A request that passed every check this side of the host.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // read only by the wasi client
struct Prepared {
    method: String,
    url: Url,
    headers: Vec<(String, String)>,
    body: Body,
    timeout: Option<Duration>,
}

/// `5s`, `1.5s`, `250ms`: a duration for messages.
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))] // used by the wasi client
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    //! Native builds (a plugin's unit tests): no host to send through.

    use super::{Error, Prepared, ResponseHead};

    /// The error every request gets outside a backout component.
    pub(super) const NOT_IN_A_COMPONENT: &str = "HTTP is only available inside a backout component";

    pub(super) fn exchange(
        _request: Prepared,
        _sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<ResponseHead, Error> {
        Err(Error::Other(NOT_IN_A_COMPONENT.to_owned()))
    }

    pub(super) fn check(_method: &str, _url: &str) -> Result<(), String> {
        Err(NOT_IN_A_COMPONENT.to_owned())
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
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
        let stream =
            body.write().map_err(|()| WriteStop::Local(Error::Other("cannot write the request body".into())))?;
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
            ErrorCode::ConnectionRefused => {
                Error::ConnectionRefused(format!("nothing accepts connections at {authority}"))
            }
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
                size.map(|n| format!(" ({})", show_bytes(usize::try_from(n).unwrap_or(usize::MAX))))
                    .unwrap_or_default()
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let url = Url::parse("http://127.0.0.1:3000/health?full=1#top").unwrap();
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, Some(3000));
        assert_eq!(url.path_with_query, "/health?full=1");
        assert_eq!(url.authority(), "127.0.0.1:3000");
        assert_eq!(url.origin(), "http://127.0.0.1:3000");
        assert_eq!(url.to_string(), "http://127.0.0.1:3000/health?full=1");
    }

    #[test]
    fn missing_path_port_and_case_are_normalised() {
        let url = Url::parse("HTTPS://Example.COM").unwrap();
        assert_eq!((url.scheme, url.host.as_str(), url.port), (Scheme::Https, "example.com", None));
        assert_eq!(url.path_with_query, "/");
        assert_eq!(url.origin(), "https://example.com:443");
        assert_eq!(Url::parse("http://h?q=1").unwrap().path_with_query, "/?q=1");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let url = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("[::1]", Some(8080)));
        assert_eq!(url.authority(), "[::1]:8080");
        assert_eq!(Url::parse("http://[::1]/").unwrap().origin(), "http://[::1]:80");
    }

    #[test]
    fn unsupported_urls_are_refused_with_a_reason() {
        let cases = [
            ("ftp://h/x", "only `http` and `https`"),
            ("127.0.0.1:3000/health", "not an absolute URL"),
            ("http://user:pw@h/", "credentials"),
            ("http:///path", "has no host"),
            ("http://h:0/", "invalid port `0`"),
            ("http://h:99999/", "invalid port"),
            ("http://h:/", "invalid port ``"),
            ("http://h:+80/", "invalid port"),
            ("http://h/a b", "whitespace"),
            ("http://h/é", "percent-encode"),
            ("http://h\\x/", "invalid host"),
            ("http://[::1/", "closing `]`"),
            ("http://[zz]/", "invalid IPv6"),
            ("http://h/a\\b", "backslash"),
        ];
        for (url, expected) in cases {
            match Url::parse(url) {
                Err(Error::InvalidUrl(m)) => assert!(m.contains(expected), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn methods_are_upper_cased_tokens() {
        assert_eq!(normalize_method("get").unwrap(), "GET");
        assert_eq!(normalize_method("PURGE").unwrap(), "PURGE");
        assert!(matches!(normalize_method("GE T"), Err(Error::InvalidRequest(_))));
        assert!(matches!(normalize_method(""), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn header_checks_never_show_the_value() {
        assert!(validate_header("Authorization", "Bearer x").is_ok());
        let e = validate_header("Authorization", "Bearer s3cret\r\nX: y").unwrap_err().to_string();
        assert!(e.contains("line break") && !e.contains("s3cret"), "{e}");
        let e = validate_header("Host", "evil").unwrap_err().to_string();
        assert!(e.contains("set by the host"), "{e}");
        assert!(validate_header("bad name", "v").is_err());
        assert!(validate_header("", "v").is_err());
    }

    #[test]
    fn content_length_is_added_for_known_sizes_only() {
        let r = Request::new("POST", "http://h/").body_bytes("abc");
        assert_eq!(headers_to_send(&r).unwrap(), [("content-length".to_owned(), "3".to_owned())]);
        let r = Request::new("POST", "http://h/").header("Content-Length", "3").body_bytes("abc");
        assert_eq!(headers_to_send(&r).unwrap().len(), 1);
        let r = Request::new("POST", "http://h/").body_reader(std::io::empty(), None);
        assert!(headers_to_send(&r).unwrap().is_empty());
        let r = Request::new("PUT", "http://h/").body_reader(std::io::empty(), Some(0));
        assert_eq!(headers_to_send(&r).unwrap(), [("content-length".to_owned(), "0".to_owned())]);
        assert!(headers_to_send(&Request::get("http://h/")).unwrap().is_empty());
    }

    #[test]
    fn body_json_sets_a_content_type_unless_given() {
        let r = Request::new("POST", "http://h/").body_json(&serde_json::json!({"a": 1}));
        assert_eq!(header_value(&r.headers, "Content-Type"), Some("application/json"));
        assert!(matches!(&r.body, Body::Bytes(b) if b == br#"{"a":1}"#));
        let r = Request::new("POST", "http://h/")
            .header("Content-Type", "application/vnd.api+json")
            .body_json(&serde_json::json!(null));
        assert_eq!(r.headers.len(), 1);
    }

    #[test]
    fn builder_sets_every_field() {
        let r = Request::get("http://h/").timeout(Duration::from_millis(1500)).max_body(10).header("a", "b");
        assert_eq!(r.method, "GET");
        assert_eq!(r.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(r.max_body, 10);
        assert_eq!(Request::get("http://h/").max_body, DEFAULT_MAX_BODY);
        assert_eq!(format!("{:?}", Body::Bytes(vec![1, 2])), "Bytes(2 bytes)");
    }

    #[test]
    fn response_helpers() {
        let r = Response {
            status: 204,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"ok":true}"#.to_vec(),
        };
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("x"), None);
        assert!(r.is_success());
        assert_eq!(r.text(), r#"{"ok":true}"#);
        assert_eq!(r.json().unwrap()["ok"], true);
        #[derive(serde::Deserialize)]
        struct Ok_ {
            ok: bool,
        }
        assert!(r.json_as::<Ok_>().unwrap().ok);
        let bad = Response { status: 200, headers: vec![], body: vec![0xff, b'a'] };
        assert_eq!(bad.text(), "\u{fffd}a");
        assert!(bad.json().is_err());
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            Error::BodyTooLarge { limit: 1 << 20 }.to_string(),
            "the response body is larger than the limit of 1 MiB"
        );
        assert_eq!(
            Error::BodyTooLarge { limit: 1000 }.to_string(),
            "the response body is larger than the limit of 1000 bytes"
        );
        assert_eq!(Error::ConnectionRefused("x".into()).to_string(), "connection refused: x");
        assert_eq!(Error::Denied("no".into()).to_string(), "denied: no");
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(show_duration(Duration::from_secs(5)), "5s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn outside_a_component_requests_fail_cleanly() {
        use super::imp::NOT_IN_A_COMPONENT;
        assert_eq!(send(Request::get("http://127.0.0.1:1/")).unwrap_err(), Error::Other(NOT_IN_A_COMPONENT.into()));
        let mut sink = Vec::new();
        assert!(send_to(Request::get("http://127.0.0.1:1/"), &mut sink).is_err());
        assert_eq!(check("GET", "http://127.0.0.1:1/").unwrap_err(), NOT_IN_A_COMPONENT);
        // Checks this side of the host come first.
        assert!(matches!(send(Request::get("ftp://h/")), Err(Error::InvalidUrl(_))));
        assert!(check("GET", "nope").unwrap_err().starts_with("invalid URL"));
    }
}
