//! Stream backups: short reads, stale parents, failing producers, dump,
//! forget.

mod common;

use std::io::{self, Read};

use common::{meta, new_repo, random_bytes, sha256_hex};
use drydock_storage::StorageError;

/// Yields one byte per read, like a slow pipe.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.data.len() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.data[self.pos];
        self.pos += 1;
        Ok(1)
    }
}

/// Yields `good` bytes, then fails like a dump tool exiting non-zero.
struct FailsMidway {
    data: Vec<u8>,
    pos: usize,
}

impl Read for FailsMidway {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.data.len() {
            return Err(io::Error::other("pg_dump exited with status 1"));
        }
        let n = buf.len().min(self.data.len() - self.pos).min(64 * 1024);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn one_byte_reads_store_the_exact_content() {
    let (_dir, repo) = new_repo();
    let data = random_bytes(1_500_000, 7);
    let stored = repo
        .backup_stream(
            Box::new(Trickle {
                data: data.clone(),
                pos: 0,
            }),
            &meta("db/main.pgdump", &["drydock", "kind:postgres"]),
        )
        .unwrap();
    assert_eq!(stored.id.len(), 64, "full hex id: {}", stored.id);
    assert_eq!(stored.logical_bytes, data.len() as u64);
    assert_eq!(stored.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    // Random data does not compress: what was added is about the input.
    assert!(stored.added_bytes >= data.len() as u64, "{stored:?}");
    assert!(stored.added_bytes < 2 * data.len() as u64, "{stored:?}");

    let mut out = Vec::new();
    let (n, sha) = repo.dump_stream(&stored.id, &mut out).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(sha, sha256_hex(&data));
    assert!(out == data, "dumped bytes differ");
}

#[test]
fn same_path_twice_keeps_each_content() {
    let (_dir, repo) = new_repo();
    // Same length, same path, same tags: everything a parent match could use.
    let first = random_bytes(300_000, 1);
    let second = random_bytes(300_000, 2);
    let m = meta("db/main.pgdump", &["drydock", "service:db"]);
    let a = repo
        .backup_stream(Box::new(io::Cursor::new(first.clone())), &m)
        .unwrap();
    let b = repo
        .backup_stream(Box::new(io::Cursor::new(second.clone())), &m)
        .unwrap();
    assert_ne!(a.id, b.id);

    let mut out = Vec::new();
    repo.dump_stream(&a.id, &mut out).unwrap();
    assert!(out == first, "first snapshot lost its content");
    let mut out = Vec::new();
    let (_, sha) = repo.dump_stream(&b.id, &mut out).unwrap();
    assert!(out == second, "second snapshot holds stale content");
    assert_eq!(sha, sha256_hex(&second));
}

#[test]
fn a_failing_producer_leaves_no_snapshot() {
    let (_dir, repo) = new_repo();
    let good = repo
        .backup_stream(
            Box::new(io::Cursor::new(b"earlier good backup".to_vec())),
            &meta("db/main.pgdump", &["drydock"]),
        )
        .unwrap();

    let err = repo
        .backup_stream(
            Box::new(FailsMidway {
                data: random_bytes(2_000_000, 3),
                pos: 0,
            }),
            &meta("db/main.pgdump", &["drydock"]),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::ReadFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("pg_dump exited with status 1"), "{msg}");
    assert!(msg.contains("db/main.pgdump"), "{msg}");

    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0].id, good.id);
    // The earlier backup is unharmed.
    let mut out = Vec::new();
    repo.dump_stream(&good.id, &mut out).unwrap();
    assert_eq!(out, b"earlier good backup");
}

#[test]
fn an_empty_stream_is_a_valid_backup() {
    let (_dir, repo) = new_repo();
    let stored = repo
        .backup_stream(Box::new(io::empty()), &meta("redis/dump.rdb", &["drydock"]))
        .unwrap();
    assert_eq!(stored.logical_bytes, 0);
    let mut out = Vec::new();
    let (n, sha) = repo.dump_stream(&stored.id, &mut out).unwrap();
    assert_eq!(n, 0);
    assert_eq!(sha, sha256_hex(b""));
}

#[test]
fn snapshots_carry_meta_and_forget_removes_them() {
    let (_dir, repo) = new_repo();
    let mut m = meta(
        "db/main.pgdump",
        &["drydock", "backup:20261122-083000-ab12", "service:db"],
    );
    m.label = Some("nightly".to_string());
    let a = repo
        .backup_stream(Box::new(io::Cursor::new(b"a".to_vec())), &m)
        .unwrap();
    let b = repo
        .backup_stream(
            Box::new(io::Cursor::new(b"b".to_vec())),
            &meta("files/app.tar", &["drydock"]),
        )
        .unwrap();

    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    let sa = snaps.iter().find(|s| s.id == a.id).unwrap();
    assert_eq!(sa.hostname, "testhost");
    assert_eq!(sa.label, "nightly");
    assert_eq!(sa.paths, vec!["/db/main.pgdump".to_string()]);
    let mut tags = sa.tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        vec!["backup:20261122-083000-ab12", "drydock", "service:db"]
    );
    let age = jiff::Timestamp::now().duration_since(sa.time);
    assert!(age.as_secs() < 600, "snapshot time is now: {}", sa.time);
    let sb = snaps.iter().find(|s| s.id == b.id).unwrap();
    assert_eq!(sb.label, "");

    // A unique prefix works like the full id.
    repo.forget(&[a.id[..12].to_string()]).unwrap();
    let left: Vec<String> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![b.id.clone()]);

    let err = repo.forget(&["deadbeef".to_string()]).unwrap_err();
    assert!(
        matches!(err, StorageError::SnapshotNotFound { .. }),
        "{err:?}"
    );
    let err = repo.dump_stream(&a.id, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, StorageError::SnapshotNotFound { .. }),
        "{err:?}"
    );
}

#[test]
fn bad_stream_paths_and_tags_are_refused() {
    let (_dir, repo) = new_repo();
    for path in ["", "../escape", "db/../../x"] {
        let err = repo
            .backup_stream(Box::new(io::empty()), &meta(path, &[]))
            .unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidInput { .. }),
            "{path}: {err:?}"
        );
    }
    let err = repo
        .backup_stream(Box::new(io::empty()), &meta("db/x", &["a,b"]))
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput { .. }), "{err:?}");
    assert!(repo.snapshots().unwrap().is_empty());
}
