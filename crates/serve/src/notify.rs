//! Where a run's start and end are handed on: the seam for notifications. The daemon
//! calls its [`Notifier`] after each run is recorded (and once for each run found
//! interrupted at start); deciding what to send, the outbox and the channels belong to
//! the notifier (`crates/notify`), not here. A notifier must not block the job: it
//! records what to send and returns.

use drydock_state::JobRun;

/// Told about every recorded run.
pub trait Notifier: Send + Sync {
    /// A run started (it is recorded, still open).
    fn run_started(&self, _run: &JobRun) {}
    /// A run ended: finished, skipped, or found interrupted after a crash.
    fn run_finished(&self, run: &JobRun);
}

/// Tells no one.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn run_finished(&self, _run: &JobRun) {}
}
