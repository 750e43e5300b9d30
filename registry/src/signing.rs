//! Publisher keys and the signature over `index.toml`.
//!
//! A publisher signs the exact bytes of its `index.toml` with an ed25519
//! key; a host that lists the publisher's public key in its trust file
//! refuses any index whose bytes the signature does not cover. The index
//! pins every blob by sha256, so one signature covers every plugin.
//!
//! Key file (`backout key generate`), created with mode 0600, never
//! overwritten, refused when group or others can read it:
//!
//! ```text
//! backout-signing-key v1
//! <64 lowercase hex: the ed25519 seed>
//! ```
//!
//! Signature file `index.toml.sig`, written beside the index:
//!
//! ```toml
//! format = 1
//! key = "ed25519:<64 hex>"
//! signature = "<128 hex>"
//! ```
//!
//! The signature is ed25519 over `backout-index-signature-v1\n` followed by
//! the exact bytes of `index.toml`. The fixed prefix (domain separation)
//! keeps a signature over an index from ever meaning anything else, and
//! the other way round. Verification is strict (`verify_strict`: no weak
//! keys, no malleable signatures).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};

use crate::format::FormatError;
use crate::fsio::FileError;

/// The first line of a key file.
const KEY_FILE_HEADER: &str = "backout-signing-key v1";
/// The algorithm prefix of a textual public key.
const KEY_PREFIX: &str = "ed25519:";
/// Prepended to the index bytes before signing (domain separation).
const SIGNED_CONTEXT: &[u8] = b"backout-index-signature-v1\n";
/// The signature file's format.
const SIGNATURE_FORMAT: i64 = 1;
/// A signature file is a few hundred bytes; anything much larger is refused
/// before parsing.
pub(crate) const MAX_SIGNATURE_FILE: u64 = 64 * 1024;

/// A publisher's private ed25519 key.
///
/// `Debug` shows the public key only; the seed is wiped from memory when the
/// key is dropped.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<SigningKey, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SigningError::Random { message: e.to_string() })?;
        let key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
        seed.fill(0);
        Ok(key)
    }

    /// Writes this key to a new file at `path`, created with mode 0600 (on
    /// Unix) and flushed to disk. An existing file is never overwritten
    /// ([`SigningError::KeyFileExists`](crate::SigningError::KeyFileExists)); a failed write removes the partial file.
    pub fn write_new(&self, path: &Path) -> Result<(), SigningError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SigningError::KeyFileExists { path: path.to_owned() });
            }
            Err(source) => return Err(SigningError::File(FileError::Write { path: path.to_owned(), source })),
        };
        let text = format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(self.0.to_bytes()));
        let written = file
            .write_all(text.as_bytes())
            .map_err(|source| SigningError::File(FileError::Write { path: path.to_owned(), source }))
            .and_then(|()| {
                file.sync_all().map_err(|source| SigningError::File(FileError::Sync { path: path.to_owned(), source }))
            });
        if let Err(e) = written {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(())
    }

    /// Reads a key file written by [`SigningKey::write_new`].
    ///
    /// On Unix a file that group or others may access is refused
    /// ([`SigningError::KeyPermissions`](crate::SigningError::KeyPermissions), with a `chmod 600` hint): the key may
    /// already be in someone else's hands.
    pub fn read(path: &Path) -> Result<SigningKey, SigningError> {
        let read_error = |source| SigningError::File(FileError::Read { path: path.to_owned(), source });
        let file = File::open(path).map_err(read_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SigningError::KeyPermissions { path: path.to_owned(), mode });
            }
        }
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(file, 4096), &mut text).map_err(|source| {
            if source.kind() == io::ErrorKind::InvalidData {
                SigningError::InvalidKeyFile { path: path.to_owned(), reason: "not utf-8 text".to_owned() }
            } else {
                read_error(source)
            }
        })?;
        let invalid = |reason: &str| SigningError::InvalidKeyFile { path: path.to_owned(), reason: reason.to_owned() };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(invalid("expected `backout-signing-key v1` on the first line"));
        }
        let seed_hex = lines.next().unwrap_or("");
        if lines.next().is_some() {
            return Err(invalid("expected exactly two lines"));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(seed_hex, &mut seed).map_err(|_| invalid("expected 64 hex characters on line 2"))?;
        let key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
        seed.fill(0);
        Ok(key)
    }

    /// The public half, for trust files.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The signature file text over `index_bytes`.
    pub(crate) fn sign_index(&self, index_bytes: &[u8]) -> Result<String, SigningError> {
        let signature = self.0.sign(&signed_message(index_bytes));
        let file = SignatureFile {
            format: SIGNATURE_FORMAT,
            key: self.public(),
            signature: hex::encode(signature.to_bytes()),
        };
        toml::to_string(&file).map_err(|e| {
            SigningError::Format(FormatError::Serialize { path: "index.toml.sig".into(), message: e.to_string() })
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

/// An ed25519 public key; text form `ed25519:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Whether `signature` (64 bytes) is this key's over `message`, strictly.
    fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = SigningError;

    /// Accepts `ed25519:<64 hex>` (either case) naming a valid curve point.
    fn from_str(value: &str) -> Result<PublicKey, SigningError> {
        let invalid =
            |reason: &str| SigningError::InvalidPublicKey { value: value.to_owned(), reason: reason.to_owned() };
        let Some(hex_part) = value.strip_prefix(KEY_PREFIX) else {
            return Err(invalid("expected `ed25519:` followed by 64 hex characters"));
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| invalid("expected 64 hex characters after `ed25519:`"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not a valid ed25519 public key"))?;
        Ok(PublicKey(bytes))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `index.toml.sig` as TOML sees it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    format: i64,
    key: PublicKey,
    signature: String,
}

/// A parsed signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexSignature {
    pub(crate) key: PublicKey,
    signature: [u8; 64],
}

impl IndexSignature {
    /// Parses the text of a signature file; `path` is only used in errors.
    pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<IndexSignature, SigningError> {
        let parse_error = |message: String| SigningError::Format(FormatError::Parse { path: path.to_owned(), message });
        let text = std::str::from_utf8(bytes).map_err(|_| parse_error("not utf-8 text".to_owned()))?;
        let file: SignatureFile = toml::from_str(text).map_err(|e| parse_error(e.to_string().trim_end().to_owned()))?;
        if file.format != SIGNATURE_FORMAT {
            return Err(SigningError::Format(FormatError::Unsupported {
                path: path.to_owned(),
                found: file.format,
                supported: SIGNATURE_FORMAT,
            }));
        }
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&file.signature, &mut signature)
            .map_err(|_| parse_error("`signature` must be 128 hex characters".to_owned()))?;
        Ok(IndexSignature { key: file.key, signature })
    }

    /// Whether this signature covers exactly `index_bytes`.
    pub(crate) fn covers(&self, index_bytes: &[u8]) -> bool {
        self.key.verifies(&signed_message(index_bytes), &self.signature)
    }
}

fn signed_message(index_bytes: &[u8]) -> Vec<u8> {
    [SIGNED_CONTEXT, index_bytes].concat()
}

/// What is wrong with a key, a key file or `index.toml.sig`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The operating system's random number generator failed.
    #[error("failed to get random bytes for a new key: {message}")]
    Random { message: String },

    /// [`SigningKey::write_new`] never overwrites a file.
    #[error("refusing to overwrite `{}`: it already exists", .path.display())]
    KeyFileExists { path: PathBuf },

    /// A private key file that group or others may read is refused: someone
    /// else may have copied it.
    #[error(
        "private key `{}` is accessible by group or others (mode `{mode:04o}`): run `chmod 600 {}`",
        .path.display(),
        .path.display()
    )]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("invalid key file `{}`: {reason}", .path.display())]
    InvalidKeyFile { path: PathBuf, reason: String },

    #[error("invalid public key `{}`: {reason}", .value.escape_debug())]
    InvalidPublicKey { value: String, reason: String },

    /// A signature file that is not valid TOML or does not match its format.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// Reading or writing a key file.
    #[error(transparent)]
    File(#[from] FileError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        let key = SigningKey::generate().unwrap();
        key.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("backout-signing-key v1\n") && text.lines().count() == 2, "{text}");
        assert_eq!(SigningKey::read(&path).unwrap().public(), key.public());
        assert!(!format!("{key:?}").contains(&hex::encode(key.0.to_bytes())), "debug never shows the seed");
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        fs::write(&path, "precious").unwrap();
        let err = SigningKey::generate().unwrap().write_new(&path).unwrap_err();
        assert!(matches!(&err, SigningError::KeyFileExists { path: p } if *p == path), "{err:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[cfg(unix)]
    #[test]
    fn a_private_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        SigningKey::generate().unwrap().write_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKey::read(&path).unwrap_err();
        assert!(matches!(&err, SigningError::KeyPermissions { path: p, mode: 0o644 } if *p == path), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "private key `{}` is accessible by group or others (mode `0644`): run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        );
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        for text in ["", "backout-signing-key v2\n00\n", "backout-signing-key v1\nzz\n", "backout-signing-key v1\n\n\n"]
        {
            let _ = fs::remove_file(&path);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path).unwrap().write_all(text.as_bytes()).unwrap();
            let err = SigningKey::read(&path).unwrap_err();
            assert!(matches!(&err, SigningError::InvalidKeyFile { .. }), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn public_keys_round_trip_as_text() {
        let key = SigningKey::generate().unwrap().public();
        let text = key.to_string();
        assert!(text.starts_with("ed25519:") && text.len() == 8 + 64, "{text}");
        assert_eq!(text.parse::<PublicKey>().unwrap(), key);
        assert_eq!(text.to_ascii_uppercase().replace("ED25519:", "ed25519:").parse::<PublicKey>().unwrap(), key);
        for bad in ["", "ed25519:", "ed25519:abc", "rsa:00", &text[8..]] {
            assert!(
                matches!(bad.parse::<PublicKey>(), Err(SigningError::InvalidPublicKey { value, .. }) if value == bad)
            );
        }
    }

    #[test]
    fn a_signature_covers_exactly_the_signed_bytes() {
        let key = SigningKey::generate().unwrap();
        let text = key.sign_index(b"format = 1\nserial = 1\n").unwrap();
        let path = Path::new("index.toml.sig");
        let signature = IndexSignature::parse(text.as_bytes(), path).unwrap();
        assert_eq!(signature.key, key.public());
        assert!(signature.covers(b"format = 1\nserial = 1\n"));
        assert!(!signature.covers(b"format = 1\nserial = 2\n"));
        assert!(!signature.covers(b"format = 1\nserial = 1\n\n"));
        // The raw bytes alone (without the context prefix) are not what is signed.
        let raw = key.0.sign(b"format = 1\nserial = 1\n");
        let forged = IndexSignature { key: key.public(), signature: raw.to_bytes() };
        assert!(!forged.covers(b"format = 1\nserial = 1\n"));

        let err = IndexSignature::parse(text.replace("format = 1", "format = 2").as_bytes(), path).unwrap_err();
        assert!(matches!(err, SigningError::Format(FormatError::Unsupported { found: 2, .. })), "{err:?}");
        let err = IndexSignature::parse(format!("{text}extra = 1\n").as_bytes(), path).unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    }
}
