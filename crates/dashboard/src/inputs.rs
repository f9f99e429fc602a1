//! What the daemon knows and the state database does not (yet): the seam between
//! `drydock serve` and these pages. The daemon fills a [`DaemonView`] from its own
//! tables and memory and passes it with the config and the state database at each
//! request; every field is plain data, so a test or the benchmark fills it by hand.
//!
//! - [`DaemonView::backups`]: the backup catalog as `drydock backups --json` lists it
//!   (`drydock_engine::list::list(..).backups`, newest first). The state database has
//!   no per-backup source, time, size or duration (those live in the manifests in the
//!   repository), so the daemon lists once at start and again after each job that
//!   changes backups (backup, sync, prune, verify), never per request. Copy states
//!   (verified, unsynced, corrupt, pruned) are re-read from the state database at each
//!   request, so a `drydock verify` run by hand shows at once.
//! - [`DaemonView::recent_runs`], [`RunDetail`]: the daemon's `jobs` table; a run's steps and
//!   events from its kept engine events (`drydock_state::run_events`).
//! - [`DaemonView::next_runs`], [`DaemonView::backup_periods`]: the scheduler.
//! - [`DaemonView::failed_notifications`]: the notification outbox.
//!
//! Free texts in here (summaries, step details, event lines, delivery errors) are
//! passed through the engine's [`Redactor`](drydock_engine::Redactor) before they are
//! shown; a channel is named by its kind and position, never by its URL.

use std::collections::BTreeMap;

use drydock_domain::Verdict;
use drydock_engine::list::BackupSummary;
use jiff::Timestamp;

/// How much older than its schedule's period a source's newest backup may be before it
/// is overdue, when the daemon does not say (issue 14: 1.25 x the period).
pub const DEFAULT_OVERDUE_FACTOR: f64 = 1.25;

/// Everything the pages need that comes from the daemon rather than from the config or
/// the state database.
#[derive(Debug, Clone)]
pub struct DaemonView {
    /// Every backup, newest first, as `drydock backups` lists them.
    pub backups: Vec<BackupSummary>,
    /// The newest runs first; the overview shows the first [`RECENT_RUNS`].
    pub recent_runs: Vec<RunSummary>,
    /// The next due slot of each schedule, soonest first.
    pub next_runs: Vec<NextRun>,
    /// Notifications the outbox gave up on (or is still retrying), newest first.
    pub failed_notifications: Vec<FailedNotification>,
    /// Per `(service, source)`, the period of the backup schedule that covers it, in
    /// seconds. A source missing here is measured against its RPO target instead.
    pub backup_periods: BTreeMap<(String, String), u64>,
    /// A newest backup older than this many periods is overdue.
    pub overdue_factor: f64,
}

impl Default for DaemonView {
    fn default() -> Self {
        DaemonView {
            backups: Vec::new(),
            recent_runs: Vec::new(),
            next_runs: Vec::new(),
            failed_notifications: Vec::new(),
            backup_periods: BTreeMap::new(),
            overdue_factor: DEFAULT_OVERDUE_FACTOR,
        }
    }
}

/// How many runs the overview lists (the run list API has them all).
pub const RECENT_RUNS: usize = 15;

/// One job run, as the run list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's id in the daemon's `jobs` table; its page is `/runs/{id}`.
    pub id: i64,
    /// `backup`, `sync`, `prune`, `verify`, `drill` or `health`.
    pub job: String,
    /// What started it: `schedule`, `catch-up`, `api`, ...
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `None` while it runs, and for a run that was skipped (`finished_at` set: not
    /// run because its previous run was still going).
    pub verdict: Option<Verdict>,
    /// One line: what it did or what failed (an interrupted run says so here).
    pub summary: String,
}

/// One run with its steps and the engine events it emitted: the run page.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: RunSummary,
    pub steps: Vec<RunStep>,
    /// Oldest first; the daemon may cap them, the page shows at most [`RUN_EVENTS`].
    pub events: Vec<RunEvent>,
}

/// How many events a run page shows (the newest are kept).
pub const RUN_EVENTS: usize = 500;

/// One step of a run (a source backed up, a copy synced, a check run).
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    pub name: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub verdict: Option<Verdict>,
    pub detail: String,
}

/// One engine event of a run, as one line of text (the words the CLI's progress
/// shows for it).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub at: Timestamp,
    pub text: String,
}

/// A schedule's next due slot.
#[derive(Debug, Clone, PartialEq)]
pub struct NextRun {
    pub job: String,
    /// What it covers, in the schedule's words (`priority critical,high`, `all`).
    pub scope: String,
    pub at: Timestamp,
}

/// A notification that was not delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedNotification {
    /// The channel by kind and position (`webhook #1`), never its URL or topic.
    pub channel: String,
    /// What it was about (`backup failed`, `recovery`).
    pub about: String,
    pub attempts: u32,
    pub last_attempt_at: Timestamp,
    /// The last delivery error.
    pub error: String,
    /// The outbox gave up (`false`: it is still retrying).
    pub gave_up: bool,
}
