//! The run report: `backout show RUN --html FILE` (one self-contained HTML
//! page) and `backout show RUN --output json` (the same data as JSON).
//!
//! Both serialise one [`ShowView`]: the `run` key is the [`RunView`] that
//! `run`, `undo` and `resume` print as JSON, and `report` adds what a reader
//! of the page needs besides: each step's outcome, the timeline, its outputs
//! with host paths, its undo, and what to do next. The page is rendered from
//! `run.html.j2` by minijinja with HTML auto-escaping on for every value, so
//! plugin text (summaries, outputs, logs, failures) can never become markup;
//! the page also forbids every script through its Content-Security-Policy.
//! Nothing here un-masks anything: every value was masked for secrets when it
//! was journaled.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::run::{RunView, ms, step_state_words, what_to_do};
use crate::history::{RunRecord, SpanCall, StepProgress, StepRecord, UndoProgress};
use crate::journal::event::{FailedIn, RunState};

/// The template, compiled into the binary so the page needs no file beside it.
const TEMPLATE: &str = include_str!("run.html.j2");
/// The template's name: its `.html` suffix is what turns auto-escaping on
/// (set explicitly as well, in [`render`]).
const TEMPLATE_NAME: &str = "run.html.j2";

/// The shape version of [`ReportView`] (`report.format` in the JSON): raised
/// when a field changes meaning or goes away.
pub const REPORT_FORMAT: u32 = 1;

/// What `backout show` shows, for the page and for `--output json` alike.
#[derive(Debug, Serialize)]
pub struct ShowView<'a> {
    /// The run, with the fields `run --output json` has.
    pub run: RunView<'a>,
    /// What the report adds: outcomes, the timeline, what to do next.
    pub report: ReportView<'a>,
}

/// The report's additions to [`RunView`].
#[derive(Debug, Serialize)]
pub struct ReportView<'a> {
    pub format: u32,
    /// The first line of the run's summary (`Run failed at step …`).
    pub headline: String,
    /// What the state means, in one line.
    pub state_meaning: &'static str,
    pub runbook_sha256: &'a str,
    pub on_failure: &'static str,
    /// `--var` overrides, as `NAME=VALUE`.
    pub overrides: Vec<String>,
    /// The timeline's length: every step's run and undo laid end to end in
    /// the order they ended (time between calls, such as loading plugins, is
    /// not drawn).
    pub timeline_ms: u64,
    pub steps: Vec<StepReport<'a>>,
    /// What to do next, one line each; empty when nothing is left to do.
    /// Commands are in backticks.
    pub next_steps: Vec<String>,
    /// `backout <version>`, which wrote the report.
    pub generated_by: String,
}

/// One step, as the report shows it (in the order of `run.steps`).
#[derive(Debug, Serialize)]
pub struct StepReport<'a> {
    pub id: &'a str,
    /// `succeeded`, `failed`, `undone`, `undo-failed`, `in-doubt` or
    /// `not-run`: the colour of its bar.
    pub outcome: &'static str,
    /// The step's state in words, as `backout show` prints it.
    pub state: String,
    /// Milliseconds its last run (with verify and retries) took.
    pub run_ms: Option<u64>,
    /// Milliseconds its last undo took.
    pub undo_ms: Option<u64>,
    /// Its bar on the timeline: exactly one per step.
    pub bar: Bar,
    /// Its undo on the timeline, when it was undone (or tried).
    pub undo_bar: Option<Bar>,
    /// `in verify: …`: where and why it failed.
    pub failure: Option<String>,
    pub outputs: Vec<OutputLine>,
    /// `slower than the expected 30s` when it took longer than the runbook's `expected`.
    pub slower: Option<String>,
    /// Its undo: done, failed, or how to do it (commands in backticks).
    pub undo: Option<String>,
    /// Temporary files a call that never ended left behind (host paths).
    pub leftovers: Vec<String>,
}

/// A bar on the timeline, in milliseconds and in percent of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bar {
    pub offset_ms: u64,
    pub duration_ms: u64,
    pub left_pct: f64,
    pub width_pct: f64,
}

/// One output: its key, its value on one line, and its host path when the
/// value is a guest path inside the step's grants.
#[derive(Debug, Serialize)]
pub struct OutputLine {
    pub key: String,
    pub value: String,
    pub host: Option<PathBuf>,
}

impl<'a> ShowView<'a> {
    /// The view of `record`, read from `journal`.
    pub fn new(record: &'a RunRecord, journal: &'a Path) -> Self {
        Self { run: RunView::new(record, Some(journal), &[]), report: ReportView::new(record) }
    }
}

impl<'a> ReportView<'a> {
    fn new(record: &'a RunRecord) -> Self {
        let h = &record.header;
        let (timeline_ms, bars) = timeline(record);
        let steps = record.steps.iter().zip(bars).map(|(s, (bar, undo_bar))| step(record, s, bar, undo_bar)).collect();
        Self {
            format: REPORT_FORMAT,
            headline: super::run::summary(record, None, &[]).lines().next().unwrap_or_default().to_string(),
            state_meaning: record.state.meaning(),
            runbook_sha256: &h.runbook.sha256,
            on_failure: h.on_failure.as_str(),
            overrides: h.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            timeline_ms,
            steps,
            next_steps: next_steps(record),
            generated_by: format!("backout {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

fn step<'a>(record: &RunRecord, s: &'a StepRecord, bar: Bar, undo_bar: Option<Bar>) -> StepReport<'a> {
    let last = |call: SpanCall| {
        record.spans.iter().rev().find(|span| span.step == s.header.id && span.call == call).map(|span| span.elapsed_ms)
    };
    let outputs = match &s.outputs {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(key, value)| OutputLine {
                key: crate::shown::line(key).into_owned(),
                value: crate::shown::value_line(value),
                host: value.as_str().and_then(|guest| crate::history::host_path(&s.header.dirs, guest)),
            })
            .collect(),
        _ => Vec::new(),
    };
    StepReport {
        id: &s.header.id,
        outcome: outcome(s),
        state: step_state_words(s, record.state),
        run_ms: last(SpanCall::Run),
        undo_ms: last(SpanCall::Undo),
        bar,
        undo_bar,
        failure: s.failure.as_ref().map(|f| format!("in {}: {f}", s.failed_in.map(FailedIn::as_str).unwrap_or("run"))),
        outputs,
        slower: s
            .header
            .expected_ms
            .filter(|&expected| s.progress != StepProgress::NotStarted && s.elapsed_ms > expected)
            .map(|expected| format!("slower than the expected {}", ms(expected))),
        undo: undo_words(record, s),
        leftovers: s
            .temporaries
            .iter()
            .map(|t| t.host_path.as_ref().map(|h| h.display().to_string()).unwrap_or_else(|| t.path.clone()))
            .collect(),
    }
}

/// The colour of a step's bar: how it ran, and whether it was put back.
fn outcome(s: &StepRecord) -> &'static str {
    match (&s.undo, s.progress) {
        (UndoProgress::Undone { .. }, _) => "undone",
        (UndoProgress::Failed { .. }, _) => "undo-failed",
        (_, StepProgress::NotStarted) => "not-run",
        (_, StepProgress::InDoubt) => "in-doubt",
        (_, StepProgress::Succeeded) => "succeeded",
        (_, StepProgress::Failed) => "failed",
    }
}

/// A step's undo in a few words, with the command that does it.
fn undo_words(record: &RunRecord, s: &StepRecord) -> Option<String> {
    Some(match &s.undo {
        UndoProgress::Undone { summary } => format!("undone: {summary}"),
        UndoProgress::Failed { failure } => format!("undo FAILED: {failure}"),
        UndoProgress::InDoubt => {
            format!("undo started, never finished: `backout undo {}` runs it again", record.id)
        }
        UndoProgress::NotUndone if s.needs_undo() => {
            format!("available: `backout undo {}` calls {}'s undo", record.id, s.header.plugin)
        }
        UndoProgress::NotUndone if s.header.always && s.progress != StepProgress::NotStarted => {
            "never undone (an `always` step)".to_string()
        }
        UndoProgress::NotUndone => return None,
    })
}

/// What to do next, by state: nothing when the run left nothing to do.
fn next_steps(record: &RunRecord) -> Vec<String> {
    match record.state {
        RunState::Succeeded if record.steps.iter().any(StepRecord::needs_undo) => {
            vec![format!("Every change is in place. `backout undo {}` puts them back, newest step first.", record.id)]
        }
        RunState::Succeeded | RunState::Undone | RunState::Running => Vec::new(),
        _ => what_to_do(record).lines().skip(1).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
    }
}

/// Every step's bar and undo bar, and the timeline's length. Calls are laid
/// end to end in the order they ended ([`RunRecord::spans`]); a step's bar is
/// its last run. A step that never started gets a bar across the whole
/// timeline (drawn hollow), and a step in doubt one from where the last call
/// ended to the end: still one bar per step.
fn timeline(record: &RunRecord) -> (u64, Vec<(Bar, Option<Bar>)>) {
    let total: u64 = record.spans.iter().map(|s| s.elapsed_ms).sum();
    let pct = |ms: u64| if total == 0 { 0.0 } else { (ms as f64 * 10_000.0 / total as f64).round() / 100.0 };
    let bar = |offset_ms: u64, duration_ms: u64| Bar {
        offset_ms,
        duration_ms,
        left_pct: pct(offset_ms),
        width_pct: pct(duration_ms),
    };
    let mut runs = vec![None; record.steps.len()];
    let mut undos = vec![None; record.steps.len()];
    let mut at = 0;
    for span in &record.spans {
        if let Some(i) = record.steps.iter().position(|s| s.header.id == span.step) {
            let slot = match span.call {
                SpanCall::Run => &mut runs[i],
                SpanCall::Undo => &mut undos[i],
            };
            *slot = Some(bar(at, span.elapsed_ms));
        }
        at += span.elapsed_ms;
    }
    let bars = record
        .steps
        .iter()
        .zip(runs.into_iter().zip(undos))
        .map(|(s, (run, undo))| {
            let run = match (run, s.progress) {
                (Some(run), _) => run,
                (None, StepProgress::InDoubt) => {
                    Bar { left_pct: pct(total), width_pct: 100.0 - pct(total), ..bar(total, 0) }
                }
                (None, _) => Bar { left_pct: 0.0, width_pct: 100.0, ..bar(0, 0) },
            };
            (run, undo)
        })
        .collect();
    (total, bars)
}

/// Why the page could not be made.
#[derive(Debug, thiserror::Error)]
#[error("failed to render the run report: {0}")]
pub struct RenderError(#[from] minijinja::Error);

/// The report of `view` as one HTML page: inline CSS, no script, no
/// external asset; every value escaped for HTML.
pub fn render(view: &ShowView<'_>) -> Result<String, RenderError> {
    let mut env = minijinja::Environment::new();
    // Every value is escaped, whatever the template's name says.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    // Printing a field the view lacks is a bug, not an empty string; testing
    // one (`{% if step.summary %}`, a field JSON leaves out when empty) is not.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.add_filter("ms", |value: u64| ms(value));
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    Ok(env.get_template(TEMPLATE_NAME)?.render(minijinja::Value::from(minijinja::value::Serde(view)))?)
}

/// `file:///…` for an absolute path, bytes outside the unreserved set
/// percent-encoded, so a terminal makes it a link a browser opens.
pub fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::capability::Phase;
    use crate::history::tests::{header, session};
    use crate::journal::event::{
        Event, OutputsFrom, Record, RunStarted, RunbookRef, StepFinished, StepStatus, UndoFinished, UndoReason,
        UndoResult,
    };
    use crate::policy::OnFailure;
    use crate::runtime::host_api::{LogLevel, LogRecord};
    use crate::runtime::{Failure, StepErrorKind};

    /// Text a hostile plugin could put in its summary, outputs, logs and
    /// failures: markup, an attribute break-out, a template expression.
    const ATTACK: &str = r#"<script>alert(1)</script><img src=x "onload=alert(2)" 'x'>{{ 7 * 7 }}"#;

    fn finished(step: &str, status: StepStatus, elapsed_ms: u64, log: Vec<LogRecord>) -> Event {
        let failure = (status == StepStatus::Failed).then(|| Failure::Step {
            error: StepErrorKind::Failed,
            message: format!("bad {ATTACK}"),
            problems: vec![],
        });
        Event::StepFinished(StepFinished {
            step: step.into(),
            status,
            failed_in: failure.as_ref().map(|_| FailedIn::Verify),
            failure,
            recovered: false,
            elapsed_ms,
            log,
            log_dropped: 0,
        })
    }

    /// Three steps: `a` ran 30 ms and was undone in 10 ms after `b` failed
    /// (20 ms) in verify; `c` never ran. Plugin text carries [`ATTACK`].
    fn undone_run() -> RunRecord {
        let events = vec![
            Event::RunStarted(RunStarted {
                run_id: "20261207T031500.000Z-r-abcd".into(),
                runbook: RunbookRef { name: "r".into(), path: "/rb/r.toml".into(), sha256: "sha256:11".into() },
                vars: BTreeMap::new(),
                overrides: vec![],
                on_failure: OnFailure::Undo,
                steps: vec![header("a"), header("b"), header("c")],
                session: session(),
                rto_ms: Some(60_000),
            }),
            Event::StepStarted { step: "a".into(), attempt: 1, config: serde_json::json!({}) },
            Event::StepRan {
                step: "a".into(),
                summary: format!("did {ATTACK}"),
                outputs: serde_json::json!({ "safety_copy": "/app/.env.bak", ATTACK: ATTACK }),
            },
            finished(
                "a",
                StepStatus::Succeeded,
                30,
                vec![LogRecord { phase: Phase::Run, level: LogLevel::Info, message: format!("log {ATTACK}") }],
            ),
            Event::StepStarted { step: "b".into(), attempt: 1, config: serde_json::json!({}) },
            finished("b", StepStatus::Failed, 20, vec![]),
            Event::UndoStarted { step: "a".into(), reason: UndoReason::Policy, from: OutputsFrom::Run },
            Event::UndoFinished(UndoFinished {
                step: "a".into(),
                result: UndoResult::Undone { summary: "put back".into(), outputs: serde_json::json!({}) },
                elapsed_ms: 10,
                log: vec![],
                log_dropped: 0,
            }),
            Event::RunFinished { state: RunState::Undone, failed_step: Some("b".into()), elapsed_ms: 75 },
        ];
        let records: Vec<Record> =
            events.into_iter().map(|event| Record { format: 2, time: "2026-12-07T03:15:00Z".into(), event }).collect();
        RunRecord::from_records(&records, |_| false).unwrap()
    }

    #[test]
    fn plugin_text_is_escaped_everywhere_in_the_page() {
        let record = undone_run();
        let page = render(&ShowView::new(&record, Path::new("/state/j.jsonl"))).unwrap();
        for raw in ["<script>", "alert(1)</script>", "<img", "\"onload=", "'x'"] {
            assert!(!page.contains(raw), "`{raw}` reached the page unescaped");
        }
        let escaped = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&lt;img src=x &quot;onload=alert(2)&quot; &#x27;x&#x27;&gt;{{ 7 * 7 }}";
        // The summary, the output's key and value, the log line and the failure.
        assert!(page.matches(escaped).count() >= 5, "{page}");
        assert!(page.contains(&format!("did {escaped}")));
        assert!(page.contains(&format!("log {escaped}")));
        assert!(page.contains(&format!("bad {escaped}")));
        assert!(page.contains("<strong>RTO missed</strong>"), "{page}");
        // The only <script in the page would be ours, and there is none.
        assert!(!page.to_lowercase().contains("<script"));
        assert!(page.contains("script-src") || page.contains("default-src 'none'"));
    }

    #[test]
    fn the_timeline_has_one_bar_per_step_in_proportion() {
        let record = undone_run();
        let view = ShowView::new(&record, Path::new("/state/j.jsonl"));
        let steps = &view.report.steps;
        assert_eq!(view.report.timeline_ms, 60);
        // a ran 0–30 of 60 ms, b 30–50, a's undo 50–60; c never ran.
        assert_eq!((steps[0].bar.left_pct, steps[0].bar.width_pct), (0.0, 50.0));
        assert_eq!(steps[0].undo_bar.map(|b| (b.left_pct, b.width_pct)), Some((83.33, 16.67)));
        assert_eq!((steps[1].bar.left_pct, steps[1].bar.width_pct), (50.0, 33.33));
        assert_eq!(steps.iter().map(|s| s.outcome).collect::<Vec<_>>(), ["undone", "failed", "not-run"]);
        let page = render(&view).unwrap();
        assert_eq!(page.matches("<div class=\"bar ").count(), 3, "one bar per step");
        assert_eq!(page.matches("<div class=\"undo-bar\"").count(), 1);
        let style = "style=\"left: min(0.0%, 100% - max(50.0%, 3px)); width: max(50.0%, 3px)\"";
        assert!(page.contains(&format!("class=\"bar undone\" {style}")), "{page}");
    }

    #[test]
    fn outputs_show_host_paths_and_failures_say_where() {
        let record = undone_run();
        let view = ShowView::new(&record, Path::new("/state/j.jsonl"));
        let a = &view.report.steps[0];
        let copy = a.outputs.iter().find(|o| o.key == "safety_copy").unwrap();
        assert_eq!(copy.host.as_deref(), Some(Path::new("/srv/app/.env.bak")));
        assert_eq!(view.report.steps[1].failure.as_deref().map(|f| f.starts_with("in verify: bad ")), Some(true));
        assert_eq!(a.undo.as_deref(), Some("undone: put back"));
        let page = render(&view).unwrap();
        assert!(page.contains("(host: <span class=\"mono\">&#x2f;srv&#x2f;app&#x2f;.env.bak</span>)"), "{page}");
    }

    #[test]
    fn json_keeps_the_run_and_adds_the_report() {
        let record = undone_run();
        let json = serde_json::to_value(ShowView::new(&record, Path::new("/state/j.jsonl"))).unwrap();
        assert_eq!(json["run"]["state"], "undone");
        assert_eq!(json["run"]["steps"][0]["summary"].as_str().map(|s| s.starts_with("did ")), Some(true));
        assert_eq!(json["report"]["format"], REPORT_FORMAT);
        assert_eq!(json["report"]["steps"][2]["outcome"], "not-run");
        assert_eq!(json["run"]["sessions"][0]["operator"], "o");
        assert_eq!(json["run"]["rto"]["verdict"], "missed");
        assert_eq!(json["report"]["headline"], "Run failed at step `b`: 1 of 3 steps completed (`a`).");
    }

    #[test]
    fn a_met_rto_the_grants_and_the_expected_time_are_on_the_page() {
        let mut record = undone_run();
        record.state = RunState::Succeeded;
        record.elapsed_ms = 75;
        record.steps[0].header.env = vec!["API_KEY".into()];
        record.steps[0].header.net = vec!["http://127.0.0.1:3000".into()];
        record.steps[0].header.commands = vec![vec!["systemctl".into(), "stop".into(), "app".into()]];
        record.steps[0].header.expected_ms = Some(10);
        let page = render(&ShowView::new(&record, Path::new("/state/j.jsonl"))).unwrap();
        assert!(
            page.contains("<strong>RTO met</strong>:\n  <span class=\"why\">Succeeded in 75ms, within the RTO of 1m"),
            "{page}"
        );
        assert!(page.contains("class=\"verdict verdict-met\""), "{page}");
        assert!(page.contains("Slowest step: <a href=\"#step-a\"><code>a</code></a> (40ms)."), "{page}");
        assert!(page.contains("<li>env <code>API_KEY</code>"), "{page}");
        assert!(page.contains("<li>net <span class=\"mono\">http:&#x2f;&#x2f;127.0.0.1:3000</span></li>"), "{page}");
        assert!(page.contains("<li>command <code>systemctl stop app</code></li>"), "{page}");
        assert!(page.contains("slower than the expected 10ms"), "{page}");
        // b has no `expected`; every step shows its timeout.
        assert_eq!(page.matches("timeout 1m00s per attempt").count(), 3, "{page}");
    }

    #[test]
    fn a_run_with_changes_in_place_says_how_to_undo_it() {
        let mut record = undone_run();
        record.state = RunState::Failed;
        record.steps[0].undo = UndoProgress::NotUndone;
        let view = ShowView::new(&record, Path::new("/state/j.jsonl"));
        assert!(view.report.next_steps.iter().any(|l| l.contains("`backout undo 20261207T031500.000Z-r-abcd`")));
        let page = render(&view).unwrap();
        assert!(page.contains("<code>backout undo 20261207T031500.000Z-r-abcd</code>"), "{page}");
        assert!(page.contains("id=\"next\""));
    }
}
