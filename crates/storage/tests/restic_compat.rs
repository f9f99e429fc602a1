//! Backups stay readable without drydock: Debian's restic (0.14) lists,
//! dumps, checks and restores what drydock wrote. Skipped if restic is not
//! installed. The password goes through RESTIC_PASSWORD, never argv.

mod common;

use std::{
    os::unix::fs::{symlink, PermissionsExt},
    path::Path,
    process::{Command, Output},
};

use common::{meta, new_repo, random_bytes, sha256_hex, PASSWORD};

const RESTIC: &str = "/usr/bin/restic";

fn restic(repo: &Path, args: &[&str]) -> Output {
    let out = Command::new(RESTIC)
        .arg("-r")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env_remove("RESTIC_PASSWORD_FILE")
        .env_remove("RESTIC_PASSWORD_COMMAND")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn restic_reads_what_drydock_wrote() {
    if !Path::new(RESTIC).exists() {
        eprintln!("skipping: {RESTIC} not installed");
        return;
    }
    let (dir, repo) = new_repo();

    let stream = random_bytes(3 * 1024 * 1024 + 5, 42);
    let s = repo
        .backup_stream(
            Box::new(std::io::Cursor::new(stream.clone())),
            &meta(
                "db/main.pgdump",
                &[
                    "drydock",
                    "backup:20261122-083000-ab12",
                    "service:db",
                    "kind:postgres",
                ],
            ),
        )
        .unwrap();

    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("uploads/2026")).unwrap();
    std::fs::write(src.join("app.db"), random_bytes(700_000, 43)).unwrap();
    std::fs::write(src.join("uploads/2026/photo.jpg"), random_bytes(90_000, 44)).unwrap();
    std::fs::write(src.join("-dash name.txt"), b"spaces and dash").unwrap();
    std::fs::write(src.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    symlink("app.db", src.join("current")).unwrap();
    let (t, entries) = repo
        .backup_tree(
            &src,
            &[],
            &meta("", &["drydock", "service:files", "kind:files"]),
        )
        .unwrap();

    // snapshots --json lists both, with our tags and full ids.
    let out = restic(repo.local_path().unwrap(), &["snapshots", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (id, tag) in [(&s.id, "service:db"), (&t.id, "service:files")] {
        let snap = listed
            .iter()
            .find(|v| v["id"].as_str() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("restic does not list {id}: {listed:?}"));
        let tags: Vec<&str> = snap["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"drydock") && tags.contains(&tag), "{tags:?}");
        assert_eq!(snap["hostname"], "testhost");
    }

    // dump returns exactly the stream.
    let out = restic(
        repo.local_path().unwrap(),
        &["dump", &s.id, "/db/main.pgdump"],
    );
    assert_eq!(out.stdout.len(), stream.len());
    assert_eq!(sha256_hex(&out.stdout), s.sha256.clone().unwrap());

    // check --read-data passes.
    restic(repo.local_path().unwrap(), &["check", "--read-data"]);

    // restore of the tree gives the same files, directly under the target.
    let target = dir.path().join("restic-restore");
    restic(
        repo.local_path().unwrap(),
        &["restore", &t.id, "--target", target.to_str().unwrap()],
    );
    for e in &entries {
        let p = target.join(&e.path);
        let md = std::fs::symlink_metadata(&p)
            .unwrap_or_else(|_| panic!("restic did not restore {}", e.path.display()));
        match e.kind {
            drydock_storage::EntryKind::File => {
                let data = std::fs::read(&p).unwrap();
                assert_eq!(Some(sha256_hex(&data)), e.sha256, "{}", e.path.display());
                assert_eq!(
                    md.permissions().mode() & 0o7777,
                    e.mode,
                    "{}",
                    e.path.display()
                );
            }
            drydock_storage::EntryKind::Symlink => {
                assert_eq!(Some(std::fs::read_link(&p).unwrap()), e.link_target);
            }
            drydock_storage::EntryKind::Dir => assert!(md.is_dir()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(entries.len(), 7, "{entries:?}");
}
