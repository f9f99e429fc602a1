//! `drydock restore`: brings sources back from a backup, critical first, and proves each
//! restore exact by comparing counts and fingerprints with the manifest.
//!
//! Everything that could refuse is checked before anything changes: the backup exists,
//! every target is reachable, file-level targets can be stopped, and overwriting
//! existing data was confirmed (typed on a terminal, or `--force`).
//!
//! **Which copy**: the local one when it holds the backup and its snapshot passes a
//! structural check (index, pack list and sizes, trees); otherwise each remote in
//! config order, or only the copy `--from` names. When reading the chosen copy fails
//! during the restore (a damaged pack: its MAC check fails, nothing wrong is written),
//! the same backup is restored again from the next copy that holds it. Remotes are
//! opened only when needed, so a restore from a healthy local copy never waits for the
//! network. Every source says which copy it came from.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::{Config, SourceKind, LOCAL_COPY};
use drydock_domain::plan::{self, Selection};
use drydock_domain::{Event, EventSink, Manifest, Priority, SourceRecord};
use drydock_runtimes::{Runtime, State};
use drydock_sources::{DataSource, RestoreMode, SourceContext};
use drydock_storage::ReadData;
use serde::{Deserialize, Serialize};

use crate::copies::{self, Catalog};
use crate::repo::RepoFetch;
use crate::RunContext;
use crate::{state, EngineError};

/// Which backup to restore from; as data, the text `latest` or a backup id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BackupRef {
    /// Per source, the newest backup holding a good copy of it.
    #[default]
    Latest,
    Id(String),
}

impl TryFrom<String> for BackupRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<BackupRef> for String {
    fn from(b: BackupRef) -> String {
        match b {
            BackupRef::Latest => "latest".to_string(),
            BackupRef::Id(id) => id,
        }
    }
}

impl std::str::FromStr for BackupRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(BackupRef::Latest);
        }
        drydock_domain::BackupId::parse(s)
            .map(|id| BackupRef::Id(id.to_string()))
            .ok_or_else(|| format!("`{s}` is neither `latest` nor a backup id like 20261122-083000-ab3k9z (see `drydock backups`)"))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreOptions {
    pub backup: BackupRef,
    /// Only this copy (`local` or a remote's name); default: local first, then remotes.
    pub from: Option<String>,
    /// Services to restore; empty with `all` for every service.
    pub services: Vec<String>,
    pub all: bool,
    pub force: bool,
    /// Stop running containers that use a restored volume (and start them again
    /// afterwards) instead of refusing.
    pub stop: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreStatus {
    /// Restored, and counts and fingerprint equal the manifest's.
    Verified,
    /// Restored, but the data differs from the manifest: see `differences`.
    Mismatch,
    /// The restore itself failed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoredSource {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub backup_id: String,
    pub status: RestoreStatus,
    /// Which copy the data came from.
    pub copy: String,
    pub differences: Vec<String>,
    /// Differences that do not fail verification: data allowed to vanish after the
    /// backup (Redis keys with an expiry that have expired since).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub expected_counts: BTreeMap<String, u64>,
    pub restored_counts: BTreeMap<String, u64>,
    pub fingerprint: Option<String>,
    /// Restore start to verification end.
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What drydock did to the owning service (`stopped and started again`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_action: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub verified: bool,
    /// Wall time from the restore's start (repository opening included) to the last
    /// verification's end.
    pub rto_ms: u64,
    pub sources: Vec<RestoredSource>,
    pub warnings: Vec<String>,
}

impl RestoreReport {
    /// Ok when every source verified against the manifest, else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.verified {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Failed
        }
    }
}

struct Target<'c> {
    service: &'c str,
    record: SourceRecord,
    backup_id: String,
    /// The copy (index into the copy set) and the record's snapshot there.
    copy: usize,
    snapshot_id: String,
    source: Box<dyn DataSource>,
    runtime: Box<dyn Runtime>,
    /// Running containers using the data, stopped for the restore (`--stop`).
    users: Vec<drydock_domain::config::DockerRuntimeConfig>,
}

/// A copy opened for this restore: its repository, catalog, and a shared lock.
struct Opened {
    repo: drydock_storage::Repository,
    catalog: Catalog,
    _lock: drydock_storage::RepoLock,
}

/// The copies a restore may read, in the order it tries them, opened on first use.
struct CopySet<'c> {
    config: &'c Config,
    names: Vec<String>,
    slots: Vec<Option<Result<Opened, String>>>,
    warnings: Vec<String>,
}

impl<'c> CopySet<'c> {
    fn new(config: &'c Config, from: Option<&str>) -> Result<Self, EngineError> {
        let names = copies::selected(config, from)?;
        Ok(CopySet {
            config,
            slots: names.iter().map(|_| None).collect(),
            names,
            warnings: Vec::new(),
        })
    }

    /// The copy, opened on first use; a copy that cannot be opened is reported once
    /// in the warnings and then skipped.
    fn get(&mut self, i: usize, events: &dyn EventSink) -> Result<&Opened, String> {
        if self.slots[i].is_none() {
            let opened = self.open(i, events);
            match &opened {
                Ok(o) => {
                    self.warnings
                        .extend(o._lock.removed_stale().iter().cloned());
                    let name = &self.names[i];
                    self.warnings.extend(
                        o._lock
                            .unwritten()
                            .map(|why| format!("copy `{name}`: {why}")),
                    );
                }
                Err(e) => {
                    let message = format!("copy `{}` not usable: {e}", self.names[i]);
                    events.emit(Event::Warning {
                        message: message.clone(),
                    });
                    self.warnings.push(message);
                }
            }
            self.slots[i] = Some(opened);
        }
        match self.slots[i].as_ref().expect("just filled") {
            Ok(o) => Ok(o),
            Err(e) => Err(e.clone()),
        }
    }

    /// Whether no copy tried so far could be opened (every one failed: wrong password,
    /// unreadable), so the repository, not the backup, is what is missing.
    fn none_usable(&self) -> bool {
        let tried: Vec<_> = self.slots.iter().flatten().collect();
        !tried.is_empty() && tried.iter().all(|o| o.is_err())
    }

    fn open(&self, i: usize, events: &dyn EventSink) -> Result<Opened, String> {
        let name = &self.names[i];
        if name == LOCAL_COPY && !self.config.repository.path.join("config").exists() {
            return Err(format!(
                "no local repository at {}",
                self.config.repository.path.display()
            ));
        }
        events.emit(Event::Step {
            message: format!("opening copy `{name}`"),
        });
        let repo = copies::open_existing(self.config, name).map_err(|e| e.to_string())?;
        // A restore only reads the repository: a full repository disk must not stop it.
        let lock = repo.lock_reading("restore").map_err(|e| e.to_string())?;
        if let Some(why) = lock.unwritten() {
            events.emit(Event::Warning {
                message: format!("copy `{name}`: {why}"),
            });
        }
        let catalog =
            Catalog::load(&repo, &self.config.stack.name, events).map_err(|e| e.to_string())?;
        Ok(Opened {
            repo,
            catalog,
            _lock: lock,
        })
    }

    /// The first copy from `start` on that holds a restorable `service/source` of the
    /// backup `which` (`latest` is pinned by the first copy that has one) and whose
    /// snapshot passes a structural check. Problems on the way become notes.
    fn choose(
        &mut self,
        which: &BackupRef,
        service: &str,
        source: &str,
        start: usize,
        notes: &mut Vec<String>,
        events: &dyn EventSink,
    ) -> Option<(usize, Manifest, SourceRecord, String)> {
        let mut pinned: Option<String> = match which {
            BackupRef::Id(id) => Some(id.clone()),
            BackupRef::Latest => None,
        };
        let refused = failed_drills(self.config);
        for i in start..self.names.len() {
            let name = self.names[i].clone();
            let Ok(opened) = self.get(i, events) else {
                continue;
            };
            let which_here = match &pinned {
                Some(id) => BackupRef::Id(id.clone()),
                None => BackupRef::Latest,
            };
            let manifests = opened.catalog.plain_manifests();
            let Some((m, record)) = find_record(&manifests, &which_here, service, source, &refused)
            else {
                // A backup named by id whose record of this source retention removed:
                // say so (removed on purpose, not damaged), so the restore counts it as
                // not restored instead of skipping it quietly.
                if let BackupRef::Id(id) = &which_here {
                    let pruned = manifests
                        .iter()
                        .find(|m| m.id.as_str() == id)
                        .and_then(|m| m.source(service, source))
                        .and_then(|r| r.pruned_at);
                    if let Some(at) = pruned {
                        notes.push(format!(
                            "copy `{name}` no longer holds it in backup {id}: retention pruned it at {} (removed on purpose by `drydock prune`, not damaged); restore a newer backup of it (`drydock restore latest`)",
                            at.strftime("%Y-%m-%d %H:%M:%S UTC")
                        ));
                    }
                }
                continue;
            };
            pinned.get_or_insert_with(|| m.id.to_string());
            let Some(snapshot) = opened.catalog.snapshot_of(m.id.as_str(), service, source) else {
                notes.push(format!(
                    "copy `{name}` lacks the data of {service}/{source} in backup {}",
                    m.id
                ));
                continue;
            };
            match opened
                .repo
                .check_snapshots(&[snapshot.to_string()], ReadData::None)
            {
                Ok(report) if report.ok => {
                    return Some((i, m.clone(), record.clone(), snapshot.to_string()))
                }
                Ok(report) => notes.push(format!(
                    "copy `{name}` failed its check for backup {}: {}",
                    m.id,
                    report.errors.join("; ")
                )),
                Err(e) => notes.push(format!("copy `{name}` could not be checked: {e}")),
            }
        }
        None
    }
}

pub fn restore(
    config: &Config,
    opts: &RestoreOptions,
    ctx: &RunContext,
) -> Result<RestoreReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    if opts.services.is_empty() && !opts.all {
        return Err(EngineError::Refused(
            "say what to restore: --service NAME (repeatable) or --all".into(),
        ));
    }
    // RTO as the operator feels it: from the command's start, repository opening included.
    let clock = Instant::now();
    let selection = Selection {
        all: true,
        services: opts.services.clone(),
        priorities: vec![],
    };
    let planned = plan::plan(config, &selection)?;
    let mut copy_set = CopySet::new(config, opts.from.as_deref())?;
    if copy_set.names == [LOCAL_COPY] && !config.repository.path.join("config").exists() {
        return Err(EngineError::NoRepository {
            path: config.repository.path.clone(),
        });
    }
    let scratch = state::scratch(&config.stack.state_dir)?;

    // Preflight: find every record in a copy that checks out, reach every target,
    // decide what needs a stop or a confirmation. Nothing changes until all of it
    // passed.
    let mut warnings = Vec::new();
    // Why a copy could not serve a source (unreadable, failed its check); named again
    // if nothing at all can be restored.
    let mut problems = Vec::new();
    // Sources the backup holds that no copy could restore (damaged or missing there).
    let mut unrestorable: Vec<String> = Vec::new();
    let mut targets = Vec::new();
    for p in &planned {
        let label = p.label();
        let mut notes = Vec::new();
        let chosen = copy_set.choose(
            &opts.backup,
            p.service,
            p.source.name(),
            0,
            &mut notes,
            events.as_ref(),
        );
        for note in &notes {
            warnings.push(format!("{label}: {note}"));
            problems.push(format!("{label}: {note}"));
        }
        problems.extend(copy_set.warnings.iter().cloned());
        let Some((copy, manifest, record, snapshot_id)) = chosen else {
            if !notes.is_empty() {
                // The backup holds this source, but no copy can give it back: the
                // restore is incomplete, whatever the other sources do.
                unrestorable.push(label.clone());
            }
            let msg = match &opts.backup {
                BackupRef::Latest => format!("{label}: no copy holds a good backup of it; skipped"),
                BackupRef::Id(id) => {
                    format!("{label}: no copy holds a good copy of it in backup {id}; skipped")
                }
            };
            warnings.push(msg.clone());
            events.emit(Event::Warning { message: msg });
            continue;
        };
        let source = drydock_sources::build(p.source);
        if source.kind() != record.kind {
            return Err(EngineError::Refused(format!(
                "{label} is a {} source in the config but a {} source in backup {}; fix the config or restore another backup",
                source.kind(),
                record.kind,
                manifest.id
            )));
        }
        let runtime = drydock_runtimes::build(p.service, &p.service_config.runtime);
        if source.restore_mode() == RestoreMode::FileLevel && !runtime.can_stop() {
            return Err(EngineError::Refused(format!(
                "{label}: its files are replaced on disk, so service `{}` must be stopped, but its runtime `{}` does not let drydock stop it. Stop the service yourself and declare runtime kind = \"process\" (with start/stop/status commands), or kind = \"none\" if no process uses this data",
                p.service,
                runtime.kind()
            )));
        }
        let users = source.running_users().map_err(|e| {
            EngineError::Refused(format!("{label}: cannot tell which containers use it: {e}"))
        })?;
        if !users.is_empty() && !opts.stop {
            return Err(EngineError::Refused(format!(
                "{label}: {} is used by running container(s) {}; nothing was changed. Stop them first, or pass --stop to let drydock stop them and start them again afterwards",
                source.location(),
                users.join(", ")
            )));
        }
        targets.push(Target {
            service: p.service,
            record,
            backup_id: manifest.id.to_string(),
            copy,
            snapshot_id,
            source,
            runtime,
            users: users
                .iter()
                .map(|name| crate::containers::container_config(config, name))
                .collect(),
        });
    }
    if targets.is_empty() && copy_set.none_usable() {
        // Nothing could even be read (a wrong password, an unreadable copy): that is an
        // unusable repository (exit 2), as for `drydock backups`, not a refusal.
        problems.sort();
        problems.dedup();
        return Err(EngineError::NoUsableCopy(problems.join("; ")));
    }
    if targets.is_empty() {
        problems.sort();
        problems.dedup();
        let why = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join("; "))
        };
        return Err(EngineError::NoBackup(match &opts.backup {
            BackupRef::Latest => format!("no copy holds a good backup of the selected sources; see `drydock backups`{why}"),
            BackupRef::Id(id) => format!("backup {id} does not exist or holds none of the selected sources; see `drydock backups`{why}"),
        }));
    }

    let mut occupied = Vec::new();
    for t in &targets {
        let has = t.source.has_data().map_err(|e| {
            EngineError::Refused(format!(
                "{}: cannot inspect the restore target: {e}",
                t.record.label()
            ))
        })?;
        if has {
            occupied.push(format!("{} ({})", t.record.label(), t.source.location()));
        }
    }
    if !occupied.is_empty() && !opts.force {
        let list = occupied.join(", ");
        let refusal = match ctx.confirm(&format!("Restoring replaces the existing data of: {list}.")) {
            Some(true) => None,
            Some(false) => Some(format!("not confirmed; nothing was changed ({list} keeps its data)")),
            None => Some(format!(
                "the restore target already holds data: {list}. Nothing was changed. Re-run on a terminal to confirm, or with --force"
            )),
        };
        if let Some(reason) = refusal {
            return Err(EngineError::Refused(reason));
        }
    }

    events.emit(Event::Started {
        operation: "restore".into(),
        id: None,
        sources: targets.len(),
    });
    let mut results = Vec::new();
    for t in &mut targets {
        loop {
            let name = copy_set.names[t.copy].clone();
            let opened = copy_set
                .get(t.copy, events.as_ref())
                .expect("chosen copies are open");
            let (mut result, copy_failed) = restore_one(
                &opened.repo,
                &name,
                t,
                scratch.path(),
                &config.stack.state_dir,
                &events,
            );
            if result.status == RestoreStatus::Failed && copy_failed {
                // The copy's data could not be read; the same backup from the next
                // copy that has it, or give up with both reasons.
                let mut notes = Vec::new();
                let next = copy_set.choose(
                    &BackupRef::Id(t.backup_id.clone()),
                    t.service,
                    &t.record.source,
                    t.copy + 1,
                    &mut notes,
                    events.as_ref(),
                );
                let failed_with = result.error.clone().unwrap_or_default();
                if let Some((copy, _, record, snapshot_id)) = next {
                    let message = format!(
                        "{}: reading copy `{name}` failed ({failed_with}); restoring from copy `{}` instead",
                        t.record.label(),
                        copy_set.names[copy]
                    );
                    events.emit(Event::Warning {
                        message: message.clone(),
                    });
                    warnings.push(message);
                    (t.copy, t.record, t.snapshot_id) = (copy, record, snapshot_id);
                    continue;
                }
                result.notes.extend(notes);
            }
            results.push(result);
            break;
        }
    }
    warnings.append(&mut copy_set.warnings);
    if !unrestorable.is_empty() {
        warnings.push(format!(
            "not restored, no copy holds good data of: {} (see the warnings for why: pruned by retention, or damaged); the restore is incomplete",
            unrestorable.join(", ")
        ));
    }
    let verified =
        unrestorable.is_empty() && results.iter().all(|r| r.status == RestoreStatus::Verified);
    clear_completed_pending(config, &results, &mut warnings);
    Ok(RestoreReport {
        verified,
        rto_ms: clock.elapsed().as_millis() as u64,
        sources: results,
        warnings,
    })
}

/// Records, before a source's first change to live data, that `service` is owed a
/// restore from `backup_id`: kept until a restore of it verifies. An earlier record
/// (a destructive drill's wipe) keeps its reason and time.
fn owe_restore(
    state_dir: &std::path::Path,
    service: &str,
    backup_id: &str,
    label: &str,
    step: &str,
) -> Result<(), String> {
    let state = drydock_state::StateDb::open(state_dir).map_err(|e| e.to_string())?;
    let pending = state.pending_restores().map_err(|e| e.to_string())?;
    if pending.iter().any(|p| p.service == service) {
        return Ok(());
    }
    state
        .set_pending_restore(
            service,
            backup_id,
            &format!("a restore of {label} from backup {backup_id} began replacing its live data ({step}) and has not verified yet"),
        )
        .map_err(|e| e.to_string())
}

/// A service an interrupted destructive drill left wiped is whole again once every one
/// of its sources restored and verified: its pending restore is done.
fn clear_completed_pending(
    config: &Config,
    results: &[RestoredSource],
    warnings: &mut Vec<String>,
) {
    let Ok(state) = drydock_state::StateDb::open(&config.stack.state_dir) else {
        return;
    };
    let Ok(pending) = state.pending_restores() else {
        return;
    };
    for p in pending {
        let mine: Vec<&RestoredSource> =
            results.iter().filter(|r| r.service == p.service).collect();
        let complete = !mine.is_empty() && mine.iter().all(|r| r.status == RestoreStatus::Verified);
        if complete {
            if let Err(e) = state.clear_pending_restore(&p.service) {
                warnings.push(format!(
                    "service `{}` is restored, but its pending-restore record could not be cleared: {e}",
                    p.service
                ));
            }
        }
    }
}

/// Compares what a restore produced with the manifest's record: (differences that fail
/// verification, notes that do not).
pub(crate) use drydock_sources::compare_with_record as compare_with_manifest;

/// Per source: the newest good record (`latest`) or the record in the named backup.
pub(crate) fn find_record<'m>(
    manifests: &'m [Manifest],
    which: &BackupRef,
    service: &str,
    source: &str,
    failed_drills: &std::collections::BTreeSet<String>,
) -> Option<(&'m Manifest, &'m SourceRecord)> {
    let good = |m: &'m Manifest| {
        m.source(service, source)
            .filter(|r| r.is_restorable())
            .map(|r| (m, r))
    };
    match which {
        // A backup whose own drill could not restore it exactly is never `latest`.
        BackupRef::Latest => manifests
            .iter()
            .rev()
            .filter(|m| !failed_drills.contains(&failed_drill_key(m.id.as_str(), service, source)))
            .find_map(good),
        BackupRef::Id(id) => manifests
            .iter()
            .find(|m| m.id.as_str() == id)
            .and_then(good),
    }
}

/// The suspect kind under which a backup's source that failed its own drill is kept
/// (copy [`FAILED_DRILL_COPY`], id [`failed_drill_key`]).
pub(crate) const FAILED_DRILL: &str = "failed-drill";
/// Any copy: the stored bytes are the same in every copy.
pub(crate) const FAILED_DRILL_COPY: &str = "*";

pub(crate) fn failed_drill_key(backup_id: &str, service: &str, source: &str) -> String {
    format!("{backup_id}/{service}/{source}")
}

/// The backups' sources that failed the drill that took them (never `latest`).
pub(crate) fn failed_drills(config: &Config) -> std::collections::BTreeSet<String> {
    drydock_state::StateDb::open(&config.stack.state_dir)
        .and_then(|s| s.suspects(FAILED_DRILL_COPY, FAILED_DRILL))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// Restores and verifies one source from one copy; also says whether reading the copy
/// (rather than writing the target) failed.
fn restore_one(
    repository: &drydock_storage::Repository,
    copy: &str,
    t: &Target<'_>,
    scratch: &std::path::Path,
    state_dir: &std::path::Path,
    events: &Arc<dyn EventSink>,
) -> (RestoredSource, bool) {
    let label = t.record.label();
    let clock = Instant::now();
    events.emit(Event::SourceStarted {
        source: label.clone(),
        kind: t.record.kind.to_string(),
        step: "restore".into(),
        total_bytes: Some(t.record.logical_bytes),
    });
    let mut result = RestoredSource {
        service: t.service.to_string(),
        source: t.record.source.clone(),
        kind: t.record.kind,
        priority: t.record.priority,
        backup_id: t.backup_id.clone(),
        status: RestoreStatus::Failed,
        copy: copy.to_string(),
        differences: Vec::new(),
        notes: Vec::new(),
        expected_counts: t.record.counts.clone(),
        restored_counts: BTreeMap::new(),
        fingerprint: None,
        duration_ms: 0,
        error: None,
        service_action: None,
    };

    let work = scratch.join(format!("{}-{}", t.service, t.record.source));
    let fetch = RepoFetch {
        repo: repository,
        snapshot_id: &t.snapshot_id,
        record: &t.record,
        events: events.as_ref(),
        copy_failed: std::cell::Cell::new(false),
    };
    // Set once the source is about to change the live data: from then on a failure
    // leaves the restore owed (recorded in the state database first).
    let touched = std::sync::atomic::AtomicBool::new(false);
    let (service, backup_id) = (t.service, t.backup_id.as_str());
    let record_owed = |step: &str| -> Result<(), String> {
        if !touched.swap(true, std::sync::atomic::Ordering::SeqCst) {
            owe_restore(state_dir, service, backup_id, &label, step)?;
        }
        Ok(())
    };
    let outcome = (|| -> Result<(), String> {
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create scratch dir {}: {e}", work.display()))?;
        let ctx = SourceContext {
            label: &label,
            scratch: &work,
            events: events.as_ref(),
            replacing_live: &record_owed,
        };
        // Containers using the data (`--stop`): stopped now, started again below (or
        // when dropped, whatever fails).
        let mut users = crate::containers::StoppedUsers::stop(&t.users, events.as_ref())?;
        // File-level restores need the owning service stopped; it is started again
        // whatever happens next, once the data is verified or the restore failed.
        let mut stopped = false;
        if t.source.restore_mode() == RestoreMode::FileLevel
            && t.runtime.state().map_err(|e| e.to_string())? == State::Running
        {
            events.emit(Event::Step {
                message: format!("stopping service `{}` to replace its files", t.service),
            });
            t.runtime.stop().map_err(|e| e.to_string())?;
            stopped = true;
        }
        let restored = t
            .source
            .restore(&fetch, &t.record, &ctx)
            .map_err(|e| e.to_string());
        let checked = restored.and_then(|()| {
            events.emit(Event::Step {
                message: format!("verifying {label} against backup {}", t.backup_id),
            });
            t.source
                .inspect(&ctx)
                .map_err(|e| format!("restored, but could not be inspected: {e}"))
        });
        if stopped {
            events.emit(Event::Step {
                message: format!("starting service `{}` again", t.service),
            });
            let started = t.runtime.start();
            result.service_action = Some(match &started {
                Ok(()) => "stopped and started again".into(),
                Err(e) => format!("stopped; starting it again failed: {e}"),
            });
        }
        if !t.users.is_empty() {
            let failed = users.start();
            let names = t
                .users
                .iter()
                .map(|c| c.container.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            result.service_action = Some(if failed.is_empty() {
                format!("container(s) {names} stopped and started again")
            } else {
                format!(
                    "container(s) {names} stopped; starting again failed: {}",
                    failed.join("; ")
                )
            });
        }
        let inspection = checked?;
        result.restored_counts = inspection.counts.clone();
        result.fingerprint = Some(inspection.fingerprint.digest.clone());
        let (differences, notes) = compare_with_manifest(&t.record, &inspection);
        result.notes = notes;
        result.differences = differences;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result.duration_ms = clock.elapsed().as_millis() as u64;
    match outcome {
        Ok(()) if result.differences.is_empty() => result.status = RestoreStatus::Verified,
        Ok(()) => result.status = RestoreStatus::Mismatch,
        Err(e) => result.error = Some(e),
    }
    if result.status != RestoreStatus::Verified {
        let owed = if touched.load(std::sync::atomic::Ordering::SeqCst) {
            format!(
                "the live data of {label} was already being replaced: the restore is owed (`drydock status` lists it) until `drydock restore {} --service {} --force` verifies",
                t.backup_id, t.service
            )
        } else {
            format!("the live data of {label} was not changed")
        };
        result.notes.push(owed);
    }
    let message = match result.status {
        RestoreStatus::Verified => "verified".to_string(),
        RestoreStatus::Mismatch => format!("MISMATCH: {}", result.differences.join("; ")),
        RestoreStatus::Failed => format!("FAILED: {}", result.error.clone().unwrap_or_default()),
    };
    events.emit(Event::SourceFinished {
        source: label,
        ok: result.status == RestoreStatus::Verified,
        message,
        duration_ms: result.duration_ms,
    });
    (result, fetch.copy_failed.get())
}
