//! A file-level restore killed between its steps (issue 12, item 1), through the real
//! binary: the test hook `DRYDOCK_TEST_FAILPOINT` aborts the process (as `kill -9`
//! would) after the live data was moved aside, or after the new data was moved in.
//! The next command that touches the source puts the old data back (first case) or
//! removes what the old data left (second), with a warning naming it, and the live data
//! is then exactly as before the restore (first case: an lstat walk with content hashes,
//! and for SQLite `sqlite3 .dump` of the database with its WAL, which holds commits not
//! yet in the main file) or exactly the backup (second case).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Stack;
use sha2::{Digest, Sha256};

/// Every entry under `root` (itself included) as lstat shows it: path, type, mode,
/// owner, size, mtime, and the SHA-256 of a file's content or a link's target.
fn lstat_walk(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if m.is_file() {
                hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
            } else if m.file_type().is_symlink() {
                std::fs::read_link(e.path()).unwrap().display().to_string()
            } else {
                String::new()
            };
            format!(
                "{} {:o} {}:{} {} {} {}",
                e.path().strip_prefix(root).unwrap().display(),
                m.mode(),
                m.uid(),
                m.gid(),
                if m.is_dir() { 0 } else { m.size() },
                m.mtime(),
                content
            )
        })
        .collect();
    out.sort();
    out
}

/// Scratch entries (`.NAME.drydock-*`) in `dir`.
fn scratch_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".drydock-"))
        .collect()
}

/// Runs a restore that the test hook aborts at `point`; asserts it was killed.
fn killed_restore(stack: &Stack, id: &str, point: &str) {
    let out = stack
        .command(&["restore", id, "--all", "--force"])
        .env("DRYDOCK_TEST_FAILPOINT", point)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_none(),
        "the restore was not stopped at {point}: {}",
        common::text(&out)
    );
}

fn files_stack() -> Stack {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"data\", priority = \"critical\", path = \"data\" }]\n",
    );
    let data = stack.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), "backed up").unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![7u8; 10_000]).unwrap();
    std::os::unix::fs::symlink("a.txt", data.join("link")).unwrap();
    stack
}

#[test]
fn a_files_restore_killed_after_moving_the_live_tree_aside_gets_it_back() {
    let stack = files_stack();
    let data = stack.path().join("data");
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let id = backup["id"].as_str().unwrap().to_string();
    // The live data moves on after the backup.
    std::fs::write(data.join("a.txt"), "newer than the backup").unwrap();
    std::fs::write(data.join("c.txt"), "only live").unwrap();
    let before = lstat_walk(&data);

    killed_restore(&stack, &id, "files-restore-moved-aside");
    assert!(
        !data.exists(),
        "the hook did not stop between the two renames"
    );
    assert!(!scratch_entries(stack.path()).is_empty());

    // The next command touching the source (here verify --live) puts it back.
    let out = stack.run(&["verify", "--live"]);
    let said = common::text(&out);
    assert!(
        said.contains("put") && said.contains(".data.drydock-old-"),
        "{said}"
    );
    assert_eq!(lstat_walk(&data), before, "{said}");
    assert!(
        scratch_entries(stack.path()).is_empty(),
        "{:?}",
        scratch_entries(stack.path())
    );
}

#[test]
fn a_files_restore_killed_after_moving_the_new_tree_in_leaves_no_scratch_behind() {
    let stack = files_stack();
    let data = stack.path().join("data");
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let id = backup["id"].as_str().unwrap().to_string();
    let backed_up = lstat_walk(&data);
    std::fs::write(data.join("a.txt"), "newer than the backup").unwrap();

    killed_restore(&stack, &id, "files-restore-moved-in");
    assert!(scratch_entries(stack.path())
        .iter()
        .any(|n| n.starts_with(".data.drydock-old-")));

    // The next backup removes the old tree, naming it.
    let out = stack.run(&["backup"]);
    let said = common::text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("removed") && said.contains(".data.drydock-old-"),
        "{said}"
    );
    assert!(
        scratch_entries(stack.path()).is_empty(),
        "{:?}",
        scratch_entries(stack.path())
    );
    // What is live is the backup (the top directory's own mtime aside).
    let strip_root =
        |w: Vec<String>| -> Vec<String> { w.into_iter().filter(|l| !l.starts_with(' ')).collect() };
    assert_eq!(strip_root(lstat_walk(&data)), strip_root(backed_up));
}

fn sqlite3(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// `.dump` of the database at `db` with its `-wal`, read from a copy of the pair (so
/// reading it cannot checkpoint or remove the live WAL).
fn dump_of_pair(db: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, dir.path().join("copy.db-wal")).unwrap();
    }
    sqlite3(&copy, ".dump")
}

/// A stack whose SQLite database (WAL mode) is backed up with rows 1..=10, then gets
/// rows 11..=20 committed into its `-wal` only (never checkpointed into the main file,
/// as when the application was stopped hard).
fn sqlite_stack_with_commits_in_the_wal() -> (Stack, String) {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }]\n",
    );
    let db = stack.path().join("app.db");
    sqlite3(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10)
         INSERT INTO t SELECT i, 'row ' || i FROM c;",
    );
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let id = backup["id"].as_str().unwrap().to_string();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=0;
             WITH RECURSIVE c(i) AS (SELECT 11 UNION ALL SELECT i + 1 FROM c WHERE i < 20)
             INSERT INTO t SELECT i, 'wal row ' || i FROM c;",
        )
        .unwrap();
        // The files as a hard stop leaves them: main file and WAL, copied while open.
        let keep = stack.path().join("kept");
        std::fs::create_dir(&keep).unwrap();
        std::fs::copy(&db, keep.join("app.db")).unwrap();
        std::fs::copy(stack.path().join("app.db-wal"), keep.join("app.db-wal")).unwrap();
        drop(conn);
        for f in ["app.db", "app.db-wal", "app.db-shm"] {
            let _ = std::fs::remove_file(stack.path().join(f));
        }
        std::fs::rename(keep.join("app.db"), &db).unwrap();
        std::fs::rename(keep.join("app.db-wal"), stack.path().join("app.db-wal")).unwrap();
    }
    let main_only = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&db, dir.path().join("m.db")).unwrap();
        sqlite3(&dir.path().join("m.db"), "SELECT count(*) FROM t")
    };
    assert_eq!(
        main_only.trim(),
        "10",
        "the new rows are not only in the WAL"
    );
    (stack, id)
}

#[test]
fn a_sqlite_restore_killed_after_moving_the_old_database_aside_keeps_the_commits_in_its_wal() {
    let (stack, id) = sqlite_stack_with_commits_in_the_wal();
    let db = stack.path().join("app.db");
    let before = dump_of_pair(&db);
    assert!(before.contains("wal row 20"), "{before}");

    killed_restore(&stack, &id, "sqlite-restore-moved-aside");
    assert!(
        !db.exists(),
        "the hook did not stop before the new file was in place"
    );

    // The next backup puts the old database back with its WAL, and backs it up.
    let out = stack.run(&["backup"]);
    let said = common::text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("put") && said.contains(".app.db.drydock-old-"),
        "{said}"
    );
    assert_eq!(dump_of_pair(&db), before);
    assert!(
        scratch_entries(stack.path()).is_empty(),
        "{:?}",
        scratch_entries(stack.path())
    );
}

#[test]
fn a_sqlite_restore_killed_after_moving_the_new_database_in_is_the_backup_with_no_stale_wal() {
    let (stack, id) = sqlite_stack_with_commits_in_the_wal();
    let db = stack.path().join("app.db");

    killed_restore(&stack, &id, "sqlite-restore-moved-in");
    // The old WAL went aside with its database, never onto the new file.
    assert!(!stack.path().join("app.db-wal").exists());
    assert_eq!(sqlite3(&db, "SELECT count(*) FROM t").trim(), "10");

    // The next restore removes the old pair, naming it, and restores exactly.
    let (code, report) = stack.json(&["restore", &id, "--all", "--force"]);
    common::assert_verified(code, &report);
    let out = stack.run(&["verify", "--live"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        scratch_entries(stack.path()).is_empty(),
        "{:?}",
        scratch_entries(stack.path())
    );
    assert!(!dump_of_pair(&db).contains("wal row"));
}

/// A tmpfs mounted at `at`, unmounted on drop; `None` (said) where mounting is not
/// allowed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        }
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_restore_into_a_mount_point_killed_mid_swap_gets_the_old_contents_back() {
    for point in ["files-mount-moved-aside", "files-mount-moved-in"] {
        let stack = Stack::new(
            "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"data\", priority = \"critical\", path = \"data\" }]\n",
        );
        let data = stack.path().join("data");
        let Some(_mounted) = Tmpfs::mount(&data) else {
            return;
        };
        std::fs::create_dir(data.join("sub")).unwrap();
        std::fs::write(data.join("a.txt"), "backed up").unwrap();
        std::fs::write(data.join("sub/b.txt"), "backed up too").unwrap();
        let (code, backup) = stack.json(&["backup"]);
        assert_eq!(code, 0, "{backup:#}");
        std::fs::write(data.join("a.txt"), "newer").unwrap();
        std::fs::write(data.join("c.txt"), "only live").unwrap();
        let entries = |w: Vec<String>| -> Vec<String> { w.into_iter().skip(1).collect() };
        let before = entries(lstat_walk(&data));

        killed_restore(&stack, backup["id"].as_str().unwrap(), point);
        assert!(scratch_entries(&data)
            .iter()
            .any(|n| n.starts_with(".drydock-restore-")));

        let out = stack.run(&["verify", "--live"]);
        let said = common::text(&out);
        assert!(
            said.contains("put its") && said.contains("previous entries back"),
            "{point}: {said}"
        );
        assert_eq!(entries(lstat_walk(&data)), before, "{point}: {said}");
        assert!(
            scratch_entries(&data).is_empty(),
            "{point}: {:?}",
            scratch_entries(&data)
        );
    }
}
