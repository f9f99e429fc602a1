//! Proving recovery, remembered: every drill's outcome per source (for `status`: the
//! last drill of each source and its age), services whose data a destructive drill
//! wiped and that still wait for their restore (so an interrupted drill is never
//! forgotten), and the test data sets `populate` wrote (so a later restore can be
//! checked against what was written).

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the drill_runs, drill_sources, pending_restores and test_data
/// tables, as they were before the schema was versioned (`IF NOT EXISTS`, so a
/// database made then takes the step as a no-op).
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "recovery",
    what: "create the drill_runs, drill_sources, pending_restores and test_data tables",
    sql: "
CREATE TABLE IF NOT EXISTS drill_runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    exit_code   INTEGER NOT NULL,
    rto_ms      INTEGER,
    rpo_ms      INTEGER,
    report      TEXT
);
CREATE TABLE IF NOT EXISTS drill_sources (
    run_id      INTEGER NOT NULL REFERENCES drill_runs(id) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,
    backup_id   TEXT,
    rto_ms      INTEGER,
    rpo_ms      INTEGER,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS drill_sources_by_source ON drill_sources (service, source);
CREATE TABLE IF NOT EXISTS pending_restores (
    service     TEXT PRIMARY KEY,
    backup_id   TEXT NOT NULL,
    since       TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS test_data (
    service     TEXT NOT NULL,
    source      TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    min_bytes   INTEGER NOT NULL,
    expected    TEXT NOT NULL,
    written_at  TEXT NOT NULL,
    PRIMARY KEY (service, source)
);
",
};

/// One drill, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillRun {
    /// `sandbox` or `destructive`.
    pub kind: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub exit_code: i32,
    pub rto_ms: Option<u64>,
    pub rpo_ms: Option<u64>,
    /// The report's JSON file.
    pub report: Option<String>,
    pub sources: Vec<DrilledSourceRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrilledSourceRecord {
    pub service: String,
    pub source: String,
    /// `passed`, `failed`, `could-not-run`.
    pub status: String,
    pub backup_id: Option<String>,
    pub rto_ms: Option<u64>,
    pub rpo_ms: Option<u64>,
    pub detail: Option<String>,
}

/// The last drill of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastDrill {
    pub service: String,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub finished_at: Timestamp,
    pub backup_id: Option<String>,
    pub rto_ms: Option<u64>,
    pub rpo_ms: Option<u64>,
}

/// A service whose data was wiped and not restored yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRestore {
    pub service: String,
    pub backup_id: String,
    pub since: Timestamp,
    pub reason: String,
}

/// A test data set `populate` wrote into one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestDataRecord {
    pub service: String,
    pub source: String,
    pub seed: u64,
    pub min_bytes: u64,
    /// The expected measures, as JSON (the sources crate's `TestMeasures`).
    pub expected: String,
    pub written_at: Timestamp,
}

fn ts(text: String) -> rusqlite::Result<Timestamp> {
    text.parse().map_err(|e: jiff::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

impl StateDb {
    pub fn record_drill(&mut self, run: &DrillRun) -> Result<i64, StateError> {
        let path = self.path().to_path_buf();
        let err = |e| StateError::db(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO drill_runs (kind, started_at, finished_at, exit_code, rto_ms, rpo_ms, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                run.kind,
                run.started_at.to_string(),
                run.finished_at.to_string(),
                run.exit_code,
                run.rto_ms.map(|n| n as i64),
                run.rpo_ms.map(|n| n as i64),
                run.report
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        for s in &run.sources {
            tx.execute(
                "INSERT INTO drill_sources (run_id, service, source, status, backup_id, rto_ms, rpo_ms, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    s.service,
                    s.source,
                    s.status,
                    s.backup_id,
                    s.rto_ms.map(|n| n as i64),
                    s.rpo_ms.map(|n| n as i64),
                    s.detail
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// The newest drill of every source ever drilled.
    pub fn last_drills(&self) -> Result<Vec<LastDrill>, StateError> {
        self.query_last_drills(
                "SELECT s.service, s.source, r.kind, s.status, r.finished_at, s.backup_id, s.rto_ms, s.rpo_ms
                 FROM drill_sources s JOIN drill_runs r ON r.id = s.run_id
                 WHERE r.id = (SELECT max(s2.run_id) FROM drill_sources s2
                               WHERE s2.service = s.service AND s2.source = s.source)
                 ORDER BY s.service, s.source",
        )
    }

    /// The newest drill of every source that ever passed one (for the metrics: the
    /// last time recovery was proven, whatever the drills after it found).
    pub fn last_passed_drills(&self) -> Result<Vec<LastDrill>, StateError> {
        self.query_last_drills(
                "SELECT s.service, s.source, r.kind, s.status, r.finished_at, s.backup_id, s.rto_ms, s.rpo_ms
                 FROM (SELECT service, source, max(run_id) AS run_id FROM drill_sources
                       WHERE status = 'passed' GROUP BY service, source) m
                 JOIN drill_sources s ON s.run_id = m.run_id AND s.service = m.service
                   AND s.source = m.source
                 JOIN drill_runs r ON r.id = s.run_id
                 ORDER BY s.service, s.source",
        )
    }

    /// The drills `sql` selects, its columns in [`LastDrill`]'s order.
    fn query_last_drills(&self, sql: &str) -> Result<Vec<LastDrill>, StateError> {
        let err = |e| StateError::db(self.path(), e);
        let mut stmt = self.conn().prepare(sql).map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LastDrill {
                    service: r.get(0)?,
                    source: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    finished_at: ts(r.get(4)?)?,
                    backup_id: r.get(5)?,
                    rto_ms: opt_u64(r.get(6)?),
                    rpo_ms: opt_u64(r.get(7)?),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Remembers that `service` was wiped and must be restored from `backup_id`. Written
    /// before the wipe, so a drill killed midway leaves the record behind.
    pub fn set_pending_restore(
        &self,
        service: &str,
        backup_id: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO pending_restores (service, backup_id, since, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service) DO UPDATE SET backup_id = excluded.backup_id, since = excluded.since, reason = excluded.reason",
                params![service, backup_id, Timestamp::now().to_string(), reason],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    pub fn clear_pending_restore(&self, service: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM pending_restores WHERE service = ?1", [service])
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    pub fn pending_restores(&self) -> Result<Vec<PendingRestore>, StateError> {
        let err = |e| StateError::db(self.path(), e);
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT service, backup_id, since, reason FROM pending_restores ORDER BY service",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PendingRestore {
                    service: r.get(0)?,
                    backup_id: r.get(1)?,
                    since: ts(r.get(2)?)?,
                    reason: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn record_test_data(&self, rec: &TestDataRecord) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO test_data (service, source, seed, min_bytes, expected, written_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (service, source) DO UPDATE SET seed = excluded.seed, min_bytes = excluded.min_bytes,
                    expected = excluded.expected, written_at = excluded.written_at",
                params![
                    rec.service,
                    rec.source,
                    rec.seed as i64,
                    rec.min_bytes as i64,
                    rec.expected,
                    rec.written_at.to_string()
                ],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    pub fn test_data(
        &self,
        service: &str,
        source: &str,
    ) -> Result<Option<TestDataRecord>, StateError> {
        self.conn()
            .query_row(
                "SELECT service, source, seed, min_bytes, expected, written_at FROM test_data WHERE service = ?1 AND source = ?2",
                [service, source],
                |r| {
                    Ok(TestDataRecord {
                        service: r.get(0)?,
                        source: r.get(1)?,
                        seed: r.get::<_, i64>(2)? as u64,
                        min_bytes: r.get::<_, i64>(3)? as u64,
                        expected: r.get(4)?,
                        written_at: ts(r.get(5)?)?,
                    })
                },
            )
            .optional()
            .map_err(|e| StateError::db(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drills_pending_restores_and_test_data_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        let now = Timestamp::now();
        let source = |status: &str, backup: &str| DrilledSourceRecord {
            service: "db".into(),
            source: "postgres".into(),
            status: status.into(),
            backup_id: Some(backup.into()),
            rto_ms: Some(1200),
            rpo_ms: Some(300),
            detail: None,
        };
        for (status, backup) in [("passed", "b1"), ("failed", "b2")] {
            db.record_drill(&DrillRun {
                kind: "sandbox".into(),
                started_at: now,
                finished_at: now,
                exit_code: 0,
                rto_ms: Some(1200),
                rpo_ms: Some(300),
                report: None,
                sources: vec![source(status, backup)],
            })
            .unwrap();
        }
        let last = db.last_drills().unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].status.as_str(), last[0].backup_id.as_deref()),
            ("failed", Some("b2"))
        );
        let passed = db.last_passed_drills().unwrap();
        assert_eq!(
            (
                passed.len(),
                passed[0].status.as_str(),
                passed[0].backup_id.as_deref()
            ),
            (1, "passed", Some("b1"))
        );

        db.set_pending_restore("db", "b2", "destructive drill interrupted after the wipe")
            .unwrap();
        assert_eq!(db.pending_restores().unwrap()[0].backup_id, "b2");
        db.clear_pending_restore("db").unwrap();
        assert!(db.pending_restores().unwrap().is_empty());

        let rec = TestDataRecord {
            service: "db".into(),
            source: "postgres".into(),
            seed: 42,
            min_bytes: 1 << 20,
            expected: "{}".into(),
            written_at: now,
        };
        db.record_test_data(&rec).unwrap();
        assert_eq!(db.test_data("db", "postgres").unwrap(), Some(rec));
        assert_eq!(db.test_data("db", "other").unwrap(), None);
    }
}
