//! What every engine operation is run with besides its options: where its events go,
//! the token that cancels it, and who (if anyone) confirms a step that replaces data.
//! Options are plain data (a schedule can store them, an HTTP body can carry them); what
//! belongs to one run and one caller lives here.

use std::sync::Arc;

use drydock_domain::{Cancel, EventSink, NoEvents};

use crate::EngineError;

/// Asks the operator to confirm `question` (e.g. by typing the stack's name); `true`
/// to go on.
pub type Confirm = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One run's events sink, cancellation token and confirmation.
#[derive(Clone)]
pub struct RunContext {
    /// Where progress, steps and warnings go.
    pub events: Arc<dyn EventSink>,
    /// Cancelled by the caller (a signal, a daemon's job cancelled): the operation
    /// starts again what it stopped and returns [`EngineError::Cancelled`] at its next
    /// safe point.
    pub cancel: Cancel,
    /// Who confirms a step that replaces data; `None` when nobody can be asked (no
    /// terminal, a daemon): such a step is refused unless forced.
    pub confirm: Option<Confirm>,
}

impl Default for RunContext {
    /// No events, never cancelled, nobody to confirm.
    fn default() -> Self {
        RunContext::new(Arc::new(NoEvents))
    }
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("cancel", &self.cancel)
            .field("confirm", &self.confirm.is_some())
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// Events to `events`, a fresh cancellation token, nobody to confirm.
    pub fn new(events: Arc<dyn EventSink>) -> RunContext {
        RunContext {
            events,
            cancel: Cancel::new(),
            confirm: None,
        }
    }

    /// The same, cancelled by `cancel`.
    pub fn with_cancel(mut self, cancel: Cancel) -> RunContext {
        self.cancel = cancel;
        self
    }

    /// The same, confirming with `confirm`.
    pub fn with_confirm(
        mut self,
        confirm: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> RunContext {
        self.confirm = Some(Arc::new(confirm));
        self
    }

    /// The events sink, borrowed.
    pub fn events(&self) -> &dyn EventSink {
        self.events.as_ref()
    }

    /// A safe point: `Err(Cancelled)` once the run was cancelled.
    pub fn check_cancelled(&self) -> Result<(), EngineError> {
        match self.cancel.reason() {
            Some(reason) => Err(EngineError::Cancelled { reason }),
            None => Ok(()),
        }
    }

    /// `Some(answer)` when someone could be asked, `None` when nobody can.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        self.confirm.as_ref().map(|ask| ask(question))
    }
}
