//! Putting back what a run changed: every step that may have changed
//! something, newest first, each with the config it ran with and the
//! outputs it recorded (`run`'s, or its last checkpoint when backout died
//! before `run` returned).
//!
//! The same code serves the failure policy (`on_failure = "undo"`) and
//! `backout undo RUN`. Unwinding stops at the first undo that fails: later
//! (older) steps are left as they are, because undoing a step underneath one
//! whose change is still in place could leave a state no release ever had.
//! The run then ends `needs-attention`, and the report lists every step's
//! state and where its safety copies are. Undo is idempotent, so running
//! `backout undo` again after fixing the cause continues where it stopped.
//!
//! `always` steps are never undone: they are the run's `finally`, not part
//! of the change. Temporary files a killed call left behind are removed.

use std::time::Instant;

use crate::execute::{Acc, Driver, mask_failure, millis};
use crate::history::StepRecord;
use crate::journal::event::{Event, RunState, UndoFinished, UndoReason, UndoResult};
use crate::plan::PlannedStep;
use crate::runtime::Failure;
use crate::template::RunInfo;

impl Driver<'_> {
    /// `backout undo RUN`: unwinds the run and records how it ended. The
    /// first interrupt stops it between two undos (the run is then
    /// `interrupted`, partly undone; `backout undo` again continues).
    pub async fn undo_run(&self) -> crate::history::RunRecord {
        let started = Instant::now();
        let state = self.unwind(UndoReason::Operator, true).await;
        let failed = self.recorder.with_record(|r| {
            r.steps
                .iter()
                .find(|s| matches!(s.undo, crate::history::UndoProgress::Failed { .. }))
                .map(|s| s.header.id.clone())
        });
        self.finish(state, failed, started)
    }

    /// Undoes every step that needs it, newest first; stops at the first
    /// failure. Returns `undone`, `needs-attention`, or (when
    /// `stop_on_interrupt` and the operator interrupted) `interrupted`.
    pub(crate) async fn unwind(&self, reason: UndoReason, stop_on_interrupt: bool) -> RunState {
        for step in self.plan.steps.iter().rev() {
            let record = self.recorder.with_record(|r| r.step(&step.id).cloned());
            let Some(record) = record else { continue };
            if record.header.always || !record.has_debris() {
                continue;
            }
            if stop_on_interrupt && let Some(signal) = self.interrupt.reason() {
                self.recorder.fact(Event::Interrupted { signal });
                return RunState::Interrupted;
            }
            self.remove_leftovers(step, &record);
            if record.needs_undo() && self.undo_step(step, &record, reason).await.is_err() {
                return RunState::NeedsAttention;
            }
        }
        RunState::Undone
    }

    /// Calls the plugin's `undo` for one step and records it.
    pub(crate) async fn undo_step(
        &self,
        step: &PlannedStep,
        record: &StepRecord,
        reason: UndoReason,
    ) -> Result<(), Failure> {
        let (Some(outputs), Some(from)) = (&record.outputs, record.outputs_from) else { return Ok(()) };
        let mut acc = Acc::new();
        let config = match self.config(step, &RunInfo::so_far_so_good()) {
            Ok(c) => c,
            // The runbook and its vars are the ones the run used (undo and
            // resume check its digest), so this cannot differ from the
            // config the step ran with; fall back to the journaled one.
            Err(_) => record.config.as_ref().map(ToString::to_string).unwrap_or_else(|| "{}".into()),
        };
        let announced = self.recorder.announce(Event::UndoStarted { step: step.id.clone(), reason, from });
        if let Err(e) = announced {
            let failure = Failure::Host { message: format!("the undo did not start: {e}") };
            self.undo_finished(step, &mut acc, Err(failure.clone()));
            return Err(failure);
        }
        // Undo is never interrupted by the first signal: half an undo helps nobody.
        let ctx = self.context(step, None);
        let called = step.plugin.undo(&ctx, &config, &outputs.to_string()).await;
        acc.absorb(&called);
        self.removed(step, &called);
        let result = called.result.map(|outcome| {
            let mut outputs = outcome.outputs;
            crate::redact::json(&mut outputs, &self.plan.secrets());
            (crate::redact::text(&outcome.summary, &self.plan.secrets()), outputs)
        });
        self.undo_finished(step, &mut acc, result.clone());
        result.map(|_| ())
    }

    fn undo_finished(&self, step: &PlannedStep, acc: &mut Acc, result: Result<(String, serde_json::Value), Failure>) {
        let result = match result {
            Ok((summary, outputs)) => UndoResult::Undone { summary, outputs },
            Err(failure) => {
                UndoResult::Failed { failure: mask_failure(&step.with_keys.locate(&failure), &self.plan.secrets()) }
            }
        };
        self.recorder.fact(Event::UndoFinished(UndoFinished {
            step: step.id.clone(),
            result,
            elapsed_ms: millis(acc.elapsed),
            log: std::mem::take(&mut acc.log),
            log_dropped: acc.dropped,
        }));
    }

    /// Removes the temporary files a call that backout did not survive had
    /// declared, as the host removes them after any call that ends badly.
    pub(crate) fn remove_leftovers(&self, step: &PlannedStep, record: &StepRecord) {
        for temp in &record.temporaries {
            match crate::capability::files::remove_temporary(&step.grants.dirs, &temp.path) {
                Ok(Some(host_path)) => self.recorder.fact(Event::TemporaryRemoved {
                    step: step.id.clone(),
                    path: temp.path.clone(),
                    host_path,
                }),
                // Already gone: the call removed it before backout died.
                Ok(None) => self.recorder.fact(Event::TemporaryRemoved {
                    step: step.id.clone(),
                    path: temp.path.clone(),
                    host_path: temp.host_path.clone().unwrap_or_default(),
                }),
                Err(e) => (self.observer)(&crate::runtime::host_api::Event::Log {
                    step: step.id.clone(),
                    phase: crate::capability::Phase::Undo,
                    level: crate::runtime::host_api::LogLevel::Warn,
                    message: format!("backout could not remove a temporary file: {e}"),
                }),
            }
        }
    }
}
