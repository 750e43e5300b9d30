//! The one error printer, and the log printer of `plan`, `validate` and `inspect`.
//!
//! Errors go to stderr as `error:` / `  caused by:` / `  hint:`; diagnostics
//! add `  --> file:line:col`. Plugin log lines go to stderr prefixed with the
//! step id, so stdout carries only the plan or report. Every line goes
//! through [`emit`], which hides the live view's bar while it writes (see
//! `live.rs`) and, with the event stream on, errors become `error` events too.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backout::diagnostic::Diagnostics;
use backout::runtime::host_api::{Event, Observer};

/// The live view's bars while one is on the terminal: every write hides
/// them first, so no line is drawn over (or under) a spinner.
static LIVE_BARS: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);
/// Whether errors are also written as `error` events on stdout (`--output
/// json` of `run`, `undo` and `resume`).
static ERROR_EVENTS: AtomicBool = AtomicBool::new(false);

/// Registers (or, with `None`, forgets) the live view's bars.
pub fn set_live_bars(bars: Option<indicatif::MultiProgress>) {
    *LIVE_BARS.lock().unwrap_or_else(|p| p.into_inner()) = bars;
}

/// Turns `error` events on: from then on [`error`] and [`diagnostics`] also
/// write one JSON line each to stdout.
pub fn set_error_events(on: bool) {
    ERROR_EVENTS.store(on, Ordering::Relaxed);
}

/// Whether errors are written as events (then no other JSON document may be printed).
pub fn error_events() -> bool {
    ERROR_EVENTS.load(Ordering::Relaxed)
}

/// Writes to stdout or stderr, ignoring errors: when the reader of a pipe
/// goes away (`backout plan rb.toml | head`), printing stops and the command
/// goes on. `println!` would panic instead, in the middle of a rollback.
pub fn emit(to_stderr: bool, args: std::fmt::Arguments<'_>, newline: bool) {
    // Cloned out of the lock: suspend() draws, and must not run under it.
    let bars = LIVE_BARS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bars {
        Some(bars) => bars.suspend(|| write(to_stderr, args, newline)),
        None => write(to_stderr, args, newline),
    }
}

fn write(to_stderr: bool, args: std::fmt::Arguments<'_>, newline: bool) {
    let result = if to_stderr {
        let mut err = std::io::stderr().lock();
        err.write_fmt(args).and_then(|()| if newline { err.write_all(b"\n") } else { err.flush() })
    } else {
        let mut out = std::io::stdout().lock();
        out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { out.flush() })
    };
    let _ = result;
}

/// `println!` that survives a closed stdout.
macro_rules! outln {
    () => { $crate::output::emit(false, format_args!(""), true) };
    ($($t:tt)*) => { $crate::output::emit(false, format_args!($($t)*), true) };
}
/// `print!` that survives a closed stdout.
macro_rules! out {
    ($($t:tt)*) => { $crate::output::emit(false, format_args!($($t)*), false) };
}
/// `eprintln!` that survives a closed stderr.
macro_rules! errln {
    () => { $crate::output::emit(true, format_args!(""), true) };
    ($($t:tt)*) => { $crate::output::emit(true, format_args!($($t)*), true) };
}
/// `eprint!` that survives a closed stderr.
macro_rules! err {
    ($($t:tt)*) => { $crate::output::emit(true, format_args!($($t)*), false) };
}
pub(crate) use {err, errln, out, outln};

/// The hint a typed error in `e`'s chain carries (the registry's errors
/// each know theirs, whichever module's type they arrive as), if any: hints
/// are never chosen by matching message text.
pub fn hint_of(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(backout_registry::hint_of)
}

/// Prints an error with its causes and an optional hint.
pub fn error(e: &anyhow::Error, hint: Option<&str>) {
    let mut text = format!("error: {e}");
    for cause in e.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    if let Some(hint) = hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    errln!("{text}");
    if error_events() {
        let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
        crate::live::error_event(&e.to_string(), &causes, hint, None);
    }
}

/// Prints every diagnostic, then a one-line summary when there are errors.
pub fn diagnostics(d: &Diagnostics, runbook: &std::path::Path) {
    for diag in &d.0 {
        errln!("{diag}");
    }
    let n = d.error_count();
    if n > 0 {
        let message =
            format!("{} found in `{}`; nothing was run", backout::text::count(n, "problem"), runbook.display());
        errln!("error: {message}");
        if error_events() {
            crate::live::error_event(&message, &[], None, Some(d));
        }
    }
}

/// Prints plugin logs as `[step] level: message` and progress at most twice
/// a second per step, plus the moment a total is reached (once per total:
/// a plugin repeating `progress(1, 1)` cannot flood the terminal).
pub fn log_printer() -> Observer {
    let last: Arc<Mutex<Option<(String, Instant)>>> = Arc::default();
    let last_finished: Arc<Mutex<Option<(String, u64)>>> = Arc::default();
    Arc::new(move |event: &Event| match event {
        Event::Log { step, phase, level, message } => {
            errln!("[{step}] {} {}: {message}", phase.as_str(), level.as_str());
        }
        Event::Progress { step, phase, done, total, unit } => {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            let mut last_finished = last_finished.lock().unwrap_or_else(|p| p.into_inner());
            // A reached total is shown once, whenever it comes; a repeat of
            // it never, however long after (the rate limit alone would let
            // one through every half second).
            let show = match total.filter(|t| *done >= *t) {
                Some(t) => {
                    let first = last_finished.as_ref().is_none_or(|(s, at)| s != step || *at != t);
                    *last_finished = Some((step.clone(), t));
                    first
                }
                None => match &*last {
                    Some((s, at)) if s == step => at.elapsed() >= Duration::from_millis(500),
                    _ => true,
                },
            };
            if show {
                *last = Some((step.clone(), Instant::now()));
                match total {
                    Some(t) if *t > 0 => {
                        let pct = (*done as f64 / *t as f64 * 100.0).min(100.0);
                        errln!("[{step}] {} progress: {pct:.0}% ({done}/{t} {unit})", phase.as_str());
                    }
                    _ => errln!("[{step}] {} progress: {done} {unit}", phase.as_str()),
                }
            }
        }
    })
}
