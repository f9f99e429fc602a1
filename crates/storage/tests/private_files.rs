//! Repository files stay private whatever the caller's umask. A separate
//! test binary, because it changes the process umask.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{meta, random_bytes, walk, PASSWORD};
use drydock_storage::Repository;
use nix::sys::stat::{umask, Mode};

#[test]
fn repository_files_are_private_even_with_umask_000() {
    umask(Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    // Created beforehand by the operator, world-readable.
    std::fs::create_dir(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = Repository::init(&path, PASSWORD).unwrap();
    let _lock = repo.lock("backup").unwrap();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(200_000, 9))),
        &meta("db/main.pgdump", &["drydock"]),
    )
    .unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"content").unwrap();
    repo.backup_tree(src.path(), &[], &meta("", &["drydock"]))
        .unwrap();
    drop(repo);
    let repo = Repository::open(&path, PASSWORD).unwrap();
    repo.forget(&[repo.snapshots().unwrap()[0].id.clone()])
        .unwrap();

    let mut files = 0;
    for p in walk(&path) {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let mode = md.permissions().mode() & 0o777;
        if md.is_dir() {
            assert_eq!(mode, 0o700, "{} is {mode:o}", p.display());
        } else {
            files += 1;
            assert_eq!(mode, 0o600, "{} is {mode:o}", p.display());
        }
    }
    assert!(
        files >= 6,
        "config, key, packs, index, snapshots, lock: {files}"
    );
    assert!(path.join("drydock.lock").is_file());
}
