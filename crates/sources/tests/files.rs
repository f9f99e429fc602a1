//! The directory adapter against real trees, hostile names included.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    assert_holds, ctx, differences_now, entry_names, record, restore_stored, scratch, MemStore,
};
use drydock_domain::config::{FilesSource, SourceKind};
use drydock_domain::Priority;
use drydock_sources::files::Files;
use drydock_sources::{count_unit, DataSource, RestoreMode};

fn source(path: &Path, exclude: &[&str]) -> Files {
    Files::new(FilesSource {
        name: None,
        priority: Priority::High,
        path: path.to_path_buf(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        follow_symlink: false,
    })
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
}

/// Runs `f` on a thread and fails the test if it takes longer than a minute (a FIFO
/// opened by mistake would hang forever).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("hung (a FIFO opened?)")
}

/// A tree with every kind of trouble.
fn hostile_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("plain.txt"), b"hello\n").unwrap();
    std::fs::write(
        root.join("sub/deeper/data.bin"),
        (0..100_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(root.join("new\nline"), b"newline in the name").unwrap();
    std::fs::write(
        root.join(OsStr::from_bytes(b"bad-\xff\xfe-utf8")),
        b"not utf-8",
    )
    .unwrap();
    std::fs::write(root.join("-rf"), b"leading dash").unwrap();
    std::fs::write(root.join("--help"), b"").unwrap();
    std::fs::write(root.join("a".repeat(255)), b"long name").unwrap();
    std::fs::write(root.join("sp ace \"q\" \\ *?"), b"specials").unwrap();
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    symlink("sub", root.join("dir-link")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    mkfifo(&root.join("a-fifo"));
    std::fs::create_dir(root.join("empty-dir")).unwrap();
    std::fs::write(root.join("secret.key"), b"k").unwrap();
    chmod(&root.join("secret.key"), 0o600);
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    chmod(&root.join("run.sh"), 0o755);
    chmod(&root.join("sub"), 0o750);
    chmod(&root.join("sub/deeper"), 0o2775);
}

#[test]
fn round_trip_with_hostile_names_into_empty_and_over_existing() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    hostile_tree(&live);
    let s = scratch();
    let src = source(&live, &[]);
    assert_eq!(src.kind(), SourceKind::Files);
    assert_eq!(src.restore_mode(), RestoreMode::FileLevel);
    assert_eq!(src.location(), format!("files {}", live.display()));
    src.check().unwrap();
    assert!(src.has_data().unwrap());

    // Timed: a FIFO opened by mistake would hang here.
    let (out, store) = within_a_minute({
        let (live, s) = (live.clone(), s.path().to_path_buf());
        move || {
            let store = MemStore::new();
            let out = source(&live, &[]).backup(&store, &ctx(&s)).unwrap();
            (out, store)
        }
    });
    assert_eq!(out.format, "tree");
    assert_eq!(out.counts["special"], 1);
    assert_eq!(out.counts["symlinks"], 5);
    assert_eq!(out.counts["dirs"], 3);
    assert_eq!(out.counts["files"], 10);
    assert!(
        out.fingerprint.parts.contains_key("new\\nline"),
        "{:?}",
        out.fingerprint.parts.keys()
    );
    assert!(out.fingerprint.parts.contains_key("bad-\\xff\\xfe-utf8"));
    assert_eq!(
        src.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
    let rec = record(SourceKind::Files, &out);

    // Into a target that does not exist (parents created).
    let fresh = dir.path().join("restore/here/data");
    let target = source(&fresh, &[]);
    assert!(!target.has_data().unwrap());
    within_a_minute({
        let fetch = store.fetch();
        let rec = rec.clone();
        let fresh = fresh.clone();
        let s = s.path().to_path_buf();
        move || source(&fresh, &[]).restore(&fetch, &rec, &ctx(&s)).unwrap()
    });
    let got = assert_holds(&target, &out.fingerprint, "bytes", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    assert_eq!(mode(&fresh.join("secret.key")), 0o600);
    assert_eq!(mode(&fresh.join("run.sh")), 0o755);
    assert_eq!(mode(&fresh.join("sub")), 0o750);
    assert_eq!(
        std::fs::read_link(fresh.join("loop-a")).unwrap(),
        PathBuf::from("loop-b")
    );
    assert_eq!(
        std::fs::read(fresh.join("new\nline")).unwrap(),
        b"newline in the name"
    );
    let siblings = entry_names(fresh.parent().unwrap());
    assert_eq!(
        siblings,
        vec![std::ffi::OsString::from("data")],
        "work dirs left behind"
    );

    // Over a non-empty target: replaced exactly, the root's mode as backed up.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("stale/dir")).unwrap();
    std::fs::write(other.join("plain.txt"), b"old content").unwrap();
    std::fs::write(other.join("stale/dir/x"), b"x").unwrap();
    chmod(&other, 0o710);
    let target = source(&other, &[]);
    assert!(target.has_data().unwrap());
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert_eq!(
        target.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
    assert!(!other.join("stale").exists());
    assert_eq!(mode(&other), mode(&live));
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        siblings.iter().all(|n| !n.contains("drydock")),
        "{siblings:?}"
    );
}

#[test]
fn a_change_is_named_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    hostile_tree(&live);
    let s = scratch();
    let store = MemStore::new();
    let src = source(&live, &[]);
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    let unit = count_unit(SourceKind::Files);

    std::fs::write(live.join("plain.txt"), b"HELLO\n").unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert_eq!(
        diff,
        vec!["plain.txt: same bytes count (6) but different content".to_string()]
    );

    std::fs::write(live.join("plain.txt"), b"hello\n").unwrap();
    chmod(&live.join("run.sh"), 0o644);
    std::fs::remove_file(live.join("new\nline")).unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert!(
        diff.contains(&"run.sh: same bytes count (10) but different content".to_string()),
        "{diff:?}"
    );
    assert!(
        diff.contains(&"new\\nline: missing (backup has 19 bytes)".to_string()),
        "{diff:?}"
    );
    assert_eq!(diff.len(), 2, "{diff:?}");
}

#[test]
fn excludes_are_respected() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    std::fs::create_dir_all(live.join("cache/deep")).unwrap();
    std::fs::create_dir_all(live.join("app/cache")).unwrap();
    std::fs::create_dir_all(live.join("logs")).unwrap();
    std::fs::write(live.join("keep.txt"), b"keep").unwrap();
    std::fs::write(live.join("cache/deep/blob"), b"cached").unwrap();
    std::fs::write(
        live.join("app/cache/x"),
        b"nested cache, excluded by cache/ too",
    )
    .unwrap();
    std::fs::write(live.join("app/work.tmp"), b"tmp").unwrap();
    std::fs::write(live.join("logs/today.log"), b"log").unwrap();
    std::fs::write(live.join("top-only"), b"excluded").unwrap();
    std::fs::create_dir_all(live.join("app/top-only")).unwrap();
    let ex = ["cache/", "*.tmp", "logs/**", "/top-only"];
    let s = scratch();
    let src = source(&live, &ex);
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    let names: Vec<&String> = out.fingerprint.parts.keys().collect();
    assert_eq!(
        names,
        vec![
            "./ (top directory mtime):expiring",
            "./ (top directory)",
            "app",
            "app/top-only",
            "keep.txt",
            "logs"
        ],
        "{names:?}"
    );
    assert_eq!(
        src.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );

    // Excluded content changing does not change the fingerprint; included does.
    std::fs::write(live.join("cache/deep/blob"), b"other").unwrap();
    std::fs::write(live.join("new.tmp"), b"x").unwrap();
    // (The top directory's mtime moved with new.tmp: an advisory part, no difference.)
    let now = src.inspect(&ctx(s.path())).unwrap().fingerprint;
    assert!(now.differences(&out.fingerprint, "bytes").is_empty());
    std::fs::write(live.join("keep.txt"), b"changed").unwrap();
    assert_ne!(
        src.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );

    // A restored tree (without the excluded parts) inspects equal to the backup.
    let restored = dir.path().join("restored");
    let target = source(&restored, &ex);
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert!(!restored.join("cache").exists());
    assert_eq!(
        target.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
}

#[test]
fn bad_exclude_pattern_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = scratch();
    let store = MemStore::new();
    let err = source(dir.path(), &["a[b"])
        .backup(&store, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a[b") && err.contains("exclude"), "{err}");
    assert!(!store.stored_anything());
}

#[test]
fn missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-there");
    let s = scratch();
    let src = source(&path, &[]);
    let store = MemStore::new();
    let err = src.backup(&store, &ctx(s.path())).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!store.stored_anything());
    assert!(src.check().is_err());
    assert!(src.inspect(&ctx(s.path())).is_err());
    assert!(!src.has_data().unwrap());

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = source(&file, &[])
        .backup(&store, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn failed_fetch_leaves_the_old_tree_in_place() {
    struct Broken;
    impl drydock_sources::Fetch for Broken {
        fn stream_into(
            &self,
            _: &mut dyn std::io::Write,
        ) -> Result<u64, drydock_sources::StoreError> {
            unreachable!()
        }
        fn tree_into(&self, dest: &Path) -> Result<(), drydock_sources::StoreError> {
            std::fs::create_dir(dest).unwrap();
            std::fs::write(dest.join("half"), b"partial").unwrap();
            Err(drydock_sources::StoreError("repository read failed".into()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("precious"), b"keep me").unwrap();
    let s = scratch();
    let src = source(&live, &[]);
    let before = src.inspect(&ctx(s.path())).unwrap();
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    let err = src
        .restore(&Broken, &record(SourceKind::Files, &out), &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("repository read failed"), "{err}");
    assert_eq!(src.inspect(&ctx(s.path())).unwrap(), before);
    let names = entry_names(dir.path());
    assert_eq!(names, vec![std::ffi::OsString::from("data")]);
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn restore_into_a_mount_point_swaps_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m,mode=0751", "drydock-test"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _guard = Mounted(mnt.clone());

    let live = dir.path().join("data");
    hostile_tree(&live);
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live, &[]).backup(&store, &ctx(s.path())).unwrap();

    std::fs::write(mnt.join("old-file"), b"old").unwrap();
    std::fs::create_dir(mnt.join("old-dir")).unwrap();
    let target = source(&mnt, &[]);
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert_holds(&target, &out.fingerprint, "bytes", &ctx(s.path()));
    // The mount point gets the backed-up top directory's mode like any target.
    assert_eq!(mode(&mnt), mode(&live));
    let mountpoint = std::process::Command::new("mountpoint")
        .arg("-q")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mountpoint.success(), "the mount is gone");
}

/// The path a files source points at, from its location (`files PATH`).
fn location_path(src: &dyn DataSource) -> PathBuf {
    PathBuf::from(
        src.location()
            .strip_prefix("files ")
            .expect("files location"),
    )
}

#[test]
fn sandbox_holds_the_backup_and_the_canary_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    std::fs::create_dir(&live).unwrap();
    hostile_tree(&live);
    std::fs::create_dir_all(live.join("cache")).unwrap();
    std::fs::write(live.join("cache/blob"), b"excluded").unwrap();
    // A read-only directory: the sandbox must still be removable.
    std::fs::create_dir_all(live.join("frozen/inner")).unwrap();
    std::fs::write(live.join("frozen/inner/f"), b"x").unwrap();
    chmod(&live.join("frozen/inner"), 0o555);
    chmod(&live.join("frozen"), 0o500);
    let ex = ["cache/"];
    let s = scratch();
    let src = source(&live, &ex);
    assert_eq!(src.read_canary().unwrap(), None);
    src.write_canary("drill-token-1").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-1"));
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    assert!(out.fingerprint.parts.contains_key(".drydock-canary"));
    src.write_canary("drill-token-2").unwrap();

    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    let target = sandbox.target();
    assert_eq!(target.kind(), SourceKind::Files);
    let path = location_path(target);
    assert_eq!(
        sandbox.describe(),
        format!("temporary directory {}", path.display())
    );
    assert_eq!(path.file_name().unwrap(), "data");
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
    let got = assert_holds(target, &out.fingerprint, "bytes", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    assert_eq!(
        target.read_canary().unwrap().as_deref(),
        Some("drill-token-1")
    );
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-2"));
    assert_eq!(mode(&path.join("frozen")), 0o500);
    // The sandbox has the live source's excludes: what they name does not count.
    assert!(!path.join("cache").exists());
    std::fs::create_dir(path.join("cache")).unwrap();
    std::fs::write(path.join("cache/new"), b"ignored").unwrap();
    assert_holds(target, &out.fingerprint, "bytes", &ctx(s.path()));

    drop(sandbox);
    assert!(!sandbox_dir.exists(), "sandbox left behind");
    assert!(entry_names(s.path()).is_empty());
    chmod(&live.join("frozen"), 0o755);
    chmod(&live.join("frozen/inner"), 0o755);
}

#[test]
fn sandbox_of_a_backup_without_canary_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    std::fs::create_dir_all(live.join("sub")).unwrap();
    std::fs::write(live.join("sub/a.txt"), b"a").unwrap();
    let s = scratch();
    let src = source(&live, &[]);
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    src.write_canary("too-late").unwrap();
    let diff = differences_now(&src, &out.fingerprint, "bytes", &ctx(s.path()));
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(diff[0].starts_with(".drydock-canary"), "{diff:?}");

    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    restore_stored(sandbox.target(), &store, &out, s.path()).unwrap();
    assert_holds(sandbox.target(), &out.fingerprint, "bytes", &ctx(s.path()));
    assert_eq!(sandbox.target().read_canary().unwrap(), None);
    let path = location_path(sandbox.target());
    assert!(path.join("sub/a.txt").exists());
    drop(sandbox);
    assert!(!path.exists());
}

#[test]
fn canary_file_is_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("data");
    std::fs::create_dir(&live).unwrap();
    let src = source(&live, &[]);
    src.write_canary("first").unwrap();
    src.write_canary("second").unwrap();
    let canary = live.join(".drydock-canary");
    assert_eq!(std::fs::read(&canary).unwrap(), b"second\n");
    assert_eq!(mode(&canary), 0o644);
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("second"));
    // No temporary files left beside it.
    assert_eq!(entry_names(&live), vec![OsStr::new(".drydock-canary")]);

    // A symlink in its place is replaced, never written through.
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"precious").unwrap();
    std::fs::remove_file(&canary).unwrap();
    symlink(&outside, &canary).unwrap();
    assert!(src.read_canary().is_err(), "a symlinked canary is refused");
    src.write_canary("third").unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&canary).unwrap().is_file());
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("third"));
}

#[test]
fn canary_excluded_by_a_pattern_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), &[".*"]);
    let err = src.write_canary("t").unwrap_err().to_string();
    assert!(
        err.contains(".drydock-canary") && err.contains("exclude"),
        "{err}"
    );
    assert!(entry_names(dir.path()).is_empty());
}

#[test]
fn canary_in_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-there");
    let src = source(&path, &[]);
    let err = src.write_canary("t").unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(src.read_canary().is_err());
    assert!(!path.exists());
}

#[test]
fn test_data_populates_wipes_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("uploads");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("app.txt"), "the app's own file").unwrap();
    common::assert_populate_wipe_restore(&source(&root, &[]));
    assert_eq!(
        std::fs::read_to_string(root.join("app.txt")).unwrap(),
        "the app's own file"
    );
}
