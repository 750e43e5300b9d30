//! The run journal: one JSON line per state change, fsync'd as it is written.
//!
//! A journal outlives the process that wrote it: if backout is killed mid-run,
//! the journal still says which steps started, which finished, and each
//! finished step's outputs (where its safety copies are). Each line is
//! `{"version":1,"time":"…","event":"…","data":{…}}`.
//!
//! Journals live in `<state dir>/runs/`; the state directory is
//! `--state-dir` / `$BACKOUT_STATE_DIR`, else `$XDG_STATE_HOME/backout`, else
//! `~/.local/state/backout` ([`default_state_dir`]). Each journal is named
//! `<UTC time>-<runbook name>.jsonl`, created with `create_new` so two runs
//! never share one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The journal line format version.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("failed to create journal directory `{}`", .path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("failed to create journal `{}`", .path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("failed to write journal `{}`: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Creates a new journal for a run of `runbook` in `dir` (created if needed).
    pub fn create(dir: &Path, runbook: &str) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::CreateDir { path: dir.to_path_buf(), source })?;
        let safe_name: String = runbook
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(64)
            .collect();
        let stamp = utc_stamp(SystemTime::now());
        let mut attempt = 0;
        loop {
            let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
            let path = dir.join(format!("{stamp}-{safe_name}{suffix}.jsonl"));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => return Ok(Self { path, file }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
                Err(source) => return Err(JournalError::Create { path, source }),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event and fsyncs it; an error means the event is not durable.
    pub fn append(&mut self, event: &str, data: serde_json::Value) -> Result<(), JournalError> {
        let line = serde_json::json!({
            "version": FORMAT_VERSION,
            "time": backout_registry::utc_timestamp(SystemTime::now()),
            "event": event,
            "data": data,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .map_err(|source| JournalError::Write { path: self.path.clone(), source })
    }
}

/// The state directory when none is given: `$XDG_STATE_HOME/backout`, else
/// `~/.local/state/backout`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("backout");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/backout")
}

/// `2026-11-23T11-18-41Z`: sortable, and safe in file names (no `:`).
fn utc_stamp(t: SystemTime) -> String {
    backout_registry::utc_timestamp(t).replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "db rollback/1").unwrap();
        j.append("run-started", serde_json::json!({"steps": 1})).unwrap();
        j.append("run-finished", serde_json::json!({"succeeded": true})).unwrap();
        let name = j.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("-db_rollback_1.jsonl"), "{name}");
        let text = std::fs::read_to_string(j.path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "run-started");
        assert_eq!(lines[1]["data"]["succeeded"], true);
        assert_eq!(lines[0]["version"], 1);
        let time = lines[0]["time"].as_str().unwrap();
        assert!(time.len() == 20 && time.ends_with('Z') && time.as_bytes()[13] == b':', "RFC 3339 UTC: {time}");
    }

    #[test]
    fn two_journals_never_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::create(dir.path(), "r").unwrap();
        let b = Journal::create(dir.path(), "r").unwrap();
        assert_ne!(a.path(), b.path());
    }
}
