//! A rollback run twice: the second `run` finds every step already in place
//! (plugins say so with each action's `effect`) and asks nothing; it runs
//! nothing at all when there is not even a check to run, and only the
//! checks' steps' no-ops otherwise. `plan --detailed-exitcode` answers
//! 0 / 2 / 1 as Terraform does. Real `.env` file, real HTTP server on
//! 127.0.0.1 for the check, real components built from source.

use std::path::PathBuf;

use backout_tests::cli::{Output, Sandbox, snapshot};
use backout_tests::http_server::{Recorded, Response, TestServer};
use backout_tests::{ENV_TOGGLE, SMOKE_TEST};

use crate::bin;

struct App {
    sb: Sandbox,
    dir: PathBuf,
    runbook: PathBuf,
    server: TestServer,
}

impl App {
    /// A feature rollback: turn a flag off in `.env`, then (`checked`) check health.
    fn new(checked: bool) -> Self {
        let sb = Sandbox::new(bin());
        sb.add(ENV_TOGGLE);
        sb.add(SMOKE_TEST);
        let dir = sb.mkdir("app");
        sb.write("app/.env", "FEATURE_X=true\nOTHER=1\n");
        let server = TestServer::start(|req: &Recorded, _| match req.path.as_str() {
            "/health" => Response::text(200, "ok"),
            _ => Response::not_found(),
        });
        let check = format!(
            "\n[[step]]\nid = \"health\"\nuses = \"smoke-test@0.1\"\n\
             with = {{ checks = [{{ url = \"{}/health\" }}] }}\n[step.grants]\nnet = [\"{}\"]\n",
            server.url(),
            server.url()
        );
        let runbook = sb.write(
            "feature.toml",
            format!(
                "version = 1\nname = \"feature\"\n\n\
                 [[step]]\nid = \"flag\"\nuses = \"env-toggle@0.1\"\n\
                 with = {{ file = \"/app/.env\", set = {{ FEATURE_X = \"false\" }} }}\n\
                 [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n{}",
                dir.display(),
                if checked { check.as_str() } else { "" }
            ),
        );
        Self { sb, dir, runbook, server }
    }

    fn backout(&self, args: &[&str]) -> Output {
        let args: Vec<&str> = args.iter().copied().chain([self.runbook.to_str().unwrap()]).collect();
        self.sb.run(&args)
    }

    /// `plan --detailed-exitcode`: asserts its exit code and that its
    /// output holds each of `lines`.
    fn plan(&self, code: i32, lines: &[&str]) {
        let out = self.backout(&["plan", "--detailed-exitcode"]);
        assert_eq!(out.code, code, "{}", out.all());
        for line in lines {
            assert!(out.stdout.contains(line), "`{line}` missing:\n{}", out.stdout);
        }
    }

    fn env(&self) -> String {
        std::fs::read_to_string(self.dir.join(".env")).unwrap()
    }
}

fn runs(sb: &Sandbox) -> usize {
    sb.journal_paths().len()
}

#[test]
fn a_second_run_with_nothing_to_change_or_check_asks_nothing_and_runs_nothing() {
    let app = App::new(false);
    app.plan(2, &["1 step: 1 to change; nothing has been changed.\n"]);

    let ran = app.backout(&["run", "--yes"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(app.env(), "FEATURE_X=false\nOTHER=1\n");
    assert_eq!(runs(&app.sb), 1);

    app.plan(
        0,
        &[
            "leave FEATURE_X as it is in /app/.env  [already in place]\n",
            "1 step: 1 already in place; nothing to change.\n",
        ],
    );

    // `run` without `--yes` and without a terminal would refuse to ask; with
    // nothing to change there is nothing to ask: it says so and exits 0,
    // changing nothing and journaling nothing.
    let before = snapshot(&app.dir);
    let rerun = app.backout(&["run"]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert!(
        rerun.stderr.contains("nothing to change: every step is already in place; nothing was run\n"),
        "{}",
        rerun.stderr
    );
    assert!(!rerun.stderr.contains("[y/N]") && !rerun.stderr.contains("refusing"), "{}", rerun.stderr);
    assert_eq!(snapshot(&app.dir), before, "the directory is unchanged, no safety copy taken");
    assert_eq!(runs(&app.sb), 1, "no run was journaled");
}

#[test]
fn a_second_run_with_only_checks_left_runs_them_without_asking() {
    let app = App::new(true);
    app.plan(2, &["  [check]\n", "2 steps: 1 to change, 1 to check; nothing has been changed.\n"]);
    assert_eq!(app.backout(&["run", "--yes"]).code, 0);
    assert_eq!(app.server.requests().len(), 2, "the check ran, and again in verify");

    // Checks change nothing.
    app.plan(0, &["2 steps: 1 to check, 1 already in place; nothing to change.\n"]);

    // No terminal, no `--yes`: nothing would change, so nothing is asked;
    // the check runs, journaled like any run.
    let before = snapshot(&app.dir);
    let rerun = app.backout(&["run"]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert!(rerun.stderr.contains("nothing to change: running the checks without asking\n"), "{}", rerun.stderr);
    assert!(!rerun.stderr.contains("[y/N]"), "{}", rerun.stderr);
    assert_eq!(snapshot(&app.dir), before, "env-toggle found nothing to write");
    assert_eq!(runs(&app.sb), 2);
    assert_eq!(app.server.requests().len(), 4, "the check ran again");
}

#[test]
fn the_event_stream_of_a_rerun_ends_with_nothing_to_change() {
    let app = App::new(false);
    assert_eq!(app.backout(&["run", "--yes"]).code, 0);
    let out = app.backout(&["--output", "json", "run", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let lines = backout_tests::events::lines(&out.stdout);
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["plan", "nothing-to-change"], "{}", out.stdout);
    let last = &lines[1];
    assert_eq!(last["exit_code"], 0);
    assert_eq!(
        last["changes"],
        serde_json::json!({ "pending": false, "change": 0, "check": 0, "in_place": 1, "unknown": 0 })
    );
    assert_eq!(lines[0]["plan"]["changes"]["pending"], false);
    assert_eq!(lines[0]["plan"]["steps"][0]["preview"]["actions"][0]["effect"], "in-place");
    backout_tests::events::Schema::load().check_stream(&out.stdout);
}

#[test]
fn detailed_exitcode_turns_an_invalid_runbook_into_1_because_2_means_changes() {
    let app = App::new(false);
    let broken = app.sb.write("broken.toml", "version = 1\nname = \"x\"\n[[step]]\nid = \"a\"\n");
    let plain = app.sb.run(&["plan", broken.to_str().unwrap()]);
    assert_eq!(plain.code, 2, "{}", plain.all());
    let detailed = app.sb.run(&["plan", "--detailed-exitcode", broken.to_str().unwrap()]);
    assert_eq!(detailed.code, 1, "{}", detailed.all());
    assert_eq!(detailed.stderr, plain.stderr, "the same error, only the code differs");
}
