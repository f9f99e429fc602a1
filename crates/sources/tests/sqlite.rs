//! The SQLite adapter against real database files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{
    assert_holds, ctx, differences_now, entry_names, record, restore_stored, scratch, MemStore,
};
use drydock_domain::config::{SourceKind, SqliteSource};
use drydock_domain::Priority;
use drydock_sources::sqlite::Sqlite;
use drydock_sources::{count_unit, BackupOutcome, DataSource, RestoreMode, SourceError};
use rusqlite::Connection;
use tempfile::TempDir;

fn source(path: &Path) -> Sqlite {
    Sqlite::new(SqliteSource {
        name: None,
        priority: Priority::Critical,
        path: path.to_path_buf(),
        follow_symlink: false,
    })
}

fn populate(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        r#"
        PRAGMA user_version = 7;
        CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, score REAL, avatar BLOB, note TEXT);
        CREATE TABLE "odd ""name""" (k, v);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), body TEXT) ;
        CREATE INDEX posts_user ON posts(user_id);
        CREATE VIEW user_posts AS SELECT u.name, p.body FROM users u JOIN posts p ON p.user_id = u.id;
        CREATE TRIGGER users_touch AFTER UPDATE ON users BEGIN SELECT 1; END;
        CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
        INSERT INTO users (name, score, avatar, note) VALUES ('ada', 1.5, x'00ff10', NULL), ('bob', -0.25, NULL, 'héllo'), ('cy', 1e300, x'', '');
        INSERT INTO posts (user_id, body) VALUES (1, 'first'), (1, 'second'), (2, 'third');
        INSERT INTO "odd ""name""" VALUES (1, '1'), ('1', 1), (NULL, 2.0);
        INSERT INTO kv VALUES ('a', 1), ('b', x'deadbeef');
        "#,
    )
    .unwrap();
}

/// A populated `app.db` in a fresh temp dir, backed up: the temp dir, the scratch dir,
/// the store holding the backup and the outcome.
fn backed_up_app_db() -> (TempDir, TempDir, MemStore, BackupOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    populate(&live);
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live).backup(&store, &ctx(s.path())).unwrap();
    (dir, s, store, out)
}

fn file_mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn round_trip_into_empty_and_over_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    populate(&live);
    let s = scratch();
    let src = source(&live);
    assert_eq!(src.kind(), SourceKind::Sqlite);
    assert_eq!(src.restore_mode(), RestoreMode::FileLevel);
    assert_eq!(src.location(), format!("sqlite {}", live.display()));
    src.check().unwrap();
    assert!(src.has_data().unwrap());

    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    assert_eq!(out.format, "sqlite-db");
    assert_eq!(store.extension.borrow().as_deref(), Some(".sqlite"));
    assert_eq!(out.counts["tables"], 4);
    assert_eq!(out.counts["rows"], 3 + 3 + 3 + 2);
    for part in [
        "users",
        "posts",
        "odd \"name\"",
        "kv",
        "sqlite_sequence",
        "schema:ddl",
    ] {
        assert!(
            out.fingerprint.parts.contains_key(part),
            "no part {part}: {:?}",
            out.fingerprint.parts.keys()
        );
    }
    assert_eq!(
        src.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );

    // Into a place that does not exist yet (parent created).
    let fresh = dir.path().join("new/dir/app.db");
    let target = source(&fresh);
    assert!(!target.has_data().unwrap());
    restore_stored(&target, &store, &out, s.path()).unwrap();
    let got = assert_holds(&target, &out.fingerprint, "rows", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    let leftovers = entry_names(fresh.parent().unwrap());
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("app.db")],
        "temp files left behind"
    );

    // Over another, non-empty database whose mode is kept.
    let other = dir.path().join("other.db");
    {
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE junk (x); INSERT INTO junk VALUES (1), (2);")
            .unwrap();
    }
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o640)).unwrap();
    let target = source(&other);
    assert!(target.has_data().unwrap());
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert_eq!(
        target.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
    assert_eq!(file_mode(&other), 0o640);
}

#[test]
fn a_change_is_named_by_table() {
    let (dir, s, store, out) = backed_up_app_db();

    let restored = dir.path().join("restored.db");
    let target = source(&restored);
    restore_stored(&target, &store, &out, s.path()).unwrap();
    Connection::open(&restored)
        .unwrap()
        .execute("UPDATE posts SET body = 'edited' WHERE id = 2", [])
        .unwrap();
    let diff = differences_now(
        &target,
        &out.fingerprint,
        count_unit(SourceKind::Sqlite),
        &ctx(s.path()),
    );
    assert_eq!(
        diff,
        vec!["posts: same rows count (3) but different content".to_string()]
    );

    Connection::open(&restored)
        .unwrap()
        .execute("DELETE FROM kv WHERE k = 'a'", [])
        .unwrap();
    let diff = differences_now(&target, &out.fingerprint, "rows", &ctx(s.path()));
    assert!(
        diff.contains(&"kv: 2 rows in backup, 1 now".to_string()),
        "{diff:?}"
    );

    Connection::open(&restored)
        .unwrap()
        .execute_batch("CREATE INDEX kv_v ON kv(v)")
        .unwrap();
    let diff = differences_now(&target, &out.fingerprint, "rows", &ctx(s.path()));
    assert!(diff.iter().any(|d| d.starts_with("schema:ddl")), "{diff:?}");
}

#[test]
fn values_keep_their_type_in_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    Connection::open(&a)
        .unwrap()
        .execute_batch("CREATE TABLE t (v); INSERT INTO t VALUES (1);")
        .unwrap();
    Connection::open(&b)
        .unwrap()
        .execute_batch("CREATE TABLE t (v); INSERT INTO t VALUES ('1');")
        .unwrap();
    let s = scratch();
    let fa = source(&a).inspect(&ctx(s.path())).unwrap().fingerprint;
    let fb = source(&b).inspect(&ctx(s.path())).unwrap().fingerprint;
    assert_ne!(fa.parts["t"], fb.parts["t"]);
    assert_eq!(fa.parts["schema:ddl"], fb.parts["schema:ddl"]);
}

#[test]
fn missing_file_is_a_clear_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let s = scratch();
    let src = source(&path);
    let store = MemStore::new();
    let err = src.backup(&store, &ctx(s.path())).unwrap_err().to_string();
    eprintln!("{err}");
    assert!(
        err.contains(&path.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!store.stored_anything());
    assert!(src
        .check()
        .unwrap_err()
        .to_string()
        .contains("does not exist"));
    assert!(src.inspect(&ctx(s.path())).is_err());
    assert!(!src.has_data().unwrap());
    assert!(!path.exists(), "drydock created an empty database");
}

#[test]
fn corrupt_file_is_a_clear_error_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(
        &path,
        (0..8192u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let s = scratch();
    let src = source(&path);
    let store = MemStore::new();
    let err = src.backup(&store, &ctx(s.path())).unwrap_err();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("not a SQLite database") && text.contains(&path.display().to_string()),
        "{text}"
    );
    assert!(!store.stored_anything());
    assert!(src.check().is_err());
    assert!(
        src.has_data().unwrap(),
        "garbage is still something a restore replaces"
    );
}

#[test]
fn corrupt_pages_fail_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA page_size = 1024; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);").unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..2000 {
            tx.execute(
                "INSERT INTO t (v) VALUES (?1)",
                [format!("value number {i} with some padding")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    // Scribble over a page in the middle (keeps the header intact).
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2 / 1024 * 1024;
    for b in &mut bytes[mid + 8..mid + 1000] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let s = scratch();
    let store = MemStore::new();
    let err = source(&path)
        .backup(&store, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(
        err.contains("integrity") || err.contains("corrupt") || err.contains("malformed"),
        "{err}"
    );
    // The copy is stored while it is checked: what a failed backup stored is not a
    // backup, and the engine discards it (as for a dump whose proof fails).
}

#[test]
fn backup_under_a_concurrent_writer_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("busy.db");
    {
        let c = Connection::open(&live).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT, n INTEGER); CREATE TABLE totals (k TEXT PRIMARY KEY, n INTEGER); INSERT INTO totals VALUES ('count', 0);").unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, live) = (stop.clone(), written.clone(), live.clone());
        std::thread::spawn(move || {
            let c = Connection::open(&live).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tx = c.unchecked_transaction().unwrap();
                tx.execute(
                    "INSERT INTO events (payload, n) VALUES (?1, ?2)",
                    rusqlite::params![format!("event {i} {}", "x".repeat(200)), i as i64],
                )
                .unwrap();
                tx.execute("UPDATE totals SET n = n + 1 WHERE k = 'count'", [])
                    .unwrap();
                tx.commit().unwrap();
                i += 1;
                written.store(i, Ordering::Relaxed);
            }
        })
    };
    while written.load(Ordering::Relaxed) < 2000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live).backup(&store, &ctx(s.path())).unwrap();
    let during = written.load(Ordering::Relaxed);
    while written.load(Ordering::Relaxed) < during + 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let restored: PathBuf = dir.path().join("restored/busy.db");
    let target = source(&restored);
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert_holds(&target, &out.fingerprint, "rows", &ctx(s.path()));
    // One transaction's view: the counter equals the rows, all or nothing.
    let c = Connection::open(&restored).unwrap();
    let rows: i64 = c
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let total: i64 = c
        .query_row("SELECT n FROM totals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, total);
    assert!(rows >= 2000 && (rows as u64) < written.load(Ordering::Relaxed));
    assert_eq!(out.counts["rows"], rows as u64 + 1);
    // And the live database (still changing meanwhile) now differs from the backup.
    let live_fp = source(&live).inspect(&ctx(s.path())).unwrap().fingerprint;
    assert!(!live_fp.differences(&out.fingerprint, "rows").is_empty());
}

#[test]
fn restore_removes_stale_journals_of_the_old_database() {
    let (dir, s, store, out) = backed_up_app_db();

    let target_path = dir.path().join("t/app.db");
    std::fs::create_dir_all(target_path.parent().unwrap()).unwrap();
    {
        let c = Connection::open(&target_path).unwrap();
        c.execute_batch("CREATE TABLE old (x); INSERT INTO old VALUES (1);")
            .unwrap();
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        std::fs::write(
            format!("{}{suffix}", target_path.display()),
            b"stale bytes from the old database",
        )
        .unwrap();
    }
    let target = source(&target_path);
    restore_stored(&target, &store, &out, s.path()).unwrap();
    for suffix in ["-wal", "-shm", "-journal"] {
        let p = format!("{}{suffix}", target_path.display());
        assert!(
            std::fs::read(&p)
                .map(|b| b != b"stale bytes from the old database")
                .unwrap_or(true),
            "{p} still holds the stale file"
        );
    }
    assert_eq!(
        target.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
}

#[test]
fn damaged_fetch_does_not_touch_the_target() {
    let (dir, s, store, out) = backed_up_app_db();
    let rec = record(SourceKind::Sqlite, &out);

    let target_path = dir.path().join("keep.db");
    Connection::open(&target_path)
        .unwrap()
        .execute_batch("CREATE TABLE precious (x); INSERT INTO precious VALUES (42);")
        .unwrap();
    let before = std::fs::read(&target_path).unwrap();
    let mut fetch = store.fetch();
    let data = fetch.stream.as_mut().unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    let err = source(&target_path)
        .restore(&fetch, &rec, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(std::fs::read(&target_path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("drydock-restore")),
        "{names:?}"
    );
}

#[test]
fn restore_keeps_the_old_files_owner_when_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (dir, s, store, out) = backed_up_app_db();
    let target_path = dir.path().join("owned.db");
    Connection::open(&target_path)
        .unwrap()
        .execute_batch("CREATE TABLE x (y)")
        .unwrap();
    std::os::unix::fs::chown(&target_path, Some(4321), Some(4322)).unwrap();
    restore_stored(&source(&target_path), &store, &out, s.path()).unwrap();
    let m = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&target_path).unwrap());
    let g = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&target_path).unwrap());
    assert_eq!((m, g), (4321, 4322));
}

#[test]
fn sandbox_holds_the_backup_and_the_canary_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    populate(&live);
    let s = scratch();
    let src = source(&live);
    assert_eq!(src.read_canary().unwrap(), None);
    src.write_canary("drill-token-1").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-1"));
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    assert_eq!(out.fingerprint.parts["_drydock_canary"].count, 1);
    src.write_canary("drill-token-2").unwrap();

    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    let target = sandbox.target();
    assert_eq!(target.kind(), SourceKind::Sqlite);
    // ctx.scratch/sandbox-XXXX/app.db, not there yet.
    let path = PathBuf::from(
        target
            .location()
            .strip_prefix("sqlite ")
            .expect("sqlite location"),
    );
    assert_eq!(
        sandbox.describe(),
        format!("temporary file {}", path.display())
    );
    assert_eq!(path.file_name().unwrap(), "app.db");
    let sandbox_dir = path.parent().unwrap().to_path_buf();
    assert_eq!(sandbox_dir.parent().unwrap(), s.path());
    assert!(sandbox_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("sandbox-"));
    assert!(!path.exists());
    assert!(!target.has_data().unwrap());

    restore_stored(target, &store, &out, s.path()).unwrap();
    let got = assert_holds(target, &out.fingerprint, "rows", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    assert_eq!(
        target.read_canary().unwrap().as_deref(),
        Some("drill-token-1")
    );
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-2"));
    // The live file is untouched by the drill.
    assert_eq!(
        entry_names(dir.path()),
        vec![std::ffi::OsString::from("app.db")]
    );

    drop(sandbox);
    assert!(!sandbox_dir.exists(), "sandbox left behind");
    assert!(entry_names(s.path()).is_empty());
}

#[test]
fn sandbox_of_a_backup_without_canary_has_none() {
    let (dir, s, store, out) = backed_up_app_db();
    let src = source(&dir.path().join("app.db"));
    src.write_canary("too-late").unwrap();
    let unit = count_unit(SourceKind::Sqlite);
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert!(
        diff.iter().any(|d| d.contains("_drydock_canary")),
        "the canary is part of the fingerprint: {diff:?}"
    );
    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    restore_stored(sandbox.target(), &store, &out, s.path()).unwrap();
    assert_holds(sandbox.target(), &out.fingerprint, unit, &ctx(s.path()));
    assert_eq!(sandbox.target().read_canary().unwrap(), None);
}

#[test]
fn canary_is_one_row_replaced_in_place() {
    let (dir, _s, _store, _out) = backed_up_app_db();
    let live = dir.path().join("app.db");
    let src = source(&live);
    src.write_canary("first").unwrap();
    src.write_canary("second").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("second"));
    let c = Connection::open(&live).unwrap();
    let rows: Vec<(i64, String, String)> = c
        .prepare("SELECT id, token, written_at FROM _drydock_canary")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1.as_str()), (1, "second"));
    assert!(
        rows[0].2.parse::<jiff::Timestamp>().is_ok(),
        "written_at {:?}",
        rows[0].2
    );
    // An empty table (or a missing row 1) is no canary.
    c.execute("DELETE FROM _drydock_canary", []).unwrap();
    assert_eq!(src.read_canary().unwrap(), None);
}

#[test]
fn canary_never_creates_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let src = source(&path);
    let err = src.write_canary("t").unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(src.read_canary().is_err());
    assert!(!path.exists(), "drydock created a database");
    assert!(entry_names(dir.path()).is_empty());
}

#[test]
fn test_data_populates_wipes_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    common::assert_populate_wipe_restore(&source(&path));
}
