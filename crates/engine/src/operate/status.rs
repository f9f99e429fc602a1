//! `drydock status`: one screen on how recoverable the stack is right now, from what
//! drydock already knows (the local copy's catalog and the state database), without
//! contacting remotes or servers: restores still owed, the last health result per
//! service, per source the newest backup with its age, the current RPO (how much data
//! a failure now would lose) and where copies of it are verified, the last drill per
//! source with its age, and the retention policy.
//!
//! Ages are signed and never clamped: a backup dated after now (the clock is wrong now,
//! or was when it was taken) has a negative age and RPO, and its line carries a
//! `clock_problem` saying so, because an RPO of 0 there would hide a breach.

use std::collections::BTreeMap;

use drydock_domain::config::{Config, SourceConfig, SourceKind, LOCAL_COPY};
use drydock_domain::retention::KeepRules;
use drydock_domain::Priority;
use drydock_state::{CopyState, PendingRestore, StateDb};
use jiff::Timestamp;
use serde::Serialize;

use crate::copies::Catalog;
use crate::copies::InCopy;
use crate::RunContext;
use crate::{repo, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub stack: String,
    pub generated_at: Timestamp,
    /// Services an interrupted destructive drill wiped: restore these first.
    pub pending_restores: Vec<PendingRestore>,
    /// The local repository could not be read (no backup yet, or damaged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_problem: Option<String>,
    pub services: Vec<ServiceStatusLine>,
    pub retention: Vec<RetentionLine>,
    /// The newest deployment or rollback, if any (one cut short shows `interrupted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployment: Option<crate::deploy::DeploymentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatusLine {
    pub service: String,
    /// The last recorded `drydock health` result and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_at: Option<String>,
    pub sources: Vec<SourceStatusLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceStatusLine {
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<LastBackup>,
    /// Seconds of data a failure now would lose (now - the newest backup's consistent
    /// point), and the target it is measured against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_s: Option<i64>,
    pub rpo_target_s: u64,
    /// The newest backup is dated after now: its age and the RPO cannot be trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<LastDrillLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastBackup {
    pub id: String,
    pub at: Timestamp,
    /// Negative when the backup is dated after now (see `clock_problem`).
    pub age_s: i64,
    /// Per copy, local first: what drydock last established about this backup there.
    pub copies: Vec<CopyMark>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyMark {
    pub name: String,
    /// `unknown` when there is no record.
    pub status: InCopy,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastDrillLine {
    pub kind: String,
    pub status: String,
    pub at: Timestamp,
    pub age_s: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionLine {
    pub priority: Priority,
    pub rules: KeepRules,
}

fn age(then: Timestamp, now: Timestamp) -> i64 {
    drydock_domain::clock::age_s(then, now)
}

pub fn status(config: &Config, ctx: &RunContext) -> Result<StatusReport, EngineError> {
    let now = drydock_domain::clock::now();
    let state = StateDb::open(&config.stack.state_dir)?;
    let (catalog, repository_problem) = local_catalog(config, ctx);
    let mut copy_names = vec![LOCAL_COPY.to_string()];
    copy_names.extend(config.remotes.iter().map(|r| r.name.clone()));
    let known = Known {
        config,
        now,
        catalog,
        records: copy_names
            .iter()
            .map(|name| state.copy_records(name).map(|r| (name.clone(), r)))
            .collect::<Result<_, _>>()?,
        drills: state.last_drills()?,
    };
    let health = state.latest_health()?;
    let services = config
        .services
        .iter()
        .map(|(name, svc)| {
            let h = health.iter().find(|h| &h.health.service == name);
            ServiceStatusLine {
                service: name.clone(),
                health: h.map(|h| h.health.status.clone()),
                health_at: h.map(|h| h.at.clone()),
                sources: svc
                    .data
                    .iter()
                    .filter(|d| d.priority() != Priority::None)
                    .map(|d| known.source_line(name, d))
                    .collect(),
            }
        })
        .collect();
    let last_deployment = crate::deploy::deployments(config, 1)?.deployments.pop();
    Ok(StatusReport {
        last_deployment,
        stack: config.stack.name.clone(),
        generated_at: now,
        pending_restores: state.pending_restores()?,
        repository_problem,
        services,
        retention: [
            Priority::Critical,
            Priority::High,
            Priority::Medium,
            Priority::Low,
        ]
        .into_iter()
        .map(|p| RetentionLine {
            priority: p,
            rules: config.retention.rules_for(p),
        })
        .collect(),
    })
}

/// The local copy's catalog, or why there is none to read.
fn local_catalog(config: &Config, ctx: &RunContext) -> (Option<Catalog>, Option<String>) {
    if !config.repository.path.join("config").exists() {
        return (
            None,
            Some(format!(
                "no local repository at {} yet; run `drydock backup`",
                config.repository.path.display()
            )),
        );
    }
    match repo::open_repository(config, false)
        .and_then(|r| Catalog::load(&r, &config.stack.name, ctx.events()))
    {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// What drydock knows, read once for every source line.
struct Known<'c> {
    config: &'c Config,
    now: Timestamp,
    catalog: Option<Catalog>,
    records: Vec<(String, BTreeMap<String, drydock_state::CopyRecord>)>,
    drills: Vec<drydock_state::LastDrill>,
}

impl Known<'_> {
    fn source_line(&self, service: &str, d: &SourceConfig) -> SourceStatusLine {
        let now = self.now;
        let last_backup = self.last_backup(service, d.name());
        let drill = self
            .drills
            .iter()
            .find(|x| x.service == service && x.source == d.name());
        SourceStatusLine {
            source: d.name().to_string(),
            kind: d.kind(),
            priority: d.priority(),
            rpo_s: last_backup.as_ref().map(|b| b.age_s),
            clock_problem: last_backup.as_ref().filter(|b| b.age_s < 0).map(|b| {
                format!(
                    "the newest backup {} is dated {}, {} after now ({now}): the clock is wrong now or was when it was taken, so the age and RPO cannot be trusted and the RPO may be breached; fix the clock (`timedatectl`, NTP) and run `drydock backup`",
                    b.id,
                    b.at,
                    drydock_domain::clock::human(b.age_s.unsigned_abs())
                )
            }),
            rpo_target_s: self.config.drill.targets_for(d.priority()).1.as_secs(),
            last_backup,
            last_drill: drill.map(|x| LastDrillLine {
                kind: x.kind.clone(),
                status: x.status.clone(),
                at: x.finished_at,
                age_s: age(x.finished_at, now),
                rto_ms: x.rto_ms,
                rpo_ms: x.rpo_ms,
            }),
        }
    }

    /// The newest good backup of `service/source`, with what each copy holds of it.
    fn last_backup(&self, service: &str, source: &str) -> Option<LastBackup> {
        let (m, r) = self.catalog.as_ref().and_then(|c| {
            c.manifests.iter().rev().find_map(|m| {
                m.manifest
                    .source(service, source)
                    .filter(|r| r.is_restorable())
                    .map(|r| (&m.manifest, r))
            })
        })?;
        let at = r.consistent_at.unwrap_or(m.started_at);
        Some(LastBackup {
            id: m.id.to_string(),
            at,
            age_s: age(at, self.now),
            copies: self
                .records
                .iter()
                .map(|(copy, recs)| CopyMark {
                    name: copy.clone(),
                    status: match recs.get(m.id.as_str()).map(|r| r.state) {
                        Some(CopyState::Verified) => InCopy::Verified,
                        Some(CopyState::Unsynced) => InCopy::Unsynced,
                        Some(CopyState::Corrupt) => InCopy::Corrupt,
                        Some(CopyState::Pruned) => InCopy::Pruned,
                        None => InCopy::Unknown,
                    },
                })
                .collect(),
        })
    }
}
