//! Crash tests: backout killed while it rolls back a real site (a `.env`, a
//! SQLite database of tens of MiB, a maintenance flag), then resumed or
//! undone. Afterwards every file must be byte-identical to its state before
//! the run or after a complete run — never in between — with no temporary
//! file or partial safety copy left, and every journal must read back.
//!
//! Kill points are driven two ways: deterministically, with the debug
//! build's `BACKOUT_TEST_CRASH_AFTER_RECORD=N` (the process aborts right after
//! its N-th journal record is durable: between any two state changes of every
//! step, verify and undo, and inside plugin calls at their checkpoints and
//! temporary files), and by real SIGKILLs at times spread over a run.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use backout::journal::Event;
use backout_tests::cli::EXIT_INTERRUPTED;

use crate::rollback_site::{ENV_AFTER, ENV_BEFORE, Files, Site, Spec, event_kinds, make_db};

/// Rows of the crash tests' databases: about 24 MiB each.
const ROWS: usize = 100_000;

/// The live database and the backup, made once.
fn databases() -> &'static (Vec<u8>, Vec<u8>) {
    static DBS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    DBS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        make_db(&dir.path().join("live.db"), ROWS, "live");
        make_db(&dir.path().join("backup.db"), ROWS + 7, "backup");
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        let dbs = (read("live.db"), read("backup.db"));
        assert!(dbs.0.len() > 20 << 20, "tens of MiB: {}", dbs.0.len());
        dbs
    })
}

fn big_site() -> Site {
    let (live, backup) = databases();
    Site::with_databases(live, backup)
}

/// Runs `backout ARGS…` with `env`; `None` when it died of a signal.
fn backout(site: &Site, args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = site.sb.command();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn crash_after(n: usize) -> Vec<(&'static str, String)> {
    vec![("BACKOUT_TEST_CRASH_AFTER_RECORD", n.to_string())]
}

/// The files are all as before the run, or all as after a complete one.
fn assert_whole(site: &Site, expected: &Files, what: &str, before: &Files) {
    let now = site.files();
    assert_eq!(
        String::from_utf8_lossy(&now.env),
        String::from_utf8_lossy(&expected.env),
        "{what}: .env (before: {ENV_BEFORE:?}, after: {ENV_AFTER:?})"
    );
    assert!(now.db == expected.db, "{what}: the database is not the expected one ({} bytes)", now.db.len());
    assert_eq!(now.flag, expected.flag, "{what}: the maintenance flag");
    assert!(site.leftovers().is_empty(), "{what}: debris left: {:?}", site.leftovers());
    site.check_safety_copies(before);
    site.check_journals_read();
}

/// Recovers a crashed run: `resume` (must end with everything done) or
/// `undo` (must end with everything as `before`). Returns what the files must be.
fn recover(site: &Site, resume: bool, what: &str, before: &Files) -> Files {
    let (show, text) = backout(site, &["show", "last"], &[]);
    assert_eq!(show, Some(0), "{what}: show\n{text}");
    if resume {
        let (code, text) = backout(site, &["resume", "last", "--yes"], &[]);
        // A run killed after its last step verified has nothing left to do.
        assert!(code == Some(0) || (code == Some(2) && text.contains("nothing to resume")), "{what}: resume\n{text}");
        site.after()
    } else {
        let (code, text) = backout(site, &["undo", "last", "--yes"], &[]);
        assert_eq!(code, Some(0), "{what}: undo\n{text}");
        before.clone()
    }
}

/// The number of records a complete session of `args` writes, from a
/// reference run on a fresh site, and the journal's events.
fn reference(spec: &Spec) -> (Site, Vec<Event>) {
    let site = big_site();
    let (code, text) = backout(&site, &["run", "--yes", site.runbook(spec).to_str().unwrap()], &[]);
    assert!(code.is_some(), "{text}");
    let events = site.journal();
    (site, events)
}

#[test]
fn a_run_killed_after_any_record_is_resumed_or_undone_to_a_whole_state() {
    let spec = Spec::default();
    let (_, events) = reference(&spec);
    let records = events.len();
    assert!(records >= 14, "a three-step run journals at least 14 records: {:?}", event_kinds(&events));
    for n in 1..records {
        let site = big_site();
        let before = site.files();
        let runbook = site.runbook(&spec);
        let (code, text) = backout(&site, &["run", "--yes", runbook.to_str().unwrap()], &crash_after(n));
        assert_eq!(code, None, "record {n}: backout should have aborted\n{text}");
        let resume = n % 2 == 1;
        let what = format!("killed after record {n} of {records}, then {}", if resume { "resume" } else { "undo" });
        let expected = recover(&site, resume, &what, &before);
        assert_whole(&site, &expected, &what, &before);
    }
}

#[test]
fn an_undo_killed_after_any_record_finishes_when_run_again() {
    let site = big_site();
    let (code, text) = backout(&site, &["run", "--yes", site.runbook(&Spec::default()).to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = backout(&site, &["undo", "last", "--yes"], &[]);
    assert_eq!(code, Some(0), "{text}");
    let records = site.journal().iter().skip_while(|e| !matches!(e, Event::Resumed { .. })).count();
    assert!(records >= 7, "resumed, three undos and run-finished: {records}");
    for n in 1..records {
        let site = big_site();
        let before = site.files();
        let (code, text) = backout(&site, &["run", "--yes", site.runbook(&Spec::default()).to_str().unwrap()], &[]);
        assert_eq!(code, Some(0), "{text}");
        let (code, text) = backout(&site, &["undo", "last", "--yes"], &crash_after(n));
        assert_eq!(code, None, "undo record {n}: backout should have aborted\n{text}");
        let what = format!("undo killed after its record {n} of {records}, then undo again");
        let expected = recover(&site, false, &what, &before);
        assert_whole(&site, &expected, &what, &before);
    }
}

#[test]
fn unwinding_after_a_failure_killed_after_any_record_is_finished_by_undo() {
    // The last step fails (its directory is read-only by mistake); the
    // policy undoes the restore and the .env. Kill it anywhere in there.
    let spec = Spec { fail: Some(3), ..Spec::default() };
    let (_, events) = reference(&spec);
    let first_undo = events.iter().position(|e| matches!(e, Event::UndoStarted { .. })).expect("the policy undid");
    // From the failing step's start to the end: every record of the unwinding.
    let from = events[..first_undo]
        .iter()
        .rposition(|e| matches!(e, Event::StepStarted { .. }))
        .expect("the failing step started");
    for n in from + 1..events.len() {
        let site = big_site();
        let before = site.files();
        let (code, text) = backout(&site, &["run", "--yes", site.runbook(&spec).to_str().unwrap()], &crash_after(n));
        assert_eq!(code, None, "record {n}: backout should have aborted\n{text}");
        let what = format!("unwinding killed after record {n} of {}, then undo", events.len());
        let expected = recover(&site, false, &what, &before);
        assert_whole(&site, &expected, &what, &before);
    }
}

#[test]
fn a_run_killed_at_any_moment_is_resumed_or_undone_to_a_whole_state() {
    let spec = Spec::default();
    let started = Instant::now();
    let (_, _) = reference(&spec);
    let whole = started.elapsed();
    let kills = 8;
    for i in 1..=kills {
        let site = big_site();
        let before = site.files();
        let runbook = site.runbook(&spec);
        let mut child = site
            .sb
            .command()
            .args(["run", "--yes", runbook.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * i / (kills + 1));
        let _ = child.kill(); // SIGKILL; the run may have ended already
        let status = child.wait().unwrap();
        let resume = i % 2 == 0;
        let what =
            format!("killed at {i}/{} of a run ({status}), then {}", kills + 1, if resume { "resume" } else { "undo" });
        let expected = if site.sb.journal_paths().is_empty() {
            // Killed while it checked the runbook: no run began.
            before.clone()
        } else if status.success() {
            // It finished before the kill: undo still puts everything back.
            if resume { site.after() } else { recover(&site, false, &what, &before) }
        } else {
            recover(&site, resume, &what, &before)
        };
        assert_whole(&site, &expected, &what, &before);
    }
}

#[test]
fn ctrl_c_during_a_long_restore_stops_it_and_the_report_lists_what_changed() {
    let live_rows = ROWS * 3;
    let site = Site::new(live_rows / 10, live_rows);
    let before = site.files();
    let spec = Spec { on_failure: Some("abort"), ..Spec::default() };
    let runbook = site.runbook(&spec);
    let child = site.sb.spawn(&["run", "--yes", runbook.to_str().unwrap()]);
    // Wait until the restore has declared its staging copy: it is copying.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let journals = site.sb.journals();
        if journals.lines().any(|l| l.contains("\"temporary-file\"") && l.contains("\"step\":\"restore\"")) {
            break;
        }
        assert!(Instant::now() < deadline, "the restore never started:\n{journals}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(EXIT_INTERRUPTED), "{all}");
    assert!(stderr.contains("SIGINT: stopping at the next safe point"), "{all}");
    // The signal lands between two host calls (the host's words) or inside
    // the copy, which stops and fails the plugin's call (the plugin's words).
    assert!(
        stdout.contains("FAILED   restore  in run: interrupted by SIGINT")
            || stdout.contains("the copy stopped: interrupted by SIGINT; nothing was changed"),
        "{all}"
    );
    assert!(stdout.contains("State: interrupted"), "{all}");
    // The report lists step 1's change and where its safety copy is.
    let report = &stdout[stdout.find("State: interrupted").unwrap()..];
    assert!(report.contains("flags") && report.contains("completed; NOT undone"), "{report}");
    assert!(report.contains("safety_copy: /app/.env.backout-"), "{report}");
    assert!(report.contains("maintenance-off  not run"), "{report}");
    // The live database is untouched, and the staging copy is gone.
    let now = site.files();
    assert!(now.db == before.db, "the live database changed");
    assert_eq!(now.env, ENV_AFTER.as_bytes());
    assert!(site.leftovers().is_empty(), "{:?}", site.leftovers());

    let undo = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(undo.code, 0, "{}", undo.all());
    assert_eq!(site.files(), before);
    assert!(site.leftovers().is_empty());
    site.check_journals_read();
}
