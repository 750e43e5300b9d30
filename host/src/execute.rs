//! Runs a [`Plan`]: steps in order, outputs flowing forward, the first
//! failure stopping the run.
//!
//! For each step: its config is rendered with the outputs of the steps before
//! it; if the config depended on those outputs, the plugin plans it first
//! (read-only, as at plan time); then `run` with the step's grants; then
//! `verify` (read-only) with run's outputs. A step counts as done only when
//! verify passes. Every state change is written to the [`Journal`] before the
//! next thing happens, so a report survives a crash of the host.
//!
//! Failure policy is "stop": later steps do not run, and nothing is undone
//! automatically. The report says which steps completed and what the failing
//! one said it changed. (`StepStatus` and the journal already carry what an
//! undo needs: each step's config and outputs.)

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::journal::Journal;
use crate::plan::{Plan, PlannedStep, Preview};
use crate::runtime::host_api::{LogRecord, Observer};
use crate::runtime::{CallContext, Failure, Outcome};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Ran and verified.
    Succeeded,
    /// Planning, running or verifying it failed.
    Failed,
    /// An earlier step failed, so this one never started.
    NotRun,
}

/// Which call a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailedIn {
    /// Rendering the config with earlier outputs, or planning it.
    Plan,
    Run,
    Verify,
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub uses: String,
    pub digest: String,
    pub status: StepStatus,
    /// The plugin's one-line summary of what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Run's outputs (also when verify then failed: they say what changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_in: Option<FailedIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub log: Vec<LogRecord>,
    pub log_dropped: u64,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// What happened to the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub runbook: String,
    pub succeeded: bool,
    pub steps: Vec<StepReport>,
    /// Where the journal of this run is, if one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<std::path::PathBuf>,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

impl RunReport {
    pub fn completed(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| s.status == StepStatus::Succeeded)
    }
}

/// Runs every step of `plan` in order; stops at the first failure.
pub async fn execute(plan: &Plan, observer: Observer, mut journal: Option<&mut Journal>) -> RunReport {
    let started = SystemTime::now();
    let mut outputs: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut failed = false;
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|s| serde_json::json!({ "id": s.id, "uses": s.uses, "digest": s.digest.to_string() }))
        .collect();
    let mut journal_error = journal_event(
        &mut journal,
        "run-started",
        serde_json::json!({ "runbook": plan.name, "path": plan.path, "steps": steps }),
    )
    .err();
    for step in &plan.steps {
        if failed {
            reports.push(not_run(step));
            continue;
        }
        // A step starts only once the journal says so: a run that cannot be
        // recorded does not change anything.
        if let Some(e) = journal_error
            .take()
            .or_else(|| journal_event(&mut journal, "step-started", serde_json::json!({ "step": step.id })).err())
        {
            let mut report = not_run(step);
            report.status = StepStatus::Failed;
            report.failed_in = Some(FailedIn::Plan);
            report.failure = Some(Failure::Host { message: format!("the step did not start: {e}") });
            reports.push(report);
            failed = true;
            continue;
        }
        let report = run_step(plan, step, &outputs, observer.clone()).await;
        let mut recorded = serde_json::to_value(&report).unwrap_or_default();
        crate::redact::json(&mut recorded, &step.grants.secrets());
        if let Err(e) = journal_event(&mut journal, "step-finished", recorded) {
            (observer)(&crate::runtime::host_api::Event::Log {
                step: step.id.clone(),
                phase: crate::capability::Phase::Run,
                level: crate::runtime::host_api::LogLevel::Error,
                message: format!("backout: {e}"),
            });
        }
        if report.status == StepStatus::Succeeded {
            if let Some(o) = &report.outputs {
                outputs.insert(step.id.clone(), o.clone());
            }
        } else {
            failed = true;
        }
        reports.push(report);
    }
    let elapsed = started.elapsed().unwrap_or_default();
    let _ = journal_event(&mut journal, "run-finished", serde_json::json!({ "succeeded": !failed }));
    RunReport {
        runbook: plan.name.clone(),
        succeeded: !failed,
        steps: reports,
        journal: journal.as_ref().map(|j| j.path().to_path_buf()),
        elapsed,
    }
}

fn journal_event(journal: &mut Option<&mut Journal>, event: &str, data: serde_json::Value) -> Result<(), String> {
    match journal.as_deref_mut() {
        Some(j) => j.append(event, data).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

fn not_run(step: &PlannedStep) -> StepReport {
    StepReport {
        id: step.id.clone(),
        uses: step.uses.clone(),
        digest: step.digest.to_string(),
        status: StepStatus::NotRun,
        summary: None,
        outputs: None,
        failed_in: None,
        failure: None,
        log: Vec::new(),
        log_dropped: 0,
        elapsed: Duration::ZERO,
    }
}

async fn run_step(
    plan: &Plan,
    step: &PlannedStep,
    outputs: &BTreeMap<String, serde_json::Value>,
    observer: Observer,
) -> StepReport {
    let mut report = not_run(step);
    let ctx = CallContext { step: &step.id, grants: &step.grants, limits: step.limits, observer };
    let fail = |report: &mut StepReport, failed_in, failure| {
        report.status = StepStatus::Failed;
        report.failed_in = Some(failed_in);
        report.failure = Some(failure);
    };

    let config = match step.config.render(&plan.vars, outputs) {
        Ok(c) => c,
        Err(message) => {
            fail(
                &mut report,
                FailedIn::Plan,
                Failure::Host { message: format!("cannot fill in the config: {message}") },
            );
            return report;
        }
    };
    if let Preview::Deferred { .. } = step.preview {
        let called = step.plugin.plan(&ctx, &config).await;
        absorb(&mut report, &called.log, called.dropped, called.elapsed);
        if let Err(failure) = called.result {
            fail(&mut report, FailedIn::Plan, failure);
            return report;
        }
    }

    let called = step.plugin.run(&ctx, &config).await;
    absorb(&mut report, &called.log, called.dropped, called.elapsed);
    let Outcome { summary, outputs } = match called.result {
        Ok(outcome) => outcome,
        Err(failure) => {
            fail(&mut report, FailedIn::Run, failure);
            return report;
        }
    };
    report.summary = Some(summary);
    let outputs_text = outputs.to_string();
    report.outputs = Some(outputs);

    let called = step.plugin.verify(&ctx, &config, &outputs_text).await;
    absorb(&mut report, &called.log, called.dropped, called.elapsed);
    match called.result {
        Ok(()) => report.status = StepStatus::Succeeded,
        Err(failure) => fail(&mut report, FailedIn::Verify, failure),
    }
    report
}

fn absorb(report: &mut StepReport, log: &[LogRecord], dropped: u64, elapsed: Duration) {
    report.log.extend_from_slice(log);
    report.log_dropped += dropped;
    report.elapsed += elapsed;
}
