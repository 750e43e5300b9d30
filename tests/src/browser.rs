//! A real headless Chromium for the tests, driven through chromedriver's
//! W3C WebDriver HTTP protocol by the few calls the tests need (new session,
//! navigate, window size, run a script, screenshot, end the session).
//!
//! A dozen requests are all the report test makes, so a small client over
//! `reqwest` replaces a WebDriver crate and its async stack. Chromium and
//! chromedriver are Debian's `chromium` and `chromium-driver`, installed by
//! `tests/setup.sh`; a test that needs them fails (never skips) when they are
//! missing, saying so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The hint every "not installed" failure carries.
const INSTALL_HINT: &str = "run tests/setup.sh (it installs Debian's `chromium` and `chromium-driver`)";

/// A chromedriver process on a free 127.0.0.1 port, killed when dropped
/// (also when the test fails).
#[derive(Debug)]
pub struct Chromedriver {
    child: Child,
    base: String,
    chromium: PathBuf,
    http: reqwest::blocking::Client,
}

/// One browser: a WebDriver session, ended (and its Chromium closed) when dropped.
#[derive(Debug)]
pub struct Browser<'a> {
    driver: &'a Chromedriver,
    url: String,
}

/// `program` in `PATH`, as an absolute path.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

impl Chromedriver {
    /// Starts chromedriver (`CHROMEDRIVER`, else `chromedriver` in `PATH`)
    /// for Chromium (`CHROMIUM`, else `chromium` in `PATH`) and waits until
    /// it is ready. Panics, naming `tests/setup.sh`, when either is missing.
    pub fn start() -> Self {
        let find = |var: &str, program: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| which(program))
                .unwrap_or_else(|| panic!("`{program}` is not installed (or set {var} to its path): {INSTALL_HINT}"))
        };
        let driver = find("CHROMEDRIVER", "chromedriver");
        let chromium = find("CHROMIUM", "chromium");
        // A free port: bind port 0, read the port, let it go. Another
        // process could take it in between; chromedriver would then fail to
        // start and the wait below says so.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("find a free port on 127.0.0.1");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start `{}`: {e}; {INSTALL_HINT}", driver.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .expect("build an HTTP client");
        let mut me = Self { child, base: format!("http://127.0.0.1:{port}"), chromium, http };
        me.wait_ready(Duration::from_secs(30));
        me
    }

    /// Waits for `GET /status` to say ready.
    fn wait_ready(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited at start ({status}); {INSTALL_HINT}");
            }
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            assert!(started.elapsed() < limit, "chromedriver was not ready after {limit:?} on {}", self.base);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver call; the reply's `value`. Panics with WebDriver's
    /// error and message when the call fails.
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        let reply: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON ({e}): {text}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: HTTP {status}: {} {}",
            reply["value"]["error"],
            reply["value"]["message"]
        );
        reply["value"].clone()
    }

    /// A new headless Chromium with a `width`×`height` window.
    pub fn browser(&self, width: u32, height: u32) -> Browser<'_> {
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": self.chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--hide-scrollbars",
                        format!("--window-size={width},{height}"),
                    ],
                },
            }},
        });
        let session = self.call(reqwest::Method::POST, "/session", Some(capabilities));
        let id = session["sessionId"].as_str().expect("a session id").to_string();
        Browser { driver: self, url: format!("/session/{id}") }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser<'_> {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver.call(method, &format!("{}{path}", self.url), body)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    /// Resizes the window (the viewport is what media queries see).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({ "width": width, "height": height })));
    }

    /// Runs `script` (a function body: `return …;`) in the page; its result.
    pub fn execute(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.call(reqwest::Method::GET, "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a base64 screenshot"))
            .expect("decode the screenshot")
    }

    /// Saves a screenshot as `<target>/test-artifacts/<name>.png` and
    /// returns its path. `bin` is the binary under test, in `<target>/<profile>/`.
    pub fn save_screenshot(&self, bin: &Path, name: &str) -> PathBuf {
        let dir = artifacts_dir(bin);
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.screenshot()).unwrap_or_else(|e| panic!("write `{}`: {e}", path.display()));
        path
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        // Ends the session: chromedriver closes this Chromium.
        let _ = self.driver.http.delete(format!("{}{}", self.driver.base, self.url)).send();
    }
}

/// `<target>/test-artifacts/`, created: where tests leave what a person may
/// want to look at after a run (screenshots). `bin` is in `<target>/<profile>/`.
pub fn artifacts_dir(bin: &Path) -> PathBuf {
    let target = bin.parent().and_then(Path::parent).expect("the binary is in <target>/<profile>/");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create `{}`: {e}", dir.display()));
    dir
}
