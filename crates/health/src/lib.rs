//! drydock's health checks. Each check kind is one file in [`checks`] behind the
//! [`Check`] trait, mapped from its config in one place ([`registry::build`]); the
//! [`runner`] runs any number of them at once, each within its own timeout and with
//! bounded retries, so one hanging target never holds up the report and one blip is
//! not an alarm.
//!
//! A check attempt returns an [`Outcome`]: `healthy`, `warning` (a threshold such as
//! latency, certificate expiry or free disk) or `critical` (down, failing, wrong), with
//! a one-line message for people and structured details for JSON.

pub mod checks;
pub mod net;
pub mod registry;
pub mod runner;

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

pub use registry::{build, CheckContext};
pub use runner::{run_all, CheckResult, Planned, RunPolicy};

/// How a check (or service, or stack) is doing. Ordered: worse sorts later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt of a check found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub details: Map<String, Value>,
    /// Whether another attempt could find otherwise. A refused connection may be a
    /// blip; an expired certificate or a failed integrity check is not.
    pub retry: bool,
}

impl Outcome {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Outcome {
            status,
            message: message.into(),
            details: Map::new(),
            retry: status == Status::Critical,
        }
    }

    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(Status::Healthy, message)
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Status::Warning, message)
    }

    pub fn critical(message: impl Into<String>) -> Self {
        Self::new(Status::Critical, message)
    }

    /// Adds a detail.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// Marks the finding as one that another attempt will not change.
    pub fn definitive(mut self) -> Self {
        self.retry = false;
        self
    }
}

/// Findings of one attempt that several conditions judge (an HTTP answer: status,
/// latency, body, certificate): the worst status wins, and every problem is named.
#[derive(Debug, Default)]
pub struct Verdict {
    worst: Option<Status>,
    problems: Vec<String>,
    retry: bool,
    pub details: Map<String, Value>,
}

impl Verdict {
    pub fn new() -> Self {
        Verdict::default()
    }

    /// Records a problem of `status` (warning or critical).
    pub fn problem(&mut self, status: Status, message: impl Into<String>) {
        self.worst = self.worst.max(Some(status));
        self.problems.push(message.into());
    }

    /// Records a critical problem another attempt may not see (a connection error).
    pub fn transient(&mut self, message: impl Into<String>) {
        self.retry = true;
        self.problem(Status::Critical, message);
    }

    pub fn detail(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }

    pub fn is_critical(&self) -> bool {
        self.worst == Some(Status::Critical)
    }

    /// The outcome: `ok` as the message when nothing is wrong.
    pub fn finish(self, ok: impl Into<String>) -> Outcome {
        let status = self.worst.unwrap_or(Status::Healthy);
        let message = if self.problems.is_empty() {
            ok.into()
        } else {
            self.problems.join("; ")
        };
        Outcome {
            status,
            message,
            details: self.details,
            retry: status == Status::Critical && self.retry,
        }
    }
}

/// One kind of health check. `run` is one attempt; the runner retries and enforces
/// the timeout. Implementations should bound their own I/O by `deadline` so abandoned
/// attempts do not linger, but the report never waits past it either way.
pub trait Check: Send + Sync {
    fn run(&self, deadline: Instant) -> Outcome;
}

/// Time left until `deadline`, at least 1 ms (a zero timeout means "none" to sockets).
pub fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Milliseconds with one decimal, for latency details.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
