//! The job runner: each job on a thread of its own (engine calls block), at most one
//! job per repository at a time (different repositories in parallel), at most
//! `[serve] max_concurrent_jobs` at once, and never the same schedule twice: a job
//! whose previous run (or queued run) is still going when its next slot comes is
//! recorded as `skipped`, with the reason, and logged.
//!
//! A job due while a *different* job holds its repository (the 04:30 prune behind a
//! long 02:30 backup) is not lost: it waits on its thread and starts once the
//! repository (and a place under the cap) is free, recorded then with its own trigger
//! and schedule. Only one entry per job key waits (the key is taken at submit), so a
//! wait never doubles a job: its next slot, while it still waits, is skipped.
//!
//! Every run is recorded in the state database just before its operation starts and
//! closed with its outcome; a cancelled run (the daemon stopping) ends `interrupted`,
//! never as good.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use drydock_domain::{Cancel, Config, Verdict};
use drydock_engine::{EngineError, Redactor, RunContext};
use drydock_state::{JobRun, NewRun, RunOutcome, StateDb, StateError, Trigger};

use crate::clock::Clock;
use crate::events::{EventHub, RunEvents, StreamEvent};
use crate::jobs::{self, JobRequest};
use crate::notify::Notifier;

/// What [`Runner::submit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// On its thread: running, or waiting for its repository or a place under the cap.
    Accepted,
    /// Not run: the same job is still running or waiting (recorded as skipped).
    Skipped { reason: String },
    /// Not run: the daemon is stopping.
    Stopping,
}

/// A job on its thread, by its key.
struct Active {
    cancel: Cancel,
    /// Its run id once it started.
    run: Option<i64>,
}

#[derive(Default)]
struct Slots {
    running: usize,
    repositories: BTreeSet<String>,
    active: BTreeMap<String, Active>,
    stopping: bool,
}

struct Inner {
    config: Arc<Config>,
    host: String,
    hub: EventHub,
    /// The config's secrets, removed from every event before it is kept or streamed.
    redactor: Arc<Redactor>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    cap: usize,
    slots: Mutex<Slots>,
    changed: Condvar,
}

/// The runner; clones share it.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl Runner {
    pub fn new(
        config: Arc<Config>,
        host: String,
        hub: EventHub,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Runner {
        let cap = config.serve.max_concurrent_jobs.max(1);
        Runner {
            inner: Arc::new(Inner {
                redactor: Arc::new(Redactor::new(&config)),
                config,
                host,
                hub,
                notifier,
                clock,
                cap,
                slots: Mutex::new(Slots::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Starts `req` on its own thread unless the job `key` (a schedule's key, or
    /// `api KIND`) is still running or waiting.
    pub fn submit(
        &self,
        req: JobRequest,
        trigger: Trigger,
        key: &str,
        schedule: Option<&str>,
    ) -> Submitted {
        let cancel = Cancel::new();
        {
            let mut slots = self.inner.slots();
            if slots.stopping {
                return Submitted::Stopping;
            }
            if let Some(active) = slots.active.get(key) {
                let reason = match active.run {
                    Some(id) => format!("its previous run (run {id}) is still running"),
                    None => "its previous run is still waiting to start (for its repository or a place under max_concurrent_jobs)".to_string(),
                };
                drop(slots);
                tracing::warn!(job = %req.kind, key, %reason, "skipped a slot");
                self.inner.record_skipped(&req, trigger, schedule, &reason);
                return Submitted::Skipped { reason };
            }
            slots.active.insert(
                key.to_string(),
                Active {
                    cancel: cancel.clone(),
                    run: None,
                },
            );
        }
        let inner = Arc::clone(&self.inner);
        let (owned, schedule) = (key.to_string(), schedule.map(str::to_string));
        let key_for_thread = owned.clone();
        let name = format!("drydock-job-{}", req.kind);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let key = key_for_thread;
            inner.execute(&req, trigger, &key, schedule.as_deref(), &cancel);
            inner.slots().active.remove(&key);
            inner.changed.notify_all();
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a job thread");
            self.inner.slots().active.remove(&owned);
        }
        Submitted::Accepted
    }

    /// Keys and run ids (once started) of the jobs on their threads.
    pub fn active(&self) -> Vec<(String, Option<i64>)> {
        self.inner
            .slots()
            .active
            .iter()
            .map(|(k, a)| (k.clone(), a.run))
            .collect()
    }

    /// Refuses new jobs from now on.
    pub fn stop_accepting(&self) {
        self.inner.slots().stopping = true;
        self.inner.changed.notify_all();
    }

    /// Waits until no job is on its thread, at most `timeout`; whether none is.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slots = self.inner.slots();
        while !slots.active.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            slots = self
                .inner
                .changed
                .wait_timeout(slots, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Cancels every job (running ones stop at their next safe point, waiting ones
    /// never start and are recorded as skipped, with the reason).
    pub fn cancel_all(&self, reason: &str) {
        let cancels: Vec<Cancel> = self
            .inner
            .slots()
            .active
            .values()
            .map(|a| a.cancel.clone())
            .collect();
        for cancel in cancels {
            cancel.cancel(reason);
        }
        self.inner.changed.notify_all();
    }
}

impl Inner {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> Result<StateDb, StateError> {
        StateDb::open(&self.config.stack.state_dir)
    }

    fn new_run<'a>(
        &'a self,
        req: &'a JobRequest,
        trigger: Trigger,
        schedule: Option<&'a str>,
    ) -> NewRun<'a> {
        NewRun {
            kind: req.kind.as_str(),
            trigger,
            schedule,
            started: self.clock.now(),
            host: &self.host,
            pid: std::process::id(),
        }
    }

    fn record_skipped(
        &self,
        req: &JobRequest,
        trigger: Trigger,
        schedule: Option<&str>,
        reason: &str,
    ) {
        let run = self.new_run(req, trigger, schedule);
        let recorded = self
            .state()
            .and_then(|db| Ok((db.record_skipped(&run, reason)?, db)))
            .and_then(|(id, db)| db.job_run(id));
        match recorded {
            Ok(Some(run)) => self.notifier.run_finished(&run, &[]),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot record a skipped run"),
        }
    }

    /// Waits for a place, then records, runs and closes the run.
    fn execute(
        &self,
        req: &JobRequest,
        trigger: Trigger,
        key: &str,
        schedule: Option<&str>,
        cancel: &Cancel,
    ) {
        let spec = jobs::spec(req.kind);
        let repository = spec
            .uses_repository
            .then(|| self.config.repository.path.display().to_string());
        {
            let mut slots = self.slots();
            loop {
                if cancel.is_cancelled() {
                    drop(slots);
                    // Recorded, so a slot lost to a stop is seen, never silently gone.
                    let why = cancel.reason().unwrap_or_else(|| "cancelled".to_string());
                    let reason = format!("not started: {why} while it waited for its repository or a place under max_concurrent_jobs");
                    tracing::warn!(job = %req.kind, key, %reason, "a waiting job was not started");
                    self.record_skipped(req, trigger, schedule, &reason);
                    return;
                }
                let repository_free = repository
                    .as_ref()
                    .is_none_or(|r| !slots.repositories.contains(r));
                if slots.running < self.cap && repository_free {
                    break;
                }
                slots = self
                    .changed
                    .wait_timeout(slots, Duration::from_secs(1))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            slots.running += 1;
            if let Some(r) = &repository {
                slots.repositories.insert(r.clone());
            }
        }
        self.run_recorded(req, trigger, key, schedule, cancel);
        let mut slots = self.slots();
        slots.running -= 1;
        if let Some(r) = &repository {
            slots.repositories.remove(r);
        }
    }

    fn run_recorded(
        &self,
        req: &JobRequest,
        trigger: Trigger,
        key: &str,
        schedule: Option<&str>,
        cancel: &Cancel,
    ) {
        let started = self.state().and_then(|db| {
            db.start_run(&self.new_run(req, trigger, schedule))
                .map(|id| (db, id))
        });
        let (db, id) = match started {
            Ok(ok) => ok,
            Err(e) => {
                // Nothing runs unrecorded: a run the database cannot hold is not started.
                tracing::error!(job = %req.kind, error = %e, "cannot record the run; not started");
                return;
            }
        };
        if let Some(active) = self.slots().active.get_mut(key) {
            active.run = Some(id);
        }
        if let Ok(Some(run)) = db.job_run(id) {
            self.notifier.run_started(&run);
        }
        tracing::info!(run = id, job = %req.kind, trigger = trigger.as_str(), "job started");
        self.hub.send(&StreamEvent {
            run: id,
            kind: req.kind.to_string(),
            what: "started",
            event: None,
            verdict: None,
        });
        let store = match self.state() {
            Ok(db) => Some(Mutex::new(db)),
            Err(e) => {
                tracing::warn!(run = id, error = %e, "the run's events will not be kept");
                None
            }
        };
        let ctx = RunContext::new(Arc::new(RunEvents {
            hub: self.hub.clone(),
            run: id,
            kind: req.kind.to_string(),
            redactor: Arc::clone(&self.redactor),
            clock: Arc::clone(&self.clock),
            store,
        }))
        .with_cancel(cancel.clone());
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            (jobs::spec(req.kind).run)(&self.config, req, &ctx)
        }));
        let mut parts = Vec::new();
        let (outcome, summary) = match result {
            Ok(Ok(out)) => {
                parts = out.parts;
                (RunOutcome::Verdict(out.verdict), out.summary)
            }
            Ok(Err(EngineError::Cancelled { reason })) => (
                RunOutcome::Interrupted,
                format!("cancelled ({reason}); nothing it left unfinished is recorded as good"),
            ),
            Ok(Err(e @ (EngineError::Refused(_) | EngineError::NoBackup(_)))) => {
                (RunOutcome::Verdict(Verdict::Refused), e.to_string())
            }
            Ok(Err(e)) => (RunOutcome::Verdict(Verdict::Failed), e.to_string()),
            Err(_) => (
                RunOutcome::Verdict(Verdict::Failed),
                "the job panicked (a bug in drydock); see the daemon's log".to_string(),
            ),
        };
        tracing::info!(run = id, job = %req.kind, outcome = outcome.as_str(), %summary, "job finished");
        if let Err(e) = db.finish_run(id, self.clock.now(), outcome, &summary) {
            tracing::error!(run = id, error = %e, "cannot record the run's end");
        }
        if let Ok(Some(run)) = db.job_run(id) {
            self.notifier.run_finished(&run, &parts);
        }
        self.hub.send(&StreamEvent {
            run: id,
            kind: req.kind.to_string(),
            what: "finished",
            event: None,
            verdict: Some(outcome.as_str().to_string()),
        });
    }
}

/// Closes every run `host` left open (a daemon killed mid-run) as interrupted and
/// tells `notifier` once per run; returns them. Call while holding the daemon lock:
/// then no live daemon of this host owns an open run.
pub fn mark_interrupted(
    db: &StateDb,
    host: &str,
    now: jiff::Timestamp,
    notifier: &dyn Notifier,
) -> Result<Vec<JobRun>, StateError> {
    let mut closed = Vec::new();
    for run in db.open_runs(host)? {
        let summary = format!(
            "interrupted: the daemon (pid {}) ended before the run did; nothing it left unfinished is recorded as good",
            run.pid
        );
        db.finish_run(run.id, now, RunOutcome::Interrupted, &summary)?;
        if let Some(run) = db.job_run(run.id)? {
            notifier.run_finished(&run, &[]);
            closed.push(run);
        }
    }
    Ok(closed)
}
