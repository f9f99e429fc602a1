//! The engine's view of the local repository: opening it from the config, storing
//! manifests, and the [`Store`]/[`Fetch`] implementations sources write to and read
//! from (any copy).
//!
//! Manifests are stored as small stream snapshots tagged `drydock-manifest`, so a
//! repository alone (a fresh machine, or plain restic) says what each backup holds.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::Config;
use drydock_domain::{Cancel, Event, EventSink, Manifest, SourceRecord};
use drydock_sources::{EntryKind, Fetch, Store, StoreError, Stored, TreeEntry};
use drydock_storage::{Repository, SnapshotMeta, StorageError};

use crate::EngineError;

pub const MANIFEST_TAG: &str = "drydock-manifest";

fn storage_error(location: &str, cause: StorageError) -> EngineError {
    EngineError::Storage {
        location: location.to_string(),
        cause,
    }
}

/// Opens the configured repository; `create` makes it when missing (backups do, reads
/// never do).
pub fn open_repository(config: &Config, create: bool) -> Result<Repository, EngineError> {
    let path = &config.repository.path;
    let password = config.repository.password.expose();
    let result = if create {
        Repository::open_or_init(path, password)
    } else {
        if !path.join("config").exists() {
            return Err(EngineError::NoRepository { path: path.clone() });
        }
        Repository::open(path, password)
    };
    result.map_err(|e| storage_error(&path.display().to_string(), e))
}

pub fn host() -> String {
    nix_hostname().unwrap_or_else(|| "localhost".into())
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn save_manifest(repo: &Repository, manifest: &Manifest) -> Result<String, EngineError> {
    let meta = SnapshotMeta {
        path: format!("drydock/manifests/{}.json", manifest.id),
        tags: vec![
            MANIFEST_TAG.into(),
            format!("backup:{}", manifest.id),
            format!("stack:{}", manifest.stack),
        ],
        hostname: manifest.host.clone(),
        label: Some(format!("drydock manifest {}", manifest.id)),
    };
    let bytes = manifest.to_json();
    if bytes.len() > drydock_domain::manifest::MANIFEST_MAX_BYTES {
        // Written anyway, it could never be read back: the backup would vanish from
        // every list while the run reported success.
        let biggest = manifest
            .sources
            .iter()
            .max_by_key(|s| s.fingerprint.as_ref().map_or(0, |f| f.parts.len()));
        let hint = biggest.map_or(String::new(), |s| {
            format!(
                " ({} alone has {} entries)",
                s.label(),
                s.fingerprint.as_ref().map_or(0, |f| f.parts.len())
            )
        });
        return Err(EngineError::Manifest {
            id: manifest.id.to_string(),
            cause: format!(
                "it would be {} bytes, over the {} MiB a manifest may have, so drydock could never read it back{hint}; nothing was recorded: split a source this large into several `files` sources",
                bytes.len(),
                drydock_domain::manifest::MANIFEST_MAX_BYTES >> 20
            ),
        });
    }
    repo.backup_stream(Box::new(std::io::Cursor::new(bytes)), &meta)
        .map(|s| s.id)
        .map_err(|e| storage_error(repo.location(), e))
}

/// Stores one source's data, remembering every snapshot it created so the engine can
/// discard them all if the source fails after storing.
pub struct RepoStore<'a> {
    pub repo: &'a Repository,
    pub base_meta: SnapshotMeta,
    pub label: String,
    pub events: Arc<dyn EventSink>,
    /// Checked at every read: a cancelled run fails the source it is reading.
    pub cancel: Cancel,
    pub created: RefCell<Vec<String>>,
}

impl Store for RepoStore<'_> {
    fn put_stream(
        &self,
        reader: Box<dyn Read + Send>,
        extension: &str,
    ) -> Result<Stored, StoreError> {
        let mut meta = self.base_meta.clone();
        meta.path = format!("{}{extension}", self.base_meta.path);
        let counting = ProgressReader {
            inner: reader,
            bytes: 0,
            label: self.label.clone(),
            events: Arc::clone(&self.events),
            cancel: self.cancel.clone(),
            last: Instant::now(),
        };
        let stored = self
            .repo
            .backup_stream(Box::new(counting), &meta)
            .map_err(|e| StoreError(e.to_string()))?;
        self.created.borrow_mut().push(stored.id.clone());
        Ok(Stored {
            snapshot_id: stored.id,
            path: Some(format!("/{}", meta.path)),
            logical_bytes: stored.logical_bytes,
            stored_bytes: stored.added_bytes,
            sha256: stored.sha256,
        })
    }

    fn put_tree(
        &self,
        root: &Path,
        excludes: &[String],
        each: &mut (dyn FnMut(TreeEntry) + Send),
    ) -> Result<Stored, StoreError> {
        let stored = self
            .repo
            .backup_tree_each(root, excludes, &self.base_meta, &mut |e| {
                each(tree_entry(e))
            })
            .map_err(|e| StoreError(e.to_string()))?;
        self.created.borrow_mut().push(stored.id.clone());
        Ok(Stored {
            snapshot_id: stored.id,
            path: None,
            logical_bytes: stored.logical_bytes,
            stored_bytes: stored.added_bytes,
            sha256: None,
        })
    }
}

fn tree_entry(e: drydock_storage::TreeEntry) -> TreeEntry {
    use drydock_storage::EntryKind as K;
    let kind = match e.kind {
        K::File => EntryKind::File,
        K::Dir => EntryKind::Dir,
        K::Symlink => EntryKind::Symlink,
        K::Fifo => EntryKind::Fifo,
        K::Socket => EntryKind::Socket,
        K::CharDevice => EntryKind::CharDevice,
        K::BlockDevice => EntryKind::BlockDevice,
    };
    TreeEntry {
        path: e.path,
        kind,
        mode: e.mode,
        size: e.size,
        sha256: e.sha256,
        link_target: e.link_target,
    }
}

/// Reads one manifest record's data back from one copy; a stream whose SHA-256
/// differs from the manifest's is an error (the copy returned other bytes than were
/// stored). Remembers whether reading the copy failed, so a restore can tell a damaged
/// copy (try another) from a failing target.
pub struct RepoFetch<'a> {
    pub repo: &'a Repository,
    /// The record's data snapshot in this copy.
    pub snapshot_id: &'a str,
    pub record: &'a SourceRecord,
    pub events: &'a dyn EventSink,
    pub copy_failed: std::cell::Cell<bool>,
}

impl Fetch for RepoFetch<'_> {
    fn stream_into(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let snapshot = self.snapshot_id;
        let mut progress = ProgressWriter {
            inner: out,
            bytes: 0,
            label: self.record.label(),
            events: self.events,
            last: Instant::now(),
        };
        let (n, sha) = self
            .repo
            .dump_stream(snapshot, &mut progress)
            .map_err(|e| {
                // A failed write to `out` is the target's fault, anything else the copy's.
                if !matches!(e, StorageError::Io { .. }) {
                    self.copy_failed.set(true);
                }
                StoreError(e.to_string())
            })?;
        if let Some(expected) = &self.record.sha256 {
            if &sha != expected {
                self.copy_failed.set(true);
                return Err(StoreError(format!(
                    "stored stream of {} has SHA-256 {sha}, the manifest says {expected}: the repository copy is damaged; run `drydock verify --read-data`",
                    self.record.label()
                )));
            }
        }
        Ok(n)
    }

    fn tree_into(&self, dest: &Path) -> Result<(), StoreError> {
        self.repo.restore_tree(self.snapshot_id, dest).map_err(|e| {
            if !matches!(e, StorageError::Io { .. }) {
                self.copy_failed.set(true);
            }
            StoreError(e.to_string())
        })
    }
}

const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Counts bytes flowing into the repository and reports them as progress events.
/// Owned (`Arc`) because the repository moves the reader to its own thread.
struct ProgressReader {
    inner: Box<dyn Read + Send>,
    bytes: u64,
    label: String,
    events: Arc<dyn EventSink>,
    cancel: Cancel,
    last: Instant,
}

impl Read for ProgressReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(reason) = self.cancel.reason() {
            // Not `Interrupted`: readers retry that.
            return Err(std::io::Error::other(format!(
                "the run was cancelled ({reason})"
            )));
        }
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            self.events.emit(Event::Progress {
                source: self.label.clone(),
                bytes: self.bytes,
            });
        }
        Ok(n)
    }
}

struct ProgressWriter<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
    label: String,
    events: &'a dyn EventSink,
    last: Instant,
}

impl Write for ProgressWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            self.events.emit(Event::Progress {
                source: self.label.clone(),
                bytes: self.bytes,
            });
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
