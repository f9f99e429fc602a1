//! A restore target that is a symlink (issue 12, item 1), through the real binary: the
//! restore is refused, naming the link and its target, with the link and what it points
//! at unchanged (lstat walk with content hashes), unless the source declares
//! `follow_symlink = true`: then what the link points at is restored and the link stays.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::Stack;
use sha2::{Digest, Sha256};

/// `root` and everything under it as lstat shows it (no link followed), with content
/// hashes.
fn lstat_walk(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        // drydock's own repository and state (locks come and go) are not the data.
        .filter_entry(|e| !matches!(e.file_name().to_str(), Some("repo" | "state")))
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
                "{} {:o} {} {} {}",
                e.path().display(),
                m.mode(),
                if m.is_dir() { 0 } else { m.size() },
                m.mtime(),
                content
            )
        })
        .collect()
}

fn stack(kind_and_path: &str, follow: bool) -> Stack {
    Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ {kind_and_path}, name = \"d\", priority = \"critical\"{} }}]\n",
        if follow { ", follow_symlink = true" } else { "" }
    ))
}

fn files_case(follow: bool) -> (Stack, String) {
    let stack = stack("kind = \"files\", path = \"link\"", follow);
    let real = stack.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("a.txt"), "backed up").unwrap();
    std::os::unix::fs::symlink("real", stack.path().join("link")).unwrap();
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    std::fs::write(real.join("a.txt"), "live, newer").unwrap();
    std::fs::write(real.join("b.txt"), "only live").unwrap();
    (stack, backup["id"].as_str().unwrap().to_string())
}

fn sqlite_case(follow: bool) -> (Stack, String) {
    let stack = stack("kind = \"sqlite\", path = \"link.db\"", follow);
    let real = stack.path().join("real.db");
    let conn = rusqlite::Connection::open(&real).unwrap();
    conn.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('backed up');")
        .unwrap();
    drop(conn);
    std::os::unix::fs::symlink("real.db", stack.path().join("link.db")).unwrap();
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let conn = rusqlite::Connection::open(&real).unwrap();
    conn.execute_batch("INSERT INTO t VALUES ('live, newer');")
        .unwrap();
    drop(conn);
    (stack, backup["id"].as_str().unwrap().to_string())
}

fn assert_refused(stack: &Stack, id: &str, link: &str, points_at: &str) {
    let before = lstat_walk(stack.path());
    let (code, report) = stack.json(&["restore", id, "--all", "--force"]);
    assert_eq!(code, 3, "{report:#}");
    let said = report.to_string();
    assert!(
        said.contains(&format!("{link} is a symlink to {points_at}")),
        "{said}"
    );
    assert!(said.contains("follow_symlink = true"), "{said}");
    assert_eq!(
        lstat_walk(stack.path()),
        before,
        "the refused restore changed something"
    );
}

#[test]
fn a_files_restore_into_a_symlink_is_refused_unless_declared() {
    let (stack, id) = files_case(false);
    let link = stack.path().join("link").display().to_string();
    assert_refused(&stack, &id, &link, "real");

    let (stack, id) = files_case(true);
    let (code, report) = stack.json(&["restore", &id, "--all", "--force"]);
    common::assert_verified(code, &report);
    let link = std::fs::symlink_metadata(stack.path().join("link")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let real = stack.path().join("real");
    assert_eq!(
        std::fs::read_to_string(real.join("a.txt")).unwrap(),
        "backed up"
    );
    assert!(!real.join("b.txt").exists());
}

#[test]
fn a_sqlite_restore_into_a_symlink_is_refused_unless_declared() {
    let (stack, id) = sqlite_case(false);
    let link = stack.path().join("link.db").display().to_string();
    assert_refused(&stack, &id, &link, "real.db");

    let (stack, id) = sqlite_case(true);
    let (code, report) = stack.json(&["restore", &id, "--all", "--force"]);
    common::assert_verified(code, &report);
    let link = std::fs::symlink_metadata(stack.path().join("link.db")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let conn = rusqlite::Connection::open(stack.path().join("real.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}
