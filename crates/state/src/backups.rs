//! Per backup and per source, what the backup stored: its consistent point, how long
//! the source took, how many bytes it read and added. The manifest in the repository
//! holds the same; this copy lets the daemon's metrics and dashboard answer "when was
//! each source last backed up, and into which copies" from the state database alone,
//! without opening a repository at every scrape. Joined with `copy_status` (the
//! `copies` module) it gives the newest good backup of each source in each copy.
//!
//! Like every table here it is a convenience: a backup made by an older drydock (before
//! this step) has no rows, and the repository stays the truth of what exists. Data that
//! retention removed from some sources of a backup still in a copy (a manifest's
//! `pruned_at`) is not tracked here; the newest backup of a source is never pruned.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the backup_sources table.
pub(crate) const CREATE_BACKUP_SOURCES: SchemaStep = SchemaStep {
    feature: "backups",
    what: "create the backup_sources table",
    sql: "
CREATE TABLE backup_sources (
    backup_id     TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    at            TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    logical_bytes INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL,
    PRIMARY KEY (backup_id, service, source)
);
CREATE INDEX backup_sources_by_source ON backup_sources (service, source, at_ms);
",
};

/// One source of one backup, as the backup recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupSourceRecord {
    pub backup_id: String,
    pub service: String,
    pub source: String,
    /// `ok`, `failed` or `skipped` (the manifest's `SourceStatus`).
    pub status: String,
    /// The point the data was consistent at (the backup's start when the source gave
    /// none): what ages and RPO are measured from, as `drydock status` does.
    pub at: Timestamp,
    pub duration_ms: u64,
    /// Bytes of the logical stream or tree.
    pub logical_bytes: u64,
    /// Bytes this backup added to the repository after deduplication and compression.
    pub stored_bytes: u64,
}

/// The newest good backup of one source in one copy: stored completely (`ok`) and
/// verified there (`copy_status` says `verified`: read back locally, or synced and
/// checked in a remote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastGoodBackup {
    pub copy: String,
    pub record: BackupSourceRecord,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl StateDb {
    /// Records the sources of one backup (in one transaction; a second call for the
    /// same backup replaces its rows).
    pub fn record_backup_sources(
        &mut self,
        sources: &[BackupSourceRecord],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| StateError::db(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for s in sources {
            tx.execute(
                "INSERT OR REPLACE INTO backup_sources
                    (backup_id, service, source, status, at, at_ms, duration_ms, logical_bytes, stored_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.backup_id,
                    s.service,
                    s.source,
                    s.status,
                    s.at.to_string(),
                    s.at.as_millisecond(),
                    to_i64(s.duration_ms),
                    to_i64(s.logical_bytes),
                    to_i64(s.stored_bytes),
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Per (service, source, copy) ever backed up, the newest good backup there, in
    /// that order. Each pair walks its source's rows newest first (the `by_source`
    /// index) to the first one verified in the copy, usually the first row: a scrape
    /// reads a few rows per source and copy, however long the history.
    pub fn last_good_backups(&self) -> Result<Vec<LastGoodBackup>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH sources AS (SELECT DISTINCT service, source FROM backup_sources),
                      copies AS (SELECT DISTINCT copy FROM copy_status)
                 SELECT k.copy, b.backup_id, b.service, b.source, b.status, b.at,
                        b.at_ms, b.duration_ms, b.logical_bytes, b.stored_bytes
                 FROM sources s CROSS JOIN copies k
                 JOIN backup_sources b ON b.rowid = (
                     SELECT b2.rowid FROM backup_sources b2
                     JOIN copy_status c ON c.copy = k.copy AND c.backup_id = b2.backup_id
                     WHERE b2.service = s.service AND b2.source = s.source
                       AND b2.status = 'ok' AND c.state = 'verified'
                     ORDER BY b2.at_ms DESC LIMIT 1)
                 ORDER BY b.service, b.source, k.copy",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (copy, backup_id, service, source, status, at, duration, logical, stored) =
                row.map_err(err)?;
            // A row this version cannot read is skipped, as in `copy_records`.
            let Ok(at) = at.parse() else { continue };
            out.push(LastGoodBackup {
                copy,
                record: BackupSourceRecord {
                    backup_id,
                    service,
                    source,
                    status,
                    at,
                    duration_ms: to_u64(duration),
                    logical_bytes: to_u64(logical),
                    stored_bytes: to_u64(stored),
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CopyState;

    fn rec(backup: &str, source: &str, status: &str, at: &str) -> BackupSourceRecord {
        BackupSourceRecord {
            backup_id: backup.into(),
            service: "app".into(),
            source: source.into(),
            status: status.into(),
            at: at.parse().unwrap(),
            duration_ms: 1500,
            logical_bytes: 4096,
            stored_bytes: 1024,
        }
    }

    #[test]
    fn newest_good_backup_per_source_and_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        db.record_backup_sources(&[
            rec("b1", "db", "ok", "2026-01-01T00:00:00Z"),
            rec("b1", "files", "ok", "2026-01-01T00:00:00Z"),
        ])
        .unwrap();
        db.record_backup_sources(&[
            rec("b2", "db", "ok", "2026-01-02T00:00:00Z"),
            rec("b2", "files", "failed", "2026-01-02T00:00:00Z"),
        ])
        .unwrap();
        db.record_backup_sources(&[rec("b3", "db", "ok", "2026-01-03T00:00:00Z")])
            .unwrap();
        for b in ["b1", "b2"] {
            db.record_copy("local", b, CopyState::Verified, None)
                .unwrap();
        }
        db.record_copy("local", "b3", CopyState::Corrupt, Some("pack MAC"))
            .unwrap();
        db.record_copy("offsite", "b1", CopyState::Verified, None)
            .unwrap();
        db.record_copy("offsite", "b2", CopyState::Unsynced, Some("HTTP 503"))
            .unwrap();
        let got: Vec<(String, String, String)> = db
            .last_good_backups()
            .unwrap()
            .into_iter()
            .map(|g| (g.record.source, g.copy, g.record.backup_id))
            .collect();
        let want = [
            ("db", "local", "b2"),
            ("db", "offsite", "b1"),
            ("files", "local", "b1"),
            ("files", "offsite", "b1"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(s, c, b)| (s.to_string(), c.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        let first = &db.last_good_backups().unwrap()[0].record;
        assert_eq!(
            first.at,
            "2026-01-02T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!((first.duration_ms, first.stored_bytes), (1500, 1024));
    }
}
