//! rustic's backend traits over [`S3Client`], in restic's object layout (`config`,
//! `keys/ID`, `snapshots/ID`, `index/ID`, `data/XX/ID`), so a remote copy is a complete
//! restic repository: `restic -r s3:https://host/bucket/prefix` opens it.
//!
//! Reads verify what they get: restic names every file but `config` by the SHA-256 of
//! its content, so a whole-file read whose hash differs from its name is refused
//! (retried once, then an error naming the object) instead of being handed to the
//! engine. Pack reads are ranged, checked for length here and by each blob's MAC in
//! the engine; small ones (single blobs during a restore) go through a 16 MiB read-ahead
//! chunk cache (`PackCache`), so a restore makes one request per chunk, not per blob.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use sha2::{Digest, Sha256};

use crate::s3::{S3Client, S3Error};

/// A repository copy in a bucket.
#[derive(Debug, Clone)]
pub(crate) struct S3Backend {
    client: Arc<S3Client>,
    packs: Arc<Mutex<PackCache>>,
}

impl S3Backend {
    pub(crate) fn new(client: Arc<S3Client>) -> Self {
        S3Backend {
            client,
            packs: Arc::new(Mutex::new(PackCache::default())),
        }
    }

    /// Whether a listed object is gone (its first byte answers 404).
    fn is_gone(&self, key: &str) -> RusticResult<bool> {
        match self.client.get_range(key, 0, 1) {
            Ok(_) => Ok(false),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(rustic_error(&e)),
        }
    }

    /// Bytes `start..end` of a pack from the read-ahead chunk holding them, fetching
    /// the chunk when it is not cached. `None` when the range crosses a chunk boundary.
    fn read_chunked(&self, id: &Id, start: u64, end: u64) -> RusticResult<Option<Bytes>> {
        let index = start / CHUNK;
        if (end - 1) / CHUNK != index {
            return Ok(None);
        }
        let key = (*id, index);
        let cached = self
            .packs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        let chunk = match cached {
            Some(c) => c,
            None => {
                let bytes = self
                    .client
                    .get_range_upto(&object_key(FileType::Pack, id), index * CHUNK, CHUNK)
                    .map(Bytes::from)
                    .map_err(|e| rustic_error(&e))?;
                self.packs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .put(key, bytes.clone());
                bytes
            }
        };
        let (from, to) = (
            (start - index * CHUNK) as usize,
            (end - index * CHUNK) as usize,
        );
        if to > chunk.len() {
            return Err(RusticError::new(
                ErrorKind::Backend,
                format!(
                    "remote {}: pack {} ends before byte {end} the index points to; the copy is damaged, run `drydock verify --copy` on it",
                    self.client.location(),
                    id.to_hex().as_str()
                ),
            ));
        }
        Ok(Some(chunk.slice(from..to)))
    }
}

/// Reads of small blobs (a restore asks for one blob at a time) fetch a whole aligned
/// chunk of the pack once and serve the following blobs from memory: one request per
/// chunk instead of one per blob. Bounded, least recently used out first.
#[derive(Debug, Default)]
struct PackCache {
    entries: VecDeque<((Id, u64), Bytes)>,
    bytes: usize,
}

/// Reads up to this size go through the chunk cache ...
const SMALL_READ: u32 = 4 << 20;
/// ... which reads packs in chunks of this size ...
const CHUNK: u64 = 16 << 20;
/// ... and holds at most this much.
const CACHE_BYTES: usize = 96 << 20;

impl PackCache {
    fn get(&mut self, id: &(Id, u64)) -> Option<Bytes> {
        let at = self.entries.iter().position(|(k, _)| k == id)?;
        let entry = self.entries.remove(at)?;
        let bytes = entry.1.clone();
        self.entries.push_front(entry);
        Some(bytes)
    }

    fn put(&mut self, id: (Id, u64), bytes: Bytes) {
        if bytes.len() > CACHE_BYTES / 4 || self.entries.iter().any(|(k, _)| *k == id) {
            return;
        }
        self.bytes += bytes.len();
        self.entries.push_front((id, bytes));
        while self.bytes > CACHE_BYTES {
            match self.entries.pop_back() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

/// The object key of a repository file, relative to the copy's prefix.
pub(crate) fn object_key(tpe: FileType, id: &Id) -> String {
    let hex = id.to_hex();
    match tpe {
        FileType::Config => "config".to_string(),
        FileType::Pack => format!("data/{}/{}", &hex[..2], hex.as_str()),
        other => format!("{}/{}", other.dirname(), hex.as_str()),
    }
}

fn rustic_error(e: &S3Error) -> Box<RusticError> {
    // rustic treats `{name}` in guidance as a placeholder; our text is literal.
    let text = e.to_string().replace('{', "(").replace('}', ")");
    RusticError::new(ErrorKind::Backend, text)
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.client.location().to_string()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let found = self.client.list("config").map_err(|e| rustic_error(&e))?;
            return Ok(found
                .iter()
                .find(|o| o.key == "config")
                .map(|o| vec![(Id::default(), o.size as u32)])
                .unwrap_or_default());
        }
        let dir = format!("{}/", tpe.dirname());
        let objects = self.client.list(&dir).map_err(|e| rustic_error(&e))?;
        let mut files = Vec::new();
        for o in objects {
            let Some(name) = o.key.rsplit('/').next() else {
                continue;
            };
            // Anything that is not a restic file name (a stray upload, a temp object
            // of another tool) is not part of the repository.
            let (Some(id), Ok(size)) = (Id::parse_some(name, tpe), u32::try_from(o.size)) else {
                continue;
            };
            // A listing may name an index file another host's prune deleted: a replica
            // that was down lists it until it catches up (Garage filters listings per
            // node). rustic fails the whole open on an index it cannot read, so each
            // listed index is looked at (one byte) and a gone one left out.
            if tpe == FileType::Index && size > 0 && self.is_gone(&o.key)? {
                log::info!(
                    "remote {}: {} is listed but gone; ignored",
                    self.client.location(),
                    o.key
                );
                continue;
            }
            files.push((id, size));
        }
        Ok(files)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = object_key(tpe, id);
        let mut last = String::new();
        for _ in 0..2 {
            let bytes = self
                .client
                .get(&key)
                .map_err(|e| rustic_error(&e))?
                .ok_or_else(|| {
                    RusticError::new(
                        ErrorKind::Backend,
                        format!(
                            "remote {}: object {key} does not exist; the copy is incomplete, run `drydock verify --copy` on it",
                            self.client.location()
                        ),
                    )
                })?;
            if tpe == FileType::Config {
                return Ok(Bytes::from(bytes));
            }
            let actual = hex::encode(Sha256::digest(&bytes));
            if actual == id.to_hex().as_str() {
                return Ok(Bytes::from(bytes));
            }
            last = actual;
        }
        Err(RusticError::new(
            ErrorKind::Backend,
            format!(
                "remote {}: object {key} is damaged: its content hashes to {last}; run `drydock verify --copy` to see which backups depend on it",
                self.client.location()
            ),
        ))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        if tpe == FileType::Pack && length > 0 && length <= SMALL_READ {
            let (start, end) = (u64::from(offset), u64::from(offset) + u64::from(length));
            if let Some(bytes) = self.read_chunked(id, start, end)? {
                return Ok(bytes);
            }
        }
        let key = object_key(tpe, id);
        self.client
            .get_range(&key, u64::from(offset), u64::from(length))
            .map(Bytes::from)
            .map_err(|e| rustic_error(&e))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        object_key(tpe, id)
    }
}

impl WriteBackend for S3Backend {
    fn create(&self) -> RusticResult<()> {
        // Buckets are made by the operator (drydock never needs bucket-admin rights);
        // probing here turns "no bucket" or "bad key" into a clear error at init.
        self.client.probe().map_err(|e| rustic_error(&e))
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let key = object_key(tpe, id);
        let mut body = Vec::with_capacity(content.size());
        for part in content.slice() {
            body.extend_from_slice(part);
        }
        self.client.put(&key, &body).map_err(|e| rustic_error(&e))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        self.client
            .delete(&object_key(tpe, id))
            .map_err(|e| rustic_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_layout() {
        let id: Id = "5b67c3d0aa00000000000000000000000000000000000000000000000000beef"
            .parse()
            .unwrap();
        assert_eq!(
            object_key(FileType::Pack, &id),
            "data/5b/5b67c3d0aa00000000000000000000000000000000000000000000000000beef"
        );
        assert_eq!(
            object_key(FileType::Snapshot, &id),
            "snapshots/5b67c3d0aa00000000000000000000000000000000000000000000000000beef"
        );
        assert_eq!(object_key(FileType::Config, &id), "config");
    }

    #[test]
    fn the_pack_cache_is_bounded_and_keeps_the_recently_used() {
        let mut cache = PackCache::default();
        let id = |n: u8| {
            let hex = format!("{n:02x}").repeat(32);
            (hex.parse::<Id>().unwrap(), 0)
        };
        let pack = || Bytes::from(vec![0u8; CACHE_BYTES / 5 + 1]);
        for n in 0..5 {
            cache.put(id(n), pack());
        }
        assert!(cache.bytes <= CACHE_BYTES);
        assert!(cache.get(&id(0)).is_none(), "the oldest went first");
        assert!(cache.get(&id(1)).is_some());
        cache.put(id(9), pack());
        assert!(cache.get(&id(1)).is_some(), "just used, so kept");
        assert!(cache.get(&id(2)).is_none());
        cache.put(id(7), Bytes::from(vec![0u8; CACHE_BYTES / 2]));
        assert!(cache.get(&id(7)).is_none(), "too big to cache");
    }
}
