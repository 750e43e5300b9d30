//! The runbooks in `examples/`, run as they are (only their `[vars]`
//! overridden) against a real local service (`tests/fixtures/service.py`
//! under `bin/svc`, standing in for `systemctl … cortex-mcp`), real files and
//! real SQLite databases.

use std::path::{Path, PathBuf};

use backout_tests::cli::{Output, Sandbox, snapshot};
use backout_tests::service::Service;
use backout_tests::{ENV_TOGGLE, JSON_CONFIG, SERVICE_CONTROL, SMOKE_TEST, SQLITE_RESTORE};

use crate::bin;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).to_str().unwrap().to_string()
}

/// Fields drop in order: the service is stopped before its directory goes.
struct Site {
    service: Service,
    sb: Sandbox,
    app: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        for plugin in [SERVICE_CONTROL, SQLITE_RESTORE, SMOKE_TEST, ENV_TOGGLE, JSON_CONFIG] {
            sb.add(plugin);
        }
        let app = sb.mkdir("app");
        let service = Service::new(&sb.path().join("service"), &app);
        service.start();
        Site { service, sb, app }
    }

    /// `--var` arguments pointing the example at this site's service.
    fn service_vars(&self) -> Vec<String> {
        vec![
            "--var".into(),
            format!("ctl={}", self.service.svc.display()),
            "--var".into(),
            "unit=cortex-mcp".into(),
            "--var".into(),
            format!("origin={}", self.service.origin()),
        ]
    }

    fn run(&self, args: &[String]) -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sb.run(&args)
    }
}

/// A Cortex-like database: `agents` rows, and the 2.0.1 `insights` table when `release_2_0_1`.
fn database(path: &Path, agents: u32, release_2_0_1: bool) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch("CREATE TABLE agents (id INTEGER PRIMARY KEY, name TEXT NOT NULL);").unwrap();
    for i in 0..agents {
        db.execute("INSERT INTO agents (name) VALUES (?1)", [format!("agent-{i}")]).unwrap();
    }
    if release_2_0_1 {
        db.execute_batch("CREATE TABLE insights (id INTEGER PRIMARY KEY, body TEXT);").unwrap();
    }
}

fn tables(path: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

struct Database {
    site: Site,
    data: PathBuf,
    backups: PathBuf,
}

impl Database {
    /// The live database is release 2.0.1's; the backup is 2.0.0's (`agents` in the backup: `backup_agents`).
    fn new(backup_agents: u32) -> Self {
        let site = Site::new();
        let data = site.sb.mkdir("data");
        let backups = site.sb.mkdir("backups");
        database(&data.join("cortex.db"), 3, true);
        database(&backups.join("cortex-backup-2026-12-01.db"), backup_agents, false);
        Database { site, data, backups }
    }

    fn args(&self, command: &str) -> Vec<String> {
        let mut args: Vec<String> = vec![command.into()];
        if command == "run" {
            args.push("--yes".into());
        }
        args.push(example("database-rollback.toml"));
        args.extend([
            "--var".into(),
            format!("data_dir={}", self.data.display()),
            "--var".into(),
            format!("backup_dir={}", self.backups.display()),
        ]);
        args.extend(self.site.service_vars());
        args
    }
}

#[test]
fn database_rollback_stops_restores_starts_and_checks() {
    let db = Database::new(2);
    let pid_before = db.site.service.health().unwrap()["pid"].clone();
    let out = db.site.run(&db.args("plan"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(db.site.service.health().unwrap()["pid"], pid_before, "plan stopped nothing");

    let out = db.site.run(&db.args("run"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(tables(&db.data.join("cortex.db")), ["agents"], "the 2.0.0 database is live");
    assert!(db.site.service.is_up(), "started again");
    assert_ne!(db.site.service.health().unwrap()["pid"], pid_before, "it was really stopped and started");
    let copies: Vec<_> = std::fs::read_dir(&db.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("cortex.db.backout-"))
        .collect();
    assert_eq!(copies.len(), 1, "one safety copy of the 2.0.1 database: {copies:?}");
}

#[test]
fn database_rollback_with_a_bad_backup_starts_the_service_again_and_changes_no_byte() {
    // The backup has no agents: sqlite-restore's `expect` refuses it after
    // the service was stopped; undo starts it again.
    let db = Database::new(0);
    let before = snapshot(&db.data);
    let out = db.site.run(&db.args("run"));
    assert_eq!(out.code, 4, "undone: {}", out.all());
    assert!(out.all().contains("SELECT count(*) FROM agents"), "{}", out.all());
    assert!(db.site.service.is_up(), "undo of the stop started the service: {}", out.all());
    let after = snapshot(&db.data);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "no file left behind");
    assert!(after == before, "the live database is untouched, byte for byte");
}

#[test]
fn feature_rollback_turns_the_flags_off_restarts_and_undo_puts_both_files_back() {
    let site = Site::new();
    let env = site.sb.write(
        "app/.env",
        "# cortex 2.0.1\nNODE_ENV=production\nINSIGHT_GENERATION_ENABLED=true\nSEMANTIC_CHUNKING_OPTIONAL=\"true\"\n",
    );
    let config = site.sb.write(
        "app/config.json",
        "{\n  \"features\": {\n    \"insights\": { \"enabled\": true, \"batch\": 50 }\n  },\n  \"port\": 3000\n}\n",
    );
    let before = snapshot(&site.app);
    let pid_before = site.service.health().unwrap()["pid"].clone();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--yes".into(),
        example("feature-rollback.toml"),
        "--var".into(),
        format!("app_dir={}", site.app.display()),
    ];
    args.extend(site.service_vars());
    let out = site.run(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    let health = site.service.health().unwrap();
    assert_eq!(health["flags"]["INSIGHT_GENERATION_ENABLED"], "false", "{health}");
    assert_eq!(health["flags"]["SEMANTIC_CHUNKING_OPTIONAL"], "false", "{health}");
    assert_ne!(health["pid"], pid_before, "restarted");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "# cortex 2.0.1\nNODE_ENV=production\nINSIGHT_GENERATION_ENABLED=false\nSEMANTIC_CHUNKING_OPTIONAL=\"false\"\n"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "{\n  \"features\": {\n    \"insights\": { \"enabled\": false, \"batch\": 50 }\n  },\n  \"port\": 3000\n}\n"
    );

    let out = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let after: std::collections::BTreeMap<_, _> =
        snapshot(&site.app).into_iter().filter(|(p, _)| !p.to_string_lossy().contains(".backout-")).collect();
    assert_eq!(after, before, "both files are back, byte for byte");
    assert!(site.service.is_up());
}
