//! `drydock serve`: the daemon that runs drydock's jobs on schedule, records every run
//! and answers an HTTP API. The binary's `serve` command starts a [`Daemon`] and stops
//! it on SIGINT/SIGTERM; everything else is here, as a library (it never prints,
//! exits or owns signals).
//!
//! - [`schedule`]: the planner on the wall clock ([`clock::Clock`], injected in
//!   tests): which schedules are due, catch-up exactly once, DST, jitter.
//! - [`jobs`]: one file per job kind, each one engine call, listed in one registry.
//! - [`runner`]: a thread per job, one job per repository, a global cap, a schedule
//!   never run twice; every run recorded in the state database (`drydock_state::jobs`).
//! - [`http`]: the API (axum): `/healthz`, `/api/v1/...`, the events stream
//!   ([`events`]), bearer-token writes.
//! - [`notify`]: the hook a finished run's outcome is handed to (notifications);
//!   [`run_counts`] counts the runs on their way there (`drydock_runs_total`).
//! - [`overdue`]: the overdue watch: sources whose newest good backup is older than
//!   `overdue_factor` x their schedule's period ([`schedule::BackupPeriods`]), checked
//!   on every pass of the scheduler loop and handed to the notifier.
//! - [`daemon`]: all of it put together, with the lock, recovery after `kill -9` and
//!   the stop.

pub mod clock;
pub mod daemon;
pub mod events;
pub mod http;
pub mod jobs;
pub mod notify;
pub mod overdue;
pub mod run_counts;
pub mod runner;
pub mod schedule;

pub use clock::{Clock, ManualClock, SystemClock};
pub use daemon::{this_host, Daemon, DaemonOptions, ServeError, Stopped, Stopper};
pub use jobs::JobRequest;
pub use notify::{NoNotifier, Notifier, OutboxNotifier};
