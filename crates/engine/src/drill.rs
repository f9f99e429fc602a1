//! `drydock drill`: proves, without touching production data, that the latest backup of
//! every selected source restores exactly, and measures RTO and RPO.
//!
//! Per source: a canary (a random token) is written into the live data just before the
//! drill's own backup; the backup is restored into a sandbox (a throwaway database,
//! instance or path), verified against the manifest (counts and fingerprint) and checked
//! for the canary, and the sandbox is removed whatever happened. RTO is restore start to
//! verification passed; RPO is the backup's consistent point to the simulated failure
//! (the moment the drill starts restoring). Targets come from `[drill]`, per priority
//! class when given. `--destructive` does it for real (`destructive`).
//!
//! Every drill is recorded in the state database (`status` shows the last one per
//! source), and no drill runs while a service waits for the restore an interrupted
//! destructive drill left pending.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::{Config, SourceKind};
use drydock_domain::plan::{self, Selection};
use drydock_domain::{Event, EventSink, Priority};
use drydock_sources::SourceContext;
use jiff::Timestamp;
use serde::Serialize;

use crate::backup::{self, BackupReport};
use crate::repo::{self, RepoFetch};
use crate::restore::{compare_with_manifest, find_record, BackupRef};
use crate::{state, EngineError};

pub struct DrillOptions<'a> {
    /// Services to drill; empty for every service.
    pub services: Vec<String>,
    /// Restore this backup instead of taking a new one (no canary is written then).
    pub use_backup: Option<BackupRef>,
    /// Where to write the report: `FILE.json` and `FILE.md` beside each other. Default:
    /// `state_dir/reports/drill-<time>`.
    pub report: Option<PathBuf>,
    /// Stop, wipe, restore in place, start (see `destructive`).
    pub destructive: bool,
    /// Destructive: wipe without asking.
    pub force: bool,
    /// Destructive: asks the operator to type a confirmation; `None` without a terminal.
    pub confirm: Option<&'a dyn Fn(&str) -> bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillStatus {
    /// Restored in the sandbox, counts, fingerprint and canary as expected.
    Passed,
    /// A verification mismatch, a restore error, a missing canary.
    Failed,
    /// No backup to restore, or the sandbox could not be created.
    CouldNotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Canary {
    /// `present`, `missing` (written before the backup but not restored: a failure),
    /// `not-in-backup` (the live canary was written after the backup's consistent point:
    /// expected, the RPO covers it), or `none` (no canary to check).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrilledSource {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub status: DrillStatus,
    pub backup_id: Option<String>,
    pub sandbox: Option<String>,
    pub canary: Canary,
    pub differences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub counts: BTreeMap<String, u64>,
    pub fingerprint_matched: bool,
    /// Restore start to verification passed (None when it did not get that far).
    pub rto_ms: Option<u64>,
    /// The backup's consistent point to the simulated failure.
    pub rpo_ms: Option<u64>,
    /// This source's targets (its priority class's, or `[drill]`'s).
    pub rto_target_ms: u64,
    pub rpo_target_ms: u64,
    pub rto_met: Option<bool>,
    pub rpo_met: Option<bool>,
    pub steps: Vec<Step>,
    /// Destructive drills: the test data `populate` wrote, measured after the restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_data: Option<TestDataCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verification query set of a populated source, after the restore.
#[derive(Debug, Clone, Serialize)]
pub struct TestDataCheck {
    pub matched: bool,
    pub differences: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// `sandbox` or `destructive`.
    pub kind: &'static str,
    pub stack: String,
    pub passed: bool,
    pub targets_met: bool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The backup the drill took (absent with `--use-backup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupReport>,
    /// Whole stack: first restore start to last verification end.
    pub rto_ms: u64,
    /// Worst RPO over the sources.
    pub rpo_ms: Option<u64>,
    pub rto_target_ms: u64,
    pub rpo_target_ms: u64,
    pub sources: Vec<DrilledSource>,
    /// Destructive drills: what happened to each service (stopped, wiped, restored,
    /// started, healthy) and, after a failure, the state it is in and how to recover.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::destructive::ServiceOutcome>,
    pub report_files: Vec<String>,
}

impl DrillReport {
    /// 0 passed, 1 passed but a target missed, 2 failed, 3 could not run.
    pub fn exit_code(&self) -> i32 {
        let any = |s: DrillStatus| self.sources.iter().any(|x| x.status == s);
        if any(DrillStatus::Failed) {
            2
        } else if any(DrillStatus::CouldNotRun) {
            3
        } else if !self.targets_met {
            1
        } else {
            0
        }
    }
}

pub(crate) fn new_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let random: String = (0..16)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!(
        "drill-{}-{random}",
        Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    )
}

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub fn drill(
    config: &Config,
    opts: &DrillOptions<'_>,
    events: Arc<dyn EventSink>,
) -> Result<DrillReport, EngineError> {
    refuse_while_restores_pend(config, &opts.services, events.as_ref())?;
    let mut report = if opts.destructive {
        crate::destructive::run(config, opts, Arc::clone(&events))?
    } else {
        sandbox_drill(config, opts, events)?
    };
    write_reports(config, opts, &mut report)?;
    record(config, &report);
    Ok(report)
}

/// A drill of a service whose data an interrupted destructive drill wiped would prove
/// nothing: it must be restored first. Other services may be drilled, with a warning.
fn refuse_while_restores_pend(
    config: &Config,
    services: &[String],
    events: &dyn EventSink,
) -> Result<(), EngineError> {
    let state = drydock_state::StateDb::open(&config.stack.state_dir)?;
    for pending in state.pending_restores()? {
        let message = format!(
            "service `{}` needs a restore from backup {}: {} (since {}); run `drydock restore {} --service {} --force`",
            pending.service,
            pending.backup_id,
            pending.reason,
            pending.since.strftime("%Y-%m-%d %H:%M:%S UTC"),
            pending.backup_id,
            pending.service
        );
        if services.is_empty() || services.contains(&pending.service) {
            return Err(EngineError::Refused(message));
        }
        events.emit(Event::Warning { message });
    }
    Ok(())
}

/// Remembers the drill per source; a failure to record does not fail the drill.
fn record(config: &Config, report: &DrillReport) {
    let run = drydock_state::DrillRun {
        kind: report.kind.to_string(),
        started_at: report.started_at,
        finished_at: report.finished_at,
        exit_code: report.exit_code(),
        rto_ms: Some(report.rto_ms),
        rpo_ms: report.rpo_ms,
        report: report.report_files.first().cloned(),
        sources: report
            .sources
            .iter()
            .map(|s| drydock_state::DrilledSourceRecord {
                service: s.service.clone(),
                source: s.source.clone(),
                status: match s.status {
                    DrillStatus::Passed => "passed",
                    DrillStatus::Failed => "failed",
                    DrillStatus::CouldNotRun => "could-not-run",
                }
                .to_string(),
                backup_id: s.backup_id.clone(),
                rto_ms: s.rto_ms,
                rpo_ms: s.rpo_ms,
                detail: s
                    .error
                    .clone()
                    .or_else(|| (!s.differences.is_empty()).then(|| s.differences.join("; "))),
            })
            .collect(),
    };
    let recorded = drydock_state::StateDb::open(&config.stack.state_dir)
        .and_then(|mut state| state.record_drill(&run));
    if let Err(e) = recorded {
        tracing::warn!("the drill was not recorded in the state database: {e}");
    }
}

fn sandbox_drill(
    config: &Config,
    opts: &DrillOptions<'_>,
    events: Arc<dyn EventSink>,
) -> Result<DrillReport, EngineError> {
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
        Some(backup::backup(config, &selection, Arc::clone(&events))?)
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

fn write_reports(
    config: &Config,
    opts: &DrillOptions<'_>,
    report: &mut DrillReport,
) -> Result<(), EngineError> {
    let name = if report.kind == "destructive" {
        "drill-destructive"
    } else {
        "drill"
    };
    let base = crate::reports::base(config, opts.report.as_deref(), name, report.started_at);
    report.report_files = crate::reports::files(&base);
    let json = serde_json::to_vec_pretty(report).expect("report serializes");
    crate::reports::write(&base, &json, &markdown(report))
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The human report: verdict, targets, one row per source, then each source's details.
pub fn markdown(r: &DrillReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let verdict = match r.exit_code() {
        0 => "PASSED",
        1 => "PASSED, TARGET MISSED",
        2 => "FAILED",
        _ => "COULD NOT RUN",
    };
    let _ = writeln!(
        out,
        "# {} drill of stack `{}`: {verdict}\n",
        if r.kind == "destructive" {
            "Destructive"
        } else {
            "Sandbox"
        },
        r.stack
    );
    let _ = writeln!(
        out,
        "- started {}, finished {}",
        r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        r.finished_at.strftime("%H:%M:%S UTC")
    );
    match &r.backup {
        Some(b) => {
            let _ = writeln!(
                out,
                "- backup taken by the drill: `{}` ({:?}, {})",
                b.id,
                b.status,
                secs(b.duration_ms)
            );
        }
        None => {
            let _ = writeln!(out, "- restored an existing backup (no canary written)");
        }
    }
    let _ = writeln!(
        out,
        "- RTO (whole stack): {} — target {} — {}",
        secs(r.rto_ms),
        secs(r.rto_target_ms),
        if !r.passed {
            "not judged (the drill did not pass)"
        } else if r.rto_ms <= r.rto_target_ms {
            "met"
        } else {
            "MISSED"
        }
    );
    match r.rpo_ms {
        Some(rpo) => {
            let _ = writeln!(
                out,
                "- RPO (worst source): {} — target {} — {}",
                secs(rpo),
                secs(r.rpo_target_ms),
                if !r.passed {
                    "not judged (the drill did not pass)"
                } else if rpo <= r.rpo_target_ms {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
        None => {
            let _ = writeln!(out, "- RPO: not measured");
        }
    }
    let _ = writeln!(out, "\n| source | kind | priority | result | fingerprint | canary | RTO | RPO | backup | sandbox |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---:|---:|---|---|");
    for s in &r.sources {
        let _ = writeln!(
            out,
            "| {}/{} | {} | {} | {:?} | {} | {} | {} | {} | {} | {} |",
            s.service,
            s.source,
            s.kind,
            s.priority,
            s.status,
            if s.fingerprint_matched {
                "matched"
            } else {
                "—"
            },
            s.canary.status,
            s.rto_ms.map(secs).unwrap_or_else(|| "—".into()),
            s.rpo_ms.map(secs).unwrap_or_else(|| "—".into()),
            s.backup_id.as_deref().unwrap_or("—"),
            s.sandbox.as_deref().unwrap_or("—"),
        );
    }
    for svc in &r.services {
        let _ = writeln!(
            out,
            "\n## service `{}`: {} (backup `{}`)\n",
            svc.service, svc.status, svc.backup_id
        );
        for step in &svc.steps {
            let _ = writeln!(out, "- step {}: {}", step.name, secs(step.ms));
        }
        if let Some(h) = &svc.health {
            let _ = writeln!(out, "- health after the restore: {h}");
        }
        if let Some(state) = &svc.state {
            let _ = writeln!(out, "- **state**: {state}");
        }
        if let Some(recover) = &svc.recover {
            let _ = writeln!(out, "- **to recover**: `{recover}`");
        }
    }
    for s in &r.sources {
        let _ = writeln!(out, "\n## {}/{}\n", s.service, s.source);
        let _ = writeln!(
            out,
            "- targets: RTO {} ({}), RPO {} ({})",
            secs(s.rto_target_ms),
            match s.rto_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            },
            secs(s.rpo_target_ms),
            match s.rpo_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            }
        );
        if let Some(t) = &s.test_data {
            let _ = writeln!(
                out,
                "- test data: {}",
                if t.matched {
                    "every measure as populated".to_string()
                } else {
                    format!("DIFFERS: {}", t.differences.join("; "))
                }
            );
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "- error: {e}");
        }
        for d in &s.differences {
            let _ = writeln!(out, "- difference: {d}");
        }
        for n in &s.notes {
            let _ = writeln!(out, "- note: {n}");
        }
        if let Some(d) = &s.canary.detail {
            let _ = writeln!(out, "- canary {}: {d}", s.canary.status);
        }
        let counts: Vec<String> = s
            .counts
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !counts.is_empty() {
            let _ = writeln!(out, "- restored counts: {}", counts.join(" "));
        }
        for step in &s.steps {
            let _ = writeln!(out, "- step {}: {}", step.name, secs(step.ms));
        }
    }
    out
}
