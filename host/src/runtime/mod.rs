//! The sandbox: compiles verified component bytes and calls into them under
//! the step's grants and limits.
//!
//! Invariants this module keeps:
//! - it compiles only bytes handed to it by [`crate::resolve`], which hashed
//!   exactly those bytes against their pins; precompiled code is loaded only
//!   by [`cache`], keyed by that hash, and only what this host wrote and
//!   verified;
//! - every call gets a fresh `Store` and instance, built from the step's
//!   grants for that phase ([`Phase`]); nothing survives between calls, and a
//!   store that trapped is dropped with the call;
//! - every call is bounded by the step's timeout (epoch deadline and an async
//!   timeout) and memory limit, and a hit limit is reported as such;
//! - a plugin's failure, trap or hang is that call's [`Failure`]; the host
//!   process and other steps are unaffected.

pub mod cache;
pub mod host_api;
pub mod host_terms;
pub mod http;
pub mod interrupt;
pub mod limits;
pub mod output;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::{Grants, Phase};
use host_api::{CallLog, CallRecorder, LogLevel, LogRecord, Observer};
use interrupt::Interrupt;
use limits::{Limits, MemoryLimiter};
use output::CapturedOutput;

#[allow(missing_debug_implementations, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { default: trappable },
        exports: { default: async },
    });
}

use bindings::backout::step::types as wit;

/// The world every plugin must target.
pub const WORLD: &str = "backout:step/plugin@0.2.0";
/// The interface every plugin must export.
pub const STEP_INTERFACE: &str = "backout:step/step@0.2.0";
/// The interface a plugin imports to run granted host commands.
const EXEC_INTERFACE: &str = "backout:step/exec@";

/// Bytes of stdout (and of stderr) kept per call.
const OUTPUT_CAPTURE: usize = 64 * 1024;
/// Most bytes a plugin may hand to the host in one call (its outputs, a log
/// line): bounds what a hostile plugin can make the host allocate.
const HOSTCALL_FUEL: usize = 16 << 20;
/// How often the epoch ticks; a timeout is noticed within about this long.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call state of a store.
pub struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) log: CallLog,
    /// The step's directory grants, for `copy-permissions`.
    pub(crate) dirs: Vec<crate::capability::files::DirGrant>,
    /// Where `checkpoint` and `temporary-file` are journaled (none outside a run).
    pub(crate) recorder: Option<Arc<dyn CallRecorder>>,
    /// Temporary files the plugin declared in this call (guest paths), swept when it ends.
    pub(crate) temporaries: Vec<String>,
    /// Checkpoints recorded in this call, bounded.
    pub(crate) checkpoints: u32,
    http_ctx: WasiHttpCtx,
    /// Checks and sends every `wasi:http` request (`http`).
    pub(crate) http: http::HttpPolicy,
    /// Commands `exec` may start, and the environment they get.
    pub(crate) commands: Vec<crate::capability::commands::CommandGrant>,
    pub(crate) env: Vec<(String, String)>,
    /// When the call must end: a command still running then is killed.
    pub(crate) deadline: Instant,
    /// The operator's Ctrl-C, which also kills a running command.
    pub(crate) interrupt: Option<Interrupt>,
}

impl StepState {
    /// Moves the network policy's log lines into the call's log.
    fn drain_http_notes(&mut self) {
        let notes = std::mem::take(&mut *self.http.notes.lock().unwrap_or_else(|e| e.into_inner()));
        for (level, message) in notes {
            self.log.record(level, &message);
        }
    }
}

impl std::fmt::Debug for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepState").field("limiter", &self.limiter).field("log", &self.log).finish_non_exhaustive()
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // Every wasi:http call passes here, so denials reach the log next to
        // the plugin's own lines.
        self.drain_http_notes();
        WasiHttpCtxView { ctx: &mut self.http_ctx, table: &mut self.table, hooks: &mut self.http }
    }
}

/// One wasmtime engine with the WASI and `backout:step/host` imports linked.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<StepState>>,
    /// Where [`Runtime::load_verified`] keeps compiled components, and who hears how each load went.
    cache: Option<(cache::CompileCache, cache::CacheObserver)>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine (component model, Cranelift, epoch interruption;
    /// no GC, threads or component-model-async: those features are compiled
    /// out) and starts the epoch ticker, which stops when the engine is dropped.
    pub fn new() -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        // Only `wasi:http/{types,outgoing-handler}`: the rest of wasi:http's
        // world is already linked by wasmtime-wasi.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        bindings::backout::step::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;
        bindings::backout::step::files::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;
        bindings::backout::step::exec::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;

        let weak = engine.weak();
        std::thread::Builder::new().name("backout-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
        Ok(Self { engine, linker: Arc::new(linker), cache: None })
    }

    /// Keeps compiled components in `cache` for [`Runtime::load_verified`];
    /// `observer` hears the outcome of every such load (hit, miss, ignored entry).
    pub fn with_cache(mut self, cache: cache::CompileCache, observer: cache::CacheObserver) -> Self {
        self.cache = Some((cache, observer));
        self
    }

    /// The wasmtime engine (its configuration decides which cached artifacts fit).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles component bytes and links them against the host. The caller
    /// must have verified the bytes' digest: these exact bytes are compiled.
    /// Never uses the compile cache.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        if wasmparser_is_core_module(bytes) {
            return Err(LoadError::NotAComponent);
        }
        let component = Component::new(&self.engine, bytes).map_err(compile_error)?;
        self.link(component)
    }

    /// [`Runtime::load`] through the compile cache, when there is one:
    /// `digest` is the sha256 the caller computed over `bytes` to check their
    /// pins, and the cache key. A verified entry for it is loaded instead of
    /// compiling; otherwise the bytes are compiled and stored. A cache
    /// problem never fails the load (the observer hears of it).
    pub fn load_verified(&self, digest: &backout_registry::Digest, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let Some((cache, observer)) = &self.cache else { return self.load(bytes) };
        if wasmparser_is_core_module(bytes) {
            return Err(LoadError::NotAComponent);
        }
        let (component, outcome) = cache.load_or_compile(&self.engine, digest, bytes).map_err(compile_error)?;
        observer(digest, &outcome);
        let mut plugin = self.link(component)?;
        plugin.cached = Some((cache.clone(), *digest));
        Ok(plugin)
    }

    /// Checks a compiled component's exports and imports and pre-instantiates it.
    pub(crate) fn link(&self, component: Component) -> Result<Plugin, LoadError> {
        let imports: Vec<String> =
            component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let exports: Vec<String> =
            component.component_type().exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        if !exports.iter().any(|e| e == STEP_INTERFACE) {
            let step = STEP_INTERFACE.split('@').next().unwrap_or(STEP_INTERFACE);
            if let Some(other) = exports.iter().find(|e| e.split('@').next() == Some(step)) {
                return Err(LoadError::OtherContract { built_for: other.clone() });
            }
            return Err(LoadError::NotAStep { exports });
        }
        if let Some(unsupported) = imports.iter().find(|i| !supported_import(i)) {
            return Err(LoadError::UnsupportedImport { import: unsupported.clone() });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{:#}", anyhow::Error::from(e))))?;
        let pre =
            bindings::PluginPre::new(pre).map_err(|e| LoadError::Link(format!("{:#}", anyhow::Error::from(e))))?;
        Ok(Plugin { engine: self.engine.clone(), pre, imports, exports, cached: None })
    }
}

fn compile_error(e: wasmtime::Error) -> LoadError {
    LoadError::Compile(format!("{:#}", anyhow::Error::from(e)))
}

/// Core modules start with the wasm magic and version 1; components with
/// the same magic and a different version/layer field.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Imports the host can satisfy; anything else is refused at load time, with
/// a clear message, instead of failing at instantiation. `wasi:sockets` is
/// linked (ordinary toolchains import it unused) but every socket and name
/// lookup is denied; `wasi:http` is served only for outgoing requests, each
/// checked against the step's `net` grant.
fn supported_import(name: &str) -> bool {
    let base = name.split('@').next().unwrap_or(name);
    matches!(
        base,
        "backout:step/host"
            | "backout:step/types"
            | "backout:step/exec"
            | "backout:step/files"
            | "wasi:http/types"
            | "wasi:http/outgoing-handler"
    ) || ["wasi:cli/", "wasi:io/", "wasi:clocks/", "wasi:filesystem/", "wasi:random/", "wasi:sockets/"]
        .iter()
        .any(|p| base.starts_with(p))
}

/// Why component bytes could not become a runnable plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("the file is a core WebAssembly module, not a component")]
    NotAComponent,
    #[error("failed to compile the component: {0}")]
    Compile(String),
    #[error("the component does not export `{STEP_INTERFACE}` (it exports: {})", list(.exports))]
    NotAStep { exports: Vec<String> },
    /// A plugin built for another version of the contract: the types differ,
    /// so it cannot be linked, and a rebuild (not a grant) is the fix.
    #[error(
        "the plugin was built for `{built_for}`, and this backout runs plugins built for `{STEP_INTERFACE}`; \
         rebuild it with this backout's SDK and `wit/`"
    )]
    OtherContract { built_for: String },
    #[error("the component imports `{import}`, which backout does not provide")]
    UnsupportedImport { import: String },
    #[error("failed to link the component: {0}")]
    Link(String),
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
    }
}

/// A compiled, linked plugin, ready to instantiate once per call.
#[derive(Clone)]
pub struct Plugin {
    engine: Engine,
    pre: bindings::PluginPre<StepState>,
    /// Where `describe`'s answer is kept beside the compiled artifact, and
    /// the component's digest: set when loaded by [`Runtime::load_verified`]
    /// through a compile cache.
    cached: Option<(cache::CompileCache, backout_registry::Digest)>,
    /// Interfaces the component imports, e.g. `wasi:filesystem/types@0.2.3`.
    pub imports: Vec<String>,
    /// Interfaces the component exports.
    pub exports: Vec<String>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("imports", &self.imports).finish_non_exhaustive()
    }
}

/// Who a step is, per its own `describe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub config_schema: serde_json::Value,
    pub needs: Needs,
}

pub use crate::capability::{FileNeed, Needs};

/// One thing a step would do.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub effect: Effect,
}

/// Whether `run` would change anything by an action (`effect` in
/// `wit/step.wit`): what tells a plan with changes from one without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Change,
    Check,
    InPlace,
}

impl From<wit::Effect> for Effect {
    fn from(e: wit::Effect) -> Self {
        match e {
            wit::Effect::Change => Effect::Change,
            wit::Effect::Check => Effect::Check,
            wit::Effect::InPlace => Effect::InPlace,
        }
    }
}

/// What `run` or `undo` did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub summary: String,
    pub outputs: serde_json::Value,
}

/// The kind of error a plugin reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepErrorKind {
    InvalidConfig,
    Precondition,
    Transient,
    Failed,
}

impl StepErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid config",
            Self::Precondition => "precondition failed",
            Self::Transient => "transient error",
            Self::Failed => "failed",
        }
    }
}

/// Why a call into a plugin did not succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Failure {
    /// The plugin returned an error. An `invalid-config` whose problems
    /// name their keys (`wit/step.wit`'s convention) has them in `problems`,
    /// the pointers taken out of `message` and each key's place in the
    /// runbook put in (see [`crate::with_keys`]); empty otherwise.
    #[error("{}", step_message(*error, message))]
    Step {
        error: StepErrorKind,
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        problems: Vec<KeyProblem>,
    },
    /// The call ran past the step's timeout and was stopped.
    #[error("timed out after {} (the step's `timeout`)", crate::quantity::format_duration(*limit))]
    Timeout {
        #[serde(with = "crate::policy::duration_text")]
        limit: Duration,
    },
    /// The operator stopped the run (Ctrl-C, SIGTERM) while the call was in flight.
    #[error("interrupted by {signal}")]
    Interrupted { signal: String },
    /// The plugin tried to use more memory than the step's limit.
    #[error("memory limit of {} exceeded (the step's `memory`)", crate::quantity::format_size(*limit))]
    MemoryLimit { limit: u64 },
    /// The plugin hit another bound the host keeps on every call (data
    /// handed to the host, live resources, random bytes, open files).
    #[error("{what}")]
    Limit { what: String },
    /// The plugin crashed (a panic, an `unreachable`, an out-of-bounds access).
    #[error("the plugin crashed: {message}")]
    Trap { message: String },
    /// The host could not set up or finish the call (a granted directory
    /// vanished, outputs were not a JSON object).
    #[error("{message}")]
    Host { message: String },
}

/// One problem of a plugin's `invalid-config` that names its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProblem {
    /// The JSON pointer into the step's `with` table (`/checks/1/url`).
    pub pointer: String,
    /// The key as the runbook writes it (`checks[1].url`).
    pub key: String,
    /// Where the key is in the runbook (1-based), when the runbook has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong, in the plugin's words (without the pointer).
    pub message: String,
}

/// `precondition failed: …`, `invalid config: …`; a plain failure is just its message.
fn step_message(kind: StepErrorKind, message: &str) -> String {
    match kind {
        StepErrorKind::Failed => message.to_string(),
        other => format!("{}: {message}", other.as_str()),
    }
}

impl Failure {
    fn host(message: impl Into<String>) -> Self {
        Failure::Host { message: message.into() }
    }
}

impl From<wit::StepError> for Failure {
    fn from(e: wit::StepError) -> Self {
        let (error, message) = match e {
            wit::StepError::InvalidConfig(m) => (StepErrorKind::InvalidConfig, m),
            wit::StepError::Precondition(m) => (StepErrorKind::Precondition, m),
            wit::StepError::Transient(m) => (StepErrorKind::Transient, m),
            wit::StepError::Failed(m) => (StepErrorKind::Failed, m),
        };
        Failure::Step { error, message, problems: Vec::new() }
    }
}

/// Who is calling and with what: one step's identity, grants and limits,
/// and, inside a run, where checkpoints go and what can stop the call.
#[derive(Clone)]
pub struct CallContext<'a> {
    pub step: &'a str,
    pub grants: &'a Grants,
    pub limits: Limits,
    pub observer: Observer,
    /// Journals `checkpoint` and `temporary-file`; `None` outside a run
    /// (plan, inspect, tests), where both are accepted and kept in memory only.
    pub recorder: Option<Arc<dyn CallRecorder>>,
    /// Cancels the call when set; `None`: nothing can, but the timeout.
    pub interrupt: Option<Interrupt>,
    /// What to mask in everything the plugin says: the run's secrets (every
    /// step's granted values, since outputs flow onward); `None`: this
    /// step's own.
    pub secrets: Option<Arc<Vec<String>>>,
}

impl<'a> CallContext<'a> {
    /// A context with no recorder and no interrupt.
    pub fn new(step: &'a str, grants: &'a Grants, limits: Limits, observer: Observer) -> Self {
        Self { step, grants, limits, observer, recorder: None, interrupt: None, secrets: None }
    }

    /// Masks `secrets` (the run's) in what the plugin says.
    pub fn secrets(mut self, secrets: Arc<Vec<String>>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Journals this call's checkpoints and temporary files through `recorder`.
    pub fn recorder(mut self, recorder: Arc<dyn CallRecorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Lets `interrupt` cancel the call.
    pub fn interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = Some(interrupt);
        self
    }
}

impl std::fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext").field("step", &self.step).field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// The result of one call, with everything the plugin logged during it.
#[derive(Debug, Clone)]
pub struct Called<T> {
    pub result: Result<T, Failure>,
    pub log: Vec<LogRecord>,
    /// Log lines and output bytes dropped past the bounds.
    pub dropped: u64,
    pub elapsed: Duration,
    /// Declared temporary files the plugin left behind, which the host
    /// removed when the call ended: (guest path, host path).
    pub removed: Vec<(String, std::path::PathBuf)>,
}

enum Call<'a> {
    Describe,
    Plan(&'a str),
    Run(&'a str),
    Verify(&'a str, &'a str),
    Undo(&'a str, &'a str),
}

enum Reply {
    Info(wit::Info),
    Actions(Vec<wit::Action>),
    Outcome(wit::Outcome),
    Verified,
}

impl Plugin {
    /// `describe`, with no grants at all. A plugin loaded through the
    /// compile cache answers from the cache when its answer is kept there
    /// (no instance is made), and its answer is kept there after it is
    /// asked: `describe` takes no config, grants or environment, so its
    /// answer is a property of the component's bytes, like the compiled code
    /// (see the README's plugin contract). What it logs is not kept.
    pub async fn describe(&self, ctx: &CallContext<'_>) -> Called<PluginInfo> {
        if let Some((cache, digest)) = &self.cached
            && let Some(info) = cache.cached_info(&self.engine, digest)
        {
            return Called::answered(self.with_import_needs(info));
        }
        let called = self.call(Phase::Describe, ctx, Call::Describe).await.map(|reply| match reply {
            Reply::Info(info) => convert_info(info).map(|info| self.with_import_needs(info)),
            _ => Err(Failure::host("unexpected reply to describe")),
        });
        if let (Some((cache, digest)), Ok(info)) = (&self.cached, &called.result) {
            // Like a compiled artifact that cannot be stored: asked again next time.
            let _ = cache.store_info(&self.engine, digest, info);
        }
        called
    }

    /// The needs known from the component's imports rather than from `describe`.
    fn with_import_needs(&self, mut info: PluginInfo) -> PluginInfo {
        info.needs.commands = self.imports.iter().any(|i| i.starts_with(EXEC_INTERFACE));
        info.needs.may_use_network = self.imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@"));
        info
    }

    /// `plan`, with every directory read-only.
    pub async fn plan(&self, ctx: &CallContext<'_>, config: &str) -> Called<Vec<Action>> {
        self.call(Phase::Plan, ctx, Call::Plan(config)).await.map(|reply| match reply {
            Reply::Actions(actions) => Ok(actions
                .into_iter()
                .map(|a| Action { summary: a.summary, detail: a.detail, effect: a.effect.into() })
                .collect()),
            _ => Err(Failure::host("unexpected reply to plan")),
        })
    }

    /// `run`, with exactly the step's grants.
    pub async fn run(&self, ctx: &CallContext<'_>, config: &str) -> Called<Outcome> {
        self.call(Phase::Run, ctx, Call::Run(config)).await.map(convert_outcome)
    }

    /// `verify`, with every directory read-only.
    pub async fn verify(&self, ctx: &CallContext<'_>, config: &str, outputs: &str) -> Called<()> {
        self.call(Phase::Verify, ctx, Call::Verify(config, outputs)).await.map(|_| Ok(()))
    }

    /// `undo`, with exactly the step's grants.
    pub async fn undo(&self, ctx: &CallContext<'_>, config: &str, outputs: &str) -> Called<Outcome> {
        self.call(Phase::Undo, ctx, Call::Undo(config, outputs)).await.map(convert_outcome)
    }

    async fn call(&self, phase: Phase, ctx: &CallContext<'_>, call: Call<'_>) -> Called<Reply> {
        let started = Instant::now();
        let stdout = CapturedOutput::new(OUTPUT_CAPTURE);
        let stderr = CapturedOutput::new(OUTPUT_CAPTURE);
        let secrets = ctx.secrets.as_ref().map_or_else(|| ctx.grants.secrets(), |s| s.as_ref().clone());
        let log = CallLog::new(ctx.step, phase, ctx.observer.clone(), secrets);
        if let Some(signal) = ctx.interrupt.as_ref().and_then(Interrupt::reason) {
            return Called {
                result: Err(Failure::Interrupted { signal }),
                log: Vec::new(),
                dropped: 0,
                elapsed: started.elapsed(),
                removed: Vec::new(),
            };
        }
        let mut sandbox = match ctx.grants.sandbox(phase, stdout.clone(), stderr.clone()) {
            Ok(sandbox) => sandbox,
            Err(denied) => {
                return Called {
                    result: Err(Failure::host(denied.to_string())),
                    log: Vec::new(),
                    dropped: 0,
                    elapsed: started.elapsed(),
                    removed: Vec::new(),
                };
            }
        };
        let bounds = Bounds::of(ctx.limits);
        sandbox.wasi.max_random_size(bounds.random_bytes);
        let deadline = started + ctx.limits.timeout;
        let mut table = ResourceTable::new();
        table.set_max_capacity(bounds.handles);
        let mut http_ctx = WasiHttpCtx::new();
        http_ctx.set_field_size_limit(bounds.field_bytes);
        let state = StepState {
            wasi: sandbox.wasi.build(),
            table,
            limiter: MemoryLimiter::new(ctx.limits.memory),
            log,
            dirs: sandbox.dirs,
            recorder: ctx.recorder.clone(),
            temporaries: Vec::new(),
            checkpoints: 0,
            http_ctx,
            http: http::HttpPolicy::new(sandbox.net, phase, deadline, ctx.limits.max_received),
            commands: sandbox.commands,
            env: sandbox.env,
            deadline,
            interrupt: ctx.interrupt.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        store.set_max_component_handles(bounds.handles);
        store.set_epoch_deadline(1);
        let interrupt = ctx.interrupt.clone();
        let stop = interrupt.clone();
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline || stop.as_ref().is_some_and(Interrupt::is_set) {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let outcome = {
            let work = tokio::time::timeout(ctx.limits.timeout, invoke(&self.pre, &mut store, call));
            let stopped = async {
                match &interrupt {
                    Some(i) => i.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                outcome = work => Some(outcome),
                () = stopped => None,
            }
        };
        let interrupted =
            || interrupt.as_ref().and_then(Interrupt::reason).map(|signal| Failure::Interrupted { signal });
        let result = match outcome {
            None => Err(interrupted().unwrap_or_else(|| Failure::host("the call was cancelled"))),
            Some(Err(_elapsed)) => Err(Failure::Timeout { limit: ctx.limits.timeout }),
            Some(Ok(Ok(Ok(reply)))) => Ok(clean_reply(reply, &store.data().log)),
            Some(Ok(Ok(Err(step_error)))) => Err(Failure::from(step_error)),
            Some(Ok(Err(trap))) => Err(match classify(trap, store.data(), ctx.limits, bounds) {
                // A guest stopped by the epoch because of the operator, not its deadline.
                Failure::Timeout { .. } if Instant::now() < deadline => {
                    interrupted().unwrap_or(Failure::Timeout { limit: ctx.limits.timeout })
                }
                other => other,
            }),
        };

        let state = store.data_mut();
        let result = result.map_err(|failure| clean_failure(failure, &state.log, &state.dirs, phase));
        state.drain_http_notes();
        let removed = sweep_temporaries(state);
        for (level, capture) in [(LogLevel::Stdout, &stdout), (LogLevel::Stderr, &stderr)] {
            let (text, dropped) = capture.take();
            state.log.record_output(level, &text);
            state.log.dropped += dropped;
        }
        let log = std::mem::take(&mut state.log.records);
        let dropped = state.log.dropped;
        Called { result, log, dropped, elapsed: started.elapsed(), removed }
    }
}

/// Host-side bounds of one call, derived from the step's memory limit so
/// that what the plugin can make the host hold stays within it: live
/// resources (each `wasi:http` `fields` at most `field_bytes`), random bytes
/// per request. Open files are resources too, each a host file descriptor.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    handles: usize,
    field_bytes: usize,
    random_bytes: u64,
}

impl Bounds {
    /// Enough for any honest plugin (a few dozen live resources); a
    /// `fields` flood tops out at the step's memory.
    const MIN_HANDLES: usize = 1024;
    const FIELD_BYTES: usize = 32 * 1024;

    fn of(limits: Limits) -> Self {
        let handles = usize::try_from(limits.memory / Self::FIELD_BYTES as u64)
            .unwrap_or(usize::MAX)
            .clamp(Self::MIN_HANDLES, max_open_files());
        Self { handles, field_bytes: Self::FIELD_BYTES, random_bytes: (limits.memory / 4).min(64 << 20) }
    }
}

/// How many files a call may hold open: well below the process's own
/// descriptor limit, which the host shares (journal, sockets, the registry).
fn max_open_files() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1024);
    usize::try_from(soft / 2).unwrap_or(usize::MAX).max(Bounds::MIN_HANDLES)
}

/// Masks secrets in, and escapes control characters of, everything a plugin
/// answered that will be shown: the one place plugin text is made safe
/// (outputs are data: masked, not escaped; see [`crate::shown`]).
fn clean_reply(reply: Reply, log: &CallLog) -> Reply {
    let line = |text: String| log.clean(&text);
    let lines = |text: String| crate::shown::lines(&crate::redact::text(&text, &log.secrets)).into_owned();
    match reply {
        Reply::Info(info) => Reply::Info(wit::Info {
            name: line(info.name),
            version: line(info.version),
            summary: line(info.summary),
            config_schema: info.config_schema,
            needs: wit::Needs { env: info.needs.env.into_iter().map(line).collect(), ..info.needs },
        }),
        Reply::Actions(actions) => Reply::Actions(
            actions
                .into_iter()
                .map(|a| wit::Action { summary: line(a.summary), detail: a.detail.map(lines), effect: a.effect })
                .collect(),
        ),
        Reply::Outcome(outcome) => {
            // Outputs are data (later steps and undo read them back): masked,
            // keys too, but not escaped; they are escaped where shown.
            let outputs = match serde_json::from_str::<serde_json::Value>(&outcome.outputs) {
                Ok(mut value) => {
                    crate::redact::json(&mut value, &log.secrets);
                    value.to_string()
                }
                Err(_) => outcome.outputs,
            };
            Reply::Outcome(wit::Outcome { summary: line(outcome.summary), outputs })
        }
        Reply::Verified => Reply::Verified,
    }
}

/// A failure's plugin text, masked, on one line, and in the operator's
/// terms ([`host_terms`]: WASI error numbers in words, guest paths with
/// their host paths).
fn clean_failure(
    failure: Failure,
    log: &CallLog,
    dirs: &[crate::capability::files::DirGrant],
    phase: Phase,
) -> Failure {
    let explain = |message: String| host_terms::explain(&log.clean(&message), dirs, phase);
    match failure {
        Failure::Step { error, message, problems } => Failure::Step { error, message: explain(message), problems },
        Failure::Trap { message } => Failure::Trap { message: explain(message) },
        other => other,
    }
}

/// Removes the temporary files the plugin declared in this call and left
/// behind (it trapped, timed out, was interrupted, or forgot). A file that
/// cannot be removed is logged as a warning and left for `backout show` to list.
fn sweep_temporaries(state: &mut StepState) -> Vec<(String, std::path::PathBuf)> {
    let mut removed = Vec::new();
    for guest in std::mem::take(&mut state.temporaries) {
        match crate::capability::files::remove_temporary(&state.dirs, &guest) {
            Ok(None) => {}
            Ok(Some(host)) => {
                state
                    .log
                    .record(LogLevel::Warn, &format!("backout removed the temporary file `{guest}` the call left"));
                removed.push((guest, host));
            }
            Err(e) => state.log.record(LogLevel::Warn, &format!("backout could not remove a temporary file: {e}")),
        }
    }
    removed
}

/// Instantiates and makes one call; the outer `Result` is a trap, the inner
/// one the plugin's own answer.
async fn invoke(
    pre: &bindings::PluginPre<StepState>,
    store: &mut Store<StepState>,
    call: Call<'_>,
) -> wasmtime::Result<Result<Reply, wit::StepError>> {
    let plugin = pre.instantiate_async(&mut *store).await?;
    let step = plugin.backout_step_step();
    Ok(match call {
        Call::Describe => Ok(Reply::Info(step.call_describe(&mut *store).await?)),
        Call::Plan(config) => step.call_plan(&mut *store, &config.to_string()).await?.map(Reply::Actions),
        Call::Run(config) => step.call_run(&mut *store, &config.to_string()).await?.map(Reply::Outcome),
        Call::Verify(config, outputs) => {
            step.call_verify(&mut *store, &config.to_string(), &outputs.to_string()).await?.map(|()| Reply::Verified)
        }
        Call::Undo(config, outputs) => {
            step.call_undo(&mut *store, &config.to_string(), &outputs.to_string()).await?.map(Reply::Outcome)
        }
    })
}

/// Names the cause of a trap: a limit the host enforced, or the plugin's own crash.
fn classify(error: wasmtime::Error, state: &StepState, limits: Limits, bounds: Bounds) -> Failure {
    if state.limiter.exceeded.is_some() {
        return Failure::MemoryLimit { limit: limits.memory };
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return Failure::Timeout { limit: limits.timeout };
    }
    let text = format!("{:#}", anyhow::Error::from(error));
    let size = |bytes: u64| crate::quantity::format_size(bytes);
    let limit = if text.contains("fuel allocated for hostcalls") {
        Some(format!(
            "the plugin handed the host more than {} in one call (the host's limit on data it copies)",
            size(HOSTCALL_FUEL as u64)
        ))
    } else if text.contains("handle limit") || text.contains("resource table has no free keys") {
        Some(format!(
            "the plugin held more than {} resources at once (the step's limit, from its `memory`)",
            bounds.handles
        ))
    } else if text.contains("size of fields exceeds limit") {
        Some(format!(
            "the plugin put HTTP header fields over {} in one `fields` (the step's limit, from its `memory`)",
            size(bounds.field_bytes as u64)
        ))
    } else if text.contains("exceeds limit") && text.contains("random") || text.contains("requested len") {
        Some(format!(
            "the plugin asked for more than {} of random bytes at once (the step's limit, from its `memory`)",
            size(bounds.random_bytes)
        ))
    } else {
        None
    };
    match limit {
        Some(what) => Failure::Limit { what },
        None => Failure::Trap { message: text },
    }
}

impl<T> Called<T> {
    /// An answer the host had without calling the plugin: nothing logged, no time spent in it.
    fn answered(value: T) -> Self {
        Called { result: Ok(value), log: Vec::new(), dropped: 0, elapsed: Duration::ZERO, removed: Vec::new() }
    }

    fn map<U>(self, f: impl FnOnce(T) -> Result<U, Failure>) -> Called<U> {
        Called {
            result: self.result.and_then(f),
            log: self.log,
            dropped: self.dropped,
            elapsed: self.elapsed,
            removed: self.removed,
        }
    }
}

fn convert_info(info: wit::Info) -> Result<PluginInfo, Failure> {
    let config_schema = serde_json::from_str(&info.config_schema)
        .map_err(|e| Failure::host(format!("the plugin's config schema is not JSON: {e}")))?;
    Ok(PluginInfo {
        name: info.name,
        version: info.version,
        summary: info.summary,
        config_schema,
        needs: Needs {
            files: match info.needs.files {
                wit::FileAccess::None => FileNeed::None,
                wit::FileAccess::Read => FileNeed::Read,
                wit::FileAccess::ReadWrite => FileNeed::ReadWrite,
            },
            env: info.needs.env,
            network: info.needs.network,
            may_use_network: false,
            commands: false,
        },
    })
}

fn convert_outcome(reply: Reply) -> Result<Outcome, Failure> {
    let Reply::Outcome(outcome) = reply else {
        return Err(Failure::host("unexpected reply"));
    };
    let outputs: serde_json::Value = serde_json::from_str(&outcome.outputs)
        .map_err(|e| Failure::host(format!("the plugin's outputs are not valid JSON: {e}")))?;
    if !outputs.is_object() {
        return Err(Failure::host("the plugin's outputs are not a JSON object"));
    }
    Ok(Outcome { summary: outcome.summary, outputs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_capability_wasi_imports_are_supported() {
        assert!(supported_import("wasi:filesystem/types@0.2.3"));
        assert!(supported_import("backout:step/host@0.1.0"));
        assert!(supported_import("wasi:http/outgoing-handler@0.2.3"));
        assert!(!supported_import("wasi:http/incoming-handler@0.2.3"));
        assert!(!supported_import("acme:secret/keys"));
    }

    #[test]
    fn core_modules_are_told_apart_from_components() {
        assert!(wasmparser_is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!wasmparser_is_core_module(b"\0asm\x0d\0\x01\0"));
    }
}
