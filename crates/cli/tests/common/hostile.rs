//! Helpers for the hostile-input, secrets and memory torture scenarios: running the
//! binary with a deadline, snapshotting a directory tree to compare it later, and
//! writing a snapshot whose tree no honest writer would produce.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Runs `cmd` to its end or kills it (and its process group) at `deadline`.
/// `Err` says it hung.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Result<Output, String> {
    run_with_deadline_then(cmd, deadline, |_| {})
}

/// [`run_with_deadline`], calling `spawned` with the child's pid once it runs.
pub fn run_with_deadline_then(
    cmd: &mut Command,
    deadline: Duration,
    spawned: impl FnOnce(u32),
) -> Result<Output, String> {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    spawned(child.id());
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            });
        }
        if started.elapsed() > deadline {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            let stderr = err_t.join().unwrap();
            return Err(format!(
                "hung: still running after {deadline:?}, killed; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a path in a tree is, for comparing trees before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    File { sha256: String, mode: u32 },
    Dir { mode: u32 },
    Symlink(PathBuf),
    Special(&'static str, u64),
}

/// Every entry under `root` (not following links), keyed by its relative path's bytes.
pub fn tree_state(root: &Path) -> BTreeMap<Vec<u8>, Seen> {
    let mut all = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let Ok(entry) = entry else { continue };
        let rel = entry.path().strip_prefix(root).unwrap();
        if rel.as_os_str().is_empty() {
            continue; // the root: its mode is the mount's, not the data's
        }
        let meta = match entry.path().symlink_metadata() {
            Ok(m) => m,
            Err(_) => continue,
        };
        let ft = meta.file_type();
        let seen = if ft.is_symlink() {
            Seen::Symlink(std::fs::read_link(entry.path()).unwrap_or_default())
        } else if ft.is_dir() {
            Seen::Dir {
                mode: meta.mode() & 0o7777,
            }
        } else if ft.is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            Seen::File {
                sha256: hex::encode(Sha256::digest(&bytes)),
                mode: meta.mode() & 0o7777,
            }
        } else if ft.is_fifo() {
            Seen::Special("fifo", 0)
        } else if ft.is_socket() {
            Seen::Special("socket", 0)
        } else if ft.is_char_device() {
            Seen::Special("char", meta.rdev())
        } else {
            Seen::Special("block", meta.rdev())
        };
        all.insert(rel.as_os_str().as_bytes().to_vec(), seen);
    }
    all
}

/// The differences between two [`tree_state`]s, printable.
pub fn tree_diff(before: &BTreeMap<Vec<u8>, Seen>, after: &BTreeMap<Vec<u8>, Seen>) -> Vec<String> {
    let mut diff = Vec::new();
    for (path, seen) in after {
        match before.get(path) {
            None => diff.push(format!("new: {} ({seen:?})", path.escape_ascii())),
            Some(old) if old != seen => diff.push(format!(
                "changed: {} ({old:?} -> {seen:?})",
                path.escape_ascii()
            )),
            _ => {}
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            diff.push(format!("gone: {}", path.escape_ascii()));
        }
    }
    diff
}

/// One entry of a crafted snapshot. `archive_path` is where rustic's archiver files it
/// (plain names, so its tree builder accepts it); `name` is the name the stored node
/// carries, which the archiver keeps as given.
pub struct CraftedEntry {
    pub archive_path: PathBuf,
    pub name: std::ffi::OsString,
    pub kind: CraftedKind,
}

pub enum CraftedKind {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
}

struct CraftedSource {
    entries: Mutex<Vec<CraftedEntry>>,
}

struct Content(Vec<u8>);

impl rustic_core::ReadSourceOpen for Content {
    type Reader = std::io::Cursor<Vec<u8>>;
    fn open(self) -> rustic_core::RusticResult<Self::Reader> {
        Ok(std::io::Cursor::new(self.0))
    }
}

impl rustic_core::ReadSource for CraftedSource {
    type Open = Content;
    type Iter =
        std::vec::IntoIter<rustic_core::RusticResult<rustic_core::ReadSourceEntry<Content>>>;

    fn size(&self) -> rustic_core::RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        use rustic_core::repofile::{Metadata, Node, NodeType};
        let entries = std::mem::take(&mut *self.entries.lock().unwrap());
        entries
            .into_iter()
            .map(|e| {
                let (node_type, mode, size, open) = match e.kind {
                    CraftedKind::File(bytes) => (
                        NodeType::File,
                        0o644,
                        bytes.len() as u64,
                        Some(Content(bytes)),
                    ),
                    CraftedKind::Dir => (NodeType::Dir, 0o755, 0, None),
                    CraftedKind::Symlink(target) => (NodeType::from_link(&target), 0o777, 0, None),
                };
                let meta = Metadata {
                    mode: Some(mode),
                    mtime: Some(jiff::Timestamp::now()),
                    size,
                    ..Metadata::default()
                };
                Ok(rustic_core::ReadSourceEntry {
                    path: e.archive_path,
                    node: Node::new_node(&e.name, node_type, meta),
                    open,
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// Writes a snapshot holding `entries` into the local repository at `repo`, with
/// `tags`, `paths` and `host` (taken from the snapshot it impersonates); returns its id.
pub fn write_crafted_snapshot(
    repo: &Path,
    password: &str,
    tags: &[String],
    host: &str,
    entries: Vec<CraftedEntry>,
) -> Result<String, String> {
    use rustic_core::{
        BackupOptions, Credentials, ParentOptions, RepositoryBackends, SnapshotOptions,
    };
    let be = rustic_backend::local::LocalBackend::new(repo.to_str().unwrap(), std::iter::empty())
        .map_err(|e| e.to_string())?;
    let backends = RepositoryBackends::new(std::sync::Arc::new(be), None);
    let engine = rustic_core::Repository::new(
        &rustic_core::RepositoryOptions::default().no_cache(true),
        &backends,
    )
    .and_then(|r| r.open(&Credentials::password(password)))
    .and_then(|r| r.to_indexed_ids())
    .map_err(|e| e.to_string())?;
    let mut snap = SnapshotOptions::default()
        .host(host.to_string())
        .to_snapshot()
        .map_err(|e| e.to_string())?;
    for tag in tags {
        snap.tags.add(tag.clone());
    }
    let source = CraftedSource {
        entries: Mutex::new(entries),
    };
    let opts = BackupOptions::default()
        .no_scan(true)
        .parent_opts(ParentOptions::default().force(true));
    let saved = engine
        .archive(&opts, &source, snap, &[PathBuf::from("/crafted")])
        .map_err(|e| e.to_string())?;
    Ok(saved.id.to_hex().as_str().to_string())
}
