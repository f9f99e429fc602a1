//! The engine's events while jobs run, fanned out to every subscriber of
//! `/api/v1/events` (and the dashboard's live refresh) and kept for the run's page:
//! each job's [`RunEvents`] sink is the one place an event passes through. It redacts
//! the event (the engine's [`Redactor`]: every secret of the config and anything shaped
//! like a credential), keeps it in the state database (`drydock_state::run_events`,
//! progress ticks excepted), and sends it, tagged with its run, to the [`EventHub`]. A
//! subscriber that falls behind loses the oldest events, never slows a job.
//!
//! [`line()`] and [`steps`] turn the kept events back into the run page's event lines
//! and per-source steps.

use std::sync::{Arc, Mutex};

use drydock_domain::{Event, EventSink, Verdict};
use drydock_engine::Redactor;
use drydock_state::{EventLevel, RunEventRecord, StateDb};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::clock::Clock;

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

    /// Sends `event` as it is: callers pass nothing unredacted (the runner's own
    /// `started`/`finished` carry no text; engine events come through [`RunEvents`]).
    pub fn send(&self, event: &StreamEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            // No subscriber is not an error: nobody is watching.
            let _ = self.tx.send(json.into());
        }
    }
}

/// The event sink of one run: redacts each event, keeps it, logs it and sends it to
/// the hub.
pub struct RunEvents {
    pub hub: EventHub,
    pub run: i64,
    pub kind: String,
    pub redactor: Arc<Redactor>,
    pub clock: Arc<dyn Clock>,
    /// The run's own connection (events come from the job's threads); `None` when the
    /// database could not be opened: events are still streamed.
    pub store: Option<Mutex<StateDb>>,
}

impl EventSink for RunEvents {
    fn emit(&self, event: Event) {
        let event = redact(&self.redactor, event);
        tracing::debug!(run = self.run, kind = %self.kind, ?event, "job event");
        if let (Some(store), Some(record)) = (&self.store, record(&event, self.clock.now())) {
            let db = store.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = db.record_run_event(self.run, &record) {
                // The page loses an event; the run goes on and the stream still has it.
                tracing::warn!(run = self.run, error = %e, "cannot keep a run event");
            }
        }
        self.hub.send(&StreamEvent {
            run: self.run,
            kind: self.kind.clone(),
            what: "event",
            event: Some(event),
            verdict: None,
        });
    }
}

/// `event` with every text in it redacted.
pub fn redact(r: &Redactor, event: Event) -> Event {
    match event {
        Event::Started {
            operation,
            id,
            sources,
        } => Event::Started {
            operation: r.line(&operation),
            id: id.map(|i| r.line(&i)),
            sources,
        },
        Event::SourceStarted {
            source,
            kind,
            step,
            total_bytes,
        } => Event::SourceStarted {
            source: r.line(&source),
            kind: r.line(&kind),
            step: r.line(&step),
            total_bytes,
        },
        Event::Progress { source, bytes } => Event::Progress {
            source: r.line(&source),
            bytes,
        },
        Event::SourceFinished {
            source,
            ok,
            message,
            duration_ms,
        } => Event::SourceFinished {
            source: r.line(&source),
            ok,
            message: r.line(&message),
            duration_ms,
        },
        Event::Step { message } => Event::Step {
            message: r.line(&message),
        },
        Event::Warning { message } => Event::Warning {
            message: r.line(&message),
        },
    }
}

/// What is kept of an (already redacted) event; `None` for progress ticks.
fn record(event: &Event, at: Timestamp) -> Option<RunEventRecord> {
    let (level, what, source, message, duration_ms) = match event {
        Event::Started {
            operation,
            id,
            sources,
        } => (
            EventLevel::Info,
            "started",
            None,
            match id {
                Some(id) => format!("{operation} {id} started: {sources} source(s)"),
                None => format!("{operation} started: {sources} source(s)"),
            },
            None,
        ),
        Event::SourceStarted {
            source, kind, step, ..
        } => (
            EventLevel::Info,
            "source_started",
            Some(source.clone()),
            format!("{step} ({kind})"),
            None,
        ),
        Event::Progress { .. } => return None,
        Event::SourceFinished {
            source,
            ok,
            message,
            duration_ms,
        } => (
            if *ok {
                EventLevel::Info
            } else {
                EventLevel::Error
            },
            "source_finished",
            Some(source.clone()),
            message.clone(),
            Some(*duration_ms),
        ),
        Event::Step { message } => (EventLevel::Info, "step", None, message.clone(), None),
        Event::Warning { message } => (EventLevel::Warning, "warning", None, message.clone(), None),
    };
    Some(RunEventRecord {
        at,
        level,
        what: what.to_string(),
        source,
        message,
        duration_ms,
    })
}

/// One kept event as the run page's line: the words the CLI's progress shows for it.
pub fn line(e: &RunEventRecord) -> String {
    let source = e.source.as_deref().unwrap_or("");
    match e.what.as_str() {
        "source_started" => format!("{source}: {}", e.message),
        "source_finished" => {
            let mark = if e.level == EventLevel::Info {
                "ok"
            } else {
                "FAILED"
            };
            let secs = e.duration_ms.unwrap_or(0) as f64 / 1000.0;
            if e.message.is_empty() {
                format!("{source}: {mark} ({secs:.1} s)")
            } else {
                format!("{source}: {mark} ({secs:.1} s) {}", e.message)
            }
        }
        "warning" => format!("warning: {}", e.message),
        _ => e.message.clone(),
    }
}

/// One step of a run: a source's work, from its `source_started` to its
/// `source_finished` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `service/source`.
    pub source: String,
    /// The source and what was done (`app/db backup`).
    pub name: String,
    pub started_at: Timestamp,
    /// `None` while it goes on (or when the run ended before it did).
    pub finished_at: Option<Timestamp>,
    /// `None` while it goes on.
    pub verdict: Option<Verdict>,
    pub detail: String,
}

/// The run's steps, in the order they started. A finished source without its start
/// (dropped past the cap) starts `duration_ms` before it finished.
pub fn steps(events: &[RunEventRecord]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for e in events {
        let Some(source) = &e.source else { continue };
        match e.what.as_str() {
            "source_started" => {
                // `backup (sqlite)`: the step's verb names it.
                let verb = e.message.split(' ').next().unwrap_or_default();
                out.push(Step {
                    source: source.clone(),
                    name: format!("{source} {verb}").trim_end().to_string(),
                    started_at: e.at,
                    finished_at: None,
                    verdict: None,
                    detail: e.message.clone(),
                });
            }
            "source_finished" => {
                let verdict = if e.level == EventLevel::Info {
                    Verdict::Ok
                } else {
                    Verdict::Failed
                };
                let open = out
                    .iter_mut()
                    .rev()
                    .find(|s| s.finished_at.is_none() && s.source == *source);
                let step = match open {
                    Some(step) => step,
                    None => {
                        let took = SignedDuration::from_millis(
                            i64::try_from(e.duration_ms.unwrap_or(0)).unwrap_or(0),
                        );
                        out.push(Step {
                            source: source.clone(),
                            name: source.clone(),
                            started_at: e.at.checked_sub(took).unwrap_or(e.at),
                            finished_at: None,
                            verdict: None,
                            detail: String::new(),
                        });
                        out.last_mut().expect("just pushed")
                    }
                };
                step.finished_at = Some(e.at);
                step.verdict = Some(verdict);
                step.detail = e.message.clone();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn sources_become_steps_with_their_verdicts() {
        let events: Vec<RunEventRecord> = [
            (
                0,
                Event::Started {
                    operation: "backup".into(),
                    id: Some("b-1".into()),
                    sources: 2,
                },
            ),
            (
                1,
                Event::SourceStarted {
                    source: "app/db".into(),
                    kind: "sqlite".into(),
                    step: "backup".into(),
                    total_bytes: None,
                },
            ),
            (
                1,
                Event::Progress {
                    source: "app/db".into(),
                    bytes: 9,
                },
            ),
            (
                3,
                Event::SourceFinished {
                    source: "app/db".into(),
                    ok: true,
                    message: "512 bytes".into(),
                    duration_ms: 2000,
                },
            ),
            (
                4,
                Event::SourceStarted {
                    source: "app/uploads".into(),
                    kind: "files".into(),
                    step: "backup".into(),
                    total_bytes: None,
                },
            ),
            (
                5,
                Event::Warning {
                    message: "disk nearly full".into(),
                },
            ),
            (
                9,
                Event::SourceFinished {
                    source: "app/uploads".into(),
                    ok: false,
                    message: "permission denied".into(),
                    duration_ms: 5000,
                },
            ),
        ]
        .into_iter()
        .filter_map(|(s, e)| record(&e, at(s)))
        .collect();
        // The progress tick is not kept.
        assert_eq!(events.len(), 6);
        let lines: Vec<String> = events.iter().map(line).collect();
        assert_eq!(
            lines,
            [
                "backup b-1 started: 2 source(s)",
                "app/db: backup (sqlite)",
                "app/db: ok (2.0 s) 512 bytes",
                "app/uploads: backup (files)",
                "warning: disk nearly full",
                "app/uploads: FAILED (5.0 s) permission denied",
            ]
        );
        assert_eq!(
            steps(&events),
            [
                Step {
                    source: "app/db".into(),
                    name: "app/db backup".into(),
                    started_at: at(1),
                    finished_at: Some(at(3)),
                    verdict: Some(Verdict::Ok),
                    detail: "512 bytes".into(),
                },
                Step {
                    source: "app/uploads".into(),
                    name: "app/uploads backup".into(),
                    started_at: at(4),
                    finished_at: Some(at(9)),
                    verdict: Some(Verdict::Failed),
                    detail: "permission denied".into(),
                },
            ]
        );
        // A source still going has no end and no verdict; one whose start was
        // dropped starts its duration before its end.
        let going = steps(&events[1..2]);
        assert_eq!((going[0].finished_at, going[0].verdict), (None, None));
        let headless = steps(&events[2..3]);
        assert_eq!(headless[0].name, "app/db");
        assert_eq!(headless[0].started_at, at(1));
    }

    #[test]
    fn no_secret_reaches_the_stream_or_the_state() {
        const SECRET: &str = "events-test-repo-pw-31f";
        // SAFETY: only this test reads this variable.
        unsafe { std::env::set_var("EVENTS_TEST_REPO_PW", SECRET) };
        let dir = tempfile::tempdir().unwrap();
        let config = drydock_domain::Config::from_text(
            &dir.path().join("drydock.toml"),
            "[stack]\nname = \"t\"\nstate_dir = \"state\"\n[repository]\npath = \"repo\"\npassword = \"${env:EVENTS_TEST_REPO_PW}\"\n",
        )
        .unwrap();
        let hub = EventHub::default();
        let mut rx = hub.subscribe();
        let sink = RunEvents {
            hub: hub.clone(),
            run: 7,
            kind: "backup".into(),
            redactor: Arc::new(Redactor::new(&config)),
            clock: Arc::new(crate::clock::ManualClock::new(at(0))),
            store: Some(Mutex::new(StateDb::open(&config.stack.state_dir).unwrap())),
        };
        sink.emit(Event::Warning {
            message: format!("restic said: wrong password {SECRET}"),
        });
        sink.emit(Event::SourceFinished {
            source: "app/db".into(),
            ok: false,
            message: "connecting to postgres://app:hunter22@db/app failed".into(),
            duration_ms: 10,
        });
        let streamed = [rx.try_recv().unwrap(), rx.try_recv().unwrap()].join("\n");
        let kept = StateDb::open(&config.stack.state_dir)
            .unwrap()
            .run_events(7)
            .unwrap();
        let kept_text = format!("{kept:?}");
        for (what, text) in [("stream", &*streamed), ("state", &*kept_text)] {
            assert!(!text.contains(SECRET), "{what}: {text}");
            assert!(!text.contains("hunter22"), "{what}: {text}");
            assert!(text.contains("[REDACTED]"), "{what}: {text}");
        }
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].level, EventLevel::Error);
        assert!(streamed.contains("\"run\":7"), "{streamed}");
    }
}
