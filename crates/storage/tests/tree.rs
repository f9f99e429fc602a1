//! Tree backups and restores: awkward names, every file type, modes, times,
//! symlink loops, excludes, hashes of what was stored.

mod common;

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    os::unix::{
        ffi::OsStrExt,
        fs::{symlink, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use common::{meta, new_repo, random_bytes, sha256_hex, walk, PASSWORD};
use drydock_storage::{EntryKind, Repository, StorageError};
use nix::sys::{
    stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags},
    time::TimeSpec,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Desc {
    kind: EntryKind,
    perm: u32,
    size: u64,
    mtime: (i64, i64),
    sha256: Option<String>,
    link: Option<PathBuf>,
    rdev: u64,
}

fn kind_of(md: &std::fs::Metadata) -> EntryKind {
    use std::os::unix::fs::FileTypeExt;
    let ft = md.file_type();
    if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() {
        EntryKind::CharDevice
    } else if ft.is_block_device() {
        EntryKind::BlockDevice
    } else {
        EntryKind::File
    }
}

/// Everything below `root` (not root itself), as seen by lstat.
fn describe(root: &Path) -> BTreeMap<PathBuf, Desc> {
    walk(root)
        .into_iter()
        .skip(1)
        .map(|p| {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let kind = kind_of(&md);
            let (size, sha256) = if kind == EntryKind::File {
                let data = std::fs::read(&p).unwrap();
                (data.len() as u64, Some(sha256_hex(&data)))
            } else {
                (0, None)
            };
            let link = (kind == EntryKind::Symlink).then(|| std::fs::read_link(&p).unwrap());
            let desc = Desc {
                kind,
                perm: if kind == EntryKind::Symlink {
                    0
                } else {
                    md.permissions().mode() & 0o7777
                },
                size,
                mtime: (md.mtime(), md.mtime_nsec()),
                sha256,
                link,
                rdev: md.rdev(),
            };
            (p.strip_prefix(root).unwrap().to_path_buf(), desc)
        })
        .collect()
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the awkward tree; returns (paths that must be excluded, whether
/// device nodes could be made).
fn build_source(root: &Path) -> (Vec<PathBuf>, bool) {
    let w = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        set_mode(&p, mode);
    };
    w("plain.txt", b"hello\n", 0o644);
    w("exec.sh", b"#!/bin/sh\necho hi\n", 0o755);
    w("empty", b"", 0o600);
    w("big.bin", &random_bytes(3 * 1024 * 1024 + 17, 11), 0o640);
    w("-leading-dash", b"dash", 0o644);
    w("new\nline", b"newline in name", 0o644);
    w("back\\slash", b"backslash", 0o644);
    w("quote\"d", b"quote", 0o644);
    w("tab\there", b"tab", 0o644);
    w("ünïcödé", b"unicode", 0o644);
    w(&"n".repeat(255), b"long name", 0o644);
    let bad = root.join(OsStr::from_bytes(b"bad\xff\xfename"));
    std::fs::write(&bad, b"invalid utf-8 name").unwrap();
    w("setuid", b"suid", 0o4755);
    std::fs::create_dir(root.join("sticky")).unwrap();
    w("sticky/inside", b"in sticky", 0o644);
    set_mode(&root.join("sticky"), 0o1777);
    w("private/secret", b"secret", 0o600);
    set_mode(&root.join("private"), 0o700);
    w("nested/a/b/c/deep.txt", b"deep", 0o644);
    w("nested/top-only", b"kept: the exclude is anchored", 0o644);
    w("hard1", b"hard linked", 0o644);
    std::fs::hard_link(root.join("hard1"), root.join("hard2")).unwrap();

    symlink("plain.txt", root.join("link_rel")).unwrap();
    symlink("/etc/hostname", root.join("link_abs")).unwrap();
    symlink("no/such/file", root.join("link_dangling")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    symlink("link_self", root.join("link_self")).unwrap();
    symlink(OsStr::from_bytes(b"target\xff"), root.join("link_bad")).unwrap();
    symlink("nested", root.join("dirlink")).unwrap();

    nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let devices = mknod(
        &root.join("chardev"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .is_ok()
        && mknod(
            &root.join("blockdev"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 200),
        )
        .is_ok();

    w("cache/junk.bin", b"excluded", 0o644);
    w("x.tmp", b"excluded", 0o644);
    w("nested/y.tmp", b"excluded", 0o644);
    w("top-only", b"excluded", 0o644);
    let excluded = [
        "cache",
        "cache/junk.bin",
        "x.tmp",
        "nested/y.tmp",
        "top-only",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();

    // Distinct times with nanoseconds, children before their directory.
    let mut all = walk(root);
    all.reverse();
    for (i, p) in all.iter().enumerate() {
        let t = TimeSpec::new(1_600_000_000 + i as i64 * 3_600, 123_456_789 + i as i64);
        utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
    (excluded, devices)
}

#[test]
fn awkward_tree_round_trips_byte_exact() {
    let (dir, repo) = new_repo();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let (excluded, devices) = build_source(&src);
    let mut expected = describe(&src);
    for p in &excluded {
        assert!(expected.remove(p).is_some(), "{}", p.display());
    }

    let excludes = vec![
        "cache/".to_string(),
        "*.tmp".to_string(),
        "!/top-only".to_string(),
    ];
    let (stored, entries) = repo
        .backup_tree(
            &src,
            &excludes,
            &meta("ignored", &["drydock", "kind:files"]),
        )
        .unwrap();
    assert!(stored.sha256.is_none());
    assert_eq!(stored.id.len(), 64);

    // The entry list is exactly what was stored, with hashes of the content.
    let listed: BTreeMap<PathBuf, _> = entries
        .iter()
        .map(|e| (e.path.clone(), e.clone()))
        .collect();
    assert_eq!(listed.len(), entries.len(), "no duplicates");
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let mut file_bytes = 0;
    for (path, want) in &expected {
        let got = &listed[path];
        assert_eq!(got.kind, want.kind, "{}", path.display());
        assert_eq!(got.size, want.size, "{}", path.display());
        assert_eq!(got.sha256, want.sha256, "{}", path.display());
        assert_eq!(got.link_target, want.link, "{}", path.display());
        if want.kind != EntryKind::Symlink {
            assert_eq!(got.mode, want.perm, "{}", path.display());
        }
        file_bytes += want.size;
    }
    assert_eq!(stored.logical_bytes, file_bytes);
    assert!(!listed
        .keys()
        .any(|p| p.starts_with("dirlink") && p != Path::new("dirlink")));
    assert_eq!(listed[Path::new("fifo")].kind, EntryKind::Fifo);
    assert_eq!(listed[Path::new("sock")].kind, EntryKind::Socket);
    if devices {
        assert_eq!(listed[Path::new("chardev")].kind, EntryKind::CharDevice);
        assert_eq!(listed[Path::new("blockdev")].kind, EntryKind::BlockDevice);
    }

    let snaps = repo.snapshots().unwrap();
    assert_eq!(
        snaps[0].paths,
        vec![std::fs::canonicalize(&src).unwrap().display().to_string()]
    );

    // Restore recreates the root's contents directly under dest.
    let dest = dir.path().join("restored");
    repo.restore_tree(&stored.id, &dest).unwrap();
    let restored = describe(&dest);
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, want) in &expected {
        assert_eq!(&restored[path], want, "{}", path.display());
    }
    let h1 = std::fs::metadata(dest.join("hard1")).unwrap().ino();
    let h2 = std::fs::metadata(dest.join("hard2")).unwrap().ino();
    assert_eq!(h1, h2, "hard links stay hard links");

    // A second restore into a non-empty directory is refused, untouched.
    let err = repo.restore_tree(&stored.id, &dest).unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput { .. }), "{err:?}");
}

#[test]
fn an_empty_existing_destination_is_fine() {
    let (dir, repo) = new_repo();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), b"x").unwrap();
    let (stored, entries) = repo.backup_tree(&src, &[], &meta("", &[])).unwrap();
    assert_eq!(entries.len(), 2);
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    repo.restore_tree(&stored.id, &dest).unwrap();
    assert_eq!(std::fs::read(dest.join("sub/f")).unwrap(), b"x");
}

const UNREADABLE_ENV: &str = "DRYDOCK_TEST_UNREADABLE";

/// Runs `unreadable_file_check` in-process, or as user nobody when root
/// (root reads anything).
#[test]
fn an_unreadable_file_fails_the_backup() {
    if !nix::unistd::geteuid().is_root() {
        unreadable_file_check();
        return;
    }
    use std::os::unix::process::CommandExt;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unreadable_file_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNREADABLE_ENV, "1")
        .env("TMPDIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(status.success(), "helper failed: {status}");
}

#[test]
fn unreadable_file_helper() {
    if std::env::var(UNREADABLE_ENV).is_ok() {
        unreadable_file_check();
    }
}

fn unreadable_file_check() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(&dir.path().join("repo"), PASSWORD).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("ok.txt"), b"fine").unwrap();
    std::fs::write(src.join("locked.txt"), b"no access").unwrap();
    set_mode(&src.join("locked.txt"), 0o000);
    let err = repo.backup_tree(&src, &[], &meta("", &[])).unwrap_err();
    assert!(matches!(err, StorageError::ReadFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("locked.txt"), "{err}");
    assert!(repo.snapshots().unwrap().is_empty(), "no snapshot kept");
}

/// Extended attributes come back, on a read-only file too (they are set before its
/// mode), and the owner-only mode of a restored read-only directory does not stop its
/// contents from being written first.
#[test]
fn extended_attributes_and_read_only_entries_come_back() {
    let (dir, repo) = new_repo();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sealed")).unwrap();
    std::fs::write(src.join("tagged.txt"), b"tagged").unwrap();
    std::fs::write(src.join("sealed/read-only.txt"), b"read only").unwrap();
    if xattr::set(src.join("tagged.txt"), "user.drydock.test", b"value \x00 1").is_err() {
        eprintln!("skipped: this filesystem takes no user extended attributes");
        return;
    }
    xattr::set(
        src.join("sealed/read-only.txt"),
        "user.drydock.test",
        b"two",
    )
    .unwrap();
    std::fs::set_permissions(
        src.join("sealed/read-only.txt"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    std::fs::set_permissions(src.join("sealed"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let (stored, _) = repo
        .backup_tree(&src, &[], &meta("ignored", &["drydock", "kind:files"]))
        .unwrap();
    let dest = dir.path().join("restored");
    repo.restore_tree(&stored.id, &dest).unwrap();
    let expected = describe(&src);
    assert_eq!(describe(&dest), expected);
    assert_eq!(
        xattr::get(dest.join("tagged.txt"), "user.drydock.test").unwrap(),
        Some(b"value \x00 1".to_vec())
    );
    assert_eq!(
        xattr::get(dest.join("sealed/read-only.txt"), "user.drydock.test").unwrap(),
        Some(b"two".to_vec())
    );
    for root in [&src, &dest] {
        std::fs::set_permissions(root.join("sealed"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
}

/// Entries are handed on while the backup runs (walk order is not promised), each once,
/// and the restore of a tree with many files in many directories is exact.
#[test]
fn entries_are_handed_on_once_each_and_many_files_restore_exactly() {
    let (dir, repo) = new_repo();
    let src = dir.path().join("src");
    for d in 0..20 {
        std::fs::create_dir_all(src.join(format!("d{d:02}"))).unwrap();
        for f in 0..150 {
            let body = format!("{d}/{f} {}", "x".repeat(f * 7));
            std::fs::write(src.join(format!("d{d:02}/f{f:03}")), body).unwrap();
        }
    }
    let mut seen = Vec::new();
    let stored = repo
        .backup_tree_each(
            &src,
            &[],
            &meta("ignored", &["drydock", "kind:files"]),
            &mut |e| seen.push(e),
        )
        .unwrap();
    let mut paths: Vec<_> = seen.iter().map(|e| e.path.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), seen.len(), "each entry once");
    assert_eq!(seen.len(), 20 + 20 * 150);
    for e in &seen {
        if e.kind == EntryKind::File {
            let bytes = std::fs::read(src.join(&e.path)).unwrap();
            assert_eq!(e.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
            assert_eq!(e.size, bytes.len() as u64);
        }
    }
    let dest = dir.path().join("restored");
    repo.restore_tree(&stored.id, &dest).unwrap();
    assert_eq!(describe(&dest), describe(&src));
}
