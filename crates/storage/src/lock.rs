//! Serialising drydock's work on a repository.
//!
//! Two locks, for two audiences:
//! - **drydock on this host**: an exclusive `flock` on `<repo>/drydock.lock` (local
//!   repositories). The kernel drops it when the holder's file descriptor goes away,
//!   also after `kill -9`, so it never goes stale. The holder writes "pid purpose" into
//!   the file so a waiter can say who holds it.
//! - **restic, and drydock on other hosts** (a shared bucket, a shared disk): a
//!   restic-format lock file in `locks/` (`restic_lock`), shared for work that only
//!   adds or reads, exclusive for work that deletes (prune). Stale ones (dead process
//!   on this host, or not refreshed for 30 minutes) are removed and reported.
use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{
    error::StorageError,
    repo::{Place, Repository},
    restic_lock::{self, ResticLock},
};

/// How long [`Repository::lock`] waits for another holder.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(100);

/// Whether other work may go on beside the holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Adding or reading (backup, sync, restore, verify): other adders and readers may
    /// work too, only deleting work must wait.
    Shared,
    /// Deleting (prune): nothing else may touch the repository meanwhile.
    Exclusive,
}

/// A lock on a repository, released on drop.
#[derive(Debug)]
pub struct RepoLock {
    flock: Option<(File, PathBuf)>,
    // Fields drop after `Drop::drop` ran: the restic lock file goes last, so outsiders
    // see a lock until drydock is done.
    restic: ResticLock,
    removed_stale: Vec<String>,
}

impl RepoLock {
    /// Stale locks of dead processes that were removed to take this one (holder, why
    /// stale), for the caller to report.
    pub fn removed_stale(&self) -> &[String] {
        &self.removed_stale
    }

    /// Releases the lock now; `Err` says why its lock file could not be removed (it was
    /// left behind, and the caller should warn: restic refuses the repository meanwhile).
    pub fn release(mut self) -> Result<(), String> {
        self.restic.release()
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if let Some((file, _)) = &self.flock {
            // Clear the holder line while still holding the lock, so nobody reads a
            // stale holder; closing the file then releases the lock.
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

impl Repository {
    /// Takes a shared lock for `purpose` (e.g. "backup"), waiting up to 30 s for
    /// another holder.
    pub fn lock(&self, purpose: &str) -> Result<RepoLock, StorageError> {
        self.lock_with(purpose, LockMode::Shared, LOCK_WAIT)
    }

    /// [`Repository::lock`] with a chosen wait.
    pub fn lock_with_timeout(
        &self,
        purpose: &str,
        wait: Duration,
    ) -> Result<RepoLock, StorageError> {
        self.lock_with(purpose, LockMode::Shared, wait)
    }

    /// Takes the lock in `mode`, waiting up to `wait` for holders that conflict.
    pub fn lock_with(
        &self,
        purpose: &str,
        mode: LockMode,
        wait: Duration,
    ) -> Result<RepoLock, StorageError> {
        let deadline = Instant::now() + wait;
        let flock = match &self.place {
            Place::Local(path) => Some(self.flock(path, purpose, wait)?),
            Place::S3(_) => None,
        };
        let acquired = restic_lock::acquire(
            &self.place,
            &self.location,
            self.master_key(),
            mode == LockMode::Exclusive,
            deadline.saturating_duration_since(Instant::now()),
        )?;
        Ok(RepoLock {
            flock,
            restic: acquired.lock,
            removed_stale: acquired.removed_stale,
        })
    }

    fn flock(
        &self,
        repo_dir: &std::path::Path,
        purpose: &str,
        wait: Duration,
    ) -> Result<(File, PathBuf), StorageError> {
        crate::repo::private_umask();
        let lock_path = repo_dir.join("drydock.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| {
                StorageError::io(
                    format!("opening lock file {}", lock_path.display()),
                    "check that the repository directory is writable by drydock",
                    e,
                )
            })?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(StorageError::Locked {
                        location: self.location.clone(),
                        holder: describe_holder(&holder, wait),
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(StorageError::io(
                        format!("locking {}", lock_path.display()),
                        "check that the file system supports flock",
                        e,
                    ));
                }
            }
        }
        write_holder(&file, purpose).map_err(|e| {
            StorageError::io(
                format!("writing lock file {}", lock_path.display()),
                "check free space and permissions in the repository directory",
                e,
            )
        })?;
        Ok((file, lock_path))
    }
}

fn write_holder(mut file: &File, purpose: &str) -> std::io::Result<()> {
    // One line; a purpose with a newline would make the holder unreadable.
    let purpose: String = purpose
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{} {}\n", std::process::id(), purpose).as_bytes())?;
    file.flush()
}

fn describe_holder(content: &str, waited: Duration) -> String {
    let line = content.lines().next().unwrap_or("").trim();
    let who = match line.split_once(' ') {
        Some((pid, purpose)) if pid.parse::<u32>().is_ok() => {
            format!("process {pid} ({})", purpose.trim())
        }
        _ if line.parse::<u32>().is_ok() => format!("process {line}"),
        _ => "another drydock process (it has not written its pid yet)".to_string(),
    };
    format!("{who}, still held after waiting {} s", waited.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_descriptions() {
        assert_eq!(
            describe_holder("4242 backup\n", Duration::from_secs(30)),
            "process 4242 (backup), still held after waiting 30 s"
        );
        assert!(describe_holder("", Duration::from_secs(1)).contains("not written its pid"));
    }
}
