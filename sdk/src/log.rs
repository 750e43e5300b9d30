//! Logging and progress through the host.
//!
//! Lines go to the run's log, prefixed with the step id, and into the run's
//! report. The host bounds both their length and their number, so log what an
//! operator needs to follow the step, not every byte. Never log secrets.
//!
//! Off wasm (a plugin's native unit tests) lines go to stderr and progress
//! is dropped, so step logic can be tested with `cargo test`.

#[cfg(target_family = "wasm")]
use crate::bindings::backout::step::host::{self, Level};

pub fn trace(message: impl AsRef<str>) {
    emit(Severity::Trace, message.as_ref());
}

pub fn debug(message: impl AsRef<str>) {
    emit(Severity::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    emit(Severity::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    emit(Severity::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    emit(Severity::Error, message.as_ref());
}

/// [`info`] for step logic that takes its log as a function
/// (`&mut dyn FnMut(String)`), so that its native tests can collect the
/// lines instead: pass `&mut log::to_host` in the plugin's `Step` impl.
pub fn to_host(line: String) {
    info(line);
}

/// Reports that `done` of `total` (if known) `unit`s are finished.
/// Call it as often as is convenient; the host rate-limits what it shows.
pub fn progress(done: u64, total: Option<u64>, unit: &str) {
    #[cfg(target_family = "wasm")]
    host::progress(done, total, unit);
    #[cfg(not(target_family = "wasm"))]
    let _ = (done, total, unit);
}

#[derive(Debug, Clone, Copy)]
enum Severity {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(target_family = "wasm")]
fn emit(severity: Severity, message: &str) {
    let level = match severity {
        Severity::Trace => Level::Trace,
        Severity::Debug => Level::Debug,
        Severity::Info => Level::Info,
        Severity::Warn => Level::Warn,
        Severity::Error => Level::Error,
    };
    host::log(level, message);
}

#[cfg(not(target_family = "wasm"))]
#[allow(clippy::print_stderr)]
fn emit(severity: Severity, message: &str) {
    eprintln!("{severity:?}: {message}");
}
