//! What a journal says: one typed event per state change of a run.
//!
//! The executor writes these, `backout show`/`runs`/`undo`/`resume` read
//! them back, and the in-memory [`crate::history::RunRecord`] is nothing but
//! their fold: there is one model of a run, and the file on disk is it.
//!
//! Each journal line is a [`Record`]: `{"format":2,"time":"…","event":"…",
//! …fields}`. Values a plugin produced (configs, outputs, log lines,
//! failures) are masked for the step's granted secrets before they are
//! written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::{OnFailure, Retries};
use crate::runtime::Failure;
use crate::runtime::host_api::LogRecord;

/// The journal line format this backout writes and reads. Version 1 (the
/// untyped `{"version":1,"event":…,"data":…}` lines of earlier releases) is
/// not read: those journals cannot be resumed or undone.
pub const FORMAT: u32 = 2;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    /// When the event was recorded (RFC 3339, UTC).
    pub time: String,
    #[serde(flatten)]
    pub event: Event,
}

/// A state change of a run, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The first record of every journal: what runs, from where, by whom.
    RunStarted(RunStarted),
    /// A later `backout resume` or `backout undo` took the run over.
    Resumed { session: Session },
    /// `--force-unlock` broke another run's lock before this one started.
    LockBroken { holder: crate::run_lock::Holder, file: PathBuf },
    /// A step is about to be planned (if deferred) and run. Written before
    /// the plugin is called: a step never starts unrecorded.
    StepStarted {
        step: String,
        /// 1 for the first attempt; retries count up.
        attempt: u32,
        /// The config as rendered for this run (secrets masked).
        config: serde_json::Value,
    },
    /// The plugin's write-ahead record: what `verify` and `undo` need if
    /// backout dies before `run` returns (`backout:step/host.checkpoint`).
    Checkpoint { step: String, outputs: serde_json::Value },
    /// The plugin is about to create a temporary file
    /// (`backout:step/host.temporary-file`).
    TemporaryFile {
        step: String,
        path: String,
        /// Where that is on the host, through the step's grants.
        host_path: Option<PathBuf>,
    },
    /// A declared temporary file was still there after the call that made
    /// it ended, or after the run was killed, and the host removed it.
    TemporaryRemoved { step: String, path: String, host_path: PathBuf },
    /// `run` returned: its outputs, recorded before `verify` runs.
    StepRan { step: String, summary: String, outputs: serde_json::Value },
    /// A call failed with a transient error and will be tried again after `wait_ms`.
    StepRetrying { step: String, attempt: u32, failed_in: FailedIn, failure: Failure, wait_ms: u64 },
    /// The step ended: verified, or failed (and where).
    StepFinished(StepFinished),
    /// `undo` is about to be called for a step.
    UndoStarted {
        step: String,
        reason: UndoReason,
        /// `run`'s outputs, or the last checkpoint when run never returned.
        from: OutputsFrom,
    },
    /// `undo` ended.
    UndoFinished(UndoFinished),
    /// A signal stopped the run at a safe point.
    Interrupted { signal: String },
    /// The run, or a resume or undo of it, ended in `state`.
    RunFinished {
        state: RunState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_step: Option<String>,
        elapsed_ms: u64,
    },
}

/// What `run_started` records about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
    pub runbook: RunbookRef,
    /// Every var as resolved (after overrides).
    pub vars: BTreeMap<String, String>,
    /// `--var` overrides as given: `backout undo` and `resume` reuse them.
    pub overrides: Vec<(String, String)>,
    pub on_failure: OnFailure,
    pub steps: Vec<StepHeader>,
    pub session: Session,
    /// The runbook's recovery time objective, if it declares one.
    #[serde(default)]
    pub rto_ms: Option<u64>,
}

/// The runbook a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookRef {
    pub name: String,
    /// Absolute path.
    pub path: PathBuf,
    /// `sha256:<hex>` of the runbook's bytes: `undo` and `resume` refuse a
    /// changed runbook.
    pub sha256: String,
}

/// One step as planned, enough to show and recover the run without the runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepHeader {
    pub id: String,
    pub uses: String,
    /// `sha256:<hex>` of the plugin's bytes.
    pub digest: String,
    /// `name@version` as the plugin describes itself.
    pub plugin: String,
    pub on_failure: OnFailure,
    pub critical: bool,
    pub always: bool,
    pub retries: Retries,
    /// Directory grants, to show guest paths as host paths.
    pub dirs: Vec<DirMount>,
    /// Environment variable names granted (never their values).
    #[serde(default)]
    pub env: Vec<String>,
    /// Network origins granted, `scheme://host:port`.
    #[serde(default)]
    pub net: Vec<String>,
    /// Host command lines granted, each an exact argv.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// Each attempt's time limit (0 in journals from before it was recorded).
    #[serde(default)]
    pub timeout_ms: u64,
    /// How long the step usually takes, if the runbook says (`expected`).
    #[serde(default)]
    pub expected_ms: Option<u64>,
}

/// One directory grant: host path, guest path, read-only or read-write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirMount {
    pub host: PathBuf,
    pub guest: String,
    pub mode: String,
}

/// Who ran a command on which host, and which process it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `run`, `resume` or `undo`.
    pub command: String,
    /// `$USER` (or the uid when unset).
    pub operator: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot): with the pid and
    /// the boot id, it tells a live process from a dead one whose pid was reused.
    pub process_start: Option<u64>,
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The backout version that wrote this.
    pub backout: String,
}

impl Session {
    /// This process, running `command`.
    pub fn current(command: &str) -> Self {
        let me = crate::run_lock::Holder::current("", command);
        let operator = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| {
            // The owner of /proc/self is this process's user.
            std::fs::metadata("/proc/self")
                .map(|m| format!("uid {}", std::os::unix::fs::MetadataExt::uid(&m)))
                .unwrap_or_else(|_| "unknown".to_string())
        });
        Self {
            command: command.to_string(),
            operator,
            host: me.host,
            pid: me.pid,
            process_start: me.process_start,
            boot_id: me.boot_id,
            backout: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Whether this session's process is still running (on this host; a
    /// session on another host counts as running: it cannot be checked).
    pub fn is_alive(&self) -> bool {
        let holder = crate::run_lock::Holder {
            run_id: String::new(),
            pid: self.pid,
            host: self.host.clone(),
            started: String::new(),
            command: self.command.clone(),
            process_start: self.process_start,
            boot_id: self.boot_id.clone(),
        };
        !matches!(crate::run_lock::liveness(&holder), crate::run_lock::Liveness::Dead)
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Ran and verified.
    Succeeded,
    /// Planning, running or verifying it failed (or it was interrupted).
    Failed,
}

/// Which call a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailedIn {
    /// Rendering the config with earlier outputs, or planning it.
    Plan,
    Run,
    Verify,
    /// Putting back what an earlier, interrupted attempt left, before running again.
    Undo,
}

impl FailedIn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailedIn::Plan => "plan",
            FailedIn::Run => "run",
            FailedIn::Verify => "verify",
            FailedIn::Undo => "undo",
        }
    }
}

/// `step-finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFinished {
    pub step: String,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_in: Option<FailedIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Set when `resume` found the step in doubt and `verify` showed it had completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
    pub elapsed_ms: u64,
    #[serde(default)]
    pub log: Vec<LogRecord>,
    #[serde(default)]
    pub log_dropped: u64,
}

/// Why a step is being undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndoReason {
    /// A later step failed and the policy is `undo`.
    Policy,
    /// The operator ran `backout undo`.
    Operator,
    /// `resume` found the step in doubt or failed with changes, and puts it
    /// back before running it again.
    Resume,
}

/// Which outputs `undo` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputsFrom {
    Run,
    Checkpoint,
}

/// `undo-finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoFinished {
    pub step: String,
    #[serde(flatten)]
    pub result: UndoResult,
    pub elapsed_ms: u64,
    #[serde(default)]
    pub log: Vec<LogRecord>,
    #[serde(default)]
    pub log_dropped: u64,
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum UndoResult {
    /// The plugin's undo succeeded.
    Undone { summary: String, outputs: serde_json::Value },
    /// The plugin's undo failed: the step's change is still in place.
    Failed { failure: Failure },
}

/// The state of a run: how it ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// A process is running it now.
    Running,
    /// Every critical step ran and verified.
    Succeeded,
    /// A critical step failed; the changes of the steps that completed are
    /// still in place (policy `abort` or `continue`).
    Failed,
    /// A step failed (or the run was interrupted) and every change was put
    /// back; or the operator undid the run.
    Undone,
    /// An undo failed: some changes are still in place and need a person.
    NeedsAttention,
    /// Stopped by a signal, or backout was killed: completed steps' changes
    /// are in place; `backout resume` continues, `backout undo` unwinds.
    Interrupted,
    /// Like `failed`, but the failing step ran out of time.
    TimedOut,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Undone => "undone",
            RunState::NeedsAttention => "needs-attention",
            RunState::Interrupted => "interrupted",
            RunState::TimedOut => "timed-out",
        }
    }

    /// What the state means, in one line, for reports.
    pub fn meaning(self) -> &'static str {
        match self {
            RunState::Running => "a backout process is running it now",
            RunState::Succeeded => "every step ran and verified",
            RunState::Failed => "a step failed; the changes of the steps that completed are still in place",
            RunState::Undone => "nothing the run changed is left in place; the system is as it was before it",
            RunState::NeedsAttention => "an undo failed; some changes are still in place and need a person",
            RunState::Interrupted => "the run was stopped before it ended; the changes made so far are in place",
            RunState::TimedOut => "a step ran out of time; the changes of the steps that completed are still in place",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
