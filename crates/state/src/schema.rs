//! The versioned schema: `PRAGMA user_version` counts the schema steps a database has
//! taken, and opening it takes the missing ones, in order, all in one transaction (a
//! step that fails leaves the database as it was, to be retried by the next drydock
//! that opens it). A database that has taken more steps than this drydock knows was
//! written by a newer drydock: it is refused rather than read (or written) with a
//! schema this version does not understand.
//!
//! Hand-written rather than with `rusqlite_migration`: that crate reads the version
//! before it opens its transaction, so two drydock processes opening an old database at
//! once (a scheduled backup while `status` runs) could both take the same steps. Here
//! the version is read inside an IMMEDIATE transaction, which holds the write lock:
//! the second process waits (busy timeout), then finds nothing left to do.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StateError;
use crate::step::SchemaStep;

/// Brings the database at `path` up to `steps.len()`: takes the steps it lacks, or
/// refuses it when it has taken more than `steps` holds.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    steps: &'static [SchemaStep],
) -> Result<(), StateError> {
    let known = i64::try_from(steps.len()).expect("fewer schema steps than i64::MAX");
    // Cheap check first, without the write lock: an up-to-date database (every open
    // but the first after an upgrade) must not serialise readers behind writers.
    let found = user_version(conn).map_err(|e| StateError::db(path, e))?;
    if found == known {
        return Ok(());
    }
    if found > known || found < 0 {
        return Err(StateError::newer_schema(path, found, known));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StateError::db(path, e))?;
    // Read again under the lock: another process may have upgraded it meanwhile.
    let found = user_version(&tx).map_err(|e| StateError::db(path, e))?;
    if found > known || found < 0 {
        return Err(StateError::newer_schema(path, found, known));
    }
    // `found` is within 0..known here.
    let taken = usize::try_from(found).unwrap_or(0);
    for (index, step) in steps.iter().enumerate().skip(taken) {
        tx.execute_batch(step.sql)
            .map_err(|e| StateError::migration(path, found, index + 1, step, e))?;
    }
    tx.pragma_update(None, "user_version", known)
        .map_err(|e| StateError::db(path, e))?;
    // Dropping `tx` on any error above rolls every step back.
    tx.commit().map_err(|e| StateError::db(path, e))
}

/// The number of steps the database has taken (0 for a new one, and for one made
/// before the schema was versioned; negative only if another program set it).
pub(crate) fn user_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}
