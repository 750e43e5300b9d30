//! Which publishers a host trusts, and what it has already accepted from them.
//!
//! Trust file (its location is the CLI's choice; `--trust FILE`):
//!
//! ```toml
//! format = 1
//! require_signed = true         # optional: refuse any index that cannot be verified
//! max_index_age_days = 180      # optional: the oldest `signed` accepted when `expires` is absent
//!
//! [[key]]
//! name = "acme"                 # shown in messages; printable ascii, unique
//! public = "ed25519:<64 hex>"   # from `backout key generate`, unique
//! ```
//!
//! No `[[key]]` at all means signatures are not checked (a registry built
//! and used on one machine), unless `require_signed` is set: then every
//! index is refused, since none can be verified. Once one key is listed,
//! every index must be signed by a listed key, must not be older than what
//! this host accepted for the same registry before (rollback) and must not
//! have expired (freeze); an index without `expires` must have been signed
//! within `max_index_age_days`; see
//! [`Registry::check_trust`](crate::Registry::check_trust).
//!
//! Accepted-serials file (kept by the host in its state directory; updated
//! under a lock after each accepted index, see [`AcceptedSerials::update`]):
//!
//! ```toml
//! format = 2
//!
//! [[registry]]
//! path = "/var/lib/backout/registry"   # canonical path of the registry
//! serial = 7
//!
//! [[publisher]]
//! key = "ed25519:<64 hex>"
//! serial = 7
//! ```
//!
//! Serials are kept per registry and per key, and an index must reach both
//! floors: per registry, so that with two trusted keys an old index signed
//! by the other key is still refused; per key, so that an old index of one
//! publisher is refused in a registry this host never used before.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::FileError;
use crate::format::FormatError;
use crate::fsio::{create_dir_durable, write_atomic};
use crate::index::Index;
use crate::signing::{IndexSignature, PublicKey};
use crate::time::{parse_utc, unix_seconds};
use crate::validate::validate_label;

const TRUST_FORMAT: i64 = 1;
const ACCEPTED_FORMAT: i64 = 2;
/// Accepted-serials files written before serials were kept per registry.
const ACCEPTED_FORMAT_PER_KEY: i64 = 1;
/// The default oldest `signed` accepted when an index sets no `expires`.
pub const DEFAULT_MAX_INDEX_AGE_DAYS: u32 = 180;

/// The publisher keys a host trusts, each with a name for messages, and how
/// strict the host is about signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
    require_signed: bool,
    max_index_age_days: u32,
}

impl Default for TrustStore {
    fn default() -> TrustStore {
        TrustStore { keys: Vec::new(), require_signed: false, max_index_age_days: DEFAULT_MAX_INDEX_AGE_DAYS }
    }
}

/// One trusted publisher key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    pub name: String,
    pub public: PublicKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    format: i64,
    #[serde(default)]
    require_signed: bool,
    #[serde(default)]
    max_index_age_days: Option<u32>,
    #[serde(default, rename = "key")]
    keys: Vec<TrustedKey>,
}

impl TrustStore {
    /// Reads and validates a trust file. Unknown keys, another `format`, an
    /// invalid public key, and duplicate names or keys are errors.
    pub fn load(path: &Path) -> Result<TrustStore, Error> {
        let text = fs::read_to_string(path).map_err(|source| FileError::Read { path: path.to_owned(), source })?;
        TrustStore::parse(&text, path)
    }

    /// Parses and validates the text of a trust file, as [`TrustStore::load`]
    /// does once it has read it; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<TrustStore, Error> {
        let file: TrustFile = toml::from_str(text).map_err(|e| {
            Error::TrustFile(TrustFileError::Format(FormatError::Parse {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            }))
        })?;
        if file.format != TRUST_FORMAT {
            return Err(TrustFileError::Format(FormatError::Unsupported {
                path: path.to_owned(),
                found: file.format,
                supported: TRUST_FORMAT,
            })
            .into());
        }
        let max_index_age_days = file.max_index_age_days.unwrap_or(DEFAULT_MAX_INDEX_AGE_DAYS);
        if max_index_age_days == 0 {
            return Err(TrustFileError::InvalidTrust {
                path: path.to_owned(),
                reason: "`max_index_age_days` must be at least 1".to_owned(),
            }
            .into());
        }
        let mut store = TrustStore { require_signed: file.require_signed, max_index_age_days, ..TrustStore::default() };
        for key in file.keys {
            store.add(&key.name, key.public).map_err(|e| match e {
                Error::TrustFile(TrustFileError::InvalidTrust { reason, .. }) => {
                    Error::TrustFile(TrustFileError::InvalidTrust { path: path.to_owned(), reason })
                }
                other => {
                    Error::TrustFile(TrustFileError::InvalidTrust { path: path.to_owned(), reason: other.to_string() })
                }
            })?;
        }
        Ok(store)
    }

    /// Adds a trusted key (for callers that build a store in code).
    pub fn add(&mut self, name: &str, public: PublicKey) -> Result<(), Error> {
        let invalid =
            |reason: String| Error::TrustFile(TrustFileError::InvalidTrust { path: Default::default(), reason });
        validate_label("key name", name)?;
        if self.keys.iter().any(|k| k.name == name) {
            return Err(invalid(format!("the name `{name}` is used twice")));
        }
        if let Some(other) = self.keys.iter().find(|k| k.public == public) {
            return Err(invalid(format!("`{public}` is listed twice, as `{}` and `{name}`", other.name)));
        }
        self.keys.push(TrustedKey { name: name.to_owned(), public });
        Ok(())
    }

    /// No keys: signatures are not checked (or, with
    /// [`TrustStore::requires_signatures`], every index is refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Refuse every index that cannot be verified, whatever the trust file
    /// says (the CLI's `--require-signed`).
    pub fn require_signatures(&mut self) {
        self.require_signed = true;
    }

    /// Whether an index that cannot be verified is refused: set by
    /// `require_signed = true` in the trust file or `--require-signed`.
    pub fn requires_signatures(&self) -> bool {
        self.require_signed
    }

    /// The oldest `signed` time accepted for an index that sets no
    /// `expires`, in days.
    pub fn max_index_age_days(&self) -> u32 {
        self.max_index_age_days
    }

    /// The trusted keys, in file order.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The name under which `key` is trusted.
    pub fn name_of(&self, key: &PublicKey) -> Option<&str> {
        self.keys.iter().find(|k| k.public == *key).map(|k| k.name.as_str())
    }
}

/// The outcome of a successful trust check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// The trust store is empty: nothing was checked.
    NotConfigured,
    /// Signed by a trusted key, not older than accepted, not expired. Record
    /// `serial` for `key` in [`AcceptedSerials`] once the index is used.
    Signed { key_name: String, key: PublicKey, serial: u64 },
}

/// The signature policy, over index bytes read once: the very bytes that
/// were parsed into `index` are the ones the signature must cover.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_policy(
    index: &Index,
    index_bytes: &[u8],
    index_path: &Path,
    signature: Option<(&[u8], &Path)>,
    trust: &TrustStore,
    accepted_serial: Option<u64>,
    now: SystemTime,
) -> Result<Trusted, Error> {
    if trust.is_empty() {
        if trust.requires_signatures() {
            return Err(
                TrustError::SignatureRequired { path: index_path.to_owned(), signed: signature.is_some() }.into()
            );
        }
        return Ok(Trusted::NotConfigured);
    }
    let Some((signature_bytes, signature_path)) = signature else {
        return Err(TrustError::Unsigned { path: index_path.to_owned() }.into());
    };
    let signature = IndexSignature::parse(signature_bytes, signature_path)?;
    if !signature.covers(index_bytes) {
        return Err(TrustError::BadSignature { path: signature_path.to_owned(), key: signature.key }.into());
    }
    let Some(key_name) = trust.name_of(&signature.key) else {
        return Err(TrustError::UntrustedKey { key: signature.key }.into());
    };
    if let Some(accepted) = accepted_serial.filter(|&accepted| index.serial < accepted) {
        return Err(TrustError::Rollback { accepted, found: index.serial }.into());
    }
    if let Some(expires) = &index.expires {
        // Validated when the index was parsed; an unparsable one is expired.
        if parse_utc(expires).is_none_or(|at| at <= unix_seconds(now)) {
            return Err(TrustError::Expired { expires: expires.clone() }.into());
        }
    } else if let Some(signed) = &index.signed {
        let max_days = trust.max_index_age_days();
        let oldest = unix_seconds(now).saturating_sub(i64::from(max_days) * 86_400);
        if parse_utc(signed).is_none_or(|at| at < oldest) {
            return Err(TrustError::TooOld { signed: signed.clone(), max_days }.into());
        }
    } else if trust.requires_signatures() {
        return Err(TrustError::AgeUnknown.into());
    }
    Ok(Trusted::Signed { key_name: key_name.to_owned(), key: signature.key, serial: index.serial })
}

/// The highest index serial a host has accepted for each registry and from
/// each publisher key: its defence against an older signed index being
/// replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedSerials {
    /// By the registry's canonical path, whichever key signed.
    registries: BTreeMap<PathBuf, u64>,
    /// By the signing key, whichever registry (all a format 1 file holds).
    per_key: BTreeMap<PublicKey, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedFile {
    format: i64,
    #[serde(default, rename = "registry", skip_serializing_if = "Vec::is_empty")]
    registries: Vec<RegistryEntry>,
    #[serde(default, rename = "publisher", skip_serializing_if = "Vec::is_empty")]
    publishers: Vec<PublisherEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryEntry {
    path: PathBuf,
    serial: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublisherEntry {
    key: PublicKey,
    serial: u64,
}

/// The name a registry's serial is kept under: its canonical path (the
/// absolute path while it does not exist yet, before an import creates it),
/// so `./registry` and `/srv/../srv/registry` are one registry.
fn registry_id(root: &Path) -> PathBuf {
    fs::canonicalize(root).or_else(|_| std::path::absolute(root)).unwrap_or_else(|_| root.to_owned())
}

impl AcceptedSerials {
    /// Reads the file at `path`; a missing file is an empty memory (a host
    /// that has accepted nothing yet). A format 1 file holds serials per key
    /// only.
    pub fn load(path: &Path) -> Result<AcceptedSerials, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AcceptedSerials::default()),
            Err(source) => return Err(Error::File(FileError::Read { path: path.to_owned(), source })),
        };
        let file: AcceptedFile = toml::from_str(&text).map_err(|e| {
            Error::TrustFile(TrustFileError::Format(FormatError::Parse {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            }))
        })?;
        let unsupported = |found| {
            Error::TrustFile(TrustFileError::Format(FormatError::Unsupported {
                path: path.to_owned(),
                found,
                supported: ACCEPTED_FORMAT,
            }))
        };
        match file.format {
            ACCEPTED_FORMAT => {}
            ACCEPTED_FORMAT_PER_KEY if file.registries.is_empty() => {}
            found => return Err(unsupported(found)),
        }
        let mut accepted = AcceptedSerials::default();
        for entry in file.registries {
            let serial = accepted.registries.entry(entry.path).or_insert(entry.serial);
            *serial = (*serial).max(entry.serial);
        }
        for entry in file.publishers {
            let serial = accepted.per_key.entry(entry.key).or_insert(entry.serial);
            *serial = (*serial).max(entry.serial);
        }
        Ok(accepted)
    }

    /// The lowest serial acceptable for the registry at `root` signed by
    /// `key`: the highest accepted for that registry or from that key,
    /// whichever is higher.
    pub fn floor(&self, root: &Path, key: &PublicKey) -> Option<u64> {
        let by_registry = self.registries.get(&registry_id(root)).copied();
        let by_key = self.per_key.get(key).copied();
        by_registry.max(by_key)
    }

    /// Remembers that `serial`, signed by `key`, was accepted for the
    /// registry at `root`; never lowers what is remembered.
    pub fn record(&mut self, root: &Path, key: &PublicKey, serial: u64) {
        let remembered = self.registries.entry(registry_id(root)).or_insert(serial);
        *remembered = (*remembered).max(serial);
        let remembered = self.per_key.entry(*key).or_insert(serial);
        *remembered = (*remembered).max(serial);
    }

    /// Records `serial`, signed by `key`, for the registry at `root` in the
    /// file at `path`:
    /// load, record, save, all under an exclusive lock on `<path>.lock`, so
    /// two backouts accepting at once never lose (or lower) a serial.
    pub fn update(path: &Path, root: &Path, key: &PublicKey, serial: u64) -> Result<(), Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_durable(dir)?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| FileError::Lock { path: lock_path.clone(), source })?;
        lock.lock().map_err(|source| FileError::Lock { path: lock_path, source })?;
        let mut accepted = AcceptedSerials::load(path)?;
        accepted.record(root, key, serial);
        accepted.save(path)
    }

    /// Writes the file atomically (temp + fsync + rename + fsync directory),
    /// creating its directory if needed. Entries are sorted, so the same
    /// memory always has the same bytes.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let file = AcceptedFile {
            format: ACCEPTED_FORMAT,
            registries: self
                .registries
                .iter()
                .map(|(path, &serial)| RegistryEntry { path: path.clone(), serial })
                .collect(),
            publishers: self.per_key.iter().map(|(key, &serial)| PublisherEntry { key: *key, serial }).collect(),
        };
        let text = toml::to_string(&file).map_err(|e| {
            Error::TrustFile(TrustFileError::Format(FormatError::Serialize {
                path: path.to_owned(),
                message: e.to_string(),
            }))
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_durable(dir)?;
        }
        Ok(write_atomic(path, text.as_bytes())?)
    }
}

/// What is wrong with a trust file or an accepted-serials file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFileError {
    /// Not valid TOML or not the format.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// A trust file that parses but is inconsistent (a duplicate name or key).
    #[error("invalid trust file `{}`: {reason}", .path.display())]
    InvalidTrust { path: PathBuf, reason: String },
}

/// Why the signature policy refuses an index. Each refusal has its own
/// [`hint`](TrustError::hint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Trusted keys are configured but the index has no `index.toml.sig`.
    #[error(
        "`{}` is not signed (no `index.toml.sig`) and trusted keys are configured: ask the publisher for a signed index",
        .path.display()
    )]
    Unsigned { path: PathBuf },

    /// The signature does not verify over the exact bytes of the index: the
    /// index was changed after signing (or the signature was replaced).
    #[error(
        "the signature in `{}` (key `{key}`) does not match the index: it was changed after signing",
        .path.display()
    )]
    BadSignature { path: PathBuf, key: PublicKey },

    /// A valid signature by a key the trust file does not list.
    #[error("the index is signed by `{key}`, which is not a trusted key: add it to the trust file if you trust it")]
    UntrustedKey { key: PublicKey },

    /// The index is older than one already accepted: a replayed index.
    #[error("the index has serial `{found}`, older than serial `{accepted}` already accepted: refusing a rollback")]
    Rollback { accepted: u64, found: u64 },

    /// The same serial as the registry's with other content: two different
    /// indexes claim to be the same publication.
    #[error("the new index has serial `{serial}` like this registry's, but other content: refusing a forked index")]
    SerialReused { serial: u64 },

    /// The signed index expired: someone may be withholding newer ones.
    #[error("the index expired at `{expires}`: ask the publisher to sign a fresh one")]
    Expired { expires: String },

    /// Signatures are required (`require_signed`) but nothing can check
    /// one: no trusted key is configured. Never "unverified but used".
    #[error(
        "signatures are required, but no trusted key is configured: `{}` cannot be verified{}",
        .path.display(),
        if *.signed { " (it is signed)" } else { " (and it is not signed)" }
    )]
    SignatureRequired { path: PathBuf, signed: bool },

    /// A signed index without `expires`, signed longer ago than the host's
    /// maximum index age: someone may be withholding newer ones.
    #[error(
        "the index was signed at `{signed}`, more than {max_days} days ago, and sets no expiry: ask the publisher to sign a fresh one"
    )]
    TooOld { signed: String, max_days: u32 },

    /// Signatures are required and the index carries neither `expires` nor
    /// `signed` (signed by a backout older than 0.1's `signed` field), so
    /// its age cannot be bounded.
    #[error(
        "the index sets neither `expires` nor `signed`, so its age cannot be bounded, and signatures are required: ask the publisher to sign it again"
    )]
    AgeUnknown,
}

impl TrustError {
    /// What the operator can do about this refusal: printed as `hint:`
    /// under the message.
    pub fn hint(&self) -> &'static str {
        match self {
            TrustError::Unsigned { .. } => {
                "ask the publisher for a signed index (they run `backout registry sign --key FILE`); a registry \
                 built on this host is signed with your own key, listed in the trust file"
            }
            TrustError::BadSignature { .. } => {
                "`index.toml` was edited after it was signed: if the change is yours, sign it again with \
                 `backout registry sign --key FILE`; if not, get the publisher's registry again (`backout \
                 registry import BUNDLE` or `backout registry mirror --from URL`)"
            }
            TrustError::UntrustedKey { .. } => {
                "if you trust this publisher, add its key to the trust file as a `[[key]]` with `name` and `public`"
            }
            TrustError::Rollback { .. } => {
                "someone put back an older index; import or mirror the publisher's newest registry"
            }
            TrustError::SerialReused { .. } => {
                "two different indexes claim the same serial: ask the publisher which is real"
            }
            TrustError::Expired { .. } | TrustError::TooOld { .. } | TrustError::AgeUnknown => {
                "the publisher signs a fresh index with `backout registry sign --key FILE --expires-in 30d`; \
                 then `backout registry import` or `mirror` it here"
            }
            TrustError::SignatureRequired { .. } => {
                "list the publisher's key in the trust file (`--trust FILE`), or drop `--require-signed` \
                 (`require_signed` in the trust file)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, StoreError};

    #[test]
    fn a_trust_file_lists_named_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.toml");
        let (acme, other) = (SigningKey::generate().unwrap().public(), SigningKey::generate().unwrap().public());
        fs::write(
            &path,
            format!("format = 1\n\n[[key]]\nname = \"acme\"\npublic = \"{acme}\"\n\n[[key]]\nname = \"ops\"\npublic = \"{other}\"\n"),
        )
        .unwrap();
        let store = TrustStore::load(&path).unwrap();
        assert!(!store.is_empty());
        assert_eq!(store.name_of(&acme), Some("acme"));
        assert_eq!(store.name_of(&other), Some("ops"));
        assert_eq!(store.keys().len(), 2);

        fs::write(&path, "format = 1\n").unwrap();
        assert!(TrustStore::load(&path).unwrap().is_empty());
    }

    #[test]
    fn invalid_trust_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.toml");
        let acme = SigningKey::generate().unwrap().public();
        let key = |name: &str| format!("[[key]]\nname = \"{name}\"\npublic = \"{acme}\"\n");

        fs::write(&path, format!("format = 1\n{}comment = \"x\"\n", key("acme"))).unwrap();
        let err = TrustStore::load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::TrustFile(TrustFileError::Format(FormatError::Parse { path: p, message })) if *p == path && message.contains("unknown field `comment`")),
            "{err:?}"
        );

        fs::write(&path, format!("format = 1\n{}{}", key("acme"), key("ops"))).unwrap();
        let err = TrustStore::load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::TrustFile(TrustFileError::InvalidTrust { path: p, reason }) if *p == path && reason.contains("listed twice")),
            "{err:?}"
        );

        fs::write(&path, format!("format = 2\n{}", key("acme"))).unwrap();
        assert!(matches!(
            TrustStore::load(&path),
            Err(Error::TrustFile(TrustFileError::Format(FormatError::Unsupported { found: 2, .. })))
        ));

        fs::write(&path, "format = 1\n[[key]]\nname = \"acme\"\npublic = \"ed25519:00\"\n").unwrap();
        let message = TrustStore::load(&path).unwrap_err().to_string();
        assert!(message.contains("invalid public key `ed25519:00`"), "{message}");
    }

    #[test]
    fn accepted_serials_are_per_registry_never_go_down_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/accepted-serials.toml");
        let mut accepted = AcceptedSerials::load(&path).unwrap();
        assert_eq!(accepted, AcceptedSerials::default(), "a missing file is empty");

        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        fs::create_dir(&one).unwrap();
        let key = SigningKey::generate().unwrap().public();
        let other = SigningKey::generate().unwrap().public();
        accepted.record(&one, &key, 5);
        accepted.record(&one, &key, 3);
        accepted.record(&two, &other, 1);
        assert_eq!(accepted.floor(&one, &other), Some(5), "per registry, whichever key signs");
        assert_eq!(accepted.floor(&dir.path().join("one/../one"), &other), Some(5), "one registry, two spellings");
        assert_eq!(accepted.floor(&two, &other), Some(1), "a registry that does not exist yet");
        assert_eq!(accepted.floor(&two, &key), Some(5), "per key, whichever registry");
        assert_eq!(accepted.floor(&dir.path().join("three"), &other), Some(1));
        let stranger = SigningKey::generate().unwrap().public();
        assert_eq!(accepted.floor(&dir.path().join("three"), &stranger), None);
        accepted.save(&path).unwrap();

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("format = 2\n\n[[registry]]\npath = \""), "{text}");
        assert_eq!(AcceptedSerials::load(&path).unwrap(), accepted);

        fs::write(&path, "format = 2\n[[registry]]\npath = \"/r\"\nserial = 1\nextra = 2\n").unwrap();
        assert!(matches!(
            AcceptedSerials::load(&path),
            Err(Error::TrustFile(TrustFileError::Format(FormatError::Parse { .. })))
        ));
        fs::write(&path, "format = 3\n").unwrap();
        assert!(matches!(
            AcceptedSerials::load(&path),
            Err(Error::TrustFile(TrustFileError::Format(FormatError::Unsupported { found: 3, .. })))
        ));
    }

    #[test]
    fn a_format_1_file_keeps_its_per_key_serials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accepted-serials.toml");
        let (a, b) = (SigningKey::generate().unwrap().public(), SigningKey::generate().unwrap().public());
        fs::write(&path, format!("format = 1\n\n[[publisher]]\nkey = \"{a}\"\nserial = 7\n")).unwrap();
        let mut accepted = AcceptedSerials::load(&path).unwrap();
        let registry = dir.path().join("registry");
        assert_eq!(accepted.floor(&registry, &a), Some(7), "what was refused before the upgrade still is");
        assert_eq!(accepted.floor(&registry, &b), None);
        accepted.record(&registry, &a, 9);
        assert_eq!(accepted.floor(&registry, &b), Some(9), "per registry: whichever key signed");
        accepted.save(&path).unwrap();
        let reloaded = AcceptedSerials::load(&path).unwrap();
        assert_eq!(reloaded, accepted, "format 2 keeps both");
        assert!(fs::read_to_string(&path).unwrap().contains("[[publisher]]"));
    }

    #[test]
    fn concurrent_updates_keep_the_highest_serial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/accepted-serials.toml");
        let registry = dir.path().join("registry");
        let key = SigningKey::generate().unwrap().public();
        let threads: Vec<_> = (1..=16u64)
            .map(|serial| {
                let (path, registry) = (path.clone(), registry.clone());
                std::thread::spawn(move || AcceptedSerials::update(&path, &registry, &key, serial).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(AcceptedSerials::load(&path).unwrap().floor(&registry, &key), Some(16));
        assert!(dir.path().join("state/accepted-serials.toml.lock").exists());
    }

    #[test]
    fn trust_file_strictness_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.toml");
        fs::write(&path, "format = 1\n").unwrap();
        let store = TrustStore::load(&path).unwrap();
        assert!(!store.requires_signatures());
        assert_eq!(store.max_index_age_days(), DEFAULT_MAX_INDEX_AGE_DAYS);

        fs::write(&path, "format = 1\nrequire_signed = true\nmax_index_age_days = 30\n").unwrap();
        let store = TrustStore::load(&path).unwrap();
        assert!(store.requires_signatures() && store.is_empty());
        assert_eq!(store.max_index_age_days(), 30);

        fs::write(&path, "format = 1\nmax_index_age_days = 0\n").unwrap();
        let message = TrustStore::load(&path).unwrap_err().to_string();
        assert!(message.contains("`max_index_age_days` must be at least 1"), "{message}");
    }

    mod policy {
        use super::*;
        use crate::{OnSigned, Registry};
        use std::time::Duration;

        const WORLD: &str = "backout:step/plugin@0.1.0";

        /// A signed registry with one plugin, its key, and a store trusting it.
        fn signed() -> (tempfile::TempDir, Registry, SigningKey, TrustStore) {
            let dir = tempfile::tempdir().unwrap();
            let mut registry = Registry::open_or_init(dir.path()).unwrap();
            registry.add("env-toggle", "1.0.0", WORLD, b"component").unwrap();
            let key = SigningKey::generate().unwrap();
            registry.sign(&key, None).unwrap();
            let mut trust = TrustStore::default();
            trust.add("acme", key.public()).unwrap();
            (dir, registry, key, trust)
        }

        fn now() -> SystemTime {
            SystemTime::now()
        }

        #[test]
        fn a_signed_index_is_trusted() {
            let (_dir, registry, key, trust) = signed();
            let reopened = Registry::open(registry.root()).unwrap();
            let trusted = reopened.check_trust(&trust, Some(reopened.serial()), now()).unwrap();
            assert_eq!(trusted, Trusted::Signed { key_name: "acme".into(), key: key.public(), serial: 2 });
            let signature = fs::read_to_string(registry.root().join("index.toml.sig")).unwrap();
            assert!(signature.starts_with(&format!("format = 1\nkey = \"{}\"\nsignature = \"", key.public())));
        }

        #[test]
        fn without_trusted_keys_nothing_is_checked() {
            let dir = tempfile::tempdir().unwrap();
            let registry = Registry::open_or_init(dir.path()).unwrap();
            let trusted = registry.check_trust(&TrustStore::default(), Some(99), now()).unwrap();
            assert_eq!(trusted, Trusted::NotConfigured);
        }

        #[test]
        fn an_unsigned_index_is_refused() {
            let (_dir, registry, _key, trust) = signed();
            fs::remove_file(registry.root().join("index.toml.sig")).unwrap();
            let err = registry.check_trust(&trust, None, now()).unwrap_err();
            assert!(
                matches!(&err, Error::Trust(TrustError::Unsigned { path }) if *path == registry.root().join("index.toml")),
                "{err:?}"
            );
            assert!(err.to_string().contains("is not signed (no `index.toml.sig`)"), "{err}");
        }

        #[test]
        fn an_index_edited_without_re_signing_is_a_bad_signature() {
            let (_dir, registry, key, trust) = signed();
            let path = registry.root().join("index.toml");
            let text = fs::read_to_string(&path).unwrap();
            // Even an edit that changes no value changes the bytes.
            for edited in [text.replace("serial = 2", "serial = 3"), format!("{text}\n")] {
                fs::write(&path, &edited).unwrap();
                let err = Registry::open(registry.root()).unwrap().check_trust(&trust, None, now()).unwrap_err();
                assert!(
                    matches!(&err, Error::Trust(TrustError::BadSignature { key: k, .. }) if *k == key.public()),
                    "{err:?}"
                );
                assert!(err.to_string().contains("does not match the index: it was changed after signing"), "{err}");
            }
            // Adding through the API is refused unless it signs again.
            fs::write(&path, &text).unwrap();
            let mut registry = Registry::open(registry.root()).unwrap();
            let err = registry.add("env-toggle", "1.1.0", WORLD, b"newer").unwrap_err();
            assert!(matches!(err, Error::Store(StoreError::SignedIndex { .. })), "{err:?}");
            registry.check_trust(&trust, None, now()).unwrap();
            registry.add_with("env-toggle", "1.1.0", WORLD, b"newer", OnSigned::Sign(&key)).unwrap();
            Registry::open(registry.root()).unwrap().check_trust(&trust, None, now()).unwrap();
        }

        #[test]
        fn a_snapshot_is_checked_against_the_bytes_it_was_parsed_from() {
            let (_dir, registry, key, trust) = signed();
            // The publisher re-signs after this handle read the index: the new
            // signature does not cover the bytes this handle parsed.
            let mut other = Registry::open(registry.root()).unwrap();
            other.remove_with("env-toggle", "1.0.0", OnSigned::Unsign).unwrap();
            other.sign(&key, None).unwrap();
            assert!(matches!(
                registry.check_trust(&trust, None, now()),
                Err(Error::Trust(TrustError::BadSignature { .. }))
            ));
            other.check_trust(&trust, None, now()).unwrap();
        }

        #[test]
        fn a_signature_by_an_untrusted_key_is_refused() {
            let (_dir, mut registry, _key, trust) = signed();
            let intruder = SigningKey::generate().unwrap();
            registry.sign(&intruder, None).unwrap();
            let err = registry.check_trust(&trust, None, now()).unwrap_err();
            assert!(
                matches!(&err, Error::Trust(TrustError::UntrustedKey { key }) if *key == intruder.public()),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "the index is signed by `{}`, which is not a trusted key: add it to the trust file if you trust it",
                    intruder.public()
                )
            );
        }

        #[test]
        fn an_older_serial_replayed_is_a_rollback() {
            let (dir, mut registry, key, trust) = signed();
            let old_index = fs::read(registry.root().join("index.toml")).unwrap();
            let old_signature = fs::read(registry.root().join("index.toml.sig")).unwrap();

            // The host accepts serial 4 and remembers it.
            registry.add_with("env-toggle", "1.0.1", WORLD, b"fix", OnSigned::Unsign).unwrap();
            registry.sign(&key, None).unwrap();
            let memory = dir.path().join("state/accepted.toml");
            let accepted = AcceptedSerials::load(&memory).unwrap();
            match registry.check_trust(&trust, accepted.floor(registry.root(), &key.public()), now()).unwrap() {
                Trusted::Signed { key, serial, .. } => {
                    AcceptedSerials::update(&memory, registry.root(), &key, serial).unwrap()
                }
                other => panic!("expected Signed, got {other:?}"),
            }

            // An attacker puts back the old, validly signed index.
            fs::write(registry.root().join("index.toml"), old_index).unwrap();
            fs::write(registry.root().join("index.toml.sig"), old_signature).unwrap();
            let replayed = Registry::open(registry.root()).unwrap();
            let accepted = AcceptedSerials::load(&memory).unwrap();
            let err = replayed.check_trust(&trust, accepted.floor(replayed.root(), &key.public()), now()).unwrap_err();
            assert!(matches!(err, Error::Trust(TrustError::Rollback { accepted: 4, found: 2 })), "{err:?}");
            assert_eq!(
                err.to_string(),
                "the index has serial `2`, older than serial `4` already accepted: refusing a rollback"
            );
            // The same serial as accepted is fine (the host re-reads its registry).
            replayed.check_trust(&trust, Some(2), now()).unwrap();
        }

        #[test]
        fn an_expired_index_is_refused() {
            let (_dir, mut registry, key, trust) = signed();
            let signed_at = now();
            registry.sign(&key, Some(signed_at + Duration::from_secs(600))).unwrap();
            assert_eq!(registry.serial(), 3);
            let expires = registry.expires().unwrap().to_owned();
            let text = String::from_utf8(registry.index_bytes().to_vec()).unwrap();
            assert!(text.starts_with(&format!("format = 1\nserial = 3\nexpires = \"{expires}\"\n")), "{text}");

            registry.check_trust(&trust, None, signed_at).unwrap();
            let err = registry.check_trust(&trust, None, signed_at + Duration::from_secs(601)).unwrap_err();
            assert!(matches!(&err, Error::Trust(TrustError::Expired { expires: e }) if *e == expires), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("the index expired at `{expires}`: ask the publisher to sign a fresh one")
            );

            // Re-signing without an expiry clears it and bumps the serial.
            registry.sign(&key, None).unwrap();
            assert_eq!((registry.serial(), registry.expires()), (4, None));
            registry.check_trust(&trust, None, signed_at + Duration::from_secs(601)).unwrap();
        }

        #[test]
        fn an_old_index_signed_by_the_other_trusted_key_is_a_rollback() {
            // Two trusted publishers; the host accepted serial 4 signed by
            // `acme`. Serial 3, validly signed by `ops`, is still older.
            let (dir, mut registry, acme, mut trust) = signed();
            let ops = SigningKey::generate().unwrap();
            trust.add("ops", ops.public()).unwrap();
            registry.sign(&ops, None).unwrap();
            let old_index = fs::read(registry.root().join("index.toml")).unwrap();
            let old_signature = fs::read(registry.root().join("index.toml.sig")).unwrap();
            registry.sign(&acme, None).unwrap();
            assert_eq!(registry.serial(), 4);
            let memory = dir.path().join("state/accepted.toml");
            AcceptedSerials::update(&memory, registry.root(), &acme.public(), 4).unwrap();

            fs::write(registry.root().join("index.toml"), old_index).unwrap();
            fs::write(registry.root().join("index.toml.sig"), old_signature).unwrap();
            let replayed = Registry::open(registry.root()).unwrap();
            let accepted = AcceptedSerials::load(&memory).unwrap();
            let floor = accepted.floor(replayed.root(), &ops.public());
            let err = replayed.check_trust(&trust, floor, now()).unwrap_err();
            assert!(matches!(err, Error::Trust(TrustError::Rollback { accepted: 4, found: 3 })), "{err:?}");
        }

        #[test]
        fn require_signed_refuses_what_cannot_be_verified() {
            let (_dir, registry, _key, _trust) = signed();
            let mut strict = TrustStore::default();
            strict.require_signatures();
            let err = registry.check_trust(&strict, None, now()).unwrap_err();
            assert!(matches!(&err, Error::Trust(TrustError::SignatureRequired { signed: true, .. })), "{err:?}");
            assert!(err.to_string().contains("no trusted key is configured"), "{err}");
            assert!(err.to_string().ends_with("cannot be verified (it is signed)"), "{err}");

            fs::remove_file(registry.root().join("index.toml.sig")).unwrap();
            let err = Registry::open(registry.root()).unwrap().check_trust(&strict, None, now()).unwrap_err();
            assert!(matches!(&err, Error::Trust(TrustError::SignatureRequired { signed: false, .. })), "{err:?}");
            // Without `require_signed`, the same registry is used unchecked.
            let lax = TrustStore::default();
            assert_eq!(registry.check_trust(&lax, None, now()).unwrap(), Trusted::NotConfigured);
        }

        #[test]
        fn an_index_without_expiry_is_refused_past_the_maximum_age() {
            let (_dir, registry, _key, trust) = signed();
            let signed_at = parse_utc(registry.signed().expect("sign records the time")).unwrap();
            assert!(registry.expires().is_none());
            let day = Duration::from_secs(86_400);
            let max = trust.max_index_age_days();
            let at = |seconds: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds as u64);
            registry.check_trust(&trust, None, at(signed_at) + day * max).unwrap();
            let err =
                registry.check_trust(&trust, None, at(signed_at) + day * max + Duration::from_secs(1)).unwrap_err();
            assert!(matches!(&err, Error::Trust(TrustError::TooOld { max_days: 180, .. })), "{err:?}");
            assert!(err.to_string().contains("more than 180 days ago, and sets no expiry"), "{err}");
        }

        #[test]
        fn an_index_with_neither_expiry_nor_signing_time_is_refused_only_when_signatures_are_required() {
            let (_dir, registry, key, mut trust) = signed();
            // As an older backout signed it: no `signed` field.
            let path = registry.root().join("index.toml");
            let text = fs::read_to_string(&path).unwrap();
            let legacy: String =
                text.lines().filter(|l| !l.starts_with("signed = ")).map(|l| format!("{l}\n")).collect();
            assert_ne!(legacy, text);
            fs::write(&path, &legacy).unwrap();
            fs::write(registry.root().join("index.toml.sig"), key.sign_index(legacy.as_bytes()).unwrap()).unwrap();
            let legacy = Registry::open(registry.root()).unwrap();
            legacy.check_trust(&trust, None, now()).unwrap();
            trust.require_signatures();
            assert!(matches!(legacy.check_trust(&trust, None, now()), Err(Error::Trust(TrustError::AgeUnknown))));
        }
    }
}
