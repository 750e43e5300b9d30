//! `RUNBOOK.lock`: exactly which plugin bytes a runbook may run.
//!
//! `backout lock rollback.toml` resolves every step's `uses` (for example
//! `env-toggle@^0.1`) against the registry on the connected side and writes
//! `rollback.toml.lock` beside the runbook, recording per step the resolved
//! name, version and digest. Commit the lock with the runbook. When a lock
//! exists, `validate`, `plan` and `run` use exactly the locked versions and
//! digests, and refuse any drift with an explanation ([`Drift`]); `backout lock
//! --update` refreshes it.
//!
//! ```toml
//! version = 1
//!
//! [[step]]
//! id = "disable-insights"
//! uses = "env-toggle@^0.1"
//! name = "env-toggle"
//! version = "0.1.0"
//! digest = "sha256:…"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use backout_registry::Digest;
use serde::{Deserialize, Serialize};

/// The only lockfile format this version reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A parsed lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default, rename = "step")]
    pub steps: Vec<LockedStep>,
}

/// What one step was locked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedStep {
    pub id: String,
    /// `uses` as the runbook said it when the lock was made.
    pub uses: String,
    /// The registry name, for registry plugins; absent for plugin files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The exact version resolved, for registry plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub digest: Digest,
}

/// Why a runbook and its lock disagree. Each variant says which step and
/// what differs, because "the lock is stale" alone helps nobody at 3 a.m.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The runbook has a step the lock does not know.
    StepNotLocked { step: String },
    /// The lock has a step the runbook no longer has.
    StepRemoved { step: String },
    /// The step's `uses` changed since the lock was made.
    UsesChanged { step: String, locked: String, found: String },
    /// The plugin's bytes differ from the locked digest.
    DigestChanged { step: String, plugin: String, locked: Digest, found: Digest },
    /// The locked version is no longer in the registry.
    VersionMissing { step: String, name: String, version: String },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::StepNotLocked { step } => write!(f, "step `{step}` is not in the lock"),
            Drift::StepRemoved { step } => write!(f, "the lock has step `{step}`, which the runbook no longer has"),
            Drift::UsesChanged { step, locked, found } => {
                write!(f, "step `{step}` now uses `{found}`, but the lock was made for `{locked}`")
            }
            Drift::DigestChanged { step, plugin, locked, found } => {
                write!(f, "step `{step}`: `{plugin}` is now `{found}`, but the lock says `{locked}`")
            }
            Drift::VersionMissing { step, name, version } => {
                write!(f, "step `{step}`: locked `{name}@{version}` is not in the registry")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("failed to read lockfile `{}`", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to parse lockfile `{}`: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("unsupported lockfile version `{found}` in `{}`; this backout reads version {FORMAT_VERSION}", .path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("failed to write lockfile `{}`", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The lock beside a runbook: `rollback.toml` → `rollback.toml.lock`.
pub fn path_for(runbook: &Path) -> PathBuf {
    let mut name = runbook.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    runbook.with_file_name(name)
}

impl Lockfile {
    /// Reads the lock beside `runbook`, if there is one.
    pub fn load_for(runbook: &Path) -> Result<Option<Self>, LockError> {
        let path = path_for(runbook);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Read { path, source }),
        };
        Self::parse(&text, &path).map(Some)
    }

    /// Parses the text of a lockfile, as [`Lockfile::load_for`] does once it
    /// has read it; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LockError> {
        let lock: Lockfile =
            toml::from_str(text).map_err(|e| LockError::Parse { path: path.to_owned(), message: e.to_string() })?;
        if lock.version != FORMAT_VERSION {
            return Err(LockError::Version { path: path.to_owned(), found: lock.version });
        }
        Ok(lock)
    }

    /// The text [`Lockfile::save_for`] writes; `path` is only used in errors.
    pub fn render(&self, path: &Path) -> Result<String, LockError> {
        let mut text = String::from(
            "# Written by `backout lock`: the exact plugins this runbook may run.\n\
             # Commit it beside the runbook; refresh it with `backout lock --update`.\n",
        );
        text.push_str(
            &toml::to_string(self).map_err(|e| LockError::Parse { path: path.to_owned(), message: e.to_string() })?,
        );
        Ok(text)
    }

    /// Writes the lock beside `runbook` atomically (temp file, fsync, rename,
    /// directory fsync), with the registry's own atomic writer.
    pub fn save_for(&self, runbook: &Path) -> Result<PathBuf, LockError> {
        let path = path_for(runbook);
        let text = self.render(&path)?;
        backout_registry::write_atomic(&path, text.as_bytes())
            .map_err(|e| LockError::Write { path: path.clone(), source: std::io::Error::other(e) })?;
        Ok(path)
    }

    pub fn step(&self, id: &str) -> Option<&LockedStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Steps in the lock that the runbook no longer has.
    pub fn removed_steps<'a>(&'a self, runbook_ids: &'a [String]) -> impl Iterator<Item = Drift> + 'a {
        self.steps
            .iter()
            .filter(move |s| !runbook_ids.contains(&s.id))
            .map(|s| Drift::StepRemoved { step: s.id.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        Lockfile {
            version: 1,
            steps: vec![LockedStep {
                id: "a".into(),
                uses: "env-toggle@^0.1".into(),
                name: Some("env-toggle".into()),
                version: Some("0.1.0".into()),
                digest: Digest::of(b"x"),
            }],
        }
    }

    #[test]
    fn lock_lives_beside_the_runbook() {
        assert_eq!(path_for(Path::new("/r/rollback.toml")), PathBuf::from("/r/rollback.toml.lock"));
        assert_eq!(path_for(Path::new("rollback.toml")), PathBuf::from("rollback.toml.lock"));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = dir.path().join("r.toml");
        assert_eq!(Lockfile::load_for(&runbook).unwrap(), None);
        let path = sample().save_for(&runbook).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("# Written by `backout lock`"));
        assert_eq!(Lockfile::load_for(&runbook).unwrap(), Some(sample()));
    }

    #[test]
    fn other_versions_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = dir.path().join("r.toml");
        std::fs::write(path_for(&runbook), "version = 2\n").unwrap();
        assert!(matches!(Lockfile::load_for(&runbook), Err(LockError::Version { found: 2, .. })));
        std::fs::write(path_for(&runbook), "version = 1\nextra = 1\n").unwrap();
        assert!(Lockfile::load_for(&runbook).unwrap_err().to_string().contains("extra"));
    }

    #[test]
    fn drift_explains_itself() {
        let d = Drift::DigestChanged {
            step: "a".into(),
            plugin: "env-toggle@0.1.0".into(),
            locked: Digest::of(b"x"),
            found: Digest::of(b"y"),
        };
        let text = d.to_string();
        assert!(text.starts_with("step `a`: `env-toggle@0.1.0` is now `sha256:"), "{text}");
        assert!(text.contains("but the lock says `sha256:"), "{text}");
    }
}
