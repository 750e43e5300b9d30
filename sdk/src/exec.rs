//! Host commands: run one of the step's granted command lines.
//!
//! The runbook grants exact argv vectors (`commands = [["systemctl", "stop",
//! "app"]]`); [`run`] must be given one of them argument for argument, and
//! only `run` and `undo` may start one. The host resolved the program when
//! the runbook was checked, starts it without a shell, with an empty
//! environment plus the step's granted variables and stdin closed, and kills
//! its process group at the call's deadline. [`check`] asks, without starting
//! anything, whether a command is granted: `plan` uses it to prove every
//! command the step will need is there.
//!
//! Off wasm (a plugin's native unit tests) there is no host: [`set_handler`]
//! installs a per-thread stand-in that answers instead, and [`check`] is
//! answered by the same stand-in (with `check = true`).

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exit {
    /// The exit status, or `None` when a signal ended the process.
    pub code: Option<i32>,
    /// The signal that ended it (9 when the host killed it at the deadline).
    pub signal: Option<i32>,
    /// What it wrote, at most 64 KiB each, secrets masked.
    pub stdout: String,
    pub stderr: String,
    /// Whether stdout or stderr was longer than what is here.
    pub truncated: bool,
    /// Whether the host killed it because the call's deadline passed.
    pub timed_out: bool,
    pub elapsed_ms: u64,
}

impl Exit {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit 3`, `killed by signal 9`, `killed at the deadline`, and the
    /// last line of stderr when there is one: for error messages.
    pub fn describe(&self) -> String {
        let status = match (self.code, self.signal) {
            _ if self.timed_out => "killed at the call's deadline".to_string(),
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended".to_string(),
        };
        match self.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => format!("{status}: {}", line.trim()),
            None => status,
        }
    }
}

/// Runs `argv` (one of the step's granted commands, exactly) in `cwd` (a
/// guest directory inside a directory grant; `None`: an empty private
/// directory). `Err` means it never started, and says why.
pub fn run(argv: &[&str], cwd: Option<&str>) -> Result<Exit, String> {
    imp::run(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>(), cwd)
}

/// Whether `argv` is granted (and its program unchanged): `Ok` with the
/// absolute program the host would start. Starts nothing.
pub fn check(argv: &[&str]) -> Result<String, String> {
    imp::check(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::Exit;
    use crate::bindings::backout::step::exec;

    pub(super) fn run(argv: &[String], cwd: Option<&str>) -> Result<Exit, String> {
        exec::run(argv, cwd).map(|e| Exit {
            code: e.code,
            signal: e.signal,
            stdout: e.stdout,
            stderr: e.stderr,
            truncated: e.truncated,
            timed_out: e.timed_out,
            elapsed_ms: e.elapsed_ms,
        })
    }

    pub(super) fn check(argv: &[String]) -> Result<String, String> {
        exec::check(argv)
    }
}

#[cfg(not(target_family = "wasm"))]
pub use imp::{Call, clear, set_handler};

#[cfg(not(target_family = "wasm"))]
mod imp {
    use std::cell::RefCell;

    use super::Exit;

    /// One call the stand-in answers: `check` (nothing may start) or `run`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Call {
        pub argv: Vec<String>,
        pub cwd: Option<String>,
        pub check: bool,
    }

    type Handler = Box<dyn FnMut(&Call) -> Result<Exit, String>>;

    thread_local! {
        static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
    }

    /// Answers this thread's `exec` calls with `handler` (native tests only).
    pub fn set_handler(handler: impl FnMut(&Call) -> Result<Exit, String> + 'static) {
        HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
    }

    /// Removes this thread's stand-in.
    pub fn clear() {
        HANDLER.with(|h| *h.borrow_mut() = None);
    }

    fn call(call: Call) -> Result<Exit, String> {
        HANDLER.with(|h| match h.borrow_mut().as_mut() {
            Some(handler) => handler(&call),
            None => Err("no host: commands run only inside backout (tests: exec::set_handler)".to_string()),
        })
    }

    pub(super) fn run(argv: &[String], cwd: Option<&str>) -> Result<Exit, String> {
        call(Call { argv: argv.to_vec(), cwd: cwd.map(str::to_string), check: false })
    }

    pub(super) fn check(argv: &[String]) -> Result<String, String> {
        call(Call { argv: argv.to_vec(), cwd: None, check: true }).map(|_| format!("/native/{}", argv[0]))
    }
}
