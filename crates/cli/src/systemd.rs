//! The process's side of running under systemd, for `drydock serve` (the unit
//! `drydock install --systemd` writes is `Type=notify` with `WatchdogSec=` and
//! `NotifyAccess=main`):
//!
//! - [`ready`] once the daemon has started (scheduler running, listener bound):
//!   systemd counts the unit as started only then, so `systemctl start` waits for it;
//! - [`watchdog`] at least every [`watchdog_interval`] from the scheduler's loop, so a
//!   daemon whose scheduler hangs is restarted by systemd (`Restart=on-failure`);
//! - [`stopping`] when SIGTERM arrives, before the running job is cancelled;
//! - [`inhibit_sleep`] while a job runs: a logind block lock on sleep and shutdown,
//!   released when the returned guard is dropped (see its doc for why a lock per job
//!   and not one for the daemon's whole life).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset: a person running `drydock serve` in a
//! terminal, the tests) the notifications are no-ops. They live in the binary's crate
//! because the process, not a library, is what systemd supervises.

// `drydock serve` calls ready, watchdog and stopping; `inhibit_sleep` waits for a
// per-job hook in the runner, so only the tests below call it yet.
#![allow(dead_code)]

use std::fmt;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use sd_notify::NotifyState;

/// A notification systemd could not be sent (the socket is gone or refuses).
#[derive(Debug)]
pub struct NotifyError {
    /// What was being told, e.g. `READY=1`.
    pub state: String,
    /// `NOTIFY_SOCKET`'s value.
    pub socket: String,
    pub source: std::io::Error,
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not tell systemd `{}` through NOTIFY_SOCKET={}: {}; the unit needs \
             NotifyAccess=main with drydock as its main process (no wrapper in ExecStart)",
            self.state, self.socket, self.source
        )
    }
}

impl std::error::Error for NotifyError {}

fn notify(state: NotifyState<'_>) -> Result<(), NotifyError> {
    // `false`: the variable stays set, because the watchdog is pinged for the daemon's
    // whole life. Children inherit it, but with `NotifyAccess=main` systemd ignores
    // whatever they send.
    let text = state.to_string();
    sd_notify::notify(false, &[state]).map_err(|source| NotifyError {
        state: text,
        socket: std::env::var("NOTIFY_SOCKET").unwrap_or_default(),
        source,
    })
}

/// Tells systemd the daemon has started (`READY=1`), with a status line `systemctl
/// status` shows.
pub fn ready(status: &str) -> Result<(), NotifyError> {
    notify(NotifyState::Ready)?;
    notify(NotifyState::Status(status))
}

/// Pings the watchdog (`WATCHDOG=1`); a no-op outside systemd.
pub fn watchdog() -> Result<(), NotifyError> {
    notify(NotifyState::Watchdog)
}

/// Tells systemd the daemon is stopping (`STOPPING=1`), so a restart waits for it.
pub fn stopping() -> Result<(), NotifyError> {
    notify(NotifyState::Stopping)
}

/// How often to ping [`watchdog`]: half of the `WATCHDOG_USEC` systemd set for this
/// process (as `sd_watchdog_enabled(3)` advises, so one late tick does not kill the
/// daemon), or `None` when no watchdog watches this process (the variables are
/// unset, or `WATCHDOG_PID` names another process: a child inherited them).
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec) / 2)
    } else {
        None
    }
}

/// A logind lock that keeps the machine from sleeping or shutting down while a job
/// runs, held by a `systemd-inhibit` child for as long as this guard lives.
///
/// Why per job and not `systemd-inhibit` wrapped around `drydock serve` in the unit:
/// a block lock held for the daemon's whole life would forbid sleep whenever the
/// daemon is up, and a delay lock only buys `InhibitDelayMaxSec` (5 s by default),
/// far short of a backup; a wrapper would also become the unit's main process, so
/// `NotifyAccess=main` would drop drydock's notifications. Why a child and not a D-Bus
/// call: logind's `Inhibit` hands back a file descriptor that must stay open, which
/// needs a D-Bus client library; `systemd-inhibit` is that client, and the lock ends
/// with it, even when drydock is killed (its stdin closes, `cat` ends, the lock goes).
///
/// A block lock on shutdown holds back `systemctl poweroff` typed at a terminal (it
/// names the lock and `-i` overrides it); a shutdown from a script or a power button
/// goes on and the daemon gets SIGTERM, whose handling cancels the job cleanly within
/// the unit's `TimeoutStopSec=`.
pub struct SleepInhibitor {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// The lock could not be taken: no `systemd-inhibit`, no logind or no system bus (a
/// container), or logind refused.
#[derive(Debug)]
pub struct InhibitError {
    pub reason: String,
}

impl fmt::Display for InhibitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not keep the machine awake during the job with systemd-inhibit: {}; the \
             job runs anyway, but a suspend or shutdown can interrupt it (without systemd's \
             logind there is nothing to inhibit)",
            self.reason
        )
    }
}

impl std::error::Error for InhibitError {}

/// Takes a block lock on sleep and shutdown, naming drydock and `why` (e.g. `backup
/// of shop`) in `systemd-inhibit --list`. Returns once the lock is held.
pub fn inhibit_sleep(why: &str) -> Result<SleepInhibitor, InhibitError> {
    let mut child = Command::new("systemd-inhibit")
        .args([
            "--what=sleep:shutdown",
            "--mode=block",
            "--who=drydock",
            &format!("--why={why}"),
            // systemd-inhibit runs its command only once logind granted the lock, so
            // the line `held` is the proof it is; `cat` then waits for stdin to close.
            "sh",
            "-c",
            "echo held && exec cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("NOTIFY_SOCKET")
        .spawn()
        .map_err(|e| InhibitError {
            reason: format!("cannot run systemd-inhibit: {e}"),
        })?;
    let stdin = child.stdin.take();
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim() == "held" {
        return Ok(SleepInhibitor { child, stdin });
    }
    drop(stdin);
    let output = child.wait_with_output().map_err(|e| InhibitError {
        reason: format!("systemd-inhibit could not be waited for: {e}"),
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(InhibitError {
        reason: format!(
            "systemd-inhibit ended ({}) without taking the lock: {}",
            output.status,
            stderr.trim()
        ),
    })
}

impl Drop for SleepInhibitor {
    /// Closing stdin ends `cat`, then `systemd-inhibit`, and logind drops the lock.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// The notifications read the process's environment, which the tests below change:
    /// one at a time, whatever the test runner's threads.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn notifications_reach_a_real_notify_socket() {
        let _env = ENV.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);

        ready("scheduler running, 3 schedules").unwrap();
        assert_eq!(receive(&socket), "READY=1\n");
        assert_eq!(receive(&socket), "STATUS=scheduler running, 3 schedules\n");
        watchdog().unwrap();
        assert_eq!(receive(&socket), "WATCHDOG=1\n");
        stopping().unwrap();
        assert_eq!(receive(&socket), "STOPPING=1\n");

        // A socket that went away is an error naming the socket, not a silent loss.
        drop(socket);
        std::fs::remove_file(&path).unwrap();
        let e = watchdog().unwrap_err().to_string();
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(
            e.contains("WATCHDOG=1") && e.contains(&path.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn without_notify_socket_the_notifications_are_no_ops() {
        let _env = ENV.lock().unwrap_or_else(|p| p.into_inner());
        std::env::remove_var("NOTIFY_SOCKET");
        ready("x").unwrap();
        watchdog().unwrap();
        stopping().unwrap();
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() {
        let _env = ENV.lock().unwrap_or_else(|p| p.into_inner());
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
        assert_eq!(watchdog_interval(), None);

        std::env::set_var("WATCHDOG_USEC", "120000000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        assert_eq!(watchdog_interval(), Some(Duration::from_secs(60)));

        // Inherited from a parent the watchdog watches: not ours to ping.
        std::env::set_var("WATCHDOG_PID", (std::process::id() + 1).to_string());
        assert_eq!(watchdog_interval(), None);

        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        std::env::set_var("WATCHDOG_USEC", "not a number");
        assert_eq!(watchdog_interval(), None);
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
    }

    /// Where logind runs, the lock is held until the guard drops; where it does not
    /// (this container, CI), the error says why and that the job goes on.
    #[test]
    fn sleep_inhibitor_is_held_or_explains_why_not() {
        let logind = std::path::Path::new("/run/systemd/seats").exists()
            && std::path::Path::new("/run/dbus/system_bus_socket").exists();
        match inhibit_sleep("test of drydock's sleep lock") {
            Ok(lock) => {
                assert!(logind, "a lock without logind?");
                let list = Command::new("systemd-inhibit")
                    .arg("--list")
                    .output()
                    .unwrap();
                let list = String::from_utf8_lossy(&list.stdout).to_string();
                assert!(list.contains("test of drydock's sleep lock"), "{list}");
                drop(lock);
            }
            Err(e) => {
                eprintln!("no sleep lock here (expected without logind): {e}");
                assert!(!logind, "logind runs but the lock failed: {e}");
                let e = e.to_string();
                assert!(
                    e.contains("systemd-inhibit") && e.contains("job runs anyway"),
                    "{e}"
                );
            }
        }
    }
}
