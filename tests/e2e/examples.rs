//! The runbooks in `examples/`, run as they are (only their `[vars]`
//! overridden) against a real local service (`tests/fixtures/service.py`
//! under `bin/svc`, standing in for `systemctl … cortex-mcp`), real files and
//! real SQLite databases.

use std::path::{Path, PathBuf};

use backout_tests::cli::{Output, Sandbox, snapshot};
use backout_tests::http_server::{Response, TestServer};
use backout_tests::qdrant_double::QdrantDouble;
use backout_tests::service::Service;
use backout_tests::{
    ENV_TOGGLE, FILE_RESTORE, JSON_CONFIG, QDRANT_SNAPSHOT, RELEASE_SWITCH, SERVICE_CONTROL, SMOKE_TEST,
    SQLITE_RESTORE, WEBHOOK_NOTIFY,
};

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
        for plugin in [
            SERVICE_CONTROL,
            SQLITE_RESTORE,
            SMOKE_TEST,
            ENV_TOGGLE,
            JSON_CONFIG,
            FILE_RESTORE,
            RELEASE_SWITCH,
            WEBHOOK_NOTIFY,
            QDRANT_SNAPSHOT,
        ] {
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

/// Every file under `dir` but backout's safety copies.
fn without_safety_copies(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    snapshot(dir).into_iter().filter(|(p, _)| !p.to_string_lossy().contains(".backout-")).collect()
}

#[test]
fn configuration_rollback_restores_the_newest_valid_backups_restarts_and_checks() {
    let site = Site::new();
    site.sb.write("app/.env", "NODE_ENV=production\nINSIGHT_GENERATION_ENABLED=true\nAPI_TOKEN=tok-live-123\n");
    site.sb.write(
        "app/config/production-config.json",
        "{\"server\": {\"port\": 3000}, \"features\": {\"insights\": true}}\n",
    );
    let backups = site.sb.mkdir("backups");
    let good_env = "NODE_ENV=production\nINSIGHT_GENERATION_ENABLED=false\nAPI_TOKEN=tok-live-123\n";
    let good_json = "{\"server\": {\"port\": 3000}, \"features\": {}}\n";
    site.sb.write("backups/.env.production.2026-11-30", "NODE_ENV=staging\nINSIGHT_GENERATION_ENABLED=true\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    site.sb.write("backups/.env.production.2026-12-01", good_env);
    site.sb.write("backups/production-config.json.2026-12-01", good_json);
    let pid_before = site.service.health().unwrap()["pid"].clone();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--yes".into(),
        example("configuration-rollback.toml"),
        "--var".into(),
        format!("app_dir={}", site.app.display()),
        "--var".into(),
        format!("backup_dir={}", backups.display()),
    ];
    args.extend(site.service_vars());
    let out = site.run(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(std::fs::read_to_string(site.app.join(".env")).unwrap(), good_env);
    assert_eq!(std::fs::read_to_string(site.app.join("config/production-config.json")).unwrap(), good_json);
    let health = site.service.health().unwrap();
    assert_ne!(health["pid"], pid_before, "restarted");
    assert_eq!(health["flags"]["INSIGHT_GENERATION_ENABLED"], "false");
    assert!(!out.all().contains("tok-live-123"), "the token is masked in the plan's diff: {}", out.all());

    // A broken newest backup: refused before anything is replaced, nothing restarted.
    site.sb.write("app/.env", "NODE_ENV=production\nINSIGHT_GENERATION_ENABLED=true\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    site.sb.write("backups/production-config.json.2026-12-02", "{\"server\": {\"port\": 3000},\n");
    let before = without_safety_copies(&site.app);
    let pid_before = site.service.health().unwrap()["pid"].clone();
    let out = site.run(&args);
    assert_ne!(out.code, 0, "{}", out.all());
    assert_eq!(without_safety_copies(&site.app), before, "the restored .env was put back: {}", out.all());
    assert_eq!(site.service.health().unwrap()["pid"], pid_before, "not restarted");
}

/// The full rollback's site: release 2.0.1 live (link, database, flags),
/// release 2.0.0 and its database backup beside it, and a webhook.
struct Full {
    site: Site,
    data: PathBuf,
    backups: PathBuf,
    webhook: TestServer,
}

impl Full {
    fn new() -> Self {
        let site = Site::new();
        for release in ["2.0.0", "2.0.1"] {
            site.sb.write(&format!("app/releases/{release}/REVISION"), format!("{release}\n"));
        }
        std::os::unix::fs::symlink("releases/2.0.1", site.app.join("current")).unwrap();
        site.sb.write(
            "app/.env",
            "NODE_ENV=production\nINSIGHT_GENERATION_ENABLED=true\nSEMANTIC_CHUNKING_OPTIONAL=true\n",
        );
        let data = site.sb.mkdir("data");
        let backups = site.sb.mkdir("backups");
        database(&data.join("cortex.db"), 3, true);
        database(&backups.join("cortex-backup-2026-12-01.db"), 2, false);
        let webhook = TestServer::start(|_, _| Response::new(200, "text/plain", "ok"));
        Full { site, data, backups, webhook }
    }

    fn run(&self, release: &str) -> Output {
        let mut args: Vec<String> = vec!["run".into(), "--yes".into(), example("full-rollback.toml")];
        for (k, v) in [
            ("app_dir", self.site.app.display().to_string()),
            ("data_dir", self.data.display().to_string()),
            ("backup_dir", self.backups.display().to_string()),
            ("release", release.to_string()),
            ("webhook", self.webhook.url()),
        ] {
            args.extend(["--var".to_string(), format!("{k}={v}")]);
        }
        args.extend(self.site.service_vars());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let hook = format!("{}/services/T000/B000/secret-path", self.webhook.url());
        self.site.sb.run_with_env(&args, &[("SLACK_WEBHOOK", &hook)])
    }
}

#[test]
fn full_rollback_switches_release_database_and_flags_and_tells_the_team() {
    let full = Full::new();
    assert_eq!(full.site.service.health().unwrap()["release"], "2.0.1");
    let out = full.run("2.0.0");
    assert_eq!(out.code, 0, "{}", out.all());
    let health = full.site.service.health().unwrap();
    assert_eq!(health["release"], "2.0.0", "{health}");
    assert_eq!(health["flags"]["INSIGHT_GENERATION_ENABLED"], "false", "{health}");
    assert_eq!(tables(&full.data.join("cortex.db")), ["agents"]);
    let posts = full.webhook.requests();
    assert_eq!(posts.len(), 1, "one notification");
    assert!(posts[0].text().contains("Cortex full rollback: succeeded"), "{}", posts[0].text());
}

#[test]
fn a_failed_smoke_test_undoes_the_full_rollback_in_reverse_and_the_service_runs_its_release_again() {
    let full = Full::new();
    let app_before = without_safety_copies(&full.site.app);
    let data_before = snapshot(&full.data);
    // The smoke test expects a release the service will not report.
    let out = full.run("1.9.9");
    assert_eq!(out.code, 4, "undone: {}", out.all());
    let health = full.site.service.health().expect("the service runs again");
    assert_eq!(health["release"], "2.0.1", "back on its original release: {health}");
    assert_eq!(health["flags"]["INSIGHT_GENERATION_ENABLED"], "true");
    assert_eq!(without_safety_copies(&full.site.app), app_before, "link and .env put back");
    assert_eq!(std::fs::read_link(full.site.app.join("current")).unwrap(), Path::new("releases/2.0.1"));
    let data_after: std::collections::BTreeMap<_, _> =
        snapshot(&full.data).into_iter().filter(|(p, _)| !p.to_string_lossy().contains(".backout-")).collect();
    assert_eq!(data_after, data_before, "the 2.0.1 database is back, byte for byte");
    // Undone newest first: start, flags, database, release, stop.
    let undo_order: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("undone   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(undo_order, ["start", "flags", "database", "release", "stop"], "{}", out.all());
    let posts = full.webhook.requests();
    assert_eq!(posts.len(), 1, "the notification runs whatever happened: {}", out.all());
    assert!(posts[0].text().contains("Failed step: smoke"), "{}", posts[0].text());
}

#[test]
fn database_rollback_qdrant_recovers_the_collection_with_the_service_stopped() {
    let site = Site::new();
    let q = QdrantDouble::start();
    q.create_collection("cortex-memory", 100);
    let good = q.take_snapshot("cortex-memory");
    q.set_points("cortex-memory", 150);
    let pid_before = site.service.health().unwrap()["pid"].clone();
    let mut args: Vec<String> = vec!["run".into(), "--yes".into(), example("database-rollback-qdrant.toml")];
    for (k, v) in [
        ("qdrant", q.url()),
        ("collection", "cortex-memory".into()),
        ("snapshot", good.name.clone()),
        ("points", "100".into()),
    ] {
        args.extend(["--var".to_string(), format!("{k}={v}")]);
    }
    args.extend(site.service_vars());
    let out = site.run(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(q.points("cortex-memory"), Some(100), "the good snapshot is live");
    assert_eq!(q.snapshots("cortex-memory").len(), 2, "and an emergency snapshot of the 150 points was kept");
    assert_ne!(site.service.health().unwrap()["pid"], pid_before, "the service was stopped and started");

    // Undo recovers the emergency snapshot and leaves the service running.
    let out = site.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(q.points("cortex-memory"), Some(150));
    assert!(site.service.is_up());
}
