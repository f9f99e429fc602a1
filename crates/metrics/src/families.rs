//! The catalogue of metric families: every name drydock exposes, its type, its help
//! and its labels, in the order they are written. One table, so the README's list, the
//! tests and the encoder cannot disagree about what exists.
//!
//! Naming follows the Prometheus conventions: base units in the name (`_seconds`,
//! `_bytes`), `_total` only on counters (the encoder adds it: a counter is declared
//! here without it), timestamps as Unix seconds (`_timestamp_seconds`). Labels are
//! only names from the config (service, source, copy, check) or from small fixed sets
//! (job kinds, verdicts): never a backup id, a path or a message, so the number of
//! series is bounded by the config (one per source and copy, plus ten per source).

/// Whether a family is a gauge or a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilySpec {
    /// The name as declared; a counter's samples are exposed as `NAME_total`.
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Label names, in the order each sample gives their values.
    pub labels: &'static [&'static str],
}

impl FamilySpec {
    /// The name samples carry in the exposition (`_total` added to counters).
    pub fn exposed_name(&self) -> String {
        match self.kind {
            Kind::Gauge => self.name.to_string(),
            Kind::Counter => format!("{}_total", self.name),
        }
    }
}

const SOURCE: &[&str] = &["service", "source"];

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> FamilySpec {
    FamilySpec {
        name,
        kind: Kind::Gauge,
        help,
        labels,
    }
}

pub const BACKUP_LAST_SUCCESS: FamilySpec = gauge(
    "drydock_backup_last_success_timestamp_seconds",
    &["service", "source", "copy"],
    "Unix time of the consistent point of the newest backup of the source stored completely and verified in the copy (read back locally, or synced and checked in a remote)",
);
pub const BACKUP_DURATION: FamilySpec = gauge(
    "drydock_backup_duration_seconds",
    SOURCE,
    "How long the newest good backup of the source took to read and store",
);
pub const BACKUP_STORED: FamilySpec = gauge(
    "drydock_backup_stored_bytes",
    SOURCE,
    "Bytes the newest good backup of the source added to the repository, after deduplication and compression",
);
pub const BACKUP_LOGICAL: FamilySpec = gauge(
    "drydock_backup_logical_bytes",
    SOURCE,
    "Bytes of the source's data (dump stream or file tree) in its newest good backup",
);
pub const BACKUP_PERIOD: FamilySpec = gauge(
    "drydock_backup_expected_period_seconds",
    SOURCE,
    "The period the source is expected to be backed up in: its schedule's when the daemon gives it, else its RPO target",
);
pub const BACKUP_OVERDUE: FamilySpec = gauge(
    "drydock_backup_overdue",
    SOURCE,
    "1 when the source's newest good backup is older than the overdue factor times its expected period, or it has none; 0 otherwise",
);
pub const RPO: FamilySpec = gauge(
    "drydock_rpo_seconds",
    SOURCE,
    "Seconds of data a failure now would lose: now minus the consistent point of the source's newest good backup in any copy (negative when that backup is dated after now: the clock is wrong)",
);
pub const RPO_TARGET: FamilySpec = gauge(
    "drydock_rpo_target_seconds",
    SOURCE,
    "The source's RPO target from the config ([drill] targets for its priority)",
);
pub const DRILL_LAST_SUCCESS: FamilySpec = gauge(
    "drydock_drill_last_success_timestamp_seconds",
    SOURCE,
    "Unix time the newest drill that passed for the source finished",
);
pub const DRILL_RTO: FamilySpec = gauge(
    "drydock_drill_rto_seconds",
    SOURCE,
    "Recovery time the newest passed drill of the source measured",
);
pub const RTO_TARGET: FamilySpec = gauge(
    "drydock_rto_target_seconds",
    SOURCE,
    "The source's RTO target from the config ([drill] targets for its priority)",
);
pub const HEALTH_STATUS: FamilySpec = gauge(
    "drydock_health_status",
    &["service", "check"],
    "Result of the check in the newest recorded health run of the service: 0 healthy, 1 warning, 2 critical",
);
pub const HEALTH_LAST_RUN: FamilySpec = gauge(
    "drydock_health_last_run_timestamp_seconds",
    &[],
    "Unix time of the newest recorded health run",
);
pub const RESTORE_PENDING: FamilySpec = gauge(
    "drydock_restore_pending",
    &["service"],
    "1 while the service's data was wiped by an interrupted destructive drill or restore and still waits for its restore; 0 otherwise",
);
pub const RUNS: FamilySpec = FamilySpec {
    name: "drydock_runs",
    kind: Kind::Counter,
    help: "Jobs the daemon ran, by job kind and verdict",
    labels: &["job", "verdict"],
};
pub const NOTIFICATIONS_FAILED: FamilySpec = FamilySpec {
    name: "drydock_notifications_failed",
    kind: Kind::Counter,
    help: "Notifications given up on after their retries",
    labels: &[],
};
pub const SCHEDULER_LAST_TICK: FamilySpec = gauge(
    "drydock_scheduler_last_tick_timestamp_seconds",
    &[],
    "Unix time the daemon's scheduler last looked at the clock",
);

/// Every family, in the order of the exposition.
pub const ALL: &[FamilySpec] = &[
    BACKUP_LAST_SUCCESS,
    BACKUP_DURATION,
    BACKUP_STORED,
    BACKUP_LOGICAL,
    BACKUP_PERIOD,
    BACKUP_OVERDUE,
    RPO,
    RPO_TARGET,
    DRILL_LAST_SUCCESS,
    DRILL_RTO,
    RTO_TARGET,
    HEALTH_STATUS,
    HEALTH_LAST_RUN,
    RESTORE_PENDING,
    RUNS,
    NOTIFICATIONS_FAILED,
    SCHEDULER_LAST_TICK,
];
