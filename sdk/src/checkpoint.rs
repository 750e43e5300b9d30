//! Checkpoints: the write-ahead record that makes a step recoverable when
//! backout itself is killed.
//!
//! A step that writes calls [`checkpoint`] once it knows everything `verify`
//! and `undo` need (the safety copy's path, the digest it is about to write),
//! and before its first change that a crash could leave behind (the rename
//! over the live file). The host journals the outputs durably before the call
//! returns. If backout dies before `run` returns, `backout resume` and
//! `backout undo` hand the last checkpoint to `verify` and `undo` as the
//! run's outputs, so both must work whether the change happened or not:
//! `verify` fails if it did not, and `undo` succeeds without changing
//! anything when there is nothing to put back.
//!
//! Only `run` may call it; each call replaces the previous one, and `run`'s
//! own outputs replace them all.
//!
//! Off wasm (a plugin's native unit tests) nothing is journaled: each
//! checkpoint is kept in a per-thread list that [`recorded`] returns, and
//! [`set_hook`] lets a test look at the files at the moment of the
//! checkpoint, or make it fail as the host would.

use crate::StepError;

/// The host refuses larger checkpoints; the native stand-in does too, so a
/// plugin's unit tests catch an oversized record before the host does.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Records `outputs` as the step's write-ahead checkpoint (see the module
/// docs). `outputs` must serialize to a JSON object of at most [`MAX_BYTES`]:
/// the same type `run` returns, filled in as `run` would return it.
///
/// An error means the record is not durable: the step must then change
/// nothing and fail with it (the message already says "nothing was
/// changed"). Remove whatever the step created so far (a safety copy, a
/// temporary file) before returning it.
pub fn checkpoint<T: serde::Serialize>(outputs: &T) -> Result<(), StepError> {
    let refused = |why: String| {
        StepError::failed(format!("cannot record a checkpoint before changing anything: {why}; nothing was changed"))
    };
    let value = serde_json::to_value(outputs).map_err(|e| refused(format!("cannot encode the outputs: {e}")))?;
    if !value.is_object() {
        return Err(refused("the outputs are not a JSON object".to_owned()));
    }
    let json = value.to_string();
    if json.len() > MAX_BYTES {
        return Err(refused(format!("the outputs are {} bytes, more than the {MAX_BYTES} allowed", json.len())));
    }
    record(value, json).map_err(refused)
}

#[cfg(target_family = "wasm")]
fn record(_: serde_json::Value, json: String) -> Result<(), String> {
    crate::bindings::backout::step::host::checkpoint(&json)
}

#[cfg(not(target_family = "wasm"))]
pub use native::{clear, recorded, set_hook};

#[cfg(not(target_family = "wasm"))]
use native::record;

/// The stand-in for plugins' native unit tests. Every test runs on its own
/// thread, so the records of one test never mix with another's.
#[cfg(not(target_family = "wasm"))]
mod native {
    use std::cell::RefCell;

    use serde_json::Value;

    type Hook = Box<dyn FnMut(&Value) -> Result<(), String>>;

    thread_local! {
        static RECORDED: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(super) fn record(value: Value, _: String) -> Result<(), String> {
        // Taken out while it runs, so a hook may itself look at `recorded()`.
        let hook = HOOK.with(|h| h.borrow_mut().take());
        let result = match hook {
            Some(mut hook) => {
                let result = hook(&value);
                HOOK.with(|h| {
                    let mut slot = h.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(hook);
                    }
                });
                result
            }
            None => Ok(()),
        };
        if result.is_ok() {
            RECORDED.with(|r| r.borrow_mut().push(value));
        }
        result
    }

    /// Every checkpoint this thread recorded, oldest first. Native only.
    pub fn recorded() -> Vec<Value> {
        RECORDED.with(|r| r.borrow().clone())
    }

    /// Forgets this thread's checkpoints and its hook. Native only.
    pub fn clear() {
        RECORDED.with(|r| r.borrow_mut().clear());
        HOOK.with(|h| *h.borrow_mut() = None);
    }

    /// Runs `hook` at each later checkpoint on this thread, before it is
    /// recorded: a test can look at the files at that moment (nothing may
    /// have changed yet), and an `Err` makes [`super::checkpoint`] fail with
    /// that reason, as a host that cannot journal would. Native only.
    pub fn set_hook(hook: impl FnMut(&Value) -> Result<(), String> + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checkpoints_are_recorded_in_order_on_this_thread() {
        clear();
        checkpoint(&json!({"step": 1})).unwrap();
        checkpoint(&json!({"step": 2})).unwrap();
        assert_eq!(recorded(), [json!({"step": 1}), json!({"step": 2})]);
        clear();
        assert!(recorded().is_empty());
    }

    #[test]
    fn outputs_that_are_not_an_object_are_refused_and_not_recorded() {
        clear();
        let error = checkpoint(&json!([1, 2])).unwrap_err();
        assert_eq!(
            error,
            StepError::failed(
                "cannot record a checkpoint before changing anything: the outputs are not a JSON object; \
                 nothing was changed"
            )
        );
        assert!(recorded().is_empty());
    }

    #[test]
    fn oversized_outputs_are_refused() {
        clear();
        let error = checkpoint(&json!({"big": "x".repeat(MAX_BYTES)})).unwrap_err();
        assert!(error.message().contains("more than the 1048576 allowed"), "{error}");
        assert!(recorded().is_empty());
    }

    #[test]
    fn a_failing_hook_fails_the_checkpoint_and_sees_what_came_before() {
        clear();
        checkpoint(&json!({"n": 1})).unwrap();
        set_hook(|outputs| {
            assert_eq!(recorded().len(), 1, "the hook runs before the record");
            if outputs["n"] == 2 { Err("journal is full".to_owned()) } else { Ok(()) }
        });
        let error = checkpoint(&json!({"n": 2})).unwrap_err();
        assert!(error.message().contains(": journal is full; nothing was changed"), "{error}");
        assert_eq!(recorded(), [json!({"n": 1})]);
        clear();
    }
}
