//! The file system side: what is at the link's path, the granted
//! directories, and the atomic switch.
//!
//! A switch never changes the link in place: a new link is made under a
//! hidden temporary name beside it (declared to the host first, so the host
//! removes it if the call never returns), and renamed over the old one. A
//! rename replaces a link atomically: a reader (the web server following
//! `current`) sees the old target or the new one, never no link. Then the
//! directory is fsync'd so the new link survives a power cut.
//!
//! Natively (unit tests) links are made with std; inside the sandbox
//! through the preopened directory's `symlink-at`, because std's WASI
//! `symlink` is unstable.

#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths;

/// What is at a path, without following a symbolic link there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Nothing,
    /// A symbolic link, with its target as written.
    Link(String),
    /// A symbolic link whose target the sandbox will not show: wasmtime
    /// refuses to read an absolute target (it would tell host paths).
    HiddenLink,
    Directory,
    File,
    /// Anything else (a FIFO, a socket, a device).
    Other,
}

impl Found {
    /// Says what was found, to follow a path in a message: "points to
    /// `releases/1.0.0`", "does not exist", "is a real directory, not a symbolic link".
    pub fn describe(&self) -> String {
        match self {
            Self::Nothing => "does not exist".to_owned(),
            Self::Link(target) => format!("points to `{}`", target.escape_debug()),
            Self::HiddenLink => {
                "is a symbolic link whose target the sandbox refuses to read (it does for an absolute target)"
                    .to_owned()
            }
            Self::Directory => "is a real directory, not a symbolic link".to_owned(),
            Self::File => "is a regular file, not a symbolic link".to_owned(),
            Self::Other => "is not a symbolic link (nor a file or directory)".to_owned(),
        }
    }
}

impl Found {
    /// For a link, its target for a message: `` `releases/1.0.0` ``, or what
    /// is known of a hidden one.
    pub fn shown_target(&self) -> Option<String> {
        match self {
            Self::Link(target) => Some(format!("`{}`", target.escape_debug())),
            Self::HiddenLink => Some("an absolute path the sandbox will not show".to_owned()),
            _ => None,
        }
    }
}

/// Looks at `path` without following a link there. A link whose target is
/// not UTF-8 is an error: release-switch could not write it back. A link
/// whose target the sandbox refuses to read is [`Found::HiddenLink`].
pub fn look(path: &str) -> io::Result<Found> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = match fs::read_link(path) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(Found::HiddenLink),
            Err(e) => return Err(e),
        };
        let text = target
            .into_os_string()
            .into_string()
            .map_err(|t| io::Error::new(io::ErrorKind::InvalidData, format!("its target {t:?} is not UTF-8 text")))?;
        Ok(Found::Link(text))
    } else if kind.is_dir() {
        Ok(Found::Directory)
    } else if kind.is_file() {
        Ok(Found::File)
    } else {
        Ok(Found::Other)
    }
}

/// The guest paths of the directories granted to this call (the WASI
/// preopens). Natively, where nothing is preopened, `/`: the unit tests
/// pass their own grants to [`crate::ops`] instead.
pub fn granted_dirs() -> Vec<String> {
    #[cfg(target_family = "wasm")]
    {
        wasip2::filesystem::preopens::get_directories().into_iter().map(|(_, path)| path).collect()
    }
    #[cfg(not(target_family = "wasm"))]
    {
        vec!["/".to_owned()]
    }
}

/// Makes a symbolic link at `at` whose target is the text `target`.
#[cfg(not(target_family = "wasm"))]
fn make_link(target: &str, at: &str) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

/// Makes a symbolic link at `at` whose target is the text `target`, through
/// the preopened directory `at` is in (the innermost one, as std resolves
/// every other path).
#[cfg(target_family = "wasm")]
fn make_link(target: &str, at: &str) -> io::Result<()> {
    use wasip2::filesystem::types::ErrorCode;
    let (dir, rel) = wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .filter_map(|(dir, root)| {
            let root = root.trim_end_matches('/').to_owned();
            let rel = at.strip_prefix(&format!("{root}/"))?.to_owned();
            Some((root.len(), dir, rel))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dir, rel)| (dir, rel))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not inside a granted directory"))?;
    dir.symlink_at(target, &rel).map_err(|e| {
        let kind = match e {
            ErrorCode::Exist => io::ErrorKind::AlreadyExists,
            ErrorCode::NoEntry => io::ErrorKind::NotFound,
            ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied,
            ErrorCode::ReadOnly => io::ErrorKind::ReadOnlyFilesystem,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("symlink-at refused: {}", e.name()))
    })
}

/// A new link under a temporary name beside the link to switch, waiting to
/// be renamed over it ([`Staged::commit`]) or removed ([`Staged::discard`]).
#[derive(Debug)]
pub struct Staged {
    /// The temporary name (`/app/.current.backout-tmp-…`).
    pub path: String,
    link: String,
}

/// Why a staged link did not replace the link.
#[derive(Debug)]
pub enum CommitError {
    /// Someone changed the link since it was read: what is there now. The
    /// staged link was removed; nothing was changed.
    Moved(Found),
    /// The rename failed (the staged link was removed; nothing was changed).
    Rename(io::Error),
    /// The link was switched, but the directory could not be fsync'd: the
    /// switch may not survive a power cut.
    NotDurable(io::Error),
}

/// Makes a link to `target` under a free hidden temporary name beside
/// `link`, declared to the host (`temporary-file`) before it is created.
pub fn stage(link: &str, target: &str) -> io::Result<Staged> {
    let dir = paths::parent(link);
    let name = paths::file_name(link);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    for attempt in 0u32..100 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let temp = paths::join(dir, &format!(".{name}.backout-tmp-{nanos:x}{suffix}"));
        if look(&temp)? != Found::Nothing {
            continue;
        }
        backout_sdk::fs::temporary_file(Path::new(&temp))?;
        match make_link(target, &temp) {
            Ok(()) => return Ok(Staged { path: temp, link: link.to_owned() }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("no free temporary name beside `{link}`")))
}

impl Staged {
    /// Renames the staged link over the link, if the link still points to
    /// `expected` (its target when it was read), then fsyncs the directory.
    pub fn commit(self, expected: &str) -> Result<(), CommitError> {
        match look(&self.link) {
            Ok(Found::Link(target)) if target == expected => {}
            Ok(found) => {
                self.discard();
                return Err(CommitError::Moved(found));
            }
            Err(e) => {
                self.discard();
                return Err(CommitError::Rename(e));
            }
        }
        if let Err(e) = fs::rename(&self.path, &self.link) {
            self.discard();
            return Err(CommitError::Rename(e));
        }
        backout_sdk::fs::sync_dir(Path::new(paths::parent(&self.link))).map_err(CommitError::NotDurable)
    }

    /// Removes the staged link.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("release-switch-link-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
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
    fn look_tells_links_directories_files_and_nothing_apart() {
        let dir = TempDir::new("look");
        fs::create_dir(dir.0.join("d")).unwrap();
        fs::write(dir.0.join("f"), b"").unwrap();
        std::os::unix::fs::symlink("d", dir.0.join("l")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.0.join("dangling")).unwrap();
        assert_eq!(look(&dir.path("d")).unwrap(), Found::Directory);
        assert_eq!(look(&dir.path("f")).unwrap(), Found::File);
        assert_eq!(look(&dir.path("l")).unwrap(), Found::Link("d".into()));
        assert_eq!(look(&dir.path("dangling")).unwrap(), Found::Link("nowhere".into()));
        assert_eq!(look(&dir.path("none")).unwrap(), Found::Nothing);
        assert_eq!(Found::Link("releases/1".into()).describe(), "points to `releases/1`");
    }

    #[test]
    fn a_staged_link_is_declared_then_renamed_over_the_link() {
        let dir = TempDir::new("commit");
        std::os::unix::fs::symlink("a", dir.0.join("current")).unwrap();
        backout_sdk::fs::temporary_file::clear();
        let staged = stage(&dir.path("current"), "b").unwrap();
        assert_eq!(backout_sdk::fs::temporary_file::declared(), [PathBuf::from(&staged.path)]);
        assert!(paths::file_name(&staged.path).starts_with(".current.backout-tmp-"), "{}", staged.path);
        assert_eq!(look(&staged.path).unwrap(), Found::Link("b".into()));
        staged.commit("a").unwrap();
        assert_eq!(look(&dir.path("current")).unwrap(), Found::Link("b".into()));
        assert_eq!(dir.names(), ["current"]);
    }

    #[test]
    fn a_link_moved_meanwhile_is_left_alone_and_the_staged_link_removed() {
        let dir = TempDir::new("moved");
        std::os::unix::fs::symlink("other", dir.0.join("current")).unwrap();
        let staged = stage(&dir.path("current"), "b").unwrap();
        match staged.commit("a") {
            Err(CommitError::Moved(found)) => assert_eq!(found, Found::Link("other".into())),
            other => panic!("{other:?}"),
        }
        assert_eq!(look(&dir.path("current")).unwrap(), Found::Link("other".into()));
        assert_eq!(dir.names(), ["current"]);
    }
}
