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
//!
//! `run` reads as its steps: preflight (stoppable, a verified backup, confirmed),
//! the drill's own backup with canaries, then per service: stop and wipe, restore and
//! start, canaries and test data (the in-place steps are `in_place.rs`, shared with
//! `certify`). A safe point before each service's wipe: a drill cancelled there wipes
//! nothing more; one cancelled during a restore returns [`EngineError::Cancelled`] with
//! the service's owed restore recorded, and `status` shows it.

use std::collections::BTreeMap;
use std::time::Instant;

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::plan::{self, PlannedSource, Selection};
use drydock_domain::{Event, EventSink, Manifest, SourceRecord};
use drydock_sources::RestoreMode;
use drydock_state::{CopyState, StateDb};
use jiff::Timestamp;

use super::in_place::Stopped;
use super::report::{
    ms, new_token, Canary, CanaryStatus, DrillKind, DrillOptions, DrillReport, DrillStatus,
    DrilledSource, ServiceDrillStatus, ServiceOutcome,
};
use crate::backup::{self, BackupReport};
use crate::copies::{local_catalog, Catalog};
use crate::restore::{BackupRef, RestoredSource};
use crate::EngineError;
use crate::RunContext;

use super::in_place::{restore_and_start, stop_and_wipe, test_data_check};

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
    refuse_unstoppable(config, &planned, &services)?;
    // A named backup must be verified already; otherwise the drill takes its own and
    // wipes nothing unless that one is complete and verified.
    let named_backup = match opts.use_backup {
        Some(_) => Some(latest_verified(
            config,
            &planned,
            opts,
            &state,
            ctx.events(),
        )?),
        None => None,
    };
    confirm_wipe(&planned, &services, named_backup.as_deref(), opts, ctx)?;
    ctx.check_cancelled()?;
    let (canaries, backup_report) = canaries_and_backup(config, &planned, &selection, opts, ctx)?;
    ctx.check_cancelled()?;
    let backup_id = match (&backup_report, named_backup) {
        (Some(b), _) => b.id.clone(),
        (None, Some(id)) => id,
        (None, None) => unreachable!("a destructive drill either takes a backup or names one"),
    };
    let (_, catalog) = local_catalog(config, ctx.events())?;
    let plans = plans(&catalog, &backup_id, &services)?;
    let stack_clock = Instant::now();
    let (outcomes, sources) = drill_services(config, &plans, &canaries, &state, ctx)?;
    let rto_ms = ms(stack_clock.elapsed());
    Ok(report(
        config,
        started_at,
        backup_report,
        rto_ms,
        outcomes,
        sources,
    ))
}

/// Files on disk are wiped and restored with their service stopped: its runtime must
/// let drydock stop it.
fn refuse_unstoppable(
    config: &Config,
    planned: &[PlannedSource<'_>],
    services: &[&str],
) -> Result<(), EngineError> {
    for service in services {
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
    Ok(())
}

/// The wipe has to be confirmed (typed on a terminal) or forced; nothing changed yet.
fn confirm_wipe(
    planned: &[PlannedSource<'_>],
    services: &[&str],
    named_backup: Option<&str>,
    opts: &DrillOptions,
    ctx: &RunContext,
) -> Result<(), EngineError> {
    if opts.force {
        return Ok(());
    }
    let labels: Vec<String> = planned.iter().map(|p| p.label()).collect();
    let what = format!(
        "A destructive drill stops {}, DELETES the data of {} and restores it from {}.",
        services.join(", "),
        labels.join(", "),
        match named_backup {
            Some(id) => format!("backup {id}"),
            None => "a fresh, verified backup taken first".to_string(),
        }
    );
    let refusal = match ctx.confirm(&what) {
        Some(true) => return Ok(()),
        Some(false) => "not confirmed; nothing was stopped or changed".to_string(),
        None => {
            format!("{what} Nothing was changed. Re-run on a terminal to confirm, or with --force")
        }
    };
    Err(EngineError::Refused(refusal))
}

/// The drill's own backup, with canaries (unless a backup was named); refused unless it
/// is complete and verified.
fn canaries_and_backup(
    config: &Config,
    planned: &[PlannedSource<'_>],
    selection: &Selection,
    opts: &DrillOptions,
    ctx: &RunContext,
) -> Result<(BTreeMap<String, String>, Option<BackupReport>), EngineError> {
    let mut canaries: BTreeMap<String, String> = BTreeMap::new();
    if opts.use_backup.is_some() {
        return Ok((canaries, None));
    }
    for p in planned {
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
    ctx.events().emit(Event::Step {
        message: "backing up with fresh canaries before wiping".into(),
    });
    let report = backup::backup(config, selection, ctx)?;
    let missing: Vec<String> = report
        .sources
        .iter()
        .filter(|s| !s.is_restorable())
        .map(|s| format!("{} ({})", s.label(), s.error.clone().unwrap_or_default()))
        .collect();
    if !report.recorded || !report.local_copy_verified() || !missing.is_empty() {
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
    Ok((canaries, Some(report)))
}

/// Per service, the backup's restorable records of it.
fn plans<'c>(
    catalog: &Catalog,
    backup_id: &str,
    services: &[&'c str],
) -> Result<Vec<Plan<'c>>, EngineError> {
    let manifest: &Manifest = &catalog
        .manifest(backup_id)
        .ok_or_else(|| {
            EngineError::NoBackup(format!("backup {backup_id} is not in the local copy"))
        })?
        .manifest;
    Ok(services
        .iter()
        .map(|service| Plan {
            service,
            backup_id: backup_id.to_string(),
            records: manifest
                .sources
                .iter()
                .filter(|r| r.service == *service && r.is_restorable())
                .cloned()
                .collect(),
        })
        .collect())
}

/// Each service in turn; after a failure the later ones are not reached. A safe point
/// before each service's wipe.
fn drill_services(
    config: &Config,
    plans: &[Plan<'_>],
    canaries: &BTreeMap<String, String>,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<(Vec<ServiceOutcome>, Vec<DrilledSource>), EngineError> {
    let mut outcomes = Vec::new();
    let mut sources = Vec::new();
    let mut failed = false;
    for plan in plans {
        if failed {
            outcomes.push(ServiceOutcome {
                service: plan.service.to_string(),
                backup_id: plan.backup_id.clone(),
                status: ServiceDrillStatus::NotReached,
                steps: vec![],
                state: Some("untouched".into()),
                recover: None,
                health: None,
            });
            continue;
        }
        ctx.check_cancelled()?;
        let (outcome, drilled) = drill_service(config, plan, canaries, state, ctx)?;
        failed = outcome.status != ServiceDrillStatus::Recovered;
        outcomes.push(outcome);
        sources.extend(drilled);
    }
    Ok((outcomes, sources))
}

/// The stack's figures; targets are met only by a drill that ran and passed (a time
/// measured on a failed or skipped restore proves nothing).
fn report(
    config: &Config,
    started_at: Timestamp,
    backup: Option<BackupReport>,
    rto_ms: u64,
    outcomes: Vec<ServiceOutcome>,
    sources: Vec<DrilledSource>,
) -> DrillReport {
    let rpo_ms = sources.iter().filter_map(|r| r.rpo_ms).max();
    let recovered = outcomes
        .iter()
        .all(|o| o.status == ServiceDrillStatus::Recovered);
    let passed = recovered && sources.iter().all(|r| r.status == DrillStatus::Passed);
    let targets_met = passed
        && !sources.is_empty()
        && rto_ms <= ms(config.drill.rto_target)
        && sources
            .iter()
            .all(|r| r.rto_met != Some(false) && r.rpo_met != Some(false));
    DrillReport {
        kind: DrillKind::Destructive,
        stack: config.stack.name.clone(),
        passed,
        targets_met,
        started_at,
        finished_at: Timestamp::now(),
        backup,
        rto_ms,
        rpo_ms,
        rto_target_ms: ms(config.drill.rto_target),
        rpo_target_ms: ms(config.drill.rpo_target),
        sources,
        services: outcomes,
        report_files: vec![],
    }
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

/// Stop, wipe, restore, start, wait for health, check canaries and test data; `Err`
/// only when the run was cancelled.
fn drill_service(
    config: &Config,
    plan: &Plan<'_>,
    canaries: &BTreeMap<String, String>,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<(ServiceOutcome, Vec<DrilledSource>), EngineError> {
    let service = plan.service;
    let mut outcome = ServiceOutcome {
        service: service.to_string(),
        backup_id: plan.backup_id.clone(),
        status: ServiceDrillStatus::Failed,
        steps: vec![],
        state: None,
        recover: None,
        health: None,
    };
    let fail = |mut outcome: ServiceOutcome, stopped: Stopped| {
        if let Some(cancelled) = stopped.cancellation() {
            return Err(cancelled);
        }
        ctx.events().emit(Event::Warning {
            message: format!(
                "destructive drill of `{service}` stopped: {}",
                stopped.state
            ),
        });
        outcome.state = Some(stopped.state);
        outcome.recover = stopped.recover;
        Ok((outcome, Vec::new()))
    };
    let wiped = match stop_and_wipe(
        config,
        service,
        &plan.backup_id,
        &plan.records,
        state,
        ctx.events(),
        &mut outcome.steps,
    ) {
        Ok(w) => w,
        Err(stopped) => return fail(outcome, stopped),
    };
    let recovered =
        match restore_and_start(config, service, &plan.backup_id, ctx, &mut outcome.steps) {
            Ok(r) => r,
            Err(stopped) => return fail(outcome, stopped),
        };
    outcome.health = Some(recovered.health.as_str().to_string());
    let checked = Checked {
        config,
        plan,
        canaries,
        state,
        failure_point: wiped.failure_point,
        recovered_ms: recovered.recovered_ms,
    };
    let drilled: Vec<DrilledSource> = recovered
        .restore
        .sources
        .iter()
        .map(|rs| checked.source(rs, &outcome))
        .collect();
    if drilled.iter().all(|d| d.status == DrillStatus::Passed) {
        outcome.status = ServiceDrillStatus::Recovered;
    } else {
        outcome.state = Some(
            "restored, verified by fingerprint and healthy, but a canary or the test data did not come back"
                .into(),
        );
    }
    Ok((outcome, drilled))
}

/// What a restored service's sources are judged with: canaries, test data, data left
/// out of backups, RTO and RPO.
struct Checked<'a> {
    config: &'a Config,
    plan: &'a Plan<'a>,
    canaries: &'a BTreeMap<String, String>,
    state: &'a StateDb,
    failure_point: Timestamp,
    recovered_ms: u64,
}

impl Checked<'_> {
    fn source(&self, rs: &RestoredSource, outcome: &ServiceOutcome) -> DrilledSource {
        let label = format!("{}/{}", rs.service, rs.source);
        let svc = &self.config.services[self.plan.service];
        let live = svc
            .data
            .iter()
            .find(|d| d.name() == rs.source)
            .map(drydock_sources::build);
        let canary = canary(
            self.canaries.get(&label),
            live.as_ref().map(|s| s.read_canary()),
        );
        let test_data = test_data_check(self.state, &rs.service, &rs.source, live.as_deref());
        let (rto_target, rpo_target) = self.config.drill.targets_for(rs.priority);
        let record = self.plan.records.iter().find(|r| r.source == rs.source);
        let rpo_ms = record
            .and_then(|r| r.consistent_at)
            .map(|c| self.failure_point.duration_since(c).as_millis().max(0) as u64);
        let mut differences = rs.differences.clone();
        if let Some(live) = &live {
            match live.left_out() {
                Ok(gaps) => differences.extend(gaps),
                Err(e) => {
                    differences.push(format!("could not check for data left out of backups: {e}"))
                }
            }
        }
        let ok = canary.status != CanaryStatus::Missing
            && test_data.as_ref().is_none_or(|t| t.matched)
            && differences.is_empty();
        let recovered_ms = self.recovered_ms;
        DrilledSource {
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
        }
    }
}

/// The canary the drill wrote, judged against what the restored live data holds.
fn canary(
    want: Option<&String>,
    got: Option<Result<Option<String>, drydock_sources::SourceError>>,
) -> Canary {
    match (want, got) {
        (Some(want), Some(Ok(Some(got)))) if &got == want => Canary {
            status: CanaryStatus::Present,
            detail: Some(want.clone()),
        },
        (Some(want), got) => Canary {
            status: CanaryStatus::Missing,
            detail: Some(format!(
                "wrote {want} before the backup, the restored data holds {}",
                match got {
                    Some(Ok(Some(g))) => g,
                    Some(Err(e)) => format!("nothing readable ({e})"),
                    _ => "none".into(),
                }
            )),
        },
        (None, _) => Canary::none(),
    }
}
