//! How plans and runs are shown: text for people, JSON for tools.
//!
//! Text goes to stdout; it is stable enough to read and to grep, but scripts
//! should use `--output json`, whose shape is [`PlanView`] and
//! [`run::RunView`]. Secrets (values of granted environment variables) are
//! masked in everything shown. Guest paths in outputs are translated back to
//! host paths, because the operator looking for a safety copy is on the host.

pub mod html;
pub mod run;

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::capability::files::Access;
use crate::diagnostic::Diagnostic;
use crate::execute::millis;
use crate::plan::{Changes, Plan, PlannedStep, PluginSource, Preview};
use crate::policy::{OnFailure, StepPolicy};
use crate::quantity::format_duration;
use crate::runtime::Effect;
use crate::runtime::limits::Limits;

/// A plan as JSON (`backout plan --output json`).
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    pub runbook: &'a str,
    pub path: &'a std::path::Path,
    pub description: Option<&'a str>,
    pub on_failure: OnFailure,
    /// `null` when no step's plugin came from a registry.
    pub registry: Option<RegistryView<'a>>,
    pub steps: Vec<StepView<'a>>,
    pub warnings: &'a [Diagnostic],
    /// The runbook's recovery time objective, if it declares one.
    pub rto_ms: Option<u64>,
    /// The longest the steps can take together (every attempt to its timeout).
    pub worst_case_ms: u64,
    /// The steps' `expected` durations added up, if any step declares one.
    pub expected_ms: Option<u64>,
    /// What would change, by the actions' effects (`pending`: anything at all).
    pub changes: Changes,
}

/// The registry's trust status, as JSON.
#[derive(Debug, Serialize)]
pub struct RegistryView<'a> {
    pub path: &'a std::path::Path,
    pub serial: u64,
    pub verified: bool,
    /// The trusted key's name, when verified.
    pub signed_by: Option<&'a str>,
    pub signature_present: bool,
    pub expires: Option<&'a str>,
    pub signed: Option<&'a str>,
    /// The line the text plan shows.
    pub status: String,
}

#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub id: &'a str,
    pub uses: &'a str,
    pub source: &'a PluginSource,
    pub digest: String,
    pub size: u64,
    pub plugin: PluginView<'a>,
    pub grants: GrantsView,
    pub limits: Limits,
    pub policy: StepPolicy,
    pub preview: &'a Preview,
    pub expected_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct PluginView<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub summary: &'a str,
}

#[derive(Debug, Serialize)]
pub struct GrantsView {
    pub dirs: Vec<DirView>,
    /// Names only; values are never shown.
    pub env: Vec<String>,
    /// Origins, `scheme://host:port`.
    pub net: Vec<String>,
    /// Host command lines, each an exact argv.
    pub commands: Vec<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct DirView {
    pub host: PathBuf,
    pub guest: String,
    pub mode: Access,
}

impl<'a> PlanView<'a> {
    pub fn new(plan: &'a Plan) -> Self {
        Self {
            runbook: &plan.name,
            path: &plan.path,
            description: plan.description.as_deref(),
            on_failure: plan.on_failure,
            registry: plan.registry_trust.as_ref().map(|t| RegistryView {
                path: &t.root,
                serial: t.serial,
                verified: t.verified(),
                signed_by: match &t.trusted {
                    backout_registry::Trusted::Signed { key_name, .. } => Some(key_name),
                    backout_registry::Trusted::NotConfigured => None,
                },
                signature_present: t.signature_present,
                expires: t.expires.as_deref(),
                signed: t.signed.as_deref(),
                status: t.describe(),
            }),
            steps: plan.steps.iter().map(StepView::new).collect(),
            warnings: &plan.warnings,
            rto_ms: plan.rto.map(millis),
            worst_case_ms: millis(plan.worst_case()),
            expected_ms: plan.expected().map(millis),
            changes: plan.changes(),
        }
    }
}

impl<'a> StepView<'a> {
    fn new(step: &'a PlannedStep) -> Self {
        Self {
            id: &step.id,
            uses: &step.uses,
            source: &step.source,
            digest: step.digest.to_string(),
            size: step.size,
            plugin: PluginView { name: &step.info.name, version: &step.info.version, summary: &step.info.summary },
            grants: GrantsView {
                dirs: step
                    .grants
                    .dirs
                    .iter()
                    .map(|d| DirView { host: d.host.clone(), guest: d.guest.clone(), mode: d.access })
                    .collect(),
                env: step.grants.env.iter().map(|e| e.name.clone()).collect(),
                net: step.grants.net.origins.iter().map(|o| o.to_string()).collect(),
                commands: step.grants.commands.iter().map(|c| c.argv.clone()).collect(),
            },
            limits: step.limits,
            policy: step.policy,
            preview: &step.preview,
            expected_ms: step.expected.map(millis),
        }
    }
}

/// `sha256:3f2a9c…c9d1`: enough to recognise, short enough to read.
pub fn short_digest(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 16 => format!("sha256:{}…{}", &hex[..8], &hex[hex.len() - 4..]),
        _ => digest.to_string(),
    }
}

/// The plan as text.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = write!(out, "Plan for `{}` ({})", plan.name, plan.path.display());
    if let Some(d) = &plan.description {
        let _ = write!(out, ": {d}");
    }
    out.push_str("\n\n");
    if let Some(trust) = &plan.registry_trust {
        let _ = writeln!(out, "  {}\n", trust.describe());
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let origin = match &step.source {
            PluginSource::Registry { .. } => "registry",
            PluginSource::File { .. } => "file",
        };
        let _ = writeln!(
            out,
            "  {}. {} — {} ({}, {origin})",
            i + 1,
            step.id,
            step.uses,
            short_digest(&step.digest.to_string())
        );
        if let Some(d) = &step.description {
            let _ = writeln!(out, "     {d}");
        }
        for (j, line) in step.grants.describe().iter().enumerate() {
            let label = if j == 0 { "grants" } else { "" };
            let _ = writeln!(out, "     {label:<8} {line}");
        }
        match step.expected {
            Some(expected) => {
                let _ = writeln!(
                    out,
                    "     {:<8} {}; expected to take {}",
                    "limits",
                    step.limits,
                    format_duration(expected)
                );
            }
            None => {
                let _ = writeln!(out, "     {:<8} {}", "limits", step.limits);
            }
        }
        for (j, line) in policy_lines(step, plan.on_failure).iter().enumerate() {
            let label = if j == 0 { "policy" } else { "" };
            let _ = writeln!(out, "     {label:<8} {line}");
        }
        match &step.preview {
            Preview::Actions { actions } if actions.is_empty() => {
                let _ = writeln!(out, "     {:<8} nothing to do", "will");
            }
            Preview::Actions { actions } => {
                for (j, action) in actions.iter().enumerate() {
                    let label = if j == 0 { "will" } else { "" };
                    let _ = writeln!(out, "     {label:<8} {}{}", action.summary, effect_tag(action.effect));
                    if let Some(detail) = &action.detail {
                        for line in detail.lines() {
                            let _ = writeln!(out, "     {:<8}   {line}", "");
                        }
                    }
                }
            }
            Preview::Deferred { after } => {
                let after = after.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
                let _ = writeln!(out, "     {:<8} planned when it runs (its config uses outputs of {after})", "will");
            }
            Preview::Unplanned => {
                let _ = writeln!(out, "     {:<8} planned when it runs", "will");
            }
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "{w}");
    }
    let n = plan.steps.len();
    if let Some(rto) = plan.rto {
        let expected = match plan.expected() {
            Some(e) => format!("; expected {}", format_duration(e)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "RTO: {}. The steps' timeouts add up to {}{expected}.",
            format_duration(rto),
            format_duration(plan.worst_case())
        );
    }
    let _ = writeln!(out, "On failure: {}.", on_failure_words(plan.on_failure));
    let _ = writeln!(out, "{}{}", crate::text::count(n, "step"), changes_words(&plan.changes()));
    out
}

/// What the plan shows after an action that changes nothing.
fn effect_tag(effect: Effect) -> &'static str {
    match effect {
        Effect::Change => "",
        Effect::Check => "  [check]",
        Effect::InPlace => "  [already in place]",
    }
}

/// The plan's last words after "3 steps": how many change something, and
/// that nothing has changed yet, or that there is nothing to change.
/// `": 1 to change, 1 to check, 1 already in place; nothing has been changed."`
pub fn changes_words(changes: &Changes) -> String {
    let parts: Vec<String> = [
        (changes.change, "to change"),
        (changes.unknown, "planned at run time"),
        (changes.check, "to check"),
        (changes.in_place, "already in place"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, words)| format!("{n} {words}"))
    .collect();
    let parts = if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) };
    let end = if changes.pending { "nothing has been changed" } else { "nothing to change" };
    format!("{parts}; {end}.")
}

/// What a policy does, in words for the plan.
pub fn on_failure_words(policy: OnFailure) -> &'static str {
    match policy {
        OnFailure::Undo => "undo (put back every completed step, newest first, then stop)",
        OnFailure::Abort => "abort (stop and keep what completed; `backout undo` can put it back later)",
        OnFailure::Continue => "continue (run the remaining steps; the run still fails)",
    }
}

/// The lines that say how a step differs from the default policy; none
/// when it does not.
fn policy_lines(step: &PlannedStep, runbook: OnFailure) -> Vec<String> {
    let p = &step.policy;
    let mut lines = Vec::new();
    if p.always {
        lines.push("always runs, even after a failure; never undone".to_string());
    }
    if !p.critical {
        lines.push("may fail without failing the run (critical = false)".to_string());
    } else if p.on_failure != runbook {
        lines.push(format!("on failure: {}", p.on_failure.as_str()));
    }
    if p.retries.attempts > 1 {
        let waits: Vec<String> = (1..p.retries.attempts).map(|a| format_duration(p.retries.wait_after(a))).collect();
        lines.push(format!(
            "{} after transient errors, waiting {}; at most {} in all",
            crate::text::count(p.retries.attempts as usize, "attempt"),
            waits.join(", "),
            format_duration(p.retries.worst_case(step.limits.timeout))
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_for_reading() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababab…abab");
    }

    #[test]
    fn the_last_words_say_what_would_change_or_that_nothing_would() {
        let pending = Changes { pending: true, change: 1, check: 1, in_place: 1, unknown: 0 };
        assert_eq!(changes_words(&pending), ": 1 to change, 1 to check, 1 already in place; nothing has been changed.");
        let later = Changes { pending: true, unknown: 2, ..Changes::default() };
        assert_eq!(changes_words(&later), ": 2 planned at run time; nothing has been changed.");
        let calm = Changes { pending: false, check: 1, in_place: 2, ..Changes::default() };
        assert_eq!(changes_words(&calm), ": 1 to check, 2 already in place; nothing to change.");
        assert_eq!(changes_words(&Changes::default()), "; nothing to change.");
    }
}
