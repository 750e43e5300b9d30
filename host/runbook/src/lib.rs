//! What a runbook and its lock say, and nothing more: the first stage of
//! backout's data flow, kept in its own small crate so the parsers can be
//! fuzzed and tested without building the sandbox.
//!
//! - [`runbook`] parses TOML into typed structs that keep byte spans;
//! - [`template`] splits `${…}` references out of strings;
//! - [`diagnostic`] is how every problem is reported (file, line, column, hint);
//! - [`lockfile`] reads and writes `RUNBOOK.lock`.
//!
//! The `backout` crate re-exports each module under the same name
//! (`backout::runbook`, …). Nothing here touches wasmtime, a registry's
//! blobs or the network.
#![forbid(unsafe_code)]

pub mod diagnostic;
pub mod lockfile;
pub mod runbook;
pub mod template;
