//! The daemon put together: the lock that makes it the one daemon of its stack, the
//! runs a killed predecessor left open (marked interrupted), the scheduler loop on its
//! own thread (the schedules, then the overdue watch, on each pass; woken early when a
//! run ends), the runner and the HTTP server; and the stop: no new jobs, running ones
//! finish within `[serve] stop_timeout` or are cancelled, then everything ends.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use drydock_domain::config::ScheduleConfig;
use drydock_domain::Config;
use drydock_state::{JobRun, RunOutcome, StateDb, StateError};

use crate::clock::{Clock, SystemClock};
use crate::events::EventHub;
use crate::http::{self, AppState, Heartbeat};
use crate::jobs::JobPart;
use crate::jobs::JobRequest;
use crate::notify::{NoNotifier, Notifier};
use crate::overdue::OverdueWatch;
use crate::run_counts::RunCounter;
use crate::runner::{mark_interrupted, Runner, Submitted};
use crate::schedule::{BackupPeriods, Schedule, Scheduler};

/// After the stop timeout, how long cancelled jobs get to reach a safe point and
/// record themselves interrupted before the daemon closes their runs itself.
const CANCEL_GRACE: Duration = Duration::from_secs(15);

/// The lock file in `state_dir`: held while a daemon runs.
pub const LOCK_FILE: &str = "serve.lock";

/// How to start the daemon besides its config.
pub struct DaemonOptions {
    /// Overrides `[serve] listen` (`--listen`).
    pub listen: Option<SocketAddr>,
    pub clock: Arc<dyn Clock>,
    pub notifier: Arc<dyn Notifier>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            listen: None,
            clock: Arc::new(SystemClock),
            notifier: Arc::new(NoNotifier),
        }
    }
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("refusing to listen on {addr} without a token: anyone who reaches that address could start jobs; set `token` in [serve] (a secret reference, e.g. \"${{env:DRYDOCK_SERVE_TOKEN}}\") or listen on a loopback address (127.0.0.1, [::1])")]
    NoToken { addr: SocketAddr },
    #[error("cannot listen on {addr}: {cause}; choose another address with --listen or [serve] listen (is another program using the port?)")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("another `drydock serve` is running for this stack (it holds {}); stop it first, one daemon per stack", path.display())]
    AlreadyRunning { path: PathBuf },
    #[error("cannot start the daemon: {doing}: {cause}")]
    Io {
        doing: &'static str,
        cause: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The name this host's runs are recorded under (and notifications say).
pub fn this_host() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Asked to stop, and why; what the scheduler loop waits on (and is woken by).
#[derive(Default)]
struct StopSignal {
    state: Mutex<Signalled>,
    changed: Condvar,
}

#[derive(Default)]
struct Signalled {
    reason: Option<String>,
    /// A run ended since the loop last waited: its next wait returns at once.
    poked: bool,
}

impl StopSignal {
    fn signalled(&self) -> std::sync::MutexGuard<'_, Signalled> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self, reason: &str) {
        self.signalled()
            .reason
            .get_or_insert_with(|| reason.to_string());
        self.changed.notify_all();
    }

    /// Wakes the loop without asking it to stop (a run ended: the overdue watch looks
    /// again at once). Kept until the loop's next wait when it is not waiting now.
    fn poke(&self) {
        self.signalled().poked = true;
        self.changed.notify_all();
    }

    /// Waits at most `timeout` (or until poked); the reason once a stop was asked for.
    fn wait(&self, timeout: Option<Duration>) -> Option<String> {
        let mut s = self.signalled();
        match timeout {
            Some(t) if s.reason.is_none() && !s.poked => {
                s = self
                    .changed
                    .wait_timeout(s, t)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            Some(_) => {}
            None => {
                while s.reason.is_none() {
                    s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
        if timeout.is_some() {
            s.poked = false;
        }
        s.reason.clone()
    }
}

/// Asks a running daemon to stop (from a signal handler's thread, a test).
#[derive(Clone)]
pub struct Stopper(Arc<StopSignal>);

impl Stopper {
    pub fn stop(&self, reason: &str) {
        self.0.request(reason);
    }
}

/// A running daemon.
pub struct Daemon {
    config: Arc<Config>,
    addr: SocketAddr,
    host: String,
    runner: Runner,
    stop: Arc<StopSignal>,
    scheduler: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// When the scheduler last read the clock (`/healthz`, the systemd watchdog).
    heartbeat: Arc<Heartbeat>,
    /// The runs a killed predecessor left open, marked interrupted at start.
    pub interrupted: Vec<JobRun>,
    _lock: std::fs::File,
}

/// How the stop went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Every job finished within the stop timeout.
    pub finished_in_time: bool,
    /// Runs closed as interrupted because they were still going at the end.
    pub interrupted: usize,
}

impl Daemon {
    /// Starts it: lock, recovery of interrupted runs, scheduler, runner, HTTP server.
    pub fn start(config: Config, opts: DaemonOptions) -> Result<Daemon, ServeError> {
        let addr = opts.listen.unwrap_or_else(|| config.serve.listen_addr());
        if !addr.ip().is_loopback() && config.serve.token.is_none() {
            return Err(ServeError::NoToken { addr });
        }
        let db = StateDb::open(&config.stack.state_dir)?;
        let lock = take_lock(&config)?;
        let host = this_host();
        let stop = Arc::new(StopSignal::default());
        // Every recorded run passes the counter on its way to the notifier, and wakes
        // the scheduler loop once it ended (a good backup ends an overdue at once).
        let runs = Arc::new(RunCounter::new(Arc::new(WakeOnEnd {
            inner: opts.notifier,
            loop_signal: Arc::clone(&stop),
        })));
        let interrupted = mark_interrupted(&db, &host, opts.clock.now(), runs.as_ref())?;
        for run in &interrupted {
            tracing::warn!(run = run.id, job = %run.kind, "a run of a previous daemon was interrupted");
        }
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|cause| ServeError::Bind { addr, cause })?;
        let addr = listener
            .local_addr()
            .map_err(|cause| ServeError::Bind { addr, cause })?;

        let config = Arc::new(config);
        let hub = EventHub::default();
        let runner = Runner::new(
            Arc::clone(&config),
            host.clone(),
            hub.clone(),
            Arc::clone(&runs) as Arc<dyn Notifier>,
            Arc::clone(&opts.clock),
        );
        let schedules: Vec<Schedule> = ScheduleConfig::effective(&config.schedules)
            .into_iter()
            .map(Schedule::new)
            .collect();
        let started = opts.clock.now();
        let periods = Arc::new(BackupPeriods::new(&config, &schedules, started));
        let scheduler = Scheduler::new(schedules, db.schedule_slots()?, Arc::clone(&opts.clock));
        for (key, slot) in scheduler.last_slots() {
            db.set_schedule_slot(key, *slot)?;
        }
        drop(db);
        let heartbeat = Arc::new(Heartbeat::default());

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("drydock-http")
            .enable_all()
            .build()
            .map_err(|cause| ServeError::Io {
                doing: "starting the HTTP runtime",
                cause,
            })?;
        let app = AppState {
            config: Arc::clone(&config),
            runner: runner.clone(),
            hub,
            heartbeat: Arc::clone(&heartbeat),
            runs: Arc::clone(&runs),
            listing: Arc::default(),
            periods: Arc::clone(&periods),
            clock: Arc::clone(&opts.clock),
            token: config.serve.token.clone(),
        };
        let (http_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|cause| ServeError::Bind { addr, cause })?
        };
        runtime.spawn(async move {
            let served = axum::serve(listener, http::router(app))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });

        let loop_state = SchedulerLoop {
            scheduler,
            runner: runner.clone(),
            config: Arc::clone(&config),
            heartbeat: Arc::clone(&heartbeat),
            overdue: OverdueWatch::new(Arc::clone(&config), &periods, started),
            notifier: runs,
            state: None,
            clock: opts.clock,
            stop: Arc::clone(&stop),
        };
        let scheduler = std::thread::Builder::new()
            .name("drydock-scheduler".into())
            .spawn(move || loop_state.run())
            .map_err(|cause| ServeError::Io {
                doing: "starting the scheduler thread",
                cause,
            })?;
        tracing::info!(%addr, "drydock serve is listening");
        Ok(Daemon {
            config,
            addr,
            host,
            runner,
            stop,
            scheduler: Some(scheduler),
            runtime: Some(runtime),
            http_stop: Some(http_stop),
            heartbeat,
            interrupted,
            _lock: lock,
        })
    }

    /// When the scheduler last read the clock, shared: what `/healthz` and the
    /// binary's systemd watchdog ask (a daemon whose scheduler hangs is not alive).
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        Arc::clone(&self.heartbeat)
    }

    /// Where the HTTP API listens (the real port when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The runner, to start jobs from the library.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// A handle that asks the daemon to stop.
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.stop))
    }

    /// Blocks until a stop is asked for; returns its reason.
    pub fn wait(&self) -> String {
        self.stop.wait(None).unwrap_or_default()
    }

    /// Stops: no new jobs, running ones finish within `[serve] stop_timeout` or are
    /// cancelled through their tokens, then the scheduler and the server end.
    pub fn shutdown(mut self, reason: &str) -> Stopped {
        self.stop.request(reason);
        if let Some(s) = self.scheduler.take() {
            let _ = s.join();
        }
        self.runner.stop_accepting();
        let finished_in_time = self.runner.wait_idle(self.config.serve.stop_timeout);
        if !finished_in_time {
            tracing::warn!(%reason, "jobs still running at the stop timeout: cancelling them");
            self.runner.cancel_all(reason);
            self.runner.wait_idle(CANCEL_GRACE);
        }
        let interrupted = self.close_own_runs(reason);
        if let Some(tx) = self.http_stop.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            // Open event streams never end on their own: give requests a moment.
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        Stopped {
            finished_in_time,
            interrupted,
        }
    }

    /// Closes this process's runs that are still open (their threads never reached a
    /// safe point) as interrupted.
    fn close_own_runs(&self, reason: &str) -> usize {
        let Ok(db) = StateDb::open(&self.config.stack.state_dir) else {
            return 0;
        };
        let own = db
            .open_runs(&self.host)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.pid == std::process::id());
        let mut n = 0;
        for run in own {
            let summary = format!("interrupted: the daemon stopped ({reason}) before the run reached a safe point; nothing it left unfinished is recorded as good");
            if db
                .finish_run(
                    run.id,
                    jiff::Timestamp::now(),
                    RunOutcome::Interrupted,
                    &summary,
                )
                .is_ok()
            {
                n += 1;
            }
        }
        n
    }
}

/// `state_dir/serve.lock`, held for the daemon's life (released by the kernel when
/// the process ends, even by `kill -9`).
fn take_lock(config: &Config) -> Result<std::fs::File, ServeError> {
    let path = config.stack.state_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|cause| ServeError::Io {
            doing: "opening the daemon's lock file",
            cause,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::AlreadyRunning { path }),
        Err(std::fs::TryLockError::Error(cause)) => Err(ServeError::Io {
            doing: "locking the daemon's lock file",
            cause,
        }),
    }
}

/// Hands every run on to `inner` and wakes the scheduler loop once one ended.
struct WakeOnEnd {
    inner: Arc<dyn Notifier>,
    loop_signal: Arc<StopSignal>,
}

impl Notifier for WakeOnEnd {
    fn run_started(&self, run: &JobRun) {
        self.inner.run_started(run);
    }

    fn run_finished(&self, run: &JobRun, parts: &[JobPart]) {
        self.inner.run_finished(run, parts);
        self.loop_signal.poke();
    }

    fn overdue_checked(&self, check: &drydock_notify::RunOutcome) {
        self.inner.overdue_checked(check);
    }
}

/// The scheduler loop's parts.
struct SchedulerLoop {
    scheduler: Scheduler,
    runner: Runner,
    config: Arc<Config>,
    heartbeat: Arc<Heartbeat>,
    overdue: OverdueWatch,
    /// Where each overdue check goes (not counted as a run).
    notifier: Arc<RunCounter>,
    /// The loop's own connection, opened on first use and again after an error.
    state: Option<StateDb>,
    clock: Arc<dyn Clock>,
    stop: Arc<StopSignal>,
}

impl SchedulerLoop {
    /// One check of the overdue watch, handed to the notifier.
    fn watch(&mut self) {
        if self.state.is_none() {
            match StateDb::open(&self.config.stack.state_dir) {
                Ok(db) => self.state = Some(db),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the state database for the overdue watch");
                    return;
                }
            }
        }
        let Some(db) = &self.state else { return };
        match self.overdue.check(db, self.clock.now()) {
            Ok(check) => {
                for line in &check.failed {
                    tracing::debug!(%line, "overdue");
                }
                self.notifier.overdue_checked(&check);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the overdue watch cannot read the state database");
                self.state = None;
            }
        }
    }

    fn run(mut self) {
        loop {
            for due in self.scheduler.tick() {
                let schedule = &self.scheduler.schedules()[due.index].config;
                let req = JobRequest {
                    kind: schedule.job,
                    priority: schedule.priority.clone(),
                    services: schedule.services.clone(),
                };
                // The slot is taken before the job starts: a crash in between never
                // runs it twice.
                let kept = StateDb::open(&self.config.stack.state_dir)
                    .and_then(|db| db.set_schedule_slot(&due.key, due.slot));
                if let Err(e) = kept {
                    tracing::error!(error = %e, "cannot record a schedule's slot");
                }
                if due.slots > 1 {
                    tracing::info!(job = %req.kind, missed = due.slots, "catching up once for missed slots");
                }
                if let Submitted::Skipped { reason } =
                    self.runner
                        .submit(req, due.trigger, &due.key, Some(&due.key))
                {
                    tracing::warn!(schedule = %due.key, %reason, "slot skipped");
                }
            }
            self.watch();
            self.heartbeat.beat(self.clock.now());
            if self.stop.wait(Some(self.scheduler.sleep_for())).is_some() {
                return;
            }
        }
    }
}
