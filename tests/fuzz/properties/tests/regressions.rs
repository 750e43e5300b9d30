//! Replays every saved input through its target's property, on stable, in
//! the normal `cargo test`: each crash the fuzzers ever found
//! (`tests/fuzz/regressions/<target>/`), the committed seeds
//! (`tests/fuzz/seeds/<target>/`) and the repository files that also seed
//! the target (runbooks, golden files).

use std::path::{Path, PathBuf};

use backout_fuzz_properties::{TARGETS, Target};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Every input of `target`; the seeds must exist.
fn inputs(target: &Target) -> Vec<PathBuf> {
    let fuzz = repository().join("tests/fuzz");
    let seeds = files_in(&fuzz.join("seeds").join(target.name));
    assert!(!seeds.is_empty(), "no seeds for `{}` in tests/fuzz/seeds/{0}", target.name);
    let mut inputs = seeds;
    inputs.extend(files_in(&fuzz.join("regressions").join(target.name)));
    for dir in target.repository_seeds {
        let files = files_in(&repository().join(dir));
        assert!(!files.is_empty(), "`{dir}` seeds `{}` but holds no files", target.name);
        inputs.extend(files);
    }
    inputs
}

fn replay(name: &str) {
    let target = TARGETS.iter().find(|t| t.name == name).expect("a target of that name");
    let failed: Vec<PathBuf> = inputs(target)
        .into_iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| (target.check)(&data)).is_err()
        })
        .collect();
    assert!(failed.is_empty(), "`{name}` fails on {failed:#?}");
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        /// The targets replayed above.
        const REPLAYED: &[&str] = &[$(stringify!($name)),*];
    };
}

replay_tests!(runbook, template, lockfile, index, trust, bundle_tar, dotenv);

/// Every target has its test here, its libFuzzer target calling the same
/// property, and the same repository seeds in `run.sh`.
#[test]
fn every_target_is_replayed_and_fuzzed() {
    let targets: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(targets, REPLAYED);
    let run_sh = std::fs::read_to_string(repository().join("tests/fuzz/run.sh")).unwrap();
    for target in TARGETS {
        let file = repository().join("tests/fuzz/fuzz_targets").join(format!("{}.rs", target.name));
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let call = format!("backout_fuzz_properties::{}(data)", target.name);
        assert!(source.contains(&call), "{} does not call `{call}`", file.display());
        let seeds = format!("    {}) echo \"{}\" ;;", target.name, target.repository_seeds.join(" "));
        assert_eq!(
            run_sh.contains(&seeds),
            !target.repository_seeds.is_empty(),
            "tests/fuzz/run.sh should have `{seeds}` exactly when the target has repository seeds"
        );
    }
}
