//! Whether each source's newest good backup is overdue: the one rule behind
//! `drydock_backup_overdue` and the daemon's overdue notifications, so the metric and
//! the notification never disagree.
//!
//! A source's expected period is its backup schedule's (the daemon's
//! [`DaemonFigures::backup_periods`]) or, when no schedule covers it, its RPO target; it
//! is overdue when its newest good backup in any copy is older than the overdue factor
//! times that period, or when it has none.

use std::collections::BTreeMap;
use std::time::Duration;

use drydock_domain::config::{Config, SourceConfig};
use drydock_domain::Priority;
use drydock_state::StateDb;
use jiff::Timestamp;

use crate::figures::DaemonFigures;
use crate::MetricsError;

/// One source's staleness.
#[derive(Debug, Clone, PartialEq)]
pub struct Staleness {
    pub service: String,
    pub source: String,
    /// The consistent point of its newest good backup in any copy.
    pub newest: Option<Timestamp>,
    /// What it is measured against.
    pub period: Duration,
    /// `period` is its schedule's (not its RPO target).
    pub scheduled: bool,
    /// How old the newest backup may be: the factor times the period.
    pub limit: Duration,
    pub overdue: bool,
}

/// The staleness of one source whose newest good backup is `newest`.
pub(crate) fn judge(
    config: &Config,
    service: &str,
    source: &SourceConfig,
    newest: Option<Timestamp>,
    now: Timestamp,
    daemon: &DaemonFigures,
) -> Staleness {
    let scheduled = daemon.period_of(service, source.name());
    let period = scheduled.unwrap_or_else(|| config.drill.targets_for(source.priority()).1);
    let limit = period.mul_f64(daemon.overdue_factor);
    let overdue = match newest {
        None => true,
        Some(at) => drydock_domain::clock::age_s(at, now) as f64 > limit.as_secs_f64(),
    };
    Staleness {
        service: service.to_string(),
        source: source.name().to_string(),
        newest,
        period,
        scheduled: scheduled.is_some(),
        limit,
        overdue,
    }
}

/// The staleness of every source `status` lists (every priority but `none`), in config
/// order, from the state database as of `now`.
pub fn staleness(
    config: &Config,
    state: &StateDb,
    now: Timestamp,
    daemon: &DaemonFigures,
) -> Result<Vec<Staleness>, MetricsError> {
    let mut newest: BTreeMap<(String, String), Timestamp> = BTreeMap::new();
    for g in state.last_good_backups()? {
        let at = g.record.at;
        newest
            .entry((g.record.service, g.record.source))
            .and_modify(|t| *t = (*t).max(at))
            .or_insert(at);
    }
    Ok(config
        .sources()
        .filter(|(_, _, d)| d.priority() != Priority::None)
        .map(|(service, _, d)| {
            let at = newest
                .get(&(service.to_string(), d.name().to_string()))
                .copied();
            judge(config, service, d, at, now, daemon)
        })
        .collect())
}
