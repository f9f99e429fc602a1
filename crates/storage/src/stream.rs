//! Backing up a byte stream (a database dump, say) as one file of a
//! snapshot, and streaming it back.
//!
//! The stream is stored as `<path>` inside the snapshot tree, with the
//! snapshot's path set to `/<path>`. rustic records the node size of a
//! stream as 0 (it is unknown when the node is created), so `restic restore`
//! writes an empty file for it; `restic -r REPO dump ID /<path>` is the way to
//! read a stream without drydock, and it returns the exact bytes.

use std::{
    io::{Read, Write},
    path::{Component, Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use rustic_core::{
    repofile::{Metadata, Node, NodeType},
    BackupOptions, LsOptions, ParentOptions, ReadSource, ReadSourceEntry, RusticResult,
};

use crate::{
    error::StorageError,
    reader::{new_slot, read_slot, HashingReader, HashingWriter, OutcomeSlot},
    repo::{new_snapshot, Repository},
    types::{SnapshotMeta, StoredSnapshot},
};

type StreamReader = HashingReader<Box<dyn Read + Send>>;

/// A `ReadSource` yielding exactly one file: the caller's stream.
struct StreamSource {
    path: PathBuf,
    // `entries` gets `&self` but must hand the reader out by value.
    reader: Mutex<Option<StreamReader>>,
}

impl ReadSource for StreamSource {
    type Open = StreamReader;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<StreamReader>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let open = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let name = self.path.file_name().unwrap_or_default();
        let meta = Metadata {
            // A restic/rustic restore of the stream should give a private
            // file with a plausible time, not mode 0 and the epoch.
            mode: Some(0o600),
            mtime: Some(jiff::Timestamp::now()),
            ..Metadata::default()
        };
        let node = Node::new_node(name, NodeType::File, meta);
        Some(Ok(ReadSourceEntry {
            path: self.path.clone(),
            node,
            open,
        }))
        .into_iter()
    }
}

/// `db/main.pgdump` or `/db/main.pgdump` -> `db/main.pgdump`; rejects
/// anything that could escape or collapse (`..`, `.`, empty).
fn stream_path(path: &str) -> Result<PathBuf, StorageError> {
    let trimmed = path.trim_start_matches('/');
    let rel = Path::new(trimmed);
    let clean = !trimmed.is_empty()
        && !trimmed.ends_with('/')
        && rel.components().all(|c| matches!(c, Component::Normal(_)))
        && !trimmed.split('/').any(|seg| seg.is_empty() || seg == ".");
    if clean {
        Ok(rel.to_path_buf())
    } else {
        Err(StorageError::invalid(
            format!("stream path {path:?}"),
            "is not a plain relative file path",
            "use a path like \"db/main.pgdump\" without '.', '..' or empty parts",
        ))
    }
}

impl Repository {
    /// Stores everything `reader` yields as one file of a new snapshot.
    ///
    /// If the reader fails, the snapshot rustic saved anyway is deleted and
    /// [`StorageError::ReadFailed`] is returned.
    pub fn backup_stream(
        &self,
        reader: Box<dyn Read + Send>,
        meta: &SnapshotMeta,
    ) -> Result<StoredSnapshot, StorageError> {
        let rel = stream_path(&meta.path)?;
        let snap = new_snapshot(meta)?;
        let engine = self
            .engine()?
            .to_indexed_ids()
            .map_err(|e| self.engine_err("reading the index of", &e))?;

        let slot: OutcomeSlot = new_slot();
        let source = StreamSource {
            path: rel.clone(),
            reader: Mutex::new(Some(HashingReader::new(reader, slot.clone()))),
        };
        // force: with a parent, a stream node (no mtime/inode to compare)
        // "matches" the previous snapshot and the new bytes are never read.
        let opts = BackupOptions::default()
            .no_scan(true)
            .parent_opts(ParentOptions::default().force(true));
        let snapshot_path = Path::new("/").join(&rel);
        let result = engine.archive(&opts, &source, snap, &[snapshot_path]);
        // The reader must be gone before its outcome is final.
        drop(source);
        let outcome = read_slot(&slot);
        let what = format!("the stream for {}", rel.display());

        let saved = match result {
            Ok(saved) => saved,
            Err(e) => {
                return Err(match outcome.error {
                    Some(cause) => StorageError::ReadFailed { what, cause },
                    None => self.engine_err("backing up a stream into", &e),
                });
            }
        };
        let files = saved
            .summary
            .as_ref()
            .map_or(0, |s| s.total_files_processed);
        let complete = outcome.complete().and_then(|ok| {
            if files == 1 {
                Ok(ok)
            } else {
                Err(format!(
                    "the engine stored {files} files instead of 1 (see the log)"
                ))
            }
        });
        match complete {
            Ok((bytes, sha256)) => Ok(StoredSnapshot {
                id: saved.id.to_hex().as_str().to_string(),
                logical_bytes: bytes,
                added_bytes: saved.summary.as_ref().map_or(0, |s| s.data_added_packed),
                sha256: Some(sha256),
            }),
            Err(cause) => {
                // rustic logged the failure and saved a snapshot without the
                // file; it must not look like a good backup to anyone.
                if let Err(e) = engine.delete_snapshots(&[saved.id]) {
                    return Err(StorageError::ReadFailed {
                        what,
                        cause: format!(
                            "{cause}; deleting the incomplete snapshot {} also failed ({}), forget it by hand",
                            saved.id.to_hex().as_str(),
                            e.display_log()
                        ),
                    });
                }
                Err(StorageError::ReadFailed { what, cause })
            }
        }
    }

    /// Writes the stream stored in `snapshot_id` to `out`; returns the byte
    /// count and the SHA-256 (hex) of what was written.
    pub fn dump_stream(
        &self,
        snapshot_id: &str,
        out: &mut dyn Write,
    ) -> Result<(u64, String), StorageError> {
        let engine = self
            .engine()?
            .to_indexed()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        let snap = self.load_snapshot(&engine, snapshot_id)?;
        self.dump_snapshot(&engine, &snap, out)
    }

    /// Reads several small streams (manifests) with one index load and one snapshot
    /// listing, instead of one each: on a remote copy that is the difference between
    /// a handful of requests and thousands. A stream over `max_bytes` is an error.
    pub fn read_small_streams(
        &self,
        snapshot_ids: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Result<Vec<u8>, StorageError>>, StorageError> {
        if snapshot_ids.is_empty() {
            return Ok(Vec::new());
        }
        let engine = self
            .engine()?
            .to_indexed()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        // Only the wanted ones: a damaged snapshot file elsewhere must not hide them.
        let all = engine
            .get_snapshots(snapshot_ids)
            .map_err(|e| self.engine_err("reading snapshots of", &e))?;
        Ok(snapshot_ids
            .iter()
            .map(|id| {
                let snap = all
                    .iter()
                    .find(|s| s.id.to_hex().as_str() == id.as_str())
                    .ok_or_else(|| StorageError::SnapshotNotFound {
                        location: self.location.clone(),
                        id: id.clone(),
                    })?;
                let mut bytes = Vec::new();
                let mut limited = LimitedWriter {
                    inner: &mut bytes,
                    left: max_bytes,
                };
                self.dump_snapshot(&engine, snap, &mut limited)
                    .map_err(|e| match limited.left {
                        0 => StorageError::invalid(
                            format!("snapshot {id} in repository at {}", self.location),
                            format!("holds a stream over {max_bytes} bytes"),
                            "it is not what drydock expects there; leave it to restic",
                        ),
                        _ => e,
                    })?;
                Ok(bytes)
            })
            .collect())
    }

    fn dump_snapshot<S: rustic_core::IndexedFull>(
        &self,
        engine: &rustic_core::Repository<S>,
        snap: &rustic_core::repofile::SnapshotFile,
        out: &mut dyn Write,
    ) -> Result<(u64, String), StorageError> {
        let snapshot_id = snap.id.to_hex();
        let snapshot_id = snapshot_id.as_str();
        let root = engine
            .node_from_snapshot_and_path(snap, "")
            .map_err(|e| self.engine_err("reading a snapshot tree of", &e))?;
        // Find the one file by walking the tree rather than trusting
        // `paths`: the tree is what dump reads, whatever paths says.
        let mut file = None;
        for item in engine
            .ls(&root, &LsOptions::default())
            .map_err(|e| self.engine_err("listing a snapshot of", &e))?
        {
            let (_, node) = item.map_err(|e| self.engine_err("listing a snapshot of", &e))?;
            if node.is_file() {
                if file.is_some() {
                    return Err(not_a_stream(self, snapshot_id));
                }
                file = Some(node);
            } else if !node.is_dir() {
                return Err(not_a_stream(self, snapshot_id));
            }
        }
        let Some(node) = file else {
            return Err(not_a_stream(self, snapshot_id));
        };
        let mut writer = HashingWriter::new(out);
        if let Err(e) = engine.dump(&node, &mut writer) {
            return Err(match writer.error.take() {
                Some(io) => StorageError::io(
                    format!("writing the stream of snapshot {snapshot_id}"),
                    "check the destination (free space, a closed pipe)",
                    io,
                ),
                None => self.engine_err("reading a stream from", &e),
            });
        }
        writer.flush().map_err(|e| {
            StorageError::io(
                format!("writing the stream of snapshot {snapshot_id}"),
                "check the destination (free space, a closed pipe)",
                e,
            )
        })?;
        Ok(writer.finish())
    }
}

/// Fails writes past a byte budget, so a hostile "manifest" cannot fill memory.
struct LimitedWriter<'a> {
    inner: &'a mut Vec<u8>,
    left: usize,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            self.left = 0;
            return Err(std::io::Error::other("stream over its size limit"));
        }
        self.left -= buf.len();
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn not_a_stream(repo: &Repository, id: &str) -> StorageError {
    StorageError::invalid(
        format!("snapshot {id} in repository at {}", repo.location),
        "is not a stream snapshot (it does not hold exactly one file)",
        "restore it with restore_tree instead",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_paths() {
        assert_eq!(
            stream_path("db/main.pgdump").unwrap(),
            PathBuf::from("db/main.pgdump")
        );
        assert_eq!(
            stream_path("/db/main.pgdump").unwrap(),
            PathBuf::from("db/main.pgdump")
        );
        for bad in ["", "/", "db/../x", "./x", "db//x", "db/", "."] {
            assert!(stream_path(bad).is_err(), "{bad}");
        }
    }
}
