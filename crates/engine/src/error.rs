//! The engine's error type: each variant names the thing, the cause and the fix.

use std::path::PathBuf;

use drydock_domain::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("repository {location}: {cause}")]
    Storage {
        location: String,
        cause: drydock_storage::StorageError,
    },
    /// A remote copy could not be opened or used; the cause names the remote location.
    #[error("copy `{copy}`: {cause}")]
    Copy {
        copy: String,
        cause: drydock_storage::StorageError,
    },
    #[error("{0}")]
    UnknownCopy(String),
    #[error(transparent)]
    StateDb(#[from] drydock_state::StateError),
    #[error("no repository at {path}: run `drydock backup` first to create it, or check [repository].path")]
    NoRepository { path: PathBuf },
    #[error("{0}")]
    NoBackup(String),
    /// No copy could be opened at all (wrong password, unreadable): an unusable
    /// repository, not a missing backup.
    #[error("no copy of the repository could be read: {0}")]
    NoUsableCopy(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Runtime(#[from] drydock_runtimes::RuntimeError),
    #[error("state directory {path}: {cause}; check [stack].state_dir and its permissions")]
    State {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The caller cancelled the run (a signal, a daemon's job cancelled); what it
    /// stopped was started again and nothing it did was recorded as good.
    #[error("cancelled ({reason}); what the run stopped was started again and nothing was recorded as good")]
    Cancelled { reason: String },
    /// `deploy` could not tell what changed.
    #[error("change detection in {dir}: {cause}")]
    ChangeDetection { dir: PathBuf, cause: String },
    /// Another deployment or rollback of this stack is running.
    #[error("another deployment holds {path}: {holder}; wait for it to finish (`drydock deployments` shows it), or stop that process")]
    DeployLocked { path: PathBuf, holder: String },
    /// A deployment step failed; what it left is in the deployment's record.
    #[error("{0}")]
    Deploy(String),
    #[error("manifest of backup {id}: {cause}")]
    Manifest { id: String, cause: String },
}
