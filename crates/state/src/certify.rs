//! `certify`'s progress per service: each step of the readiness routine with its
//! outcome, so a routine that stopped at a failed step resumes there next time.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the certify_steps table, as it was before the schema was versioned
/// (`IF NOT EXISTS`, so a database made then takes the step as a no-op).
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "certify",
    what: "create the certify_steps table",
    sql: "
CREATE TABLE IF NOT EXISTS certify_steps (
    service  TEXT NOT NULL,
    step     INTEGER NOT NULL,
    name     TEXT NOT NULL,
    status   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    metrics  TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (service, step)
);
",
};

/// One step's last outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertifyStepRecord {
    pub step: u32,
    pub name: String,
    /// `passed` or `failed` (`not-available` from drydock before certify deployed: runs again).
    pub status: String,
    pub detail: String,
    /// The step's figures, as JSON (backup id, sizes, RTO, ...).
    pub metrics: String,
    pub at: Timestamp,
}

impl StateDb {
    pub fn record_certify_step(
        &self,
        service: &str,
        rec: &CertifyStepRecord,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO certify_steps (service, step, name, status, detail, metrics, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (service, step) DO UPDATE SET name = excluded.name, status = excluded.status,
                    detail = excluded.detail, metrics = excluded.metrics, at = excluded.at",
                params![
                    service,
                    rec.step,
                    rec.name,
                    rec.status,
                    rec.detail,
                    rec.metrics,
                    rec.at.to_string()
                ],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// The recorded steps of `service`, in order.
    pub fn certify_steps(&self, service: &str) -> Result<Vec<CertifyStepRecord>, StateError> {
        let err = |e| StateError::db(self.path(), e);
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT step, name, status, detail, metrics, at FROM certify_steps WHERE service = ?1 ORDER BY step",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([service], |r| {
                let at: String = r.get(5)?;
                Ok(CertifyStepRecord {
                    step: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                    detail: r.get(3)?,
                    metrics: r.get(4)?,
                    at: at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Forgets the progress of `service` (`certify --restart`).
    pub fn reset_certify(&self, service: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM certify_steps WHERE service = ?1", [service])
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_kept_per_service_replaced_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let rec = |step, status: &str| CertifyStepRecord {
            step,
            name: format!("step {step}"),
            status: status.into(),
            detail: String::new(),
            metrics: "{}".into(),
            at: Timestamp::now(),
        };
        db.record_certify_step("app", &rec(1, "passed")).unwrap();
        db.record_certify_step("app", &rec(2, "failed")).unwrap();
        db.record_certify_step("app", &rec(2, "passed")).unwrap();
        db.record_certify_step("db", &rec(1, "failed")).unwrap();
        let app = db.certify_steps("app").unwrap();
        assert_eq!(app.len(), 2);
        assert_eq!(app[1].status, "passed");
        db.reset_certify("app").unwrap();
        assert!(db.certify_steps("app").unwrap().is_empty());
        assert_eq!(db.certify_steps("db").unwrap().len(), 1);
    }
}
