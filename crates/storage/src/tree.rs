//! Backing up a directory tree, and restoring one.
//!
//! The walk is rustic's own recipe (`ignore` walker, no symlink following,
//! sorted, entries mapped by `LocalSourceSaveOptions::map_entry`), with
//! three differences that are the reason this module exists:
//! - paths are stored relative to the root, so a restore (ours or
//!   `restic restore --target DEST`) puts the root's contents directly under
//!   the destination;
//! - exclude globs are rooted at the backed-up directory;
//! - every file is read through [`HashingReader`], so the returned
//!   [`TreeEntry`] list carries the SHA-256 of exactly the bytes stored, and
//!   a file that cannot be read fails the backup instead of silently missing
//!   from it (rustic only logs such a file).
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
    fs::{File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use ignore::{
    overrides::{Override, OverrideBuilder},
    Walk, WalkBuilder,
};
use rustic_core::{
    repofile::{Node, NodeType},
    BackupOptions, ErrorKind, LocalDestination, LocalSourceSaveOptions, LsOptions, ParentOptions,
    ReadSource, ReadSourceEntry, ReadSourceOpen, RestoreOptions, RusticError, RusticResult,
};

use crate::{
    error::StorageError,
    reader::{new_slot, read_slot, HashingReader, OutcomeSlot},
    repo::{new_snapshot, panic_message, Repository},
    types::{EntryKind, SnapshotMeta, StoredSnapshot, TreeEntry},
};

/// What the walk saw, collected while rustic consumes it.
#[derive(Default)]
struct WalkLog {
    entries: Vec<(TreeEntry, Option<OutcomeSlot>)>,
    failures: Vec<String>,
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
            log_of(&self.log)
                .entries
                .push((tree_entry(rel.clone(), &node), slot));
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
fn permission_bits(go_mode: u32) -> u32 {
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
    /// with one [`TreeEntry`] per stored entry.
    pub fn backup_tree(
        &self,
        root: &Path,
        excludes: &[String],
        meta: &SnapshotMeta,
    ) -> Result<(StoredSnapshot, Vec<TreeEntry>), StorageError> {
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
        let log: SharedLog = Arc::default();
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
        let result = engine.archive(&opts, &source, snap, std::slice::from_ref(&root));
        drop(source);

        let WalkLog {
            entries,
            mut failures,
        } = std::mem::take(&mut *log_of(&log));
        let mut stored = Vec::with_capacity(entries.len());
        for (mut entry, slot) in entries {
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
                    Err(cause) => failures.push(format!("{}: {cause}", entry.path.display())),
                }
            }
            stored.push(entry);
        }
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
        Ok((
            StoredSnapshot {
                id: saved.id.to_hex().as_str().to_string(),
                logical_bytes: summary.map_or(0, |s| s.total_bytes_processed),
                added_bytes: summary.map_or(0, |s| s.data_added_packed),
                sha256: None,
            },
            stored,
        ))
    }

    /// Recreates the snapshot's contents directly under `dest`, which must
    /// not exist or be an empty directory.
    pub fn restore_tree(&self, snapshot_id: &str, dest: &Path) -> Result<(), StorageError> {
        match std::fs::read_dir(dest) {
            Ok(mut it) => {
                if it.next().is_some() {
                    return Err(StorageError::invalid(
                        format!("restore destination {}", dest.display()),
                        "is not empty",
                        "restore into a new or empty directory",
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StorageError::io(
                    format!("restore destination {}", dest.display()),
                    "restore into a new or empty directory drydock may write",
                    e,
                ));
            }
        }
        let Some(dest_str) = dest.to_str() else {
            return Err(StorageError::invalid(
                format!("restore destination {}", dest.display()),
                "is not valid UTF-8 (the storage engine needs UTF-8 destination paths)",
                "restore into a directory with a UTF-8 path",
            ));
        };
        let engine = self
            .engine()?
            .to_indexed()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        let snap = self.load_snapshot(&engine, snapshot_id)?;
        let root = engine
            .node_from_snapshot_and_path(&snap, "")
            .map_err(|e| self.engine_err("reading a snapshot tree of", &e))?;
        let nodes = engine
            .ls(&root, &LsOptions::default())
            .map_err(|e| self.engine_err("listing a snapshot of", &e))?;
        let dest_ld = LocalDestination::new(dest_str, true, false)
            .map_err(|e| self.engine_err("preparing the restore destination for", &e))?;
        // Numeric ids: restored data belongs to the same uid/gid as before
        // (container users rarely have names on the host).
        let opts = RestoreOptions::default().numeric_id(true);
        // rustic's restore workers unwrap I/O results (a full disk panics a
        // worker); that must become an error, not a crash.
        // rustic 0.13's restore queues every decrypted blob for its writer tasks
        // without bound, so its memory grows with the restore (1 GiB of files peaked at
        // about 1 GB RSS). File contents are therefore streamed first, one file at a
        // time through `dump` (bounded); rustic's restore then finds each file's
        // content in place (it hashes what exists and compares blob ids), writes
        // nothing more, and applies what it is good at: directories, links, special
        // files, modes, owners, times.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            stream_file_contents(&engine, nodes.clone(), dest)?;
            let plan = engine
                .prepare_restore(&opts, nodes.clone(), &dest_ld, false)
                .map_err(Stop::Engine)?;
            engine
                .restore(plan, &opts, nodes, &dest_ld)
                .map_err(Stop::Engine)
        }));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Stop::Engine(e))) => Err(self.engine_err("restoring a snapshot of", &e)),
            Ok(Err(Stop::Unsafe(problem))) => Err(StorageError::invalid(
                format!(
                    "snapshot {snapshot_id} of repository at {}",
                    self.location
                ),
                format!("{problem}; nothing was written into {}", dest.display()),
                "the snapshot was not written by drydock or restic (their trees hold plain names only); restore an older backup, and check who else writes to this repository",
            )),
            Err(panic) => Err(StorageError::Engine(format!(
                "restoring snapshot {snapshot_id} of repository at {} into {} aborted: {}; check free space and permissions at the destination",
                self.location,
                dest.display(),
                panic_message(panic.as_ref())
            ))),
        }
    }
}

/// Why a restore stopped.
enum Stop {
    Engine(Box<RusticError>),
    /// The tree holds an entry that would land outside the destination; nothing was
    /// written.
    Unsafe(String),
}

impl From<Box<RusticError>> for Stop {
    fn from(e: Box<RusticError>) -> Stop {
        Stop::Engine(e)
    }
}

/// Checks one entry of a tree walk before anything is written. rustic's restore joins
/// stored names onto the destination as they are, so a name such as `..`, `../x`,
/// `/etc/x` or `a/b` (which neither restic nor rustic writes, but anyone with the
/// repository key can) would place data outside it; restic refuses such names too.
/// Names within a directory must also be strictly increasing (restic writes trees
/// sorted): a repeated name is how a symlink and a directory of the same name would
/// send later writes through the link. `open` holds, per directory on the walk's
/// current branch, the last name seen in it.
fn check_entry(
    path: &Path,
    node: &rustic_core::repofile::Node,
    open: &mut Vec<(PathBuf, Option<std::ffi::OsString>)>,
) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let name = node.name();
    let bytes = name.as_bytes();
    if bytes.is_empty()
        || bytes == b"."
        || bytes == b".."
        || bytes.contains(&b'/')
        || bytes.contains(&0)
    {
        return Err(format!(
            "its tree holds an entry named {:?} (at {:?}), which is not a plain file name and would be written outside the restore target",
            name,
            path
        ));
    }
    let parent = path.parent().unwrap_or(Path::new(""));
    while open.last().is_some_and(|(dir, _)| dir != parent) {
        open.pop();
    }
    if open.is_empty() && !parent.as_os_str().is_empty() {
        return Err(format!(
            "its tree lists {path:?} outside the directory walked before it"
        ));
    }
    if open.is_empty() {
        open.push((PathBuf::new(), None));
    }
    let last = &mut open.last_mut().expect("pushed above").1;
    if last.as_deref().is_some_and(|prev| prev >= &*name) {
        return Err(format!(
            "its tree holds the name {name:?} twice or out of order in {parent:?} (a repeated name could send writes through a symlink)"
        ));
    }
    *last = Some(name.into_owned());
    if node.is_dir() {
        open.push((path.to_path_buf(), None));
    }
    Ok(())
}

/// Writes every regular file's content under `dest`: a few workers, each streaming one
/// whole file at a time, so memory stays bounded by the workers, not the restore's size.
/// Hard-linked copies after the first are left to rustic's restore, which links them.
/// Every entry is checked ([`check_entry`]) before the first byte is written.
fn stream_file_contents<S: rustic_core::IndexedFull + Sync>(
    engine: &rustic_core::Repository<S>,
    nodes: impl Iterator<
        Item = rustic_core::RusticResult<(std::path::PathBuf, rustic_core::repofile::Node)>,
    >,
    dest: &Path,
) -> Result<(), Stop> {
    let mut linked = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let mut open = Vec::new();
    for item in nodes {
        let (path, node) = item?;
        check_entry(&path, &node, &mut open).map_err(Stop::Unsafe)?;
        let duplicate_link = node.meta.links > 1
            && node.meta.inode != 0
            && !linked.insert((node.meta.device_id, node.meta.inode));
        if node.is_file() && !duplicate_link {
            files.push((path, node));
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> rustic_core::RusticResult<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, node)) = files.get(i) else {
                            return Ok(());
                        };
                        stream_one_file(engine, node, &dest.join(path))?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("restore worker panicked"))
    })
    .map_err(Stop::Engine)
}

fn stream_one_file<S: rustic_core::IndexedFull>(
    engine: &rustic_core::Repository<S>,
    node: &rustic_core::repofile::Node,
    target: &Path,
) -> rustic_core::RusticResult<()> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        rustic_core::RusticError::with_source(
            rustic_core::ErrorKind::InputOutput,
            "{what} `{path}` failed",
            e,
        )
        .attach_context("what", what.to_string())
        .attach_context("path", path.display().to_string())
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the directory", parent, e))?;
    }
    let file = std::fs::File::create(target).map_err(|e| io("creating", target, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, SparseWriter::new(file));
    engine.dump(node, &mut out)?;
    std::io::Write::flush(&mut out).map_err(|e| io("writing", target, e))?;
    out.get_mut()
        .finish()
        .map_err(|e| io("writing", target, e))?;
    // With its stored size and mtime the file counts as already restored, so rustic
    // does not read it back to compare content (the engine verifies the restored
    // tree's fingerprint afterwards anyway).
    if let Some(mtime) = node.meta.mtime {
        out.get_ref()
            .file
            .set_modified(std::time::SystemTime::from(mtime))
            .map_err(|e| io("setting the modification time of", target, e))?;
    }
    Ok(())
}

/// Writes a restored file so that runs of zeros stay holes: a block (4 KiB, aligned
/// to the file's start) of only zeros is skipped with a seek instead of written, and
/// the length is set at the end. A sparse file (a VM image, a database's preallocated
/// space) then comes back sparse instead of taking its whole size on disk; reading it
/// gives the same bytes either way.
struct SparseWriter {
    file: std::fs::File,
    /// Bytes accounted for so far (written or skipped).
    len: u64,
    /// Whether the last block was skipped (the file must then be extended at the end).
    pending_hole: bool,
}

const SPARSE_BLOCK: usize = 4096;

impl SparseWriter {
    fn new(file: std::fs::File) -> Self {
        SparseWriter {
            file,
            len: 0,
            pending_hole: false,
        }
    }

    /// Gives the file its full length when it ends in a hole.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.pending_hole {
            self.file.set_len(self.len)?;
            self.pending_hole = false;
        }
        Ok(())
    }
}

impl std::io::Write for SparseWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Seek;
        // Up to the next block boundary, so blocks stay aligned whatever the caller's
        // buffer sizes are.
        let room = SPARSE_BLOCK - (self.len % SPARSE_BLOCK as u64) as usize;
        let chunk = &buf[..buf.len().min(room)];
        if chunk.len() == SPARSE_BLOCK && chunk.iter().all(|b| *b == 0) {
            self.file
                .seek(std::io::SeekFrom::Current(SPARSE_BLOCK as i64))?;
            self.pending_hole = true;
        } else {
            self.file.write_all(chunk)?;
            self.pending_hole = false;
        }
        self.len += chunk.len() as u64;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_become_holes_and_the_bytes_stay_the_same() {
        use std::io::Write;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut data = vec![0u8; 8 << 20];
        data[..100].fill(7);
        data[(4 << 20)..(4 << 20) + 5000].fill(9);
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            SparseWriter::new(std::fs::File::create(&path).unwrap()),
        );
        out.write_all(&data).unwrap();
        out.flush().unwrap();
        out.get_mut().finish().unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), data.len() as u64);
        // 8 MiB of which ~12 KiB hold data: far fewer 512-byte blocks than 16384.
        assert!(meta.blocks() < 1024, "{} blocks", meta.blocks());
    }

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
