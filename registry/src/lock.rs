//! The registry's write lock: one writer at a time, across processes.
//!
//! Every change is a read-modify-write of `index.toml` (and blobs beside it).
//! Two `backout registry add`s racing would each read the same index and the
//! second rename would drop the first one's entry. So every mutating
//! operation takes an exclusive lock on `<root>/.lock` for its whole
//! read-modify-write and re-reads the index under it. Readers never lock:
//! the index is replaced by rename, so they see the old or the new one.
//!
//! The lock is an advisory `flock`-style lock (std's [`File::lock`]): it is
//! released when the file is closed, including when the process dies, so a
//! crash never leaves the registry locked. `.lock` itself is empty and may
//! stay forever.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::FileError;

/// The lock file, relative to the registry root.
pub(crate) const LOCK_FILE: &str = ".lock";

/// Holds the registry's exclusive lock until dropped.
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Blocks until this process holds the exclusive lock of the registry
    /// at `root` (whose directory must exist).
    pub(crate) fn acquire(root: &Path) -> Result<WriteLock, FileError> {
        let path: PathBuf = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| FileError::Lock { path: path.clone(), source })?;
        file.lock().map_err(|source| FileError::Lock { path, source })?;
        Ok(WriteLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_second_writer_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriteLock::acquire(dir.path()).unwrap();
        let (sender, receiver) = mpsc::channel();
        let root = dir.path().to_owned();
        let waiter = thread::spawn(move || {
            let _second = WriteLock::acquire(&root).unwrap();
            sender.send(()).unwrap();
        });
        assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err(), "the second lock must wait");
        drop(first);
        receiver.recv_timeout(Duration::from_secs(10)).expect("the second lock is granted after the first is dropped");
        waiter.join().unwrap();
    }

    #[test]
    fn locking_a_missing_directory_names_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("absent");
        let err = WriteLock::acquire(&root).unwrap_err();
        assert!(matches!(&err, FileError::Lock { path, .. } if *path == root.join(".lock")), "{err:?}");
    }
}
