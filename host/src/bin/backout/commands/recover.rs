//! `backout undo RUN` and `backout resume RUN`: acting on a run from its journal.
//!
//! Both rebuild the run's record from the journal, refuse unless the
//! runbook's bytes and every plugin's digest are exactly what the run used,
//! show what they will do, ask, take the locks (a stale lock of this very
//! run is taken over), append to the run's journal and drive it.

use std::path::{Path, PathBuf};

use backout::execute::Driver;
use backout::history::{RunRecord, StepProgress};
use backout::journal::Journal;
use backout::journal::event::{Event, RunState, Session};
use backout::plan::Plan;
use backout::recorder::Recorder;
use backout::run_lock::Takeover;
use backout::runbook;
use backout_registry::Digest;

use super::run::{can_ask, confirm, finish, journal_broken_locks, listen_for_signals, live, take_lock};
use super::runs::load_run;
use super::{Ctx, resolve_parsed};
use crate::Exit;
use crate::args::RecoverArgs;
use crate::output::{self, err, errln, outln};

/// `backout undo RUN`.
pub async fn undo(ctx: &Ctx, args: &RecoverArgs) -> Exit {
    let (dir, record) = match prepare(ctx, args) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    if record.state == RunState::Undone {
        if live(ctx).events() {
            crate::live::report_only(&record, Some(&dir.join("journal.jsonl")), Exit::Success);
        } else {
            outln!("nothing to undo: run `{}` is already undone", record.id);
        }
        return Exit::Success;
    }
    let to_undo: Vec<_> = record.steps.iter().rev().filter(|s| !s.header.always && s.has_debris()).collect();
    let plan = match recovery_plan(ctx, &record).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    if !can_ask(args.yes, "undo", &format!("after reviewing `backout show {}`", args.run)) {
        return Exit::Invalid;
    }
    live(ctx).plan(&plan);
    if to_undo.is_empty() {
        // Nothing to put back: record that the run ends here, so it stops
        // showing as interrupted or failed, and its stale lock goes.
        let id = record.id.clone();
        let Some((recorder, lock)) = take_over(ctx, args, &plan, &dir, record, "undo") else { return Exit::Invalid };
        let driver = Driver { plan: &plan, observer: live(ctx).calls(), interrupt: Default::default(), recorder };
        let record = driver.undo_run().await;
        drop(lock);
        if live(ctx).events() {
            return finish(ctx, &record, &driver.recorder, Exit::Success);
        }
        outln!("nothing to undo: run `{id}` changed nothing that is still in place; it is now `{}`", record.state);
        return Exit::Success;
    }
    let mut text = format!("Undo run `{}` of `{}`, newest step first:\n\n", record.id, record.header.runbook.name);
    for s in &to_undo {
        if s.needs_undo() {
            text.push_str(&format!("  undo     {} — {}\n", s.id(), s.header.plugin));
            for (key, guest, host) in s.host_paths() {
                text.push_str(&format!("           {key}: {guest}  (host: {})\n", host.display()));
            }
        }
        for t in &s.temporaries {
            let host = t.host_path.as_ref().map_or_else(|| t.path.clone(), |h| h.display().to_string());
            text.push_str(&format!("  remove   {host}  (a temporary file `{}` left)\n", s.id()));
        }
    }
    err!("{text}\n");
    if !go_ahead(args, &format!("Undo {}?", backout::text::count(to_undo.len(), "step"))) {
        return Exit::Declined;
    }
    let run_id = record.id.clone();
    let Some((recorder, lock)) = take_over(ctx, args, &plan, &dir, record, "undo") else { return Exit::Invalid };
    let driver = Driver { plan: &plan, observer: live(ctx).calls(), interrupt: listen_for_signals(&run_id), recorder };
    let record = driver.undo_run().await;
    drop(lock);
    let exit = match record.state {
        RunState::Undone => Exit::Success,
        state => Exit::of_run(state),
    };
    finish(ctx, &record, &driver.recorder, exit)
}

/// `backout resume RUN`.
pub async fn resume(ctx: &Ctx, args: &RecoverArgs) -> Exit {
    let (dir, record) = match prepare(ctx, args) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let refusal = match record.state {
        RunState::Succeeded => Some("it succeeded; there is nothing to resume".to_string()),
        RunState::Undone => Some("it was undone; start a new run with `backout run`".to_string()),
        RunState::NeedsAttention => {
            Some(format!("an undo failed; finish putting things back with `backout undo {}`", record.id))
        }
        _ if record.undo_began() => Some(format!("it was partly undone; finish with `backout undo {}`", record.id)),
        _ => None,
    };
    if let Some(why) = refusal {
        output::error(&anyhow::anyhow!("cannot resume run `{}`: {why}", record.id), None);
        return Exit::Invalid;
    }
    let plan = match recovery_plan(ctx, &record).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    if !can_ask(args.yes, "resume", &format!("after reviewing `backout show {}`", args.run)) {
        return Exit::Invalid;
    }
    live(ctx).plan(&plan);
    let mut text = format!("Resume run `{}` of `{}`:\n\n", record.id, record.header.runbook.name);
    let width = record.steps.iter().map(|s| s.id().len()).max().unwrap_or(0);
    for s in &record.steps {
        let what = match s.progress {
            StepProgress::Succeeded if !s.header.always => "done: not run again",
            StepProgress::InDoubt if s.outputs.is_some() => {
                "in doubt: verify decides; if it fails, undo it and run it again"
            }
            StepProgress::Failed if s.needs_undo() => "failed with its change in place: undo it, then run it again",
            StepProgress::InDoubt => "in doubt, but it recorded no change: run it again",
            StepProgress::Failed => "failed: run it again",
            _ => "run",
        };
        text.push_str(&format!("  {:<width$}  {what}\n", s.id()));
    }
    err!("{text}\n");
    if !go_ahead(args, "Resume?") {
        return Exit::Declined;
    }
    let run_id = record.id.clone();
    let Some((recorder, lock)) = take_over(ctx, args, &plan, &dir, record, "resume") else { return Exit::Invalid };
    let driver = Driver { plan: &plan, observer: live(ctx).calls(), interrupt: listen_for_signals(&run_id), recorder };
    let record = driver.run().await;
    drop(lock);
    finish(ctx, &record, &driver.recorder, Exit::of_run(record.state))
}

/// Finds the run and refuses a live one. Whether there is a terminal to ask
/// on is checked later, once the run and its runbook are known to be usable.
fn prepare(ctx: &Ctx, args: &RecoverArgs) -> Result<(PathBuf, RunRecord), Exit> {
    let (dir, record) = load_run(ctx, &args.run).map_err(|e| {
        output::error(&e, Some("`backout runs` lists the runs this state directory holds"));
        Exit::Invalid
    })?;
    if record.state == RunState::Running {
        let s = record.sessions.last().expect("a run has a session");
        output::error(
            &anyhow::anyhow!(
                "run `{}` is still running (backout {}, pid {} on host `{}`)",
                record.id,
                s.command,
                s.pid,
                s.host
            ),
            Some("wait for it to finish, or stop it (Ctrl-C stops it at a safe point)"),
        );
        return Err(Exit::Invalid);
    }
    Ok((dir, record))
}

fn go_ahead(args: &RecoverArgs, question: &str) -> bool {
    if args.yes || confirm(question) {
        return true;
    }
    errln!("aborted: nothing was changed");
    false
}

/// The plan of the run's runbook as it is now, refused unless the runbook's
/// bytes and every plugin's digest are what the run started with. Plugins
/// are not asked to plan: the world has moved since the run.
async fn recovery_plan(ctx: &Ctx, record: &RunRecord) -> Result<Plan, Exit> {
    let runbook = &record.header.runbook;
    let refuse = |message: String, hint: &str| {
        output::error(&anyhow::anyhow!(message), Some(hint));
        Exit::Invalid
    };
    let bytes = std::fs::read(&runbook.path).map_err(|e| {
        refuse(
            format!("cannot read the runbook `{}` of run `{}`: {e}", runbook.path.display(), record.id),
            "put the runbook back where the run read it; its digest must match",
        )
    })?;
    let found = Digest::of(&bytes).to_string();
    if found != runbook.sha256 {
        return Err(refuse(
            format!(
                "the runbook `{}` changed since run `{}` started (then `{}`, now `{found}`)",
                runbook.path.display(),
                record.id,
                runbook.sha256
            ),
            "undo and resume use exactly the runbook the run used; restore that version (from version control)",
        ));
    }
    let parsed = match runbook::parse(backout::diagnostic::SourceFile::new(
        &runbook.path,
        String::from_utf8_lossy(&bytes).into_owned(),
    )) {
        Ok(p) => p,
        Err(d) => {
            output::diagnostics(&d.into(), &runbook.path);
            return Err(Exit::Invalid);
        }
    };
    let plan = resolve_parsed(ctx, &parsed, &runbook.path, record.header.overrides.clone(), false).await?;
    let changed: Vec<String> = record
        .header
        .steps
        .iter()
        .filter_map(|then| match plan.step(&then.id) {
            None => Some(format!("step `{}` is gone from the runbook", then.id)),
            Some(now) if now.digest.to_string() != then.digest => Some(format!(
                "step `{}`: plugin `{}` was `{}`, is now `{}`",
                then.id, then.uses, then.digest, now.digest
            )),
            Some(_) => None,
        })
        .collect();
    if !changed.is_empty() {
        return Err(refuse(
            format!("plugins changed since run `{}` started: {}", record.id, changed.join("; ")),
            "undo and resume run exactly the plugins the run used; put those versions back in the registry \
             (`backout registry add`) or pin them with the run's lock",
        ));
    }
    Ok(plan)
}

/// Takes the locks (the run's own stale lock is taken over), reopens the
/// journal, records who took the run over, and journals broken locks.
fn take_over(
    ctx: &Ctx,
    args: &RecoverArgs,
    plan: &Plan,
    dir: &Path,
    record: RunRecord,
    command: &str,
) -> Option<(std::sync::Arc<Recorder>, backout::run_lock::RunLock)> {
    let takeover = if args.force_unlock { Takeover::ForceUnlock } else { Takeover::OwnRun };
    let (lock, broken) = take_lock(ctx, plan, &record.id, command, takeover).ok()?;
    let journal = match Journal::open(dir) {
        Ok(j) => j,
        Err(e) => {
            output::error(&anyhow::Error::from(e), Some("the journal must be writable by this user"));
            return None;
        }
    };
    let recorder = Recorder::continuing(journal, record, live(ctx).journal());
    if let Err(e) = recorder.announce(Event::Resumed { session: Session::current(command) }) {
        output::error(&anyhow::anyhow!(e).context("failed to write the journal"), None);
        return None;
    }
    journal_broken_locks(&recorder, broken);
    errln!();
    Some((recorder, lock))
}
