//! One function per subcommand; each returns the exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use backout::journal::{self, Journal};
use backout::plan::Plan;
use backout::report;
use backout::resolve::{self, Options};
use backout::runbook;
use backout::runtime::{Runtime, WORLD};
use backout_registry::{Digest, Registry};
use serde_json::json;

use crate::Exit;
use crate::args::{Cli, Command, InspectArgs, Output, RegistryCommand, RunArgs, RunbookArgs};
use crate::output;

pub async fn dispatch(cli: Cli) -> Exit {
    let registry = cli.global.registry.clone().unwrap_or_else(default_registry);
    let ctx = Ctx { registry, output: cli.global.output };
    match cli.command {
        Command::Validate(args) => validate(&ctx, &args).await,
        Command::Plan(args) => plan(&ctx, &args).await,
        Command::Run(args) => run(&ctx, &args).await,
        Command::Inspect(args) => inspect(&ctx, &args).await,
        Command::Registry(RegistryCommand::Add { file, name, version }) => {
            registry_add(&ctx, &file, name.as_deref(), version.as_deref()).await
        }
        Command::Registry(RegistryCommand::List) => registry_list(&ctx),
    }
}

struct Ctx {
    registry: PathBuf,
    output: Output,
}

/// `$XDG_DATA_HOME/backout/registry`, else `~/.local/share/backout/registry`.
fn default_registry() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("backout/registry");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/backout/registry")
}

fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn new_runtime() -> Result<Runtime, Exit> {
    Runtime::new().map_err(|e| {
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
    let runtime = new_runtime()?;
    let options = Options {
        registry: ctx.registry.clone(),
        var_overrides: args.vars.clone(),
        env: Box::new(|name| std::env::var(name).ok()),
        observer: output::log_printer(),
    };
    match resolve::resolve(&parsed, &runtime, &options).await {
        Ok(plan) => Ok(plan),
        Err(diagnostics) => {
            report_invalid(ctx, &diagnostics, &args.runbook);
            Err(Exit::Invalid)
        }
    }
}

fn report_invalid(ctx: &Ctx, diagnostics: &backout::diagnostic::Diagnostics, runbook: &Path) {
    output::diagnostics(diagnostics, runbook);
    if ctx.output == Output::Json {
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
                eprintln!("{w}");
            }
            let n = plan.steps.len();
            println!(
                "ok: `{}` is valid: {n} step{}, every plugin verified and its config checked",
                plan.name,
                if n == 1 { "" } else { "s" }
            );
        }
    }
    Exit::Success
}

async fn plan(ctx: &Ctx, args: &RunbookArgs) -> Exit {
    let plan = match load_plan(ctx, args).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(report::PlanView::new(&plan)).unwrap_or_default()),
        Output::Text => print!("{}", report::plan_text(&plan)),
    }
    Exit::Success
}

async fn run(ctx: &Ctx, args: &RunArgs) -> Exit {
    let interactive = std::io::stdin().is_terminal();
    if !args.yes && !interactive {
        output::error(
            &anyhow::anyhow!("refusing to run without confirmation: stdin is not a terminal"),
            Some("pass `--yes` to run non-interactively, after reviewing `backout plan`"),
        );
        return Exit::Invalid;
    }
    let plan = match load_plan(ctx, &args.runbook).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    if ctx.output == Output::Text || !args.yes {
        eprint!("{}", report::plan_text(&plan));
    }
    if !args.yes && !confirm(plan.steps.len()) {
        eprintln!("aborted: nothing was run");
        return Exit::Declined;
    }
    let state_dir = args.state_dir.clone().unwrap_or_else(journal::default_state_dir);
    let mut journal = match Journal::create(&state_dir.join("runs"), &plan.name) {
        Ok(j) => j,
        Err(e) => {
            output::error(&anyhow::Error::from(e), Some("pass a writable `--state-dir`"));
            return Exit::Invalid;
        }
    };
    eprintln!();
    let report = backout::execute::execute(&plan, output::log_printer(), Some(&mut journal)).await;
    match ctx.output {
        Output::Json => print_json(&json!({
            "plan": report::PlanView::new(&plan),
            "run": report::run_json(&plan, &report),
        })),
        Output::Text => print!("{}", report::run_text(&plan, &report)),
    }
    if report.succeeded { Exit::Success } else { Exit::StepFailed }
}

fn confirm(steps: usize) -> bool {
    eprint!("Run {steps} step{}? [y/N] ", if steps == 1 { "" } else { "s" });
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Reads a plugin named on the command line: a file, or `name@version` in
/// the registry (verified against the index).
fn read_plugin(ctx: &Ctx, plugin: &str) -> anyhow::Result<(Vec<u8>, String)> {
    if plugin.ends_with(".wasm") || plugin.contains('/') || Path::new(plugin).exists() {
        let bytes = std::fs::read(plugin).with_context(|| format!("failed to read `{plugin}`"))?;
        return Ok((bytes, format!("file `{plugin}`")));
    }
    let (name, version) =
        plugin.split_once('@').with_context(|| format!("`{plugin}` is neither a file nor `name@version`"))?;
    let registry = Registry::open(&ctx.registry)?;
    let entry = registry
        .find(name, version)
        .with_context(|| format!("`{plugin}` is not in the registry at `{}`", ctx.registry.display()))?;
    let bytes = registry.read_verified(&entry.digest)?;
    Ok((bytes, format!("registry `{}`", ctx.registry.display())))
}

async fn inspect(ctx: &Ctx, args: &InspectArgs) -> Exit {
    let (bytes, source) = match read_plugin(ctx, &args.plugin) {
        Ok(b) => b,
        Err(e) => {
            output::error(&e, None);
            return Exit::Invalid;
        }
    };
    let digest = Digest::of(&bytes);
    let Ok(runtime) = new_runtime() else { return Exit::Invalid };
    let plugin = match runtime.load(&bytes) {
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
            "size": bytes.len(),
            "source": source,
            "world": WORLD,
            "imports": plugin.imports,
            "exports": plugin.exports,
            "info": info,
        })),
        Output::Text => {
            println!("plugin    {} {} — {}", info.name, info.version, info.summary);
            println!("digest    {digest} ({} bytes)", bytes.len());
            println!("source    {source}");
            println!("world     {WORLD}");
            println!("exports   {}", plugin.exports.join(", "));
            println!("imports   {}", plugin.imports.join("\n          "));
            let files = match info.needs.files {
                backout::runtime::FileNeed::None => "none",
                backout::runtime::FileNeed::Read => "read",
                backout::runtime::FileNeed::ReadWrite => "read-write",
            };
            let env = if info.needs.env.is_empty() { "none".to_string() } else { info.needs.env.join(", ") };
            println!(
                "needs     files: {files}; env: {env}; network: {}",
                if info.needs.network { "yes" } else { "no" }
            );
            println!("config schema:");
            for line in serde_json::to_string_pretty(&info.config_schema).unwrap_or_default().lines() {
                println!("  {line}");
            }
        }
    }
    Exit::Success
}

async fn describe(plugin: &backout::runtime::Plugin) -> anyhow::Result<backout::runtime::PluginInfo> {
    let grants = backout::capability::Grants::default();
    let ctx = backout::runtime::CallContext {
        step: "describe",
        grants: &grants,
        limits: Default::default(),
        observer: output::log_printer(),
    };
    plugin.describe(&ctx).await.result.map_err(|f| anyhow::anyhow!("the plugin failed to describe itself: {f}"))
}

async fn registry_add(ctx: &Ctx, file: &Path, name: Option<&str>, version: Option<&str>) -> Exit {
    let result: anyhow::Result<backout_registry::Entry> = async {
        let bytes = std::fs::read(file).with_context(|| format!("failed to read `{}`", file.display()))?;
        let runtime = Runtime::new()?;
        let plugin =
            runtime.load(&bytes).with_context(|| format!("`{}` is not a usable backout plugin", file.display()))?;
        let info = describe(&plugin).await?;
        let name = name.unwrap_or(&info.name);
        let version = version.unwrap_or(&info.version);
        let mut registry = Registry::open_or_init(&ctx.registry)?;
        Ok(registry.add(name, version, WORLD, &bytes)?)
    }
    .await;
    match result {
        Ok(entry) => {
            match ctx.output {
                Output::Json => print_json(&serde_json::to_value(&entry).unwrap_or_default()),
                Output::Text => println!(
                    "added {}@{} ({}, {} bytes) to `{}`",
                    entry.name,
                    entry.version,
                    entry.digest,
                    entry.size,
                    ctx.registry.display()
                ),
            }
            Exit::Success
        }
        Err(e) => {
            output::error(&e, None);
            Exit::Invalid
        }
    }
}

fn registry_list(ctx: &Ctx) -> Exit {
    let registry = match Registry::open(&ctx.registry) {
        Ok(r) => r,
        Err(e) => {
            output::error(&anyhow::Error::from(e), Some("add a plugin with `backout registry add FILE`"));
            return Exit::Invalid;
        }
    };
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(registry.entries()).unwrap_or_default()),
        Output::Text => {
            if registry.entries().is_empty() {
                println!("the registry at `{}` is empty", ctx.registry.display());
            }
            for e in registry.entries() {
                println!("{:<24} {:<12} {}  {:>10} bytes  {}", e.name, e.version, e.digest, e.size, e.added);
            }
        }
    }
    Exit::Success
}
