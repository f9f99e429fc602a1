//! drydock's own state directory: private (0700), holding scratch space for sources.

use std::fs::{DirBuilder, File};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::EngineError;

/// A run's private scratch directory `tmp/work-X`, removed when dropped.
///
/// Before the directory exists, the run creates and `flock`s `tmp/work-X.lock`, and it
/// removes that file only after the directory: a directory's lock file is held as long
/// as its run lives (the kernel drops the lock when the run dies, `kill -9` included),
/// so a later run tells a live run's scratch from the leftovers of a killed one (partial
/// dumps) and removes those.
pub struct Scratch {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Scratch directories of older versions have no lock file: past this age they are
/// taken for abandoned.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// Creates `state_dir` (0700) if needed, removes scratch directories that killed runs
/// left behind, and returns a fresh private scratch directory inside it, removed when
/// the guard drops.
pub fn scratch(state_dir: &Path) -> Result<Scratch, EngineError> {
    let err = |cause| EngineError::State {
        path: state_dir.to_path_buf(),
        cause,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(err)?;
    // An existing dir keeps its mode; drydock's state must be private regardless.
    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    let tmp = state_dir.join("tmp");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tmp)
        .map_err(err)?;
    remove_abandoned(&tmp);
    loop {
        let (lock, lock_path) = tempfile::Builder::new()
            .prefix("work-")
            .suffix(".lock")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&tmp)
            .map_err(err)?
            .keep()
            .map_err(|e| err(e.error))?;
        lock.lock().map_err(err)?;
        // Another run's cleanup may have taken the file for abandoned between its
        // creation and our lock: only a lock on the file still at that path counts.
        let still_ours = std::fs::metadata(&lock_path)
            .ok()
            .zip(lock.metadata().ok())
            .is_some_and(|(at_path, held)| {
                at_path.ino() == held.ino() && at_path.dev() == held.dev()
            });
        if !still_ours {
            continue;
        }
        let dir = lock_path.with_extension("");
        DirBuilder::new().mode(0o700).create(&dir).map_err(err)?;
        return Ok(Scratch {
            dir,
            lock_path,
            _lock: lock,
        });
    }
}

/// Removes the scratch directories under `tmp` whose lock file nobody holds.
fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("work-") {
            continue;
        }
        let path = entry.path();
        let abandoned = if let Some(dir) = name.strip_suffix(".lock") {
            // Held while we remove: the directory, then the lock file, like its owner.
            match File::open(&path) {
                Ok(lock) if lock.try_lock().is_ok() => {
                    remove(&tmp.join(dir));
                    remove(&path);
                }
                _ => {}
            }
            continue;
        } else {
            !tmp.join(format!("{name}.lock")).exists()
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > UNLOCKED_GRACE)
        };
        if abandoned {
            remove(&path);
        }
    }
}

fn remove(path: &Path) {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!(
            "could not remove the scratch space {} of an interrupted run: {e}",
            path.display()
        ),
        _ => {}
    }
}
