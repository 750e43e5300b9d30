//! The recovery time objective: did the run put things right in time?
//!
//! A runbook may declare `rto = "5m"`. Plan compares the steps' timeouts
//! with it (`resolve`); after a run, [`verdict`] says whether the run met
//! it, from the run's record alone, so the live summary, `backout show` and
//! the HTML report agree.
//!
//! A run meets its RTO when it succeeded within it. A run that failed, was
//! undone or stopped did not recover anything, so it missed the RTO however
//! quick it was. A run still going is `pending`.

use serde::Serialize;

use crate::history::{RunRecord, StepProgress};
use crate::journal::event::RunState;
use crate::quantity::{format_duration, format_elapsed};

/// The RTO verdict of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtoVerdict {
    /// The runbook's `rto`.
    pub target_ms: u64,
    /// How long the run took: the sessions' time added up for a run done in
    /// one go; from its start to its last end when it was resumed or undone
    /// later (the gap counts: nothing was recovered meanwhile).
    pub actual_ms: u64,
    pub verdict: Verdict,
    /// The verdict in one sentence, for people.
    pub why: String,
    /// The step that took longest, if any ran.
    pub slowest_step: Option<String>,
    pub slowest_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Met,
    Missed,
    /// The run has not ended.
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::Pending => "pending",
        }
    }
}

/// The verdict for `record`, or `None` when its runbook declares no RTO.
pub fn verdict(record: &RunRecord) -> Option<RtoVerdict> {
    let target_ms = record.header.rto_ms?;
    let actual_ms = actual_ms(record);
    let slowest = record
        .steps
        .iter()
        .filter(|s| s.progress != StepProgress::NotStarted)
        .max_by_key(|s| s.elapsed_ms)
        .filter(|s| s.elapsed_ms > 0);
    let took = format_elapsed(std::time::Duration::from_millis(actual_ms));
    let target = format_duration(std::time::Duration::from_millis(target_ms));
    let (verdict, why) = match record.state {
        RunState::Running => {
            (Verdict::Pending, format!("the run has not ended ({took} so far of the RTO of {target})"))
        }
        RunState::Succeeded if actual_ms <= target_ms => {
            let spare = format_elapsed(std::time::Duration::from_millis(target_ms - actual_ms));
            (Verdict::Met, format!("succeeded in {took}, within the RTO of {target} ({spare} to spare)"))
        }
        RunState::Succeeded => {
            let over = format_elapsed(std::time::Duration::from_millis(actual_ms - target_ms));
            (Verdict::Missed, format!("succeeded in {took}, {over} over the RTO of {target}"))
        }
        state => (
            Verdict::Missed,
            format!("the run ended {state} after {took}: nothing was recovered within the RTO of {target}"),
        ),
    };
    Some(RtoVerdict {
        target_ms,
        actual_ms,
        verdict,
        why,
        slowest_step: slowest.map(|s| s.id().to_string()),
        slowest_ms: slowest.map_or(0, |s| s.elapsed_ms),
    })
}

/// How long the run took; see [`RtoVerdict::actual_ms`].
fn actual_ms(record: &RunRecord) -> u64 {
    if record.sessions.len() <= 1 {
        return record.elapsed_ms;
    }
    let wall = record
        .finished_at
        .as_deref()
        .and_then(backout_registry::parse_utc)
        .zip(backout_registry::parse_utc(&record.started_at))
        .map(|(end, start)| u64::try_from(end - start).unwrap_or(0).saturating_mul(1000));
    wall.unwrap_or(0).max(record.elapsed_ms)
}

/// Steps that took longer than their `expected` duration.
pub fn slower_than_expected(record: &RunRecord) -> impl Iterator<Item = (&str, u64, u64)> {
    record.steps.iter().filter_map(|s| {
        let expected = s.header.expected_ms?;
        (s.progress != StepProgress::NotStarted && s.elapsed_ms > expected).then_some((s.id(), s.elapsed_ms, expected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::{header, session};
    use crate::journal::event::{RunStarted, RunbookRef};

    /// A record whose steps took the given times and whose run ended in `state`.
    fn record_of(rto_ms: Option<u64>, steps: &[(&str, u64)], state: RunState, elapsed_ms: u64) -> RunRecord {
        let started = RunStarted {
            run_id: "id".into(),
            runbook: RunbookRef { name: "n".into(), path: "/r.toml".into(), sha256: "sha256:00".into() },
            vars: Default::default(),
            overrides: vec![],
            on_failure: Default::default(),
            steps: steps.iter().map(|(id, _)| header(id)).collect(),
            session: session(),
            rto_ms,
        };
        let mut record = RunRecord::new(&started, "2026-12-07T03:00:00Z");
        for (s, (_, ms)) in record.steps.iter_mut().zip(steps) {
            s.progress = StepProgress::Succeeded;
            s.elapsed_ms = *ms;
        }
        record.state = state;
        record.elapsed_ms = elapsed_ms;
        record
    }

    #[test]
    fn a_run_without_an_rto_has_no_verdict() {
        let record = record_of(None, &[("a", 10)], RunState::Succeeded, 10);
        assert_eq!(verdict(&record), None);
    }

    #[test]
    fn a_success_within_the_rto_meets_it_and_names_the_slowest_step() {
        let record = record_of(Some(60_000), &[("a", 200), ("b", 1_500)], RunState::Succeeded, 1_800);
        let v = verdict(&record).unwrap();
        assert_eq!(v.verdict, Verdict::Met);
        assert_eq!((v.actual_ms, v.target_ms), (1_800, 60_000));
        assert_eq!((v.slowest_step.as_deref(), v.slowest_ms), (Some("b"), 1_500));
        assert!(v.why.contains("within the RTO of 1m"), "{}", v.why);
    }

    #[test]
    fn a_success_slower_than_the_rto_misses_it_by_the_difference() {
        let record = record_of(Some(1_000), &[("a", 2_500)], RunState::Succeeded, 2_500);
        let v = verdict(&record).unwrap();
        assert_eq!(v.verdict, Verdict::Missed);
        assert!(v.why.contains("1.5s over the RTO of 1s"), "{}", v.why);
    }

    #[test]
    fn a_run_that_was_undone_misses_the_rto_however_quick() {
        let record = record_of(Some(60_000), &[("a", 5)], RunState::Undone, 5);
        let v = verdict(&record).unwrap();
        assert_eq!(v.verdict, Verdict::Missed);
        assert!(v.why.contains("ended undone"), "{}", v.why);
    }

    #[test]
    fn a_running_run_is_pending() {
        let record = record_of(Some(60_000), &[("a", 5)], RunState::Running, 0);
        assert_eq!(verdict(&record).unwrap().verdict, Verdict::Pending);
    }

    #[test]
    fn a_resumed_run_counts_the_time_between_its_sessions() {
        let mut record = record_of(Some(60_000), &[("a", 5)], RunState::Succeeded, 900);
        record.sessions.push(record.sessions[0].clone());
        record.started_at = "2026-12-07T03:00:00Z".into();
        record.finished_at = Some("2026-12-07T03:10:00Z".into());
        let v = verdict(&record).unwrap();
        assert_eq!(v.actual_ms, 600_000);
        assert_eq!(v.verdict, Verdict::Missed);
    }

    #[test]
    fn steps_slower_than_expected_are_listed() {
        let mut record = record_of(None, &[("a", 50), ("b", 5_000)], RunState::Succeeded, 5_050);
        for s in &mut record.steps {
            s.header.expected_ms = Some(1_000);
        }
        let slow: Vec<_> = slower_than_expected(&record).collect();
        assert_eq!(slow, vec![("b", 5_000, 1_000)]);
    }
}
