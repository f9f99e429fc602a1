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
//!
//! Work that only reads (verify, restore) takes its lock with [`Repository::lock_reading`]:
//! where the repository's file system refuses writes (full, read-only, no permission) it
//! goes on without a lock file of its own, as restic's `--no-lock` does, after making sure
//! no live exclusive lock is there; [`RepoLock::unwritten`] says why, for a warning.
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
    restic: Option<ResticLock>,
    removed_stale: Vec<String>,
    unwritten: Option<String>,
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
        match &mut self.restic {
            Some(lock) => lock.release(),
            None => Ok(()),
        }
    }

    /// Why this reader holds no lock file (the repository's file system refused the
    /// write), for the caller to warn: a prune starting meanwhile cannot see it.
    pub fn unwritten(&self) -> Option<&str> {
        self.unwritten.as_deref()
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

    /// A shared lock for work that only reads (verify, restore), waiting up to 30 s.
    /// When no lock can be written (see the module doc) it still refuses a live
    /// exclusive lock, then goes on without a lock file and says why in
    /// [`RepoLock::unwritten`].
    pub fn lock_reading(&self, purpose: &str) -> Result<RepoLock, StorageError> {
        self.lock_reading_with_timeout(purpose, LOCK_WAIT)
    }

    /// [`Repository::lock_reading`] with a chosen wait.
    pub fn lock_reading_with_timeout(
        &self,
        purpose: &str,
        wait: Duration,
    ) -> Result<RepoLock, StorageError> {
        let deadline = Instant::now() + wait;
        let mut notes = Vec::new();
        let flock = match &self.place {
            Place::Local(path) => self.flock_reading(path, purpose, wait, &mut notes)?,
            Place::S3(_) => None,
        };
        let acquired = restic_lock::acquire_reading(
            &self.place,
            &self.location,
            self.master_key(),
            deadline.saturating_duration_since(Instant::now()),
        )?;
        notes.extend(acquired.unwritten);
        let unwritten = (!notes.is_empty() || acquired.lock.is_none()).then(|| {
            format!(
                "going on without a lock (read-only, as restic's --no-lock): {}",
                notes.join("; ")
            )
        });
        Ok(RepoLock {
            flock,
            restic: acquired.lock,
            removed_stale: acquired.removed_stale,
            unwritten,
        })
    }

    /// The host-local flock for a reader: taken as usual when the file can be written;
    /// when the file system refuses writes, an existing lock file is opened read-only
    /// (flock needs no write access), and a missing one is done without. What could not
    /// be written goes to `notes`.
    fn flock_reading(
        &self,
        repo_dir: &std::path::Path,
        purpose: &str,
        wait: Duration,
        notes: &mut Vec<String>,
    ) -> Result<Option<(File, PathBuf)>, StorageError> {
        match self.flock(repo_dir, purpose, wait) {
            Ok(held) => Ok(Some(held)),
            Err(StorageError::Io { what, source, .. }) if refuses_writes(&source) => {
                let lock_path = repo_dir.join("drydock.lock");
                notes.push(format!("{what}: {source}"));
                let file = match File::open(&lock_path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(StorageError::io(
                            format!("opening lock file {}", lock_path.display()),
                            "check that drydock may read the repository directory",
                            e,
                        ))
                    }
                };
                self.wait_for_flock(&file, &lock_path, wait)?;
                Ok(Some((file, lock_path)))
            }
            Err(e) => Err(e),
        }
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
            unwritten: None,
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
        let file = OpenOptions::new()
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
        self.wait_for_flock(&file, &lock_path, wait)?;
        write_holder(&file, purpose).map_err(|e| {
            // Unlocked again: a holder that wrote no line must not stay.
            let _ = file.unlock();
            StorageError::io(
                format!("writing lock file {}", lock_path.display()),
                "check free space and permissions in the repository directory",
                e,
            )
        })?;
        Ok((file, lock_path))
    }

    fn wait_for_flock(
        &self,
        mut file: &File,
        lock_path: &std::path::Path,
        wait: Duration,
    ) -> Result<(), StorageError> {
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
        Ok(())
    }
}

/// Whether a write failed because the file system refuses writes here (full disk or
/// quota, read-only, no permission) rather than for a passing reason.
fn refuses_writes(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied
    ) || matches!(e.raw_os_error(), Some(28 | 122 | 30 | 13 | 1))
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
