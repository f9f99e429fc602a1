//! `drydock serve`'s runs and schedules, remembered: every job run is recorded before
//! it starts (kind, trigger, host and pid) and closed with its outcome, so a run a
//! killed daemon left open is found and marked `interrupted` by the next start; and
//! the last slot each schedule ran for, so catch-up after a restart runs a missed job
//! exactly once.

use std::collections::BTreeMap;
use std::str::FromStr;

use drydock_domain::Verdict;
use jiff::Timestamp;
use rusqlite::params;
use serde::{Serialize, Serializer};

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the job_runs and schedule_slots tables.
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "jobs",
    what: "create the job_runs and schedule_slots tables",
    sql: "
CREATE TABLE job_runs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    trigger   TEXT NOT NULL,
    schedule  TEXT,
    started   TEXT NOT NULL,
    finished  TEXT,
    outcome   TEXT,
    summary   TEXT NOT NULL DEFAULT '',
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL
);
CREATE INDEX job_runs_open ON job_runs (finished, host);
CREATE TABLE schedule_slots (
    schedule  TEXT PRIMARY KEY,
    slot      TEXT NOT NULL
);
",
};

/// Runs kept; older ones are dropped as new ones are recorded (a health check every
/// minute is 1440 runs a day).
const KEEP_RUNS: i64 = 100_000;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its schedule's slot came.
    Schedule,
    /// `POST /api/v1/jobs/{kind}`.
    Api,
    /// One run for the slots missed while the daemon was down or the clock jumped.
    CatchUp,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Api => "api",
            Trigger::CatchUp => "catch-up",
        }
    }
}

impl FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "schedule" => Trigger::Schedule,
            "api" => Trigger::Api,
            "catch-up" => Trigger::CatchUp,
            other => return Err(format!("unknown trigger `{other}`")),
        })
    }
}

/// How a run ended: its operation's verdict, or one of the two ends only a daemon
/// knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Verdict(Verdict),
    /// The process ended (killed, cancelled on stop) before the run did; nothing it
    /// did is recorded as good.
    Interrupted,
    /// Not run: the schedule's previous run was still going when its slot came.
    Skipped,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Verdict(Verdict::Ok) => "ok",
            RunOutcome::Verdict(Verdict::Warning) => "warning",
            RunOutcome::Verdict(Verdict::Failed) => "failed",
            RunOutcome::Verdict(Verdict::Refused) => "refused",
            RunOutcome::Verdict(Verdict::CouldNotRun) => "could-not-run",
            RunOutcome::Verdict(Verdict::Missing) => "missing",
            RunOutcome::Verdict(Verdict::Critical) => "critical",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Skipped => "skipped",
        }
    }
}

impl FromStr for RunOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ok" => RunOutcome::Verdict(Verdict::Ok),
            "warning" => RunOutcome::Verdict(Verdict::Warning),
            "failed" => RunOutcome::Verdict(Verdict::Failed),
            "refused" => RunOutcome::Verdict(Verdict::Refused),
            "could-not-run" => RunOutcome::Verdict(Verdict::CouldNotRun),
            "missing" => RunOutcome::Verdict(Verdict::Missing),
            "critical" => RunOutcome::Verdict(Verdict::Critical),
            "interrupted" => RunOutcome::Interrupted,
            "skipped" => RunOutcome::Skipped,
            other => return Err(format!("unknown run outcome `{other}`")),
        })
    }
}

impl Serialize for RunOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub kind: &'a str,
    pub trigger: Trigger,
    /// The schedule's key, for scheduled and catch-up runs.
    pub schedule: Option<&'a str>,
    pub started: Timestamp,
    pub host: &'a str,
    pub pid: u32,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub kind: String,
    pub trigger: Trigger,
    pub schedule: Option<String>,
    pub started: Timestamp,
    /// `None` while it runs (or until a dead daemon's run is marked interrupted).
    pub finished: Option<Timestamp>,
    /// `None` while it runs.
    pub verdict: Option<RunOutcome>,
    pub summary: String,
    pub host: String,
    pub pid: u32,
}

const COLUMNS: &str = "id, kind, trigger, schedule, started, finished, outcome, summary, host, pid";

fn read_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRun> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let time = |i: usize, v: String| v.parse::<Timestamp>().map_err(|e| bad(i, e.to_string()));
    let finished: Option<String> = r.get(5)?;
    let outcome: Option<String> = r.get(6)?;
    Ok(JobRun {
        id: r.get(0)?,
        kind: r.get(1)?,
        trigger: r.get::<_, String>(2)?.parse().map_err(|e| bad(2, e))?,
        schedule: r.get(3)?,
        started: time(4, r.get(4)?)?,
        finished: finished.map(|f| time(5, f)).transpose()?,
        verdict: outcome
            .map(|o| o.parse().map_err(|e| bad(6, e)))
            .transpose()?,
        summary: r.get(7)?,
        host: r.get(8)?,
        pid: r.get(9)?,
    })
}

impl StateDb {
    /// Records `run` as started (open: no end, no outcome); returns its id.
    pub fn start_run(&self, run: &NewRun<'_>) -> Result<i64, StateError> {
        let err = |e| StateError::db(&self.path, e);
        self.conn()
            .execute(
                "INSERT INTO job_runs (kind, trigger, schedule, started, host, pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    run.kind,
                    run.trigger.as_str(),
                    run.schedule,
                    run.started.to_string(),
                    run.host,
                    run.pid
                ],
            )
            .map_err(err)?;
        let id = self.conn().last_insert_rowid();
        self.conn()
            .execute("DELETE FROM job_runs WHERE id <= ?1", [id - KEEP_RUNS])
            .map_err(err)?;
        // A pruned run's events go with it.
        crate::run_events::prune_runs_through(self.conn(), id - KEEP_RUNS).map_err(err)?;
        Ok(id)
    }

    /// Closes run `id` with its outcome and a one-line summary. A run already closed
    /// (marked interrupted meanwhile) keeps its first end.
    pub fn finish_run(
        &self,
        id: i64,
        finished: Timestamp,
        outcome: RunOutcome,
        summary: &str,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE job_runs SET finished = ?2, outcome = ?3, summary = ?4
                 WHERE id = ?1 AND finished IS NULL",
                params![id, finished.to_string(), outcome.as_str(), summary],
            )
            .map_err(|e| StateError::db(&self.path, e))?;
        Ok(())
    }

    /// Records a run that was not started (`skipped`), closed at once.
    pub fn record_skipped(&self, run: &NewRun<'_>, reason: &str) -> Result<i64, StateError> {
        let id = self.start_run(run)?;
        self.finish_run(id, run.started, RunOutcome::Skipped, reason)?;
        Ok(id)
    }

    /// The runs of `host` that were never closed, oldest first.
    pub fn open_runs(&self, host: &str) -> Result<Vec<JobRun>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM job_runs WHERE finished IS NULL AND host = ?1 ORDER BY id"
            ))
            .map_err(err)?;
        let runs = stmt
            .query_map([host], read_run)
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(runs)
    }

    /// Run `id`, if it is still kept.
    pub fn job_run(&self, id: i64) -> Result<Option<JobRun>, StateError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM job_runs WHERE id = ?1"),
                [id],
                read_run,
            )
            .optional()
            .map_err(|e| StateError::db(&self.path, e))
    }

    /// The newest `limit` runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<JobRun>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM job_runs ORDER BY id DESC LIMIT ?1"
            ))
            .map_err(err)?;
        let runs = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], read_run)
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(runs)
    }

    /// The last slot each schedule ran for (or was skipped at), by schedule key.
    pub fn schedule_slots(&self) -> Result<BTreeMap<String, Timestamp>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn()
            .prepare("SELECT schedule, slot FROM schedule_slots")
            .map_err(err)?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        // A slot that does not parse is forgotten: the schedule starts afresh.
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|t| (k, t)))
            .collect())
    }

    /// Remembers `slot` as the last one `schedule` ran for.
    pub fn set_schedule_slot(&self, schedule: &str, slot: Timestamp) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO schedule_slots (schedule, slot) VALUES (?1, ?2)
                 ON CONFLICT (schedule) DO UPDATE SET slot = excluded.slot",
                params![schedule, slot.to_string()],
            )
            .map_err(|e| StateError::db(&self.path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(kind: &'a str, started: &str) -> NewRun<'a> {
        NewRun {
            kind,
            trigger: Trigger::Schedule,
            schedule: Some("backup [* * * * *]"),
            started: started.parse().unwrap(),
            host: "h1",
            pid: 42,
        }
    }

    #[test]
    fn runs_open_close_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let a = db
            .start_run(&run("backup", "2026-12-01T02:30:00Z"))
            .unwrap();
        let b = db
            .start_run(&run("health", "2026-12-01T02:31:00Z"))
            .unwrap();
        db.record_skipped(&run("backup", "2026-12-01T02:32:00Z"), "still running")
            .unwrap();
        assert_eq!(db.open_runs("h1").unwrap().len(), 2);
        assert!(db.open_runs("h2").unwrap().is_empty());
        let end: Timestamp = "2026-12-01T02:40:00Z".parse().unwrap();
        db.finish_run(a, end, RunOutcome::Verdict(Verdict::Ok), "2 sources")
            .unwrap();
        db.finish_run(b, end, RunOutcome::Interrupted, "killed")
            .unwrap();
        // A second close does not overwrite the first.
        db.finish_run(b, end, RunOutcome::Verdict(Verdict::Ok), "late")
            .unwrap();
        assert!(db.open_runs("h1").unwrap().is_empty());
        assert_eq!(db.job_run(a).unwrap().unwrap().summary, "2 sources");
        assert!(db.job_run(999).unwrap().is_none());
        let runs = db.recent_runs(10).unwrap();
        let seen: Vec<(&str, Option<&str>, &str)> = runs
            .iter()
            .map(|r| {
                (
                    r.kind.as_str(),
                    r.verdict.map(RunOutcome::as_str),
                    r.summary.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("backup", Some("skipped"), "still running"),
                ("health", Some("interrupted"), "killed"),
                ("backup", Some("ok"), "2 sources"),
            ]
        );
        let json = serde_json::to_value(&runs[2]).unwrap();
        assert_eq!(json["verdict"], "ok");
        assert_eq!(json["trigger"], "schedule");
        assert_eq!(json["finished"], "2026-12-01T02:40:00Z");
    }

    #[test]
    fn schedule_slots_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let slot: Timestamp = "2026-12-01T02:30:00Z".parse().unwrap();
        {
            let db = StateDb::open(dir.path()).unwrap();
            db.set_schedule_slot("a", "2026-11-30T02:30:00Z".parse().unwrap())
                .unwrap();
            db.set_schedule_slot("a", slot).unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(
            db.schedule_slots().unwrap(),
            BTreeMap::from([("a".into(), slot)])
        );
    }
}
