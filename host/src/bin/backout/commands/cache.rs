//! `backout cache gc|clear`, and what the CLI says about the compile cache
//! while it loads plugins.

use std::path::PathBuf;

use anyhow::Context;
use backout::runtime::cache::{CacheObserver, CacheOutcome, CompileCache, Removed};
use backout::text::count;
use backout_registry::{Digest, ImportReport, Registry};
use serde_json::json;

use super::{Ctx, print_json};
use crate::Exit;
use crate::args::{CacheCommand, Output};
use crate::output::{self, errln, outln};

pub fn dispatch(ctx: &Ctx, command: CacheCommand) -> Exit {
    let result = (|| -> anyhow::Result<(PathBuf, Vec<Removed>)> {
        let dir = ctx.cache_dir.clone().context(
            "there is no compile cache directory: neither XDG_CACHE_HOME nor HOME is set; give `--cache-dir`",
        )?;
        let cache = CompileCache::new(&dir);
        let removed = match command {
            CacheCommand::Clear => cache.clear(),
            CacheCommand::Gc => {
                let registry = Registry::open(&ctx.registry)
                    .context("`backout cache gc` keeps what the registry uses, so it needs the registry")?;
                let runtime = backout::runtime::Runtime::new()?;
                cache.gc(runtime.engine(), |digest| registry.entries().iter().any(|e| e.digest == *digest))
            }
        }
        .with_context(|| format!("failed to clean the compile cache `{}`", dir.display()))?;
        Ok((dir, removed))
    })();
    let (dir, removed) = match result {
        Ok(done) => done,
        Err(e) => {
            output::error(&e, Some("`backout cache clear` empties the cache without looking at the registry"));
            return Exit::Invalid;
        }
    };
    let bytes: u64 = removed.iter().map(|r| r.bytes).sum();
    match ctx.output {
        Output::Json => print_json(&json!({ "cache_dir": dir, "removed": removed, "bytes": bytes })),
        Output::Text => {
            for r in &removed {
                match &r.component {
                    Some(digest) => outln!(
                        "removed {digest} (engine {}…, {}): {}",
                        &r.engine[..12],
                        count(r.bytes as usize, "byte"),
                        r.reason.as_str()
                    ),
                    None => {
                        for file in &r.files {
                            outln!(
                                "removed `{}` ({}): {}",
                                file.display(),
                                count(r.bytes as usize, "byte"),
                                r.reason.as_str()
                            );
                        }
                    }
                }
            }
            let entries = removed.iter().filter(|r| r.component.is_some()).count();
            outln!("{} removed ({}) from `{}`", count(entries, "entry"), count(bytes as usize, "byte"), dir.display());
        }
    }
    Exit::Success
}

/// Prints what the compile cache did: an ignored entry or a failed store
/// always (as a warning: the plugin was compiled and the command goes on),
/// hits and stores with `--verbose`.
pub fn printer(verbose: bool) -> CacheObserver {
    std::sync::Arc::new(move |digest: &Digest, outcome: &CacheOutcome| {
        let stored = |stored: &Result<PathBuf, _>| match stored {
            Ok(path) => format!("stored it in `{}`", path.display()),
            Err(e) => format!("could not store it: {e}"),
        };
        match outcome {
            CacheOutcome::Hit { artifact } if verbose => {
                errln!("compile cache: hit for {digest}: loaded `{}`", artifact.display());
            }
            CacheOutcome::Hit { .. } => {}
            CacheOutcome::Miss { stored: Ok(path) } if verbose => {
                errln!("compile cache: miss for {digest}: compiled it and stored it in `{}`", path.display());
            }
            CacheOutcome::Miss { stored: Ok(_) } => {}
            CacheOutcome::Miss { stored: Err(e) } => {
                errln!("warning: compile cache: compiled {digest} but could not store it: {e}");
            }
            CacheOutcome::Ignored { reason, stored: result } => errln!(
                "warning: compile cache: ignored the entry for {digest} ({reason}); compiled it from its bytes \
                 instead and {}",
                stored(result)
            ),
        }
    })
}

/// Compiles (and caches) the blobs an import or a mirror added, so that the
/// first run does not have to. A failure is a warning: the plugin is then
/// compiled when a runbook uses it.
pub fn precompile(ctx: &Ctx, report: &ImportReport) {
    if report.added_blobs.is_empty() || ctx.no_cache || ctx.cache_dir.is_none() {
        return;
    }
    let warn = |what: String| errln!("warning: {what}; it will be compiled when a runbook uses it");
    let (runtime, registry) = match ctx.runtime().and_then(|r| Ok((r, Registry::open(&ctx.registry)?))) {
        Ok(both) => both,
        Err(e) => return warn(format!("could not precompile what was added: {e:#}")),
    };
    for digest in &report.added_blobs {
        let loaded = registry
            .read_verified(digest)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(runtime.load_verified(digest, &bytes)?));
        if let Err(e) = loaded {
            warn(format!("could not precompile {digest}: {e:#}"));
        }
    }
}
