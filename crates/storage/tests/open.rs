//! Creating and opening repositories, and the errors that tell them apart.

mod common;

use common::{new_repo, PASSWORD};
use drydock_storage::{Repository, StorageError};

#[test]
fn wrong_password_is_reported_as_such() {
    let (_dir, repo) = new_repo();
    let err = Repository::open(repo.local_path().unwrap(), "not the password").unwrap_err();
    assert!(matches!(err, StorageError::WrongPassword { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("wrong password"), "{msg}");
    assert!(msg.contains("[repository].password"), "{msg}");
    assert!(!msg.contains("not the password"), "{msg}");
}

#[test]
fn right_password_opens() {
    let (_dir, repo) = new_repo();
    let again = Repository::open(repo.local_path().unwrap(), PASSWORD).unwrap();
    assert_eq!(again.local_path().unwrap(), repo.local_path().unwrap());
    assert!(again.snapshots().unwrap().is_empty());
}

#[test]
fn a_plain_directory_is_not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let err = Repository::open(dir.path(), PASSWORD).unwrap_err();
    assert!(
        matches!(err, StorageError::NotARepository { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no config file"), "{err}");

    let missing = dir.path().join("missing");
    let err = Repository::open(&missing, PASSWORD).unwrap_err();
    assert!(
        matches!(err, StorageError::NotARepository { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn init_refuses_an_existing_repository_and_a_foreign_directory() {
    let (_dir, repo) = new_repo();
    let err = Repository::init(repo.local_path().unwrap(), PASSWORD).unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyARepository { .. }),
        "{err:?}"
    );

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("important.doc"), b"x").unwrap();
    let err = Repository::init(foreign.path(), PASSWORD).unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput { .. }), "{err:?}");
    assert!(!foreign.path().join("config").exists());
    assert!(!foreign.path().join("data").exists());
}

#[test]
fn open_or_init_creates_then_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let first = Repository::open_or_init(&path, PASSWORD).unwrap();
    assert!(path.join("config").is_file());
    drop(first);
    Repository::open_or_init(&path, PASSWORD).unwrap();
    let err = Repository::open_or_init(&path, "other").unwrap_err();
    assert!(matches!(err, StorageError::WrongPassword { .. }), "{err:?}");
}

#[test]
fn debug_output_never_shows_the_password_or_key() {
    let (_dir, repo) = new_repo();
    let shown = format!("{repo:?} {repo:#?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.to_lowercase().contains("key"), "{shown}");
    assert!(shown.contains("repo"), "{shown}");
}

#[test]
fn handles_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Repository>();
    assert_send_sync::<drydock_storage::RepoLock>();
    assert_send_sync::<StorageError>();
}
