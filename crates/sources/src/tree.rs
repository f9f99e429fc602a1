//! Trees (directories, volumes): what an entry is, walking a live directory the way the
//! repository stores it, and the tree fingerprint, which depends on names, types,
//! modes, sizes and content, never on the entries' mtimes or inode layout. The top
//! directory's own mode and owner are a part of their own ([`TOP_DIR_PART`]), its mtime
//! an advisory one ([`TOP_DIR_MTIME_PART`]):
//! the repository does not store the root directory's node, so the manifest is where a
//! restore finds them, and a service reading the directory by its group or other bits
//! depends on them. Sparseness is not part of the fingerprint: it is how the bytes lie
//! on disk, not what they are (a restore keeps holes anyway).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use drydock_domain::fingerprint::{
    Fingerprint, PartDigest, RowSetDigest, TOP_DIR_MTIME_PART, TOP_DIR_PART,
};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl EntryKind {
    fn tag(self) -> &'static str {
        match self {
            EntryKind::File => "f",
            EntryKind::Dir => "d",
            EntryKind::Symlink => "l",
            EntryKind::Fifo => "p",
            EntryKind::Socket => "s",
            EntryKind::CharDevice => "c",
            EntryKind::BlockDevice => "b",
        }
    }
}

/// One entry of a tree, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub size: u64,
    /// Files: SHA-256 of the content.
    pub sha256: Option<String>,
    pub link_target: Option<PathBuf>,
}

/// Past this many entries a tree's fingerprint has one part per directory, not one per
/// entry: a part costs ~150 bytes of manifest, and a manifest is capped at 64 MiB, so one
/// part per entry stopped a source at ~440,000 entries. Per directory, a mismatch still
/// says where.
pub const PER_ENTRY_PARTS_MAX: usize = 100_000;

/// Counts (`files`, `dirs`, `symlinks`, `special`, `bytes`) and the fingerprint of a tree
/// given whole (see [`TreeFingerprint`], which takes one entry at a time).
pub fn fingerprint(entries: &[TreeEntry]) -> (BTreeMap<String, u64>, Fingerprint) {
    let mut fingerprint = TreeFingerprint::new();
    entries.iter().for_each(|e| fingerprint.add(e));
    fingerprint.finish()
}

/// The counts and fingerprint of a tree, taken one entry at a time in any order, so a
/// tree of millions of files is never held whole. Up to [`PER_ENTRY_PARTS_MAX`] entries
/// (the root itself not counted), a part per entry keeps mismatch messages precise
/// ("which file"); past it, a part per directory (named `DIR/`, the root `./`) digests
/// the directory's direct entries, order-independently. Both are kept until the count
/// decides, so memory is bounded by that limit and the number of directories.
pub struct TreeFingerprint {
    counts: BTreeMap<String, u64>,
    entries: usize,
    /// One part per entry; `None` once the tree has more than the limit.
    per_entry: Option<BTreeMap<String, PartDigest>>,
    per_dir: BTreeMap<String, (RowSetDigest, u64)>,
}

impl Default for TreeFingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeFingerprint {
    pub fn new() -> Self {
        TreeFingerprint {
            counts: ["files", "dirs", "symlinks", "special", "bytes"]
                .iter()
                .map(|k| (k.to_string(), 0))
                .collect(),
            entries: 0,
            per_entry: Some(BTreeMap::new()),
            per_dir: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, e: &TreeEntry) {
        if e.path.as_os_str().is_empty() || e.path == Path::new(".") {
            return; // the root itself: its mode belongs to the mount, not the data
        }
        let key = match e.kind {
            EntryKind::File => "files",
            EntryKind::Dir => "dirs",
            EntryKind::Symlink => "symlinks",
            _ => "special",
        };
        *self.counts.get_mut(key).expect("every kind is counted") += 1;
        let size = if e.kind == EntryKind::File { e.size } else { 0 };
        *self.counts.get_mut("bytes").expect("bytes are counted") += size;
        let mut h = Sha256::new();
        h.update(e.kind.tag());
        h.update((e.mode & 0o7777).to_le_bytes());
        h.update(size.to_le_bytes());
        h.update(e.sha256.as_deref().unwrap_or(""));
        if let Some(t) = &e.link_target {
            h.update(t.as_os_str().as_bytes());
        }
        let digest = h.finalize();
        self.entries += 1;
        if self.entries > PER_ENTRY_PARTS_MAX {
            self.per_entry = None;
        }
        if let Some(parts) = &mut self.per_entry {
            // Names may be any bytes; escape_ascii keeps the part name printable and unique.
            let name = e.path.as_os_str().as_bytes().escape_ascii().to_string();
            parts.insert(
                name,
                PartDigest {
                    count: size,
                    digest: hex::encode(digest),
                },
            );
        }
        let parent = match e.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                format!("{}/", p.as_os_str().as_bytes().escape_ascii())
            }
            _ => "./".to_string(),
        };
        let name = e.path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        let (rows, bytes) = self.per_dir.entry(parent).or_default();
        let mut row = Vec::with_capacity(name.len() + 33);
        row.extend_from_slice(name);
        row.push(0);
        row.extend_from_slice(&digest);
        rows.add(&row);
        *bytes += size;
    }

    pub fn finish(self) -> (BTreeMap<String, u64>, Fingerprint) {
        let parts = match self.per_entry {
            Some(parts) => parts,
            None => self
                .per_dir
                .into_iter()
                .map(|(dir, (rows, bytes))| {
                    let mut part = rows.finish();
                    // The count a mismatch message shows: bytes, as for a single file.
                    part.count = bytes;
                    (dir, part)
                })
                .collect(),
        };
        (self.counts, Fingerprint::from_parts(parts))
    }
}

/// The top directory's own metadata as it goes into [`TOP_DIR_PART`] (permission bits
/// and owner) and [`TOP_DIR_MTIME_PART`] (modification time to the nanosecond), read
/// without following a symlink.
pub fn top_dir_parts(root: &Path) -> std::io::Result<[(String, PartDigest); 2]> {
    let m = std::fs::symlink_metadata(root)?;
    Ok([
        (
            TOP_DIR_PART.to_string(),
            PartDigest {
                count: 0,
                digest: format!(
                    "mode={:o} uid={} gid={}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            },
        ),
        (
            TOP_DIR_MTIME_PART.to_string(),
            PartDigest {
                count: 0,
                digest: format!("mtime={}.{:09}", m.mtime(), m.mtime_nsec()),
            },
        ),
    ])
}

/// `fingerprint` with the top directory's parts (see [`top_dir_parts`]) added.
pub fn with_top_dir(fingerprint: Fingerprint, root: &Path) -> std::io::Result<Fingerprint> {
    Ok(with_parts(fingerprint, top_dir_parts(root)?))
}

/// `fingerprint` with `extra` parts added.
pub fn with_parts(
    fingerprint: Fingerprint,
    extra: impl IntoIterator<Item = (String, PartDigest)>,
) -> Fingerprint {
    let mut parts = fingerprint.parts;
    parts.extend(extra);
    Fingerprint::from_parts(parts)
}

/// The top directory's metadata recorded in a backup's fingerprint, if it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopDir {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
}

impl TopDir {
    /// Parses the part [`top_dir_parts`] writes; `None` for a manifest without it (made
    /// before drydock recorded it) or a part not in that shape.
    pub fn from_fingerprint(fp: &Fingerprint) -> Option<TopDir> {
        let owner = &fp.parts.get(TOP_DIR_PART)?.digest;
        let mtime = &fp.parts.get(TOP_DIR_MTIME_PART)?.digest;
        let text = format!("{owner} {mtime}");
        let mut top = TopDir {
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
        };
        let mut seen = 0;
        for field in text.split(' ') {
            let (key, value) = field.split_once('=')?;
            match key {
                "mode" => top.mode = u32::from_str_radix(value, 8).ok()?,
                "uid" => top.uid = value.parse().ok()?,
                "gid" => top.gid = value.parse().ok()?,
                "mtime" => {
                    let (s, ns) = value.split_once('.')?;
                    top.mtime = s.parse().ok()?;
                    top.mtime_nsec = ns.parse().ok()?;
                }
                _ => return None,
            }
            seen += 1;
        }
        (seen == 4).then_some(top)
    }

    /// Gives `dir` this mode, owner (when drydock may: as root, or its own) and
    /// modification time. Errors name the step; the owner is best effort (`Ok(false)`
    /// when it could not be given).
    pub fn apply(&self, dir: &Path) -> std::io::Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        let owner = std::os::unix::fs::lchown(dir, Some(self.uid), Some(self.gid)).is_ok();
        // After the owner: chown clears set-id bits.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(self.mode))?;
        let when = std::time::UNIX_EPOCH
            + std::time::Duration::new(self.mtime.max(0) as u64, self.mtime_nsec);
        std::fs::File::open(dir)?.set_modified(when)?;
        Ok(owner)
    }
}

/// Exclude patterns of a tree source: gitignore-style globs rooted at the tree's root
/// (`cache/`, `*.tmp`, `/top-level-only`, `logs/**`), the same rules the repository
/// applies when it stores the tree, so a walk here sees exactly what a backup stores.
/// A leading `!` is accepted and means the same (exclude). A pattern that matches a
/// directory leaves out everything below it.
pub struct Excludes {
    root: PathBuf,
    matcher: Option<ignore::overrides::Override>,
}

impl Excludes {
    /// Compiles `patterns` for the tree at `root`; the error names the bad pattern.
    pub fn new(root: &Path, patterns: &[String]) -> Result<Excludes, String> {
        if patterns.is_empty() {
            return Ok(Excludes {
                root: root.to_path_buf(),
                matcher: None,
            });
        }
        let mut builder = ignore::overrides::OverrideBuilder::new(root);
        for pattern in patterns {
            let glob = if pattern.starts_with('!') {
                pattern.clone()
            } else {
                format!("!{pattern}")
            };
            builder
                .add(&glob)
                .map_err(|e| format!("exclude pattern {pattern:?} is not a valid glob: {e}"))?;
        }
        let matcher = builder
            .build()
            .map_err(|e| format!("exclude patterns: {e}"))?;
        Ok(Excludes {
            root: root.to_path_buf(),
            matcher: Some(matcher),
        })
    }

    /// Whether the entry at `rel` (relative to the root) is left out.
    pub fn is_excluded(&self, rel: &Path, is_dir: bool) -> bool {
        match &self.matcher {
            None => false,
            Some(m) => m.matched(self.root.join(rel), is_dir).is_ignore(),
        }
    }
}

/// Walks a live directory: no symlink is followed, no special file is opened.
/// `excluded` decides by relative path whether an entry (and what is below it) is left out.
pub fn walk(root: &Path, excluded: &dyn Fn(&Path) -> bool) -> std::io::Result<Vec<TreeEntry>> {
    walk_with(root, &|rel, _is_dir| excluded(rel))
}

/// [`walk`] with a decision that also knows whether the entry is a directory.
pub fn walk_with(
    root: &Path,
    excluded: &dyn Fn(&Path, bool) -> bool,
) -> std::io::Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
    walk_each(root, excluded, &mut |e| out.push(e))?;
    Ok(out)
}

/// The counts and fingerprint of a live directory, leaving out what `excludes` names,
/// read entry by entry (memory does not grow with the number of files).
pub fn fingerprint_dir(
    root: &Path,
    excludes: &Excludes,
) -> std::io::Result<(BTreeMap<String, u64>, Fingerprint)> {
    let mut fingerprint = TreeFingerprint::new();
    walk_each(
        root,
        &|rel, is_dir| excludes.is_excluded(rel, is_dir),
        &mut |e| fingerprint.add(&e),
    )?;
    Ok(fingerprint.finish())
}

/// [`walk_with`], handing each entry to `each` as it is read (sorted by name, parents
/// before their contents, the root first).
pub fn walk_each(
    root: &Path,
    excluded: &dyn Fn(&Path, bool) -> bool,
    each: &mut dyn FnMut(TreeEntry),
) -> std::io::Result<()> {
    // One read buffer for every file: a small file must not cost a fresh megabyte.
    let mut buf = vec![0u8; 1 << 20];
    let mut it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        let is_dir = entry.file_type().is_dir();
        if !rel.as_os_str().is_empty() && excluded(&rel, is_dir) {
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        }
        let meta = entry.path().symlink_metadata()?;
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else if ft.is_socket() {
            EntryKind::Socket
        } else if ft.is_char_device() {
            EntryKind::CharDevice
        } else {
            EntryKind::BlockDevice
        };
        let (sha256, size) = if kind == EntryKind::File {
            let (digest, n) = hash_file(entry.path(), &mut buf)?;
            (Some(digest), n)
        } else {
            (None, 0)
        };
        let link_target = if kind == EntryKind::Symlink {
            Some(std::fs::read_link(entry.path())?)
        } else {
            None
        };
        each(TreeEntry {
            path: rel,
            kind,
            mode: meta.mode() & 0o7777,
            size,
            sha256,
            link_target,
        });
    }
    Ok(())
}

/// Hashes a regular file. Opened without following a symlink and without blocking, and
/// checked to still be a regular file, so an entry swapped for a FIFO or a symlink
/// after the walk saw it cannot hang the walk or redirect it.
fn hash_file(path: &Path, buf: &mut [u8]) -> std::io::Result<(String, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other(format!(
            "{} changed into a non-regular file while it was read",
            path.display()
        )));
    }
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let k = f.read(buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Gives every directory under `root` (itself included, symlinks never followed) owner
/// read, write and search permission, so the tree can be removed even where a restored
/// tree kept read-only directories (`chmod 0555`): removing an entry needs write
/// permission on its directory. Best effort; what cannot be changed is left.
pub fn make_removable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o700 != 0o700 {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o700));
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    fn file(path: &str, content: &str) -> TreeEntry {
        TreeEntry {
            path: PathBuf::from(path),
            kind: EntryKind::File,
            mode: 0o644,
            size: content.len() as u64,
            sha256: Some(hex::encode(Sha256::digest(content))),
            link_target: None,
        }
    }

    fn many(changed: Option<&str>) -> Vec<TreeEntry> {
        let mut entries = Vec::new();
        for d in 0..100 {
            for f in 0..(PER_ENTRY_PARTS_MAX / 100 + 1) {
                let path = format!("d{d}/f{f}");
                let content = if changed == Some(path.as_str()) {
                    "changed"
                } else {
                    "same"
                };
                entries.push(file(&path, content));
            }
        }
        entries
    }

    #[test]
    fn a_small_tree_has_a_part_per_entry() {
        let (counts, fp) = fingerprint(&[file("a", "x"), file("dir/b", "yy")]);
        assert_eq!(counts["files"], 2);
        assert_eq!(counts["bytes"], 3);
        assert_eq!(fp.parts.keys().collect::<Vec<_>>(), vec!["a", "dir/b"]);
    }

    #[test]
    fn a_large_tree_has_a_part_per_directory_that_names_where_it_differs() {
        let (counts, before) = fingerprint(&many(None));
        assert_eq!(
            counts["files"] as usize,
            100 * (PER_ENTRY_PARTS_MAX / 100 + 1)
        );
        assert_eq!(before.parts.len(), 100);
        assert!(before.parts.contains_key("d7/"));
        // Order does not matter; a change in one file shows in its directory only.
        let mut reversed = many(None);
        reversed.reverse();
        assert_eq!(fingerprint(&reversed).1, before);
        let (_, after) = fingerprint(&many(Some("d7/f3")));
        let differences = after.differences(&before, "bytes");
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(differences[0].starts_with("d7/:"), "{differences:?}");
    }
}
