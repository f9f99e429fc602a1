//! Repository checks find corruption and report it in words.

mod common;

use std::path::PathBuf;

use common::{meta, new_repo, random_bytes, walk};

fn packs(repo: &drydock_storage::Repository) -> Vec<PathBuf> {
    walk(&repo.local_path().unwrap().join("data"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn a_clean_repository_checks_ok() {
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(1_000_000, 5))),
        &meta("db/main.pgdump", &["drydock"]),
    )
    .unwrap();
    for read_data in [false, true] {
        let report = repo.check(read_data).unwrap();
        assert!(report.ok, "{report:?}");
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.read_data, read_data);
    }
}

#[test]
fn a_corrupted_pack_fails_the_data_check() {
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(1_000_000, 6))),
        &meta("db/main.pgdump", &["drydock"]),
    )
    .unwrap();
    // The biggest pack holds the stream's data; flip bytes in its middle.
    let pack = packs(&repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0xff;
    }
    std::fs::write(&pack, &bytes).unwrap();

    let report = repo.check(true).unwrap();
    eprintln!("{report:#?}");
    assert!(!report.ok, "{report:?}");
    assert!(report.read_data);
    let pack_name = pack.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("pack") && e.contains(&pack_name[..8])),
        "errors should name the pack {pack_name}: {:?}",
        report.errors
    );
}

#[test]
fn a_missing_pack_fails_the_structure_check() {
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(200_000, 8))),
        &meta("db/main.pgdump", &["drydock"]),
    )
    .unwrap();
    for pack in packs(&repo) {
        std::fs::remove_file(pack).unwrap();
    }
    let report = repo.check(false).unwrap();
    eprintln!("{report:#?}");
    assert!(!report.ok, "{report:?}");
    assert!(!report.read_data);
    assert!(!report.errors.is_empty());
}

#[test]
fn a_damaged_pack_of_a_root_tree_fails_the_data_check() {
    // rustic's own read-data check reads the packs of the blobs and subtrees that
    // trees name, never the pack of a snapshot's root tree; damage to that pack's
    // header leaves the tree itself readable, so only hashing the pack finds it.
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(300_000, 9))),
        // At the top level, so the root tree is the only tree (no subtree shares
        // its pack and gets it read).
        &meta("main.pgdump", &["drydock"]),
    )
    .unwrap();
    assert!(repo.check(true).unwrap().ok);
    // That one tree is alone in the smallest pack.
    let pack = packs(&repo)
        .into_iter()
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    // The pack's header sits before its last 4 bytes (the header's length).
    let in_header = bytes.len() - 4 - 10;
    bytes[in_header] ^= 0x20;
    std::fs::write(&pack, &bytes).unwrap();

    let report = repo.check(false).unwrap();
    assert!(
        report.ok,
        "the structure check does not read packs: {report:?}"
    );
    let report = repo.check(true).unwrap();
    assert!(!report.ok, "{report:?}");
    let pack_name = pack.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains(&pack_name) && e.contains("root tree")),
        "errors should name the pack {pack_name}: {:?}",
        report.errors
    );
}
