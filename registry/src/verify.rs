//! `registry verify`: rehash every blob and say what is wrong.
//!
//! A registry copied to an air-gapped host, or left on a disk for months,
//! should be checked before an incident, not during one. Verification reads
//! every referenced blob once, in 1 MiB chunks (memory stays flat whatever
//! the blob sizes), hashes it with sha256 (SHA extensions where the CPU has
//! them) and compares digest and size with every entry that references it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::Hasher;
use crate::registry::{blob_dir, blob_name_digest, list_dir};
use crate::{Digest, Entry, Error, Registry};

/// Bytes read per call while hashing.
pub(crate) const CHUNK: usize = 1 << 20;

/// What [`Registry::verify`] found. Entries are in index order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries whose blob is present with the right digest and size.
    pub checked: Vec<Entry>,
    /// Entries whose blob does not exist.
    pub missing: Vec<Entry>,
    /// Entries whose blob has other bytes (a flipped bit, a truncation, a
    /// swap) or another size than the index says.
    pub corrupt: Vec<CorruptBlob>,
    /// Files in `blobs/sha256/` that no entry references: left-overs of a
    /// remove (run `gc`), crashed writes, or files put there by hand.
    pub orphaned: Vec<PathBuf>,
    /// Bytes read and hashed, each blob once however many entries share it.
    pub bytes_hashed: u64,
}

impl VerifyReport {
    /// Nothing missing, corrupt or orphaned.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.orphaned.is_empty()
    }
}

/// An entry whose blob does not match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptBlob {
    pub entry: Entry,
    pub path: PathBuf,
    /// The sha256 of the bytes on disk.
    pub computed: Digest,
    /// The size of the file on disk (the index says `entry.size`).
    pub size: u64,
}

impl fmt::Display for CorruptBlob {
    /// `` `name@version`: `path` has digest `…` and N bytes, expected `…` and M bytes ``
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}@{}`: `{}` has digest `{}` and {} bytes, expected `{}` and {} bytes",
            self.entry.name,
            self.entry.version,
            self.path.display(),
            self.computed,
            self.size,
            self.entry.digest,
            self.entry.size
        )
    }
}

impl Registry {
    /// Rehashes every blob this snapshot of the index references, once each,
    /// and lists files in the blob directory that nothing references.
    ///
    /// Problems with blobs are reported, not returned as errors; an error
    /// means verification itself failed (an unreadable directory or file).
    /// Does not lock: blobs are only ever replaced by rename.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let mut report = VerifyReport::default();
        let mut buffer = vec![0u8; CHUNK];
        let mut outcomes: BTreeMap<Digest, Option<(Digest, u64)>> = BTreeMap::new();
        for entry in &self.index.entries {
            let outcome = match outcomes.entry(entry.digest) {
                std::collections::btree_map::Entry::Occupied(known) => *known.get(),
                std::collections::btree_map::Entry::Vacant(unknown) => {
                    let outcome = hash_file(&self.blob_path(&entry.digest), &mut buffer)?;
                    report.bytes_hashed += outcome.map_or(0, |(_, size)| size);
                    *unknown.insert(outcome)
                }
            };
            match outcome {
                None => report.missing.push(entry.clone()),
                Some((computed, size)) if computed == entry.digest && size == entry.size => {
                    report.checked.push(entry.clone());
                }
                Some((computed, size)) => report.corrupt.push(CorruptBlob {
                    entry: entry.clone(),
                    path: self.blob_path(&entry.digest),
                    computed,
                    size,
                }),
            }
        }
        let dir = blob_dir(&self.root);
        for name in list_dir(&dir)? {
            if !blob_name_digest(&name).is_some_and(|digest| outcomes.contains_key(&digest)) {
                report.orphaned.push(dir.join(name));
            }
        }
        Ok(report)
    }
}

/// The digest and size of the file at `path`, read in chunks into `buffer`;
/// `None` if it does not exist.
pub(crate) fn hash_file(path: &Path, buffer: &mut [u8]) -> Result<Option<(Digest, u64)>, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
    };
    let mut hasher = Hasher::default();
    loop {
        match file.read(buffer) {
            Ok(0) => return Ok(Some(hasher.finish())),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const WORLD: &str = "backout:step/plugin@0.1.0";

    /// A registry with `one@1.0.0`, `two@1.0.0` and `two@2.0.0` sharing a blob.
    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::open_or_init(dir.path()).unwrap();
        registry.add("one", "1.0.0", WORLD, &vec![7u8; 3 * CHUNK + 5]).unwrap();
        registry.add("two", "1.0.0", WORLD, b"shared").unwrap();
        registry.add("two", "2.0.0", WORLD, b"shared").unwrap();
        (dir, registry)
    }

    #[test]
    fn an_intact_registry_is_clean_and_each_blob_is_hashed_once() {
        let (_dir, registry) = registry();
        let report = registry.verify().unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checked.len(), 3);
        assert_eq!(report.bytes_hashed, (3 * CHUNK + 5 + 6) as u64);
    }

    #[test]
    fn a_flipped_bit_is_corrupt() {
        let (_dir, registry) = registry();
        let entry = registry.find("one", "1.0.0").unwrap().clone();
        let path = registry.blob_path(&entry.digest);
        let mut bytes = fs::read(&path).unwrap();
        bytes[2 * CHUNK + 1] ^= 0x10;
        fs::write(&path, &bytes).unwrap();

        let report = registry.verify().unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.corrupt.len(), 1);
        let corrupt = &report.corrupt[0];
        assert_eq!(corrupt.entry, entry);
        assert_eq!(corrupt.computed, Digest::of(&bytes));
        assert_eq!(corrupt.size, entry.size);
        assert_eq!(report.checked.len(), 2);
    }

    #[test]
    fn a_truncated_blob_is_corrupt_with_its_size() {
        let (_dir, registry) = registry();
        let entry = registry.find("two", "2.0.0").unwrap().clone();
        fs::write(registry.blob_path(&entry.digest), b"sha").unwrap();

        let report = registry.verify().unwrap();
        let corrupt: Vec<_> = report.corrupt.iter().map(|c| (c.entry.version.as_str(), c.size)).collect();
        assert_eq!(corrupt, [("1.0.0", 3), ("2.0.0", 3)], "both entries sharing the blob");
        let message = report.corrupt[0].to_string();
        assert!(message.contains("has digest") && message.contains("and 3 bytes, expected"), "{message}");
        assert!(message.ends_with("and 6 bytes"), "{message}");
    }

    #[test]
    fn a_size_the_index_gets_wrong_is_corrupt() {
        let (_dir, registry) = registry();
        let text = String::from_utf8(registry.index_bytes().to_vec()).unwrap();
        fs::write(registry.root().join("index.toml"), text.replace("size = 6\n", "size = 7\n")).unwrap();
        let report = Registry::open(registry.root()).unwrap().verify().unwrap();
        assert_eq!(report.corrupt.len(), 2);
        assert_eq!(report.corrupt[0].computed, Digest::of(b"shared"));
    }

    #[test]
    fn a_missing_blob_is_reported() {
        let (_dir, registry) = registry();
        let entry = registry.find("one", "1.0.0").unwrap().clone();
        fs::remove_file(registry.blob_path(&entry.digest)).unwrap();
        let report = registry.verify().unwrap();
        assert_eq!(report.missing, [entry]);
        assert_eq!(report.bytes_hashed, 6);
        assert!(!report.is_clean());
    }

    #[test]
    fn an_orphan_blob_is_reported() {
        let (_dir, registry) = registry();
        let orphan = registry.blob_path(&Digest::of(b"orphan"));
        fs::write(&orphan, b"orphan").unwrap();
        let stray = registry.root().join("blobs/sha256/notes.txt");
        fs::write(&stray, b"hand-made").unwrap();
        let report = registry.verify().unwrap();
        let mut expected = vec![orphan, stray];
        expected.sort();
        assert_eq!(report.orphaned, expected);
        assert_eq!(report.checked.len(), 3);
        assert!(!report.is_clean());
    }
}
