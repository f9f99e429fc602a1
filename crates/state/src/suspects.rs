//! Repository files a check found damaged and that the next backup or sync must repair:
//! per copy, the pack ids `verify --read-data` named. A damaged pack keeps its name and
//! size, so nothing cheaper than reading it finds it again; this remembers what a read
//! found until the repair has proved (by hashing the file) and removed it.

use rusqlite::params;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the suspect_files table, as it was before the schema was versioned
/// (`IF NOT EXISTS`, so a database made then takes the step as a no-op).
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "suspects",
    what: "create the suspect_files table",
    sql: "
CREATE TABLE IF NOT EXISTS suspect_files (
    copy      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    file_id   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    found_at  TEXT NOT NULL,
    PRIMARY KEY (copy, kind, file_id)
);
",
};

impl StateDb {
    /// Remembers that a check found `file_id` (a `kind` file: `pack`) of `copy` damaged.
    pub fn record_suspect(
        &self,
        copy: &str,
        kind: &str,
        file_id: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO suspect_files (copy, kind, file_id, reason, found_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (copy, kind, file_id) DO UPDATE SET
                    reason = excluded.reason, found_at = excluded.found_at",
                params![
                    copy,
                    kind,
                    file_id,
                    reason,
                    jiff::Timestamp::now().to_string()
                ],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// The ids of `copy`'s `kind` files found damaged and not repaired yet.
    pub fn suspects(&self, copy: &str, kind: &str) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT file_id FROM suspect_files WHERE copy = ?1 AND kind = ?2 ORDER BY file_id",
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map(params![copy, kind], |row| row.get::<_, String>(0))
            .map_err(|e| StateError::db(self.path(), e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StateError::db(self.path(), e))
    }

    /// Forgets suspects of `copy` a repair dealt with (removed, or found sound).
    pub fn clear_suspects(&self, copy: &str, kind: &str, ids: &[String]) -> Result<(), StateError> {
        for id in ids {
            self.conn()
                .execute(
                    "DELETE FROM suspect_files WHERE copy = ?1 AND kind = ?2 AND file_id = ?3",
                    params![copy, kind, id],
                )
                .map_err(|e| StateError::db(self.path(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspects_are_kept_per_copy_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        db.record_suspect("local", "pack", "ab12", "hash mismatch")
            .unwrap();
        db.record_suspect("local", "pack", "ab12", "again").unwrap();
        db.record_suspect("offsite", "pack", "cd34", "missing")
            .unwrap();
        assert_eq!(db.suspects("local", "pack").unwrap(), vec!["ab12"]);
        db.clear_suspects("local", "pack", &["ab12".into()])
            .unwrap();
        assert!(db.suspects("local", "pack").unwrap().is_empty());
        assert_eq!(db.suspects("offsite", "pack").unwrap(), vec!["cd34"]);
    }
}
