//! The repository lock: contention, release on death, restic locks.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{new_repo, PASSWORD};
use drydock_storage::{LockMode, Repository, StorageError};

const HOLD_ENV: &str = "DRYDOCK_TEST_HOLD_LOCK_REPO";

/// Not a test of its own: when re-executed by `lock_of_a_killed_process_is_released`
/// with HOLD_ENV set, it takes the lock and sleeps until killed.
#[test]
fn hold_lock_helper() {
    let Ok(path) = std::env::var(HOLD_ENV) else {
        return;
    };
    let repo = Repository::open(std::path::Path::new(&path), PASSWORD).unwrap();
    let _lock = repo.lock("helper backup").unwrap();
    println!("LOCKED");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_held_lock_names_its_holder() {
    let (_dir, repo) = new_repo();
    let other = Repository::open(repo.local_path().unwrap(), PASSWORD).unwrap();
    let held = repo.lock("backup").unwrap();

    let started = Instant::now();
    let err = other
        .lock_with_timeout("restore", Duration::from_millis(500))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(450));
    match &err {
        StorageError::Locked { holder, .. } => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            assert!(holder.contains("backup"), "{holder}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(err.to_string().contains("locked by"), "{err}");

    drop(held);
    other
        .lock_with_timeout("restore", Duration::from_millis(500))
        .unwrap();
}

#[test]
fn a_waiter_gets_the_lock_when_it_is_released() {
    let (_dir, repo) = new_repo();
    let other = Repository::open(repo.local_path().unwrap(), PASSWORD).unwrap();
    let held = repo.lock("backup").unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(held);
    });
    let started = Instant::now();
    other
        .lock_with_timeout("prune", Duration::from_secs(10))
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    releaser.join().unwrap();
}

#[test]
fn lock_of_a_killed_process_is_released() {
    let (_dir, repo) = new_repo();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_lock_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, repo.local_path().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("helper ended before locking").unwrap();
        if line.contains("LOCKED") {
            break;
        }
    }

    let err = repo
        .lock_with_timeout("backup", Duration::from_millis(300))
        .unwrap_err();
    match &err {
        StorageError::Locked { holder, .. } => {
            assert!(holder.contains(&child.id().to_string()), "{holder}");
            assert!(holder.contains("helper backup"), "{holder}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }

    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    repo.lock_with_timeout("backup", Duration::from_secs(5))
        .expect("the kernel releases the lock of a killed process");
}

/// A real restic process holding its lock: `restic backup --stdin` waits for its
/// input with the repository locked.
fn restic_holding_a_lock(repo: &std::path::Path) -> std::process::Child {
    let child = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(["backup", "--stdin", "--stdin-filename", "held.txt"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.join("../restic-cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run restic");
    let locks = repo.join("locks");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&locks).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "restic took no lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_live_restic_lock_is_waited_for_and_a_dead_ones_removed() {
    let (_dir, repo) = new_repo();
    let path = repo.local_path().unwrap().to_path_buf();
    let mut restic = restic_holding_a_lock(&path);

    // Shared work may run beside restic's backup (both only add data) ...
    let shared = repo
        .lock_with_timeout("backup", Duration::from_millis(300))
        .unwrap();
    drop(shared);
    // ... deleting work may not: it waits, then names restic's process.
    let err = repo
        .lock_with("prune", LockMode::Exclusive, Duration::from_millis(600))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
    assert!(msg.contains(&format!("pid {}", restic.id())), "{msg}");
    assert!(msg.contains("shared"), "{msg}");

    // restic killed -9 leaves its lock behind: drydock sees the process is gone,
    // removes the lock and says so.
    restic.kill().unwrap();
    restic.wait().unwrap();
    let lock = repo
        .lock_with("prune", LockMode::Exclusive, Duration::from_secs(5))
        .unwrap();
    let removed = lock.removed_stale().join("\n");
    assert!(removed.contains("no longer runs"), "{removed}");
    assert!(
        removed.contains(&format!("pid {}", restic.id())),
        "{removed}"
    );
}

#[test]
fn restic_sees_drydocks_lock() {
    let (_dir, repo) = new_repo();
    let path = repo.local_path().unwrap().to_path_buf();
    let _lock = repo
        .lock_with("prune", LockMode::Exclusive, Duration::from_secs(5))
        .unwrap();
    let out = Command::new("restic")
        .arg("-r")
        .arg(&path)
        .args(["list", "locks", "--no-lock"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", path.join("../restic-cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    // restic refuses to prune while drydock holds an exclusive lock.
    let out = Command::new("restic")
        .arg("-r")
        .arg(&path)
        .args(["prune"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", path.join("../restic-cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked"), "{stderr}");
}

#[test]
fn an_unreadable_lock_file_blocks_until_it_goes() {
    let (_dir, repo) = new_repo();
    let lock_file = repo.local_path().unwrap().join("locks").join("e5f6a7b8");
    std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
    std::fs::write(&lock_file, b"{}").unwrap();
    let err = repo
        .lock_with_timeout("backup", Duration::from_millis(300))
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        std::fs::remove_file(lock_file).unwrap();
    });
    repo.lock_with_timeout("backup", Duration::from_secs(10))
        .unwrap();
    remover.join().unwrap();
}

/// A tmpfs of `kib` KiB mounted at `at`, unmounted on drop; `None` where mounting is
/// not allowed (not root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system at `dir` to its last byte.
fn fill(dir: &std::path::Path, name: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    let block = vec![0x5au8; 4096];
    while f.write_all(&block).is_ok() {}
    // Smaller writes take what is left of the last page.
    while f.write_all(&[1]).is_ok() {}
}

#[test]
fn a_reader_on_a_full_disk_goes_on_without_a_lock_but_never_past_an_exclusive_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = Tmpfs::mount(&dir.path().join("fs"), 4096) else {
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = dir.path().join("fs/repo");
    let repo = Repository::init(&path, PASSWORD).unwrap();
    let pruner = Repository::open(&path, PASSWORD).unwrap();
    // A lock taken (and released) once, so its file exists, as on any used repository.
    drop(repo.lock("backup").unwrap());
    let exclusive = pruner
        .lock_with("prune", LockMode::Exclusive, Duration::from_secs(5))
        .unwrap();
    fill(&dir.path().join("fs"), "filler");

    // A live exclusive lock still stops a reader.
    let err = repo
        .lock_reading_with_timeout("verify", Duration::from_millis(500))
        .unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
    drop(exclusive);
    // Removing its lock file gave back a page: take it again.
    fill(&dir.path().join("fs"), "filler2");

    // Without one, the reader goes on, saying why it holds no lock.
    let lock = repo
        .lock_reading_with_timeout("verify", Duration::from_secs(5))
        .unwrap();
    let why = lock
        .unwritten()
        .expect("no lock could be written")
        .to_string();
    assert!(why.to_lowercase().contains("no space left"), "{why}");
    assert!(why.contains(&path.display().to_string()), "{why}");
    assert!(
        std::fs::read_dir(path.join("locks")).unwrap().count() == 0,
        "a lock file was written"
    );
    drop(lock);
    // Work that writes still needs its lock, and says why it cannot have one.
    let err = repo
        .lock_with_timeout("backup", Duration::from_secs(2))
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("no space left"),
        "{err}"
    );
}
