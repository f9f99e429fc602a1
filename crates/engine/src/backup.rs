//! `drydock backup`: every selected source, critical first, into the local repository,
//! with a manifest that records only what was stored completely by a producer that
//! succeeded; then the new snapshots are read back locally, and every remote copy is
//! brought up to date (`sync`). A failed local write fails the source (and a critical
//! source the run); a failed remote is a warning (exit 1), retried at the next run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::config::LOCAL_COPY;
use drydock_domain::manifest::{BackupStatus, MANIFEST_FORMAT};
use drydock_domain::plan::{self, Selection};
use drydock_domain::{BackupId, Event, EventSink, Manifest, Priority, SourceRecord, SourceStatus};
use drydock_sources::SourceContext;
use drydock_state::{CopyState, StateDb};
use drydock_storage::{ReadData, SnapshotMeta};
use jiff::Timestamp;
use serde::Serialize;

use crate::copies::{storage_err, Catalog};
use crate::repo::{self, RepoStore};
use crate::sync::{self, CopySync};
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
}

/// One copy of this backup.
#[derive(Debug, Clone, Serialize)]
pub struct CopyOutcome {
    pub name: String,
    /// `verified` (written and read back), `unsynced` (remote failed; retried at the
    /// next run) or `failed` (the local read-back found a problem).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Remotes: earlier unsynced backups this run brought over too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_synced: Vec<String>,
}

impl BackupReport {
    /// 0 every source stored in every copy, 1 some non-critical source skipped or
    /// failed, or a remote copy could not be updated (warning), 2 a critical source
    /// failed, nothing was stored, or the local copy did not read back.
    pub fn exit_code(&self) -> i32 {
        let base = match self.status {
            BackupStatus::Ok => 0,
            BackupStatus::Partial => 1,
            BackupStatus::Failed => 2,
        };
        let copies = self
            .copies
            .iter()
            .map(|c| match (c.name.as_str(), c.status) {
                (_, "verified") => 0,
                (LOCAL_COPY, _) => 2,
                _ => 1,
            })
            .max()
            .unwrap_or(0);
        // A service the backup stopped that did not come back is down: critical.
        let restarts = if self.restarted.iter().any(|r| r.status != "running") {
            2
        } else {
            0
        };
        base.max(copies).max(restarts)
    }
}

pub fn backup(
    config: &Config,
    selection: &Selection,
    events: Arc<dyn EventSink>,
) -> Result<BackupReport, EngineError> {
    let (labelled, label_warnings) = crate::containers::with_volume_labels(config, events.as_ref());
    let config = &labelled;
    let planned = plan::plan(config, selection)?;
    let scratch = state::scratch(&config.stack.state_dir)?;
    let repository = repo::open_repository(config, true)?;
    let state_db = StateDb::open(&config.stack.state_dir)?;
    // Before the lock (a repair takes its own, exclusive one), and before any source is
    // read, so deduplication no longer trusts data that is gone.
    let repaired = crate::repair::repair_copy(LOCAL_COPY, &repository, &state_db, events.as_ref())
        .unwrap_or_else(|e| vec![format!("{e}; the backup goes on, its read-back will tell")]);
    let lock = repository
        .lock("backup")
        .map_err(storage_err(&repository))?;
    // Started again when the sources are read, or whenever this returns early.
    let stopped = crate::containers::StopDuringBackup::stop(config, &planned, Arc::clone(&events))?;

    let started_at = Timestamp::now();
    let clock = Instant::now();
    let id = BackupId::new(started_at);
    let host = repo::host();
    events.emit(Event::Started {
        operation: "backup".into(),
        id: Some(id.to_string()),
        sources: planned.len(),
    });

    let mut records = Vec::new();
    let mut warnings: Vec<String> = repaired;
    warnings.extend(lock.removed_stale().iter().cloned());
    warnings.extend(label_warnings);
    for p in &planned {
        let label = p.label();
        let source = drydock_sources::build(p.source);
        let kind = source.kind();
        events.emit(Event::SourceStarted {
            source: label.clone(),
            kind: kind.to_string(),
            step: "backup".into(),
            total_bytes: None,
        });
        let t = Instant::now();
        let mut record = SourceRecord {
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
        };

        // A source that cannot be reached: critical fails the run, others are skipped.
        if let Err(e) = source.check() {
            let message = e.to_string();
            if record.priority == Priority::Critical {
                record.error = Some(message.clone());
            } else {
                record.status = SourceStatus::Skipped;
                record.error = Some(message.clone());
                warnings.push(format!("{label} skipped: {message}"));
                events.emit(Event::Warning {
                    message: format!("{label} skipped: {message}"),
                });
            }
            record.duration_ms = t.elapsed().as_millis() as u64;
            events.emit(Event::SourceFinished {
                source: label,
                ok: false,
                message,
                duration_ms: record.duration_ms,
            });
            records.push(record);
            continue;
        }

        let store = RepoStore {
            repo: &repository,
            base_meta: SnapshotMeta {
                path: format!("{}/{}", p.service, p.source.name()),
                tags: vec![
                    "drydock".into(),
                    format!("backup:{id}"),
                    format!("stack:{}", config.stack.name),
                    format!("service:{}", p.service),
                    format!("source:{}", p.source.name()),
                    format!("kind:{kind}"),
                    format!("priority:{}", record.priority),
                ],
                hostname: host.clone(),
                label: Some(format!("drydock {id} {label}")),
            },
            label: label.clone(),
            events: Arc::clone(&events),
            created: RefCell::new(Vec::new()),
        };
        let work = scratch
            .path()
            .join(format!("{}-{}", p.service, p.source.name()));
        let ctx_result = std::fs::create_dir(&work);
        let outcome = match ctx_result {
            Err(e) => Err(format!("cannot create scratch dir {}: {e}", work.display())),
            Ok(()) => {
                let ctx = SourceContext {
                    label: &label,
                    scratch: &work,
                    events: events.as_ref(),
                    replacing_live: &drydock_sources::no_live_change,
                };
                source.backup(&store, &ctx).map_err(|e| e.to_string())
            }
        };
        let _ = std::fs::remove_dir_all(&work);
        record.duration_ms = t.elapsed().as_millis() as u64;
        match outcome {
            Ok(o) => {
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
            Err(message) => {
                // Whatever the failed producer got stored is not a backup: drop it now.
                let created = store.created.take();
                if !created.is_empty() {
                    if let Err(e) = repository.forget(&created) {
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
        }
        records.push(record);
    }
    let restarted = stopped.restart();
    for r in &restarted {
        if let Some(e) = &r.error {
            warnings.push(format!(
                "{} was stopped for the backup and did not come back: {e}",
                r.service
            ));
        }
    }

    let critical_failed = records
        .iter()
        .any(|r| r.status != SourceStatus::Ok && r.priority == Priority::Critical);
    let any_ok = records.iter().any(|r| r.status == SourceStatus::Ok);
    let all_ok = records.iter().all(|r| r.status == SourceStatus::Ok);
    let status = if critical_failed || !any_ok {
        BackupStatus::Failed
    } else if all_ok {
        BackupStatus::Ok
    } else {
        BackupStatus::Partial
    };
    let finished_at = Timestamp::now();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: id.clone(),
        stack: config.stack.name.clone(),
        host,
        drydock_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        finished_at,
        status,
        sources: records,
    };
    // Nothing stored means nothing to record: a manifest would only list failures.
    let recorded = any_ok;
    let mut copies = Vec::new();
    if recorded {
        let manifest_snapshot = repo::save_manifest(&repository, &manifest)?;
        copies.push(read_back_locally(
            &repository,
            &manifest,
            &manifest_snapshot,
            &state_db,
        ));
        if !config.remotes.is_empty() {
            let catalog = Catalog::load(&repository, events.as_ref())?;
            let synced = sync::sync_remotes(
                config,
                &repository,
                &catalog,
                &state_db,
                None,
                events.as_ref(),
            );
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
                copies.push(remote_outcome(copy, id.as_str()));
            }
        }
    }
    if let Err(left) = lock.release() {
        warnings.push(format!("copy `local`: {left}"));
    }
    Ok(BackupReport {
        id: id.to_string(),
        status,
        recorded,
        repository: repository.location().to_string(),
        started_at,
        finished_at,
        duration_ms: clock.elapsed().as_millis() as u64,
        sources: manifest.sources,
        copies,
        warnings,
        restarted,
    })
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
        None => (CopyState::Verified, "verified"),
        Some(_) => (CopyState::Corrupt, "failed"),
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
            "verified"
        } else {
            "unsynced"
        },
        error: copy.error,
        also_synced,
    }
}
