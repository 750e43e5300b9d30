//! A checked runbook: what will run, with what, and what each step would do.
//!
//! A [`Plan`] exists only if [`crate::resolve`] found no errors: every
//! plugin's bytes matched every pin and compiled, every grant is typed and
//! valid, every reference points at an earlier step, and every step whose
//! config is known has been planned by its plugin. [`crate::execute`] accepts
//! nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backout_registry::Digest;
use serde::Serialize;

use crate::capability::Grants;
use crate::diagnostic::Diagnostic;
use crate::policy::{OnFailure, StepPolicy};
use crate::runtime::limits::Limits;
use crate::runtime::{Action, Effect, Plugin, PluginInfo};
use crate::template::{RunInfo, Template};
use crate::with_keys::WithKeys;

/// A runbook ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    /// sha256 of the runbook's bytes, as parsed: journaled, so `undo` and
    /// `resume` can refuse a runbook that changed since the run.
    pub digest: Digest,
    pub vars: BTreeMap<String, String>,
    /// `--var` overrides as given (journaled for `undo` and `resume`).
    pub overrides: Vec<(String, String)>,
    /// The runbook's `on_failure` (each step's effective one is in its policy).
    pub on_failure: OnFailure,
    pub steps: Vec<PlannedStep>,
    /// Things worth knowing that do not stop the run.
    pub warnings: Vec<Diagnostic>,
    /// Whether a lockfile fixed every plugin's version and digest.
    pub locked: bool,
    /// How the registry's index was trusted, if a registry was used.
    pub registry_trust: Option<RegistryTrust>,
    /// The runbook's recovery time objective (`rto`), if it declares one.
    pub rto: Option<Duration>,
}

/// What a plan says about the registry its plugins came from: whether its
/// index was verified, and if not, why not — shown in every plan, so a
/// signature check that did not happen (no trust file under `sudo`, say)
/// never goes unnoticed.
#[derive(Debug, Clone)]
pub struct RegistryTrust {
    pub root: PathBuf,
    pub serial: u64,
    pub trusted: backout_registry::Trusted,
    /// Whether `index.toml.sig` is present (checked only with trusted keys).
    pub signature_present: bool,
    pub expires: Option<String>,
    pub signed: Option<String>,
}

impl RegistryTrust {
    /// One line for the plan: `registry /r (serial 7): verified, signed by …`.
    pub fn describe(&self) -> String {
        use backout_registry::Trusted;
        let status = match &self.trusted {
            Trusted::Signed { key_name, .. } => {
                let age = match (&self.expires, &self.signed) {
                    (Some(expires), _) => format!("expires {expires}"),
                    (None, Some(signed)) => format!("signed {signed}, no expiry"),
                    (None, None) => "no expiry or signing time: its age is not bounded".to_owned(),
                };
                format!("verified: signed by trusted key `{key_name}`, {age}")
            }
            Trusted::NotConfigured if self.signature_present => {
                "NOT verified: it is signed, but no trusted key is configured, so the signature was not checked \
                 (list the publisher's key in the trust file, `--trust FILE`)"
                    .to_owned()
            }
            Trusted::NotConfigured => {
                "NOT verified: unsigned, and no trusted key is configured (plugins are pinned by sha256 only)"
                    .to_owned()
            }
        };
        format!("registry `{}` (serial {}): {status}", self.root.display(), self.serial)
    }

    /// Whether the index was verified against a trusted key.
    pub fn verified(&self) -> bool {
        matches!(self.trusted, backout_registry::Trusted::Signed { .. })
    }
}

/// Where a plugin's bytes came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PluginSource {
    Registry { name: String, version: String, registry: PathBuf },
    File { path: PathBuf },
}

/// One step, checked.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub id: String,
    pub description: Option<String>,
    /// `uses` as written.
    pub uses: String,
    pub source: PluginSource,
    /// sha256 of the bytes that were compiled.
    pub digest: Digest,
    pub size: u64,
    pub plugin: Plugin,
    pub info: PluginInfo,
    pub grants: Grants,
    pub limits: Limits,
    pub config: ConfigTemplate,
    pub preview: Preview,
    /// What this step's failure does, and whether it retries or always runs.
    pub policy: StepPolicy,
    /// How long the step usually takes (`expected`), if the runbook says.
    pub expected: Option<Duration>,
    /// Where each key of `with` is in the runbook: a run-time
    /// `invalid-config` is shown at its key, as `plan`'s is.
    pub with_keys: WithKeys,
}

impl PlannedStep {
    /// The longest this step can take going forward: every attempt up to
    /// its timeout, plus the waits between them.
    pub fn worst_case(&self) -> Duration {
        self.policy.retries.worst_case(self.limits.timeout)
    }
}

/// [`Plan::worst_case`] of these steps (also for `resolve`, before the plan exists).
pub fn worst_case(steps: &[PlannedStep]) -> Duration {
    steps.iter().map(PlannedStep::worst_case).sum()
}

/// [`Plan::expected`] of these steps.
pub fn expected(steps: &[PlannedStep]) -> Option<Duration> {
    let declared: Vec<Duration> = steps.iter().filter_map(|s| s.expected).collect();
    (!declared.is_empty()).then(|| declared.iter().sum())
}

/// What plan knows a step would do.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Preview {
    /// The plugin planned these actions.
    Actions { actions: Vec<Action> },
    /// The config uses outputs of earlier steps, so the plugin plans it
    /// (read-only, as always) right before it runs.
    Deferred { after: Vec<String> },
    /// Not planned ahead: the plan was made to undo or resume a run, when
    /// the world is no longer as it was before the run. A step that runs is
    /// planned right before it runs.
    Unplanned,
}

impl Preview {
    /// Whether the plugin must plan the config right before `run`.
    pub fn plans_when_it_runs(&self) -> bool {
        !matches!(self, Preview::Actions { .. })
    }
}

/// What a plan would change: its steps, counted by their actions' `effect`.
/// What `backout plan --detailed-exitcode` answers and what lets `backout
/// run` of a rollback already in place run nothing. Steps, not actions, are
/// counted: a step's actions describe one piece of work ("stop the service",
/// "wait until it is stopped"), and the operator thinks in steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Whether anything would change: a step with a `change` action, or a
    /// step whose actions are not known yet (nobody said it changes nothing).
    pub pending: bool,
    /// Steps with at least one action that changes something.
    pub change: usize,
    /// Steps that only look (every action a `check` or `in-place`, one a check).
    pub check: usize,
    /// Steps already as requested (every action `in-place`, or none at all).
    pub in_place: usize,
    /// Steps planned only when they run, whose actions are not known yet.
    pub unknown: usize,
}

impl Changes {
    /// The changes of steps' previews.
    pub fn of<'a>(previews: impl IntoIterator<Item = &'a Preview>) -> Self {
        let mut changes = Changes::default();
        for preview in previews {
            match preview {
                Preview::Actions { actions } => {
                    let has = |effect| actions.iter().any(|a| a.effect == effect);
                    if has(Effect::Change) {
                        changes.change += 1;
                    } else if has(Effect::Check) {
                        changes.check += 1;
                    } else {
                        changes.in_place += 1;
                    }
                }
                Preview::Deferred { .. } | Preview::Unplanned => changes.unknown += 1,
            }
        }
        changes.pending = changes.change > 0 || changes.unknown > 0;
        changes
    }
}

/// A step's `with` table as JSON, with `${...}` references still in place;
/// rendered once per use, in one pass (so `$$` escapes are applied once).
///
/// Every string that holds a reference is parsed once, when the plan is
/// made ([`ConfigTemplate::new`]); rendering (at plan time, before `run`,
/// and for `undo`) walks the parsed tree and never parses again.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigTemplate {
    pub raw: serde_json::Value,
    /// Steps whose outputs the config reads.
    pub needs_outputs_of: Vec<String>,
    /// Whether the config reads `${run.status}` or `${run.failed_step}`.
    pub needs_run: bool,
    #[serde(skip)]
    compiled: Arc<Compiled>,
}

/// `raw`, with its templated strings parsed.
#[derive(Debug)]
enum Compiled {
    Text(Template),
    Array(Vec<Compiled>),
    Object(Vec<(String, Compiled)>),
    /// A value with no reference in it: rendered as it is.
    Plain(serde_json::Value),
}

impl Compiled {
    fn new(value: &serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) if s.contains('$') => Compiled::Text(Template::parse(s)?),
            Value::Array(items) => Compiled::Array(items.iter().map(Compiled::new).collect::<Result<_, _>>()?),
            Value::Object(map) => Compiled::Object(
                map.iter().map(|(k, v)| Ok((k.clone(), Compiled::new(v)?))).collect::<Result<_, String>>()?,
            ),
            other => Compiled::Plain(other.clone()),
        })
    }

    fn render(&self, render: &dyn Fn(&Template) -> Result<String, String>) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match self {
            Compiled::Text(t) => Value::String(render(t)?),
            Compiled::Array(items) => Value::Array(items.iter().map(|c| c.render(render)).collect::<Result<_, _>>()?),
            Compiled::Object(entries) => Value::Object(
                entries.iter().map(|(k, c)| Ok((k.clone(), c.render(render)?))).collect::<Result<_, String>>()?,
            ),
            Compiled::Plain(v) => v.clone(),
        })
    }
}

impl ConfigTemplate {
    /// A config template from the `with` table as JSON; `Err` names the
    /// first string whose reference does not parse.
    pub fn new(raw: serde_json::Value, needs_outputs_of: Vec<String>, needs_run: bool) -> Result<Self, String> {
        let compiled = Arc::new(Compiled::new(&raw)?);
        Ok(Self { raw, needs_outputs_of, needs_run, compiled })
    }

    /// Substitutes every reference and returns the config as JSON text
    /// (`${run.…}` as in a run where nothing has failed).
    pub fn render(
        &self,
        vars: &BTreeMap<String, String>,
        outputs: &BTreeMap<String, serde_json::Value>,
    ) -> Result<String, String> {
        self.render_in_run(vars, outputs, &RunInfo::so_far_so_good())
    }

    /// [`ConfigTemplate::render`] with the run's state for `${run.…}`.
    pub fn render_in_run(
        &self,
        vars: &BTreeMap<String, String>,
        outputs: &BTreeMap<String, serde_json::Value>,
        run: &RunInfo,
    ) -> Result<String, String> {
        Ok(self.compiled.render(&|t: &Template| t.render_in_run(vars, outputs, run))?.to_string())
    }
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The longest the steps can take together, each to its last attempt's
    /// timeout (undoing them after a failure comes on top).
    pub fn worst_case(&self) -> Duration {
        worst_case(&self.steps)
    }

    /// What the plan would change, by its actions' effects.
    pub fn changes(&self) -> Changes {
        Changes::of(self.steps.iter().map(|s| &s.preview))
    }

    /// The steps' `expected` durations added up; `None` when no step declares one.
    pub fn expected(&self) -> Option<Duration> {
        expected(&self.steps)
    }

    /// Every step's granted secrets: masked in whatever any step says, since
    /// outputs flow from one step into the next.
    pub fn secrets(&self) -> Vec<String> {
        let mut all: Vec<String> = self.steps.iter().flat_map(|s| s.grants.secrets()).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_renders_references_and_keeps_everything_else() {
        let raw = serde_json::json!({
            "file": "${vars.dir}/.env",
            "set": { "A": "$${literal}", "n": 3, "list": ["x", "${vars.dir}"] },
            "on": true,
        });
        let config = ConfigTemplate::new(raw, vec![], false).unwrap();
        let vars = BTreeMap::from([("dir".to_string(), "/app".to_string())]);
        let rendered: serde_json::Value =
            serde_json::from_str(&config.render(&vars, &BTreeMap::new()).unwrap()).unwrap();
        assert_eq!(
            rendered,
            serde_json::json!({ "file": "/app/.env", "set": { "A": "${literal}", "n": 3, "list": ["x", "/app"] }, "on": true })
        );
        assert!(ConfigTemplate::new(serde_json::json!({ "x": "${nope" }), vec![], false).is_err());
    }

    fn actions(effects: &[Effect]) -> Preview {
        let actions =
            effects.iter().map(|&effect| Action { summary: format!("{effect:?}"), detail: None, effect }).collect();
        Preview::Actions { actions }
    }

    #[test]
    fn checks_and_what_is_in_place_are_no_change_and_an_unknown_step_is_one() {
        let calm = [actions(&[Effect::InPlace, Effect::Check]), actions(&[]), actions(&[Effect::InPlace])];
        let changes = Changes::of(&calm);
        assert_eq!(changes, Changes { pending: false, change: 0, check: 1, in_place: 2, unknown: 0 });

        let one = [actions(&[Effect::InPlace]), actions(&[Effect::Check, Effect::Change, Effect::Change])];
        assert_eq!(Changes::of(&one), Changes { pending: true, change: 1, check: 0, in_place: 1, unknown: 0 });

        let later = [actions(&[Effect::InPlace]), Preview::Deferred { after: vec!["copy".into()] }];
        assert_eq!(Changes::of(&later), Changes { pending: true, change: 0, check: 0, in_place: 1, unknown: 1 });
        assert!(Changes::of(&[Preview::Unplanned]).pending);
        assert!(!Changes::of(&[]).pending, "no steps, nothing to change");
    }
}
