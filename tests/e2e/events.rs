//! The event stream (`--output json` of `run`, `undo` and `resume`): real
//! runs with real plugins, every line checked against
//! `docs/events.schema.json`, and the schema shown to catch broken lines.

use backout_tests::cli::{EXIT_FAILED, EXIT_SUCCEEDED, EXIT_UNDONE, Output, Sandbox};
use backout_tests::events::{self, Schema};
use backout_tests::{ENV_TOGGLE, HOSTILE};
use serde_json::{Value, json};

use crate::bin;

/// A sandbox with env-toggle and hostile, and `app/.env` holding a flag.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new(bin());
    sb.add(ENV_TOGGLE);
    sb.add(HOSTILE);
    sb.write("app/.env", "FEATURE=true\nOTHER=1\n");
    sb
}

/// A runbook: turn the flag off (env-toggle), then `second` (a hostile
/// attack table), under `policy`.
fn runbook(sb: &Sandbox, second: &str, policy: &str) -> String {
    let app = sb.path().join("app");
    let text = format!(
        r#"version = 1
name = "events"
on_failure = "{policy}"
rto = "5m"

[[step]]
id = "flags"
uses = "env-toggle@0.1.0"
with = {{ file = "/app/.env", set = {{ FEATURE = "false" }} }}

[step.grants]
dirs = [{{ host = "{}", guest = "/app", mode = "rw" }}]

[[step]]
id = "copy"
uses = "hostile@0.1.0"
expected = "30s"
with = {{ {second} }}
"#,
        app.display()
    );
    sb.write("events.toml", text).to_str().unwrap().to_string()
}

/// The kinds of a stream without the ones that come in varying numbers
/// (log lines, progress, and a plugin's checkpoints and temporary files).
fn milestones(stdout: &str) -> Vec<String> {
    events::kinds(stdout)
        .into_iter()
        .filter(|k| !matches!(k.as_str(), "log" | "progress" | "checkpoint" | "temporary-file"))
        .collect()
}

/// The kinds only the stream has; every other line is a journal record.
fn live_only(kind: &str) -> bool {
    matches!(kind, "plan" | "log" | "progress" | "report" | "error")
}

fn json_run(sb: &Sandbox, runbook: &str) -> Output {
    sb.run(&["--output", "json", "run", "--yes", runbook])
}

#[test]
fn a_successful_run_streams_every_event_in_order_and_each_line_fits_the_schema() {
    let sb = sandbox();
    let rb = runbook(&sb, r#"attack = "narrate", count = 8, size = 4096, pause_ms = 20"#, "undo");
    let out = json_run(&sb, &rb);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    Schema::load().check_stream(&out.stdout);
    // Stderr still shows the live view for whoever watches; results are events only.
    assert!(out.stderr.contains("[copy] run info: info: copying the backup"), "{}", out.all());
    assert!(!out.stderr.contains("ok       flags") && !out.stderr.contains("Run succeeded"), "{}", out.all());

    let lines = events::lines(&out.stdout);
    assert!(lines.iter().all(|l| l["stream"] == 1 && l["time"].is_string()), "{}", out.stdout);
    // The journal's events, in the journal's order, between the plan and the report.
    assert_eq!(
        milestones(&out.stdout),
        [
            "plan",
            "run-started",
            "step-started",
            "step-ran",
            "step-finished",
            "step-started",
            "step-ran",
            "step-finished",
            "run-finished",
            "report"
        ],
        "{}",
        out.stdout
    );
    let on_disk: Vec<Value> = std::fs::read_to_string(&sb.journal_paths()[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let streamed: Vec<&Value> = lines.iter().filter(|l| !live_only(l["event"].as_str().unwrap())).collect();
    assert_eq!(streamed.len(), on_disk.len(), "every journal record is streamed once");
    for (s, d) in streamed.iter().zip(&on_disk) {
        let (mut s, mut d) = ((*s).clone(), d.clone());
        for key in ["stream", "time"] {
            s.as_object_mut().unwrap().remove(key);
        }
        for key in ["format", "time"] {
            d.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(s, d, "a streamed journal event is the journal's own record");
    }

    // Log lines of every level (debug too: the stream is for programs), as they happened.
    let logs: Vec<&Value> = lines.iter().filter(|l| l["event"] == "log" && l["step"] == "copy").collect();
    let levels: Vec<&str> = logs.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["trace", "debug", "info", "warn"], "{}", out.stdout);
    assert!(logs.iter().all(|l| l["phase"] == "run"));
    let copy_started = lines.iter().position(|l| l["event"] == "step-started" && l["step"] == "copy").unwrap();
    let copy_finished = lines.iter().position(|l| l["event"] == "step-finished" && l["step"] == "copy").unwrap();
    let progress: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l["event"] == "progress" && l["step"] == "copy")
        .map(|(i, _)| i)
        .collect();
    assert!(!progress.is_empty() && progress.iter().all(|i| (copy_started..copy_finished).contains(i)));
    let last = &lines[*progress.last().unwrap()];
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(8 * 4096), Some(8 * 4096)),
        "completion is always sent"
    );
    assert_eq!(last["unit"], "bytes");

    // The report is last and needs nothing else.
    let report = lines.last().unwrap();
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["run"]["state"], "succeeded");
    assert_eq!(report["run"]["steps"][0]["id"], "flags");
    assert_eq!(report["run"]["steps"][1]["outputs"]["bytes"], 8 * 4096);
    assert_eq!(report["run"]["rto"]["verdict"], "met", "{report}");
    assert_eq!(report["run"]["steps"][1]["expected_ms"], 30_000);
    assert_eq!(lines[1]["rto_ms"], 300_000, "run-started carries the RTO");
    assert_eq!(lines[0]["plan"]["steps"][1]["id"], "copy");
}

#[test]
fn progress_events_are_rate_limited_but_the_completion_is_always_sent() {
    let sb = sandbox();
    // 400 updates in about 2 s: at most 4 a second get through.
    let rb = runbook(&sb, r#"attack = "narrate", count = 400, size = 1, pause_ms = 5"#, "undo");
    let out = json_run(&sb, &rb);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    let lines = events::lines(&out.stdout);
    let progress: Vec<&Value> = lines.iter().filter(|l| l["event"] == "progress" && l["step"] == "copy").collect();
    let seconds = lines.iter().find(|l| l["event"] == "step-finished" && l["step"] == "copy").unwrap()["elapsed_ms"]
        .as_u64()
        .unwrap() as f64
        / 1000.0;
    let allowed = (seconds * 4.0).ceil() as usize + 2;
    assert!(progress.len() <= allowed, "{} progress events in {seconds:.1}s (at most {allowed})", progress.len());
    assert_eq!(progress.last().unwrap()["done"], 400);
}

#[test]
fn a_failure_that_is_undone_streams_the_undo_and_each_line_fits_the_schema() {
    let sb = sandbox();
    let rb = runbook(&sb, r#"attack = "panic""#, "undo");
    let out = json_run(&sb, &rb);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    Schema::load().check_stream(&out.stdout);
    assert_eq!(
        milestones(&out.stdout),
        [
            "plan",
            "run-started",
            "step-started",
            "step-ran",
            "step-finished",
            "step-started",
            "step-finished",
            "undo-started",
            "undo-finished",
            "run-finished",
            "report"
        ],
        "{}",
        out.stdout
    );
    let lines = events::lines(&out.stdout);
    let failed = lines.iter().find(|l| l["event"] == "step-finished" && l["status"] == "failed").unwrap();
    assert_eq!(failed["step"], "copy");
    assert_eq!(failed["failure"]["kind"], "trap");
    let undone = lines.iter().find(|l| l["event"] == "undo-finished").unwrap();
    assert_eq!((undone["step"].as_str(), undone["result"].as_str()), (Some("flags"), Some("undone")));
    // The plugin's stderr is streamed as log lines of the step, as it happens.
    assert!(lines.iter().any(|l| l["event"] == "log" && l["step"] == "copy" && l["level"] == "stderr"));
    let report = lines.last().unwrap();
    assert_eq!(report["exit_code"], EXIT_UNDONE);
    assert_eq!(report["run"]["state"], "undone");
    assert_eq!(report["run"]["failed_step"], "copy");
    assert_eq!(std::fs::read_to_string(sb.path().join("app/.env")).unwrap(), "FEATURE=true\nOTHER=1\n");
}

/// A config the plugin refuses only at run time, naming its keys, is shown
/// as at plan time: each problem with its key and the key's line and column
/// (or the key alone when the runbook does not have it), the pointer left
/// out of the words; in the CLI's text, in `show` (the journal) and in the
/// events, which keep the pointer in the failure's `problems`.
#[test]
fn a_run_time_invalid_config_is_shown_at_its_key() {
    let sb = sandbox();
    let rb = runbook(&sb, r#"attack = "invalid-config", contents = "x""#, "undo");
    let text = std::fs::read_to_string(&rb).unwrap();
    let (line, column) =
        text.lines().enumerate().find_map(|(i, l)| l.find("contents =").map(|c| (i + 1, c + 1))).unwrap();
    let words = format!(
        "invalid config: `contents` `x` is refused at run time (at `contents`, {rb}:{line}:{column}); \
         `nowhere` is missing (at `nowhere`)"
    );

    let out = sb.run(&["run", "--yes", &rb]);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.all().contains(&words), "the run should say `{words}`:\n{}", out.all());
    assert!(
        !out.all().contains("`#/"),
        "the pointer is the host's to show, not the operator's to read:\n{}",
        out.all()
    );
    let show = sb.run(&["show", "last"]);
    assert!(show.all().contains(&words), "`show` should say `{words}`:\n{}", show.all());
    assert!(!show.all().contains("`#/"), "{}", show.all());

    let out = json_run(&sb, &rb);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    Schema::load().check_stream(&out.stdout);
    assert!(!out.stdout.contains("`#/"), "{}", out.stdout);
    let lines = events::lines(&out.stdout);
    let failed = lines.iter().find(|l| l["event"] == "step-finished" && l["status"] == "failed").unwrap();
    let failure = &failed["failure"];
    assert_eq!((failure["kind"].as_str(), failure["error"].as_str()), (Some("step"), Some("invalid-config")));
    assert_eq!(
        failure["problems"],
        json!([
            {
                "pointer": "/contents",
                "key": "contents",
                "line": line,
                "column": column,
                "message": "`contents` `x` is refused at run time"
            },
            { "pointer": "/nowhere", "key": "nowhere", "message": "`nowhere` is missing" }
        ]),
        "{failure}"
    );
    assert!(failure["message"].as_str().unwrap().contains(&format!("(at `contents`, {rb}:{line}:{column})")));
}

#[test]
fn undo_and_resume_stream_events_too() {
    let sb = sandbox();
    let rb = runbook(&sb, r#"attack = "panic""#, "abort");
    let out = json_run(&sb, &rb);
    assert_eq!(out.code, EXIT_FAILED, "{}", out.all());
    let schema = Schema::load();
    schema.check_stream(&out.stdout);

    let resumed = sb.run(&["--output", "json", "resume", "last", "--yes"]);
    assert_eq!(resumed.code, EXIT_FAILED, "the step fails again:\n{}", resumed.all());
    schema.check_stream(&resumed.stdout);
    let kinds = milestones(&resumed.stdout);
    assert_eq!(kinds[..2], ["plan", "resumed"], "{}", resumed.stdout);
    assert!(kinds.contains(&"step-finished".to_string()) && kinds.last().unwrap() == "report");

    let undone = sb.run(&["--output", "json", "undo", "last", "--yes"]);
    assert_eq!(undone.code, EXIT_SUCCEEDED, "{}", undone.all());
    schema.check_stream(&undone.stdout);
    assert_eq!(
        milestones(&undone.stdout),
        ["plan", "resumed", "undo-started", "undo-finished", "run-finished", "report"],
        "{}",
        undone.stdout
    );
    assert_eq!(events::report(&undone.stdout)["run"]["state"], "undone");

    // Nothing left to undo: still one report line.
    let again = sb.run(&["--output", "json", "undo", "last", "--yes"]);
    assert_eq!(again.code, EXIT_SUCCEEDED, "{}", again.all());
    schema.check_stream(&again.stdout);
    assert_eq!(events::kinds(&again.stdout), ["report"], "{}", again.stdout);
}

#[test]
fn a_refused_run_writes_an_error_event() {
    let sb = sandbox();
    let rb = sb.write("bad.toml", "version = 1\nname = \"bad\"\n[[step]]\nid = \"x\"\nuses = \"missing@1.0.0\"\n");
    let out = json_run(&sb, rb.to_str().unwrap());
    assert_eq!(out.code, 2, "{}", out.all());
    Schema::load().check_stream(&out.stdout);
    let lines = events::lines(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["diagnostics"][0]["severity"], "error");
    assert_eq!(lines[0]["diagnostics"][0]["step"], "x");
    assert!(out.stderr.contains("error: 1 problem found"), "stderr still says it:\n{}", out.all());

    // Without a terminal and without --yes, the runbook's problems still come first.
    let out = sb.run(&["--output", "json", "run", rb.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(events::kinds(&out.stdout), ["error"], "{}", out.all());
    assert_eq!(events::lines(&out.stdout)[0]["diagnostics"][0]["step"], "x", "{}", out.stdout);

    // A valid runbook refused before running (no terminal, no --yes): an error event too.
    let good = runbook(&sb, r#"attack = "echo", contents = "x""#, "undo");
    let before = std::fs::read(sb.path().join("app/.env")).unwrap();
    let out = sb.run(&["--output", "json", "run", &good]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(events::kinds(&out.stdout), ["error"], "{}", out.all());
    assert!(events::lines(&out.stdout)[0]["hint"].as_str().unwrap().contains("--yes"));
    assert_eq!(std::fs::read(sb.path().join("app/.env")).unwrap(), before, "nothing ran");
}

/// The schema must catch mistakes: a missing field, an unknown field, an
/// unknown kind or state, a wrong version, a wrong type.
#[test]
fn the_schema_rejects_broken_lines() {
    let schema = Schema::load();
    let good = json!({
        "stream": 1, "time": "2026-12-07T03:12:59Z", "event": "step-finished", "step": "restore-db",
        "status": "succeeded", "elapsed_ms": 12, "log": [{ "phase": "run", "level": "info", "message": "hi" }],
        "log_dropped": 0
    });
    schema.check(&good).unwrap();
    let broken = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut line = good.clone();
        f(line.as_object_mut().unwrap());
        line
    };
    let cases: Vec<(&str, Value)> = vec![
        ("no status", broken(&|m| drop(m.remove("status")))),
        ("no time", broken(&|m| drop(m.remove("time")))),
        ("an unknown field", broken(&|m| drop(m.insert("colour".into(), json!("red"))))),
        ("an unknown status", broken(&|m| drop(m.insert("status".into(), json!("fine"))))),
        ("an unknown kind", broken(&|m| drop(m.insert("event".into(), json!("step-exploded"))))),
        ("stream version 2", broken(&|m| drop(m.insert("stream".into(), json!(2))))),
        ("elapsed as text", broken(&|m| drop(m.insert("elapsed_ms".into(), json!("12ms"))))),
        (
            "a bad log level",
            broken(&|m| drop(m.insert("log".into(), json!([{ "phase": "run", "level": "loud", "message": "x" }])))),
        ),
        ("a time that is not RFC 3339", broken(&|m| drop(m.insert("time".into(), json!("yesterday"))))),
    ];
    for (what, line) in cases {
        assert!(schema.check(&line).is_err(), "a line with {what} was accepted: {line}");
    }
    // A run-finished in an unknown state, a report without its run.
    let finished = json!({ "stream": 1, "time": "2026-12-07T03:12:59Z", "event": "run-finished", "state": "exploded", "elapsed_ms": 1 });
    assert!(schema.check(&finished).is_err());
    let report = json!({ "stream": 1, "time": "2026-12-07T03:12:59Z", "event": "report", "exit_code": 0 });
    assert!(schema.check(&report).is_err());
}
