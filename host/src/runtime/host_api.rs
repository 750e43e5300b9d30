//! The `backout:step/host` interface: what a plugin can say to the operator.
//!
//! Log lines and progress go to an [`Observer`] as they happen (the CLI
//! prints them prefixed with the step id) and log lines are kept for the
//! report. Both are bounded: a line is cut at [`MAX_LINE`] characters, and
//! past [`MAX_LINES`] lines per call they are counted and dropped. Text equal
//! to a granted secret is masked before anything sees it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::StepState;
use super::bindings::backout::step::host::{Host, Level};
use crate::capability::{Effect, Phase};

/// Longest log line kept, in characters.
pub const MAX_LINE: usize = 4096;
/// Most log lines kept per call into a plugin.
pub const MAX_LINES: usize = 1000;

/// Severity of a log line, as the plugin gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    /// Text the plugin wrote to its stdout.
    Stdout,
    /// Text the plugin wrote to its stderr.
    Stderr,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Stdout => "stdout",
            LogLevel::Stderr => "stderr",
        }
    }
}

/// Something a plugin reported while it ran.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Event {
    Log { step: String, phase: Phase, level: LogLevel, message: String },
    Progress { step: String, phase: Phase, done: u64, total: Option<u64>, unit: String },
}

/// Receives events as they happen. Called on the runtime's threads; keep it quick.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// An observer that ignores everything.
pub fn quiet() -> Observer {
    Arc::new(|_| {})
}

/// One kept log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub phase: Phase,
    pub level: LogLevel,
    pub message: String,
}

/// Most bytes of JSON one `checkpoint` may carry.
pub const MAX_CHECKPOINT: usize = 1 << 20;
/// Most checkpoints, and most temporary files, one call may record.
pub const MAX_RECORDS_PER_CALL: u32 = 256;

/// Where a call's `checkpoint` and `temporary-file` records go: the run's
/// journal, through the executor. Called from inside a host call, on the
/// runtime's thread; each method returns only once the record is durable.
pub trait CallRecorder: Send + Sync {
    /// Journals `outputs` (a JSON object, secrets already masked) as the
    /// step's latest checkpoint.
    fn checkpoint(&self, step: &str, outputs: serde_json::Value) -> Result<(), String>;
    /// Journals that the step is about to create the temporary file `guest`
    /// (at `host` on the host).
    fn temporary_file(&self, step: &str, guest: &str, host: &std::path::Path) -> Result<(), String>;
}

/// The log of one call: where events go and what is kept.
pub struct CallLog {
    pub step: String,
    pub phase: Phase,
    pub observer: Observer,
    pub secrets: Vec<String>,
    pub records: Vec<LogRecord>,
    pub dropped: u64,
}

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLog")
            .field("step", &self.step)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl CallLog {
    pub fn new(step: &str, phase: Phase, observer: Observer, secrets: Vec<String>) -> Self {
        Self { step: step.to_string(), phase, observer, secrets, records: Vec::new(), dropped: 0 }
    }

    /// Makes one piece of plugin text fit to show: secrets masked (before
    /// anything is cut, so no prefix of a secret survives), cut at
    /// [`MAX_LINE`] characters, control characters escaped
    /// ([`crate::shown`]), all on one line.
    pub fn clean(&self, text: &str) -> String {
        let masked = crate::redact::text(text, &self.secrets);
        crate::shown::line(&cut(&masked)).into_owned()
    }

    /// Records a log message: secrets masked over the whole message (a
    /// secret spanning lines is masked too), then one record per line, so an
    /// embedded newline starts a new `[step]` line instead of forging one.
    pub fn record(&mut self, level: LogLevel, message: &str) {
        let masked = crate::redact::text(message, &self.secrets);
        let body = masked.strip_suffix('\n').unwrap_or(&masked);
        for line in body.split('\n') {
            if self.records.len() >= MAX_LINES {
                self.dropped += 1;
                continue;
            }
            let message = crate::shown::line(&cut(line)).into_owned();
            (self.observer)(&Event::Log {
                step: self.step.clone(),
                phase: self.phase,
                level,
                message: message.clone(),
            });
            self.records.push(LogRecord { phase: self.phase, level, message });
        }
    }
}

impl CallLog {
    /// Records what a plugin wrote to stdout or stderr: masked as a whole
    /// (a secret spanning lines is masked too), then one record per
    /// non-blank line.
    pub fn record_output(&mut self, level: LogLevel, text: &str) {
        let masked = crate::redact::text(text, &self.secrets);
        for line in masked.lines().filter(|l| !l.trim().is_empty()) {
            self.record(level, line);
        }
    }
}

/// `text`, cut at [`MAX_LINE`] characters with a note saying so.
fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= MAX_LINE {
        return std::borrow::Cow::Borrowed(text);
    }
    let cut: String = text.chars().take(MAX_LINE).collect();
    std::borrow::Cow::Owned(format!("{cut}… (cut at {MAX_LINE} characters)"))
}

impl Host for StepState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.log.record(level, &message);
        Ok(())
    }

    fn copy_permissions(&mut self, source: String, target: String) -> wasmtime::Result<Result<(), String>> {
        let done = crate::capability::files::copy_permissions(&self.dirs, self.log.phase, &source, &target);
        Ok(done.map_err(|e| e.to_string()))
    }

    fn check_request(&mut self, method: String, url: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.http.check_url(&method, &url))
    }

    fn checkpoint(&mut self, outputs: String) -> wasmtime::Result<Result<(), String>> {
        if let Err(denied) = self.log.phase.require(Effect::Checkpoint, "checkpoint") {
            return Ok(Err(denied.to_string()));
        }
        if outputs.len() > MAX_CHECKPOINT {
            return Ok(Err(format!("the checkpoint is {} bytes; at most {MAX_CHECKPOINT} are kept", outputs.len())));
        }
        if self.checkpoints >= MAX_RECORDS_PER_CALL {
            return Ok(Err(format!("more than {MAX_RECORDS_PER_CALL} checkpoints in one call")));
        }
        let mut value: serde_json::Value = match serde_json::from_str(&outputs) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => return Ok(Err("a checkpoint must be a JSON object, like the outputs".to_string())),
            Err(e) => return Ok(Err(format!("the checkpoint is not JSON: {e}"))),
        };
        crate::redact::json(&mut value, &self.log.secrets);
        self.checkpoints += 1;
        Ok(match &self.recorder {
            Some(recorder) => recorder.checkpoint(&self.log.step, value),
            None => Ok(()),
        })
    }

    fn temporary_file(&mut self, path: String) -> wasmtime::Result<Result<(), String>> {
        if self.temporaries.len() as u32 >= MAX_RECORDS_PER_CALL {
            return Ok(Err(format!("more than {MAX_RECORDS_PER_CALL} temporary files in one call")));
        }
        let host = match crate::capability::files::check_temporary(&self.dirs, self.log.phase, &path) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Some(recorder) = &self.recorder
            && let Err(e) = recorder.temporary_file(&self.log.step, &path, &host)
        {
            return Ok(Err(e));
        }
        if !self.temporaries.contains(&path) {
            self.temporaries.push(path);
        }
        Ok(Ok(()))
    }

    fn progress(&mut self, done: u64, total: Option<u64>, unit: String) -> wasmtime::Result<()> {
        let unit = self.log.clean(&unit.chars().take(32).collect::<String>());
        let event = Event::Progress { step: self.log.step.clone(), phase: self.log.phase, done, total, unit };
        (self.log.observer)(&event);
        Ok(())
    }
}

impl super::bindings::backout::step::exec::Host for StepState {
    fn run(
        &mut self,
        argv: Vec<String>,
        cwd: Option<String>,
    ) -> wasmtime::Result<Result<super::bindings::backout::step::exec::ExitInfo, String>> {
        use crate::capability::commands::{self, Launch, shown_argv};
        // Checked before a working directory is made or looked for.
        if let Err(e) = self.log.phase.require(Effect::Exec, format!("command {}", shown_argv(&argv))) {
            return Ok(Err(e.to_string()));
        }
        let private;
        let cwd = match cwd {
            Some(guest) => match crate::capability::files::host_dir(&self.dirs, &guest) {
                Ok(host) => host,
                Err(e) => return Ok(Err(format!("working directory: {e}"))),
            },
            None => {
                private = match tempfile::Builder::new().prefix("backout-exec-").tempdir() {
                    Ok(dir) => dir,
                    Err(e) => return Ok(Err(format!("failed to make a private working directory: {e}"))),
                };
                private.path().to_path_buf()
            }
        };
        let interrupt = self.interrupt.clone();
        let stop = move || interrupt.as_ref().is_some_and(super::Interrupt::is_set);
        let launch =
            Launch { cwd: &cwd, env: &self.env, deadline: self.deadline, stop: &stop, secrets: &self.log.secrets };
        let shown = shown_argv(&argv);
        match commands::run(&self.commands, self.log.phase, &argv, &launch) {
            Ok(exit) => {
                let level = if exit.code == Some(0) { LogLevel::Info } else { LogLevel::Warn };
                let note = if exit.truncated { ", output cut" } else { "" };
                self.log
                    .record(level, &format!("ran {shown}: {} in {} ms{note}", exit.status(), exit.elapsed.as_millis()));
                Ok(Ok(super::bindings::backout::step::exec::ExitInfo {
                    code: exit.code,
                    signal: exit.signal,
                    stdout: exit.stdout,
                    stderr: exit.stderr,
                    truncated: exit.truncated,
                    timed_out: exit.timed_out,
                    elapsed_ms: exit.elapsed.as_millis().try_into().unwrap_or(u64::MAX),
                }))
            }
            Err(e) => {
                self.log.record(LogLevel::Warn, &format!("refused to run {shown}: {e}"));
                Ok(Err(e.to_string()))
            }
        }
    }

    fn check(&mut self, argv: Vec<String>) -> wasmtime::Result<Result<String, String>> {
        if self.log.phase == Phase::Describe {
            return Ok(Err("a plugin describing itself gets nothing".into()));
        }
        Ok(crate::capability::commands::check_argv(&self.commands, &argv)
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string()))
    }
}

impl super::bindings::backout::step::files::Host for StepState {
    fn copy_file(&mut self, source: String, target: String) -> wasmtime::Result<Result<u64, String>> {
        let result = self
            .watched(|dirs, phase, watch| crate::capability::file_ops::copy_file(dirs, phase, &source, &target, watch));
        Ok(result.map_err(|e| e.to_string()))
    }

    fn sha256_file(&mut self, path: String) -> wasmtime::Result<Result<String, String>> {
        let result =
            self.watched(|dirs, phase, watch| crate::capability::file_ops::sha256_file(dirs, phase, &path, watch));
        Ok(result.map_err(|e| e.to_string()))
    }
}

impl StepState {
    /// Runs a long host-side file operation with the call's progress
    /// reporting and its stop conditions: the deadline and Ctrl-C.
    fn watched<T>(
        &mut self,
        op: impl FnOnce(
            &[crate::capability::files::DirGrant],
            Phase,
            &mut crate::capability::file_ops::Watch<'_>,
        ) -> Result<T, crate::capability::files::CallError>,
    ) -> Result<T, crate::capability::files::CallError> {
        let (deadline, interrupt) = (self.deadline, self.interrupt.clone());
        let stop = move || {
            if let Some(reason) = interrupt.as_ref().and_then(super::Interrupt::reason) {
                return Some(format!("interrupted by {reason}"));
            }
            (std::time::Instant::now() >= deadline).then(|| "the step's timeout passed".to_string())
        };
        let log = &self.log;
        let mut progress = |done: u64, total: u64| {
            (log.observer)(&Event::Progress {
                step: log.step.clone(),
                phase: log.phase,
                done,
                total: Some(total),
                unit: "bytes".into(),
            });
        };
        let mut watch = crate::capability::file_ops::Watch { progress: &mut progress, stop: &stop };
        op(&self.dirs, self.log.phase, &mut watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_masked_before_a_long_line_is_cut() {
        let secret = "s3cr3t-".repeat(10);
        let mut log = CallLog::new("s", Phase::Run, quiet(), vec![secret.clone()]);
        let line = format!("{}{secret}", "x".repeat(MAX_LINE - 20));
        log.record(LogLevel::Info, &line);
        assert!(!log.records[0].message.contains("s3cr3t"), "no prefix of the secret survives the cut");
    }

    #[test]
    fn a_secret_spanning_lines_is_masked_and_each_line_is_its_own_record() {
        let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----".to_string();
        let mut log = CallLog::new("s", Phase::Run, quiet(), vec![pem.clone()]);
        log.record(LogLevel::Info, &format!("key: {pem}\nok       forged-step  done"));
        let messages: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["key: ***", "ok       forged-step  done"]);
    }

    #[test]
    fn control_characters_in_log_lines_are_escaped() {
        let mut log = CallLog::new("s", Phase::Run, quiet(), vec![]);
        log.record(LogLevel::Info, "\x1b[2K\rok  fake\x07");
        assert_eq!(log.records[0].message, "\\x1b[2K\\rok  fake\\x07");
        assert_eq!(log.clean("bytes\x1b]52;c;AAAA\x07"), "bytes\\x1b]52;c;AAAA\\x07");
    }

    #[test]
    fn secrets_are_masked_and_lines_bounded() {
        let mut log = CallLog::new("s", Phase::Run, quiet(), vec!["hunter2".into()]);
        log.record(LogLevel::Info, "password is hunter2");
        assert_eq!(log.records[0].message, "password is ***");
        let long = "x".repeat(MAX_LINE + 10);
        assert!(log.clean(&long).ends_with("(cut at 4096 characters)"));
        for _ in 0..MAX_LINES + 5 {
            log.record(LogLevel::Debug, "again");
        }
        assert_eq!(log.records.len(), MAX_LINES);
        assert_eq!(log.dropped, 6);
    }
}
