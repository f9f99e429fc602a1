//! `drydock prune [--dry-run] [--copy NAME]`: applies `[retention]` to every copy, per
//! source, and removes the data nothing needs any more.
//!
//! Each copy is pruned on its own terms (its backups, its verification records), local
//! first. A copy whose newest backup of some source is not verified there is refused
//! (verify it first): pruning trusts older backups to be replaceable only when the
//! newest one is known good. The retention plan itself (`drydock_domain::retention`)
//! never deletes the newest verified backup and stops all deletion of a source whose
//! newest backup is suspiciously small. `--dry-run` runs the same plan and deletes
//! nothing, so its list is exactly what `prune` deletes.
//!
//! A backup loses only the sources the plan drops: its manifest is rewritten with
//! those sources marked pruned (saved before the old revision is removed, so a crash
//! leaves a duplicate, not a gap), and removed with the last of its sources; manifests
//! are removed before the data they name, so an interrupted run leaves orphaned data
//! (removed by the next prune), never a backup listed with its data gone. Then the
//! unreferenced data goes, under an exclusive lock that keeps restic and other hosts out.
//!
//! Only this stack's backups are candidates (the catalog holds no other); the
//! unreferenced-data pass is rustic's, which counts every snapshot in the copy, of any
//! stack, as a reference. The newest backup of each source by the stack's order of
//! creation is always kept, whatever its date. Two more guards: a copy holding a backup of the stack dated
//! more than `clock::FUTURE_TOLERANCE` after now is refused (the clock is wrong now or
//! was then, and retention by date would delete the newest data); and the local copy
//! keeps every backup a configured remote has not received yet (no `verified` or
//! `pruned` record there), with a warning naming the remote and how long it has waited.
//!
//! Cancellation ([`RunContext::check_cancelled`]) is honoured between copies and between
//! backups: one backup's sources go together (its manifest rewritten or removed, then
//! its data), never half of them, and a cancelled run skips the unreferenced-data pass,
//! which the next prune does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::retention::{self, Candidate, Decision, KeepRules};
use drydock_domain::{Event, Priority};
use drydock_state::{CopyState, StateDb};
use drydock_storage::{LockMode, Repository, LOCK_WAIT};
use serde::{Deserialize, Serialize};

use crate::copies::{self, Catalog};
use crate::RunContext;
use crate::{repo, EngineError};

/// What `prune` applies retention to. The field docs are also the `--help` lines
/// (`clap` feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct PruneOptions {
    /// Show exactly what would be deleted and why; delete nothing.
    #[cfg_attr(feature = "clap", arg(long))]
    pub dry_run: bool,
    /// Only this copy: `local` or a `[[remote]]`'s name.
    // Default: every copy.
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub copy: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Every copy was pruned (or, with `--dry-run`, could be) as planned.
    pub ok: bool,
    pub dry_run: bool,
    pub copies: Vec<CopyPrune>,
}

impl PruneReport {
    /// Failed when a copy failed; a warning when a copy refused or a guard held
    /// deletion back; else ok.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        use drydock_domain::Verdict;
        self.copies
            .iter()
            .map(CopyPrune::verdict)
            .fold(Verdict::Ok, Verdict::worse)
    }
}

impl CopyPrune {
    /// Failed, refused (a warning), warned, or ok.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        use drydock_domain::Verdict;
        match self.status {
            PruneStatus::Failed => Verdict::Failed,
            PruneStatus::Refused => Verdict::Warning,
            // A stale lock removed on the way is a notice, not deletion held back.
            _ if self.warnings.len() > self.lock_notices => Verdict::Warning,
            _ => Verdict::Ok,
        }
    }

    /// What went wrong in this copy, in one line, when something did.
    pub fn problem(&self) -> Option<String> {
        if self.verdict() == drydock_domain::Verdict::Ok {
            return None;
        }
        let mut said: Vec<String> = self.reason.iter().cloned().collect();
        said.extend(self.warnings.iter().skip(self.lock_notices).cloned());
        Some(if said.is_empty() {
            format!("{:?}", self.status).to_lowercase()
        } else {
            said.join("; ")
        })
    }
}

/// What a prune did in one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneStatus {
    Pruned,
    /// A dry run: what would be deleted.
    Planned,
    /// Nothing deleted: see `reason`.
    Refused,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyPrune {
    pub name: String,
    pub location: String,
    pub status: PruneStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub sources: Vec<SourcePlan>,
    /// What is (or with `--dry-run` would be) deleted, oldest first.
    pub deleted: Vec<Deleted>,
    pub warnings: Vec<String>,
    /// Packed bytes freed (not with `--dry-run`).
    pub bytes_removed: u64,
    /// How many of `warnings` (the first ones) only say a stale lock was removed.
    #[serde(skip)]
    pub lock_notices: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourcePlan {
    pub source: String,
    pub priority: Priority,
    pub rules: KeepRules,
    /// Newest first.
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Deleted {
    pub backup_id: String,
    pub source: String,
}

pub fn prune(
    config: &Config,
    opts: &PruneOptions,
    ctx: &RunContext,
) -> Result<PruneReport, EngineError> {
    let names = copies::selected(config, opts.copy.as_deref())?;
    let state = StateDb::open(&config.stack.state_dir)?;
    let mut results = Vec::new();
    for name in &names {
        ctx.check_cancelled()?;
        let location = copies::location_of(config, name);
        let opened = copies::open_existing(config, name);
        let result = opened.and_then(|repository| {
            prune_copy(config, name, &repository, opts.dry_run, &state, ctx)
        });
        if let Err(cancelled @ EngineError::Cancelled { .. }) = result {
            return Err(cancelled);
        }
        results.push(result.unwrap_or_else(|e| {
            tracing::warn!(copy = name.as_str(), error = %e, "prune of a copy failed");
            CopyPrune {
                name: name.clone(),
                location,
                status: PruneStatus::Failed,
                reason: Some(e.to_string()),
                sources: vec![],
                deleted: vec![],
                warnings: vec![],
                bytes_removed: 0,
                lock_notices: 0,
            }
        }));
    }
    Ok(PruneReport {
        ok: results
            .iter()
            .all(|c| matches!(c.status, PruneStatus::Pruned | PruneStatus::Planned)),
        dry_run: opts.dry_run,
        copies: results,
    })
}

fn prune_copy(
    config: &Config,
    name: &str,
    repository: &Repository,
    dry_run: bool,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<CopyPrune, EngineError> {
    let events = ctx.events();
    let clock = Instant::now();
    let mode = if dry_run {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let lock = repository
        .lock_with("prune", mode, LOCK_WAIT)
        .map_err(copies::storage_err(repository))?;
    let catalog = Catalog::load(repository, &config.stack.name, events)?;
    let records = state.copy_records(name)?;
    let now = drydock_domain::clock::now();
    let verified = |backup: &str| {
        records
            .get(backup)
            .is_some_and(|r| r.state == CopyState::Verified)
    };
    let groups = candidates_by_source(config, &catalog, &verified);
    let held_for = remote_records(config, name, state)?;
    let mut report = CopyPrune {
        name: name.to_string(),
        location: repository.location().to_string(),
        status: if dry_run {
            PruneStatus::Planned
        } else {
            PruneStatus::Pruned
        },
        reason: None,
        sources: Vec::new(),
        deleted: Vec::new(),
        warnings: lock.removed_stale().to_vec(),
        bytes_removed: 0,
        lock_notices: lock.removed_stale().len(),
    };
    let unverified_newest = plan_retention(
        config,
        &catalog,
        &groups,
        &held_for,
        &verified,
        now,
        &mut report,
    );
    if let Some(reason) = refusal(config, name, &catalog, now, &unverified_newest) {
        report.status = PruneStatus::Refused;
        report.reason = Some(reason);
        if !future_backups(&catalog, now).is_empty() {
            report.deleted.clear();
        }
        release(lock, &mut report.warnings);
        return Ok(report);
    }
    if dry_run {
        release(lock, &mut report.warnings);
        return Ok(report);
    }
    events.emit(Event::Step {
        message: format!(
            "copy `{name}`: removing {} source backup(s)",
            report.deleted.len()
        ),
    });
    // Stopped early (cancelled, or a copy refusing a delete): the lock is released
    // before the error goes up; what was removed by then is whole backups' sources.
    let outcome = apply(repository, &catalog, &report.deleted, name, state, ctx)
        .and_then(|()| ctx.check_cancelled())
        .and_then(|()| {
            repository
                .prune_unreferenced()
                .map_err(copies::storage_err(repository))
        });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            release(lock, &mut report.warnings);
            return Err(e);
        }
    };
    report.bytes_removed = outcome.bytes_removed;
    release(lock, &mut report.warnings);
    tracing::info!(
        copy = name,
        deleted = report.deleted.len(),
        bytes = outcome.bytes_removed,
        ms = clock.elapsed().as_millis() as u64,
        "pruned"
    );
    Ok(report)
}

/// Per source, its backups in this copy and the priority that decides how many stay.
type Groups = BTreeMap<(String, String), (Priority, Vec<Candidate>)>;

/// Each remote's records: what the local copy may let go of (nothing for a remote).
type RemoteRecords = Vec<(String, BTreeMap<String, drydock_state::CopyRecord>)>;

/// Backups dated after now: a clock set back, or backups taken while it was ahead.
fn future_backups(catalog: &Catalog, now: jiff::Timestamp) -> Vec<String> {
    catalog
        .manifests
        .iter()
        .filter(|m| drydock_domain::clock::is_future(m.manifest.started_at, now))
        .map(|m| format!("{} ({})", m.manifest.id, m.manifest.started_at))
        .collect()
}

/// Received by each remote: what the local copy may let go of.
fn remote_records(
    config: &Config,
    name: &str,
    state: &StateDb,
) -> Result<RemoteRecords, EngineError> {
    if name != drydock_domain::config::LOCAL_COPY {
        return Ok(Vec::new());
    }
    Ok(config
        .remotes
        .iter()
        .map(|r| {
            state
                .copy_records(&r.name)
                .map(|recs| (r.name.clone(), recs))
        })
        .collect::<Result<_, _>>()?)
}

/// Per source: its backups in this copy, and who decides how many stay.
fn candidates_by_source(
    config: &Config,
    catalog: &Catalog,
    verified: &dyn Fn(&str) -> bool,
) -> Groups {
    let mut groups: BTreeMap<(String, String), (Priority, Vec<Candidate>)> = BTreeMap::new();
    for stored in &catalog.manifests {
        let m = &stored.manifest;
        for r in m.sources.iter().filter(|r| r.is_restorable()) {
            if catalog
                .snapshot_of(m.id.as_str(), &r.service, &r.source)
                .is_none()
            {
                continue;
            }
            let priority = config
                .services
                .get(&r.service)
                .and_then(|s| s.data.iter().find(|d| d.name() == r.source))
                .map_or(r.priority, |d| d.priority());
            groups
                .entry((r.service.clone(), r.source.clone()))
                .or_insert_with(|| (priority, Vec::new()))
                .1
                .push(Candidate {
                    id: m.id.to_string(),
                    time: r.consistent_at.unwrap_or(m.started_at),
                    logical_bytes: r.logical_bytes,
                    verified: verified(m.id.as_str()),
                    newest_created: false,
                });
        }
    }
    // The catalog is in the stack's order of creation, so each source's last candidate
    // is its newest created backup: kept whatever its date (a clock set back or ahead).
    for (_, candidates) in groups.values_mut() {
        if let Some(newest) = candidates.last_mut() {
            newest.newest_created = true;
        }
    }
    groups
}

/// Retention's decisions per source, a backup a remote has not received yet kept;
/// fills in the report's sources, deletions and warnings, and returns the sources
/// whose newest backup is not verified here.
fn plan_retention(
    config: &Config,
    catalog: &Catalog,
    groups: &Groups,
    held_for: &RemoteRecords,
    verified: &dyn Fn(&str) -> bool,
    now: jiff::Timestamp,
    report: &mut CopyPrune,
) -> Vec<String> {
    let tz = config.retention.time_zone();
    let guard = config.retention.anomaly_guard();
    let mut unverified_newest = Vec::new();
    for ((service, source), (priority, candidates)) in groups {
        let label = format!("{service}/{source}");
        let rules = config.retention.rules_for(*priority);
        let mut plan = retention::plan(candidates, &rules, &guard, &tz);
        for d in plan.decisions.iter_mut().filter(|d| !d.keep) {
            if let Some(m) = catalog.manifest(&d.id) {
                hold_for_remotes(d, &m.manifest, held_for, &label, now, &mut report.warnings);
            }
        }
        if let Some(newest) = plan.decisions.first() {
            if !verified(&newest.id) {
                unverified_newest.push(format!("{} of {label}", newest.id));
            }
        }
        report
            .warnings
            .extend(plan.warnings.iter().map(|w| format!("{label}: {w}")));
        report.deleted.extend(plan.deleted().map(|d| Deleted {
            backup_id: d.id.clone(),
            source: label.clone(),
        }));
        report.sources.push(SourcePlan {
            source: label,
            priority: *priority,
            rules,
            decisions: plan.decisions,
        });
    }
    report.deleted.sort();
    unverified_newest
}

/// Keeps a backup retention let go of while a remote has not received it.
fn hold_for_remotes(
    d: &mut Decision,
    m: &drydock_domain::Manifest,
    held_for: &RemoteRecords,
    label: &str,
    now: jiff::Timestamp,
    warnings: &mut Vec<String>,
) {
    for (remote, recs) in held_for {
        let received = recs
            .get(&d.id)
            .is_some_and(|r| matches!(r.state, CopyState::Verified | CopyState::Pruned));
        if received {
            continue;
        }
        let waited = drydock_domain::clock::age_s(m.started_at, now).max(0);
        d.keep = true;
        d.reasons = vec![format!("not yet on remote `{remote}`")];
        warnings.push(format!(
            "{label}: backup {} is kept: remote `{remote}` has not received it yet (unsynced for {}); it goes once `drydock sync` brings it there, or once `{remote}` is removed from the config",
            d.id,
            drydock_domain::clock::human(waited as u64)
        ));
    }
}

/// Why nothing may be deleted: backups dated in the future (the clock is wrong, or
/// was), or a source whose newest backup is not verified on this copy.
fn refusal(
    config: &Config,
    name: &str,
    catalog: &Catalog,
    now: jiff::Timestamp,
    unverified_newest: &[String],
) -> Option<String> {
    let future = future_backups(catalog, now);
    if !future.is_empty() {
        return Some(format!(
            "the clock says {now}, but backups of stack `{}` in this copy are dated later: {}; retention by date could delete the newest data, so nothing was deleted. Fix the system clock (`timedatectl`, NTP); if the clock is right, those backups were taken while it was ahead: prune runs again once their time has passed",
            config.stack.name,
            future.join(", ")
        ));
    }
    if !unverified_newest.is_empty() {
        return Some(format!(
            "the newest backup is not verified on this copy for: {}; nothing was deleted. Run `drydock verify --copy {name}` first",
            unverified_newest.join(", ")
        ));
    }
    None
}

/// Clears leftovers of interrupted runs (superseded manifests, data without one), then
/// per backup forgets the dropped sources' snapshots and rewrites or forgets its
/// manifest; a safe point before each backup.
fn apply(
    repository: &Repository,
    catalog: &Catalog,
    deleted: &[Deleted],
    copy: &str,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<(), EngineError> {
    let forget = |mut ids: Vec<String>| {
        ids.sort();
        ids.dedup();
        repository
            .forget(&ids)
            .map_err(copies::storage_err(repository))
    };
    let mut dropped: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in deleted {
        dropped
            .entry(d.backup_id.as_str())
            .or_default()
            .insert(d.source.as_str());
    }
    // Manifests go first, data after: a run that stops between the two (a crash, a
    // remote refusing DELETEs) leaves data no manifest names, which the next prune
    // removes as orphans, never a manifest whose data is gone (a backup listed with a
    // source missing, failing every verify from then on).
    forget(catalog.superseded.clone())?;
    forget(catalog.orphans.clone())?;
    let now = drydock_domain::clock::now();
    for (backup_id, labels) in dropped {
        ctx.check_cancelled()?;
        let Some(stored) = catalog.manifest(backup_id) else {
            continue;
        };
        let mut manifest = stored.manifest.clone();
        let mut data = Vec::new();
        for r in manifest.sources.iter_mut() {
            if labels.contains(r.label().as_str()) {
                if let Some(snap) = catalog.snapshot_of(backup_id, &r.service, &r.source) {
                    data.push(snap.to_string());
                }
                r.pruned_at = Some(now);
            }
        }
        if !manifest.has_restorable() {
            // Nothing of it is left: the manifest goes too (any data snapshots of
            // sources that were not restorable anyway go as orphans next time).
            state.record_copy(copy, backup_id, CopyState::Pruned, None)?;
        } else {
            // Saved before the old revision goes: a crash leaves a duplicate, not a gap.
            repo::save_manifest(repository, &manifest)?;
        }
        forget(vec![stored.snapshot_id.clone()])?;
        forget(data)?;
        ctx.events().emit(Event::Step {
            message: format!(
                "copy `{copy}`: backup {backup_id}: removed {}",
                labels.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}

/// Releases a copy's lock, warning when its lock file stays behind.
fn release(lock: drydock_storage::RepoLock, warnings: &mut Vec<String>) {
    if let Err(left) = lock.release() {
        warnings.push(left);
    }
}
