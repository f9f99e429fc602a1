//! The state crate's error: names the database file, what drydock was doing, and what
//! the operator can do.

use std::path::{Path, PathBuf};

use crate::step::SchemaStep;

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
    /// The file system of the state directory is full: the database is fine, it just
    /// cannot grow.
    #[error("state database {}: no space left on the file system of the state directory ({free} free; {cause}); the database is not damaged: free space there (or move [stack].state_dir to a file system with room) and run it again; the repository is unaffected", path.display())]
    Full {
        path: PathBuf,
        free: String,
        cause: rusqlite::Error,
    },
    /// The database has taken more schema steps than this drydock knows: a newer
    /// drydock wrote it (or another program set its `user_version`).
    #[error("state database {}: its schema is at version {found}, but this drydock knows versions up to {known}: it was written by a newer drydock; run that newer drydock (or a newer build of this one), or move the file away to start a new history (the repository keeps every backup)", path.display())]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// A schema step failed; the transaction rolled every step of this open back.
    #[error("state database {}: upgrading its schema from version {from} failed at step {step} ({}: {}): {cause}; the database was left as it was (at version {from}); free space or fix the file's permissions and run it again, or move the file away to start a new history (the repository keeps every backup)", path.display(), failed.feature, failed.what)]
    Migration {
        path: PathBuf,
        from: i64,
        step: usize,
        /// The failing step (`feature` and `what` are shown).
        failed: &'static SchemaStep,
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
        if let Some(free) = full_file_system(path, &cause) {
            return StateError::Full {
                path: path.to_path_buf(),
                free,
                cause,
            };
        }
        StateError::Database {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub(crate) fn newer_schema(path: &Path, found: i64, known: i64) -> Self {
        StateError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        }
    }

    pub(crate) fn migration(
        path: &Path,
        from: i64,
        step: usize,
        failed: &'static SchemaStep,
        cause: rusqlite::Error,
    ) -> Self {
        if let Some(free) = full_file_system(path, &cause) {
            return StateError::Full {
                path: path.to_path_buf(),
                free,
                cause,
            };
        }
        StateError::Migration {
            path: path.to_path_buf(),
            from,
            step,
            failed,
            cause,
        }
    }
}

/// Below this much free space, an I/O error of SQLite is taken for a full disk: a
/// write needs a few pages plus the journal.
const NEARLY_FULL: u64 = 256 * 1024;

/// The free space (e.g. `12 KiB`) when `cause` is SQLite failing for lack of space:
/// SQLITE_FULL, or an I/O error (ENOSPC mid-write or mid-journal surfaces as one) while
/// the file system of `path` is (nearly) full.
fn full_file_system(path: &Path, cause: &rusqlite::Error) -> Option<String> {
    use rusqlite::ErrorCode;
    let rusqlite::Error::SqliteFailure(e, _) = cause else {
        return None;
    };
    if !matches!(e.code, ErrorCode::DiskFull | ErrorCode::SystemIoFailure) {
        return None;
    }
    let dir = path.parent().unwrap_or(path);
    let free = nix::sys::statvfs::statvfs(dir)
        .ok()
        .map(|st| st.blocks_available().saturating_mul(st.fragment_size()));
    match (e.code, free) {
        (ErrorCode::DiskFull, free) => Some(free.map_or_else(|| "unknown".into(), kib)),
        (_, Some(free)) if free < NEARLY_FULL => Some(kib(free)),
        _ => None,
    }
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}
