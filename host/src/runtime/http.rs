//! `wasi:http/outgoing-handler` for plugins: every request is checked and
//! sent by the host itself.
//!
//! `wasmtime-wasi-http`'s stock sender resolves and connects on its own, past
//! every WASI socket check, so this module replaces it ([`HttpPolicy`] is the
//! `WasiHttpHooks`). For each request, in order:
//!
//! 1. the method, scheme, host and port are checked against the step's `net`
//!    grant for this phase ([`NetGrants::check`]); a denial is logged with the
//!    method and URL (never headers or bodies) and the guest gets
//!    `HTTP-request-denied`; nothing is resolved or sent;
//! 2. the host resolves the name itself and checks every address
//!    ([`NetGrants::resolve`]);
//! 3. it connects only to those addresses (TLS with the original host name
//!    and the system's CA store for `https`), speaks HTTP/1.1 with `hyper`,
//!    and never follows redirects: a 3xx goes back to the guest, and a
//!    follow-up is a new request, checked like any other;
//! 4. the guest's timeouts are clamped to what is left of the call's
//!    deadline (unset ones would default to 600 s), and response bodies
//!    count against the call's `max_received` budget.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::host_api::LogLevel;
use crate::capability::net::{Host, NetGrants, Origin, Resolution};
use crate::capability::{Effect, Phase};

/// Log lines the policy produced, waiting to enter the call's log (the
/// request future cannot borrow the store, so the store drains this).
pub type Notes = Arc<Mutex<Vec<(LogLevel, String)>>>;

/// The per-call network policy: grants, phase, deadline and byte budget.
#[derive(Clone)]
pub struct HttpPolicy {
    grants: Arc<NetGrants>,
    phase: Phase,
    deadline: Instant,
    received: Arc<AtomicU64>,
    max_received: u64,
    pub(crate) notes: Notes,
}

impl std::fmt::Debug for HttpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPolicy").field("phase", &self.phase).field("grants", &self.grants).finish_non_exhaustive()
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl HttpPolicy {
    pub fn new(grants: NetGrants, phase: Phase, deadline: Instant, max_received: u64) -> Self {
        Self {
            grants: Arc::new(grants),
            phase,
            deadline,
            received: Arc::new(AtomicU64::new(0)),
            max_received,
            notes: Arc::default(),
        }
    }

    /// Whether `method` to `url` would pass the grant in this call (the
    /// `check-request` host call). Names are not resolved.
    pub fn check_url(&self, method: &str, url: &str) -> Result<(), String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        self.grants
            .check(self.phase, method, uri.scheme_str(), uri.authority().map(|a| a.as_str()))
            .map(|_| ())
            .map_err(|denied| denied.to_string())
    }

    fn note(&self, level: LogLevel, message: String) {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).push((level, message));
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError> {
        let method = request.method().as_str().to_string();
        let url = request.uri().to_string();
        let origin = match self.grants.check(
            self.phase,
            &method,
            request.uri().scheme_str(),
            request.uri().authority().map(|a| a.as_str()),
        ) {
            Ok(origin) => origin,
            Err(denied) => {
                let reason = denied.to_string();
                self.note(LogLevel::Warn, format!("denied {method} {url}: {reason}"));
                return Err(HttpError::HttpRequestDenied);
            }
        };
        if !self.phase.allows(Effect::HttpWrite)
            && let Err(reason) = without_body(request.body_mut(), self.remaining()).await
        {
            let reason = format!("`{}` may only read, and a request body is a write: {reason}", self.phase.as_str());
            self.note(LogLevel::Warn, format!("denied {method} {url}: {reason}"));
            return Err(HttpError::HttpRequestDenied);
        }
        let timeouts = Timeouts::clamp(options, self.remaining());
        let addrs = match tokio::time::timeout(timeouts.connect, self.grants.resolve(&origin)).await {
            Err(_) => return Err(HttpError::DnsTimeout),
            Ok(Ok(addrs)) => addrs,
            Ok(Err(Resolution::Denied(denied))) => {
                let reason = denied.to_string();
                self.note(LogLevel::Warn, format!("denied {method} {url}: {reason}"));
                return Err(HttpError::HttpRequestDenied);
            }
            Ok(Err(Resolution::Failed(reason))) => {
                self.note(LogLevel::Warn, format!("{method} {url}: {reason}"));
                return Err(HttpError::DnsError { rcode: Some(reason), info_code: None });
            }
        };
        let stream = connect(&addrs, &origin, timeouts.connect).await?;
        let (mut sender, conn) =
            tokio::time::timeout(timeouts.connect, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
                .await
                .map_err(|_| HttpError::ConnectionTimeout)??;

        // Origin-form request target: the scheme and host travel in the
        // connection and the `host` header, not in the request line.
        let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        *request.uri_mut() =
            http::Uri::builder().path_and_query(target).build().map_err(|_| HttpError::HttpRequestUriInvalid)?;

        let started = Instant::now();
        let send = async {
            tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)?
                .map_err(HttpError::from)
        };
        let mut send = std::pin::pin!(send);
        let mut conn = Some(conn);
        // Drive the connection while waiting for the response head.
        let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                let Some(c) = conn.as_mut() else { return Poll::Pending };
                let done = ready!(Pin::new(c).poll(cx));
                conn = None;
                match done {
                    Ok(()) => send.as_mut().poll(cx),
                    Err(e) => Poll::Ready(Err(HttpError::from(e))),
                }
            }
        })
        .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                self.note(LogLevel::Debug, format!("{method} {url}: {e}"));
                return Err(e);
            }
        };
        self.note(
            LogLevel::Debug,
            format!("{method} {url} → {} ({} ms)", response.status().as_u16(), started.elapsed().as_millis()),
        );

        let budget_left = self.max_received.saturating_sub(self.received.load(Ordering::SeqCst));
        if let Some(declared) = response.body().size_hint().exact()
            && declared > budget_left
        {
            self.note(
                LogLevel::Warn,
                format!(
                    "{method} {url}: the response body ({declared} bytes) is larger than what is left of the step's \
                     `max_received` ({budget_left} of {} bytes)",
                    self.max_received
                ),
            );
            return Err(HttpError::HttpResponseBodySize(Some(declared)));
        }
        let (parts, incoming) = response.into_parts();
        let body = BoundedBody {
            inner: incoming,
            between_bytes: timeouts.between_bytes,
            idle: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
            deadline: Box::pin(tokio::time::sleep_until(self.deadline.into())),
            received: self.received.clone(),
            max_received: self.max_received,
            notes: self.notes.clone(),
            what: format!("{method} {url}"),
        };
        // The connection's remaining I/O (the body), driven by wasi-http.
        let io = async move {
            match conn {
                Some(conn) => conn.await.map_err(HttpError::from),
                None => Ok(()),
            }
        };
        let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
        Ok((http::Response::from_parts(parts, body.boxed_unsync()), io))
    }
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = self.clone();
        Box::new(policy.send(request, options))
    }
}

/// Makes sure a request sent while the call may only read carries no body:
/// reads the guest's body until its end (within the call's time) and
/// refuses at the first byte. An empty body is put back in its place.
async fn without_body(body: &mut WasiBody, remaining: Duration) -> Result<(), String> {
    let work = async {
        while !body.is_end_stream() {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) if frame.data_ref().is_some_and(|data| !data.is_empty()) => {
                    return Err("the request has a body".to_string());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("its body failed: {e}")),
            }
        }
        Ok(())
    };
    tokio::time::timeout(remaining, work).await.map_err(|_| "its body never ended".to_string())??;
    *body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
    Ok(())
}

/// The guest's timeouts, each clamped to what is left of the call.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn clamp(options: Option<RequestOptions>, remaining: Duration) -> Self {
        let options = options.unwrap_or_default();
        // Never zero: tokio intervals panic on it, and a zero budget is
        // already handled by the call's own deadline.
        let remaining = remaining.max(Duration::from_millis(1));
        let clamp = |d: Option<Duration>| d.map_or(remaining, |d| d.min(remaining)).max(Duration::from_millis(1));
        Self {
            connect: clamp(options.connect_timeout),
            first_byte: clamp(options.first_byte_timeout),
            between_bytes: clamp(options.between_bytes_timeout),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Connects to the first address that answers, then adds TLS for `https`.
async fn connect(addrs: &[SocketAddr], origin: &Origin, timeout: Duration) -> Result<Box<dyn Stream>, HttpError> {
    let mut last = HttpError::DestinationUnavailable;
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = HttpError::ConnectionRefused,
            Ok(Err(e)) => last = HttpError::Connect(e),
            Err(_) => last = HttpError::ConnectionTimeout,
        }
    }
    let tcp = tcp.ok_or(last)?;
    if origin.scheme == crate::capability::net::Scheme::Http {
        return Ok(Box::new(tcp));
    }
    let name = match &origin.host {
        Host::Name(name) => {
            rustls::pki_types::ServerName::try_from(name.clone()).map_err(|_| HttpError::TlsProtocolError)?
        }
        Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.to_string().contains("certificate")) {
                HttpError::TlsCertificateError
            } else {
                HttpError::Tls(e)
            }
        })?;
    Ok(Box::new(tls))
}

/// rustls with ring and the system's CA store (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` are honoured), built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                // A malformed system certificate must not disable TLS.
                let _ = roots.add(cert);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// A response body bounded in bytes (the call's shared budget) and time
/// (between bytes, and the call's deadline).
struct BoundedBody {
    inner: hyper::body::Incoming,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    received: Arc<AtomicU64>,
    max_received: u64,
    notes: Notes,
    what: String,
}

impl Body for BoundedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                let total = self.received.fetch_add(len, Ordering::SeqCst) + len;
                if total > self.max_received {
                    let message = format!(
                        "{}: stopped reading the response: the step's `max_received` of {} bytes is used up",
                        self.what, self.max_received
                    );
                    self.notes.lock().unwrap_or_else(|e| e.into_inner()).push((LogLevel::Warn, message));
                    return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(total)))));
                }
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() || self.idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped_to_the_time_left() {
        let t = Timeouts::clamp(None, Duration::from_secs(5));
        assert_eq!(
            (t.connect, t.first_byte, t.between_bytes),
            (Duration::from_secs(5), Duration::from_secs(5), Duration::from_secs(5))
        );
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(1)),
            first_byte_timeout: Some(Duration::from_secs(600)),
            between_bytes_timeout: Some(Duration::ZERO),
        };
        let t = Timeouts::clamp(Some(asked), Duration::from_secs(5));
        assert_eq!(t.connect, Duration::from_secs(1));
        assert_eq!(t.first_byte, Duration::from_secs(5));
        assert_eq!(t.between_bytes, Duration::from_millis(1));
        assert_eq!(Timeouts::clamp(None, Duration::ZERO).connect, Duration::from_millis(1));
    }
}
