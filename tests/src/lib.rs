//! Shared pieces of backout's end-to-end tests (`tests/e2e/`): the guest
//! components built from source by `build.rs`, and helpers that drive the real
//! `backout` binary against temp directories.
#![forbid(unsafe_code)]

pub mod cli;

/// The env-toggle plugin, built from `plugins/env-toggle`.
pub const ENV_TOGGLE: &str = env!("GUEST_ENV_TOGGLE");
/// The test-only plugin that attacks its sandbox, built from `tests/plugins/hostile`.
pub const HOSTILE: &str = env!("GUEST_HOSTILE");
