//! `drydock sync` (and the second half of every backup): bring each remote copy up to
//! date with the local repository, and prove what arrived.
//!
//! Per remote: every local backup the remote lacks (and retention did not remove from
//! it) is copied, data snapshots first; then the remote is read back (its index, pack
//! list and the new snapshots' trees, checked from a fresh handle) and only then the
//! manifests follow, each read back and compared with the local one. A backup counts
//! as synced (state `verified`) only after all of that; one found there already but
//! never recorded (a run killed in between) is checked again and then counted. A
//! remote that fails is a warning: its pending backups are recorded `unsynced` with the
//! reason and the next run (or `drydock sync`) retries them. The local copy is never
//! touched.
//!
//! Cancellation ([`RunContext::check_cancelled`]) is honoured between remotes and, within
//! one, before the upload and between backups: each backup counts once its manifest is
//! read back, so a cancelled run has recorded exactly the backups it proved there, and
//! everything else stays unsynced for the next run. Data uploaded for a backup whose
//! manifest did not follow is no backup yet (nothing lists it); the next sync finds it
//! there and does not upload it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::{Config, RemoteConfig, LOCAL_COPY};
use drydock_domain::{Event, EventSink};
use drydock_state::{CopyState, StateDb};
use drydock_storage::{LockMode, ReadData, RepoLock, Repository, LOCK_WAIT};
use serde::{Deserialize, Serialize};

use crate::copies::{self, storage_err, Catalog, StoredManifest};
use crate::RunContext;
use crate::{repair, repo, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// Every remote holds every local backup it should, verified.
    pub ok: bool,
    pub copies: Vec<CopySync>,
    /// Stale locks of dead processes removed from the local repository (holder, PID, age).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SyncReport {
    /// Ok when every remote is up to date, else a warning (retried at the next run).
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.ok {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Warning
        }
    }
}

/// Whether a remote holds every backup after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Up to date and verified.
    Synced,
    /// Something is still missing.
    Unsynced,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopySync {
    pub name: String,
    pub location: String,
    pub status: SyncStatus,
    /// Backups copied and verified by this run.
    pub synced: Vec<String>,
    /// Backups that were there already.
    pub already_present: usize,
    /// Backups still missing there after this run.
    pub unsynced: Vec<String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Stale locks of dead processes removed from this copy (holder, PID, age).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What `sync` brings up to date. The field docs are also the `--help` lines (`clap`
/// feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SyncOptions {
    /// Only this remote.
    // Default: every remote.
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub copy: Option<String>,
}

/// `drydock sync [--copy NAME]`: syncs every remote (or the one named).
pub fn sync(
    config: &Config,
    opts: &SyncOptions,
    ctx: &RunContext,
) -> Result<SyncReport, EngineError> {
    ctx.check_cancelled()?;
    let events = Arc::clone(&ctx.events);
    let only = opts.copy.as_deref();
    if let Some(name) = only {
        copies::find_remote(config, name)?;
    }
    if config.remotes.is_empty() {
        return Err(EngineError::Refused(format!(
            "no [[remote]] is configured in {}; add one to keep a second copy",
            config.file.display()
        )));
    }
    let local = repo::open_repository(config, false)?;
    let state = StateDb::open(&config.stack.state_dir)?;
    // The local copy is repaired here too (before its lock: a repair locks it
    // exclusively), so what it lost is filled in from the remotes below.
    let mut warnings = repair::repair_copy(LOCAL_COPY, &local, &state, events.as_ref())
        .unwrap_or_else(|e| vec![e]);
    let lock = local
        .lock_with("sync", LockMode::Shared, LOCK_WAIT)
        .map_err(storage_err(&local))?;
    for line in lock.removed_stale() {
        events.emit(Event::Warning {
            message: format!("copy `local`: {line}"),
        });
    }
    warnings.extend(lock.removed_stale().iter().cloned());
    let catalog = Catalog::load(&local, &config.stack.name, events.as_ref())?;
    let copies = sync_remotes(config, &local, &catalog, &state, only, ctx);
    if let Err(left) = lock.release() {
        warnings.push(format!("copy `local`: {left}"));
    }
    let copies = copies?;
    Ok(SyncReport {
        ok: copies.iter().all(|c| c.status == SyncStatus::Synced),
        copies,
        warnings,
    })
}

/// Syncs the remotes (all, or `only`) from `local`, whose catalog is given;
/// `Err(Cancelled)` once `ctx` is cancelled (what was proven by then is recorded).
pub(crate) fn sync_remotes(
    config: &Config,
    local: &Repository,
    catalog: &Catalog,
    state: &StateDb,
    only: Option<&str>,
    ctx: &RunContext,
) -> Result<Vec<CopySync>, EngineError> {
    let mut copies = Vec::new();
    for remote in config
        .remotes
        .iter()
        .filter(|r| only.is_none_or(|name| r.name == name))
    {
        ctx.check_cancelled()?;
        copies.push(sync_one_remote(config, remote, local, catalog, state, ctx)?);
    }
    Ok(copies)
}

/// Why a remote's sync stopped early.
enum Stop {
    /// It failed: a warning, its pending backups recorded unsynced with the reason.
    Failed(String),
    /// The run was cancelled at a safe point.
    Cancelled(EngineError),
}

impl From<String> for Stop {
    fn from(error: String) -> Stop {
        Stop::Failed(error)
    }
}

/// A safe point inside a remote's sync.
fn safe_point(ctx: &RunContext) -> Result<(), Stop> {
    ctx.check_cancelled().map_err(Stop::Cancelled)
}

fn sync_one_remote(
    config: &Config,
    remote: &RemoteConfig,
    local: &Repository,
    catalog: &Catalog,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<CopySync, EngineError> {
    let events = ctx.events();
    let clock = Instant::now();
    let mut report = CopySync {
        name: remote.name.clone(),
        location: copies::remote_options(remote).location(),
        status: SyncStatus::Synced,
        synced: Vec::new(),
        already_present: 0,
        unsynced: Vec::new(),
        duration_ms: 0,
        error: None,
        warnings: Vec::new(),
    };
    let records = state.copy_records(&remote.name).unwrap_or_default();
    // What the remote should hold: every local backup with data, unless retention
    // removed it from the remote already (the local prune may lag behind).
    let wanted: Vec<&StoredManifest> = catalog
        .manifests
        .iter()
        .filter(|m| m.manifest.has_restorable())
        .filter(|m| {
            records
                .get(m.manifest.id.as_str())
                .is_none_or(|r| r.state != CopyState::Pruned)
        })
        .collect();
    let run = RemoteSync {
        config,
        remote,
        local,
        catalog,
        state,
        events,
        ctx,
        records: &records,
        wanted: &wanted,
    };
    // Held outside the work, so its release can be reported on every way out.
    let mut held: Option<RepoLock> = None;
    let outcome = run.sync(&mut report, &mut held);
    if let Some(lock) = held {
        if let Err(left) = lock.release() {
            events.emit(Event::Warning {
                message: format!("copy `{}`: {left}", remote.name),
            });
            report.warnings.push(left);
        }
    }
    let cancelled = match outcome {
        Ok(()) => None,
        Err(Stop::Failed(error)) => {
            run.mark_unsynced(&mut report, error);
            None
        }
        Err(Stop::Cancelled(cancelled)) => {
            run.mark_unsynced(&mut report, cancelled.to_string());
            Some(cancelled)
        }
    };
    report.duration_ms = clock.elapsed().as_millis() as u64;
    match cancelled {
        Some(cancelled) => Err(cancelled),
        None => Ok(report),
    }
}

/// One remote's sync: what it reads from and what the remote should hold.
struct RemoteSync<'a> {
    config: &'a Config,
    remote: &'a RemoteConfig,
    local: &'a Repository,
    catalog: &'a Catalog,
    state: &'a StateDb,
    events: &'a dyn EventSink,
    ctx: &'a RunContext,
    records: &'a BTreeMap<String, drydock_state::CopyRecord>,
    wanted: &'a [&'a StoredManifest],
}

impl RemoteSync<'_> {
    /// Opens, repairs and locks the remote, fills in what either copy lost, proves
    /// what is there unrecorded, then copies and verifies what is missing.
    fn sync(&self, report: &mut CopySync, held: &mut Option<RepoLock>) -> Result<(), Stop> {
        let (config, remote, events) = (self.config, self.remote, self.events);
        events.emit(Event::Step {
            message: format!("syncing to copy `{}`", remote.name),
        });
        let dest =
            copies::open_remote(config, remote, Some(self.local)).map_err(|e| e.to_string())?;
        report.location = dest.location().to_string();
        // A repair that cannot run now (another host holds a lock) is retried next time;
        // the sync's own read-back still proves what it copies.
        report.warnings.extend(
            repair::repair_copy(&remote.name, &dest, self.state, events)
                .unwrap_or_else(|e| vec![e]),
        );
        let lock = dest
            .lock_with("sync", LockMode::Shared, LOCK_WAIT)
            .map_err(|e| e.to_string())?;
        for line in lock.removed_stale() {
            events.emit(Event::Warning {
                message: format!("copy `{}`: {line}", remote.name),
            });
        }
        report.warnings.extend(lock.removed_stale().iter().cloned());
        *held = Some(lock);
        let there = self.refill_both(&dest, report)?;
        let pending: Vec<&StoredManifest> = self
            .wanted
            .iter()
            .copied()
            .filter(|m| there.manifest(m.manifest.id.as_str()).is_none())
            .collect();
        report.already_present = self.wanted.len() - pending.len();
        self.prove_unrecorded(&dest, &there, report)?;
        if pending.is_empty() {
            return Ok(());
        }
        report.unsynced = pending.iter().map(|m| m.manifest.id.to_string()).collect();
        safe_point(self.ctx)?;
        copy_and_verify(self.local, self.catalog, &dest, &pending, self.ctx, |m| {
            // Counted the moment its manifest is read back: a cancel after this keeps it.
            self.record_verified(m);
            let id = m.manifest.id.to_string();
            report.unsynced.retain(|u| *u != id);
            report.synced.push(id);
        })?;
        Ok(())
    }

    /// What a copy lost (a repair removed it, a snapshot file vanished) comes back
    /// from the other one, both ways; the remote's catalog afterwards.
    fn refill_both(&self, dest: &Repository, report: &mut CopySync) -> Result<Catalog, String> {
        let (config, state, events) = (self.config, self.state, self.events);
        let mut there =
            Catalog::load(dest, &config.stack.name, events).map_err(|e| e.to_string())?;
        let filled = repair::refill(
            (self.local, self.catalog),
            (dest, &there),
            &self.remote.name,
            state,
            false,
            events,
        )?;
        if !filled.is_empty() {
            report.warnings.push(format!(
                "filled in what this copy had lost, from the local copy: {}",
                filled.join(", ")
            ));
            there = Catalog::load(dest, &config.stack.name, events).map_err(|e| e.to_string())?;
        }
        let filled = repair::refill(
            (dest, &there),
            (self.local, self.catalog),
            LOCAL_COPY,
            state,
            true,
            events,
        )?;
        if !filled.is_empty() {
            report.warnings.push(format!(
                "filled in what the local copy had lost, from this copy: {}",
                filled.join(", ")
            ));
        }
        Ok(there)
    }

    /// A run killed after a manifest arrived but before it was recorded left backups
    /// there but never counted: prove them now, or they stay unverified forever.
    fn prove_unrecorded(
        &self,
        dest: &Repository,
        there: &Catalog,
        report: &mut CopySync,
    ) -> Result<(), String> {
        for m in self.wanted.iter().copied().filter(|m| {
            there.manifest(m.manifest.id.as_str()).is_some()
                && self
                    .records
                    .get(m.manifest.id.as_str())
                    .is_none_or(|r| r.state != CopyState::Verified)
        }) {
            prove_present(dest, there, m)?;
            self.record_verified(m);
            report.synced.push(m.manifest.id.to_string());
            report.already_present -= 1;
        }
        Ok(())
    }

    fn record_verified(&self, m: &StoredManifest) {
        let _ = self.state.record_copy(
            &self.remote.name,
            m.manifest.id.as_str(),
            CopyState::Verified,
            None,
        );
    }

    /// Everything not proven there is unsynced, with the reason, for the next run.
    fn mark_unsynced(&self, report: &mut CopySync, error: String) {
        let proven: std::collections::BTreeSet<&String> = report.synced.iter().collect();
        let unsynced = self
            .wanted
            .iter()
            .map(|m| m.manifest.id.to_string())
            .filter(|id| !proven.contains(id))
            .filter(|id| {
                self.records
                    .get(id.as_str())
                    .is_none_or(|r| r.state != CopyState::Verified)
            })
            .collect();
        report.unsynced = unsynced;
        for id in &report.unsynced {
            let _ =
                self.state
                    .record_copy(&self.remote.name, id, CopyState::Unsynced, Some(&error));
        }
        self.events.emit(Event::Warning {
            message: format!(
                "copy `{}` not synced ({} backup(s) pending, retried at the next run): {error}",
                self.remote.name,
                report.unsynced.len()
            ),
        });
        report.status = SyncStatus::Unsynced;
        report.error = Some(error);
    }
}

/// Checks a backup that is in `dest` already (its manifest equal to the local one, its
/// data snapshots there and structurally sound), for a backup an interrupted run
/// copied but did not get to record.
fn prove_present(dest: &Repository, there: &Catalog, local: &StoredManifest) -> Result<(), String> {
    let id = local.manifest.id.as_str();
    let stored = there
        .manifest(id)
        .ok_or_else(|| format!("the manifest of {id} vanished from the copy"))?;
    if stored.manifest != local.manifest {
        return Err(format!(
            "the manifest of {id} in the copy differs from the local one"
        ));
    }
    let mut ids = vec![stored.snapshot_id.clone()];
    for r in local.manifest.sources.iter().filter(|r| r.is_restorable()) {
        let snap = there
            .snapshot_of(id, &r.service, &r.source)
            .ok_or_else(|| format!("the copy lacks the data of {} in backup {id}", r.label()))?;
        ids.push(snap.to_string());
    }
    let check = dest
        .check_snapshots(&ids, ReadData::None)
        .map_err(|e| e.to_string())?;
    if !check.ok {
        return Err(format!(
            "backup {id} in the copy did not verify: {}",
            check.errors.join("; ")
        ));
    }
    Ok(())
}

/// Data snapshots, then a read-back check, then manifests, each read back; `proven`
/// is told each backup whose manifest arrived intact. Safe points between backups.
fn copy_and_verify(
    local: &Repository,
    catalog: &Catalog,
    dest: &Repository,
    pending: &[&StoredManifest],
    ctx: &RunContext,
    mut proven: impl FnMut(&StoredManifest),
) -> Result<(), Stop> {
    let events = ctx.events();
    let mut data = Vec::new();
    for m in pending {
        for r in m.manifest.sources.iter().filter(|r| r.is_restorable()) {
            let id = catalog
                .snapshot_of(m.manifest.id.as_str(), &r.service, &r.source)
                .ok_or_else(|| {
                    format!(
                        "the local copy lacks the data of {} in backup {}; run `drydock verify --copy local`",
                        r.label(),
                        m.manifest.id
                    )
                })?;
            data.push(id.to_string());
        }
    }
    events.emit(Event::Step {
        message: format!(
            "copying {} backup(s) ({} snapshots) to {}",
            pending.len(),
            data.len(),
            dest.location()
        ),
    });
    let copied = local.copy_to(dest, &data).map_err(|e| e.to_string())?;
    events.emit(Event::Step {
        message: format!("reading back what arrived at {}", dest.location()),
    });
    let dest_ids: Vec<String> = copied.iter().map(|c| c.dest_id.clone()).collect();
    let check = dest
        .check_snapshots(&dest_ids, ReadData::None)
        .map_err(|e| e.to_string())?;
    if !check.ok {
        return Err(Stop::Failed(format!(
            "the copy did not verify after the upload: {}",
            check.errors.join("; ")
        )));
    }
    // One backup at a time from here: a backup is its manifest, so stopping between two
    // leaves whole backups there and data no manifest names yet (listed by nothing).
    for m in pending {
        safe_point(ctx)?;
        let copied = local
            .copy_to(dest, std::slice::from_ref(&m.snapshot_id))
            .map_err(|e| e.to_string())?;
        let c = copied
            .first()
            .ok_or_else(|| format!("the manifest of {} was not copied", m.manifest.id))?;
        let mut bytes = Vec::new();
        dest.dump_stream(&c.dest_id, &mut bytes)
            .map_err(|e| format!("reading back the manifest of {}: {e}", m.manifest.id))?;
        let back = drydock_domain::Manifest::from_json(&bytes)
            .map_err(|e| format!("reading back the manifest of {}: {e}", m.manifest.id))?;
        if back != m.manifest {
            return Err(Stop::Failed(format!(
                "the manifest of {} read back from the copy differs from the local one",
                m.manifest.id
            )));
        }
        events.emit(Event::Step {
            message: format!(
                "backup {} is on {}, verified",
                m.manifest.id,
                dest.location()
            ),
        });
        proven(m);
    }
    Ok(())
}
