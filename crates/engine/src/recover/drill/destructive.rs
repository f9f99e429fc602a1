//! `drydock drill --destructive`: the real thing, for staging. Per service: stop it,
//! wipe its data (drop the database, flush the instance, delete the files), restore in
//! place from a verified backup, start it, wait for its health checks, and verify
//! fingerprints, the canary and any test data `populate` wrote.
//!
//! Nothing is destroyed without a verified backup: the drill's own backup (taken with
//! fresh canaries, read back after writing) must hold every affected source, and a
//! backup named with `--use-backup` must be recorded verified; otherwise the drill is
//! refused before anything is stopped. The wipe has to be confirmed (typed on a
//! terminal, or `--force`). The service's pending restore is recorded *before* the wipe, so a
//! drill killed between wipe and restore leaves the record behind: `status` and
//! `drill` then say which backup to restore, and `drydock restore` completes it (and
//! clears the record once verified). A failed step stops the drill: later steps and
//! later services are not attempted, and the report says the state the service is in
//! and how to recover.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::plan::{self, Selection};
use drydock_domain::{Event, EventSink, Manifest, SourceRecord};
use drydock_runtimes::State;
use drydock_sources::RestoreMode;
use drydock_state::{CopyState, StateDb};
use jiff::Timestamp;

use super::report::{
    ms, new_token, Canary, DrillOptions, DrillReport, DrillStatus, DrilledSource, ServiceOutcome,
    Step, TestDataCheck,
};
use crate::backup;
use crate::copies::local_catalog;
use crate::health::{self, ServiceStatus};
use crate::restore::{self, BackupRef, RestoreOptions, RestoreReport, RestoreStatus};
use crate::RunContext;
use crate::{populate, EngineError};

/// How long a restored service may take to pass its health checks.
const HEALTH_WAIT: Duration = Duration::from_secs(120);

/// One affected service and the backup records it will be restored from.
struct Plan<'c> {
    service: &'c str,
    backup_id: String,
    records: Vec<SourceRecord>,
}

pub(crate) fn run(
    config: &Config,
    opts: &DrillOptions,
    ctx: &RunContext,
) -> Result<DrillReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let started_at = Timestamp::now();
    let selection = Selection {
        all: true,
        services: opts.services.clone(),
        priorities: vec![],
    };
    let planned = plan::plan(config, &selection)?;
    if planned.is_empty() {
        return Err(EngineError::Refused(
            "no data source to drill in the selected services".into(),
        ));
    }
    let state = StateDb::open(&config.stack.state_dir)?;

    // Preflight: nothing is stopped or written until every check passed.
    let mut services: Vec<&str> = planned.iter().map(|p| p.service).collect();
    services.dedup();
    for service in &services {
        let svc = &config.services[*service];
        let runtime = drydock_runtimes::build(service, &svc.runtime);
        let file_level = planned
            .iter()
            .filter(|p| p.service == *service)
            .any(|p| drydock_sources::build(p.source).restore_mode() == RestoreMode::FileLevel);
        if file_level && !runtime.can_stop() {
            return Err(EngineError::Refused(format!(
                "service `{service}` has files on disk to wipe and restore, but its runtime `{}` does not let drydock stop it; declare a `process` (or `none`) runtime",
                runtime.kind()
            )));
        }
    }
    // A named backup must be verified already; otherwise the drill takes its own and
    // wipes nothing unless that one is complete and verified.
    let named_backup = match opts.use_backup {
        Some(_) => Some(latest_verified(
            config,
            &planned,
            opts,
            &state,
            events.as_ref(),
        )?),
        None => None,
    };
    let labels: Vec<String> = planned.iter().map(|p| p.label()).collect();
    if !opts.force {
        let what = format!(
            "A destructive drill stops {}, DELETES the data of {} and restores it from {}.",
            services.join(", "),
            labels.join(", "),
            match &named_backup {
                Some(id) => format!("backup {id}"),
                None => "a fresh, verified backup taken first".to_string(),
            }
        );
        let refusal = match ctx.confirm(&what) {
            Some(true) => None,
            Some(false) => Some("not confirmed; nothing was stopped or changed".to_string()),
            None => Some(format!(
                "{what} Nothing was changed. Re-run on a terminal to confirm, or with --force"
            )),
        };
        if let Some(reason) = refusal {
            return Err(EngineError::Refused(reason));
        }
    }

    // The drill's own backup, with canaries (unless a backup was named).
    let mut canaries: BTreeMap<String, String> = BTreeMap::new();
    let backup_report = if opts.use_backup.is_none() {
        for p in &planned {
            let token = new_token();
            drydock_sources::build(p.source)
                .write_canary(&token)
                .map_err(|e| {
                    EngineError::Refused(format!(
                        "{}: could not write the drill canary: {e}; nothing was wiped",
                        p.label()
                    ))
                })?;
            canaries.insert(p.label(), token);
        }
        events.emit(Event::Step {
            message: "backing up with fresh canaries before wiping".into(),
        });
        let report = backup::backup(config, &selection, ctx)?;
        let local_ok = report
            .copies
            .iter()
            .any(|c| c.name == LOCAL_COPY && c.status == "verified");
        let missing: Vec<String> = report
            .sources
            .iter()
            .filter(|s| !s.is_restorable())
            .map(|s| format!("{} ({})", s.label(), s.error.clone().unwrap_or_default()))
            .collect();
        if !report.recorded || !local_ok || !missing.is_empty() {
            return Err(EngineError::Refused(format!(
                "the drill's backup {} is not complete and verified{}; nothing was wiped",
                report.id,
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (not stored: {})", missing.join(", "))
                }
            )));
        }
        Some(report)
    } else {
        None
    };
    let backup_id = match (&backup_report, named_backup) {
        (Some(b), _) => b.id.clone(),
        (None, Some(id)) => id,
        (None, None) => unreachable!("a destructive drill either takes a backup or names one"),
    };
    let (_, catalog) = local_catalog(config, events.as_ref())?;
    let manifest: &Manifest = &catalog
        .manifest(&backup_id)
        .ok_or_else(|| {
            EngineError::NoBackup(format!("backup {backup_id} is not in the local copy"))
        })?
        .manifest;
    let plans: Vec<Plan<'_>> = services
        .iter()
        .map(|service| Plan {
            service,
            backup_id: backup_id.clone(),
            records: manifest
                .sources
                .iter()
                .filter(|r| r.service == *service && r.is_restorable())
                .cloned()
                .collect(),
        })
        .collect();

    let stack_clock = Instant::now();
    let mut outcomes = Vec::new();
    let mut sources = Vec::new();
    let mut failed = false;
    for plan in &plans {
        if failed {
            outcomes.push(ServiceOutcome {
                service: plan.service.to_string(),
                backup_id: plan.backup_id.clone(),
                status: "not-reached",
                steps: vec![],
                state: Some("untouched".into()),
                recover: None,
                health: None,
            });
            continue;
        }
        let (outcome, drilled) = drill_service(config, plan, &canaries, &state, ctx);
        failed = outcome.status != "recovered";
        outcomes.push(outcome);
        sources.extend(drilled);
    }
    let rto_ms = ms(stack_clock.elapsed());
    let rpo_ms = sources
        .iter()
        .filter_map(|r: &DrilledSource| r.rpo_ms)
        .max();
    let passed = !failed && sources.iter().all(|r| r.status == DrillStatus::Passed);
    // Targets are met only by a drill that ran and passed: a time measured on a
    // failed or skipped restore proves nothing.
    let targets_met = passed
        && !sources.is_empty()
        && rto_ms <= ms(config.drill.rto_target)
        && sources
            .iter()
            .all(|r| r.rto_met != Some(false) && r.rpo_met != Some(false));
    Ok(DrillReport {
        kind: "destructive",
        stack: config.stack.name.clone(),
        passed,
        targets_met,
        started_at,
        finished_at: Timestamp::now(),
        backup: backup_report,
        rto_ms,
        rpo_ms,
        rto_target_ms: ms(config.drill.rto_target),
        rpo_target_ms: ms(config.drill.rpo_target),
        sources,
        services: outcomes,
        report_files: vec![],
    })
}

/// The newest backup in the local copy that holds every planned source and is recorded
/// verified there (or the one `--use-backup` names, which must be verified).
fn latest_verified(
    config: &Config,
    planned: &[plan::PlannedSource<'_>],
    opts: &DrillOptions,
    state: &StateDb,
    events: &dyn EventSink,
) -> Result<String, EngineError> {
    let (_, catalog) = local_catalog(config, events).map_err(|e| {
        EngineError::Refused(format!(
            "no verified backup to restore from ({e}); nothing was stopped or changed"
        ))
    })?;
    let verified = state.copy_records(LOCAL_COPY)?;
    let complete = |m: &Manifest| {
        planned.iter().all(|p| {
            m.source(p.service, p.source.name())
                .is_some_and(SourceRecord::is_restorable)
        })
    };
    let is_verified = |id: &str| {
        verified
            .get(id)
            .is_some_and(|r| r.state == CopyState::Verified)
    };
    let candidates = catalog.manifests.iter().rev().map(|m| &m.manifest);
    let found = match &opts.use_backup {
        Some(BackupRef::Id(id)) => candidates
            .clone()
            .find(|m| m.id.as_str() == id)
            .filter(|m| complete(m) && is_verified(m.id.as_str())),
        _ => candidates
            .clone()
            .find(|m| complete(m) && is_verified(m.id.as_str())),
    };
    found.map(|m| m.id.to_string()).ok_or_else(|| {
        let labels: Vec<String> = planned.iter().map(|p| p.label()).collect();
        EngineError::Refused(format!(
            "no verified backup holds {}{}; a destructive drill never wipes data without one. Run `drydock backup` (or `drydock verify` for an existing backup) first; nothing was stopped or changed",
            labels.join(", "),
            match &opts.use_backup {
                Some(BackupRef::Id(id)) => format!(" in backup {id}"),
                _ => String::new(),
            }
        ))
    })
}

/// Why a wipe or a recovery stopped: the state the service is left in, and what the
/// operator runs to recover.
pub(crate) struct Stopped {
    pub state: String,
    pub recover: Option<String>,
}

/// What the wipe left behind.
pub(crate) struct Wiped {
    /// The simulated failure: data written after a backup's consistent point is lost.
    pub failure_point: Timestamp,
}

/// What the recovery proved.
pub(crate) struct Recovered {
    pub restore: RestoreReport,
    pub health: ServiceStatus,
    /// Restore start to the service healthy again.
    pub recovered_ms: u64,
}

fn step(steps: &mut Vec<Step>, name: &str, clock: Instant) {
    steps.push(Step {
        name: name.to_string(),
        ms: ms(clock.elapsed()),
    });
}

/// Stops the service (when drydock may; databases restore over their protocol),
/// records the restore owed from `backup_id`, then wipes every source of `records`.
pub(crate) fn stop_and_wipe(
    config: &Config,
    service: &str,
    backup_id: &str,
    records: &[SourceRecord],
    state: &StateDb,
    events: &dyn EventSink,
    steps: &mut Vec<Step>,
) -> Result<Wiped, Stopped> {
    let svc = &config.services[service];
    let runtime = drydock_runtimes::build(service, &svc.runtime);
    let restore_cmd = format!("drydock restore {backup_id} --service {service} --force");
    let clock = Instant::now();
    let was_running = runtime.can_stop() && runtime.state().ok() == Some(State::Running);
    if was_running {
        events.emit(Event::Step {
            message: format!("stopping service `{service}`"),
        });
        runtime.stop().map_err(|e| Stopped {
            state: format!("could not be stopped ({e}); nothing was wiped, the data is as it was"),
            recover: None,
        })?;
        step(steps, "stop", clock);
    }
    if let Err(e) = state.set_pending_restore(
        service,
        backup_id,
        "its data was wiped on purpose (drill or certify)",
    ) {
        let start_again = was_running.then(|| runtime.start());
        return Err(Stopped {
            state: format!(
                "the pending restore could not be recorded ({e}), so nothing was wiped{}",
                match start_again {
                    Some(Err(e)) => format!("; starting it again failed: {e}"),
                    Some(Ok(())) => "; it was started again".into(),
                    None => String::new(),
                }
            ),
            recover: None,
        });
    }
    let failure_point = Timestamp::now();
    let clock = Instant::now();
    for record in records {
        let source_config = svc
            .data
            .iter()
            .find(|d| d.name() == record.source)
            .expect("backed-up sources come from the config");
        events.emit(Event::Step {
            message: format!("wiping {}", record.label()),
        });
        drydock_sources::build(source_config).wipe().map_err(|e| Stopped {
            state: format!(
                "wiping {} failed midway ({e}); its data may be partly gone and the service is stopped",
                record.label()
            ),
            recover: Some(restore_cmd.clone()),
        })?;
    }
    step(steps, "wipe", clock);
    Ok(Wiped { failure_point })
}

/// Restores the service in place from `backup_id` (verified by `restore` itself),
/// starts it when drydock may, and waits for its health checks.
pub(crate) fn restore_and_start(
    config: &Config,
    service: &str,
    backup_id: &str,
    ctx: &RunContext,
    steps: &mut Vec<Step>,
) -> Result<Recovered, Stopped> {
    let events = &ctx.events;
    let svc = &config.services[service];
    let runtime = drydock_runtimes::build(service, &svc.runtime);
    let restore_cmd = format!("drydock restore {backup_id} --service {service} --force");
    let restore_clock = Instant::now();
    let restored = restore::restore(
        config,
        &RestoreOptions {
            backup: BackupRef::Id(backup_id.to_string()),
            from: None,
            services: vec![service.to_string()],
            all: false,
            force: true,
            // Other containers using a wiped volume are stopped and started again too.
            stop: true,
        },
        ctx,
    );
    step(steps, "restore and verify", restore_clock);
    let restored = match restored {
        Ok(r) if r.verified => r,
        Ok(r) => {
            let why: Vec<String> = r
                .sources
                .iter()
                .filter(|s| s.status != RestoreStatus::Verified)
                .map(|s| {
                    format!(
                        "{}/{}: {}",
                        s.service,
                        s.source,
                        s.error.clone().unwrap_or_else(|| s.differences.join("; "))
                    )
                })
                .collect();
            return Err(Stopped {
                state: format!(
                    "its data was wiped and the restore from {backup_id} did not verify ({}); the service is stopped",
                    why.join(", ")
                ),
                recover: Some(format!("{restore_cmd} (or from another backup: `drydock backups`)")),
            });
        }
        Err(e) => {
            return Err(Stopped {
                state: format!("its data was wiped and the restore could not run ({e}); the service is stopped"),
                recover: Some(restore_cmd),
            });
        }
    };
    let clock = Instant::now();
    if runtime.can_stop() && runtime.state().ok() != Some(State::Running) {
        events.emit(Event::Step {
            message: format!("starting service `{service}`"),
        });
        runtime.start().map_err(|e| Stopped {
            state: format!("its data was restored and verified, but it did not start ({e})"),
            recover: Some(format!(
                "drydock heal {service} (or `drydock diagnose {service}`)"
            )),
        })?;
    }
    let (health, gave_up) = health::wait_healthy(config, service, HEALTH_WAIT, || None);
    step(steps, "start and wait for health", clock);
    if health.status > ServiceStatus::Degraded {
        let failing: Vec<String> = health
            .checks
            .iter()
            .filter(|c| c.status != drydock_health::Status::Healthy)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        return Err(Stopped {
            state: format!(
                "its data was restored and verified, but it is {} after {} s ({}){}",
                health.status.as_str(),
                HEALTH_WAIT.as_secs(),
                failing.join("; "),
                gave_up.map(|g| format!("; {g}")).unwrap_or_default()
            ),
            recover: Some(format!("drydock diagnose {service}")),
        });
    }
    Ok(Recovered {
        restore: restored,
        health: health.status,
        recovered_ms: ms(restore_clock.elapsed()),
    })
}

/// The test data `populate` wrote into `service/source`, measured in `live` now;
/// `None` when nothing was populated there.
pub(crate) fn test_data_check(
    state: &StateDb,
    service: &str,
    source: &str,
    live: Option<&dyn drydock_sources::DataSource>,
) -> Option<TestDataCheck> {
    let expected = populate::expected_test_data(state, service, source).ok()??;
    Some(match live.map(|s| s.measure_test_data()) {
        Some(Ok(measured)) => {
            let differences = measured.differences(&expected);
            TestDataCheck {
                matched: differences.is_empty(),
                differences,
            }
        }
        Some(Err(e)) => TestDataCheck {
            matched: false,
            differences: vec![format!("could not be measured: {e}")],
        },
        None => TestDataCheck {
            matched: false,
            differences: vec!["the source is no longer configured".into()],
        },
    })
}

/// Stop, wipe, restore, start, wait for health, check canaries and test data.
fn drill_service(
    config: &Config,
    plan: &Plan<'_>,
    canaries: &BTreeMap<String, String>,
    state: &StateDb,
    ctx: &RunContext,
) -> (ServiceOutcome, Vec<DrilledSource>) {
    let events = &ctx.events;
    let service = plan.service;
    let svc = &config.services[service];
    let mut outcome = ServiceOutcome {
        service: service.to_string(),
        backup_id: plan.backup_id.clone(),
        status: "failed",
        steps: vec![],
        state: None,
        recover: None,
        health: None,
    };
    let fail = |mut outcome: ServiceOutcome, stopped: Stopped| {
        events.emit(Event::Warning {
            message: format!(
                "destructive drill of `{service}` stopped: {}",
                stopped.state
            ),
        });
        outcome.state = Some(stopped.state);
        outcome.recover = stopped.recover;
        (outcome, Vec::new())
    };
    let wiped = match stop_and_wipe(
        config,
        service,
        &plan.backup_id,
        &plan.records,
        state,
        events.as_ref(),
        &mut outcome.steps,
    ) {
        Ok(w) => w,
        Err(stopped) => return fail(outcome, stopped),
    };
    let failure_point = wiped.failure_point;
    let recovered =
        match restore_and_start(config, service, &plan.backup_id, ctx, &mut outcome.steps) {
            Ok(r) => r,
            Err(stopped) => return fail(outcome, stopped),
        };
    outcome.health = Some(recovered.health.as_str().to_string());
    let recovered_ms = recovered.recovered_ms;
    let restored = recovered.restore;

    // 5. Canaries and test data, per source.
    let mut drilled = Vec::new();
    for rs in &restored.sources {
        let label = format!("{}/{}", rs.service, rs.source);
        let source_config = svc.data.iter().find(|d| d.name() == rs.source);
        let live = source_config.map(drydock_sources::build);
        let canary = match (canaries.get(&label), live.as_ref().map(|s| s.read_canary())) {
            (Some(want), Some(Ok(Some(got)))) if &got == want => Canary {
                status: "present",
                detail: Some(want.clone()),
            },
            (Some(want), got) => Canary {
                status: "missing",
                detail: Some(format!(
                    "wrote {want} before the backup, the restored data holds {}",
                    match got {
                        Some(Ok(Some(g))) => g,
                        Some(Err(e)) => format!("nothing readable ({e})"),
                        _ => "none".into(),
                    }
                )),
            },
            (None, _) => Canary {
                status: "none",
                detail: None,
            },
        };
        let test_data = test_data_check(state, &rs.service, &rs.source, live.as_deref());
        let (rto_target, rpo_target) = config.drill.targets_for(rs.priority);
        let record = plan.records.iter().find(|r| r.source == rs.source);
        let rpo_ms = record
            .and_then(|r| r.consistent_at)
            .map(|c| failure_point.duration_since(c).as_millis().max(0) as u64);
        let mut differences = rs.differences.clone();
        if let Some(live) = &live {
            match live.left_out() {
                Ok(gaps) => differences.extend(gaps),
                Err(e) => {
                    differences.push(format!("could not check for data left out of backups: {e}"))
                }
            }
        }
        let ok = canary.status != "missing"
            && test_data.as_ref().is_none_or(|t| t.matched)
            && differences.is_empty();
        drilled.push(DrilledSource {
            service: rs.service.clone(),
            source: rs.source.clone(),
            kind: rs.kind,
            priority: rs.priority,
            status: if ok {
                DrillStatus::Passed
            } else {
                DrillStatus::Failed
            },
            backup_id: Some(rs.backup_id.clone()),
            sandbox: Some(format!("in place (copy `{}`)", rs.copy)),
            canary,
            differences,
            notes: rs.notes.clone(),
            counts: rs.restored_counts.clone(),
            fingerprint_matched: true,
            rto_ms: Some(recovered_ms),
            rpo_ms,
            rto_target_ms: ms(rto_target),
            rpo_target_ms: ms(rpo_target),
            // Judged only for a restore that proved itself.
            rto_met: ok.then_some(recovered_ms <= ms(rto_target)),
            rpo_met: rpo_ms.filter(|_| ok).map(|r| r <= ms(rpo_target)),
            steps: outcome.steps.clone(),
            test_data,
            error: None,
        });
    }
    if drilled.iter().all(|d| d.status == DrillStatus::Passed) {
        outcome.status = "recovered";
    } else {
        outcome.state = Some(
            "restored, verified by fingerprint and healthy, but a canary or the test data did not come back"
                .into(),
        );
    }
    (outcome, drilled)
}
