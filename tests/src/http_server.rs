//! A real HTTP/1.1 server on 127.0.0.1 for the tests: it listens on a real
//! socket, parses real requests (Content-Length and chunked bodies), records
//! every request it receives, and answers what the test scripts, including
//! the failures a client must survive: a slow answer, a connection closed
//! mid-body, no answer at all.
//!
//! It is deliberately small and synchronous (std only, a thread per
//! connection, `Connection: close` on every answer) so what it does on the
//! wire is obvious from the code. [`TestServer::start_tls`] serves the same
//! over real TLS (rustls) with a certificate from [`crate::tls::TestCa`]. "The server received no request" is
//! [`TestServer::count`] `== 0`: an accepted connection that never sends a
//! request line is not counted as a request.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target: path and query, as sent.
    pub path: String,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server sends back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Announce the full `Content-Length` but close the connection after
    /// this many body bytes: a transfer cut mid-body.
    pub cut_after: Option<usize>,
    /// Close the connection without answering at all.
    pub hang_up: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            cut_after: None,
            hang_up: false,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, text: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", text)
    }

    pub fn bytes(status: u16, bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/octet-stream", bytes)
    }

    pub fn not_found() -> Self {
        Self::text(404, "not found")
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::text(status, "moved").header("location", location)
    }

    /// Closes the connection without sending anything.
    pub fn hang_up() -> Self {
        Self { hang_up: true, ..Self::text(500, "") }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Response + Send + Sync;

/// Server-side TLS, when the server speaks HTTPS.
type Tls = Option<Arc<rustls::ServerConfig>>;

/// A running server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1 and a free port. `handler` gets each
    /// request and its index (0 for the first request the server received).
    pub fn start(handler: impl Fn(&Recorded, usize) -> Response + Send + Sync + 'static) -> Self {
        Self::listen(None, handler)
    }

    /// Like [`TestServer::start`], over TLS with `config` (see
    /// [`crate::tls::TestCa::server_config`]). A handshake that fails (an
    /// untrusted or wrong-name certificate on the client's side) records no
    /// request.
    pub fn start_tls(
        config: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Recorded, usize) -> Response + Send + Sync + 'static,
    ) -> Self {
        Self::listen(Some(config), handler)
    }

    fn listen(tls: Tls, handler: impl Fn(&Recorded, usize) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let requests = requests.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    let handler = handler.clone();
                    let tls = tls.clone();
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    std::thread::spawn(move || match tls {
                        None => serve(stream, &requests, &*handler),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                            serve(rustls::StreamOwned::new(conn, stream), &requests, &*handler)
                        }
                    });
                }
            });
        }
        Self { addr, requests, stop }
    }

    /// Serves the files under `root` for GET and HEAD (404 for anything
    /// missing, 405 for other methods): a static file server such as a
    /// registry mirror is published on.
    pub fn serve_dir(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self::start(move |req, _| {
            if req.method != "GET" && req.method != "HEAD" {
                return Response::text(405, "method not allowed");
            }
            let path = req.path.split('?').next().unwrap_or("/");
            if path.split('/').any(|part| part == "..") {
                return Response::text(400, "bad path");
            }
            match std::fs::read(root.join(path.trim_start_matches('/'))) {
                Ok(bytes) => Response::bytes(200, bytes),
                Err(_) => Response::not_found(),
            }
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests the server has received.
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A connection: plain TCP or TLS over it.
trait Connection: std::io::Read + Write {
    fn close(&mut self);
}

impl Connection for TcpStream {
    fn close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Connection for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

fn serve(mut stream: impl Connection, requests: &Mutex<Vec<Recorded>>, handler: &Handler) {
    // One request per connection (`Connection: close`), so whatever the
    // reader buffered past it is never needed.
    let Some(request) = read_request(&mut BufReader::new(&mut stream)) else { return };
    let index = {
        let mut all = requests.lock().unwrap();
        all.push(request.clone());
        all.len() - 1
    };
    let response = handler(&request, index);
    std::thread::sleep(response.delay);
    if response.hang_up {
        stream.close();
        return;
    }
    let _ = write_response(&mut stream, &request, &response);
    stream.close();
}

fn read_request(reader: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Recorded { method, path, headers, body })
}

fn write_response(stream: &mut impl Write, request: &Recorded, response: &Response) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", response.body.len()));
    stream.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        let body = match response.cut_after {
            Some(n) => &response.body[..n.min(response.body.len())],
            None => &response.body[..],
        };
        stream.write_all(body)?;
    }
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn get(server: &TestServer, path: &str) -> String {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn records_requests_and_answers_what_the_handler_says() {
        let server = TestServer::start(|req, n| Response::text(200, &format!("{} {} #{n}", req.method, req.path)));
        assert!(get(&server, "/a?b=1").ends_with("GET /a?b=1 #0"));
        assert_eq!(server.count(), 1);
        assert_eq!(server.requests()[0].header("HOST"), Some("x"));
    }

    #[test]
    fn reads_chunked_bodies() {
        let server = TestServer::start(|req, _| Response::text(200, &req.text()));
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        write!(stream, "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        assert!(out.ends_with("abcde"), "{out}");
    }

    #[test]
    fn cut_after_closes_mid_body() {
        let server = TestServer::start(|_, _| Response::bytes(200, vec![b'x'; 100]).cut_after(10));
        let out = get(&server, "/");
        assert!(out.contains("content-length: 100"));
        assert!(out.ends_with("\r\n\r\nxxxxxxxxxx"), "{out}");
    }
}
