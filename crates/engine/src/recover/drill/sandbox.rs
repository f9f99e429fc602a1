//! The sandbox drill: the drill's own backup (with a canary written just before it)
//! restored beside production into a throwaway database, instance or path, verified and
//! checked for the canary, the sandbox removed whatever happened.
//!
//! [`run`] reads as its steps: canaries and the drill's own backup, open the repository,
//! drill the sources (one priority class at a time, `sandbox_source.rs`), keep a backup
//! that failed its own drill out of `latest`, the report. Between them (and between a
//! source's own steps) is a safe point: a cancelled drill removes its sandboxes, returns
//! [`EngineError::Cancelled`] and records nothing.

use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::{self, PlannedSource, Selection};
use drydock_domain::Event;
use jiff::Timestamp;

use crate::backup::{self, BackupReport};
use crate::copies::Catalog;
use crate::repo;
use crate::restore::BackupRef;
use crate::RunContext;
use crate::{state, EngineError};

use super::report::*;
use super::sandbox_source::{drill_source, Drill, Written};

pub(super) fn run(
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
    let scratch = state::scratch(&config.stack.state_dir)?;
    ctx.check_cancelled()?;
    let (written, backup_report) = canaries_and_backup(config, opts, &planned, &selection, ctx)?;
    ctx.check_cancelled()?;
    let which = match (&opts.use_backup, &backup_report) {
        (Some(r), _) => r.clone(),
        (None, Some(b)) => BackupRef::Id(b.id.clone()),
        (None, None) => unreachable!("a drill either takes a backup or names one"),
    };
    let repository = repo::open_repository(config, false)?;
    let _lock = repository
        .lock("drill")
        .map_err(crate::copies::storage_err(&repository))?;
    let catalog = Catalog::load(&repository, &config.stack.name, ctx.events())?;
    let drill = Drill {
        config,
        ctx,
        repository: &repository,
        manifests: catalog.plain_manifests(),
        catalog: &catalog,
        failed_drills: crate::restore::failed_drills(config),
        scratch: scratch.path(),
        written: &written,
        which: &which,
        backup_report: backup_report.as_ref(),
    };
    let stack_clock = Instant::now();
    let results = drill_by_priority(&drill, &planned)?;
    let rto_ms = ms(stack_clock.elapsed());
    if let Some(own) = &backup_report {
        keep_failed_out_of_latest(config, own, &results, ctx);
    }
    Ok(report(config, started_at, backup_report, rto_ms, results))
}

/// Canaries, then the drill's own backup (unless an existing one was named).
fn canaries_and_backup(
    config: &Config,
    opts: &DrillOptions,
    planned: &[PlannedSource<'_>],
    selection: &Selection,
    ctx: &RunContext,
) -> Result<(Written, Option<BackupReport>), EngineError> {
    let mut written = Written::new();
    if opts.use_backup.is_some() {
        return Ok((written, None));
    }
    for p in planned {
        let token = new_token();
        let result = drydock_sources::build(p.source)
            .write_canary(&token)
            .map(|()| token)
            .map_err(|e| e.to_string());
        written.insert(p.label(), result);
    }
    ctx.events().emit(Event::Step {
        message: "backing up with fresh canaries".into(),
    });
    Ok((written, Some(backup::backup(config, selection, ctx)?)))
}

/// Sources restore in priority order; those of one priority, being independent (each
/// into its own sandbox), at the same time. A safe point before each priority class;
/// a source cancelled midway makes the whole drill cancelled once its class is done.
fn drill_by_priority(
    drill: &Drill<'_>,
    planned: &[PlannedSource<'_>],
) -> Result<Vec<DrilledSource>, EngineError> {
    let mut groups: Vec<Vec<&PlannedSource<'_>>> = Vec::new();
    for p in planned {
        match groups.last_mut() {
            Some(g) if g[0].source.priority() == p.source.priority() => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    let mut results = Vec::new();
    for group in groups {
        drill.ctx.check_cancelled()?;
        let drilled: Vec<Result<DrilledSource, EngineError>> = std::thread::scope(|scope| {
            let running: Vec<_> = group
                .iter()
                .map(|p| scope.spawn(|| drill_source(drill, p)))
                .collect();
            running
                .into_iter()
                .map(|h| h.join().expect("a drill worker panicked"))
                .collect()
        });
        for r in drilled {
            results.push(r?);
        }
    }
    Ok(results)
}

/// The drill's own backup of a source that did not restore exactly (the restore
/// failed, or what it restored differs from the manifest) is not a backup to restore
/// from: it is kept out of `latest` for good (`restore ID` can still name it).
fn keep_failed_out_of_latest(
    config: &Config,
    own: &BackupReport,
    results: &[DrilledSource],
    ctx: &RunContext,
) {
    let bad: Vec<&DrilledSource> = results
        .iter()
        .filter(|r| {
            r.status == DrillStatus::Failed
                && r.backup_id.as_deref() == Some(own.id.as_str())
                && (r.sandbox.is_some() && (r.error.is_some() || !r.fingerprint_matched))
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    let state = match drydock_state::StateDb::open(&config.stack.state_dir) {
        Ok(state) => state,
        Err(e) => return tracing::warn!("could not mark the drill's failed backup: {e}"),
    };
    for r in bad {
        let why = r.error.clone().unwrap_or_else(|| r.differences.join("; "));
        let key = crate::restore::failed_drill_key(&own.id, &r.service, &r.source);
        if let Err(e) = state.record_suspect(
            crate::restore::FAILED_DRILL_COPY,
            crate::restore::FAILED_DRILL,
            &key,
            &why,
        ) {
            tracing::warn!("could not mark backup {key} as failed: {e}");
        }
        ctx.events().emit(Event::Warning {
            message: format!(
                "{}/{}: backup {} failed its drill and is never taken as `latest`: {why}",
                r.service, r.source, own.id
            ),
        });
    }
}

/// The stack's figures: RTO over the whole span, the worst RPO, targets met only by a
/// drill that ran and passed (a time measured on a failed or skipped restore proves
/// nothing).
fn report(
    config: &Config,
    started_at: Timestamp,
    backup: Option<BackupReport>,
    rto_ms: u64,
    results: Vec<DrilledSource>,
) -> DrillReport {
    let rto_target = config.drill.rto_target;
    let rpo_ms = results.iter().filter_map(|r| r.rpo_ms).max();
    let passed = results.iter().all(|r| r.status == DrillStatus::Passed);
    let targets_met = passed
        && !results.is_empty()
        && rto_ms <= ms(rto_target)
        && results
            .iter()
            .all(|r| r.rto_met != Some(false) && r.rpo_met != Some(false));
    DrillReport {
        kind: DrillKind::Sandbox,
        stack: config.stack.name.clone(),
        passed,
        targets_met,
        started_at,
        finished_at: Timestamp::now(),
        backup,
        rto_ms,
        rpo_ms,
        rto_target_ms: ms(rto_target),
        rpo_target_ms: ms(config.drill.rpo_target),
        sources: results,
        services: vec![],
        report_files: vec![],
    }
}
