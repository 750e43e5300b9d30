//! A registry directory: the index plus content-addressed blobs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsio::{create_dir_durable, write_atomic};
use crate::index::{Index, LOCAL_PUBLISHER};
use crate::time::now_utc;
use crate::validate::validate_label;
use crate::{Digest, Entry, Error, validate_name, validate_version};

/// The index file, relative to the registry root.
const INDEX_FILE: &str = "index.toml";
/// The blob directory, relative to the registry root.
const BLOB_DIR: [&str; 2] = ["blobs", "sha256"];

/// An opened registry: its root and a snapshot of its index.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    index: Index,
}

impl Registry {
    /// Opens the registry at `root`, reading and validating `index.toml`.
    ///
    /// A missing directory or index is [`Error::NotFound`].
    pub fn open(root: &Path) -> Result<Registry, Error> {
        Ok(Registry { root: root.to_owned(), index: read_index(root)? })
    }

    /// Opens the registry at `root`, first creating the directory, an empty
    /// index (serial 0) and the blob directory if there is no index yet.
    pub fn open_or_init(root: &Path) -> Result<Registry, Error> {
        match Registry::open(root) {
            Err(Error::NotFound { .. }) => {}
            opened => return opened,
        }
        create_dir_durable(root)?;
        create_dir_durable(&blob_dir(root))?;
        let index = Index::default();
        let path = index_path(root);
        write_atomic(&path, index.render(&path)?.as_bytes())?;
        Ok(Registry { root: root.to_owned(), index })
    }

    /// The registry directory, as given to [`Registry::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All entries, sorted by name, then by semver precedence of version.
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// The entry for exactly `name@version` (no version matching).
    pub fn find(&self, name: &str, version: &str) -> Option<&Entry> {
        self.index.find(name, version)
    }

    /// Every entry named `name`, oldest version first.
    pub fn versions_of(&self, name: &str) -> Vec<&Entry> {
        self.index.entries.iter().filter(|e| e.name == name).collect()
    }

    /// Adds component bytes under `name@version`.
    ///
    /// Writes the blob (temp file + fsync + rename + fsync dir; an existing
    /// blob with the same digest is re-verified, not rewritten), then
    /// rewrites `index.toml` atomically (temp + fsync + rename + fsync dir)
    /// with its serial increased by one. The index is re-read from disk
    /// first, so entries added by others since [`Registry::open`] are kept.
    ///
    /// Adding the same `name@version` with the same digest is a no-op that
    /// returns the existing entry and leaves the index untouched (a missing
    /// blob is restored). With a different digest it is [`Error::Conflict`]:
    /// a pinned plugin is never silently replaced. A blob on disk that no
    /// longer matches its digest is [`Error::DigestMismatch`], not repaired,
    /// so tampering is reported rather than hidden.
    pub fn add(&mut self, name: &str, version: &str, world: &str, bytes: &[u8]) -> Result<Entry, Error> {
        validate_name(name)?;
        validate_version(version)?;
        validate_label("world", world)?;
        let digest = Digest::of(bytes);

        let mut index = read_index(&self.root)?;
        if let Some(existing) = index.find(name, version) {
            if existing.digest != digest {
                return Err(Error::Conflict {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    existing: existing.digest,
                    new: digest,
                });
            }
            let existing = existing.clone();
            self.store_blob(&digest, bytes)?;
            self.index = index;
            return Ok(existing);
        }

        self.store_blob(&digest, bytes)?;
        let entry = Entry {
            name: name.to_owned(),
            version: version.to_owned(),
            digest,
            size: bytes.len() as u64,
            world: world.to_owned(),
            publisher: LOCAL_PUBLISHER.to_owned(),
            added: now_utc(),
        };
        index.insert(entry.clone());
        index.serial += 1;
        let path = index_path(&self.root);
        write_atomic(&path, index.render(&path)?.as_bytes())?;
        self.index = index;
        Ok(entry)
    }

    /// Reads the blob for `digest` once into memory, hashes it, and returns
    /// the bytes only if they hash to `digest`.
    ///
    /// Compile exactly the returned bytes: they are the bytes that were
    /// hashed, so nothing can change between verifying and compiling. A
    /// missing blob is [`Error::BlobMissing`]; other bytes are
    /// [`Error::DigestMismatch`] with both digests.
    pub fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing { digest: *digest, path });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let computed = Digest::of(&bytes);
        if computed != *digest {
            return Err(Error::DigestMismatch { path, expected: *digest, computed });
        }
        Ok(bytes)
    }

    /// Where the blob for `digest` lives: `<root>/blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_dir(&self.root).join(digest.hex())
    }

    /// Makes sure the blob for `digest` (whose bytes are `bytes`) is on disk
    /// and intact.
    fn store_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        match self.read_verified(digest) {
            Ok(_) => Ok(()),
            Err(Error::BlobMissing { path, .. }) => {
                create_dir_durable(&blob_dir(&self.root))?;
                write_atomic(&path, bytes)
            }
            Err(e) => Err(e),
        }
    }
}

fn index_path(root: &Path) -> PathBuf {
    root.join(INDEX_FILE)
}

fn blob_dir(root: &Path) -> PathBuf {
    BLOB_DIR.iter().fold(root.to_owned(), |dir, part| dir.join(part))
}

fn read_index(root: &Path) -> Result<Index, Error> {
    let path = index_path(root);
    match fs::read_to_string(&path) {
        Ok(text) => Index::parse(&text, &path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound { root: root.to_owned() }),
        Err(source) => Err(Error::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORLD: &str = "backout:step/plugin@0.1.0";

    /// A fresh registry in a temporary directory (kept alive by the guard).
    fn fresh() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open_or_init(&dir.path().join("registry")).unwrap();
        (dir, registry)
    }

    fn index_text(registry: &Registry) -> String {
        fs::read_to_string(registry.root().join("index.toml")).unwrap()
    }

    fn serial_on_disk(registry: &Registry) -> u64 {
        Registry::open(registry.root()).unwrap().index.serial
    }

    fn write_index(root: &Path, text: &str) {
        fs::create_dir_all(root).unwrap();
        fs::write(root.join("index.toml"), text).unwrap();
    }

    const ENTRY: &str = r#"
[[plugin]]
name = "env-toggle"
version = "0.1.0"
digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
size = 3
world = "backout:step/plugin@0.1.0"
added = "2026-11-23T11:18:41Z"
"#;

    #[test]
    fn open_or_init_creates_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/registry");
        let registry = Registry::open_or_init(&root).unwrap();
        assert_eq!(registry.root(), root);
        assert!(registry.entries().is_empty());
        assert_eq!(index_text(&registry), "format = 1\nserial = 0\n");
        assert!(root.join("blobs/sha256").is_dir());
        // A second call opens what is there instead of re-initializing.
        let again = Registry::open_or_init(&root).unwrap();
        assert_eq!(again.index, registry.index);
    }

    #[test]
    fn opening_a_missing_registry_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("absent");
        let err = Registry::open(&root).unwrap_err();
        assert!(matches!(&err, Error::NotFound { root: r } if *r == root), "{err:?}");
        assert_eq!(err.to_string(), format!("no registry at `{}` (`index.toml` not found)", root.display()));

        // A directory without an index is not a registry either.
        fs::create_dir(&root).unwrap();
        assert!(matches!(Registry::open(&root), Err(Error::NotFound { .. })));
    }

    #[test]
    fn add_then_open_finds_entry() {
        let (_dir, mut registry) = fresh();
        let bytes = b"\0asm env-toggle";
        let added = registry.add("env-toggle", "0.1.0", WORLD, bytes).unwrap();
        assert_eq!(added.name, "env-toggle");
        assert_eq!(added.version, "0.1.0");
        assert_eq!(added.digest, Digest::of(bytes));
        assert_eq!(added.size, bytes.len() as u64);
        assert_eq!(added.world, WORLD);
        assert_eq!(added.publisher, "local");
        crate::time::validate_timestamp("added", &added.added).unwrap();

        let reopened = Registry::open(registry.root()).unwrap();
        assert_eq!(reopened.find("env-toggle", "0.1.0"), Some(&added));
        assert_eq!(reopened.entries(), std::slice::from_ref(&added));
        assert_eq!(reopened.versions_of("env-toggle"), [&added]);
        assert!(reopened.find("env-toggle", "0.1.1").is_none());
        assert!(reopened.find("other", "0.1.0").is_none());

        let blob = reopened.blob_path(&added.digest);
        assert_eq!(blob, registry.root().join("blobs/sha256").join(added.digest.hex()));
        assert_eq!(fs::read(&blob).unwrap(), bytes);
        assert_eq!(reopened.read_verified(&added.digest).unwrap(), bytes);

        // Only the blob and the index: no temporaries left behind.
        let names = |dir: PathBuf| {
            let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            names
        };
        assert_eq!(names(registry.root().to_owned()), ["blobs", "index.toml"]);
        assert_eq!(names(registry.root().join("blobs/sha256")), [added.digest.hex().as_str()]);
    }

    #[test]
    fn adding_same_version_with_other_bytes_is_a_conflict() {
        let (_dir, mut registry) = fresh();
        registry.add("env-toggle", "0.1.0", WORLD, b"original").unwrap();
        let before = index_text(&registry);

        let err = registry.add("env-toggle", "0.1.0", WORLD, b"replacement").unwrap_err();
        match &err {
            Error::Conflict { name, version, existing, new } => {
                assert_eq!(name, "env-toggle");
                assert_eq!(version, "0.1.0");
                assert_eq!(*existing, Digest::of(b"original"));
                assert_eq!(*new, Digest::of(b"replacement"));
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "`env-toggle@0.1.0` is already pinned to `{}`, refusing to replace it with `{}`",
                Digest::of(b"original"),
                Digest::of(b"replacement")
            )
        );
        // Nothing changed: the pin, the index and the blobs.
        assert_eq!(index_text(&registry), before);
        assert_eq!(registry.read_verified(&Digest::of(b"original")).unwrap(), b"original");
        assert!(!registry.blob_path(&Digest::of(b"replacement")).exists());
    }

    #[test]
    fn adding_identical_bytes_twice_is_a_noop() {
        let (_dir, mut registry) = fresh();
        let first = registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        let before = index_text(&registry);

        let second = registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        assert_eq!(second, first, "the existing entry, timestamp included");
        assert_eq!(index_text(&registry), before, "the index was not rewritten");
        assert_eq!(registry.entries().len(), 1);

        // The same bytes under another version share the blob.
        let other = registry.add("env-toggle", "0.2.0", WORLD, b"bytes").unwrap();
        assert_eq!(other.digest, first.digest);
        assert_eq!(registry.entries().len(), 2);
    }

    #[test]
    fn re_adding_restores_a_missing_blob_but_refuses_a_corrupt_one() {
        let (_dir, mut registry) = fresh();
        let entry = registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        let blob = registry.blob_path(&entry.digest);
        let before = index_text(&registry);

        fs::remove_file(&blob).unwrap();
        registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        assert_eq!(fs::read(&blob).unwrap(), b"bytes");
        assert_eq!(index_text(&registry), before);

        fs::write(&blob, b"tampered").unwrap();
        let err = registry.add("env-toggle", "0.2.0", WORLD, b"bytes").unwrap_err();
        assert!(matches!(&err, Error::DigestMismatch { path, .. } if *path == blob), "{err:?}");
        assert_eq!(fs::read(&blob).unwrap(), b"tampered", "evidence is kept");
        assert!(registry.find("env-toggle", "0.2.0").is_none());
        assert_eq!(index_text(&registry), before);
    }

    #[test]
    fn read_verified_refuses_a_flipped_bit() {
        let (_dir, mut registry) = fresh();
        let bytes = b"\0asm\x0d\0\x01\0 component body".to_vec();
        let entry = registry.add("env-toggle", "0.1.0", WORLD, &bytes).unwrap();
        let blob = registry.blob_path(&entry.digest);

        let mut flipped = bytes.clone();
        flipped[7] ^= 0x01;
        fs::write(&blob, &flipped).unwrap();

        let err = registry.read_verified(&entry.digest).unwrap_err();
        match &err {
            Error::DigestMismatch { path, expected, computed } => {
                assert_eq!(*path, blob);
                assert_eq!(*expected, Digest::of(&bytes));
                assert_eq!(*computed, Digest::of(&flipped));
            }
            other => panic!("expected DigestMismatch, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "digest mismatch for `{}`: expected `{}`, computed `{}`",
                blob.display(),
                Digest::of(&bytes),
                Digest::of(&flipped)
            )
        );
    }

    #[test]
    fn missing_blob_is_reported() {
        let (_dir, mut registry) = fresh();
        let entry = registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        let blob = registry.blob_path(&entry.digest);
        fs::remove_file(&blob).unwrap();

        let err = registry.read_verified(&entry.digest).unwrap_err();
        assert!(
            matches!(&err, Error::BlobMissing { digest, path } if *digest == entry.digest && *path == blob),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("blob `{}` is missing: `{}` does not exist", entry.digest, blob.display()));

        // A digest that was never added is missing too.
        let never = Digest::of(b"never added");
        assert!(matches!(registry.read_verified(&never), Err(Error::BlobMissing { digest, .. }) if digest == never));
    }

    #[test]
    fn unknown_index_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = root.join("index.toml");

        write_index(root, &format!("format = 1\nserial = 1\nmirror = \"https://example.invalid\"\n{ENTRY}"));
        let err = Registry::open(root).unwrap_err();
        assert!(matches!(&err, Error::ParseIndex { path: p, .. } if *p == path), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("failed to parse `{}`: ", path.display())), "{message}");
        assert!(message.contains("unknown field `mirror`"), "{message}");
        assert!(message.contains("line 3"), "the toml error locates the key: {message}");

        write_index(root, &format!("format = 1\nserial = 1\n{ENTRY}signature = \"abc\"\n"));
        let message = Registry::open(root).unwrap_err().to_string();
        assert!(message.contains("unknown field `signature`"), "{message}");

        // Without the extra keys the same index opens.
        write_index(root, &format!("format = 1\nserial = 1\n{ENTRY}"));
        assert_eq!(Registry::open(root).unwrap().entries().len(), 1);
    }

    #[test]
    fn unsupported_format_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = root.join("index.toml");

        // A newer index with keys this version does not know is still
        // reported as a newer format, not as unknown keys.
        write_index(root, "format = 2\nserial = 7\nalgorithm = \"blake3\"\n");
        let err = Registry::open(root).unwrap_err();
        assert!(matches!(&err, Error::UnsupportedFormat { path: p, found: 2, supported: 1 } if *p == path), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "unsupported registry format `2` in `{}`: this version of backout supports format `1`",
                path.display()
            )
        );

        write_index(root, "serial = 0\n");
        let message = Registry::open(root).unwrap_err().to_string();
        assert!(message.contains("missing field `format`"), "{message}");

        // open_or_init must not paper over it by re-initializing.
        write_index(root, "format = 0\nserial = 0\n");
        assert!(matches!(Registry::open_or_init(root), Err(Error::UnsupportedFormat { found: 0, .. })));
    }

    #[test]
    fn index_is_sorted_and_round_trips() {
        let (_dir, mut registry) = fresh();
        for (name, version) in
            [("zeta", "1.0.0"), ("alpha", "0.10.0"), ("alpha", "1.0.0"), ("alpha", "0.2.0"), ("alpha", "1.0.0-rc.1")]
        {
            registry.add(name, version, WORLD, format!("{name}@{version}").as_bytes()).unwrap();
        }
        let order: Vec<_> = registry.entries().iter().map(|e| format!("{}@{}", e.name, e.version)).collect();
        let expected = ["alpha@0.2.0", "alpha@0.10.0", "alpha@1.0.0-rc.1", "alpha@1.0.0", "zeta@1.0.0"];
        assert_eq!(order, expected);
        let versions: Vec<_> = registry.versions_of("alpha").iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["0.2.0", "0.10.0", "1.0.0-rc.1", "1.0.0"]);

        // The file lists them in the same order, in the documented layout.
        let text = index_text(&registry);
        assert!(
            text.starts_with("format = 1\nserial = 5\n\n[[plugin]]\nname = \"alpha\"\nversion = \"0.2.0\"\n"),
            "{text}"
        );
        let names_in_file: Vec<_> = text.lines().filter_map(|l| l.strip_prefix("name = ")).collect();
        assert_eq!(names_in_file, ["\"alpha\""; 4].into_iter().chain(["\"zeta\""]).collect::<Vec<_>>());
        let first = &registry.entries()[0];
        assert!(text.contains(&format!(
            "[[plugin]]\nname = \"alpha\"\nversion = \"0.2.0\"\ndigest = \"{}\"\nsize = {}\nworld = \"{WORLD}\"\npublisher = \"local\"\nadded = \"{}\"\n",
            first.digest, first.size, first.added
        )), "{text}");

        // Reading and writing again changes nothing.
        let path = registry.root().join("index.toml");
        let parsed = Index::parse(&text, &path).unwrap();
        assert_eq!(parsed, registry.index);
        assert_eq!(parsed.render(&path).unwrap(), text);

        // A hand-edited index out of order is read in order.
        let dir = tempfile::tempdir().unwrap();
        let mut entries: Vec<&str> = text.split("\n[[plugin]]\n").skip(1).collect();
        entries.reverse();
        let shuffled = format!("format = 1\nserial = 5\n\n[[plugin]]\n{}", entries.join("\n[[plugin]]\n"));
        assert_ne!(shuffled, text);
        write_index(dir.path(), &shuffled);
        let reopened = Registry::open(dir.path()).unwrap();
        assert_eq!(reopened.entries(), registry.entries());
        assert_eq!(reopened.index.render(&path).unwrap(), text);
    }

    #[test]
    fn publisher_defaults_to_local() {
        let dir = tempfile::tempdir().unwrap();
        write_index(dir.path(), &format!("format = 1\nserial = 1\n{ENTRY}"));
        let registry = Registry::open(dir.path()).unwrap();
        assert_eq!(registry.entries()[0].publisher, "local");
    }

    #[test]
    fn serial_increases_on_add() {
        let (_dir, mut registry) = fresh();
        assert_eq!(serial_on_disk(&registry), 0);
        registry.add("env-toggle", "0.1.0", WORLD, b"one").unwrap();
        assert_eq!(serial_on_disk(&registry), 1);
        registry.add("env-toggle", "0.2.0", WORLD, b"two").unwrap();
        assert_eq!(serial_on_disk(&registry), 2);
        assert_eq!(registry.index.serial, 2);

        // Neither a no-op nor a refused add is a change.
        registry.add("env-toggle", "0.2.0", WORLD, b"two").unwrap();
        registry.add("env-toggle", "0.2.0", WORLD, b"other").unwrap_err();
        registry.add("../x", "0.3.0", WORLD, b"three").unwrap_err();
        assert_eq!(serial_on_disk(&registry), 2);
    }

    #[test]
    fn add_keeps_entries_added_by_another_handle() {
        let (_dir, mut first) = fresh();
        let mut second = Registry::open(first.root()).unwrap();
        first.add("one", "1.0.0", WORLD, b"one").unwrap();
        second.add("two", "1.0.0", WORLD, b"two").unwrap();

        let reopened = Registry::open(first.root()).unwrap();
        assert_eq!(reopened.entries().len(), 2);
        assert_eq!(reopened.index.serial, 2);
        assert_eq!(second.entries(), reopened.entries());
    }

    #[test]
    fn invalid_names_are_refused() {
        let (_dir, mut registry) = fresh();
        let too_long = "a".repeat(65);
        for name in
            ["../x", "Env", "", too_long.as_str(), "1st", "-x", "a_b", "a.b", "a/b", "a b", "ｅnv", "env\u{200b}"]
        {
            let err = validate_name(name).unwrap_err();
            assert!(matches!(&err, Error::InvalidName { name: n, .. } if n == name), "{name:?}: {err:?}");
            let err = registry.add(name, "0.1.0", WORLD, b"bytes").unwrap_err();
            assert!(matches!(&err, Error::InvalidName { name: n, .. } if n == name), "{name:?}: {err:?}");
        }
        assert!(registry.entries().is_empty());
        assert!(!registry.blob_path(&Digest::of(b"bytes")).exists(), "nothing is written for a refused add");
    }

    #[test]
    fn invalid_versions_are_refused() {
        let (_dir, mut registry) = fresh();
        let too_long = format!("1.0.0+{}", "a".repeat(123));
        for version in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "v1.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-01",
            "1.0.0-rc..1",
            "1.0.0+a+b",
            "1.0.0_beta",
            "../1.0.0",
            "1.0.0/..",
            " 1.0.0",
            "1.0.0\n",
            "１.0.0",
            "1.0.0-é",
            "latest",
            too_long.as_str(),
        ] {
            let err = validate_version(version).unwrap_err();
            assert!(matches!(&err, Error::InvalidVersion { version: v, .. } if v == version), "{version:?}: {err:?}");
            let err = registry.add("env-toggle", version, WORLD, b"bytes").unwrap_err();
            assert!(matches!(&err, Error::InvalidVersion { version: v, .. } if v == version), "{version:?}: {err:?}");
        }
        assert!(registry.entries().is_empty());
        validate_version(&too_long[..too_long.len() - 1]).unwrap();
    }

    #[test]
    fn invalid_worlds_are_refused() {
        let (_dir, mut registry) = fresh();
        for world in ["", "backout:step/plugin@0.1.0 ", "wörld"] {
            let err = registry.add("env-toggle", "0.1.0", world, b"bytes").unwrap_err();
            assert!(matches!(&err, Error::InvalidField { field: "world", value, .. } if value == world), "{err:?}");
        }
        assert!(registry.entries().is_empty());
    }

    #[test]
    fn hand_edited_invalid_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = root.join("index.toml");

        write_index(root, &format!("format = 1\nserial = 1\n{}", ENTRY.replace("\"env-toggle\"", "\"../x\"")));
        let err = Registry::open(root).unwrap_err();
        match &err {
            Error::InvalidEntry { path: p, name, version, source } => {
                assert_eq!(*p, path);
                assert_eq!((name.as_str(), version.as_str()), ("../x", "0.1.0"));
                assert!(matches!(**source, Error::InvalidName { .. }), "{source:?}");
            }
            other => panic!("expected InvalidEntry, got {other:?}"),
        }
        assert_eq!(err.to_string(), format!("invalid entry `../x@0.1.0` in `{}`", path.display()));

        write_index(root, &format!("format = 1\nserial = 1\n{}", ENTRY.replace("2026-11-23T11:18:41Z", "yesterday")));
        let err = Registry::open(root).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidEntry { source, .. } if matches!(**source, Error::InvalidField { field: "added", .. })),
            "{err:?}"
        );

        write_index(root, &format!("format = 1\nserial = 2\n{ENTRY}{ENTRY}"));
        let err = Registry::open(root).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateEntry { path: p, name, version } if *p == path && name == "env-toggle" && version == "0.1.0"),
            "{err:?}"
        );

        write_index(root, &format!("format = 1\nserial = 1\n{}", ENTRY.replace("sha256:", "")));
        let message = Registry::open(root).unwrap_err().to_string();
        assert!(message.contains("missing the `sha256:` prefix"), "{message}");
    }

    #[test]
    fn toml_syntax_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write_index(dir.path(), "format = 1\nserial = \n");
        let err = Registry::open(dir.path()).unwrap_err();
        let path = dir.path().join("index.toml");
        assert!(matches!(&err, Error::ParseIndex { path: p, .. } if *p == path), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("failed to parse `{}`: ", path.display())), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }
}
