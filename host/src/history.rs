//! A run as its journal tells it: the fold of every [`Event`] into one
//! [`RunRecord`].
//!
//! The executor keeps a `RunRecord` in memory by applying each event right
//! after the journal made it durable; `backout show`, `runs`, `undo` and
//! `resume` rebuild the same record from the file. One model, so what a run
//! printed and what `show` prints later cannot disagree, and recovery acts
//! on exactly what was recorded.

use std::path::PathBuf;

use serde::Serialize;

use crate::journal::event::{
    Event, FailedIn, OutputsFrom, Record, RunStarted, RunState, Session, StepFinished, StepHeader, StepStatus,
    UndoFinished, UndoResult,
};
use crate::runtime::Failure;
use crate::runtime::host_api::LogRecord;

/// Everything known about one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub started_at: String,
    pub header: RunStarted,
    pub steps: Vec<StepRecord>,
    /// The state: how the last session ended, or `running`/`interrupted`
    /// when it has not.
    pub state: RunState,
    /// The step whose failure decided the state, if any.
    pub failed_step: Option<String>,
    /// The signal that stopped the run, if one did.
    pub interrupted_by: Option<String>,
    /// When the last session ended, if it did.
    pub finished_at: Option<String>,
    /// Each `run`, `resume` and `undo` that worked on the run.
    pub sessions: Vec<Session>,
    /// Locks broken with `--force-unlock` on the way.
    pub broken_locks: Vec<crate::run_lock::Holder>,
    /// Milliseconds the sessions took, added up.
    pub elapsed_ms: u64,
    /// Every call of a step that ended (a run with its verify, or an undo),
    /// in the order they ended, with how long each took: the run's timeline.
    /// Journal times are whole seconds, so the order and the durations come
    /// from here, not from the records' timestamps.
    pub spans: Vec<Span>,
}

/// One step's run (with its verify and retries) or undo, as it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub step: String,
    pub call: SpanCall,
    pub elapsed_ms: u64,
}

/// Which call a [`Span`] timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanCall {
    Run,
    Undo,
}

/// Everything known about one step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub header: StepHeader,
    pub progress: StepProgress,
    /// The attempt number of the last `step-started`.
    pub attempts: u32,
    /// The config the step last started with (secrets masked).
    pub config: Option<serde_json::Value>,
    /// `run`'s summary and outputs, or else the last checkpoint's outputs.
    pub summary: Option<String>,
    pub outputs: Option<serde_json::Value>,
    pub outputs_from: Option<OutputsFrom>,
    pub failed_in: Option<FailedIn>,
    pub failure: Option<Failure>,
    /// Whether a resume found it in doubt and `verify` showed it complete.
    pub recovered: bool,
    pub elapsed_ms: u64,
    pub log: Vec<LogRecord>,
    pub log_dropped: u64,
    /// Temporary files the plugin declared in a call that never ended. The
    /// host sweeps every declared file when a call ends (the events that mark
    /// a call's end clear this list); what remains was declared by a call
    /// that backout did not survive.
    pub temporaries: Vec<Temporary>,
    pub undo: UndoProgress,
}

/// Where a step got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepProgress {
    /// Never started.
    NotStarted,
    /// Started, and no `step-finished` followed: backout died or was stopped
    /// inside it. Its `verify` decides whether it completed.
    InDoubt,
    Succeeded,
    Failed,
}

/// Where a step's undo got to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum UndoProgress {
    NotUndone,
    /// `undo-started` without `undo-finished`: run it again (undo is idempotent).
    InDoubt,
    Undone {
        summary: String,
    },
    Failed {
        failure: Failure,
    },
}

/// A temporary file a plugin declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Temporary {
    pub path: String,
    pub host_path: Option<PathBuf>,
}

impl StepRecord {
    fn new(header: StepHeader) -> Self {
        Self {
            header,
            progress: StepProgress::NotStarted,
            attempts: 0,
            config: None,
            summary: None,
            outputs: None,
            outputs_from: None,
            failed_in: None,
            failure: None,
            recovered: false,
            elapsed_ms: 0,
            log: Vec::new(),
            log_dropped: 0,
            temporaries: Vec::new(),
            undo: UndoProgress::NotUndone,
        }
    }

    pub fn id(&self) -> &str {
        &self.header.id
    }

    /// Whether the step may have changed something that is still in place:
    /// it has outputs (from `run` or a checkpoint) and has not been undone.
    /// `always` steps are never undone.
    pub fn needs_undo(&self) -> bool {
        !self.header.always && self.outputs.is_some() && !matches!(self.undo, UndoProgress::Undone { .. })
    }

    /// Whether anything of the step is left to clean up or put back.
    pub fn has_debris(&self) -> bool {
        self.needs_undo() || !self.temporaries.is_empty()
    }

    /// Outputs whose values are guest paths inside the step's grants, with
    /// their host paths: where to find a safety copy on the host.
    pub fn host_paths(&self) -> Vec<(String, String, PathBuf)> {
        let Some(serde_json::Value::Object(outputs)) = &self.outputs else { return Vec::new() };
        outputs
            .iter()
            .filter_map(|(key, value)| {
                let guest = value.as_str()?;
                Some((key.clone(), guest.to_string(), host_path(&self.header.dirs, guest)?))
            })
            .collect()
    }
}

/// The host path of a guest path through directory grants (the longest
/// matching guest prefix wins). Only a plain path inside a grant has one
/// (`files::is_plain_guest_path`): `..`, `.` or an empty part could make
/// `(host: …)` point outside every grant.
pub fn host_path(dirs: &[crate::journal::event::DirMount], guest: &str) -> Option<PathBuf> {
    if !crate::capability::files::is_plain_guest_path(guest) {
        return None;
    }
    dirs.iter()
        .filter_map(|d| {
            let rest = guest.strip_prefix(&d.guest)?;
            if rest.is_empty() {
                Some((d.guest.len(), d.host.clone()))
            } else {
                let rest = rest.strip_prefix('/')?;
                Some((d.guest.len(), d.host.join(rest)))
            }
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, p)| p)
}

impl RunRecord {
    /// The record of a run that has just started.
    pub fn new(started: &RunStarted, time: &str) -> Self {
        Self {
            id: started.run_id.clone(),
            started_at: time.to_string(),
            header: started.clone(),
            steps: started.steps.iter().cloned().map(StepRecord::new).collect(),
            state: RunState::Running,
            failed_step: None,
            interrupted_by: None,
            finished_at: None,
            sessions: vec![started.session.clone()],
            broken_locks: Vec::new(),
            elapsed_ms: 0,
            spans: Vec::new(),
        }
    }

    /// Folds a journal's records. `alive` says whether a session's process
    /// is still running: an unfinished session whose process is gone was
    /// killed, and the run is `interrupted`.
    pub fn from_records(records: &[Record], alive: impl Fn(&Session) -> bool) -> Option<Self> {
        let (first, rest) = records.split_first()?;
        let Event::RunStarted(started) = &first.event else { return None };
        let mut record = Self::new(started, &first.time);
        for r in rest {
            record.apply(&r.event, &r.time);
        }
        if record.state == RunState::Running && !record.sessions.last().is_some_and(alive) {
            record.state = RunState::Interrupted;
            record.interrupted_by.get_or_insert_with(|| "backout was killed".to_string());
        }
        Some(record)
    }

    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.header.id == id)
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| s.header.id == id)
    }

    /// Applies one event. Events naming an unknown step are ignored (the
    /// reader has already checked each line's shape; a step id that the
    /// header does not list can only come from a hand-edited journal).
    pub fn apply(&mut self, event: &Event, time: &str) {
        match event {
            Event::RunStarted(_) => {}
            Event::Resumed { session } => {
                self.sessions.push(session.clone());
                self.state = RunState::Running;
                self.finished_at = None;
                self.interrupted_by = None;
            }
            Event::LockBroken { holder, .. } => self.broken_locks.push(holder.clone()),
            Event::StepStarted { step, attempt, config } => {
                if let Some(s) = self.step_mut(step) {
                    s.progress = StepProgress::InDoubt;
                    s.attempts = *attempt;
                    s.config = Some(config.clone());
                    if *attempt <= 1 {
                        // A fresh start (also a re-run after resume): what an
                        // earlier attempt recorded no longer describes the step.
                        s.summary = None;
                        s.outputs = None;
                        s.outputs_from = None;
                        s.failed_in = None;
                        s.failure = None;
                        s.recovered = false;
                        s.undo = UndoProgress::NotUndone;
                    }
                }
            }
            Event::Checkpoint { step, outputs } => {
                if let Some(s) = self.step_mut(step) {
                    s.outputs = Some(outputs.clone());
                    s.outputs_from = Some(OutputsFrom::Checkpoint);
                }
            }
            Event::TemporaryFile { step, path, host_path } => {
                if let Some(s) = self.step_mut(step) {
                    s.temporaries.push(Temporary { path: path.clone(), host_path: host_path.clone() });
                }
            }
            Event::TemporaryRemoved { step, path, .. } => {
                if let Some(s) = self.step_mut(step) {
                    s.temporaries.retain(|t| &t.path != path);
                }
            }
            Event::StepRan { step, summary, outputs } => {
                if let Some(s) = self.step_mut(step) {
                    s.temporaries.clear();
                    s.summary = Some(summary.clone());
                    s.outputs = Some(outputs.clone());
                    s.outputs_from = Some(OutputsFrom::Run);
                }
            }
            Event::StepRetrying { step, .. } => {
                if let Some(s) = self.step_mut(step) {
                    s.temporaries.clear();
                    // The failed attempt changed nothing (a transient error
                    // promises so); its checkpoint no longer applies.
                    s.outputs = None;
                    s.outputs_from = None;
                }
            }
            Event::StepFinished(f) => self.finish_step(f),
            Event::UndoStarted { step, .. } => {
                if let Some(s) = self.step_mut(step) {
                    s.undo = UndoProgress::InDoubt;
                }
            }
            Event::UndoFinished(f) => self.finish_undo(f),
            Event::Interrupted { signal } => self.interrupted_by = Some(signal.clone()),
            Event::RunFinished { state, failed_step, elapsed_ms } => {
                self.state = *state;
                self.failed_step = failed_step.clone();
                self.finished_at = Some(time.to_string());
                self.elapsed_ms += elapsed_ms;
            }
        }
    }

    fn finish_step(&mut self, f: &StepFinished) {
        if self.step(&f.step).is_some() {
            self.spans.push(Span { step: f.step.clone(), call: SpanCall::Run, elapsed_ms: f.elapsed_ms });
        }
        let Some(s) = self.step_mut(&f.step) else { return };
        s.progress = match f.status {
            StepStatus::Succeeded => StepProgress::Succeeded,
            StepStatus::Failed => StepProgress::Failed,
        };
        s.failed_in = f.failed_in;
        s.failure = f.failure.clone();
        s.recovered = f.recovered;
        s.elapsed_ms += f.elapsed_ms;
        s.log.extend(f.log.iter().cloned());
        s.log_dropped += f.log_dropped;
        s.temporaries.clear();
    }

    fn finish_undo(&mut self, f: &UndoFinished) {
        if self.step(&f.step).is_some() {
            self.spans.push(Span { step: f.step.clone(), call: SpanCall::Undo, elapsed_ms: f.elapsed_ms });
        }
        let Some(s) = self.step_mut(&f.step) else { return };
        s.temporaries.clear();
        s.undo = match &f.result {
            UndoResult::Undone { summary, .. } => UndoProgress::Undone { summary: summary.clone() },
            UndoResult::Failed { failure } => UndoProgress::Failed { failure: failure.clone() },
        };
        s.elapsed_ms += f.elapsed_ms;
        s.log.extend(f.log.iter().cloned());
        s.log_dropped += f.log_dropped;
    }

    /// Steps that ran to the end and verified.
    pub fn completed(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.progress == StepProgress::Succeeded)
    }

    /// Whether the run ended well.
    pub fn succeeded(&self) -> bool {
        self.state == RunState::Succeeded
    }

    /// Whether any step was undone or had its undo attempted.
    pub fn undo_began(&self) -> bool {
        self.steps.iter().any(|s| s.undo != UndoProgress::NotUndone)
    }

    /// Temporary files of any step, for `show` and `plan`.
    pub fn temporaries(&self) -> impl Iterator<Item = (&StepRecord, &Temporary)> {
        self.steps.iter().flat_map(|s| s.temporaries.iter().map(move |t| (s, t)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::journal::event::{DirMount, RunbookRef, UndoReason};
    use crate::policy::{OnFailure, Retries};

    pub(crate) fn header(id: &str) -> StepHeader {
        StepHeader {
            id: id.into(),
            uses: "p@1.0.0".into(),
            digest: "sha256:00".into(),
            plugin: "p@1.0.0".into(),
            on_failure: OnFailure::Undo,
            critical: true,
            always: false,
            retries: Retries::default(),
            dirs: vec![DirMount { host: "/srv/app".into(), guest: "/app".into(), mode: "rw".into() }],
            env: vec![],
            net: vec![],
            commands: vec![],
            timeout_ms: 60_000,
            expected_ms: None,
        }
    }

    pub(crate) fn session() -> Session {
        Session {
            command: "run".into(),
            operator: "o".into(),
            host: "h".into(),
            pid: 1,
            process_start: None,
            boot_id: None,
            backout: "0".into(),
        }
    }

    pub(crate) fn started() -> Event {
        Event::RunStarted(RunStarted {
            run_id: "id".into(),
            runbook: RunbookRef { name: "n".into(), path: "/r.toml".into(), sha256: "sha256:00".into() },
            vars: BTreeMap::new(),
            overrides: vec![],
            on_failure: OnFailure::Undo,
            steps: vec![header("a"), header("b")],
            session: session(),
            rto_ms: None,
        })
    }

    pub(crate) fn records(events: Vec<Event>) -> Vec<Record> {
        events.into_iter().map(|event| Record { format: 2, time: "t".into(), event }).collect()
    }

    pub(crate) fn ran(step: &str) -> Vec<Event> {
        vec![
            Event::StepStarted { step: step.into(), attempt: 1, config: serde_json::json!({}) },
            Event::StepRan {
                step: step.into(),
                summary: "did".into(),
                outputs: serde_json::json!({"safety_copy": "/app/x.bak"}),
            },
        ]
    }

    pub(crate) fn finished(step: &str) -> Event {
        Event::StepFinished(StepFinished {
            step: step.into(),
            status: StepStatus::Succeeded,
            failed_in: None,
            failure: None,
            recovered: false,
            elapsed_ms: 3,
            log: vec![],
            log_dropped: 0,
        })
    }

    #[test]
    fn a_step_started_without_a_finish_is_in_doubt_and_a_dead_run_interrupted() {
        let mut events = vec![started()];
        events.extend(ran("a"));
        events.push(finished("a"));
        events.push(Event::StepStarted { step: "b".into(), attempt: 1, config: serde_json::json!({}) });
        events.push(Event::Checkpoint { step: "b".into(), outputs: serde_json::json!({"k": 1}) });
        let record = RunRecord::from_records(&records(events.clone()), |_| false).unwrap();
        assert_eq!(record.state, RunState::Interrupted);
        assert_eq!(record.steps[0].progress, StepProgress::Succeeded);
        assert_eq!(record.steps[1].progress, StepProgress::InDoubt);
        assert_eq!(record.steps[1].outputs_from, Some(OutputsFrom::Checkpoint));
        assert!(record.steps[1].needs_undo());
        let alive = RunRecord::from_records(&records(events), |_| true).unwrap();
        assert_eq!(alive.state, RunState::Running);
    }

    #[test]
    fn outputs_translate_to_host_paths() {
        let mut events = vec![started()];
        events.extend(ran("a"));
        let record = RunRecord::from_records(&records(events), |_| false).unwrap();
        let paths = record.steps[0].host_paths();
        assert_eq!(paths, vec![("safety_copy".into(), "/app/x.bak".into(), PathBuf::from("/srv/app/x.bak"))]);
    }

    #[test]
    fn a_guest_path_climbing_out_of_its_grant_has_no_host_path() {
        let dirs = header("a").dirs;
        assert_eq!(host_path(&dirs, "/app/x.bak"), Some(PathBuf::from("/srv/app/x.bak")));
        assert_eq!(host_path(&dirs, "/app/../../etc/shadow"), None);
        assert_eq!(host_path(&dirs, "/app/./x"), None);
        assert_eq!(host_path(&dirs, "/app//etc/shadow"), None);
        assert_eq!(host_path(&dirs, "/apple/x"), None);
    }

    #[test]
    fn undo_progress_follows_undo_events_and_a_resume_reopens_the_run() {
        let mut events = vec![started()];
        events.extend(ran("a"));
        events.push(finished("a"));
        events.push(Event::RunFinished { state: RunState::Failed, failed_step: Some("b".into()), elapsed_ms: 9 });
        events.push(Event::Resumed { session: Session { command: "undo".into(), ..session() } });
        events.push(Event::UndoStarted { step: "a".into(), reason: UndoReason::Operator, from: OutputsFrom::Run });
        let record = RunRecord::from_records(&records(events.clone()), |s| s.command == "run").unwrap();
        assert_eq!(record.state, RunState::Interrupted, "the undo session died");
        assert_eq!(record.steps[0].undo, UndoProgress::InDoubt);
        assert!(record.steps[0].needs_undo());
        events.push(Event::UndoFinished(UndoFinished {
            step: "a".into(),
            result: UndoResult::Undone { summary: "put back".into(), outputs: serde_json::json!({}) },
            elapsed_ms: 1,
            log: vec![],
            log_dropped: 0,
        }));
        events.push(Event::RunFinished { state: RunState::Undone, failed_step: None, elapsed_ms: 2 });
        let record = RunRecord::from_records(&records(events), |_| false).unwrap();
        assert_eq!(record.state, RunState::Undone);
        assert!(!record.steps[0].needs_undo());
        assert_eq!(record.elapsed_ms, 11);
        assert_eq!(record.sessions.len(), 2);
        // The timeline: the run of `a`, then (in the later session) its undo.
        let spans: Vec<(&str, SpanCall, u64)> =
            record.spans.iter().map(|s| (s.step.as_str(), s.call, s.elapsed_ms)).collect();
        assert_eq!(spans, vec![("a", SpanCall::Run, 3), ("a", SpanCall::Undo, 1)]);
    }

    #[test]
    fn declared_temporaries_stay_listed_until_removed() {
        let mut events = vec![started()];
        events.push(Event::StepStarted { step: "a".into(), attempt: 1, config: serde_json::json!({}) });
        events.push(Event::TemporaryFile { step: "a".into(), path: "/app/.t".into(), host_path: None });
        let record = RunRecord::from_records(&records(events.clone()), |_| false).unwrap();
        assert_eq!(record.temporaries().count(), 1);
        assert!(record.steps[0].has_debris() && !record.steps[0].needs_undo());
        events.push(Event::TemporaryRemoved {
            step: "a".into(),
            path: "/app/.t".into(),
            host_path: "/srv/app/.t".into(),
        });
        let record = RunRecord::from_records(&records(events), |_| false).unwrap();
        assert_eq!(record.temporaries().count(), 0);
    }

    #[test]
    fn a_call_that_ended_leaves_no_temporaries_listed() {
        let mut events = vec![started()];
        events.push(Event::StepStarted { step: "a".into(), attempt: 1, config: serde_json::json!({}) });
        events.push(Event::TemporaryFile { step: "a".into(), path: "/app/.t".into(), host_path: None });
        events.extend(ran("a").into_iter().skip(1));
        let record = RunRecord::from_records(&records(events), |_| false).unwrap();
        assert_eq!(record.temporaries().count(), 0);
    }
}
