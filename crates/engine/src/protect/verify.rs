//! `drydock verify`: per copy (local and each remote, or the one named), the
//! repository's integrity (structure, and with `--read-data` every pack or a random
//! share of them), each backup's snapshots present, with `--read-data` each stream's
//! SHA-256 re-read and compared; a damaged object is named with the backups and
//! sources that depend on it. The outcome is recorded per backup and copy (verified
//! when, or corrupt). `--live`: the live data compared with the latest backup.
//!
//! Cancellation ([`RunContext::check_cancelled`]) is honoured between copies and between
//! snapshots; a cancelled copy records nothing (what it learnt is incomplete), and its
//! lock is released.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use drydock_domain::config::Config;
use drydock_domain::plan::{self, Selection};
use drydock_domain::Manifest;
use drydock_sources::{count_unit, SourceContext};
use drydock_state::{CopyState, StateDb};
use drydock_storage::{ReadData, Repository, MISSING_FROM_INDEX};
use serde::{Deserialize, Serialize};

use crate::copies::{self, storage_err, Catalog};
use crate::restore::BackupRef;
use crate::RunContext;
use crate::{repo, state, EngineError};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// `none`, `all`, or the share of packs read (`25%`).
    pub read_data: String,
    pub copies: Vec<CopyVerify>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyVerify {
    pub name: String,
    pub location: String,
    pub ok: bool,
    /// The copy could not be opened or checked at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Problems the repository check found (packs, index, trees).
    pub repository_errors: Vec<String>,
    /// Damaged objects and who needs them.
    pub damaged: Vec<DamagedObject>,
    pub backups: Vec<BackupCheck>,
    /// Stale locks of dead processes removed to take this run's lock (holder, PID, age).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DamagedObject {
    /// `pack <id>`, or `missing-from-index` for data the index does not know.
    pub object: String,
    pub errors: Vec<String>,
    /// Backups (id and `service/source`) whose data is in it.
    pub needed_by: Vec<Dependent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dependent {
    pub backup_id: String,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupCheck {
    pub id: String,
    pub sources: Vec<SourceCheck>,
}

/// What a repository check found of one source's data in one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    /// Its snapshot is gone.
    Missing,
    /// Damaged, or its checksum differs.
    Corrupt,
}

impl CheckStatus {
    /// The stable name, as in the JSON (kept in the state database's detail).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Missing => "missing",
            CheckStatus::Corrupt => "corrupt",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    pub source: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What `verify` checks. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct VerifyOptions {
    /// Check this backup's snapshots (default: every backup).
    pub backup: Option<String>,
    /// Only this copy: `local` or a `[[remote]]`'s name (default: every copy).
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub copy: Option<String>,
    // How much pack data to read. On the command line it is two flags (`--read-data`,
    // `--read-data-subset N%`), which the CLI turns into this one value.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub read_data: ReadData,
}

pub fn verify_repository(
    config: &Config,
    opts: &VerifyOptions,
    ctx: &RunContext,
) -> Result<VerifyReport, EngineError> {
    let names = copies::selected(config, opts.copy.as_deref())?;
    let state = StateDb::open(&config.stack.state_dir)?;
    let mut results = Vec::new();
    for name in &names {
        ctx.check_cancelled()?;
        let opened = copies::open_existing(config, name);
        let result = match opened {
            Ok(repository) => verify_copy(config, name, &repository, opts, &state, ctx)?,
            Err(e) => CopyVerify {
                name: name.clone(),
                location: copies::location_of(config, name),
                ok: false,
                error: Some(e.to_string()),
                repository_errors: vec![],
                damaged: vec![],
                backups: vec![],
                warnings: vec![],
            },
        };
        results.push(result);
    }
    if let Some(id) = opts.backup.as_deref() {
        let known = results.iter().any(|c| c.backups.iter().any(|b| b.id == id));
        if !known && results.iter().all(|c| c.error.is_none()) {
            return Err(EngineError::NoBackup(format!(
                "no backup {id} in the checked copies; see `drydock backups`"
            )));
        }
    }
    Ok(VerifyReport {
        ok: results.iter().all(|c| c.ok),
        read_data: match opts.read_data {
            ReadData::None => "none".into(),
            ReadData::All => "all".into(),
            ReadData::Percent(p) => format!("{p}%"),
        },
        copies: results,
    })
}

fn verify_copy(
    config: &Config,
    name: &str,
    repository: &Repository,
    opts: &VerifyOptions,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<CopyVerify, EngineError> {
    let events = ctx.events();
    // Verifying only reads: a repository disk that is full must not stop it.
    let lock = repository
        .lock_reading("verify")
        .map_err(storage_err(repository))?;
    for line in lock
        .removed_stale()
        .iter()
        .map(String::as_str)
        .chain(lock.unwritten())
    {
        events.emit(drydock_domain::Event::Warning {
            message: format!("copy `{name}`: {line}"),
        });
    }
    events.emit(drydock_domain::Event::Step {
        message: format!("checking copy `{name}` ({})", repository.location()),
    });
    let check = repository
        .check_with(opts.read_data)
        .map_err(storage_err(repository))?;
    let catalog = Catalog::load(repository, &config.stack.name, events)?;
    let selected: Vec<&Manifest> = catalog
        .manifests
        .iter()
        .map(|m| &m.manifest)
        .filter(|m| opts.backup.as_deref().is_none_or(|id| m.id.as_str() == id))
        .collect();
    // Cancelled: the lock goes before the error does, and nothing is recorded.
    let mut backups = match check_backups(name, repository, &catalog, &selected, opts, ctx) {
        Ok(backups) => backups,
        Err(cancelled) => {
            let _ = lock.release();
            return Err(cancelled);
        }
    };
    backups.extend(vanished_backups(name, &catalog, opts, state)?);
    let (damaged, unused_damaged) = find_damage(repository, &catalog, &selected, &check, opts);
    if !check.aborted {
        remember_suspects(name, repository, &catalog, &check, &damaged, state);
    }
    let damaged = with_unreadable_snapshots(damaged, &catalog);
    mark_damaged_sources(&damaged, &mut backups);
    record_checked(name, &backups, &check, state)?;
    let ok = check.ok
        && unused_damaged == 0
        && catalog.unreadable.is_empty()
        && backups
            .iter()
            .all(|b| b.sources.iter().all(|s| s.status == CheckStatus::Ok));
    Ok(CopyVerify {
        name: name.to_string(),
        location: repository.location().to_string(),
        ok,
        error: None,
        repository_errors: check.errors,
        damaged,
        backups,
        warnings: {
            let mut warnings = lock.removed_stale().to_vec();
            warnings.extend(lock.unwritten().map(str::to_string));
            if let Err(left) = lock.release() {
                warnings.push(left);
            }
            warnings
        },
    })
}

/// Per selected backup, whether each restorable source's snapshot is in the copy (and,
/// reading all data, whether its stream's SHA-256 is the manifest's).
/// Stops at a cancellation between snapshots.
fn check_backups(
    name: &str,
    repository: &Repository,
    catalog: &Catalog,
    selected: &[&Manifest],
    opts: &VerifyOptions,
    ctx: &RunContext,
) -> Result<Vec<BackupCheck>, EngineError> {
    let events = ctx.events();
    let mut backups = Vec::new();
    for m in selected {
        if opts.read_data == ReadData::All {
            // Re-reading every stream is the long part: say which backup it is at.
            events.emit(drydock_domain::Event::Step {
                message: format!("copy `{name}`: re-reading the data of backup {}", m.id),
            });
        }
        let mut sources = Vec::new();
        for r in m.sources.iter().filter(|r| r.is_restorable()) {
            ctx.check_cancelled()?;
            let (status, detail) = match catalog.snapshot_of(m.id.as_str(), &r.service, &r.source) {
                None => (
                    CheckStatus::Missing,
                    Some("its snapshot is not in this copy".to_string()),
                ),
                Some(snap) if opts.read_data == ReadData::All && r.sha256.is_some() => {
                    let mut sink = std::io::sink();
                    match repository.dump_stream(snap, &mut sink) {
                        Ok((_, sha)) if Some(&sha) == r.sha256.as_ref() => (CheckStatus::Ok, None),
                        Ok((_, sha)) => (
                            CheckStatus::Corrupt,
                            Some(format!(
                                "SHA-256 {sha} differs from the manifest's {}",
                                r.sha256.as_deref().unwrap_or("")
                            )),
                        ),
                        Err(e) => (CheckStatus::Corrupt, Some(e.to_string())),
                    }
                }
                Some(_) => (CheckStatus::Ok, None),
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
    Ok(backups)
}

/// A backup this copy held (an earlier sync, backup or verify proved it) whose
/// manifest is gone has vanished from the copy: without its manifest nothing lists
/// or restores it, and its data snapshots are orphans the next prune would delete.
fn vanished_backups(
    name: &str,
    catalog: &Catalog,
    opts: &VerifyOptions,
    state: &StateDb,
) -> Result<Vec<BackupCheck>, EngineError> {
    let mut backups = Vec::new();
    let held_before = state.copy_records(name)?;
    for (id, record) in &held_before {
        let was_held = matches!(record.state, CopyState::Verified | CopyState::Corrupt);
        if !was_held
            || opts
                .backup
                .as_deref()
                .is_some_and(|only| only != id.as_str())
            || catalog.manifest(id).is_some()
        {
            continue;
        }
        let data = catalog.data_of(id);
        let left = if data.is_empty() {
            "none of its data snapshots is left either".to_string()
        } else {
            format!(
                "its data snapshots are still there ({}); `drydock sync` puts the manifest back on a remote, and restoring from another copy works meanwhile",
                data.iter()
                    .map(|(label, snap)| format!("{label}: {}", &snap[..8.min(snap.len())]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        backups.push(BackupCheck {
            id: id.clone(),
            sources: vec![SourceCheck {
                source: "manifest".into(),
                status: CheckStatus::Missing,
                detail: Some(format!(
                    "the backup's manifest snapshot is gone from this copy (deleted or unreadable), where it was {} before; {left}",
                    record.state.as_str()
                )),
            }],
        });
    }
    Ok(backups)
}

/// The damaged objects the check found, named with the backups that need them, and
/// how many damaged packs no backup uses.
fn find_damage(
    repository: &Repository,
    catalog: &Catalog,
    selected: &[&Manifest],
    check: &drydock_storage::CheckReport,
    opts: &VerifyOptions,
) -> (Vec<DamagedObject>, usize) {
    // A check that aborted proved nothing about the packs: naming every pack its
    // message mentions would mark good backups corrupt.
    let mut damaged = if check.ok || check.aborted {
        Vec::new()
    } else {
        name_damage(repository, catalog, selected, &check.errors)
    };
    // rustic's read check reads only the packs snapshots use; a damaged pack no backup
    // needs still says the storage is damaging what it holds.
    let mut unused_damaged = 0;
    if opts.read_data == ReadData::All && !check.aborted {
        // When the index cannot be read, the check said so already.
        let unused = repository.damaged_unused_packs(&catalog.snapshot_ids);
        for file in unused.unwrap_or_default() {
            unused_damaged += 1;
            damaged.push(DamagedObject {
                object: format!("pack {}", file.id),
                errors: vec![format!(
                    "{}; no backup uses its data (the next backup or sync removes it)",
                    file.why
                )],
                needed_by: Vec::new(),
            });
        }
    }
    (damaged, unused_damaged)
}

/// A damaged pack keeps its name and size: only a read finds it again. Remembered,
/// the next backup or sync proves it damaged, removes it and uploads its data again.
/// Short ids from the check's messages about packs too: a pack holding only a
/// manifest is named by no backup's data. The repair hashes each before acting.
fn remember_suspects(
    name: &str,
    repository: &Repository,
    catalog: &Catalog,
    check: &drydock_storage::CheckReport,
    damaged: &[DamagedObject],
    state: &StateDb,
) {
    let named = damaged.iter().filter_map(|o| {
        Some((
            o.object.strip_prefix("pack ")?.to_string(),
            o.errors.join("; "),
        ))
    });
    let mentioned = check
        .errors
        .iter()
        .filter(|e| e.to_ascii_lowercase().contains("pack"))
        .flat_map(|e| hex_tokens(e).into_iter().map(move |t| (t, e.clone())));
    for (pack, why) in named.chain(mentioned) {
        let _ = state.record_suspect(name, crate::repair::SUSPECT_PACK, &pack, &why);
    }
    // Also when only snapshots no selected backup names lost index entries: a
    // manifest whose tree the index lost cannot be read, so its backup is not
    // among the selected ones.
    let index_lost = damaged.iter().any(|o| o.object == MISSING_FROM_INDEX)
        || (!check.ok
            && repository
                .incomplete(&catalog.snapshot_ids)
                .is_ok_and(|incomplete| !incomplete.is_empty()));
    if index_lost {
        let _ = state.record_suspect(
            name,
            crate::repair::SUSPECT_INDEX,
            "*",
            "data of backups is missing from the index",
        );
    }
}

/// What an unreadable snapshot file held cannot be read from it; the backups that
/// miss a manifest or a source's snapshot are the ones that needed it.
fn with_unreadable_snapshots(
    mut damaged: Vec<DamagedObject>,
    catalog: &Catalog,
) -> Vec<DamagedObject> {
    damaged.extend(catalog.unreadable.iter().map(|(id, why)| DamagedObject {
        object: format!("snapshot {id}"),
        errors: vec![format!("the snapshot file cannot be read: {why}")],
        needed_by: Vec::new(),
    }));
    damaged
}

/// A source whose data sits in a damaged pack is corrupt, even when only the pack
/// check (not a stream re-read) noticed.
fn mark_damaged_sources(damaged: &[DamagedObject], backups: &mut [BackupCheck]) {
    for object in damaged {
        for dep in &object.needed_by {
            if let Some(b) = backups.iter_mut().find(|b| b.id == dep.backup_id) {
                for s in b
                    .sources
                    .iter_mut()
                    .filter(|s| dep.sources.contains(&s.source))
                {
                    if s.status == CheckStatus::Ok {
                        s.status = CheckStatus::Corrupt;
                        s.detail = Some(format!("its data is in damaged {}", object.object));
                    }
                }
            }
        }
    }
}

/// Records each backup verified or corrupt in this copy. An aborted check leaves what
/// the state knew: nothing new was learnt, except a stream re-read that found a
/// difference.
fn record_checked(
    name: &str,
    backups: &[BackupCheck],
    check: &drydock_storage::CheckReport,
    state: &StateDb,
) -> Result<(), EngineError> {
    for b in backups {
        let bad: Vec<String> = b
            .sources
            .iter()
            .filter(|s| s.status != CheckStatus::Ok)
            .map(|s| format!("{}: {}", s.source, s.status.as_str()))
            .collect();
        let (copy_state, detail) = if bad.is_empty() {
            (CopyState::Verified, None)
        } else {
            (CopyState::Corrupt, Some(bad.join(", ")))
        };
        // An aborted check leaves what the state knew: nothing new was learnt, except
        // a stream re-read that found a difference.
        if check.aborted && copy_state == CopyState::Verified {
            continue;
        }
        state.record_copy(name, &b.id, copy_state, detail.as_deref())?;
    }
    Ok(())
}

/// Maps the pack ids the check complained about to the backups and sources whose data
/// is in them.
fn name_damage(
    repository: &Repository,
    catalog: &Catalog,
    selected: &[&Manifest],
    errors: &[String],
) -> Vec<DamagedObject> {
    // (snapshot id) -> (backup id, source label)
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    for m in selected {
        for r in m.sources.iter().filter(|r| r.is_restorable()) {
            if let Some(snap) = catalog.snapshot_of(m.id.as_str(), &r.service, &r.source) {
                owners.insert(snap.to_string(), (m.id.to_string(), r.label()));
            }
        }
    }
    let snapshot_ids: Vec<String> = owners.keys().cloned().collect();
    let packs = repository.packs_of(&snapshot_ids).unwrap_or_default();
    let mut by_pack: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for error in errors {
        for token in hex_tokens(error) {
            if let Some(pack) = packs.values().flatten().find(|p| p.starts_with(&token)) {
                let list = by_pack.entry(pack.clone()).or_default();
                if !list.contains(error) {
                    list.push(error.clone());
                }
            }
        }
    }
    // Data the index lost is damage too, even when no error names a pack.
    if packs.values().any(|p| p.contains(MISSING_FROM_INDEX)) {
        by_pack
            .entry(MISSING_FROM_INDEX.to_string())
            .or_default()
            .push("blobs of these snapshots are not in the index".into());
    }
    by_pack
        .into_iter()
        .map(|(pack, errors)| {
            let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (snap, in_packs) in &packs {
                if in_packs.contains(&pack) {
                    if let Some((backup, label)) = owners.get(snap) {
                        needed
                            .entry(backup.clone())
                            .or_default()
                            .insert(label.clone());
                    }
                }
            }
            DamagedObject {
                object: if pack == MISSING_FROM_INDEX {
                    pack
                } else {
                    format!("pack {pack}")
                },
                errors,
                needed_by: needed
                    .into_iter()
                    .map(|(backup_id, sources)| Dependent {
                        backup_id,
                        sources: sources.into_iter().collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Runs of at least 8 hex digits: the (short or full) ids in rustic's messages.
fn hex_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|t| t.len() >= 8)
        .map(str::to_ascii_lowercase)
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    /// Every live source equals its latest backup.
    pub same: bool,
    pub sources: Vec<LiveComparison>,
}

/// How the live data compares with its latest good backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiveStatus {
    Same,
    Changed,
    /// No good backup to compare with.
    NoBackup,
    /// The live data could not be inspected.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveComparison {
    pub source: String,
    pub backup_id: Option<String>,
    pub status: LiveStatus,
    pub differences: Vec<String>,
    /// Whether the schema (DDL, database defaults) differs from the backup's; absent for
    /// engines without one and when the data could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_changed: Option<bool>,
}

/// Compares each configured source's live data with its latest good backup.
pub fn verify_live(
    config: &Config,
    selection: &Selection,
    ctx: &RunContext,
) -> Result<LiveReport, EngineError> {
    verify_live_against(config, selection, &BackupRef::Latest, ctx)
}

/// Each selected source's newest good backup (`service/source`, its id), from the
/// manifests alone: the live data is not read.
pub fn good_backups(
    config: &Config,
    selection: &Selection,
    ctx: &RunContext,
) -> Result<Vec<(String, Option<String>)>, EngineError> {
    let planned = plan::plan(config, selection)?;
    let repository = repo::open_repository(config, false)?;
    let manifests = crate::copies::load_manifests(&repository, &config.stack.name, ctx.events())?;
    Ok(planned
        .iter()
        .map(|p| {
            let found = crate::restore::find_record(
                &manifests,
                &BackupRef::Latest,
                p.service,
                p.source.name(),
                &BTreeSet::new(),
            );
            (p.label(), found.map(|(m, _)| m.id.to_string()))
        })
        .collect())
}

/// Compares each selected source's live data with its record in `which` (`latest`: its
/// newest good backup).
pub fn verify_live_against(
    config: &Config,
    selection: &Selection,
    which: &BackupRef,
    ctx: &RunContext,
) -> Result<LiveReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let planned = plan::plan(config, selection)?;
    let repository = repo::open_repository(config, false)?;
    let manifests =
        crate::copies::load_manifests(&repository, &config.stack.name, events.as_ref())?;
    let scratch = state::scratch(&config.stack.state_dir)?;
    let mut sources = Vec::new();
    for p in planned {
        let label = p.label();
        let latest = crate::restore::find_record(
            &manifests,
            which,
            p.service,
            p.source.name(),
            &BTreeSet::new(),
        );
        let Some((m, record)) = latest else {
            sources.push(LiveComparison {
                source: label,
                backup_id: None,
                status: LiveStatus::NoBackup,
                differences: vec![],
                schema_changed: None,
            });
            continue;
        };
        let source = drydock_sources::build(p.source);
        let ctx = SourceContext {
            label: &label,
            scratch: scratch.path(),
            events: events.as_ref(),
            replacing_live: &drydock_sources::no_live_change,
        };
        let mut schema_changed = None;
        let (status, differences) = match source.inspect_as(record, &ctx) {
            Err(e) => (LiveStatus::Error, vec![e.to_string()]),
            Ok(now) => {
                schema_changed = record
                    .fingerprint
                    .as_ref()
                    .and_then(|f| now.fingerprint.schema_changed(f));
                let diff = record
                    .fingerprint
                    .as_ref()
                    .map(|f| now.fingerprint.differences(f, count_unit(record.kind)))
                    .unwrap_or_default();
                (
                    if diff.is_empty() {
                        LiveStatus::Same
                    } else {
                        LiveStatus::Changed
                    },
                    diff,
                )
            }
        };
        sources.push(LiveComparison {
            source: label,
            backup_id: Some(m.id.to_string()),
            status,
            differences,
            schema_changed,
        });
    }
    Ok(LiveReport {
        same: sources.iter().all(|s| s.status == LiveStatus::Same),
        sources,
    })
}

impl VerifyReport {
    /// Ok when every copy checked out, else failed (damage found).
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.ok {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Failed
        }
    }
}

impl LiveReport {
    /// Ok when the live data equals the latest backup, else a warning (it changed).
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.same {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Warning
        }
    }
}
