//! What an operator (or a program) sees while `run`, `undo` and `resume` go.
//!
//! One [`Live`] per command, chosen in one place ([`Live::new`]) from
//! `--output`, `-q`/`-v`, `--color`, `NO_COLOR` and whether stderr is a
//! terminal:
//!
//! - **terminal**: a spinner for what runs now (`[2/5] restore-db  run  4s`),
//!   a bar with rate and ETA once the plugin reports a total, a spinner while
//!   plugins load and plan; log lines scroll above it, and each step's result
//!   block is printed when it ends. Every other line the binary prints goes
//!   through `output::emit`, which hides the bar while it writes, so nothing
//!   is drawn over.
//! - **plain** (stderr is a pipe or a file, or `TERM=dumb`): no bars, no escape codes;
//!   timestamped lines, progress at most every few seconds per step plus
//!   its completion.
//!
//! With `--output json`, stdout carries events instead of results: JSON
//! Lines, one per event as it happens; journal events are the journal's own
//! [`Event`]s, with the live-only kinds (`plan`, `log`, `progress`, `report`,
//! `error`) beside them (schema: `docs/events.schema.json`). Stderr still
//! shows the terminal or plain view for whoever watches, without results.
//!
//! It hears three sources: the resolve stages (plugins loading and planning),
//! plugin calls (log lines and progress, [`CallEvent`]) and the recorder
//! (every journal event, with the run's record already updated).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use backout::capability::Phase;
use backout::history::RunRecord;
use backout::journal::event::Event;
use backout::plan::Plan;
use backout::recorder::RunObserver;
use backout::report::{self, run as run_report};
use backout::resolve::{Stage, StageObserver};
use backout::runtime::host_api::{Event as CallEvent, LogLevel, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::args::{ColorChoice, Output};
use crate::output::{self, errln, out, outln};

/// The version of the event stream (`"stream": 1` on every line). Adding an
/// event kind or a field keeps it; renaming, removing or retyping anything
/// bumps it.
pub const STREAM_VERSION: u32 = 1;

/// At most this often per step a progress event is written (plus the one
/// that reaches the total): 4 a second.
const EVENT_PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// At most this often per step a plain progress line is written (plus the
/// one that reaches the total).
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How much is said besides results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: results only.
    Quiet,
    /// Log lines at info and above, progress.
    Normal,
    /// `-v`: debug and trace log lines too.
    Verbose,
}

impl Verbosity {
    pub fn new(quiet: bool, verbose: bool) -> Self {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }

    /// Whether a plugin's log line at `level` is shown as text.
    fn shows(self, level: LogLevel) -> bool {
        match self {
            Verbosity::Quiet => false,
            Verbosity::Normal => !matches!(level, LogLevel::Debug | LogLevel::Trace),
            Verbosity::Verbose => true,
        }
    }
}

/// Whether to colour one stream: `--color`, then `NO_COLOR`, then whether
/// it is a terminal that knows colours (not `TERM=dumb`).
pub fn colour(choice: ColorChoice, is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && !no_color && !dumb_terminal(),
    }
}

/// `TERM=dumb`: a terminal that neither colours nor moves its cursor.
fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// The live view of one command; cheap to clone, shared by the observers.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("verbosity", &self.inner.verbosity).finish_non_exhaustive()
    }
}

struct Inner {
    view: View,
    /// `--output json`: stdout carries events, not results.
    events: bool,
    verbosity: Verbosity,
    /// Colour for stdout (results) and stderr (log lines, bars).
    paint_out: bool,
    paint_err: bool,
    state: Mutex<State>,
    /// Progress events, and plain progress lines: each rate-limited on its own.
    event_throttle: Throttle,
    plain_throttle: Throttle,
}

/// What stderr shows.
enum View {
    Terminal(MultiProgress),
    Plain,
}

#[derive(Default)]
struct State {
    /// The bar of what is going on now (terminal only): a step, an undo, or planning.
    current: Option<Current>,
}

/// When each step's progress was last shown, and the total it last reached.
type Throttle = Mutex<HashMap<String, (Instant, Option<u64>)>>;

struct Current {
    /// The step id, or empty while planning.
    key: String,
    bar: ProgressBar,
    /// Whether the bar shows a total (it started as a spinner).
    has_total: bool,
}

impl Live {
    /// Decides how this command shows itself. The one place that looks at
    /// terminals and settings.
    pub fn new(output: Output, choice: ColorChoice, verbosity: Verbosity) -> Self {
        let stderr_terminal = std::io::stderr().is_terminal();
        // A terminal that cannot move its cursor gets the plain lines.
        let view = if stderr_terminal && !dumb_terminal() && verbosity != Verbosity::Quiet {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            output::set_live_bars(Some(multi.clone()));
            View::Terminal(multi)
        } else {
            View::Plain
        };
        let events = output == Output::Json;
        output::set_error_events(events);
        let inner = Inner {
            view,
            events,
            verbosity,
            paint_out: colour(choice, std::io::stdout().is_terminal()),
            paint_err: colour(choice, stderr_terminal),
            state: Mutex::default(),
            event_throttle: Mutex::default(),
            plain_throttle: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Whether events go to stdout as JSON Lines.
    pub fn events(&self) -> bool {
        self.inner.events
    }

    /// Whether stderr shows more than results and errors (not `-q`).
    pub fn chatty(&self) -> bool {
        self.inner.verbosity != Verbosity::Quiet
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `resolve`: which plugin loads or plans now.
    pub fn stages(&self) -> StageObserver {
        let live = self.clone();
        Arc::new(move |stage: Stage<'_>| live.stage(stage))
    }

    fn stage(&self, stage: Stage<'_>) {
        if !self.chatty() {
            return;
        }
        match (&self.inner.view, stage) {
            (View::Terminal(_), Stage::Loading { step, uses }) => {
                self.spin("", "planning", &format!("{step}: loading {uses} (verify, compile or load from cache)"));
            }
            (View::Terminal(_), Stage::Planning { step }) => {
                self.spin("", "planning", &format!("{step}: the plugin checks its config (read-only)"));
            }
            (_, Stage::Loading { step, uses }) => errln!("{} loading {uses} for step {step}", stamp()),
            (_, Stage::Planning { step }) if self.inner.verbosity == Verbosity::Verbose => {
                errln!("{} planning step {step}", stamp());
            }
            (_, Stage::Planning { .. }) => {}
        }
    }

    /// Resolution ended (either way): the planning spinner goes.
    pub fn planned(&self) {
        let mut state = self.state();
        if state.current.as_ref().is_some_and(|c| c.key.is_empty()) {
            clear(state.current.take());
        }
    }

    /// The plan, as the first event (events only).
    pub fn plan(&self, plan: &Plan) {
        if self.events() {
            emit(&Kind::Plan { plan: report::PlanView::new(plan) });
        }
    }

    /// The last event of a `run` that found nothing to change (events only).
    pub fn nothing_to_change(&self, message: &str, changes: &backout::plan::Changes) {
        if self.events() {
            emit(&Kind::NothingToChange { exit_code: crate::Exit::Success as u8, message, changes });
        }
    }

    /// For plugin calls: log lines and progress as they happen.
    pub fn calls(&self) -> Observer {
        let live = self.clone();
        Arc::new(move |event: &CallEvent| live.call(event))
    }

    fn call(&self, event: &CallEvent) {
        match event {
            CallEvent::Log { step, phase, level, message } => self.log(step, *phase, *level, message),
            CallEvent::Progress { step, phase, done, total, unit } => {
                self.progress(step, *phase, *done, *total, unit);
            }
        }
    }

    fn log(&self, step: &str, phase: Phase, level: LogLevel, message: &str) {
        if self.events() {
            emit(&Kind::Log { step, phase, level, message });
        }
        if !self.inner.verbosity.shows(level) {
            return;
        }
        let level_text = paint(self.inner.paint_err, level_style(level), level.as_str());
        let step_text = paint(self.inner.paint_err, CYAN, &format!("[{step}]"));
        let line = format!("{step_text} {} {level_text}: {message}", phase.as_str());
        match self.inner.view {
            View::Plain => errln!("{} {line}", stamp()),
            _ => errln!("{line}"),
        }
    }

    fn progress(&self, step: &str, phase: Phase, done: u64, total: Option<u64>, unit: &str) {
        if self.events() && self.throttled(&self.inner.event_throttle, step, done, total, EVENT_PROGRESS_EVERY) {
            emit(&Kind::Progress { step, phase, done, total, unit });
        }
        match &self.inner.view {
            View::Plain if self.chatty() => {
                if self.throttled(&self.inner.plain_throttle, step, done, total, PLAIN_PROGRESS_EVERY) {
                    errln!("{} [{step}] {} progress: {}", stamp(), phase.as_str(), progress_text(done, total, unit));
                }
            }
            View::Terminal(_) => {
                let mut state = self.state();
                let Some(current) = state.current.as_mut().filter(|c| c.key == step) else { return };
                match total {
                    Some(t) if t > 0 => {
                        if !current.has_total {
                            current.has_total = true;
                            current.bar.set_style(self.bar_style(unit));
                        }
                        current.bar.set_length(t);
                        current.bar.set_position(done.min(t));
                    }
                    _ => current.bar.set_message(format!("{step}  {} {done} {unit}", phase.as_str())),
                }
            }
            View::Plain => {}
        }
    }

    /// Whether a progress update of `step` is shown: the first, then at
    /// most one per `every`, and the one that reaches a total once (a
    /// plugin repeating `progress(1, 1)` cannot flood anything).
    fn throttled(&self, throttle: &Throttle, step: &str, done: u64, total: Option<u64>, every: Duration) -> bool {
        let mut shown = throttle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = shown.get(step).copied();
        let show = match total.filter(|t| done >= *t) {
            Some(t) => entry.is_none_or(|(_, reached)| reached != Some(t)),
            None => entry.is_none_or(|(at, _)| now.duration_since(at) >= every),
        };
        if show {
            let reached = total.filter(|t| done >= *t).or(entry.and_then(|(_, r)| r));
            shown.insert(step.to_string(), (now, reached));
        }
        show
    }

    /// For the recorder: every journal event, with the run's record updated.
    pub fn journal(&self) -> RunObserver {
        let live = self.clone();
        Arc::new(move |event: &Event, record: &RunRecord| live.journal_event(event, record))
    }

    fn journal_event(&self, event: &Event, record: &RunRecord) {
        if self.events() {
            emit(&Journaled(event));
        }
        match event {
            Event::StepStarted { step, attempt, .. } => {
                let n = record.steps.iter().position(|s| s.id() == step).map_or(0, |i| i + 1);
                let of = record.steps.len();
                let again = if *attempt > 1 { format!(", attempt {attempt}") } else { String::new() };
                match self.inner.view {
                    View::Terminal(_) => self.spin(step, &format!("[{n}/{of}]"), &format!("{step}  run{again}")),
                    _ if self.chatty() => errln!("{} [{n}/{of}] {step} started{again}", stamp()),
                    _ => {}
                }
            }
            Event::StepFinished(f) => {
                self.stop(&f.step);
                if let Some(step) = record.step(&f.step).filter(|_| !self.events()) {
                    out!("{}", self.painted_result(&run_report::step_result(step)));
                }
            }
            Event::UndoStarted { step, .. } => match self.inner.view {
                View::Terminal(_) => self.spin(step, "[undo]", &format!("{step}  undo")),
                _ if self.chatty() => errln!("{} undoing {step}…", stamp()),
                _ => {}
            },
            Event::UndoFinished(f) => {
                self.stop(&f.step);
                if let Some(step) = record.step(&f.step).filter(|_| !self.events()) {
                    out!("{}", self.painted_result(&run_report::undo_result(step)));
                }
            }
            Event::StepRetrying { step, attempt, failed_in, failure, wait_ms } => {
                let of = record.step(step).map(|s| s.header.retries.attempts).unwrap_or(*attempt);
                errln!(
                    "retry    {step}  attempt {attempt} of {of} failed in {}: {failure}; trying again in {:.1?}",
                    failed_in.as_str(),
                    Duration::from_millis(*wait_ms)
                );
            }
            Event::TemporaryRemoved { path, host_path, .. } => {
                errln!("removed  leftover temporary file {path} (host: {})", host_path.display());
            }
            Event::RunFinished { .. } => clear(self.state().current.take()),
            _ => {}
        }
    }

    /// The last word: the report (events: one `report` line; text: the
    /// summary). `exit` is the process's exit code.
    pub fn finish(&self, record: &RunRecord, journal: Option<&Path>, errors: &[String], exit: crate::Exit) {
        clear(self.state().current.take());
        if self.events() {
            let run = run_report::RunView::new(record, journal, errors);
            emit(&Kind::Report { exit_code: exit as u8, run });
        } else {
            out!("\n{}", self.painted_summary(&run_report::summary(record, journal, errors)));
        }
    }

    /// Shows (or re-labels) the spinner for `key` (a step id; empty: planning).
    fn spin(&self, key: &str, prefix: &str, message: &str) {
        let View::Terminal(multi) = &self.inner.view else { return };
        let mut state = self.state();
        match state.current.as_mut() {
            Some(c) if c.key == key && !c.has_total => {
                c.bar.set_prefix(prefix.to_string());
                c.bar.set_message(message.to_string());
                return;
            }
            _ => clear(state.current.take()),
        }
        // Labelled before it is added: added first, it could be drawn once without its words.
        let bar = ProgressBar::new_spinner()
            .with_style(self.spinner_style())
            .with_prefix(prefix.to_string())
            .with_message(message.to_string());
        let bar = multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        state.current = Some(Current { key: key.to_string(), bar, has_total: false });
    }

    /// Takes down the bar of `step`, if it is the one shown.
    fn stop(&self, step: &str) {
        let mut state = self.state();
        if state.current.as_ref().is_some_and(|c| c.key == step) {
            clear(state.current.take());
        }
        drop(state);
        for throttle in [&self.inner.event_throttle, &self.inner.plain_throttle] {
            throttle.lock().unwrap_or_else(|p| p.into_inner()).remove(step);
        }
    }

    fn spinner_style(&self) -> ProgressStyle {
        let template = if self.inner.paint_err {
            "{spinner:.cyan} {prefix:.bold} {msg}  {elapsed:.dim}"
        } else {
            "{spinner} {prefix} {msg}  {elapsed}"
        };
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()).tick_chars(TICKS)
    }

    /// The bar once a total is known: bytes as sizes and a byte rate,
    /// anything else as counts of its unit.
    fn bar_style(&self, unit: &str) -> ProgressStyle {
        let (bar, dim) = if self.inner.paint_err { ("{bar:30.cyan/blue}", ":.dim") } else { ("{bar:30}", "") };
        let amounts = if unit == "bytes" {
            "{bytes}/{total_bytes}  {binary_bytes_per_sec}".to_string()
        } else {
            // The unit is plugin text: braces would be read as placeholders.
            let unit: String = unit.chars().filter(|c| !matches!(c, '{' | '}')).take(16).collect();
            format!("{{pos}}/{{len}} {unit}  {{per_sec}}")
        };
        let template = format!("{{spinner}} {{prefix}} {{msg}}  [{bar}] {amounts}  eta {{eta}}  {{elapsed{dim}}}");
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .tick_chars(TICKS)
            .progress_chars("=> ")
    }

    /// A step's or an undo's result block, its first word coloured.
    fn painted_result(&self, block: &str) -> String {
        if !self.inner.paint_out {
            return block.to_string();
        }
        for (word, style) in [
            ("ok ", GREEN),
            ("FAILED ", RED),
            ("UNDO FAILED ", RED),
            ("undone ", YELLOW),
            ("? ", YELLOW),
            ("not run ", DIM),
        ] {
            if let Some(rest) = block.strip_prefix(word) {
                return format!("{}{rest}", paint(true, style, word.trim_end()) + " ");
            }
        }
        block.to_string()
    }

    /// The summary, its `State:` and `RTO:` words coloured.
    fn painted_summary(&self, text: &str) -> String {
        if !self.inner.paint_out {
            return text.to_string();
        }
        let word = |line: &str, label: &str| -> Option<(String, String)> {
            let (first, rest) = line.strip_prefix(label)?.split_once(' ')?;
            Some((first.to_string(), rest.to_string()))
        };
        text.lines()
            .map(|line| {
                if let Some((state, rest)) = word(line, "State: ") {
                    let style = match state.as_str() {
                        "succeeded" => GREEN,
                        "undone" => YELLOW,
                        _ => RED,
                    };
                    format!("State: {} {rest}\n", paint(true, style, &state))
                } else if let Some((verdict, rest)) = word(line, "RTO: ") {
                    let style = match verdict.as_str() {
                        "MET" => GREEN,
                        "MISSED" => RED,
                        _ => "",
                    };
                    format!("RTO: {} {rest}\n", paint(true, style, &verdict))
                } else {
                    format!("{line}\n")
                }
            })
            .collect()
    }
}

/// Takes a bar off the screen.
fn clear(current: Option<Current>) {
    if let Some(c) = current {
        c.bar.finish_and_clear();
    }
}

/// Spinner frames: braille dots, the last one shown when finished.
const TICKS: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⠿";

const GREEN: &str = "32";
const RED: &str = "1;31";
const YELLOW: &str = "33";
const CYAN: &str = "36";
const DIM: &str = "2";

fn level_style(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => RED,
        LogLevel::Warn => YELLOW,
        LogLevel::Debug | LogLevel::Trace => DIM,
        LogLevel::Info | LogLevel::Stdout | LogLevel::Stderr => "",
    }
}

/// `text` in SGR `style` when `on` (and the style is not empty).
fn paint(on: bool, style: &str, text: &str) -> String {
    if on && !style.is_empty() { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_string() }
}

/// `50% (1/2 items)`, or `3 items` without a total.
fn progress_text(done: u64, total: Option<u64>, unit: &str) -> String {
    match total {
        Some(t) if t > 0 => {
            let pct = (done as f64 / t as f64 * 100.0).min(100.0);
            format!("{pct:.0}% ({done}/{t} {unit})")
        }
        _ => format!("{done} {unit}"),
    }
}

/// Now, as plain lines and events show it: RFC 3339 UTC to the second.
fn stamp() -> String {
    backout_registry::utc_timestamp(SystemTime::now())
}

/// One line of the event stream: the version, the time, then the event.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    stream: u32,
    time: &'a str,
    #[serde(flatten)]
    event: &'a T,
}

/// A journal event as the journal writes it (`"event": "step-started", …`).
#[derive(Serialize)]
#[serde(transparent)]
struct Journaled<'a>(&'a Event);

/// The kinds only the live stream has; everything else is a journal [`Event`].
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Kind<'a> {
    /// What will run, before anything does.
    Plan { plan: report::PlanView<'a> },
    /// A plugin's log line (every level; secrets masked, control characters escaped).
    Log { step: &'a str, phase: Phase, level: LogLevel, message: &'a str },
    /// A plugin's progress, at most 4 a second per step plus the one that reaches the total.
    Progress { step: &'a str, phase: Phase, done: u64, total: Option<u64>, unit: &'a str },
    /// The last line: the run as `backout show --output json` gives it, and the exit code.
    Report { exit_code: u8, run: run_report::RunView<'a> },
    /// The last line instead of `report` when the plan had nothing to change
    /// and nothing ran (no run, no journal).
    NothingToChange { exit_code: u8, message: &'a str, changes: &'a backout::plan::Changes },
    /// A refusal or an error, as stderr says it.
    Error {
        message: &'a str,
        causes: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        diagnostics: Option<&'a backout::diagnostic::Diagnostics>,
    },
}

/// Writes one event line to stdout (flushed: stdout is line-buffered),
/// surviving a closed pipe like every other line.
fn emit<T: Serialize>(event: &T) {
    let time = stamp();
    let line = Line { stream: STREAM_VERSION, time: &time, event };
    match serde_json::to_string(&line) {
        Ok(text) => outln!("{}", crate::commands::json_inert(&text)),
        Err(e) => errln!("warning: an event could not be written as JSON: {e}"),
    }
}

/// An `error` event: called by `output::error` and `output::diagnostics`
/// while the event stream is on.
pub fn error_event(
    message: &str,
    causes: &[String],
    hint: Option<&str>,
    diagnostics: Option<&backout::diagnostic::Diagnostics>,
) {
    emit(&Kind::Error { message, causes, hint, diagnostics });
}

/// The report of a run that nothing was done to (`undo` of a run already
/// undone), so that the stream still ends with one.
pub fn report_only(record: &RunRecord, journal: Option<&Path>, exit: crate::Exit) {
    emit(&Kind::Report { exit_code: exit as u8, run: run_report::RunView::new(record, journal, &[]) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lines_need_verbose_and_quiet_shows_no_log_line() {
        assert!(!Verbosity::Normal.shows(LogLevel::Debug));
        assert!(!Verbosity::Normal.shows(LogLevel::Trace));
        assert!(Verbosity::Normal.shows(LogLevel::Info));
        assert!(Verbosity::Verbose.shows(LogLevel::Debug));
        assert!(!Verbosity::Quiet.shows(LogLevel::Error));
    }

    #[test]
    fn never_and_always_win_over_the_terminal() {
        assert!(!colour(ColorChoice::Never, true));
        assert!(colour(ColorChoice::Always, false));
        assert!(!colour(ColorChoice::Auto, false));
    }

    #[test]
    fn progress_text_says_percent_and_counts() {
        assert_eq!(progress_text(1, Some(2), "items"), "50% (1/2 items)");
        assert_eq!(progress_text(3, None, "rows"), "3 rows");
        assert_eq!(progress_text(5, Some(0), "rows"), "5 rows");
    }
}
