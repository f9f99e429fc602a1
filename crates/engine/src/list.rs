//! `drydock backups`: what each backup holds and where its copies are.

use std::collections::BTreeMap;
use std::sync::Arc;

use drydock_domain::config::{Config, SourceKind};
use drydock_domain::manifest::BackupStatus;
use drydock_domain::{EventSink, Manifest, Priority, SourceStatus};
use jiff::Timestamp;
use serde::Serialize;

use crate::{repo, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct BackupList {
    pub repository: String,
    pub backups: Vec<BackupSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub id: String,
    pub status: BackupStatus,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Where copies of this backup are. Only the local repository exists so far.
    pub copies: Vec<Copy>,
    pub sources: Vec<SourceSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    pub name: String,
    pub status: &'static str,
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
}

pub fn summarize(m: &Manifest) -> BackupSummary {
    BackupSummary {
        id: m.id.to_string(),
        status: m.status,
        started_at: m.started_at,
        finished_at: m.finished_at,
        logical_bytes: m.sources.iter().map(|s| s.logical_bytes).sum(),
        stored_bytes: m.sources.iter().map(|s| s.stored_bytes).sum(),
        copies: vec![Copy {
            name: "local".into(),
            status: "present",
        }],
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
            })
            .collect(),
    }
}

/// Every backup in the repository, newest first.
pub fn list(config: &Config, events: Arc<dyn EventSink>) -> Result<BackupList, EngineError> {
    let repository = repo::open_repository(config, false)?;
    let mut manifests = repo::load_manifests(&repository, events.as_ref())?;
    manifests.reverse();
    Ok(BackupList {
        repository: repository.path().display().to_string(),
        backups: manifests.iter().map(summarize).collect(),
    })
}
