//! file-restore through the real host: real config files and directories in
//! temp directories, the component built from source, the registry, the CLI
//! (`plan`, `run`, `undo`). Every refusal checks what it says and that the
//! files on disk are byte for byte what they were. (The pure parts — formats,
//! key paths, masking, the diff, picking — have unit tests in
//! `plugins/file-restore`.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use backout_tests::FILE_RESTORE;
use backout_tests::cli::{
    EXIT_NEEDS_ATTENTION, EXIT_UNDONE, Output, Sandbox, file_mode, safety_copies, sha256_file, snapshot,
};
use serde_json::Value;

use crate::bin;

/// The live `.env`: a secret, a URL with a password, a flag.
const LIVE_ENV: &str =
    "# production\nAPI_TOKEN=tok-live-123\nDATABASE_URL=postgres://app:live-pw@db:5432/app\nINSIGHTS_ENABLED=true\n";
/// The backup to put back: other secrets, the flag off.
const BACKUP_ENV: &str = "# production\nAPI_TOKEN=tok-backup-456\nDATABASE_URL=postgres://app:backup-pw@db:5432/app\nINSIGHTS_ENABLED=false\n";

/// A sandbox with the plugin registered, the live directory `app/` (granted
/// read-write as `/app`) and `backups/` (read-only, `/backups`).
struct Site {
    sb: Sandbox,
    app: PathBuf,
    backups: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(FILE_RESTORE);
        let app = sb.mkdir("app");
        let backups = sb.mkdir("backups");
        Self { sb, app, backups }
    }

    /// Writes `rel` (under the sandbox) with `mode`.
    fn file(&self, rel: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.sb.write(rel, contents);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A one-step runbook with `with` (inline TOML) and `grants` (TOML array items).
    fn runbook_with_grants(&self, with: &str, grants: &str) -> PathBuf {
        self.sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"config-rollback\"\n\n[[step]]\nid = \"restore\"\nuses = \"file-restore@0.1.0\"\n\
                 with = {{ {with} }}\n\n[step.grants]\ndirs = [\n{grants}]\n"
            ),
        )
    }

    fn grants(&self) -> String {
        format!(
            "  {{ host = \"{}\", guest = \"/app\", mode = \"rw\" }},\n  {{ host = \"{}\", guest = \"/backups\", mode = \"ro\" }},\n",
            self.app.display(),
            self.backups.display()
        )
    }

    fn runbook(&self, with: &str) -> PathBuf {
        self.runbook_with_grants(with, &self.grants())
    }

    fn cli(&self, args: &[&str], with: &str) -> Output {
        let runbook = self.runbook(with);
        let mut all = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    /// `--output json run --yes`, which must succeed: the step's outputs.
    fn restore(&self, with: &str) -> Value {
        let out = self.cli(&["--output", "json", "run", "--yes"], with);
        assert_eq!(out.code, 0, "{}", out.all());
        let report = backout_tests::events::report(&out.stdout);
        report["run"]["steps"][0]["outputs"].clone()
    }

    /// `backout undo last --yes`.
    fn undo(&self) -> Output {
        self.sb.run(&["undo", "last", "--yes"])
    }

    /// Every file under the sandbox's `app/` and `backups/`.
    fn files(&self) -> (std::collections::BTreeMap<PathBuf, Vec<u8>>, std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        (snapshot(&self.app), snapshot(&self.backups))
    }
}

fn set_mtime(path: &Path, seconds_ago: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago)).unwrap();
}

#[test]
fn plan_shows_the_diff_with_secrets_masked_and_changes_nothing() {
    let site = Site::new();
    site.file("app/.env", LIVE_ENV, 0o600);
    site.file("backups/.env.production", BACKUP_ENV, 0o644);
    let before = site.files();
    let out = site.cli(&["plan"], r#"target = "/app/.env", source = "/backups/.env.production", validate = "dotenv""#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("restore /app/.env from /backups/.env.production"), "{}", out.all());
    assert!(out.stdout.contains("check: valid dotenv"), "{}", out.all());
    assert!(out.stdout.contains("change /app/.env: 3 lines removed, 3 added"), "{}", out.all());
    for line in [
        "--- /app/.env (live)",
        "+++ /backups/.env.production (backup)",
        "-API_TOKEN=***",
        "+API_TOKEN=***",
        "-DATABASE_URL=postgres://app:***@db:5432/app",
        "-INSIGHTS_ENABLED=true",
        "+INSIGHTS_ENABLED=false",
    ] {
        assert!(out.stdout.contains(line), "the diff should show `{line}`:\n{}", out.all());
    }
    for secret in ["tok-live-123", "tok-backup-456", "live-pw", "backup-pw"] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "`{secret}` shown:\n{}", out.all());
    }
    assert_eq!(site.files(), before, "plan changed files");
}

#[test]
fn run_restores_keeps_the_mode_and_leaves_a_safety_copy_and_undo_puts_every_byte_back() {
    let site = Site::new();
    let live = site.file("app/.env", LIVE_ENV, 0o600);
    let backup = site.file("backups/.env.production", BACKUP_ENV, 0o644);
    let with = r#"target = "/app/.env", source = "/backups/.env.production", validate = "dotenv", require_keys = ["API_TOKEN", "DATABASE_URL"]"#;
    let outputs = site.restore(with);
    assert_eq!(std::fs::read_to_string(&live).unwrap(), BACKUP_ENV);
    assert_eq!(file_mode(&live), 0o600, "the live file's mode, not the backup's 0644");
    assert_eq!(file_mode(&backup), 0o644);

    let copies = safety_copies(&site.app);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read_to_string(&copies[0]).unwrap(), LIVE_ENV);
    assert_eq!(file_mode(&copies[0]), 0o600, "the safety copy is no more readable than the original");
    let copy = outputs["safety_copy"].as_str().unwrap();
    assert_eq!(site.app.join(copy.strip_prefix("/app/").unwrap()), copies[0]);
    assert_eq!(outputs["target"], "/app/.env");
    assert_eq!(outputs["kind"], "file");
    assert_eq!(outputs["source"], "/backups/.env.production");
    assert_eq!(outputs["checked"], "valid dotenv, with `API_TOKEN`, `DATABASE_URL`");
    assert_eq!(outputs["sha256_after"], sha256_file(&live));
    assert_eq!(outputs["sha256_before"], sha256_file(&copies[0]));
    assert_eq!(std::fs::read_dir(&site.app).unwrap().count(), 2, "no temporary file is left");

    let undo = site.undo();
    assert_eq!(undo.code, 0, "{}", undo.all());
    assert!(undo.stdout.contains("Run undone by `backout undo`."), "{}", undo.all());
    assert!(undo.all().contains("restored /app/.env from safety copy"), "{}", undo.all());
    assert_eq!(std::fs::read(&live).unwrap(), LIVE_ENV.as_bytes());
    assert_eq!(file_mode(&live), 0o600);
    let again = site.undo();
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("nothing to undo"), "{}", again.all());
    assert_eq!(std::fs::read(&live).unwrap(), LIVE_ENV.as_bytes());
}

#[test]
fn latest_picks_the_newest_matching_backup_and_ties_go_to_the_greatest_name() {
    let site = Site::new();
    let live = site.file("app/cortex.toml", "[server]\nport = 9000\n", 0o640);
    let backups = [
        ("cortex-2026-12-01.toml", 8001, 300),
        ("cortex-2026-12-03.toml", 8003, 100),
        ("cortex-2026-12-02.toml", 8002, 200),
        ("other-2026-12-04.toml", 8004, 10),
    ];
    for (name, port, age) in backups {
        let path = site.file(&format!("app/rollback-config/{name}"), &format!("[server]\nport = {port}\n"), 0o644);
        set_mtime(&path, age);
    }
    let with = r#"target = "/app/cortex.toml", source_dir = "/app/rollback-config", pick = "latest", pattern = "cortex-*.toml", validate = "toml", require_keys = ["server.port"]"#;
    let plan = site.cli(&["plan"], with);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout.contains("restore /app/cortex.toml from /app/rollback-config/cortex-2026-12-03.toml"),
        "{}",
        plan.all()
    );
    assert!(plan.stdout.contains("the newest of 3 files matching `cortex-*.toml`"), "{}", plan.all());
    assert!(plan.stdout.contains("-port = 9000") && plan.stdout.contains("+port = 8003"), "{}", plan.all());
    let outputs = site.restore(with);
    assert_eq!(outputs["source"], "/app/rollback-config/cortex-2026-12-03.toml");
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "[server]\nport = 8003\n");
    assert_eq!(file_mode(&live), 0o640);

    // Same modification time: the greatest name wins.
    let site = Site::new();
    site.file("app/cortex.toml", "[server]\nport = 9000\n", 0o640);
    let when = SystemTime::now() - Duration::from_secs(50);
    for name in ["cortex-b.toml", "cortex-c.toml", "cortex-a.toml"] {
        let path = site.file(&format!("backups/{name}"), &format!("[server]\nport = 1\nname = \"{name}\"\n"), 0o644);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
    }
    let outputs = site.restore(
        r#"target = "/app/cortex.toml", source_dir = "/backups", pattern = "cortex-*.toml", validate = "toml""#,
    );
    assert_eq!(outputs["source"], "/backups/cortex-c.toml");

    let none = site.cli(
        &["plan"],
        r#"target = "/app/cortex.toml", source_dir = "/backups", pattern = "nope-*", validate = "toml""#,
    );
    assert_eq!(none.code, 2, "{}", none.all());
    assert!(none.stderr.contains("no backup file matching `nope-*` in `/backups`"), "{}", none.all());
}

#[test]
fn unparseable_backups_are_refused_and_the_live_file_is_byte_identical() {
    let cases = [
        ("toml", "cortex.toml", "[server]\nport = 8080\n", "[server\nport = 8080\n", "is not valid TOML"),
        ("json", "config.json", "{\"port\": 8080}\n", "{\"port\": 8080,,}\n", "is not valid JSON"),
        ("yaml", "config.yaml", "port: 8080\n", "server:\n  port: 8080\n bad: [1\n", "is not valid YAML"),
        ("dotenv", ".env", "PORT=8080\n", "PORT=8080\n<!doctype html>\n", "is not a readable dotenv file"),
    ];
    for (format, name, live_text, broken, says) in cases {
        let site = Site::new();
        let live = site.file(&format!("app/{name}"), live_text, 0o600);
        site.file(&format!("backups/{name}"), broken, 0o644);
        let before = site.files();
        let with = format!(r#"target = "/app/{name}", source = "/backups/{name}", validate = "{format}""#);
        let out = site.cli(&["run", "--yes"], &with);
        assert_eq!(out.code, 2, "{format}: refused before anything runs:\n{}", out.all());
        assert!(out.stderr.contains("plan refused"), "{format}: {}", out.all());
        assert!(out.stderr_in_guest_terms().contains(&format!("`/backups/{name}` {says}")), "{format}: {}", out.all());
        assert!(out.stderr.contains("nothing was changed"), "{format}: {}", out.all());
        assert_eq!(site.files(), before, "{format}: files changed");
        assert_eq!(std::fs::read(&live).unwrap(), live_text.as_bytes());
        assert!(safety_copies(&site.app).is_empty(), "{format}");
    }
}

#[test]
fn a_missing_required_key_is_refused_and_nothing_changes() {
    let site = Site::new();
    site.file("app/cortex.toml", "[server]\nport = 9000\n[database]\nurl = \"x\"\n", 0o640);
    site.file("backups/cortex.toml", "[server]\nport = 8080\n", 0o644);
    let before = site.files();
    let out = site.cli(
        &["run", "--yes"],
        r#"target = "/app/cortex.toml", source = "/backups/cortex.toml", validate = "toml", require_keys = ["server.port", "database.url"]"#,
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr_in_guest_terms()
            .contains("`/backups/cortex.toml` is valid TOML but lacks the required key `database.url`"),
        "{}",
        out.all()
    );
    assert_eq!(site.files(), before);
}

#[test]
fn a_directory_is_swapped_in_and_undone() {
    let site = Site::new();
    site.file("app/conf.d/app.toml", "[server]\nport = 9000\n", 0o640);
    site.file("app/conf.d/secrets.toml", "token = \"tok-live\"\n", 0o600);
    site.file("app/conf.d/only-live.toml", "x = 1\n", 0o644);
    site.file("backups/conf.d/app.toml", "[server]\nport = 8080\n", 0o644);
    site.file("backups/conf.d/secrets.toml", "token = \"tok-backup\"\n", 0o644);
    site.file("backups/conf.d/extra/new.toml", "n = 1\n", 0o640);
    let live = site.app.join("conf.d");
    let before = snapshot(&live);
    let with = r#"target = "/app/conf.d", source = "/backups/conf.d", validate = "toml""#;

    let plan = site.cli(&["plan"], with);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("change /app/conf.d: 2 added, 1 removed, 2 changed, 0 unchanged"), "{}", plan.all());
    assert!(plan.stdout.contains("-token = ***") && !plan.stdout.contains("tok-"), "{}", plan.all());

    let outputs = site.restore(with);
    assert_eq!(outputs["kind"], "directory");
    assert_eq!(outputs["files"], 3);
    assert_eq!(std::fs::read_to_string(live.join("app.toml")).unwrap(), "[server]\nport = 8080\n");
    assert_eq!(std::fs::read_to_string(live.join("extra/new.toml")).unwrap(), "n = 1\n");
    assert!(!live.join("only-live.toml").exists());
    assert_eq!(file_mode(live.join("secrets.toml")), 0o600, "the live file's mode");
    assert_eq!(file_mode(live.join("app.toml")), 0o640);
    assert_eq!(file_mode(live.join("extra/new.toml")), 0o640, "a new file keeps the backup's mode");
    let copy = outputs["safety_copy"].as_str().unwrap();
    let copy = site.app.join(copy.strip_prefix("/app/").unwrap());
    assert_eq!(snapshot(&copy).len(), 3, "the previous directory is the safety copy");
    assert_eq!(std::fs::read_to_string(copy.join("secrets.toml")).unwrap(), "token = \"tok-live\"\n");
    let names: Vec<String> =
        std::fs::read_dir(&site.app).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "the target and its safety copy, no staging left: {names:?}");

    let undo = site.undo();
    assert_eq!(undo.code, 0, "{}", undo.all());
    let rebased = |map: std::collections::BTreeMap<PathBuf, Vec<u8>>, root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        map.into_iter().map(|(p, b)| (p.strip_prefix(root).unwrap().to_path_buf(), b)).collect()
    };
    assert_eq!(rebased(snapshot(&live), &live), rebased(before, &live), "every file is back");
    assert_eq!(file_mode(live.join("secrets.toml")), 0o600);
    let names: Vec<String> =
        std::fs::read_dir(&site.app).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["conf.d"], "the safety copy was renamed back into place");

    // A granted directory itself cannot be renamed inside its grant.
    let before = site.files();
    let out = site.cli(&["plan"], r#"target = "/app", source = "/backups/conf.d", validate = "toml""#);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr_in_guest_terms().contains("`/app` is a granted directory itself"), "{}", out.all());
    assert_eq!(site.files(), before);
}

#[test]
fn undo_is_refused_when_the_file_changed_after_the_run() {
    let site = Site::new();
    let live = site.file("app/cortex.toml", "[server]\nport = 9000\n", 0o640);
    site.file("backups/cortex.toml", "[server]\nport = 8080\n", 0o644);
    site.restore(r#"target = "/app/cortex.toml", source = "/backups/cortex.toml", validate = "toml""#);
    std::fs::write(&live, "[server]\nport = 7777 # edited by hand\n").unwrap();
    let before = site.files();
    let undo = site.undo();
    assert_eq!(undo.code, EXIT_NEEDS_ATTENTION, "{}", undo.all());
    assert!(undo.all_in_guest_terms().contains("`/app/cortex.toml` changed since the run"), "{}", undo.all());
    assert!(undo.all().contains("nothing was restored"), "{}", undo.all());
    assert!(
        undo.all().contains("its content from before the run is in the safety copy `/app/cortex.toml.backout-"),
        "{}",
        undo.all()
    );
    assert_eq!(site.files(), before, "a refused undo changed files");
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "[server]\nport = 7777 # edited by hand\n");
}

#[test]
fn a_read_only_grant_fails_cleanly() {
    // The target in a read-only grant (another grant is read-write, so the
    // host admits the step): the run fails at its first write, before any.
    let site = Site::new();
    let etc = site.sb.mkdir("etc");
    let live = site.file("etc/cortex.toml", "[server]\nport = 9000\n", 0o640);
    site.file("backups/cortex.toml", "[server]\nport = 8080\n", 0o644);
    let grants = format!(
        "  {{ host = \"{}\", guest = \"/etc-app\", mode = \"ro\" }},\n  {{ host = \"{}\", guest = \"/backups\", mode = \"rw\" }},\n",
        etc.display(),
        site.backups.display()
    );
    let before = (snapshot(&etc), snapshot(&site.backups));
    let runbook = site.runbook_with_grants(
        r#"target = "/etc-app/cortex.toml", source = "/backups/cortex.toml", validate = "toml""#,
        &grants,
    );
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_UNDONE, "failed with nothing left in place: {}", out.all());
    assert!(out.all().contains("could not take a safety copy of `/etc-app/cortex.toml`"), "{}", out.all());
    assert!(out.all().contains("read-only"), "{}", out.all());
    assert!(out.all().contains("nothing was changed"), "{}", out.all());
    assert_eq!((snapshot(&etc), snapshot(&site.backups)), before);
    assert_eq!(file_mode(&live), 0o640);

    // Only read-only grants: the host refuses the runbook before anything runs.
    let grants = format!(
        "  {{ host = \"{}\", guest = \"/etc-app\", mode = \"ro\" }},\n  {{ host = \"{}\", guest = \"/backups\", mode = \"ro\" }},\n",
        etc.display(),
        site.backups.display()
    );
    let runbook = site.runbook_with_grants(
        r#"target = "/etc-app/cortex.toml", source = "/backups/cortex.toml", validate = "toml""#,
        &grants,
    );
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("writes files, but the step grants no read-write directory"), "{}", out.all());
    assert_eq!((snapshot(&etc), snapshot(&site.backups)), before);
}
