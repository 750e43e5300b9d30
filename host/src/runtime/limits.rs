//! Per-step resource limits: wall-clock time, memory, and bytes received
//! over the network.
//!
//! Time is bounded twice, because each mechanism misses a case: the epoch
//! deadline interrupts a guest spinning in wasm code, and a `tokio` timeout
//! around every call covers a guest parked inside a host call. Memory is
//! bounded across all of a component's linear memories together, so a
//! component with several core instances cannot multiply its allowance.

use std::time::Duration;

use serde::Serialize;
use wasmtime::ResourceLimiter;

use crate::quantity::{format_duration, format_size};

/// The default wall-clock budget of one call into a step.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default memory budget of one step instance.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// wasm32 cannot address more than 4 GiB.
pub const MAX_MEMORY: u64 = 4 << 30;
/// The default cap on response body bytes one call may receive over
/// `wasi:http`, all requests together: enough for health checks and API
/// answers, small enough that a runaway response cannot fill a disk or hold
/// the step for long. Raise it per step (`max_received`) for downloads.
pub const DEFAULT_MAX_RECEIVED: u64 = 64 << 20;

/// Limits for one step, from the runbook (or the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    pub memory: u64,
    /// Response body bytes one call may receive over the network.
    pub max_received: u64,
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

impl Default for Limits {
    fn default() -> Self {
        Self { timeout: DEFAULT_TIMEOUT, memory: DEFAULT_MEMORY, max_received: DEFAULT_MAX_RECEIVED }
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timeout {}, memory {}, max_received {}",
            format_duration(self.timeout),
            format_size(self.memory),
            format_size(self.max_received)
        )
    }
}

/// Table elements one instance may have (function tables of ordinary
/// programs hold a few thousand).
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, memories and tables one component may create. Rust and C
/// plugins use one or two of each; Python components use a few dozen instances.
const MAX_INSTANCES: usize = 100;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 100;

/// Tracks the memory a store has been given and refuses growth past the
/// limit, remembering that it did so the failure can be reported as a limit,
/// not as an anonymous trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    /// The total that was asked for when the limit was hit.
    pub exceeded: Option<u64>,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0, exceeded: None }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self.used + (desired.saturating_sub(current)) as u64;
        if wanted > self.limit {
            self.exceeded = Some(wanted);
            wasmtime::bail!(
                "memory limit of {} exceeded: the step asked for {} in total",
                format_size(self.limit),
                format_size(wanted)
            );
        }
        self.used = wanted;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_counted_across_memories() {
        let mut l = MemoryLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 30, None).unwrap());
        let e = l.memory_growing(30, 50, None).unwrap_err();
        assert!(e.to_string().contains("memory limit of 100B exceeded"), "{e}");
        assert_eq!(l.exceeded, Some(110));
    }
}
