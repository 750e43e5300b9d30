//! The one door every run event goes through: journal first, then the
//! in-memory [`RunRecord`], then whoever watches (the CLI's live report).
//!
//! Events come in two kinds. *Announcements* (`step-started`,
//! `undo-started`, `checkpoint`, `temporary-file`) say something is about to
//! happen; if the journal cannot make one durable, [`Recorder::announce`]
//! fails and the thing must not happen — a step never starts unrecorded.
//! *Facts* (`step-ran`, `step-finished`, …) say something already happened;
//! [`Recorder::fact`] applies them even when the journal write fails, and
//! keeps the error for the report, because the run's own view must stay true.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::history::RunRecord;
use crate::journal::{Event, Journal};
use crate::runtime::host_api::CallRecorder;

/// Watches a run's events as they are recorded (the CLI prints each step's
/// result when it ends). Called with the record already updated; keep it quick.
pub type RunObserver = Arc<dyn Fn(&Event, &RunRecord) + Send + Sync>;

/// An observer that ignores everything.
pub fn unobserved() -> RunObserver {
    Arc::new(|_, _| {})
}

/// Journal + record + observer, shared by the executor and the host calls
/// (`checkpoint`) of the plugin it is running.
pub struct Recorder {
    inner: Mutex<Inner>,
}

struct Inner {
    journal: Option<Journal>,
    record: Option<RunRecord>,
    observer: RunObserver,
    /// Journal writes of facts that failed: the journal is incomplete.
    errors: Vec<String>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Recorder").field("journal", &inner.journal.as_ref().map(Journal::path)).finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder for a new run; its first event must be `run-started`.
    /// Without a journal, events are only kept in memory (tests, library use).
    pub fn new(journal: Option<Journal>, observer: RunObserver) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(Inner { journal, record: None, observer, errors: Vec::new() }) })
    }

    /// A recorder for a new run whose journal already holds its first
    /// record (`Journal::create`).
    pub fn started(journal: Journal, first: &crate::journal::Record, observer: RunObserver) -> Arc<Self> {
        let recorder = Self::new(Some(journal), observer);
        recorder.lock().apply(&first.event, &first.time);
        recorder
    }

    /// A recorder that continues an existing run (`resume`, `undo`).
    pub fn continuing(journal: Journal, record: RunRecord, observer: RunObserver) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { journal: Some(journal), record: Some(record), observer, errors: Vec::new() }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event announcing something about to happen. `Err`: it is
    /// not durable, nothing was applied, and it must not happen.
    pub fn announce(&self, event: Event) -> Result<(), String> {
        let mut inner = self.lock();
        let time = match inner.journal.as_mut() {
            Some(journal) => journal.append(&event).map_err(|e| format!("{e:#}"))?.time,
            None => now(),
        };
        inner.apply(&event, &time);
        Ok(())
    }

    /// Records something that already happened. A journal failure is kept
    /// (see [`Recorder::journal_errors`]) and the event applied anyway.
    pub fn fact(&self, event: Event) {
        let mut inner = self.lock();
        let time = match inner.journal.as_mut().map(|j| j.append(&event)) {
            Some(Ok(record)) => record.time,
            Some(Err(e)) => {
                inner.errors.push(format!("{e}"));
                now()
            }
            None => now(),
        };
        inner.apply(&event, &time);
    }

    /// A copy of the run's record as it stands.
    pub fn record(&self) -> RunRecord {
        self.lock().record.clone().expect("the first event of a run is run-started")
    }

    /// Reads the record without copying it.
    pub fn with_record<T>(&self, f: impl FnOnce(&RunRecord) -> T) -> T {
        f(self.lock().record.as_ref().expect("the first event of a run is run-started"))
    }

    /// Where the journal is, if there is one.
    pub fn journal_path(&self) -> Option<PathBuf> {
        self.lock().journal.as_ref().map(|j| j.path().to_path_buf())
    }

    /// Facts the journal could not record: the report must say the journal is incomplete.
    pub fn journal_errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// The `CallRecorder` a plugin call journals its checkpoints through.
    pub fn for_calls(self: &Arc<Self>) -> Arc<dyn CallRecorder> {
        Arc::new(Calls(self.clone()))
    }
}

impl Inner {
    fn apply(&mut self, event: &Event, time: &str) {
        match (&mut self.record, event) {
            (None, Event::RunStarted(started)) => self.record = Some(RunRecord::new(started, time)),
            (Some(record), event) => record.apply(event, time),
            (None, _) => return,
        }
        if let Some(record) = &self.record {
            (self.observer)(event, record);
        }
    }
}

fn now() -> String {
    backout_registry::utc_timestamp(SystemTime::now())
}

/// Checkpoints and temporary files from inside a plugin call: announcements.
struct Calls(Arc<Recorder>);

impl CallRecorder for Calls {
    fn checkpoint(&self, step: &str, outputs: serde_json::Value) -> Result<(), String> {
        self.0
            .announce(Event::Checkpoint { step: step.to_string(), outputs })
            .map_err(|e| format!("backout could not journal the checkpoint: {e}"))
    }

    fn temporary_file(&self, step: &str, guest: &str, host: &Path) -> Result<(), String> {
        self.0
            .announce(Event::TemporaryFile {
                step: step.to_string(),
                path: guest.to_string(),
                host_path: Some(host.to_path_buf()),
            })
            .map_err(|e| format!("backout could not journal the temporary file: {e}"))
    }
}
