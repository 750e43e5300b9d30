//! Safe-file helpers: the data-safety rules every step that writes must keep.
//!
//! 1. Take a safety copy before overwriting anything ([`safety_copy`]) and put
//!    its path in the outputs.
//! 2. Write to a temporary file in the same directory, fsync it, rename it over
//!    the target, fsync the directory ([`replace_atomically`]). A reader sees
//!    the old file or the new one, never a mix, and a crash leaves one of them.
//! 3. Keep the file's permissions and owner: WASI cannot chmod or chown, so
//!    a new file would get the host's default mode (a 0600 secrets file
//!    would become 0644). [`copy_permissions`] asks the host, and both
//!    [`safety_copy`] and [`replace_atomically`] use it.
//! 4. Any write or fsync error is an error, never a warning: every function
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

/// Lowercase hex sha256 of a file's contents, read in bounded chunks.
pub fn sha256_file(path: &Path) -> io::Result<String> {
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
/// The copy streams in bounded memory, so it works for files of any size.
pub fn safety_copy(path: &Path, dir: Option<&Path>) -> io::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| parent_of(path));
    let name = file_name_of(path)?;
    let stamp = utc_stamp(SystemTime::now());
    let mut source = File::open(path)?;
    for attempt in 0u32..1000 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let candidate = dir.join(format!("{name}.backout-{stamp}{suffix}.bak"));
        let mut copy = match OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let result = io::copy(&mut source, &mut copy)
            .and_then(|_| copy.sync_all())
            .and_then(|_| copy_permissions(path, &candidate))
            .and_then(|_| sync_dir(dir));
        if let Err(e) = result {
            let _ = fs::remove_file(&candidate);
            return Err(e);
        }
        return Ok(candidate);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free safety-copy name for `{}` in `{}`", name, dir.display()),
    ))
}

/// Replaces `path` with `contents` atomically: temp file in the same
/// directory, fsync, the permissions and owner of the file it replaces (when
/// there is one), rename over `path`, fsync the directory. On error the temp
/// file is removed and `path` is untouched.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_atomically_with(path, |file| file.write_all(contents))
}

/// Like [`replace_atomically`], but `write` fills the temp file: use it to
/// stream large contents. `write` must not rename or remove the file.
pub fn replace_atomically_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = parent_of(path);
    let name = file_name_of(path)?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let temp = dir.join(format!(".{name}.backout-tmp-{nanos:x}"));
    let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
    let replaces_a_file = fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    let result = write(&mut file)
        .and_then(|_| file.sync_all())
        .and_then(|_| if replaces_a_file { copy_permissions(path, &temp) } else { Ok(()) })
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

    #[test]
    fn sha256_hex_of_empty_input() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
