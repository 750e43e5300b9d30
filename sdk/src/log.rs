//! Logging and progress through the host.
//!
//! Lines go to the run's log, prefixed with the step id, and into the run's
//! report. The host bounds both their length and their number, so log what an
//! operator needs to follow the step, not every byte. Never log secrets.

use crate::bindings::backout::step::host::{self, Level};

pub fn trace(message: impl AsRef<str>) {
    host::log(Level::Trace, message.as_ref());
}

pub fn debug(message: impl AsRef<str>) {
    host::log(Level::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    host::log(Level::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    host::log(Level::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    host::log(Level::Error, message.as_ref());
}

/// Reports that `done` of `total` (if known) `unit`s are finished.
/// Call it as often as is convenient; the host rate-limits what it shows.
pub fn progress(done: u64, total: Option<u64>, unit: &str) {
    host::progress(done, total, unit);
}
