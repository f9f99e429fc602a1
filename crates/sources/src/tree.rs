//! Trees (directories, volumes): what an entry is, walking a live directory the way the
//! repository stores it, and the tree fingerprint, which depends on names, types,
//! modes, sizes and content, never on mtimes or inode layout.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use drydock_domain::fingerprint::{Fingerprint, PartDigest};
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

/// Counts (`files`, `dirs`, `symlinks`, `special`, `bytes`) and the fingerprint of a tree.
/// A part per entry keeps mismatch messages precise ("which file").
pub fn fingerprint(entries: &[TreeEntry]) -> (BTreeMap<String, u64>, Fingerprint) {
    let mut counts: BTreeMap<String, u64> = ["files", "dirs", "symlinks", "special", "bytes"]
        .iter()
        .map(|k| (k.to_string(), 0))
        .collect();
    let mut parts = BTreeMap::new();
    for e in entries {
        if e.path.as_os_str().is_empty() || e.path == Path::new(".") {
            continue; // the root itself: its mode belongs to the mount, not the data
        }
        let key = match e.kind {
            EntryKind::File => "files",
            EntryKind::Dir => "dirs",
            EntryKind::Symlink => "symlinks",
            _ => "special",
        };
        *counts.get_mut(key).unwrap() += 1;
        let size = if e.kind == EntryKind::File { e.size } else { 0 };
        *counts.get_mut("bytes").unwrap() += size;
        let mut h = Sha256::new();
        h.update(e.kind.tag());
        h.update((e.mode & 0o7777).to_le_bytes());
        h.update(size.to_le_bytes());
        h.update(e.sha256.as_deref().unwrap_or(""));
        if let Some(t) = &e.link_target {
            h.update(t.as_os_str().as_bytes());
        }
        // Names may be any bytes; escape_ascii keeps the part name printable and unique.
        let name = e.path.as_os_str().as_bytes().escape_ascii().to_string();
        parts.insert(
            name,
            PartDigest {
                count: size,
                digest: hex::encode(h.finalize()),
            },
        );
    }
    (counts, Fingerprint::from_parts(parts))
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

/// [`walk`] leaving out what `excludes` names.
pub fn walk_excluding(root: &Path, excludes: &Excludes) -> std::io::Result<Vec<TreeEntry>> {
    walk_with(root, &|rel, is_dir| excludes.is_excluded(rel, is_dir))
}

/// [`walk`] with a decision that also knows whether the entry is a directory.
pub fn walk_with(
    root: &Path,
    excluded: &dyn Fn(&Path, bool) -> bool,
) -> std::io::Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
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
            let (digest, n) = hash_file(entry.path())?;
            (Some(digest), n)
        } else {
            (None, 0)
        };
        let link_target = if kind == EntryKind::Symlink {
            Some(std::fs::read_link(entry.path())?)
        } else {
            None
        };
        out.push(TreeEntry {
            path: rel,
            kind,
            mode: meta.mode() & 0o7777,
            size,
            sha256,
            link_target,
        });
    }
    Ok(out)
}

/// Hashes a regular file. Opened without following a symlink and without blocking, and
/// checked to still be a regular file, so an entry swapped for a FIFO or a symlink
/// after the walk saw it cannot hang the walk or redirect it.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
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
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
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
