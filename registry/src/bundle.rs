//! Air-gap bundles: a whole registry in one deterministic tar file.
//!
//! The connected side exports its (signed) registry into one file; someone
//! carries it across the gap; the air-gapped host imports it. The import
//! trusts nothing in the file until the signature policy, every blob's
//! digest and size, and the serial have been checked, and then admits it
//! atomically: either the whole bundle is in the registry, or the registry
//! is byte for byte as it was.
//!
//! A bundle is a ustar archive ([`crate::tar`]) with exactly, in this order:
//!
//! ```text
//! index.toml                 the publisher's index, byte for byte
//! index.toml.sig             its signature, if the registry is signed
//! blobs/sha256/<hex>         every blob the index references, sorted by digest, nothing else
//! ```
//!
//! Same registry content, same bundle bytes: headers carry mode 0644,
//! uid/gid 0, mtime 0 and no user names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::digest::Hasher;
use crate::fsio::{TempFile, create_dir_durable, sync_dir, write_atomic};
use crate::index::Index;
use crate::lock::WriteLock;
use crate::registry::{
    INDEX_FILE, SIGNATURE_FILE, blob_dir, blob_name_digest, index_path, parse_index_bytes, read_index, read_small,
};
use crate::signing::MAX_SIGNATURE_FILE;
use crate::tar::{self, END, TarEntry};
use crate::trust::check_policy;
use crate::verify::CHUNK;
use crate::{Digest, Entry, Error, Registry, TrustStore, Trusted};
use crate::{FileError, StoreError, TrustError};

/// The directory of blobs inside a bundle.
const BLOB_PREFIX: &str = "blobs/sha256/";
/// An index larger than this is refused before it is read into memory.
pub(crate) const MAX_INDEX: u64 = 64 << 20;

/// What [`Registry::import`] (or [`Registry::mirror`]) admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The serial of the registry's index now (the bundle's or mirror's).
    pub serial: u64,
    /// Blobs written by this import or mirror because they were missing,
    /// sorted (intact blobs already present are kept as they are).
    pub added_blobs: Vec<Digest>,
    /// Blobs that were present but whose bytes did not hash to their
    /// digest, replaced by the verified ones, sorted. For a mirror,
    /// `added_blobs` and `repaired_blobs` are exactly those downloaded.
    pub repaired_blobs: Vec<Digest>,
    /// Every entry of the imported index.
    pub entries: Vec<Entry>,
    /// The signature check's outcome: record its serial in
    /// [`AcceptedSerials`](crate::AcceptedSerials).
    pub trusted: Trusted,
    /// The registry already had exactly this index: it was not written
    /// (though missing or corrupt blobs were healed, if any).
    pub unchanged: bool,
}

impl Registry {
    /// Writes the registry as it is on disk now (not this handle's snapshot)
    /// into a new bundle at `to`, replacing `to` atomically.
    ///
    /// Takes the write lock so the index and its signature are a matching
    /// pair. Every blob is rehashed while it is copied: a corrupt or missing
    /// blob fails the export ([`BundleError::BundleBlobMismatch`](crate::BundleError::BundleBlobMismatch),
    /// [`StoreError::BlobMissing`](crate::StoreError::BlobMissing)) instead of shipping it.
    pub fn export(&self, to: &Path) -> Result<(), Error> {
        let _lock = WriteLock::acquire(&self.root)?;
        let (index, raw) = read_index(&self.root)?;
        let signature = read_small(&self.root.join(SIGNATURE_FILE), MAX_SIGNATURE_FILE)?;
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        for entry in &index.entries {
            blobs.insert(entry.digest, entry.size);
        }

        let mut temp = TempFile::create(to)?;
        let temp_path = temp.path().to_owned();
        let write_error = |source| Error::File(FileError::Write { path: temp_path.clone(), source });
        {
            let mut out = BufWriter::with_capacity(CHUNK, temp.file());
            append(&mut out, INDEX_FILE, &raw).map_err(write_error)?;
            if let Some(signature) = &signature {
                append(&mut out, SIGNATURE_FILE, signature).map_err(write_error)?;
            }
            let mut buffer = vec![0u8; CHUNK];
            for (digest, &expected_size) in &blobs {
                let path = self.blob_path(digest);
                let mut blob = match File::open(&path) {
                    Ok(blob) => blob,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(StoreError::BlobMissing { digest: *digest, path }.into());
                    }
                    Err(source) => return Err(Error::File(FileError::Read { path, source })),
                };
                if expected_size > tar::MAX_SIZE {
                    return Err(BundleError::BlobTooLarge { digest: *digest, size: expected_size }.into());
                }
                out.write_all(&tar::header(&format!("{BLOB_PREFIX}{}", digest.hex()), expected_size))
                    .map_err(write_error)?;
                // Copy exactly `expected_size` bytes, hashing them; a file of
                // another size or other bytes fails below.
                let mut hasher = Hasher::default();
                let mut limited = (&mut blob).take(expected_size);
                loop {
                    let n = match limited.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => return Err(Error::File(FileError::Read { path, source })),
                    };
                    hasher.update(&buffer[..n]);
                    out.write_all(&buffer[..n]).map_err(write_error)?;
                }
                let extra =
                    blob.read(&mut buffer[..1]).map_err(|source| FileError::Read { path: path.clone(), source })?;
                let (computed, size) = hasher.finish();
                if computed != *digest || size != expected_size || extra != 0 {
                    let size = size + extra as u64;
                    return Err(BundleError::BundleBlobMismatch {
                        path,
                        expected: *digest,
                        computed,
                        size,
                        expected_size,
                    }
                    .into());
                }
                out.write_all(&[0; tar::BLOCK][..tar::padding(size)]).map_err(write_error)?;
            }
            out.write_all(&END).map_err(write_error)?;
            out.flush().map_err(write_error)?;
        }
        temp.sync()?;
        temp.rename()?;
        Ok(sync_dir(to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?)
    }

    /// The key a bundle says it is signed with, without verifying anything:
    /// a host uses it only to look up the serial it last accepted from that
    /// key, before [`Registry::import`] verifies the signature for real.
    /// `None` for an unsigned bundle.
    pub fn bundle_signer(bundle: &Path) -> Result<Option<crate::PublicKey>, Error> {
        let contents = BundleContents::read(bundle)?;
        let signature_display = bundle.join(SIGNATURE_FILE);
        contents
            .signature
            .as_deref()
            .map(|bytes| crate::signing::IndexSignature::parse(bytes, &signature_display).map(|s| s.key))
            .transpose()
            .map_err(Error::from)
    }

    /// Admits a bundle written by [`Registry::export`] into the registry at
    /// `root` (created if missing), replacing its index with the bundle's.
    ///
    /// Before anything is written: the archive is checked strictly (only
    /// `index.toml`, `index.toml.sig` and `blobs/sha256/<hex>`, in that order,
    /// regular files, valid checksums, sizes within the file); the bundle's
    /// index bytes pass the same policy as [`Registry::check_trust`]; every
    /// entry has its blob, every blob is referenced, and every blob's digest
    /// and size match; under the write lock, the bundle's serial is not
    /// below the registry's ([`TrustError::Rollback`](crate::TrustError::Rollback)). The same serial with the
    /// same index bytes is a no-op; with other bytes it is
    /// [`TrustError::SerialReused`](crate::TrustError::SerialReused).
    ///
    /// Then, under the lock: new blobs are written (temp + fsync + rename;
    /// each is hashed again while copied) and their directory flushed; the
    /// new signature and index are written to temporaries and flushed; the
    /// signature is renamed into place first and the index last, then the
    /// directory is flushed. The index rename is the commit point: before
    /// it, the old index is intact and every blob it needs is still there.
    /// A crash between the two renames leaves the new signature beside the
    /// old index, which does not verify: a host with trusted keys refuses
    /// it as [`TrustError::BadSignature`](crate::TrustError::BadSignature) (never a mix of the two) until the
    /// import is run again. On any error after writing began, the blobs
    /// this import added are removed and the old signature restored, so the
    /// registry is byte for byte unchanged. Blobs the new index no longer
    /// references stay until [`Registry::gc`].
    pub fn import(
        root: &Path,
        bundle: &Path,
        trust: &TrustStore,
        accepted_serial: Option<u64>,
        now: SystemTime,
    ) -> Result<ImportReport, Error> {
        let mut contents = BundleContents::read(bundle)?;
        let publication = Publication::check(
            std::mem::take(&mut contents.index),
            contents.signature.take(),
            &bundle.join(INDEX_FILE),
            &bundle.join(SIGNATURE_FILE),
            trust,
            accepted_serial,
            now,
        )?;
        contents.check_blobs(&publication.index.entries)?;
        publication.admit(root, &mut contents)
    }
}

/// An index and its signature, as a publisher published them, that passed
/// the signature policy: what [`Registry::import`] and
/// [`Registry::mirror`] admit. Both build it with [`Publication::check`]
/// and admit it with [`Publication::admit`]; they differ only in where the
/// bytes come from ([`BlobSource`]).
pub(crate) struct Publication {
    pub(crate) index: Index,
    /// The exact bytes `index` was parsed from, which the signature covers.
    pub(crate) raw: Vec<u8>,
    pub(crate) signature: Option<Vec<u8>>,
    pub(crate) trusted: Trusted,
}

/// Where the blobs of a [`Publication`] come from: a bundle file, or a
/// mirror's server.
pub(crate) trait BlobSource {
    /// Called once under the write lock, before anything is written, with
    /// the blobs the registry does not have yet (sorted by digest). A source
    /// that has to fetch them does it here, into temporaries, verifying
    /// each; an error here leaves the registry untouched.
    fn prepare(&mut self, missing: &[Digest], blob_dir: &Path) -> Result<(), Error>;

    /// Puts exactly the bytes of `digest`, verified and flushed, at `path`
    /// (a missing blob's place), by renaming a temporary beside it.
    fn place(&mut self, digest: &Digest, path: &Path) -> Result<(), Error>;
}

impl Publication {
    /// Parses the index bytes and applies the signature policy (the same as
    /// [`Registry::check_trust`]) to exactly those bytes. `index_display` and
    /// `signature_display` name them in errors (a path inside a bundle, a
    /// URL).
    pub(crate) fn check(
        raw: Vec<u8>,
        signature: Option<Vec<u8>>,
        index_display: &Path,
        signature_display: &Path,
        trust: &TrustStore,
        accepted_serial: Option<u64>,
        now: SystemTime,
    ) -> Result<Publication, Error> {
        let index = parse_index_bytes(&raw, index_display)?;
        let trusted = check_policy(
            &index,
            &raw,
            index_display,
            signature.as_deref().map(|bytes| (bytes, signature_display)),
            trust,
            accepted_serial,
            now,
        )?;
        Ok(Publication { index, raw, signature, trusted })
    }

    /// The blobs the index references, sorted.
    pub(crate) fn digests(&self) -> BTreeSet<Digest> {
        self.index.entries.iter().map(|e| e.digest).collect()
    }

    /// Makes this publication the registry at `root` (created if missing),
    /// all or nothing; see [`Registry::import`] for the order of writes.
    ///
    /// Under the write lock: refuses an older serial ([`TrustError::Rollback`](crate::TrustError::Rollback))
    /// or the same serial with other bytes ([`TrustError::SerialReused`](crate::TrustError::SerialReused)); the
    /// same index again is a no-op (nothing fetched, nothing written). Then
    /// `source` prepares the missing blobs, they are renamed into place, and
    /// the signature and the index follow. On any error, the blobs added are
    /// removed again.
    pub(crate) fn admit(&self, root: &Path, source: &mut impl BlobSource) -> Result<ImportReport, Error> {
        create_dir_durable(root)?;
        let _lock = WriteLock::acquire(root)?;
        let current = match read_index(root) {
            Ok(current) => Some(current),
            Err(Error::Store(StoreError::NotFound { .. })) => None,
            Err(e) => return Err(e),
        };
        let report = |added_blobs, repaired_blobs, unchanged| ImportReport {
            serial: self.index.serial,
            added_blobs,
            repaired_blobs,
            entries: self.index.entries.clone(),
            trusted: self.trusted.clone(),
            unchanged,
        };
        let mut same_index = false;
        if let Some((current, current_raw)) = &current {
            if self.index.serial < current.serial {
                return Err(TrustError::Rollback { accepted: current.serial, found: self.index.serial }.into());
            }
            if self.index.serial == current.serial {
                if *current_raw != self.raw {
                    return Err(TrustError::SerialReused { serial: self.index.serial }.into());
                }
                same_index = true;
            }
        }

        let blobs = blob_dir(root);
        let (missing, corrupt) = damaged_blobs(&blobs, &self.digests())?;
        if same_index && missing.is_empty() && corrupt.is_empty() {
            return Ok(report(Vec::new(), Vec::new(), true));
        }
        create_dir_durable(&blobs)?;
        let fetch: Vec<Digest> = missing.iter().chain(&corrupt).copied().collect::<BTreeSet<_>>().into_iter().collect();
        source.prepare(&fetch, &blobs)?;

        let mut added = Vec::new();
        match self.write(root, &missing, &corrupt, source, &mut added, !same_index) {
            Ok(()) => Ok(report(added.into_iter().map(|(digest, _)| digest).collect(), corrupt, same_index)),
            Err(e) => {
                // Best effort: the error above is what the caller must see.
                // Repaired blobs stay: they hold exactly the bytes their
                // name promises, which no index can make wrong.
                for (_, path) in &added {
                    let _ = fs::remove_file(path);
                }
                let _ = sync_dir(&blobs);
                Err(e)
            }
        }
    }

    /// Writes the missing blobs, then the signature and the index (see
    /// [`Registry::import`] for the order). Records each blob written in
    /// `added` as soon as it is in place, for the caller to undo.
    fn write(
        &self,
        root: &Path,
        missing: &[Digest],
        corrupt: &[Digest],
        source: &mut impl BlobSource,
        added: &mut Vec<(Digest, PathBuf)>,
        write_index: bool,
    ) -> Result<(), Error> {
        let blobs = blob_dir(root);
        for digest in missing {
            let path = blobs.join(digest.hex());
            source.place(digest, &path)?;
            added.push((*digest, path));
        }
        for digest in corrupt {
            // A rename over the corrupt file: readers see it or the right bytes.
            source.place(digest, &blobs.join(digest.hex()))?;
        }
        sync_dir(&blobs)?;
        if !write_index {
            return Ok(());
        }

        let index_path = index_path(root);
        let signature_path = root.join(SIGNATURE_FILE);
        let mut index_temp = TempFile::create(&index_path)?;
        index_temp.write_all(&self.raw)?;
        index_temp.sync()?;
        let signature_temp = match &self.signature {
            Some(signature) => {
                let mut temp = TempFile::create(&signature_path)?;
                temp.write_all(signature)?;
                temp.sync()?;
                Some(temp)
            }
            None => None,
        };
        let old_signature = read_small(&signature_path, MAX_SIGNATURE_FILE)?;
        match signature_temp {
            Some(temp) => temp.rename()?,
            None if old_signature.is_some() => fs::remove_file(&signature_path)
                .map_err(|source| FileError::Write { path: signature_path.clone(), source })?,
            None => {}
        }
        if let Err(e) = index_temp.rename() {
            // Put the old signature back beside the old index.
            let _ = match &old_signature {
                Some(bytes) => write_atomic(&signature_path, bytes),
                None => {
                    fs::remove_file(&signature_path).map_err(|source| FileError::Write { path: signature_path, source })
                }
            };
            return Err(e.into());
        }
        Ok(sync_dir(root)?)
    }
}

/// Of the blobs `digests`, those that are not in `blobs` and those whose
/// bytes do not hash to their name (each read once), both sorted.
fn damaged_blobs(blobs: &Path, digests: &BTreeSet<Digest>) -> Result<(Vec<Digest>, Vec<Digest>), Error> {
    let (mut missing, mut corrupt) = (Vec::new(), Vec::new());
    let mut buffer = vec![0u8; CHUNK];
    for digest in digests {
        let path = blobs.join(digest.hex());
        if fs::symlink_metadata(&path).is_err() {
            missing.push(*digest);
        } else if crate::verify::hash_file(&path, &mut buffer)?.is_none_or(|(computed, _)| computed != *digest) {
            corrupt.push(*digest);
        }
    }
    Ok((missing, corrupt))
}

/// Appends one small in-memory file to an archive being written.
fn append(out: &mut impl Write, name: &str, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() as u64 > tar::MAX_SIZE {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("`{name}` is too large for a bundle")));
    }
    out.write_all(&tar::header(name, bytes.len() as u64))?;
    out.write_all(bytes)?;
    out.write_all(&[0; tar::BLOCK][..tar::padding(bytes.len() as u64)])
}

/// A bundle whose layout was checked; blob data is still in the file.
struct BundleContents {
    path: PathBuf,
    file: File,
    index: Vec<u8>,
    signature: Option<Vec<u8>>,
    /// Where each blob's bytes are in the bundle.
    blobs: BTreeMap<Digest, TarEntry>,
}

impl BundleContents {
    /// Reads the archive's headers, checks the layout, and reads the index
    /// and signature (both size-limited) into memory.
    fn read(path: &Path) -> Result<BundleContents, Error> {
        let invalid = |reason: String| Error::Bundle(BundleError::Bundle { path: path.to_owned(), reason });
        let mut file = File::open(path).map_err(|source| FileError::Read { path: path.to_owned(), source })?;
        let len = file.metadata().map_err(|source| FileError::Read { path: path.to_owned(), source })?.len();
        let entries = tar::read_entries(&mut file, len).map_err(invalid)?;

        let mut entries = entries.into_iter().peekable();
        let index_entry = match entries.next() {
            Some(entry) if entry.name == INDEX_FILE => entry,
            Some(entry) => {
                return Err(invalid(format!("the first entry must be `{INDEX_FILE}`, found `{}`", entry.name)));
            }
            None => return Err(invalid(format!("it is empty, expected `{INDEX_FILE}` first"))),
        };
        let mut contents =
            BundleContents { path: path.to_owned(), index: Vec::new(), signature: None, blobs: BTreeMap::new(), file };
        contents.index = contents.read_small(&index_entry, MAX_INDEX)?;
        if let Some(entry) = entries.next_if(|entry| entry.name == SIGNATURE_FILE) {
            contents.signature = Some(contents.read_small(&entry, MAX_SIGNATURE_FILE)?);
        }
        for entry in entries {
            let Some(digest) = entry.name.strip_prefix(BLOB_PREFIX).and_then(blob_name_digest) else {
                return Err(invalid(format!(
                    "unexpected entry `{}`: a bundle holds only `{INDEX_FILE}`, `{SIGNATURE_FILE}` and `{BLOB_PREFIX}<hex>`",
                    entry.name.escape_debug()
                )));
            };
            if contents.blobs.last_key_value().is_some_and(|(last, _)| *last >= digest) {
                return Err(invalid(format!("`{}` is duplicated or out of order", entry.name)));
            }
            contents.blobs.insert(digest, entry);
        }
        Ok(contents)
    }

    /// The data of a small entry, refused if larger than `limit`.
    fn read_small(&mut self, entry: &TarEntry, limit: u64) -> Result<Vec<u8>, Error> {
        if entry.size > limit {
            return Err(BundleError::Bundle {
                path: self.path.clone(),
                reason: format!("`{}` is {} bytes, more than the {limit} allowed", entry.name, entry.size),
            }
            .into());
        }
        let read_error = |source| Error::File(FileError::Read { path: self.path.clone(), source });
        self.file.seek(SeekFrom::Start(entry.offset)).map_err(read_error)?;
        let mut bytes = vec![0u8; entry.size as usize];
        self.file.read_exact(&mut bytes).map_err(read_error)?;
        Ok(bytes)
    }

    /// Every entry has its blob, every blob is referenced, and every blob
    /// hashes to its digest with the size its entries say.
    fn check_blobs(&mut self, entries: &[Entry]) -> Result<(), Error> {
        let invalid = |reason: String| Error::Bundle(BundleError::Bundle { path: self.path.clone(), reason });
        for entry in entries {
            if !self.blobs.contains_key(&entry.digest) {
                return Err(invalid(format!(
                    "the index pins `{}@{}` to `{}`, but the bundle has no such blob",
                    entry.name, entry.version, entry.digest
                )));
            }
        }
        let referenced: BTreeSet<Digest> = entries.iter().map(|e| e.digest).collect();
        if let Some(digest) = self.blobs.keys().find(|digest| !referenced.contains(digest)) {
            return Err(invalid(format!("blob `{digest}` is not referenced by the bundle's index")));
        }
        let mut buffer = vec![0u8; CHUNK];
        let blobs: Vec<(Digest, TarEntry)> = self.blobs.iter().map(|(d, e)| (*d, e.clone())).collect();
        for (digest, tar_entry) in blobs {
            let computed = self.copy_blob(&tar_entry, &mut buffer, None)?;
            for entry in entries.iter().filter(|e| e.digest == digest) {
                if computed != digest || tar_entry.size != entry.size {
                    return Err(BundleError::BundleBlobMismatch {
                        path: self.path.clone(),
                        expected: digest,
                        computed,
                        size: tar_entry.size,
                        expected_size: entry.size,
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Streams one blob's bytes from the bundle, hashing them and writing
    /// them to `to` if given; returns their digest.
    fn copy_blob(
        &mut self,
        entry: &TarEntry,
        buffer: &mut [u8],
        mut to: Option<&mut TempFile>,
    ) -> Result<Digest, Error> {
        let read_error = |source| Error::File(FileError::Read { path: self.path.clone(), source });
        self.file.seek(SeekFrom::Start(entry.offset)).map_err(read_error)?;
        let mut hasher = Hasher::default();
        let mut left = entry.size;
        while left > 0 {
            let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.file.read_exact(&mut buffer[..want]).map_err(read_error)?;
            hasher.update(&buffer[..want]);
            if let Some(to) = to.as_deref_mut() {
                to.write_all(&buffer[..want])?;
            }
            left -= want as u64;
        }
        Ok(hasher.finish().0)
    }
}

impl BlobSource for BundleContents {
    /// The blobs were all checked by [`BundleContents::check_blobs`].
    fn prepare(&mut self, _missing: &[Digest], _blob_dir: &Path) -> Result<(), Error> {
        Ok(())
    }

    /// Copies the blob out of the bundle, hashing it again: the bundle may
    /// have changed since it was checked.
    fn place(&mut self, digest: &Digest, path: &Path) -> Result<(), Error> {
        let entry = self.blobs.get(digest).cloned().ok_or_else(|| {
            Error::Bundle(BundleError::Bundle {
                path: self.path.clone(),
                reason: format!("blob `{digest}` is not in the bundle"),
            })
        })?;
        let mut temp = TempFile::create(path)?;
        let mut buffer = vec![0u8; CHUNK];
        let computed = self.copy_blob(&entry, &mut buffer, Some(&mut temp))?;
        if computed != *digest {
            return Err(BundleError::BundleBlobMismatch {
                path: self.path.clone(),
                expected: *digest,
                computed,
                size: entry.size,
                expected_size: entry.size,
            }
            .into());
        }
        temp.sync()?;
        Ok(temp.rename()?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{AcceptedSerials, OnSigned, SigningKey};
    use std::time::Duration;

    const WORLD: &str = "backout:step/plugin@0.1.0";

    /// Every file under `dir` (relative path → bytes), directories included
    /// as empty markers: a byte-for-byte picture of a registry.
    pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(current) = pending.pop() {
            let Ok(entries) = fs::read_dir(&current) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(dir).unwrap().to_owned();
                if path.is_dir() {
                    files.insert(relative, None);
                    pending.push(path);
                } else {
                    files.insert(relative, Some(fs::read(&path).unwrap()));
                }
            }
        }
        files
    }

    /// A publisher registry with two plugins, signed by a fresh key.
    struct Publisher {
        _dir: tempfile::TempDir,
        registry: Registry,
        key: SigningKey,
        trust: TrustStore,
    }

    fn publisher() -> Publisher {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::open_or_init(&dir.path().join("registry")).unwrap();
        registry.add("env-toggle", "1.0.0", WORLD, b"\0asm env-toggle 1.0.0").unwrap();
        registry.add("sqlite-restore", "0.3.0", WORLD, &vec![42u8; 3000]).unwrap();
        let key = SigningKey::generate().unwrap();
        registry.sign(&key, None).unwrap();
        let mut trust = TrustStore::default();
        trust.add("acme", key.public()).unwrap();
        Publisher { _dir: dir, registry, key, trust }
    }

    fn export(registry: &Registry) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar");
        registry.export(&path).unwrap();
        (dir, path)
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn exporting_twice_gives_identical_bytes() {
        let publisher = publisher();
        let (_a, first) = export(&publisher.registry);
        let (_b, second) = export(&publisher.registry);
        let bytes = fs::read(&first).unwrap();
        assert_eq!(bytes, fs::read(&second).unwrap());
        assert_eq!(bytes.len() % 512, 0);

        // A copy of the registry elsewhere, made later, exports the same bytes.
        let copy = tempfile::tempdir().unwrap();
        for (relative, content) in snapshot(publisher.registry.root()) {
            let target = copy.path().join(relative);
            match content {
                None => fs::create_dir_all(target).unwrap(),
                Some(bytes) => {
                    fs::create_dir_all(target.parent().unwrap()).unwrap();
                    fs::write(target, bytes).unwrap();
                }
            }
        }
        let (_c, third) = export(&Registry::open(copy.path()).unwrap());
        assert_eq!(bytes, fs::read(&third).unwrap());

        let names: Vec<String> = tar::read_entries(&mut File::open(&first).unwrap(), bytes.len() as u64)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names[..2], ["index.toml", "index.toml.sig"]);
        assert_eq!(names.len(), 4);
        assert!(names[2] < names[3] && names[2].starts_with("blobs/sha256/"));
    }

    #[test]
    fn a_round_trip_into_an_empty_directory_verifies_and_is_trusted() {
        let publisher = publisher();
        let (_bundle_dir, bundle) = export(&publisher.registry);
        let target = tempfile::tempdir().unwrap();
        let root = target.path().join("air-gapped");

        let report = Registry::import(&root, &bundle, &publisher.trust, None, now()).unwrap();
        assert_eq!(report.serial, publisher.registry.serial());
        assert_eq!(report.added_blobs.len(), 2);
        assert_eq!(report.entries, publisher.registry.entries());
        assert!(!report.unchanged);
        let key = publisher.key.public();
        assert_eq!(report.trusted, Trusted::Signed { key_name: "acme".into(), key, serial: report.serial });

        let imported = Registry::open(&root).unwrap();
        assert_eq!(imported.index_bytes(), publisher.registry.index_bytes());
        assert!(imported.verify().unwrap().is_clean());
        let trusted = imported.check_trust(&publisher.trust, Some(report.serial), now()).unwrap();
        assert!(matches!(trusted, Trusted::Signed { serial, .. } if serial == report.serial));

        // The same bundle again is a no-op.
        let before = snapshot(&root);
        let again = Registry::import(&root, &bundle, &publisher.trust, Some(report.serial), now()).unwrap();
        assert!(again.unchanged && again.added_blobs.is_empty() && again.repaired_blobs.is_empty());
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn importing_the_same_bundle_again_heals_a_deleted_and_a_corrupt_blob() {
        let publisher = publisher();
        let (_bundle_dir, bundle) = export(&publisher.registry);
        let target = tempfile::tempdir().unwrap();
        let root = target.path().join("air-gapped");
        let serial = Registry::import(&root, &bundle, &publisher.trust, None, now()).unwrap().serial;
        let healthy = snapshot(&root);
        let registry = Registry::open(&root).unwrap();
        let (first, second) = (registry.entries()[0].digest, registry.entries()[1].digest);
        fs::remove_file(registry.blob_path(&first)).unwrap();
        fs::write(registry.blob_path(&second), b"bit rot").unwrap();

        let report = Registry::import(&root, &bundle, &publisher.trust, Some(serial), now()).unwrap();
        assert!(report.unchanged, "the index was already this one");
        assert_eq!((report.added_blobs, report.repaired_blobs), (vec![first], vec![second]));
        assert_eq!(snapshot(&root), healthy, "byte for byte as imported, no temporary left");
        assert!(Registry::open(&root).unwrap().verify().unwrap().is_clean());
    }

    #[test]
    fn a_bundle_with_one_corrupt_blob_admits_nothing() {
        let mut publisher = publisher();
        let (_old_dir, old_bundle) = export(&publisher.registry);
        let target = tempfile::tempdir().unwrap();
        let root = target.path().join("air-gapped");
        Registry::import(&root, &old_bundle, &publisher.trust, None, now()).unwrap();

        // A newer publication with a new plugin; one bit of its blob flips in transit.
        let new_blob = vec![9u8; 5000];
        publisher.registry.add_with("new-step", "0.1.0", WORLD, &new_blob, OnSigned::Unsign).unwrap();
        publisher.registry.sign(&publisher.key, None).unwrap();
        let (_new_dir, bundle) = export(&publisher.registry);
        let mut bytes = fs::read(&bundle).unwrap();
        let at = bytes.windows(64).position(|w| w == &new_blob[..64]).unwrap();
        bytes[at + 100] ^= 0x01;
        fs::write(&bundle, &bytes).unwrap();

        let before = snapshot(&root);
        let err = Registry::import(&root, &bundle, &publisher.trust, None, now()).unwrap_err();
        match &err {
            Error::Bundle(BundleError::BundleBlobMismatch { path, expected, size, expected_size, .. }) => {
                assert_eq!(*path, bundle);
                assert_eq!(*expected, Digest::of(&new_blob));
                assert_eq!((*size, *expected_size), (5000, 5000));
            }
            other => panic!("expected BundleBlobMismatch, got {other:?}"),
        }
        assert!(err.to_string().contains("is corrupt: computed"), "{err}");
        assert_eq!(snapshot(&root), before, "the registry is byte for byte unchanged");
    }

    #[test]
    fn a_truncated_bundle_is_refused() {
        let publisher = publisher();
        let (_dir, bundle) = export(&publisher.registry);
        let bytes = fs::read(&bundle).unwrap();
        let target = tempfile::tempdir().unwrap();
        for cut in [0, 700, bytes.len() - 1024 - 100, bytes.len() - 512] {
            fs::write(&bundle, &bytes[..cut]).unwrap();
            let err = Registry::import(target.path(), &bundle, &publisher.trust, None, now()).unwrap_err();
            assert!(
                matches!(&err, Error::Bundle(BundleError::Bundle { path, reason }) if *path == bundle && (reason.contains("truncated") || reason.contains("empty"))),
                "cut at {cut}: {err:?}"
            );
        }
        assert!(snapshot(target.path()).is_empty(), "nothing was written");
    }

    fn hand_made_bundle(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hand-made.tar");
        let mut out = Vec::new();
        for (name, bytes) in files {
            append(&mut out, name, bytes).unwrap();
        }
        out.extend_from_slice(&END);
        fs::write(&path, out).unwrap();
        (dir, path)
    }

    #[test]
    fn a_bundle_with_other_paths_is_refused() {
        let publisher = publisher();
        let index = publisher.registry.index_bytes();
        let target = tempfile::tempdir().unwrap();
        for evil in ["../evil", "/etc/passwd", "blobs/sha256/../../index.toml", "blobs/sha256/ABC", "index.toml"] {
            let (_dir, bundle) = hand_made_bundle(&[("index.toml", index), (evil, b"x")]);
            let err = Registry::import(target.path(), &bundle, &TrustStore::default(), None, now()).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&format!("unexpected entry `{evil}`")), "{evil}: {message}");
        }
        let (_dir, bundle) = hand_made_bundle(&[("../evil", b"x"), ("index.toml", index)]);
        let message = Registry::import(target.path(), &bundle, &TrustStore::default(), None, now()).unwrap_err();
        assert!(message.to_string().contains("the first entry must be `index.toml`, found `../evil`"), "{message}");
        assert!(snapshot(target.path()).is_empty(), "nothing was written");
    }

    #[test]
    fn a_bundle_missing_a_blob_or_with_an_extra_one_is_refused() {
        let publisher = publisher();
        let index = publisher.registry.index_bytes();
        let target = tempfile::tempdir().unwrap();
        let (_dir, bundle) = hand_made_bundle(&[("index.toml", index)]);
        let message = Registry::import(target.path(), &bundle, &TrustStore::default(), None, now()).unwrap_err();
        assert!(message.to_string().contains("but the bundle has no such blob"), "{message}");

        let stray = format!("blobs/sha256/{}", Digest::of(b"stray").hex());
        let (_dir, bundle) = hand_made_bundle(&[("index.toml", b"format = 1\nserial = 1\n"), (&stray, b"stray")]);
        let message = Registry::import(target.path(), &bundle, &TrustStore::default(), None, now()).unwrap_err();
        assert!(message.to_string().contains("is not referenced by the bundle's index"), "{message}");
    }

    #[test]
    fn an_older_bundle_is_a_rollback_and_a_forked_one_is_refused() {
        let mut publisher = publisher();
        let (_old_dir, old_bundle) = export(&publisher.registry);
        let old_serial = publisher.registry.serial();
        publisher.registry.remove_with("env-toggle", "1.0.0", OnSigned::Unsign).unwrap();
        publisher.registry.sign(&publisher.key, None).unwrap();
        let (_new_dir, new_bundle) = export(&publisher.registry);

        let target = tempfile::tempdir().unwrap();
        let report = Registry::import(target.path(), &new_bundle, &publisher.trust, None, now()).unwrap();
        assert_eq!(report.entries.len(), 1);

        let before = snapshot(target.path());
        // Even without any accepted serial on record, the registry's own serial counts.
        let err = Registry::import(target.path(), &old_bundle, &publisher.trust, None, now()).unwrap_err();
        assert!(
            matches!(err, Error::Trust(TrustError::Rollback { accepted, found }) if accepted == report.serial && found == old_serial),
            "{err:?}"
        );
        // And with the host's memory, the policy refuses it before looking at the registry.
        let other = tempfile::tempdir().unwrap();
        let mut accepted = AcceptedSerials::default();
        accepted.record(other.path(), &publisher.key.public(), report.serial);
        let floor = accepted.floor(other.path(), &publisher.key.public());
        let err = Registry::import(other.path(), &old_bundle, &publisher.trust, floor, now()).unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::Rollback { .. })), "{err:?}");

        // Same serial, other bytes: a fork.
        let fork_dir = tempfile::tempdir().unwrap();
        let mut fork = Registry::open_or_init(fork_dir.path()).unwrap();
        while fork.serial() + 1 < report.serial {
            fork.add("fork", &format!("0.0.{}", fork.serial()), WORLD, b"fork").unwrap();
        }
        fork.sign(&publisher.key, None).unwrap();
        let (_fork_bundle_dir, fork_bundle) = export(&fork);
        let err = Registry::import(target.path(), &fork_bundle, &publisher.trust, None, now()).unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::SerialReused { serial }) if serial == report.serial), "{err:?}");
        assert_eq!(snapshot(target.path()), before);
    }

    #[test]
    fn an_import_follows_the_signature_policy() {
        let publisher = publisher();
        let (_dir, bundle) = export(&publisher.registry);
        let target = tempfile::tempdir().unwrap();

        let mut stranger = TrustStore::default();
        stranger.add("stranger", SigningKey::generate().unwrap().public()).unwrap();
        let err = Registry::import(target.path(), &bundle, &stranger, None, now()).unwrap_err();
        assert!(
            matches!(err, Error::Trust(TrustError::UntrustedKey { key }) if key == publisher.key.public()),
            "{err:?}"
        );

        // Dropping the signature from the bundle makes it unsigned.
        let (_dir, unsigned) = hand_made_bundle(&[("index.toml", publisher.registry.index_bytes())]);
        let err = Registry::import(target.path(), &unsigned, &publisher.trust, None, now()).unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::Unsigned { .. })), "{err:?}");

        // An expired publication.
        let mut expiring = crate::bundle::tests::publisher();
        expiring.registry.sign(&expiring.key, Some(now() + Duration::from_secs(60))).unwrap();
        let (_dir, bundle) = export(&expiring.registry);
        let later = now() + Duration::from_secs(3600);
        let err = Registry::import(target.path(), &bundle, &expiring.trust, None, later).unwrap_err();
        assert!(matches!(err, Error::Trust(TrustError::Expired { .. })), "{err:?}");
        assert!(snapshot(target.path()).is_empty(), "nothing was written");
    }

    #[test]
    fn export_refuses_a_corrupt_blob() {
        let publisher = publisher();
        let entry = publisher.registry.find("sqlite-restore", "0.3.0").unwrap().clone();
        fs::write(publisher.registry.blob_path(&entry.digest), vec![42u8; 2999]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("bundle.tar");
        let err = publisher.registry.export(&to).unwrap_err();
        assert!(
            matches!(err, Error::Bundle(BundleError::BundleBlobMismatch { size: 2999, expected_size: 3000, .. })),
            "{err:?}"
        );
        assert!(snapshot(dir.path()).is_empty(), "no partial bundle is left");
    }
    #[test]
    fn a_failure_after_writing_began_removes_what_was_added() {
        let mut publisher = publisher();
        let (_old_dir, old_bundle) = export(&publisher.registry);
        let target = tempfile::tempdir().unwrap();
        let root = target.path();
        Registry::import(root, &old_bundle, &publisher.trust, None, now()).unwrap();
        // Sabotage: the signature's place is taken by a directory, so the
        // import fails after the new blob is already in place.
        fs::remove_file(root.join("index.toml.sig")).unwrap();
        fs::create_dir_all(root.join("index.toml.sig/in-the-way")).unwrap();

        publisher.registry.add_with("new-step", "0.1.0", WORLD, b"new blob", OnSigned::Unsign).unwrap();
        publisher.registry.sign(&publisher.key, None).unwrap();
        let (_new_dir, bundle) = export(&publisher.registry);
        let before = snapshot(root);
        let err = Registry::import(root, &bundle, &publisher.trust, None, now()).unwrap_err();
        assert!(
            matches!(&err, Error::File(FileError::Read { path, .. }) if *path == root.join("index.toml.sig")),
            "{err:?}"
        );
        assert_eq!(snapshot(root), before, "the new blob and every temporary were removed");
    }
}

/// What is wrong with a bundle, or with a blob on its way into one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A bundle that is not exactly what [`Registry::export`] writes.
    #[error("invalid bundle `{}`: {reason}", .path.display())]
    Bundle { path: PathBuf, reason: String },

    /// A blob in a bundle (or one being exported) whose bytes or size do not
    /// match the index; `path` is the bundle (or the blob file).
    #[error(
        "blob `{expected}` in `{}` is corrupt: computed `{computed}` over {}, expected {}",
        .path.display(),
        crate::text::count(*.size as usize, "byte"),
        crate::text::count(*.expected_size as usize, "byte")
    )]
    BundleBlobMismatch { path: PathBuf, expected: Digest, computed: Digest, size: u64, expected_size: u64 },

    /// A blob too large for the bundle format (8 GiB).
    #[error("blob `{digest}` is too large for a bundle: {size} bytes")]
    BlobTooLarge { digest: Digest, size: u64 },
}
