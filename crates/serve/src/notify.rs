//! Where a run's start and end are handed on: the seam for notifications. The daemon
//! calls its [`Notifier`] after each run is recorded (and once for each run found
//! interrupted at start), and with each check of the overdue watch; deciding what to
//! send, the outbox and the channels belong to `crates/notify`. [`OutboxNotifier`] is the notifier of a config with `[[notify]]`
//! entries: it queues into the outbox of the state database (quick, so it never holds
//! up a job) and delivers from its own thread.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use drydock_domain::config::Config;
use drydock_domain::Verdict;
use drydock_notify::{DeliveryPolicy, PartOutcome, RunStart};
use drydock_state::{JobRun, RunOutcome};

use crate::jobs::JobPart;

/// Told about every recorded run.
pub trait Notifier: Send + Sync {
    /// A run started (it is recorded, still open).
    fn run_started(&self, _run: &JobRun) {}
    /// A run ended: finished, skipped, or found interrupted after a crash; `parts` are
    /// the subjects it judged (empty when it is judged as a whole or did not finish).
    fn run_finished(&self, run: &JobRun, parts: &[JobPart]);
    /// A check of the overdue watch ([`crate::overdue`]): job
    /// [`drydock_notify::OVERDUE_JOB`], one part per source, failing when overdue.
    fn overdue_checked(&self, _check: &drydock_notify::RunOutcome) {}
}

/// Tells no one.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn run_finished(&self, _run: &JobRun, _parts: &[JobPart]) {}
}

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Notify(#[from] drydock_notify::NotifyError),
    #[error("cannot start the notification thread: {0}")]
    Thread(std::io::Error),
}

/// How often the delivery thread looks for due notifications.
const DELIVERY_TICK: Duration = Duration::from_secs(2);

/// Queues into the state database's outbox; a thread of its own delivers what is due
/// (with its own database connection, so a hanging receiver never holds up a job).
/// The thread ends once the notifier is dropped.
pub struct OutboxNotifier {
    queue: Arc<Mutex<drydock_notify::Notifier>>,
}

impl OutboxNotifier {
    /// The notifier of `config`'s `[[notify]]` entries for this `host`, with its
    /// delivery thread started.
    pub fn start(config: &Config, host: &str) -> Result<Arc<OutboxNotifier>, OutboxError> {
        let queue = drydock_notify::Notifier::for_config(config, host, DeliveryPolicy::default())?;
        let mut delivery =
            drydock_notify::Notifier::for_config(config, host, DeliveryPolicy::default())?;
        let notifier = Arc::new(OutboxNotifier {
            queue: Arc::new(Mutex::new(queue)),
        });
        let alive: Weak<OutboxNotifier> = Arc::downgrade(&notifier);
        std::thread::Builder::new()
            .name("drydock-notify".into())
            .spawn(move || {
                while alive.strong_count() > 0 {
                    match delivery.deliver_due(jiff::Timestamp::now()) {
                        Ok(reports) => {
                            for r in reports {
                                tracing::info!(
                                    channel = %r.channel,
                                    event = %r.event,
                                    result = r.result,
                                    error = %r.error,
                                    "notification attempt"
                                );
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot deliver notifications"),
                    }
                    std::thread::sleep(DELIVERY_TICK);
                }
            })
            .map_err(OutboxError::Thread)?;
        Ok(notifier)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, drydock_notify::Notifier> {
        // A panic while queuing leaves nothing half-done worth refusing to go on for.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The command that shows more about a run of `job`.
fn look_closer(job: &str) -> String {
    match job {
        "backup" | "sync" | "prune" => "drydock backups".into(),
        "health" => "drydock diagnose".into(),
        "verify" => "drydock verify".into(),
        _ => "drydock status".into(),
    }
}

/// A finished run as the notifier's [`drydock_notify::RunOutcome`]; `None` for a run
/// that was not run (skipped: the overdue watch covers a schedule that keeps skipping).
pub fn outcome_of(run: &JobRun, parts: &[JobPart]) -> Option<drydock_notify::RunOutcome> {
    let verdict = match run.verdict? {
        RunOutcome::Verdict(v) => v,
        RunOutcome::Interrupted => Verdict::CouldNotRun,
        RunOutcome::Skipped => return None,
    };
    let mut failed: Vec<String> = parts
        .iter()
        .filter(|p| drydock_notify::is_failing(p.verdict))
        .map(|p| match &p.problem {
            Some(problem) => format!("{}: {problem}", p.subject),
            None => p.subject.clone(),
        })
        .collect();
    if failed.is_empty() && drydock_notify::is_failing(verdict) {
        failed.push(run.summary.clone());
    }
    Some(drydock_notify::RunOutcome {
        job: run.kind.clone(),
        verdict,
        parts: parts
            .iter()
            .map(|p| PartOutcome {
                subject: p.subject.clone(),
                verdict: p.verdict,
            })
            .collect(),
        failed,
        look_closer: look_closer(&run.kind),
        finished: run.finished.unwrap_or(run.started),
    })
}

impl Notifier for OutboxNotifier {
    fn run_started(&self, run: &JobRun) {
        let start = RunStart {
            job: run.kind.clone(),
            look_closer: "drydock status".into(),
            started: run.started,
        };
        if let Err(e) = self.queue().run_started(&start) {
            tracing::warn!(run = run.id, error = %e, "cannot queue the start notification");
        }
    }

    fn overdue_checked(&self, check: &drydock_notify::RunOutcome) {
        if let Err(e) = self.queue().overdue_checked(check) {
            tracing::warn!(error = %e, "cannot queue the overdue notification");
        }
    }

    fn run_finished(&self, run: &JobRun, parts: &[JobPart]) {
        let Some(outcome) = outcome_of(run, parts) else {
            return;
        };
        // A notification never fails the job: logged, counted by the outbox, and on.
        if let Err(e) = self.queue().run_finished(&outcome) {
            tracing::warn!(run = run.id, error = %e, "cannot queue the notification");
        }
    }
}
