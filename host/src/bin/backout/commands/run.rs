//! `backout run`, and what `run`, `undo` and `resume` share: the lock, the
//! signal handler, and the report at the end. What is shown while they run
//! is the live view's (`live.rs`).

use std::io::{BufRead, IsTerminal, Write};

use backout::execute::{Driver, run_started};
use backout::history::RunRecord;
use backout::journal::event::{Event, Session};
use backout::journal::{self, Journal};
use backout::plan::Plan;
use backout::recorder::Recorder;
use backout::report;
use backout::run_lock::{Broken, Resources, RunLock, Takeover};
use backout::runtime::interrupt::Interrupt;

use super::{Ctx, load_plan};
use crate::Exit;
use crate::args::{Output, RunArgs};
use crate::live::Live;
use crate::output::{self, err, errln};

/// The live view of `run`, `undo` and `resume` (made in `dispatch`).
pub(super) fn live(ctx: &Ctx) -> Live {
    ctx.live.clone().expect("run, undo and resume have a live view")
}

pub async fn run(ctx: &Ctx, args: &RunArgs) -> Exit {
    let live = live(ctx);
    let plan = match load_plan(ctx, &args.runbook).await {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    // A plan with nothing to change has nothing to confirm: with checks it
    // runs them; without, nothing at all (see `NOTHING_TO_RUN`).
    let changes = plan.changes();
    let yes = args.yes || !changes.pending;
    // Only now: what is wrong with the runbook matters more than how to say yes.
    if !can_ask(yes, "run", "after reviewing `backout plan`") {
        return Exit::Invalid;
    }
    live.plan(&plan);
    // `-q --yes`: results only; a question always comes with its plan.
    if (ctx.output == Output::Text && live.chatty()) || !yes {
        err!("{}", report::plan_text(&plan));
    }
    for warning in earlier_runs(ctx, &plan) {
        errln!("warning: {warning}");
    }
    if !changes.pending && changes.check == 0 {
        live.nothing_to_change(NOTHING_TO_RUN, &changes);
        if ctx.output == Output::Text {
            errln!("{NOTHING_TO_RUN}");
        }
        return Exit::Success;
    }
    if !yes && !confirm(&format!("Run {}?", backout::text::count(plan.steps.len(), "step"))) {
        errln!("aborted: nothing was run");
        return Exit::Declined;
    }
    if !changes.pending && !args.yes && ctx.output == Output::Text {
        errln!("nothing to change: running the checks without asking");
    }
    if let Some(trust) = &plan.registry_trust
        && let Err(e) = ctx.record_trusted(&trust.root, &trust.trusted)
    {
        output::error(&e.context("failed to record the registry serial"), Some("pass a writable `--state-dir`"));
        return Exit::Invalid;
    }
    let created = Journal::create(&journal::runs_dir(&ctx.state_dir), &plan.name, |id| {
        run_started(&plan, id, Session::current("run"))
    });
    let (journal, first) = match created {
        Ok(j) => j,
        Err(e) => {
            output::error(&anyhow::Error::from(e), Some("pass a writable `--state-dir`"));
            return Exit::Invalid;
        }
    };
    let run_id = journal.run_id().to_string();
    let takeover = if args.force_unlock { Takeover::ForceUnlock } else { Takeover::No };
    let (lock, broken) = match take_lock(ctx, &plan, &run_id, "run", takeover) {
        Ok(l) => l,
        Err(exit) => {
            // Nothing ran: the empty run directory says nothing useful.
            let _ = std::fs::remove_dir_all(journal.path().parent().unwrap_or(journal.path()));
            return exit;
        }
    };
    errln!();
    let recorder = Recorder::started(journal, &first, live.journal());
    journal_broken_locks(&recorder, broken);
    let interrupt = listen_for_signals(&run_id);
    let driver = Driver { plan: &plan, observer: live.calls(), interrupt, recorder: recorder.clone() };
    let record = driver.run().await;
    drop(lock);
    finish(ctx, &record, &recorder, Exit::of_run(record.state))
}

/// What `run` says of a re-run of a rollback already in place: every step
/// says so and none has even a check to run, so nothing is confirmed, run
/// or journaled (the plan is still shown: what is in place is worth seeing).
const NOTHING_TO_RUN: &str = "nothing to change: every step is already in place; nothing was run";

/// Locks the runbook and every read-write directory of `plan` for `run_id`;
/// a refusal is printed, naming the holder.
pub(super) fn take_lock(
    ctx: &Ctx,
    plan: &Plan,
    run_id: &str,
    command: &str,
    takeover: Takeover,
) -> Result<(RunLock, Vec<Broken>), Exit> {
    let runbook = std::fs::canonicalize(&plan.path).unwrap_or_else(|_| plan.path.clone());
    let mut dirs: Vec<_> = plan
        .steps
        .iter()
        .flat_map(|s| s.grants.dirs.iter())
        .filter(|d| d.access == backout::capability::files::Access::ReadWrite)
        .map(|d| d.host.clone())
        .collect();
    dirs.sort();
    dirs.dedup();
    let resources = Resources { runbook, dirs };
    let holder = backout::run_lock::Holder::current(run_id, command);
    RunLock::acquire(&ctx.state_dir.join("locks"), &resources, holder, takeover).map_err(|e| {
        let hint = e.hint();
        output::error(&anyhow::Error::from(e).context("refusing to start: another run holds a lock"), hint.as_deref());
        Exit::Invalid
    })
}

/// Journals each lock that was broken (`--force-unlock`) or taken over
/// (the run's own stale lock, by `resume` or `undo`).
pub(super) fn journal_broken_locks(recorder: &Recorder, broken: Vec<Broken>) {
    let own = recorder.with_record(|r| r.id.clone());
    for b in broken {
        if b.holder.run_id == own {
            errln!(
                "note: took over this run's lock, left by its {} process (pid {}), which is gone",
                b.holder.command,
                b.holder.pid
            );
        } else {
            errln!("warning: broke the lock of {} ({})", b.holder, b.liveness);
        }
        recorder.fact(Event::LockBroken { holder: b.holder, file: b.file });
    }
}

/// Installs the Ctrl-C / SIGTERM handler for a run: the first signal sets
/// the interrupt (the run stops at the next safe point and applies its
/// policy), the second exits at once.
pub(super) fn listen_for_signals(run_id: &str) -> Interrupt {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = Interrupt::new();
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        errln!("warning: cannot listen for Ctrl-C; it will stop backout at once");
        return interrupt;
    };
    let flag = interrupt.clone();
    let run_id = run_id.to_string();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            count += 1;
            if count == 1 {
                errln!(
                    "\nbackout: {name}: stopping at the next safe point; press Ctrl-C again to exit at once \
                     (the run can then be resumed or undone)"
                );
                flag.trigger(name);
            } else {
                errln!("\nbackout: {name} again: exiting now. See where the run stopped: backout show {run_id}");
                std::process::exit(Exit::Killed as i32);
            }
        }
    });
    interrupt
}

/// Prints the summary (or, with events, the `report` line) and returns `exit`.
pub(super) fn finish(ctx: &Ctx, record: &RunRecord, recorder: &Recorder, exit: Exit) -> Exit {
    let journal = recorder.journal_path();
    live(ctx).finish(record, journal.as_deref(), &recorder.journal_errors(), exit);
    exit
}

/// Whether `command` may go on to its question: with `--yes`, or with a
/// terminal to ask on; otherwise says so (naming what to review first,
/// `review`) and returns false. Called after the runbook (or the run) was
/// checked, so its problems are reported first.
pub(super) fn can_ask(yes: bool, command: &str, review: &str) -> bool {
    if yes || std::io::stdin().is_terminal() {
        return true;
    }
    output::error(
        &anyhow::anyhow!("refusing to {command} without confirmation: stdin is not a terminal"),
        Some(&format!("pass `--yes` to {command} non-interactively, {review}")),
    );
    false
}

/// Asks `question [y/N]` on the terminal.
pub(super) fn confirm(question: &str) -> bool {
    err!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// What earlier runs of this runbook left behind: unfinished runs with
/// changes in place, and temporary files a killed step left on disk. `plan`
/// and `run` print these as warnings.
pub(super) fn earlier_runs(ctx: &Ctx, plan: &Plan) -> Vec<String> {
    let path = std::path::absolute(&plan.path).unwrap_or_else(|_| plan.path.clone());
    let mut warnings = Vec::new();
    for (record, _) in super::runs::recent_runs(&ctx.state_dir, 50) {
        if record.header.runbook.path != path {
            continue;
        }
        for (step, temp) in record.temporaries() {
            let Some(host) = &temp.host_path else { continue };
            if let Ok(meta) = std::fs::symlink_metadata(host) {
                warnings.push(format!(
                    "run `{}` was stopped inside step `{}`, which left the temporary file `{}` ({}); \
                     `backout undo {}` removes it",
                    record.id,
                    step.id(),
                    host.display(),
                    backout::quantity::format_size(meta.len()),
                    record.id
                ));
            }
        }
        use backout::journal::event::RunState;
        if matches!(record.state, RunState::Interrupted | RunState::NeedsAttention)
            && record.steps.iter().any(|s| s.needs_undo())
        {
            warnings.push(format!(
                "run `{}` of this runbook is {} with changes in place; see `backout show {}`",
                record.id, record.state, record.id
            ));
        }
    }
    warnings
}
