//! Mirrors: a registry fetched over HTTP(S) from a static file server, for
//! the connected side of an air gap (the other side imports a bundle).
//!
//! Publishing is serving the registry directory as it is, with any static
//! file server (`python3 -m http.server`, nginx, an object store's website
//! endpoint). Under the mirror URL the server must answer:
//!
//! ```text
//! <URL>/index.toml                 the publisher's index, byte for byte
//! <URL>/index.toml.sig             its signature; 404 means "unsigned"
//! <URL>/blobs/sha256/<hex>         every blob the index references
//! ```
//!
//! [`Registry::mirror`] trusts nothing it receives: the index passes the
//! very policy [`Registry::import`] applies (signature, trusted key,
//! accepted serial, expiry), then the registry's own serial, and every blob
//! is hashed while it streams into a temporary file beside its final place
//! and refused as soon as it grows past the size the index gives it. Only
//! when every missing blob is present and verified are they, the signature
//! and the index admitted, by the same code and in the same order as an
//! import: on any failure the registry is byte for byte as it was.
//!
//! Network behaviour, so it is predictable behind firewalls:
//!
//! - only `http://` and `https://` URLs, without credentials, query or
//!   fragment; TLS is rustls with the operating system's CA store, so an
//!   internal CA works as it does for curl;
//! - redirects are followed only within the mirror's origin (same scheme,
//!   host and port), at most [`MAX_REDIRECTS`] in a row; a redirect to
//!   another origin is an error (no http → https upgrade either: give the
//!   `https://` URL);
//! - proxy environment variables (`HTTPS_PROXY`, …) are ignored: the
//!   mirror is contacted directly;
//! - a connect timeout and an idle timeout per read ([`MirrorOptions`],
//!   30 s each by default); there is no overall deadline, so a large blob
//!   on a slow but live link still arrives;
//! - no compression is negotiated: blobs are hashed as sent.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url, redirect};

use crate::bundle::{BlobSource, ImportReport, MAX_INDEX, Publication};
use crate::digest::Hasher;
use crate::format::FormatError;
use crate::fsio::{ClosedTempFile, TempFile};
use crate::registry::{INDEX_FILE, SIGNATURE_FILE};
use crate::signing::{IndexSignature, MAX_SIGNATURE_FILE};
use crate::{AcceptedSerials, Digest, Error, Registry, TrustStore};
use crate::{IndexError, StoreError};

/// Redirects followed in a row (within the mirror's origin) before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// How long [`Registry::mirror`] waits on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Longest wait for a TCP connection (and TLS handshake) to the server.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer (headers or body); it
    /// restarts whenever bytes arrive.
    pub read_timeout: Duration,
}

impl Default for MirrorOptions {
    /// 30 s to connect, 30 s without a byte.
    fn default() -> Self {
        MirrorOptions { connect_timeout: Duration::from_secs(30), read_timeout: Duration::from_secs(30) }
    }
}

impl Registry {
    /// Makes the registry at `root` (created if missing) a copy of the one
    /// published at `url`, all or nothing, verifying as
    /// [`Registry::import`] does.
    ///
    /// The server serves a registry directory as it is: `URL/index.toml`,
    /// `URL/index.toml.sig` (a 404 means unsigned) and
    /// `URL/blobs/sha256/<hex>`. Requests go straight to it (proxy
    /// variables are ignored) with rustls and the system's CA store;
    /// redirects are followed only within its scheme, host and port (at
    /// most [`MAX_REDIRECTS`]); [`MirrorOptions`] bounds connecting and each
    /// wait for data, with no overall deadline.
    ///
    /// 1. `url` must be `http://` or `https://` ([`MirrorError::MirrorUrl`](crate::MirrorError::MirrorUrl)); a
    ///    trailing slash is optional.
    /// 2. `index.toml` (at most 64 MiB) and `index.toml.sig` (a 404 means
    ///    unsigned) are fetched and pass the signature policy of
    ///    [`Registry::check_trust`], with the serial `accepted` remembers for
    ///    the index's signing key.
    /// 3. Under the write lock, the registry's own serial is compared as
    ///    for an import: older is [`TrustError::Rollback`](crate::TrustError::Rollback), the same serial with
    ///    other bytes [`TrustError::SerialReused`](crate::TrustError::SerialReused), the same index a no-op that
    ///    fetches no blob (`unchanged` in the report).
    /// 4. Every blob the registry does not have yet is streamed into a
    ///    temporary file in the blob directory, hashed as it arrives, and
    ///    refused as soon as it grows past the index's `size`
    ///    ([`MirrorError::MirrorTooLarge`](crate::MirrorError::MirrorTooLarge)), ends short or drops
    ///    ([`MirrorError::Fetch`](crate::MirrorError::Fetch)), is answered with another status than 200
    ///    ([`MirrorError::HttpStatus`](crate::MirrorError::HttpStatus)), or hashes to another digest
    ///    ([`MirrorError::MirrorBlobMismatch`](crate::MirrorError::MirrorBlobMismatch)). Blobs already present are kept
    ///    as they are (`registry verify` checks them).
    /// 5. The verified blobs, then the signature, then the index are
    ///    renamed into place exactly as [`Registry::import`] does.
    ///
    /// On any error every temporary file is removed and the registry is
    /// byte for byte as it was (a registry directory that did not exist may
    /// be left created, empty but for `.lock` and `blobs/sha256/`). The
    /// report's `trusted` is the serial to record in [`AcceptedSerials`].
    ///
    /// Blocks the calling thread until done. The transfers run on a thread
    /// of their own with a single-threaded tokio runtime, so this may be
    /// called from synchronous code and from inside an async runtime alike.
    pub fn mirror(
        root: &Path,
        url: &str,
        trust: &TrustStore,
        accepted: &AcceptedSerials,
        now: SystemTime,
        options: &MirrorOptions,
    ) -> Result<ImportReport, Error> {
        let base = parse_base(url)?;
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let fetcher = Fetcher::new(&base, options)?;
                fetcher.mirror(root, trust, accepted, now)
            });
            worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// The mirror URL as the directory every file is fetched under: checked,
/// with exactly one trailing slash.
fn parse_base(url: &str) -> Result<Url, Error> {
    let invalid =
        |reason: &str| Error::Mirror(MirrorError::MirrorUrl { url: url.to_owned(), reason: reason.to_owned() });
    let mut base = Url::parse(url).map_err(|e| match e {
        url_error if !url.contains("://") => {
            invalid(&format!("{url_error}: give the whole URL, starting with `https://` or `http://`"))
        }
        url_error => invalid(&url_error.to_string()),
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(invalid(&format!("`{}:` is not supported: use `https://` or `http://`", base.scheme())));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(invalid("credentials in the URL are not supported"));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(invalid("it must name the registry directory, without `?query` or `#fragment`"));
    }
    let path = format!("{}/", base.path().trim_end_matches('/'));
    base.set_path(&path);
    Ok(base)
}

/// One mirror run's HTTP client, on its own single-threaded runtime.
struct Fetcher<'a> {
    base: &'a Url,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    options: &'a MirrorOptions,
}

impl<'a> Fetcher<'a> {
    fn new(base: &'a Url, options: &'a MirrorOptions) -> Result<Fetcher<'a>, Error> {
        let setup_error = |what: &str, source: Box<dyn std::error::Error + Send + Sync>| {
            Error::Mirror(MirrorError::Fetch {
                url: base.to_string(),
                blob: None,
                reason: format!("failed to set up {what}"),
                source: Some(source),
            })
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| setup_error("the async runtime", e.into()))?;
        let _context = runtime.enter();
        let client = reqwest::Client::builder()
            .user_agent(concat!("backout-registry/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .redirect(redirect::Policy::custom(same_origin_only))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .build()
            .map_err(|e| setup_error("the HTTP client", e.into()))?;
        Ok(Fetcher { base, runtime, client, options })
    }

    /// Steps 2 to 5 of [`Registry::mirror`].
    fn mirror(
        &self,
        root: &Path,
        trust: &TrustStore,
        accepted: &AcceptedSerials,
        now: SystemTime,
    ) -> Result<ImportReport, Error> {
        let index_url = self.url(INDEX_FILE);
        let signature_url = self.url(SIGNATURE_FILE);
        let raw = self.small(&index_url, MAX_INDEX)?.ok_or_else(|| {
            Error::Mirror(MirrorError::HttpStatus {
                url: index_url.to_string(),
                blob: None,
                status: StatusCode::NOT_FOUND.as_u16(),
            })
        })?;
        let signature = self.small(&signature_url, MAX_SIGNATURE_FILE)?;

        // The key is known only from the signature; a signature that does
        // not parse is refused by the policy below when it matters.
        let index_display = PathBuf::from(index_url.as_str());
        let signature_display = PathBuf::from(signature_url.as_str());
        let accepted_serial = signature
            .as_deref()
            .and_then(|bytes| IndexSignature::parse(bytes, &signature_display).ok())
            .and_then(|signature| accepted.floor(root, &signature.key));
        let publication =
            Publication::check(raw, signature, &index_display, &signature_display, trust, accepted_serial, now)?;

        let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        for entry in &publication.index.entries {
            if let Some(&size) = sizes.get(&entry.digest).filter(|&&size| size != entry.size) {
                return Err(IndexError::Format(FormatError::Parse {
                    path: index_display,
                    message: format!(
                        "`{}` is pinned with sizes {size} and {} by different entries",
                        entry.digest, entry.size
                    ),
                })
                .into());
            }
            sizes.insert(entry.digest, entry.size);
        }
        let mut blobs = MirrorBlobs { fetcher: self, sizes, staged: BTreeMap::new() };
        publication.admit(root, &mut blobs)
    }

    /// `file` under the mirror URL.
    fn url(&self, file: &str) -> Url {
        self.base.join(file).expect("a relative path joins onto an http(s) URL")
    }

    /// Fetches a small file whole: `None` on 404, an error on any other
    /// status but 200 and as soon as it grows past `limit`.
    fn small(&self, url: &Url, limit: u64) -> Result<Option<Vec<u8>>, Error> {
        self.runtime.block_on(async {
            let Some(mut response) = self.get(url, None, true).await? else { return Ok(None) };
            let mut bytes = Vec::new();
            let lost = |e, received: usize| self.fetch_error(url, None, e, Some((received as u64, None)));
            while let Some(chunk) = response.chunk().await.map_err(|e| lost(e, bytes.len()))? {
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(MirrorError::MirrorTooLarge { url: url.to_string(), blob: None, limit }.into());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some(bytes))
        })
    }

    /// Streams one blob into `temp`, hashing it; refuses it as soon as it
    /// grows past `size`, and if it ends short or hashes to another digest.
    fn blob(&self, digest: &Digest, size: u64, temp: &mut TempFile) -> Result<(), Error> {
        let url = self.url(&format!("blobs/sha256/{}", digest.hex()));
        let too_large =
            || Error::Mirror(MirrorError::MirrorTooLarge { url: url.to_string(), blob: Some(*digest), limit: size });
        self.runtime.block_on(async {
            let mut response = self.get(&url, Some(digest), false).await?.expect("404 is an error for blobs");
            if response.content_length().is_some_and(|announced| announced > size) {
                return Err(too_large());
            }
            let mut hasher = Hasher::default();
            let mut received = 0u64;
            let lost = |e, received| self.fetch_error(&url, Some(digest), e, Some((received, Some(size))));
            while let Some(chunk) = response.chunk().await.map_err(|e| lost(e, received))? {
                received += chunk.len() as u64;
                if received > size {
                    return Err(too_large());
                }
                hasher.update(&chunk);
                temp.write_all(&chunk)?;
            }
            if received < size {
                return Err(MirrorError::Fetch {
                    url: url.to_string(),
                    blob: Some(*digest),
                    reason: format!("the transfer ended after {received} of {size} bytes"),
                    source: None,
                }
                .into());
            }
            let (computed, _) = hasher.finish();
            if computed != *digest {
                return Err(
                    MirrorError::MirrorBlobMismatch { url: url.to_string(), expected: *digest, computed }.into()
                );
            }
            Ok(())
        })
    }

    /// Sends a GET and checks the status: 200 is the answer, 404 is `None`
    /// when `absent_ok`, anything else is [`MirrorError::HttpStatus`](crate::MirrorError::HttpStatus).
    async fn get(&self, url: &Url, blob: Option<&Digest>, absent_ok: bool) -> Result<Option<reqwest::Response>, Error> {
        let response = self.client.get(url.clone()).send().await.map_err(|e| self.fetch_error(url, blob, e, None))?;
        match response.status() {
            StatusCode::OK => Ok(Some(response)),
            StatusCode::NOT_FOUND if absent_ok => Ok(None),
            status => Err(Error::Mirror(MirrorError::HttpStatus {
                url: url.to_string(),
                blob: blob.copied(),
                status: status.as_u16(),
            })),
        }
    }

    /// An [`MirrorError::Fetch`](crate::MirrorError::Fetch) that says in words what went wrong.
    fn fetch_error(
        &self,
        url: &Url,
        blob: Option<&Digest>,
        error: reqwest::Error,
        progress: Option<(u64, Option<u64>)>,
    ) -> Error {
        let mut reason = if error.is_timeout() && error.is_connect() {
            format!("no connection within {}", seconds(self.options.connect_timeout))
        } else if error.is_timeout() {
            format!("no data arrived for {}", seconds(self.options.read_timeout))
        } else if error.is_redirect() {
            error.source().map(ToString::to_string).unwrap_or_else(|| "a redirect was refused".to_owned())
        } else if error.is_connect() {
            "could not connect".to_owned()
        } else if progress.is_some() {
            "the connection was lost".to_owned()
        } else {
            "the request failed".to_owned()
        };
        match progress {
            Some((received, Some(expected))) => reason.push_str(&format!(" after {received} of {expected} bytes")),
            Some((received, None)) => {
                reason.push_str(&format!(" after {}", crate::text::count(received as usize, "byte")))
            }
            None => {}
        }
        Error::Mirror(MirrorError::Fetch {
            url: url.to_string(),
            blob: blob.copied(),
            reason,
            source: Some(Box::new(error.without_url())),
        })
    }
}

/// The redirect policy: within the first URL's origin only, a few hops.
fn same_origin_only(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let origin = attempt.previous().first().map(Url::origin);
    if attempt.previous().len() > MAX_REDIRECTS {
        let message = format!("more than {MAX_REDIRECTS} redirects in a row");
        attempt.error(message)
    } else if origin.is_some_and(|origin| origin != attempt.url().origin()) {
        let message = format!(
            "redirected to `{}`, another origin: a mirror follows redirects only within its own scheme, host and port",
            attempt.url()
        );
        attempt.error(message)
    } else {
        attempt.follow()
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// The blobs of a mirror run: downloaded and verified under the lock before
/// anything is admitted, then renamed into place by [`Publication::admit`].
struct MirrorBlobs<'a> {
    fetcher: &'a Fetcher<'a>,
    /// The size the index gives each blob.
    sizes: BTreeMap<Digest, u64>,
    /// Verified, flushed temporaries in the blob directory; removed if
    /// dropped before they are placed.
    staged: BTreeMap<Digest, ClosedTempFile>,
}

impl BlobSource for MirrorBlobs<'_> {
    fn prepare(&mut self, missing: &[Digest], blob_dir: &Path) -> Result<(), Error> {
        for digest in missing {
            let size = self.sizes.get(digest).copied().unwrap_or_default();
            let mut temp = TempFile::create(&blob_dir.join(digest.hex()))?;
            self.fetcher.blob(digest, size, &mut temp)?;
            self.staged.insert(*digest, temp.close()?);
        }
        Ok(())
    }

    fn place(&mut self, digest: &Digest, path: &Path) -> Result<(), Error> {
        match self.staged.remove(digest) {
            Some(temp) => Ok(temp.rename()?),
            None => Err(Error::Store(StoreError::BlobMissing { digest: *digest, path: path.to_owned() })),
        }
    }
}

/// What went wrong fetching a registry from a mirror. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// [`Registry::mirror`] was given something other than an `http://` or
    /// `https://` URL of a directory.
    #[error("invalid mirror URL `{}`: {reason}", .url.escape_debug())]
    MirrorUrl { url: String, reason: String },

    /// A request to a mirror failed before its answer was complete: no
    /// connection, a timeout, a connection dropped mid-transfer, a redirect
    /// to another origin. `blob` is set when the file was a blob.
    #[error("failed to fetch {}: {reason}; nothing was changed", fetched(.url, .blob))]
    Fetch {
        url: String,
        blob: Option<Digest>,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A mirror answered with another status than `200 OK` (a missing
    /// `index.toml.sig` is an unsigned index, not an error).
    #[error("{}", http_status_message(.url, .blob, *.status))]
    HttpStatus { url: String, blob: Option<Digest>, status: u16 },

    /// A mirror sent more than `limit` bytes: more than the index says for
    /// a blob, or more than an index or signature may be. The transfer was
    /// stopped there.
    #[error("{} is larger than {limit} bytes{}; nothing was changed", fetched(.url, .blob), if .blob.is_some() { ", the size the index gives it" } else { ", more than allowed" })]
    MirrorTooLarge { url: String, blob: Option<Digest>, limit: u64 },

    /// A blob from a mirror whose bytes do not hash to the digest the
    /// signed index pins.
    #[error(
        "blob `{expected}` from `{url}` has digest `{computed}`: the mirror is corrupt or was tampered with; nothing was changed"
    )]
    MirrorBlobMismatch { url: String, expected: Digest, computed: Digest },
}

impl MirrorError {
    /// What the operator can do about this error, when there is one thing
    /// to say: printed as `hint:` under the message.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            MirrorError::HttpStatus { blob: None, status: 404, .. } => Some(
                "serve the registry directory itself: URL/index.toml, URL/index.toml.sig and URL/blobs/sha256/<hex>",
            ),
            _ => None,
        }
    }
}

/// "blob `sha256:…` from `URL`", or just "`URL`".
fn fetched(url: &str, blob: &Option<Digest>) -> String {
    match blob {
        Some(digest) => format!("blob `{digest}` from `{url}`"),
        None => format!("`{url}`"),
    }
}

fn http_status_message(url: &str, blob: &Option<Digest>, status: u16) -> String {
    match (blob, status) {
        (Some(digest), 404) => format!(
            "the mirror has no blob `{digest}`: `{url}` answered HTTP 404; the mirror is incomplete; nothing was changed"
        ),
        (None, 404) => format!(
            "`{url}` answered HTTP 404: no registry is published there (the URL must be the directory holding `index.toml`); nothing was changed"
        ),
        _ => format!("{} answered HTTP {status}; nothing was changed", fetched(url, blob)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OnSigned, SigningKey, TrustError, Trusted};
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    const WORLD: &str = "backout:step/plugin@0.1.0";

    /// What the test server sends for one request.
    #[derive(Clone, Default)]
    struct Answer {
        status: u16,
        body: Vec<u8>,
        /// Announce this `content-length` (default: the body's); `Some(None)`
        /// sends none, so the body ends when the connection closes.
        length: Option<Option<usize>>,
        /// Close the connection after this many body bytes.
        cut_after: Option<usize>,
        /// Send the headers, then nothing, for this long.
        stall: Option<Duration>,
        location: Option<String>,
    }

    impl Answer {
        fn ok(body: impl Into<Vec<u8>>) -> Answer {
            Answer { status: 200, body: body.into(), ..Answer::default() }
        }

        fn status(status: u16) -> Answer {
            Answer { status, body: b"no".to_vec(), ..Answer::default() }
        }
    }

    /// A std-only HTTP/1.1 server on 127.0.0.1: one thread per connection,
    /// `connection: close`, every request path recorded.
    struct Server {
        url: String,
        paths: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let paths = Arc::new(Mutex::new(Vec::new()));
            let answer = Arc::new(answer);
            let recorded = paths.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let (Ok(stream), answer, recorded) = (stream, answer.clone(), recorded.clone()) else { continue };
                    std::thread::spawn(move || serve(stream, &*answer, &recorded));
                }
            });
            Server { url, paths }
        }

        /// Serves the files under `dir` at `/pub/…`.
        fn serve_dir(dir: &Path) -> Server {
            let dir = dir.to_owned();
            Server::start(move |path| match path.strip_prefix("/pub/").map(|p| fs::read(dir.join(p))) {
                Some(Ok(bytes)) if !path.contains("..") => Answer::ok(bytes),
                _ => Answer::status(404),
            })
        }

        fn paths(&self) -> Vec<String> {
            self.paths.lock().unwrap().clone()
        }

        fn blob_requests(&self) -> usize {
            self.paths().iter().filter(|p| p.contains("/blobs/")).count()
        }
    }

    fn serve(stream: TcpStream, answer: &(dyn Fn(&str) -> Answer + Send + Sync), recorded: &Mutex<Vec<String>>) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).map_or(true, |n| n == 0) || header.trim().is_empty() {
                break;
            }
        }
        recorded.lock().unwrap().push(path.clone());
        let a = answer(&path);
        let mut stream = stream;
        let mut head = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", a.status);
        if let Some(length) = a.length.unwrap_or(Some(a.body.len())) {
            head.push_str(&format!("content-length: {length}\r\n"));
        }
        if let Some(location) = &a.location {
            head.push_str(&format!("location: {location}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.flush();
        if let Some(stall) = a.stall {
            std::thread::sleep(stall);
        }
        let body = &a.body[..a.cut_after.unwrap_or(a.body.len()).min(a.body.len())];
        let _ = stream.write_all(body);
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    use crate::bundle::tests::snapshot;

    struct Publisher {
        dir: tempfile::TempDir,
        registry: Registry,
        key: SigningKey,
        trust: TrustStore,
    }

    impl Publisher {
        fn new() -> Publisher {
            let dir = tempfile::tempdir().unwrap();
            let mut registry = Registry::open_or_init(&dir.path().join("registry")).unwrap();
            registry.add("env-toggle", "1.0.0", WORLD, b"\0asm env-toggle 1.0.0").unwrap();
            registry.add("sqlite-restore", "0.3.0", WORLD, &vec![42u8; 300_000]).unwrap();
            let key = SigningKey::generate().unwrap();
            registry.sign(&key, None).unwrap();
            let mut trust = TrustStore::default();
            trust.add("acme", key.public()).unwrap();
            Publisher { dir, registry, key, trust }
        }

        /// Serves the registry at `URL/pub/registry`.
        fn serve(&self) -> (Server, String) {
            let server = Server::serve_dir(self.dir.path());
            let url = format!("{}/pub/registry", server.url);
            (server, url)
        }

        fn publish(&mut self, name: &str, bytes: &[u8]) -> Digest {
            let entry = self.registry.add_with(name, "0.1.0", WORLD, bytes, OnSigned::Unsign).unwrap().entry;
            self.registry.sign(&self.key, None).unwrap();
            entry.digest
        }
    }

    fn mirror(root: &Path, url: &str, trust: &TrustStore) -> Result<ImportReport, Error> {
        Registry::mirror(root, url, trust, &AcceptedSerials::default(), SystemTime::now(), &MirrorOptions::default())
    }

    /// A host that already mirrored the publisher, and a snapshot of it.
    fn mirrored(publisher: &Publisher) -> (tempfile::TempDir, PathBuf, BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let (_server, url) = publisher.serve();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        mirror(&root, &url, &publisher.trust).unwrap();
        let before = snapshot(&root);
        (dir, root, before)
    }

    #[test]
    fn a_signed_registry_is_mirrored_then_up_to_date() {
        let mut publisher = Publisher::new();
        let (server, url) = publisher.serve();
        let target = tempfile::tempdir().unwrap();
        let root = target.path().join("mirrored");

        let report = mirror(&root, &format!("{url}/"), &publisher.trust).unwrap();
        assert_eq!(report.serial, publisher.registry.serial());
        assert_eq!(report.added_blobs.len(), 2);
        assert_eq!(report.entries, publisher.registry.entries());
        assert!(!report.unchanged);
        let key = publisher.key.public();
        assert_eq!(report.trusted, Trusted::Signed { key_name: "acme".into(), key, serial: report.serial });
        let mirrored = Registry::open(&root).unwrap();
        assert_eq!(mirrored.index_bytes(), publisher.registry.index_bytes());
        assert!(mirrored.verify().unwrap().is_clean());
        assert_eq!(
            fs::read(root.join("index.toml.sig")).unwrap(),
            fs::read(publisher.registry.root().join("index.toml.sig")).unwrap()
        );
        assert_eq!(server.paths()[..2], ["/pub/registry/index.toml", "/pub/registry/index.toml.sig"]);
        assert_eq!(server.blob_requests(), 2);

        // Up to date: the index and signature are fetched, no blob.
        let before = snapshot(&root);
        let again = mirror(&root, &url, &publisher.trust).unwrap();
        assert!(again.unchanged && again.added_blobs.is_empty());
        assert_eq!(server.blob_requests(), 2);
        assert_eq!(snapshot(&root), before);

        // A new publication: only the new blob travels.
        let new = publisher.publish("new-step", b"\0asm new step");
        let report = mirror(&root, &url, &publisher.trust).unwrap();
        assert_eq!(report.added_blobs, [new]);
        assert_eq!(server.blob_requests(), 3);
        assert!(Registry::open(&root).unwrap().verify().unwrap().is_clean());
    }

    #[test]
    fn an_unsigned_registry_is_mirrored_when_no_key_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::open_or_init(&dir.path().join("registry")).unwrap();
        registry.add("env-toggle", "1.0.0", WORLD, b"unsigned").unwrap();
        let server = Server::serve_dir(dir.path());
        let target = tempfile::tempdir().unwrap();
        let report = mirror(target.path(), &format!("{}/pub/registry", server.url), &TrustStore::default()).unwrap();
        assert_eq!(report.trusted, Trusted::NotConfigured);
        assert!(!target.path().join("index.toml.sig").exists());
        assert!(Registry::open(target.path()).unwrap().verify().unwrap().is_clean());

        // With a trusted key, the same mirror is refused before any blob is fetched.
        let trust = Publisher::new().trust;
        let other = tempfile::tempdir().unwrap();
        let err = mirror(other.path(), &format!("{}/pub/registry", server.url), &trust).unwrap_err();
        assert!(
            matches!(&err, Error::Trust(TrustError::Unsigned { path }) if path.to_str().unwrap().ends_with("/pub/registry/index.toml"))
        );
        assert!(snapshot(other.path()).is_empty(), "nothing was written");
    }

    #[test]
    fn a_wrong_blob_admits_nothing() {
        let mut publisher = Publisher::new();
        let (_dir, root, before) = mirrored(&publisher);
        let good = vec![7u8; 5000];
        let new = publisher.publish("new-step", &good);
        let served = publisher.dir.path().to_owned();
        let server = Server::start(move |path| {
            if path.ends_with(&new.hex()) {
                let mut evil = good.clone();
                evil[4000] ^= 1;
                return Answer::ok(evil);
            }
            match fs::read(served.join(path.trim_start_matches("/pub/"))) {
                Ok(bytes) => Answer::ok(bytes),
                Err(_) => Answer::status(404),
            }
        });
        let url = format!("{}/pub/registry", server.url);
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        match &err {
            Error::Mirror(MirrorError::MirrorBlobMismatch { url: blob_url, expected, .. }) => {
                assert_eq!(*expected, new);
                assert_eq!(*blob_url, format!("{url}/blobs/sha256/{}", new.hex()));
            }
            other => panic!("expected MirrorBlobMismatch, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("the mirror is corrupt or was tampered with; nothing was changed"), "{message}");
        assert_eq!(snapshot(&root), before, "the registry is byte for byte unchanged, no temporary is left");
    }

    /// A server that answers the new blob with `answer` and everything else
    /// from the publisher's directory.
    fn serve_with(publisher: &Publisher, blob: Digest, answer: Answer) -> (Server, String) {
        let served = publisher.dir.path().to_owned();
        let server = Server::start(move |path| {
            if path.ends_with(&blob.hex()) {
                return answer.clone();
            }
            match fs::read(served.join(path.trim_start_matches("/pub/"))) {
                Ok(bytes) => Answer::ok(bytes),
                Err(_) => Answer::status(404),
            }
        });
        let url = format!("{}/pub/registry", server.url);
        (server, url)
    }

    #[test]
    fn a_dropped_connection_a_short_body_and_a_missing_blob_admit_nothing() {
        let mut publisher = Publisher::new();
        let (_dir, root, before) = mirrored(&publisher);
        let blob = vec![3u8; 200_000];
        let new = publisher.publish("new-step", &blob);

        // Content-Length announced, connection closed mid-body.
        let (_server, url) =
            serve_with(&publisher, new, Answer { cut_after: Some(70_000), ..Answer::ok(blob.clone()) });
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(matches!(&err, Error::Mirror(MirrorError::Fetch { blob: Some(d), .. }) if *d == new), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("the connection was lost after") && message.contains("of 200000 bytes"), "{message}");
        assert!(message.contains(&format!("blob `{new}` from `{url}/blobs/sha256/")), "{message}");
        assert_eq!(snapshot(&root), before);

        // No Content-Length: the body ends early when the connection closes.
        let short = Answer { length: Some(None), ..Answer::ok(&blob[..1000]) };
        let (_server, url) = serve_with(&publisher, new, short);
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(err.to_string().contains("the transfer ended after 1000 of 200000 bytes"), "{err}");
        assert_eq!(snapshot(&root), before);

        let (_server, url) = serve_with(&publisher, new, Answer::status(404));
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(
            matches!(&err, Error::Mirror(MirrorError::HttpStatus { status: 404, blob: Some(d), .. }) if *d == new),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&format!("the mirror has no blob `{new}`")), "{err}");
        assert_eq!(snapshot(&root), before);

        let (_server, url) = serve_with(&publisher, new, Answer::status(500));
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(matches!(&err, Error::Mirror(MirrorError::HttpStatus { status: 500, .. })), "{err:?}");
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn a_blob_larger_than_its_size_is_cut_off() {
        let mut publisher = Publisher::new();
        let (_dir, root, before) = mirrored(&publisher);
        let blob = vec![5u8; 10_000];
        let new = publisher.publish("new-step", &blob);
        let mut bigger = blob.clone();
        bigger.extend_from_slice(&[0; 100_000]);

        // Announced: refused before the body is read.
        let (_server, url) = serve_with(&publisher, new, Answer::ok(bigger.clone()));
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(
            matches!(&err, Error::Mirror(MirrorError::MirrorTooLarge { limit: 10_000, blob: Some(d), .. }) if *d == new),
            "{err:?}"
        );
        assert_eq!(snapshot(&root), before);

        // Not announced: refused while streaming.
        let (_server, url) = serve_with(&publisher, new, Answer { length: Some(None), ..Answer::ok(bigger) });
        let err = mirror(&root, &url, &publisher.trust).unwrap_err();
        assert!(matches!(&err, Error::Mirror(MirrorError::MirrorTooLarge { limit: 10_000, .. })), "{err:?}");
        assert!(err.to_string().contains("is larger than 10000 bytes, the size the index gives it"), "{err}");
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn an_older_serial_is_refused_before_any_blob() {
        let mut publisher = Publisher::new();
        let old_dir = tempfile::tempdir().unwrap();
        for (relative, content) in snapshot(publisher.registry.root()) {
            let target = old_dir.path().join("registry").join(relative);
            match content {
                None => fs::create_dir_all(target).unwrap(),
                Some(bytes) => {
                    fs::create_dir_all(target.parent().unwrap()).unwrap();
                    fs::write(target, bytes).unwrap();
                }
            }
        }
        let old_serial = publisher.registry.serial();
        publisher.publish("new-step", b"new");
        let (_dir, root, before) = mirrored(&publisher);

        let old_server = Server::serve_dir(old_dir.path());
        let old_url = format!("{}/pub/registry", old_server.url);
        let err = mirror(&root, &old_url, &publisher.trust).unwrap_err();
        assert!(
            matches!(err, Error::Trust(TrustError::Rollback { accepted, found }) if accepted == publisher.registry.serial() && found == old_serial),
            "{err:?}"
        );
        assert_eq!(snapshot(&root), before);
        assert_eq!(old_server.blob_requests(), 0);

        // The host's memory refuses it even for an empty registry.
        let empty = tempfile::tempdir().unwrap();
        let mut accepted = AcceptedSerials::default();
        accepted.record(empty.path(), &publisher.key.public(), publisher.registry.serial());
        let err = Registry::mirror(
            empty.path(),
            &old_url,
            &publisher.trust,
            &accepted,
            SystemTime::now(),
            &MirrorOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::Rollback { .. })), "{err:?}");
        assert!(snapshot(empty.path()).is_empty());
    }

    #[test]
    fn signature_errors_follow_the_policy() {
        let publisher = Publisher::new();
        // Another status than 404 for the signature is an error, not "unsigned".
        let served = publisher.dir.path().to_owned();
        let server = Server::start(move |path| {
            if path.ends_with(".sig") {
                return Answer::status(503);
            }
            Answer::ok(fs::read(served.join(path.trim_start_matches("/pub/"))).unwrap())
        });
        let target = tempfile::tempdir().unwrap();
        let err = mirror(target.path(), &format!("{}/pub/registry", server.url), &TrustStore::default()).unwrap_err();
        assert!(
            matches!(&err, Error::Mirror(MirrorError::HttpStatus { status: 503, blob: None, url }) if url.ends_with("index.toml.sig"))
        );

        let (_server, url) = publisher.serve();
        let mut stranger = TrustStore::default();
        stranger.add("stranger", SigningKey::generate().unwrap().public()).unwrap();
        let err = mirror(target.path(), &url, &stranger).unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::UntrustedKey { .. })), "{err:?}");

        // No registry at the URL.
        let err = mirror(target.path(), &format!("{url}/nothing-here"), &publisher.trust).unwrap_err();
        assert!(err.to_string().contains("answered HTTP 404: no registry is published there"), "{err}");
        assert!(snapshot(target.path()).is_empty(), "nothing was written");
    }

    #[test]
    fn redirects_stay_on_the_mirrors_origin() {
        let publisher = Publisher::new();
        let (_server, url) = publisher.serve();
        let target = url.clone();
        let same = Server::start(move |path| {
            let rest = path.trim_start_matches("/moved");
            let location = format!("{}{rest}", target.rsplit_once("/pub/").unwrap().0);
            Answer { location: Some(format!("{location}/pub{rest}")), ..Answer::status(302) }
        });
        let err =
            mirror(tempfile::tempdir().unwrap().path(), &format!("{}/moved/registry", same.url), &publisher.trust)
                .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("another origin: a mirror follows redirects only within"), "{message}");

        let within = Server::start({
            let served = publisher.dir.path().to_owned();
            move |path| match path.strip_prefix("/old") {
                Some(rest) => Answer { location: Some(format!("/pub{rest}")), ..Answer::status(301) },
                None => Answer::ok(fs::read(served.join(path.trim_start_matches("/pub/"))).unwrap()),
            }
        });
        let dir = tempfile::tempdir().unwrap();
        mirror(dir.path(), &format!("{}/old/registry", within.url), &publisher.trust).unwrap();
        assert!(Registry::open(dir.path()).unwrap().verify().unwrap().is_clean());
    }

    #[test]
    fn a_stalled_server_times_out() {
        let publisher = Publisher::new();
        let served = publisher.dir.path().to_owned();
        let server = Server::start(move |path| {
            let bytes = fs::read(served.join(path.trim_start_matches("/pub/"))).unwrap();
            if path.contains("/blobs/") {
                return Answer { stall: Some(Duration::from_secs(5)), ..Answer::ok(bytes) };
            }
            Answer::ok(bytes)
        });
        let options =
            MirrorOptions { connect_timeout: Duration::from_secs(5), read_timeout: Duration::from_millis(300) };
        let target = tempfile::tempdir().unwrap();
        let url = format!("{}/pub/registry", server.url);
        let err = Registry::mirror(
            target.path(),
            &url,
            &publisher.trust,
            &AcceptedSerials::default(),
            SystemTime::now(),
            &options,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no data arrived for 0.3 s after 0 of"), "{err}");
        assert!(Registry::open(target.path()).is_err(), "no index was admitted");
        assert!(fs::read_dir(target.path().join("blobs/sha256")).unwrap().next().is_none(), "no temporary is left");
    }

    #[test]
    fn only_http_and_https_directory_urls_are_accepted() {
        for (url, reason) in [
            ("ftp://host/registry", "`ftp:` is not supported"),
            ("file:///srv/registry", "`file:` is not supported"),
            ("plugins.example/registry", "starting with `https://` or `http://`"),
            ("https://user:secret@host/registry", "credentials"),
            ("https://host/registry?x=1", "without `?query`"),
        ] {
            let err = parse_base(url).unwrap_err();
            assert!(
                matches!(&err, Error::Mirror(MirrorError::MirrorUrl { .. })) && err.to_string().contains(reason),
                "{url}: {err}"
            );
        }
        for url in ["https://host/registry", "https://host/registry/", "https://host/registry//"] {
            assert_eq!(parse_base(url).unwrap().as_str(), "https://host/registry/");
        }
        assert_eq!(parse_base("http://host:8080").unwrap().as_str(), "http://host:8080/");
    }

    #[test]
    fn no_server_is_a_clear_error_and_it_works_inside_an_async_runtime() {
        // A port nothing listens on.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let target = tempfile::tempdir().unwrap();
        let err = runtime
            .block_on(async { mirror(target.path(), &format!("http://127.0.0.1:{port}/r"), &TrustStore::default()) })
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("failed to fetch `http://127.0.0.1:{port}/r/index.toml`: could not connect"))
        );
        assert!(message.ends_with("; nothing was changed"), "{message}");
    }
}
