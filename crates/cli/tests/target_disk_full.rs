//! The restore target's file system is full (issue 12, item 1), through the real
//! binary: the target is on a small tmpfs (mounted by the test, unmounted on drop), the
//! repository elsewhere. The restore of a `files` and of a `sqlite` source fails naming
//! the target's file system (not the repository) and the fix, and the live data is
//! exactly as before (lstat walk with content hashes), with no scratch entry left.
//!
//! Needs root for `mount`; where mounting fails, the test says so and skips.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::tmpfs::Tmpfs;
use common::Stack;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Everything under `root` (the mount point itself left out: the restore's scratch
/// entry came and went there) as lstat shows it, with content hashes.
fn lstat_walk(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if m.is_file() {
                hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
            } else {
                String::new()
            };
            format!(
                "{} {:o} {} {}.{} {}",
                e.path().display(),
                m.mode(),
                if m.is_dir() { 0 } else { m.size() },
                m.mtime(),
                m.mtime_nsec(),
                content
            )
        })
        .collect()
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

fn assert_named_and_untouched(stack: &Stack, fs: &Path, id: &str) {
    let before = lstat_walk(fs);
    let (code, report) = stack.json(&["restore", id, "--all", "--force"]);
    assert_eq!(code, 2, "{report:#}");
    let said = report.to_string();
    assert!(
        said.contains("restore target's file system") && said.contains(&fs.display().to_string()),
        "{said}"
    );
    assert!(said.contains("Free space on the target"), "{said}");
    assert!(
        !said.contains(&format!("repository at {}", stack.repo().display())),
        "the repository is blamed: {said}"
    );
    assert_eq!(lstat_walk(fs), before, "the live data changed");
}

#[test]
fn a_full_target_disk_is_named_as_the_targets_and_leaves_the_live_data_as_it_was() {
    // Files: 700 KiB on a 1 MiB file system; the restore needs a second copy beside it.
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"data\", priority = \"critical\", path = \"fs/data\" }]\n",
    );
    let fs = stack.path().join("fs");
    let Some(_mounted) = Tmpfs::mount(&fs, 1024) else {
        return;
    };
    std::fs::create_dir(fs.join("data")).unwrap();
    std::fs::write(fs.join("data/a.bin"), random(600 << 10)).unwrap();
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    std::fs::write(fs.join("data/b.bin"), random(100 << 10)).unwrap();
    assert_named_and_untouched(&stack, &fs, backup["id"].as_str().unwrap());
}

#[test]
fn a_full_target_disk_fails_a_sqlite_restore_naming_it_and_keeps_the_database() {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"fs/app.db\" }]\n",
    );
    let fs = stack.path().join("fs");
    let Some(_mounted) = Tmpfs::mount(&fs, 1024) else {
        return;
    };
    let conn = rusqlite::Connection::open(fs.join("app.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (b BLOB);").unwrap();
    for _ in 0..6 {
        conn.execute("INSERT INTO t VALUES (?1)", [random(100 << 10)])
            .unwrap();
    }
    drop(conn);
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let conn = rusqlite::Connection::open(fs.join("app.db")).unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", [random(50 << 10)])
        .unwrap();
    drop(conn);
    let dump = |p: &Path| {
        let out = Command::new("sqlite3")
            .arg(p)
            .arg("SELECT count(*), sum(length(b)) FROM t")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let rows_before = dump(&fs.join("app.db"));
    assert_named_and_untouched(&stack, &fs, backup["id"].as_str().unwrap());
    assert_eq!(dump(&fs.join("app.db")), rows_before);
}
