//! What a runbook and its lock say, and nothing more: the first stage of
//! backout's data flow, kept in its own small crate so the parsers can be
//! fuzzed and tested without building the sandbox.
//!
//! - [`runbook`] parses TOML into typed structs that keep byte spans;
//! - [`template`] splits `${…}` references out of strings;
//! - [`keys`] checks every table's keys by name (unknown and missing keys,
//!   typed, with "did you mean");
//! - [`diagnostic`] is how every problem is reported (file, line, column, hint);
//! - [`lockfile`] reads and writes `RUNBOOK.lock`;
//! - [`problems`] reads a plugin's `invalid-config` problems, each naming its
//!   key by JSON pointer, and [`key_span`] finds that key in the runbook.
//!
//! The `backout` crate re-exports each module under the same name
//! (`backout::runbook`, …). Nothing here touches wasmtime, a registry's
//! blobs or the network.
#![forbid(unsafe_code)]

pub mod diagnostic;
pub mod key_span;
pub mod keys;
pub mod lockfile;
/// A config's problems and the `invalid-config` convention that names their
/// keys: the SDK's file, shared (one file, two crates).
#[path = "../../../sdk/src/config/problems.rs"]
pub mod problems;
pub mod runbook;
pub mod template;
