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

mod headers;
mod url;
#[cfg(target_arch = "wasm32")]
mod wasi;

use headers::headers_to_send;
pub use headers::{normalize_method, validate_header};
pub use url::{Scheme, Url};

#[cfg(not(target_arch = "wasm32"))]
use native as imp;
#[cfg(target_arch = "wasm32")]
use wasi as imp;

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
mod native {
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

#[cfg(test)]
mod tests {
    use super::*;

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
