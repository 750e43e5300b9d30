//! Drives the real `backout` binary in an isolated temp directory: its own
//! registry, its own state directory, no inherited `BACKOUT_*` settings; the
//! one thing sandboxes share is the compile cache ([`shared_compile_cache`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The exit code of a run that succeeded.
pub const EXIT_SUCCEEDED: i32 = 0;
/// A step failed and the changes of the steps that completed are still in
/// place (`on_failure = "abort"` or `"continue"`).
pub const EXIT_FAILED: i32 = 1;
/// A step failed and, under the default `on_failure = "undo"`, nothing it
/// or the steps before it changed is left in place.
pub const EXIT_UNDONE: i32 = 4;
/// An undo failed: changes are still in place and need a person.
pub const EXIT_NEEDS_ATTENTION: i32 = 5;
/// Stopped by a signal (or killed) with changes in place.
pub const EXIT_INTERRUPTED: i32 = 6;

/// One isolated place to run `backout` in.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: TempDir,
    bin: PathBuf,
    cache: PathBuf,
}

/// What a `backout` invocation printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }

    /// stdout as the plugin wrote its messages, without the host paths the
    /// host adds after guest paths (`runtime::host_terms`): for tests of
    /// what a plugin says, not of how the host annotates it.
    pub fn stdout_in_guest_terms(&self) -> String {
        without_host_paths(&self.stdout)
    }

    /// stderr, likewise.
    pub fn stderr_in_guest_terms(&self) -> String {
        without_host_paths(&self.stderr)
    }

    /// Both streams, likewise.
    pub fn all_in_guest_terms(&self) -> String {
        without_host_paths(&self.all())
    }
}

/// `text` without the ` (host: /…)` notes the host adds after guest paths.
pub fn without_host_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (host: /") {
        out.push_str(&rest[..at]);
        match rest[at..].find(')') {
            Some(end) => rest = &rest[at + end + 1..],
            None => {
                rest = &rest[at..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Sandbox {
    /// `bin` is the binary under test (`env!("CARGO_BIN_EXE_backout")`).
    pub fn new(bin: &str) -> Self {
        let bin = PathBuf::from(bin);
        Self { dir: tempfile::tempdir().expect("create temp dir"), cache: shared_compile_cache(&bin), bin }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn registry(&self) -> PathBuf {
        self.path().join("registry")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// A `backout` command with this sandbox's registry and state directory,
    /// and the tests' shared compile cache.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("BACKOUT_REGISTRY", self.registry())
            .env("BACKOUT_STATE_DIR", self.state())
            .env("BACKOUT_CACHE_DIR", &self.cache)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            // No trust file unless a test passes `--trust`: whatever the
            // machine's user has in ~/.config never changes a result.
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env_remove("BACKOUT_TRUST")
            .env_remove("BACKOUT_REQUIRE_SIGNED")
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `backout ARGS` in the background, stdout and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start backout")
    }

    /// Runs `backout ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[])
    }

    /// Runs `backout ARGS` to completion with `env` added to its environment
    /// (a granted API key, `SSL_CERT_FILE`).
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &dyn AsRef<std::ffi::OsStr>)]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run backout");
        Output {
            code: out.status.code().expect("backout exited with a code, not a signal"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Every line every run journaled in this sandbox, for checking that a
    /// secret never reached the journal.
    pub fn journals(&self) -> String {
        self.journal_paths().iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect()
    }

    /// The journal of every run in this sandbox (`state/runs/<id>/journal.jsonl`), oldest first.
    pub fn journal_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.state().join("runs"))
            .map(|entries| entries.flatten().map(|e| e.path().join("journal.jsonl")).filter(|p| p.is_file()).collect())
            .unwrap_or_default();
        paths.sort();
        paths
    }

    /// Runs `backout ARGS` on a pseudo-terminal (through util-linux `script`),
    /// typing `typed` into it: for the confirmation prompt.
    pub fn run_on_terminal(&self, args: &[&str], typed: &str) -> Output {
        use std::io::Write;
        let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
        let line = std::iter::once(self.bin.to_str().expect("utf-8 path"))
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["--quiet", "--return", "--command", &line, "/dev/null"])
            .env("BACKOUT_REGISTRY", self.registry())
            .env("BACKOUT_STATE_DIR", self.state())
            .env("BACKOUT_CACHE_DIR", &self.cache)
            .current_dir(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script");
        child.stdin.take().expect("stdin").write_all(typed.as_bytes()).expect("type");
        let out = child.wait_with_output().expect("wait for script");
        Output {
            code: out.status.code().expect("exit code"),
            // On a terminal stdout and stderr arrive together on the pty.
            stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `backout registry add FILE`; panics unless it succeeds.
    pub fn add(&self, wasm: &str) {
        let out = self.run(&["registry", "add", wasm]);
        assert_eq!(out.code, 0, "registry add failed:\n{}", out.all());
    }

    /// Creates `dir` (and parents) under the sandbox and returns its path.
    pub fn mkdir(&self, dir: &str) -> PathBuf {
        let path = self.path().join(dir);
        std::fs::create_dir_all(&path).expect("create dir");
        path
    }

    /// Writes a file under the sandbox and returns its path.
    pub fn write(&self, file: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

/// The compile cache shared by every `backout` a test run starts:
/// `<target>/test-compile-cache`, beside the profile directory of `bin`
/// (`<target>/debug/backout`), created 0700. Without it each of the hundreds
/// of invocations would compile its plugins from scratch. Sharing is safe:
/// entries are keyed by the component's sha256 and the engine, and verified
/// before they are loaded. Tests of the cache itself use their own directory.
pub fn shared_compile_cache(bin: &Path) -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let target = bin.parent().and_then(Path::parent).expect("the binary is in <target>/<profile>/");
    let dir = target.join("test-compile-cache");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).expect("create the test compile cache");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .expect("make the test compile cache private");
    dir
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: impl AsRef<Path>) -> String {
    sha256_bytes(&std::fs::read(path).expect("read file"))
}

/// sha256 of bytes, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A snapshot of every file under a directory (path → bytes), to prove a
/// failed step changed nothing.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            } else {
                files.insert(
                    path.clone(),
                    format!("-> {}", std::fs::read_link(&path).expect("link").display()).into_bytes(),
                );
            }
        }
    }
    files
}

/// The permission bits (rwx for user, group, other) of `path`.
pub fn file_mode(path: impl AsRef<Path>) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// The safety copies (`*.bak`) in `dir`, sorted.
pub fn safety_copies(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    found.sort();
    found
}
