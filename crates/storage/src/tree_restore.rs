//! Restoring a tree snapshot into a directory, in memory that does not grow with the
//! number of files.
//!
//! rustic's own restore first collects every file of the snapshot into a plan (and in
//! 0.13 queues decrypted blobs for its writers without bound), so its memory grows with
//! the tree: ~1 KiB per file, 434 MiB for 500,000 small files. Here the snapshot's
//! nodes are streamed once, depth first, and each is written as it comes:
//! - directories, symlinks and special files by the walking thread;
//! - regular files by a few workers fed through a short queue, each streaming one whole
//!   file from the repository (`dump`), zero blocks left as holes ([`SparseWriter`]);
//! - every entry is checked ([`check_entry`]) before it is written, so a name that
//!   would land outside the destination stops the restore before anything is written
//!   outside it (what was written inside it is the caller's to discard);
//! - what must wait for the end is kept, and only that: each directory's node (its
//!   mode and times are set last, deepest first, once nothing more is written into it)
//!   and the second and later names of hard-linked files (linked once their first name
//!   is written).
//!
//! Metadata is applied as rustic's restore applies it (numeric owner, permission bits,
//! extended attributes, access and modification times), in the order that keeps each
//! step possible: owner first (a `chown` clears set-id bits and file capabilities),
//! then extended attributes (a read-only file still accepts them from its owner), then
//! the mode, then the times (every earlier step changes the ctime, none the mtime).

use std::{
    collections::{btree_map::Entry, BTreeMap},
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Mutex, PoisonError,
    },
};

use rustic_core::{
    repofile::{Node, NodeType},
    ErrorKind, IndexedFull, LsOptions, RusticError, RusticResult,
};

use crate::{
    error::StorageError,
    repo::{panic_message, Repository},
    tree::permission_bits,
};

/// Files waiting for a worker: enough to keep the workers busy while the walk reads
/// the next tree, few enough that the queue's nodes never matter.
const QUEUED_FILES: usize = 256;

impl Repository {
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
        std::fs::create_dir_all(dest).map_err(|e| {
            StorageError::io(
                format!("restore destination {}", dest.display()),
                "restore into a new or empty directory drydock may write",
                e,
            )
        })?;
        // Anything below that panics (a dependency unwrapping an I/O result) must become
        // an error, not a crash.
        let outcome = catch_unwind(AssertUnwindSafe(|| write_tree(&engine, nodes, dest)));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Stop::Engine(e))) => Err(self.engine_err("restoring a snapshot of", &e)),
            Ok(Err(Stop::Unsafe(problem))) => Err(StorageError::invalid(
                format!(
                    "snapshot {snapshot_id} of repository at {}",
                    self.location
                ),
                format!(
                    "{problem}; the restore stopped before writing it, and nothing was written outside {}",
                    dest.display()
                ),
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
    /// The tree holds an entry that would land outside the destination; it was not
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

/// Writes the snapshot's `nodes` (depth first, as `ls` streams them) under `dest`, which
/// exists and is empty.
fn write_tree<S: IndexedFull + Sync>(
    engine: &rustic_core::Repository<S>,
    nodes: impl Iterator<Item = RusticResult<(PathBuf, Node)>>,
    dest: &Path,
) -> Result<(), Stop> {
    let (queue, queued) = mpsc::sync_channel::<(PathBuf, Node)>(QUEUED_FILES);
    let queued = Mutex::new(queued);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Box<RusticError>>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    // Kept to the end: directories (metadata last) and later names of hard links.
    let mut dirs: Vec<(PathBuf, Node)> = Vec::new();
    let mut first_name: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut later_names: Vec<(PathBuf, PathBuf, Node)> = Vec::new();

    let walked = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queued.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok((path, node)) = next else { return };
                // After a failure the queue is still drained, so the walk never blocks.
                if failed.load(Ordering::Relaxed) {
                    continue;
                }
                if let Err(e) = write_file(engine, &node, &dest.join(&path)) {
                    failed.store(true, Ordering::Relaxed);
                    first_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                }
            });
        }
        let walked = (|| -> Result<(), Stop> {
            let mut open = Vec::new();
            for item in nodes {
                if failed.load(Ordering::Relaxed) {
                    return Ok(()); // the worker's error is the one reported
                }
                let (path, node) = item?;
                check_entry(&path, &node, &mut open).map_err(Stop::Unsafe)?;
                let target = dest.join(&path);
                match node.node_type {
                    NodeType::Dir => {
                        std::fs::create_dir(&target)
                            .map_err(|e| io_error("creating the directory", &target, e))?;
                        dirs.push((path, node));
                    }
                    NodeType::File => {
                        if let Some(key) = hardlink_key(&node) {
                            match first_name.entry(key) {
                                Entry::Vacant(first) => {
                                    first.insert(path.clone());
                                }
                                Entry::Occupied(first) => {
                                    later_names.push((first.get().clone(), path, node));
                                    continue;
                                }
                            }
                        }
                        if queue.send((path, node)).is_err() {
                            return Ok(());
                        }
                    }
                    _ => {
                        create_special(&target, &node)?;
                        set_metadata(&target, &node)?;
                    }
                }
            }
            Ok(())
        })();
        drop(queue); // the workers finish what is queued, then stop
        walked
    });
    walked?;
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(Stop::Engine(e));
    }
    for (first, path, node) in later_names {
        let target = dest.join(&path);
        std::fs::hard_link(dest.join(&first), &target)
            .map_err(|e| io_error("hard-linking", &target, e))?;
        set_metadata(&target, &node)?;
    }
    // Deepest first: a directory's times are set once nothing more is written into it,
    // and a read-only directory gets its mode after its contents.
    for (path, node) in dirs.iter().rev() {
        set_metadata(&dest.join(path), node)?;
    }
    Ok(())
}

/// The inode a hard-linked file shares with its other names (as rustic's restore keys
/// them); `None` for a file with one name.
fn hardlink_key(node: &Node) -> Option<(u64, u64)> {
    (node.meta.links > 1 && node.meta.device_id != 0 && node.meta.inode != 0)
        .then_some((node.meta.device_id, node.meta.inode))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Box<RusticError> {
    RusticError::with_source(ErrorKind::InputOutput, "{what} `{path}` failed", e)
        .attach_context("what", what.to_string())
        .attach_context("path", path.display().to_string())
}

/// Creates one regular file (never through an existing name or a symlink) with its
/// stored content, then its metadata.
fn write_file<S: IndexedFull>(
    engine: &rustic_core::Repository<S>,
    node: &Node,
    target: &Path,
) -> RusticResult<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| io_error("creating", target, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, SparseWriter::new(file));
    engine.dump(node, &mut out)?;
    out.flush().map_err(|e| io_error("writing", target, e))?;
    out.get_mut()
        .finish()
        .map_err(|e| io_error("writing", target, e))?;
    drop(out);
    set_metadata(target, node)
}

/// Creates a symlink, device, FIFO or socket node.
fn create_special(target: &Path, node: &Node) -> RusticResult<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let made = |kind: SFlag, device: u64| {
        mknod(target, kind, Mode::empty(), device)
            .map_err(|e| io_error("creating the special file", target, e.into()))
    };
    match &node.node_type {
        NodeType::Symlink { .. } => std::os::unix::fs::symlink(node.node_type.to_link(), target)
            .map_err(|e| io_error("creating the symlink", target, e)),
        NodeType::Dev { device } => made(SFlag::S_IFBLK, *device),
        NodeType::Chardev { device } => made(SFlag::S_IFCHR, *device),
        NodeType::Fifo => made(SFlag::S_IFIFO, 0),
        NodeType::Socket => made(SFlag::S_IFSOCK, 0),
        NodeType::File | NodeType::Dir => Ok(()),
    }
}

/// Gives `target` the node's owner, extended attributes, mode and times, never
/// following a symlink. An owner drydock may not give (it is not root) and an extended
/// attribute the filesystem refuses are logged and skipped, as rustic's restore does;
/// the mode and times are part of what a restore must get right, so failing to set
/// them fails it.
fn set_metadata(target: &Path, node: &Node) -> RusticResult<()> {
    let meta = &node.meta;
    if meta.uid.is_some() || meta.gid.is_some() {
        if let Err(e) = std::os::unix::fs::lchown(target, meta.uid, meta.gid) {
            log::warn!(
                "restore {}: setting the owner {:?}:{:?} failed: {e}",
                target.display(),
                meta.uid,
                meta.gid
            );
        }
    }
    for attribute in &meta.extended_attributes {
        let value = attribute.value.as_deref().unwrap_or_default();
        if let Err(e) = xattr::set(target, &attribute.name, value) {
            log::warn!(
                "restore {}: setting the extended attribute {} failed: {e}",
                target.display(),
                attribute.name
            );
        }
    }
    if !node.is_symlink() {
        if let Some(mode) = meta.mode {
            std::fs::set_permissions(
                target,
                std::os::unix::fs::PermissionsExt::from_mode(permission_bits(mode)),
            )
            .map_err(|e| io_error("setting the mode of", target, e))?;
        }
    }
    if let Some(mtime) = meta.mtime {
        let mtime = filetime::FileTime::from_system_time(mtime.into());
        let atime = meta
            .atime
            .map_or(mtime, |a| filetime::FileTime::from_system_time(a.into()));
        filetime::set_symlink_file_times(target, atime, mtime)
            .map_err(|e| io_error("setting the times of", target, e))?;
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
}
