//! How many runs ended, per job kind and verdict, since this daemon started: the
//! counter behind `drydock_runs_total`. It sits in front of the daemon's [`Notifier`]
//! (every recorded run passes there), so the runner needs no second hook. Counted in
//! memory, not from the state database, because the database keeps only the newest
//! runs and a counter must never go down while the process lives.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use drydock_domain::Verdict;
use drydock_metrics::RunCount;
use drydock_state::{JobRun, RunOutcome};

use crate::jobs::JobPart;
use crate::notify::Notifier;

/// Counts the runs it is told about, then hands them on to `inner`.
pub struct RunCounter {
    inner: Arc<dyn Notifier>,
    counts: Mutex<BTreeMap<(String, Verdict), u64>>,
    ended: std::sync::atomic::AtomicU64,
}

impl RunCounter {
    pub fn new(inner: Arc<dyn Notifier>) -> RunCounter {
        RunCounter {
            inner,
            counts: Mutex::new(BTreeMap::new()),
            ended: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many runs ended so far (finished, interrupted or skipped).
    pub fn ended(&self) -> u64 {
        self.ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The counts so far, in a stable order.
    pub fn counts(&self) -> Vec<RunCount> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .map(|((job, verdict), count)| RunCount {
                job: job.clone(),
                verdict: *verdict,
                count: *count,
            })
            .collect()
    }
}

impl Notifier for RunCounter {
    fn run_started(&self, run: &JobRun) {
        self.inner.run_started(run);
    }

    fn overdue_checked(&self, check: &drydock_notify::RunOutcome) {
        // Not a run: not counted.
        self.inner.overdue_checked(check);
    }

    fn run_finished(&self, run: &JobRun, parts: &[JobPart]) {
        // A skipped run did not run; an interrupted one could not finish.
        let verdict = match run.verdict {
            Some(RunOutcome::Verdict(v)) => Some(v),
            Some(RunOutcome::Interrupted) => Some(Verdict::CouldNotRun),
            Some(RunOutcome::Skipped) | None => None,
        };
        if let Some(verdict) = verdict {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            *counts.entry((run.kind.clone(), verdict)).or_default() += 1;
        }
        self.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.run_finished(run, parts);
    }
}
