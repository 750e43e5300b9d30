//! Failure policies through the real CLI on a real three-step rollback
//! (`rollback_site`): `on_failure` × a failure in each step, an undo that
//! fails, retries of transient errors, and `always` steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backout::journal::Event;
use backout_tests::SMOKE_TEST;
use backout_tests::cli::{EXIT_FAILED, EXIT_NEEDS_ATTENTION, EXIT_SUCCEEDED, EXIT_UNDONE};
use backout_tests::http_server::{Response, TestServer};
use rusqlite::Connection;

use crate::rollback_site::{Files, STEPS, Site, Spec, event_kinds, undo_order};

/// Which of the three targets a run should leave changed.
fn expected_changes(policy: &str, fail: usize) -> [bool; 3] {
    let mut changed = [false; 3];
    for (i, slot) in changed.iter_mut().enumerate() {
        let step = i + 1;
        *slot = match policy {
            "undo" => false,
            "abort" => step < fail,
            "continue" => step != fail,
            _ => unreachable!(),
        };
    }
    // Every step fails before changing anything (`restore` checks `expect`
    // on its staged copy, before the swap), so the failing step never leaves
    // a change behind.
    changed
}

#[test]
fn every_policy_meets_a_failure_in_the_first_middle_and_last_step() {
    for policy in ["undo", "abort", "continue"] {
        for fail in 1..=3 {
            let case = format!("on_failure = {policy}, step {fail} fails");
            let site = Site::small();
            let before = site.files();
            let after = site.after();
            let spec = Spec { on_failure: Some(policy), fail: Some(fail), ..Spec::default() };
            let out = site.cli(&["run", "--yes"], &spec);
            let code = if policy == "undo" { EXIT_UNDONE } else { EXIT_FAILED };
            assert_eq!(out.code, code, "{case}:\n{}", out.all());
            assert!(
                out.stdout.contains(&format!("FAILED   {}", STEPS[fail - 1])),
                "{case}: the failing step is reported:\n{}",
                out.all()
            );

            let now = site.files();
            let changed = expected_changes(policy, fail);
            let same = |i: usize, a: &Files, b: &Files| match i {
                0 => a.env == b.env,
                1 => a.db == b.db,
                _ => a.flag == b.flag,
            };
            for (i, step) in STEPS.iter().enumerate() {
                let (want, word) = if changed[i] { (&after, "changed") } else { (&before, "as before") };
                assert!(same(i, &now, want), "{case}: `{step}` should be {word}:\nnow {now:?}\nbefore {before:?}");
            }
            assert!(site.leftovers().is_empty(), "{case}: debris left: {:?}", site.leftovers());
            site.check_safety_copies(&before);

            // The journal says what was undone, newest first.
            let events = site.journal();
            let undone = undo_order(&events);
            let expected: Vec<&str> = match policy {
                "undo" => STEPS[..fail.min(3)]
                    .iter()
                    .rev()
                    .copied()
                    // The failing step changed nothing and recorded no
                    // checkpoint: nothing to undo.
                    .filter(|s| *s != STEPS[fail - 1])
                    .collect(),
                _ => vec![],
            };
            assert_eq!(undone, expected, "{case}: undo order; events {:?}", event_kinds(&events));
            let state = if policy == "undo" { "State: undone" } else { "State: failed" };
            assert!(out.stdout.contains(state), "{case}:\n{}", out.all());
        }
    }
}

#[test]
fn a_failed_undo_ends_in_needs_attention_with_every_step_and_its_safety_copies() {
    // The service comes back during the run, writes to the restored
    // database, and fails its health check: the restore can no longer be
    // undone safely, so unwinding stops there.
    let site = Site::small();
    let db = site.data.join("app.db");
    let hits = Arc::new(AtomicUsize::new(0));
    let server = {
        let (db, hits) = (db.clone(), hits.clone());
        TestServer::start(move |_, _| {
            if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                let conn = Connection::open(&db).unwrap();
                conn.execute("INSERT INTO agents(name, note) VALUES ('written-by-the-service', '')", ()).unwrap();
            }
            Response::text(500, "starting")
        })
    };
    site.sb.add(SMOKE_TEST);
    let before = site.files();
    let spec = Spec { smoke: Some(server.url()), ..Spec::default() };
    let out = site.cli(&["run", "--yes"], &spec);
    assert_eq!(out.code, EXIT_NEEDS_ATTENTION, "{}", out.all());
    assert!(out.stdout.contains("UNDO FAILED  restore"), "{}", out.all());
    assert!(out.stdout.contains("State: needs-attention"), "{}", out.all());
    // The list: each step's state, the host path of its safety copy, what to do.
    let report = &out.stdout[out.stdout.find("State: needs-attention").unwrap()..];
    assert!(report.contains("restore") && report.contains("UNDO FAILED: precondition failed"), "{report}");
    assert!(report.contains("changed since the restore"), "{report}");
    assert!(report.contains("flags") && report.contains("completed; NOT undone"), "{report}");
    assert!(report.contains("smoke") && report.contains("failed, nothing changed"), "{report}");
    assert!(report.contains(&format!("(host: {}", site.app.canonicalize().unwrap().display())), "{report}");
    assert!(report.contains(&format!("(host: {}", site.data.canonicalize().unwrap().display())), "{report}");
    assert!(report.contains("safety_copy: /data/app.db.backout-"), "{report}");
    let run_id = site.journal().iter().find_map(|e| match e {
        Event::RunStarted(s) => Some(s.run_id.clone()),
        _ => None,
    });
    let run_id = run_id.unwrap();
    assert!(report.contains(&format!("`backout undo {run_id}` continues")), "{report}");
    // Unwinding stopped at the failure: `flags` was not undone underneath it.
    assert_eq!(undo_order(&site.journal()), ["restore"]);
    assert_eq!(site.files().env, crate::rollback_site::ENV_AFTER.as_bytes());

    // The operator stops the service and discards what it wrote (puts back
    // the database the restore wrote), then finishes the undo.
    std::fs::copy(site.backups.join("app.db"), &db).unwrap();
    let undo = site.sb.run(&["undo", &run_id, "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert_eq!(site.files(), before, "everything is as it was before the run");
    assert_eq!(undo_order(&site.journal()), ["restore", "restore", "flags"]);
    assert!(site.leftovers().is_empty());
    site.check_journals_read();
}

#[test]
fn a_transient_error_is_retried_and_a_permanent_one_is_not() {
    let site = Site::small();
    site.sb.add(SMOKE_TEST);
    // 503 twice, then healthy.
    let flaky =
        TestServer::start(|_, n| if n < 2 { Response::text(503, "warming up") } else { Response::text(200, "ok") });
    let with_retries = |origin: &str| {
        let runbook = site.runbook(&Spec { smoke: Some(origin.to_string()), ..Spec::default() });
        let text = std::fs::read_to_string(&runbook).unwrap().replace(
            "id = \"smoke\"\nuses = \"smoke-test@0.1.0\"\n",
            "id = \"smoke\"\nuses = \"smoke-test@0.1.0\"\nretries = { attempts = 3, interval = \"50ms\", backoff = 2 }\n",
        );
        std::fs::write(&runbook, text).unwrap();
        site.sb.run(&["run", "--yes", runbook.to_str().unwrap()])
    };
    let out = with_retries(&flaky.url());
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(out.stderr.contains("retry    smoke  attempt 1 of 3 failed in run: transient error"), "{}", out.all());
    let events = site.journal();
    let retries: Vec<(u32, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepRetrying { step, attempt, wait_ms, .. } if step == "smoke" => Some((*attempt, *wait_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(1, 50), (2, 100)], "waits grow by the backoff");
    let attempts: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { step, attempt, .. } if step == "smoke" => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(flaky.count() >= 3, "three attempts reached the server (verify may ask again)");

    // A 404 is not going to change: one request, no retry, and the policy undoes the rest.
    let site = Site::small();
    site.sb.add(SMOKE_TEST);
    let before = site.files();
    let missing = TestServer::start(|_, _| Response::not_found());
    let runbook = site.runbook(&Spec { smoke: Some(missing.url()), ..Spec::default() });
    let text = std::fs::read_to_string(&runbook).unwrap().replace(
        "uses = \"smoke-test@0.1.0\"\n",
        "uses = \"smoke-test@0.1.0\"\nretries = { attempts = 3, interval = \"50ms\" }\n",
    );
    std::fs::write(&runbook, text).unwrap();
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert_eq!(missing.count(), 1, "a permanent error is not retried");
    assert!(!site.journal().iter().any(|e| matches!(e, Event::StepRetrying { .. })));
    assert_eq!(site.files(), before);
}

#[test]
fn always_steps_run_after_a_failure_and_see_the_run_status() {
    let site = Site::small();
    let spec = Spec { fail: Some(2), report: true, ..Spec::default() };
    let out = site.cli(&["run", "--yes"], &spec);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    let status = std::fs::read_to_string(site.status.join("last-rollback")).unwrap();
    assert_eq!(status, "rollback undone restore\n", "the report step ran after the undo and saw its outcome");
    assert!(out.stdout.contains("ok       report"), "{}", out.all());
    // It ran after the unwinding, and was not itself undone.
    let events = site.journal();
    let report_started =
        events.iter().position(|e| matches!(e, Event::StepStarted { step, .. } if step == "report")).unwrap();
    let last_undo = events.iter().rposition(|e| matches!(e, Event::UndoFinished(_))).unwrap();
    assert!(report_started > last_undo, "{:?}", event_kinds(&events));
    assert_eq!(site.files().flag.as_deref(), Some(crate::rollback_site::FLAG.as_bytes()), "maintenance-off never ran");

    // With abort, it reports `failed`; with success, `succeeded` and no step.
    let site = Site::small();
    let out = site
        .cli(&["run", "--yes"], &Spec { on_failure: Some("abort"), fail: Some(3), report: true, ..Spec::default() });
    assert_eq!(out.code, EXIT_FAILED, "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(site.status.join("last-rollback")).unwrap(),
        "rollback failed maintenance-off\n"
    );
    let site = Site::small();
    let out = site.cli(&["run", "--yes"], &Spec { report: true, ..Spec::default() });
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_eq!(std::fs::read_to_string(site.status.join("last-rollback")).unwrap(), "rollback succeeded \n");
    // A later undo of the whole run leaves the report in place: always steps are never undone.
    let undo = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert_eq!(std::fs::read_to_string(site.status.join("last-rollback")).unwrap(), "rollback succeeded \n");
    assert_eq!(undo_order(&site.journal()), ["maintenance-off", "restore", "flags"]);
}

#[test]
fn a_non_critical_step_may_fail_without_failing_the_run() {
    let site = Site::small();
    let runbook = site.runbook(&Spec { fail: Some(3), ..Spec::default() });
    let text = std::fs::read_to_string(&runbook)
        .unwrap()
        .replace("id = \"maintenance-off\"\n", "id = \"maintenance-off\"\ncritical = false\n");
    std::fs::write(&runbook, text).unwrap();
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(out.stdout.contains("(not critical: the run goes on)"), "{}", out.all());
    let files = site.files();
    assert_eq!(files.env, crate::rollback_site::ENV_AFTER.as_bytes());
    assert_eq!(files.db, site.after().db);
}
