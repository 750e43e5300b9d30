//! What happens when a step fails: the runbook's failure policy, typed.
//!
//! A runbook says it once (`on_failure`, default [`OnFailure::Undo`]) and a
//! step may override it; a step may be allowed to fail (`critical = false`),
//! may retry errors its plugin marks transient (`retries`), and may run
//! whatever happened before it (`always = true`). [`crate::resolve`] turns
//! the runbook's words into a [`StepPolicy`] per step, once, before anything
//! runs; [`crate::execute`] only reads it.
//!
//! Why `undo` is the default: backout runs rollbacks, and a rollback that
//! stops halfway leaves a system that matches neither the release before nor
//! the release after. Putting back what was done is what an operator with a
//! shell would do first; one who wants the half-done state says `abort`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a failed critical step does to the rest of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Undo every step that completed (and the failed one, if it changed
    /// something), newest first; then run the `always` steps.
    #[default]
    Undo,
    /// Stop: later steps do not run (except `always` ones); nothing is undone.
    Abort,
    /// Run the later steps as if nothing had failed; the run still fails.
    Continue,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Undo => "undo",
            OnFailure::Abort => "abort",
            OnFailure::Continue => "continue",
        }
    }

    /// Parses the runbook's word.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "undo" => Some(OnFailure::Undo),
            "abort" => Some(OnFailure::Abort),
            "continue" => Some(OnFailure::Continue),
            _ => None,
        }
    }
}

/// Most attempts a step may make.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two attempts, whatever the backoff says.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// The default wait before the second attempt.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The default growth of the wait from one attempt to the next.
pub const DEFAULT_BACKOFF: f64 = 2.0;

/// `retries = { attempts, interval, backoff }`: how often a call that failed
/// with a `transient` error is tried again. `attempts` counts every try,
/// the first included; each attempt has the step's whole `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pub attempts: u32,
    #[serde(with = "duration_text")]
    pub interval: Duration,
    pub backoff: f64,
}

impl Default for Retries {
    /// One attempt: no retries.
    fn default() -> Self {
        Self { attempts: 1, interval: DEFAULT_INTERVAL, backoff: DEFAULT_BACKOFF }
    }
}

impl Retries {
    /// The wait after failed attempt `attempt` (1-based): `interval ×
    /// backoff^(attempt-1)`, at most [`MAX_WAIT`].
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let factor = self.backoff.powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = self.interval.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= MAX_WAIT.as_secs_f64() { MAX_WAIT } else { Duration::from_secs_f64(secs) }
    }

    /// Every wait between attempts, added up.
    pub fn total_wait(&self) -> Duration {
        (1..self.attempts).map(|a| self.wait_after(a)).sum()
    }

    /// The longest one call (run or verify) can take with its retries:
    /// every attempt using its whole `timeout`, plus the waits.
    pub fn worst_case(&self, timeout: Duration) -> Duration {
        timeout * self.attempts + self.total_wait()
    }
}

/// How one step behaves when it, or an earlier step, fails.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepPolicy {
    /// This step's `on_failure`, or the runbook's.
    pub on_failure: OnFailure,
    /// Whether this step's failure fails the run (and triggers `on_failure`).
    pub critical: bool,
    /// Runs even after an earlier step failed or the run was interrupted;
    /// never undone.
    pub always: bool,
    pub retries: Retries,
}

impl Default for StepPolicy {
    fn default() -> Self {
        Self { on_failure: OnFailure::default(), critical: true, always: false, retries: Retries::default() }
    }
}

/// Durations as the runbook writes them (`"2s"`), in both directions.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::quantity::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::quantity::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_by_the_backoff_and_are_capped() {
        let r = Retries { attempts: 4, interval: Duration::from_secs(2), backoff: 2.0 };
        assert_eq!(r.wait_after(1), Duration::from_secs(2));
        assert_eq!(r.wait_after(2), Duration::from_secs(4));
        assert_eq!(r.wait_after(3), Duration::from_secs(8));
        assert_eq!(r.total_wait(), Duration::from_secs(14));
        assert_eq!(r.worst_case(Duration::from_secs(60)), Duration::from_secs(4 * 60 + 14));
        let huge = Retries { attempts: 10, interval: Duration::from_secs(60), backoff: 10.0 };
        assert_eq!(huge.wait_after(9), MAX_WAIT);
    }

    #[test]
    fn one_attempt_waits_for_nothing() {
        assert_eq!(Retries::default().total_wait(), Duration::ZERO);
    }

    #[test]
    fn policy_words_parse() {
        assert_eq!(OnFailure::parse("undo"), Some(OnFailure::Undo));
        assert_eq!(OnFailure::parse("abort"), Some(OnFailure::Abort));
        assert_eq!(OnFailure::parse("continue"), Some(OnFailure::Continue));
        assert_eq!(OnFailure::parse("rollback"), None);
        assert_eq!(OnFailure::default(), OnFailure::Undo);
    }
}
