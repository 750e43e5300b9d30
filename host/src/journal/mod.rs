//! The run journal: the durable record of a run, one typed event per line.
//!
//! Every run gets an id (`20261204T211228Z-feature-rollback-3f2a`: UTC start,
//! runbook name, four random hex digits; ids sort by start time) and its own
//! directory `<state dir>/runs/<id>/`, created 0700, holding `journal.jsonl`
//! (0600). Each [`Event`] is appended as one JSON line and fsync'd before
//! [`Journal::append`] returns; the directory is fsync'd when the file is
//! created. So a journal outlives the process that wrote it: killed at any
//! point, it still says which steps started, which finished, each one's
//! outputs (where its safety copies are) and the last checkpoint of the one
//! in flight. `backout resume` and `backout undo` append to the same journal.
//!
//! [`read`] reads a journal back. A crash can tear the last line (the process
//! died mid-write); that line is dropped. Any other malformed line is an
//! error: a journal that cannot be trusted must not drive an undo.
//!
//! The state directory is `--state-dir` / `$BACKOUT_STATE_DIR`, else
//! `$XDG_STATE_HOME/backout`, else `~/.local/state/backout`
//! ([`default_state_dir`]).

pub mod event;
mod read;

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub use event::{Event, FORMAT, Record};
pub use read::{Contents, ReadError, read};

/// The journal's file name inside a run's directory.
pub const FILE_NAME: &str = "journal.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("failed to create the run directory `{}`", .path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("failed to create journal `{}`", .path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("failed to open journal `{}`", .path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("failed to write journal `{}`: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("failed to encode a journal record: {0}")]
    Encode(String),
}

/// A journal open for appending.
#[derive(Debug)]
pub struct Journal {
    run_id: String,
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Creates the directory and journal of a new run of `runbook` under
    /// `runs_dir` (created 0700 if needed), its first record `first(run_id)`
    /// already in it: the journal appears under its name, by a rename, only
    /// once that record is durable, so a journal never exists without its
    /// `run-started`. The run id is new and unique.
    pub fn create(
        runs_dir: &Path,
        runbook: &str,
        first: impl FnOnce(&str) -> Event,
    ) -> Result<(Self, Record), JournalError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(runs_dir)
            .map_err(|source| JournalError::CreateDir { path: runs_dir.to_path_buf(), source })?;
        let mut attempt = 0;
        let (run_id, dir) = loop {
            let run_id = new_run_id(runbook, SystemTime::now());
            let dir = runs_dir.join(&run_id);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break (run_id, dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(source) => return Err(JournalError::CreateDir { path: dir, source }),
            }
        };
        let path = dir.join(FILE_NAME);
        let staging = dir.join(format!(".{FILE_NAME}.new"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&staging)
            .map_err(|source| JournalError::Create { path: staging.clone(), source })?;
        let mut journal = Self { run_id, path: staging.clone(), file };
        let record = journal.write(&first(&journal.run_id))?;
        std::fs::rename(&staging, &path).map_err(|source| JournalError::Create { path: path.clone(), source })?;
        journal.path = path;
        // The new names must survive a crash too, not only the lines.
        for d in [dir.as_path(), runs_dir] {
            File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|source| JournalError::Create { path: d.into(), source })?;
        }
        crash_point();
        Ok((journal, record))
    }

    /// Opens the journal of an existing run for appending (`resume`,
    /// `undo`). A torn last line is cut off first, so the next record starts
    /// on a line of its own.
    pub fn open(run_dir: &Path) -> Result<Self, JournalError> {
        let path = run_dir.join(FILE_NAME);
        let open_error = |source| JournalError::Open { path: path.clone(), source };
        let run_id = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&path).map_err(open_error)?;
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(open_error)?;
        let complete = read::complete_length(&bytes);
        if complete < bytes.len() as u64 {
            file.set_len(complete).and_then(|()| file.sync_all()).map_err(open_error)?;
        }
        drop(file);
        let file = OpenOptions::new().append(true).open(&path).map_err(open_error)?;
        Ok(Self { run_id, path, file })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event and fsyncs it; an error means the event is not
    /// durable, and whatever it announces must not happen.
    pub fn append(&mut self, event: &Event) -> Result<Record, JournalError> {
        let record = self.write(event)?;
        crash_point();
        Ok(record)
    }

    fn write(&mut self, event: &Event) -> Result<Record, JournalError> {
        let record =
            Record { format: FORMAT, time: backout_registry::utc_timestamp(SystemTime::now()), event: event.clone() };
        let mut bytes = serde_json::to_vec(&record).map_err(|e| JournalError::Encode(e.to_string()))?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .map_err(|source| JournalError::Write { path: self.path.clone(), source })?;
        Ok(record)
    }
}

/// Fault injection for backout's own crash tests, in debug builds only:
/// with `BACKOUT_TEST_CRASH_AFTER_RECORD=N`, the process aborts right after
/// the N-th record it made durable (SIGABRT; nothing else runs). Release
/// builds ignore the variable.
fn crash_point() {
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    if !cfg!(debug_assertions) {
        return;
    }
    let written = WRITTEN.fetch_add(1, Ordering::SeqCst) + 1;
    let target = std::env::var("BACKOUT_TEST_CRASH_AFTER_RECORD").ok().and_then(|v| v.parse::<u64>().ok());
    if target == Some(written) {
        let _ = std::io::stderr().write_all(b"backout: BACKOUT_TEST_CRASH_AFTER_RECORD reached; aborting\n");
        std::process::abort();
    }
}

/// `20261204T211228.123Z-feature-rollback-3f2a`: sortable by start time to
/// the millisecond (`last` is the greatest id, so two runs in one second
/// must still sort in order), safe in file names, and unique with
/// overwhelming odds (the directory is created exclusively, so a collision
/// is retried, never shared).
fn new_run_id(runbook: &str, now: SystemTime) -> String {
    let name: String = runbook
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .take(48)
        .collect();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let stamp = backout_registry::utc_timestamp(now).replace(['-', ':'], "");
    let millis = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_millis()).unwrap_or(0);
    let stamp = stamp.replace('Z', &format!(".{millis:03}Z"));
    format!("{stamp}-{name}-{:04x}", hasher.finish() & 0xffff)
}

/// The run directory that journals live in: `<state dir>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::event::RunState;
    use super::*;

    fn finished() -> Event {
        Event::RunFinished { state: RunState::Succeeded, failed_step: None, elapsed_ms: 5 }
    }

    fn started(run_id: &str) -> Event {
        Event::RunStarted(event::RunStarted {
            run_id: run_id.into(),
            runbook: event::RunbookRef { name: "r".into(), path: "/r.toml".into(), sha256: "sha256:00".into() },
            vars: Default::default(),
            overrides: vec![],
            on_failure: crate::policy::OnFailure::Undo,
            steps: vec![],
            session: event::Session::current("run"),
            rto_ms: None,
        })
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_runbook() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_796_418_748_042);
        let id = new_run_id("Feature rollback/1", t);
        assert!(id.starts_with("20261204T211228.042Z-feature-rollback-1-"), "{id}");
        assert_eq!(id.len(), "20261204T211228.042Z-feature-rollback-1-".len() + 4);
        let later = new_run_id("a", t + std::time::Duration::from_millis(1));
        assert!(later > id, "a later run sorts after, whatever its runbook's name");
    }

    #[test]
    fn each_run_gets_a_private_directory_and_journal() {
        let state = tempfile::tempdir().unwrap();
        let runs = runs_dir(state.path());
        let (a, _) = Journal::create(&runs, "r", started).unwrap();
        let (b, _) = Journal::create(&runs, "r", started).unwrap();
        assert_ne!(a.path(), b.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&runs), 0o700);
        assert_eq!(mode(a.path().parent().unwrap()), 0o700);
        assert_eq!(mode(a.path()), 0o600);
        assert_eq!(a.path().parent().unwrap().file_name().unwrap().to_str().unwrap(), a.run_id());
        assert_eq!(std::fs::read_dir(a.path().parent().unwrap()).unwrap().count(), 1, "no staging file is left");
        let first = read(a.path()).unwrap().records.remove(0);
        assert!(matches!(first.event, Event::RunStarted(ref s) if s.run_id == a.run_id()), "{first:?}");
    }

    #[test]
    fn appended_events_read_back_typed() {
        let state = tempfile::tempdir().unwrap();
        let (mut j, first) = Journal::create(&runs_dir(state.path()), "r", started).unwrap();
        let written = j.append(&finished()).unwrap();
        let contents = read(j.path()).unwrap();
        assert_eq!(contents.records, vec![first, written]);
        let line = std::fs::read_to_string(j.path()).unwrap();
        assert!(line.starts_with(r#"{"format":2,"time":""#), "{line}");
        assert!(line.contains(r#""event":"run-finished","state":"succeeded""#), "{line}");
    }

    #[test]
    fn reopening_cuts_a_torn_last_line_before_appending() {
        let state = tempfile::tempdir().unwrap();
        let (j, _) = Journal::create(&runs_dir(state.path()), "r", started).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"format":2,"time":"2026-"#).unwrap();
        drop(file);
        let mut j = Journal::open(path.parent().unwrap()).unwrap();
        j.append(&finished()).unwrap();
        let contents = read(&path).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert_eq!(contents.torn_bytes, 0);
    }
}
