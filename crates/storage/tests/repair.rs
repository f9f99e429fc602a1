//! Damage is found by hashing, removed, and the data uploaded again: a lost or damaged
//! pack stops being trusted by deduplication, and a copy fills in what only it has.

mod common;

use std::path::{Path, PathBuf};

use common::{meta, new_repo, random_bytes, walk};

fn files_in(repo: &drydock_storage::Repository, dir: &str) -> Vec<PathBuf> {
    walk(&repo.local_path().unwrap().join(dir))
        .into_iter()
        .filter(|p| p.is_file())
        .collect()
}

fn largest_pack(repo: &drydock_storage::Repository) -> PathBuf {
    files_in(repo, "data")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_sound_repository_has_nothing_to_repair_and_suspects_are_read_not_believed() {
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(500_000, 1))),
        &meta("db/main.pgdump", &["drydock"]),
    )
    .unwrap();
    let pack = name_of(&largest_pack(&repo));
    // A suspect that hashes right (a wrong report) is no damage.
    let damage = repo.find_damage(&[pack[..8].to_string()], true).unwrap();
    assert!(damage.is_empty(), "{damage:?}");
}

#[test]
fn a_flipped_pack_is_removed_and_the_next_backup_uploads_its_data_again() {
    let (_dir, repo) = new_repo();
    let data = random_bytes(800_000, 2);
    let first = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &meta("db/main.pgdump", &["drydock"]),
        )
        .unwrap();
    let pack = largest_pack(&repo);
    flip_middle_byte(&pack);
    let name = name_of(&pack);

    // Only a read finds a flipped bit: without the suspect there is nothing to see.
    assert!(repo.find_damage(&[], false).unwrap().is_empty());
    let damage = repo
        .find_damage(std::slice::from_ref(&name), false)
        .unwrap();
    assert_eq!(damage.damaged.len(), 1, "{damage:?}");
    assert_eq!(damage.damaged[0].kind, "pack");
    assert_eq!(damage.damaged[0].id, name);
    assert!(
        damage.damaged[0].why.contains("no longer hash"),
        "{damage:?}"
    );

    repo.repair(&damage).unwrap();
    assert!(!pack.exists());
    assert_eq!(
        repo.incomplete(std::slice::from_ref(&first.id)).unwrap(),
        vec![first.id.clone()]
    );
    // The same data again: deduplication no longer trusts the lost blobs.
    let second = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &meta("db/main.pgdump", &["drydock"]),
        )
        .unwrap();
    assert!(repo
        .incomplete(&[first.id.clone(), second.id.clone()])
        .unwrap()
        .is_empty());
    let report = repo.check(true).unwrap();
    assert!(report.ok, "{report:?}");
    let mut back = Vec::new();
    let (_, sha) = repo.dump_stream(&first.id, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(Some(sha), first.sha256);
}

#[test]
fn a_deleted_pack_and_a_damaged_snapshot_file_are_found_without_any_suspect() {
    let (_dir, repo) = new_repo();
    repo.backup_stream(
        Box::new(std::io::Cursor::new(random_bytes(300_000, 3))),
        &meta("db/a.pgdump", &["drydock"]),
    )
    .unwrap();
    let pack = largest_pack(&repo);
    std::fs::remove_file(&pack).unwrap();
    let snapshot = files_in(&repo, "snapshots").pop().unwrap();
    flip_middle_byte(&snapshot);

    let damage = repo.find_damage(&[], false).unwrap();
    assert_eq!(damage.lost_packs, vec![name_of(&pack)], "{damage:?}");
    assert_eq!(damage.damaged.len(), 1, "{damage:?}");
    assert_eq!(damage.damaged[0].kind, "snapshot");
    assert_eq!(damage.damaged[0].id, name_of(&snapshot));
    repo.repair(&damage).unwrap();
    assert!(repo.find_damage(&[], true).unwrap().is_empty());
    let report = repo.check(false).unwrap();
    assert!(
        report.ok,
        "the index no longer lists the lost pack: {report:?}"
    );
}

#[test]
fn a_copy_fills_in_what_a_repair_removed_and_keeps_its_snapshot_ids() {
    let (_a, source) = new_repo();
    let (_b, dest) = new_repo();
    let data = random_bytes(600_000, 4);
    let stored = source
        .backup_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &meta("db/main.pgdump", &["drydock", "backup:1"]),
        )
        .unwrap();
    let copied = source
        .copy_to(&dest, std::slice::from_ref(&stored.id))
        .unwrap();
    let dest_id = copied[0].dest_id.clone();
    let pack = largest_pack(&dest);
    std::fs::remove_file(&pack).unwrap();
    let damage = dest.find_damage(&[], false).unwrap();
    dest.repair(&damage).unwrap();
    assert_eq!(
        dest.incomplete(std::slice::from_ref(&dest_id)).unwrap(),
        vec![dest_id.clone()]
    );

    let filled = dest.fill_in_from(&source).unwrap();
    assert_eq!(filled, vec![dest_id.clone()]);
    assert!(dest
        .incomplete(std::slice::from_ref(&dest_id))
        .unwrap()
        .is_empty());
    let ids: Vec<String> = dest
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        vec![dest_id.clone()],
        "no twin snapshot is left behind"
    );
    let mut back = Vec::new();
    dest.dump_stream(&dest_id, &mut back).unwrap();
    assert_eq!(back, data);
    assert!(dest.check(true).unwrap().ok);
}

#[test]
fn a_damaged_pack_no_snapshot_uses_is_still_found() {
    let (_dir, repo) = new_repo();
    let kept = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(random_bytes(100_000, 5))),
            &meta("db/kept.pgdump", &["drydock"]),
        )
        .unwrap();
    let packs_before = files_in(&repo, "data");
    let dropped = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(random_bytes(400_000, 6))),
            &meta("db/dropped.pgdump", &["drydock"]),
        )
        .unwrap();
    repo.forget(std::slice::from_ref(&dropped.id)).unwrap();
    let unused = files_in(&repo, "data")
        .into_iter()
        .filter(|p| !packs_before.contains(p))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip_middle_byte(&unused);
    let kept_ids = [kept.id.clone()];
    assert!(
        repo.check(true).unwrap().ok,
        "rustic reads only the packs snapshots use"
    );
    let found = repo.damaged_unused_packs(&kept_ids).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, name_of(&unused));
}
