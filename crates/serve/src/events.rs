//! The engine's events while jobs run, fanned out to every subscriber of
//! `/api/v1/events` (and the dashboard's live refresh): each job's [`RunEvents`] sink
//! tags an event with its run and sends it to the [`EventHub`]; a subscriber that
//! falls behind loses the oldest events, never slows a job.

use std::sync::Arc;

use drydock_domain::{Event, EventSink};
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before the oldest are dropped.
const BUFFER: usize = 1024;

/// One message of the stream, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// The run id.
    pub run: i64,
    pub kind: String,
    /// `started`, `event` or `finished`.
    pub what: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// The run's outcome, on `finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// The fan-out.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl EventHub {
    /// A new subscriber, receiving what is sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    pub fn send(&self, event: &StreamEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            // No subscriber is not an error: nobody is watching.
            let _ = self.tx.send(json.into());
        }
    }
}

/// The event sink of one run: logs each event and sends it to the hub.
pub struct RunEvents {
    pub hub: EventHub,
    pub run: i64,
    pub kind: String,
}

impl EventSink for RunEvents {
    fn emit(&self, event: Event) {
        tracing::debug!(run = self.run, kind = %self.kind, ?event, "job event");
        self.hub.send(&StreamEvent {
            run: self.run,
            kind: self.kind.clone(),
            what: "event",
            event: Some(event),
            verdict: None,
        });
    }
}
