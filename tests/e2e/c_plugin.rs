//! The C example plugin (`sdk/c/examples/maintenance-flag`: clang-16,
//! wasi-libc, the preview1 reactor adapter) through the real host: the CLI,
//! the registry, real files in temp directories.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use backout_tests::MAINTENANCE_FLAG;
use backout_tests::cli::{Output, Sandbox, file_mode, snapshot};

use crate::bin;

const FLAG: &str = "/www/maintenance.flag";

/// A site: `www/` granted read-write as `/www`, and `outside/` granted nothing.
struct Site {
    sb: Sandbox,
    www: PathBuf,
    outside: PathBuf,
    flag: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(MAINTENANCE_FLAG);
        let www = sb.mkdir("www");
        let outside = sb.mkdir("outside");
        let flag = www.join("maintenance.flag");
        Self { sb, www, outside, flag }
    }

    /// A runbook with one maintenance-flag step; `with` is the inside of its
    /// TOML `with` table.
    fn runbook(&self, with: &str, mode: &str) -> PathBuf {
        self.sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"maintenance\"\n\n[[step]]\nid = \"flag\"\nuses = \"maintenance-flag@0.1.0\"\n\
                 with = {{ {with} }}\n\n[step.grants]\n\
                 dirs = [{{ host = \"{}\", guest = \"/www\", mode = \"{mode}\" }}]\n",
                self.www.display()
            ),
        )
    }

    fn cli(&self, args: &[&str], with: &str) -> Output {
        let runbook = self.runbook(with, "rw");
        let mut all: Vec<&str> = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    /// `run --yes` with JSON output; returns the step's outputs.
    fn run(&self, with: &str) -> serde_json::Value {
        let out = self.cli(&["--output", "json", "run", "--yes"], with);
        assert_eq!(out.code, 0, "{}", out.all());
        let report = backout_tests::events::report(&out.stdout);
        assert_eq!(report["run"]["steps"][0]["status"], "succeeded", "{}", out.all());
        report["run"]["steps"][0]["outputs"].clone()
    }

    /// `run` when the plugin planned everything in place: nothing runs.
    fn rerun(&self, with: &str) {
        let out = self.cli(&["--output", "json", "run", "--yes"], with);
        assert_eq!(out.code, 0, "{}", out.all());
        let kinds = backout_tests::events::kinds(&out.stdout);
        assert_eq!(kinds, ["plan", "nothing-to-change"], "{}", out.all());
    }

    fn write_flag(&self, contents: &str, mode: u32) {
        std::fs::write(&self.flag, contents).unwrap();
        std::fs::set_permissions(&self.flag, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn flag_contents(&self) -> Option<String> {
        std::fs::read_to_string(&self.flag).ok()
    }

    /// Every file in `www/` but the flag (safety copies, stray temp files).
    fn others(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.www)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "maintenance.flag")
            .collect();
        names.sort();
        names
    }
}

/// The mode a new file gets here: 0666 less this process's umask (which the
/// host inherits; WASI has no say in modes).
fn new_file_mode() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Umask in /proc/self/status");
    0o666 & !u32::from_str_radix(umask.trim(), 8).unwrap()
}

#[test]
fn inspect_shows_what_describe_says() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["inspect", MAINTENANCE_FLAG]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("maintenance-flag 0.1.0"), "{}", out.all());
    assert!(out.stdout.contains("put a site into or out of maintenance mode"), "{}", out.all());
    assert!(out.stdout.contains("files: read-write; env: none; network: no"), "{}", out.all());
    assert!(out.stdout.contains("\"additionalProperties\": false"), "{}", out.all());
    for key in ["\"file\"", "\"enabled\"", "\"content\""] {
        assert!(out.stdout.contains(key), "the schema should describe {key}:\n{}", out.all());
    }
    // Componentized with the preview1 adapter: WASI 0.2.12 files, no network.
    assert!(out.stdout.contains("wasi:filesystem/preopens@0.2.12"), "{}", out.all());
    assert!(!out.stdout.contains("wasi:http"), "{}", out.all());
}

#[test]
fn plan_says_what_will_change_and_changes_nothing() {
    let site = Site::new();
    let cases: [(Option<&str>, &str, &[&str]); 4] = [
        (None, r#"content = "back at 14:00\n""#, &["create /www/maintenance.flag", r#"14 bytes: "back at 14:00\n""#]),
        (Some("old"), r#"content = "new""#, &["replace the content of /www/maintenance.flag", "3 bytes → 3 bytes"]),
        (Some("same"), r#"content = "same""#, &["leave /www/maintenance.flag as it is"]),
        (
            Some("old"),
            "enabled = false",
            &["move /www/maintenance.flag aside", "maintenance.flag.backout-<UTC time>.bak"],
        ),
    ];
    for (existing, with, expected) in cases {
        if let Some(contents) = existing {
            site.write_flag(contents, 0o644);
        }
        let before = snapshot(&site.www);
        let out = site.cli(&["plan"], &format!("file = \"{FLAG}\", {with}"));
        assert_eq!(out.code, 0, "{}", out.all());
        for text in expected {
            assert!(out.stdout.contains(text), "plan for `{with}` should say `{text}`:\n{}", out.all());
        }
        let in_place = with.contains("same");
        let last = if in_place {
            "1 step: 1 already in place; nothing to change."
        } else {
            "1 step: 1 to change; nothing has been changed."
        };
        assert!(out.stdout.contains(last), "{}", out.all());
        assert_eq!(in_place, out.stdout.contains("  [already in place]"), "{}", out.all());
        assert_eq!(snapshot(&site.www), before, "plan for `{with}` changed files");
        let _ = std::fs::remove_file(&site.flag);
    }
}

#[test]
fn run_creates_the_flag_with_its_content_and_the_default_mode() {
    let site = Site::new();
    // Non-ASCII, quotes, backslashes, control characters: JSON escapes both ways.
    let content = "Wartung — zurück um 14:00 ✓ 🚧\n\t\"quoted\" \\ \u{1}";
    let toml = r#"Wartung — zurück um 14:00 ✓ 🚧\n\t\"quoted\" \\ \u0001"#;
    let outputs = site.run(&format!("file = \"{FLAG}\", content = \"{toml}\""));
    assert_eq!(site.flag_contents().as_deref(), Some(content));
    assert_eq!(file_mode(&site.flag), new_file_mode());
    assert_eq!(site.others(), Vec::<String>::new(), "no temp file or copy may be left behind");
    assert_eq!(
        outputs,
        serde_json::json!({
            "file": FLAG, "enabled": true, "changed": true, "existed_before": false,
            "previous_content": null, "content": content, "safety_copy": null,
        })
    );
}

#[test]
fn run_replaces_a_flag_keeping_its_mode_and_records_what_it_held() {
    let site = Site::new();
    site.write_flag("back at 13:00\n", 0o640);
    let outputs = site.run(&format!(r#"file = "{FLAG}", content = "back at 14:00\n""#));
    assert_eq!(site.flag_contents().as_deref(), Some("back at 14:00\n"));
    assert_eq!(file_mode(&site.flag), 0o640, "the atomic replace keeps the mode (through copy-permissions)");
    assert_eq!(outputs["existed_before"], true);
    assert_eq!(outputs["previous_content"], "back at 13:00\n");
    assert_eq!(site.others(), Vec::<String>::new());

    // The same again: planned in place, so nothing runs and nothing is written.
    let after = snapshot(&site.www);
    site.rerun(&format!(r#"file = "{FLAG}", content = "back at 14:00\n""#));
    assert_eq!(snapshot(&site.www), after);
}

#[test]
fn disabling_moves_the_flag_aside_and_verify_checks_it_is_gone() {
    let site = Site::new();
    site.write_flag("down for maintenance\n", 0o600);
    let outputs = site.run(&format!("file = \"{FLAG}\", enabled = false"));
    assert_eq!(site.flag_contents(), None);
    let copy = outputs["safety_copy"].as_str().unwrap();
    assert!(copy.starts_with("/www/maintenance.flag.backout-") && copy.ends_with(".bak"), "{outputs}");
    let on_host = site.www.join(copy.strip_prefix("/www/").unwrap());
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), "down for maintenance\n");
    assert_eq!(file_mode(&on_host), 0o600, "moved, not copied: the mode is the original's");
    assert_eq!(outputs["previous_content"], "down for maintenance\n");

    // Already off: planned in place, so a second run runs nothing.
    let after = snapshot(&site.www);
    site.rerun(&format!("file = \"{FLAG}\", enabled = false"));
    assert_eq!(snapshot(&site.www), after);
}

#[test]
fn a_bad_config_is_an_invalid_config_error_with_exit_code_2() {
    // The `with` text, what the error says, and the key it is shown at
    // (`None`: at the `with` table, for the missing `file`).
    let cases = [
        (r#"content = "x""#, "`file` is required", None),
        (r#"file = "www/maintenance.flag""#, "must be an absolute path", Some("file")),
        (r#"file = "/www/../maintenance.flag""#, "no `//`, `.` or `..`", Some("file")),
        (r#"file = "/www/""#, "must name a file", Some("file")),
        (r#"file = 42"#, "`file` must be a string", Some("file")),
        (r#"file = "/www/maintenance.flag", enabled = "yes""#, "`enabled` must be true or false", Some("enabled")),
        (r#"file = "/www/maintenance.flag", content = ["a"]"#, "`content` must be a string", Some("content")),
        (
            r#"file = "/www/maintenance.flag", enabled = false, content = "x""#,
            "`content` applies only when `enabled` is true",
            Some("content"),
        ),
        (r#"file = "/www/maintenance.flag", colour = "red""#, "unknown key `colour`", Some("colour")),
    ];
    let site = Site::new();
    site.write_flag("old\n", 0o644);
    let before = snapshot(&site.www);
    for (with, mentions, key) in cases {
        let out = site.cli(&["run", "--yes"], with);
        assert_eq!(out.code, 2, "`{with}` must be refused before anything runs:\n{}", out.all());
        assert!(out.stderr.contains("plan refused: invalid config:"), "{}", out.all());
        assert!(out.stderr.contains(mentions), "the error for `{with}` should say `{mentions}`:\n{}", out.all());
        // The runbook's line 7 is `with = { … }`: the table at column 8, its keys from 10.
        let column = key.map_or(8, |k| 10 + with.find(&format!("{k} =")).unwrap());
        let location = format!("runbook.toml:7:{column}\n");
        assert!(out.stderr.contains(&location), "the error for `{with}` should be shown at {location}{}", out.all());
        assert!(!out.stderr.contains("`#/"), "the pointer is the host's to show:\n{}", out.all());
        assert_eq!(snapshot(&site.www), before, "`{with}` changed files");
    }
    // Content too large for a flag file.
    let big = "x".repeat(65_537);
    let out = site.cli(&["validate"], &format!(r#"file = "{FLAG}", content = "{big}""#));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`content` is 65537 bytes; at most 65536"), "{}", out.all());
}

#[test]
fn a_flag_that_is_a_directory_or_a_symlink_is_refused() {
    let site = Site::new();
    std::fs::create_dir(&site.flag).unwrap();
    let out = site.cli(&["validate"], &format!("file = \"{FLAG}\""));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr_in_guest_terms()
            .contains("precondition failed: `/www/maintenance.flag` exists and is not a regular file"),
        "{}",
        out.all()
    );
    std::fs::remove_dir(&site.flag).unwrap();

    std::fs::write(site.www.join("real.flag"), "x").unwrap();
    std::os::unix::fs::symlink("real.flag", &site.flag).unwrap();
    let out = site.cli(&["validate"], &format!("file = \"{FLAG}\", enabled = false"));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("is a symbolic link"), "{}", out.all());
}

#[test]
fn writing_outside_the_grant_is_impossible() {
    let site = Site::new();
    let outside_flag = site.outside.join("maintenance.flag");

    // A host path that exists, named directly: the guest sees only /www.
    let out = site.cli(&["run", "--yes"], &format!("file = \"{}\"", outside_flag.display()));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("precondition failed: cannot access"), "{}", out.all());

    // A symlink inside the grant pointing out of it: the sandbox does not follow it.
    std::os::unix::fs::symlink(&site.outside, site.www.join("escape")).unwrap();
    let out = site.cli(&["run", "--yes"], "file = \"/www/escape/maintenance.flag\"");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("precondition failed: cannot access `/www/escape/maintenance.flag`"), "{}", out.all());

    // A read-only grant: the plugin needs read-write, so the step is refused.
    let runbook = site.runbook(&format!("file = \"{FLAG}\""), "ro");
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("grants no read-write directory"), "{}", out.all());

    assert_eq!(std::fs::read_dir(&site.outside).unwrap().count(), 0, "something was written outside the grant");
    assert_eq!(site.flag_contents(), None);
    assert_eq!(site.others(), vec!["escape".to_string()]);
}

/// Undo and verify, through the library (so a test can call it with outputs it chose; `backout undo` is tested in recover.rs and policy.rs):
/// undo puts back exactly what run replaced, only while the flag still holds
/// what run left there.
#[test]
fn undo_restores_the_previous_state_only_if_the_flag_is_unchanged_since_run() {
    use backout::execute::execute;
    use backout::runtime::host_api::quiet;
    use backout::runtime::{CallContext, Failure, StepErrorKind};

    let site = Site::new();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let runtime = backout::runtime::Runtime::new().unwrap();
        let options = backout::resolve::Options::new(site.sb.registry());

        // (before run, `with`, after run): each is undone and checked.
        let cases: [(Option<&str>, String, Option<&str>); 3] = [
            (None, format!(r#"file = "{FLAG}", content = "on\n""#), Some("on\n")),
            (Some("old\n"), format!(r#"file = "{FLAG}", content = "new\n""#), Some("new\n")),
            (Some("was on\n"), format!("file = \"{FLAG}\", enabled = false"), None),
        ];
        for (before, with, after) in cases {
            let _ = std::fs::remove_file(&site.flag);
            if let Some(contents) = before {
                site.write_flag(contents, 0o640);
            }
            let parsed = backout::runbook::load(&site.runbook(&with, "rw")).unwrap();
            let plan = backout::resolve::resolve(&parsed, &runtime, &options).await.unwrap();
            let step = &plan.steps[0];
            let config = step.config.render(&plan.vars, &Default::default()).unwrap();
            let ctx = CallContext::new(&step.id, &step.grants, step.limits, quiet());

            let report = execute(&plan, quiet(), None).await;
            assert!(report.succeeded(), "{with}");
            assert_eq!(site.flag_contents().as_deref(), after, "{with}");
            let outputs = report.steps[0].outputs.as_ref().unwrap().to_string();
            let verify = step.plugin.verify(&ctx, &config, &outputs).await;
            assert!(verify.result.is_ok(), "{with}: {:?}", verify.result);

            // Edited by hand since run: undo refuses and changes nothing.
            let snapshot_before_edit = snapshot(&site.www);
            site.write_flag("edited by hand\n", 0o644);
            let edited = snapshot(&site.www);
            let refused = step.plugin.undo(&ctx, &config, &outputs).await;
            match refused.result {
                Err(Failure::Step { error: StepErrorKind::Precondition, message, .. }) => {
                    assert!(message.contains("changed since run"), "{with}: {message}")
                }
                other => panic!("{with}: undo must refuse: {other:?}"),
            }
            assert_eq!(snapshot(&site.www), edited, "{with}: a refused undo changed files");
            // verify sees the edit too.
            let verify = step.plugin.verify(&ctx, &config, &outputs).await;
            assert!(
                matches!(verify.result, Err(Failure::Step { error: StepErrorKind::Precondition, .. })),
                "{with}: {:?}",
                verify.result
            );

            // Put back what run left, then undo: the state before run, mode included.
            match after {
                Some(contents) => site.write_flag(contents, 0o640),
                None => std::fs::remove_file(&site.flag).unwrap(),
            }
            assert_eq!(snapshot(&site.www), snapshot_before_edit);
            let undone = step.plugin.undo(&ctx, &config, &outputs).await;
            assert!(undone.result.is_ok(), "{with}: {:?}", undone.result);
            assert_eq!(site.flag_contents().as_deref(), before, "{with}");
            if before.is_some() {
                assert_eq!(file_mode(&site.flag), 0o640, "{with}");
            }
            assert_eq!(site.others(), Vec::<String>::new(), "{with}: undo leaves no copy or temp file behind");

            // Undoing again is safe: the flag is already as it was.
            let again = step.plugin.undo(&ctx, &config, &outputs).await;
            assert!(again.result.is_ok(), "{with}: {:?}", again.result);
            assert_eq!(site.flag_contents().as_deref(), before, "{with}");
        }
    });
}
