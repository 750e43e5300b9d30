//! The compile cache through the real CLI, each test with its own cache
//! directory: `registry add` precompiles, a later command loads the entry
//! (`--verbose` says so, and the entry's file is left as it was), a corrupt
//! entry is compiled again and the run still succeeds, an unsafe directory is
//! not used, `cache gc` and `cache clear` remove what they say, modes are
//! 0700 and 0600. No timing is asserted anywhere.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use backout_tests::cli::{Output, Sandbox, file_mode, sha256_bytes, sha256_file};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;

/// A sandbox with its own (not yet created) compile cache and an app
/// directory with a `.env` for env-toggle.
struct Site {
    sb: Sandbox,
    cache: PathBuf,
    runbook: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        let cache = sb.path().join("cache");
        let app = sb.mkdir("app");
        sb.write("app/.env", "FEATURE=true\n");
        let runbook = sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"cached\"\n\n[[step]]\nid = \"flag\"\nuses = \"env-toggle@0.1.0\"\n\
                 with = {{ file = \"/app/.env\", set = {{ FEATURE = \"false\" }} }}\n\n[step.grants]\n\
                 dirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n",
                app.display()
            ),
        );
        Self { sb, cache, runbook }
    }

    /// `backout ARGS` with this site's cache.
    fn run(&self, args: &[&str]) -> Output {
        self.sb.run_with_env(args, &[("BACKOUT_CACHE_DIR", &self.cache)])
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(out.code, 0, "backout {args:?}:\n{}", out.all());
        out
    }

    fn runbook(&self) -> &str {
        self.runbook.to_str().unwrap()
    }

    /// The one engine directory (`<cache>/<64 hex>`).
    fn engine_dir(&self) -> PathBuf {
        let dirs = engine_dirs(&self.cache);
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs.into_iter().next().unwrap()
    }

    /// The artifact of the component in `wasm`.
    fn artifact(&self, wasm: &str) -> PathBuf {
        self.engine_dir().join(format!("{}.cwasm", sha256_file(wasm)))
    }
}

fn engine_dirs(cache: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().len() == 64)
        .collect();
    dirs.sort();
    dirs
}

fn record_of(artifact: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sha256", artifact.display()))
}

/// Inode and modification time: unchanged means the file was not written again.
fn identity(path: &Path) -> (u64, i64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

#[test]
fn registry_add_precompiles_and_a_later_plan_loads_the_entry() {
    let site = Site::new();
    let digest = format!("sha256:{}", sha256_file(ENV_TOGGLE));
    let out = site.ok(&["-v", "registry", "add", ENV_TOGGLE]);
    let artifact = site.artifact(ENV_TOGGLE);
    assert!(
        out.stderr.contains(&format!(
            "compile cache: miss for {digest}: compiled it and stored it in `{}`",
            artifact.display()
        )),
        "{}",
        out.all()
    );
    assert_eq!(file_mode(&site.cache), 0o700);
    assert_eq!(file_mode(site.engine_dir()), 0o700);
    assert_eq!(file_mode(&artifact), 0o600);
    assert_eq!(file_mode(record_of(&artifact)), 0o600);
    let record = std::fs::read_to_string(record_of(&artifact)).unwrap();
    assert_eq!(record, format!("{}  {}.cwasm\n", sha256_file(&artifact), sha256_file(ENV_TOGGLE)));
    let written = identity(&artifact);

    let out = site.ok(&["-v", "plan", site.runbook()]);
    assert!(
        out.stderr.contains(&format!("compile cache: hit for {digest}: loaded `{}`", artifact.display())),
        "{}",
        out.all()
    );
    assert!(!out.stderr.contains("miss"), "{}", out.all());
    assert!(out.stdout.contains("FEATURE"), "the plan is the plan:\n{}", out.all());
    assert_eq!(identity(&artifact), written, "a hit does not write the entry again");

    // Without --verbose a hit is silent.
    let out = site.ok(&["plan", site.runbook()]);
    assert!(!out.stderr.contains("compile cache"), "{}", out.all());
    // inspect loads through the cache too.
    let out = site.ok(&["-v", "inspect", "env-toggle@0.1.0"]);
    assert!(out.stderr.contains(&format!("compile cache: hit for {digest}")), "{}", out.all());
}

#[test]
fn a_corrupted_entry_is_compiled_again_and_the_run_still_succeeds() {
    let site = Site::new();
    site.ok(&["registry", "add", ENV_TOGGLE]);
    let artifact = site.artifact(ENV_TOGGLE);
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&artifact, &bytes).unwrap();

    let out = site.ok(&["run", "--yes", site.runbook()]);
    let digest = format!("sha256:{}", sha256_file(ENV_TOGGLE));
    assert!(
        out.stderr.contains(&format!(
            "warning: compile cache: ignored the entry for {digest} (the artifact's sha256 is `{}`, but",
            sha256_bytes(&bytes)
        )),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("compiled it from its bytes instead and stored it in"), "{}", out.all());
    assert_eq!(std::fs::read_to_string(site.sb.path().join("app/.env")).unwrap(), "FEATURE=false\n");

    // The entry was written again, whole: the record matches, the next load is a hit.
    let record = std::fs::read_to_string(record_of(&artifact)).unwrap();
    assert_eq!(record[..64], sha256_file(&artifact));
    let out = site.ok(&["-v", "plan", site.runbook()]);
    assert!(out.stderr.contains(&format!("compile cache: hit for {digest}")), "{}", out.all());
}

#[test]
fn a_cache_directory_others_can_write_is_neither_read_nor_written() {
    let site = Site::new();
    site.ok(&["registry", "add", ENV_TOGGLE]);
    let artifact = site.artifact(ENV_TOGGLE);
    let written = identity(&artifact);
    std::fs::set_permissions(&site.cache, std::fs::Permissions::from_mode(0o770)).unwrap();

    let out = site.ok(&["-v", "plan", site.runbook()]);
    assert!(out.stderr.contains("is writable by group or others (mode 0770)"), "{}", out.all());
    assert!(out.stderr.contains("could not store it: the cache directory is not safe to write to"), "{}", out.all());
    assert!(!out.stderr.contains("compile cache: hit"), "{}", out.all());
    assert_eq!(identity(&artifact), written);

    std::fs::set_permissions(&site.cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = site.ok(&["-v", "plan", site.runbook()]);
    assert!(out.stderr.contains("compile cache: hit"), "{}", out.all());
}

#[test]
fn no_cache_compiles_and_writes_nothing() {
    let site = Site::new();
    let out = site.ok(&["--no-cache", "-v", "registry", "add", ENV_TOGGLE]);
    site.ok(&["--no-cache", "plan", site.runbook()]);
    assert!(!out.stderr.contains("compile cache"), "{}", out.all());
    assert!(!site.cache.exists());
}

#[test]
fn cache_gc_removes_entries_the_registry_does_not_use_and_other_engines() {
    let site = Site::new();
    site.ok(&["registry", "add", ENV_TOGGLE]);
    site.ok(&["registry", "add", HOSTILE]);
    site.ok(&["registry", "remove", "hostile@0.1.0"]);
    let kept = site.artifact(ENV_TOGGLE);
    let hostile = site.artifact(HOSTILE);
    // What an older backout (another wasmtime) left behind.
    let old_engine = site.cache.join("0".repeat(64));
    std::fs::create_dir(&old_engine).unwrap();
    std::fs::write(old_engine.join(format!("{}.cwasm", sha256_file(ENV_TOGGLE))), b"old code").unwrap();

    let out = site.ok(&["--output", "json", "cache", "gc"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut removed: Vec<(String, String)> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["component"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string()))
        .collect();
    removed.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        removed,
        [
            (format!("sha256:{}", sha256_file(HOSTILE)), "not-in-registry".to_string()),
            (format!("sha256:{}", sha256_file(ENV_TOGGLE)), "other-engine".to_string()),
        ],
        "{}",
        out.all()
    );
    assert!(kept.exists() && record_of(&kept).exists(), "what the registry uses stays");
    assert!(!hostile.exists() && !record_of(&hostile).exists() && !old_engine.exists());

    let out = site.ok(&["cache", "gc"]);
    assert_eq!(out.stdout, format!("0 entries removed (0 bytes) from `{}`\n", site.cache.display()));
}

#[test]
fn cache_clear_removes_every_entry_and_the_next_command_compiles_again() {
    let site = Site::new();
    site.ok(&["registry", "add", ENV_TOGGLE]);
    site.ok(&["registry", "add", HOSTILE]);
    let out = site.ok(&["cache", "clear"]);
    for wasm in [ENV_TOGGLE, HOSTILE] {
        assert!(out.stdout.contains(&format!("removed sha256:{} (engine ", sha256_file(wasm))), "{}", out.all());
    }
    assert!(out.stdout.contains("2 entries removed ("), "{}", out.all());
    assert!(engine_dirs(&site.cache).is_empty(), "nothing is left");
    assert!(site.cache.is_dir(), "the directory itself stays");

    let out = site.ok(&["-v", "plan", site.runbook()]);
    assert!(out.stderr.contains("compile cache: miss for"), "{}", out.all());
    assert!(site.artifact(ENV_TOGGLE).exists());
}
