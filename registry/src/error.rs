//! The crate's error: one variant per module, each wrapping that module's
//! own error enum.
//!
//! Each module says what can go wrong in its own terms, with the values and
//! paths involved (`fsio::FileError`, `index::IndexError`,
//! `trust::TrustError`, …), so a caller that matches on one sees only the
//! variants that module can produce. Functions that cross modules (most of
//! [`Registry`](crate::Registry)'s) return this [`Error`]; `?` wraps a
//! module's error without changing its message, its causes or its hint.
//! This module imports the error types only: nothing here depends on
//! digests or keys, and no module depends on this one but through `?`.

use crate::bundle::BundleError;
use crate::digest::InvalidDigest;
use crate::fsio::FileError;
use crate::index::IndexError;
use crate::mirror::MirrorError;
use crate::oci::OciError;
use crate::registry::StoreError;
use crate::signing::SigningError;
use crate::trust::{TrustError, TrustFileError};
use crate::validate::ValidateError;
use crate::version_req::InvalidVersionReq;

/// A registry error: the error of the module that refused, as it is.
///
/// Messages are lowercase, without a trailing period, with values in
/// backticks; untrusted strings are escaped so control characters cannot
/// reach a terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing, renaming, syncing or locking a file.
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    /// A name, version or other entry field that may not enter an index.
    #[error(transparent)]
    Validate(#[from] ValidateError),
    #[error(transparent)]
    VersionReq(#[from] InvalidVersionReq),
    /// `index.toml` itself: its syntax, format and entries.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// What the registry's pins and blobs refuse.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys and `index.toml.sig`.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The trust file and the accepted-serials file.
    #[error(transparent)]
    TrustFile(#[from] TrustFileError),
    /// The signature policy's refusals.
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Oci(#[from] OciError),
}

impl Error {
    /// What the operator can do about this error, when there is one thing
    /// to say: printed as `hint:` under the message. Each trust error has
    /// its own, so a signature problem is never answered with advice about
    /// adding plugins.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.hint(),
            Error::Trust(e) => Some(e.hint().to_owned()),
            Error::Mirror(e) => e.hint().map(str::to_owned),
            _ => None,
        }
    }
}

/// The hint of a registry error, whichever type it reached the caller as:
/// [`Error`], or a module's own error returned directly. For a printer that
/// walks an error's causes; it downcasts, never reads message text.
pub fn hint_of(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = error.downcast_ref::<Error>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<StoreError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<TrustError>() {
        Some(e.hint().to_owned())
    } else {
        error.downcast_ref::<MirrorError>().and_then(MirrorError::hint).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_modules_error_keeps_its_message_and_hint_when_wrapped() {
        let refusal = TrustError::Rollback { accepted: 8, found: 7 };
        let wrapped = Error::from(refusal.clone());
        assert_eq!(wrapped.to_string(), refusal.to_string());
        assert_eq!(wrapped.hint().as_deref(), Some(refusal.hint()));
    }

    #[test]
    fn hint_of_finds_the_hint_whichever_type_the_error_arrives_as() {
        let missing = || StoreError::NoMatchingVersion {
            name: "hostle".into(),
            requirement: "*".into(),
            available: vec![],
            names: vec!["env-toggle".into(), "hostile".into()],
        };
        let expected = Some("did you mean `hostile`?".to_owned());
        assert_eq!(hint_of(&missing()), expected);
        assert_eq!(hint_of(&Error::from(missing())), expected);
        assert!(hint_of(&TrustError::AgeUnknown).is_some_and(|h| h.contains("--expires-in")));
        let not_found = MirrorError::HttpStatus { url: "https://x/index.toml".into(), blob: None, status: 404 };
        assert!(hint_of(&not_found).is_some_and(|h| h.starts_with("serve the registry directory")));
        let io = FileError::TooLarge { path: PathBuf::from("index.toml.sig"), limit: 1 };
        assert_eq!(hint_of(&io), None, "a file error has nothing more to say than its message");
    }
}
