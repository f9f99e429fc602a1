//! Backing up a directory tree (restoring one is `tree_restore`).
//!
//! The walk is rustic's own recipe (`ignore` walker, no symlink following,
//! sorted, entries mapped by `LocalSourceSaveOptions::map_entry`), with
//! three differences that are the reason this module exists:
//! - paths are stored relative to the root, so a restore (ours or
//!   `restic restore --target DEST`) puts the root's contents directly under
//!   the destination;
//! - exclude globs are rooted at the backed-up directory;
//! - every file is read through [`HashingReader`], so each [`TreeEntry`]
//!   handed on carries the SHA-256 of exactly the bytes stored, and a file
//!   that cannot be read fails the backup instead of silently missing from it
//!   (rustic only logs such a file);
//! - entries are handed on as soon as their file is read, not collected: the
//!   walk holds only the few entries whose file is still being read, so memory
//!   does not grow with the number of files.
//!
//! FIFOs, sockets and devices are stored as special nodes and never opened.
//! Files are opened with `O_NONBLOCK | O_NOFOLLOW` and checked to be regular
//! files, so one swapped for a FIFO or a symlink after the walk cannot hang
//! or redirect the backup.
//!
//! Names are stored byte-exact (also non-UTF-8 ones, newlines, backslashes)
//! and restic 0.14 restores them exactly too. Symlink targets that are not
//! UTF-8 are kept byte-exact in rustic's `linktarget_raw`, which restic 0.14
//! does not know: its restore writes such a target with U+FFFD in place of
//! the bad bytes. drydock's own restore is exact.

use std::{
    collections::VecDeque,
    fs::{File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{mpsc, Arc, Mutex, PoisonError},
};

use ignore::{
    overrides::{Override, OverrideBuilder},
    Walk, WalkBuilder,
};
use rustic_core::{
    repofile::{Node, NodeType},
    BackupOptions, ErrorKind, LocalSourceSaveOptions, ParentOptions, ReadSource, ReadSourceEntry,
    ReadSourceOpen, RusticError, RusticResult,
};

use crate::{
    error::StorageError,
    reader::{new_slot, read_slot, HashingReader, OutcomeSlot},
    repo::{new_snapshot, Repository},
    types::{EntryKind, SnapshotMeta, StoredSnapshot, TreeEntry},
};

/// What the walk saw, kept while rustic consumes it: the entries whose file is still
/// being read (in walk order), and every failure.
struct WalkLog {
    pending: VecDeque<(TreeEntry, Option<OutcomeSlot>)>,
    failures: Vec<String>,
    /// Where finished entries go; `None` once the backup is over.
    finished: Option<mpsc::Sender<TreeEntry>>,
}

impl WalkLog {
    /// Hands on the entries at the front whose file has been read (with `all`, every
    /// entry: the engine is done, so an unread file is a failure).
    fn pass_on(&mut self, all: bool) {
        while let Some((_, slot)) = self.pending.front() {
            if !all && slot.as_ref().is_some_and(|slot| !read_slot(slot).settled()) {
                break;
            }
            let Some((mut entry, slot)) = self.pending.pop_front() else {
                break;
            };
            if let Some(slot) = slot {
                let outcome = read_slot(&slot);
                if outcome.vanished {
                    continue;
                }
                match outcome.complete() {
                    Ok((bytes, sha)) => {
                        entry.size = bytes;
                        entry.sha256 = Some(sha);
                    }
                    Err(cause) => {
                        self.failures
                            .push(format!("{}: {cause}", entry.path.display()));
                        continue;
                    }
                }
            }
            if let Some(finished) = &self.finished {
                // The receiver only goes away with the backup itself.
                let _ = finished.send(entry);
            }
        }
    }
}

/// Ends the walk's log when the backup is over, however it ends (a panic included):
/// the rest is handed on and the receiving side sees the end.
struct EndOfWalk<'a>(&'a SharedLog);

impl Drop for EndOfWalk<'_> {
    fn drop(&mut self) {
        let mut log = log_of(self.0);
        log.pass_on(true);
        log.finished = None;
    }
}

type SharedLog = Arc<Mutex<WalkLog>>;

fn log_of(log: &SharedLog) -> std::sync::MutexGuard<'_, WalkLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

struct TreeSource {
    root: PathBuf,
    builder: WalkBuilder,
    save_opts: LocalSourceSaveOptions,
    log: SharedLog,
}

impl ReadSource for TreeSource {
    type Open = TreeFile;
    type Iter = TreeWalker;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        TreeWalker {
            walk: self.builder.build(),
            root: self.root.clone(),
            save_opts: self.save_opts,
            log: self.log.clone(),
        }
    }
}

struct TreeWalker {
    walk: Walk,
    root: PathBuf,
    save_opts: LocalSourceSaveOptions,
    log: SharedLog,
}

/// `true` if `path` is gone: such an entry was deleted during the walk and
/// is left out rather than failing the backup.
fn vanished(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

impl Iterator for TreeWalker {
    type Item = RusticResult<ReadSourceEntry<TreeFile>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.walk.next()? {
                Ok(entry) => entry,
                Err(err) => {
                    let gone = err
                        .io_error()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                    if gone {
                        log::warn!("skipping an entry that vanished during the backup: {err}");
                    } else {
                        log_of(&self.log).failures.push(err.to_string());
                    }
                    continue;
                }
            };
            if entry.depth() == 0 {
                // The root itself: its contents are the snapshot's top level.
                continue;
            }
            let abs = entry.path().to_path_buf();
            let rel = match abs.strip_prefix(&self.root) {
                Ok(rel) => rel.to_path_buf(),
                Err(_) => {
                    log_of(&self.log)
                        .failures
                        .push(format!("{}: outside the backup root", abs.display()));
                    continue;
                }
            };
            let node = match self.save_opts.map_entry(entry) {
                Ok(mapped) => mapped.node,
                Err(err) if vanished(&abs) => {
                    log::warn!(
                        "skipping {} (vanished during the backup): {err}",
                        abs.display()
                    );
                    continue;
                }
                Err(err) => {
                    log_of(&self.log)
                        .failures
                        .push(format!("{}: {err}", abs.display()));
                    continue;
                }
            };
            let slot = node.is_file().then(new_slot);
            let open = slot.clone().map(|slot| TreeFile {
                path: abs.clone(),
                slot,
            });
            {
                let mut log = log_of(&self.log);
                log.pending
                    .push_back((tree_entry(rel.clone(), &node), slot));
                log.pass_on(false);
            }
            return Some(Ok(ReadSourceEntry {
                path: rel,
                node,
                open,
            }));
        }
    }
}

/// How to open one regular file of the tree.
struct TreeFile {
    path: PathBuf,
    slot: OutcomeSlot,
}

impl ReadSourceOpen for TreeFile {
    type Reader = HashingReader<File>;

    fn open(self) -> RusticResult<Self::Reader> {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(&self.path)
            .and_then(|f| {
                if f.metadata()?.is_file() {
                    Ok(f)
                } else {
                    Err(std::io::Error::other(
                        "it is no longer a regular file (replaced during the backup)",
                    ))
                }
            });
        match opened {
            Ok(file) => Ok(HashingReader::new(file, self.slot)),
            Err(e) => {
                {
                    let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
                    if e.kind() == std::io::ErrorKind::NotFound {
                        slot.vanished = true;
                    } else {
                        slot.error = Some(format!("opening failed: {e}"));
                    }
                }
                Err(
                    RusticError::with_source(ErrorKind::InputOutput, "Failed to open `{path}`.", e)
                        .attach_context("path", self.path.display().to_string()),
                )
            }
        }
    }
}

// Go's os.FileMode bits, which restic stores instead of POSIX st_mode.
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// Go `FileMode` -> POSIX permission bits (`0o7777`).
pub(crate) fn permission_bits(go_mode: u32) -> u32 {
    let mut mode = go_mode & 0o777;
    if go_mode & GO_MODE_SETUID != 0 {
        mode |= 0o4000;
    }
    if go_mode & GO_MODE_SETGID != 0 {
        mode |= 0o2000;
    }
    if go_mode & GO_MODE_STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

fn tree_entry(path: PathBuf, node: &Node) -> TreeEntry {
    let (kind, link_target) = match &node.node_type {
        NodeType::File => (EntryKind::File, None),
        NodeType::Dir => (EntryKind::Dir, None),
        NodeType::Symlink { .. } => (
            EntryKind::Symlink,
            Some(node.node_type.to_link().to_path_buf()),
        ),
        NodeType::Dev { .. } => (EntryKind::BlockDevice, None),
        NodeType::Chardev { .. } => (EntryKind::CharDevice, None),
        NodeType::Fifo => (EntryKind::Fifo, None),
        NodeType::Socket => (EntryKind::Socket, None),
    };
    TreeEntry {
        path,
        kind,
        mode: node.meta.mode.map_or(0, permission_bits),
        size: 0,
        sha256: None,
        link_target,
    }
}

/// Each exclude names what to leave out, as a gitignore-style glob rooted at
/// the backed-up directory (`cache/`, `*.tmp`, `/top-level-only`). rustic
/// writes excludes as `!glob` (a glob without `!` would be a whitelist that
/// drops everything else); both spellings are accepted and mean "exclude".
fn exclude_override(root: &Path, excludes: &[String]) -> Result<Override, StorageError> {
    let mut builder = OverrideBuilder::new(root);
    for pattern in excludes {
        let glob = if pattern.starts_with('!') {
            pattern.clone()
        } else {
            format!("!{pattern}")
        };
        builder.add(&glob).map_err(|e| {
            StorageError::invalid(
                format!("exclude pattern {pattern:?}"),
                e.to_string(),
                "write it as a gitignore-style glob relative to the backed-up directory",
            )
        })?;
    }
    builder.build().map_err(|e| {
        StorageError::invalid(
            "exclude patterns",
            e.to_string(),
            "write them as gitignore-style globs relative to the backed-up directory",
        )
    })
}

fn summarize(failures: &[String]) -> String {
    let mut text = failures
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > 5 {
        text.push_str(&format!(" (and {} more)", failures.len() - 5));
    }
    text
}

impl Repository {
    /// Stores the contents of directory `root` as a new snapshot; returns it
    /// with one [`TreeEntry`] per stored entry (see [`Repository::backup_tree_each`]
    /// for a tree too big to hold its entries).
    pub fn backup_tree(
        &self,
        root: &Path,
        excludes: &[String],
        meta: &SnapshotMeta,
    ) -> Result<(StoredSnapshot, Vec<TreeEntry>), StorageError> {
        let mut entries = Vec::new();
        let stored = self.backup_tree_each(root, excludes, meta, &mut |e| entries.push(e))?;
        Ok((stored, entries))
    }

    /// Stores the contents of directory `root` as a new snapshot, handing each stored
    /// entry to `each` as soon as it is stored (walk order, from another thread). When
    /// this fails, what `each` saw is not a backup.
    pub fn backup_tree_each(
        &self,
        root: &Path,
        excludes: &[String],
        meta: &SnapshotMeta,
        each: &mut (dyn FnMut(TreeEntry) + Send),
    ) -> Result<StoredSnapshot, StorageError> {
        let root = std::fs::canonicalize(root).map_err(|e| {
            StorageError::io(
                format!("backup source {}", root.display()),
                "check that the directory exists and drydock may read it",
                e,
            )
        })?;
        if !root.is_dir() {
            return Err(StorageError::invalid(
                format!("backup source {}", root.display()),
                "is not a directory",
                "point the source at a directory",
            ));
        }
        let overrides = exclude_override(&root, excludes)?;
        let mut builder = WalkBuilder::new(&root);
        builder
            .standard_filters(false)
            .follow_links(false)
            .same_file_system(false)
            .sort_by_file_path(Path::cmp)
            .overrides(overrides);
        let (finished, received) = mpsc::channel();
        let log: SharedLog = Arc::new(Mutex::new(WalkLog {
            pending: VecDeque::new(),
            failures: Vec::new(),
            finished: Some(finished),
        }));
        let source = TreeSource {
            root: root.clone(),
            builder,
            save_opts: LocalSourceSaveOptions::default(),
            log: log.clone(),
        };

        let snap = new_snapshot(meta)?;
        let engine = self
            .engine()?
            .to_indexed_ids()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        let opts = BackupOptions::default()
            .no_scan(true)
            .parent_opts(ParentOptions::default().force(true));
        let result = std::thread::scope(|scope| {
            scope.spawn(move || received.into_iter().for_each(each));
            let _end = EndOfWalk(&log);
            engine.archive(&opts, &source, snap, std::slice::from_ref(&root))
        });
        drop(source);
        let failures = std::mem::take(&mut log_of(&log).failures);
        let what = format!("the tree at {}", root.display());

        let saved = match result {
            Ok(saved) => saved,
            Err(e) if failures.is_empty() => {
                return Err(self.engine_err("backing up a tree into", &e));
            }
            Err(_) => {
                return Err(StorageError::ReadFailed {
                    what,
                    cause: summarize(&failures),
                });
            }
        };
        if !failures.is_empty() {
            let mut cause = summarize(&failures);
            if let Err(e) = engine.delete_snapshots(&[saved.id]) {
                cause.push_str(&format!(
                    "; deleting the incomplete snapshot {} also failed ({}), forget it by hand",
                    saved.id.to_hex().as_str(),
                    e.display_log()
                ));
            }
            return Err(StorageError::ReadFailed { what, cause });
        }
        let summary = saved.summary.as_ref();
        Ok(StoredSnapshot {
            id: saved.id.to_hex().as_str().to_string(),
            logical_bytes: summary.map_or(0, |s| s.total_bytes_processed),
            added_bytes: summary.map_or(0, |s| s.data_added_packed),
            sha256: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_map_to_permission_bits() {
        assert_eq!(permission_bits(0o644), 0o644);
        assert_eq!(permission_bits((1 << 31) | 0o755), 0o755); // dir bit dropped
        assert_eq!(permission_bits(GO_MODE_SETUID | 0o755), 0o4755);
        assert_eq!(permission_bits(GO_MODE_SETGID | 0o2750 & 0o777), 0o2750);
        assert_eq!(permission_bits(GO_MODE_STICKY | 0o777), 0o1777);
    }

    #[test]
    fn excludes_are_rooted_and_bang_is_optional() {
        let root = Path::new("/srv/data");
        let ov =
            exclude_override(root, &["cache/".into(), "!*.tmp".into(), "/top".into()]).unwrap();
        assert!(ov.matched("/srv/data/cache", true).is_ignore());
        assert!(ov.matched("/srv/data/a/b.tmp", false).is_ignore());
        assert!(ov.matched("/srv/data/top", false).is_ignore());
        assert!(!ov.matched("/srv/data/a/top", false).is_ignore());
        assert!(!ov.matched("/srv/data/keep.txt", false).is_ignore());
    }
}
