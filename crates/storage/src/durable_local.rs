//! The local repository backend, made durable: rustic_backend's `LocalBackend` does
//! all the work, and every file it writes is followed by a fsync of its directory.
//!
//! `LocalBackend::write_bytes` writes a temporary file, fsyncs it and renames it to its
//! final name, so a killed process never leaves a partial file under a final name. But
//! it never fsyncs the directory: after a power loss the rename itself may be gone, or
//! (the file system is free to order directory updates) a snapshot's entry may survive
//! while the entry of a pack it needs does not. Syncing the directory after each rename
//! makes the file durable before rustic goes on to write what refers to it, so the order
//! pack -> index -> snapshot that rustic keeps in memory also holds on disk.

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rustic_backend::local::LocalBackend;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

use crate::s3_backend::object_key;

/// A local repository directory whose writes are durable once written.
#[derive(Debug, Clone)]
pub(crate) struct DurableLocal {
    inner: LocalBackend,
    root: PathBuf,
}

impl DurableLocal {
    pub(crate) fn new(root: &Path, inner: LocalBackend) -> Self {
        DurableLocal {
            inner,
            root: root.to_path_buf(),
        }
    }
}

/// Makes a directory's entries (a rename into it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_error(doing: &str, path: &Path, e: &std::io::Error) -> Box<RusticError> {
    // rustic treats `{name}` in its messages as a placeholder; ours is literal text.
    let text = format!("{doing} {}: {e}", path.display())
        .replace('{', "(")
        .replace('}', ")");
    RusticError::new(ErrorKind::Backend, text)
}

impl ReadBackend for DurableLocal {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }
}

impl WriteBackend for DurableLocal {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()?;
        // The new directories must survive a crash before anything is written in them.
        let mut dirs: Vec<PathBuf> = ["data", "index", "keys", "snapshots"]
            .iter()
            .map(|d| self.root.join(d))
            .collect();
        dirs.push(self.root.clone());
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(parent.to_path_buf());
        }
        for dir in dirs {
            match sync_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error("syncing directory", &dir, &e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        self.inner.write_bytes(tpe, id, cacheable, content)?;
        let file = self.root.join(object_key(tpe, id));
        let dir = file.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| io_error("syncing directory", dir, &e))
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
