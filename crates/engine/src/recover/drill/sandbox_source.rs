//! One source of a sandbox drill, step by step: find its backup, create the sandbox,
//! restore into it, verify against the manifest, look for the canary and for data left
//! out of backups, remove the sandbox. A safe point between the steps: cancelled, the
//! sandbox is removed and the source is not judged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::PlannedSource;
use drydock_domain::{Event, Manifest, SourceRecord};
use drydock_sources::{DataSource, Inspection, Sandbox, SourceContext};
use jiff::Timestamp;

use crate::backup::BackupReport;
use crate::copies::Catalog;
use crate::repo::RepoFetch;
use crate::restore::{compare_with_manifest, find_record, BackupRef};
use crate::{EngineError, RunContext};

use super::report::*;

/// Per source label, the canary written before the drill's backup (or why not).
pub(super) type Written = BTreeMap<String, Result<String, String>>;

/// What every source of one sandbox drill shares.
pub(super) struct Drill<'a> {
    pub(super) config: &'a Config,
    pub(super) ctx: &'a RunContext,
    pub(super) repository: &'a drydock_storage::Repository,
    pub(super) catalog: &'a Catalog,
    pub(super) manifests: Vec<Manifest>,
    pub(super) failed_drills: std::collections::BTreeSet<String>,
    pub(super) scratch: &'a Path,
    pub(super) written: &'a Written,
    pub(super) which: &'a BackupRef,
    /// The drill's own backup (absent with `--use-backup`).
    pub(super) backup_report: Option<&'a BackupReport>,
}

/// Drills `p` into a sandbox of its own; `Err` only when the run was cancelled.
pub(super) fn drill_source(
    drill: &Drill<'_>,
    p: &PlannedSource<'_>,
) -> Result<DrilledSource, EngineError> {
    let label = p.label();
    let source = drydock_sources::build(p.source);
    let mut r = not_run(drill.config, p, source.as_ref());
    if let Some(Err(e)) = drill.written.get(&label) {
        r.status = DrillStatus::Failed;
        r.error = Some(format!("could not write the canary: {e}"));
        return Ok(r);
    }
    let Some((manifest, record)) = find_backup(drill, p, &mut r) else {
        return Ok(r);
    };
    r.backup_id = Some(manifest.id.to_string());
    drill.ctx.events().emit(Event::SourceStarted {
        source: label.clone(),
        kind: r.kind.to_string(),
        step: "drill".into(),
        total_bytes: Some(record.logical_bytes),
    });
    drill.ctx.check_cancelled()?;
    let work = drill
        .scratch
        .join(format!("{}-{}", p.service, p.source.name()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        r.error = Some(format!("cannot create scratch dir {}: {e}", work.display()));
        return Ok(r);
    }
    let sctx = SourceContext {
        label: &label,
        scratch: &work,
        events: drill.ctx.events(),
        replacing_live: &drydock_sources::no_live_change,
    };
    let canaries = Canaries::of(drill, &label, source.as_ref());
    let step = Instant::now();
    let sandbox = match source.sandbox(&sctx) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("could not create a sandbox: {e}"));
            let _ = std::fs::remove_dir_all(&work);
            return Ok(r);
        }
    };
    r.sandbox = Some(sandbox.describe());
    r.steps.push(named_step("create sandbox", step));

    // The simulated failure: data written after the backup's consistent point is lost.
    let failure_point = Timestamp::now();
    if let Some(consistent) = record.consistent_at {
        r.rpo_ms = Some(failure_point.duration_since(consistent).as_millis().max(0) as u64);
    }
    let restore_clock = Instant::now();
    let outcome = restore_into_sandbox(drill, manifest, record, sandbox.as_ref(), &sctx, &mut r);
    let cancelled = drill.ctx.check_cancelled();
    if cancelled.is_ok() {
        judge(
            &mut r,
            outcome,
            record,
            sandbox.as_ref(),
            &canaries,
            source.as_ref(),
            restore_clock,
        );
    }
    remove_sandbox(sandbox, &work, &mut r);
    if let Err(e) = cancelled {
        announce(drill, label, &r, restore_clock, Some(&e));
        return Err(e);
    }
    announce(drill, label, &r, restore_clock, None);
    Ok(r)
}

/// The source's result before anything ran: could not run.
fn not_run(config: &Config, p: &PlannedSource<'_>, source: &dyn DataSource) -> DrilledSource {
    let (rto_target, rpo_target) = config.drill.targets_for(p.source.priority());
    DrilledSource {
        service: p.service.to_string(),
        source: p.source.name().to_string(),
        kind: source.kind(),
        priority: p.source.priority(),
        status: DrillStatus::CouldNotRun,
        backup_id: None,
        sandbox: None,
        canary: Canary::none(),
        differences: vec![],
        notes: vec![],
        counts: BTreeMap::new(),
        fingerprint_matched: false,
        rto_ms: None,
        rpo_ms: None,
        rto_target_ms: ms(rto_target),
        rpo_target_ms: ms(rpo_target),
        rto_met: None,
        rpo_met: None,
        steps: vec![],
        test_data: None,
        error: None,
    }
}

/// The backup record to drill, or (in `r`) why there is none.
fn find_backup<'m>(
    drill: &'m Drill<'_>,
    p: &PlannedSource<'_>,
    r: &mut DrilledSource,
) -> Option<(&'m Manifest, &'m SourceRecord)> {
    let found = find_record(
        &drill.manifests,
        drill.which,
        p.service,
        p.source.name(),
        &drill.failed_drills,
    );
    if found.is_none() {
        r.error = Some(match drill.which {
            BackupRef::Id(id) if drill.backup_report.is_some() => {
                let why = drill
                    .backup_report
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
    }
    found
}

/// The canary the drill wrote, or else the live one from an earlier drill: the drill
/// still tells whether that one made it into the restored backup.
struct Canaries {
    expected: Option<String>,
    live: Option<String>,
}

impl Canaries {
    fn of(drill: &Drill<'_>, label: &str, source: &dyn DataSource) -> Canaries {
        let expected = match drill.written.get(label) {
            Some(Ok(token)) => Some(token.clone()),
            _ => None,
        };
        let live = if expected.is_none() {
            source.read_canary().ok().flatten()
        } else {
            None
        };
        Canaries { expected, live }
    }

    /// What the restored data holds, judged against what was expected.
    fn judge(&self, restored: Result<Option<String>, drydock_sources::SourceError>) -> Canary {
        let canary = |status, detail: Option<String>| Canary { status, detail };
        match (&self.expected, &self.live, restored) {
            (_, _, Err(e)) => canary(CanaryStatus::Missing, Some(format!("could not read it: {e}"))),
            (Some(want), _, Ok(got)) if got.as_deref() == Some(want.as_str()) => {
                canary(CanaryStatus::Present, Some(want.clone()))
            }
            (Some(want), _, Ok(got)) => canary(
                CanaryStatus::Missing,
                Some(format!("wrote {want} before the backup, the restore holds {}", got.as_deref().unwrap_or("none"))),
            ),
            (None, Some(live), Ok(got)) if got.as_deref() == Some(live.as_str()) => {
                canary(CanaryStatus::Present, Some(live.clone()))
            }
            (None, Some(live), Ok(_)) => canary(
                CanaryStatus::NotInBackup,
                Some(format!("the live canary {live} was written after the backup's consistent point; its data is what the RPO loses")),
            ),
            (None, None, Ok(_)) => Canary::none(),
        }
    }
}

/// Restores the backup into the sandbox, then (a safe point between) inspects it.
fn restore_into_sandbox(
    drill: &Drill<'_>,
    manifest: &Manifest,
    record: &SourceRecord,
    sandbox: &dyn Sandbox,
    sctx: &SourceContext<'_>,
    r: &mut DrilledSource,
) -> Result<Inspection, String> {
    let restore_clock = Instant::now();
    let snapshot_id = drill
        .catalog
        .snapshot_of(manifest.id.as_str(), &record.service, &record.source)
        .unwrap_or_default();
    let fetch = RepoFetch {
        repo: drill.repository,
        snapshot_id,
        record,
        events: drill.ctx.events(),
        copy_failed: std::cell::Cell::new(false),
    };
    sandbox
        .target()
        .restore(&fetch, record, sctx)
        .map_err(|e| format!("restore into the sandbox failed: {e}"))?;
    r.steps.push(named_step("restore", restore_clock));
    drill.ctx.check_cancelled().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let inspection = sandbox
        .target()
        .inspect_as(record, sctx)
        .map_err(|e| format!("restored, but could not be inspected: {e}"))?;
    r.steps.push(named_step("verify", t));
    Ok(inspection)
}

/// Passed when the fingerprint matches, the canary came back and no data is left out
/// of backups; RTO and RPO are judged only then.
fn judge(
    r: &mut DrilledSource,
    outcome: Result<Inspection, String>,
    record: &SourceRecord,
    sandbox: &dyn Sandbox,
    canaries: &Canaries,
    source: &dyn DataSource,
    restore_clock: Instant,
) {
    let inspection = match outcome {
        Ok(inspection) => inspection,
        Err(e) => {
            r.status = DrillStatus::Failed;
            r.error = Some(e);
            return;
        }
    };
    let (differences, notes) = compare_with_manifest(record, &inspection);
    r.fingerprint_matched = differences.is_empty();
    r.differences = differences;
    r.notes = notes;
    r.counts = inspection.counts;
    r.canary = canaries.judge(sandbox.target().read_canary());
    let canary_ok = r.canary.status != CanaryStatus::Missing;
    // A backup that matches its manifest can still be missing data the live source
    // holds (a table excluded by config): a restore would lose it.
    match source.left_out() {
        Ok(gaps) => r.differences.extend(gaps),
        Err(e) => r
            .differences
            .push(format!("could not check for data left out of backups: {e}")),
    }
    if r.fingerprint_matched && canary_ok && r.differences.is_empty() {
        r.status = DrillStatus::Passed;
        let rto = ms(restore_clock.elapsed());
        r.rto_ms = Some(rto);
        r.rto_met = Some(rto <= r.rto_target_ms);
        r.rpo_met = r.rpo_ms.map(|rpo| rpo <= r.rpo_target_ms);
    } else {
        r.status = DrillStatus::Failed;
    }
}

fn remove_sandbox(sandbox: Box<dyn Sandbox>, work: &Path, r: &mut DrilledSource) {
    let teardown = Instant::now();
    drop(sandbox);
    r.steps.push(named_step("remove sandbox", teardown));
    let _ = std::fs::remove_dir_all(work);
}

fn announce(
    drill: &Drill<'_>,
    label: String,
    r: &DrilledSource,
    restore_clock: Instant,
    cancelled: Option<&EngineError>,
) {
    let message = match (cancelled, r.status) {
        (Some(e), _) => format!("CANCELLED: {e}"),
        (None, DrillStatus::Passed) => format!("passed (canary {})", canary_word(r.canary.status)),
        (None, _) => format!(
            "{:?}: {}",
            r.status,
            r.error.clone().unwrap_or_else(|| r.differences.join("; "))
        ),
    };
    drill.ctx.events().emit(Event::SourceFinished {
        source: label,
        ok: cancelled.is_none() && r.status == DrillStatus::Passed,
        message,
        duration_ms: ms(restore_clock.elapsed()),
    });
}

/// The canary's stable name in progress events (the words of reports are `render`'s).
fn canary_word(s: CanaryStatus) -> &'static str {
    match s {
        CanaryStatus::Present => "present",
        CanaryStatus::Missing => "missing",
        CanaryStatus::NotInBackup => "not-in-backup",
        CanaryStatus::None => "none",
    }
}

fn named_step(name: &str, since: Instant) -> Step {
    Step {
        name: name.into(),
        ms: ms(since.elapsed()),
    }
}
