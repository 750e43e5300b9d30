//! Everything that can go wrong, with the values and paths involved.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::signing::PublicKey;

/// A registry error.
///
/// Every variant carries the offending values and paths so a caller can
/// build hints without parsing messages. Messages are lowercase, without a
/// trailing period, with values in backticks; untrusted strings are escaped
/// so control characters cannot reach a terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An OCI image layout that cannot be read, or whose blobs do not match
    /// their descriptors.
    #[error("invalid OCI image layout `{}`: {reason}", .path.display())]
    Oci { path: PathBuf, reason: String },

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

    /// A version requirement (`1`, `^1.2`, `~1.2`, `=1.2.3`, `*`, …) that
    /// [`VersionReq`](crate::VersionReq) cannot parse.
    #[error("invalid version requirement `{}`: {reason}", .requirement.escape_debug())]
    InvalidVersionReq { requirement: String, reason: String },

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
        backticked(.candidates)
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

    /// [`Registry::remove`](crate::Registry::remove) of something not pinned.
    #[error("`{}@{}` is not in the registry", .name.escape_debug(), .version.escape_debug())]
    NotPinned { name: String, version: String },

    #[error("failed to lock `{}`", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The operating system's random number generator failed.
    #[error("failed to get random bytes for a new key: {message}")]
    Random { message: String },

    /// [`SigningKey::write_new`](crate::SigningKey::write_new) never
    /// overwrites a file.
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

    /// A signature, trust or accepted-serials file is not valid TOML or does
    /// not match its format; `message` is the parser's, with line and column.
    #[error("failed to parse `{}`: {message}", .path.display())]
    Parse { path: PathBuf, message: String },

    /// A trust file that parses but is inconsistent (a duplicate name or key).
    #[error("invalid trust file `{}`: {reason}", .path.display())]
    InvalidTrust { path: PathBuf, reason: String },

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

    /// A bundle that is not exactly what [`Registry::export`] writes.
    ///
    /// [`Registry::export`]: crate::Registry::export
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

    /// [`Registry::mirror`](crate::Registry::mirror) was given something
    /// other than an `http://` or `https://` URL of a directory.
    #[error("invalid mirror URL `{}`: {reason}", .url.escape_debug())]
    MirrorUrl { url: String, reason: String },

    /// A request to a mirror failed before its answer was complete: no
    /// connection, a timeout, a connection dropped mid-transfer, a redirect
    /// to another origin. `blob` is set when the file was a blob. Nothing
    /// was changed.
    #[error("failed to fetch {}: {reason}; nothing was changed", fetched(.url, .blob))]
    Fetch {
        url: String,
        blob: Option<Digest>,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A mirror answered with another status than `200 OK` (a missing
    /// `index.toml.sig` is an unsigned index, not an error). Nothing was
    /// changed.
    #[error("{}", http_status_message(.url, .blob, *.status))]
    HttpStatus { url: String, blob: Option<Digest>, status: u16 },

    /// A mirror sent more than `limit` bytes: more than the index says for
    /// a blob, or more than an index or signature may be. The transfer was
    /// stopped there. Nothing was changed.
    #[error("{} is larger than {limit} bytes{}; nothing was changed", fetched(.url, .blob), if .blob.is_some() { ", the size the index gives it" } else { ", more than allowed" })]
    MirrorTooLarge { url: String, blob: Option<Digest>, limit: u64 },

    /// A blob from a mirror whose bytes do not hash to the digest the
    /// signed index pins. Nothing was changed.
    #[error(
        "blob `{expected}` from `{url}` has digest `{computed}`: the mirror is corrupt or was tampered with; nothing was changed"
    )]
    MirrorBlobMismatch { url: String, expected: Digest, computed: Digest },
}

impl Error {
    /// What the operator can do about this error, when there is one thing
    /// to say: printed as `hint:` under the message. Each trust error has
    /// its own, so a signature problem is never answered with advice about
    /// adding plugins.
    pub fn hint(&self) -> Option<String> {
        if let Error::NoMatchingVersion { name, available, names, .. } = self
            && available.is_empty()
            && let Some(suggestion) = crate::text::did_you_mean(name, names)
        {
            return Some(suggestion);
        }
        self.fixed_hint().map(str::to_owned)
    }

    fn fixed_hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::NotFound { .. } => "create one with `backout registry init` or `backout registry add FILE`",
            Error::Unsigned { .. } => {
                "ask the publisher for a signed index (they run `backout registry sign --key FILE`); a registry \
                 built on this host is signed with your own key, listed in the trust file"
            }
            Error::BadSignature { .. } => {
                "`index.toml` was edited after it was signed: if the change is yours, sign it again with \
                 `backout registry sign --key FILE`; if not, get the publisher's registry again (`backout \
                 registry import BUNDLE` or `backout registry mirror --from URL`)"
            }
            Error::UntrustedKey { .. } => {
                "if you trust this publisher, add its key to the trust file as a `[[key]]` with `name` and `public`"
            }
            Error::Rollback { .. } => {
                "someone put back an older index; import or mirror the publisher's newest registry"
            }
            Error::SerialReused { .. } => {
                "two different indexes claim the same serial: ask the publisher which is real"
            }
            Error::Expired { .. } | Error::TooOld { .. } | Error::AgeUnknown => {
                "the publisher signs a fresh index with `backout registry sign --key FILE --expires-in 30d`; \
                 then `backout registry import` or `mirror` it here"
            }
            Error::SignatureRequired { .. } => {
                "list the publisher's key in the trust file (`--trust FILE`), or drop `--require-signed` \
                 (`require_signed` in the trust file)"
            }
            Error::SignedIndex { .. } => {
                "add `--key FILE` to sign the changed index again, or `--unsign` to drop the signature (hosts \
                 that trust the key then refuse the registry until it is signed again)"
            }
            Error::BlobMissing { .. } | Error::DigestMismatch { .. } => {
                "put the blob back with `backout registry add FILE` (the original component), or \
                 `backout registry import BUNDLE` / `backout registry mirror --from URL` of the publisher's registry"
            }
            Error::Conflict { .. } => "publish the new bytes under a new version: a pinned version never changes",
            Error::NoMatchingVersion { .. } | Error::NotPinned { .. } => {
                "`backout registry list` shows every plugin and version the registry holds"
            }
            Error::HttpStatus { blob: None, status: 404, .. } => {
                "serve the registry directory itself: URL/index.toml, URL/index.toml.sig and URL/blobs/sha256/<hex>"
            }
            _ => return None,
        })
    }
}

/// "blob `sha256:…` from `URL`", or just "`URL`".
fn fetched(url: &str, blob: &Option<Digest>) -> String {
    match blob {
        Some(digest) => format!("blob `{digest}` from `{url}`"),
        None => format!("`{url}`"),
    }
}

fn http_status_message(url: &str, blob: &Option<Digest>, status: u16) -> String {
    match (blob, status) {
        (Some(digest), 404) => format!(
            "the mirror has no blob `{digest}`: `{url}` answered HTTP 404; the mirror is incomplete; nothing was changed"
        ),
        (None, 404) => format!(
            "`{url}` answered HTTP 404: no registry is published there (the URL must be the directory holding `index.toml`); nothing was changed"
        ),
        _ => format!("{} answered HTTP {status}; nothing was changed", fetched(url, blob)),
    }
}

fn backticked(values: &[String]) -> String {
    crate::text::backticked(values)
}

fn no_match_message(name: &str, requirement: &str, available: &[String], names: &[String]) -> String {
    if available.is_empty() {
        let holds = match names {
            [] => "it is empty".to_owned(),
            names => format!("it holds {}", backticked(names)),
        };
        format!("no plugin named `{}` in the registry; {holds}", name.escape_debug())
    } else {
        let name = name.escape_debug();
        format!("no version of `{name}` matches `{}`, available: {}", requirement.escape_debug(), backticked(available))
    }
}
