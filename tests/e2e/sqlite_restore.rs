//! sqlite-restore through the real host: databases made natively with
//! rusqlite in temp directories, the component built from source, the
//! registry, the CLI. Every refusal checks that the live database's directory
//! is byte for byte what it was. (The pure logic — header, glob, config,
//! expectations — has unit tests in `plugins/sqlite-restore`.)

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use backout_tests::SQLITE_RESTORE;
use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox, sha256_file, snapshot};
use rusqlite::Connection;
use serde_json::Value;

use crate::bin;

/// A sandbox with the plugin registered, a live directory `data/` (granted
/// read-write as `/data`), a backup directory `backups/` (read-only,
/// `/backups`) and another read-write directory `keep/` (`/keep`).
struct Site {
    sb: Sandbox,
    data: PathBuf,
    backups: PathBuf,
    keep: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(SQLITE_RESTORE);
        let data = sb.mkdir("data");
        let backups = sb.mkdir("backups");
        let keep = sb.mkdir("keep");
        Self { sb, data, backups, keep }
    }

    fn live(&self) -> PathBuf {
        self.data.join("app.db")
    }

    /// A runbook restoring into `/data/app.db`; `with` adds config keys.
    fn runbook(&self, with: &str) -> PathBuf {
        self.sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"restore\"\n\n[[step]]\nid = \"restore-db\"\nuses = \"sqlite-restore@0.1.0\"\n\
                 with = {{ db = \"/data/app.db\", {with} }}\n\n[step.grants]\ndirs = [\n  \
                 {{ host = \"{}\", guest = \"/data\", mode = \"rw\" }},\n  {{ host = \"{}\", guest = \"/backups\", mode = \"ro\" }},\n  \
                 {{ host = \"{}\", guest = \"/keep\", mode = \"rw\" }},\n]\n",
                self.data.display(),
                self.backups.display(),
                self.keep.display()
            ),
        )
    }

    fn cli(&self, args: &[&str], with: &str) -> Output {
        let runbook = self.runbook(with);
        let mut all: Vec<&str> = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    /// `run --yes --output json`, which must succeed; returns the step's outputs.
    fn restore(&self, with: &str) -> Value {
        let out = self.cli(&["--output", "json", "run", "--yes"], with);
        assert_eq!(out.code, 0, "{}", out.all());
        let report = backout_tests::events::report(&out.stdout);
        report["run"]["steps"][0]["outputs"].clone()
    }

    /// The host path of a guest path under `/data`, `/keep` or `/backups`.
    fn host(&self, guest: &str) -> PathBuf {
        if let Some(rest) = guest.strip_prefix("/data/") {
            self.data.join(rest)
        } else if let Some(rest) = guest.strip_prefix("/keep/") {
            self.keep.join(rest)
        } else {
            self.backups.join(guest.strip_prefix("/backups/").unwrap())
        }
    }

    /// Undo through the library (so a test can call it with outputs it chose; `backout undo` is tested in recover.rs and policy.rs).
    fn undo(&self, with: &str, outputs: &Value) -> Result<String, (String, String)> {
        use backout::runtime::host_api::quiet;
        use backout::runtime::{CallContext, Failure};

        let runbook = self.runbook(with);
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let runtime = backout::runtime::Runtime::new().unwrap();
            let parsed = backout::runbook::load(&runbook).unwrap();
            let options = backout::resolve::Options::new(self.sb.registry());
            let plan = backout::resolve::resolve(&parsed, &runtime, &options).await.unwrap();
            let step = &plan.steps[0];
            let config = step.config.render(&plan.vars, &Default::default()).unwrap();
            let ctx = CallContext::new(&step.id, &step.grants, step.limits, quiet());
            match step.plugin.undo(&ctx, &config, &outputs.to_string()).await.result {
                Ok(outcome) => Ok(outcome.summary),
                Err(Failure::Step { error, message, .. }) => Err((format!("{error:?}"), message)),
                Err(other) => Err(("other".into(), format!("{other:?}"))),
            }
        })
    }
}

/// A database with `rows` agents (a table, an index, enough rows for many pages).
fn make_db(path: &Path, rows: usize) {
    let conn = Connection::open(path).unwrap();
    fill(&conn, rows);
}

fn fill(conn: &Connection, rows: usize) {
    conn.execute_batch(
        "CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);
         CREATE INDEX agents_name ON agents(name);",
    )
    .unwrap();
    insert(conn, 0, rows);
}

fn insert(conn: &Connection, from: usize, rows: usize) {
    conn.execute_batch("BEGIN").unwrap();
    for i in from..from + rows {
        conn.execute("INSERT INTO agents(name, note) VALUES (?1, ?2)", (format!("agent-{i:05}"), "x".repeat(200)))
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn count(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0)).unwrap()
}

fn set_mtime(path: &Path, seconds_ago: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago)).unwrap();
}

/// A live WAL-mode database with committed rows still only in its `-wal`:
/// the files a service leaves behind when it is stopped hard. The connection
/// that wrote them stays open while they are copied, so nothing checkpoints.
fn make_wal_db(live: &Path, in_main: usize, in_wal: usize) {
    let scratch = live.with_file_name("scratch.db");
    let conn = Connection::open(&scratch).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    fill(&conn, in_main);
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    insert(&conn, in_main, in_wal);
    std::fs::copy(&scratch, live).unwrap();
    std::fs::copy(scratch.with_file_name("scratch.db-wal"), live.with_file_name("app.db-wal")).unwrap();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
}

#[test]
fn a_good_backup_is_restored_checked_and_kept_with_a_safety_copy() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 500);
    let original = std::fs::read(site.live()).unwrap();
    let with = r#"backup = "/backups/app.db", expect = [{ sql = "SELECT count(*) FROM agents", min = 100 }, { sql = "SELECT name FROM agents WHERE id = 1", equals = "agent-00000" }]"#;
    let outputs = site.restore(with);

    assert_eq!(count(&site.live()), 500);
    assert_eq!(std::fs::read(site.live()).unwrap(), std::fs::read(site.backups.join("app.db")).unwrap());
    assert_eq!(outputs["sha256"], sha256_file(site.live()));
    assert_eq!(outputs["backup"], "/backups/app.db");
    assert_eq!(outputs["check"], "integrity_check");
    assert_eq!(outputs["page_size"], 4096);
    assert_eq!(outputs["page_count"].as_u64().unwrap() * 4096, std::fs::metadata(site.live()).unwrap().len());
    assert_eq!(outputs["expect"][0]["value"], 500);
    assert_eq!(outputs["expect"][0]["ok"], true);
    assert_eq!(outputs["expect"][1]["value"], "agent-00000");

    let copy = outputs["safety_copy"].as_str().unwrap();
    assert!(copy.starts_with("/data/app.db.backout-") && copy.ends_with(".bak"), "{outputs}");
    assert_eq!(std::fs::read(site.host(copy)).unwrap(), original);
    assert_eq!(outputs["safety_wal"], Value::Null);
    // Nothing else is left behind: no temp file, no side file.
    let mut names: Vec<String> =
        std::fs::read_dir(&site.data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["app.db".to_owned(), copy.strip_prefix("/data/").unwrap().to_owned()]);
}

#[test]
fn a_second_restore_of_the_same_backup_is_already_in_place() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 50);
    let with = r#"backup = "/backups/app.db""#;
    site.restore(with);
    let after = snapshot(&site.data);

    // The live database is the backup now: the plan says so; what is left
    // is the check of it, which changes nothing.
    let plan = site.cli(&["plan", "--detailed-exitcode"], with);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout.contains("leave /data/app.db as it is: it already holds the bytes of the backup"),
        "{}",
        plan.all()
    );
    assert!(plan.stdout.contains("1 step: 1 to check; nothing to change."), "{}", plan.all());
    let runs = site.sb.journal_paths().len();

    // The step checks the database in place (integrity_check), without asking.
    let out = site.cli(&["--output", "json", "run"], with);
    assert_eq!(out.code, 0, "{}", out.all());
    let step = &backout_tests::events::report(&out.stdout)["run"]["steps"][0];
    assert!(step["summary"].as_str().unwrap().starts_with("no change needed: /data/app.db already holds"), "{step}");
    assert_eq!(step["outputs"]["unchanged"], true);
    assert_eq!(step["outputs"]["safety_copy"], Value::Null);
    assert_eq!(site.sb.journal_paths().len(), runs + 1);
    assert_eq!(snapshot(&site.data), after, "nothing written: no safety copy, no staged copy");

    // Undoing that run keeps the database: it changed nothing.
    let undo = site.sb.run(&["undo", "--yes", "last"]);
    assert_eq!(undo.code, 0, "{}", undo.all());
    assert_eq!(snapshot(&site.data), after);
}

#[test]
fn plan_names_the_backup_and_the_checks_and_changes_nothing() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 200);
    let before = (snapshot(&site.data), snapshot(&site.backups));
    let out = site
        .cli(&["plan"], r#"backup = "/backups/app.db", expect = [{ sql = "SELECT count(*) FROM agents", min = 1 }]"#);
    assert_eq!(out.code, 0, "{}", out.all());
    for part in [
        "restore /data/app.db from /backups/app.db",
        "pages of 4096 bytes",
        "keep the current /data/app.db as a safety copy in /data",
        "no -wal or -journal beside it",
        "space needed",
        "PRAGMA integrity_check",
        "SELECT count(*) FROM agents → ≥ 1",
    ] {
        assert!(out.stdout.contains(part), "plan should say `{part}`:\n{}", out.all());
    }
    assert_eq!((snapshot(&site.data), snapshot(&site.backups)), before);
}

#[test]
fn damaged_backups_are_refused_and_the_live_database_is_untouched() {
    // (name, how to damage a good backup, exit code, what the error says)
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage, i32, &str); 4] = [
        // A page in the middle: the header is fine, so only integrity_check can tell.
        (
            "corrupt",
            |b| {
                let page = 4096 * (b.len() / 4096 / 2);
                for byte in &mut b[page..page + 16] {
                    *byte ^= 0xa5;
                }
            },
            EXIT_UNDONE,
            "fails integrity_check",
        ),
        ("truncated", |b| b.truncate(b.len() / 2), 2, "is truncated"),
        ("not a database", |b| *b = b"name,value\nagents,3\n".repeat(300), 2, "not a SQLite database"),
        ("empty", |b| b.clear(), 2, "is empty"),
    ];
    for (name, damage, code, says) in cases {
        let site = Site::new();
        make_db(&site.live(), 3);
        let backup = site.backups.join("app.db");
        make_db(&backup, 500);
        let mut bytes = std::fs::read(&backup).unwrap();
        damage(&mut bytes);
        std::fs::write(&backup, bytes).unwrap();
        let before = snapshot(&site.data);

        let out = site.cli(&["run", "--yes"], r#"backup = "/backups/app.db""#);
        assert_eq!(out.code, code, "{name}:\n{}", out.all());
        assert!(out.all().contains(says), "{name}: the error should say `{says}`:\n{}", out.all());
        assert!(out.all().contains("nothing was changed"), "{name}:\n{}", out.all());
        assert_eq!(snapshot(&site.data), before, "{name}: the live directory changed");
        assert_eq!(count(&site.live()), 3);
    }
}

#[test]
fn a_wal_database_is_refused_without_allow_wal() {
    let site = Site::new();
    make_wal_db(&site.live(), 10, 5);
    make_db(&site.backups.join("app.db"), 100);
    let before = snapshot(&site.data);
    let out = site.cli(&["run", "--yes"], r#"backup = "/backups/app.db""#);
    assert_eq!(out.code, 2, "{}", out.all());
    for part in ["/data/app.db-wal", "allow_wal = true", "stop the service", "nothing was changed"] {
        assert!(out.stderr.contains(part), "the refusal should say `{part}`:\n{}", out.all());
    }
    assert_eq!(snapshot(&site.data), before);
}

#[test]
fn with_allow_wal_the_safety_copy_keeps_the_wal_and_undo_brings_back_every_row() {
    let site = Site::new();
    make_wal_db(&site.live(), 10, 5);
    make_db(&site.backups.join("app.db"), 100);
    let original = snapshot(&site.data);
    let with = r#"backup = "/backups/app.db", allow_wal = true"#;
    let outputs = site.restore(with);

    assert_eq!(count(&site.live()), 100);
    let copy = site.host(outputs["safety_copy"].as_str().unwrap());
    let wal = site.host(outputs["safety_wal"].as_str().unwrap());
    assert_eq!(wal, PathBuf::from(format!("{}-wal", copy.display())));
    assert_eq!(std::fs::read(&copy).unwrap(), original[&site.live()]);
    assert_eq!(std::fs::read(&wal).unwrap(), original[&site.data.join("app.db-wal")]);
    assert!(!site.data.join("app.db-wal").exists() && !site.data.join("app.db-shm").exists());

    let undone = site.undo(with, &outputs).unwrap();
    assert!(undone.contains("restored /data/app.db from safety copy"), "{undone}");
    assert_eq!(std::fs::read(site.live()).unwrap(), original[&site.live()]);
    assert_eq!(std::fs::read(site.data.join("app.db-wal")).unwrap(), original[&site.data.join("app.db-wal")]);
    assert_eq!(count(&site.live()), 15, "the rows committed only to the -wal are back");
}

#[test]
fn latest_picks_the_newest_backup_matching_the_pattern() {
    let site = Site::new();
    make_db(&site.live(), 3);
    for (name, rows, age) in
        [("app-backup-1.db", 11, 300), ("app-backup-2.db", 22, 100), ("app-backup-0.db", 33, 200), ("other.db", 44, 10)]
    {
        let path = site.backups.join(name);
        make_db(&path, rows);
        set_mtime(&path, age);
    }
    let with = r#"backup_dir = "/backups", pick = "latest", pattern = "app-backup-*.db""#;
    let plan = site.cli(&["plan"], with);
    assert!(plan.stdout.contains("the newest of 3 files matching `app-backup-*.db`"), "{}", plan.all());
    let outputs = site.restore(with);
    assert_eq!(outputs["backup"], "/backups/app-backup-2.db");
    assert_eq!(count(&site.live()), 22);

    // Without a pattern the newest file of all wins.
    let site2 = Site::new();
    for (name, rows, age) in [("a.db", 1, 50), ("b.db", 2, 5)] {
        make_db(&site2.backups.join(name), rows);
        set_mtime(&site2.backups.join(name), age);
    }
    assert_eq!(site2.restore(r#"backup_dir = "/backups""#)["backup"], "/backups/b.db");
    let none = site.cli(&["plan"], r#"backup_dir = "/backups", pattern = "nothing-*.db""#);
    assert_eq!(none.code, 2, "{}", none.all());
    assert!(none.stderr.contains("no backup matching `nothing-*.db` in `/backups`"), "{}", none.all());
}

/// `expect` runs on the staged copy, before the swap: a backup that does not
/// meet it is refused with the live database untouched and no safety copy.
#[test]
fn a_backup_that_fails_an_expectation_is_refused_before_anything_changes() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 10);
    let before = snapshot(&site.data);
    let out = site.cli(
        &["run", "--yes"],
        r#"backup = "/backups/app.db", expect = [{ sql = "SELECT count(*) FROM agents", min = 1000 }]"#,
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains(
            "does not meet `expect`: `SELECT count(*) FROM agents` returned 10 (expected ≥ 1000); nothing was changed"
        ),
        "{}",
        out.all()
    );
    assert!(snapshot(&site.data) == before, "the live database untouched, no safety copy, no temporary file");
}

#[test]
fn undo_restores_the_exact_original_bytes_and_refuses_after_a_change() {
    let site = Site::new();
    make_db(&site.live(), 7);
    make_db(&site.backups.join("app.db"), 100);
    let original = std::fs::read(site.live()).unwrap();
    let with = r#"backup = "/backups/app.db""#;

    // Someone writes to the restored database: undo must refuse and change nothing.
    let outputs = site.restore(with);
    insert(&Connection::open(site.live()).unwrap(), 1000, 1);
    let changed = snapshot(&site.data);
    let (kind, message) = site.undo(with, &outputs).unwrap_err();
    assert_eq!(kind, "Precondition", "{message}");
    assert!(message.contains("changed since the restore") && message.contains("nothing was restored"), "{message}");
    assert_eq!(snapshot(&site.data), changed);

    // Untouched since the restore: undo puts back every byte.
    std::fs::write(site.live(), &original).unwrap();
    let outputs = site.restore(with);
    assert_eq!(count(&site.live()), 100);
    site.undo(with, &outputs).unwrap();
    assert_eq!(std::fs::read(site.live()).unwrap(), original);
    assert_eq!(count(&site.live()), 7);
}

#[test]
fn a_fresh_restore_creates_the_database_with_the_backups_mode_and_undo_removes_it() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    make_db(&site.backups.join("app.db"), 20);
    std::fs::set_permissions(site.backups.join("app.db"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let with = r#"backup = "/backups/app.db""#;
    let outputs = site.restore(with);
    assert_eq!(outputs["safety_copy"], Value::Null);
    assert_eq!(count(&site.live()), 20);
    let mode = std::fs::metadata(site.live()).unwrap().permissions().mode() & 0o777;
    assert_eq!(format!("{mode:o}"), "600", "no live database: the backup's mode, never the default");
    site.undo(with, &outputs).unwrap();
    assert!(!site.live().exists());
}

#[test]
fn statements_that_are_not_read_only_are_refused_at_plan_time() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 10);
    let before = (snapshot(&site.data), snapshot(&site.backups));
    for (sql, says) in [
        ("DELETE FROM agents", "is not a read-only statement"),
        ("UPDATE agents SET name = 'x'", "is not a read-only statement"),
        ("SELECT 1; DROP TABLE agents", "more than one statement"),
    ] {
        let out =
            site.cli(&["validate"], &format!(r#"backup = "/backups/app.db", expect = [{{ sql = "{sql}", min = 0 }}]"#));
        assert_eq!(out.code, 2, "`{sql}`:\n{}", out.all());
        assert!(out.stderr.contains(says), "`{sql}` should be refused with `{says}`:\n{}", out.all());
    }
    assert_eq!((snapshot(&site.data), snapshot(&site.backups)), before);
    assert_eq!(count(&site.live()), 3);
}

#[test]
fn run_reports_progress_and_verify_passes() {
    let site = Site::new();
    make_db(&site.backups.join("app.db"), 2000);
    let out = site.cli(&["run", "--yes"], r#"backup = "/backups/app.db", check = "quick""#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("[restore-db] run progress: 100%"), "{}", out.all());
    assert!(out.stderr.contains("quick_check: ok"), "{}", out.all());
    assert!(out.stdout.contains("Run succeeded: 1 of 1 step completed."), "{}", out.all());
}

/// A safety directory in another grant: no hard link or rename reaches it
/// from `/data`, so the database is copied (fsync'd) and its `-wal` copied
/// and removed; undo still brings back every byte.
#[test]
fn a_safety_dir_in_another_grant_gets_copies_and_undo_still_works() {
    let site = Site::new();
    make_wal_db(&site.live(), 10, 5);
    make_db(&site.backups.join("app.db"), 100);
    let original = snapshot(&site.data);
    let with = r#"backup = "/backups/app.db", safety_dir = "/keep", allow_wal = true"#;
    let outputs = site.restore(with);
    let copy = outputs["safety_copy"].as_str().unwrap();
    assert!(copy.starts_with("/keep/app.db.backout-"), "{outputs}");
    assert_eq!(std::fs::read(site.host(copy)).unwrap(), original[&site.live()]);
    let wal = site.host(outputs["safety_wal"].as_str().unwrap());
    assert_eq!(std::fs::read(wal).unwrap(), original[&site.data.join("app.db-wal")]);
    assert!(!site.data.join("app.db-wal").exists());
    assert_eq!(count(&site.live()), 100);

    site.undo(with, &outputs).unwrap();
    assert_eq!(snapshot(&site.data), original);
    assert_eq!(count(&site.live()), 15);
}

#[test]
fn a_missing_safety_dir_is_refused_at_plan_time() {
    let site = Site::new();
    make_db(&site.live(), 3);
    make_db(&site.backups.join("app.db"), 10);
    let out = site.cli(&["plan"], r#"backup = "/backups/app.db", safety_dir = "/keep/missing""#);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr_in_guest_terms().contains("the safety directory `/keep/missing` does not exist"),
        "{}",
        out.all()
    );
}
