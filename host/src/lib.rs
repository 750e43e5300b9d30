//! backout: run rollback steps as sandboxed WebAssembly components.
//!
//! The data flow, one module per stage (see `ARCHITECTURE.md`):
//!
//! ```text
//! runbook.toml ─runbook─▶ Runbook ─resolve─▶ Plan ─execute─▶ RunReport ─report─▶ text / JSON
//! ```
//!
//! - [`runbook`] knows TOML and the runbook's shape, nothing else;
//! - [`resolve`] verifies every plugin's bytes against its pins, checks every
//!   grant and reference, and asks every plugin to plan (read-only) — all
//!   before anything runs, reporting every problem at once;
//! - [`execute`] accepts only a [`plan::Plan`] and runs its steps in order;
//! - [`runtime`] is the sandbox; [`capability`] holds one module per grant.
#![forbid(unsafe_code)]

pub mod capability;
pub mod diagnostic;
pub mod execute;
pub mod journal;
pub mod lockfile;
pub mod plan;
/// Durations and sizes: the SDK's grammar, shared with plugins (one file, two crates).
#[path = "../../sdk/src/quantity.rs"]
pub mod quantity;
pub mod redact;
pub mod report;
pub mod resolve;
pub mod runbook;
pub mod runtime;
pub mod template;
