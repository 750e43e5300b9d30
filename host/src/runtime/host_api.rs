//! The `backout:step/host` interface: what a plugin can say to the operator.
//!
//! Log lines and progress go to an [`Observer`] as they happen (the CLI
//! prints them prefixed with the step id) and log lines are kept for the
//! report. Both are bounded: a line is cut at [`MAX_LINE`] characters, and
//! past [`MAX_LINES`] lines per call they are counted and dropped. Text equal
//! to a granted secret is masked before anything sees it.

use std::sync::Arc;

use serde::Serialize;

use super::StepState;
use super::bindings::backout::step::host::{Host, Level};
use crate::capability::Phase;

/// Longest log line kept, in characters.
pub const MAX_LINE: usize = 4096;
/// Most log lines kept per call into a plugin.
pub const MAX_LINES: usize = 1000;

/// Severity of a log line, as the plugin gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    pub phase: Phase,
    pub level: LogLevel,
    pub message: String,
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

    /// Masks secrets and bounds the length of plugin-provided text.
    pub fn clean(&self, text: &str) -> String {
        let text = if text.chars().count() > MAX_LINE {
            let cut: String = text.chars().take(MAX_LINE).collect();
            format!("{cut}… (cut at {MAX_LINE} characters)")
        } else {
            text.to_string()
        };
        crate::redact::text(&text, &self.secrets)
    }

    pub fn record(&mut self, level: LogLevel, message: &str) {
        if self.records.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        let message = self.clean(message);
        (self.observer)(&Event::Log { step: self.step.clone(), phase: self.phase, level, message: message.clone() });
        self.records.push(LogRecord { phase: self.phase, level, message });
    }
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
        if !self.writable {
            return Ok(Err(format!(
                "`copy-permissions` is refused during `{}`: nothing may change",
                self.log.phase.as_str()
            )));
        }
        Ok(crate::capability::files::copy_permissions(&self.dirs, &source, &target))
    }

    fn check_request(&mut self, method: String, url: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.http.check_url(&method, &url))
    }

    fn progress(&mut self, done: u64, total: Option<u64>, unit: String) -> wasmtime::Result<()> {
        let unit = self.log.clean(&unit.chars().take(32).collect::<String>());
        let event = Event::Progress { step: self.log.step.clone(), phase: self.log.phase, done, total, unit };
        (self.log.observer)(&event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
