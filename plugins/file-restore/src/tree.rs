//! Directory targets: reading a tree, its digest, a staged copy, removal.
//!
//! A directory's **digest** is the sha256 of its manifest: every entry below
//! it, sorted by relative path, as its kind (directory, file, symbolic link,
//! other), its path and, for a file, the sha256 of its bytes (for a link, its
//! target). Modes and times are not in it: WASI does not show them.
//!
//! A **backup** tree may hold only directories and regular files (a link
//! would be copied as a link to wherever it points, a device or FIFO not at
//! all), at most [`MAX_ENTRIES`] entries, [`MAX_DEPTH`] levels deep. The live
//! tree may hold anything: it is only read, for its digest, and kept whole.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Most entries a directory restore handles (files and directories, at any depth).
pub const MAX_ENTRIES: usize = 10_000;
/// Most levels of directories below the target.
pub const MAX_DEPTH: usize = 32;

/// One entry below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { size: u64, sha256: String },
    Link(String),
    Other,
}

/// A tree: relative paths (`conf.d/app.toml`) to entries, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Reads the tree under `root`. With `strict` (a backup), a link or
    /// special file is an error naming it.
    pub fn read(root: &str, strict: bool) -> io::Result<Self> {
        let mut tree = Self::default();
        let mut pending = vec![(String::new(), 0usize)];
        while let Some((dir, depth)) = pending.pop() {
            let full = join(root, &dir);
            let mut names = Vec::new();
            for entry in fs::read_dir(&full)? {
                let name = entry?.file_name();
                match name.to_str() {
                    Some(name) => names.push(name.to_owned()),
                    None if strict => {
                        return Err(refuse(&full, &name.to_string_lossy(), "has a name that is not UTF-8"));
                    }
                    None => names.push(name.to_string_lossy().into_owned()),
                }
            }
            names.sort();
            for name in names {
                let rel = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
                let path = join(root, &rel);
                let meta = fs::symlink_metadata(&path)?;
                let node = if meta.is_dir() {
                    if depth + 1 > MAX_DEPTH {
                        return Err(io::Error::other(format!(
                            "`{path}` is more than {MAX_DEPTH} directories deep; file-restore restores shallower trees"
                        )));
                    }
                    pending.push((rel.clone(), depth + 1));
                    Node::Dir
                } else if meta.is_file() {
                    Node::File { size: meta.len(), sha256: backout_sdk::fs::sha256_file(Path::new(&path))? }
                } else if meta.file_type().is_symlink() {
                    if strict {
                        return Err(refuse(&full, &name, "is a symbolic link"));
                    }
                    Node::Link(fs::read_link(&path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default())
                } else {
                    if strict {
                        return Err(refuse(&full, &name, "is neither a regular file nor a directory"));
                    }
                    Node::Other
                };
                tree.nodes.insert(rel, node);
                if tree.nodes.len() > MAX_ENTRIES {
                    return Err(io::Error::other(format!(
                        "`{root}` holds more than {MAX_ENTRIES} entries; file-restore restores smaller trees"
                    )));
                }
            }
        }
        Ok(tree)
    }

    /// The digest of the manifest (see the module docs), lowercase hex.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, node) in &self.nodes {
            let (tag, payload) = match node {
                Node::Dir => ("d", ""),
                Node::File { sha256, .. } => ("f", sha256.as_str()),
                Node::Link(to) => ("l", to.as_str()),
                Node::Other => ("o", ""),
            };
            // Lengths first: no path or link target can run into the next entry.
            hasher.update(format!("{tag}{}:{path}{}:{payload}\n", path.len(), payload.len()));
        }
        hex::encode(hasher.finalize())
    }

    /// Regular files and their bytes, all together.
    pub fn files(&self) -> (u64, u64) {
        self.nodes.values().fold((0, 0), |(n, bytes), node| match node {
            Node::File { size, .. } => (n + 1, bytes + size),
            _ => (n, bytes),
        })
    }
}

fn refuse(dir: &str, name: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("`{}` {why}; a backup directory may hold only regular files and directories", join(dir, name)),
    )
}

/// `root/rel`, or `root` when `rel` is empty.
pub fn join(root: &str, rel: &str) -> String {
    if rel.is_empty() {
        root.to_owned()
    } else if root.ends_with('/') {
        format!("{root}{rel}")
    } else {
        format!("{root}/{rel}")
    }
}

/// Copies the backup tree `tree` (read from `source`) into the new directory
/// `stage`, which must not exist. Each file is created empty, given its
/// permissions and owner (from the live file at the same path under `live`
/// when there is one, otherwise from the backup's file), then written,
/// checked against the digest `tree` recorded, and fsync'd; then every
/// directory is fsync'd, deepest first. New directories get the host's
/// default mode: WASI cannot set one, and the host's `copy-permissions`
/// takes regular files only.
pub fn stage(source: &str, tree: &Tree, stage: &str, live: &str) -> io::Result<()> {
    fs::create_dir(stage)?;
    let mut dirs = vec![stage.to_owned()];
    for (rel, node) in &tree.nodes {
        let to = join(stage, rel);
        match node {
            Node::Dir => {
                fs::create_dir(&to)?;
                dirs.push(to);
            }
            Node::File { sha256, .. } => {
                let from = join(source, rel);
                let live_file = join(live, rel);
                let permissions =
                    if fs::symlink_metadata(&live_file).is_ok_and(|m| m.is_file()) { live_file } else { from.clone() };
                let mut out = OpenOptions::new().write(true).create_new(true).open(&to)?;
                backout_sdk::fs::copy_permissions(Path::new(&permissions), Path::new(&to)).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot give `{to}` the permissions of `{permissions}`: {e}"))
                })?;
                let copied = copy_hashed(&mut File::open(&from)?, &mut out)?;
                if &copied != sha256 {
                    return Err(io::Error::other(format!(
                        "`{from}` changed while it was copied (sha256 `{sha256}` when read, `{copied}` when copied)"
                    )));
                }
                out.sync_all()?;
            }
            Node::Link(_) | Node::Other => {
                return Err(io::Error::other(format!("`{}` is not a regular file or directory", join(source, rel))));
            }
        }
    }
    for dir in dirs.iter().rev() {
        backout_sdk::fs::sync_dir(Path::new(dir))?;
    }
    Ok(())
}

/// Copies `from` into `to` through one bounded buffer; returns the sha256
/// of the bytes copied.
pub fn copy_hashed(from: &mut impl Read, to: &mut impl Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Removes the directory `path` and everything in it, never following a
/// symbolic link (a link is removed as a link). Nothing there is fine.
pub fn remove_tree(path: &str) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    for entry in fs::read_dir(path)? {
        let name = entry?.file_name();
        remove_tree(&join(path, &name.to_string_lossy()))?;
    }
    fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(dir: &tempfile::TempDir) -> String {
        dir.path().to_str().unwrap().to_owned()
    }

    fn make(dir: &str, files: &[(&str, &str)]) {
        for (rel, contents) in files {
            let path = Path::new(dir).join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
    }

    #[test]
    fn the_digest_covers_names_contents_and_structure_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        make(&root(&a), &[("app.toml", "x = 1\n"), ("conf.d/db.toml", "port = 1\n")]);
        make(&root(&b), &[("app.toml", "x = 1\n"), ("conf.d/db.toml", "port = 1\n")]);
        let digest = |dir: &tempfile::TempDir| Tree::read(&root(dir), true).unwrap().digest();
        assert_eq!(digest(&a), digest(&b));
        fs::write(b.path().join("conf.d/db.toml"), "port = 2\n").unwrap();
        assert_ne!(digest(&a), digest(&b), "contents");
        fs::write(b.path().join("conf.d/db.toml"), "port = 1\n").unwrap();
        fs::create_dir(b.path().join("empty")).unwrap();
        assert_ne!(digest(&a), digest(&b), "an empty directory");
        fs::remove_dir(b.path().join("empty")).unwrap();
        fs::rename(b.path().join("app.toml"), b.path().join("app2.toml")).unwrap();
        assert_ne!(digest(&a), digest(&b), "names");
        let tree = Tree::read(&root(&a), true).unwrap();
        assert_eq!(tree.files(), (2, 15));
        assert_eq!(tree.nodes.keys().collect::<Vec<_>>(), ["app.toml", "conf.d", "conf.d/db.toml"]);
    }

    #[test]
    fn a_backup_with_a_link_is_refused_but_a_live_tree_may_hold_one() {
        let dir = tempfile::tempdir().unwrap();
        make(&root(&dir), &[("a", "1")]);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let error = Tree::read(&root(&dir), true).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("/link` is a symbolic link; a backup directory may hold only regular files and directories"),
            "{error}"
        );
        let live = Tree::read(&root(&dir), false).unwrap();
        assert_eq!(live.nodes["link"], Node::Link("/etc/passwd".into()));
    }

    #[test]
    fn staging_copies_every_byte_with_the_live_files_modes() {
        use std::os::unix::fs::PermissionsExt;
        let (source, live, parent) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        make(&root(&source), &[("secret.env", "A=1\n"), ("new.toml", "n = 1\n"), ("sub/deep.json", "{}")]);
        make(&root(&live), &[("secret.env", "A=0\n")]);
        fs::set_permissions(live.path().join("secret.env"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(source.path().join("new.toml"), fs::Permissions::from_mode(0o640)).unwrap();
        let tree = Tree::read(&root(&source), true).unwrap();
        let staged = format!("{}/stage", root(&parent));
        stage(&root(&source), &tree, &staged, &root(&live)).unwrap();
        assert_eq!(Tree::read(&staged, true).unwrap().digest(), tree.digest());
        let mode = |p: &str| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&format!("{staged}/secret.env")), 0o600, "the live file's mode");
        assert_eq!(mode(&format!("{staged}/new.toml")), 0o640, "a new file takes the backup's mode");
        assert!(stage(&root(&source), &tree, &staged, &root(&live)).is_err(), "never into an existing directory");
        remove_tree(&staged).unwrap();
        assert!(!Path::new(&staged).exists());
        remove_tree(&staged).unwrap();
    }
}
