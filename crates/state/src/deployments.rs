//! `drydock deploy`'s records: each deployment is written before it starts (its target
//! commit, the decision and the plan it follows) and finished with its outcome, so the
//! next deploy diffs against the last good one and a deployment cut short by `kill -9`
//! is seen as unfinished. Step 11 adds what a run does as it goes: its kind (deploy or
//! rollback), who ran it, its report so far (written after every step, so a deployment
//! cut short shows how far it got) and how many things it changed.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "deployments",
    what: "create the deployments table",
    sql: "
CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    rev         TEXT    NOT NULL,
    git_commit  TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    outcome     TEXT,
    plan_json   TEXT    NOT NULL
);
",
};

pub(crate) const ADD_PROGRESS: SchemaStep = SchemaStep {
    feature: "deployments",
    what: "record each deployment's kind, holder, changes and report as it goes",
    sql: "
ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy';
ALTER TABLE deployments ADD COLUMN holder TEXT;
ALTER TABLE deployments ADD COLUMN changes INTEGER;
ALTER TABLE deployments ADD COLUMN report_json TEXT;
",
};

/// A deployment about to start.
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    /// `deploy` or `rollback`.
    pub kind: &'a str,
    /// Who runs it (host, PID, user), as the deploy lock names it.
    pub holder: &'a str,
    pub started_ms: i64,
    /// The revision as the operator named it (`HEAD`, a tag).
    pub rev: &'a str,
    /// The full commit it resolved to.
    pub commit: &'a str,
    pub decision: &'a str,
    /// The plan it follows, as JSON.
    pub plan_json: &'a str,
}

/// One recorded deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRecord {
    pub id: i64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub rev: String,
    pub commit: String,
    pub decision: String,
    /// `ok`, `failed`, `rolled-back`, `interrupted`; none while it runs (or if it was
    /// cut short and nobody has looked since).
    pub outcome: Option<String>,
    /// `deploy` or `rollback`.
    pub kind: String,
    pub holder: Option<String>,
    /// Things changed (containers, releases, proxy files); none until it finished.
    pub changes: Option<i64>,
    /// The run's report as of its last finished step (JSON), if any.
    pub report_json: Option<String>,
}

fn record(row: &Row<'_>) -> rusqlite::Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        id: row.get(0)?,
        started_ms: row.get(1)?,
        finished_ms: row.get(2)?,
        rev: row.get(3)?,
        commit: row.get(4)?,
        decision: row.get(5)?,
        outcome: row.get(6)?,
        kind: row.get(7)?,
        holder: row.get(8)?,
        changes: row.get(9)?,
        report_json: row.get(10)?,
    })
}

const COLUMNS: &str = "id, started_ms, finished_ms, rev, git_commit, decision, outcome, kind, holder, changes, report_json";

impl StateDb {
    /// Records a deployment before it starts; returns its id.
    pub fn deployment_started(&self, d: &NewDeployment<'_>) -> Result<i64, StateError> {
        self.conn()
            .execute(
                "INSERT INTO deployments (started_ms, rev, git_commit, decision, plan_json, kind, holder)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![d.started_ms, d.rev, d.commit, d.decision, d.plan_json, d.kind, d.holder],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Records deployment `id`'s report so far (after each step).
    pub fn deployment_progress(&self, id: i64, report_json: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE deployments SET report_json = ?2 WHERE id = ?1",
                params![id, report_json],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// Records how deployment `id` ended.
    pub fn deployment_finished(
        &self,
        id: i64,
        outcome: &str,
        finished_ms: i64,
        changes: Option<i64>,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE deployments SET outcome = ?2, finished_ms = ?3, changes = ?4 WHERE id = ?1",
                params![id, outcome, finished_ms, changes],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// Deployments that started and never finished (cut short), oldest first.
    pub fn unfinished_deployments(&self) -> Result<Vec<DeploymentRecord>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM deployments WHERE outcome IS NULL ORDER BY id"
            ))
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map([], record)
            .and_then(Iterator::collect)
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(rows)
    }

    /// Deployment `id`, if recorded.
    pub fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StateError> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"),
                params![id],
                record,
            )
            .optional()
            .map_err(|e| StateError::db(self.path(), e))
    }

    /// The newest deployment that ended well: what the next one is diffed against.
    pub fn last_good_deployment(&self) -> Result<Option<DeploymentRecord>, StateError> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM deployments WHERE outcome = 'ok'
                     ORDER BY started_ms DESC, id DESC LIMIT 1"
                ),
                [],
                record,
            )
            .optional()
            .map_err(|e| StateError::db(self.path(), e))
    }

    /// The newest `limit` deployments, newest first.
    pub fn deployments(&self, limit: u32) -> Result<Vec<DeploymentRecord>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM deployments ORDER BY started_ms DESC, id DESC LIMIT ?1"
            ))
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map(params![limit], record)
            .and_then(Iterator::collect)
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_good_deployment_skips_failed_and_unfinished_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.last_good_deployment().unwrap(), None);
        let new = |at: i64, commit: &'static str| NewDeployment {
            kind: "deploy",
            holder: "test",
            started_ms: at,
            rev: "HEAD",
            commit,
            decision: "app",
            plan_json: "{}",
        };
        let good = db.deployment_started(&new(1, "aaa")).unwrap();
        db.deployment_finished(good, "ok", 2, Some(3)).unwrap();
        let failed = db.deployment_started(&new(3, "bbb")).unwrap();
        db.deployment_finished(failed, "failed", 4, None).unwrap();
        let cut = db.deployment_started(&new(5, "ccc")).unwrap();
        db.deployment_progress(cut, r#"{"steps":[]}"#).unwrap();
        let last = db.last_good_deployment().unwrap().unwrap();
        assert_eq!((last.commit.as_str(), last.finished_ms), ("aaa", Some(2)));
        let all = db.deployments(10).unwrap();
        let outcomes: Vec<Option<&str>> = all.iter().map(|d| d.outcome.as_deref()).collect();
        assert_eq!(outcomes, [None, Some("failed"), Some("ok")]);
        let unfinished = db.unfinished_deployments().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(
            unfinished[0].report_json.as_deref(),
            Some(r#"{"steps":[]}"#)
        );
        assert_eq!(db.deployment(good).unwrap().unwrap().changes, Some(3));
    }
}
