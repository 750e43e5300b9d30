//! How plans and runs are shown: text for people, JSON for tools.
//!
//! Text goes to stdout; it is stable enough to read and to grep, but scripts
//! should use `--output json`, whose shape is [`PlanView`] and
//! [`crate::execute::RunReport`]. Secrets (values of granted environment
//! variables) are masked in everything shown. Guest paths in outputs are
//! translated back to host paths, because the operator looking for a safety
//! copy is on the host.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::capability::files::Access;
use crate::diagnostic::Diagnostic;
use crate::execute::{RunReport, StepStatus};
use crate::plan::{Origin, Plan, PlannedStep, Preview};
use crate::runtime::limits::Limits;

/// A plan as JSON (`backout plan --output json`).
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    pub runbook: &'a str,
    pub path: &'a std::path::Path,
    pub description: Option<&'a str>,
    pub steps: Vec<StepView<'a>>,
    pub warnings: &'a [Diagnostic],
}

#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub id: &'a str,
    pub uses: &'a str,
    pub origin: &'a Origin,
    pub digest: String,
    pub size: u64,
    pub plugin: PluginView<'a>,
    pub grants: GrantsView,
    pub limits: Limits,
    pub preview: &'a Preview,
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
            steps: plan.steps.iter().map(StepView::new).collect(),
            warnings: &plan.warnings,
        }
    }
}

impl<'a> StepView<'a> {
    fn new(step: &'a PlannedStep) -> Self {
        Self {
            id: &step.id,
            uses: &step.uses,
            origin: &step.origin,
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
            },
            limits: step.limits,
            preview: &step.preview,
        }
    }
}

/// `sha256:3f2a9c…c9d1`: enough to recognise, short enough to read.
fn short_digest(digest: &str) -> String {
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
    for (i, step) in plan.steps.iter().enumerate() {
        let origin = match &step.origin {
            Origin::Registry { .. } => "registry",
            Origin::File { .. } => "file",
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
        let mut grant_lines: Vec<String> = step
            .grants
            .dirs
            .iter()
            .map(|d| format!("{} → {} ({})", d.host.display(), d.guest, d.access.as_str()))
            .collect();
        grant_lines.extend(step.grants.env.iter().map(|e| format!("env {}", e.name)));
        grant_lines.extend(step.grants.net.origins.iter().map(|o| format!("net {o}")));
        if grant_lines.is_empty() {
            grant_lines.push("nothing".to_string());
        }
        for (j, line) in grant_lines.iter().enumerate() {
            let label = if j == 0 { "grants" } else { "" };
            let _ = writeln!(out, "     {label:<8} {line}");
        }
        let _ = writeln!(out, "     {:<8} {}", "limits", step.limits);
        match &step.preview {
            Preview::Actions { actions } if actions.is_empty() => {
                let _ = writeln!(out, "     {:<8} nothing to do", "will");
            }
            Preview::Actions { actions } => {
                for (j, action) in actions.iter().enumerate() {
                    let label = if j == 0 { "will" } else { "" };
                    let _ = writeln!(out, "     {label:<8} {}", action.summary);
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
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "{w}");
    }
    let n = plan.steps.len();
    let _ = writeln!(out, "{n} step{}; nothing has been changed.", if n == 1 { "" } else { "s" });
    out
}

/// The run report as text.
pub fn run_text(plan: &Plan, report: &RunReport) -> String {
    let mut out = String::new();
    for step in &report.steps {
        let planned = plan.step(&step.id);
        let secrets = planned.map(|p| p.grants.secrets()).unwrap_or_default();
        let elapsed = format!("{:.1?}", step.elapsed);
        match step.status {
            StepStatus::Succeeded => {
                let summary = mask(step.summary.as_deref().unwrap_or(""), &secrets);
                let _ = writeln!(out, "ok       {}  {summary}  ({elapsed})", step.id);
            }
            StepStatus::Failed => {
                let failure = step.failure.as_ref().map(|f| mask(&f.to_string(), &secrets)).unwrap_or_default();
                let stage = step.failed_in.map(|f| format!("{f:?}").to_lowercase()).unwrap_or_default();
                let _ = writeln!(out, "FAILED   {}  in {stage}: {failure}  ({elapsed})", step.id);
            }
            StepStatus::NotRun => {
                let _ = writeln!(out, "not run  {}", step.id);
            }
        }
        if let (Some(outputs), Some(planned)) = (&step.outputs, planned) {
            outputs_text(&mut out, outputs, planned, &secrets);
        }
        if step.log_dropped > 0 {
            let _ =
                writeln!(out, "         ({} log lines or output bytes were dropped past the limits)", step.log_dropped);
        }
    }
    out.push('\n');
    let done: Vec<&str> = report.completed().map(|s| s.id.as_str()).collect();
    let total = report.steps.len();
    if report.succeeded {
        let _ = writeln!(out, "Run succeeded: {total} of {total} steps completed.");
    } else {
        let failed = report.steps.iter().find(|s| s.status == StepStatus::Failed).map(|s| s.id.as_str()).unwrap_or("?");
        let completed = if done.is_empty() {
            "none".to_string()
        } else {
            done.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(
            out,
            "Run failed at step `{failed}`: {} of {total} steps completed ({completed}); later steps did not run.",
            done.len()
        );
        let _ = writeln!(out, "Nothing was undone automatically; the outputs above say where each safety copy is.");
    }
    if let Some(j) = &report.journal {
        let _ = writeln!(out, "Journal: {}", j.display());
    }
    out
}

fn outputs_text(out: &mut String, outputs: &serde_json::Value, step: &PlannedStep, secrets: &[String]) {
    let Some(map) = outputs.as_object() else { return };
    for (key, value) in map {
        let shown = match value {
            serde_json::Value::String(s) => {
                let mut s = mask(s, secrets);
                if let Some(host) = step.host_path(&s) {
                    let _ = write!(s, "  (host: {})", host.display());
                }
                s
            }
            other => {
                let text = mask(&other.to_string(), secrets);
                if text.chars().count() > 200 {
                    format!("{}…", text.chars().take(200).collect::<String>())
                } else {
                    text
                }
            }
        };
        let _ = writeln!(out, "         {key}: {shown}");
    }
}

fn mask(text: &str, secrets: &[String]) -> String {
    crate::redact::text(text, secrets)
}

/// Step reports as JSON, with secrets masked.
pub fn run_json(plan: &Plan, report: &RunReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    let secrets: Vec<String> = plan.steps.iter().flat_map(|s| s.grants.secrets()).collect();
    crate::redact::json(&mut value, &secrets);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_for_reading() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababab…abab");
    }
}
