//! The schema's versioning, proven on real database files: a database made before the
//! schema was versioned upgrades with its data intact, one from a newer drydock is
//! refused untouched, a failing step leaves the database as it was, and several
//! processes opening an old database at once all succeed.

use std::path::Path;

use rusqlite::Connection;

use crate::schema;
use crate::step::SchemaStep;
use crate::{StateDb, StateError, FILE_NAME, MIGRATIONS};

/// The DDL exactly as drydock ran it before the schema was versioned.
const PRE_VERSIONING_SCHEMA: &str = include_str!("../tests/fixtures/pre_versioning_schema.sql");

/// Makes `state_dir/state.db` as drydock did before versioning: its tables (user_version
/// left at 0), in WAL mode, with one row in several features' tables.
fn pre_versioning_database(state_dir: &Path) {
    std::fs::create_dir_all(state_dir).unwrap();
    let conn = Connection::open(state_dir.join(FILE_NAME)).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(PRE_VERSIONING_SCHEMA).unwrap();
    conn.execute_batch(
        "INSERT INTO copy_status (copy, backup_id, state, verified_at, updated_at, detail)
         VALUES ('offsite', 'b-1', 'verified', '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z', NULL);
         INSERT INTO suspect_files (copy, kind, file_id, reason, found_at)
         VALUES ('offsite', 'pack', 'abc123', 'hash mismatch', '2026-01-02T03:04:05Z');
         INSERT INTO pending_restores (service, backup_id, since, reason)
         VALUES ('db', 'b-1', '2026-01-02T03:04:05Z', 'interrupted');",
    )
    .unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), 0);
}

fn user_version(state_dir: &Path) -> i64 {
    let conn = Connection::open(state_dir.join(FILE_NAME)).unwrap();
    schema::user_version(&conn).unwrap()
}

fn tables(state_dir: &Path) -> Vec<String> {
    let conn = Connection::open(state_dir.join(FILE_NAME)).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The steps that make the pre-versioning schema (later steps add their own tables).
const PRE_VERSIONING_STEPS: usize = 5;

fn known() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap()
}

#[test]
fn the_steps_build_the_pre_versioning_schema_from_nothing() {
    // The first steps are the pre-versioning DDL: they alone build its tables, and a
    // new database and an upgraded one end with the same tables.
    let dir = tempfile::tempdir().unwrap();
    let (new, old, first) = (
        dir.path().join("new"),
        dir.path().join("old"),
        dir.path().join("first"),
    );
    std::fs::create_dir_all(&first).unwrap();
    let mut conn = Connection::open(first.join(FILE_NAME)).unwrap();
    schema::migrate(&mut conn, &first, &MIGRATIONS[..PRE_VERSIONING_STEPS]).unwrap();
    drop(conn);
    StateDb::open(&new).unwrap();
    pre_versioning_database(&old);
    assert_eq!(tables(&first), tables(&old));
    StateDb::open(&old).unwrap();
    assert_eq!(tables(&new), tables(&old));
    // And all the steps make a database of this version.
    let all = dir.path().join("all");
    StateDb::open(&all).unwrap();
    assert_eq!(user_version(&all), known());
}

/// The tables of a database made by this version from nothing.
fn current_tables() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    StateDb::open(dir.path()).unwrap();
    tables(dir.path())
}

#[test]
fn pre_versioning_database_upgrades_with_its_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    pre_versioning_database(&state);
    let before = tables(&state);

    let db = StateDb::open(&state).unwrap();
    assert_eq!(user_version(&state), known());
    let after = tables(&state);
    assert!(
        before.iter().all(|t| after.contains(t)),
        "{before:?} -> {after:?}"
    );
    assert_eq!(after, current_tables());
    let copies = db.copy_records("offsite").unwrap();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies["b-1"].state, crate::CopyState::Verified);
    assert_eq!(db.suspects("offsite", "pack").unwrap(), vec!["abc123"]);
    let pending = db.pending_restores().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].reason, "interrupted");
    // And it takes new records, and reopens without further steps.
    db.record_suspect("offsite", "pack", "def456", "short read")
        .unwrap();
    drop(db);
    let db = StateDb::open(&state).unwrap();
    assert_eq!(db.suspects("offsite", "pack").unwrap().len(), 2);
}

#[test]
fn database_from_a_newer_drydock_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(StateDb::open(&state).unwrap());
    let newer = known() + 1;
    Connection::open(state.join(FILE_NAME))
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();

    let err = StateDb::open(&state).unwrap_err();
    assert!(
        matches!(err, StateError::NewerSchema { found, known: k, .. } if found == newer && k == known()),
        "{err:?}"
    );
    let text = err.to_string();
    for said in [
        state.join(FILE_NAME).display().to_string(),
        format!("version {newer}"),
        format!("up to {}", known()),
        "newer drydock".into(),
        "move the file away".into(),
    ] {
        assert!(text.contains(&said), "{said:?} missing from: {text}");
    }
    assert_eq!(user_version(&state), newer);
}

#[test]
fn failed_step_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    pre_versioning_database(&state);
    let before = tables(&state);
    let mut steps = MIGRATIONS.to_vec();
    steps.push(SchemaStep {
        feature: "deployments",
        what: "create the deployments table",
        // The table is created, then the batch fails: the table must not stay.
        sql: "CREATE TABLE deployments (id INTEGER PRIMARY KEY);
              INSERT INTO no_such_table VALUES (1);",
    });

    let steps: &'static [SchemaStep] = steps.leak();
    let path = state.join(FILE_NAME);
    let mut conn = Connection::open(&path).unwrap();
    let err = schema::migrate(&mut conn, &path, steps).unwrap_err();
    drop(conn);
    assert!(
        matches!(err, StateError::Migration { from: 0, step, failed, .. } if step == steps.len() && failed.feature == "deployments"),
        "{err:?}"
    );
    let text = err.to_string();
    for said in [
        path.display().to_string(),
        "no_such_table".into(),
        "deployments: create the deployments table".into(),
        "left as it was".into(),
    ] {
        assert!(text.contains(&said), "{said:?} missing from: {text}");
    }
    // Not even the steps before the failing one were kept: one transaction.
    assert_eq!(user_version(&state), 0);
    assert_eq!(tables(&state), before);
    let db = StateDb::open(&state).unwrap();
    assert_eq!(db.copy_records("offsite").unwrap().len(), 1);
}

#[test]
fn processes_opening_an_old_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    pre_versioning_database(&state);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let state = state.clone();
            std::thread::spawn(move || StateDb::open(&state).map(drop))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    assert_eq!(user_version(&state), known());
}
