//! Safe-file helpers: the data-safety rules every step that writes must keep.
//!
//! 1. Take a safety copy before overwriting anything ([`safety_copy`]) and put
//!    its path in the outputs. A safety copy is written under a temporary
//!    name and only then given its `.bak` name, so a `.bak` file is always
//!    complete.
//! 2. Write to a temporary file in the same directory, fsync it, rename it over
//!    the target, fsync the directory ([`replace_atomically`]). A reader sees
//!    the old file or the new one, never a mix, and a crash leaves one of them.
//! 3. Declare every temporary file to the host before creating it
//!    ([`temporary_file`]; both helpers above do): if backout is killed
//!    mid-call, the host knows the file is debris and removes it.
//! 4. Call [`checkpoint`](crate::checkpoint()) once the safety copy is taken
//!    and before the first change a crash could leave behind (the rename over
//!    the live file), so `verify` and `undo` can finish the job after a crash.
//! 5. Keep the file's permissions and owner: WASI cannot chmod or chown, so
//!    a new file would get the host's default mode (a 0600 secrets file
//!    would become 0644). [`copy_permissions`] asks the host, and both
//!    [`safety_copy`] and [`replace_atomically`] use it on the temporary
//!    file while it is still empty, before its first byte is written: a
//!    copy of a 0600 file is never readable by others, not even while it is
//!    being written. A brand-new file (an atomic replace of a path where no
//!    file is) has nothing to take permissions from and keeps the host's
//!    default mode (0666 less backout's umask) from creation on, which is
//!    the mode it ends with anyway: nothing of an existing file is in it.
//! 6. Any write or fsync error is an error, never a warning: every function
//!    here returns it.
//!
//! Paths are guest paths (`/app/.env`): they resolve inside the directories
//! the host granted to the step, and nowhere else.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex sha256 of a regular file's contents.
///
/// In a plugin, for an absolute guest path, the host hashes the file
/// (`backout:step/files.sha256-file`: native sha256 with the CPU's SHA
/// instructions, many times faster than hashing in WebAssembly), within the
/// same grants as the plugin's own reads. Elsewhere it is read here in
/// bounded chunks. Same digest either way.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    #[cfg(target_family = "wasm")]
    if path.is_absolute() {
        // Looked at here first, so a missing file is `NotFound` as with std.
        regular_file(path)?;
        return crate::bindings::backout::step::files::sha256_file(&path.to_string_lossy()).map_err(io::Error::other);
    }
    sha256_file_here(path)
}

/// [`sha256_file`] without the host: read and hashed in this process.
pub fn sha256_file_here(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `Ok` when `path` is a regular file; the error a reader would get otherwise.
#[cfg(target_family = "wasm")]
fn regular_file(path: &Path) -> io::Result<u64> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` is not a regular file", path.display())));
    }
    Ok(meta.len())
}

/// Copies the regular file `source` to `target` (created, or truncated and
/// rewritten) and fsyncs `target`; returns the bytes copied. `target`'s
/// permissions are left as they are (see [`copy_permissions`]).
///
/// In a plugin, for absolute guest paths, the host copies
/// (`backout:step/files.copy-file`): in the kernel, reflinked where the file
/// system can, with progress shown to the operator, within the same grants
/// as the plugin's own writes, and only in `run` and `undo`. Elsewhere it
/// streams through this process. Same bytes either way.
pub fn copy_file(source: &Path, target: &Path) -> io::Result<u64> {
    #[cfg(target_family = "wasm")]
    if source.is_absolute() && target.is_absolute() {
        regular_file(source)?;
        return crate::bindings::backout::step::files::copy_file(&source.to_string_lossy(), &target.to_string_lossy())
            .map_err(io::Error::other);
    }
    let mut input = File::open(source)?;
    let mut output = OpenOptions::new().write(true).create(true).truncate(true).open(target)?;
    let copied = io::copy(&mut input, &mut output)?;
    output.sync_all()?;
    Ok(copied)
}

/// fsyncs a directory, so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Gives `target` the permission bits (rwx only), owner and group of
/// `source`, through the host (`backout:step/host.copy-permissions`). Both
/// are absolute guest paths in the step's grants; `target` must be in a
/// read-write grant. Refused during `plan` and `verify`.
#[cfg(target_family = "wasm")]
pub fn copy_permissions(source: &Path, target: &Path) -> io::Result<()> {
    crate::bindings::backout::step::host::copy_permissions(&source.to_string_lossy(), &target.to_string_lossy())
        .map_err(io::Error::other)
}

/// Native stand-in for unit tests of plugin logic: the same effect with std.
#[cfg(not(target_family = "wasm"))]
pub fn copy_permissions(source: &Path, target: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let from = fs::metadata(source)?;
    let to = fs::metadata(target)?;
    if (to.uid(), to.gid()) != (from.uid(), from.gid()) {
        std::os::unix::fs::chown(target, Some(from.uid()), Some(from.gid()))?;
    }
    fs::set_permissions(target, fs::Permissions::from_mode(from.mode() & 0o777))
}

/// Declares to the host that the step is about to create a temporary file at
/// `path` (an absolute guest path inside a read-write grant) and will remove
/// or rename it away before the call returns
/// (`backout:step/host.temporary-file`). Call it before the file exists: if
/// the call never returns (backout is killed, the call times out or traps),
/// the host removes the file, and `backout undo` does after a crash. Only
/// `run` and `undo` may call it.
///
/// [`safety_copy`] and [`replace_atomically`] declare their own temporaries;
/// call this for any other file a step writes under a name that is not final.
#[cfg(target_family = "wasm")]
pub fn temporary_file(path: &Path) -> io::Result<()> {
    crate::bindings::backout::step::host::temporary_file(&path.to_string_lossy())
        // The host's refusal names the path already.
        .map_err(|e| io::Error::other(format!("the host did not accept a temporary file: {e}")))
}

/// Native stand-in for unit tests of plugin logic: records `path` in a
/// per-thread list that [`temporary_file::declared`] returns.
#[cfg(not(target_family = "wasm"))]
pub fn temporary_file(path: &Path) -> io::Result<()> {
    temporary_file::DECLARED.with(|d| d.borrow_mut().push(path.to_path_buf()));
    Ok(())
}

/// What [`temporary_file()`] declared on this thread, for plugins' native unit
/// tests (every test runs on its own thread). Native only.
#[cfg(not(target_family = "wasm"))]
pub mod temporary_file {
    use std::cell::RefCell;
    use std::path::PathBuf;

    thread_local! {
        pub(super) static DECLARED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    /// Every path declared on this thread, oldest first.
    pub fn declared() -> Vec<PathBuf> {
        DECLARED.with(|d| d.borrow().clone())
    }

    /// Forgets this thread's declarations.
    pub fn clear() {
        DECLARED.with(|d| d.borrow_mut().clear());
    }
}

/// Gives the complete file `from` the new name `to`, never replacing a file
/// already there: `to` existing is an [`io::ErrorKind::AlreadyExists`] error.
/// Both must be in the same directory (or at least the same grant and file
/// system). Does not fsync the directory: the caller does, once.
///
/// A hard link to `to` followed by the removal of `from`, so an existing `to`
/// is refused by the file system itself. Where hard links are unsupported
/// (some file systems answer `Unsupported` or `PermissionDenied`) it checks
/// that `to` is free and renames, which a file created in between could
/// still lose to. On error nothing changed: `from` is still there and `to`
/// is not this call's.
pub fn rename_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).inspect_err(|_| {
            let _ = fs::remove_file(to);
        }),
        Err(e) if matches!(e.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
            match fs::symlink_metadata(to) {
                Ok(_) => {
                    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("`{}` already exists", to.display())))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(from, to),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates a new, hidden, declared temporary file in `dir` for the file
/// named `name`: `.{name}.backout-tmp-{nanoseconds}`. The name is checked to
/// be free before it is declared, so the host never takes someone else's
/// file for debris.
///
/// With `permissions_from`, the empty file gets that file's permissions and
/// owner ([`copy_permissions`]) before it is returned, so not one byte is
/// ever written to it under the default mode; if that fails, the file is
/// removed and the error returned.
fn create_temp(dir: &Path, name: &str, permissions_from: Option<&Path>) -> io::Result<(PathBuf, File)> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    for attempt in 0u32..100 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let temp = dir.join(format!(".{name}.backout-tmp-{nanos:x}{suffix}"));
        if fs::symlink_metadata(&temp).is_ok() {
            continue;
        }
        temporary_file(&temp)?;
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => {
                if let Some(source) = permissions_from
                    && let Err(e) = copy_permissions(source, &temp)
                {
                    drop(file);
                    let _ = fs::remove_file(&temp);
                    return Err(e);
                }
                return Ok((temp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free temporary name for `{name}` in `{}`", dir.display()),
    ))
}

/// The directory a path lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name_of(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` names no file", path.display())))
}

/// Copies `path` to a new file in `dir` (default: beside `path`) named
/// `<name>.backout-<UTC time>.bak`, with `path`'s permissions and owner,
/// fsyncs the copy and the directory, and returns the copy's path. Never
/// overwrites: an existing name gets a suffix.
///
/// The copy has `path`'s permissions and owner from before its first byte:
/// they are given to the empty temporary file, so a copy of a 0600 file is
/// never readable by others while it is written.
///
/// The bytes go to a declared temporary file first (see [`temporary_file()`]),
/// which takes the `.bak` name only once it is complete and fsync'd
/// ([`rename_no_clobber`]): a crash leaves a whole safety copy or debris the
/// host removes, never a partial copy that looks like a safety copy. The copy
/// streams in bounded memory, so it works for files of any size.
pub fn safety_copy(path: &Path, dir: Option<&Path>) -> io::Result<PathBuf> {
    safety_copy_with(path, dir, |_| Ok(()), |source, temp| copy_file(source, temp).map(|_| ()))
}

/// [`safety_copy`] with the byte copy as a parameter: the test seam that
/// lets a unit test look at the temporary file at the moment the first byte
/// is written. `before_copy` gets the empty temporary file, which already
/// has the source's permissions; `copy_bytes` then fills it from the source
/// by path ([`copy_file`]).
fn safety_copy_with(
    path: &Path,
    dir: Option<&Path>,
    before_copy: impl FnOnce(&mut File) -> io::Result<()>,
    copy_bytes: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| parent_of(path));
    let name = file_name_of(path)?;
    let stamp = utc_stamp(SystemTime::now());
    // Fails early, before any temporary file, when `path` cannot be read.
    drop(File::open(path)?);
    let (temp, mut copy) = create_temp(dir, &name, Some(path))?;
    let written = before_copy(&mut copy).and_then(|_| copy_bytes(path, &temp)).and_then(|_| copy.sync_all());
    drop(copy);
    let kept = written.and_then(|_| give_bak_name(&temp, dir, &name, &stamp));
    let kept = match kept {
        Ok(kept) => kept,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
    };
    if let Err(e) = sync_dir(dir) {
        let _ = fs::remove_file(&kept);
        return Err(e);
    }
    Ok(kept)
}

/// Moves the complete copy `temp` to the first free name
/// `<name>.backout-<stamp>[-N].bak` in `dir`.
fn give_bak_name(temp: &Path, dir: &Path, name: &str, stamp: &str) -> io::Result<PathBuf> {
    for attempt in 0u32..1000 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let candidate = dir.join(format!("{name}.backout-{stamp}{suffix}.bak"));
        match rename_no_clobber(temp, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free safety-copy name for `{}` in `{}`", name, dir.display()),
    ))
}

/// Replaces `path` with `contents` atomically: a temp file in the same
/// directory, given the permissions and owner of the file it replaces (when
/// there is one) while still empty, written, fsync'd, renamed over `path`,
/// then the directory fsync'd. On error the temp file is removed and `path`
/// is untouched.
///
/// When no file is at `path`, the new file keeps the host's default mode
/// (0666 less backout's umask) throughout: WASI has no chmod and there is no
/// file to take other permissions from, and the finished file would have
/// that mode anyway.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_atomically_with(path, |file| file.write_all(contents))
}

/// Like [`replace_atomically`], but `write` fills the temp file: use it to
/// stream large contents. `write` must not rename or remove the file.
///
/// The temp file (`.{name}.backout-tmp-…`) is declared to the host before it
/// is created ([`temporary_file()`]), so a crash leaves `path` whole and the
/// temp file to the host to remove. It already has the replaced file's
/// permissions and owner when `write` gets it.
pub fn replace_atomically_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = parent_of(path);
    let name = file_name_of(path)?;
    let replaces_a_file = fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    let (temp, mut file) = create_temp(dir, &name, replaces_a_file.then_some(path))?;
    let result = write(&mut file)
        .and_then(|_| file.sync_all())
        .and_then(|_| {
            drop(file);
            fs::rename(&temp, path)
        })
        .and_then(|_| sync_dir(dir));
    if result.is_err() && temp.exists() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// `YYYYMMDDTHHMMSSZ` for a point in time (UTC; the proleptic Gregorian
/// calendar, as `date -u +%Y%m%dT%H%M%SZ` prints it).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RFC 3339 UTC (`2026-11-23T12:05:40Z`) for a point in time, as outputs
/// carry modification times.
pub fn rfc3339(t: SystemTime) -> String {
    let s = utc_stamp(t); // 20261123T120540Z
    format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15])
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // 2026-11-23T11:18:41Z
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_432_721)), "20261123T111841Z");
        // a leap day
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229T000000Z");
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("backout-sdk-fs-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> =
                fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn safety_copy_goes_through_a_declared_temporary_and_leaves_only_the_bak() {
        let dir = TempDir::new("safety");
        let file = dir.0.join("app.env");
        fs::write(&file, b"A=1\n").unwrap();
        temporary_file::clear();
        let copy = safety_copy(&file, None).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"A=1\n");
        let declared = temporary_file::declared();
        assert_eq!(declared.len(), 1, "{declared:?}");
        let temp = declared[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(temp.starts_with(".app.env.backout-tmp-"), "{temp}");
        assert_eq!(dir.names(), ["app.env".to_owned(), copy.file_name().unwrap().to_string_lossy().into_owned()]);
    }

    #[test]
    fn a_safety_copy_name_already_taken_gets_a_suffix_and_keeps_the_older_copy() {
        let dir = TempDir::new("noclobber");
        let taken = dir.0.join("app.env.backout-20261123T111841Z.bak");
        fs::write(&taken, b"older copy").unwrap();
        let temp = dir.0.join(".app.env.backout-tmp-1");
        fs::write(&temp, b"new").unwrap();
        let kept = give_bak_name(&temp, &dir.0, "app.env", "20261123T111841Z").unwrap();
        assert_eq!(kept, dir.0.join("app.env.backout-20261123T111841Z-1.bak"));
        assert_eq!(fs::read(&taken).unwrap(), b"older copy");
        assert_eq!(fs::read(&kept).unwrap(), b"new");
        assert_eq!(dir.names(), ["app.env.backout-20261123T111841Z-1.bak", "app.env.backout-20261123T111841Z.bak"]);
    }

    #[test]
    fn rename_no_clobber_refuses_an_existing_target_and_keeps_both_files() {
        let dir = TempDir::new("rename");
        let (from, to) = (dir.0.join(".temp"), dir.0.join("final"));
        fs::write(&from, b"new").unwrap();
        fs::write(&to, b"old").unwrap();
        let error = rename_no_clobber(&from, &to).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!((fs::read(&from).unwrap(), fs::read(&to).unwrap()), (b"new".to_vec(), b"old".to_vec()));
        fs::remove_file(&to).unwrap();
        rename_no_clobber(&from, &to).unwrap();
        assert_eq!(dir.names(), ["final"]);
        assert_eq!(fs::read(&to).unwrap(), b"new");
    }

    #[test]
    fn replace_atomically_declares_its_temporary_and_leaves_none() {
        let dir = TempDir::new("replace");
        let file = dir.0.join("config.json");
        fs::write(&file, b"{}").unwrap();
        temporary_file::clear();
        replace_atomically(&file, b"{\"a\": 1}").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"{\"a\": 1}");
        let declared = temporary_file::declared();
        assert_eq!(declared.len(), 1);
        assert!(declared[0].starts_with(&dir.0), "{declared:?}");
        assert_eq!(dir.names(), ["config.json"]);
    }

    /// The permission bits of an open file.
    fn mode_of(file: &File) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        file.metadata().unwrap().permissions().mode() & 0o777
    }

    /// A file holding `contents` with the permission bits `mode`.
    fn secret(path: &Path, contents: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_safety_copy_of_a_0600_file_is_0600_before_its_first_byte_is_written() {
        let dir = TempDir::new("safety-mode");
        let file = dir.0.join(".env");
        secret(&file, b"API_KEY=s3cret\n", 0o600);
        let mut seen = None;
        let copy = safety_copy_with(
            &file,
            None,
            |copy| {
                seen = Some((copy.metadata()?.len(), format!("{:o}", mode_of(copy))));
                Ok(())
            },
            |source, temp| copy_file(source, temp).map(|_| ()),
        )
        .unwrap();
        assert_eq!(seen, Some((0, "600".to_owned())), "(bytes in the temporary file, its mode) when the copy starts");
        assert_eq!(mode_of(&File::open(&copy).unwrap()), 0o600);
        assert_eq!(fs::read(&copy).unwrap(), b"API_KEY=s3cret\n");
    }

    #[test]
    fn an_atomic_replace_of_a_0600_file_writes_into_a_file_that_is_already_0600() {
        let dir = TempDir::new("replace-mode");
        let file = dir.0.join("db.json");
        secret(&file, b"{}", 0o600);
        let mut seen = None;
        replace_atomically_with(&file, |temp| {
            seen = Some((temp.metadata()?.len(), format!("{:o}", mode_of(temp))));
            temp.write_all(b"{\"password\": \"s3cret\"}")
        })
        .unwrap();
        assert_eq!(seen, Some((0, "600".to_owned())), "(bytes in the temporary file, its mode) when writing starts");
        assert_eq!(mode_of(&File::open(&file).unwrap()), 0o600);
    }

    #[test]
    fn a_temporary_that_cannot_get_the_permissions_is_removed_before_a_byte_is_written() {
        let dir = TempDir::new("temp-refused");
        // The native copy-permissions fails on a missing source; the host
        // refuses for its own reasons (an owner only root may give).
        let error = create_temp(&dir.0, "db.json", Some(&dir.0.join("gone"))).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(dir.names(), Vec::<String>::new(), "no temporary file is left");
    }

    #[test]
    fn an_atomic_replace_creating_a_new_file_gives_it_the_default_mode_from_the_start() {
        let dir = TempDir::new("replace-new");
        let probe = dir.0.join("probe");
        let default = mode_of(&File::create(&probe).unwrap());
        fs::remove_file(&probe).unwrap();
        let file = dir.0.join("new.json");
        let mut seen = None;
        replace_atomically_with(&file, |temp| {
            seen = Some(mode_of(temp));
            temp.write_all(b"{}")
        })
        .unwrap();
        assert_eq!(seen, Some(default), "nothing to take permissions from: the default mode while written");
        assert_eq!(mode_of(&File::open(&file).unwrap()), default, "and after");
    }

    #[test]
    fn sha256_hex_of_empty_input() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
