//! `drydock verify`: repository integrity (structure, and with `--read-data` every pack),
//! each backup's snapshots present with the manifest's checksums, and `--live`: the live
//! data compared with the latest backup.

use std::sync::Arc;

use drydock_domain::config::Config;
use drydock_domain::plan::{self, Selection};
use drydock_domain::{EventSink, Manifest, SourceStatus};
use drydock_sources::{count_unit, SourceContext};
use serde::Serialize;

use crate::{repo, state, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub repository: String,
    pub read_data: bool,
    /// Problems the repository check found (packs, index, trees).
    pub repository_errors: Vec<String>,
    pub backups: Vec<BackupCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupCheck {
    pub id: String,
    pub sources: Vec<SourceCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    pub source: String,
    /// `ok`, `missing` (snapshot gone), `corrupt` (checksum differs) or `unchecked`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Checks the repository; `id` (or every backup when `None`) has each good source's
/// snapshot present, and with `read_data` each stream's SHA-256 re-read and compared.
pub fn verify_repository(
    config: &Config,
    id: Option<&str>,
    read_data: bool,
    events: Arc<dyn EventSink>,
) -> Result<VerifyReport, EngineError> {
    let repository = repo::open_repository(config, false)?;
    let _lock = repository
        .lock("verify")
        .map_err(|cause| EngineError::Storage {
            path: repository.path().to_path_buf(),
            cause,
        })?;
    let check = repository
        .check(read_data)
        .map_err(|cause| EngineError::Storage {
            path: repository.path().to_path_buf(),
            cause,
        })?;
    let manifests = repo::load_manifests(&repository, events.as_ref())?;
    let selected: Vec<&Manifest> = match id {
        Some(id) => {
            let m = manifests
                .iter()
                .find(|m| m.id.as_str() == id)
                .ok_or_else(|| {
                    EngineError::NoBackup(format!(
                        "no backup {id} in the repository; see `drydock backups`"
                    ))
                })?;
            vec![m]
        }
        None => manifests.iter().collect(),
    };
    let snapshots = repository
        .snapshots()
        .map_err(|cause| EngineError::Storage {
            path: repository.path().to_path_buf(),
            cause,
        })?;
    let mut backups = Vec::new();
    for m in selected {
        let mut sources = Vec::new();
        for r in m.sources.iter().filter(|r| r.status == SourceStatus::Ok) {
            let snap = r.snapshot_id.as_deref().unwrap_or_default();
            let (status, detail) = if !snapshots.iter().any(|s| s.id == snap) {
                (
                    "missing",
                    Some(format!("snapshot {snap} is not in the repository")),
                )
            } else if read_data && r.sha256.is_some() {
                let mut sink = std::io::sink();
                match repository.dump_stream(snap, &mut sink) {
                    Ok((_, sha)) if Some(&sha) == r.sha256.as_ref() => ("ok", None),
                    Ok((_, sha)) => (
                        "corrupt",
                        Some(format!(
                            "SHA-256 {sha} differs from the manifest's {}",
                            r.sha256.as_deref().unwrap_or("")
                        )),
                    ),
                    Err(e) => ("corrupt", Some(e.to_string())),
                }
            } else {
                ("ok", None)
            };
            sources.push(SourceCheck {
                source: r.label(),
                status,
                detail,
            });
        }
        backups.push(BackupCheck {
            id: m.id.to_string(),
            sources,
        });
    }
    let ok = check.ok
        && backups
            .iter()
            .all(|b| b.sources.iter().all(|s| s.status == "ok"));
    Ok(VerifyReport {
        ok,
        repository: repository.path().display().to_string(),
        read_data,
        repository_errors: check.errors,
        backups,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    /// Every live source equals its latest backup.
    pub same: bool,
    pub sources: Vec<LiveComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveComparison {
    pub source: String,
    pub backup_id: Option<String>,
    /// `same`, `changed`, `no-backup` or `error`.
    pub status: &'static str,
    pub differences: Vec<String>,
}

/// Compares each configured source's live data with its latest good backup.
pub fn verify_live(
    config: &Config,
    selection: &Selection,
    events: Arc<dyn EventSink>,
) -> Result<LiveReport, EngineError> {
    let planned = plan::plan(config, selection)?;
    let repository = repo::open_repository(config, false)?;
    let manifests = repo::load_manifests(&repository, events.as_ref())?;
    let scratch = state::scratch(&config.stack.state_dir)?;
    let mut sources = Vec::new();
    for p in planned {
        let label = p.label();
        let latest = manifests.iter().rev().find_map(|m| {
            m.source(p.service, p.source.name())
                .filter(|r| r.status == SourceStatus::Ok)
                .map(|r| (m, r))
        });
        let Some((m, record)) = latest else {
            sources.push(LiveComparison {
                source: label,
                backup_id: None,
                status: "no-backup",
                differences: vec![],
            });
            continue;
        };
        let source = drydock_sources::build(p.source);
        let ctx = SourceContext {
            label: &label,
            scratch: scratch.path(),
            events: events.as_ref(),
        };
        let (status, differences) = match source.inspect(&ctx) {
            Err(e) => ("error", vec![e.to_string()]),
            Ok(now) => {
                let diff = record
                    .fingerprint
                    .as_ref()
                    .map(|f| now.fingerprint.differences(f, count_unit(record.kind)))
                    .unwrap_or_default();
                (if diff.is_empty() { "same" } else { "changed" }, diff)
            }
        };
        sources.push(LiveComparison {
            source: label,
            backup_id: Some(m.id.to_string()),
            status,
            differences,
        });
    }
    Ok(LiveReport {
        same: sources.iter().all(|s| s.status == "same"),
        sources,
    })
}
