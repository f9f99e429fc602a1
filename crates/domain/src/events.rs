//! What core work tells the outside while it runs. The engine emits [`Event`]s through
//! an [`EventSink`]; the CLI renders them as progress bars, text or JSON lines, and the
//! daemon will reuse the same stream.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A multi-source operation starts.
    Started {
        operation: String,
        id: Option<String>,
        sources: usize,
    },
    /// Work on one source starts. `total_bytes` when known (restores).
    SourceStarted {
        source: String,
        kind: String,
        step: String,
        total_bytes: Option<u64>,
    },
    /// Bytes moved so far for the current source.
    Progress { source: String, bytes: u64 },
    /// Work on one source ended.
    SourceFinished {
        source: String,
        ok: bool,
        message: String,
        duration_ms: u64,
    },
    /// A notable step (stopping a service, verifying ...).
    Step { message: String },
    /// Something the operator should look at; the run goes on.
    Warning { message: String },
}

/// Receives events. Implementations must be cheap: `Progress` can come often.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Discards events (tests, library callers that do not care).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}
