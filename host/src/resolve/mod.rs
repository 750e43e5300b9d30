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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backout_registry::{AcceptedSerials, Digest, Registry, TrustStore, Trusted};
use toml::Spanned;

mod config;
mod needs;
mod source;

pub use source::{PluginRef, open_trusted, parse_name_requirement};

use crate::capability::{self, Grants};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::lockfile::{Drift, Lockfile};
use crate::plan::{ConfigTemplate, Plan, PlannedStep, Preview, RegistryTrust};
use crate::policy::{MAX_ATTEMPTS, MAX_WAIT, OnFailure, Retries, StepPolicy};
use crate::quantity::{format_duration, parse_duration, parse_size};
use crate::runbook::{Parsed, StepDef};
use crate::runtime::host_api::Observer;
use crate::runtime::limits::{Limits, MAX_MEMORY};
use crate::runtime::{CallContext, Plugin, PluginInfo, Runtime};
use crate::with_keys::WithKeys;

/// How long before a signed index expires `plan` starts warning about it.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 86_400);

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
    if let Some(warning) = planner.expiry_warning(std::time::SystemTime::now()) {
        planner.problems.push(warning);
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
    registry: Option<Result<(Registry, Trusted), source::Refusal>>,
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
        self.check_host_paths(def, vars, &grants);
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
                    self.plan_refused(def, &failure, &info.name);
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
            with_keys: self.with_keys(def),
        })
    }

    /// Where each key of `def`'s `with` table is in the runbook.
    fn with_keys(&self, def: &StepDef) -> WithKeys {
        let index = self.parsed.runbook.steps.iter().position(|d| std::ptr::eq(d, def));
        index.map(|i| WithKeys::of(self.parsed, i)).unwrap_or_default()
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
                                    "with its retries this step can take up to {} ({} of up to {} each, \
                                     plus {} of waits)",
                                    format_duration(worst),
                                    crate::text::count(r.attempts as usize, "attempt"),
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
        let cx = capability::CheckCx {
            vars,
            overrides: &self.options.var_overrides,
            env: &*self.options.env,
            parsed: self.parsed,
        };
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

    /// A warning when the registry's signed index expires within
    /// [`EXPIRY_WARNING`]: after that every plan is refused, so the operator
    /// hears it while there is time to get a fresh one. Only when the
    /// signature was checked (otherwise expiry is not enforced).
    fn expiry_warning(&self, now: std::time::SystemTime) -> Option<Diagnostic> {
        let Some(Ok((registry, Trusted::Signed { .. }))) = &self.registry else { return None };
        let expires = registry.expires()?;
        let at = backout_registry::parse_utc(expires)?;
        let now = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let left = Duration::from_secs(u64::try_from(at - now).ok()?);
        (left <= EXPIRY_WARNING).then(|| {
            Diagnostic::warning(format!(
                "the registry's index expires at {expires}, in {}: after that every plan is refused",
                format_duration(Duration::from_secs(left.as_secs() / 3600 * 3600).max(Duration::from_secs(3600)))
            ))
            .hint(
                "ask the publisher for a freshly signed index (`backout registry sign --key FILE --expires-in 30d`) \
                 and import or mirror it",
            )
        })
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
