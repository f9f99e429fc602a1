//! The engine events of each `drydock serve` run, kept for its dashboard page
//! (`/runs/{id}`): what happened, when, how bad, and for which source. The daemon's
//! per-run event sink writes them as the run goes (already redacted: nothing here is
//! secret), the same events it streams on `/api/v1/events`.
//!
//! Bounded twice: at most [`KEEP_PER_RUN`] events per run (the newest; a long run
//! drops its oldest), and the events of a run go when the run itself is pruned
//! (`jobs::start_run`). Progress ticks are not events worth keeping and never come
//! here.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the run_events table.
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "run_events",
    what: "create the run_events table",
    sql: "
CREATE TABLE run_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run         INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    level       TEXT    NOT NULL,
    what        TEXT    NOT NULL,
    source      TEXT,
    message     TEXT    NOT NULL,
    duration_ms INTEGER
);
CREATE INDEX run_events_by_run ON run_events (run, id);
",
};

/// Events kept per run: the newest ones (the dashboard's run page shows as many).
pub const KEEP_PER_RUN: usize = 500;

/// How bad an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventLevel {
    Info,
    Warning,
    Error,
}

impl EventLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            EventLevel::Info => "info",
            EventLevel::Warning => "warning",
            EventLevel::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<EventLevel> {
        Some(match s {
            "info" => EventLevel::Info,
            "warning" => EventLevel::Warning,
            "error" => EventLevel::Error,
            _ => return None,
        })
    }
}

/// One kept event of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunEventRecord {
    pub at: Timestamp,
    pub level: EventLevel,
    /// The engine event's name (`source_started`, `source_finished`, `step`, ...).
    pub what: String,
    /// The source (`service/source`) it is about, if any.
    pub source: Option<String>,
    /// The event's own words (redacted by the writer).
    pub message: String,
    /// How long the source took, on `source_finished`.
    pub duration_ms: Option<u64>,
}

impl StateDb {
    /// Keeps `event` for run `run`, dropping the run's oldest events beyond
    /// [`KEEP_PER_RUN`].
    pub fn record_run_event(&self, run: i64, event: &RunEventRecord) -> Result<(), StateError> {
        let err = |e| StateError::db(&self.path, e);
        self.conn()
            .execute(
                "INSERT INTO run_events (run, at, level, what, source, message, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    run,
                    event.at.to_string(),
                    event.level.as_str(),
                    event.what,
                    event.source,
                    event.message,
                    event
                        .duration_ms
                        .map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                ],
            )
            .map_err(err)?;
        // The id of the newest event past the limit, if any; it and older ones go.
        self.conn()
            .execute(
                "DELETE FROM run_events WHERE run = ?1 AND id <= (
                     SELECT id FROM run_events WHERE run = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![run, i64::try_from(KEEP_PER_RUN).unwrap_or(i64::MAX)],
            )
            .map_err(err)?;
        Ok(())
    }

    /// The kept events of run `run`, oldest first.
    pub fn run_events(&self, run: i64) -> Result<Vec<RunEventRecord>, StateError> {
        let err = |e| StateError::db(&self.path, e);
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT at, level, what, source, message, duration_ms FROM run_events
                 WHERE run = ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([run], |r| {
                let bad = |i: usize, e: String| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                };
                let level: String = r.get(1)?;
                Ok(RunEventRecord {
                    at: r
                        .get::<_, String>(0)?
                        .parse()
                        .map_err(|e: jiff::Error| bad(0, e.to_string()))?,
                    level: EventLevel::parse(&level)
                        .ok_or_else(|| bad(1, format!("unknown event level `{level}`")))?,
                    what: r.get(2)?,
                    source: r.get(3)?,
                    message: r.get(4)?,
                    duration_ms: r
                        .get::<_, Option<i64>>(5)?
                        .map(|d| u64::try_from(d).unwrap_or(0)),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

/// Drops the events of runs `..=last` (runs pruned by `jobs::start_run`).
pub(crate) fn prune_runs_through(
    conn: &rusqlite::Connection,
    last: i64,
) -> Result<(), rusqlite::Error> {
    conn.execute("DELETE FROM run_events WHERE run <= ?1", [last])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> RunEventRecord {
        RunEventRecord {
            at: Timestamp::from_second(1_700_000_000 + i as i64).unwrap(),
            level: if i.is_multiple_of(2) {
                EventLevel::Info
            } else {
                EventLevel::Warning
            },
            what: "step".into(),
            source: (i == 0).then(|| "app/db".to_string()),
            message: format!("event {i}"),
            duration_ms: (i == 0).then_some(42),
        }
    }

    #[test]
    fn events_are_kept_per_run_oldest_first_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        db.record_run_event(1, &event(0)).unwrap();
        db.record_run_event(2, &event(1)).unwrap();
        db.record_run_event(1, &event(2)).unwrap();
        assert_eq!(db.run_events(1).unwrap(), vec![event(0), event(2)]);
        assert_eq!(db.run_events(2).unwrap(), vec![event(1)]);
        assert!(db.run_events(3).unwrap().is_empty());

        for i in 3..KEEP_PER_RUN + 10 {
            db.record_run_event(1, &event(i)).unwrap();
        }
        let kept = db.run_events(1).unwrap();
        assert_eq!(kept.len(), KEEP_PER_RUN);
        // The newest are kept: of 0, 2, 3, ..., 509 the oldest nine went.
        assert_eq!(kept[0].message, "event 10");
        assert_eq!(
            kept.last().unwrap().message,
            format!("event {}", KEEP_PER_RUN + 9)
        );
        // The other run lost nothing.
        assert_eq!(db.run_events(2).unwrap().len(), 1);
    }

    #[test]
    fn events_go_with_their_pruned_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        for run in 1..=3 {
            db.record_run_event(run, &event(0)).unwrap();
        }
        prune_runs_through(db.conn(), 2).unwrap();
        assert!(db.run_events(1).unwrap().is_empty());
        assert!(db.run_events(2).unwrap().is_empty());
        assert_eq!(db.run_events(3).unwrap().len(), 1);
    }
}
