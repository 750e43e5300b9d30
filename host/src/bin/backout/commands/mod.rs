//! One function per subcommand; each returns the exit code. Runbook
//! commands live here; `registry` and `key` commands in [`registry`];
//! `cache` commands and the compile cache's messages in [`cache`];
//! `completions` and `man`, generated from the command line's definition,
//! in [`completions`] and [`man`].

mod cache;
mod completions;
mod man;
mod new;
mod recover;
mod registry;
mod run;
mod runs;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use backout::journal;
use backout::lockfile::{LockedStep, Lockfile};
use backout::plan::Plan;
use backout::report;
use backout::resolve::{self, Options, PluginRef};
use backout::runbook;
use backout::runtime::cache::CompileCache;
use backout::runtime::{Runtime, WORLD};
use backout_registry::{AcceptedSerials, Digest, Registry, TrustStore, Trusted};
use serde_json::json;

use crate::Exit;
use crate::args::{Cli, Command, InspectArgs, KeyCommand, LockArgs, Output, PlanArgs, RunbookArgs};
use crate::output::{self, errln, out, outln};

pub async fn dispatch(cli: Cli) -> Exit {
    let ctx = Ctx {
        registry: cli.global.registry.clone().unwrap_or_else(default_registry),
        output: cli.global.output,
        trust: cli.global.trust.clone(),
        require_signed: cli.global.require_signed,
        state_dir: cli.global.state_dir.clone().unwrap_or_else(journal::default_state_dir),
        cache_dir: cli.global.cache_dir.clone().or_else(CompileCache::default_dir),
        no_cache: cli.global.no_cache,
        verbose: cli.global.verbose,
        live: match &cli.command {
            Command::Run(_) | Command::Undo(_) | Command::Resume(_) => Some(crate::live::Live::new(
                cli.global.output,
                cli.global.color,
                crate::live::Verbosity::new(cli.global.quiet, cli.global.verbose),
            )),
            _ => None,
        },
    };
    match cli.command {
        Command::Validate(args) => validate(&ctx, &args).await,
        Command::Plan(args) => plan(&ctx, &args).await,
        Command::Run(args) => run::run(&ctx, &args).await,
        Command::Runs(args) => runs::runs(&ctx, &args),
        Command::Show(args) => runs::show(&ctx, &args),
        Command::Undo(args) => recover::undo(&ctx, &args).await,
        Command::Resume(args) => recover::resume(&ctx, &args).await,
        Command::Inspect(args) => inspect(&ctx, &args).await,
        Command::Lock(args) => lock(&ctx, &args),
        Command::Registry(command) => registry::dispatch(&ctx, command).await,
        Command::Cache(command) => cache::dispatch(&ctx, command),
        Command::Key(KeyCommand::Generate { out }) => registry::key_generate(&ctx, &out),
        Command::New(args) => new::new(&ctx, &args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => man::man(&ctx, &args),
    }
}

struct Ctx {
    registry: PathBuf,
    output: Output,
    /// `--trust`, when given: then the file must exist.
    trust: Option<PathBuf>,
    /// `--require-signed`: refuse any index that cannot be verified.
    require_signed: bool,
    state_dir: PathBuf,
    /// `--cache-dir`, else the default; `None` when there is no home to put it in.
    cache_dir: Option<PathBuf>,
    /// `--no-cache`: compile everything, touch no cache.
    no_cache: bool,
    /// `--verbose`: say what the compile cache did.
    verbose: bool,
    /// The live view (`run`, `undo`, `resume`): progress on a terminal,
    /// plain lines, or the event stream.
    live: Option<crate::live::Live>,
}

impl Ctx {
    /// A runtime that loads plugins through the compile cache (unless `--no-cache`).
    fn runtime(&self) -> anyhow::Result<Runtime> {
        let runtime = Runtime::new()?;
        Ok(match (&self.cache_dir, self.no_cache) {
            (Some(dir), false) => runtime.with_cache(CompileCache::new(dir), cache::printer(self.verbose)),
            _ => runtime,
        })
    }

    /// The trust store: `--trust FILE` (must exist), else the default file
    /// if present, else empty; `--require-signed` makes it refuse every
    /// index it cannot verify.
    fn trust_store(&self) -> anyhow::Result<TrustStore> {
        let mut store = match &self.trust {
            Some(path) => TrustStore::load(path)?,
            None => {
                let path = default_trust_file();
                if path.exists() { TrustStore::load(&path)? } else { TrustStore::default() }
            }
        };
        if self.require_signed {
            store.require_signatures();
        }
        Ok(store)
    }

    /// Where the highest accepted serial per registry is kept.
    fn accepted_serials_path(&self) -> PathBuf {
        self.state_dir.join("accepted-serials.toml")
    }

    /// Records that this host used an index of the registry at `root`
    /// signed with `serial`, so an older one is refused from now on.
    fn record_trusted(&self, root: &Path, trusted: &Trusted) -> anyhow::Result<()> {
        if let Trusted::Signed { key, serial, .. } = trusted {
            // The state directory holds journals: 0700 whoever creates it first.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.state_dir)
                .with_context(|| format!("failed to create the state directory `{}`", self.state_dir.display()))?;
            AcceptedSerials::update(&self.accepted_serials_path(), root, key, *serial)?;
        }
        Ok(())
    }
}

/// `$XDG_CONFIG_HOME/backout/trust.toml`, else `~/.config/backout/trust.toml`.
fn default_trust_file() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return PathBuf::from(dir).join("backout/trust.toml");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".config/backout/trust.toml")
}

/// `$XDG_DATA_HOME/backout/registry`, else `~/.local/share/backout/registry`.
fn default_registry() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("backout/registry");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/backout/registry")
}

/// Prints one JSON document. serde_json escapes C0 controls itself; DEL, C1
/// controls and bidirectional overrides it leaves raw, and a terminal (or a
/// reader) would act on them, so they are written as `\\uXXXX` escapes,
/// which are the same JSON.
pub(crate) fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    outln!("{}", json_inert(&text));
}

pub(crate) fn json_inert(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        matches!(c, '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn new_runtime(ctx: &Ctx) -> Result<Runtime, Exit> {
    ctx.runtime().map_err(|e| {
        output::error(&e.context("failed to start the WebAssembly runtime"), None);
        Exit::Invalid
    })
}

/// Parses and resolves a runbook, printing every problem; `Err` carries the exit code.
async fn load_plan(ctx: &Ctx, args: &RunbookArgs) -> Result<Plan, Exit> {
    let parsed = match runbook::load(&args.runbook) {
        Ok(p) => p,
        Err(d) => {
            report_invalid(ctx, &d.into(), &args.runbook);
            return Err(Exit::Invalid);
        }
    };
    resolve_parsed(ctx, &parsed, &args.runbook, args.vars.clone(), true).await
}

/// Resolves a parsed runbook with `overrides`; `plan_steps: false` skips
/// each plugin's `plan` (for `undo` and `resume`).
async fn resolve_parsed(
    ctx: &Ctx,
    parsed: &runbook::Parsed,
    path: &Path,
    overrides: Vec<(String, String)>,
    plan_steps: bool,
) -> Result<Plan, Exit> {
    let args = RunbookArgs { runbook: path.to_path_buf(), vars: overrides };
    let runtime = new_runtime(ctx)?;
    let prepared = (|| -> anyhow::Result<_> {
        let lock = Lockfile::load_for(&args.runbook)?;
        let trust = ctx.trust_store()?;
        let accepted = AcceptedSerials::load(&ctx.accepted_serials_path())?;
        Ok((lock, trust, accepted))
    })();
    let (lock, trust, accepted) = match prepared {
        Ok(p) => p,
        Err(e) => {
            output::error(&e, None);
            return Err(Exit::Invalid);
        }
    };
    let options = Options {
        registry: ctx.registry.clone(),
        var_overrides: args.vars.clone(),
        env: Box::new(|name| std::env::var(name).ok()),
        observer: ctx.live.as_ref().map_or_else(output::log_printer, crate::live::Live::calls),
        stages: ctx
            .live
            .as_ref()
            .map_or_else(|| std::sync::Arc::new(|_: resolve::Stage<'_>| {}) as _, crate::live::Live::stages),
        lock,
        trust,
        accepted,
        plan_steps,
    };
    let resolved = resolve::resolve(parsed, &runtime, &options).await;
    if let Some(live) = &ctx.live {
        live.planned();
    }
    match resolved {
        Ok(plan) => Ok(plan),
        Err(diagnostics) => {
            report_invalid(ctx, &diagnostics, &args.runbook);
            Err(Exit::Invalid)
        }
    }
}

fn report_invalid(ctx: &Ctx, diagnostics: &backout::diagnostic::Diagnostics, runbook: &Path) {
    output::diagnostics(diagnostics, runbook);
    // With the event stream on, the diagnostics were an `error` event.
    if ctx.output == Output::Json && !output::error_events() {
        print_json(&json!({ "valid": false, "diagnostics": diagnostics }));
    }
}

async fn validate(ctx: &Ctx, args: &RunbookArgs) -> Exit {
    let plan = match load_plan(ctx, args).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    match ctx.output {
        Output::Json => print_json(&json!({ "valid": true, "diagnostics": plan.warnings })),
        Output::Text => {
            for w in &plan.warnings {
                errln!("{w}");
            }
            outln!(
                "ok: `{}` is valid: {}, every plugin verified and its config checked",
                plan.name,
                backout::text::count(plan.steps.len(), "step")
            );
        }
    }
    Exit::Success
}

async fn plan(ctx: &Ctx, args: &PlanArgs) -> Exit {
    let plan = match load_plan(ctx, &args.runbook).await {
        Ok(p) => p,
        // `--detailed-exitcode` gives 2 to pending changes, so errors become 1.
        Err(_) if args.detailed_exitcode => return Exit::PLAN_FAILED,
        Err(exit) => return exit,
    };
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(report::PlanView::new(&plan)).unwrap_or_default()),
        Output::Text => out!("{}", report::plan_text(&plan)),
    }
    for warning in run::earlier_runs(ctx, &plan) {
        errln!("warning: {warning}");
    }
    match args.detailed_exitcode && plan.changes().pending {
        true => Exit::CHANGES_PENDING,
        false => Exit::Success,
    }
}

/// Reads a plugin named on the command line: a file, or `name@REQ` (or
/// `name`: its highest version) from the registry, opened under this host's
/// signature policy like `plan`, and verified against the index.
fn read_plugin(ctx: &Ctx, plugin: &str) -> anyhow::Result<(Vec<u8>, String)> {
    match PluginRef::parse_argument(plugin).map_err(anyhow::Error::msg)? {
        PluginRef::File { path } => {
            let bytes = std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
            Ok((bytes, format!("file `{}`", path.display())))
        }
        reference @ PluginRef::Registry { .. } => {
            let accepted = AcceptedSerials::load(&ctx.accepted_serials_path())?;
            let (registry, _) = resolve::open_trusted(&ctx.registry, &ctx.trust_store()?, &accepted)?;
            let entry = reference.entry(&registry)?.expect("a registry reference names an entry");
            let bytes = registry.read_verified(&entry.digest)?;
            Ok((bytes, format!("{}@{} in registry `{}`", entry.name, entry.version, ctx.registry.display())))
        }
    }
}

async fn inspect(ctx: &Ctx, args: &InspectArgs) -> Exit {
    let (bytes, source) = match read_plugin(ctx, &args.plugin) {
        Ok(b) => b,
        Err(e) => {
            output::error(&e, output::hint_of(&e).as_deref());
            return Exit::Invalid;
        }
    };
    let digest = Digest::of(&bytes);
    let Ok(runtime) = new_runtime(ctx) else { return Exit::Invalid };
    let plugin = match runtime.load_verified(&digest, &bytes) {
        Ok(p) => p,
        Err(e) => {
            output::error(
                &anyhow::Error::from(e).context(format!("`{}` is not a usable backout plugin", args.plugin)),
                None,
            );
            return Exit::Invalid;
        }
    };
    let info = match describe(&plugin).await {
        Ok(i) => i,
        Err(e) => {
            output::error(&e, None);
            return Exit::Invalid;
        }
    };
    match ctx.output {
        Output::Json => print_json(&json!({
            "digest": digest.to_string(),
            "size_bytes": bytes.len(),
            "source": source,
            "world": WORLD,
            "imports": plugin.imports,
            "exports": plugin.exports,
            "info": info,
        })),
        Output::Text => {
            outln!("plugin    {} {} — {}", info.name, info.version, info.summary);
            outln!("digest    {digest} ({})", backout::text::count(bytes.len(), "byte"));
            outln!("source    {source}");
            outln!("world     {WORLD}");
            // Interface names come from the component: shown inert, like all plugin text.
            let names = |list: &[String]| list.iter().map(|n| backout::shown::line(n).into_owned()).collect::<Vec<_>>();
            outln!("exports   {}", names(&plugin.exports).join(", "));
            outln!("imports   {}", names(&plugin.imports).join("\n          "));
            let files = match info.needs.files {
                backout::runtime::FileNeed::None => "none",
                backout::runtime::FileNeed::Read => "read",
                backout::runtime::FileNeed::ReadWrite => "read-write",
            };
            let env = if info.needs.env.is_empty() { "none".to_string() } else { info.needs.env.join(", ") };
            outln!("needs     files: {files}; env: {env}; network: {}", if info.needs.network { "yes" } else { "no" });
            outln!("config schema:");
            for line in serde_json::to_string_pretty(&info.config_schema).unwrap_or_default().lines() {
                outln!("  {line}");
            }
        }
    }
    Exit::Success
}

pub(crate) async fn describe(plugin: &backout::runtime::Plugin) -> anyhow::Result<backout::runtime::PluginInfo> {
    let grants = backout::capability::Grants::default();
    let ctx = backout::runtime::CallContext::new("describe", &grants, Default::default(), output::log_printer());
    plugin.describe(&ctx).await.result.map_err(|f| anyhow::anyhow!("the plugin failed to describe itself: {f}"))
}

/// `backout lock RUNBOOK [--update]`.
fn lock(ctx: &Ctx, args: &LockArgs) -> Exit {
    match write_lock(ctx, args) {
        Ok(outcome) => {
            match ctx.output {
                Output::Json => print_json(&json!({
                    "lock": outcome.path,
                    "written": outcome.written,
                    "steps": outcome.lock.steps.iter().map(|s| json!({
                        "id": s.id,
                        "uses": s.uses,
                        "name": s.name,
                        "version": s.version,
                        "digest": s.digest.to_string(),
                    })).collect::<Vec<_>>(),
                })),
                Output::Text if outcome.written => outln!(
                    "wrote `{}` ({})",
                    outcome.path.display(),
                    backout::text::count(outcome.lock.steps.len(), "step")
                ),
                Output::Text => outln!("`{}` is up to date", outcome.path.display()),
            }
            Exit::Success
        }
        Err(LockFailure::Invalid(diagnostics)) => {
            report_invalid(ctx, &diagnostics, &args.runbook);
            Exit::Invalid
        }
        Err(LockFailure::Other(e)) => {
            let hint = output::hint_of(&e)
                .unwrap_or_else(|| "`backout lock --update` replaces a lock that no longer matches".to_owned());
            output::error(&e, Some(&hint));
            Exit::Invalid
        }
    }
}

/// What `lock` wrote (or found up to date).
struct LockOutcome {
    path: PathBuf,
    lock: Lockfile,
    written: bool,
}

/// Why `lock` wrote nothing: a runbook that does not parse (its
/// diagnostics, printed as `validate` prints them), or anything else.
enum LockFailure {
    Invalid(backout::diagnostic::Diagnostics),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for LockFailure {
    fn from(e: E) -> Self {
        LockFailure::Other(e.into())
    }
}

fn write_lock(ctx: &Ctx, args: &LockArgs) -> Result<LockOutcome, LockFailure> {
    let parsed = runbook::load(&args.runbook).map_err(|d| LockFailure::Invalid(d.into()))?;
    let base = parsed.source.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut registry: Option<Registry> = None;
    let mut steps = Vec::new();
    for def in &parsed.runbook.steps {
        let id = def.id.get_ref().clone();
        let uses = def.uses.get_ref().clone();
        let reference = PluginRef::parse(&uses, &base).map_err(|e| anyhow::anyhow!("step `{id}`: {e}"))?;
        let entry = match &reference {
            PluginRef::File { path } => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("failed to read plugin `{}`", path.display()))?;
                steps.push(LockedStep { id, uses, name: None, version: None, digest: Digest::of(&bytes) });
                continue;
            }
            PluginRef::Registry { .. } => {
                if registry.is_none() {
                    let accepted = AcceptedSerials::load(&ctx.accepted_serials_path())?;
                    registry = Some(resolve::open_trusted(&ctx.registry, &ctx.trust_store()?, &accepted)?.0);
                }
                let r = registry.as_ref().expect("opened above");
                let entry = reference.entry(r).with_context(|| format!("step `{id}`"))?.expect("a registry entry");
                r.read_verified(&entry.digest).with_context(|| format!("step `{id}`"))?;
                entry
            }
        };
        steps.push(LockedStep {
            id,
            uses,
            name: Some(entry.name.clone()),
            version: Some(entry.version.clone()),
            digest: entry.digest,
        });
    }
    let new = Lockfile { version: backout::lockfile::FORMAT_VERSION, steps };
    let path = backout::lockfile::path_for(&args.runbook);
    match Lockfile::load_for(&args.runbook)? {
        Some(old) if old == new => return Ok(LockOutcome { path, lock: new, written: false }),
        Some(old) if !args.update => {
            let changed: Vec<String> = new
                .steps
                .iter()
                .filter(|s| old.step(&s.id) != Some(*s))
                .map(|s| format!("`{}` → {}", s.id, s.version.as_deref().unwrap_or("file")))
                .collect();
            return Err(LockFailure::Other(anyhow::anyhow!(
                "`{}` exists and differs from what the registry resolves to now (steps: {})",
                path.display(),
                if changed.is_empty() { "removed".to_string() } else { changed.join(", ") }
            )));
        }
        _ => {}
    }
    let written = new.save_for(&args.runbook)?;
    Ok(LockOutcome { path: written, lock: new, written: true })
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_output_escapes_what_serde_json_leaves_raw_and_stays_the_same_json() {
        let value = serde_json::json!({ "k": "del \u{7f} csi \u{9b}31m rlo \u{202e}x" });
        let text = serde_json::to_string(&value).unwrap();
        let inert = super::json_inert(&text);
        assert!(!inert.chars().any(|c| c == '\u{7f}' || c == '\u{9b}' || c == '\u{202e}'), "{inert}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&inert).unwrap(), value);
    }
}
