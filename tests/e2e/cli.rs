//! The command line as an operator meets it: help, confirmation, exit codes,
//! outputs flowing between steps, reports, journals, inspect and the registry.

use backout_tests::cli::{EXIT_UNDONE, Sandbox};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;

/// A sandbox with the hostile plugin registered (its `echo` attack is a
/// well-behaved step: it returns its `contents` as the output `value`).
fn sandbox() -> Sandbox {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    sb
}

fn three_steps(sb: &Sandbox, second: &str) -> std::path::PathBuf {
    sb.write(
        "runbook.toml",
        format!(
            r#"version = 1
name = "three steps"

[vars]
greeting = "hello"

[[step]]
id = "first"
uses = "hostile@0.1.0"
with = {{ attack = "echo", contents = "${{vars.greeting}}" }}

[[step]]
id = "second"
uses = "hostile@0.1.0"
with = {{ attack = "{second}", contents = "${{steps.first.outputs.value}} world" }}

[[step]]
id = "third"
uses = "hostile@0.1.0"
with = {{ attack = "echo", contents = "${{steps.second.outputs.value}}!" }}
"#
        ),
    )
}

#[test]
fn help_teaches_the_commands_and_documents_exit_codes() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["--help"]);
    assert_eq!(out.code, 0);
    for text in [
        "validate",
        "plan",
        "run",
        "inspect",
        "registry",
        "runs",
        "show",
        "undo",
        "resume",
        "Exit codes:",
        "2  invalid input",
        "4  undone",
        "5  needs attention",
        "6  interrupted",
        "7  timed out",
        "--registry",
        "BACKOUT_REGISTRY",
        "cache",
        "--cache-dir",
        "BACKOUT_CACHE_DIR",
        "--no-cache",
    ] {
        assert!(out.stdout.contains(text), "`{text}` missing from --help:\n{}", out.stdout);
    }
    let out = sb.run(&["run", "--help"]);
    assert!(out.stdout.contains("--yes") && out.stdout.contains("--var"), "{}", out.stdout);
    assert!(out.stdout.contains("--force-unlock") && out.stdout.contains("on_failure"), "{}", out.stdout);
    let out = sb.run(&["resume", "--help"]);
    assert!(out.stdout.contains("in doubt") && out.stdout.contains("`last`"), "{}", out.stdout);
}

#[test]
fn every_command_help_ends_with_examples_and_names_the_global_options_once() {
    let sb = Sandbox::new(bin());
    let top = sb.run(&["--help"]).stdout;
    assert_eq!(top.matches("--state-dir <DIR>").count(), 1, "{top}");
    for command in [&["plan"][..], &["run"], &["show"], &["registry"], &["registry", "add"], &["cache", "gc"], &["man"]]
    {
        let mut args = command.to_vec();
        args.push("--help");
        let out = sb.run(&args);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains("\nExamples:\n  backout "), "{command:?}:\n{}", out.stdout);
        assert!(!out.stdout.contains("--state-dir <DIR>"), "{command:?} repeats the global options:\n{}", out.stdout);
        assert!(
            out.stdout.trim_end().ends_with("work here too; `backout --help` lists them."),
            "{command:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn usage_lines_show_no_option_that_an_environment_variable_set() {
    // The sandbox sets BACKOUT_REGISTRY, BACKOUT_STATE_DIR and BACKOUT_CACHE_DIR.
    let sb = Sandbox::new(bin());
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("\nUsage: backout plan <RUNBOOK>\n"), "{}", out.all());
    let out = sb.run_with_env(&["registry", "sign"], &[("BACKOUT_TRUST", &"/etc/backout/trust.toml")]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("\nUsage: backout registry sign --key <FILE>\n"), "{}", out.all());
    // A mistyped global option after the subcommand still gets its suggestion.
    let out = sb.run(&["plan", "--registyr", "/r", "r.toml"]);
    assert!(out.stderr.contains("a similar argument exists: '--registry'"), "{}", out.all());
}

#[test]
fn help_names_the_variable_behind_an_option_but_never_its_value() {
    let sb = Sandbox::new(bin());
    let out = sb.run_with_env(&["--help"], &[("BACKOUT_TRUST", &"/etc/backout/secret-path.toml")]);
    for name in
        ["BACKOUT_REGISTRY", "BACKOUT_TRUST", "BACKOUT_REQUIRE_SIGNED", "BACKOUT_STATE_DIR", "BACKOUT_CACHE_DIR"]
    {
        assert!(out.stdout.contains(&format!("[env: {name}]")), "{name}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("BACKOUT_TRUST=") && !out.stdout.contains("secret-path"), "{}", out.stdout);
    assert!(!out.stdout.contains(&sb.registry().display().to_string()), "{}", out.stdout);
}

#[test]
fn run_without_a_terminal_requires_yes() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let out = sb.run(&["run", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("error: refusing to run without confirmation"), "{}", out.all());
    assert!(out.stderr.contains("hint: pass `--yes`"), "{}", out.all());
}

#[test]
fn without_a_terminal_what_is_wrong_is_reported_before_asking_for_yes() {
    let sb = sandbox();
    let runbook =
        sb.write("typo.toml", "version = 1\nname = \"typo\"\n\n[[step]]\nid = \"a\"\nuses = \"hostle@0.1.0\"\n");
    let out = sb.run(&["run", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("no plugin named `hostle`"), "the runbook's problem first:\n{}", out.all());
    assert!(out.stderr.contains("error: 1 problem found in"), "{}", out.all());
    assert!(!out.stderr.contains("without confirmation"), "{}", out.all());
    assert!(!sb.state().join("runs").exists(), "nothing ran");

    for command in ["undo", "resume"] {
        let out = sb.run(&[command, "nope"]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains("error: there are no runs in") || out.stderr.contains("no run `nope`"),
            "{}",
            out.all()
        );
        assert!(!out.stderr.contains("without confirmation"), "{}", out.all());
    }
}

#[test]
fn on_a_terminal_run_asks_first_and_no_means_nothing_runs() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let out = sb.run_on_terminal(&["run", runbook.to_str().unwrap()], "n\n");
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stdout.contains("Run 3 steps? [y/N]"), "{}", out.all());
    assert!(out.stdout.contains("aborted: nothing was run"), "{}", out.all());
    assert!(!sb.state().join("runs").exists(), "a declined run must not even start a journal");

    let out = sb.run_on_terminal(&["run", runbook.to_str().unwrap()], "y\n");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("Run succeeded: 3 of 3 steps completed."), "{}", out.all());
}

#[test]
fn outputs_flow_to_later_steps() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let plan = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("planned when it runs (its config uses outputs of `first`)"), "{}", plan.all());

    let out = sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = backout_tests::events::report(&out.stdout);
    assert_eq!(report["run"]["succeeded"], true);
    assert_eq!(report["run"]["steps"][2]["outputs"]["value"], "hello world!");
}

#[test]
fn var_overrides_replace_declared_vars() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let out = sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap(), "--var", "greeting=goodbye"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = backout_tests::events::report(&out.stdout);
    assert_eq!(report["run"]["steps"][2]["outputs"]["value"], "goodbye world!");
}

#[test]
fn a_relative_var_path_is_refused_with_the_absolute_path_it_would_have_been() {
    let sb = sandbox();
    sb.write("app/data/keep.txt", "keep\n");
    let runbook = sb.write(
        "rb.toml",
        r#"version = 1
name = "relative"

[vars]
root = "/srv"

[[step]]
id = "look"
uses = "hostile@0.1.0"
with = { attack = "echo", contents = "x" }

[step.grants]
dirs = [{ host = "${vars.root}/data", guest = "/data", mode = "rw" }]
"#,
    );
    let before = backout_tests::cli::snapshot(sb.path());
    let out = sb.run(&["run", "--yes", runbook.to_str().unwrap(), "--var", "root=app"]);
    assert_eq!(out.code, 2, "{}", out.all());
    // The sandbox is the current directory of the command.
    let cwd = sb.path().canonicalize().unwrap();
    let cwd = cwd.display();
    assert!(
        out.stderr.contains(&format!(
            "error: step `look`: `--var root=app` makes host directory `app/data` a relative path; from the current \
             directory it would be `{cwd}/app/data`"
        )),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains(&format!("hint: grants take absolute paths: pass `--var root={cwd}/app`")),
        "{}",
        out.all()
    );
    assert_eq!(backout_tests::cli::snapshot(sb.path()), before, "nothing was run or written");

    // The same path written in the runbook itself keeps its own message.
    let literal = sb.write("literal.toml", std::fs::read_to_string(&runbook).unwrap().replace("${vars.root}", "app"));
    let out = sb.run(&["validate", literal.to_str().unwrap(), "--var", "root=app"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("host directory `app/data` is not an absolute path"), "{}", out.all());
    assert!(!out.stderr.contains("--var root"), "{}", out.all());
}

#[test]
fn a_failing_step_stops_the_run_and_the_report_says_what_completed() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "panic");
    let out = sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("ok       first  echo hello"), "{}", out.all());
    assert!(out.stdout.contains("FAILED   second  in run: the plugin crashed"), "{}", out.all());
    assert!(out.stdout.contains("Run failed at step `second`: 1 of 3 steps completed (`first`)"), "{}", out.all());
    assert!(out.stdout.contains("Not run: `third`."), "{}", out.all());
    // The default policy put back what completed.
    assert!(out.stdout.contains("undone   first"), "{}", out.all());
    assert!(out.stdout.contains("State: undone"), "{}", out.all());

    // The journal recorded every state change, durable on disk.
    let runs = sb.journal_paths();
    assert_eq!(runs.len(), 1);
    assert!(out.stdout.contains(&format!("Journal: {}", runs[0].display())), "{}", out.all());
    let events: Vec<String> = std::fs::read_to_string(&runs[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "run-started",
            "step-started",
            "step-ran",
            "step-finished",
            "step-started",
            "step-finished",
            "undo-started",
            "undo-finished",
            "run-finished"
        ]
    );
}

#[test]
fn plan_as_json_lists_steps_grants_and_actions() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let out = sb.run(&["plan", runbook.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["runbook"], "three steps");
    assert_eq!(plan["steps"][0]["preview"]["actions"][0]["summary"], "attack: echo");
    assert_eq!(plan["steps"][1]["preview"]["after"], serde_json::json!(["first"]));
    assert_eq!(plan["steps"][0]["limits"]["timeout"], "1m");
    assert_eq!(plan["steps"][0]["limits"]["memory"], 128 << 20);
}

#[test]
fn invalid_input_as_json_lists_diagnostics() {
    let sb = sandbox();
    let runbook = sb.write("bad.toml", "version = 1\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"missing@1.0.0\"\n");
    let out = sb.run(&["--output", "json", "validate", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["location"]["line"], 5);
    assert_eq!(v["diagnostics"][0]["step"], "a");
}

#[test]
fn inspect_shows_digest_world_imports_needs_and_schema() {
    let sb = Sandbox::new(bin());
    sb.add(ENV_TOGGLE);
    for target in [ENV_TOGGLE, "env-toggle@0.1.0"] {
        let out = sb.run(&["inspect", target]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stdout.contains(&format!("sha256:{}", backout_tests::cli::sha256_file(ENV_TOGGLE))),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("world     backout:step/plugin@0.2.0"), "{}", out.stdout);
        assert!(out.stdout.contains("wasi:filesystem/types"), "{}", out.stdout);
        assert!(out.stdout.contains("needs     files: read-write"), "{}", out.stdout);
        assert!(out.stdout.contains("\"create_missing\""), "the config schema is shown:\n{}", out.stdout);
    }
    let out = sb.run(&["--output", "json", "inspect", "env-toggle@0.1.0"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["info"]["name"], "env-toggle");
    assert_eq!(v["exports"], serde_json::json!(["backout:step/step@0.2.0"]));
}

#[test]
fn inspect_refuses_what_is_not_a_plugin() {
    let sb = Sandbox::new(bin());
    let junk = sb.write("junk.wasm", "not wasm at all");
    let out = sb.run(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.starts_with("error: `"), "{}", out.all());
    assert!(out.stderr.contains("is not a usable backout plugin"), "{}", out.all());
    assert!(out.stderr.contains("caused by: failed to compile the component"), "{}", out.all());
}

#[test]
fn registry_add_and_list_round_trip() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["registry", "list"]);
    assert_eq!(out.code, 2, "an absent registry is an error:\n{}", out.all());
    assert!(
        out.stderr.contains("hint: create one with `backout registry init` or `backout registry add FILE`"),
        "{}",
        out.all()
    );

    sb.add(HOSTILE);
    let out = sb.run(&["registry", "add", HOSTILE, "--name", "renamed", "--version", "2.0.0"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let out = sb.run(&["--output", "json", "registry", "list"]);
    let entries: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}@{}", e["name"].as_str().unwrap(), e["version"].as_str().unwrap()))
        .collect();
    assert_eq!(names, ["hostile@0.1.0", "renamed@2.0.0"]);
    assert_eq!(entries[0]["digest"], entries[1]["digest"]);
    // the registry is plain files: one blob, content-addressed
    assert_eq!(std::fs::read_dir(sb.registry().join("blobs/sha256")).unwrap().count(), 1);
}

#[test]
fn plugin_progress_is_shown_on_stderr_with_the_step_id() {
    let sb = sandbox();
    let runbook = sb.write(
        "progress.toml",
        "version = 1\nname = \"p\"\n[[step]]\nid = \"copy\"\nuses = \"hostile@0.1.0\"\nwith = { attack = \"progress\", count = 4 }\n",
    );
    let out = sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("[copy] run progress: 0% (0/4 items)"), "{}", out.all());
    assert!(
        out.stderr.contains("[copy] run progress: 100% (4/4 items)"),
        "the final update is always shown:\n{}",
        out.all()
    );
}

/// `backout run … | head -0`: the reader goes away before the first line. The run
/// must go on to the end (a rollback is never abandoned because a pipe
/// closed) and exit as usual, without a panic.
#[test]
fn a_closed_stdout_does_not_stop_a_run() {
    let sb = sandbox();
    let runbook = three_steps(&sb, "echo");
    let mut child = sb.spawn(&["run", "--yes", runbook.to_str().unwrap()]);
    // Close the reading end at once: every write to stdout now fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let journal = sb.journals();
    assert!(journal.contains("\"third\""), "every step ran:\n{journal}");
}
