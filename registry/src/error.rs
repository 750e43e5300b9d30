//! Everything that can go wrong, with the values and paths involved.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};

/// A registry error.
///
/// Every variant carries the offending values and paths so a caller can
/// build hints without parsing messages. Messages are lowercase, without a
/// trailing period, with values in backticks; untrusted strings are escaped
/// so control characters cannot reach a terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `root` is missing or has no `index.toml`.
    #[error("no registry at `{}` (`index.toml` not found)", .root.display())]
    NotFound { root: PathBuf },

    #[error("failed to read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to create directory `{}`", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to rename `{}` to `{}`", .from.display(), .to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to sync `{}` to disk", .path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `index.toml` is not valid TOML or does not match the format; `message`
    /// is the TOML parser's, with line and column.
    #[error("failed to parse `{}`: {message}", .path.display())]
    ParseIndex { path: PathBuf, message: String },

    #[error("failed to serialize the index for `{}`: {message}", .path.display())]
    SerializeIndex { path: PathBuf, message: String },

    #[error(
        "unsupported registry format `{found}` in `{}`: this version of backout supports format `{supported}`",
        .path.display()
    )]
    UnsupportedFormat { path: PathBuf, found: i64, supported: i64 },

    #[error(
        "duplicate entry `{}@{}` in `{}`",
        .name.escape_debug(),
        .version.escape_debug(),
        .path.display()
    )]
    DuplicateEntry { path: PathBuf, name: String, version: String },

    /// An entry in `index.toml` has a field that [`validate_name`],
    /// [`validate_version`] or the other field checks refuse; `source` says
    /// which.
    ///
    /// [`validate_name`]: crate::validate_name
    /// [`validate_version`]: crate::validate_version
    #[error(
        "invalid entry `{}@{}` in `{}`",
        .name.escape_debug(),
        .version.escape_debug(),
        .path.display()
    )]
    InvalidEntry {
        path: PathBuf,
        name: String,
        version: String,
        #[source]
        source: Box<Error>,
    },

    #[error("invalid digest `{}`: {reason}", .value.escape_debug())]
    InvalidDigest { value: String, reason: DigestError },

    #[error("invalid plugin name `{}`: {reason}", .name.escape_debug())]
    InvalidName { name: String, reason: String },

    #[error("invalid version `{}`: {reason}", .version.escape_debug())]
    InvalidVersion { version: String, reason: String },

    /// Another entry field (`world`, `publisher`, `added`) is malformed.
    #[error("invalid {field} `{}`: {reason}", .value.escape_debug())]
    InvalidField { field: &'static str, value: String, reason: String },

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
}
