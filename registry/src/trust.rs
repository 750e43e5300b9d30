//! Which publishers a host trusts, and what it has already accepted from them.
//!
//! Trust file (its location is the CLI's choice; `--trust FILE`):
//!
//! ```toml
//! format = 1
//!
//! [[key]]
//! name = "acme"                 # shown in messages; printable ascii, unique
//! public = "ed25519:<64 hex>"   # from `backout key generate`, unique
//! ```
//!
//! No `[[key]]` at all means signatures are not required (a registry built
//! and used on one machine). Once one key is listed, every index must be
//! signed by a listed key, must not be older than what was accepted before
//! (rollback) and must not have expired (freeze); see
//! [`Registry::check_trust`](crate::Registry::check_trust).
//!
//! Accepted-serials file (kept by the host in its state directory; the host
//! writes it after each accepted index):
//!
//! ```toml
//! format = 1
//!
//! [[publisher]]
//! key = "ed25519:<64 hex>"
//! serial = 7
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::fsio::{create_dir_durable, write_atomic};
use crate::index::Index;
use crate::signing::{IndexSignature, PublicKey};
use crate::time::{parse_utc, unix_seconds};
use crate::validate::validate_label;

const TRUST_FORMAT: i64 = 1;
const ACCEPTED_FORMAT: i64 = 1;

/// The publisher keys a host trusts, each with a name for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
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
    #[serde(default, rename = "key")]
    keys: Vec<TrustedKey>,
}

impl TrustStore {
    /// Reads and validates a trust file. Unknown keys, another `format`, an
    /// invalid public key, and duplicate names or keys are errors.
    pub fn load(path: &Path) -> Result<TrustStore, Error> {
        let text = fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        let file: TrustFile = toml::from_str(&text)
            .map_err(|e| Error::Parse { path: path.to_owned(), message: e.to_string().trim_end().to_owned() })?;
        if file.format != TRUST_FORMAT {
            return Err(Error::UnsupportedFormat {
                path: path.to_owned(),
                found: file.format,
                supported: TRUST_FORMAT,
            });
        }
        let mut store = TrustStore::default();
        for key in file.keys {
            store.add(&key.name, key.public).map_err(|e| match e {
                Error::InvalidTrust { reason, .. } => Error::InvalidTrust { path: path.to_owned(), reason },
                other => Error::InvalidTrust { path: path.to_owned(), reason: other.to_string() },
            })?;
        }
        Ok(store)
    }

    /// Adds a trusted key (for callers that build a store in code).
    pub fn add(&mut self, name: &str, public: PublicKey) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidTrust { path: Default::default(), reason };
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

    /// No keys: signatures are not checked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
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
        return Ok(Trusted::NotConfigured);
    }
    let Some((signature_bytes, signature_path)) = signature else {
        return Err(Error::Unsigned { path: index_path.to_owned() });
    };
    let signature = IndexSignature::parse(signature_bytes, signature_path)?;
    if !signature.covers(index_bytes) {
        return Err(Error::BadSignature { path: signature_path.to_owned(), key: signature.key });
    }
    let Some(key_name) = trust.name_of(&signature.key) else {
        return Err(Error::UntrustedKey { key: signature.key });
    };
    if let Some(accepted) = accepted_serial.filter(|&accepted| index.serial < accepted) {
        return Err(Error::Rollback { accepted, found: index.serial });
    }
    if let Some(expires) = &index.expires {
        // Validated when the index was parsed; an unparsable one is expired.
        if parse_utc(expires).is_none_or(|at| at <= unix_seconds(now)) {
            return Err(Error::Expired { expires: expires.clone() });
        }
    }
    Ok(Trusted::Signed { key_name: key_name.to_owned(), key: signature.key, serial: index.serial })
}

/// The highest index serial a host has accepted from each publisher key:
/// its defence against an older signed index being replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedSerials {
    serials: BTreeMap<PublicKey, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedFile {
    format: i64,
    #[serde(default, rename = "publisher", skip_serializing_if = "Vec::is_empty")]
    publishers: Vec<AcceptedEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedEntry {
    key: PublicKey,
    serial: u64,
}

impl AcceptedSerials {
    /// Reads the file at `path`; a missing file is an empty memory (a host
    /// that has accepted nothing yet).
    pub fn load(path: &Path) -> Result<AcceptedSerials, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AcceptedSerials::default()),
            Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
        };
        let file: AcceptedFile = toml::from_str(&text)
            .map_err(|e| Error::Parse { path: path.to_owned(), message: e.to_string().trim_end().to_owned() })?;
        if file.format != ACCEPTED_FORMAT {
            return Err(Error::UnsupportedFormat {
                path: path.to_owned(),
                found: file.format,
                supported: ACCEPTED_FORMAT,
            });
        }
        let mut accepted = AcceptedSerials::default();
        for entry in file.publishers {
            accepted.record(&entry.key, entry.serial);
        }
        Ok(accepted)
    }

    /// The highest serial accepted from `key`.
    pub fn get(&self, key: &PublicKey) -> Option<u64> {
        self.serials.get(key).copied()
    }

    /// Remembers that `serial` from `key` was accepted; never lowers what is
    /// remembered.
    pub fn record(&mut self, key: &PublicKey, serial: u64) {
        let remembered = self.serials.entry(*key).or_insert(serial);
        *remembered = (*remembered).max(serial);
    }

    /// Writes the file atomically (temp + fsync + rename + fsync directory),
    /// creating its directory if needed. Keys are sorted, so the same memory
    /// always has the same bytes.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let file = AcceptedFile {
            format: ACCEPTED_FORMAT,
            publishers: self.serials.iter().map(|(key, &serial)| AcceptedEntry { key: *key, serial }).collect(),
        };
        let text = toml::to_string(&file)
            .map_err(|e| Error::SerializeIndex { path: path.to_owned(), message: e.to_string() })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_durable(dir)?;
        }
        write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

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
            matches!(&err, Error::Parse { path: p, message } if *p == path && message.contains("unknown field `comment`")),
            "{err:?}"
        );

        fs::write(&path, format!("format = 1\n{}{}", key("acme"), key("ops"))).unwrap();
        let err = TrustStore::load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidTrust { path: p, reason } if *p == path && reason.contains("listed twice")),
            "{err:?}"
        );

        fs::write(&path, format!("format = 2\n{}", key("acme"))).unwrap();
        assert!(matches!(TrustStore::load(&path), Err(Error::UnsupportedFormat { found: 2, .. })));

        fs::write(&path, "format = 1\n[[key]]\nname = \"acme\"\npublic = \"ed25519:00\"\n").unwrap();
        let message = TrustStore::load(&path).unwrap_err().to_string();
        assert!(message.contains("invalid public key `ed25519:00`"), "{message}");
    }

    #[test]
    fn accepted_serials_never_go_down_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/accepted-serials.toml");
        let mut accepted = AcceptedSerials::load(&path).unwrap();
        assert_eq!(accepted, AcceptedSerials::default(), "a missing file is empty");

        let (a, b) = (SigningKey::generate().unwrap().public(), SigningKey::generate().unwrap().public());
        accepted.record(&a, 5);
        accepted.record(&a, 3);
        accepted.record(&b, 1);
        assert_eq!(accepted.get(&a), Some(5));
        assert_eq!(accepted.get(&b), Some(1));
        accepted.save(&path).unwrap();

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("format = 1\n\n[[publisher]]\nkey = \"ed25519:"), "{text}");
        assert_eq!(AcceptedSerials::load(&path).unwrap(), accepted);

        fs::write(&path, format!("format = 1\n[[publisher]]\nkey = \"{a}\"\nserial = 1\nextra = 2\n")).unwrap();
        assert!(matches!(AcceptedSerials::load(&path), Err(Error::Parse { .. })));
    }
    mod policy {
        use super::*;
        use crate::Registry;
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
            assert!(matches!(&err, Error::Unsigned { path } if *path == registry.root().join("index.toml")), "{err:?}");
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
                assert!(matches!(&err, Error::BadSignature { key: k, .. } if *k == key.public()), "{err:?}");
                assert!(err.to_string().contains("does not match the index: it was changed after signing"), "{err}");
            }
            // Adding through the API needs a new signature too.
            fs::write(&path, &text).unwrap();
            let mut registry = Registry::open(registry.root()).unwrap();
            registry.add("env-toggle", "1.1.0", WORLD, b"newer").unwrap();
            assert!(matches!(registry.check_trust(&trust, None, now()), Err(Error::BadSignature { .. })));
            registry.sign(&key, None).unwrap();
            registry.check_trust(&trust, None, now()).unwrap();
        }

        #[test]
        fn a_snapshot_is_checked_against_the_bytes_it_was_parsed_from() {
            let (_dir, registry, key, trust) = signed();
            // The publisher re-signs after this handle read the index: the new
            // signature does not cover the bytes this handle parsed.
            let mut other = Registry::open(registry.root()).unwrap();
            other.remove("env-toggle", "1.0.0").unwrap();
            other.sign(&key, None).unwrap();
            assert!(matches!(registry.check_trust(&trust, None, now()), Err(Error::BadSignature { .. })));
            other.check_trust(&trust, None, now()).unwrap();
        }

        #[test]
        fn a_signature_by_an_untrusted_key_is_refused() {
            let (_dir, mut registry, _key, trust) = signed();
            let intruder = SigningKey::generate().unwrap();
            registry.sign(&intruder, None).unwrap();
            let err = registry.check_trust(&trust, None, now()).unwrap_err();
            assert!(matches!(&err, Error::UntrustedKey { key } if *key == intruder.public()), "{err:?}");
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
            registry.add("env-toggle", "1.0.1", WORLD, b"fix").unwrap();
            registry.sign(&key, None).unwrap();
            let memory = dir.path().join("state/accepted.toml");
            let mut accepted = AcceptedSerials::load(&memory).unwrap();
            match registry.check_trust(&trust, accepted.get(&key.public()), now()).unwrap() {
                Trusted::Signed { key, serial, .. } => accepted.record(&key, serial),
                other => panic!("expected Signed, got {other:?}"),
            }
            accepted.save(&memory).unwrap();

            // An attacker puts back the old, validly signed index.
            fs::write(registry.root().join("index.toml"), old_index).unwrap();
            fs::write(registry.root().join("index.toml.sig"), old_signature).unwrap();
            let replayed = Registry::open(registry.root()).unwrap();
            let accepted = AcceptedSerials::load(&memory).unwrap();
            let err = replayed.check_trust(&trust, accepted.get(&key.public()), now()).unwrap_err();
            assert!(matches!(err, Error::Rollback { accepted: 4, found: 2 }), "{err:?}");
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
            assert!(matches!(&err, Error::Expired { expires: e } if *e == expires), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("the index expired at `{expires}`: ask the publisher to sign a fresh one")
            );

            // Re-signing without an expiry clears it and bumps the serial.
            registry.sign(&key, None).unwrap();
            assert_eq!((registry.serial(), registry.expires()), (4, None));
            registry.check_trust(&trust, None, signed_at + Duration::from_secs(601)).unwrap();
        }
    }
}
