//! `drydock backup`: every selected source, critical first, into the local repository,
//! with a manifest that records only what was stored completely by a producer that
//! succeeded; then the new snapshots are read back locally, and every remote copy is
//! brought up to date (`sync`). A failed local write fails the source (and a critical
//! source the run); a failed remote is a warning (exit 1), retried at the next run.
//!
//! Before any source is read the backup takes its place in the stack's history: the
//! identity rule (a stack's backups in one repository come from one host; see
//! `place.rs` and README, "Shared repositories") is enforced, the backup gets
//! the next sequence number of the stack (`Manifest::seq`, what `latest` goes by), and
//! a clock earlier than the newest backup's time is warned about (the clock rules in
//! `drydock_domain::clock`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::config::LOCAL_COPY;
use drydock_domain::manifest::{BackupStatus, MANIFEST_FORMAT};
use drydock_domain::plan::{self, Selection};
use drydock_domain::{
    BackupId, Event, EventSink, Manifest, Priority, SourceRecord, SourceStatus, Verdict,
};
use drydock_sources::SourceContext;
use drydock_state::{CopyState, StateDb};
use drydock_storage::{ReadData, SnapshotMeta};
use jiff::Timestamp;
use serde::Serialize;

mod place;

use place::{take_place, Place};

use crate::copies::{storage_err, Catalog};
use crate::repo::{self, RepoStore};
use crate::sync::{self, CopySync};
use crate::RunContext;
use crate::{state, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub id: String,
    pub status: BackupStatus,
    /// Whether a manifest was written (false when nothing could be stored).
    pub recorded: bool,
    pub repository: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration_ms: u64,
    pub sources: Vec<SourceRecord>,
    /// Where the backup is: the local copy (read back after writing), then each remote.
    pub copies: Vec<CopyOutcome>,
    pub warnings: Vec<String>,
    /// Services and containers stopped while their data was read, and whether each
    /// came back (running, and healthy when it has a health check).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restarted: Vec<crate::containers::Restarted>,
    /// Sources of the selected services that this run's priorities did not take.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<plan::LeftOut>,
}

/// One copy of this backup.
#[derive(Debug, Clone, Serialize)]
pub struct CopyOutcome {
    pub name: String,
    pub status: BackupCopyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Remotes: earlier unsynced backups this run brought over too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_synced: Vec<String>,
}

/// What became of a backup in one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupCopyStatus {
    /// Written and read back.
    Verified,
    /// A remote failed; retried at the next run.
    Unsynced,
    /// The local read-back found a problem.
    Failed,
}

impl BackupCopyStatus {
    /// The stable name, as in the JSON (kept in certify's step figures).
    pub fn as_str(self) -> &'static str {
        match self {
            BackupCopyStatus::Verified => "verified",
            BackupCopyStatus::Unsynced => "unsynced",
            BackupCopyStatus::Failed => "failed",
        }
    }
}

impl BackupReport {
    /// Whether the local copy holds this backup, written and read back.
    pub fn local_copy_verified(&self) -> bool {
        self.copies
            .iter()
            .any(|c| c.name == LOCAL_COPY && c.status == BackupCopyStatus::Verified)
    }

    /// Ok: every source stored in every copy. Warning: some non-critical source
    /// skipped or failed, or a remote copy could not be updated. Failed: a critical
    /// source failed, nothing was stored, or the local copy did not read back.
    pub fn verdict(&self) -> Verdict {
        let base = match self.status {
            BackupStatus::Ok => Verdict::Ok,
            BackupStatus::Partial => Verdict::Warning,
            BackupStatus::Failed => Verdict::Failed,
        };
        let copies = self
            .copies
            .iter()
            .map(|c| match (c.name.as_str(), c.status) {
                (_, BackupCopyStatus::Verified) => Verdict::Ok,
                (LOCAL_COPY, _) => Verdict::Failed,
                _ => Verdict::Warning,
            })
            .fold(Verdict::Ok, Verdict::worse);
        // A service the backup stopped that did not come back is down: critical.
        let restarts = if self
            .restarted
            .iter()
            .any(|r| r.status != crate::containers::RestartStatus::Running)
        {
            Verdict::Failed
        } else {
            Verdict::Ok
        };
        base.worse(copies).worse(restarts)
    }
}

/// Backs up the selected sources: `prepare` (plan, repository, lock, place in the
/// history, containers stopped), each source in turn (`back_up_source`), the
/// stopped containers started again, then `record` (manifest, local read-back,
/// remotes). A cancelled run stops before its next source (or at the running source's
/// next read), records nothing and discards what it stored.
pub fn backup(
    config: &Config,
    selection: &Selection,
    ctx: &RunContext,
) -> Result<BackupReport, EngineError> {
    let (labelled, label_warnings) = crate::containers::with_volume_labels(config, ctx.events());
    let config = &labelled;
    let run = prepare(config, selection, ctx)?;
    let Prepared {
        planned,
        scratch,
        repository,
        mut state_db,
        lock,
        host,
        place,
        stopped,
        repaired,
    } = run;

    let started_at = drydock_domain::clock::now();
    let clock = Instant::now();
    let id = BackupId::new(started_at);
    ctx.events.emit(Event::Started {
        operation: "backup".into(),
        id: Some(id.to_string()),
        sources: planned.len(),
    });

    let mut warnings: Vec<String> = repaired;
    warnings.extend(clock_warning(config, &place, started_at, ctx));
    warnings.extend(lock.removed_stale().iter().cloned());
    warnings.extend(label_warnings);
    let target = Target {
        config,
        repository: &repository,
        scratch: scratch.path(),
        host: &host,
        id: &id,
    };
    let records = back_up_sources(&target, &planned, ctx, &mut warnings);
    let restarted = stopped.restart();
    drop(stopped);
    if let Err(cancelled) = ctx.check_cancelled() {
        discard(&repository, &records);
        let _ = lock.release();
        return Err(cancelled);
    }
    for r in &restarted {
        if let Some(e) = &r.error {
            warnings.push(format!(
                "{} was stopped for the backup and did not come back: {e}",
                r.service
            ));
        }
    }

    let status = overall_status(&records);
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: id.clone(),
        stack: config.stack.name.clone(),
        host,
        seq: Some(place.seq),
        drydock_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        finished_at: drydock_domain::clock::now(),
        status,
        sources: records,
    };
    let (recorded, copies) = record_if_stored(
        config,
        &repository,
        &manifest,
        &mut state_db,
        ctx,
        &mut warnings,
    )?;
    if let Err(left) = lock.release() {
        warnings.push(format!("copy `local`: {left}"));
    }
    Ok(BackupReport {
        id: id.to_string(),
        status,
        recorded,
        repository: repository.location().to_string(),
        started_at,
        finished_at: manifest.finished_at,
        duration_ms: clock.elapsed().as_millis() as u64,
        sources: manifest.sources,
        copies,
        warnings,
        restarted,
        left_out: plan::left_out(config, selection),
    })
}

/// Records the backup (manifest, copies, sync) when any source was stored: nothing
/// stored means nothing to record, a manifest would only list failures. Whether it
/// was recorded, and its copies.
fn record_if_stored(
    config: &Config,
    repository: &drydock_storage::Repository,
    manifest: &Manifest,
    state_db: &mut StateDb,
    ctx: &RunContext,
    warnings: &mut Vec<String>,
) -> Result<(bool, Vec<CopyOutcome>), EngineError> {
    let recorded = manifest
        .sources
        .iter()
        .any(|r| r.status == SourceStatus::Ok);
    if !recorded {
        return Ok((false, Vec::new()));
    }
    let copies = record(config, repository, manifest, state_db, ctx, warnings)?;
    Ok((true, copies))
}

/// A backup started while the clock reads earlier than the newest backup's time: the
/// clock is wrong now or was then.
fn clock_warning(
    config: &Config,
    place: &Place,
    started_at: jiff::Timestamp,
    ctx: &RunContext,
) -> Option<String> {
    let (newest, at) = place.newest_after_now.as_ref()?;
    let message = format!(
        "the clock says {started_at}, earlier than the newest backup {newest} of stack `{}` in copy `local` ({at}): the system clock is wrong now or was wrong then; this backup is still the newest (sequence {}), but ages, RPO and retention read the clock: fix it (`timedatectl`, NTP)",
        config.stack.name, place.seq
    );
    ctx.events.emit(Event::Warning {
        message: message.clone(),
    });
    Some(message)
}

/// Each planned source in turn, critical first; none after a cancellation (a safe
/// point before each).
fn back_up_sources(
    target: &Target<'_>,
    planned: &[plan::PlannedSource<'_>],
    ctx: &RunContext,
    warnings: &mut Vec<String>,
) -> Vec<SourceRecord> {
    let mut records = Vec::new();
    for p in planned {
        if ctx.cancel.is_cancelled() {
            break;
        }
        records.push(back_up_source(target, p, ctx, warnings));
    }
    records
}

/// What a backup holds from `prepare` until it is recorded.
struct Prepared<'c> {
    planned: Vec<plan::PlannedSource<'c>>,
    scratch: state::Scratch,
    repository: drydock_storage::Repository,
    state_db: StateDb,
    lock: drydock_storage::RepoLock,
    host: String,
    place: Place,
    stopped: crate::containers::StopDuringBackup,
    /// Warnings of the local copy's repair.
    repaired: Vec<String>,
}

/// Everything before the first source is read: the plan, the scratch space, the local
/// repository (repaired, then locked), the backup's place in the stack's history, and
/// the containers that must not run while their data is read, stopped.
fn prepare<'c>(
    config: &'c Config,
    selection: &Selection,
    ctx: &RunContext,
) -> Result<Prepared<'c>, EngineError> {
    let planned = plan::plan(config, selection)?;
    let scratch = state::scratch(&config.stack.state_dir)?;
    let repository = repo::open_repository(config, true)?;
    let state_db = StateDb::open(&config.stack.state_dir)?;
    // Before the lock (a repair takes its own, exclusive one), and before any source is
    // read, so deduplication no longer trusts data that is gone.
    let repaired = crate::repair::repair_copy(LOCAL_COPY, &repository, &state_db, ctx.events())
        .unwrap_or_else(|e| vec![format!("{e}; the backup goes on, its read-back will tell")]);
    let lock = repository
        .lock("backup")
        .map_err(storage_err(&repository))?;
    let host = config.stack.host.clone().unwrap_or_else(repo::host);
    let place = match take_place(config, &repository, &host, &planned, ctx.events()) {
        Ok(place) => place,
        Err(e) => {
            let _ = lock.release();
            return Err(e);
        }
    };
    // Started again when the sources are read, or whenever the backup returns early.
    let stopped = match crate::containers::StopDuringBackup::stop(config, &planned, ctx) {
        Ok(stopped) => stopped,
        Err(e) => {
            let _ = lock.release();
            return Err(e);
        }
    };
    Ok(Prepared {
        planned,
        scratch,
        repository,
        state_db,
        lock,
        host,
        place,
        stopped,
        repaired,
    })
}

/// Where one source's data goes.
struct Target<'a> {
    config: &'a Config,
    repository: &'a drydock_storage::Repository,
    scratch: &'a std::path::Path,
    host: &'a str,
    id: &'a BackupId,
}

/// Backs up one source into the repository: checked first (an unreachable critical
/// source fails, any other is skipped), then read by its producer; what a failed
/// producer stored is discarded. Its record says what happened.
fn back_up_source(
    target: &Target<'_>,
    p: &plan::PlannedSource<'_>,
    ctx: &RunContext,
    warnings: &mut Vec<String>,
) -> SourceRecord {
    let events = ctx.events();
    let label = p.label();
    let source = drydock_sources::build(p.source);
    events.emit(Event::SourceStarted {
        source: label.clone(),
        kind: source.kind().to_string(),
        step: "backup".into(),
        total_bytes: None,
    });
    let t = Instant::now();
    let mut record = not_stored(p, source.kind());
    // A source that cannot be reached: critical fails the run, others are skipped.
    if let Err(e) = source.check() {
        unreachable_source(&mut record, &label, e.to_string(), t, events, warnings);
        return record;
    }
    let store = repo_store(target, p, &record, &label, ctx);
    let work = target
        .scratch
        .join(format!("{}-{}", p.service, p.source.name()));
    let outcome = match std::fs::create_dir(&work) {
        Err(e) => Err(format!("cannot create scratch dir {}: {e}", work.display())),
        Ok(()) => {
            let source_ctx = SourceContext {
                label: &label,
                scratch: &work,
                events,
                replacing_live: &drydock_sources::no_live_change,
            };
            source
                .backup(&store, &source_ctx)
                .map_err(|e| e.to_string())
        }
    };
    let _ = std::fs::remove_dir_all(&work);
    record.duration_ms = t.elapsed().as_millis() as u64;
    match outcome {
        Ok(o) => stored(&mut record, o, label, events),
        Err(message) => failed_source(
            &mut record,
            &store,
            target,
            label,
            message,
            events,
            warnings,
        ),
    }
    record
}

/// The record before anything was stored: failed.
fn not_stored(
    p: &plan::PlannedSource<'_>,
    kind: drydock_domain::config::SourceKind,
) -> SourceRecord {
    SourceRecord {
        service: p.service.to_string(),
        source: p.source.name().to_string(),
        kind,
        priority: p.source.priority(),
        status: SourceStatus::Failed,
        error: None,
        snapshot_id: None,
        stored_path: None,
        format: None,
        logical_bytes: 0,
        stored_bytes: 0,
        sha256: None,
        counts: BTreeMap::new(),
        fingerprint: None,
        consistent_at: None,
        duration_ms: 0,
        pruned_at: None,
    }
}

/// A source that cannot be reached: critical fails the run, others are skipped.
fn unreachable_source(
    record: &mut SourceRecord,
    label: &str,
    message: String,
    t: Instant,
    events: &dyn EventSink,
    warnings: &mut Vec<String>,
) {
    if record.priority != Priority::Critical {
        record.status = SourceStatus::Skipped;
        warnings.push(format!("{label} skipped: {message}"));
        events.emit(Event::Warning {
            message: format!("{label} skipped: {message}"),
        });
    }
    record.error = Some(message.clone());
    record.duration_ms = t.elapsed().as_millis() as u64;
    events.emit(Event::SourceFinished {
        source: label.to_string(),
        ok: false,
        message,
        duration_ms: record.duration_ms,
    });
}

/// Where the source's streams go: this backup's snapshots, tagged with what it is.
fn repo_store<'t>(
    target: &Target<'t>,
    p: &plan::PlannedSource<'_>,
    record: &SourceRecord,
    label: &str,
    ctx: &RunContext,
) -> RepoStore<'t> {
    let kind = record.kind;
    RepoStore {
        repo: target.repository,
        base_meta: SnapshotMeta {
            path: format!("{}/{}", p.service, p.source.name()),
            tags: vec![
                "drydock".into(),
                format!("backup:{}", target.id),
                format!("stack:{}", target.config.stack.name),
                format!("service:{}", p.service),
                format!("source:{}", p.source.name()),
                format!("kind:{kind}"),
                format!("priority:{}", record.priority),
            ],
            hostname: target.host.to_string(),
            label: Some(format!("drydock {} {label}", target.id)),
        },
        label: label.to_string(),
        events: Arc::clone(&ctx.events),
        cancel: ctx.cancel.clone(),
        created: RefCell::new(Vec::new()),
    }
}

fn stored(
    record: &mut SourceRecord,
    o: drydock_sources::BackupOutcome,
    label: String,
    events: &dyn EventSink,
) {
    record.status = SourceStatus::Ok;
    record.snapshot_id = Some(o.stored.snapshot_id);
    record.stored_path = o.stored.path;
    record.format = Some(o.format.to_string());
    record.logical_bytes = o.stored.logical_bytes;
    record.stored_bytes = o.stored.stored_bytes;
    record.sha256 = o.stored.sha256;
    record.counts = o.counts;
    record.fingerprint = Some(o.fingerprint);
    record.consistent_at = Some(o.consistent_at);
    events.emit(Event::SourceFinished {
        source: label,
        ok: true,
        message: format!("{} bytes", record.logical_bytes),
        duration_ms: record.duration_ms,
    });
}

/// Whatever the failed producer got stored is not a backup: dropped now.
fn failed_source(
    record: &mut SourceRecord,
    store: &RepoStore<'_>,
    target: &Target<'_>,
    label: String,
    message: String,
    events: &dyn EventSink,
    warnings: &mut Vec<String>,
) {
    // Whatever the failed producer got stored is not a backup: drop it now.
    let created = store.created.take();
    if !created.is_empty() {
        if let Err(e) = target.repository.forget(&created) {
            warnings.push(format!(
                "{label}: could not discard the incomplete snapshot: {e}"
            ));
        }
    }
    record.error = Some(message.clone());
    if record.priority != Priority::Critical {
        warnings.push(format!("{label} failed: {message}"));
    }
    events.emit(Event::SourceFinished {
        source: label,
        ok: false,
        message,
        duration_ms: record.duration_ms,
    });
}

/// A cancelled backup is not a backup: the snapshots its finished sources stored are
/// forgotten (best effort; unreferenced data goes at the next prune).
fn discard(repository: &drydock_storage::Repository, records: &[SourceRecord]) {
    let stored: Vec<String> = records
        .iter()
        .filter_map(|r| r.snapshot_id.clone())
        .collect();
    if !stored.is_empty() {
        let _ = repository.forget(&stored);
    }
}

/// Failed when a critical source failed or nothing was stored, ok when every source
/// was, partial otherwise.
fn overall_status(records: &[SourceRecord]) -> BackupStatus {
    let critical_failed = records
        .iter()
        .any(|r| r.status != SourceStatus::Ok && r.priority == Priority::Critical);
    let any_ok = records.iter().any(|r| r.status == SourceStatus::Ok);
    let all_ok = records.iter().all(|r| r.status == SourceStatus::Ok);
    if critical_failed || !any_ok {
        BackupStatus::Failed
    } else if all_ok {
        BackupStatus::Ok
    } else {
        BackupStatus::Partial
    }
}

/// Records the backup: its manifest into the local copy, read back from a fresh
/// handle, then every remote brought up to date. The copies' outcomes, local first.
fn record(
    config: &Config,
    repository: &drydock_storage::Repository,
    manifest: &Manifest,
    state_db: &mut StateDb,
    ctx: &RunContext,
    warnings: &mut Vec<String>,
) -> Result<Vec<CopyOutcome>, EngineError> {
    let manifest_snapshot = repo::save_manifest(repository, manifest)?;
    // Before its copies are recorded: what each source stored, so the daemon's metrics
    // answer from the state database without opening the repository.
    if let Err(e) = state_db.record_backup_sources(&source_rows(manifest)) {
        warnings.push(format!(
            "the backup is stored, but its sources could not be recorded in the state database (metrics and the dashboard will not show it): {e}"
        ));
    }
    let mut copies = vec![read_back_locally(
        repository,
        manifest,
        &manifest_snapshot,
        state_db,
    )];
    if config.remotes.is_empty() {
        return Ok(copies);
    }
    let catalog = Catalog::load(repository, &config.stack.name, ctx.events())?;
    // The backup is stored: its copy to the remotes runs to the end (a fresh token), so
    // a cancel now cannot turn a stored backup into an error; `drydock sync` is the
    // operation a caller cancels between backups.
    let whole = RunContext::new(Arc::clone(&ctx.events));
    let synced = sync::sync_remotes(config, repository, &catalog, state_db, None, &whole)?;
    for copy in synced {
        warnings.extend(
            copy.warnings
                .iter()
                .map(|w| format!("copy `{}`: {w}", copy.name)),
        );
        if let Some(e) = &copy.error {
            warnings.push(format!(
                "copy `{}` not updated (retried at the next run): {e}",
                copy.name
            ));
        }
        copies.push(remote_outcome(copy, manifest.id.as_str()));
    }
    Ok(copies)
}

/// The state database's rows for the sources of `manifest`.
fn source_rows(manifest: &Manifest) -> Vec<drydock_state::BackupSourceRecord> {
    manifest
        .sources
        .iter()
        .map(|r| drydock_state::BackupSourceRecord {
            backup_id: manifest.id.to_string(),
            service: r.service.clone(),
            source: r.source.clone(),
            status: match r.status {
                SourceStatus::Ok => "ok",
                SourceStatus::Failed => "failed",
                SourceStatus::Skipped => "skipped",
            }
            .into(),
            // The moment `status` measures ages and RPO from.
            at: r.consistent_at.unwrap_or(manifest.started_at),
            duration_ms: r.duration_ms,
            logical_bytes: r.logical_bytes,
            stored_bytes: r.stored_bytes,
        })
        .collect()
}

/// Checks what this backup just wrote from a fresh handle (index, packs, trees) and
/// records the local copy as verified.
fn read_back_locally(
    repository: &drydock_storage::Repository,
    manifest: &drydock_domain::Manifest,
    manifest_snapshot: &str,
    state_db: &StateDb,
) -> CopyOutcome {
    let mut ids: Vec<String> = manifest
        .sources
        .iter()
        .filter_map(|r| r.snapshot_id.clone())
        .collect();
    ids.push(manifest_snapshot.to_string());
    let problem = match repository.check_snapshots(&ids, ReadData::None) {
        Ok(report) if report.ok => None,
        Ok(report) => Some(report.errors.join("; ")),
        Err(e) => Some(e.to_string()),
    };
    let (state, status) = match &problem {
        None => (CopyState::Verified, BackupCopyStatus::Verified),
        Some(_) => (CopyState::Corrupt, BackupCopyStatus::Failed),
    };
    let _ = state_db.record_copy(LOCAL_COPY, manifest.id.as_str(), state, problem.as_deref());
    CopyOutcome {
        name: LOCAL_COPY.into(),
        status,
        error: problem.map(|p| format!("the backup did not read back from the local repository: {p}; run `drydock verify --copy local`")),
        also_synced: Vec::new(),
    }
}

fn remote_outcome(copy: CopySync, this_backup: &str) -> CopyOutcome {
    let this_synced = copy.synced.iter().any(|b| b == this_backup);
    let also_synced = copy
        .synced
        .iter()
        .filter(|b| b.as_str() != this_backup)
        .cloned()
        .collect();
    CopyOutcome {
        name: copy.name,
        status: if copy.error.is_none() || this_synced {
            BackupCopyStatus::Verified
        } else {
            BackupCopyStatus::Unsynced
        },
        error: copy.error,
        also_synced,
    }
}
