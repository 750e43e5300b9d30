//! How a run is shown: one result block per step as it ends, a summary when
//! the run ends, `backout show` and `backout runs`, and the JSON of each.
//!
//! Everything here renders a [`RunRecord`], the fold of the run's journal,
//! so a run reads the same live, in its summary, and in `show` a week later.
//! Every value in a record was masked for secrets when it was journaled.
//! Guest paths in outputs get their host paths beside them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::history::{RunRecord, StepProgress, StepRecord, Temporary, UndoProgress, host_path};
use crate::journal::event::{DirMount, FailedIn, OutputsFrom, RunState, Session};
use crate::rto::RtoVerdict;
use crate::runtime::Failure;
use crate::runtime::host_api::LogRecord;

/// A run as JSON (`--output json` of `run`, `undo`, `resume`, `show`).
#[derive(Debug, Serialize)]
pub struct RunView<'a> {
    pub id: &'a str,
    pub runbook: &'a str,
    pub runbook_path: &'a Path,
    pub state: RunState,
    /// `state == "succeeded"`, for scripts that only need yes or no.
    pub succeeded: bool,
    pub failed_step: Option<&'a str>,
    pub interrupted_by: Option<&'a str>,
    pub started_at: &'a str,
    pub finished_at: Option<&'a str>,
    pub elapsed_ms: u64,
    /// The RTO verdict; `null` when the runbook declares no `rto`.
    pub rto: Option<RtoVerdict>,
    /// Each `run`, `resume` and `undo` of the run: who, where, which backout.
    pub sessions: &'a [Session],
    pub steps: Vec<StepView<'a>>,
    pub journal: Option<&'a Path>,
    /// Records the journal could not write: it is incomplete when not empty.
    pub journal_errors: &'a [String],
}

/// One step of a run as JSON.
#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub id: &'a str,
    pub uses: &'a str,
    pub digest: &'a str,
    pub plugin: &'a str,
    /// `succeeded`, `failed`, `in-doubt` (started, never finished) or `not-run`.
    pub status: &'static str,
    pub always: bool,
    pub critical: bool,
    /// What the step was granted (environment values are never shown).
    pub grants: StepGrantsView<'a>,
    /// Each attempt's time limit.
    pub timeout_ms: u64,
    /// How long the runbook expects the step to take, if it says.
    pub expected_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_in: Option<FailedIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'a Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs_from: Option<OutputsFrom>,
    /// Outputs that are guest paths, with their host paths.
    pub host_paths: Vec<HostPathView>,
    pub attempts: u32,
    pub recovered: bool,
    pub undo: &'a UndoProgress,
    /// Whether `backout undo` would call this step's undo.
    pub undo_available: bool,
    pub temporaries: &'a [Temporary],
    pub elapsed_ms: u64,
    pub log: &'a [LogRecord],
    pub log_dropped: u64,
}

/// A step's grants, as journaled.
#[derive(Debug, Serialize)]
pub struct StepGrantsView<'a> {
    pub dirs: &'a [DirMount],
    pub env: &'a [String],
    pub net: &'a [String],
    pub commands: &'a [Vec<String>],
}

#[derive(Debug, Serialize)]
pub struct HostPathView {
    pub key: String,
    pub guest: String,
    pub host: PathBuf,
}

impl<'a> RunView<'a> {
    pub fn new(record: &'a RunRecord, journal: Option<&'a Path>, journal_errors: &'a [String]) -> Self {
        Self {
            id: &record.id,
            runbook: &record.header.runbook.name,
            runbook_path: &record.header.runbook.path,
            state: record.state,
            succeeded: record.succeeded(),
            failed_step: record.failed_step.as_deref(),
            interrupted_by: record.interrupted_by.as_deref(),
            started_at: &record.started_at,
            finished_at: record.finished_at.as_deref(),
            elapsed_ms: record.elapsed_ms,
            rto: crate::rto::verdict(record),
            sessions: &record.sessions,
            steps: record.steps.iter().map(StepView::new).collect(),
            journal,
            journal_errors,
        }
    }
}

impl<'a> StepView<'a> {
    fn new(s: &'a StepRecord) -> Self {
        Self {
            id: &s.header.id,
            uses: &s.header.uses,
            digest: &s.header.digest,
            plugin: &s.header.plugin,
            status: status_word(s.progress),
            always: s.header.always,
            critical: s.header.critical,
            grants: StepGrantsView {
                dirs: &s.header.dirs,
                env: &s.header.env,
                net: &s.header.net,
                commands: &s.header.commands,
            },
            timeout_ms: s.header.timeout_ms,
            expected_ms: s.header.expected_ms,
            failed_in: s.failed_in,
            failure: s.failure.as_ref(),
            summary: s.summary.as_deref(),
            outputs: s.outputs.as_ref(),
            outputs_from: s.outputs_from,
            host_paths: s
                .host_paths()
                .into_iter()
                .map(|(key, guest, host)| HostPathView { key, guest, host })
                .collect(),
            attempts: s.attempts,
            recovered: s.recovered,
            undo: &s.undo,
            undo_available: s.needs_undo(),
            temporaries: &s.temporaries,
            elapsed_ms: s.elapsed_ms,
            log: &s.log,
            log_dropped: s.log_dropped,
        }
    }
}

fn status_word(p: StepProgress) -> &'static str {
    match p {
        StepProgress::NotStarted => "not-run",
        StepProgress::InDoubt => "in-doubt",
        StepProgress::Succeeded => "succeeded",
        StepProgress::Failed => "failed",
    }
}

/// A measured time for people (`<1ms`, `18ms`, `2.4s`, `3m05s`).
pub(super) fn ms(ms: u64) -> String {
    crate::quantity::format_elapsed(std::time::Duration::from_millis(ms))
}

/// The block printed when a step ends: its result line, then its outputs.
pub fn step_result(s: &StepRecord) -> String {
    let mut out = String::new();
    let id = s.id();
    match s.progress {
        StepProgress::Succeeded => {
            let summary = s.summary.as_deref().unwrap_or("");
            let recovered =
                if s.recovered { " (completed before backout was stopped; verify confirmed it)" } else { "" };
            let _ = writeln!(out, "ok       {id}  {summary}{recovered}  ({}{})", ms(s.elapsed_ms), expected_note(s));
        }
        StepProgress::Failed => {
            let failure = s.failure.as_ref().map(ToString::to_string).unwrap_or_default();
            let stage = s.failed_in.map(FailedIn::as_str).unwrap_or("run");
            let tolerated = if s.header.critical { "" } else { " (not critical: the run goes on)" };
            let _ = writeln!(
                out,
                "FAILED   {id}  in {stage}: {failure}{tolerated}  ({}{})",
                ms(s.elapsed_ms),
                expected_note(s)
            );
        }
        StepProgress::InDoubt => {
            let _ = writeln!(out, "?        {id}  started, never finished: backout was stopped inside it");
        }
        StepProgress::NotStarted => {
            let _ = writeln!(out, "not run  {id}");
        }
    }
    outputs_text(&mut out, s);
    if s.log_dropped > 0 {
        let _ = writeln!(out, "         (log lines or output bytes dropped past the limits: {})", s.log_dropped);
    }
    out
}

/// `; expected 30s` when a step took longer than the runbook expects.
fn expected_note(s: &StepRecord) -> String {
    match s.header.expected_ms {
        Some(expected) if s.elapsed_ms > expected => format!("; slower than the expected {}", ms(expected)),
        _ => String::new(),
    }
}

/// `MET — succeeded in 1.2s, within the RTO of 5m (…); slowest step `b` (0.8s)`.
pub fn rto_words(v: &RtoVerdict) -> String {
    let slowest = match &v.slowest_step {
        Some(step) => format!("; slowest step `{step}` ({})", ms(v.slowest_ms)),
        None => String::new(),
    };
    format!("{} — {}{slowest}", v.verdict.as_str().to_uppercase(), v.why)
}

/// The line printed when a step's undo ends.
pub fn undo_result(s: &StepRecord) -> String {
    match &s.undo {
        UndoProgress::Undone { summary } => format!("undone   {}  {summary}\n", s.id()),
        UndoProgress::Failed { failure } => format!("UNDO FAILED  {}  {failure}\n", s.id()),
        UndoProgress::InDoubt => format!("undoing  {}\n", s.id()),
        UndoProgress::NotUndone => String::new(),
    }
}

fn outputs_text(out: &mut String, s: &StepRecord) {
    let Some(serde_json::Value::Object(map)) = &s.outputs else { return };
    if s.outputs_from == Some(OutputsFrom::Checkpoint) {
        let _ = writeln!(out, "         (outputs from the step's last checkpoint: `run` returned none)");
    }
    for (key, value) in map {
        let text = crate::shown::value_line(value);
        let shown = match value.as_str().and_then(|guest| host_path(&s.header.dirs, guest)) {
            Some(host) => format!("{text}  (host: {})", crate::shown::line(&host.display().to_string())),
            None if !value.is_string() && text.chars().count() > 200 => {
                format!("{}…", text.chars().take(200).collect::<String>())
            }
            None => text,
        };
        let _ = writeln!(out, "         {}: {shown}", crate::shown::line(key));
    }
}

/// The summary printed when a session ends.
pub fn summary(record: &RunRecord, journal: Option<&Path>, journal_errors: &[String]) -> String {
    let mut out = String::new();
    // "2 of 3 steps", "1 of 1 step": the noun agrees with the total.
    let total = crate::text::count(record.steps.len(), "step");
    let done: Vec<&str> = record.completed().map(StepRecord::id).collect();
    let names = |ids: &[&str]| {
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        }
    };
    let undone: Vec<&str> = record
        .steps
        .iter()
        .rev()
        .filter(|s| matches!(s.undo, UndoProgress::Undone { .. }))
        .map(StepRecord::id)
        .collect();
    match (record.state, &record.failed_step) {
        (RunState::Succeeded, _) => {
            let _ = writeln!(out, "Run succeeded: {} of {total} completed.", record.steps.len());
        }
        (_, Some(failed)) if record.interrupted_by.is_some() => {
            let why = record.interrupted_by.as_deref().unwrap_or("a signal");
            let _ = writeln!(
                out,
                "Run stopped by {why} in step `{failed}`: {} of {total} completed ({}).",
                done.len(),
                names(&done)
            );
        }
        (_, Some(failed)) if record.steps.iter().any(|s| s.id() == failed && s.progress == StepProgress::Failed) => {
            let _ =
                writeln!(out, "Run failed at step `{failed}`: {} of {total} completed ({}).", done.len(), names(&done));
        }
        (RunState::Undone, None) if record.sessions.last().is_some_and(|s| s.command == "undo") => {
            let _ = writeln!(out, "Run undone by `backout undo`.");
        }
        // `backout undo` stopped at a step whose undo failed (the step
        // itself had completed, so no arm above describes it).
        (RunState::NeedsAttention, Some(step))
            if record.step(step).is_some_and(|s| matches!(s.undo, UndoProgress::Failed { .. })) =>
        {
            let _ = writeln!(
                out,
                "Undo stopped at step `{step}`, whose undo failed: {} of {total} put back ({}); the changes \
                 of the others are still in place.",
                undone.len(),
                names(&undone)
            );
        }
        (_, _) => {
            let why = record.interrupted_by.as_deref().unwrap_or("a stop");
            let _ = writeln!(out, "Run stopped by {why}: {} of {total} completed ({}).", done.len(), names(&done));
        }
    }
    let not_run: Vec<&str> =
        record.steps.iter().filter(|s| s.progress == StepProgress::NotStarted).map(StepRecord::id).collect();
    if !not_run.is_empty() && record.state != RunState::Succeeded {
        let _ = writeln!(out, "Not run: {}.", names(&not_run));
    }
    if !undone.is_empty() {
        let _ = writeln!(out, "Undone, newest first: {}.", names(&undone));
    }
    let _ = writeln!(out, "State: {} — {}.", record.state, record.state.meaning());
    if let Some(v) = crate::rto::verdict(record) {
        let _ = writeln!(out, "RTO: {}.", rto_words(&v));
    }
    let slow: Vec<String> = crate::rto::slower_than_expected(record)
        .map(|(id, took, expected)| format!("`{id}` ({}, expected {})", ms(took), ms(expected)))
        .collect();
    if !slow.is_empty() {
        let _ = writeln!(out, "Slower than expected: {}.", slow.join(", "));
    }
    if matches!(record.state, RunState::NeedsAttention | RunState::Failed | RunState::TimedOut | RunState::Interrupted)
    {
        out.push('\n');
        out.push_str(&attention(record));
    }
    for e in journal_errors {
        let _ = writeln!(out, "warning: the journal is incomplete: {e}");
    }
    if let Some(j) = journal {
        let _ = writeln!(out, "Journal: {}", j.display());
        let _ = writeln!(out, "Run id: {}  (backout show {})", record.id, record.id);
    }
    out
}

/// Which step is in which state, where its safety copies are, and what to
/// do next: printed whenever a run ends with changes in place.
pub fn attention(record: &RunRecord) -> String {
    let mut out = String::new();
    let width = record.steps.iter().map(|s| s.id().len()).max().unwrap_or(0);
    for s in &record.steps {
        let state = step_state_words(s, record.state);
        let _ = writeln!(out, "  {:<width$}  {state}", s.id());
        if s.needs_undo() || matches!(s.undo, UndoProgress::Failed { .. }) {
            for (key, guest, host) in s.host_paths() {
                let _ = writeln!(out, "  {:<width$}    {key}: {guest}  (host: {})", "", host.display());
            }
        }
        for t in &s.temporaries {
            let host = t.host_path.as_ref().map(|h| h.display().to_string()).unwrap_or_else(|| t.path.clone());
            let _ = writeln!(out, "  {:<width$}    leftover temporary file: {host}", "");
        }
    }
    out.push('\n');
    out.push_str(&what_to_do(record));
    out
}

/// The next steps for an operator, by state.
pub(super) fn what_to_do(record: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What to do:");
    match record.state {
        RunState::NeedsAttention => {
            let _ = writeln!(out, "  1. Read the failed undo above: it says what it found and why it stopped.");
            let _ = writeln!(
                out,
                "  2. Fix that, then `backout undo {}` continues unwinding where it stopped (undo is safe to repeat).",
                record.id
            );
            let _ = writeln!(
                out,
                "  Or put the files back by hand from the safety copies listed above, newest step first."
            );
        }
        _ => {
            if record.undo_began() {
                let _ = writeln!(out, "  `backout undo {}` finishes putting the changes back.", record.id);
            } else {
                let _ = writeln!(
                    out,
                    "  `backout resume {}` continues the run (steps in doubt are verified first);",
                    record.id
                );
                let _ = writeln!(out, "  `backout undo {}` puts back what it changed, newest step first.", record.id);
            }
        }
    }
    out
}

/// A step's state in a few words, for the attention list and `show`. In a
/// run that `ended`, a completed change that is still in place is what
/// success means; anywhere else it is flagged as `NOT undone`.
pub(super) fn step_state_words(s: &StepRecord, ended: RunState) -> String {
    let ran = match s.progress {
        StepProgress::NotStarted => return "not run".to_string(),
        StepProgress::InDoubt if s.outputs.is_some() => "in doubt (stopped inside it, after its checkpoint)",
        StepProgress::InDoubt => "in doubt (stopped inside it, before it changed anything)",
        StepProgress::Succeeded if s.header.always => "ran (always; never undone)",
        StepProgress::Succeeded => "completed",
        StepProgress::Failed if s.outputs.is_some() => "failed, with its change in place",
        StepProgress::Failed => "failed, nothing changed",
    };
    match &s.undo {
        UndoProgress::Undone { summary } => format!("{ran}; undone: {summary}"),
        UndoProgress::Failed { failure } => format!("{ran}; UNDO FAILED: {failure}"),
        UndoProgress::InDoubt => format!("{ran}; undo started, never finished"),
        UndoProgress::NotUndone if s.needs_undo() && ended != RunState::Succeeded => format!("{ran}; NOT undone"),
        UndoProgress::NotUndone => ran.to_string(),
    }
}

/// `backout show RUN`: one run's story.
pub fn show(record: &RunRecord, journal: &Path) -> String {
    let mut out = String::new();
    let h = &record.header;
    let _ = writeln!(out, "Run {}", record.id);
    let _ = writeln!(out, "  runbook   {} ({})", h.runbook.name, h.runbook.path.display());
    let _ = writeln!(out, "  digest    {}", h.runbook.sha256);
    for (i, session) in record.sessions.iter().enumerate() {
        let label = if i == 0 { "by" } else { "" };
        let _ = writeln!(
            out,
            "  {label:<9} {} on {} (backout {}, pid {}): {}",
            session.operator, session.host, session.backout, session.pid, session.command
        );
    }
    let _ = writeln!(out, "  started   {}", record.started_at);
    if let Some(end) = &record.finished_at {
        let _ = writeln!(out, "  ended     {end} ({})", ms(record.elapsed_ms));
    }
    if !h.overrides.is_empty() {
        let vars: Vec<String> = h.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "  --var     {}", vars.join(" "));
    }
    let _ = writeln!(out, "  policy    on_failure = \"{}\"", h.on_failure.as_str());
    let _ = writeln!(out, "  state     {} — {}", record.state, record.state.meaning());
    if let Some(v) = crate::rto::verdict(record) {
        let _ = writeln!(out, "  rto       {}", rto_words(&v));
    }
    if let Some(why) = &record.interrupted_by {
        let _ = writeln!(out, "  stopped   by {why}");
    }
    for holder in &record.broken_locks {
        let _ = writeln!(out, "  unlocked  broke the stale lock of {holder} (--force-unlock)");
    }
    out.push('\n');
    for (i, s) in record.steps.iter().enumerate() {
        let _ =
            writeln!(out, "{}. {} — {} ({})", i + 1, s.id(), s.header.plugin, super::short_digest(&s.header.digest));
        let _ = writeln!(out, "   state    {}", step_state_words(s, record.state));
        if s.attempts > 1 {
            let _ = writeln!(out, "   attempts {}", s.attempts);
        }
        if matches!(s.progress, StepProgress::Succeeded | StepProgress::Failed) {
            let _ = writeln!(out, "   took     {}{}", ms(s.elapsed_ms), expected_note(s));
        }
        if let Some(summary) = &s.summary {
            let _ = writeln!(out, "   did      {summary}");
        }
        if let Some(f) = &s.failure {
            let _ = writeln!(out, "   failure  in {}: {f}", s.failed_in.map(FailedIn::as_str).unwrap_or("run"));
        }
        let mut outputs = String::new();
        outputs_text(&mut outputs, s);
        for line in outputs.lines() {
            let _ = writeln!(out, "  {line}");
        }
        for t in &s.temporaries {
            let host = t.host_path.as_ref().map(|h| h.display().to_string()).unwrap_or_else(|| t.path.clone());
            let present = t.host_path.as_ref().is_some_and(|h| std::fs::symlink_metadata(h).is_ok());
            let _ = writeln!(
                out,
                "   leftover temporary file {host}{}",
                if present { "  (still there; `backout undo` removes it)" } else { "  (gone)" }
            );
        }
        if s.needs_undo() {
            let _ =
                writeln!(out, "   undo     available: `backout undo {}` calls {}'s undo", record.id, s.header.plugin);
        }
        out.push('\n');
    }
    if !matches!(record.state, RunState::Succeeded | RunState::Undone | RunState::Running) {
        out.push_str(&what_to_do(record));
        out.push('\n');
    }
    let _ = writeln!(out, "Journal: {}", journal.display());
    out
}

/// One row of `backout runs`.
#[derive(Debug, Serialize)]
pub struct RunRow<'a> {
    pub id: &'a str,
    pub runbook: &'a str,
    pub started_at: &'a str,
    pub state: RunState,
    pub steps_done: usize,
    pub steps: usize,
    pub journal: &'a Path,
}

impl<'a> RunRow<'a> {
    pub fn new(record: &'a RunRecord, journal: &'a Path) -> Self {
        Self {
            id: &record.id,
            runbook: &record.header.runbook.name,
            started_at: &record.started_at,
            state: record.state,
            steps_done: record.completed().count(),
            steps: record.steps.len(),
            journal,
        }
    }
}

/// `backout runs` as a table, newest first.
pub fn runs_table(rows: &[RunRow<'_>]) -> String {
    let mut out = String::new();
    let id_width = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let name_width = rows.iter().map(|r| r.runbook.len()).max().unwrap_or(7).max(7);
    let _ = writeln!(out, "{:<id_width$}  {:<name_width$}  {:<20}  {:<15}  STEPS", "ID", "RUNBOOK", "STARTED", "STATE");
    for r in rows {
        let _ = writeln!(
            out,
            "{:<id_width$}  {:<name_width$}  {:<20}  {:<15}  {}/{}",
            r.id,
            r.runbook,
            r.started_at,
            r.state.as_str(),
            r.steps_done,
            r.steps
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::{finished, ran, records, session, started};
    use crate::journal::event::{Event, UndoFinished, UndoReason, UndoResult};
    use crate::runtime::StepErrorKind;

    /// A run of `a` and `b` that succeeded, then a `backout undo` that put
    /// `b` back and failed on `a`.
    fn undo_failed_on_a() -> RunRecord {
        let mut events = vec![started()];
        for step in ["a", "b"] {
            events.extend(ran(step));
            events.push(finished(step));
        }
        events.push(Event::RunFinished { state: RunState::Succeeded, failed_step: None, elapsed_ms: 5 });
        events.push(Event::Resumed { session: Session { command: "undo".into(), ..session() } });
        for (step, result) in [
            ("b", UndoResult::Undone { summary: "put back".into(), outputs: serde_json::json!({}) }),
            (
                "a",
                UndoResult::Failed {
                    failure: Failure::Step {
                        error: StepErrorKind::Precondition,
                        message: "the file changed since the run".into(),
                        problems: vec![],
                    },
                },
            ),
        ] {
            events.push(Event::UndoStarted { step: step.into(), reason: UndoReason::Operator, from: OutputsFrom::Run });
            events.push(Event::UndoFinished(UndoFinished {
                step: step.into(),
                result,
                elapsed_ms: 1,
                log: vec![],
                log_dropped: 0,
            }));
        }
        events.push(Event::RunFinished {
            state: RunState::NeedsAttention,
            failed_step: Some("a".into()),
            elapsed_ms: 2,
        });
        RunRecord::from_records(&records(events), |_| false).unwrap()
    }

    #[test]
    fn a_run_of_one_step_counts_it_in_the_singular() {
        let Event::RunStarted(mut header) = started() else { unreachable!() };
        header.steps.truncate(1);
        let mut events = vec![Event::RunStarted(header)];
        events.extend(ran("a"));
        events.push(finished("a"));
        events.push(Event::RunFinished { state: RunState::Succeeded, failed_step: None, elapsed_ms: 5 });
        let record = RunRecord::from_records(&records(events), |_| false).unwrap();
        let text = summary(&record, None, &[]);
        assert_eq!(text.lines().next().unwrap(), "Run succeeded: 1 of 1 step completed.");
    }

    #[test]
    fn a_log_that_lost_one_line_says_so_without_a_plural() {
        let mut record = undo_failed_on_a();
        record.steps[0].log_dropped = 1;
        let text = step_result(&record.steps[0]);
        assert!(text.contains("(log lines or output bytes dropped past the limits: 1)"), "{text}");
    }

    #[test]
    fn a_failed_backout_undo_says_which_undo_failed_and_what_was_put_back() {
        let text = summary(&undo_failed_on_a(), None, &[]);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "Undo stopped at step `a`, whose undo failed: 1 of 2 steps put back (`b`); the changes of the others are \
             still in place."
        );
        assert!(!text.contains("a stop"), "{text}");
    }
}
