//! What can be wrong with one of the registry's TOML files as a file of its
//! format: the index, its signature, a trust file, the accepted serials.
//! Each file's own error ([`IndexError`](crate::IndexError),
//! [`SigningError`](crate::SigningError),
//! [`TrustFileError`](crate::TrustFileError)) wraps it, so the words are
//! the same whichever file it is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not valid TOML or not the format; `message` is the parser's, with
    /// line and column, or what the parsed file gets wrong.
    #[error("failed to parse `{}`: {message}", .path.display())]
    Parse { path: PathBuf, message: String },

    /// A `format` this backout does not read (written by a newer one).
    #[error(
        "unsupported registry format `{found}` in `{}`: this version of backout supports format `{supported}`",
        .path.display()
    )]
    Unsupported { path: PathBuf, found: i64, supported: i64 },

    #[error("failed to serialize `{}`: {message}", .path.display())]
    Serialize { path: PathBuf, message: String },
}
