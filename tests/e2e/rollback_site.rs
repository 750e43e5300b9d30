//! A real three-step rollback to break on purpose: env-toggle flips a flag
//! in a `.env` (Rust), sqlite-restore puts a SQLite backup in place (Rust,
//! SQLite compiled in), maintenance-flag takes the site out of maintenance
//! (C). Shared by the failure-policy, recovery and crash tests.
//!
//! A step is made to fail the way operators make steps fail: its directory
//! granted read-only by mistake (`flags`, `maintenance-off`), or an
//! `expect` the backup does not meet (`restore`: checked on the staged copy,
//! before the swap). Either way the failing step changes nothing; a step
//! that fails after changing something and is undone from its checkpoint is
//! tested with qdrant-snapshot (`qdrant.rs`) and by the crash tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backout::journal::{self, Event};
use backout_tests::cli::{Output, Sandbox, snapshot};
use backout_tests::{ENV_TOGGLE, MAINTENANCE_FLAG, SQLITE_RESTORE};
use rusqlite::Connection;

use crate::bin;

pub const ENV_BEFORE: &str = "# cortex\nINSIGHT_GENERATION_ENABLED=true\nMEMORY_DECAY=true\n";
pub const ENV_AFTER: &str = "# cortex\nINSIGHT_GENERATION_ENABLED=false\nMEMORY_DECAY=true\n";
pub const FLAG: &str = "down for the 2.0.1 rollback\n";
/// The step ids, in order.
pub const STEPS: [&str; 3] = ["flags", "restore", "maintenance-off"];

/// What the runbook looks like.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The runbook's `on_failure`; `None` leaves the default.
    pub on_failure: Option<&'static str>,
    /// Which step (1-based) fails, if any.
    pub fail: Option<usize>,
    /// Adds a fourth step with `always = true` that writes
    /// `rollback ${run.status} ${run.failed_step}` to `status/last-rollback`.
    pub report: bool,
    /// Replaces the third step with a smoke-test of this origin's `/health`.
    pub smoke: Option<String>,
    /// The runbook's `rto`.
    pub rto: Option<&'static str>,
    /// The `restore` step's `expected` duration.
    pub expected: Option<&'static str>,
}

/// The files a rollback acts on, as they are now.
#[derive(Clone, PartialEq, Eq)]
pub struct Files {
    pub env: Vec<u8>,
    pub db: Vec<u8>,
    pub flag: Option<Vec<u8>>,
}

/// Text as text, the database as its size and digest: a failed comparison
/// must not print megabytes.
impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("env", &String::from_utf8_lossy(&self.env))
            .field("db", &format!("{} bytes, sha256 {}", self.db.len(), backout_tests::cli::sha256_bytes(&self.db)))
            .field("flag", &self.flag.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .finish()
    }
}

/// One site: an app directory, a live database and its backups, a web root
/// in maintenance mode; every plugin in the sandbox's registry.
pub struct Site {
    pub sb: Sandbox,
    pub app: PathBuf,
    pub data: PathBuf,
    pub backups: PathBuf,
    pub www: PathBuf,
    pub scratch: PathBuf,
    pub status: PathBuf,
}

impl Site {
    /// A site whose live database has `live_rows` agents and whose backup has `backup_rows`.
    pub fn new(live_rows: usize, backup_rows: usize) -> Self {
        let sb = Sandbox::new(bin());
        for plugin in [ENV_TOGGLE, SQLITE_RESTORE, MAINTENANCE_FLAG] {
            sb.add(plugin);
        }
        let site = Self {
            app: sb.mkdir("app"),
            data: sb.mkdir("data"),
            backups: sb.mkdir("backups"),
            www: sb.mkdir("www"),
            scratch: sb.mkdir("scratch"),
            status: sb.mkdir("status"),
            sb,
        };
        std::fs::write(site.app.join(".env"), ENV_BEFORE).unwrap();
        make_db(&site.data.join("app.db"), live_rows, "live");
        make_db(&site.backups.join("app.db"), backup_rows, "backup");
        std::fs::write(site.www.join("maintenance.flag"), FLAG).unwrap();
        site
    }

    /// A small site: quick to build, quick to restore.
    pub fn small() -> Self {
        Self::new(30, 500)
    }

    /// A site whose live database and backup are these bytes (made once,
    /// copied into many sites).
    pub fn with_databases(live: &[u8], backup: &[u8]) -> Self {
        let site = Self::new(1, 1);
        std::fs::write(site.data.join("app.db"), live).unwrap();
        std::fs::write(site.backups.join("app.db"), backup).unwrap();
        site
    }

    pub fn runbook(&self, spec: &Spec) -> PathBuf {
        let dir = |host: &Path, guest: &str, mode: &str| {
            format!("{{ host = \"{}\", guest = \"{guest}\", mode = \"{mode}\" }}", host.display())
        };
        let scratch = dir(&self.scratch, "/scratch", "rw");
        let mut text = String::from("version = 1\nname = \"cortex-rollback\"\n");
        if let Some(policy) = spec.on_failure {
            text.push_str(&format!("on_failure = \"{policy}\"\n"));
        }
        if let Some(rto) = spec.rto {
            text.push_str(&format!("rto = \"{rto}\"\n"));
        }
        let (app_mode, app_extra) =
            if spec.fail == Some(1) { ("ro", format!(", {scratch}")) } else { ("rw", String::new()) };
        text.push_str(&format!(
            "\n[[step]]\nid = \"flags\"\nuses = \"env-toggle@0.1.0\"\n\
             with = {{ file = \"/app/.env\", set = {{ INSIGHT_GENERATION_ENABLED = \"false\" }} }}\n\
             [step.grants]\ndirs = [{}{app_extra}]\n",
            dir(&self.app, "/app", app_mode)
        ));
        let expect = if spec.fail == Some(2) {
            r#", expect = [{ sql = "SELECT count(*) FROM agents", min = 1000000 }]"#
        } else {
            ""
        };
        text.push_str(&format!(
            "\n[[step]]\nid = \"restore\"\nuses = \"sqlite-restore@0.1.0\"\n{}\
             with = {{ db = \"/data/app.db\", backup = \"/backups/app.db\"{expect} }}\n\
             [step.grants]\ndirs = [{}, {}]\n",
            spec.expected.map(|e| format!("expected = \"{e}\"\n")).unwrap_or_default(),
            dir(&self.data, "/data", "rw"),
            dir(&self.backups, "/backups", "ro")
        ));
        match &spec.smoke {
            Some(origin) => text.push_str(&format!(
                "\n[[step]]\nid = \"smoke\"\nuses = \"smoke-test@0.1.0\"\n\
                 [step.grants]\nnet = [\"{origin}\"]\n\
                 [[step.with.checks]]\nname = \"health\"\nurl = \"{origin}/health\"\n"
            )),
            None => {
                let (www_mode, www_extra) =
                    if spec.fail == Some(3) { ("ro", format!(", {scratch}")) } else { ("rw", String::new()) };
                text.push_str(&format!(
                    "\n[[step]]\nid = \"maintenance-off\"\nuses = \"maintenance-flag@0.1.0\"\n\
                     with = {{ file = \"/www/maintenance.flag\", enabled = false }}\n\
                     [step.grants]\ndirs = [{}{www_extra}]\n",
                    dir(&self.www, "/www", www_mode)
                ));
            }
        }
        if spec.report {
            text.push_str(&format!(
                "\n[[step]]\nid = \"report\"\nuses = \"maintenance-flag@0.1.0\"\nalways = true\n\
                 with = {{ file = \"/status/last-rollback\", content = \"rollback ${{run.status}} ${{run.failed_step}}\\n\" }}\n\
                 [step.grants]\ndirs = [{}]\n",
                dir(&self.status, "/status", "rw")
            ));
        }
        self.sb.write("rollback.toml", text)
    }

    /// `backout ARGS… rollback.toml` for `spec`.
    pub fn cli(&self, args: &[&str], spec: &Spec) -> Output {
        let runbook = self.runbook(spec);
        let mut all = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    /// The three targets as they are now.
    pub fn files(&self) -> Files {
        Files {
            env: std::fs::read(self.app.join(".env")).unwrap(),
            db: std::fs::read(self.data.join("app.db")).unwrap(),
            flag: std::fs::read(self.www.join("maintenance.flag")).ok(),
        }
    }

    /// The targets after a complete run.
    pub fn after(&self) -> Files {
        Files {
            env: ENV_AFTER.as_bytes().to_vec(),
            db: std::fs::read(self.backups.join("app.db")).unwrap(),
            flag: None,
        }
    }

    /// Files with backout's temporary names anywhere in the site: debris.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        [&self.app, &self.data, &self.www, &self.scratch]
            .iter()
            .flat_map(|d| snapshot(d).into_keys())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.contains(".backout-tmp-") || name.contains(".backout-restore-") || name.contains(".backout-undo-")
            })
            .collect()
    }

    /// Every safety copy (`*.bak`) must be a complete copy of what its file
    /// held before the run: a partial one would be worse than none.
    pub fn check_safety_copies(&self, before: &Files) {
        for (dir, original) in [(&self.app, &before.env), (&self.data, &before.db)] {
            for copy in backout_tests::cli::safety_copies(dir) {
                assert_eq!(&std::fs::read(&copy).unwrap(), original, "`{}` is not a whole safety copy", copy.display());
            }
        }
    }

    /// The newest run's journal, read back through `Journal::read`.
    pub fn journal(&self) -> Vec<Event> {
        let path = self.sb.journal_paths().pop().expect("a run journaled");
        journal::read(&path).unwrap().records.into_iter().map(|r| r.event).collect()
    }

    /// Every journal in the sandbox must read back.
    pub fn check_journals_read(&self) {
        for path in self.sb.journal_paths() {
            journal::read(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// The steps whose undo started, in order, from journal events.
pub fn undo_order(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::UndoStarted { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

/// A database of `rows` agents; `tag` makes two databases of the same size differ.
pub fn make_db(path: &Path, rows: usize, tag: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);").unwrap();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn.prepare("INSERT INTO agents(name, note) VALUES (?1, ?2)").unwrap();
        for i in 0..rows {
            insert.execute((format!("{tag}-{i:07}"), "x".repeat(200))).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// How many of each event kind a journal holds, for messages.
pub fn event_kinds(events: &[Event]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for e in events {
        let value = serde_json::to_value(e).unwrap();
        *kinds.entry(value["event"].as_str().unwrap().to_string()).or_default() += 1;
    }
    kinds
}
