//! Test doubles for the repository: streams kept in memory, trees copied with `cp -a`
//! (the real repository is tested in drydock-storage and drydock-engine).
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use drydock_domain::config::SourceKind;
use drydock_domain::{NoEvents, Priority, SourceRecord, SourceStatus};
use drydock_sources::tree::{self, Excludes};
use drydock_sources::{BackupOutcome, Fetch, SourceContext, Store, StoreError, Stored, TreeEntry};
use sha2::{Digest, Sha256};

/// A private scratch directory like the engine's (0700).
pub fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

pub fn ctx(scratch: &Path) -> SourceContext<'_> {
    SourceContext {
        label: "svc/data",
        scratch,
        events: &NoEvents,
    }
}

/// Keeps what a backup stored.
#[derive(Default)]
pub struct MemStore {
    dir: RefCell<Option<tempfile::TempDir>>,
    pub stream: RefCell<Option<Vec<u8>>>,
    pub extension: RefCell<Option<String>>,
    pub tree: RefCell<Option<PathBuf>>,
    pub calls: Cell<u32>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// What a restore reads from.
    pub fn fetch(&self) -> MemFetch {
        MemFetch {
            stream: self.stream.borrow().clone(),
            tree: self.tree.borrow().clone(),
        }
    }

    pub fn stored_anything(&self) -> bool {
        self.calls.get() > 0
    }
}

impl Store for MemStore {
    fn put_stream(
        &self,
        mut reader: Box<dyn Read + Send>,
        extension: &str,
    ) -> Result<Stored, StoreError> {
        self.calls.set(self.calls.get() + 1);
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(|e| StoreError(format!("reading the stream: {e}")))?;
        let sha = hex::encode(Sha256::digest(&buf));
        let n = buf.len() as u64;
        *self.stream.borrow_mut() = Some(buf);
        *self.extension.borrow_mut() = Some(extension.to_string());
        Ok(Stored {
            snapshot_id: "mem-stream".into(),
            path: Some(format!("/data{extension}")),
            logical_bytes: n,
            stored_bytes: n,
            sha256: Some(sha),
        })
    }

    fn put_tree(
        &self,
        root: &Path,
        excludes: &[String],
    ) -> Result<(Stored, Vec<TreeEntry>), StoreError> {
        self.calls.set(self.calls.get() + 1);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("tree");
        let out = Command::new("cp")
            .arg("-a")
            .arg(root)
            .arg(&copy)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(StoreError(format!(
                "cp -a failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        // Leave out what the excludes name, as the repository does.
        let ex = Excludes::new(&copy, excludes).map_err(StoreError)?;
        let dropped = RefCell::new(Vec::new());
        tree::walk_with(&copy, &|rel, is_dir| {
            let x = ex.is_excluded(rel, is_dir);
            if x {
                dropped.borrow_mut().push((rel.to_path_buf(), is_dir));
            }
            x
        })
        .map_err(|e| StoreError(e.to_string()))?;
        for (rel, is_dir) in dropped.into_inner() {
            let p = copy.join(rel);
            if is_dir {
                std::fs::remove_dir_all(&p).unwrap()
            } else {
                std::fs::remove_file(&p).unwrap()
            }
        }
        let entries = tree::walk(&copy, &|_| false).map_err(|e| StoreError(e.to_string()))?;
        let bytes = entries.iter().map(|e| e.size).sum();
        *self.tree.borrow_mut() = Some(copy);
        *self.dir.borrow_mut() = Some(dir);
        Ok((
            Stored {
                snapshot_id: "mem-tree".into(),
                path: None,
                logical_bytes: bytes,
                stored_bytes: bytes,
                sha256: None,
            },
            entries,
        ))
    }
}

/// Reads back what a [`MemStore`] kept.
pub struct MemFetch {
    pub stream: Option<Vec<u8>>,
    pub tree: Option<PathBuf>,
}

impl Fetch for MemFetch {
    fn stream_into(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let data = self
            .stream
            .as_ref()
            .ok_or_else(|| StoreError("no stream stored".into()))?;
        out.write_all(data).map_err(|e| StoreError(e.to_string()))?;
        Ok(data.len() as u64)
    }

    fn tree_into(&self, dest: &Path) -> Result<(), StoreError> {
        let src = self
            .tree
            .as_ref()
            .ok_or_else(|| StoreError("no tree stored".into()))?;
        assert!(
            !dest.exists(),
            "tree_into: {} must not exist yet",
            dest.display()
        );
        let out = Command::new("cp")
            .arg("-a")
            .arg(src)
            .arg(dest)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(StoreError(format!(
                "cp -a failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

/// The manifest record the engine would write for `outcome`.
pub fn record(kind: SourceKind, outcome: &BackupOutcome) -> SourceRecord {
    SourceRecord {
        service: "svc".into(),
        source: "data".into(),
        kind,
        priority: Priority::Critical,
        status: SourceStatus::Ok,
        error: None,
        snapshot_id: Some(outcome.stored.snapshot_id.clone()),
        stored_path: outcome.stored.path.clone(),
        format: Some(outcome.format.to_string()),
        logical_bytes: outcome.stored.logical_bytes,
        stored_bytes: outcome.stored.stored_bytes,
        sha256: outcome.stored.sha256.clone(),
        counts: outcome.counts.clone(),
        fingerprint: Some(outcome.fingerprint.clone()),
        consistent_at: Some(outcome.consistent_at),
        duration_ms: 0,
    }
}
