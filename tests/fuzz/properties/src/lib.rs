//! The properties backout's fuzz targets check, each written once and used
//! twice: by the libFuzzer targets in `tests/fuzz/fuzz_targets/` (nightly,
//! `cargo fuzz`), and by `tests/regressions.rs`, which replays every saved
//! input through the same function under `cargo test` on stable.
//!
//! Every target takes raw bytes and panics when a property fails; a panic
//! is what libFuzzer reports as a crash. Each checks more than "does not
//! panic":
//!
//! - [`runbook`]: an error always has a location inside the text; every span
//!   of a parsed runbook lies inside the text; every `${…}` in it parses;
//! - [`template`]: text without `{` parses with no references and renders as
//!   written, `$$` as `$`; writing the parsed segments back (`$` escaped)
//!   parses to the same template;
//! - [`lockfile`], [`index`]: what parses renders as backout writes it and
//!   parses back to the same value;
//! - [`trust`]: a parsed trust store has unique names and keys, and written
//!   back as a trust file it reads as the same store;
//! - [`bundle_tar`]: the tar reader never reads past the input and accepts
//!   only well-formed archives of regular files (no links, no special files);
//!   a bundle is read only when its entries are exactly `index.toml`,
//!   `index.toml.sig` and `blobs/sha256/<hex>` (so never `..` or an absolute
//!   path);
//! - [`dotenv`]: an edit changes only the lines of its targeted keys (every
//!   other byte identical), the result reads as requested, planning is
//!   deterministic, and planning the same edit again on the result changes
//!   nothing.
//!
//! Inputs are bytes; the text parsers see them decoded lossily (the files
//! are read as UTF-8, so invalid bytes never reach them; lossy decoding
//! keeps the fuzzer's mutations useful).
#![forbid(unsafe_code)]

mod dotenv;
mod registry;
mod runbook;

pub use dotenv::dotenv;
pub use registry::{bundle_tar, index, trust};
pub use runbook::{lockfile, runbook, template};

/// One fuzz target: its name (the file in `fuzz_targets/`, the directories
/// under `seeds/` and `regressions/`), its property, and the directories of
/// the repository whose files also seed it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
    /// Relative to the repository's root; `tests/fuzz/run.sh` passes the
    /// same directories to libFuzzer.
    pub repository_seeds: &'static [&'static str],
}

/// Every target, in the order `tests/fuzz/run.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "runbook", check: runbook, repository_seeds: &["tests/e2e/golden", "tests/demo"] },
    Target { name: "template", check: template, repository_seeds: &["tests/e2e/golden", "tests/demo"] },
    Target { name: "lockfile", check: lockfile, repository_seeds: &[] },
    Target { name: "index", check: index, repository_seeds: &[] },
    Target { name: "trust", check: trust, repository_seeds: &[] },
    Target { name: "bundle_tar", check: bundle_tar, repository_seeds: &[] },
    Target { name: "dotenv", check: dotenv, repository_seeds: &[] },
];
