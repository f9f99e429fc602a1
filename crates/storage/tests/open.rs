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

/// The one key file of a new repository derives its key in 32 MiB (scrypt N = 2^15,
/// r = 8) with the work of rustic's parameters (p = 4), is named by the SHA-256 of its
/// bytes like every repository file, is private, and opens with the password only.
#[test]
fn a_new_repository_has_one_key_file_of_drydocks_parameters() {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    let (_dir, repo) = new_repo();
    let keys_dir = repo.local_path().unwrap().join("keys");
    let keys: Vec<_> = std::fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let bytes = std::fs::read(&keys[0]).unwrap();
    assert_eq!(
        keys[0].file_name().unwrap().to_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    let mode = std::fs::metadata(&keys[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
    let file: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(file["kdf"], "scrypt");
    assert_eq!(
        (file["N"].as_u64(), file["r"].as_u64(), file["p"].as_u64()),
        (Some(32768), Some(8), Some(4))
    );
    assert!(!String::from_utf8_lossy(&bytes).contains(PASSWORD));
    Repository::open(repo.local_path().unwrap(), PASSWORD).unwrap();
    let err = Repository::open(repo.local_path().unwrap(), "not the password").unwrap_err();
    assert!(matches!(err, StorageError::WrongPassword { .. }), "{err:?}");
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
