//! Health results: one row per `drydock health` run, one per service in it and one
//! per check, so `status` and the dashboard can show the latest state of each service
//! without running the checks again. The newest [`KEEP_RUNS`] runs are kept. Also every
//! `heal` attempt, so `diagnose` can tell a service that keeps failing to start.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the health_runs, health_services, health_checks and heal_attempts
/// tables, as they were before the schema was versioned (`IF NOT EXISTS`, so a
/// database made then takes the step as a no-op).
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "health",
    what: "create the health_runs, health_services, health_checks and heal_attempts tables",
    sql: "
CREATE TABLE IF NOT EXISTS health_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    exit_code   INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS health_services (
    run_id  INTEGER NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    service TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    PRIMARY KEY (run_id, service)
);
CREATE INDEX IF NOT EXISTS health_services_by_service ON health_services(service, run_id);
CREATE TABLE IF NOT EXISTS health_checks (
    run_id     INTEGER NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    service    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    latency_ms REAL    NOT NULL,
    attempts   INTEGER NOT NULL,
    message    TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    PRIMARY KEY (run_id, service, name)
);
CREATE TABLE IF NOT EXISTS heal_attempts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL,
    service TEXT    NOT NULL,
    attempt INTEGER NOT NULL,
    action  TEXT    NOT NULL,
    ok      INTEGER NOT NULL,
    message TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS heal_attempts_by_service ON heal_attempts(service, at_ms);
",
};

/// One `heal` attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealAttemptRecord {
    /// RFC 3339 time the attempt started.
    pub at: String,
    /// The same as Unix milliseconds, for ordering and windows.
    pub at_ms: i64,
    pub service: String,
    pub attempt: u32,
    /// `start` or `restart`.
    pub action: String,
    pub ok: bool,
    pub message: String,
}

/// How many runs are kept; older ones are deleted when a new one is recorded.
pub const KEEP_RUNS: i64 = 2000;

/// One run, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthRun {
    /// RFC 3339 time the run started.
    pub at: String,
    /// `healthy`, `degraded`, `unhealthy` or `missing`.
    pub status: String,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub services: Vec<ServiceHealth>,
}

/// One service within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub service: String,
    pub status: String,
    pub checks: Vec<CheckRecord>,
}

/// One check within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub name: String,
    pub kind: String,
    pub status: String,
    pub latency_ms: f64,
    pub attempts: u32,
    pub message: String,
    /// The check's details as JSON.
    pub details: serde_json::Value,
}

/// A service's latest recorded health and when it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestHealth {
    pub at: String,
    pub run_id: i64,
    pub health: ServiceHealth,
}

impl StateDb {
    /// Records a run with its services and checks; returns the run's id.
    pub fn record_health(&mut self, run: &HealthRun) -> Result<i64, StateError> {
        let path = self.path.clone();
        let err = |e| StateError::db(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO health_runs (at, status, exit_code, duration_ms) VALUES (?1, ?2, ?3, ?4)",
            params![run.at, run.status, run.exit_code, run.duration_ms as i64],
        )
        .map_err(err)?;
        let run_id = tx.last_insert_rowid();
        for svc in &run.services {
            tx.execute(
                "INSERT INTO health_services (run_id, service, status) VALUES (?1, ?2, ?3)",
                params![run_id, svc.service, svc.status],
            )
            .map_err(err)?;
            for c in &svc.checks {
                tx.execute(
                    "INSERT INTO health_checks (run_id, service, name, kind, status, latency_ms, attempts, message, details)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![run_id, svc.service, c.name, c.kind, c.status, c.latency_ms, c.attempts, c.message, c.details.to_string()],
                )
                .map_err(err)?;
            }
        }
        // Children first: foreign keys are not enforced unless the pragma is on.
        let cutoff = run_id - KEEP_RUNS;
        tx.execute("DELETE FROM health_checks WHERE run_id <= ?1", [cutoff])
            .map_err(err)?;
        tx.execute("DELETE FROM health_services WHERE run_id <= ?1", [cutoff])
            .map_err(err)?;
        tx.execute("DELETE FROM health_runs WHERE id <= ?1", [cutoff])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(run_id)
    }

    /// The latest recorded health of every service that was ever checked, by name.
    pub fn latest_health(&self) -> Result<Vec<LatestHealth>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                // The services by hopping along the (service, run_id) index (each
                // next name is one lookup), then each one's newest run: a few lookups
                // per service rather than a pass over every kept run (`/metrics`
                // calls this at each scrape).
                "WITH RECURSIVE svc(service) AS (
                     SELECT MIN(service) FROM health_services
                     UNION ALL
                     SELECT (SELECT MIN(service) FROM health_services WHERE service > svc.service)
                     FROM svc WHERE svc.service IS NOT NULL
                 )
                 SELECT s.service, s.status, s.run_id, r.at FROM svc
                 JOIN health_services s ON s.service = svc.service
                  AND s.run_id = (SELECT MAX(run_id) FROM health_services WHERE service = svc.service)
                 JOIN health_runs r ON r.id = s.run_id
                 ORDER BY s.service",
            )
            .map_err(err)?;
        let heads: Vec<(String, String, i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        heads
            .into_iter()
            .map(|(service, status, run_id, at)| {
                let checks = self.checks_of(run_id, &service)?;
                Ok(LatestHealth {
                    at,
                    run_id,
                    health: ServiceHealth {
                        service,
                        status,
                        checks,
                    },
                })
            })
            .collect()
    }

    /// The latest run's summary: (at, status, exit code), if any run was recorded.
    pub fn latest_health_run(&self) -> Result<Option<(String, String, i32)>, StateError> {
        self.conn
            .query_row(
                "SELECT at, status, exit_code FROM health_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| StateError::db(&self.path, e))
    }

    /// Records one heal attempt; attempts older than 30 days are dropped.
    pub fn record_heal_attempt(&mut self, a: &HealAttemptRecord) -> Result<(), StateError> {
        let err = |e| StateError::db(&self.path, e);
        self.conn
            .execute(
                "INSERT INTO heal_attempts (at, at_ms, service, attempt, action, ok, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![a.at, a.at_ms, a.service, a.attempt, a.action, a.ok, a.message],
            )
            .map_err(err)?;
        self.conn
            .execute(
                "DELETE FROM heal_attempts WHERE at_ms < ?1",
                [a.at_ms - 30 * 86_400_000],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Heal attempts on `service` since `since_ms` (Unix milliseconds), oldest first.
    pub fn heal_attempts_since(
        &self,
        service: &str,
        since_ms: i64,
    ) -> Result<Vec<HealAttemptRecord>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, at_ms, service, attempt, action, ok, message FROM heal_attempts
                 WHERE service = ?1 AND at_ms >= ?2 ORDER BY at_ms, id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![service, since_ms], |r| {
                Ok(HealAttemptRecord {
                    at: r.get(0)?,
                    at_ms: r.get(1)?,
                    service: r.get(2)?,
                    attempt: r.get(3)?,
                    action: r.get(4)?,
                    ok: r.get(5)?,
                    message: r.get(6)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn checks_of(&self, run_id: i64, service: &str) -> Result<Vec<CheckRecord>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, kind, status, latency_ms, attempts, message, details FROM health_checks
                 WHERE run_id = ?1 AND service = ?2 ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![run_id, service], |r| {
                let details: String = r.get(6)?;
                Ok(CheckRecord {
                    name: r.get(0)?,
                    kind: r.get(1)?,
                    status: r.get(2)?,
                    latency_ms: r.get(3)?,
                    attempts: r.get(4)?,
                    message: r.get(5)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(at: &str, db_status: &str, with_app: bool) -> HealthRun {
        let mut services = vec![ServiceHealth {
            service: "db".into(),
            status: db_status.into(),
            checks: vec![CheckRecord {
                name: "postgres".into(),
                kind: "postgres".into(),
                status: if db_status == "healthy" {
                    "healthy"
                } else {
                    "critical"
                }
                .into(),
                latency_ms: 1.5,
                attempts: 1,
                message: "SELECT 1 ok".into(),
                details: serde_json::json!({"connections": 3}),
            }],
        }];
        if with_app {
            services.push(ServiceHealth {
                service: "app".into(),
                status: "healthy".into(),
                checks: vec![],
            });
        }
        HealthRun {
            at: at.into(),
            status: db_status.into(),
            exit_code: if db_status == "healthy" { 0 } else { 2 },
            duration_ms: 12,
            services,
        }
    }

    #[test]
    fn latest_per_service_survives_partial_runs_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        db.record_health(&run("2026-01-01T00:00:00Z", "healthy", true))
            .unwrap();
        // A later run that checked only `db`.
        db.record_health(&run("2026-01-01T00:05:00Z", "unhealthy", false))
            .unwrap();
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        let latest = db.latest_health().unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].health.service, "app");
        assert_eq!(latest[0].at, "2026-01-01T00:00:00Z");
        assert_eq!(latest[1].health.service, "db");
        assert_eq!(latest[1].health.status, "unhealthy");
        assert_eq!(latest[1].health.checks[0].details["connections"], 3);
        assert_eq!(
            db.latest_health_run().unwrap(),
            Some(("2026-01-01T00:05:00Z".into(), "unhealthy".into(), 2))
        );
    }

    #[test]
    fn heal_attempts_by_service_and_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        let attempt = |service: &str, at_ms: i64, ok: bool| HealAttemptRecord {
            at: format!("t{at_ms}"),
            at_ms,
            service: service.into(),
            attempt: 1,
            action: "start".into(),
            ok,
            message: "start failed".into(),
        };
        db.record_heal_attempt(&attempt("db", 1_000, false))
            .unwrap();
        db.record_heal_attempt(&attempt("db", 5_000, false))
            .unwrap();
        db.record_heal_attempt(&attempt("web", 5_000, true))
            .unwrap();
        let recent = db.heal_attempts_since("db", 2_000).unwrap();
        assert_eq!(recent, [attempt("db", 5_000, false)]);
        assert_eq!(db.heal_attempts_since("db", 0).unwrap().len(), 2);
    }

    #[test]
    fn old_runs_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        let mut last = 0;
        for _ in 0..3 {
            last = db
                .record_health(&run("2026-01-01T00:00:00Z", "healthy", false))
                .unwrap();
        }
        // Pretend many runs happened: the cutoff removes everything older.
        db.conn
            .execute(
                "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'health_runs'",
                [last + KEEP_RUNS],
            )
            .unwrap();
        db.record_health(&run("2026-01-02T00:00:00Z", "healthy", false))
            .unwrap();
        let runs: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM health_runs", [], |r| r.get(0))
            .unwrap();
        let checks: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM health_checks", [], |r| r.get(0))
            .unwrap();
        assert_eq!((runs, checks), (1, 1));
    }
}
