//! One deployment (or rollback) per stack at a time: an exclusive `flock` on
//! `state_dir/deploy.lock`, holding a line that names the holder (host, PID, user, since,
//! what it does).
//!
//! The kernel drops a `flock` when its holder dies, `kill -9` included, so the lock of a
//! dead process is never in the way: the next deploy takes it at once and reports the
//! holder line it found (a deployment cut short), which is how the deployments table's
//! unfinished record is explained. A live holder is never broken, `--force` or not: two
//! deployers switching the same proxy or `current` link at once is the failure the lock
//! exists to prevent. The second deploy does not wait: it fails at once naming the holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The file inside `state_dir`.
pub const FILE_NAME: &str = "deploy.lock";

/// Who holds (or held) the deploy lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    /// When it took the lock (RFC 3339).
    pub since: String,
    /// `deploy 7abc123` or `rollback api`.
    pub purpose: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (PID {} on {}, user {}, since {})",
            self.purpose, self.pid, self.host, self.user, self.since
        )
    }
}

/// The held lock; released (and its holder line cleared) on drop.
#[derive(Debug)]
pub struct DeployLock {
    file: File,
    /// The holder line a dead process left behind, if any: it was cut short.
    pub left_by_dead: Option<Holder>,
}

impl DeployLock {
    /// Takes the lock for `purpose`, or fails at once naming the live holder.
    pub fn take(state_dir: &Path, purpose: &str) -> Result<DeployLock, EngineError> {
        let path = state_dir.join(FILE_NAME);
        let io = |cause| EngineError::State {
            path: path.clone(),
            cause,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(EngineError::DeployLocked {
                    path: path.clone(),
                    holder: read_holder(&mut file)
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "a process that has not written its name yet".into()),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let left_by_dead = read_holder(&mut file);
        let holder = Holder {
            host: crate::repo::host(),
            pid: std::process::id(),
            user: user_name(),
            since: jiff::Timestamp::now().to_string(),
            purpose: purpose.to_string(),
        };
        let line = serde_json::to_string(&holder).expect("a holder serializes");
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(DeployLock { file, left_by_dead })
    }

    /// Whether a live process holds the lock now; leaves the file as it is (the holder
    /// line of a dead one stays for the next deploy to report).
    pub fn is_held(state_dir: &Path) -> Result<bool, EngineError> {
        let path = state_dir.join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(cause) => return Err(EngineError::State { path, cause }),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(false)
            }
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(cause)) => Err(EngineError::State { path, cause }),
        }
    }

    /// The lock file of `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        // Clear the holder while still holding the lock: an empty file after the lock is
        // free means the last holder finished; a holder line means it was cut short.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_naming_the_holder_and_a_dead_holder_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let first = DeployLock::take(dir.path(), "deploy abc1234").unwrap();
        assert_eq!(first.left_by_dead, None);
        let err = DeployLock::take(dir.path(), "deploy def5678").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("deploy abc1234"), "{text}");
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        drop(first);
        // A holder line left in the file (what `kill -9` leaves) is reported.
        let left = Holder {
            host: "h".into(),
            pid: 999_999,
            user: "u".into(),
            since: "2026-01-01T00:00:00Z".into(),
            purpose: "deploy dead000".into(),
        };
        std::fs::write(
            dir.path().join(FILE_NAME),
            serde_json::to_string(&left).unwrap(),
        )
        .unwrap();
        let again = DeployLock::take(dir.path(), "deploy def5678").unwrap();
        assert_eq!(again.left_by_dead, Some(left));
    }
}
