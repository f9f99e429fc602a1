//! The overdue watch: staleness watched apart from failures. On every pass of the
//! scheduler loop (at least once a minute, and right after any run ends) the daemon
//! asks which sources' newest good backup is older than `[serve] overdue_factor`
//! times their expected period ([`BackupPeriods`]; the RPO target for a source no
//! backup schedule covers), by the rule behind `drydock_backup_overdue`
//! ([`drydock_metrics::staleness`]), so the metric, and the notification agree. The
//! answer goes to the notifier as a check of job [`OVERDUE_JOB`] with one part per
//! source, failing when overdue: the state-change rules of `crates/notify` turn it into
//! one notification when a source becomes overdue, a reminder at most daily while it
//! stays so and a recovery once a good backup lands, even when no run failed (the
//! daemon up and nothing run: slots skipped, the repository held, a schedule that
//! does not cover the source as often as thought).
//!
//! A source with no good backup at all is overdue for the metric at once; for the
//! watch only once the daemon has been up longer than its limit without one, so a
//! fresh install is not told about backups it has not had the time to make.

use std::sync::Arc;
use std::time::Duration;

use drydock_domain::clock::{age_s, human};
use drydock_domain::{Config, Verdict};
use drydock_metrics::{DaemonFigures, MetricsError, Staleness};
use drydock_notify::{PartOutcome, RunOutcome, OVERDUE_JOB};
use drydock_state::StateDb;
use jiff::Timestamp;

use crate::schedule::BackupPeriods;

/// The command an overdue notification points to: each source's newest backup and age.
pub const LOOK_CLOSER: &str = "drydock status";

/// The watch's inputs: the config, the periods and when it started.
pub struct OverdueWatch {
    config: Arc<Config>,
    figures: DaemonFigures,
    since: Timestamp,
}

impl OverdueWatch {
    /// Watching `config`'s sources against `periods` from `since` (the daemon's start).
    pub fn new(config: Arc<Config>, periods: &BackupPeriods, since: Timestamp) -> OverdueWatch {
        let figures = DaemonFigures {
            backup_periods: periods.for_metrics(),
            overdue_factor: config.serve.overdue_factor,
            ..DaemonFigures::default()
        };
        OverdueWatch {
            config,
            figures,
            since,
        }
    }

    /// The check at `now`: one part per source (`service/source`, missing when
    /// overdue), and for each overdue one a line with its age and period.
    pub fn check(&self, db: &StateDb, now: Timestamp) -> Result<RunOutcome, MetricsError> {
        let stale = drydock_metrics::staleness(&self.config, db, now, &self.figures)?;
        let mut parts = Vec::new();
        let mut failed = Vec::new();
        for s in &stale {
            let overdue = s.overdue
                && (s.newest.is_some() || age_s(self.since, now) as f64 > s.limit.as_secs_f64());
            let subject = format!("{}/{}", s.service, s.source);
            if overdue {
                failed.push(format!("{subject}: {}", explain(s, now)));
            }
            parts.push(PartOutcome {
                subject,
                verdict: if overdue {
                    Verdict::Missing
                } else {
                    Verdict::Ok
                },
            });
        }
        Ok(RunOutcome {
            job: OVERDUE_JOB.to_string(),
            verdict: if failed.is_empty() {
                Verdict::Ok
            } else {
                Verdict::Missing
            },
            parts,
            failed,
            look_closer: LOOK_CLOSER.to_string(),
            finished: now,
        })
    }
}

/// "last good backup 3d 0h ago; expected every 1d 0h (overdue past 1d 6h)".
fn explain(s: &Staleness, now: Timestamp) -> String {
    let last = match s.newest {
        Some(at) => format!(
            "last good backup {} ago",
            span(Duration::from_secs(age_s(at, now).max(0) as u64))
        ),
        None => "no good backup yet".to_string(),
    };
    let expected = if s.scheduled {
        format!("expected every {}", span(s.period))
    } else {
        format!(
            "no backup schedule covers it, expected within its RPO target of {}",
            span(s.period)
        )
    };
    format!("{last}; {expected} (overdue past {})", span(s.limit))
}

/// A duration for people: "1d 6h", "2h 30m", "45s" (seconds schedules).
fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s < 60 => format!("{}s", d.as_secs_f64().round()),
        s => human(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(Duration::from_millis(2500)), "3s");
        assert_eq!(span(Duration::from_secs(90)), "1m");
        assert_eq!(span(Duration::from_secs(30 * 3600)), "1d 6h");
    }
}
