//! json-config (a plugin written in JavaScript) through the real host: real
//! JSON files in temp directories, the component built from
//! `plugins/json-config` by `plugins/json-config/build.sh`, the CLI. Also the
//! JavaScript SDK: its unit tests under Node, and the project template of
//! `backout new --lang js` built and tested as a user would.
//!
//! Compiling a JavaScript component takes seconds, so each test runs one
//! runbook with several steps where it can, and most steps name the component
//! by path and sha256 instead of registering it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use backout_tests::JSON_CONFIG;
use backout_tests::cli::{Output, Sandbox, file_mode, safety_copies, sha256_file, snapshot};
use serde_json::{Value, json};

use crate::bin;

/// Nested objects, an inline object, an array of objects, two-space indent,
/// a final newline.
const CONFIG: &str = r#"{
  "name": "insight",
  "features": {
    "insight_generation": {
      "enabled": true,
      "model": "large"
    },
    "semantic_chunking": {"optional": true}
  },
  "limits": {
    "rate": 10,
    "burst": 1.50
  },
  "beta": {
    "banner": "on"
  }
}
"#;

/// `uses` and `sha256` lines naming the built component by path.
fn pinned() -> &'static str {
    static LINES: OnceLock<String> = OnceLock::new();
    LINES.get_or_init(|| format!("uses = \"{JSON_CONFIG}\"\nsha256 = \"{}\"", sha256_file(JSON_CONFIG)))
}

/// One step of a runbook: its `with` table (inline TOML) on `/app/<file>`.
struct Step<'a> {
    id: &'a str,
    file: &'a str,
    with: &'a str,
}

struct App {
    sb: Sandbox,
    dir: PathBuf,
}

impl App {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        let dir = sb.mkdir("app");
        Self { sb, dir }
    }

    /// Writes `app/<name>` with mode `mode`.
    fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.sb.write(&format!("app/{name}"), contents);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    /// A runbook whose steps each edit a file in `app/`, granted read-write
    /// as `/app`. `uses` is `uses` lines (a registry name, or [`pinned`]).
    fn runbook(&self, uses: &str, steps: &[Step<'_>]) -> PathBuf {
        let mut text = String::from("version = 1\nname = \"json-config\"\n");
        for step in steps {
            text.push_str(&format!(
                "\n[[step]]\nid = \"{}\"\n{uses}\nwith = {{ file = \"/app/{}\", {} }}\n\n[step.grants]\n\
                 dirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n",
                step.id,
                step.file,
                step.with,
                self.dir.display()
            ));
        }
        self.sb.write("runbook.toml", text)
    }

    fn cli(&self, args: &[&str], runbook: &Path) -> Output {
        let mut all = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    fn backups(&self) -> Vec<PathBuf> {
        safety_copies(&self.dir)
    }
}

fn report(out: &Output) -> Value {
    backout_tests::events::report(&out.stdout)
}

#[test]
fn run_sets_nested_values_removes_keys_and_keeps_every_other_byte() {
    let app = App::new();
    app.sb.add(JSON_CONFIG);
    let file = app.file("config.json", CONFIG, 0o600);
    let runbook = app.runbook(
        "uses = \"json-config@0.1.0\"",
        &[Step {
            id: "flags",
            file: "config.json",
            with: r#"set = { "/features/insight_generation/enabled" = false, "/limits/rate" = 100, "/name" = "x" }, remove = ["/beta"]"#,
        }],
    );
    let out = app.cli(&["--output", "json", "run", "--yes"], &runbook);
    assert_eq!(out.code, 0, "{}", out.all());

    let expected = CONFIG
        .replace(r#""enabled": true"#, r#""enabled": false"#)
        .replace(r#""rate": 10"#, r#""rate": 100"#)
        .replace(r#""name": "insight""#, r#""name": "x""#)
        .replace(",\n  \"beta\": {\n    \"banner\": \"on\"\n  }", "");
    assert_eq!(app.read("config.json"), expected);

    // The outputs say what changed, where the safety copy is, and the digests.
    let outputs = &report(&out)["run"]["steps"][0]["outputs"];
    let copy = outputs["safety_copy"].as_str().unwrap();
    assert!(copy.starts_with("/app/config.json.backout-") && copy.ends_with(".bak"), "{outputs}");
    assert_eq!(outputs["file"], "/app/config.json");
    assert_eq!(outputs["sha256_after"], sha256_file(&file));
    let backups = app.backups();
    assert_eq!(backups, [app.dir.join(copy.strip_prefix("/app/").unwrap())]);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), CONFIG);
    assert_eq!(outputs["sha256_before"], sha256_file(&backups[0]));
    assert_eq!(
        outputs["changes"],
        json!([
            {"pointer": "/features/insight_generation/enabled", "action": "set", "old": true, "new": false, "line": 5},
            {"pointer": "/limits/rate", "action": "set", "old": 10, "new": 100, "line": 11},
            {"pointer": "/name", "action": "set", "old": "insight", "new": "x", "line": 2},
            {"pointer": "/beta", "action": "removed", "old": {"banner": "on"}, "new": null, "line": 14},
        ])
    );

    // A 0600 file stays 0600 through the atomic replace, and so is its copy.
    assert_eq!(file_mode(&file), 0o600);
    assert_eq!(file_mode(&backups[0]), 0o600);

    // Running again finds everything in place: planned so, nothing runs, no
    // write, no second copy.
    let after_first = snapshot(&app.dir);
    let out = app.cli(&["--output", "json", "run", "--yes"], &runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(backout_tests::events::kinds(&out.stdout), ["plan", "nothing-to-change"], "{}", out.stdout);
    assert_eq!(snapshot(&app.dir), after_first, "a no-op run wrote something");
}

#[test]
fn formatting_survives_byte_for_byte_except_the_changed_values() {
    let app = App::new();
    let four = "{\n    \"a\": {\n        \"enabled\": true\n    },\n    \"list\": [1, 2, 3]\n}\n";
    let tabs = "{\n\t\"a\": {\n\t\t\"enabled\": true\n\t},\n\t\"n\": 1.0e3\n}";
    let crlf = "\u{feff}{\r\n  \"a\": {\r\n    \"enabled\": true\r\n  }\r\n}\r\n";
    let compact = r#"{"a":{"enabled":true},"items":[{"name":"a"},{"name":"b"}]}"#;
    let escapes = "{\n  \"paths\": {\n    \"/api/v1\": {\"cache\": true},\n    \"a~b\": 1\n  }\n}\n";
    let nested = "{\n  \"features\": {}\n}\n";
    app.file("two.json", CONFIG, 0o644);
    app.file("four.json", four, 0o644);
    app.file("tabs.json", tabs, 0o644);
    app.file("crlf.json", crlf, 0o644);
    app.file("compact.json", compact, 0o644);
    app.file("escapes.json", escapes, 0o644);
    app.file("nested.json", nested, 0o644);
    let runbook = app.runbook(
        pinned(),
        &[
            Step {
                id: "two",
                file: "two.json",
                with: r#"set = { "/features/semantic_chunking/optional" = false, "/limits/burst" = 2 }"#,
            },
            Step {
                id: "four",
                file: "four.json",
                with: r#"set = { "/a/enabled" = false, "/list/1" = 20, "/list/-" = 4, "/b" = { c = [1, 2] } }, create_missing = true"#,
            },
            Step { id: "tabs", file: "tabs.json", with: r#"set = { "/a/enabled" = false, "/a/level" = 3 }, create_missing = true"# },
            Step { id: "crlf", file: "crlf.json", with: r#"set = { "/a/enabled" = false, "/b" = "x" }, create_missing = true"# },
            Step { id: "compact", file: "compact.json", with: r#"set = { "/items/1/name" = "B", "/items/-" = { name = "c" } }, remove = ["/a"]"# },
            Step { id: "escapes", file: "escapes.json", with: r#"set = { "/paths/~1api~1v1/cache" = false, "/paths/a~0b" = 2 }"# },
            Step {
                id: "nested",
                file: "nested.json",
                with: r#"set = { "/features/insight/enabled" = false, "/features/insight/level" = "low" }, create_missing = true"#,
            },
        ],
    );
    let out = app.cli(&["run", "--yes"], &runbook);
    assert_eq!(out.code, 0, "{}", out.all());

    assert_eq!(
        app.read("two.json"),
        CONFIG.replace(r#"{"optional": true}"#, r#"{"optional": false}"#).replace(r#""burst": 1.50"#, r#""burst": 2"#)
    );
    assert_eq!(
        app.read("four.json"),
        "{\n    \"a\": {\n        \"enabled\": false\n    },\n    \"list\": [1, 20, 3, 4],\n    \"b\": {\n        \"c\": [\n            1,\n            2\n        ]\n    }\n}\n"
    );
    assert_eq!(
        app.read("tabs.json"),
        "{\n\t\"a\": {\n\t\t\"enabled\": false,\n\t\t\"level\": 3\n\t},\n\t\"n\": 1.0e3\n}"
    );
    assert_eq!(
        app.read("crlf.json"),
        "\u{feff}{\r\n  \"a\": {\r\n    \"enabled\": false\r\n  },\r\n  \"b\": \"x\"\r\n}\r\n"
    );
    assert_eq!(app.read("compact.json"), r#"{"items":[{"name":"a"},{"name":"B"},{"name":"c"}]}"#);
    assert_eq!(
        app.read("escapes.json"),
        "{\n  \"paths\": {\n    \"/api/v1\": {\"cache\": false},\n    \"a~b\": 2\n  }\n}\n"
    );
    assert_eq!(
        app.read("nested.json"),
        "{\n  \"features\": {\n    \"insight\": {\n      \"enabled\": false,\n      \"level\": \"low\"\n    }\n  }\n}\n"
    );
}

#[test]
fn plan_shows_old_and_new_values_per_pointer_and_changes_nothing() {
    let app = App::new();
    app.file("config.json", CONFIG, 0o640);
    let runbook = app.runbook(
        pinned(),
        &[Step {
            id: "flags",
            file: "config.json",
            with: r#"set = { "/features/insight_generation/enabled" = false, "/limits/rate" = 10, "/extra/on" = true }, remove = ["/beta", "/gone"], create_missing = true"#,
        }],
    );
    let before = snapshot(&app.dir);
    let out = app.cli(&["plan"], &runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    for line in [
        "set /features/insight_generation/enabled in /app/config.json",
        "line 5: true → false",
        "leave /limits/rate as it is in /app/config.json",
        "already 10",
        "add /extra/on to /app/config.json",
        "absent → true (creates /extra)",
        "remove /beta from /app/config.json",
        r#"line 14: remove (was {"banner":"on"})"#,
        "leave /gone absent from /app/config.json",
    ] {
        assert!(out.stdout.contains(line), "the plan should show `{line}`:\n{}", out.all());
    }
    assert_eq!(snapshot(&app.dir), before);
}

#[test]
fn refused_edits_leave_every_file_untouched_and_make_no_copy() {
    let app = App::new();
    app.file("config.json", CONFIG, 0o644);
    app.file("broken.json", "{\n  \"a\": 1,\n}\n", 0o644);
    app.file("list.json", "{\"items\": [1, 2]}", 0o644);
    let runbook = app.runbook(
        pinned(),
        &[
            Step { id: "missing", file: "config.json", with: r#"set = { "/features/other/enabled" = false }"# },
            Step { id: "broken", file: "broken.json", with: r#"set = { "/a" = 2 }"# },
            Step { id: "past-the-end", file: "list.json", with: r#"set = { "/items/5" = 3 }"# },
            Step {
                id: "through-a-scalar",
                file: "config.json",
                with: r#"set = { "/name/first" = "x" }, create_missing = true"#,
            },
            Step { id: "unknown-key", file: "config.json", with: r#"sett = { "/a" = 1 }"# },
            Step { id: "absent-file", file: "nope.json", with: r#"set = { "/a" = 1 }"# },
            Step { id: "inside", file: "config.json", with: r#"set = { "/a" = 1 }, remove = ["/b", "/a/c"]"# },
        ],
    );
    let before = snapshot(&app.dir);
    let out = app.cli(&["run", "--yes"], &runbook);
    assert_eq!(out.code, 2, "every step must be refused before anything runs:\n{}", out.all());
    for expected in [
        "`/features/other/enabled` does not exist in `/app/config.json`: `/features` has no key `other`",
        "set `create_missing = true`",
        "`/app/broken.json` is not valid JSON: line 3, column 1: expected a key in double quotes, found `}`",
        "index 5 is past the end of the array `/items` in `/app/list.json` (2 elements)",
        "`/name` in `/app/config.json` is a string, not an object or array",
        "unknown field `sett`, expected one of `file`, `set`, `remove`, `create_missing`",
        "`/app/nope.json` does not exist",
    ] {
        assert!(out.stderr_in_guest_terms().contains(expected), "stderr should say `{expected}`:\n{}", out.all());
    }
    // The SDK names the unknown key by JSON pointer: the error points at
    // `sett` itself, not at the `with` table.
    let text = std::fs::read_to_string(&runbook).unwrap();
    let (line, at) = text.lines().enumerate().find_map(|(i, l)| l.find("sett =").map(|c| (i + 1, c + 1))).unwrap();
    let location = format!("runbook.toml:{line}:{at}");
    let error = out.stderr.split("error: ").find(|e| e.contains("unknown field `sett`")).unwrap();
    assert!(error.contains(&location), "the unknown key should be shown at {location}:\n{}", out.all());
    // The plugin's own check names its key too: the pointer inside another
    // is shown at that element of `remove`, not at the `with` table.
    let (line, at) = text.lines().enumerate().find_map(|(i, l)| l.find("\"/a/c\"").map(|c| (i + 1, c + 1))).unwrap();
    let location = format!("runbook.toml:{line}:{at}");
    let error = out.stderr.split("error: ").find(|e| e.contains("lies inside `/a`")).unwrap();
    assert!(error.contains(&location), "the pointer inside another should be shown at {location}:\n{}", out.all());
    assert!(!error.contains("`#/"), "the pointer is the host's to show, not part of the words:\n{error}");
    assert_eq!(snapshot(&app.dir), before);
    assert!(app.backups().is_empty());
}

/// Undo, through the library (so a test can call it with outputs it chose; `backout undo` is tested in recover.rs and policy.rs): it restores
/// the safety copy's bytes only while the file still holds what run wrote.
#[test]
fn undo_restores_the_original_bytes_only_if_the_file_is_unchanged_since_run() {
    use backout::execute::execute;
    use backout::runtime::host_api::quiet;
    use backout::runtime::{CallContext, Failure, StepErrorKind};

    let app = App::new();
    let file = app.file("config.json", CONFIG, 0o600);
    let runbook = app.runbook(
        pinned(),
        &[Step {
            id: "flags",
            file: "config.json",
            with: r#"set = { "/features/insight_generation/enabled" = false, "/items" = [1] }, remove = ["/limits/burst"], create_missing = true"#,
        }],
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let runtime = backout::runtime::Runtime::new().unwrap();
        let parsed = backout::runbook::load(&runbook).unwrap();
        let options = backout::resolve::Options::new(app.sb.registry());
        let plan = backout::resolve::resolve(&parsed, &runtime, &options).await.unwrap();
        let step = &plan.steps[0];
        let config = step.config.render(&plan.vars, &Default::default()).unwrap();
        let ctx = CallContext::new(&step.id, &step.grants, step.limits, quiet());

        // First run, then an edit by hand: undo must refuse and change nothing.
        let report = execute(&plan, quiet(), None).await;
        assert!(report.succeeded(), "{report:?}");
        let outputs = report.steps[0].outputs.as_ref().unwrap().to_string();
        let edited = app.read("config.json").replace("\"rate\": 10", "\"rate\": 11");
        std::fs::write(&file, &edited).unwrap();
        let refused = step.plugin.undo(&ctx, &config, &outputs).await;
        match refused.result {
            Err(Failure::Step { error: StepErrorKind::Precondition, message, .. }) => {
                assert!(
                    message.contains("changed since the run") && message.contains("nothing was restored"),
                    "{message}"
                )
            }
            other => panic!("undo must refuse: {other:?}"),
        }
        assert_eq!(app.read("config.json"), edited);

        // A second run on the original: undo puts back every byte and the mode.
        std::fs::write(&file, CONFIG).unwrap();
        let report = execute(&plan, quiet(), None).await;
        assert!(report.succeeded(), "{report:?}");
        assert_ne!(app.read("config.json"), CONFIG);
        let outputs = report.steps[0].outputs.as_ref().unwrap().to_string();
        let verified = step.plugin.verify(&ctx, &config, &outputs).await;
        assert!(verified.result.is_ok(), "{:?}", verified.result);
        let undone = step.plugin.undo(&ctx, &config, &outputs).await;
        assert!(undone.result.is_ok(), "{:?}", undone.result);
        assert_eq!(app.read("config.json"), CONFIG);
        assert_eq!(file_mode(&file), 0o600);

        // verify now fails and names the value; a second undo has nothing to do.
        let verify = step.plugin.verify(&ctx, &config, &outputs).await;
        match verify.result {
            Err(Failure::Step { error: StepErrorKind::Precondition, message, .. }) => {
                assert!(
                    message.contains("`/features/insight_generation/enabled`") && message.contains("holds true"),
                    "{message}"
                )
            }
            other => panic!("verify must fail after undo: {other:?}"),
        }
        let again = step.plugin.undo(&ctx, &config, &outputs).await;
        assert!(again.result.is_ok(), "{:?}", again.result);
        assert_eq!(app.read("config.json"), CONFIG);
    });
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn run_checked(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The pure JavaScript (the SDK's helpers, json-config's JSON editing) has
/// unit tests of its own, run by Node's test runner.
#[test]
fn javascript_unit_tests_pass_under_node() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["sdk/js/test", "plugins/json-config/test"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".test.js") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 2, "no JavaScript tests found: {files:?}");
    let out = run_checked(
        Command::new("node").current_dir(&root).args(["--import", "./sdk/js/test/register.js", "--test"]).args(&files),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
