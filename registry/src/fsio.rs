//! Crash-safe file writes.
//!
//! Every file is written to a temporary sibling, flushed to disk, renamed over
//! its final name and the directory flushed, so a reader (or a machine that
//! lost power) sees either the old file or the new one, never a torn one.
//! Temporary names start with `.` and contain `.tmp.`; they are never a blob
//! name or `index.toml`, so a crash leaves at most an ignorable stray file.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically and durably: a temp file beside it,
/// fsync, rename, fsync the directory; the temp file is removed on error.
/// Public because the host writes its own files (lockfiles) the same way.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = parent_dir(path);
    let (temp_path, mut file) = create_temp(dir, path.file_name().unwrap_or(OsStr::new("file")))?;
    let temp = RemoveOnDrop(Some(temp_path));
    let temp_path = temp.path();

    file.write_all(bytes).map_err(|source| FileError::Write { path: temp_path.to_owned(), source })?;
    file.sync_all().map_err(|source| FileError::Sync { path: temp_path.to_owned(), source })?;
    drop(file);

    fs::rename(temp_path, path).map_err(|source| FileError::Rename {
        from: temp_path.to_owned(),
        to: path.to_owned(),
        source,
    })?;
    temp.keep();
    sync_dir(dir)
}

/// Whether `name` is one of our temporary files (`.<name>.tmp.<pid>.<n>`).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp.")
}

/// A temporary sibling of `target`, written in steps and then renamed over
/// it; removed if dropped before [`TempFile::rename`].
#[derive(Debug)]
pub(crate) struct TempFile {
    file: File,
    temp: RemoveOnDrop,
    target: PathBuf,
}

impl TempFile {
    pub(crate) fn create(target: &Path) -> Result<TempFile, FileError> {
        let (path, file) = create_temp(parent_dir(target), target.file_name().unwrap_or(OsStr::new("file")))?;
        Ok(TempFile { file, temp: RemoveOnDrop(Some(path)), target: target.to_owned() })
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.path()
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Writes all of `bytes`.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.file.write_all(bytes).map_err(|source| FileError::Write { path: self.temp.path().to_owned(), source })
    }

    /// Flushes the contents to disk.
    pub(crate) fn sync(&mut self) -> Result<(), FileError> {
        self.file.sync_all().map_err(|source| FileError::Sync { path: self.temp.path().to_owned(), source })
    }

    /// Renames the (synced) file over its target. The directory is not
    /// flushed: call [`sync_dir`] once after the last rename.
    pub(crate) fn rename(self) -> Result<(), FileError> {
        let TempFile { file, temp, target } = self;
        drop(file);
        rename_temp(temp, &target)
    }

    /// Flushes the contents to disk and closes the handle, keeping the file
    /// for a later [`ClosedTempFile::rename`]: many complete temporaries can
    /// wait for their rename without holding a file descriptor each.
    pub(crate) fn close(mut self) -> Result<ClosedTempFile, FileError> {
        self.sync()?;
        let TempFile { file, temp, target } = self;
        drop(file);
        Ok(ClosedTempFile { temp, target })
    }
}

/// A complete, flushed temporary whose handle is closed
/// ([`TempFile::close`]); removed if dropped before [`ClosedTempFile::rename`].
#[derive(Debug)]
pub(crate) struct ClosedTempFile {
    temp: RemoveOnDrop,
    target: PathBuf,
}

impl ClosedTempFile {
    /// Renames the file over its target, like [`TempFile::rename`].
    pub(crate) fn rename(self) -> Result<(), FileError> {
        rename_temp(self.temp, &self.target)
    }
}

fn rename_temp(temp: RemoveOnDrop, target: &Path) -> Result<(), FileError> {
    fs::rename(temp.path(), target).map_err(|source| FileError::Rename {
        from: temp.path().to_owned(),
        to: target.to_owned(),
        source,
    })?;
    temp.keep();
    Ok(())
}

/// Creates `dir` and any missing parents, and makes the new directory entries
/// durable.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), FileError> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|source| FileError::CreateDir { path: dir.to_owned(), source })?;
    // Outermost first: each new directory is recorded in its parent.
    for created in missing.iter().rev() {
        sync_dir(parent_dir(created))?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates a new, empty temporary file in `dir` for `name`.
fn create_temp(dir: &Path, name: &OsStr) -> Result<(PathBuf, File), FileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{}.tmp.{}.{n}", name.to_string_lossy(), process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            // A stray from a crashed process that had our pid: try the next.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
            Err(source) => return Err(FileError::Write { path, source }),
        }
    }
}

/// Flushes a directory's entries (renames, new files) to disk.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| FileError::Sync { path: dir.to_owned(), source })
}

/// Elsewhere (Windows) std cannot open a directory as a `File`. The rename
/// is still atomic; only its durability across a power loss is weaker.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<(), FileError> {
    Ok(())
}

/// Removes a temporary file unless it was renamed into place.
#[derive(Debug)]
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("path is set until keep")
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: the write already failed and that error is what
            // the caller needs to see.
            let _ = fs::remove_file(path);
        }
    }
}

/// A file that could not be read, written, renamed, synced or locked: the
/// path and the operating system's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("failed to read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to create directory `{}`", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to rename `{}` to `{}`", .from.display(), .to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to sync `{}` to disk", .path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to lock `{}`", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A small file (a signature) larger than it may be: not read past
    /// `limit`, and not parsed.
    #[error("failed to parse `{}`: larger than {limit} bytes", .path.display())]
    TooLarge { path: PathBuf, limit: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["index.toml"]);
    }

    #[test]
    fn create_dir_durable_creates_missing_parents() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        create_dir_durable(&nested).unwrap();
        assert!(nested.is_dir());
        create_dir_durable(&nested).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_failed_write_reports_the_path_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        write_atomic(&path, b"old").unwrap();
        // Renaming a file over a directory fails after the temporary exists.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("inner")).unwrap();
        let err = write_atomic(&blocked, b"new").unwrap_err();
        assert!(matches!(&err, FileError::Rename { to, .. } if *to == blocked), "{err:?}");
        assert!(err.to_string().starts_with("failed to rename `"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["blocked", "index.toml"], "the temporary was removed");
    }
}
