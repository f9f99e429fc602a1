//! Process plumbing the PostgreSQL and MariaDB servers share: starting a server on a
//! free port (again on another when the port was taken meanwhile), waiting until it
//! answers, stopping it with a signal and killing it if it lingers, and the data
//! directory templates each server copies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{free_port, wait_until};

/// Starts a server on a free port: `start(port)` fails with the server's log. A log
/// that mentions one of `port_taken` means another process took the port in between,
/// and the next free port is tried (five in all); any other failure panics with the log,
/// as does running out of ports. `what` names the server in the panic.
pub(crate) fn start_on_free_port(
    what: &str,
    port_taken: &[&str],
    mut start: impl FnMut(u16) -> Result<(), String>,
) {
    let mut last_log = String::new();
    for _ in 0..5 {
        match start(free_port()) {
            Ok(()) => return,
            Err(log) if port_taken.iter().any(|m| log.contains(m)) => last_log = log,
            Err(log) => panic!("{what} did not start:\n{log}"),
        }
    }
    panic!("{what} did not find a free port:\n{last_log}");
}

/// Spawns `cmd` (the program `name`) and waits up to 30 s until `ready` answers. When
/// the process exits first or never gets ready, `abort` ends it and the error is the
/// log at `log_path`.
pub(crate) fn spawn_until_ready(
    cmd: &mut Command,
    name: &str,
    log_path: &Path,
    mut ready: impl FnMut() -> bool,
    abort: impl FnOnce(&mut Child),
) -> Result<Child, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let mut exited = false;
    let up = wait_until(Duration::from_secs(30), || {
        if let Ok(Some(_)) = child.try_wait() {
            exited = true;
            return true;
        }
        ready()
    });
    if exited || !up {
        abort(&mut child);
        return Err(std::fs::read_to_string(log_path).unwrap_or_default());
    }
    Ok(child)
}

/// Sends `signal`, waits up to `grace` for the process to exit, and kills it if it has
/// not.
pub(crate) fn stop(child: &mut Child, signal: Signal, grace: Duration) {
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    if !wait_exit(child, grace) {
        kill_and_reap(child);
    }
}

/// Kills the process at once and reaps it.
pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits up to `timeout` for the process to exit; whether it did.
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_)) | Err(_)))
}

/// A random-enough password for one test server.
pub(crate) fn random_password(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{prefix}-Secr3t-{mix:016x}")
}

/// Copies a directory tree preserving modes and owners.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
}

/// Where the shared templates live (`$TMPDIR/drydock-testkit/`), created if missing.
pub(crate) fn template_root() -> PathBuf {
    let root = std::env::temp_dir().join("drydock-testkit");
    std::fs::create_dir_all(&root).expect("template root");
    root
}

/// A version string fit for a directory name: anything but ASCII letters, digits and
/// dots becomes `_`.
pub(crate) fn path_safe(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Moves a freshly made template `data` directory to `target`, which the file `marker`
/// shows complete. Another process may have won the race; either way the target is
/// complete afterwards.
pub(crate) fn install_template(data: &Path, target: &Path, marker: &str) {
    if target.exists() && !target.join(marker).is_file() {
        let _ = std::fs::remove_dir_all(target);
    }
    if std::fs::rename(data, target).is_err() {
        assert!(
            target.join(marker).is_file(),
            "template {} is incomplete",
            target.display()
        );
    }
}

/// `n` random bytes from the kernel, as hex.
pub(crate) fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
