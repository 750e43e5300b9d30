//! Qdrant's REST API, as its OpenAPI document (v1.19.0) describes the
//! endpoints this step uses, over an [`Env`] that sends the requests.
//!
//! Every answer is read as the document says: `{"result": …, "status":
//! "ok", "time": …}` on success, `{"status": {"error": "…"}, "time": …}` with
//! a 4xx or 5xx (the error text is kept verbatim for the operator), `202`
//! with no `result` when Qdrant accepted a request without waiting. Every
//! request carries the `api-key` header when a key is configured; no message
//! built here ever contains it.

#![forbid(unsafe_code)]

use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

use backout_sdk::http::{Error as HttpError, Request, Response, ResponseHead};
use serde_json::Value;

use crate::snapshots::Snapshot;

/// What the step needs from its surroundings: the host in a component, a
/// scripted fake in unit tests.
pub trait Env {
    fn send(&mut self, request: Request) -> Result<Response, HttpError>;
    fn send_to(&mut self, request: Request, sink: &mut dyn Write) -> Result<ResponseHead, HttpError>;
    /// Whether the step's `net` grant allows `method` to `url` in this call.
    fn check(&mut self, method: &str, url: &str) -> Result<(), String>;
    /// A granted environment variable.
    fn var(&self, name: &str) -> Option<String>;
    fn sleep(&mut self, duration: Duration);
    fn info(&mut self, line: String);
    fn warn(&mut self, line: String);
    /// A callback for progress in bytes, usable while a request borrows the env.
    fn progress_reporter(&self) -> Box<dyn FnMut(u64, Option<u64>)>;
}

/// Why a request to Qdrant did not give the answer asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The request never reached Qdrant: denied by the grant, nothing
    /// listening, no such name, or refused as malformed before sending.
    NotSent(HttpError),
    /// A read got no complete answer (time ran out, the connection broke).
    NoAnswer(HttpError),
    /// A request that changes something got no complete answer: Qdrant may
    /// or may not have carried it out.
    OutcomeUnknown(HttpError),
    /// Qdrant answered with an error status; `error` is its `status.error`
    /// verbatim (or the body's text when it is not the documented JSON).
    Status { status: u16, error: String },
    /// A success status with a body that is not what the document describes.
    Unexpected(String),
}

/// A failed request: what was asked (`PUT /collections/docs/snapshots/recover`)
/// and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub what: String,
    pub failure: Failure,
}

impl ApiError {
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self.failure, Failure::OutcomeUnknown(_))
    }

    pub fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Status { status, .. } => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = &self.what;
        match &self.failure {
            Failure::NotSent(HttpError::Denied(reason)) => write!(f, "{what} was denied by the host: {reason}"),
            Failure::NotSent(e) => write!(f, "{what} was not sent: {e}"),
            Failure::NoAnswer(e) => write!(f, "{what} got no complete answer: {e}"),
            Failure::OutcomeUnknown(e) => write!(
                f,
                "{what} got no complete answer ({e}); the outcome is unknown: Qdrant may or may not have carried it out"
            ),
            Failure::Status { status, error } => write!(f, "Qdrant answered {status} to {what}: {error}"),
            Failure::Unexpected(m) => write!(f, "{what}: {m}"),
        }
    }
}

/// `GET /` (`VersionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub title: String,
    pub version: String,
    pub commit: Option<String>,
}

/// The parts of `GET /collections/{c}` (`CollectionInfo`) the step uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// `green`, `yellow`, `grey` or `red`.
    pub status: String,
    /// Approximate; may be null.
    pub points_count: Option<u64>,
}

/// How Qdrant answered a request that may be carried out in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done<T> {
    /// 200: done, with the result.
    Completed(T),
    /// 202: accepted, carried out later (the document's answer for
    /// `wait=false`; no result, so no snapshot name).
    Accepted,
}

/// Percent-encodes one URL path segment (everything but RFC 3986's unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Qdrant's error text from an error answer: `status.error` when the body is
/// the documented `ErrorResponse`, else the body's text, trimmed and bounded.
pub fn error_text(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(error) = value.pointer("/status/error").and_then(Value::as_str)
    {
        return error.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no error text)".to_owned();
    }
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A client for one collection on one Qdrant server.
pub struct Client<'e> {
    env: &'e mut dyn Env,
    /// `url` without a trailing `/`.
    pub base: String,
    pub collection: String,
    api_key: Option<String>,
    pub timeout: Duration,
}

impl fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("collection", &self.collection)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Reads,
    Changes,
}

impl<'e> Client<'e> {
    pub fn new(env: &'e mut dyn Env, base: &str, collection: &str, api_key: Option<String>, timeout: Duration) -> Self {
        Self { env, base: base.to_owned(), collection: collection.to_owned(), api_key, timeout }
    }

    pub fn env(&mut self) -> &mut dyn Env {
        &mut *self.env
    }

    /// `/collections/{c}{tail}`, the collection percent-encoded.
    pub fn collection_path(&self, tail: &str) -> String {
        format!("/collections/{}{tail}", encode_segment(&self.collection))
    }

    /// `/collections/{c}/snapshots/{name}`.
    pub fn snapshot_path(&self, name: &str) -> String {
        self.collection_path(&format!("/snapshots/{}", encode_segment(name)))
    }

    /// The URL at which Qdrant serves one of the collection's snapshots: the
    /// `location` to recover it from.
    pub fn snapshot_url(&self, name: &str) -> String {
        format!("{}{}", self.base, self.snapshot_path(name))
    }

    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The key, for the `api_key` field of a recover body only.
    fn api_key_for_body(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    fn request(&self, method: &str, path_and_query: &str) -> Request {
        let mut request = Request::new(method, format!("{}{path_and_query}", self.base)).timeout(self.timeout);
        if let Some(key) = &self.api_key {
            request = request.header("api-key", key.clone());
        }
        request
    }

    fn what(method: &str, path_and_query: &str) -> String {
        format!("{method} {}", path_and_query.split('?').next().unwrap_or(path_and_query))
    }

    fn exchange(&mut self, request: Request, effect: Effect) -> Result<Response, ApiError> {
        let what = Self::what(&request.method, request.url.strip_prefix(&self.base).unwrap_or(&request.url));
        self.env.send(request).map_err(|e| ApiError { what, failure: transport(e, effect) })
    }

    /// Sends a request and returns the `result` of a 200 (or `Accepted` for
    /// a 202); an error status becomes [`Failure::Status`].
    fn call(&mut self, request: Request, effect: Effect) -> Result<Done<Value>, ApiError> {
        let what = Self::what(&request.method, request.url.strip_prefix(&self.base).unwrap_or(&request.url));
        let response = self.exchange(request, effect)?;
        let fail = |failure| ApiError { what: what.clone(), failure };
        match response.status {
            200 => {
                let value: Value = response.json().map_err(|e| {
                    fail(Failure::Unexpected(format!(
                        "the answer is not the documented JSON ({e}): {}",
                        error_text(&response.body)
                    )))
                })?;
                match value.get("result") {
                    Some(result) => Ok(Done::Completed(result.clone())),
                    None => Err(fail(Failure::Unexpected(format!(
                        "the answer has no `result`: {}",
                        error_text(&response.body)
                    )))),
                }
            }
            202 => Ok(Done::Accepted),
            status => Err(fail(Failure::Status { status, error: error_text(&response.body) })),
        }
    }

    fn call_completed(&mut self, request: Request, effect: Effect) -> Result<Value, ApiError> {
        let what = Self::what(&request.method, request.url.strip_prefix(&self.base).unwrap_or(&request.url));
        match self.call(request, effect)? {
            Done::Completed(v) => Ok(v),
            Done::Accepted => Err(ApiError {
                what,
                failure: Failure::Unexpected("Qdrant answered 202 (accepted) without a result".to_owned()),
            }),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, ApiError> {
        serde_json::from_value(value.clone()).map_err(|e| ApiError {
            what: what.to_owned(),
            failure: Failure::Unexpected(format!("unexpected `result` ({e}): {value}")),
        })
    }

    /// `GET /`: the server's title and version (needs no key, but gets it).
    pub fn version(&mut self) -> Result<VersionInfo, ApiError> {
        let response = self.exchange(self.request("GET", "/"), Effect::Reads)?;
        let what = "GET /".to_owned();
        if response.status != 200 {
            return Err(ApiError {
                what,
                failure: Failure::Status { status: response.status, error: error_text(&response.body) },
            });
        }
        let value: Value = response.json().map_err(|e| ApiError {
            what: what.clone(),
            failure: Failure::Unexpected(format!("the answer is not Qdrant's version JSON ({e})")),
        })?;
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        match (text("title"), text("version")) {
            (Some(title), Some(version)) => Ok(VersionInfo { title, version, commit: text("commit") }),
            _ => Err(ApiError {
                what,
                failure: Failure::Unexpected(format!("the answer has no `title` and `version`: {value}")),
            }),
        }
    }

    /// `GET /readyz`: its status and text (200 `all shards are ready`, 503
    /// `some shards are not ready`). Any status is an answer here.
    pub fn readyz(&mut self) -> Result<(u16, String), ApiError> {
        let response = self.exchange(self.request("GET", "/readyz"), Effect::Reads)?;
        Ok((response.status, response.text().trim().to_owned()))
    }

    /// `GET /collections/{c}`: `None` when Qdrant answers 404.
    pub fn collection_info(&mut self) -> Result<Option<CollectionInfo>, ApiError> {
        let path = self.collection_path("");
        let result = match self.call_completed(self.request("GET", &path), Effect::Reads) {
            Ok(v) => v,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let status = result.get("status").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| ApiError {
            what: Self::what("GET", &path),
            failure: Failure::Unexpected("the collection info has no `status`".to_owned()),
        })?;
        Ok(Some(CollectionInfo { status, points_count: result.get("points_count").and_then(Value::as_u64) }))
    }

    /// `POST /collections/{c}/points/count` with `{"exact": true}`.
    pub fn count_exact(&mut self) -> Result<u64, ApiError> {
        let path = self.collection_path("/points/count");
        let request = self.request("POST", &path).body_json(&serde_json::json!({ "exact": true }));
        let result = self.call_completed(request, Effect::Reads)?;
        result.get("count").and_then(Value::as_u64).ok_or_else(|| ApiError {
            what: Self::what("POST", &path),
            failure: Failure::Unexpected(format!("`result.count` is not a count: {result}")),
        })
    }

    /// `GET /collections/{c}/snapshots`, in Qdrant's order.
    pub fn list(&mut self) -> Result<Vec<Snapshot>, ApiError> {
        let path = self.collection_path("/snapshots");
        let result = self.call_completed(self.request("GET", &path), Effect::Reads)?;
        Self::parse(&Self::what("GET", &path), result)
    }

    /// `POST /collections/{c}/snapshots?wait=true`.
    pub fn create(&mut self) -> Result<Done<Snapshot>, ApiError> {
        let path = self.collection_path("/snapshots?wait=true");
        match self.call(self.request("POST", &path), Effect::Changes)? {
            Done::Completed(v) => Ok(Done::Completed(Self::parse(&Self::what("POST", &path), v)?)),
            Done::Accepted => Ok(Done::Accepted),
        }
    }

    /// `DELETE /collections/{c}/snapshots/{name}?wait=true`.
    pub fn delete(&mut self, name: &str) -> Result<Done<()>, ApiError> {
        let path = format!("{}?wait=true", self.snapshot_path(name));
        Ok(match self.call(self.request("DELETE", &path), Effect::Changes)? {
            Done::Completed(_) => Done::Completed(()),
            Done::Accepted => Done::Accepted,
        })
    }

    /// `PUT /collections/{c}/snapshots/recover?wait=true` with a
    /// `SnapshotRecover` body. The key goes in `api_key` only when
    /// `send_key` (Qdrant then fetches `location` with it: only for its own
    /// address, never for another server).
    pub fn recover(
        &mut self,
        location: &str,
        priority: &str,
        checksum: Option<&str>,
        send_key: bool,
    ) -> Result<Done<()>, ApiError> {
        let path = self.collection_path("/snapshots/recover?wait=true");
        let mut body = serde_json::json!({ "location": location, "priority": priority });
        if let Some(sum) = checksum {
            body["checksum"] = Value::from(sum);
        }
        if send_key && let Some(key) = self.api_key_for_body() {
            body["api_key"] = Value::from(key);
        }
        let request = self.request("PUT", &path).body_json(&body);
        Ok(match self.call(request, Effect::Changes)? {
            Done::Completed(_) => Done::Completed(()),
            Done::Accepted => Done::Accepted,
        })
    }

    /// `POST /collections/{c}/snapshots/upload?wait=true&priority=…&checksum=…`
    /// with a `multipart/form-data` body whose `snapshot` field streams from
    /// `file` (`len` bytes).
    pub fn upload(
        &mut self,
        file: Box<dyn Read>,
        len: u64,
        multipart: &crate::multipart::Multipart,
        priority: &str,
        checksum: Option<&str>,
    ) -> Result<Done<()>, ApiError> {
        let mut path = self.collection_path(&format!("/snapshots/upload?wait=true&priority={priority}"));
        if let Some(sum) = checksum {
            path.push_str(&format!("&checksum={sum}"));
        }
        let body = std::io::Cursor::new(multipart.head.clone())
            .chain(file)
            .chain(std::io::Cursor::new(multipart.tail.clone()));
        let request = self
            .request("POST", &path)
            .header("content-type", multipart.content_type())
            .body_reader(body, Some(multipart.len(len)));
        Ok(match self.call(request, Effect::Changes)? {
            Done::Completed(_) => Done::Completed(()),
            Done::Accepted => Done::Accepted,
        })
    }

    /// `GET /collections/{c}/snapshots/{name}`: streams the body into `sink`
    /// whatever the status; the caller checks the head.
    pub fn download(&mut self, name: &str, sink: &mut dyn Write) -> Result<ResponseHead, ApiError> {
        let path = self.snapshot_path(name);
        let request = self.request("GET", &path);
        self.env
            .send_to(request, sink)
            .map_err(|e| ApiError { what: Self::what("GET", &path), failure: transport(e, Effect::Reads) })
    }
}

/// Which transport errors mean the request never left, and which leave a
/// change's outcome unknown.
fn transport(error: HttpError, effect: Effect) -> Failure {
    match error {
        HttpError::Denied(_)
        | HttpError::InvalidUrl(_)
        | HttpError::InvalidRequest(_)
        | HttpError::ConnectionRefused(_)
        | HttpError::Dns(_) => Failure::NotSent(error),
        _ if effect == Effect::Changes => Failure::OutcomeUnknown(error),
        _ => Failure::NoAnswer(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("docs-1_2.snapshot~"), "docs-1_2.snapshot~");
        assert_eq!(encode_segment("my docs/ü?"), "my%20docs%2F%C3%BC%3F");
    }

    #[test]
    fn error_text_is_qdrants_status_error_verbatim() {
        let body = br#"{"status":{"error":"Not found: Collection `x` doesn't exist!"},"time":0.0001}"#;
        assert_eq!(error_text(body), "Not found: Collection `x` doesn't exist!");
        assert_eq!(error_text(b"Must provide an API key\n"), "Must provide an API key");
        assert_eq!(error_text(b""), "(no error text)");
        assert!(error_text(&[b'x'; 2000]).ends_with('…'));
    }

    #[test]
    fn transport_errors_before_sending_are_not_unknown_outcomes() {
        let refused = HttpError::ConnectionRefused("x".into());
        assert!(matches!(transport(refused, Effect::Changes), Failure::NotSent(_)));
        let timeout = HttpError::Timeout("x".into());
        assert!(matches!(transport(timeout.clone(), Effect::Changes), Failure::OutcomeUnknown(_)));
        assert!(matches!(transport(timeout, Effect::Reads), Failure::NoAnswer(_)));
        let cut = HttpError::Protocol("closed".into());
        assert!(matches!(transport(cut, Effect::Changes), Failure::OutcomeUnknown(_)));
    }

    #[test]
    fn messages_name_the_request_without_its_query() {
        let e = ApiError {
            what: Client::what("PUT", "/collections/docs/snapshots/recover?wait=true"),
            failure: Failure::Status { status: 500, error: "Service internal error: boom".into() },
        };
        assert_eq!(
            e.to_string(),
            "Qdrant answered 500 to PUT /collections/docs/snapshots/recover: Service internal error: boom"
        );
    }
}
