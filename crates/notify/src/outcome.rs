//! What the daemon hands the notifier: a run that started ([`RunStart`]) or finished
//! ([`RunOutcome`]), as plain data, and the [`Event`]s notifications are about.

use drydock_domain::config::NotifyOn;
use drydock_domain::Verdict;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A job run that finished (or was found interrupted after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The job kind (`backup`, `sync`, `prune`, `verify`, `drill`, `health`).
    pub job: String,
    /// The run's verdict as a whole.
    pub verdict: Verdict,
    /// What the run was about, one verdict each (`db/postgres`, `offsite`); the key of
    /// failure and recovery is (job, subject). Empty: the job as a whole is the subject.
    pub parts: Vec<PartOutcome>,
    /// What failed, in short lines (`db/postgres: pg_dump exited 1: ...`), no log lines.
    pub failed: Vec<String>,
    /// The command that shows more (`drydock backups --service db`).
    pub look_closer: String,
    pub finished: Timestamp,
}

/// One subject's result within a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartOutcome {
    pub subject: String,
    pub verdict: Verdict,
}

/// The job name of the daemon's overdue watch: each check is handed on as a
/// [`RunOutcome`] of this job with one part per source (failing: overdue), so an
/// overdue source is told once, reminded at most daily and recovers under the same
/// rules as a failing backup (see `Notifier::overdue_checked`).
pub const OVERDUE_JOB: &str = "overdue";

/// A job run that starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    pub job: String,
    /// The command to follow it (`drydock status`).
    pub look_closer: String,
    pub started: Timestamp,
}

/// Whether a verdict counts as failing for notifications: a warning is something to
/// look at in the report, not a page.
pub fn is_failing(verdict: Verdict) -> bool {
    !matches!(verdict, Verdict::Ok | Verdict::Warning)
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Something that was fine fails.
    Failure,
    /// Something still fails; at most daily.
    Reminder,
    /// Something that failed works again.
    Recovery,
    /// A run that did not fail (channels that asked for `success`).
    Success,
    /// A run starts (channels that asked for `start`).
    Start,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failure => "failure",
            Event::Reminder => "reminder",
            Event::Recovery => "recovery",
            Event::Success => "success",
            Event::Start => "start",
        }
    }

    /// The `on = [...]` word that asks for this event (a reminder is a failure).
    pub fn asked_by(self) -> NotifyOn {
        match self {
            Event::Failure | Event::Reminder => NotifyOn::Failure,
            Event::Recovery => NotifyOn::Recovery,
            Event::Success => NotifyOn::Success,
            Event::Start => NotifyOn::Start,
        }
    }
}
