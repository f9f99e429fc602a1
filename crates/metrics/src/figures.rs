//! What the daemon passes in for the figures that live in its own tables (job runs,
//! the notification outbox) or its own memory (the scheduler): plain data, so this
//! crate does not depend on the daemon and the seam is one struct. The daemon fills it
//! at each scrape from its state modules; everything else is read from the state
//! database here.

use std::time::Duration;

use drydock_domain::Verdict;
use jiff::Timestamp;

/// The default factor of [`DaemonFigures::overdue_factor`]: a source is overdue once
/// its newest good backup is older than 1.25 times its expected period.
pub const DEFAULT_OVERDUE_FACTOR: f64 = 1.25;

/// Figures only the daemon knows.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonFigures {
    /// Runs recorded, per job kind and verdict (`drydock_runs_total`). Job kinds are
    /// the schedule's (`backup`, `sync`, `prune`, `verify`, `drill`, `health`).
    pub runs: Vec<RunCount>,
    /// Notifications the outbox gave up on (`drydock_notifications_failed_total`).
    pub notifications_failed: u64,
    /// When the scheduler last looked at the clock; no series while it never did (the
    /// library used outside the daemon).
    pub scheduler_last_tick: Option<Timestamp>,
    /// The period each source is expected to be backed up in, from its schedule. A
    /// source not listed is expected within its RPO target (`[drill]` targets for its
    /// priority): a backup older than the data the operator accepts to lose is late,
    /// schedule or not.
    pub backup_periods: Vec<BackupPeriod>,
    /// A source is overdue once its newest good backup is older than this times its
    /// expected period (`[serve]`'s setting; [`DEFAULT_OVERDUE_FACTOR`] by default).
    pub overdue_factor: f64,
}

impl Default for DaemonFigures {
    fn default() -> Self {
        DaemonFigures {
            runs: Vec::new(),
            notifications_failed: 0,
            scheduler_last_tick: None,
            backup_periods: Vec::new(),
            overdue_factor: DEFAULT_OVERDUE_FACTOR,
        }
    }
}

/// How many runs of one job kind ended with one verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    pub job: String,
    pub verdict: Verdict,
    pub count: u64,
}

/// The expected period between backups of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPeriod {
    pub service: String,
    pub source: String,
    pub period: Duration,
}

impl DaemonFigures {
    /// The schedule's period for `service`/`source`, if the daemon gave one.
    pub(crate) fn period_of(&self, service: &str, source: &str) -> Option<Duration> {
        self.backup_periods
            .iter()
            .find(|p| p.service == service && p.source == source)
            .map(|p| p.period)
    }
}

/// A verdict's label value: its stable JSON name.
pub(crate) fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Warning => "warning",
        Verdict::Failed => "failed",
        Verdict::Refused => "refused",
        Verdict::CouldNotRun => "could-not-run",
        Verdict::Missing => "missing",
        Verdict::Critical => "critical",
    }
}
