//! Notifications of `drydock serve`: the durable outbox and the state each (job,
//! subject) was last notified in.
//!
//! A notification is written here before anyone tries to send it, in the same
//! transaction as the state change that caused it, so a crash between the two can
//! neither lose it nor send it twice for one change; its idempotency key is fixed at
//! that moment and kept across every retry and restart (delivery is at-least-once: a
//! crash after a send and before it is marked sends it again, under the same key, which
//! the receiver can drop). This module only stores; the notify crate decides what to
//! send, when to retry and when to give up. Failed ones are kept (the newest
//! [`KEEP_FAILED`]) for the dashboard and counted in a total that never goes down, for
//! the metrics.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::db::StateDb;
use crate::error::StateError;
use crate::step::SchemaStep;

/// Schema step: the notify_outbox, notify_subjects and notify_totals tables.
pub(crate) const CREATE_TABLES: SchemaStep = SchemaStep {
    feature: "notify",
    what: "create the notify_outbox, notify_subjects and notify_totals tables",
    sql: "
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    channel         TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    last_error      TEXT    NOT NULL DEFAULT '',
    finished_ms     INTEGER
);
CREATE INDEX notify_outbox_due ON notify_outbox(status, next_attempt_ms);
CREATE TABLE notify_subjects (
    job         TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    failing     INTEGER NOT NULL,
    since_ms    INTEGER NOT NULL,
    notified_ms INTEGER NOT NULL,
    PRIMARY KEY (job, subject)
);
CREATE TABLE notify_totals (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
",
};

/// How many failed notifications are kept for the dashboard (the total counts all).
pub const KEEP_FAILED: i64 = 500;

/// Sent notifications older than this are deleted (they were only kept to be looked at).
pub const KEEP_SENT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Not delivered yet; tried again at `next_attempt_ms`.
    Pending,
    /// Delivered (the receiver answered with success).
    Sent,
    /// Given up on: refused by the receiver, or out of attempts or time.
    Failed,
}

impl OutboxStatus {
    /// The word stored and shown (`pending`, `sent`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> OutboxStatus {
        match text {
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            _ => OutboxStatus::Pending,
        }
    }
}

/// A notification to be written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Fixed now and sent with every attempt (`Idempotency-Key`, `Message-ID`).
    pub idempotency_key: String,
    /// The `[[notify]]` entry's name.
    pub channel: String,
    /// `failure`, `recovery`, `reminder`, `success` or `start`.
    pub event: String,
    /// What is sent, as the notify crate's JSON; never a secret.
    pub payload: String,
    pub created_ms: i64,
}

/// One notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub idempotency_key: String,
    pub channel: String,
    pub event: String,
    pub payload: String,
    pub created_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub status: OutboxStatus,
    /// Why the last attempt failed (never holds a secret: the notify crate redacts it).
    pub last_error: String,
    /// When it was sent or given up on.
    pub finished_ms: Option<i64>,
}

/// What was last notified for one (job, subject): failing or not, since when, and when
/// a failure (or reminder) was last sent, so reminders stay at most daily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    /// The job kind (`backup`).
    pub job: String,
    /// What within the job (`db/postgres`; empty: the job as a whole).
    pub subject: String,
    pub failing: bool,
    /// When it entered this state.
    pub since_ms: i64,
    /// When a failure or reminder was last queued for it (0: never).
    pub notified_ms: i64,
}

const COLUMNS: &str = "id, idempotency_key, channel, event, payload, created_ms, attempts, \
                       next_attempt_ms, status, last_error, finished_ms";

fn entry(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: row.get(0)?,
        idempotency_key: row.get(1)?,
        channel: row.get(2)?,
        event: row.get(3)?,
        payload: row.get(4)?,
        created_ms: row.get(5)?,
        attempts: row.get(6)?,
        next_attempt_ms: row.get(7)?,
        status: OutboxStatus::parse(&row.get::<_, String>(8)?),
        last_error: row.get(9)?,
        finished_ms: row.get(10)?,
    })
}

impl StateDb {
    /// The last notified state of every subject of `job`.
    pub fn notify_subjects(&self, job: &str) -> Result<Vec<SubjectState>, StateError> {
        self.subjects_where("job = ?1", params![job])
    }

    /// Every subject, of any job, last seen failing.
    pub fn failing_subjects(&self) -> Result<Vec<SubjectState>, StateError> {
        self.subjects_where("failing", params![])
    }

    fn subjects_where(
        &self,
        filter: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<SubjectState>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT job, subject, failing, since_ms, notified_ms FROM notify_subjects
                 WHERE {filter} ORDER BY job, subject"
            ))
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map(values, |row| {
                Ok(SubjectState {
                    job: row.get(0)?,
                    subject: row.get(1)?,
                    failing: row.get(2)?,
                    since_ms: row.get(3)?,
                    notified_ms: row.get(4)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(rows)
    }

    /// Records new subject states and queues `notifications`, all or nothing; sent
    /// notifications past [`KEEP_SENT_MS`] are deleted on the way.
    pub fn record_notifications(
        &mut self,
        subjects: &[SubjectState],
        notifications: &[NewNotification],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let db = |e| StateError::db(&path, e);
        let tx = self.conn.transaction().map_err(db)?;
        for s in subjects {
            tx.execute(
                "INSERT INTO notify_subjects (job, subject, failing, since_ms, notified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job, subject) DO UPDATE SET failing = excluded.failing,
                    since_ms = excluded.since_ms, notified_ms = excluded.notified_ms",
                params![s.job, s.subject, s.failing, s.since_ms, s.notified_ms],
            )
            .map_err(db)?;
        }
        let mut newest = 0;
        for n in notifications {
            tx.execute(
                "INSERT INTO notify_outbox
                    (idempotency_key, channel, event, payload, created_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    n.idempotency_key,
                    n.channel,
                    n.event,
                    n.payload,
                    n.created_ms
                ],
            )
            .map_err(db)?;
            newest = newest.max(n.created_ms);
        }
        if newest > 0 {
            tx.execute(
                "DELETE FROM notify_outbox WHERE status = 'sent' AND finished_ms < ?1",
                params![newest - KEEP_SENT_MS],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Pending notifications whose next attempt is due at `now_ms`, oldest first, at
    /// most `limit`.
    pub fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        self.outbox_query(
            &format!(
                "SELECT {COLUMNS} FROM notify_outbox
                 WHERE status = 'pending' AND next_attempt_ms <= ?1
                 ORDER BY next_attempt_ms, id LIMIT ?2"
            ),
            params![now_ms, limit],
        )
    }

    /// Every notification not delivered nor given up on yet.
    pub fn pending_notifications(&self) -> Result<Vec<OutboxEntry>, StateError> {
        self.outbox_query(
            &format!("SELECT {COLUMNS} FROM notify_outbox WHERE status = 'pending' ORDER BY id"),
            [],
        )
    }

    /// The notification queued under `key`, whatever its status.
    pub fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StateError> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM notify_outbox WHERE idempotency_key = ?1"),
                params![key],
                entry,
            )
            .optional()
            .map_err(|e| StateError::db(self.path(), e))
    }

    /// Every notification in the outbox, oldest first (the dashboard's and tests' view).
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StateError> {
        self.outbox_query(
            &format!("SELECT {COLUMNS} FROM notify_outbox ORDER BY id"),
            [],
        )
    }

    /// The newest `limit` failed notifications, newest first, for the dashboard.
    pub fn recent_failed_notifications(&self, limit: u32) -> Result<Vec<OutboxEntry>, StateError> {
        self.outbox_query(
            &format!(
                "SELECT {COLUMNS} FROM notify_outbox WHERE status = 'failed'
                 ORDER BY finished_ms DESC, id DESC LIMIT ?1"
            ),
            params![limit],
        )
    }

    /// How many notifications were ever given up on (`drydock_notifications_failed_total`).
    pub fn failed_notifications_total(&self) -> Result<u64, StateError> {
        let n: Option<i64> = self
            .conn()
            .query_row(
                "SELECT value FROM notify_totals WHERE name = 'failed'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Marks notification `id` delivered by an attempt at `now_ms`.
    pub fn notification_sent(&self, id: i64, now_ms: i64) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE notify_outbox SET status = 'sent', attempts = attempts + 1,
                    last_error = '', finished_ms = ?2 WHERE id = ?1 AND status = 'pending'",
                params![id, now_ms],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// Records a failed attempt of notification `id`, to be tried again at `next_ms`.
    pub fn notification_retry(&self, id: i64, next_ms: i64, error: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt_ms = ?2,
                    last_error = ?3 WHERE id = ?1 AND status = 'pending'",
                params![id, next_ms, error],
            )
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(())
    }

    /// Records the last attempt of notification `id` and gives up on it: counted in the
    /// failed total, kept (the newest [`KEEP_FAILED`]) for the dashboard.
    pub fn notification_failed(
        &mut self,
        id: i64,
        now_ms: i64,
        error: &str,
        attempted: bool,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let db = |e| StateError::db(&path, e);
        let tx = self.conn.transaction().map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE notify_outbox SET status = 'failed', attempts = attempts + ?4,
                    last_error = ?3, finished_ms = ?2 WHERE id = ?1 AND status = 'pending'",
                params![id, now_ms, error, i64::from(attempted)],
            )
            .map_err(db)?;
        if changed > 0 {
            tx.execute(
                "INSERT INTO notify_totals (name, value) VALUES ('failed', 1)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(db)?;
            tx.execute(
                "DELETE FROM notify_outbox WHERE status = 'failed' AND id NOT IN
                    (SELECT id FROM notify_outbox WHERE status = 'failed'
                     ORDER BY finished_ms DESC, id DESC LIMIT ?1)",
                params![KEEP_FAILED],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn outbox_query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        let mut stmt = self
            .conn()
            .prepare(sql)
            .map_err(|e| StateError::db(self.path(), e))?;
        let rows = stmt
            .query_map(params, entry)
            .and_then(Iterator::collect)
            .map_err(|e| StateError::db(self.path(), e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(key: &str, at: i64) -> NewNotification {
        NewNotification {
            idempotency_key: key.into(),
            channel: "ops".into(),
            event: "failure".into(),
            payload: "{}".into(),
            created_ms: at,
        }
    }

    #[test]
    fn queued_notifications_survive_a_reopen_and_move_through_their_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        let failing = SubjectState {
            job: "backup".into(),
            subject: "db/postgres".into(),
            failing: true,
            since_ms: 1000,
            notified_ms: 1000,
        };
        db.record_notifications(
            std::slice::from_ref(&failing),
            &[queued("k1", 1000), queued("k2", 1000), queued("k3", 1000)],
        )
        .unwrap();
        drop(db);
        let mut db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.notify_subjects("backup").unwrap(), [failing]);
        assert!(db.notify_subjects("drill").unwrap().is_empty());
        assert!(db.due_notifications(999, 10).unwrap().is_empty());
        let due = db.due_notifications(1000, 10).unwrap();
        assert_eq!(due.len(), 3);
        db.notification_sent(due[0].id, 1100).unwrap();
        db.notification_retry(due[1].id, 5000, "HTTP 503").unwrap();
        db.notification_failed(due[2].id, 1200, "HTTP 404", true)
            .unwrap();
        // A second give-up of the same one is not counted twice.
        db.notification_failed(due[2].id, 1300, "HTTP 404", true)
            .unwrap();
        let k2 = db.outbox_entry("k2").unwrap().unwrap();
        assert_eq!(
            (
                k2.status,
                k2.attempts,
                k2.next_attempt_ms,
                k2.last_error.as_str()
            ),
            (OutboxStatus::Pending, 1, 5000, "HTTP 503")
        );
        assert_eq!(db.due_notifications(4999, 10).unwrap().len(), 0);
        assert_eq!(
            db.due_notifications(5000, 10).unwrap()[0].idempotency_key,
            "k2"
        );
        assert_eq!(
            db.outbox_entry("k1").unwrap().unwrap().status,
            OutboxStatus::Sent
        );
        assert_eq!(db.failed_notifications_total().unwrap(), 1);
        let failed = db.recent_failed_notifications(10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            (failed[0].idempotency_key.as_str(), failed[0].finished_ms),
            ("k3", Some(1200))
        );
        assert_eq!(db.pending_notifications().unwrap().len(), 1);
    }

    #[test]
    fn a_duplicate_key_queues_nothing_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        db.record_notifications(&[], &[queued("k1", 1)]).unwrap();
        let subject = SubjectState {
            job: "backup".into(),
            subject: String::new(),
            failing: true,
            since_ms: 2,
            notified_ms: 2,
        };
        db.record_notifications(&[subject], &[queued("k2", 2), queued("k1", 2)])
            .unwrap_err();
        // The transaction rolled back: neither the state nor k2 was recorded.
        assert!(db.notify_subjects("backup").unwrap().is_empty());
        assert!(db.outbox_entry("k2").unwrap().is_none());
    }

    #[test]
    fn old_sent_ones_are_deleted_and_failed_ones_kept_to_a_bound_with_the_total_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        db.record_notifications(&[], &[queued("old", 1)]).unwrap();
        let id = db.outbox_entry("old").unwrap().unwrap().id;
        db.notification_sent(id, 2).unwrap();
        let n = KEEP_FAILED + 3;
        let batch: Vec<_> = (0..n)
            .map(|i| queued(&format!("f{i}"), KEEP_SENT_MS + 10))
            .collect();
        db.record_notifications(&[], &batch).unwrap();
        assert!(
            db.outbox_entry("old").unwrap().is_none(),
            "a sent one past a week is gone"
        );
        for e in db.due_notifications(i64::MAX, u32::MAX).unwrap() {
            db.notification_failed(e.id, e.id, "down", true).unwrap();
        }
        assert_eq!(db.failed_notifications_total().unwrap(), n as u64);
        let kept = db.recent_failed_notifications(u32::MAX).unwrap();
        assert_eq!(kept.len() as i64, KEEP_FAILED);
        assert_eq!(kept[0].idempotency_key, format!("f{}", n - 1));
    }
}
