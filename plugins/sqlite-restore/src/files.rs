//! The files around a database: its `-wal`, `-shm` and `-journal`, the
//! backups to pick from, and streaming copies that hash, check the header
//! and report progress in bounded memory.

#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::file_name;
use crate::glob;
use crate::header::{self, Header};

/// Copies move through one buffer of this size: a 1 GiB database needs
/// 1 MiB of memory, not 1 GiB.
pub const CHUNK: usize = 1024 * 1024;

/// Whether copies and digests are the host's (`backout:step/files`: a
/// kernel-side copy and native sha256, the host showing progress) rather
/// than streamed through this plugin. In a plugin they are; the native unit
/// tests exercise the streaming path, and the end-to-end tests the host's,
/// so both are held to the same results.
const HOST_FILE_OPS: bool = cfg!(target_family = "wasm");

/// Where progress goes: the host in a plugin, nowhere (or a vector) in tests.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// The suffixes of the files SQLite keeps beside a database.
pub const WAL: &str = "-wal";
pub const SHM: &str = "-shm";
pub const JOURNAL: &str = "-journal";

/// The first 8 bytes of a rollback journal that still has to be played back.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// What lies beside a database file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sides {
    /// Size of the `-wal`, if there is one.
    pub wal: Option<u64>,
    /// Size of the `-shm` (a cache SQLite rebuilds from the `-wal`).
    pub shm: Option<u64>,
    /// Size of the `-journal`, and whether it is hot (holds pages to roll back).
    pub journal: Option<(u64, bool)>,
}

impl Sides {
    /// Files that hold part of the database's state: a `-wal` (even an
    /// empty one means a connection is open or was not closed) or a
    /// `-journal`. The `-shm` alone holds nothing that is not elsewhere.
    pub fn has_state(&self) -> bool {
        self.wal.is_some() || self.journal.is_some()
    }

    /// `-wal (4120 bytes) and -journal (hot, 512 bytes)`, for messages.
    pub fn describe(&self, db: &str) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.wal {
            parts.push(format!("`{db}{WAL}` ({n} bytes)"));
        }
        if let Some((n, hot)) = self.journal {
            parts.push(format!("`{db}{JOURNAL}` ({}{n} bytes)", if hot { "hot, " } else { "" }));
        }
        parts.join(" and ")
    }
}

/// Looks for `-wal`, `-shm` and `-journal` beside `db`.
pub fn sides(db: &str) -> io::Result<Sides> {
    let size = |suffix: &str| match fs::symlink_metadata(format!("{db}{suffix}")) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let journal = match size(JOURNAL)? {
        None => None,
        Some(n) => {
            let mut magic = [0u8; 8];
            let hot = n >= 8
                && File::open(format!("{db}{JOURNAL}")).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
                && magic == JOURNAL_MAGIC;
            Some((n, hot))
        }
    };
    Ok(Sides { wal: size(WAL)?, shm: size(SHM)?, journal })
}

/// A file's size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// Stats a regular file (following symbolic links).
pub fn stat(path: &str) -> io::Result<FileInfo> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(FileInfo { path: path.to_owned(), size: meta.len(), modified: meta.modified().ok() })
}

/// Reads the first [`header::LEN`] bytes (fewer if the file is shorter).
pub fn read_head(path: &str) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(header::LEN);
    File::open(path)?.take(header::LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Whether a name in a backup directory can be a backup: not hidden, not a
/// side file, not one of this step's own safety copies or temp files.
pub fn is_candidate_name(name: &str) -> bool {
    !name.starts_with('.') && ![WAL, SHM, JOURNAL].iter().any(|s| name.ends_with(s)) && !name.contains(".backout-")
}

/// The newest of `entries` by modification time; on a tie, the greatest name.
pub fn newest(entries: &[FileInfo]) -> Option<&FileInfo> {
    entries.iter().max_by(|a, b| a.modified.cmp(&b.modified).then_with(|| a.path.cmp(&b.path)))
}

/// Lists the regular files in `dir` that may be backups and match `pattern`,
/// leaving out `exclude` (the live database).
pub fn candidates(dir: &str, pattern: Option<&str>, exclude: &str) -> io::Result<Vec<FileInfo>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
        if path == exclude || !is_candidate_name(&name) || !pattern.is_none_or(|p| glob::matches(p, &name)) {
            continue;
        }
        match stat(&path) {
            Ok(info) => found.push(info),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Why a checked copy stopped.
#[derive(Debug)]
pub enum CopyError {
    /// The source is not a whole SQLite database (the message completes
    /// "`<source>` …").
    NotADatabase(String),
    Io(io::Error),
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// What a checked copy wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub size: u64,
    pub sha256: String,
    pub header: Header,
}

/// Streams `source` into `target` through one [`CHUNK`], hashing what it
/// writes and checking the SQLite header on the way, so the digest and the
/// check are of exactly the bytes written. Does not fsync.
///
/// `target` is the open file at `target_path`. With the host's file
/// operations the header is checked before the copy, and the digest is of
/// the copy as it lies on disk: still exactly the bytes written.
pub fn copy_checked(
    source: &str,
    target_path: &str,
    target: &mut File,
    progress: Progress<'_>,
) -> Result<Copied, CopyError> {
    if HOST_FILE_OPS {
        let mut head = vec![0u8; header::LEN];
        let n = read_full(&mut File::open(source)?, &mut head)?;
        let parsed = header::parse(&head[..n]).map_err(CopyError::NotADatabase)?;
        let size = backout_sdk::fs::copy_file(Path::new(source), Path::new(target_path))?;
        progress(size, size);
        parsed.check_size(size).map_err(CopyError::NotADatabase)?;
        let sha256 = backout_sdk::fs::sha256_file(Path::new(target_path))?;
        return Ok(Copied { size, sha256, header: parsed });
    }
    let mut input = File::open(source)?;
    let total = input.metadata()?.len();
    let mut buf = vec![0u8; CHUNK];
    let mut n = read_full(&mut input, &mut buf)?;
    let head = header::parse(&buf[..n.min(header::LEN)]).map_err(CopyError::NotADatabase)?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    while n > 0 {
        hasher.update(&buf[..n]);
        target.write_all(&buf[..n])?;
        done += n as u64;
        progress(done, total.max(done));
        n = read_full(&mut input, &mut buf)?;
    }
    head.check_size(done).map_err(CopyError::NotADatabase)?;
    Ok(Copied { size: done, sha256: hex::encode(hasher.finalize()), header: head })
}

/// Reads until `buf` is full or the file ends; returns how much was read.
/// WASI hands out at most 64 KiB per read, so this turns many small reads
/// into one chunk to hash, write and report.
fn read_full(input: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// sha256 of a file, streamed through one [`CHUNK`], with progress.
pub fn sha256(path: &str, progress: Progress<'_>) -> io::Result<String> {
    if HOST_FILE_OPS {
        let digest = backout_sdk::fs::sha256_file(Path::new(path))?;
        let size = fs::metadata(path)?.len();
        progress(size, size);
        return Ok(digest);
    }
    let mut input = File::open(path)?;
    let total = input.metadata()?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done, total.max(done));
    }
}

/// Copies `source` to the new file `target` (never overwriting) with
/// `source`'s permissions and owner, and fsyncs it. Removes `target` on
/// error.
///
/// The permissions and owner are given to `target` while it is still empty,
/// before its first byte: a copy of a 0600 database is never readable by
/// others, not even while it is written.
///
/// `target` is written in place, so a crash can leave it partial: make it a
/// name from [`declared_temp`] (the host removes it then), or use
/// [`copy_to_new_name`] for a final name.
pub fn copy_new(source: &str, target: &str, progress: Progress<'_>) -> io::Result<u64> {
    let mut out = OpenOptions::new().write(true).create_new(true).open(target)?;
    let result = (|| {
        backout_sdk::fs::copy_permissions(Path::new(source), Path::new(target))?;
        if HOST_FILE_OPS {
            // Fsync'd by the host.
            let size = backout_sdk::fs::copy_file(Path::new(source), Path::new(target))?;
            progress(size, size);
            return Ok(size);
        }
        let mut input = File::open(source)?;
        let total = input.metadata()?.len();
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            done += n as u64;
            progress(done, total.max(done));
        }
        out.sync_all()?;
        Ok(done)
    })();
    if result.is_err() {
        let _ = fs::remove_file(target);
    }
    result
}

/// Copies `source` to the new name `target` (never overwriting) so that
/// `target` only ever appears complete: the bytes go to a declared temporary
/// file beside `target` ([`copy_new`]), which then takes the name
/// ([`backout_sdk::fs::rename_no_clobber`]). Does not fsync the directory.
pub fn copy_to_new_name(source: &str, target: &str, progress: Progress<'_>) -> io::Result<u64> {
    let temp = declared_temp(target, "tmp")?;
    let size = copy_new(source, &temp, progress)?;
    backout_sdk::fs::rename_no_clobber(Path::new(&temp), Path::new(target)).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })?;
    Ok(size)
}

/// Moves `from` to the new name `to`: a rename when both are on one file
/// system and in one granted directory, else a fsync'd copy that appears
/// under `to` only when complete ([`copy_to_new_name`]) and then removal of
/// `from`. At every moment one of the two names holds the whole file.
/// Returns whether it was a rename.
pub fn move_file(from: &str, to: &str, progress: Progress<'_>) -> io::Result<bool> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("`{to}` already exists")));
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            copy_to_new_name(from, to, progress)?;
            fs::remove_file(from)?;
            Ok(false)
        }
    }
}

/// A name from [`temp_beside`] that is free, declared to the host as a
/// temporary file before the caller creates it
/// ([`backout_sdk::fs::temporary_file`]): if backout is killed while it
/// exists, the host removes it.
pub fn declared_temp(path: &str, tag: &str) -> io::Result<String> {
    for attempt in 0u32..100 {
        let temp = temp_beside(path, tag);
        let temp = if attempt == 0 { temp } else { format!("{temp}-{attempt}") };
        match fs::symlink_metadata(&temp) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                backout_sdk::fs::temporary_file(Path::new(&temp))?;
                return Ok(temp);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("no free temporary name beside `{path}`")))
}

/// A name for a temp file beside `path`, hidden and unique enough: the
/// nanosecond clock, as the SDK's atomic replace names its own.
pub fn temp_beside(path: &str, tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = crate::config::parent(path);
    let dir = if dir == "/" { "" } else { dir };
    format!("{dir}/.{}.backout-{tag}-{nanos:x}", file_name(path))
}

pub use backout_sdk::fs::rfc3339;
pub use backout_sdk::quantity::human_size as human;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(path: &str, secs: u64) -> FileInfo {
        FileInfo { path: path.into(), size: 1, modified: Some(UNIX_EPOCH + Duration::from_secs(secs)) }
    }

    #[test]
    fn newest_wins_and_ties_go_to_the_greatest_name() {
        let entries = [info("/b/a.db", 10), info("/b/c.db", 30), info("/b/b.db", 20)];
        assert_eq!(newest(&entries).unwrap().path, "/b/c.db");
        let tie = [info("/b/x-1.db", 10), info("/b/x-2.db", 10)];
        assert_eq!(newest(&tie).unwrap().path, "/b/x-2.db");
        assert!(newest(&[]).is_none());
    }

    #[test]
    fn side_files_and_own_files_are_never_candidates() {
        assert!(is_candidate_name("app-2026.db"));
        for name in [
            ".hidden.db",
            "app.db-wal",
            "app.db-shm",
            "app.db-journal",
            "app.db.backout-20261123T120540Z.bak",
            ".app.db.backout-tmp-1f",
        ] {
            assert!(!is_candidate_name(name), "{name}");
        }
    }

    #[test]
    fn times_and_sizes_read_well() {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_432_721)), "2026-11-23T11:18:41Z");
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn temp_names_are_hidden_and_beside_the_file() {
        let t = temp_beside("/data/app.db", "tmp");
        assert!(t.starts_with("/data/.app.db.backout-tmp-"), "{t}");
        assert!(temp_beside("/app.db", "tmp").starts_with("/.app.db.backout-tmp-"));
    }

    #[test]
    fn temporaries_are_declared_before_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app.db").to_string_lossy().into_owned();
        backout_sdk::fs::temporary_file::clear();
        let temp = declared_temp(&target, "restore").unwrap();
        assert!(!Path::new(&temp).exists());
        assert_eq!(backout_sdk::fs::temporary_file::declared(), [Path::new(&temp)]);
    }

    #[test]
    fn a_copy_to_a_new_name_goes_through_a_temporary_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        std::fs::write(d("app.db-wal"), b"frames").unwrap();
        backout_sdk::fs::temporary_file::clear();
        assert_eq!(copy_to_new_name(&d("app.db-wal"), &d("copy-wal"), &mut |_, _| {}).unwrap(), 6);
        assert_eq!(std::fs::read(d("copy-wal")).unwrap(), b"frames");
        let declared = backout_sdk::fs::temporary_file::declared();
        assert_eq!(declared.len(), 1);
        assert!(declared[0].to_string_lossy().contains("/.copy-wal.backout-tmp-"), "{declared:?}");

        std::fs::write(d("other"), b"other").unwrap();
        let e = copy_to_new_name(&d("other"), &d("copy-wal"), &mut |_, _| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(d("copy-wal")).unwrap(), b"frames");
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["app.db-wal", "copy-wal", "other"], "no temporary file is left");
    }

    /// The permission bits of a file, in octal as `ls -l` thinks of them.
    fn octal_mode(path: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        format!("{:o}", std::fs::metadata(path).unwrap().permissions().mode() & 0o777)
    }

    #[test]
    fn a_copy_of_a_0600_file_is_0600_from_its_first_chunk_on() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        std::fs::write(d("app.db"), vec![7u8; CHUNK + 1]).unwrap();
        std::fs::set_permissions(d("app.db"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut seen = Vec::new();
        copy_new(&d("app.db"), &d("copy"), &mut |done, _| seen.push((done, octal_mode(&d("copy"))))).unwrap();
        assert_eq!(seen, [(CHUNK as u64, "600".to_owned()), (CHUNK as u64 + 1, "600".to_owned())]);
        assert_eq!(octal_mode(&d("copy")), "600");
    }

    #[test]
    fn checked_copies_refuse_what_is_not_a_whole_database() {
        let dir = tempfile::tempdir().unwrap();
        let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        let mut good = crate::header::tests::header(2);
        good.resize(2 * 4096, 0);
        std::fs::write(d("good.db"), &good).unwrap();
        std::fs::write(d("short.db"), &good[..4096]).unwrap();
        std::fs::write(d("empty.db"), b"").unwrap();
        let mut out = File::create(d("out")).unwrap();
        let mut seen = Vec::new();
        let copied =
            copy_checked(&d("good.db"), &d("out"), &mut out, &mut |done, total| seen.push((done, total))).unwrap();
        assert_eq!(copied.size, 8192);
        assert_eq!(copied.sha256, backout_sdk::fs::sha256_hex(&good));
        assert_eq!(seen.last(), Some(&(8192, 8192)));
        assert_eq!(std::fs::read(d("out")).unwrap(), good);
        for (name, says) in [("short.db", "is truncated"), ("empty.db", "is empty")] {
            let mut out = File::create(d("out2")).unwrap();
            match copy_checked(&d(name), &d("out2"), &mut out, &mut |_, _| {}) {
                Err(CopyError::NotADatabase(m)) => assert!(m.contains(says), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
