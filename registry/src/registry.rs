//! A registry directory: the index plus content-addressed blobs.
//!
//! Reading never locks: the index and every blob are replaced by rename, so
//! a reader sees an old or a new file, never a torn one. Every change (add,
//! remove, gc, sign, import) takes the write lock ([`crate::lock`]) and
//! re-reads the index under it, so concurrent writers never lose each
//! other's entries.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::format::FormatError;
use crate::fsio::{create_dir_durable, is_temp_name, sync_dir, write_atomic};
use crate::index::{Index, LOCAL_PUBLISHER};
use crate::lock::WriteLock;
use crate::signing::MAX_SIGNATURE_FILE;
use crate::time::now_utc;
use crate::trust::check_policy;
use crate::validate::{same_precedence, validate_label};
use crate::{
    AcceptedSerials, Digest, Entry, Error, PublicKey, SigningKey, TrustStore, Trusted, VersionReq, utc_timestamp,
    validate_name, validate_version,
};
use crate::{FileError, IndexError};

/// What [`Registry::add_with`] and [`Registry::remove_with`] do to the
/// signature of a signed index; an unsigned index is changed as it is.
#[derive(Debug, Clone, Copy)]
pub enum OnSigned<'a> {
    /// Change nothing and return [`StoreError::SignedIndex`](crate::StoreError::SignedIndex).
    Refuse,
    /// Drop the signature (and the index's `expires` and `signed`).
    Unsign,
    /// Sign the changed index with this key (keeping its `expires`).
    Sign(&'a SigningKey),
}

/// What happened to the signature when the index changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureChange {
    /// The index was unsigned and stays so, or did not change.
    Unchanged,
    /// The signature was deleted.
    Removed,
    /// The changed index was signed with `key`.
    Signed { key: PublicKey },
}

/// What [`Registry::add_with`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddReport {
    /// The entry now in the index (the existing one, if it was pinned).
    pub entry: Entry,
    pub outcome: AddOutcome,
    pub signature: SignatureChange,
}

/// Whether an add changed the index, and whether it healed a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new entry (its blob written, or shared with another entry).
    Added,
    /// Exactly this entry was pinned already and its blob is intact: nothing changed.
    AlreadyPinned,
    /// The blob of these bytes was missing or corrupt and is whole again
    /// (for a new entry or an existing one).
    Repaired(BlobDamage),
}

/// What was wrong with a blob that was repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobDamage {
    /// The file did not exist.
    Missing,
    /// The file's bytes hashed to `computed`, not to the digest naming it.
    Corrupt { computed: Digest },
}

/// The index file, relative to the registry root.
pub(crate) const INDEX_FILE: &str = "index.toml";
/// The signature over the index, relative to the registry root.
pub(crate) const SIGNATURE_FILE: &str = "index.toml.sig";
/// The blob directory, relative to the registry root.
const BLOB_DIR: [&str; 2] = ["blobs", "sha256"];

/// An opened registry: its root and a snapshot of its index, together with
/// the exact bytes that snapshot was parsed from (what a signature covers).
#[derive(Debug)]
pub struct Registry {
    pub(crate) root: PathBuf,
    pub(crate) index: Index,
    pub(crate) raw: Vec<u8>,
}

impl Registry {
    /// Opens the registry at `root`, reading `index.toml` once and validating
    /// it; the bytes read are kept for [`Registry::check_trust`].
    ///
    /// A missing directory or index is [`StoreError::NotFound`](crate::StoreError::NotFound).
    pub fn open(root: &Path) -> Result<Registry, Error> {
        let (index, raw) = read_index(root)?;
        Ok(Registry { root: root.to_owned(), index, raw })
    }

    /// Opens the registry at `root`, first creating the directory, an empty
    /// index (serial 0) and the blob directory if there is no index yet.
    pub fn open_or_init(root: &Path) -> Result<Registry, Error> {
        match Registry::open(root) {
            Err(Error::Store(StoreError::NotFound { .. })) => {}
            opened => return opened,
        }
        create_dir_durable(root)?;
        let _lock = WriteLock::acquire(root)?;
        // Another process may have initialized it while we waited.
        match Registry::open(root) {
            Err(Error::Store(StoreError::NotFound { .. })) => {}
            opened => return opened,
        }
        create_dir_durable(&blob_dir(root))?;
        let index = Index::default();
        let path = index_path(root);
        let raw = index.render(&path)?.into_bytes();
        write_atomic(&path, &raw)?;
        Ok(Registry { root: root.to_owned(), index, raw })
    }

    /// The registry directory, as given to [`Registry::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All entries, sorted by name, then by semver precedence of version.
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// The index's serial: increases on every change (add, remove, sign,
    /// import of a newer index).
    pub fn serial(&self) -> u64 {
        self.index.serial
    }

    /// When the index expires (UTC `YYYY-MM-DDTHH:MM:SSZ`), if it was signed
    /// with an expiry.
    pub fn expires(&self) -> Option<&str> {
        self.index.expires.as_deref()
    }

    /// When the index was signed (UTC `YYYY-MM-DDTHH:MM:SSZ`), if it was
    /// signed by a backout that records it.
    pub fn signed(&self) -> Option<&str> {
        self.index.signed.as_deref()
    }

    /// Whether `index.toml.sig` is present (whether it verifies is
    /// [`Registry::check_trust`]'s question): what a plan shows when no
    /// trusted key is configured and the signature goes unchecked.
    pub fn has_signature(&self) -> bool {
        self.root.join(SIGNATURE_FILE).is_file()
    }

    /// The exact bytes of `index.toml` this snapshot was parsed from.
    pub fn index_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The entry for exactly `name@version` (no version matching).
    pub fn find(&self, name: &str, version: &str) -> Option<&Entry> {
        self.index.find(name, version)
    }

    /// Every entry named `name`, oldest version first.
    pub fn versions_of(&self, name: &str) -> Vec<&Entry> {
        self.index.entries.iter().filter(|e| e.name == name).collect()
    }

    /// The highest version of `name` that `requirement` matches.
    ///
    /// No match is [`StoreError::NoMatchingVersion`](crate::StoreError::NoMatchingVersion), listing every version of
    /// `name` (none when the name is unknown). Two matching versions that
    /// differ only in build metadata (`1.0.0+a`, `1.0.0+b`) have no "highest"
    /// and are [`StoreError::AmbiguousVersion`](crate::StoreError::AmbiguousVersion).
    pub fn resolve(&self, name: &str, requirement: &VersionReq) -> Result<&Entry, Error> {
        let versions = self.versions_of(name);
        let matching: Vec<&Entry> = versions.iter().copied().filter(|e| requirement.matches(&e.version)).collect();
        let Some(best) = matching.last() else {
            let mut names: Vec<String> = self.index.entries.iter().map(|e| e.name.clone()).collect();
            names.dedup();
            return Err(StoreError::NoMatchingVersion {
                name: name.to_owned(),
                requirement: requirement.to_string(),
                available: versions.iter().map(|e| e.version.clone()).collect(),
                names,
            }
            .into());
        };
        let tied: Vec<String> =
            matching.iter().filter(|e| same_precedence(&e.version, &best.version)).map(|e| e.version.clone()).collect();
        if tied.len() > 1 {
            return Err(StoreError::AmbiguousVersion {
                name: name.to_owned(),
                requirement: requirement.to_string(),
                candidates: tied,
            }
            .into());
        }
        Ok(best)
    }

    /// Adds component bytes under `name@version` to an unsigned index; on
    /// a signed one it is [`StoreError::SignedIndex`](crate::StoreError::SignedIndex) (see [`Registry::add_with`]).
    pub fn add(&mut self, name: &str, version: &str, world: &str, bytes: &[u8]) -> Result<Entry, Error> {
        Ok(self.add_with(name, version, world, bytes, OnSigned::Refuse)?.entry)
    }

    /// Adds component bytes under `name@version`.
    ///
    /// Under the write lock, writes the blob (temp file + fsync + rename +
    /// fsync dir), then rewrites `index.toml` atomically (temp + fsync +
    /// rename + fsync dir) with its serial increased by one. The index is
    /// re-read under the lock, so entries added by others since
    /// [`Registry::open`] are kept.
    ///
    /// A signed index (`index.toml.sig` present) is changed only as
    /// `on_signed` says: [`OnSigned::Refuse`] is [`StoreError::SignedIndex`](crate::StoreError::SignedIndex)
    /// before anything is written; [`OnSigned::Unsign`] deletes the
    /// signature first (and `expires`/`signed` with it), so a crash leaves
    /// an unsigned index, never a signature that does not cover it;
    /// [`OnSigned::Sign`] signs the new index as [`Registry::sign`] does,
    /// keeping its `expires`.
    ///
    /// Adding the same `name@version` with the same digest changes no index
    /// (so it is allowed on a signed one) and returns the existing entry;
    /// it heals the blob: a missing blob is written, and a blob whose bytes
    /// no longer hash to its digest is replaced atomically by these bytes
    /// (which do), reported as [`AddOutcome::Repaired`] with what was there.
    /// With a different digest it is [`StoreError::Conflict`](crate::StoreError::Conflict): a pinned plugin is
    /// never silently replaced.
    pub fn add_with(
        &mut self,
        name: &str,
        version: &str,
        world: &str,
        bytes: &[u8],
        on_signed: OnSigned<'_>,
    ) -> Result<AddReport, Error> {
        validate_name(name)?;
        validate_version(version)?;
        validate_label("world", world)?;
        let digest = Digest::of(bytes);

        let _lock = WriteLock::acquire(&self.root)?;
        let (mut index, raw) = read_index(&self.root)?;
        if let Some(existing) = index.find(name, version) {
            if existing.digest != digest {
                return Err(StoreError::Conflict {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    existing: existing.digest,
                    new: digest,
                }
                .into());
            }
            let entry = existing.clone();
            let outcome = match self.store_blob(&digest, bytes)? {
                None => AddOutcome::AlreadyPinned,
                Some(damage) => AddOutcome::Repaired(damage),
            };
            (self.index, self.raw) = (index, raw);
            return Ok(AddReport { entry, outcome, signature: SignatureChange::Unchanged });
        }

        self.guard_signature(&on_signed, || format!("adding `{}@{}`", name.escape_debug(), version.escape_debug()))?;
        // A new entry's blob is usually not there yet: only a corrupt one is a repair.
        let outcome = match self.store_blob(&digest, bytes)? {
            Some(damage @ BlobDamage::Corrupt { .. }) => AddOutcome::Repaired(damage),
            None | Some(BlobDamage::Missing) => AddOutcome::Added,
        };
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
        let signature = self.commit_signed(index, &on_signed)?;
        Ok(AddReport { entry, outcome, signature })
    }

    /// Removes `name@version` from an unsigned index; on a signed one it is
    /// [`StoreError::SignedIndex`](crate::StoreError::SignedIndex) (see [`Registry::remove_with`]).
    pub fn remove(&mut self, name: &str, version: &str) -> Result<Entry, Error> {
        Ok(self.remove_with(name, version, OnSigned::Refuse)?.0)
    }

    /// Removes the entry `name@version` from the index (serial increased by
    /// one) and returns it, with what happened to the signature (`on_signed`
    /// as for [`Registry::add_with`]). The blob stays until [`Registry::gc`],
    /// so a removal can be undone by adding the same bytes again. Not pinned
    /// is [`StoreError::NotPinned`](crate::StoreError::NotPinned).
    pub fn remove_with(
        &mut self,
        name: &str,
        version: &str,
        on_signed: OnSigned<'_>,
    ) -> Result<(Entry, SignatureChange), Error> {
        let _lock = WriteLock::acquire(&self.root)?;
        let (mut index, _) = read_index(&self.root)?;
        let Some(removed) = index.remove(name, version) else {
            return Err(StoreError::NotPinned { name: name.to_owned(), version: version.to_owned() }.into());
        };
        self.guard_signature(&on_signed, || format!("removing `{}@{}`", name.escape_debug(), version.escape_debug()))?;
        index.serial += 1;
        let signature = self.commit_signed(index, &on_signed)?;
        Ok((removed, signature))
    }

    /// Refuses a change to a signed index unless `on_signed` says what to
    /// do with the signature. Call with the write lock held, before writing.
    fn guard_signature(&self, on_signed: &OnSigned<'_>, change: impl FnOnce() -> String) -> Result<(), Error> {
        if matches!(on_signed, OnSigned::Refuse) && self.root.join(SIGNATURE_FILE).exists() {
            return Err(StoreError::SignedIndex { path: index_path(&self.root), change: change() }.into());
        }
        Ok(())
    }

    /// Writes a changed index and does to its signature what `on_signed`
    /// says. Call with the write lock held.
    fn commit_signed(&mut self, mut index: Index, on_signed: &OnSigned<'_>) -> Result<SignatureChange, Error> {
        let signature_path = self.root.join(SIGNATURE_FILE);
        let was_signed = signature_path.exists();
        match on_signed {
            OnSigned::Sign(key) => {
                index.signed = Some(utc_timestamp(SystemTime::now()));
                let raw = self.commit(index)?;
                write_atomic(&signature_path, key.sign_index(&raw)?.as_bytes())?;
                Ok(SignatureChange::Signed { key: key.public() })
            }
            OnSigned::Unsign if was_signed => {
                // The signature goes first: a crash after it leaves an
                // unsigned index, never one its signature does not cover.
                fs::remove_file(&signature_path).map_err(|source| FileError::Write { path: signature_path, source })?;
                sync_dir(&self.root)?;
                index.expires = None;
                index.signed = None;
                self.commit(index)?;
                Ok(SignatureChange::Removed)
            }
            OnSigned::Unsign | OnSigned::Refuse => {
                self.commit(index)?;
                Ok(SignatureChange::Unchanged)
            }
        }
    }

    /// Deletes every blob no entry references, and temporary files left by
    /// writes that crashed. Returns the digests of the deleted blobs, sorted.
    ///
    /// Runs under the write lock, so no add or import is half-way: every
    /// temporary file seen is a crash's leftover. Files in the blob
    /// directory that are neither a digest nor a temporary are left alone
    /// (and reported by [`Registry::verify`]).
    pub fn gc(&mut self) -> Result<Vec<Digest>, Error> {
        let _lock = WriteLock::acquire(&self.root)?;
        let (index, raw) = read_index(&self.root)?;
        let referenced: BTreeSet<Digest> = index.entries.iter().map(|e| e.digest).collect();
        let mut deleted = Vec::new();

        let blobs = blob_dir(&self.root);
        for name in list_dir(&blobs)? {
            let path = blobs.join(&name);
            let unreferenced = match blob_name_digest(&name) {
                Some(digest) if !referenced.contains(&digest) => Some(digest),
                Some(_) => continue,
                None if is_temp_name(&name) => None,
                None => continue,
            };
            fs::remove_file(&path).map_err(|source| FileError::Write { path: path.clone(), source })?;
            deleted.extend(unreferenced);
        }
        sync_dir(&blobs)?;

        for name in list_dir(&self.root)? {
            if is_temp_name(&name) {
                let path = self.root.join(&name);
                fs::remove_file(&path).map_err(|source| FileError::Write { path: path.clone(), source })?;
            }
        }
        sync_dir(&self.root)?;
        deleted.sort();
        (self.index, self.raw) = (index, raw);
        Ok(deleted)
    }

    /// Signs the index with `key`, as its publisher does before publishing.
    ///
    /// Under the write lock: increases the serial (so hosts that accepted the
    /// previous index accept this one and refuse to go back), sets `expires`
    /// (or removes it for `None`), rewrites `index.toml` atomically, then
    /// writes `index.toml.sig` atomically over its exact bytes. A crash
    /// between the two leaves a signature that does not cover the index,
    /// which hosts refuse ([`TrustError::BadSignature`](crate::TrustError::BadSignature)) until signed again.
    pub fn sign(&mut self, key: &SigningKey, expires: Option<SystemTime>) -> Result<(), Error> {
        let _lock = WriteLock::acquire(&self.root)?;
        let (mut index, _) = read_index(&self.root)?;
        index.serial += 1;
        index.expires = expires.map(utc_timestamp);
        self.commit_signed(index, &OnSigned::Sign(key)).map(|_| ())
    }

    /// Checks this snapshot of the index against the host's signature policy.
    ///
    /// With an empty `trust` nothing is checked ([`Trusted::NotConfigured`]),
    /// unless it requires signatures ([`TrustError::SignatureRequired`](crate::TrustError::SignatureRequired)).
    /// Otherwise, in this order: no `index.toml.sig` is [`TrustError::Unsigned`](crate::TrustError::Unsigned);
    /// a signature that does not verify over the exact bytes this snapshot
    /// was parsed from is [`TrustError::BadSignature`](crate::TrustError::BadSignature); a valid signature by a key
    /// not in `trust` is [`TrustError::UntrustedKey`](crate::TrustError::UntrustedKey); a serial below
    /// `accepted_serial` (from [`AcceptedSerials::floor`](crate::AcceptedSerials::floor)
    /// for this registry) is [`TrustError::Rollback`](crate::TrustError::Rollback); `expires` at or before `now` is
    /// [`TrustError::Expired`](crate::TrustError::Expired); without `expires`, `signed` longer ago than the
    /// trust store's maximum index age is [`TrustError::TooOld`](crate::TrustError::TooOld). Call it once per
    /// command, before resolving.
    pub fn check_trust(
        &self,
        trust: &TrustStore,
        accepted_serial: Option<u64>,
        now: SystemTime,
    ) -> Result<Trusted, Error> {
        if trust.is_empty() && !trust.requires_signatures() {
            return Ok(Trusted::NotConfigured);
        }
        let signature_path = self.root.join(SIGNATURE_FILE);
        let signature = read_small(&signature_path, MAX_SIGNATURE_FILE)?;
        check_policy(
            &self.index,
            &self.raw,
            &index_path(&self.root),
            signature.as_deref().map(|bytes| (bytes, signature_path.as_path())),
            trust,
            accepted_serial,
            now,
        )
    }

    /// [`Registry::check_trust`] against the serial this host accepted: the
    /// signing key is known only once the signature verifies, so the index
    /// is checked once without a floor, then against what `accepted`
    /// remembers for this registry and that key.
    pub fn check_trust_accepted(
        &self,
        trust: &TrustStore,
        accepted: &AcceptedSerials,
        now: SystemTime,
    ) -> Result<Trusted, Error> {
        match self.check_trust(trust, None, now)? {
            Trusted::Signed { key, .. } => self.check_trust(trust, accepted.floor(&self.root, &key), now),
            other => Ok(other),
        }
    }

    /// Reads the blob for `digest` once into memory, hashes it, and returns
    /// the bytes only if they hash to `digest`.
    ///
    /// Compile exactly the returned bytes: they are the bytes that were
    /// hashed, so nothing can change between verifying and compiling. A
    /// missing blob is [`StoreError::BlobMissing`](crate::StoreError::BlobMissing); other bytes are
    /// [`StoreError::DigestMismatch`](crate::StoreError::DigestMismatch) with both digests.
    pub fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing { digest: *digest, path }.into());
            }
            Err(source) => return Err(Error::File(FileError::Read { path, source })),
        };
        let computed = Digest::of(&bytes);
        if computed != *digest {
            return Err(StoreError::DigestMismatch { path, expected: *digest, computed }.into());
        }
        Ok(bytes)
    }

    /// Where the blob for `digest` lives: `<root>/blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_dir(&self.root).join(digest.hex())
    }

    /// Writes `index` atomically and makes it this handle's snapshot;
    /// returns the bytes written. Call with the write lock held.
    fn commit(&mut self, index: Index) -> Result<Vec<u8>, Error> {
        let path = index_path(&self.root);
        let raw = index.render(&path)?.into_bytes();
        write_atomic(&path, &raw)?;
        self.index = index;
        self.raw = raw.clone();
        Ok(raw)
    }

    /// Makes sure the blob for `digest` (whose bytes are `bytes`, already
    /// hashed to it) is on disk and intact: a missing or corrupt blob is
    /// written atomically, and what was wrong with it returned.
    fn store_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<Option<BlobDamage>, Error> {
        let damage = match self.read_verified(digest) {
            Ok(_) => return Ok(None),
            Err(Error::Store(StoreError::BlobMissing { .. })) => BlobDamage::Missing,
            Err(Error::Store(StoreError::DigestMismatch { computed, .. })) => BlobDamage::Corrupt { computed },
            Err(e) => return Err(e),
        };
        create_dir_durable(&blob_dir(&self.root))?;
        write_atomic(&self.blob_path(digest), bytes)?;
        Ok(Some(damage))
    }
}

pub(crate) fn index_path(root: &Path) -> PathBuf {
    root.join(INDEX_FILE)
}

pub(crate) fn blob_dir(root: &Path) -> PathBuf {
    BLOB_DIR.iter().fold(root.to_owned(), |dir, part| dir.join(part))
}

/// The digest a blob file name stands for: exactly 64 lowercase hex.
pub(crate) fn blob_name_digest(name: &str) -> Option<Digest> {
    let canonical = name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| name.parse().ok()).flatten()
}

/// The names in `dir` (none if it does not exist), sorted; names that are
/// not UTF-8 are returned lossily (they are never a blob or a temporary).
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::File(FileError::Read { path: dir.to_owned(), source })),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| FileError::Read { path: dir.to_owned(), source })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Reads `index.toml` once: the parsed index and the exact bytes parsed.
pub(crate) fn read_index(root: &Path) -> Result<(Index, Vec<u8>), Error> {
    let path = index_path(root);
    let raw = match fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound { root: root.to_owned() }.into());
        }
        Err(source) => return Err(Error::File(FileError::Read { path, source })),
    };
    Ok((parse_index_bytes(&raw, &path)?, raw))
}

/// Parses index bytes (which must be UTF-8); `path` is only used in errors.
pub(crate) fn parse_index_bytes(raw: &[u8], path: &Path) -> Result<Index, IndexError> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        IndexError::Format(FormatError::Parse { path: path.to_owned(), message: format!("not utf-8 text: {e}") })
    })?;
    Index::parse(text, path)
}

/// Reads a file of at most `limit` bytes; `None` if it does not exist.
pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, Error> {
    let read_error = |source| Error::File(FileError::Read { path: path.to_owned(), source });
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { path: path.to_owned(), limit }.into());
    }
    Ok(Some(bytes))
}

/// What the registry's pins and blobs refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `root` is missing or has no `index.toml`.
    #[error("no registry at `{}` (`index.toml` not found)", .root.display())]
    NotFound { root: PathBuf },

    /// `name@version` is already pinned to other bytes. Pinned entries are
    /// never replaced.
    #[error(
        "`{}@{}` is already pinned to `{existing}`, refusing to replace it with `{new}`",
        .name.escape_debug(),
        .version.escape_debug()
    )]
    Conflict { name: String, version: String, existing: Digest, new: Digest },

    #[error("blob `{digest}` is missing: `{}` does not exist", .path.display())]
    BlobMissing { digest: Digest, path: PathBuf },

    /// The blob's bytes do not hash to the digest that names them: it was
    /// corrupted or tampered with.
    #[error(
        "digest mismatch for `{}`: expected `{expected}`, computed `{computed}`",
        .path.display()
    )]
    DigestMismatch { path: PathBuf, expected: Digest, computed: Digest },

    /// No entry named `name` matches `requirement`; `available` lists every
    /// version of `name` (empty when the name is unknown), `names` every
    /// plugin name the registry holds (for "did you mean").
    #[error("{}", no_match_message(.name, .requirement, .available, .names))]
    NoMatchingVersion { name: String, requirement: String, available: Vec<String>, names: Vec<String> },

    /// Several versions match with the same precedence (they differ only in
    /// build metadata), so "the highest" is not one version.
    #[error(
        "`{}@{}` is ambiguous: {} differ only in build metadata, name one exactly",
        .name.escape_debug(),
        .requirement.escape_debug(),
        crate::text::backticked(.candidates)
    )]
    AmbiguousVersion { name: String, requirement: String, candidates: Vec<String> },

    /// An add or remove that would change a signed index, asked neither to
    /// sign it again nor to drop its signature: the old signature would no
    /// longer cover the index, and every host that checks it would refuse
    /// the registry from then on.
    #[error(
        "`{}` is signed: {change} would change the index and break its signature",
        .path.display()
    )]
    SignedIndex { path: PathBuf, change: String },

    /// [`Registry::remove`] of something not pinned.
    #[error("`{}@{}` is not in the registry", .name.escape_debug(), .version.escape_debug())]
    NotPinned { name: String, version: String },
}

impl StoreError {
    /// What the operator can do about this error, when there is one thing
    /// to say: printed as `hint:` under the message.
    pub fn hint(&self) -> Option<String> {
        if let StoreError::NoMatchingVersion { name, available, names, .. } = self
            && available.is_empty()
            && let Some(suggestion) = crate::text::did_you_mean(name, names)
        {
            return Some(suggestion);
        }
        Some(
            match self {
                StoreError::NotFound { .. } => {
                    "create one with `backout registry init` or `backout registry add FILE`"
                }
                StoreError::SignedIndex { .. } => {
                    "add `--key FILE` to sign the changed index again, or `--unsign` to drop the signature (hosts \
                     that trust the key then refuse the registry until it is signed again)"
                }
                StoreError::BlobMissing { .. } | StoreError::DigestMismatch { .. } => {
                    "put the blob back with `backout registry add FILE` (the original component), or \
                     `backout registry import BUNDLE` / `backout registry mirror --from URL` of the publisher's registry"
                }
                StoreError::Conflict { .. } => {
                    "publish the new bytes under a new version: a pinned version never changes"
                }
                StoreError::NoMatchingVersion { .. } | StoreError::NotPinned { .. } => {
                    "`backout registry list` shows every plugin and version the registry holds"
                }
                StoreError::AmbiguousVersion { .. } => return None,
            }
            .to_owned(),
        )
    }
}

fn no_match_message(name: &str, requirement: &str, available: &[String], names: &[String]) -> String {
    if available.is_empty() {
        let holds = match names {
            [] => "it is empty".to_owned(),
            names => format!("it holds {}", crate::text::backticked(names)),
        };
        format!("no plugin named `{}` in the registry; {holds}", name.escape_debug())
    } else {
        let name = name.escape_debug();
        format!(
            "no version of `{name}` matches `{}`, available: {}",
            requirement.escape_debug(),
            crate::text::backticked(available)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TrustError, ValidateError};

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
        assert!(matches!(&err, Error::Store(StoreError::NotFound { root: r }) if *r == root), "{err:?}");
        assert_eq!(err.to_string(), format!("no registry at `{}` (`index.toml` not found)", root.display()));

        // A directory without an index is not a registry either.
        fs::create_dir(&root).unwrap();
        assert!(matches!(Registry::open(&root), Err(Error::Store(StoreError::NotFound { .. }))));
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

        // Only the blob, the index and the (empty) lock file: no temporaries
        // left behind.
        let names = |dir: PathBuf| {
            let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            names
        };
        assert_eq!(names(registry.root().to_owned()), [".lock", "blobs", "index.toml"]);
        assert_eq!(names(registry.root().join("blobs/sha256")), [added.digest.hex().as_str()]);
    }

    #[test]
    fn adding_same_version_with_other_bytes_is_a_conflict() {
        let (_dir, mut registry) = fresh();
        registry.add("env-toggle", "0.1.0", WORLD, b"original").unwrap();
        let before = index_text(&registry);

        let err = registry.add("env-toggle", "0.1.0", WORLD, b"replacement").unwrap_err();
        match &err {
            Error::Store(StoreError::Conflict { name, version, existing, new }) => {
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
    fn re_adding_heals_a_missing_or_corrupt_blob_and_says_what_was_wrong() {
        let (_dir, mut registry) = fresh();
        let entry = registry.add("env-toggle", "0.1.0", WORLD, b"bytes").unwrap();
        let blob = registry.blob_path(&entry.digest);
        let before = index_text(&registry);
        let add = |registry: &mut Registry, version| {
            registry.add_with("env-toggle", version, WORLD, b"bytes", OnSigned::Refuse).unwrap()
        };

        assert_eq!(add(&mut registry, "0.1.0").outcome, AddOutcome::AlreadyPinned);
        fs::remove_file(&blob).unwrap();
        let report = add(&mut registry, "0.1.0");
        assert_eq!(report.outcome, AddOutcome::Repaired(BlobDamage::Missing));
        assert_eq!(report.entry, entry);
        assert_eq!(fs::read(&blob).unwrap(), b"bytes");
        assert_eq!(index_text(&registry), before, "healing is not a change of the index");

        fs::write(&blob, b"tampered").unwrap();
        let report = add(&mut registry, "0.1.0");
        assert_eq!(report.outcome, AddOutcome::Repaired(BlobDamage::Corrupt { computed: Digest::of(b"tampered") }));
        assert_eq!(registry.read_verified(&entry.digest).unwrap(), b"bytes");
        assert_eq!(index_text(&registry), before);

        // A new version of the same bytes heals the shared blob too.
        fs::write(&blob, b"tampered again").unwrap();
        let report = add(&mut registry, "0.2.0");
        assert!(matches!(report.outcome, AddOutcome::Repaired(BlobDamage::Corrupt { .. })), "{report:?}");
        assert!(registry.verify().unwrap().is_clean());
        assert_no_temporaries(&registry);
    }

    fn assert_no_temporaries(registry: &Registry) {
        let names = list_dir(&blob_dir(registry.root())).unwrap();
        assert!(names.iter().all(|n| blob_name_digest(n).is_some()), "{names:?}");
    }

    #[test]
    fn a_signed_index_changes_only_when_told_what_to_do_with_its_signature() {
        let (_dir, mut registry) = fresh();
        registry.add("env-toggle", "0.1.0", WORLD, b"one").unwrap();
        let key = SigningKey::generate().unwrap();
        registry.sign(&key, None).unwrap();
        let signature = registry.root().join(SIGNATURE_FILE);
        let (index_before, signature_before) = (index_text(&registry), fs::read(&signature).unwrap());
        let mut trust = TrustStore::default();
        trust.add("acme", key.public()).unwrap();
        let trusted =
            |registry: &Registry| Registry::open(registry.root()).unwrap().check_trust(&trust, None, SystemTime::now());

        // Refused, before anything is written: no blob, no index, same signature.
        let err = registry.add("env-toggle", "0.2.0", WORLD, b"two").unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::SignedIndex { change, .. }) if change == "adding `env-toggle@0.2.0`"),
            "{err:?}"
        );
        assert!(err.hint().unwrap().contains("--key FILE"), "{:?}", err.hint());
        let err = registry.remove("env-toggle", "0.1.0").unwrap_err();
        assert!(matches!(&err, Error::Store(StoreError::SignedIndex { .. })), "{err:?}");
        assert_eq!((index_text(&registry), fs::read(&signature).unwrap()), (index_before.clone(), signature_before));
        assert!(!registry.blob_path(&Digest::of(b"two")).exists());
        trusted(&registry).unwrap();

        // Signed again with the key: hosts that trust it accept the change.
        let report = registry.add_with("env-toggle", "0.2.0", WORLD, b"two", OnSigned::Sign(&key)).unwrap();
        assert_eq!(report.signature, SignatureChange::Signed { key: key.public() });
        assert!(matches!(trusted(&registry).unwrap(), Trusted::Signed { serial: 3, .. }));
        let (_, change) = registry.remove_with("env-toggle", "0.2.0", OnSigned::Sign(&key)).unwrap();
        assert_eq!(change, SignatureChange::Signed { key: key.public() });
        assert!(matches!(trusted(&registry).unwrap(), Trusted::Signed { serial: 4, .. }));

        // Unsigned on request: no signature file, no `signed` left in the index.
        let report = registry.add_with("env-toggle", "0.3.0", WORLD, b"three", OnSigned::Unsign).unwrap();
        assert_eq!(report.signature, SignatureChange::Removed);
        assert!(!signature.exists());
        assert!(!index_text(&registry).contains("signed ="), "{}", index_text(&registry));
        assert!(matches!(trusted(&registry).unwrap_err(), Error::Trust(TrustError::Unsigned { .. })));
        // An unsigned index needs no flag.
        registry.add("env-toggle", "0.4.0", WORLD, b"four").unwrap();
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
            Error::Store(StoreError::DigestMismatch { path, expected, computed }) => {
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
            matches!(&err, Error::Store(StoreError::BlobMissing { digest, path }) if *digest == entry.digest && *path == blob),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("blob `{}` is missing: `{}` does not exist", entry.digest, blob.display()));

        // A digest that was never added is missing too.
        let never = Digest::of(b"never added");
        assert!(
            matches!(registry.read_verified(&never), Err(Error::Store(StoreError::BlobMissing { digest, .. })) if digest == never)
        );
    }

    #[test]
    fn unknown_index_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = root.join("index.toml");

        write_index(root, &format!("format = 1\nserial = 1\nmirror = \"https://example.invalid\"\n{ENTRY}"));
        let err = Registry::open(root).unwrap_err();
        assert!(
            matches!(&err, Error::Index(IndexError::Format(FormatError::Parse { path: p, .. })) if *p == path),
            "{err:?}"
        );
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
        assert!(
            matches!(&err, Error::Index(IndexError::Format(FormatError::Unsupported { path: p, found: 2, supported: 1 })) if *p == path),
            "{err:?}"
        );
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
        assert!(matches!(
            Registry::open_or_init(root),
            Err(Error::Index(IndexError::Format(FormatError::Unsupported { found: 0, .. })))
        ));
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
            assert!(matches!(&err, ValidateError::InvalidName { name: n, .. } if n == name), "{name:?}: {err:?}");
            let err = registry.add(name, "0.1.0", WORLD, b"bytes").unwrap_err();
            assert!(
                matches!(&err, Error::Validate(ValidateError::InvalidName { name: n, .. }) if n == name),
                "{name:?}: {err:?}"
            );
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
            assert!(
                matches!(&err, ValidateError::InvalidVersion { version: v, .. } if v == version),
                "{version:?}: {err:?}"
            );
            let err = registry.add("env-toggle", version, WORLD, b"bytes").unwrap_err();
            assert!(
                matches!(&err, Error::Validate(ValidateError::InvalidVersion { version: v, .. }) if v == version),
                "{version:?}: {err:?}"
            );
        }
        assert!(registry.entries().is_empty());
        validate_version(&too_long[..too_long.len() - 1]).unwrap();
    }

    #[test]
    fn invalid_worlds_are_refused() {
        let (_dir, mut registry) = fresh();
        for world in ["", "backout:step/plugin@0.1.0 ", "wörld"] {
            let err = registry.add("env-toggle", "0.1.0", world, b"bytes").unwrap_err();
            assert!(
                matches!(&err, Error::Validate(ValidateError::InvalidField { field: "world", value, .. }) if value == world),
                "{err:?}"
            );
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
            Error::Index(IndexError::InvalidEntry { path: p, name, version, source }) => {
                assert_eq!(*p, path);
                assert_eq!((name.as_str(), version.as_str()), ("../x", "0.1.0"));
                assert!(matches!(**source, ValidateError::InvalidName { .. }), "{source:?}");
            }
            other => panic!("expected InvalidEntry, got {other:?}"),
        }
        assert_eq!(err.to_string(), format!("invalid entry `../x@0.1.0` in `{}`", path.display()));

        write_index(root, &format!("format = 1\nserial = 1\n{}", ENTRY.replace("2026-11-23T11:18:41Z", "yesterday")));
        let err = Registry::open(root).unwrap_err();
        assert!(
            matches!(&err, Error::Index(IndexError::InvalidEntry { source, .. }) if matches!(**source, ValidateError::InvalidField { field: "added", .. })),
            "{err:?}"
        );

        write_index(root, &format!("format = 1\nserial = 2\n{ENTRY}{ENTRY}"));
        let err = Registry::open(root).unwrap_err();
        assert!(
            matches!(&err, Error::Index(IndexError::DuplicateEntry { path: p, name, version }) if *p == path && name == "env-toggle" && version == "0.1.0"),
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
        assert!(
            matches!(&err, Error::Index(IndexError::Format(FormatError::Parse { path: p, .. })) if *p == path),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with(&format!("failed to parse `{}`: ", path.display())), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }
    fn entry_ids(registry: &Registry) -> Vec<String> {
        registry.entries().iter().map(|e| format!("{}@{}", e.name, e.version)).collect()
    }

    #[test]
    fn resolve_picks_the_highest_matching_version() {
        let (_dir, mut registry) = fresh();
        for version in ["0.9.0", "1.0.0", "1.2.0", "1.2.7", "1.10.0", "2.0.0-rc.1"] {
            registry.add("env-toggle", version, WORLD, version.as_bytes()).unwrap();
        }
        let resolve = |requirement: &str| {
            registry.resolve("env-toggle", &requirement.parse().unwrap()).map(|e| e.version.clone())
        };
        assert_eq!(resolve("1").unwrap(), "1.10.0");
        assert_eq!(resolve("1.2").unwrap(), "1.2.7");
        assert_eq!(resolve("^1.2").unwrap(), "1.10.0");
        assert_eq!(resolve("~1.2.0").unwrap(), "1.2.7");
        assert_eq!(resolve("1.2.0").unwrap(), "1.2.0");
        assert_eq!(resolve("*").unwrap(), "1.10.0", "pre-releases only when asked for");
        assert_eq!(resolve("^2.0.0-rc.1").unwrap(), "2.0.0-rc.1");

        let err = registry.resolve("env-toggle", &"^3".parse().unwrap()).unwrap_err();
        match &err {
            Error::Store(StoreError::NoMatchingVersion { name, requirement, available, .. }) => {
                assert_eq!((name.as_str(), requirement.as_str()), ("env-toggle", "^3"));
                assert_eq!(available, &["0.9.0", "1.0.0", "1.2.0", "1.2.7", "1.10.0", "2.0.0-rc.1"]);
            }
            other => panic!("expected NoMatchingVersion, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "no version of `env-toggle` matches `^3`, available: `0.9.0`, `1.0.0`, `1.2.0`, `1.2.7`, `1.10.0`, `2.0.0-rc.1`"
        );
        let err = registry.resolve("unknown", &"1".parse().unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::NoMatchingVersion { available, .. }) if available.is_empty()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no plugin named `unknown` in the registry; it holds `env-toggle`",
            "what there is, when nothing is close"
        );
        let err = registry.resolve("env-togle", &"1".parse().unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "no plugin named `env-togle` in the registry; it holds `env-toggle`");
        assert_eq!(err.hint().unwrap(), "did you mean `env-toggle`?");
    }

    #[test]
    fn resolve_refuses_versions_that_differ_only_in_build_metadata() {
        let (_dir, mut registry) = fresh();
        registry.add("env-toggle", "1.0.0+linux", WORLD, b"linux").unwrap();
        registry.add("env-toggle", "1.0.0+musl", WORLD, b"musl").unwrap();
        let err = registry.resolve("env-toggle", &"1".parse().unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::AmbiguousVersion { candidates, .. }) if candidates == &["1.0.0+linux", "1.0.0+musl"]),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "`env-toggle@1` is ambiguous: `1.0.0+linux`, `1.0.0+musl` differ only in build metadata, name one exactly"
        );
        let exact = registry.resolve("env-toggle", &"1.0.0+musl".parse().unwrap()).unwrap();
        assert_eq!(exact.version, "1.0.0+musl");
    }

    #[test]
    fn remove_drops_the_entry_but_keeps_the_blob_until_gc() {
        let (_dir, mut registry) = fresh();
        let kept = registry.add("env-toggle", "0.1.0", WORLD, b"kept").unwrap();
        let removed = registry.add("env-toggle", "0.2.0", WORLD, b"removed").unwrap();
        let shared = registry.add("other", "1.0.0", WORLD, b"kept").unwrap();

        assert_eq!(registry.remove("env-toggle", "0.2.0").unwrap(), removed);
        assert_eq!(serial_on_disk(&registry), 4);
        assert_eq!(entry_ids(&Registry::open(registry.root()).unwrap()), ["env-toggle@0.1.0", "other@1.0.0"]);
        assert!(registry.blob_path(&removed.digest).exists(), "the blob stays until gc");

        let err = registry.remove("env-toggle", "0.2.0").unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::NotPinned { name, version }) if name == "env-toggle" && version == "0.2.0")
        );
        assert_eq!(err.to_string(), "`env-toggle@0.2.0` is not in the registry");
        assert_eq!(serial_on_disk(&registry), 4, "a refused remove is not a change");

        // gc deletes the unreferenced blob and crash left-overs, nothing else.
        let blobs = registry.root().join("blobs/sha256");
        fs::write(blobs.join(".0123.tmp.99.0"), b"half a blob").unwrap();
        fs::write(registry.root().join(".index.toml.tmp.99.1"), b"half an index").unwrap();
        fs::write(blobs.join("README"), b"hand-made").unwrap();
        assert_eq!(registry.gc().unwrap(), [removed.digest]);
        let mut names: Vec<_> = fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [kept.digest.hex().as_str(), "README"]);
        assert!(!registry.root().join(".index.toml.tmp.99.1").exists());
        assert_eq!(registry.read_verified(&shared.digest).unwrap(), b"kept");
        assert_eq!(registry.gc().unwrap(), [], "nothing left to collect");
        assert_eq!(serial_on_disk(&registry), 4, "gc does not change the index");
    }

    #[test]
    fn concurrent_adds_lose_no_entry() {
        let (_dir, registry) = fresh();
        let root = registry.root().to_owned();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let root = root.clone();
                std::thread::spawn(move || {
                    // Each thread its own handle, opened before the others write.
                    let mut registry = Registry::open(&root).unwrap();
                    for i in 0..10 {
                        let name = format!("plugin-{thread}");
                        registry.add(&name, &format!("1.0.{i}"), WORLD, format!("{name} {i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let reopened = Registry::open(&root).unwrap();
        assert_eq!(reopened.entries().len(), 40);
        assert_eq!(reopened.serial(), 40);
        assert!(reopened.verify().unwrap().is_clean());
    }

    #[test]
    fn indexes_without_expires_still_open_and_expires_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        write_index(dir.path(), &format!("format = 1\nserial = 1\n{ENTRY}"));
        assert_eq!(Registry::open(dir.path()).unwrap().expires(), None);

        let text = format!("format = 1\nserial = 1\nexpires = \"2030-01-01T00:00:00Z\"\n{ENTRY}");
        write_index(dir.path(), &text);
        let registry = Registry::open(dir.path()).unwrap();
        assert_eq!(registry.expires(), Some("2030-01-01T00:00:00Z"));
        let rendered = registry.index.render(Path::new("index.toml")).unwrap();
        assert_eq!(rendered, text.replace("added =", "publisher = \"local\"\nadded ="));

        write_index(dir.path(), "format = 1\nserial = 1\nexpires = \"tomorrow\"\n");
        let err = Registry::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Index(IndexError::Header(ValidateError::InvalidField { field: "expires", value, .. })) if value == "tomorrow"),
            "{err:?}"
        );
    }
}
