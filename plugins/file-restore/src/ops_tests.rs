//! The whole flow of [`crate::ops`] on real temporary files, natively: pick,
//! check, safety copy, replace or swap, read-back, verify, undo, and every
//! state a crash can leave behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use backout_sdk::{StepError, Validate, checkpoint};
use serde_json::{Value, json};

use crate::config::{Config, Valid};
use crate::ops;
use crate::outputs::Outputs;
use crate::pick::Kind;

const LIVE: &str =
    "[server]\nport = 8081\n[database]\nurl = \"postgres://app:live-pw@db/app\"\npassword = \"live-secret\"\n";
const BACKUP: &str =
    "[server]\nport = 8080\n[database]\nurl = \"postgres://app:old-pw@db/app\"\npassword = \"old-secret\"\n";

/// A site: `app/` (the live side) and `backups/`, in a temp directory.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        checkpoint::clear();
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_owned()
    }

    fn write(&self, rel: &str, contents: &str, mode: u32) -> String {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn valid(&self, with: Value) -> Valid {
        let mut with = with;
        for key in ["target", "source", "source_dir"] {
            if let Some(rel) = with[key].as_str() {
                with[key] = json!(self.path(rel));
            }
        }
        serde_json::from_value::<Config>(with).unwrap().validate().unwrap()
    }

    /// Every file under the site (path → bytes) and every directory.
    fn snapshot(&self) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        let mut all = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path.clone());
                    all.push((path, None));
                } else {
                    let bytes = fs::read(&path).unwrap();
                    all.push((path, Some(bytes)));
                }
            }
        }
        all.sort();
        all
    }

    fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path().join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

fn mode(path: &str) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap()
}

fn quiet() -> impl FnMut(String) {
    |_| {}
}

fn precondition(result: Result<impl std::fmt::Debug, StepError>) -> String {
    match result {
        Err(StepError::Precondition(m)) => m,
        other => panic!("expected a precondition error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// a file
// ---------------------------------------------------------------------------

#[test]
fn a_file_is_restored_with_its_mode_a_safety_copy_and_a_checkpoint_taken_before_the_replace() {
    let site = Site::new();
    let target = site.write("app/cortex.toml", LIVE, 0o640);
    let source = site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml", "require_keys": ["server.port"]}));
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
    let at_checkpoint = seen.clone();
    let live_path = target.clone();
    checkpoint::set_hook(move |_| {
        *at_checkpoint.borrow_mut() = Some(read(&live_path));
        Ok(())
    });
    let mut lines = Vec::new();
    let outcome = ops::run(&valid, &mut |l| lines.push(l)).unwrap();
    assert_eq!(seen.borrow().as_deref(), Some(LIVE), "the checkpoint comes before the live file changes");
    assert_eq!(read(&target), BACKUP);
    assert_eq!(mode(&target), 0o640, "the live file's mode, not the backup's");
    let o = &outcome.outputs;
    let copy = o.safety_copy.clone().unwrap();
    assert_eq!(read(&copy), LIVE);
    assert_eq!(mode(&copy), 0o640);
    assert!(copy.starts_with(&format!("{target}.backout-")) && copy.ends_with(".bak"), "{copy}");
    assert_eq!((o.kind, o.source.as_str(), o.picked.as_str()), (Kind::File, source.as_str(), "given as `source`"));
    assert_eq!(o.checked, "valid TOML, with `server.port`");
    assert_eq!(o.sha256_after, backout_sdk::fs::sha256_hex(BACKUP.as_bytes()));
    assert_eq!(checkpoint::recorded().len(), 1);
    assert_eq!(site.names("app"), ["cortex.toml".to_owned(), copy.rsplit('/').next().unwrap().to_owned()]);
    assert!(lines.iter().any(|l| l.starts_with("restored ")), "{lines:?}");
    assert!(!lines.join("\n").contains("secret"), "{lines:?}");

    ops::verify(&valid, o).unwrap();
    let undone = ops::undo(&valid, o.clone(), &mut quiet()).unwrap();
    assert_eq!(read(&target), LIVE);
    assert_eq!(mode(&target), 0o640);
    assert_eq!(undone.outputs.restored_from.as_deref(), Some(copy.as_str()));
    assert!(Path::new(&copy).exists(), "the safety copy stays as evidence");
    let again = ops::undo(&valid, o.clone(), &mut quiet()).unwrap();
    assert!(again.summary.starts_with("nothing to undo"), "{}", again.summary);
    let verify = precondition(ops::verify(&valid, o));
    assert!(verify.contains("still holds its content from before the run"), "{verify}");
}

#[test]
fn a_file_that_already_holds_the_backup_is_not_written() {
    let site = Site::new();
    site.write("app/.env", "A=1\n", 0o600);
    site.write("backups/.env.production", "A=1\n", 0o644);
    let valid = site.valid(json!({"target": "app/.env", "source": "backups/.env.production", "validate": "dotenv"}));
    let before = site.snapshot();
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    assert!(outcome.summary.starts_with("no change needed"), "{}", outcome.summary);
    assert_eq!(outcome.outputs.safety_copy, None);
    assert_eq!(site.snapshot(), before);
    assert!(checkpoint::recorded().is_empty());
    ops::verify(&valid, &outcome.outputs).unwrap();
    assert!(ops::undo(&valid, outcome.outputs, &mut quiet()).unwrap().summary.starts_with("nothing to undo"));
    let plan = ops::plan(&valid).unwrap();
    assert_eq!(plan[0].summary, format!("leave {} as it is", site.path("app/.env")));
}

#[test]
fn backups_that_do_not_parse_or_lack_keys_are_refused_and_nothing_changes() {
    let cases = [
        ("toml", "[server\nport = 1\n", "is not valid TOML"),
        ("json", "{\"a\": 1,}", "is not valid JSON"),
        ("yaml", "a: 1\n b: 2\n", "is not valid YAML"),
        ("dotenv", "A=1\nthis is not a line\n", "is not a readable dotenv file"),
        ("toml", "", "is empty"),
    ];
    for (format, backup, says) in cases {
        let site = Site::new();
        site.write("app/config", "x = 1\n", 0o600);
        site.write("backups/config", backup, 0o644);
        let valid = site.valid(json!({"target": "app/config", "source": "backups/config", "validate": format}));
        let before = site.snapshot();
        for error in [precondition(ops::plan(&valid)), precondition(ops::run(&valid, &mut quiet()))] {
            assert!(error.contains(says) && error.ends_with("nothing was changed"), "{format}: {error}");
        }
        assert_eq!(site.snapshot(), before, "{format}");
        assert!(checkpoint::recorded().is_empty());
    }
    let site = Site::new();
    site.write("app/cortex.toml", LIVE, 0o600);
    site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml", "require_keys": ["server.port", "server.host", "database.url"]}));
    let before = site.snapshot();
    let error = precondition(ops::run(&valid, &mut quiet()));
    assert!(error.contains("lacks the required key `server.host`"), "{error}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn undo_refuses_when_the_file_changed_after_the_run_and_changes_nothing() {
    let site = Site::new();
    let target = site.write("app/cortex.toml", LIVE, 0o600);
    site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    fs::write(&target, "edited = true\n").unwrap();
    let before = site.snapshot();
    let error = precondition(ops::undo(&valid, outcome.outputs.clone(), &mut quiet()));
    assert!(error.contains("changed since the run") && error.contains("nothing was restored"), "{error}");
    assert!(error.contains(outcome.outputs.safety_copy.as_deref().unwrap()), "names the safety copy: {error}");
    assert_eq!(site.snapshot(), before);
    assert!(precondition(ops::verify(&valid, &outcome.outputs)).contains("does not hold what the run put there"));
}

#[test]
fn a_failed_checkpoint_changes_nothing_and_removes_the_safety_copy() {
    let site = Site::new();
    site.write("app/cortex.toml", LIVE, 0o600);
    site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    let before = site.snapshot();
    checkpoint::set_hook(|_| Err("journal is full".into()));
    let error = ops::run(&valid, &mut quiet()).unwrap_err();
    assert!(error.message().contains("journal is full; nothing was changed"), "{error}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn killed_after_the_checkpoint_verify_fails_and_undo_has_nothing_to_do() {
    let site = Site::new();
    let target = site.write("app/cortex.toml", LIVE, 0o600);
    site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    checkpoint::set_hook(|_| Ok(()));
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    // The state a kill right after the checkpoint leaves: the live file
    // unchanged, a safety copy, and the checkpoint as the outputs.
    fs::write(&target, LIVE).unwrap();
    let recorded: Outputs = serde_json::from_value(checkpoint::recorded()[0].clone()).unwrap();
    assert_eq!(recorded, outcome.outputs);
    assert!(precondition(ops::verify(&valid, &recorded)).contains("never put in place"));
    let undone = ops::undo(&valid, recorded, &mut quiet()).unwrap();
    assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
    assert_eq!(read(&target), LIVE);
}

#[test]
fn unchecked_backups_are_streamed_and_plan_says_when_no_diff_can_be_shown() {
    let site = Site::new();
    let target = site.write("app/blob.bin", "old", 0o600);
    let backup: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    fs::create_dir_all(site.path("backups")).unwrap();
    fs::write(site.path("backups/blob.bin"), &backup).unwrap();
    let valid = site.valid(json!({"target": "app/blob.bin", "source": "backups/blob.bin", "validate": "none"}));
    let plan = ops::plan(&valid).unwrap();
    assert_eq!(plan[1].summary, format!("replace {target}: 3 bytes → 1.1 MiB"));
    assert!(plan[1].detail.as_deref().unwrap().starts_with("no diff shown"), "{plan:?}");
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    assert_eq!(fs::read(&target).unwrap(), backup);
    assert_eq!(outcome.outputs.checked, "not checked (`validate = \"none\"`)");
    ops::undo(&valid, outcome.outputs, &mut quiet()).unwrap();
    assert_eq!(read(&target), "old");
}

#[test]
fn plan_shows_a_masked_diff_and_changes_nothing() {
    let site = Site::new();
    let target = site.write("app/cortex.toml", LIVE, 0o600);
    let source = site.write("backups/cortex.toml", BACKUP, 0o644);
    let valid = site.valid(json!({"target": "app/cortex.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    let before = site.snapshot();
    let plan = ops::plan(&valid).unwrap();
    assert_eq!(site.snapshot(), before);
    assert_eq!(plan[0].summary, format!("restore {target} from {source}"));
    assert_eq!(plan[1].summary, format!("change {target}: 3 lines removed, 3 added"));
    let diff = plan[1].detail.clone().unwrap();
    assert!(diff.contains("-port = 8081\n+port = 8080"), "{diff}");
    assert!(diff.contains("-password = ***\n") && diff.contains("+password = ***"), "{diff}");
    assert!(diff.contains("postgres://app:***@db/app"), "{diff}");
    for secret in ["live-secret", "old-secret", "live-pw", "old-pw"] {
        assert!(!diff.contains(secret) && !plan[0].detail.as_deref().unwrap().contains(secret), "{diff}");
    }
}

#[test]
fn latest_picks_the_newest_backup_and_run_records_which() {
    use std::time::{Duration, SystemTime};
    let site = Site::new();
    site.write("app/cortex.toml", LIVE, 0o600);
    for (name, age) in
        [("cortex-2026-12-01.toml", 300), ("cortex-2026-12-03.toml", 100), ("cortex-2026-12-02.toml", 200)]
    {
        let path = site.write(&format!("app/rollback-config/{name}"), &BACKUP.replace("8080", &name[7..17]), 0o644);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(age))
            .unwrap();
    }
    let valid = site.valid(json!({"target": "app/cortex.toml", "source_dir": "app/rollback-config", "pattern": "cortex-*.toml", "validate": "toml"}));
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    assert_eq!(outcome.outputs.source, site.path("app/rollback-config/cortex-2026-12-03.toml"));
    assert!(
        outcome.outputs.picked.starts_with("the newest of 3 files matching `cortex-*.toml`"),
        "{}",
        outcome.outputs.picked
    );
    assert!(outcome.outputs.source_modified.as_deref().unwrap().ends_with('Z'));
    assert!(read(&site.path("app/cortex.toml")).contains("port = 2026-12-03"));
}

#[test]
fn targets_that_cannot_be_replaced_are_refused() {
    let site = Site::new();
    site.write("app/real.toml", LIVE, 0o600);
    site.write("backups/cortex.toml", BACKUP, 0o644);
    std::os::unix::fs::symlink(site.path("app/real.toml"), site.path("app/link.toml")).unwrap();
    let link = site.valid(json!({"target": "app/link.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    assert!(precondition(ops::plan(&link)).contains("is a symbolic link"));
    let missing =
        site.valid(json!({"target": "app/missing.toml", "source": "backups/cortex.toml", "validate": "toml"}));
    assert!(precondition(ops::run(&missing, &mut quiet())).contains("does not exist"));
    fs::create_dir_all(site.path("app/conf")).unwrap();
    let kinds = site.valid(json!({"target": "app/conf", "source": "backups/cortex.toml", "validate": "toml"}));
    assert!(precondition(ops::plan(&kinds)).contains("the target is a directory but the backup"));
}

// ---------------------------------------------------------------------------
// a directory
// ---------------------------------------------------------------------------

/// A live `app/conf/` and a backup `backups/conf/` that differ in every way.
fn directory_site() -> Site {
    let site = Site::new();
    site.write("app/conf/app.toml", "port = 8081\n", 0o640);
    site.write("app/conf/secret.toml", "token = \"live\"\n", 0o600);
    site.write("app/conf/only-live.toml", "x = 1\n", 0o644);
    site.write("backups/conf/app.toml", "port = 8080\n", 0o644);
    site.write("backups/conf/secret.toml", "token = \"old\"\n", 0o644);
    site.write("backups/conf/d/new.toml", "n = 1\n", 0o640);
    site
}

#[test]
fn a_directory_is_staged_swapped_in_and_undone_exactly() {
    let site = directory_site();
    let target = site.path("app/conf");
    let valid = site.valid(json!({"target": "app/conf", "source": "backups/conf", "validate": "toml"}));
    let live_before: Vec<_> = site
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&target))
        .map(|(p, b)| (p.strip_prefix(&target).unwrap().to_path_buf(), b))
        .collect();

    let plan = ops::plan(&valid).unwrap();
    assert_eq!(plan[1].summary, format!("change {target}: 2 added, 1 removed, 2 changed, 0 unchanged"));
    let detail = plan[1].detail.clone().unwrap();
    assert!(
        detail
            .contains("change  app.toml\nadd     d/\nadd     d/new.toml\nchange  secret.toml\nremove  only-live.toml"),
        "{detail}"
    );
    assert!(detail.contains("-port = 8081\n+port = 8080") && detail.contains("-token = ***\n+token = ***"), "{detail}");
    assert!(!detail.contains("live\"") && !detail.contains("old\""), "{detail}");

    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    let o = &outcome.outputs;
    assert_eq!((o.kind, o.files, o.size), (Kind::Directory, Some(3), 32));
    let copy = o.safety_copy.clone().unwrap();
    assert_eq!(read(&format!("{target}/app.toml")), "port = 8080\n");
    assert_eq!(read(&format!("{target}/d/new.toml")), "n = 1\n");
    assert!(!Path::new(&format!("{target}/only-live.toml")).exists());
    assert_eq!(mode(&format!("{target}/secret.toml")), 0o600, "the live file's mode");
    assert_eq!(mode(&format!("{target}/app.toml")), 0o640);
    assert_eq!(mode(&format!("{target}/d/new.toml")), 0o640, "a new file: the backup's mode");
    assert_eq!(read(&format!("{copy}/only-live.toml")), "x = 1\n", "the previous directory is the safety copy");
    assert!(!Path::new(o.staging.as_deref().unwrap()).exists());
    assert_eq!(site.names("app"), ["conf".to_owned(), copy.rsplit('/').next().unwrap().to_owned()]);
    assert_eq!(checkpoint::recorded().len(), 1);
    ops::verify(&valid, o).unwrap();

    ops::undo(&valid, o.clone(), &mut quiet()).unwrap();
    let live_after: Vec<_> = site
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&target))
        .map(|(p, b)| (p.strip_prefix(&target).unwrap().to_path_buf(), b))
        .collect();
    assert_eq!(live_after, live_before, "every byte and name is back");
    assert_eq!(mode(&format!("{target}/secret.toml")), 0o600);
    assert_eq!(site.names("app"), ["conf"], "the safety copy was renamed back; nothing else is left");
    assert!(ops::undo(&valid, o.clone(), &mut quiet()).unwrap().summary.starts_with("nothing to undo"));
}

#[test]
fn a_directory_backup_with_an_invalid_file_or_a_link_is_refused_and_nothing_changes() {
    let site = directory_site();
    site.write("backups/conf/d/broken.toml", "[oops\n", 0o644);
    let valid = site.valid(json!({"target": "app/conf", "source": "backups/conf", "validate": "toml"}));
    let before = site.snapshot();
    let error = precondition(ops::run(&valid, &mut quiet()));
    assert!(error.contains("broken.toml` is not valid TOML") && error.ends_with("nothing was changed"), "{error}");
    assert_eq!(site.snapshot(), before);
    fs::remove_file(site.path("backups/conf/d/broken.toml")).unwrap();
    let before = site.snapshot();
    std::os::unix::fs::symlink("/etc/passwd", site.path("backups/conf/passwd")).unwrap();
    let error = precondition(ops::plan(&valid));
    assert!(error.contains("is a symbolic link"), "{error}");
    fs::remove_file(site.path("backups/conf/passwd")).unwrap();
    assert_eq!(site.snapshot(), before);
    assert!(checkpoint::recorded().is_empty());
    let keys =
        site.valid(json!({"target": "app/conf", "source": "backups/conf", "validate": "toml", "require_keys": ["a"]}));
    assert!(matches!(ops::plan(&keys), Err(StepError::InvalidConfig(m)) if m.contains("applies to a file target")));
    assert!(matches!(ops::plan(&keys), Err(StepError::InvalidConfig(m)) if m.starts_with("`#/require_keys`: ")));
}

#[test]
fn undo_of_a_directory_refuses_after_a_change_since_the_run() {
    let site = directory_site();
    let target = site.path("app/conf");
    let valid = site.valid(json!({"target": "app/conf", "source": "backups/conf", "validate": "toml"}));
    let outcome = ops::run(&valid, &mut quiet()).unwrap();
    fs::write(format!("{target}/app.toml"), "port = 9\n").unwrap();
    let before = site.snapshot();
    let error = precondition(ops::undo(&valid, outcome.outputs, &mut quiet()));
    assert!(error.contains("changed since the run") && error.contains("nothing was restored"), "{error}");
    assert_eq!(site.snapshot(), before);
}

/// Every state a kill can leave, rebuilt by hand from a finished run, and
/// what `undo` (and `verify`) make of it.
#[test]
fn undo_of_a_directory_recovers_from_every_interrupted_state() {
    let rename = |from: &str, to: &str| fs::rename(from, to).unwrap();
    for state in ["before-staging", "staged", "between-run-renames", "moved-aside-by-undo", "aside-left-after-undo"] {
        let site = directory_site();
        let target = site.path("app/conf");
        let valid = site.valid(json!({"target": "app/conf", "source": "backups/conf", "validate": "toml"}));
        let live_before = crate::tree::Tree::read(&target, false).unwrap().digest();
        let o = ops::run(&valid, &mut quiet()).unwrap().outputs;
        let (copy, staging) = (o.safety_copy.clone().unwrap(), o.staging.clone().unwrap());
        let aside = format!("{}/.{}.replaced", site.path("app"), copy.rsplit('/').next().unwrap());
        match state {
            // Killed after the checkpoint, before (or while) staging.
            "before-staging" | "staged" => {
                rename(&target, &staging);
                rename(&copy, &target);
                if state == "before-staging" {
                    crate::tree::remove_tree(&staging).unwrap();
                }
            }
            // Killed after the live directory became the safety copy.
            "between-run-renames" => rename(&target, &staging),
            // Killed inside undo, after moving the restored directory aside.
            "moved-aside-by-undo" => rename(&target, &aside),
            // Killed inside undo, after putting the safety copy back.
            "aside-left-after-undo" => {
                rename(&target, &aside);
                rename(&copy, &target);
            }
            _ => unreachable!(),
        }
        assert!(ops::verify(&valid, &o).is_err(), "{state}: verify must fail");
        let undone = ops::undo(&valid, o.clone(), &mut quiet()).unwrap_or_else(|e| panic!("{state}: {e}"));
        assert_eq!(
            crate::tree::Tree::read(&target, false).unwrap().digest(),
            live_before,
            "{state}: {}",
            undone.summary
        );
        assert_eq!(site.names("app"), ["conf"], "{state}: nothing left over");
        assert!(ops::undo(&valid, o, &mut quiet()).unwrap().summary.starts_with("nothing to undo"), "{state}");
    }
}
