//! The figures, read at scrape time: the config says which services, sources and
//! copies exist (the label sets), the state database what drydock last established
//! about them, the daemon's [`DaemonFigures`] the rest. Nothing here opens a
//! repository or contacts a server: a scrape is a handful of indexed queries.
//!
//! The figures mean what `drydock status` shows, answered from the state database
//! (status reads the local copy's catalog): a backup counts from its consistent point
//! (the backup's start when the source gave none), only when it was stored completely,
//! and, per copy, only once drydock verified it there.

use std::collections::BTreeMap;

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::Priority;
use drydock_state::{LastGoodBackup, StateDb};
use jiff::Timestamp;

use crate::families::{self, FamilySpec};
use crate::figures::{verdict_label, DaemonFigures};
use crate::staleness;
use crate::MetricsError;

/// One sample: its label values (in the family's label order) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Gauge(f64),
    Counter(u64),
}

/// Every family with its samples, in the catalogue's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub families: Vec<(FamilySpec, Vec<Sample>)>,
}

impl Collected {
    fn new() -> Collected {
        Collected {
            families: families::ALL.iter().map(|f| (*f, Vec::new())).collect(),
        }
    }

    fn push(&mut self, family: FamilySpec, labels: &[&str], value: Value) {
        debug_assert_eq!(labels.len(), family.labels.len(), "{}", family.name);
        if let Some((_, samples)) = self.families.iter_mut().find(|(f, _)| *f == family) {
            samples.push(Sample {
                labels: labels.iter().map(|l| l.to_string()).collect(),
                value,
            });
        }
    }

    fn gauge(&mut self, family: FamilySpec, labels: &[&str], value: f64) {
        self.push(family, labels, Value::Gauge(value));
    }
}

fn unix_s(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// Reads every figure.
pub fn collect(
    config: &Config,
    state: &StateDb,
    now: Timestamp,
    daemon: &DaemonFigures,
) -> Result<Collected, MetricsError> {
    let mut out = Collected::new();
    let mut copies = vec![LOCAL_COPY.to_string()];
    copies.extend(config.remotes.iter().map(|r| r.name.clone()));

    let mut good: BTreeMap<(&str, &str), Vec<&LastGoodBackup>> = BTreeMap::new();
    let last_good = state.last_good_backups()?;
    for g in &last_good {
        good.entry((g.record.service.as_str(), g.record.source.as_str()))
            .or_default()
            .push(g);
    }
    let drills = state.last_passed_drills()?;
    let health = state.latest_health()?;
    let pending = state.pending_restores()?;

    for (service, svc) in &config.services {
        // The sources `status` lists: a priority of `none` is never backed up.
        for d in svc.data.iter().filter(|d| d.priority() != Priority::None) {
            let source = d.name();
            let labels = [service.as_str(), source];
            let backups = good.get(&(service.as_str(), source));
            for copy in &copies {
                let found = backups.and_then(|b| b.iter().find(|g| &g.copy == copy));
                if let Some(g) = found {
                    out.gauge(
                        families::BACKUP_LAST_SUCCESS,
                        &[service, source, copy],
                        unix_s(g.record.at),
                    );
                }
            }
            // The newest good backup in any copy: what a restore now would get.
            let newest = backups.and_then(|b| b.iter().max_by_key(|g| g.record.at));
            if let Some(g) = newest {
                let r = &g.record;
                out.gauge(
                    families::BACKUP_DURATION,
                    &labels,
                    r.duration_ms as f64 / 1000.0,
                );
                out.gauge(families::BACKUP_STORED, &labels, r.stored_bytes as f64);
                out.gauge(families::BACKUP_LOGICAL, &labels, r.logical_bytes as f64);
                out.gauge(
                    families::RPO,
                    &labels,
                    drydock_domain::clock::age_s(r.at, now) as f64,
                );
            }
            let (rto_target, rpo_target) = config.drill.targets_for(d.priority());
            let stale =
                staleness::judge(config, service, d, newest.map(|g| g.record.at), now, daemon);
            out.gauge(families::BACKUP_PERIOD, &labels, stale.period.as_secs_f64());
            out.gauge(
                families::BACKUP_OVERDUE,
                &labels,
                f64::from(u8::from(stale.overdue)),
            );
            out.gauge(families::RPO_TARGET, &labels, rpo_target.as_secs_f64());
            if let Some(x) = drills
                .iter()
                .find(|x| &x.service == service && x.source == source)
            {
                out.gauge(families::DRILL_LAST_SUCCESS, &labels, unix_s(x.finished_at));
                if let Some(rto) = x.rto_ms {
                    out.gauge(families::DRILL_RTO, &labels, rto as f64 / 1000.0);
                }
            }
            out.gauge(families::RTO_TARGET, &labels, rto_target.as_secs_f64());
        }
        if let Some(h) = health.iter().find(|h| &h.health.service == service) {
            for check in &h.health.checks {
                let severity = match check.status.as_str() {
                    "healthy" => 0.0,
                    "warning" => 1.0,
                    _ => 2.0,
                };
                out.gauge(families::HEALTH_STATUS, &[service, &check.name], severity);
            }
        }
        let waiting = pending.iter().any(|p| &p.service == service);
        out.gauge(
            families::RESTORE_PENDING,
            &[service],
            f64::from(u8::from(waiting)),
        );
    }
    if let Some((at, _, _)) = state.latest_health_run()? {
        if let Ok(at) = at.parse::<Timestamp>() {
            out.gauge(families::HEALTH_LAST_RUN, &[], unix_s(at));
        }
    }

    let mut runs: Vec<_> = daemon.runs.iter().collect();
    runs.sort_by_key(|r| (r.job.as_str(), verdict_label(r.verdict)));
    for r in runs {
        out.push(
            families::RUNS,
            &[&r.job, verdict_label(r.verdict)],
            Value::Counter(r.count),
        );
    }
    out.push(
        families::NOTIFICATIONS_FAILED,
        &[],
        Value::Counter(daemon.notifications_failed),
    );
    if let Some(tick) = daemon.scheduler_last_tick {
        out.gauge(families::SCHEDULER_LAST_TICK, &[], unix_s(tick));
    }
    Ok(out)
}
