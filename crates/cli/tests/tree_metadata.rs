//! Exact means exact for trees (issue 12, item 6), through the real binary: the top
//! directory's own mode, owner and mtime come back from a restore (onto a fresh
//! machine, and over a directory whose mode changed), a difference in them is reported
//! by `verify --live`, and a sparse file is restored sparse. Oracles: lstat of the top
//! directory, an lstat walk with content hashes, and `st_blocks`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::Stack;
use sha2::{Digest, Sha256};

fn walk(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
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
                "{} {:o} {}:{} {} {}.{} {}",
                e.path().strip_prefix(root).unwrap().display(),
                m.mode(),
                m.uid(),
                m.gid(),
                if m.is_dir() { 0 } else { m.size() },
                m.mtime(),
                m.mtime_nsec(),
                content
            )
        })
        .collect()
}

const SPARSE_LEN: u64 = 64 << 20;

fn stack() -> Stack {
    let stack = Stack::new(
        "[services.web]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"site\", priority = \"critical\", path = \"site\" }]\n",
    );
    let site = stack.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>hi</h1>").unwrap();
    // 64 MiB with data only at both ends.
    let f = std::fs::File::create(site.join("disk.img")).unwrap();
    f.set_len(SPARSE_LEN).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"tail", SPARSE_LEN - 4).unwrap();
    drop(f);
    std::os::unix::fs::chown(&site, Some(1234), Some(2345)).unwrap();
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o2750)).unwrap();
    std::fs::File::open(&site)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789))
        .unwrap();
    stack
}

fn assert_sparse(path: &Path) {
    let m = std::fs::metadata(path).unwrap();
    assert_eq!(m.len(), SPARSE_LEN);
    // 64 MiB written out would be 131072 blocks of 512 bytes; its data is 8 bytes.
    assert!(
        m.blocks() < 1024,
        "{} has {} blocks: not sparse",
        path.display(),
        m.blocks()
    );
}

#[test]
fn the_top_directory_and_sparse_files_come_back_exactly() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: giving the directory another owner needs root");
        return;
    }
    let stack = stack();
    let site = stack.path().join("site");
    assert_sparse(&site.join("disk.img"));
    let before = walk(&site);
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let id = backup["id"].as_str().unwrap().to_string();

    // A fresh machine: the directory is gone.
    std::fs::remove_dir_all(&site).unwrap();
    let (code, report) = stack.json(&["restore", &id, "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(walk(&site), before);
    assert_sparse(&site.join("disk.img"));

    // The mode changed on the live directory: verify --live names it, a restore fixes it.
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = stack.run(&["verify", "--live"]);
    let said = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("top directory") && said.contains("mode=2750"),
        "{said}"
    );
    let (code, report) = stack.json(&["restore", &id, "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(walk(&site), before);
}
