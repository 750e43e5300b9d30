//! backout: run rollback steps as sandboxed WebAssembly components.
//!
//! The data flow, one module per stage (see `ARCHITECTURE.md`):
//!
//! ```text
//! runbook.toml ─runbook─▶ Runbook ─resolve─▶ Plan ─execute─▶ journal ─history─▶ RunRecord ─report─▶ text / JSON
//!                                                  (unwind)
//! ```
//!
//! - [`runbook`] knows TOML and the runbook's shape, nothing else;
//! - [`resolve`] verifies every plugin's bytes against its pins, checks every
//!   grant, reference and failure policy, and asks every plugin to plan
//!   (read-only) — all before anything runs, reporting every problem at once;
//! - [`execute`] accepts only a [`plan::Plan`], runs its steps in order and
//!   meets failures with the runbook's [`policy`] ([`unwind`] puts changes back);
//! - every state change goes through the [`recorder`] into the [`journal`];
//!   [`history`] folds a journal into the [`history::RunRecord`] that the
//!   executor, `show`, `undo` and `resume` all read;
//! - [`run_lock`] keeps two runs off the same runbook and directories;
//! - [`runtime`] is the sandbox; [`capability`] holds one module per grant.
//!
//! `unsafe` code is denied, not forbidden, for exactly one function:
//! `runtime::cache::deserialize_verified`, which loads a compiled component
//! from the compile cache (`Component::deserialize` is `unsafe` in wasmtime)
//! and carries the safety argument in [`runtime::cache`]. Every other
//! `unsafe` is an error; an `#[allow(unsafe_code)]` anywhere else is a review
//! question.
#![deny(unsafe_code)]

/// "Did you mean" and counted nouns ("1 step", "2 steps"): one helper for every message.
pub use backout_registry::text;
pub use backout_runbook::{diagnostic, lockfile, problems, runbook, template};

pub mod capability;
pub mod execute;
pub mod history;
pub mod journal;
pub mod plan;
pub mod policy;
/// Durations and sizes: the SDK's grammar, shared with plugins (one file, two crates).
#[path = "../../sdk/src/quantity.rs"]
pub mod quantity;
pub mod recorder;
pub mod redact;
pub mod report;
pub mod resolve;
pub mod rto;
pub mod run_lock;
pub mod runtime;
pub mod shown;
pub mod unwind;
pub mod with_keys;
