//! `backout runs`, `show`, `undo` and `resume`, and one run at a time,
//! through the real CLI on the real rollback site.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backout::journal::Event;
use backout_tests::cli::{EXIT_SUCCEEDED, Output};
use backout_tests::http_server::{Response, TestServer};
use backout_tests::{HOSTILE, SMOKE_TEST};

use crate::rollback_site::{Site, Spec, undo_order};

/// Runs the rollback and kills it (debug builds' crash hook) right after
/// `record` journal records: a run left `interrupted` with changes in place.
fn crashed_run(site: &Site, record: usize) -> String {
    let runbook = site.runbook(&Spec::default());
    let out = site
        .sb
        .command()
        .args(["run", "--yes", runbook.to_str().unwrap()])
        .env("BACKOUT_TEST_CRASH_AFTER_RECORD", record.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "it aborted: {}", String::from_utf8_lossy(&out.stderr));
    run_id(site)
}

fn run_id(site: &Site) -> String {
    site.journal()
        .iter()
        .find_map(|e| match e {
            Event::RunStarted(s) => Some(s.run_id.clone()),
            _ => None,
        })
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

#[test]
fn runs_and_show_tell_what_happened_to_each_run() {
    let site = Site::small();
    let ok = site.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(ok.code, EXIT_SUCCEEDED, "{}", ok.all());
    let first = run_id(&site);
    let id = crashed_run(&site, 9);

    let runs = site.sb.run(&["runs"]);
    assert_eq!(runs.code, 0, "{}", runs.all());
    let lines: Vec<&str> = runs.stdout.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATE"), "{}", runs.stdout);
    assert!(lines[1].starts_with(&id) && lines[1].contains("interrupted"), "newest first:\n{}", runs.stdout);
    assert!(
        lines[2].starts_with(&first) && lines[2].contains("succeeded") && lines[2].ends_with("3/3"),
        "{}",
        runs.stdout
    );

    let listed = json(&site.sb.run(&["--output", "json", "runs"]));
    assert_eq!(listed["runs"][0]["id"], id.as_str());
    assert_eq!(listed["runs"][0]["state"], "interrupted");
    assert_eq!(listed["runs"][1]["state"], "succeeded");
    assert_eq!(listed["runs"][1]["steps_done"], 3);

    // `show` by `last` and by a unique prefix; steps, outputs with host paths, undo.
    let show = site.sb.run(&["show", "last"]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert!(show.stdout.starts_with(&format!("Run {id}\n")), "{}", show.stdout);
    assert!(show.stdout.contains("state     interrupted"), "{}", show.stdout);
    assert!(show.stdout.contains("1. flags — env-toggle@0.1.0"), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("(host: {}", site.app.canonicalize().unwrap().display())), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("undo     available: `backout undo {id}`")), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("`backout resume {id}` continues the run")), "{}", show.stdout);
    let by_prefix = site.sb.run(&["show", &first[..first.len() - 2]]);
    assert!(by_prefix.stdout.starts_with(&format!("Run {first}\n")), "{}", by_prefix.all());
    let shown = json(&site.sb.run(&["--output", "json", "show", &first]));
    assert_eq!(shown["run"]["state"], "succeeded");
    assert_eq!(shown["run"]["steps"][1]["status"], "succeeded");
    assert!(shown["run"]["steps"][1]["host_paths"].as_array().unwrap().iter().any(|p| p["key"] == "db"));
    assert_eq!(shown["run"]["steps"][1]["undo_available"], true);

    // A prefix both runs share is ambiguous; an unknown run is named.
    let common: String = first.chars().zip(id.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
    let ambiguous = site.sb.run(&["show", &common]);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.all());
    assert!(ambiguous.stderr.contains("matches 2 runs"), "{}", ambiguous.all());
    let unknown = site.sb.run(&["undo", "nope", "--yes"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no run `nope`"), "{}", unknown.all());
}

#[test]
fn undo_puts_back_a_finished_run_and_a_second_undo_has_nothing_to_do() {
    let site = Site::small();
    let before = site.files();
    let ok = site.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(ok.code, EXIT_SUCCEEDED, "{}", ok.all());
    assert_eq!(site.files(), site.after());

    let refused = site.sb.run(&["undo", "last"]);
    assert_eq!(refused.code, 2, "no terminal and no --yes: {}", refused.all());
    assert!(refused.stderr.contains("pass `--yes`"), "{}", refused.all());
    assert_eq!(site.files(), site.after(), "nothing changed");

    let undo = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert!(undo.stderr.contains("undo     maintenance-off"), "the undo plan comes first:\n{}", undo.all());
    assert!(undo.stdout.contains("Run undone by `backout undo`."), "{}", undo.all());
    assert_eq!(site.files(), before);
    assert_eq!(undo_order(&site.journal()), ["maintenance-off", "restore", "flags"]);
    let again = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("nothing to undo"), "{}", again.all());
    let resume = site.sb.run(&["resume", "last", "--yes"]);
    assert_eq!(resume.code, 2, "{}", resume.all());
    assert!(resume.stderr.contains("it was undone"), "{}", resume.all());
}

#[test]
fn resume_finishes_an_interrupted_run_verifying_the_step_in_doubt() {
    let site = Site::small();
    // Record 4 is the checkpoint of `flags` (run-started, step-started,
    // temporary-file, checkpoint): killed inside its `run`.
    let id = crashed_run(&site, 4);
    let events = site.journal();
    assert!(matches!(events.last(), Some(Event::Checkpoint { step, .. }) if step == "flags"), "{events:?}");
    let resume = site.sb.run(&["resume", &id, "--yes"]);
    assert_eq!(resume.code, EXIT_SUCCEEDED, "{}", resume.all());
    assert!(resume.stderr.contains("in doubt: verify decides"), "{}", resume.all());
    assert_eq!(site.files(), site.after());
    assert!(site.leftovers().is_empty(), "{:?}", site.leftovers());
    assert!(site.journal().iter().any(|e| matches!(e, Event::Resumed { session } if session.command == "resume")));
    let resumed = site.sb.run(&["resume", &id, "--yes"]);
    assert_eq!(resumed.code, 2, "{}", resumed.all());
    assert!(resumed.stderr.contains("nothing to resume"), "{}", resumed.all());
}

#[test]
fn undo_and_resume_refuse_a_changed_runbook_or_plugin_and_say_which() {
    let site = Site::small();
    let id = crashed_run(&site, 9);
    let runbook = site.sb.path().join("rollback.toml");
    let original = std::fs::read_to_string(&runbook).unwrap();
    std::fs::write(&runbook, format!("{original}# edited after the run\n")).unwrap();
    // With or without `--yes` (and no terminal): the refusal comes before the question.
    for args in [["undo", &id, "--yes"], ["resume", &id, "--yes"], ["undo", &id, "-q"], ["resume", &id, "-q"]] {
        let out = site.sb.run(&args);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains(&format!("the runbook `{}` changed since run `{id}` started", runbook.display())),
            "{}",
            out.all()
        );
        assert!(out.stderr.contains("(then `sha256:") && out.stderr.contains("now `sha256:"), "{}", out.all());
    }
    std::fs::write(&runbook, &original).unwrap();

    // Another component under env-toggle's name and version.
    let removed = site.sb.run(&["registry", "remove", "env-toggle@0.1.0"]);
    assert_eq!(removed.code, 0, "{}", removed.all());
    let added = site.sb.run(&["registry", "add", HOSTILE, "--name", "env-toggle", "--version", "0.1.0"]);
    assert_eq!(added.code, 0, "{}", added.all());
    for command in ["undo", "resume"] {
        let out = site.sb.run(&[command, &id, "--yes"]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(out.stderr.contains("plugins changed since run"), "{}", out.all());
        assert!(out.stderr.contains("step `flags`: plugin `env-toggle@0.1.0` was `sha256:"), "{}", out.all());
    }
    assert_ne!(site.files().env, crate::rollback_site::ENV_BEFORE.as_bytes(), "nothing was undone");
}

#[test]
fn a_stale_lock_names_its_run_and_is_broken_only_on_request() {
    let site = Site::small();
    let id = crashed_run(&site, 3);
    let again = site.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(again.stderr.contains(&format!("run `{id}`")), "{}", again.all());
    assert!(again.stderr.contains("whose process is gone"), "{}", again.all());
    assert!(again.stderr.contains(&format!("`backout resume {id}`")), "the hint says how to recover:\n{}", again.all());
    assert_eq!(site.sb.journal_paths().len(), 1, "the refused run left no journal");

    // Resuming the run that holds it takes it over, no flag needed.
    let resumed = site.sb.run(&["resume", &id, "--yes"]);
    assert_eq!(resumed.code, EXIT_SUCCEEDED, "{}", resumed.all());
    assert!(resumed.stderr.contains("took over this run's lock"), "{}", resumed.all());
    assert!(site.journal().iter().any(|e| matches!(e, Event::LockBroken { holder, .. } if holder.run_id == id)));

    // Another crashed run: a new run needs --force-unlock, which is journaled.
    let other = crashed_run(&site, 3);
    let forced = site.cli(&["run", "--yes", "--force-unlock"], &Spec::default());
    assert_eq!(forced.code, EXIT_SUCCEEDED, "{}", forced.all());
    assert!(forced.stderr.contains(&format!("broke the lock of run `{other}`")), "{}", forced.all());
    assert!(site.journal().iter().any(|e| matches!(e, Event::LockBroken { holder, .. } if holder.run_id == other)));
    let runs = site.sb.run(&["runs"]);
    assert!(runs.stdout.contains(&other), "{}", runs.all());
}

#[test]
fn a_second_run_of_the_same_runbook_is_refused_with_the_holders_pid() {
    let site = Site::small();
    site.sb.add(SMOKE_TEST);
    // The health check holds the first run inside its last step until released.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (arrived_tx, arrived_rx) = mpsc::channel::<()>();
    let arrived_tx = Mutex::new(arrived_tx);
    let server = TestServer::start(move |_, n| {
        if n == 0 {
            let _ = arrived_tx.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(180));
        }
        Response::text(200, "ok")
    });
    let spec = Spec { smoke: Some(server.url()), ..Spec::default() };
    let runbook = site.runbook(&spec);
    // Long enough that the first run is still waiting while the second one plans.
    let text = std::fs::read_to_string(&runbook)
        .unwrap()
        .replace("uses = \"smoke-test@0.1.0\"\n", "uses = \"smoke-test@0.1.0\"\ntimeout = \"5m\"\n")
        .replace("name = \"health\"\n", "name = \"health\"\ntimeout = \"4m\"\n");
    std::fs::write(&runbook, text).unwrap();
    let first = site.sb.spawn(&["run", "--yes", runbook.to_str().unwrap()]);
    arrived_rx.recv_timeout(Duration::from_secs(120)).expect("the first run reached its health check");

    let second = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(second.code, 2, "{}", second.all());
    assert!(second.stderr.contains(&format!("pid {}", first.id())), "names the holder:\n{}", second.all());
    assert!(second.stderr.contains("is locked by run"), "{}", second.all());
    assert!(second.stderr.contains("backout run"), "{}", second.all());

    release_tx.send(()).unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (now, after) = (site.files(), site.after());
    assert_eq!((&now.env, &now.db), (&after.env, &after.db), "the first run completed: {now:?}");
    // The lock is gone with the run: the next one may start.
    let third = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(third.code, 0, "{}", third.all());
}

#[test]
fn a_temporary_left_by_a_killed_restore_is_listed_by_plan_and_show_and_removed_by_undo() {
    // Where is the restore's checkpoint? It comes after its staging copy is
    // complete and before the swap: kill backout right there.
    let reference = Site::small();
    let ok = reference.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(ok.code, EXIT_SUCCEEDED, "{}", ok.all());
    let checkpoint = reference
        .journal()
        .iter()
        .position(|e| matches!(e, Event::Checkpoint { step, .. } if step == "restore"))
        .expect("sqlite-restore checkpoints");

    let site = Site::small();
    let before = site.files();
    let id = crashed_run(&site, checkpoint + 1);
    let leftovers = site.leftovers();
    assert_eq!(leftovers.len(), 1, "the staging copy is still there: {leftovers:?}");
    let staged = &leftovers[0];
    assert!(staged.file_name().unwrap().to_string_lossy().contains(".app.db.backout-restore-"), "{staged:?}");
    assert_eq!(site.files().db, before.db, "the live database was not replaced");

    let plan = site.cli(&["plan"], &Spec::default());
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stderr.contains(&format!("run `{id}` was stopped inside step `restore`")), "{}", plan.all());
    assert!(plan.stderr.contains(&staged.canonicalize().unwrap().display().to_string()), "{}", plan.all());
    assert!(plan.stderr.contains(&format!("`backout undo {id}` removes it")), "{}", plan.all());

    let show = site.sb.run(&["show", &id]);
    assert!(show.stdout.contains("leftover temporary file") && show.stdout.contains("still there"), "{}", show.all());

    let undo = site.sb.run(&["undo", &id, "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert!(site.leftovers().is_empty(), "{:?}", site.leftovers());
    assert_eq!(site.files(), before);
    assert!(site.journal().iter().any(|e| matches!(e, Event::TemporaryRemoved { step, .. } if step == "restore")));
}

#[test]
fn undo_of_a_run_killed_before_it_changed_anything_closes_it_and_frees_its_lock() {
    let site = Site::small();
    let before = site.files();
    let id = crashed_run(&site, 1);
    let undo = site.sb.run(&["undo", &id, "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert!(undo.stdout.contains(&format!("nothing to undo: run `{id}` changed nothing")), "{}", undo.all());
    assert!(undo.stdout.contains("it is now `undone`"), "{}", undo.all());
    assert_eq!(site.files(), before);
    let runs = site.sb.run(&["runs"]);
    assert!(runs.stdout.lines().nth(1).is_some_and(|l| l.starts_with(&id) && l.contains("undone")), "{}", runs.all());
    // Its stale lock went with it: the next run needs no --force-unlock.
    let again = site.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(again.code, EXIT_SUCCEEDED, "{}", again.all());
}
