//! Serialising drydock's work on a repository.
//!
//! rustic_core neither creates nor honours restic's lock files, so drydock
//! locks on its own: an exclusive `flock` on `<repo>/drydock.lock`. The
//! kernel drops the lock when the holder's file descriptor goes away, also
//! after `kill -9`, so there is never a stale drydock lock to remove. The
//! holder writes "pid purpose" into the file so a waiter can say who holds
//! it. A file in `<repo>/locks/` means a restic process is (or was) working
//! on the repository; drydock waits for it like for its own lock, then
//! refuses to run alongside it.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{error::StorageError, repo::Repository};

/// How long [`Repository::lock`] waits for another holder.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(100);

/// An exclusive lock on a repository, released on drop.
#[derive(Debug)]
pub struct RepoLock {
    file: File,
    path: PathBuf,
}

impl RepoLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Clear the holder line while still holding the lock, so nobody
        // reads a stale holder; closing the file then releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

impl Repository {
    /// Takes the repository lock for `purpose` (e.g. "backup"), waiting up
    /// to 30 s for another drydock holder and for restic locks to go away.
    pub fn lock(&self, purpose: &str) -> Result<RepoLock, StorageError> {
        self.lock_with_timeout(purpose, LOCK_WAIT)
    }

    /// [`Repository::lock`] with a chosen wait.
    pub fn lock_with_timeout(
        &self,
        purpose: &str,
        wait: Duration,
    ) -> Result<RepoLock, StorageError> {
        crate::repo::private_umask();
        let lock_path = self.path.join("drydock.lock");
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
                        path: self.path.clone(),
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
        let lock = RepoLock {
            file,
            path: lock_path,
        };
        write_holder(&lock.file, purpose).map_err(|e| {
            StorageError::io(
                format!("writing lock file {}", lock.path.display()),
                "check free space and permissions in the repository directory",
                e,
            )
        })?;
        // A restic command run by hand (even `restic snapshots`) holds a
        // lock for a moment; give it the rest of the wait before refusing.
        while let Err(refusal) = self.refuse_restic_locks() {
            if Instant::now() >= deadline {
                return Err(refusal);
            }
            std::thread::sleep(POLL);
        }
        Ok(lock)
    }

    fn refuse_restic_locks(&self) -> Result<(), StorageError> {
        let locks = self.path.join("locks");
        let entries = match std::fs::read_dir(&locks) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(StorageError::io(
                    format!("reading {}", locks.display()),
                    "check the permissions of the repository directory",
                    e,
                ));
            }
        };
        let names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let mut files = names
            .iter()
            .take(3)
            .map(|n| format!("locks/{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > 3 {
            files.push_str(&format!(" and {} more", names.len() - 3));
        }
        Err(StorageError::ResticLockPresent {
            path: self.path.clone(),
            files,
        })
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
