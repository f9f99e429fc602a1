//! drydock's own state: an embedded SQLite database, `state.db` under `state_dir`,
//! holding what drydock did and found (copy syncs and verifications, health results,
//! drills) so `backups`, `status` and the daemon can answer without redoing the work.
//!
//! The database is private: the directory is 0700 and the file 0600 from the moment
//! they are created (the umask is tightened while creating them, not chmod'ed after).
//! Each feature keeps its tables in its own module, and its schema steps are listed in
//! `MIGRATIONS` (lib.rs); adding a feature adds its module and one line there. The
//! schema is versioned (`PRAGMA user_version`, see the `schema` module): an older
//! database is upgraded at open, one from a newer drydock is refused. The state is a
//! convenience: the repository stays the source of truth for what backups exist.

pub mod backups;
pub mod certify;
pub mod copies;
mod db;
pub mod deployments;
mod error;
pub mod health;
pub mod jobs;
#[cfg(test)]
mod migration_tests;
pub mod notify;
pub mod recovery;
pub mod run_events;
mod schema;
mod step;
pub mod suspects;

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

pub use backups::{BackupSourceRecord, LastGoodBackup};
pub use certify::CertifyStepRecord;
pub use copies::{CopyRecord, CopyState};
pub use db::StateDb;
pub use deployments::{DeploymentRecord, NewDeployment};
pub use error::StateError;
pub use jobs::{JobRun, NewRun, RunOutcome, Trigger};
pub use notify::{NewNotification, OutboxEntry, OutboxStatus, SubjectState};
pub use recovery::{DrillRun, DrilledSourceRecord, LastDrill, PendingRestore, TestDataRecord};
pub use run_events::{EventLevel, RunEventRecord};
pub use step::SchemaStep;

/// The file name inside `state_dir`.
pub const FILE_NAME: &str = "state.db";

/// Every schema step, oldest first: the database's `PRAGMA user_version` is the number
/// of steps it has taken, and [`StateDb::open`] takes the missing ones. A step that
/// shipped is never edited, removed or moved; a new table or column is a new step at the
/// end, in its feature's module.
const MIGRATIONS: &[step::SchemaStep] = &[
    // 1-5: the tables from before the schema was versioned.
    copies::CREATE_TABLES,
    health::CREATE_TABLES,
    recovery::CREATE_TABLES,
    certify::CREATE_TABLES,
    suspects::CREATE_TABLES,
    // 6: notifications of `drydock serve` (outbox, notified states).
    notify::CREATE_TABLES,
    // 7: `drydock serve`'s runs and schedule slots.
    jobs::CREATE_TABLES,
    // 8: what each backup stored per source (metrics, dashboard).
    backups::CREATE_BACKUP_SOURCES,
    // 9: the engine events of each run (the dashboard's run page).
    run_events::CREATE_TABLES,
    // 10: `drydock deploy`'s records.
    deployments::CREATE_TABLES,
    // 11: what each deployment did as it went (kind, holder, report, changes).
    deployments::ADD_PROGRESS,
];

impl StateDb {
    /// Opens (creating when missing) `state_dir/state.db`, and `state_dir` itself (0700),
    /// and brings its schema up to this version's (refusing a database from a newer one).
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
        let mut conn = rusqlite::Connection::open(&path).map_err(|e| StateError::db(&path, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| StateError::db(&path, e))?;
        // WAL lets `status` read while a backup writes; its -wal/-shm files are created
        // by SQLite with the database file's mode.
        use_wal(&conn).map_err(|e| StateError::db(&path, e))?;
        schema::migrate(&mut conn, &path, MIGRATIONS)?;
        Ok(StateDb { conn, path })
    }
}

/// Switches the database to WAL once. Switching takes an exclusive lock and SQLite
/// answers "database is locked" at once (without the busy timeout) when another
/// connection opens the same new database at that moment, as a daemon's parallel jobs
/// do: so the mode is read first (no lock), and the switch retried for a while.
fn use_wal(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
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
