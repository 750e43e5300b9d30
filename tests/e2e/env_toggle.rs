//! env-toggle through the real host: real `.env` files in temp directories,
//! the component built from source, the registry, the CLI. (Every format rule
//! also has a unit test in `plugins/env-toggle/src/dotenv.rs`.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use backout_tests::ENV_TOGGLE;
use backout_tests::cli::{Output, Sandbox, file_mode, safety_copies, snapshot};

use crate::bin;

/// Comments, blank lines, `export`, both quote styles, an inline comment,
/// CRLF line endings and no final newline: everything must survive.
const ORIGINAL: &str = "# production\r\nexport NODE_ENV=production\r\n\r\nINSIGHT_GENERATION_ENABLED=true   # 2.0.1\r\nSEMANTIC_CHUNKING_OPTIONAL=\"true\"\r\nBETA_BANNER='on'\r\nAPI_TOKEN=tok-abc123\r\nLOG_LEVEL=info";

struct App {
    sb: Sandbox,
    dir: PathBuf,
    env: PathBuf,
}

impl App {
    fn new(contents: &str) -> Self {
        let sb = Sandbox::new(bin());
        sb.add(ENV_TOGGLE);
        let dir = sb.mkdir("app");
        let env = sb.write("app/.env", contents);
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o640)).unwrap();
        Self { sb, dir, env }
    }

    fn runbook(&self, with: &str) -> PathBuf {
        self.sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"toggle\"\n\n[[step]]\nid = \"toggle\"\nuses = \"env-toggle@0.1.0\"\n\
                 with = {{ file = \"/app/.env\", {with} }}\n\n[step.grants]\n\
                 dirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n",
                self.dir.display()
            ),
        )
    }

    fn cli(&self, args: &[&str], with: &str) -> Output {
        let runbook = self.runbook(with);
        let mut all: Vec<&str> = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    fn contents(&self) -> String {
        std::fs::read_to_string(&self.env).unwrap()
    }

    fn backups(&self) -> Vec<PathBuf> {
        safety_copies(&self.dir)
    }
}

#[test]
fn run_changes_only_the_targeted_values_and_keeps_every_other_byte() {
    let app = App::new(ORIGINAL);
    let with = r#"set = { INSIGHT_GENERATION_ENABLED = "false", SEMANTIC_CHUNKING_OPTIONAL = "false" }, unset = ["BETA_BANNER"]"#;
    let out = app.cli(&["--output", "json", "run", "--yes"], with);
    assert_eq!(out.code, 0, "{}", out.all());
    let expected = ORIGINAL
        .replace("INSIGHT_GENERATION_ENABLED=true", "INSIGHT_GENERATION_ENABLED=false")
        .replace("SEMANTIC_CHUNKING_OPTIONAL=\"true\"", "SEMANTIC_CHUNKING_OPTIONAL=\"false\"")
        .replace("BETA_BANNER='on'\r\n", "");
    assert_eq!(app.contents(), expected);

    // The safety copy holds the original bytes, and its path is in the output.
    let report = backout_tests::events::report(&out.stdout);
    let outputs = &report["run"]["steps"][0]["outputs"];
    let copy = outputs["safety_copy"].as_str().unwrap();
    assert!(copy.starts_with("/app/.env.backout-") && copy.ends_with(".bak"), "{outputs}");
    let backups = app.backups();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0], app.dir.join(copy.strip_prefix("/app/").unwrap()));
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), ORIGINAL);

    // Permissions survive the atomic replace, and the safety copy is no more readable than the original.
    assert_eq!(file_mode(&app.env), 0o640);
    assert_eq!(file_mode(&backups[0]), 0o640);
}

#[test]
fn the_text_report_names_the_safety_copy_on_the_host() {
    let app = App::new(ORIGINAL);
    let out = app.cli(&["run", "--yes"], r#"set = { INSIGHT_GENERATION_ENABLED = "false" }"#);
    assert_eq!(out.code, 0, "{}", out.all());
    let backup = &app.backups()[0];
    assert!(out.stdout.contains(&format!("(host: {})", backup.display())), "{}", out.all());
    assert!(out.stdout.contains("Run succeeded: 1 of 1 step completed."), "{}", out.all());
}

#[test]
fn plan_shows_each_change_and_changes_nothing() {
    let app = App::new(ORIGINAL);
    let before = snapshot(&app.dir);
    let out = app.cli(&["plan"], r#"set = { INSIGHT_GENERATION_ENABLED = "false" }, unset = ["BETA_BANNER"]"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("set INSIGHT_GENERATION_ENABLED in /app/.env"), "{}", out.all());
    assert!(out.stdout.contains("true → false"), "{}", out.all());
    assert!(out.stdout.contains("BETA_BANNER"), "{}", out.all());
    assert_eq!(snapshot(&app.dir), before);
}

#[test]
fn secret_values_are_masked_in_plan_and_report() {
    let app = App::new(ORIGINAL);
    let out = app.cli(&["plan"], r#"set = { API_TOKEN = "tok-new999" }"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("tok-abc123") && !out.stdout.contains("tok-new999"), "{}", out.all());
    let out = app.cli(&["--output", "json", "run", "--yes"], r#"set = { API_TOKEN = "tok-new999" }"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("tok-abc123") && !out.stderr.contains("tok-abc123"), "{}", out.all());
    assert!(app.contents().contains("API_TOKEN=tok-new999\r\n"));
}

#[test]
fn refused_edits_leave_the_file_untouched_and_make_no_copy() {
    let cases = [
        (ORIGINAL, r#"set = { NOT_THERE = "1" }"#, "NOT_THERE"),
        ("A=1\nB=2\nA=3\n", r#"set = { A = "9" }"#, "allow_duplicates"),
        ("A=\"line one\nline two\"\nB=2\n", r#"set = { A = "x" }"#, "A"),
        ("A=1\n", r#"set = { A = "1\n2" }"#, "A"),
        ("A=1\n", r#"set = { A = 1 }"#, "must be a string"),
    ];
    for (contents, with, mentions) in cases {
        let app = App::new(contents);
        let before = snapshot(&app.dir);
        let out = app.cli(&["run", "--yes"], with);
        assert_eq!(out.code, 2, "`{with}` must be refused before anything runs:\n{}", out.all());
        assert!(out.stderr.contains("plan refused"), "{}", out.all());
        assert!(out.stderr.contains(mentions), "the error should mention `{mentions}`:\n{}", out.all());
        assert_eq!(snapshot(&app.dir), before, "`{with}` changed files");
    }
}

#[test]
fn a_missing_file_is_a_precondition_error() {
    let app = App::new("A=1\n");
    std::fs::remove_file(&app.env).unwrap();
    let out = app.cli(&["validate"], r#"set = { A = "2" }"#);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("precondition failed"), "{}", out.all());
    // In the operator's terms: the host path beside the guest path, no WASI error number.
    let host = format!("`/app/.env` (host: {})", app.env.display());
    assert!(out.stderr.contains(&host), "{}", out.all());
    assert!(out.stderr.contains("(not found)"), "{}", out.all());
    assert!(!out.stderr.contains("os error"), "{}", out.all());
}

#[test]
fn a_host_path_in_with_is_pointed_at_with_its_sandbox_path() {
    let app = App::new("A=1\n");
    for file in [format!("{}", app.env.display()), "${vars.app}/.env".to_string()] {
        let runbook = app.sb.write(
            "host-path.toml",
            format!(
                "version = 1\nname = \"toggle\"\n\n[vars]\napp = \"{dir}\"\n\n[[step]]\nid = \"toggle\"\n\
                 uses = \"env-toggle@0.1.0\"\nwith = {{ file = \"{file}\", set = {{ A = \"2\" }} }}\n\n\
                 [step.grants]\ndirs = [{{ host = \"${{vars.app}}\", guest = \"/app\", mode = \"rw\" }}]\n",
                dir = app.dir.display()
            ),
        );
        let out = app.sb.run(&["validate", runbook.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains(&format!("warning: step `toggle`: `{file}` is a path on the host")),
            "{}",
            out.all()
        );
        assert!(out.stderr.contains("inside the sandbox this is `/app/.env`"), "{}", out.all());
        assert_eq!(app.contents(), "A=1\n");
    }
}

#[test]
fn running_twice_changes_nothing_the_second_time() {
    let app = App::new(ORIGINAL);
    let with = r#"set = { INSIGHT_GENERATION_ENABLED = "false" }"#;
    assert_eq!(app.cli(&["run", "--yes"], with).code, 0);
    let after_first = snapshot(&app.dir);
    let out = app.cli(&["--output", "json", "run", "--yes"], with);
    assert_eq!(out.code, 0, "{}", out.all());
    // Planned already in place: nothing runs (the plugin's own `run` of an
    // edit with nothing to change is a unit test in `ops.rs`).
    assert_eq!(backout_tests::events::kinds(&out.stdout), ["plan", "nothing-to-change"], "{}", out.stdout);
    assert_eq!(snapshot(&app.dir), after_first, "a no-op run wrote something");
}

#[test]
fn create_missing_appends_with_the_files_line_ending() {
    let app = App::new("A=1\r\nB=2");
    let out = app.cli(&["run", "--yes"], r#"set = { C = "3" }, create_missing = true"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(app.contents(), "A=1\r\nB=2\r\nC=3\r\n");
}

/// Undo, through the library (so a test can call it with outputs it chose; `backout undo` is tested in recover.rs and policy.rs): it restores
/// the safety copy only while the file still holds what run wrote.
#[test]
fn undo_restores_the_original_only_if_the_file_is_unchanged_since_run() {
    use backout::execute::execute;
    use backout::runtime::host_api::quiet;
    use backout::runtime::{CallContext, Failure, StepErrorKind};

    let app = App::new(ORIGINAL);
    let runbook = app.runbook(r#"set = { INSIGHT_GENERATION_ENABLED = "false" }"#);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let runtime = backout::runtime::Runtime::new().unwrap();
        let parsed = backout::runbook::load(&runbook).unwrap();
        let options = backout::resolve::Options::new(app.sb.registry());
        let plan = backout::resolve::resolve(&parsed, &runtime, &options).await.unwrap();
        let step = &plan.steps[0];
        let config = step.config.render(&plan.vars, &Default::default()).unwrap();
        let ctx = CallContext::new(&step.id, &step.grants, step.limits, quiet());

        // First run: edited by hand afterwards, so undo must refuse and change nothing.
        let report = execute(&plan, quiet(), None).await;
        assert!(report.succeeded());
        let outputs = report.steps[0].outputs.as_ref().unwrap().to_string();
        std::fs::write(&app.env, "INSIGHT_GENERATION_ENABLED=maybe\n").unwrap();
        let refused = step.plugin.undo(&ctx, &config, &outputs).await;
        match refused.result {
            Err(Failure::Step { error: StepErrorKind::Precondition, message, .. }) => {
                assert!(message.contains("changed"), "{message}")
            }
            other => panic!("undo must refuse: {other:?}"),
        }
        assert_eq!(app.contents(), "INSIGHT_GENERATION_ENABLED=maybe\n");

        // Second run on the original: undo puts back every byte and the mode.
        std::fs::write(&app.env, ORIGINAL).unwrap();
        let report = execute(&plan, quiet(), None).await;
        assert!(report.succeeded());
        assert_ne!(app.contents(), ORIGINAL);
        let outputs = report.steps[0].outputs.as_ref().unwrap().to_string();
        let undone = step.plugin.undo(&ctx, &config, &outputs).await;
        assert!(undone.result.is_ok(), "{:?}", undone.result);
        assert_eq!(app.contents(), ORIGINAL);
        assert_eq!(file_mode(&app.env), 0o640);

        // verify now fails: the new value is no longer there.
        let verify = step.plugin.verify(&ctx, &config, &outputs).await;
        assert!(
            matches!(verify.result, Err(Failure::Step { error: StepErrorKind::Precondition, .. })),
            "{:?}",
            verify.result
        );
    });
}
