//! drydock's own state directory: private (0700), holding scratch space for sources.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::EngineError;

/// Creates `state_dir` (0700) if needed and returns a fresh private scratch directory
/// inside it, removed when the guard drops.
pub fn scratch(state_dir: &Path) -> Result<tempfile::TempDir, EngineError> {
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
    tempfile::Builder::new()
        .prefix("work-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&tmp)
        .map_err(err)
}
