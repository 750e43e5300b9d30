//! A real local service for rollback tests: `tests/fixtures/service.py`
//! under its init script `tests/fixtures/svc` (copied to `bin/svc`, with a
//! `svc.conf` beside it): `svc start|stop|restart|status`, which the runbooks
//! under test grant as commands. It listens on a port of its own on
//! 127.0.0.1, keeps a pid file, and reports its release and flags on
//! `/health`. Dropping the [`Service`] stops it (drop it before the
//! directory holding its pid file).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One managed service in `dir`.
#[derive(Debug)]
pub struct Service {
    pub port: u16,
    /// `dir/run/service.pid` while it runs.
    pub pid_file: PathBuf,
    /// `dir/bin/svc`: the init script (`start`, `stop`, `status`).
    pub svc: PathBuf,
    /// The application directory it reports (`current` link, `.env`).
    pub app_dir: PathBuf,
}

impl Service {
    /// Writes `dir/bin/svc` for a service reporting on `app_dir`, on a free
    /// port. Nothing runs yet.
    pub fn new(dir: &Path, app_dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for sub in ["bin", "run", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let pid_file = dir.join("run/service.pid");
        let svc = dir.join("bin/svc");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("python3 (tests/setup.sh installs it)");
        std::fs::copy(fixtures.join("svc"), &svc).unwrap();
        std::fs::set_permissions(&svc, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.join("svc.conf"),
            format!(
                "PORT={port}\nAPP_DIR='{}'\nPYTHON={python}\nSERVICE='{}'\n",
                app_dir.display(),
                fixtures.join("service.py").display()
            ),
        )
        .unwrap();
        Service { port, pid_file, svc, app_dir: app_dir.to_path_buf() }
    }

    /// `http://127.0.0.1:PORT`: the origin to grant.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/health`.
    pub fn health_url(&self) -> String {
        format!("{}/health", self.origin())
    }

    /// Runs `svc ACTION` directly (test setup), panicking if it fails.
    pub fn ctl(&self, action: &str) {
        let status = std::process::Command::new(&self.svc).arg(action).status().unwrap();
        assert!(status.success(), "svc {action}: {status}");
    }

    /// Starts it and waits until it answers.
    pub fn start(&self) {
        self.ctl("start");
        assert!(self.wait(true, Duration::from_secs(10)), "the service did not come up: {}", self.diagnose());
    }

    /// Stops it and waits until its port refuses connections.
    pub fn stop(&self) {
        self.ctl("stop");
        assert!(self.wait(false, Duration::from_secs(10)), "the service did not go down: {}", self.diagnose());
    }

    /// What a failed wait should show: the pid file, the service's log and
    /// which processes hold its port.
    pub fn diagnose(&self) -> String {
        let log = self.pid_file.parent().and_then(Path::parent).map(|d| d.join("log/service.log"));
        let log = log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
        let holders = std::process::Command::new("ss")
            .args(["-ltnp", &format!("sport = :{}", self.port)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!(
            "port {}; pid file: {:?}; log:\n{log}\nlisteners:\n{holders}",
            self.port,
            std::fs::read_to_string(&self.pid_file).ok()
        )
    }

    /// `/health` as JSON, or `None` when nothing answers.
    pub fn health(&self) -> Option<serde_json::Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let body = text.split_once("\r\n\r\n")?.1;
        serde_json::from_str(body).ok()
    }

    /// Whether a connection to its port is accepted.
    pub fn is_up(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Waits until it is up (or down), at most `timeout`.
    pub fn wait(&self, up: bool, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.is_up() == up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The grant lines for `svc start` and `svc stop`.
    pub fn commands_grant(&self) -> String {
        let svc = self.svc.display();
        format!("commands = [[\"{svc}\", \"stop\"], [\"{svc}\", \"start\"]]")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file)
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}
