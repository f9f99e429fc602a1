//! Cancellation of a running operation, asked for by whoever owns the process (the
//! CLI on SIGINT/SIGTERM, a daemon when a job is cancelled) and honoured by the engine
//! at its next safe point.
//!
//! A flag alone is not enough: an operation can be blocked in a read from a server that
//! never answers, and what it stopped (a container stopped while its data is read) must
//! be started again *before* the process ends, whether or not the operation ever reaches
//! a safe point. So a [`Cancel`] also holds cleanup hooks ([`Cancel::on_cancel`]) that
//! [`Cancel::cancel`] runs in the caller's thread before it returns. That synchronous
//! cleanup is why this is our own small type and not `tokio_util`'s token (which has no
//! synchronous callbacks and would bring an async runtime into the domain).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A cleanup hook; receives the reason given to [`Cancel::cancel`].
type Hook = Box<dyn FnOnce(&str) + Send>;

/// A shared cancellation flag with cleanup hooks. Clones share one state.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    reason: Option<String>,
    next_id: u64,
    hooks: Vec<(u64, Hook)>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking hook must not make cancellation itself unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("reason", &self.reason())
            .finish()
    }
}

impl Cancel {
    /// A token nobody has cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the operation to stop, for `reason` (e.g. `SIGTERM`, `cancelled by the
    /// operator`). Runs every registered hook (newest first) in this thread and returns
    /// when they are done, so a caller that ends the process afterwards leaves nothing
    /// stopped. Only the first call counts; later calls return at once.
    pub fn cancel(&self, reason: impl Into<String>) {
        let (reason, hooks) = {
            let mut state = self.inner.state();
            if state.reason.is_some() {
                return;
            }
            let reason = reason.into();
            state.reason = Some(reason.clone());
            self.inner.cancelled.store(true, Ordering::SeqCst);
            (reason, std::mem::take(&mut state.hooks))
        };
        for (_, hook) in hooks.into_iter().rev() {
            hook(&reason);
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// The reason given to [`Cancel::cancel`], once cancelled.
    pub fn reason(&self) -> Option<String> {
        self.inner.state().reason.clone()
    }

    /// Registers `hook` to run when the operation is cancelled; it is forgotten when the
    /// returned [`CancelHook`] is dropped (the work it would undo is finished). When the
    /// token is already cancelled, `hook` runs now.
    pub fn on_cancel(&self, hook: impl FnOnce(&str) + Send + 'static) -> CancelHook {
        let mut state = self.inner.state();
        if let Some(reason) = state.reason.clone() {
            drop(state);
            hook(&reason);
            return CancelHook {
                inner: Weak::new(),
                id: 0,
            };
        }
        state.next_id += 1;
        let id = state.next_id;
        state.hooks.push((id, Box::new(hook)));
        CancelHook {
            inner: Arc::downgrade(&self.inner),
            id,
        }
    }
}

/// A registered cleanup hook; dropping it unregisters the hook.
#[must_use = "dropping the handle unregisters the hook at once"]
pub struct CancelHook {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for CancelHook {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.state().hooks.retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_newest_first_and_dropped_hooks_never() {
        let cancel = Cancel::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (Arc::clone(&order), Arc::clone(&order));
        let _first = cancel.on_cancel(move |r| a.lock().unwrap().push(format!("first {r}")));
        let _second = cancel.on_cancel(move |r| b.lock().unwrap().push(format!("second {r}")));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        drop(cancel.on_cancel(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!cancel.is_cancelled());
        cancel.clone().cancel("SIGTERM");
        cancel.cancel("again");
        assert!(cancel.is_cancelled());
        assert_eq!(cancel.reason().as_deref(), Some("SIGTERM"));
        assert_eq!(*order.lock().unwrap(), ["second SIGTERM", "first SIGTERM"]);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_hook_registered_after_the_cancellation_runs_at_once() {
        let cancel = Cancel::new();
        cancel.cancel("stop");
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let _hook = cancel.on_cancel(move |_| r.store(true, Ordering::SeqCst));
        assert!(ran.load(Ordering::SeqCst));
    }
}
