//! Plain data exchanged with the rest of drydock: what to store with a
//! snapshot, and what the repository reports back.

use std::path::PathBuf;

/// What to record with a new snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// For streams: the stored file name, e.g. `db/main.pgdump` (it becomes
    /// `/db/main.pgdump` in the snapshot; `restic dump ID /db/main.pgdump`
    /// reads it back). For trees: ignored, the tree's own root path is used.
    pub path: String,
    /// Tags, e.g. `["drydock", "backup:20261122-083000-ab12", "service:db"]`.
    /// restic shows tags but not labels, so everything a restic user must see
    /// goes here. A tag must not contain a comma (restic splits on it).
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot; empty means this machine's name.
    pub hostname: String,
    /// rustic label; stored only if given.
    pub label: Option<String>,
}

/// A snapshot that was just saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Full hex id.
    pub id: String,
    /// Bytes read from the source (stream bytes, or the sum of file sizes).
    pub logical_bytes: u64,
    /// Packed (compressed, encrypted) bytes this snapshot added.
    pub added_bytes: u64,
    /// Streams only: SHA-256 (hex) of exactly the bytes stored.
    pub sha256: Option<String>,
}

/// Kind of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// One entry of a backed-up tree, as it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Relative to the backed-up root, byte-exact.
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`); the
    /// file type is in `kind`.
    pub mode: u32,
    /// Files: bytes stored. Everything else: 0.
    pub size: u64,
    /// Files: SHA-256 (hex) of exactly the bytes stored.
    pub sha256: Option<String>,
    /// Symlinks: the link target, byte-exact.
    pub link_target: Option<PathBuf>,
}

/// One snapshot in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Full hex id.
    pub id: String,
    pub time: jiff::Timestamp,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    pub hostname: String,
    /// Empty when the snapshot has no label.
    pub label: String,
}

/// Result of a repository check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// No errors were found (warnings do not count).
    pub ok: bool,
    /// Problems that mean data may be lost or unreadable.
    pub errors: Vec<String>,
    /// Oddities that do not affect integrity (e.g. an unreferenced pack left
    /// by an interrupted backup; the next prune removes it).
    pub warnings: Vec<String>,
    /// Whether all pack data was read and verified.
    pub read_data: bool,
    /// The check could not finish (rustic gave up inside it): `errors` then say why,
    /// and prove nothing about the packs.
    pub aborted: bool,
}
