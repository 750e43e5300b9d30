#![forbid(unsafe_code)]
//! The pinned plugin registry of backout.
//!
//! backout runs rollback steps as sandboxed WebAssembly components, usually
//! while something is already on fire. The sandbox limits what a component
//! may do; this crate makes sure it is the component the operator meant to
//! run. A runbook names plugins as `name@version`; the host looks that up in
//! a local registry, which pins it to a sha256 digest, and compiles only
//! bytes that hash to that digest. A swapped, truncated or bit-rotted file is
//! refused instead of run.
//!
//! The registry is plain files, so it can be copied with `cp -r` or `rsync`
//! to an air-gapped host and verified there, with no server and no network:
//!
//! ```text
//! <registry dir>/
//!   index.toml                          # what is pinned (format = 1)
//!   index.toml.sig                      # the publisher's signature, if signed
//!   blobs/sha256/<64 lowercase hex>     # component bytes, named by their digest
//!   .lock                               # empty; writers lock it (see `lock`)
//! ```
//!
//! ```toml
//! format = 1
//! serial = 3          # increases by one on every change of the index
//! expires = "2026-12-23T00:00:00Z"   # optional, set by `Registry::sign`
//! signed = "2026-12-09T00:00:00Z"    # set by `Registry::sign`: bounds the age of an index without `expires`
//!
//! [[plugin]]
//! name = "env-toggle"
//! version = "0.1.0"
//! digest = "sha256:<hex>"
//! size = 123456
//! world = "backout:step/plugin@0.1.0"
//! publisher = "local"          # optional, default "local"
//! added = "2026-11-23T11:18:41Z"
//! ```
//!
//! # Guarantees
//!
//! - **Blobs are addressed by digest only.** Names and versions never become
//!   paths; they are validated anyway ([`validate_name`],
//!   [`validate_version`]) so `../x` or look-alike unicode never enters an
//!   index.
//! - **What is hashed is what is compiled.** [`Registry::read_verified`]
//!   reads a blob once and returns those very bytes only if they match.
//! - **Pins are never replaced.** Adding other bytes under an existing
//!   `name@version` is [`StoreError::Conflict`].
//! - **A signature is never broken silently.** Adding to or removing from a
//!   signed index is [`StoreError::SignedIndex`] unless the caller says to sign
//!   it again or to drop the signature ([`OnSigned`]).
//! - **Damage heals from any copy of the bytes.** Adding the original
//!   component again, or importing or mirroring an index that pins it,
//!   replaces a missing or corrupt blob atomically.
//! - **Writes are atomic and durable.** Blobs and the index are written to a
//!   temporary file, flushed, renamed into place and the directory flushed: a
//!   reader sees the old index or the new one, never a torn one.
//! - **The index is strict.** Unknown keys, another `format`, invalid names,
//!   versions or timestamps and duplicate entries are errors, never ignored.
//!   Entries are written sorted by name and semver precedence, so the same
//!   registry always has the same bytes.
//! - **One writer at a time.** Add, remove, gc, sign, export, import and
//!   mirror hold an exclusive lock on `.lock` for their whole read-modify-write and
//!   re-read the index under it: concurrent writers never lose entries.
//! - **Signed indexes, when asked for.** [`Registry::sign`] signs the exact
//!   index bytes (ed25519); [`Registry::check_trust`] refuses an unsigned,
//!   edited, untrusted, replayed (older serial) or expired index once a
//!   [`TrustStore`] lists any key.
//! - **Air-gap bundles are all or nothing.** [`Registry::export`] writes one
//!   deterministic tar; [`Registry::import`] checks the signature, every
//!   digest and the serial before writing, and leaves the registry byte for
//!   byte unchanged on failure.
//! - **Mirrors verify like imports.** [`Registry::mirror`] fetches a
//!   registry from any static file server over HTTP(S), passes its index
//!   through the same policy and serial checks, streams and hashes every
//!   missing blob into a temporary file first, and admits with the same
//!   code as an import: all or nothing.
//!
//! # Room to grow
//!
//! `format` names the layout; a reader refuses formats it does not know
//! instead of guessing. Digests carry their algorithm (`sha256:`) and blobs
//! live under `blobs/sha256/`, so another algorithm can sit beside it. The
//! `serial` identifies one state of the index, for lockfiles and signatures
//! to refer to; `publisher` is where signed third-party entries will differ
//! from `local` ones. The signature, trust and accepted-serials files and
//! the key file carry their own format versions ([`SigningKey`],
//! [`TrustStore`]).
//!
//! # Example
//!
//! ```
//! use backout_registry::Registry;
//!
//! # fn main() -> Result<(), backout_registry::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let root = dir.path();
//! # let component_bytes: &[u8] = b"\0asm component";
//! let mut registry = Registry::open_or_init(root)?;
//! let entry = registry.add("env-toggle", "0.1.0", "backout:step/plugin@0.1.0", component_bytes)?;
//!
//! // Later, possibly on another host after `rsync`:
//! let registry = Registry::open(root)?;
//! let entry = registry.find("env-toggle", "0.1.0").expect("pinned");
//! let bytes = registry.read_verified(&entry.digest)?; // compile exactly these
//! # assert_eq!(bytes, component_bytes);
//! # Ok(())
//! # }
//! ```

mod bundle;
mod digest;
mod error;
mod format;
mod fsio;
mod index;
mod lock;
mod mirror;
pub mod oci;
mod registry;
mod signing;
mod tar;
pub mod text;
mod time;
mod trust;
mod validate;
mod verify;
mod version_req;

pub use bundle::{BundleError, ImportReport};
pub use digest::{Digest, DigestError, InvalidDigest};
pub use error::{Error, hint_of};
pub use format::FormatError;
pub use fsio::{FileError, write_atomic};
/// The index parser and the tar reader, for the fuzz targets in
/// `tests/fuzz` only: not part of the API, they may change at any time.
#[doc(hidden)]
pub use index::Index;
pub use index::{Entry, IndexError};
pub use mirror::{MAX_REDIRECTS, MirrorError, MirrorOptions};
pub use oci::OciError;
pub use registry::{AddOutcome, AddReport, BlobDamage, OnSigned, Registry, SignatureChange, StoreError};
pub use signing::{PublicKey, SigningError, SigningKey};
#[doc(hidden)]
pub use tar::{TarEntry, read_entries as read_tar_entries};
pub use time::{parse_utc, utc_timestamp};
pub use trust::{AcceptedSerials, TrustError, TrustFileError, TrustStore, Trusted, TrustedKey};
pub use validate::{ValidateError, validate_name, validate_version};
pub use verify::{CorruptBlob, IndexReport, SignatureState, VerifyReport};
pub use version_req::{InvalidVersionReq, VersionReq};
