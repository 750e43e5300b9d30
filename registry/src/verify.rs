//! `registry verify`: rehash every blob, check the index's signature, serial
//! and expiry, and say what is wrong.
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

use std::time::SystemTime;

use crate::digest::Hasher;
use crate::registry::{SIGNATURE_FILE, blob_dir, blob_name_digest, list_dir, read_small};
use crate::signing::{IndexSignature, MAX_SIGNATURE_FILE};
use crate::time::{parse_utc, unix_seconds};
use crate::{AcceptedSerials, Digest, Entry, Error, PublicKey, Registry, TrustStore, Trusted};
use crate::{FileError, TrustError};

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
            "`{}@{}`: `{}` has digest `{}` and {}, expected `{}` and {}",
            self.entry.name,
            self.entry.version,
            self.path.display(),
            self.computed,
            crate::text::count(self.size as usize, "byte"),
            self.entry.digest,
            crate::text::count(self.entry.size as usize, "byte")
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

/// What [`Registry::check_index`] found about the index itself: its
/// signature, serial and expiry, checked whether or not this host trusts a
/// key (an edited or expired index is a problem either way).
#[derive(Debug)]
pub struct IndexReport {
    pub serial: u64,
    /// The lowest serial this host accepts for this registry and key, when
    /// the signature verifies and one is recorded.
    pub accepted_serial: Option<u64>,
    pub signature: SignatureState,
    /// `expires` from the index, if it sets one.
    pub expires: Option<String>,
    /// Seconds from the check until `expires` (negative once expired).
    pub expires_in_seconds: Option<i64>,
    /// `signed` from the index, if it records one.
    pub signed: Option<String>,
    /// The host's signature policy's verdict: what `plan` would decide.
    pub trust: Result<Trusted, Error>,
    /// Every problem, each once: an invalid signature, an expired index, a
    /// serial below the accepted one, and the policy's refusal when it is
    /// not one of these.
    pub problems: Vec<Error>,
}

/// Whether `index.toml.sig` is there and covers the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureState {
    /// No `index.toml.sig`.
    Unsigned,
    /// It verifies over the exact index bytes, with `key` (trusted or not:
    /// that is [`IndexReport::trust`]'s question).
    Valid { key: PublicKey },
    /// It does not parse, or does not cover the index (edited after signing).
    Invalid { key: Option<PublicKey> },
}

impl Registry {
    /// Checks this snapshot's index: the signature (over the exact bytes
    /// read), the serial against what `accepted` remembers, `expires`
    /// against `now`, and `trust`'s policy. Never fails for what it finds;
    /// an error means the signature file could not be read.
    pub fn check_index(
        &self,
        trust: &TrustStore,
        accepted: &AcceptedSerials,
        now: SystemTime,
    ) -> Result<IndexReport, Error> {
        let signature_path = self.root.join(SIGNATURE_FILE);
        let mut problems = Vec::new();
        let signature = match read_small(&signature_path, MAX_SIGNATURE_FILE)? {
            None => SignatureState::Unsigned,
            Some(bytes) => match IndexSignature::parse(&bytes, &signature_path) {
                Ok(signature) if signature.covers(&self.raw) => SignatureState::Valid { key: signature.key },
                Ok(signature) => {
                    problems.push(Error::Trust(TrustError::BadSignature {
                        path: signature_path.clone(),
                        key: signature.key,
                    }));
                    SignatureState::Invalid { key: Some(signature.key) }
                }
                Err(e) => {
                    problems.push(e.into());
                    SignatureState::Invalid { key: None }
                }
            },
        };
        let expires_in_seconds = self.index.expires.as_deref().and_then(parse_utc).map(|at| at - unix_seconds(now));
        if let Some(expires) = &self.index.expires
            && expires_in_seconds.is_none_or(|left| left <= 0)
        {
            problems.push(Error::Trust(TrustError::Expired { expires: expires.clone() }));
        }
        let accepted_serial = match &signature {
            SignatureState::Valid { key } => accepted.floor(&self.root, key),
            _ => None,
        };
        if let Some(floor) = accepted_serial.filter(|floor| self.index.serial < *floor) {
            problems.push(Error::Trust(TrustError::Rollback { accepted: floor, found: self.index.serial }));
        }
        let verdict = self.check_trust_accepted(trust, accepted, now);
        if let Err(refused) = &verdict
            && !problems.iter().any(|p| std::mem::discriminant(p) == std::mem::discriminant(refused))
        {
            // Errors are not `Clone` (they may hold an `io::Error`): ask again.
            if let Err(again) = self.check_trust_accepted(trust, accepted, now) {
                problems.push(again);
            }
        }
        let trust = verdict;
        Ok(IndexReport {
            serial: self.index.serial,
            accepted_serial,
            signature,
            expires: self.index.expires.clone(),
            expires_in_seconds,
            signed: self.index.signed.clone(),
            trust,
            problems,
        })
    }
}

/// The digest and size of the file at `path`, read in chunks into `buffer`;
/// `None` if it does not exist.
pub(crate) fn hash_file(path: &Path, buffer: &mut [u8]) -> Result<Option<(Digest, u64)>, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::File(FileError::Read { path: path.to_owned(), source })),
    };
    let mut hasher = Hasher::default();
    loop {
        match file.read(buffer) {
            Ok(0) => return Ok(Some(hasher.finish())),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::File(FileError::Read { path: path.to_owned(), source })),
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
    fn the_index_check_finds_an_edit_an_expiry_and_a_rollback_with_or_without_trust() {
        let (_dir, mut registry) = registry();
        let key = crate::SigningKey::generate().unwrap();
        let now = SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let none = (TrustStore::default(), AcceptedSerials::default());
        let mut trusted = TrustStore::default();
        trusted.add("acme", key.public()).unwrap();

        // Unsigned and untrusted: nothing to say.
        let report = registry.check_index(&none.0, &none.1, now).unwrap();
        assert_eq!(report.signature, SignatureState::Unsigned);
        assert!(report.problems.is_empty() && matches!(report.trust, Ok(Trusted::NotConfigured)), "{report:?}");

        // Signed, expiring in 3 days: valid, and the time left is told.
        registry.sign(&key, Some(now + 3 * day)).unwrap();
        let report = registry.check_index(&trusted, &none.1, now).unwrap();
        assert_eq!(report.signature, SignatureState::Valid { key: key.public() });
        assert!(report.problems.is_empty(), "{report:?}");
        assert!(report.expires_in_seconds.is_some_and(|s| (3 * 86_400 - 5..=3 * 86_400).contains(&s)), "{report:?}");

        // Hand-edited: a problem even where no key is trusted.
        let path = registry.root().join("index.toml");
        let edited = fs::read_to_string(&path).unwrap().replace("size = 6", "size = 7");
        fs::write(&path, edited).unwrap();
        let edited = Registry::open(registry.root()).unwrap();
        let report = edited.check_index(&none.0, &none.1, now).unwrap();
        assert!(matches!(report.signature, SignatureState::Invalid { key: Some(_) }), "{report:?}");
        assert!(matches!(report.problems[..], [Error::Trust(TrustError::BadSignature { .. })]), "{report:?}");
        assert!(report.trust.is_ok(), "no key is trusted: the policy itself accepts it");
        let report = edited.check_index(&trusted, &none.1, now).unwrap();
        assert!(
            matches!(report.problems[..], [Error::Trust(TrustError::BadSignature { .. })]),
            "reported once: {report:?}"
        );

        // Expired, and older than what this host accepted.
        registry.sign(&key, Some(now - day)).unwrap();
        let mut accepted = AcceptedSerials::default();
        accepted.record(registry.root(), &key.public(), registry.serial() + 1);
        let report = registry.check_index(&none.0, &accepted, now).unwrap();
        assert!(
            matches!(
                report.problems[..],
                [Error::Trust(TrustError::Expired { .. }), Error::Trust(TrustError::Rollback { .. })]
            ),
            "{:?}",
            report.problems
        );
        let report = registry.check_index(&trusted, &accepted, now).unwrap();
        assert_eq!(report.problems.len(), 2, "the policy's refusal is one of them: {:?}", report.problems);
        assert!(matches!(report.trust, Err(Error::Trust(TrustError::Expired { .. }))), "{:?}", report.trust);
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
