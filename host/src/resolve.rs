//! Runbook → Plan: every check, before anything runs.
//!
//! For each step, in order: its id, limits and grants are typed; its plugin
//! is found, its bytes read once, hashed and compared with every pin, and
//! those same bytes compiled; the plugin describes itself and its needs are
//! compared with the grants; every `${...}` reference is checked; and the
//! plugin's own `plan` checks the config with every directory mounted
//! read-only. Problems are collected, never short-circuited, so one pass
//! reports them all. Nothing here writes anywhere.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backout_registry::{AcceptedSerials, Digest, Registry, TrustStore, Trusted, VersionReq};
use toml::Spanned;

use crate::capability::{self, Grants};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::lockfile::{Drift, Lockfile};
use crate::plan::{ConfigTemplate, Plan, PlannedStep, PluginSource, Preview, RegistryTrust};
use crate::policy::{MAX_ATTEMPTS, MAX_WAIT, OnFailure, Retries, StepPolicy};
use crate::quantity::{format_duration, parse_duration, parse_size};
use crate::runbook::{Parsed, StepDef};
use crate::runtime::host_api::Observer;
use crate::runtime::limits::{Limits, MAX_MEMORY};
use crate::runtime::{CallContext, Plugin, PluginInfo, Runtime};
use crate::template::{PluginNamespace, Segment, Template};

/// Reads a host environment variable by name.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What resolution is about to do, told to [`Options::stages`] so that a
/// display can say it: loading a plugin the compile cache does not hold
/// means compiling it, which takes seconds for a large one (sqlite-restore).
/// Said once per step and stage, in step order; nothing is said for a plugin
/// another step already loaded.
#[derive(Debug, Clone, Copy)]
pub enum Stage<'a> {
    /// About to verify the bytes of `uses` for `step`, compile them (or load
    /// them from the compile cache) and ask the plugin to describe itself.
    Loading { step: &'a str, uses: &'a str },
    /// About to ask the plugin of `step` to plan its config (read-only).
    Planning { step: &'a str },
}

/// Hears each [`Stage`] as resolution enters it. Called on the resolving
/// thread, before the work it announces; keep it quick.
pub type StageObserver = Arc<dyn Fn(Stage<'_>) + Send + Sync>;

/// What resolution needs besides the runbook.
pub struct Options {
    /// The registry directory `name@version` plugins come from.
    pub registry: PathBuf,
    /// `--var key=value` overrides, in the order given.
    pub var_overrides: Vec<(String, String)>,
    /// Reads a host environment variable (the process environment outside tests).
    pub env: EnvLookup,
    /// Receives what plugins log while they describe and plan.
    pub observer: Observer,
    /// Hears which plugin is being loaded or asked to plan (the CLI's live
    /// view); [`Options::new`] gives one that ignores everything.
    pub stages: StageObserver,
    /// The runbook's lock, when it has one: plugins must be exactly these.
    pub lock: Option<Lockfile>,
    /// Publisher keys this host trusts (empty: the registry is trusted as it is on disk).
    pub trust: TrustStore,
    /// The highest registry serial this host has accepted, per publisher key.
    pub accepted: AcceptedSerials,
    /// Whether each plugin plans its config now. `backout undo` and
    /// `resume` say no: after a run the world no longer looks as it did
    /// before it, and a step that runs again is planned right before it runs.
    pub plan_steps: bool,
}

impl Options {
    /// Options for the registry at `registry` with no lock, no trusted keys,
    /// no environment and a quiet observer (tests and benchmarks).
    pub fn new(registry: PathBuf) -> Self {
        Self {
            registry,
            var_overrides: Vec::new(),
            env: Box::new(|_| None),
            observer: crate::runtime::host_api::quiet(),
            stages: Arc::new(|_| {}),
            lock: None,
            trust: TrustStore::default(),
            accepted: AcceptedSerials::default(),
            plan_steps: true,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("registry", &self.registry).finish_non_exhaustive()
    }
}

/// Checks a parsed runbook and builds its plan, or reports every problem.
/// Warnings travel in the plan (or with the errors).
pub async fn resolve(parsed: &Parsed, runtime: &Runtime, options: &Options) -> Result<Plan, Diagnostics> {
    let mut planner = Planner {
        parsed,
        runtime,
        options,
        problems: Vec::new(),
        registry: None,
        loaded: HashMap::new(),
        secrets: Arc::default(),
    };
    planner.secrets = planner.run_secrets();
    let vars = planner.vars();
    let on_failure = planner.runbook_on_failure();
    if let Some(lock) = &options.lock {
        let ids: Vec<String> = parsed.runbook.steps.iter().map(|s| s.id.get_ref().clone()).collect();
        for drift in lock.removed_steps(&ids) {
            planner.problems.push(drift_diagnostic(&drift, parsed, None));
        }
    }
    let mut steps = Vec::new();
    let mut earlier: Vec<String> = Vec::new();
    for def in &parsed.runbook.steps {
        if let Some(step) = planner.step(def, &vars, &earlier, on_failure).await {
            steps.push(step);
        }
        earlier.push(def.id.get_ref().clone());
    }
    if parsed.runbook.steps.is_empty() {
        planner.problems.push(
            Diagnostic::error("the runbook has no steps")
                .at(parsed.locate(&parsed.runbook.name.span()))
                .hint("add a `[[step]]` table with `id` and `uses`"),
        );
    }
    let rto = planner.rto();
    if let Some(rto) = rto {
        planner.check_rto(rto, &steps);
    }
    let diagnostics = Diagnostics(planner.problems);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let registry_trust = planner.registry.and_then(|r| r.ok()).map(|(registry, trusted)| RegistryTrust {
        root: registry.root().to_path_buf(),
        serial: registry.serial(),
        signature_present: registry.has_signature(),
        expires: registry.expires().map(str::to_owned),
        signed: registry.signed().map(str::to_owned),
        trusted,
    });
    Ok(Plan {
        name: parsed.runbook.name.get_ref().clone(),
        description: parsed.runbook.description.clone(),
        path: parsed.source.path.clone(),
        digest: Digest::of(parsed.source.text.as_bytes()),
        vars,
        overrides: options.var_overrides.clone(),
        on_failure,
        steps,
        warnings: diagnostics.0,
        locked: options.lock.is_some(),
        registry_trust,
        rto,
    })
}

/// Checks one runbook into a [`Plan`]: collects every problem instead of
/// stopping at the first, and loads each plugin once.
struct Planner<'a> {
    parsed: &'a Parsed,
    runtime: &'a Runtime,
    options: &'a Options,
    problems: Vec<Diagnostic>,
    /// Opened (and its signature checked) on first use; `Err` remembers why
    /// it could not be.
    registry: Option<Result<(Registry, Trusted), String>>,
    /// Plugins already loaded in this pass, by digest: a plugin used by
    /// several steps is read, hashed and compiled once.
    loaded: HashMap<Digest, (Plugin, PluginInfo)>,
    /// Every step's granted values: masked in all any plugin says.
    secrets: Arc<Vec<String>>,
}

impl Planner<'_> {
    fn at(&self, span: &Range<usize>) -> Location {
        self.parsed.locate(span)
    }

    fn error(&mut self, step: &str, message: impl Into<String>, span: &Range<usize>) -> &mut Diagnostic {
        let d = Diagnostic::error(message).in_step(step).at(self.at(span));
        self.problems.push(d);
        self.problems.last_mut().expect("just pushed")
    }

    /// `[vars]` with `--var` overrides applied; an override of an undeclared
    /// var is an error (a typo must not be silently ignored).
    fn vars(&mut self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> =
            self.parsed.runbook.vars.iter().map(|(k, v)| (k.clone(), v.get_ref().clone())).collect();
        for (key, value) in &self.options.var_overrides {
            if vars.contains_key(key) {
                vars.insert(key.clone(), value.clone());
            } else {
                let known = vars.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                self.problems.push(
                    Diagnostic::error(format!("`--var {key}=…` overrides a var the runbook does not declare")).hint(
                        if known.is_empty() {
                            "the runbook has no `[vars]`; declare it there with a default".to_string()
                        } else {
                            format!("declared vars: {known}")
                        },
                    ),
                );
            }
        }
        vars
    }

    /// The runbook's `on_failure`, [`OnFailure::Undo`] when it says nothing.
    fn runbook_on_failure(&mut self) -> OnFailure {
        let Some(word) = &self.parsed.runbook.on_failure else { return OnFailure::default() };
        OnFailure::parse(word.get_ref()).unwrap_or_else(|| {
            let d = Diagnostic::error(format!("unknown `on_failure = \"{}\"`", word.get_ref()))
                .at(self.at(&word.span()))
                .hint("use `undo` (the default: put back what completed), `abort` (stop, keep changes) or `continue`");
            self.problems.push(d);
            OnFailure::default()
        })
    }

    async fn step(
        &mut self,
        def: &StepDef,
        vars: &BTreeMap<String, String>,
        earlier: &[String],
        on_failure: OnFailure,
    ) -> Option<PlannedStep> {
        let id = def.id.get_ref().clone();
        let before = self.problems.len();
        self.check_id(def, earlier);
        let limits = self.limits(def);
        let grants = self.grants(def, vars);
        let config = self.config(def, vars, earlier);
        let policy = self.policy(def, on_failure, config.as_ref(), limits);
        let expected = self.expected(def, limits);
        let source = self.source(def).await;
        let errors_here = self.problems[before..].iter().any(|d| d.severity == crate::diagnostic::Severity::Error);
        let (plugin_source, digest, size, plugin, info) = source?;
        if errors_here {
            return None;
        }
        let (limits, grants, config, policy, expected) = (limits?, grants?, config?, policy?, expected?);
        self.check_needs(&id, def, &info, &grants);
        let ctx = CallContext::new(&id, &grants, limits, self.options.observer.clone()).secrets(self.secrets.clone());
        let preview = if !self.options.plan_steps {
            Preview::Unplanned
        } else if config.needs_outputs_of.is_empty() {
            let rendered = match config.render(vars, &BTreeMap::new()) {
                Ok(r) => r,
                Err(e) => {
                    self.error(&id, e, &with_span(def));
                    return None;
                }
            };
            (self.options.stages)(Stage::Planning { step: &id });
            let called = plugin.plan(&ctx, &rendered).await;
            match called.result {
                Ok(actions) => Preview::Actions { actions },
                Err(failure) => {
                    self.error(&id, format!("plan refused: {failure}"), &with_span(def)).hint = Some(format!(
                        "`{}` checks the `with` table; see `backout inspect {}`",
                        info.name,
                        def.uses.get_ref()
                    ));
                    return None;
                }
            }
        } else {
            Preview::Deferred { after: config.needs_outputs_of.clone() }
        };
        Some(PlannedStep {
            id,
            description: def.description.clone(),
            uses: def.uses.get_ref().clone(),
            source: plugin_source,
            digest,
            size,
            plugin,
            info,
            grants,
            limits,
            config,
            preview,
            policy,
            expected,
        })
    }

    /// The step's `expected` duration; longer than its `timeout` is an
    /// error (the step would be stopped before it is expected to finish).
    /// `Some(None)`: not declared.
    fn expected(&mut self, def: &StepDef, limits: Option<Limits>) -> Option<Option<Duration>> {
        let Some(text) = &def.expected else { return Some(None) };
        let id = def.id.get_ref().clone();
        match parse_duration(text.get_ref()) {
            Ok(d) => {
                if let Some(limits) = limits
                    && d > limits.timeout
                {
                    self.error(
                        &id,
                        format!(
                            "`expected = \"{}\"` is longer than the step's timeout, {}: it would be stopped \
                             before it is expected to finish",
                            text.get_ref(),
                            format_duration(limits.timeout)
                        ),
                        &text.span(),
                    )
                    .hint = Some("raise the step's `timeout`, or lower `expected`".into());
                    return None;
                }
                Some(Some(d))
            }
            Err(e) => {
                self.error(&id, format!("bad `expected`: {e}"), &text.span());
                None
            }
        }
    }

    /// Warns when the steps' timeouts alone could exceed the RTO, and more
    /// loudly when even their `expected` durations do.
    fn check_rto(&mut self, rto: Duration, steps: &[PlannedStep]) {
        let Some(span) = self.parsed.runbook.rto.as_ref().map(Spanned::span) else { return };
        let worst = crate::plan::worst_case(steps);
        if let Some(expected) = crate::plan::expected(steps).filter(|e| *e > rto) {
            self.problems.push(
                Diagnostic::warning(format!(
                    "the steps' `expected` durations add up to {}, more than the RTO of {}: \
                     this runbook is expected to miss it",
                    format_duration(expected),
                    format_duration(rto)
                ))
                .at(self.at(&span))
                .hint("make the slow steps faster, or agree on a longer `rto`"),
            );
        } else if worst > rto {
            self.problems.push(
                Diagnostic::warning(format!(
                    "the steps' timeouts add up to {} (with retries), more than the RTO of {}: \
                     a run that uses its timeouts would miss it",
                    format_duration(worst),
                    format_duration(rto)
                ))
                .at(self.at(&span))
                .hint("lower the steps' `timeout`s to what each may really take, or raise `rto`"),
            );
        }
    }

    /// The runbook's `rto`, if it declares one.
    fn rto(&mut self) -> Option<Duration> {
        let text = self.parsed.runbook.rto.as_ref()?;
        match parse_duration(text.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problems.push(Diagnostic::error(format!("bad `rto`: {e}")).at(self.at(&text.span())));
                None
            }
        }
    }

    /// The step's failure policy, typed; every impossible combination is
    /// an error here, before anything runs.
    fn policy(
        &mut self,
        def: &StepDef,
        runbook: OnFailure,
        config: Option<&ConfigTemplate>,
        limits: Option<Limits>,
    ) -> Option<StepPolicy> {
        let id = def.id.get_ref().clone();
        let mut ok = true;
        let mut policy = StepPolicy { on_failure: runbook, ..StepPolicy::default() };
        if let Some(word) = &def.on_failure {
            match OnFailure::parse(word.get_ref()) {
                Some(p) => policy.on_failure = p,
                None => {
                    self.error(&id, format!("unknown `on_failure = \"{}\"`", word.get_ref()), &word.span()).hint =
                        Some("use `undo`, `abort` or `continue`".into());
                    ok = false;
                }
            }
        }
        if let Some(critical) = &def.critical {
            policy.critical = *critical.get_ref();
            if !policy.critical
                && let Some(word) = &def.on_failure
            {
                self.error(&id, "a step that may fail (`critical = false`) never applies `on_failure`", &word.span())
                    .hint = Some("remove `on_failure` from this step, or make it critical".into());
                ok = false;
            }
        }
        if let Some(always) = &def.always {
            policy.always = *always.get_ref();
        }
        if let Some(config) = config {
            let span = with_span(def);
            if policy.always && !config.needs_outputs_of.is_empty() {
                let steps = config.needs_outputs_of.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
                self.error(
                    &id,
                    format!("`always = true` runs this step even if {steps} did not complete, but its config uses outputs of {steps}"),
                    &span,
                )
                .hint = Some("an `always` step can report the run with `${run.status}` and `${run.failed_step}`".into());
                ok = false;
            }
            if !policy.always && config.needs_run {
                self.error(&id, "`${run.…}` is only for steps with `always = true`", &span).hint = Some(
                    "other steps run only while everything succeeds, so `${run.status}` would always be `succeeded`"
                        .into(),
                );
                ok = false;
            }
        }
        if let Some(retries) = &def.retries {
            match self.retries(&id, retries.get_ref()) {
                Some(r) => {
                    policy.retries = r;
                    if let Some(limits) = limits {
                        let worst = r.worst_case(limits.timeout);
                        if worst > std::time::Duration::from_secs(3600) {
                            self.problems.push(
                                Diagnostic::warning(format!(
                                    "with its retries this step can take up to {} ({} attempts of up to {} each, \
                                     plus {} of waits)",
                                    format_duration(worst),
                                    r.attempts,
                                    format_duration(limits.timeout),
                                    format_duration(r.total_wait())
                                ))
                                .in_step(&id)
                                .at(self.at(&retries.span())),
                            );
                        }
                    }
                }
                None => ok = false,
            }
        }
        ok.then_some(policy)
    }

    fn retries(&mut self, id: &str, def: &crate::runbook::RetriesDef) -> Option<Retries> {
        let mut r = Retries::default();
        let mut ok = true;
        let attempts = *def.attempts.get_ref();
        if !(1..=i64::from(MAX_ATTEMPTS)).contains(&attempts) {
            self.error(id, format!("`attempts = {attempts}` must be from 1 to {MAX_ATTEMPTS}"), &def.attempts.span())
                .hint = Some("`attempts` counts every try, the first included".into());
            ok = false;
        } else {
            r.attempts = attempts as u32;
            if attempts == 1 {
                self.problems.push(
                    Diagnostic::warning("`retries` with `attempts = 1` never retries")
                        .in_step(id)
                        .at(self.at(&def.attempts.span())),
                );
            }
        }
        if let Some(interval) = &def.interval {
            match parse_duration(interval.get_ref()) {
                Ok(d) if d > MAX_WAIT => {
                    self.error(
                        id,
                        format!(
                            "`interval = \"{}\"` is longer than the longest wait, {}",
                            interval.get_ref(),
                            format_duration(MAX_WAIT)
                        ),
                        &interval.span(),
                    );
                    ok = false;
                }
                Ok(d) => r.interval = d,
                Err(e) => {
                    self.error(id, format!("bad `interval`: {e}"), &interval.span());
                    ok = false;
                }
            }
        }
        if let Some(backoff) = &def.backoff {
            let b = *backoff.get_ref();
            if !(1.0..=10.0).contains(&b) {
                self.error(id, format!("`backoff = {b}` must be from 1 (waits stay the same) to 10"), &backoff.span());
                ok = false;
            } else {
                r.backoff = b;
            }
        }
        ok.then_some(r)
    }

    fn check_id(&mut self, def: &StepDef, earlier: &[String]) {
        let id = def.id.get_ref();
        let valid = id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && id.len() <= 64;
        if !valid {
            self.error(id, format!("step id `{id}` is not valid"), &def.id.span()).hint =
                Some("use lowercase letters, digits, `-` and `_` (at most 64), starting with a letter or digit".into());
        }
        if earlier.contains(id) {
            self.error(id, format!("step id `{id}` is used twice"), &def.id.span());
        }
    }

    fn limits(&mut self, def: &StepDef) -> Option<Limits> {
        let id = def.id.get_ref().clone();
        let mut limits = Limits::default();
        let mut ok = true;
        if let Some(t) = &def.timeout {
            match parse_duration(t.get_ref()) {
                Ok(d) => limits.timeout = d,
                Err(e) => {
                    self.error(&id, format!("bad `timeout`: {e}"), &t.span());
                    ok = false;
                }
            }
        }
        if let Some(m) = &def.memory {
            match parse_size(m.get_ref()) {
                Ok(bytes) if bytes > MAX_MEMORY => {
                    self.error(
                        &id,
                        format!("`memory = \"{}\"` is more than a plugin can address (4GiB)", m.get_ref()),
                        &m.span(),
                    );
                    ok = false;
                }
                Ok(bytes) => limits.memory = bytes,
                Err(e) => {
                    self.error(&id, format!("bad `memory`: {e}"), &m.span());
                    ok = false;
                }
            }
        }
        if let Some(m) = &def.max_received {
            match parse_size(m.get_ref()) {
                Ok(bytes) => limits.max_received = bytes,
                Err(e) => {
                    self.error(&id, format!("bad `max_received`: {e}"), &m.span());
                    ok = false;
                }
            }
        }
        ok.then_some(limits)
    }

    fn grants(&mut self, def: &StepDef, vars: &BTreeMap<String, String>) -> Option<Grants> {
        let id = def.id.get_ref();
        let mut problems = Vec::new();
        let cx = capability::CheckCx { vars, env: &*self.options.env, parsed: self.parsed };
        let grants = Grants::check(def.grants.as_ref().map(Spanned::get_ref), &cx, &mut problems);
        let ok = problems.is_empty();
        self.problems.extend(problems.into_iter().map(|d| d.in_step(id)));
        ok.then_some(grants)
    }

    /// Every value any step is granted, read before any plugin is called, so
    /// whatever any plugin says is masked for all of them (outputs flow on).
    fn run_secrets(&self) -> Arc<Vec<String>> {
        let mut secrets: Vec<String> = self
            .parsed
            .runbook
            .steps
            .iter()
            .filter_map(|def| def.grants.as_ref())
            .flat_map(|g| g.get_ref().env.iter())
            .filter_map(|name| (self.options.env)(name.get_ref()))
            .collect();
        secrets.sort();
        secrets.dedup();
        Arc::new(secrets)
    }

    /// The `with` table as JSON, every reference in it checked.
    fn config(&mut self, def: &StepDef, vars: &BTreeMap<String, String>, earlier: &[String]) -> Option<ConfigTemplate> {
        let id = def.id.get_ref().clone();
        let Some(with) = &def.with else {
            return ConfigTemplate::new(serde_json::Value::Object(Default::default()), vec![], false).ok();
        };
        let raw = toml_to_json(&toml::Value::Table(with.get_ref().clone()));
        let mut strings = Vec::new();
        collect_strings(&raw, &mut strings);
        let mut needs_outputs_of: Vec<String> = Vec::new();
        let mut needs_run = false;
        let mut ok = true;
        for text in strings {
            let span = self.span_of_text(&with.span(), &text);
            let template = match Template::parse(&text) {
                Ok(t) => t,
                Err(e) => {
                    self.error(&id, e, &span);
                    ok = false;
                    continue;
                }
            };
            needs_run |= template.needs_run();
            for reference in template.references() {
                match reference {
                    Segment::Var { name, raw } if !vars.contains_key(name) => {
                        let span = self.span_of_text(&with.span(), raw);
                        let known = vars.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                        self.error(&id, format!("unknown var `{name}` in `{raw}`"), &span).hint =
                            Some(if known.is_empty() {
                                "declare it in `[vars]`".into()
                            } else {
                                format!("declared vars: {known}")
                            });
                        ok = false;
                    }
                    Segment::Plugin { namespace: PluginNamespace::Env, name, raw }
                        if !def
                            .grants
                            .as_ref()
                            .is_some_and(|g| g.get_ref().env.iter().any(|e| e.get_ref() == name)) =>
                    {
                        let span = self.span_of_text(&with.span(), raw);
                        self.error(
                            &id,
                            format!("`{raw}` reads environment variable `{name}`, which the step does not grant"),
                            &span,
                        )
                        .hint = Some(format!("add `env = [\"{name}\"]` to `[step.grants]`"));
                        ok = false;
                    }
                    Segment::StepOutput { step, raw, .. } => {
                        let span = self.span_of_text(&with.span(), raw);
                        if step == &id {
                            self.error(&id, format!("`{raw}` refers to this step's own outputs"), &span);
                            ok = false;
                        } else if earlier.contains(step) {
                            if !needs_outputs_of.contains(step) {
                                needs_outputs_of.push(step.clone());
                            }
                        } else if self.parsed.runbook.steps.iter().any(|s| s.id.get_ref() == step) {
                            self.error(&id, format!("`{raw}` refers to step `{step}`, which runs later"), &span).hint =
                                Some("a step can use outputs only of steps above it".into());
                            ok = false;
                        } else {
                            let known = earlier.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                            self.error(&id, format!("`{raw}` refers to unknown step `{step}`"), &span).hint =
                                Some(if known.is_empty() {
                                    "no step runs before this one".into()
                                } else {
                                    format!("steps before this one: {known}")
                                });
                            ok = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        if !ok {
            return None;
        }
        // Every string parsed above: this cannot fail, but say so if it does.
        ConfigTemplate::new(raw, needs_outputs_of, needs_run).map_err(|e| self.error(&id, e, &with.span())).ok()
    }

    /// The span of `text` inside a larger span, for pointing at a reference
    /// inside a `with` table (TOML values inside tables carry no spans).
    fn span_of_text(&self, outer: &Range<usize>, text: &str) -> Range<usize> {
        let source = &self.parsed.source.text;
        let region = source.get(outer.clone()).unwrap_or("");
        match region.find(text) {
            Some(i) => outer.start + i..outer.start + i + text.len(),
            None => outer.clone(),
        }
    }

    /// Finds the plugin's bytes, checks them against every pin, compiles
    /// them and asks the plugin to describe itself.
    async fn source(&mut self, def: &StepDef) -> Option<(PluginSource, Digest, u64, Plugin, PluginInfo)> {
        let id = def.id.get_ref().clone();
        let uses = def.uses.get_ref();
        let pin = match &def.sha256 {
            None => None,
            Some(p) => match p.get_ref().parse::<Digest>() {
                Ok(d) => Some((d, p.span())),
                Err(e) => {
                    self.error(&id, format!("bad `sha256` pin: {e}"), &p.span()).hint = Some(
                        "write the 64 hex digits of the plugin's sha256, optionally prefixed with `sha256:`".into(),
                    );
                    return None;
                }
            },
        };
        let (origin, bytes) = if looks_like_path(uses) {
            let path = self.relative_to_runbook(uses);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.error(&id, format!("failed to read plugin `{}`: {e}", path.display()), &def.uses.span());
                    return None;
                }
            };
            if pin.is_none() {
                self.error(&id, format!("plugin file `{uses}` is not pinned"), &def.uses.span()).hint = Some(format!(
                    "a plugin loaded from a file needs `sha256 = \"…\"`; after checking where it came from, pin `{}`",
                    Digest::of(&bytes)
                ));
                return None;
            }
            if let Ok(Some(l)) = self.locked_step(def) {
                let found = Digest::of(&bytes);
                if l.digest != found {
                    let drift =
                        Drift::DigestChanged { step: id.clone(), plugin: uses.clone(), locked: l.digest, found };
                    self.problems.push(drift_diagnostic(&drift, self.parsed, Some(def)));
                    return None;
                }
            }
            (PluginSource::File { path }, bytes)
        } else {
            let (name, requirement) = match parse_name_requirement(uses) {
                Ok(nr) => nr,
                Err(e) => {
                    self.error(&id, e, &def.uses.span()).hint =
                        Some("write `name@version` (or a range such as `name@^1.2`) for a registry plugin, or a path ending in `.wasm`".into());
                    return None;
                }
            };
            let locked = match self.locked_step(def) {
                Ok(l) => l,
                Err(()) => return None,
            };
            let parsed = self.parsed;
            let registry = match self.registry() {
                Ok(r) => r,
                Err(e) => {
                    self.error(&id, e, &def.uses.span()).hint = Some(
                        "add plugins with `backout registry add FILE`, or point `--registry` / `BACKOUT_REGISTRY` at a registry".into(),
                    );
                    return None;
                }
            };
            let found: Result<_, Diagnostic> = match &locked {
                // With a lock, exactly the locked version, whatever else the registry holds.
                Some(l) => {
                    let version = l.version.clone().unwrap_or_default();
                    registry.find(&name, &version).cloned().ok_or_else(|| {
                        let drift = Drift::VersionMissing { step: id.clone(), name: name.clone(), version };
                        drift_diagnostic(&drift, parsed, Some(def))
                    })
                }
                None => registry
                    .resolve(&name, &requirement)
                    .cloned()
                    .map_err(|e| Diagnostic::error(e.to_string()).in_step(&id).at(parsed.locate(&def.uses.span()))),
            };
            let entry = match found {
                Ok(entry) => entry,
                Err(diagnostic) => {
                    self.problems.push(diagnostic);
                    return None;
                }
            };
            if let Some(l) = &locked
                && l.digest != entry.digest
            {
                let drift = Drift::DigestChanged {
                    step: id.clone(),
                    plugin: format!("{}@{}", entry.name, entry.version),
                    locked: l.digest,
                    found: entry.digest,
                };
                self.problems.push(drift_diagnostic(&drift, self.parsed, Some(def)));
                return None;
            }
            let (name, version) = (entry.name.clone(), entry.version.clone());
            // The registry's index is the first pin: read_verified hashes the blob
            // and returns it only if it matches the index.
            let bytes = match registry.read_verified(&entry.digest) {
                Ok(b) => b,
                Err(e) => {
                    self.error(&id, format!("plugin `{name}@{version}` failed verification: {e}"), &def.uses.span());
                    return None;
                }
            };
            (PluginSource::Registry { name, version, registry: registry.root().to_path_buf() }, bytes)
        };
        let digest = Digest::of(&bytes);
        if let Some((expected, span)) = pin
            && expected != digest
        {
            self.error(
                &id,
                format!("plugin `{uses}` does not match its `sha256` pin: expected `{expected}`, computed `{digest}`"),
                &span,
            )
            .hint = Some("the plugin's bytes changed since the runbook was pinned; nothing was compiled or run".into());
            return None;
        }
        if let Some((plugin, info)) = self.loaded.get(&digest) {
            return Some((origin, digest, bytes.len() as u64, plugin.clone(), info.clone()));
        }
        (self.options.stages)(Stage::Loading { step: &id, uses });
        let plugin = match self.runtime.load_verified(&digest, &bytes) {
            Ok(p) => p,
            Err(e) => {
                self.error(&id, format!("plugin `{uses}` cannot be used: {e}"), &def.uses.span());
                return None;
            }
        };
        let grants = Grants::default();
        let ctx = CallContext::new(&id, &grants, Limits::default(), self.options.observer.clone())
            .secrets(self.secrets.clone());
        let info = match plugin.describe(&ctx).await.result {
            Ok(info) => info,
            Err(failure) => {
                self.error(&id, format!("plugin `{uses}` failed to describe itself: {failure}"), &def.uses.span());
                return None;
            }
        };
        if let PluginSource::Registry { name, version, .. } = &origin
            && (&info.name != name || &info.version != version)
        {
            self.problems.push(
                Diagnostic::warning(format!(
                    "registry entry `{name}@{version}` holds a plugin that calls itself `{}@{}`",
                    info.name, info.version
                ))
                .in_step(&id)
                .at(self.at(&def.uses.span())),
            );
        }
        self.loaded.insert(digest, (plugin.clone(), info.clone()));
        Some((origin, digest, bytes.len() as u64, plugin, info))
    }

    fn registry(&mut self) -> Result<&Registry, String> {
        let options = self.options;
        let opened = self.registry.get_or_insert_with(|| {
            open_trusted(&options.registry, &options.trust, &options.accepted).map_err(|e| e.to_string())
        });
        opened.as_ref().map(|(r, _)| r).map_err(|e| e.clone())
    }

    /// The lock's entry for this step (`Ok(None)` without a lock); drift in
    /// the step's presence or `uses` is reported and gives `Err`.
    fn locked_step(&mut self, def: &StepDef) -> Result<Option<crate::lockfile::LockedStep>, ()> {
        let Some(lock) = &self.options.lock else { return Ok(None) };
        let id = def.id.get_ref();
        let drift = match lock.step(id) {
            None => Drift::StepNotLocked { step: id.clone() },
            Some(l) if &l.uses != def.uses.get_ref() => {
                Drift::UsesChanged { step: id.clone(), locked: l.uses.clone(), found: def.uses.get_ref().clone() }
            }
            Some(l) => return Ok(Some(l.clone())),
        };
        self.problems.push(drift_diagnostic(&drift, self.parsed, Some(def)));
        Err(())
    }

    fn relative_to_runbook(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        self.parsed.source.path.parent().map(|dir| dir.join(path)).unwrap_or_else(|| path.to_path_buf())
    }

    /// A need that is not granted is an error; a grant that is not needed is
    /// a warning (least privilege: the runbook should grant no more than needed).
    fn check_needs(&mut self, id: &str, def: &StepDef, info: &PluginInfo, grants: &Grants) {
        let at = def.grants.as_ref().map(|g| g.span()).unwrap_or_else(|| def.uses.span());
        for finding in grants.match_needs(&info.name, &info.needs) {
            let diagnostic = match finding {
                capability::Finding::Missing { message, hint } => Diagnostic::error(message).hint(hint),
                capability::Finding::Unneeded { message } => Diagnostic::warning(message),
            };
            self.problems.push(diagnostic.in_step(id).at(self.at(&at)));
        }
    }
}

/// Opens the registry and applies the signature policy: with any trusted
/// key, the index must be signed by one of them, not expired (or too old),
/// and not older than the serial this host last accepted for this registry;
/// with `require_signed`, an index that cannot be verified is refused.
pub fn open_trusted(
    root: &Path,
    trust: &TrustStore,
    accepted: &AcceptedSerials,
) -> Result<(Registry, Trusted), backout_registry::Error> {
    let registry = Registry::open(root)?;
    let now = std::time::SystemTime::now();
    // The signing key is known only once the signature verifies; then the
    // serial is checked against what this host accepted for this registry
    // (or, from an older state file, from that key).
    let trusted = match registry.check_trust(trust, None, now)? {
        Trusted::Signed { key, .. } => registry.check_trust(trust, accepted.floor(registry.root(), &key), now)?,
        other => other,
    };
    Ok((registry, trusted))
}

/// A lock drift as a diagnostic at the step's `uses` (or without a place,
/// for steps only the lock has).
fn drift_diagnostic(drift: &Drift, parsed: &Parsed, def: Option<&StepDef>) -> Diagnostic {
    let d = Diagnostic::error(format!("the lock does not match: {drift}"))
        .hint("review the change, then refresh the lock with `backout lock --update`");
    match def {
        Some(def) => d.in_step(def.id.get_ref()).at(parsed.locate(&def.uses.span())),
        None => d,
    }
}

fn with_span(def: &StepDef) -> Range<usize> {
    def.with.as_ref().map(Spanned::span).unwrap_or_else(|| def.uses.span())
}

/// `uses` names a file when it ends in `.wasm` or contains a path separator.
fn looks_like_path(uses: &str) -> bool {
    uses.ends_with(".wasm") || uses.contains('/')
}

/// `name@REQ`: a registry name and a version requirement (`1.2.3` exactly,
/// `^1.2`, `~1.2`, `1`, `*`; see the README).
pub fn parse_name_requirement(uses: &str) -> Result<(String, VersionReq), String> {
    let (name, requirement) = uses.split_once('@').ok_or_else(|| format!("`{uses}` names no version"))?;
    backout_registry::validate_name(name).map_err(|e| e.to_string())?;
    let requirement = requirement.parse::<VersionReq>().map_err(|e| e.to_string())?;
    Ok((name.to_string(), requirement))
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.contains('$') => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_is_a_path_or_name_at_version() {
        assert!(looks_like_path("./p.wasm") && looks_like_path("/x/y") && !looks_like_path("env-toggle@0.1.0"));
        let (name, req) = parse_name_requirement("env-toggle@^0.1").unwrap();
        assert_eq!((name.as_str(), req.to_string().as_str()), ("env-toggle", "^0.1"));
        assert!(parse_name_requirement("env-toggle").unwrap_err().contains("names no version"));
        assert!(parse_name_requirement("Env@0.1.0").is_err());
        assert!(parse_name_requirement("env-toggle@not-a-version").is_err());
    }

    #[test]
    fn toml_values_become_json() {
        let v: toml::Value = toml::from_str("a = 1\nb = [true, \"x\"]\n[c]\nd = 1.5").unwrap();
        assert_eq!(toml_to_json(&v), serde_json::json!({"a": 1, "b": [true, "x"], "c": {"d": 1.5}}));
    }
}
