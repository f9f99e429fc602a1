//! The repository lock: contention, release on death, restic locks.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{new_repo, PASSWORD};
use drydock_storage::{Repository, StorageError};

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
    let other = Repository::open(repo.path(), PASSWORD).unwrap();
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
    let other = Repository::open(repo.path(), PASSWORD).unwrap();
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
        .env(HOLD_ENV, repo.path())
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

#[test]
fn a_restic_lock_file_is_refused() {
    let (_dir, repo) = new_repo();
    let locks = repo.path().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(locks.join("a1b2c3d4"), b"{}").unwrap();
    let err = repo
        .lock_with_timeout("backup", Duration::from_millis(300))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::ResticLockPresent { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("locks/a1b2c3d4"), "{msg}");
    assert!(msg.contains("restic -r"), "{msg}");

    // Refusing must not keep our own lock held.
    std::fs::remove_file(locks.join("a1b2c3d4")).unwrap();
    repo.lock_with_timeout("backup", Duration::from_millis(200))
        .unwrap();
}

#[test]
fn a_short_lived_restic_lock_is_waited_for() {
    let (_dir, repo) = new_repo();
    let lock_file = repo.path().join("locks").join("e5f6a7b8");
    std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
    std::fs::write(&lock_file, b"{}").unwrap();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        std::fs::remove_file(lock_file).unwrap();
    });
    repo.lock_with_timeout("backup", Duration::from_secs(10))
        .unwrap();
    remover.join().unwrap();
}
