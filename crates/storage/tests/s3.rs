//! Repository copies in a real S3 server (Garage): copying, reading back, restic
//! compatibility, clear errors, locks, and the faults of a bad network (through a
//! fault proxy in front of Garage).

mod common;

use std::time::Duration;

use common::s3::{options, restic};
use common::{meta, new_repo, random_bytes, sha256_hex, PASSWORD};
use drydock_storage::{LockMode, ReadData, Repository, StorageError};
use drydock_testkit::faultproxy::{FaultProxy, Faults};
use drydock_testkit::garage::GarageServer;

/// A local repository with one 3 MiB stream snapshot; returns (guard, repo, id, data).
fn local_with_stream() -> (tempfile::TempDir, Repository, String, Vec<u8>) {
    let (dir, repo) = new_repo();
    let data = random_bytes(3 << 20, 7);
    let stored = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &meta("db/main.pgdump", &["drydock", "backup:1"]),
        )
        .unwrap();
    (dir, repo, stored.id, data)
}

#[test]
fn a_copy_in_s3_restores_exactly_and_restic_reads_it() {
    let garage = GarageServer::start();
    let (_dir, local, id, data) = local_with_stream();
    let opts = options(&garage, &garage.endpoint(), "clinic/");
    let remote = Repository::open_or_init_s3(&opts, PASSWORD, &local).unwrap();
    assert_eq!(
        remote.location(),
        format!("s3:{}/{}/clinic", garage.endpoint(), garage.bucket)
    );

    let copied = local.copy_to(&remote, std::slice::from_ref(&id)).unwrap();
    assert_eq!(copied.len(), 1);
    assert!(!copied[0].already_there);
    // Copying again changes nothing.
    let again = local.copy_to(&remote, std::slice::from_ref(&id)).unwrap();
    assert!(again[0].already_there);
    assert_eq!(again[0].dest_id, copied[0].dest_id);

    // A fresh handle (a fresh machine) reads it back byte-exact.
    let reopened = Repository::open_s3(&opts, PASSWORD).unwrap();
    let mut out = Vec::new();
    let (n, sha) = reopened.dump_stream(&copied[0].dest_id, &mut out).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(sha, sha256_hex(&data));
    let check = reopened
        .check_snapshots(&[copied[0].dest_id.clone()], ReadData::All)
        .unwrap();
    assert!(check.ok, "{check:?}");

    // restic opens the copy on its own, checks every pack and dumps the stream.
    let out = restic(&garage, "clinic", &["check", "--read-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = restic(
        &garage,
        "clinic",
        &["dump", &copied[0].dest_id, "/db/main.pgdump"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&data));
}

#[test]
fn bad_remotes_get_clear_errors() {
    let garage = GarageServer::start();
    let (_dir, local, _, _) = local_with_stream();

    let closed = format!("http://127.0.0.1:{}", drydock_testkit::free_port());
    let err = Repository::open_or_init_s3(&options(&garage, &closed, ""), PASSWORD, &local)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains("check [[remote]].endpoint"), "{err}");

    let mut wrong_secret = options(&garage, &garage.endpoint(), "");
    wrong_secret.secret_access_key = "0".repeat(64);
    let err = Repository::open_or_init_s3(&wrong_secret, PASSWORD, &local)
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(err.contains("secret_access_key"), "{err}");
    assert!(!err.contains(&"0".repeat(64)), "the secret leaked: {err}");
    assert!(!err.contains("X-Amz"), "a signed URL leaked: {err}");

    let mut no_bucket = options(&garage, &garage.endpoint(), "");
    no_bucket.bucket = "no-such-bucket".into();
    let err = Repository::open_or_init_s3(&no_bucket, PASSWORD, &local)
        .unwrap_err()
        .to_string();
    assert!(err.contains("create the bucket"), "{err}");

    // An empty prefix is not a repository yet: opening (not creating) says so.
    let err =
        Repository::open_s3(&options(&garage, &garage.endpoint(), "empty/"), PASSWORD).unwrap_err();
    assert!(
        matches!(err, StorageError::NotARepository { .. }),
        "{err:?}"
    );

    let opts = options(&garage, &garage.endpoint(), "pw/");
    Repository::open_or_init_s3(&opts, PASSWORD, &local).unwrap();
    let err = Repository::open_s3(&opts, "not the password").unwrap_err();
    assert!(matches!(err, StorageError::WrongPassword { .. }), "{err:?}");
}

#[test]
fn flaky_servers_are_retried_and_never_leave_partial_objects() {
    let garage = GarageServer::start();
    let (_dir, local, id, data) = local_with_stream();

    // One request in five answered 500/503, and some responses cut mid-body: the copy
    // still completes, and everything in the bucket is whole.
    let proxy = FaultProxy::start(
        garage.s3_port,
        Faults {
            error_ratio: 0.2,
            cut_response_ratio: 0.05,
            ..Faults::default()
        },
    );
    let opts = options(&garage, &proxy.endpoint(), "flaky/");
    let remote = Repository::open_or_init_s3(&opts, PASSWORD, &local).unwrap();
    let copied = local.copy_to(&remote, std::slice::from_ref(&id)).unwrap();
    let counters = &proxy.counters;
    assert!(
        counters.errors.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy injected nothing"
    );
    proxy.set(Faults::default());
    let mut out = Vec::new();
    let (_, sha) = remote.dump_stream(&copied[0].dest_id, &mut out).unwrap();
    assert_eq!(sha, sha256_hex(&data));
    let out = restic(&garage, "flaky", &["check", "--read-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The link dies mid-upload on every PUT: the copy fails, and no object that was
    // cut short exists in the bucket (restic file names are the SHA-256 of the
    // content, so a whole object hashes to its name).
    let (_dir2, local2, id2, _) = local_with_stream();
    let opts = options(&garage, &proxy.endpoint(), "cut/");
    let remote2 = Repository::open_or_init_s3(&opts, PASSWORD, &local2).unwrap();
    proxy.set(Faults {
        cut_upload_after: Some(1000),
        ..Faults::default()
    });
    let err = local2
        .copy_to(&remote2, std::slice::from_ref(&id2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("PUT"), "{err}");
    proxy.set(Faults::default());
    let out = restic(&garage, "cut", &["list", "packs", "--no-lock"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "a cut upload left a pack"
    );
    assert!(Repository::open_s3(&opts, PASSWORD)
        .unwrap()
        .snapshots()
        .unwrap()
        .is_empty());
    // The next run completes.
    let copied = local2
        .copy_to(&remote2, std::slice::from_ref(&id2))
        .unwrap();
    assert!(!copied[0].already_there);
    let out = restic(&garage, "cut", &["check", "--read-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_hanging_server_times_out_instead_of_stalling() {
    let garage = GarageServer::start();
    let (_dir, local, _, _) = local_with_stream();
    let proxy = FaultProxy::start(
        garage.s3_port,
        Faults {
            hang_ratio: 1.0,
            ..Faults::default()
        },
    );
    let mut opts = options(&garage, &proxy.endpoint(), "");
    opts.tuning.attempts = 2;
    let started = std::time::Instant::now();
    let err = Repository::open_or_init_s3(&opts, PASSWORD, &local)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("interrupted") && err.contains("after 2 attempts"),
        "{err}"
    );
    // Two attempts of a 2 s I/O timeout plus backoff, not forever.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn locks_in_a_bucket_exclude_and_go_stale() {
    let garage = GarageServer::start();
    let (_dir, local, _, _) = local_with_stream();
    let opts = options(&garage, &garage.endpoint(), "locks/");
    let a = Repository::open_or_init_s3(&opts, PASSWORD, &local).unwrap();
    let b = Repository::open_s3(&opts, PASSWORD).unwrap();

    let held = a
        .lock_with("sync", LockMode::Shared, Duration::from_secs(5))
        .unwrap();
    // Two syncs may share the bucket ...
    drop(
        b.lock_with("sync", LockMode::Shared, Duration::from_secs(5))
            .unwrap(),
    );
    // ... a prune may not run beside them, and says who holds the bucket.
    let err = b
        .lock_with("prune", LockMode::Exclusive, Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // restic sees drydock's lock in the bucket too.
    let out = restic(&garage, "locks", &["list", "locks", "--no-lock"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    drop(held);
    let out = restic(&garage, "locks", &["list", "locks", "--no-lock"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "lock not removed"
    );
    b.lock_with("prune", LockMode::Exclusive, Duration::from_secs(5))
        .unwrap();
}
