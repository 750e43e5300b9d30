//! The live view of `run` as an operator sees it: on a 100×30 pseudo-terminal
//! (through a terminal emulator, so what is compared is the screen), and as
//! plain lines when stderr is not a terminal. Golden files live in
//! `golden/live/`; refresh them with `BLESS=1 cargo test -p backout --test e2e
//! live::` and review the diff. Times, run ids, temp paths, digests and
//! spinner frames are replaced by placeholders first.

use std::path::{Path, PathBuf};

use backout_tests::cli::{EXIT_SUCCEEDED, EXIT_UNDONE, Sandbox};
use backout_tests::terminal::TerminalRun;
use backout_tests::{ENV_TOGGLE, HOSTILE};
use regex_lite::Regex;

use crate::bin;

const SIZE: (u16, u16) = (30, 100);

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(bin());
    sb.add(ENV_TOGGLE);
    sb.add(HOSTILE);
    sb.write("app/.env", "FEATURE=true\nOTHER=1\n");
    sb
}

/// Three steps: turn a flag off, copy (logs at every level, reports
/// progress in bytes), then `third` (a hostile attack table).
fn runbook(sb: &Sandbox, copy: &str, third: &str) -> &'static str {
    let app = sb.path().join("app");
    sb.write(
        "live.toml",
        format!(
            r#"version = 1
name = "live"
description = "the live view"

[[step]]
id = "flags"
uses = "env-toggle@0.1.0"
with = {{ file = "/app/.env", set = {{ FEATURE = "false" }} }}

[step.grants]
dirs = [{{ host = "{}", guest = "/app", mode = "rw" }}]

[[step]]
id = "copy"
uses = "hostile@0.1.0"
with = {{ {copy} }}

[[step]]
id = "nap"
uses = "hostile@0.1.0"
timeout = "2s"
with = {{ {third} }}
"#,
            app.display()
        ),
    );
    "live.toml"
}

const QUICK_COPY: &str = r#"attack = "narrate", count = 4, size = 1024, pause_ms = 10"#;
const ECHO: &str = r#"attack = "echo", contents = "done""#;

/// Replaces what changes from run to run by placeholders.
fn normalise(sb: &Sandbox, text: &str) -> String {
    let text = text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    let mut text = text
        .replace(&sb.path().canonicalize().unwrap().display().to_string(), "<sandbox>")
        .replace(&sb.path().display().to_string(), "<sandbox>");
    for (pattern, with) in [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (r"\d{8}T\d{6}(\.\d{3})?Z", "<stamp>"),
        (r"<stamp>-live-[0-9a-f]{4}", "<run-id>"),
        (r"sha256:[0-9a-f]{8}…[0-9a-f]{4}", "sha256:<digest>"),
        (r"\((<1ms|\d+ms|\d+\.\ds|\d+m\d\ds)\)", "(<t>)"),
        (r"  \d+(ms|s|m)$", "  <t>"),
        (r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⠿]", "*"),
    ] {
        let re = Regex::new(&format!("(?m){pattern}")).unwrap();
        text = re.replace_all(&text, with).into_owned();
    }
    text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_end().to_string() + "\n"
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/golden/live").join(name)
}

/// Compares `actual` with the golden file `name` (BLESS=1 writes it).
fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} changed (BLESS=1 to accept):\n--- expected ---\n{expected}\n--- actual ---\n{actual}",
        path.display()
    );
}

/// Asserts that `lines` appear in `text` in this order.
fn in_order(text: &str, lines: &[&str]) {
    let mut from = 0;
    for line in lines {
        match text[from..].find(line) {
            Some(at) => from += at + line.len(),
            None => panic!("`{line}` missing, or out of order, after byte {from}:\n{text}"),
        }
    }
}

fn on_terminal(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], when: impl Fn(&str) -> bool) -> TerminalRun {
    sb.run_on_sized_terminal(args, env, SIZE, when)
}

#[test]
fn the_terminal_shows_the_current_step_with_a_spinner_and_each_result_as_it_ends() {
    let sb = sandbox();
    // The third step sleeps until its 2 s timeout: the screen is taken while it spins.
    let rb = runbook(&sb, QUICK_COPY, r#"attack = "sleep""#);
    let run = on_terminal(&sb, &["run", "--yes", rb], &[], |screen| screen.contains("[3/3] nap"));
    assert_eq!(run.code, EXIT_UNDONE, "{}", run.text());
    let during =
        run.snapshot.as_deref().unwrap_or_else(|| panic!("the spinner of step 3 never showed:\n{}", run.text()));
    let during = normalise(&sb, during);
    in_order(
        &during,
        &[
            "ok       flags",
            "[copy] run info: info: copying the backup",
            "[copy] run warn: warn: the backup is older than a day",
            "ok       copy  copied 4096 bytes",
            "* [3/3] nap  run  <t>",
        ],
    );
    assert!(!during.contains("debug: a detail"), "debug lines need -v:\n{during}");
    check_golden("terminal-during.screen", &during);

    let after = normalise(&sb, &run.screen);
    in_order(
        &after,
        &[
            "ok       copy",
            "FAILED   nap  in run: timed out after 2s",
            "undone   copy",
            "undone   flags",
            "State: undone",
        ],
    );
    assert!(!after.contains("[3/3]"), "the spinner is gone when the step ends:\n{after}");
    check_golden("terminal-after.screen", &after);
}

#[test]
fn the_plugins_are_shown_loading_before_the_plan() {
    let sb = sandbox();
    let rb = runbook(&sb, QUICK_COPY, ECHO);
    // `--no-cache`: every plugin is compiled, which takes long enough to see.
    let run = on_terminal(&sb, &["--no-cache", "run", "--yes", rb], &[], |screen| screen.contains("planning"));
    assert_eq!(run.code, EXIT_SUCCEEDED, "{}", run.text());
    let during = run.snapshot.clone().unwrap_or_else(|| panic!("no planning spinner:\n{}", run.text()));
    assert!(Regex::new(r"planning (flags: loading env-toggle@0\.1\.0|\w+: )").unwrap().is_match(&during), "{during}");
    assert!(!normalise(&sb, &run.screen).contains("planning"), "the planning spinner is cleared:\n{}", run.screen);
}

#[test]
fn a_bar_with_rate_and_eta_shows_when_the_plugin_reports_a_total() {
    let sb = sandbox();
    let copy = r#"attack = "narrate", count = 40, size = 1048576, pause_ms = 50"#;
    let rb = runbook(&sb, copy, ECHO);
    // Taken once a few MiB are done, so the bar, the rate and the ETA mean something.
    let run = on_terminal(&sb, &["run", "--yes", rb], &[], |screen| {
        Regex::new(r"[1-9][\d.]* MiB/40\.00 MiB").unwrap().is_match(screen)
    });
    assert_eq!(run.code, EXIT_SUCCEEDED, "{}", run.text());
    let during = run.snapshot.clone().unwrap_or_else(|| panic!("no bar:\n{}", run.text()));
    let bar = during.lines().find(|l| l.contains("eta")).unwrap();
    let shape = Regex::new(
        r"\[2/3\] copy  run  \[[=> ]{30}\] [\d.]+ [KMG]?i?B/40(\.00)? MiB  [\d.]+ [KMG]?i?B/s  eta \d+s  \d+s",
    )
    .unwrap();
    assert!(shape.is_match(bar), "the bar: `{bar}`");
    in_order(&normalise(&sb, &run.screen), &["ok       flags", "ok       copy", "ok       nap"]);
}

#[test]
fn plain_lines_when_stderr_is_not_a_terminal() {
    let sb = sandbox();
    let rb = runbook(&sb, QUICK_COPY, ECHO);
    let out = sb.run(&["run", "--yes", rb]);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains('\x1b'), "no escape codes into a pipe:\n{text}");
    }
    let stderr = normalise(&sb, &out.stderr);
    in_order(
        &stderr,
        &[
            "<time> loading env-toggle@0.1.0 for step flags",
            "<time> loading hostile@0.1.0 for step copy",
            "<time> [1/3] flags started",
            "<time> [2/3] copy started",
            "<time> [copy] run info: info: copying the backup",
            "<time> [copy] run progress: 0% (0/4096 bytes)",
            "<time> [copy] run progress: 100% (4096/4096 bytes)",
            "<time> [3/3] nap started",
        ],
    );
    assert_eq!(stderr.matches("loading hostile").count(), 1, "a plugin two steps use loads once:\n{stderr}");
    let stdout = normalise(&sb, &out.stdout);
    in_order(&stdout, &["ok       flags", "ok       copy", "ok       nap", "Run succeeded: 3 of 3 steps completed."]);
    check_golden("plain.txt", &format!("--- stderr ---\n{stderr}--- stdout ---\n{stdout}"));
}

#[test]
fn no_color_turns_colour_off_even_on_a_terminal_and_color_always_turns_it_on() {
    let sb = sandbox();
    let rb = runbook(&sb, QUICK_COPY, ECHO);
    let args = ["run", "--yes", rb];
    let default = on_terminal(&sb, &args, &[], |_| false);
    assert_eq!(default.code, EXIT_SUCCEEDED, "{}", default.text());
    assert!(default.has_colour(), "a terminal gets colour by default:\n{:?}", default.text());

    let no_color = on_terminal(&sb, &args, &[("NO_COLOR", "1")], |_| false);
    assert_eq!(no_color.code, EXIT_SUCCEEDED, "{}", no_color.text());
    assert!(!no_color.has_colour(), "NO_COLOR=1 means no colour codes:\n{:?}", no_color.text());
    in_order(&no_color.screen, &["ok       flags", "ok       copy", "ok       nap", "State: succeeded"]);

    // NO_COLOR is about colour: the spinner still redraws its line. A
    // terminal that cannot (TERM=dumb) gets the plain lines, no escape at all.
    let dumb = on_terminal(&sb, &args, &[("TERM", "dumb")], |_| false);
    assert_eq!(dumb.code, EXIT_SUCCEEDED, "{}", dumb.text());
    assert!(!dumb.raw.contains(&0x1b), "TERM=dumb: no escape codes:\n{:?}", dumb.text());
    in_order(&dumb.text(), &["[1/3] flags started", "ok       flags", "[3/3] nap started", "ok       nap"]);

    let never = on_terminal(&sb, &["--color", "never", "run", "--yes", rb], &[], |_| false);
    assert!(!never.has_colour(), "{:?}", never.text());

    let always = on_terminal(&sb, &["--color", "always", "run", "--yes", rb], &[("NO_COLOR", "1")], |_| false);
    assert!(always.has_colour(), "--color always wins over NO_COLOR:\n{:?}", always.text());
    assert!(always.text().contains("\x1b[32mok\x1b[0m       flags"), "{:?}", always.text());

    // Into a pipe, `always` colours the results too; `auto` never does.
    let piped = sb.run(&["--color", "always", "run", "--yes", rb]);
    assert!(piped.stdout.contains("\x1b[32mok\x1b[0m"), "{}", piped.all());
}

#[test]
fn quiet_shows_results_only() {
    let sb = sandbox();
    let rb = runbook(&sb, QUICK_COPY, ECHO);
    let run = on_terminal(&sb, &["-q", "run", "--yes", rb], &[], |_| false);
    assert_eq!(run.code, EXIT_SUCCEEDED, "{}", run.text());
    let text = run.text();
    for absent in ["copying the backup", "older than a day", "progress", "[2/3]", "planning", "Plan for"] {
        assert!(!text.contains(absent), "-q shows `{absent}`:\n{text}");
    }
    assert!(!Regex::new("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]").unwrap().is_match(&text), "-q draws no spinner:\n{text}");
    in_order(
        &run.screen,
        &["ok       flags", "ok       copy", "ok       nap", "Run succeeded: 3 of 3 steps completed."],
    );

    let piped = sb.run(&["-q", "run", "--yes", rb]);
    assert_eq!(piped.code, EXIT_SUCCEEDED, "{}", piped.all());
    assert_eq!(piped.stderr.trim(), "", "-q writes nothing but results:\n{}", piped.all());
    in_order(&piped.stdout, &["ok       flags", "ok       copy", "ok       nap"]);
}

#[test]
fn debug_lines_show_with_verbose_only() {
    let sb = sandbox();
    let rb = runbook(&sb, QUICK_COPY, ECHO);
    let normal = sb.run(&["run", "--yes", rb]);
    assert!(normal.stderr.contains("[copy] run info: info: copying the backup"), "{}", normal.all());
    for hidden in ["debug: a detail for -v", "trace: every detail"] {
        assert!(!normal.stderr.contains(hidden), "`{hidden}` without -v:\n{}", normal.all());
    }
    let verbose = sb.run(&["-v", "run", "--yes", rb]);
    assert_eq!(verbose.code, EXIT_SUCCEEDED, "{}", verbose.all());
    in_order(
        &verbose.stderr,
        &[
            "[copy] run trace: trace: every detail",
            "[copy] run debug: debug: a detail for -v",
            "[copy] run info: info: copying the backup",
        ],
    );
    // What -v did before the live view: the compile cache says what it did.
    assert!(verbose.stderr.contains("compile cache: "), "{}", verbose.all());
    // On a terminal too.
    let run = on_terminal(&sb, &["-v", "run", "--yes", rb], &[], |_| false);
    assert!(run.text().contains("debug: a detail for -v"), "{}", run.text());
}
