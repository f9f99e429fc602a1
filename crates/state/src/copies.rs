//! Per backup and per copy, what drydock last established: synced and verified (when),
//! not synced yet (and why), found damaged, or removed by retention. The copies
//! themselves say what is present; this says what drydock checked and what it failed
//! to do, so `backups` can tell "unsynced" from "missing" and prune can tell which
//! backups are verified.

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the copy_status table, as it was before the schema was versioned
/// (`IF NOT EXISTS`, so a database made then takes the step as a no-op).
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "copies",
    what: "create the copy_status table",
    sql: "
CREATE TABLE IF NOT EXISTS copy_status (
    copy        TEXT NOT NULL,
    backup_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    verified_at TEXT,
    updated_at  TEXT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (copy, backup_id)
);
",
};

/// What drydock last established about one backup in one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyState {
    /// Its data and manifest were read back from the copy and matched.
    Verified,
    /// Copying it there failed; the next run retries.
    Unsynced,
    /// A check found damage in data it needs.
    Corrupt,
    /// Retention removed it from the copy.
    Pruned,
}

impl CopyState {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyState::Verified => "verified",
            CopyState::Unsynced => "unsynced",
            CopyState::Corrupt => "corrupt",
            CopyState::Pruned => "pruned",
        }
    }
}

impl FromStr for CopyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "verified" => CopyState::Verified,
            "unsynced" => CopyState::Unsynced,
            "corrupt" => CopyState::Corrupt,
            "pruned" => CopyState::Pruned,
            other => return Err(format!("unknown copy state `{other}`")),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyRecord {
    pub copy: String,
    pub backup_id: String,
    pub state: CopyState,
    /// The last time it was verified in this copy (kept when a later check fails).
    pub verified_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub detail: Option<String>,
}

impl StateDb {
    /// Records what was established about `backup_id` in `copy` just now.
    pub fn record_copy(
        &self,
        copy: &str,
        backup_id: &str,
        state: CopyState,
        detail: Option<&str>,
    ) -> Result<(), StateError> {
        let now = Timestamp::now().to_string();
        self.conn()
            .execute(
                "INSERT INTO copy_status (copy, backup_id, state, verified_at, updated_at, detail)
                 VALUES (?1, ?2, ?3, CASE WHEN ?3 = 'verified' THEN ?4 END, ?4, ?5)
                 ON CONFLICT (copy, backup_id) DO UPDATE SET
                    state = excluded.state,
                    verified_at = CASE WHEN excluded.state = 'verified'
                                       THEN excluded.updated_at
                                       ELSE copy_status.verified_at END,
                    updated_at = excluded.updated_at,
                    detail = excluded.detail",
                params![copy, backup_id, state.as_str(), now, detail],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// Everything recorded about `copy`, by backup id.
    pub fn copy_records(&self, copy: &str) -> Result<BTreeMap<String, CopyRecord>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT copy, backup_id, state, verified_at, updated_at, detail
                 FROM copy_status WHERE copy = ?1",
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map(params![copy], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| StateError::db(self.path(), e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (copy, backup_id, state, verified_at, updated_at, detail) =
                row.map_err(|e| StateError::db(self.path(), e))?;
            // A row this version cannot read (written by a newer one) is skipped, not
            // fatal: the state is a convenience, the copies are the truth.
            let (Ok(state), Ok(updated_at)) = (state.parse(), updated_at.parse()) else {
                continue;
            };
            out.insert(
                backup_id.clone(),
                CopyRecord {
                    copy,
                    backup_id,
                    state,
                    verified_at: verified_at.and_then(|t| t.parse().ok()),
                    updated_at,
                    detail,
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_time_survives_a_later_failure() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        db.record_copy("offsite", "b1", CopyState::Verified, None)
            .unwrap();
        let verified_at = db.copy_records("offsite").unwrap()["b1"].verified_at;
        assert!(verified_at.is_some());
        db.record_copy("offsite", "b1", CopyState::Corrupt, Some("pack 5b67: MAC"))
            .unwrap();
        db.record_copy("offsite", "b2", CopyState::Unsynced, Some("HTTP 503"))
            .unwrap();
        let records = db.copy_records("offsite").unwrap();
        assert_eq!(records["b1"].state, CopyState::Corrupt);
        assert_eq!(records["b1"].verified_at, verified_at);
        assert_eq!(records["b1"].detail.as_deref(), Some("pack 5b67: MAC"));
        assert_eq!(records["b2"].state, CopyState::Unsynced);
        assert_eq!(records["b2"].verified_at, None);
        assert!(db.copy_records("local").unwrap().is_empty());
    }
}
