//! drydock's own state: an embedded SQLite database, `state.db` under `state_dir`,
//! holding what drydock did and found (copy syncs and verifications, health results,
//! drills) so `backups`, `status` and the daemon can answer without redoing the work.
//!
//! The database is private: the directory is 0700 and the file 0600 from the moment
//! they are created (the umask is tightened while creating them, not chmod'ed after).
//! Each feature keeps its tables in its own module with a `SCHEMA` (idempotent
//! `CREATE ... IF NOT EXISTS` statements) listed in [`SCHEMAS`]; adding a feature adds
//! its module and one line there. The state is a convenience: the repository stays the
//! source of truth for what backups exist.

pub mod certify;
pub mod copies;
mod error;
pub mod health;
pub mod recovery;
pub mod suspects;

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use certify::CertifyStepRecord;
pub use copies::{CopyRecord, CopyState};
pub use error::StateError;
pub use recovery::{DrillRun, DrilledSourceRecord, LastDrill, PendingRestore, TestDataRecord};

/// The file name inside `state_dir`.
pub const FILE_NAME: &str = "state.db";

/// Every feature's schema, applied in order at open.
const SCHEMAS: &[(&str, &str)] = &[
    ("copies", copies::SCHEMA),
    ("health", health::SCHEMA),
    ("recovery", recovery::SCHEMA),
    ("certify", certify::SCHEMA),
    ("suspects", suspects::SCHEMA),
];

/// An open state database.
pub struct StateDb {
    conn: rusqlite::Connection,
    path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

impl StateDb {
    /// Opens (creating when missing) `state_dir/state.db`, and `state_dir` itself (0700).
    pub fn open(state_dir: &Path) -> Result<StateDb, StateError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| StateError::io(state_dir, "creating the state directory", e))?;
        // An existing directory keeps its mode under any umask; state must be private.
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StateError::io(state_dir, "making the state directory private", e))?;
        let path = state_dir.join(FILE_NAME);
        // Create the file 0600 ourselves: SQLite would create it with 0644 & ~umask.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::io(&path, "creating the state database", e))?;
        let conn = rusqlite::Connection::open(&path).map_err(|e| StateError::db(&path, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| StateError::db(&path, e))?;
        // WAL lets `status` read while a backup writes; its -wal/-shm files are created
        // by SQLite with the database file's mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| StateError::db(&path, e))?;
        for (feature, schema) in SCHEMAS {
            conn.execute_batch(schema)
                .map_err(|e| StateError::schema(&path, feature, e))?;
        }
        Ok(StateDb { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the feature modules of this crate.
    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn created_private_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let db = StateDb::open(&state).unwrap();
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(db.path()).unwrap().mode() & 0o777, 0o600);
        drop(db);
        StateDb::open(&state).unwrap();
    }

    #[test]
    fn unwritable_place_is_a_clear_error() {
        let err = StateDb::open(Path::new("/proc/drydock-state")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/proc/drydock-state"), "{text}");
        assert!(text.contains("state_dir"), "{text}");
    }
}
