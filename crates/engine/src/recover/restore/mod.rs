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

//!
//! **Steps**: [`restore`] reads as the list: plan and open the copies, preflight
//! (choose a copy per source, reach every target), confirm overwriting, restore each
//! source (`one.rs`), clear the owed records a complete restore pays. Between the steps,
//! and inside a source's restore before its live data changes, the run is a safe point:
//! cancelled there, it returns [`EngineError::Cancelled`], having started again what it
//! stopped, left live data as it was (or, past the swap, the owed record `status`
//! shows), and recorded nothing as verified.

mod copy_set;
mod one;
mod report;

pub use report::*;

pub(crate) use copy_set::{
    failed_drill_key, failed_drills, find_record, FAILED_DRILL, FAILED_DRILL_COPY,
};

use std::time::Instant;

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::plan::{self, PlannedSource, Selection};
use drydock_domain::{Event, Manifest, SourceRecord};
use drydock_sources::RestoreMode;

use copy_set::CopySet;
use one::{restore_one, Place, Target};

use crate::RunContext;
use crate::{state, EngineError};

/// Compares what a restore produced with the manifest's record: (differences that fail
/// verification, notes that do not).
pub(crate) use drydock_sources::compare_with_record as compare_with_manifest;

pub fn restore(
    config: &Config,
    opts: &RestoreOptions,
    ctx: &RunContext,
) -> Result<RestoreReport, EngineError> {
    if opts.services.is_empty() && !opts.all {
        return Err(EngineError::Refused(
            "say what to restore: --service NAME (repeatable) or --all".into(),
        ));
    }
    ctx.check_cancelled()?;
    // RTO as the operator feels it: from the command's start, repository opening included.
    let clock = Instant::now();
    let planned = plan_sources(config, opts)?;
    let mut run = Run::open(config, opts, ctx)?;
    // Preflight: nothing changes until all of it passed.
    let mut targets = run.preflight(&planned)?;
    ctx.check_cancelled()?;
    confirm_overwrite(&targets, opts, ctx)?;
    ctx.check_cancelled()?;
    let results = run.restore_targets(&mut targets)?;
    Ok(run.finish(results, clock))
}

/// One restore's shared state: what it reads from, and what it has found to say.
struct Run<'c> {
    config: &'c Config,
    opts: &'c RestoreOptions,
    ctx: &'c RunContext,
    copy_set: CopySet<'c>,
    scratch: state::Scratch,
    warnings: Vec<String>,
    /// Why a copy could not serve a source (unreadable, failed its check); named again
    /// if nothing at all can be restored.
    problems: Vec<String>,
    /// Sources the backup holds that no copy could restore (damaged or missing there).
    unrestorable: Vec<String>,
}

/// A source's backup found in a copy: (copy, manifest, record, snapshot id).
type Chosen = (usize, Manifest, SourceRecord, String);

impl<'c> Run<'c> {
    fn open(
        config: &'c Config,
        opts: &'c RestoreOptions,
        ctx: &'c RunContext,
    ) -> Result<Run<'c>, EngineError> {
        let copy_set = CopySet::new(config, opts.from.as_deref())?;
        if copy_set.names == [LOCAL_COPY] && !config.repository.path.join("config").exists() {
            return Err(EngineError::NoRepository {
                path: config.repository.path.clone(),
            });
        }
        Ok(Run {
            config,
            opts,
            ctx,
            copy_set,
            scratch: state::scratch(&config.stack.state_dir)?,
            warnings: Vec::new(),
            problems: Vec::new(),
            unrestorable: Vec::new(),
        })
    }

    /// Finds every record in a copy that checks out and reaches every target; refuses
    /// when a target cannot be restored safely or nothing can be restored at all.
    fn preflight(&mut self, planned: &[PlannedSource<'c>]) -> Result<Vec<Target<'c>>, EngineError> {
        let mut targets = Vec::new();
        for p in planned {
            self.ctx.check_cancelled()?;
            if let Some(chosen) = self.choose_copy(p) {
                targets.push(self.target(p, chosen)?);
            }
        }
        if targets.is_empty() {
            return Err(self.nothing_to_restore());
        }
        Ok(targets)
    }

    /// The copy to restore `p` from, or (with a warning) none.
    fn choose_copy(&mut self, p: &PlannedSource<'c>) -> Option<Chosen> {
        let label = p.label();
        let mut notes = Vec::new();
        let chosen = self.copy_set.choose(
            &self.opts.backup,
            p.service,
            p.source.name(),
            0,
            &mut notes,
            self.ctx.events(),
        );
        for note in &notes {
            self.warnings.push(format!("{label}: {note}"));
            self.problems.push(format!("{label}: {note}"));
        }
        self.problems.extend(self.copy_set.warnings.iter().cloned());
        if chosen.is_none() {
            if !notes.is_empty() {
                // The backup holds this source, but no copy can give it back: the
                // restore is incomplete, whatever the other sources do.
                self.unrestorable.push(label.clone());
            }
            let msg = match &self.opts.backup {
                BackupRef::Latest => format!("{label}: no copy holds a good backup of it; skipped"),
                BackupRef::Id(id) => {
                    format!("{label}: no copy holds a good copy of it in backup {id}; skipped")
                }
            };
            self.warnings.push(msg.clone());
            self.ctx.events().emit(Event::Warning { message: msg });
        }
        chosen
    }

    /// `p` as a restore target, once it is known to be restorable here: the same kind
    /// as in the backup, stoppable when its files are replaced, no running user left
    /// running unless `--stop`.
    fn target(&self, p: &PlannedSource<'c>, chosen: Chosen) -> Result<Target<'c>, EngineError> {
        let (copy, manifest, record, snapshot_id) = chosen;
        let label = p.label();
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
        if !users.is_empty() && !self.opts.stop {
            return Err(EngineError::Refused(format!(
                "{label}: {} is used by running container(s) {}; nothing was changed. Stop them first, or pass --stop to let drydock stop them and start them again afterwards",
                source.location(),
                users.join(", ")
            )));
        }
        Ok(Target {
            service: p.service,
            record,
            backup_id: manifest.id.to_string(),
            copy,
            snapshot_id,
            source,
            runtime,
            users: users
                .iter()
                .map(|name| crate::containers::container_config(self.config, name))
                .collect(),
        })
    }

    /// Why nothing can be restored: no copy could even be read (a wrong password, an
    /// unreadable copy: an unusable repository, exit 2, as for `drydock backups`), or
    /// none holds the selected sources.
    fn nothing_to_restore(&mut self) -> EngineError {
        self.problems.sort();
        self.problems.dedup();
        if self.copy_set.none_usable() {
            return EngineError::NoUsableCopy(self.problems.join("; "));
        }
        let why = if self.problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.problems.join("; "))
        };
        EngineError::NoBackup(match &self.opts.backup {
            BackupRef::Latest => format!("no copy holds a good backup of the selected sources; see `drydock backups`{why}"),
            BackupRef::Id(id) => format!("backup {id} does not exist or holds none of the selected sources; see `drydock backups`{why}"),
        })
    }

    /// Restores every target in order, each from the next copy that has it when
    /// reading its copy fails; a safe point before each.
    fn restore_targets(
        &mut self,
        targets: &mut [Target<'c>],
    ) -> Result<Vec<RestoredSource>, EngineError> {
        self.ctx.events().emit(Event::Started {
            operation: "restore".into(),
            id: None,
            sources: targets.len(),
        });
        let mut results = Vec::new();
        for t in targets.iter_mut() {
            self.ctx.check_cancelled()?;
            results.push(self.restore_with_fallback(t)?);
        }
        Ok(results)
    }

    /// One target from its chosen copy; when that copy's data cannot be read, the same
    /// backup from the next copy that has it, or the failure with both reasons.
    fn restore_with_fallback(&mut self, t: &mut Target<'c>) -> Result<RestoredSource, EngineError> {
        loop {
            let name = self.copy_set.names[t.copy].clone();
            let opened = self
                .copy_set
                .get(t.copy, self.ctx.events())
                .expect("chosen copies are open");
            let place = Place {
                repository: &opened.repo,
                copy: &name,
                scratch: self.scratch.path(),
                state_dir: &self.config.stack.state_dir,
            };
            let (mut result, copy_failed) = restore_one(&place, t, self.ctx)?;
            if result.status != RestoreStatus::Failed || !copy_failed {
                return Ok(result);
            }
            let mut notes = Vec::new();
            let next = self.copy_set.choose(
                &BackupRef::Id(t.backup_id.clone()),
                t.service,
                &t.record.source,
                t.copy + 1,
                &mut notes,
                self.ctx.events(),
            );
            let Some((copy, _, record, snapshot_id)) = next else {
                result.notes.extend(notes);
                return Ok(result);
            };
            let failed_with = result.error.clone().unwrap_or_default();
            let message = format!(
                "{}: reading copy `{name}` failed ({failed_with}); restoring from copy `{}` instead",
                t.record.label(),
                self.copy_set.names[copy]
            );
            self.ctx.events().emit(Event::Warning {
                message: message.clone(),
            });
            self.warnings.push(message);
            (t.copy, t.record, t.snapshot_id) = (copy, record, snapshot_id);
        }
    }

    /// The report; owed records of services now whole again are cleared.
    fn finish(mut self, results: Vec<RestoredSource>, clock: Instant) -> RestoreReport {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.append(&mut self.copy_set.warnings);
        if !self.unrestorable.is_empty() {
            warnings.push(format!(
                "not restored, no copy holds good data of: {} (see the warnings for why: pruned by retention, or damaged); the restore is incomplete",
                self.unrestorable.join(", ")
            ));
        }
        let verified = self.unrestorable.is_empty()
            && results.iter().all(|r| r.status == RestoreStatus::Verified);
        clear_completed_pending(self.config, &results, &mut warnings);
        RestoreReport {
            verified,
            rto_ms: clock.elapsed().as_millis() as u64,
            sources: results,
            warnings,
        }
    }
}

/// The selected services' sources, critical first.
fn plan_sources<'c>(
    config: &'c Config,
    opts: &RestoreOptions,
) -> Result<Vec<PlannedSource<'c>>, EngineError> {
    let selection = Selection {
        all: true,
        services: opts.services.clone(),
        priorities: vec![],
    };
    let planned = plan::plan(config, &selection)?;
    if opts.sources.is_empty() {
        return Ok(planned);
    }
    if let Some(unknown) = opts
        .sources
        .iter()
        .find(|s| !planned.iter().any(|p| p.label() == **s))
    {
        let known: Vec<String> = planned.iter().map(|p| p.label()).collect();
        return Err(EngineError::Refused(format!(
            "--source {unknown}: no such source among the services chosen; nothing was changed. Sources: {}",
            known.join(", ")
        )));
    }
    Ok(planned
        .into_iter()
        .filter(|p| opts.sources.contains(&p.label()))
        .collect())
}

/// Replacing data that is there needs a confirmation (typed on a terminal) or `--force`;
/// nobody to ask and not forced is a refusal. Nothing has changed yet.
fn confirm_overwrite(
    targets: &[Target<'_>],
    opts: &RestoreOptions,
    ctx: &RunContext,
) -> Result<(), EngineError> {
    let mut occupied = Vec::new();
    for t in targets {
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
    if occupied.is_empty() || opts.force {
        return Ok(());
    }
    let list = occupied.join(", ");
    let refusal = match ctx.confirm(&format!("Restoring replaces the existing data of: {list}.")) {
        Some(true) => return Ok(()),
        Some(false) => format!("not confirmed; nothing was changed ({list} keeps its data)"),
        None => format!(
            "the restore target already holds data: {list}. Nothing was changed. Re-run on a terminal to confirm, or with --force"
        ),
    };
    Err(EngineError::Refused(refusal))
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
