//! drydock's own state directory: private (0700), holding scratch space for sources.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::EngineError;

/// A run's private scratch directory, removed when dropped. While it exists, the run
/// holds a `flock` on its `.owner` file, so a later run can tell a live run's scratch
/// from the leftovers of one that was killed (`kill -9`, power loss) and remove those.
pub struct Scratch {
    dir: tempfile::TempDir,
    _owner: File,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A scratch directory without an owner file is a run's that died before writing it, or
/// is still being set up: only past this age is it taken for abandoned.
const UNOWNED_GRACE: Duration = Duration::from_secs(600);

/// Creates `state_dir` (0700) if needed, removes scratch directories that runs killed
/// before they could clean up left behind (they may hold partial dumps), and returns a
/// fresh private scratch directory inside it, removed when the guard drops.
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
    let dir = tempfile::Builder::new()
        .prefix("work-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&tmp)
        .map_err(err)?;
    let owner = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.path().join(".owner"))
        .map_err(err)?;
    owner.lock().map_err(err)?;
    Ok(Scratch { dir, _owner: owner })
}

/// Removes the `work-*` directories under `tmp` whose owner lock nobody holds.
fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("work-") {
            continue;
        }
        let path = entry.path();
        let abandoned = match File::open(path.join(".owner")) {
            // Held by a live run (here or in another PID namespace) or not.
            Ok(owner) => owner.try_lock().is_ok(),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNOWNED_GRACE),
        };
        if abandoned {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(
                    "could not remove the scratch space {} of an interrupted run: {e}",
                    path.display()
                );
            }
        }
    }
}
