//! The sandbox drill: the drill's own backup (with a canary written just before it)
//! restored beside production into a throwaway database, instance or path, verified and
//! checked for the canary, the sandbox removed whatever happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::{self, Selection};
use drydock_domain::Event;
use drydock_sources::SourceContext;
use jiff::Timestamp;

use crate::backup::{self};
use crate::repo::{self, RepoFetch};
use crate::restore::{compare_with_manifest, find_record, BackupRef};
use crate::RunContext;
use crate::{state, EngineError};

use super::report::*;

pub(super) fn run(
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
    let scratch = state::scratch(&config.stack.state_dir)?;

    // 1. Canaries, then the drill's own backup (unless an existing one was named).
    let mut written: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let backup_report = if opts.use_backup.is_none() {
        for p in &planned {
            let token = new_token();
            let result = drydock_sources::build(p.source)
                .write_canary(&token)
                .map(|()| token)
                .map_err(|e| e.to_string());
            written.insert(p.label(), result);
        }
        events.emit(Event::Step {
            message: "backing up with fresh canaries".into(),
        });
        Some(backup::backup(config, &selection, ctx)?)
    } else {
        None
    };
    let which = match (&opts.use_backup, &backup_report) {
        (Some(r), _) => r.clone(),
        (None, Some(b)) => BackupRef::Id(b.id.clone()),
        (None, None) => unreachable!("a drill either takes a backup or names one"),
    };

    // 2. Restore each source into a sandbox, critical first.
    let repository = repo::open_repository(config, false)?;
    let _lock = repository
        .lock("drill")
        .map_err(crate::copies::storage_err(&repository))?;
    let catalog = crate::copies::Catalog::load(&repository, &config.stack.name, events.as_ref())?;
    let manifests = catalog.plain_manifests();
    let rto_target = config.drill.rto_target;
    let rpo_target = config.drill.rpo_target;
    let stack_clock = Instant::now();
    let failed_drills = crate::restore::failed_drills(config);
    let mut results = Vec::new();
    // Sources restore in priority order; those of one priority, being independent
    // (each into its own sandbox), at the same time. The stack's RTO is the whole span.
    let drill_one = |p: &plan::PlannedSource<'_>| -> DrilledSource {
        let label = p.label();
        let source = drydock_sources::build(p.source);
        let mut r = DrilledSource {
            service: p.service.to_string(),
            source: p.source.name().to_string(),
            kind: source.kind(),
            priority: p.source.priority(),
            status: DrillStatus::CouldNotRun,
            backup_id: None,
            sandbox: None,
            canary: Canary {
                status: "none",
                detail: None,
            },
            differences: vec![],
            notes: vec![],
            counts: BTreeMap::new(),
            fingerprint_matched: false,
            rto_ms: None,
            rpo_ms: None,
            rto_target_ms: ms(config.drill.targets_for(p.source.priority()).0),
            rpo_target_ms: ms(config.drill.targets_for(p.source.priority()).1),
            rto_met: None,
            rpo_met: None,
            steps: vec![],
            test_data: None,
            error: None,
        };
        if let Some(Err(e)) = written.get(&label) {
            r.status = DrillStatus::Failed;
            r.error = Some(format!("could not write the canary: {e}"));
            return r;
        }
        let Some((manifest, record)) = find_record(
            &manifests,
            &which,
            p.service,
            p.source.name(),
            &failed_drills,
        ) else {
            r.error = Some(match &which {
                BackupRef::Id(id) if backup_report.is_some() => {
                    let why = backup_report
                        .as_ref()
                        .and_then(|b| {
                            b.sources
                                .iter()
                                .find(|s| s.service == p.service && s.source == p.source.name())
                        })
                        .and_then(|s| s.error.clone())
                        .unwrap_or_else(|| "not stored".into());
                    r.status = DrillStatus::Failed;
                    format!("the drill's backup {id} did not store it: {why}")
                }
                BackupRef::Id(id) => {
                    format!("backup {id} holds no good copy of it; see `drydock backups`")
                }
                BackupRef::Latest => {
                    "no backup holds a good copy of it; run `drydock backup` first".into()
                }
            });
            return r;
        };
        r.backup_id = Some(manifest.id.to_string());
        events.emit(Event::SourceStarted {
            source: label.clone(),
            kind: r.kind.to_string(),
            step: "drill".into(),
            total_bytes: Some(record.logical_bytes),
        });
        let work = scratch
            .path()
            .join(format!("{}-{}", p.service, p.source.name()));
        if let Err(e) = std::fs::create_dir_all(&work) {
            r.error = Some(format!("cannot create scratch dir {}: {e}", work.display()));
            return r;
        }
        let ctx = SourceContext {
            label: &label,
            scratch: &work,
            events: events.as_ref(),
            replacing_live: &drydock_sources::no_live_change,
        };
        let expected_canary = match written.get(&label) {
            Some(Ok(token)) => Some(token.clone()),
            _ => None,
        };
        // Without a canary of its own, the drill still tells whether the live canary
        // (from an earlier drill) made it into the restored backup.
        let live_canary = if expected_canary.is_none() {
            source.read_canary().ok().flatten()
        } else {
            None
        };

        let step = Instant::now();
        let sandbox = match source.sandbox(&ctx) {
            Ok(s) => s,
            Err(e) => {
                r.error = Some(format!("could not create a sandbox: {e}"));
                let _ = std::fs::remove_dir_all(&work);
                return r;
            }
        };
        r.sandbox = Some(sandbox.describe());
        r.steps.push(Step {
            name: "create sandbox".into(),
            ms: ms(step.elapsed()),
        });

        // The simulated failure: data written after the backup's consistent point is lost.
        let failure_point = Timestamp::now();
        if let Some(consistent) = record.consistent_at {
            r.rpo_ms = Some(failure_point.duration_since(consistent).as_millis().max(0) as u64);
        }
        let restore_clock = Instant::now();
        let snapshot_id = catalog
            .snapshot_of(manifest.id.as_str(), &record.service, &record.source)
            .unwrap_or_default();
        let fetch = RepoFetch {
            repo: &repository,
            snapshot_id,
            record,
            events: events.as_ref(),
            copy_failed: std::cell::Cell::new(false),
        };
        let outcome = sandbox
            .target()
            .restore(&fetch, record, &ctx)
            .map_err(|e| format!("restore into the sandbox failed: {e}"))
            .and_then(|()| {
                r.steps.push(Step {
                    name: "restore".into(),
                    ms: ms(restore_clock.elapsed()),
                });
                let t = Instant::now();
                let inspection = sandbox
                    .target()
                    .inspect(&ctx)
                    .map_err(|e| format!("restored, but could not be inspected: {e}"))?;
                r.steps.push(Step {
                    name: "verify".into(),
                    ms: ms(t.elapsed()),
                });
                Ok(inspection)
            });
        match outcome {
            Err(e) => {
                r.status = DrillStatus::Failed;
                r.error = Some(e);
            }
            Ok(inspection) => {
                let (differences, notes) = compare_with_manifest(record, &inspection);
                r.fingerprint_matched = differences.is_empty();
                r.differences = differences;
                r.notes = notes;
                r.counts = inspection.counts;
                let restored_canary = sandbox.target().read_canary();
                r.canary = match (&expected_canary, &live_canary, restored_canary) {
                    (_, _, Err(e)) => Canary { status: "missing", detail: Some(format!("could not read it: {e}")) },
                    (Some(want), _, Ok(got)) if got.as_deref() == Some(want.as_str()) => {
                        Canary { status: "present", detail: Some(want.clone()) }
                    }
                    (Some(want), _, Ok(got)) => Canary {
                        status: "missing",
                        detail: Some(format!("wrote {want} before the backup, the restore holds {}", got.as_deref().unwrap_or("none"))),
                    },
                    (None, Some(live), Ok(got)) if got.as_deref() == Some(live.as_str()) => {
                        Canary { status: "present", detail: Some(live.clone()) }
                    }
                    (None, Some(live), Ok(_)) => Canary {
                        status: "not-in-backup",
                        detail: Some(format!("the live canary {live} was written after the backup's consistent point; its data is what the RPO loses")),
                    },
                    (None, None, Ok(_)) => Canary { status: "none", detail: None },
                };
                let canary_ok = r.canary.status != "missing";
                // A backup that matches its manifest can still be missing data the live
                // source holds (a table excluded by config): a restore would lose it.
                match source.left_out() {
                    Ok(gaps) => r.differences.extend(gaps),
                    Err(e) => r
                        .differences
                        .push(format!("could not check for data left out of backups: {e}")),
                }
                let complete = r.differences.is_empty();
                if r.fingerprint_matched && canary_ok && complete {
                    r.status = DrillStatus::Passed;
                    let rto = ms(restore_clock.elapsed());
                    r.rto_ms = Some(rto);
                    r.rto_met = Some(rto <= r.rto_target_ms);
                    r.rpo_met = r.rpo_ms.map(|rpo| rpo <= r.rpo_target_ms);
                } else {
                    r.status = DrillStatus::Failed;
                }
            }
        }
        let teardown = Instant::now();
        drop(sandbox);
        r.steps.push(Step {
            name: "remove sandbox".into(),
            ms: ms(teardown.elapsed()),
        });
        let _ = std::fs::remove_dir_all(&work);
        let message = match r.status {
            DrillStatus::Passed => format!("passed (canary {})", r.canary.status),
            _ => format!(
                "{:?}: {}",
                r.status,
                r.error.clone().unwrap_or_else(|| r.differences.join("; "))
            ),
        };
        events.emit(Event::SourceFinished {
            source: label,
            ok: r.status == DrillStatus::Passed,
            message,
            duration_ms: ms(restore_clock.elapsed()),
        });
        r
    };
    let mut groups: Vec<Vec<&plan::PlannedSource<'_>>> = Vec::new();
    for p in &planned {
        match groups.last_mut() {
            Some(g) if g[0].source.priority() == p.source.priority() => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    for group in groups {
        let drilled: Vec<DrilledSource> = std::thread::scope(|scope| {
            let running: Vec<_> = group.iter().map(|p| scope.spawn(|| drill_one(p))).collect();
            running
                .into_iter()
                .map(|h| h.join().expect("a drill worker panicked"))
                .collect()
        });
        results.extend(drilled);
    }
    // The drill's own backup of a source that did not restore exactly (the restore
    // failed, or what it restored differs from the manifest) is not a backup to restore
    // from: it is kept out of `latest` for good (`restore ID` can still name it).
    if let Some(own) = &backup_report {
        let bad: Vec<&DrilledSource> = results
            .iter()
            .filter(|r| {
                r.status == DrillStatus::Failed
                    && r.backup_id.as_deref() == Some(own.id.as_str())
                    && (r.sandbox.is_some() && (r.error.is_some() || !r.fingerprint_matched))
            })
            .collect();
        if !bad.is_empty() {
            match drydock_state::StateDb::open(&config.stack.state_dir) {
                Ok(state) => {
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
                        events.emit(Event::Warning {
                            message: format!(
                                "{}/{}: backup {} failed its drill and is never taken as `latest`: {why}",
                                r.service, r.source, own.id
                            ),
                        });
                    }
                }
                Err(e) => tracing::warn!("could not mark the drill's failed backup: {e}"),
            }
        }
    }
    let rto_ms = ms(stack_clock.elapsed());
    let rpo_ms = results.iter().filter_map(|r| r.rpo_ms).max();
    let passed = results.iter().all(|r| r.status == DrillStatus::Passed);
    // Targets are met only by a drill that ran and passed: a time measured on a
    // failed or skipped restore proves nothing.
    let targets_met = passed
        && !results.is_empty()
        && rto_ms <= ms(rto_target)
        && results
            .iter()
            .all(|r| r.rto_met != Some(false) && r.rpo_met != Some(false));
    Ok(DrillReport {
        kind: "sandbox",
        stack: config.stack.name.clone(),
        passed,
        targets_met,
        started_at,
        finished_at: Timestamp::now(),
        backup: backup_report,
        rto_ms,
        rpo_ms,
        rto_target_ms: ms(rto_target),
        rpo_target_ms: ms(rpo_target),
        sources: results,
        services: vec![],
        report_files: vec![],
    })
}
