//! restic's lock files, read and written in restic's own format, so drydock, restic
//! and other drydock hosts sharing a bucket see each other's work.
//!
//! A lock is a small JSON document (`time`, `exclusive`, `hostname`, `username`,
//! `pid`, `uid`, `gid`) encrypted with the repository's master key (AES-256-CTR +
//! Poly1305-AES, nonce first, MAC last) and stored as `locks/<sha256 of the file>`.
//! rustic_core 0.13 neither writes nor honours these files, so this module does.
//!
//! restic's rules apply: an exclusive lock conflicts with every other lock, a shared
//! one only with exclusive locks; a lock is stale when it was not refreshed for 30
//! minutes, or when it was made on this host by a process that no longer runs. Holders
//! refresh their lock every 5 minutes. Stale locks are removed (and reported with their
//! host, PID and age); live ones make the caller wait, then fail naming the holder.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aes256ctr_poly1305aes::aead::Aead;
use aes256ctr_poly1305aes::{Aes256CtrPoly1305Aes, Key, Nonce};
use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StorageError;
use crate::host::this_host;
use crate::repo::Place;
use crate::s3::S3Client;
use crate::sealed::seal;

/// A lock not refreshed for this long is stale (restic's `StaleLockTimeout`).
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a holder rewrites its lock (restic's refresh interval).
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// The lock document, as restic marshals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub time: jiff::Timestamp,
    pub exclusive: bool,
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    pub pid: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LockInfo {
    fn mine(exclusive: bool) -> LockInfo {
        LockInfo {
            time: jiff::Timestamp::now(),
            exclusive,
            hostname: this_host(),
            username: std::env::var("USER").unwrap_or_default(),
            pid: i64::from(std::process::id()),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    /// Why the lock is stale, or `None` while it may still be held.
    pub fn stale_reason(&self, now: jiff::Timestamp) -> Option<String> {
        let age = age(self.time, now);
        if age > STALE_AFTER {
            return Some(format!(
                "not refreshed for {} (a lock goes stale after 30 min)",
                human_age(age)
            ));
        }
        if self.hostname == this_host() && !process_alive(self.pid) {
            return Some(format!("process {} no longer runs on this host", self.pid));
        }
        None
    }

    /// `host H, pid P (exclusive, user U, 3 min old)`.
    pub fn describe(&self, now: jiff::Timestamp) -> String {
        format!(
            "host {}, pid {} ({}{}, {} old)",
            self.hostname,
            self.pid,
            if self.exclusive {
                "exclusive"
            } else {
                "shared"
            },
            if self.username.is_empty() {
                String::new()
            } else {
                format!(", user {}", self.username)
            },
            human_age(age(self.time, now))
        )
    }
}

fn age(then: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    now.duration_since(then)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // EPERM: the process exists but belongs to someone else.
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn key_bytes(key: &MasterKey) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&key.encrypt);
    bytes[32..48].copy_from_slice(&key.mac.k);
    bytes[48..].copy_from_slice(&key.mac.r);
    bytes
}

fn cipher(key: &MasterKey) -> Aes256CtrPoly1305Aes {
    Aes256CtrPoly1305Aes::new(Key::from_slice(&key_bytes(key)))
}

/// The file restic would write for `info`: nonce, ciphertext, MAC.
pub fn encrypt(key: &MasterKey, info: &LockInfo) -> Vec<u8> {
    let plain = serde_json::to_vec(info).expect("a lock serializes");
    seal(&key_bytes(key), &plain)
}

/// Lock files are a few hundred bytes; anything bigger is not read.
const LOCK_MAX_BYTES: u64 = 64 << 10;

/// Reads a lock file; `None` when it does not decrypt or parse (another key, damage).
pub fn decrypt(key: &MasterKey, file: &[u8]) -> Option<LockInfo> {
    if file.len() < 32 {
        return None;
    }
    let plain = cipher(key)
        .decrypt(Nonce::from_slice(&file[..16]), &file[16..])
        .ok()?;
    // Repository format 2 may compress: a leading 2 means zstd follows; JSON starts
    // with `{`.
    let json = match plain.first() {
        Some(2) => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(&plain[1..])
                .ok()?
                .take(1 << 20)
                .read_to_end(&mut out)
                .ok()?;
            out
        }
        _ => plain,
    };
    serde_json::from_slice(&json).ok()
}

/// The `locks/` folder of a repository, local or in a bucket.
#[derive(Debug, Clone)]
enum LockDir {
    Local(PathBuf),
    S3(Arc<S3Client>),
}

/// One lock file found in `locks/`.
struct Found {
    id: String,
    /// `None` when the file could not be read as a lock.
    info: Option<LockInfo>,
    /// When the file was last written (local mtime, S3 LastModified).
    written: Option<jiff::Timestamp>,
}

impl LockDir {
    fn of(place: &Place) -> LockDir {
        match place {
            Place::Local(path) => LockDir::Local(path.join("locks")),
            Place::S3(client) => LockDir::S3(Arc::clone(client)),
        }
    }

    fn list(&self, key: &MasterKey) -> Result<Vec<Found>, StorageError> {
        match self {
            LockDir::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
                    Err(e) => {
                        return Err(StorageError::io(
                            format!("reading {}", dir.display()),
                            "check the permissions of the repository directory",
                            e,
                        ))
                    }
                };
                let mut found = Vec::new();
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let written = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| jiff::Timestamp::try_from(t).ok());
                    // A lock is a few hundred bytes; a bigger file is not read (a junk
                    // or hostile file must not fill memory) and counts as unreadable.
                    let small = entry.metadata().is_ok_and(|m| m.len() <= LOCK_MAX_BYTES);
                    let bytes = match small.then(|| std::fs::read(entry.path())) {
                        // Released between the listing and the read: it holds nothing.
                        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Some(read) => read.ok(),
                        None => None,
                    };
                    let info = bytes.and_then(|bytes| decrypt(key, &bytes));
                    found.push(Found {
                        id: name,
                        info,
                        written,
                    });
                }
                Ok(found)
            }
            LockDir::S3(client) => {
                let mut found = Vec::new();
                for object in client.list("locks/")? {
                    let Some(id) = object.key.strip_prefix("locks/") else {
                        continue;
                    };
                    if id.is_empty() || id.contains('/') {
                        continue;
                    }
                    let info = if object.size <= LOCK_MAX_BYTES {
                        match client.get(&object.key)? {
                            Some(bytes) => decrypt(key, &bytes),
                            // Listed, then gone: released between the listing and
                            // the read, or a deleted lock a lagging replica still
                            // lists (Garage after a node was down). It holds nothing.
                            None => continue,
                        }
                    } else {
                        None
                    };
                    found.push(Found {
                        id: id.to_string(),
                        info,
                        written: object.last_modified,
                    });
                }
                Ok(found)
            }
        }
    }

    fn write(&self, key: &MasterKey, info: &LockInfo) -> Result<String, StorageError> {
        let bytes = encrypt(key, info);
        let id = hex::encode(Sha256::digest(&bytes));
        match self {
            LockDir::Local(dir) => {
                use std::io::Write;
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::io(
                        format!("creating {}", dir.display()),
                        "check that the repository directory is writable by drydock",
                        e,
                    )
                })?;
                // Written under a dot name and renamed, so a reader never sees half a
                // lock (restic skips files that do not decrypt, we skip dot files).
                let tmp = dir.join(format!(".{id}.tmp"));
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, dir.join(&id))
                };
                write().map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    StorageError::io(
                        format!("writing a lock file in {}", dir.display()),
                        "check free space and permissions in the repository directory",
                        e,
                    )
                })?;
            }
            LockDir::S3(client) => client.put(&format!("locks/{id}"), &bytes)?,
        }
        Ok(id)
    }

    fn remove(&self, id: &str) -> Result<(), StorageError> {
        match self {
            LockDir::Local(dir) => match std::fs::remove_file(dir.join(id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(
                    format!("removing lock file {}", dir.join(id).display()),
                    "check the permissions of the repository directory",
                    e,
                )),
                _ => Ok(()),
            },
            LockDir::S3(client) => Ok(client.delete(&format!("locks/{id}"))?),
        }
    }
}

/// A restic-format lock held by this process; removed on drop.
pub struct ResticLock {
    dir: LockDir,
    current: Arc<Mutex<String>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
    released: bool,
}

impl std::fmt::Debug for ResticLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResticLock").finish_non_exhaustive()
    }
}

impl ResticLock {
    /// Stops refreshing and removes the lock file now, saying why when it cannot: a
    /// lock left behind makes restic refuse the repository until it goes stale.
    pub fn release(&mut self) -> Result<(), String> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        {
            let (flag, wake) = &*self.stop;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        let id = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.dir.remove(&id).map_err(|e| {
            format!(
                "could not remove this run's lock {} ({e}); restic refuses the repository until it is gone: the next drydock run removes it, or run `restic unlock`",
                &id[..8.min(id.len())]
            )
        })
    }
}

impl Drop for ResticLock {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            log::warn!("{e}");
        }
    }
}

/// What taking a lock found on the way.
pub struct Acquired {
    /// `None` when a reader could not write its lock file (see [`acquire_reading`]).
    pub lock: Option<ResticLock>,
    /// Stale locks removed, one line each (holder, why stale).
    pub removed_stale: Vec<String>,
    /// Why no lock file was written, when a reader went on without one.
    pub unwritten: Option<String>,
}

/// Whether a failure to write a lock file means the repository cannot be written at
/// all here (full disk or quota, read-only file system, no write permission): a reader
/// may then go on without a lock, as restic's `--no-lock` does.
fn cannot_write(e: &StorageError) -> bool {
    use std::io::ErrorKind as K;
    match e {
        StorageError::Io { source, .. } => {
            matches!(
                source.kind(),
                K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied
            ) || matches!(source.raw_os_error(), Some(28 | 122 | 30 | 13 | 1))
        }
        _ => false,
    }
}

const POLL_LOCAL: Duration = Duration::from_millis(200);
const POLL_REMOTE: Duration = Duration::from_secs(1);

/// Takes a restic-format lock in `place`, waiting up to `wait` for conflicting live
/// locks to go away and removing stale ones. `location` names the repository in errors.
pub fn acquire(
    place: &Place,
    location: &str,
    key: &MasterKey,
    exclusive: bool,
    wait: Duration,
) -> Result<Acquired, StorageError> {
    acquire_inner(place, location, key, exclusive, wait, false)
}

/// A shared lock for work that only reads (verify, restore). Like [`acquire`], it
/// waits for a live exclusive lock and fails naming it; but when its own lock file
/// cannot be written because the repository's file system refuses writes (full,
/// read-only, no permission), it goes on without one and says why in
/// [`Acquired::unwritten`]: reading must not depend on free space, and an operator
/// meets a full disk exactly when a restore is needed. Stale locks that cannot be
/// removed then are ignored (they are stale: they block nothing).
pub fn acquire_reading(
    place: &Place,
    location: &str,
    key: &MasterKey,
    wait: Duration,
) -> Result<Acquired, StorageError> {
    acquire_inner(place, location, key, false, wait, true)
}

fn acquire_inner(
    place: &Place,
    location: &str,
    key: &MasterKey,
    exclusive: bool,
    wait: Duration,
    reading: bool,
) -> Result<Acquired, StorageError> {
    let dir = LockDir::of(place);
    let poll = match dir {
        LockDir::Local(_) => POLL_LOCAL,
        LockDir::S3(_) => POLL_REMOTE,
    };
    let deadline = Instant::now() + wait;
    let mut removed_stale = Vec::new();
    loop {
        let blocker =
            clear_stale_and_find_conflict(&dir, key, exclusive, None, reading, &mut removed_stale)?;
        if let Some(holder) = blocker {
            if Instant::now() >= deadline {
                return Err(StorageError::Locked {
                    location: location.to_string(),
                    holder: format!("{holder}, still held after waiting {} s", wait.as_secs()),
                });
            }
            std::thread::sleep(poll);
            continue;
        }
        let id = match dir.write(key, &LockInfo::mine(exclusive)) {
            Ok(id) => id,
            Err(e) if reading && cannot_write(&e) => {
                // No live exclusive lock was there a moment ago; without a file of our
                // own, a prune starting now cannot see us (restic's --no-lock has the
                // same gap), which the caller's warning says.
                return Ok(Acquired {
                    lock: None,
                    removed_stale,
                    unwritten: Some(e.to_string()),
                });
            }
            Err(e) => return Err(e),
        };
        // Another process may have written its lock between our look and our write:
        // look again, and back off if we now conflict.
        match clear_stale_and_find_conflict(
            &dir,
            key,
            exclusive,
            Some(&id),
            reading,
            &mut removed_stale,
        )? {
            None => {
                return Ok(Acquired {
                    lock: Some(start_refresher(dir, key.clone(), exclusive, id)),
                    removed_stale,
                    unwritten: None,
                })
            }
            Some(holder) => {
                dir.remove(&id)?;
                if Instant::now() >= deadline {
                    return Err(StorageError::Locked {
                        location: location.to_string(),
                        holder: format!("{holder}, still held after waiting {} s", wait.as_secs()),
                    });
                }
                let backoff =
                    rand::random_range(poll.as_millis() as u64..=2 * poll.as_millis() as u64);
                std::thread::sleep(Duration::from_millis(backoff));
            }
        }
    }
}

fn clear_stale_and_find_conflict(
    dir: &LockDir,
    key: &MasterKey,
    exclusive: bool,
    own: Option<&str>,
    reading: bool,
    removed: &mut Vec<String>,
) -> Result<Option<String>, StorageError> {
    let now = jiff::Timestamp::now();
    // A stale lock blocks nothing; a reader on a file system that refuses writes
    // cannot remove it and leaves it for the next writer.
    let remove = |id: &str| match dir.remove(id) {
        Err(e) if reading && cannot_write(&e) => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    };
    let mut blocker = None;
    for found in dir.list(key)? {
        if Some(found.id.as_str()) == own {
            continue;
        }
        let short = &found.id[..found.id.len().min(8)];
        match &found.info {
            Some(info) => {
                if let Some(reason) = info.stale_reason(now) {
                    if remove(&found.id)? {
                        removed.push(format!(
                            "removed stale lock {short} of {}: {reason}",
                            info.describe(now)
                        ));
                    }
                    continue;
                }
                if exclusive || info.exclusive {
                    blocker
                        .get_or_insert_with(|| format!("lock {short} of {}", info.describe(now)));
                }
            }
            // A lock we cannot read (another key, damage) counts as exclusive until it
            // is old enough to be stale by its write time.
            None => {
                let written_age = found.written.map(|t| age(t, now));
                if written_age.is_some_and(|a| a > STALE_AFTER) {
                    if remove(&found.id)? {
                        removed.push(format!(
                            "removed stale unreadable lock {short} (written {} ago)",
                            human_age(written_age.unwrap_or_default())
                        ));
                    }
                    continue;
                }
                blocker.get_or_insert_with(|| {
                    format!(
                        "lock {short} that drydock cannot read (written {} ago)",
                        written_age
                            .map(human_age)
                            .unwrap_or_else(|| "an unknown time".into())
                    )
                });
            }
        }
    }
    Ok(blocker)
}

fn start_refresher(dir: LockDir, key: MasterKey, exclusive: bool, id: String) -> ResticLock {
    let current = Arc::new(Mutex::new(id));
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let refresher = {
        let (dir, current, stop) = (dir.clone(), Arc::clone(&current), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (flag, wake) = &*stop;
            let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                let (guard, timeout) = wake
                    .wait_timeout_while(stopped, REFRESH_EVERY, |s| !*s)
                    .unwrap_or_else(|p| p.into_inner());
                stopped = guard;
                if *stopped || !timeout.timed_out() {
                    return;
                }
                // New file first, then the old one goes: there is never a moment
                // without a lock.
                match dir.write(&key, &LockInfo::mine(exclusive)) {
                    Ok(new_id) => {
                        let old = std::mem::replace(
                            &mut *current.lock().unwrap_or_else(|p| p.into_inner()),
                            new_id,
                        );
                        if let Err(e) = dir.remove(&old) {
                            log::warn!("refreshing drydock's lock: {e}");
                        }
                    }
                    Err(e) => log::warn!("refreshing drydock's lock: {e}"),
                }
            }
        })
    };
    ResticLock {
        dir,
        current,
        stop,
        refresher: Some(refresher),
        released: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_round_trip_and_reject_other_keys() {
        let key = MasterKey::new();
        let info = LockInfo::mine(true);
        let file = encrypt(&key, &info);
        assert_eq!(decrypt(&key, &file), Some(info));
        assert_eq!(decrypt(&MasterKey::new(), &file), None);
        assert_eq!(decrypt(&key, &file[..20]), None);
    }

    #[test]
    fn staleness_follows_restics_rules() {
        let now = jiff::Timestamp::now();
        let mut info = LockInfo::mine(false);
        assert_eq!(info.stale_reason(now), None, "our own process is alive");
        info.time = now - jiff::SignedDuration::from_secs(31 * 60);
        assert!(info.stale_reason(now).unwrap().contains("31 min"));
        info.time = now;
        info.pid = i64::from(i32::MAX);
        assert!(info.stale_reason(now).unwrap().contains("no longer runs"));
        info.hostname = "another-host".into();
        assert_eq!(info.stale_reason(now), None, "a live lock of another host");
    }

    #[test]
    fn descriptions_name_host_pid_and_age() {
        let now = jiff::Timestamp::now();
        let info = LockInfo {
            time: now - jiff::SignedDuration::from_secs(180),
            exclusive: true,
            hostname: "db1".into(),
            username: "backup".into(),
            pid: 4242,
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            info.describe(now),
            "host db1, pid 4242 (exclusive, user backup, 3 min old)"
        );
    }
}
