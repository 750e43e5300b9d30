//! Which backup to restore: the one `source` names, or the latest in
//! `source_dir`.
//!
//! **Latest**, precisely: among the entries directly inside `source_dir`
//! (not in subdirectories) that are of the target's kind (regular files for
//! a file target, directories for a directory target; symbolic links are
//! never picked), whose names match `pattern` (every name without one), the
//! one with the newest modification time; when two share it to the
//! nanosecond the file system reports, the one whose name sorts last
//! (byte order), so `cortex-2026-12-02.toml` beats `cortex-2026-12-01.toml`.
//! Never picked: the target itself, names holding `.backout-` (safety
//! copies, temporary and staging names of backout steps), and hidden names
//! (starting with `.`) unless the pattern starts with `.` too, as in a shell.

#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use backout_sdk::{StepError, text};
use serde::{Deserialize, Serialize};

use crate::config::Source;

/// What the target is, and so what a backup must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Directory,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Directory => "directory",
        }
    }

    fn of(meta: &fs::Metadata) -> Option<Self> {
        if meta.is_file() {
            Some(Self::File)
        } else if meta.is_dir() {
            Some(Self::Directory)
        } else {
            None
        }
    }
}

/// The backup chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: String,
    pub modified: Option<SystemTime>,
    /// How it was chosen, for plan, logs and outputs.
    pub how: String,
}

/// Finds the backup `source` asks for, of the target's `kind`.
pub fn resolve(source: &Source, target: &str, kind: Kind) -> Result<Candidate, StepError> {
    match source {
        Source::Given(path) => given(path, kind),
        Source::Latest { dir, pattern } => latest(dir, pattern.as_deref(), target, kind),
    }
}

fn given(path: &str, kind: Kind) -> Result<Candidate, StepError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => StepError::precondition(format!(
            "the backup `{path}` does not exist, or is not inside a directory granted to this step ({e})"
        )),
        _ => StepError::precondition(format!("cannot read the backup `{path}`: {e}")),
    })?;
    match Kind::of(&meta) {
        Some(found) if found == kind => {}
        Some(found) => {
            return Err(StepError::precondition(format!(
                "the target is a {} but the backup `{path}` is a {}",
                kind.noun(),
                found.noun()
            )));
        }
        None => {
            return Err(StepError::precondition(format!(
                "the backup `{path}` is neither a regular file nor a directory"
            )));
        }
    }
    Ok(Candidate { path: path.to_owned(), modified: meta.modified().ok(), how: "given as `source`".to_owned() })
}

/// Whether an entry named `name` may be picked by `pattern`.
pub fn is_candidate_name(name: &str, pattern: Option<&str>) -> bool {
    if name.contains(".backout-") {
        return false;
    }
    if name.starts_with('.') && !pattern.is_some_and(|p| p.starts_with('.')) {
        return false;
    }
    pattern.is_none_or(|p| backout_sdk::glob::matches(p, name))
}

/// Index of the latest of `entries` (name, modification time): the newest
/// time, then the greatest name. An unknown time counts as the oldest.
pub fn latest_index(entries: &[(String, Option<SystemTime>)]) -> Option<usize> {
    (0..entries.len()).max_by(|&a, &b| {
        let (name_a, time_a) = &entries[a];
        let (name_b, time_b) = &entries[b];
        time_a.cmp(time_b).then_with(|| name_a.as_bytes().cmp(name_b.as_bytes()))
    })
}

fn latest(dir: &str, pattern: Option<&str>, target: &str, kind: Kind) -> Result<Candidate, StepError> {
    let listing = fs::read_dir(dir).map_err(|e| {
        StepError::precondition(format!(
            "cannot list `source_dir` `{dir}`: {e}; it must be a directory inside a directory granted to this step"
        ))
    })?;
    let mut entries = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| StepError::precondition(format!("cannot list `{dir}`: {e}")))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let path = Path::new(dir).join(&name).to_string_lossy().into_owned();
        if path == target || !is_candidate_name(&name, pattern) {
            continue;
        }
        // Not followed: a symbolic link is never picked.
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if Kind::of(&meta) == Some(kind) {
            entries.push((name, meta.modified().ok()));
        }
    }
    let matching = match pattern {
        Some(p) => format!("matching `{p}`"),
        None => "at all".to_owned(),
    };
    let Some(index) = latest_index(&entries) else {
        return Err(StepError::precondition(format!(
            "no backup {} {matching} in `{dir}` (hidden names, safety copies and symbolic links are never picked)",
            kind.noun()
        )));
    };
    let count = entries.len();
    let (name, modified) = entries.swap_remove(index);
    let how = match count {
        1 => format!("the only {} {matching} in `{dir}`", kind.noun()),
        _ => format!(
            "the newest of {} {matching} in `{dir}` (by modification time, then name)",
            text::count(count, kind.noun())
        ),
    };
    Ok(Candidate { path: Path::new(dir).join(name).to_string_lossy().into_owned(), modified, how })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn entries(list: &[(&str, Option<SystemTime>)]) -> Vec<(String, Option<SystemTime>)> {
        list.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()
    }

    #[test]
    fn latest_is_the_newest_then_the_greatest_name() {
        let list = entries(&[("cortex-1.toml", at(300)), ("cortex-3.toml", at(100)), ("cortex-2.toml", at(300))]);
        assert_eq!(latest_index(&list), Some(2), "a tie on time goes to the greatest name");
        let list = entries(&[("b", at(5)), ("a", at(6))]);
        assert_eq!(latest_index(&list), Some(1), "time first");
        let list = entries(&[("z", None), ("a", at(1))]);
        assert_eq!(latest_index(&list), Some(1), "an unknown time is the oldest");
        assert_eq!(latest_index(&[]), None);
    }

    #[test]
    fn names_that_are_never_picked() {
        assert!(is_candidate_name("cortex-2026.toml", Some("cortex-*.toml")));
        assert!(!is_candidate_name("cortex.toml", Some("cortex-*.toml")));
        assert!(!is_candidate_name("cortex-1.toml.backout-20261206T000000Z.bak", None));
        assert!(!is_candidate_name(".cortex-1.toml.backout-tmp-1f", Some(".*")));
        assert!(!is_candidate_name(".env.production", None), "hidden names need a pattern starting with `.`");
        assert!(!is_candidate_name(".env.production", Some("*.production")));
        assert!(is_candidate_name(".env.production", Some(".env.*")));
        assert!(is_candidate_name("anything", None));
    }

    #[test]
    fn picking_from_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        let set = |name: &str, secs: u64| {
            let path = dir.path().join(name);
            fs::write(&path, name).unwrap();
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap();
        };
        set("cortex-a.toml", 1_000);
        set("cortex-b.toml", 3_000);
        set("cortex-c.toml", 2_000);
        set("other.toml", 9_000);
        fs::create_dir(dir.path().join("cortex-d.toml")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("cortex-a.toml"), dir.path().join("cortex-z.toml")).unwrap();
        let target = format!("{root}/cortex.toml");
        let source = Source::Latest { dir: root.clone(), pattern: Some("cortex-*.toml".into()) };
        let picked = resolve(&source, &target, Kind::File).unwrap();
        assert_eq!(picked.path, format!("{root}/cortex-b.toml"));
        assert_eq!(
            picked.how,
            format!("the newest of 3 files matching `cortex-*.toml` in `{root}` (by modification time, then name)")
        );
        let dirs = resolve(&source, &target, Kind::Directory).unwrap();
        assert_eq!(dirs.path, format!("{root}/cortex-d.toml"));
        assert_eq!(dirs.how, format!("the only directory matching `cortex-*.toml` in `{root}`"));
        let none = resolve(&Source::Latest { dir: root.clone(), pattern: Some("x-*".into()) }, &target, Kind::File);
        assert!(none.unwrap_err().message().starts_with("no backup file matching `x-*` in"));
        // The target is never its own backup.
        let only_target = resolve(
            &Source::Latest { dir: root.clone(), pattern: Some("other.toml".into()) },
            &format!("{root}/other.toml"),
            Kind::File,
        );
        assert!(only_target.is_err());
    }

    #[test]
    fn a_given_backup_must_exist_and_be_of_the_targets_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(resolve(&Source::Given(file.into()), "/t", Kind::File).unwrap().how, "given as `source`");
        let error = resolve(&Source::Given(file.into()), "/t", Kind::Directory).unwrap_err();
        assert!(error.message().contains("the target is a directory but the backup"), "{error}");
        let missing = resolve(&Source::Given(format!("{file}-gone")), "/t", Kind::File).unwrap_err();
        assert!(missing.message().contains("does not exist"), "{missing}");
    }
}
