//! `drydock backups`: what each backup holds and, per copy, whether it is there:
//! `verified` (when), `present`, `unsynced`, `missing`, `corrupt`, `pruned`, or
//! `unknown` when the copy cannot be reached now.
//!
//! Presence comes from the copies themselves (their manifests and snapshots);
//! verification times, sync failures and prune records come from the state database.
//! Backups are listed from every copy that can be read, so on a fresh machine with
//! only the config the remote's backups are listed.

use std::collections::BTreeMap;
use std::sync::Arc;

use drydock_domain::config::{Config, SourceKind, LOCAL_COPY};
use drydock_domain::manifest::BackupStatus;
use drydock_domain::{Manifest, Priority, SourceStatus};
use drydock_state::{CopyRecord, CopyState, StateDb};
use drydock_storage::StorageError;
use jiff::Timestamp;
use serde::Serialize;

use crate::copies::InCopy;
use crate::copies::{self, Catalog};
use crate::RunContext;
use crate::{repo, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct BackupList {
    /// The local repository's location.
    pub repository: String,
    pub copies: Vec<CopyInfo>,
    pub backups: Vec<BackupSummary>,
}

/// One copy, as far as this listing could read it.
#[derive(Debug, Clone, Serialize)]
pub struct CopyInfo {
    pub name: String,
    pub location: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub id: String,
    pub status: BackupStatus,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// This backup in each copy, local first.
    pub copies: Vec<CopyStatus>,
    pub sources: Vec<SourceSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyStatus {
    pub name: String,
    pub status: InCopy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub status: SourceStatus,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub counts: BTreeMap<String, u64>,
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When retention removed this source's data from the copy described (the backup
    /// then no longer holds it, and is listed `partial`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<Timestamp>,
}

/// A backup's status as listed: one whose sources retention partly removed is
/// `partial` (it no longer holds everything it once did), whatever it was when made.
fn listed_status(m: &Manifest) -> BackupStatus {
    let pruned = m.sources.iter().any(|s| s.pruned_at.is_some());
    match m.status {
        BackupStatus::Ok if pruned && m.has_restorable() => BackupStatus::Partial,
        status => status,
    }
}

pub fn summarize(m: &Manifest, copies: Vec<CopyStatus>) -> BackupSummary {
    BackupSummary {
        id: m.id.to_string(),
        status: listed_status(m),
        started_at: m.started_at,
        finished_at: m.finished_at,
        logical_bytes: m.sources.iter().map(|s| s.logical_bytes).sum(),
        stored_bytes: m.sources.iter().map(|s| s.stored_bytes).sum(),
        copies,
        sources: m
            .sources
            .iter()
            .map(|s| SourceSummary {
                service: s.service.clone(),
                source: s.source.clone(),
                kind: s.kind,
                priority: s.priority,
                status: s.status,
                logical_bytes: s.logical_bytes,
                stored_bytes: s.stored_bytes,
                counts: s.counts.clone(),
                fingerprint: s.fingerprint.as_ref().map(|f| f.digest.clone()),
                error: s.error.clone(),
                pruned_at: s.pruned_at,
            })
            .collect(),
    }
}

/// A copy as this listing saw it: its catalog, or why it could not be read.
struct Seen {
    info: CopyInfo,
    catalog: Option<Catalog>,
    records: BTreeMap<String, CopyRecord>,
}

/// Every backup in any copy, newest first, with its status in each copy.
pub fn list(config: &Config, ctx: &RunContext) -> Result<BackupList, EngineError> {
    let state = StateDb::open(&config.stack.state_dir)?;
    let local_location = config.repository.path.display().to_string();
    let mut seen = vec![seen_local(config, &state, &local_location, ctx)?];
    for remote in &config.remotes {
        seen.push(seen_remote(config, remote, &state, ctx)?);
    }
    // Every backup any readable copy knows, described from the first copy holding it.
    // In the stack's order of creation (sequence number, then time), newest first below.
    let mut manifests: BTreeMap<(u64, Timestamp, String), Manifest> = BTreeMap::new();
    for s in &seen {
        for m in s.catalog.iter().flat_map(|c| &c.manifests) {
            let (seq, at, id) = m.manifest.creation_order();
            manifests
                .entry((seq, at, id.to_string()))
                .or_insert_with(|| m.manifest.clone());
        }
    }
    let local_has = |id: &str| {
        seen[0]
            .catalog
            .as_ref()
            .is_some_and(|c| c.manifest(id).is_some())
    };
    let backups = manifests
        .values()
        .rev()
        .map(|m| {
            let statuses = seen
                .iter()
                .map(|s| copy_status(s, m, local_has(m.id.as_str())))
                .collect();
            summarize(m, statuses)
        })
        .collect();
    Ok(BackupList {
        repository: local_location,
        copies: seen.into_iter().map(|s| s.info).collect(),
        backups,
    })
}

/// The local copy as listed: its catalog, or none yet (an error without remotes).
fn seen_local(
    config: &Config,
    state: &StateDb,
    local_location: &str,
    ctx: &RunContext,
) -> Result<Seen, EngineError> {
    let events = Arc::clone(&ctx.events);
    let local = if config.repository.path.join("config").exists() {
        let repository = repo::open_repository(config, false)?;
        let catalog = Catalog::load(&repository, &config.stack.name, events.as_ref())?;
        Some(catalog)
    } else if config.remotes.is_empty() {
        return Err(EngineError::NoRepository {
            path: config.repository.path.clone(),
        });
    } else {
        None
    };
    Ok(Seen {
        info: CopyInfo {
            name: LOCAL_COPY.into(),
            location: local_location.to_string(),
            reachable: local.is_some(),
            error: local
                .is_none()
                .then(|| "no repository there (a fresh machine?)".to_string()),
        },
        catalog: local,
        records: state.copy_records(LOCAL_COPY)?,
    })
}

/// A remote copy as listed: its catalog (empty when nothing was synced there yet), or
/// why it cannot be read now.
fn seen_remote(
    config: &Config,
    remote: &drydock_domain::config::RemoteConfig,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<Seen, EngineError> {
    let events = Arc::clone(&ctx.events);
    let opened = copies::open_remote(config, remote, None).and_then(|r| {
        Catalog::load(&r, &config.stack.name, events.as_ref())
            .map(|c| (r.location().to_string(), c))
    });
    let (location, catalog, error) = match opened {
        Ok((location, catalog)) => (location, Some(catalog), None),
        // Reachable, but nothing was ever synced there: an empty copy.
        Err(EngineError::Copy {
            cause: StorageError::NotARepository { location, .. },
            ..
        }) => (location, Some(Catalog::default()), None),
        Err(e) => (
            copies::remote_options(remote).location(),
            None,
            Some(e.to_string()),
        ),
    };
    Ok(Seen {
        info: CopyInfo {
            name: remote.name.clone(),
            location,
            reachable: catalog.is_some(),
            error,
        },
        catalog,
        records: state.copy_records(&remote.name)?,
    })
}

fn copy_status(seen: &Seen, m: &Manifest, local_has_it: bool) -> CopyStatus {
    let record = seen.records.get(m.id.as_str());
    let verified_at = record.and_then(|r| r.verified_at);
    let detail = record.and_then(|r| r.detail.clone());
    let state = record.map(|r| r.state);
    let status = |status, detail| CopyStatus {
        name: seen.info.name.clone(),
        status,
        verified_at,
        detail,
    };
    let Some(catalog) = &seen.catalog else {
        if seen.info.name == LOCAL_COPY {
            return status(InCopy::Missing, seen.info.error.clone());
        }
        return status(
            InCopy::Unknown,
            Some(format!(
                "not readable now: {}",
                seen.info.error.clone().unwrap_or_default()
            )),
        );
    };
    match catalog.manifest(m.id.as_str()) {
        Some(stored) => {
            let missing = catalog.missing_sources(&stored.manifest);
            if state == Some(CopyState::Corrupt) {
                status(InCopy::Corrupt, detail)
            } else if !missing.is_empty() {
                status(
                    InCopy::Missing,
                    Some(format!(
                        "data of {} is not in this copy",
                        missing.join(", ")
                    )),
                )
            } else if state == Some(CopyState::Verified) {
                status(InCopy::Verified, None)
            } else {
                status(InCopy::Present, None)
            }
        }
        None => match state {
            Some(CopyState::Pruned) => status(InCopy::Pruned, None),
            Some(CopyState::Unsynced) => status(InCopy::Unsynced, detail),
            _ if seen.info.name != LOCAL_COPY && local_has_it => status(InCopy::Unsynced, None),
            _ => status(InCopy::Missing, None),
        },
    }
}
