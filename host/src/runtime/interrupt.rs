//! Stopping a run at a safe point: the operator's Ctrl-C (or a SIGTERM)
//! reaches every call into a plugin through an [`Interrupt`].
//!
//! The CLI triggers it on the first signal. A plugin call in flight is then
//! cancelled: the epoch callback traps a guest running wasm code, and the
//! call's future is dropped if the guest is parked in a host call (an HTTP
//! request). The executor checks it between calls. Undo calls are not given
//! it: once a failure or an interrupt has started putting things back, that
//! work runs to its end unless the operator signals again, which the CLI
//! answers by exiting at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cheap, cloneable "stop now" flag with an async wait.
#[derive(Clone)]
pub struct Interrupt(Arc<Inner>);

struct Inner {
    set: AtomicBool,
    reason: std::sync::Mutex<Option<String>>,
    changed: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt").field("set", &self.is_set()).finish()
    }
}

impl Default for Interrupt {
    fn default() -> Self {
        Self::new()
    }
}

impl Interrupt {
    /// A flag that is not set.
    pub fn new() -> Self {
        let (changed, _) = tokio::sync::watch::channel(false);
        Self(Arc::new(Inner { set: AtomicBool::new(false), reason: std::sync::Mutex::new(None), changed }))
    }

    /// Sets the flag; `reason` names the signal (`SIGINT`). Later triggers
    /// keep the first reason.
    pub fn trigger(&self, reason: &str) {
        let mut slot = self.0.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| reason.to_string());
        drop(slot);
        self.0.set.store(true, Ordering::SeqCst);
        self.0.changed.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    /// Why it was set (`SIGINT`), if it was.
    pub fn reason(&self) -> Option<String> {
        self.0.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves once the flag is set (at once if it already is).
    pub async fn wait(&self) {
        let mut rx = self.0.changed.subscribe();
        let _ = rx.wait_for(|set| *set).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_ends_when_triggered_and_the_first_reason_is_kept() {
        let i = Interrupt::new();
        assert!(!i.is_set());
        let waiter = tokio::spawn({
            let i = i.clone();
            async move { i.wait().await }
        });
        i.trigger("SIGINT");
        i.trigger("SIGTERM");
        waiter.await.unwrap();
        assert!(i.is_set());
        assert_eq!(i.reason().as_deref(), Some("SIGINT"));
        i.wait().await; // already set: returns at once
    }
}
