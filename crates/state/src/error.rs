//! The state crate's error: names the database file, what drydock was doing, and what
//! the operator can do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state {}: {doing} failed: {cause}; check [stack].state_dir (it must be a directory drydock may write)", path.display())]
    Io {
        path: PathBuf,
        doing: &'static str,
        cause: std::io::Error,
    },
    #[error("state database {}: {cause}; if the file is damaged, move it away (drydock starts a new history; the repository keeps every backup)", path.display())]
    Database {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("state database {}: preparing the {feature} tables failed: {cause}; move the file away if it was written by a newer drydock", path.display())]
    Schema {
        path: PathBuf,
        feature: &'static str,
        cause: rusqlite::Error,
    },
}

impl StateError {
    pub(crate) fn io(path: &Path, doing: &'static str, cause: std::io::Error) -> Self {
        StateError::Io {
            path: path.to_path_buf(),
            doing,
            cause,
        }
    }

    pub(crate) fn db(path: &Path, cause: rusqlite::Error) -> Self {
        StateError::Database {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub(crate) fn schema(path: &Path, feature: &'static str, cause: rusqlite::Error) -> Self {
        StateError::Schema {
            path: path.to_path_buf(),
            feature,
            cause,
        }
    }
}
