//! `drydock serve`: runs the daemon (schedules, job runner, HTTP API) until SIGINT or
//! SIGTERM, then stops it: running jobs get `[serve] stop_timeout` to finish and are
//! cancelled through their tokens after that, or at once on a second signal (nothing
//! partial is recorded as good).

use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use drydock_domain::config::parse_listen;
use drydock_serve::{this_host, Daemon, DaemonOptions, OutboxNotifier, ServeError};

use super::common::{load, usage, Failure, Globals, EXIT_FAILURE, EXIT_REFUSED};
use crate::{signals, systemd};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on ADDR:PORT instead of `[serve] listen` (default 127.0.0.1:8470). A
    /// non-loopback address needs `[serve] token`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

pub fn run(args: &ServeArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let listen = args
        .listen
        .as_deref()
        .map(parse_listen)
        .transpose()
        .map_err(|e| usage(format!("--listen: {e}")))?;
    let stop_timeout = config.serve.stop_timeout;
    let mut opts = DaemonOptions {
        listen,
        ..DaemonOptions::default()
    };
    if !config.notify.is_empty() {
        opts.notifier = OutboxNotifier::start(&config, &this_host()).map_err(|e| Failure {
            code: EXIT_FAILURE,
            message: e.to_string(),
        })?;
    }
    let daemon = Daemon::start(config, opts).map_err(|e| Failure {
        code: match e {
            ServeError::NoToken { .. } | ServeError::AlreadyRunning { .. } => EXIT_REFUSED,
            _ => EXIT_FAILURE,
        },
        message: e.to_string(),
    })?;
    // The first signal stops gracefully (jobs get the stop timeout); a second one
    // cancels the running jobs at once.
    let (stopper, runner) = (daemon.stopper(), daemon.runner().clone());
    let signalled = AtomicBool::new(false);
    signals::on_signal_instead(move |name| {
        if signalled.swap(true, Ordering::SeqCst) {
            runner.cancel_all(name);
        } else {
            stopper.stop(name);
        }
    });
    for run in &daemon.interrupted {
        eprintln!(
            "drydock serve: run {} ({}, started {}) of a previous daemon was interrupted",
            run.id, run.kind, run.started
        );
    }
    eprintln!(
        "drydock serve: listening on http://{} (stop with SIGTERM or Ctrl-C)",
        daemon.local_addr()
    );
    tell_systemd(&daemon);
    let reason = daemon.wait();
    let _ = systemd::stopping();
    eprintln!(
        "drydock serve: {reason} received; stopping (running jobs get {} to finish)",
        drydock_domain::config::duration_text::format(stop_timeout)
    );
    let stopped = daemon.shutdown(&reason);
    if stopped.interrupted > 0 || !stopped.finished_in_time {
        eprintln!(
            "drydock serve: stopped; {} run(s) cancelled and recorded as interrupted",
            stopped.interrupted
        );
    } else {
        eprintln!("drydock serve: stopped");
    }
    Ok(0)
}

/// Under systemd (`Type=notify`): ready once listening, and the watchdog pinged while
/// the scheduler keeps reading the clock, so a hung scheduler gets the unit restarted
/// (the same 5 minutes `/healthz` allows). Nothing happens outside systemd.
fn tell_systemd(daemon: &Daemon) {
    let status = format!("listening on http://{}", daemon.local_addr());
    if let Err(e) = systemd::ready(&status) {
        eprintln!("drydock serve: cannot tell systemd it is ready: {e}");
    }
    let Some(every) = systemd::watchdog_interval() else {
        return;
    };
    let heartbeat = daemon.heartbeat();
    let alive_within = jiff::SignedDuration::from_secs(300);
    std::thread::spawn(move || loop {
        std::thread::sleep(every);
        let alive = heartbeat
            .last()
            .is_some_and(|t| jiff::Timestamp::now().duration_since(t) <= alive_within);
        if alive {
            let _ = systemd::watchdog();
        }
    });
}
