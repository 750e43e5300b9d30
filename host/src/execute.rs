//! Runs a [`Plan`]: steps in order, outputs flowing forward, failures met
//! by the runbook's policy.
//!
//! For each step: its config is rendered with the outputs of the steps
//! before it (and `${run.…}` for `always` steps); if the config could not be
//! planned ahead, the plugin plans it first (read-only, as at plan time);
//! then `run` with the step's grants, retried after `transient` errors as the
//! step's `retries` say, each attempt bounded by the step's `timeout`; its
//! outputs are journaled; then `verify` (read-only), retried likewise.
//!
//! When a critical step fails, its `on_failure` decides: `undo` puts back
//! every step that may have changed something, newest first ([`unwind`]),
//! `abort` stops, `continue` goes on. Either way, later steps with
//! `always = true` still run, with `${run.status}` saying how things stand.
//! An interrupt (Ctrl-C) cancels the call in flight and is met like a
//! failure of that step (`continue` stops too).
//!
//! Every state change goes through the [`Recorder`]: journal first, then the
//! in-memory [`RunRecord`] that this module reads its decisions from. A
//! resumed run is driven by the same code: the record says which steps are
//! done, which are in doubt (started, never finished) and what they left.
//!
//! [`unwind`]: Driver::unwind

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::history::{RunRecord, StepProgress, StepRecord};
use crate::journal::Journal;
use crate::journal::event::{
    DirMount, Event, FailedIn, RunStarted, RunState, RunbookRef, Session, StepFinished, StepHeader, StepStatus,
    UndoReason,
};
use crate::plan::{Plan, PlannedStep};
use crate::policy::OnFailure;
use crate::recorder::{Recorder, unobserved};
use crate::runtime::host_api::{LogRecord, Observer};
use crate::runtime::interrupt::Interrupt;
use crate::runtime::{CallContext, Called, Failure, StepErrorKind};
use crate::template::RunInfo;

/// Runs every step of `plan` from the start, with no interrupt and no live
/// observer: the library's simplest entry point (tests, benchmarks).
pub async fn execute(plan: &Plan, observer: Observer, journal: Option<Journal>) -> RunRecord {
    let run_id = journal.as_ref().map_or_else(|| "unjournaled".to_string(), |j| j.run_id().to_string());
    let recorder = Recorder::new(journal, unobserved());
    recorder.fact(run_started(plan, &run_id, Session::current("run")));
    Driver { plan, observer, interrupt: Interrupt::new(), recorder }.run().await
}

/// The `run-started` event of a new run of `plan`.
pub fn run_started(plan: &Plan, run_id: &str, session: Session) -> Event {
    Event::RunStarted(RunStarted {
        run_id: run_id.to_string(),
        runbook: RunbookRef {
            name: plan.name.clone(),
            path: std::path::absolute(&plan.path).unwrap_or_else(|_| plan.path.clone()),
            sha256: plan.digest.to_string(),
        },
        vars: plan.vars.clone(),
        overrides: plan.overrides.clone(),
        on_failure: plan.on_failure,
        steps: plan.steps.iter().map(step_header).collect(),
        session,
        rto_ms: plan.rto.map(millis),
    })
}

fn step_header(step: &PlannedStep) -> StepHeader {
    StepHeader {
        id: step.id.clone(),
        uses: step.uses.clone(),
        digest: step.digest.to_string(),
        plugin: format!("{}@{}", step.info.name, step.info.version),
        on_failure: step.policy.on_failure,
        critical: step.policy.critical,
        always: step.policy.always,
        retries: step.policy.retries,
        dirs: step
            .grants
            .dirs
            .iter()
            .map(|d| DirMount { host: d.host.clone(), guest: d.guest.clone(), mode: d.access.as_str().to_string() })
            .collect(),
        env: step.grants.env.iter().map(|e| e.name.clone()).collect(),
        net: step.grants.net.origins.iter().map(ToString::to_string).collect(),
        commands: step.grants.commands.iter().map(|c| c.argv.clone()).collect(),
        timeout_ms: millis(step.limits.timeout),
        expected_ms: step.expected.map(millis),
    }
}

/// Drives one session of a run (a `run`, `resume` or `undo`) against its plan.
pub struct Driver<'a> {
    pub plan: &'a Plan,
    /// Receives plugin log lines and progress as they happen.
    pub observer: Observer,
    /// Set by the operator's first Ctrl-C.
    pub interrupt: Interrupt,
    /// Already holds the run's record (`run-started` or `resumed` recorded).
    pub recorder: Arc<Recorder>,
}

impl std::fmt::Debug for Driver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("plan", &self.plan.name).finish_non_exhaustive()
    }
}

/// Why a run stopped going forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Failed,
    TimedOut,
    Interrupted,
}

impl Stop {
    fn of(failure: &Failure) -> Self {
        match failure {
            Failure::Timeout { .. } => Stop::TimedOut,
            Failure::Interrupted { .. } => Stop::Interrupted,
            _ => Stop::Failed,
        }
    }

    fn state(self) -> RunState {
        match self {
            Stop::Failed => RunState::Failed,
            Stop::TimedOut => RunState::TimedOut,
            Stop::Interrupted => RunState::Interrupted,
        }
    }
}

/// How things stand while the steps go by.
#[derive(Debug, Default)]
struct Standing {
    /// The first critical failure that stopped the run, and where.
    stopped: Option<(Stop, Option<String>)>,
    /// A critical failure under `on_failure = "continue"`.
    continued: Option<String>,
    /// What unwinding ended in, if the policy unwound.
    unwound: Option<RunState>,
}

impl Standing {
    fn state(&self) -> RunState {
        match (&self.unwound, &self.stopped, &self.continued) {
            (Some(state), _, _) => *state,
            (None, Some((stop, _)), _) => stop.state(),
            (None, None, Some(_)) => RunState::Failed,
            (None, None, None) => RunState::Succeeded,
        }
    }

    fn failed_step(&self) -> Option<String> {
        self.stopped.as_ref().and_then(|(_, step)| step.clone()).or_else(|| self.continued.clone())
    }

    fn run_info(&self) -> RunInfo {
        RunInfo { status: self.state().as_str().to_string(), failed_step: self.failed_step().unwrap_or_default() }
    }
}

/// How one step ended, for the loop.
enum Ended {
    Succeeded,
    Failed(Failure),
}

impl Driver<'_> {
    /// Runs the steps that are not done yet, in order, applying the failure
    /// policy; ends with `run-finished` and returns the record.
    pub async fn run(&self) -> RunRecord {
        let started = Instant::now();
        let mut standing = Standing::default();
        for step in &self.plan.steps {
            let record = self.recorder.with_record(|r| r.step(&step.id).cloned());
            let Some(record) = record else { continue };
            if record.progress == StepProgress::Succeeded && !step.policy.always {
                continue;
            }
            if standing.stopped.is_none()
                && let Some(signal) = self.interrupt.reason()
            {
                // Stopped between two steps: no step failed.
                self.recorder.fact(Event::Interrupted { signal });
                standing.stopped = Some((Stop::Interrupted, None));
                self.apply_policy(&mut standing, self.plan.on_failure).await;
            }
            if standing.stopped.is_some() && !step.policy.always {
                continue;
            }
            // `always` steps after a stop run to the end: only a second
            // signal (which exits) stops them.
            let interrupt = standing.stopped.is_none().then(|| self.interrupt.clone());
            let interruptible = interrupt.is_some();
            let ended = self.step(step, &record, &standing.run_info(), interrupt).await;
            let Ended::Failed(failure) = ended else { continue };
            if !step.policy.critical || standing.stopped.is_some() {
                continue;
            }
            let mut stop = Stop::of(&failure);
            if let Failure::Interrupted { signal } = &failure {
                self.recorder.fact(Event::Interrupted { signal: signal.clone() });
            } else if interruptible && let Some(signal) = self.interrupt.reason() {
                // The signal stopped a host operation inside the call (a
                // copy), and the plugin reported that as its own failure:
                // the operator stopped the run all the same.
                self.recorder.fact(Event::Interrupted { signal });
                stop = Stop::Interrupted;
            }
            match step.policy.on_failure {
                OnFailure::Continue if stop != Stop::Interrupted => {
                    standing.continued.get_or_insert_with(|| step.id.clone());
                }
                policy => {
                    standing.stopped = Some((stop, Some(step.id.clone())));
                    self.apply_policy(&mut standing, policy).await;
                }
            }
        }
        self.finish(standing.state(), standing.failed_step(), started)
    }

    async fn apply_policy(&self, standing: &mut Standing, policy: OnFailure) {
        if policy == OnFailure::Undo {
            standing.unwound = Some(self.unwind(UndoReason::Policy, false).await);
        }
    }

    /// Records `run-finished` and returns the final record.
    pub(crate) fn finish(&self, state: RunState, failed_step: Option<String>, started: Instant) -> RunRecord {
        self.recorder.fact(Event::RunFinished { state, failed_step, elapsed_ms: millis(started.elapsed()) });
        self.recorder.record()
    }

    /// The context for one call into `step`'s plugin.
    pub(crate) fn context<'s>(&self, step: &'s PlannedStep, interrupt: Option<Interrupt>) -> CallContext<'s> {
        let mut ctx = CallContext::new(&step.id, &step.grants, step.limits, self.observer.clone())
            .recorder(self.recorder.for_calls())
            .secrets(std::sync::Arc::new(self.plan.secrets()));
        ctx.interrupt = interrupt;
        ctx
    }

    /// The config `step` runs (and is undone) with: rendered from the plan
    /// with the outputs the record holds for the steps before it.
    pub(crate) fn config(&self, step: &PlannedStep, run: &RunInfo) -> Result<String, String> {
        let outputs: BTreeMap<String, serde_json::Value> = self.recorder.with_record(|r| {
            r.steps
                .iter()
                .filter(|s| s.progress == StepProgress::Succeeded)
                .filter_map(|s| Some((s.header.id.clone(), s.outputs.clone()?)))
                .collect()
        });
        step.config.render_in_run(&self.plan.vars, &outputs, run)
    }

    /// Journals the temporary files a call left and the host removed.
    pub(crate) fn removed<T>(&self, step: &PlannedStep, called: &Called<T>) {
        for (path, host_path) in &called.removed {
            self.recorder.fact(Event::TemporaryRemoved {
                step: step.id.clone(),
                path: path.clone(),
                host_path: host_path.clone(),
            });
        }
    }

    /// Runs one step to its end: recovering an earlier attempt first when
    /// the record says one was in doubt, then planning (if not done ahead),
    /// running and verifying with retries.
    async fn step(
        &self,
        step: &PlannedStep,
        record: &StepRecord,
        run: &RunInfo,
        interrupt: Option<Interrupt>,
    ) -> Ended {
        let mut acc = Acc::new();
        if let Some(ended) = self.recover(step, record, &mut acc).await {
            return ended;
        }
        let config = match self.config(step, run) {
            Ok(c) => c,
            Err(message) => {
                let failure = Failure::Host { message: format!("cannot fill in the config: {message}") };
                return self.finished(step, &mut acc, Some((FailedIn::Plan, failure)));
            }
        };
        let journaled = journaled_config(&config, &self.plan.secrets());
        if let Err(e) =
            self.recorder.announce(Event::StepStarted { step: step.id.clone(), attempt: 1, config: journaled.clone() })
        {
            let failure = Failure::Host { message: format!("the step did not start: {e}") };
            return self.finished(step, &mut acc, Some((FailedIn::Plan, failure)));
        }
        let ctx = self.context(step, interrupt.clone());
        if step.preview.plans_when_it_runs() || step.config.needs_run {
            let called = step.plugin.plan(&ctx, &config).await;
            acc.absorb(&called);
            if let Err(failure) = called.result {
                return self.finished(step, &mut acc, Some((FailedIn::Plan, failure)));
            }
        }

        let retries = step.policy.retries;
        let mut attempt = 1;
        let outputs = loop {
            let called = step.plugin.run(&ctx, &config).await;
            acc.absorb(&called);
            self.removed(step, &called);
            match called.result {
                Ok(outcome) => {
                    let mut outputs = outcome.outputs;
                    crate::redact::json(&mut outputs, &self.plan.secrets());
                    let summary = crate::redact::text(&outcome.summary, &self.plan.secrets());
                    self.recorder.fact(Event::StepRan { step: step.id.clone(), summary, outputs: outputs.clone() });
                    break outputs;
                }
                Err(failure) if is_transient(&failure) && attempt < retries.attempts => {
                    if let Err(failure) =
                        self.wait_to_retry(step, attempt, FailedIn::Run, failure, interrupt.as_ref()).await
                    {
                        return self.finished(step, &mut acc, Some((FailedIn::Run, failure)));
                    }
                    attempt += 1;
                    let event = Event::StepStarted { step: step.id.clone(), attempt, config: journaled.clone() };
                    if let Err(e) = self.recorder.announce(event) {
                        let failure = Failure::Host { message: format!("the retry did not start: {e}") };
                        return self.finished(step, &mut acc, Some((FailedIn::Run, failure)));
                    }
                }
                Err(failure) => return self.finished(step, &mut acc, Some((FailedIn::Run, failure))),
            }
        };

        let outputs = outputs.to_string();
        let mut attempt = 1;
        loop {
            let called = step.plugin.verify(&ctx, &config, &outputs).await;
            acc.absorb(&called);
            match called.result {
                Ok(()) => return self.finished(step, &mut acc, None),
                Err(failure) if is_transient(&failure) && attempt < retries.attempts => {
                    if let Err(failure) =
                        self.wait_to_retry(step, attempt, FailedIn::Verify, failure, interrupt.as_ref()).await
                    {
                        return self.finished(step, &mut acc, Some((FailedIn::Verify, failure)));
                    }
                    attempt += 1;
                }
                Err(failure) => return self.finished(step, &mut acc, Some((FailedIn::Verify, failure))),
            }
        }
    }

    /// A step a previous session left in doubt, or failed with a change in
    /// place, is settled before it runs again: with outputs, `verify` says
    /// whether it completed (then it is done); otherwise `undo` puts back
    /// whatever the attempt did (undo is idempotent: nothing there, nothing
    /// done). Temporary files the dead attempt left are removed. Returns
    /// `Some` when the step is settled for good (completed, or its undo failed).
    async fn recover(&self, step: &PlannedStep, record: &StepRecord, acc: &mut Acc) -> Option<Ended> {
        let unsettled = record.progress == StepProgress::InDoubt
            || (record.progress == StepProgress::Failed && record.needs_undo())
            || !record.temporaries.is_empty();
        if !unsettled || step.policy.always {
            return None;
        }
        if record.progress == StepProgress::InDoubt
            && let Some(outputs) = &record.outputs
        {
            let config = self.config(step, &RunInfo::so_far_so_good()).ok()?;
            let ctx = self.context(step, None);
            let called = step.plugin.verify(&ctx, &config, &outputs.to_string()).await;
            acc.absorb(&called);
            if called.result.is_ok() {
                acc.recovered = true;
                return Some(self.finished(step, acc, None));
            }
        }
        self.remove_leftovers(step, record);
        if record.needs_undo()
            && let Err(failure) = self.undo_step(step, record, UndoReason::Resume).await
        {
            return Some(self.finished(step, acc, Some((FailedIn::Undo, failure))));
        }
        None
    }

    /// Waits before the next attempt; an interrupt ends the wait (and the step).
    async fn wait_to_retry(
        &self,
        step: &PlannedStep,
        attempt: u32,
        failed_in: FailedIn,
        failure: Failure,
        interrupt: Option<&Interrupt>,
    ) -> Result<(), Failure> {
        let wait = step.policy.retries.wait_after(attempt);
        self.recorder.fact(Event::StepRetrying {
            step: step.id.clone(),
            attempt,
            failed_in,
            failure: step.with_keys.locate(&failure),
            wait_ms: millis(wait),
        });
        let stopped = async {
            match interrupt {
                Some(i) => i.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = stopped => Err(Failure::Interrupted {
                signal: interrupt.and_then(Interrupt::reason).unwrap_or_else(|| "an interrupt".into()),
            }),
        }
    }

    /// Records `step-finished` and says how the step ended.
    fn finished(&self, step: &PlannedStep, acc: &mut Acc, failed: Option<(FailedIn, Failure)>) -> Ended {
        let secrets = self.plan.secrets();
        let (status, failed_in, failure) = match failed {
            None => (StepStatus::Succeeded, None, None),
            Some((failed_in, failure)) => (StepStatus::Failed, Some(failed_in), Some(failure)),
        };
        let masked = failure.as_ref().map(|f| mask_failure(&step.with_keys.locate(f), &secrets));
        self.recorder.fact(Event::StepFinished(StepFinished {
            step: step.id.clone(),
            status,
            failed_in,
            failure: masked,
            recovered: acc.recovered,
            elapsed_ms: millis(acc.elapsed),
            log: std::mem::take(&mut acc.log),
            log_dropped: acc.dropped,
        }));
        match failure {
            None => Ended::Succeeded,
            Some(f) => Ended::Failed(f),
        }
    }
}

/// Log lines, drops and time of the calls one step made.
pub(crate) struct Acc {
    pub log: Vec<LogRecord>,
    pub dropped: u64,
    pub elapsed: Duration,
    pub recovered: bool,
}

impl Acc {
    pub fn new() -> Self {
        Self { log: Vec::new(), dropped: 0, elapsed: Duration::ZERO, recovered: false }
    }

    pub fn absorb<T>(&mut self, called: &Called<T>) {
        self.log.extend_from_slice(&called.log);
        self.dropped += called.dropped;
        self.elapsed += called.elapsed;
    }
}

fn is_transient(failure: &Failure) -> bool {
    matches!(failure, Failure::Step { error: StepErrorKind::Transient, .. })
}

/// The config as journaled: parsed back to JSON, secrets masked.
fn journaled_config(config: &str, secrets: &[String]) -> serde_json::Value {
    let mut value = serde_json::from_str(config).unwrap_or(serde_json::Value::Null);
    crate::redact::json(&mut value, secrets);
    value
}

/// A failure with every granted secret masked in its message.
pub(crate) fn mask_failure(failure: &Failure, secrets: &[String]) -> Failure {
    let mut value = serde_json::to_value(failure).unwrap_or_default();
    crate::redact::json(&mut value, secrets);
    serde_json::from_value(value).unwrap_or_else(|_| failure.clone())
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
