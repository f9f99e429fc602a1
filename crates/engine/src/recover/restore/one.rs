//! One source restored from one copy, step by step: stop what uses its data, restore
//! (beside the live data where the engine allows it, then swapped in), start again,
//! inspect, compare with the manifest. Before the first change to live data the restore
//! is recorded as owed; that moment is also a safe point, so a cancelled restore either
//! changed nothing or left the owed record that `status` shows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use drydock_domain::config::DockerRuntimeConfig;
use drydock_domain::{Event, SourceRecord};
use drydock_runtimes::{Runtime, State};
use drydock_sources::{DataSource, Inspection, RestoreMode, SourceContext};

use super::report::{RestoreStatus, RestoredSource};
use crate::containers::StoppedUsers;
use crate::repo::RepoFetch;
use crate::{EngineError, RunContext};

/// A source the preflight found restorable, with the copy it is read from.
pub(super) struct Target<'c> {
    pub(super) service: &'c str,
    pub(super) record: SourceRecord,
    pub(super) backup_id: String,
    /// The copy (index into the copy set) and the record's snapshot there.
    pub(super) copy: usize,
    pub(super) snapshot_id: String,
    pub(super) source: Box<dyn DataSource>,
    pub(super) runtime: Box<dyn Runtime>,
    /// Running containers using the data, stopped for the restore (`--stop`).
    pub(super) users: Vec<DockerRuntimeConfig>,
}

/// Where one source's restore works and records what it owes.
pub(super) struct Place<'a> {
    pub(super) repository: &'a drydock_storage::Repository,
    pub(super) copy: &'a str,
    pub(super) scratch: &'a Path,
    pub(super) state_dir: &'a Path,
}

/// Restores and verifies one source from one copy; also says whether reading the copy
/// (rather than writing the target) failed. `Err` only when the run was cancelled.
pub(super) fn restore_one(
    place: &Place<'_>,
    t: &Target<'_>,
    ctx: &RunContext,
) -> Result<(RestoredSource, bool), EngineError> {
    let label = t.record.label();
    let clock = Instant::now();
    ctx.events().emit(Event::SourceStarted {
        source: label.clone(),
        kind: t.record.kind.to_string(),
        step: "restore".into(),
        total_bytes: Some(t.record.logical_bytes),
    });
    let mut result = unverified(t, place.copy);
    let work = place
        .scratch
        .join(format!("{}-{}", t.service, t.record.source));
    let fetch = RepoFetch {
        repo: place.repository,
        snapshot_id: &t.snapshot_id,
        record: &t.record,
        events: ctx.events(),
        copy_failed: std::cell::Cell::new(false),
    };
    let owed = Owed {
        state_dir: place.state_dir,
        t,
        label: &label,
        ctx,
        touched: AtomicBool::new(false),
    };
    let outcome = replace_and_inspect(t, &fetch, &work, &owed, ctx, &mut result);
    let _ = std::fs::remove_dir_all(&work);
    result.duration_ms = clock.elapsed().as_millis() as u64;
    if let Err(cancelled) = ctx.check_cancelled() {
        // Nothing of a cancelled run counts as verified, whatever this source reached.
        finish_cancelled(&label, &owed, &result, ctx);
        return Err(cancelled);
    }
    judge(&mut result, outcome, &owed);
    announce_finished(label, &result, ctx);
    Ok((result, fetch.copy_failed.get()))
}

/// The result before anything ran: failed, nothing restored.
fn unverified(t: &Target<'_>, copy: &str) -> RestoredSource {
    RestoredSource {
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
    }
}

/// The restore owed in the state database from the first change to live data on.
struct Owed<'a> {
    state_dir: &'a Path,
    t: &'a Target<'a>,
    label: &'a str,
    ctx: &'a RunContext,
    /// Set once the source is about to change the live data: from then on a failure
    /// leaves the restore owed (recorded in the state database first).
    touched: AtomicBool,
}

impl Owed<'_> {
    /// The source's announcement of its first destructive step: a safe point (a
    /// cancelled run stops here, before the live data changes), then the owed record.
    fn before_replacing_live(&self, step: &str) -> Result<(), String> {
        if let Some(reason) = self.ctx.cancel.reason() {
            return Err(format!("the restore was cancelled ({reason})"));
        }
        if !self.touched.swap(true, Ordering::SeqCst) {
            owe_restore(
                self.state_dir,
                self.t.service,
                &self.t.backup_id,
                self.label,
                step,
            )?;
        }
        Ok(())
    }

    fn touched(&self) -> bool {
        self.touched.load(Ordering::SeqCst)
    }
}

/// Records, before a source's first change to live data, that `service` is owed a
/// restore from `backup_id`: kept until a restore of it verifies. An earlier record
/// (a destructive drill's wipe) keeps its reason and time.
fn owe_restore(
    state_dir: &Path,
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

/// Stops what must not run, restores, starts it again, and inspects the result,
/// filling in the counts, fingerprint, differences and what was done to the service.
fn replace_and_inspect(
    t: &Target<'_>,
    fetch: &RepoFetch<'_>,
    work: &Path,
    owed: &Owed<'_>,
    ctx: &RunContext,
    result: &mut RestoredSource,
) -> Result<(), String> {
    std::fs::create_dir_all(work)
        .map_err(|e| format!("cannot create scratch dir {}: {e}", work.display()))?;
    let before_replacing = |step: &str| owed.before_replacing_live(step);
    let sctx = SourceContext {
        label: owed.label,
        scratch: work,
        events: ctx.events(),
        replacing_live: &before_replacing,
    };
    // Containers using the data (`--stop`): stopped now, started again below, when
    // dropped whatever fails, or at once when the run is cancelled.
    let mut users = StoppedUsers::stop(&t.users, ctx).map_err(|e| e.to_string())?;
    let stopped = stop_file_owner(t, ctx)?;
    let checked = restore_and_inspect(t, fetch, &sctx, ctx);
    if stopped {
        start_file_owner(t, ctx, result);
    }
    if !t.users.is_empty() {
        start_users(t, &mut users, result);
    }
    let inspection = checked?;
    result.restored_counts = inspection.counts.clone();
    result.fingerprint = Some(inspection.fingerprint.digest.clone());
    let (differences, notes) = drydock_sources::compare_with_record(&t.record, &inspection);
    result.notes = notes;
    result.differences = differences;
    Ok(())
}

/// File-level restores need the owning service stopped; whether it was (it is started
/// again whatever happens next, once the data is verified or the restore failed).
fn stop_file_owner(t: &Target<'_>, ctx: &RunContext) -> Result<bool, String> {
    if t.source.restore_mode() != RestoreMode::FileLevel
        || t.runtime.state().map_err(|e| e.to_string())? != State::Running
    {
        return Ok(false);
    }
    ctx.check_cancelled().map_err(|e| e.to_string())?;
    ctx.events().emit(Event::Step {
        message: format!("stopping service `{}` to replace its files", t.service),
    });
    t.runtime.stop().map_err(|e| e.to_string())?;
    Ok(true)
}

/// The restore proper, then (a safe point between them) the inspection of its result.
fn restore_and_inspect(
    t: &Target<'_>,
    fetch: &RepoFetch<'_>,
    sctx: &SourceContext<'_>,
    ctx: &RunContext,
) -> Result<Inspection, String> {
    t.source
        .restore(fetch, &t.record, sctx)
        .map_err(|e| e.to_string())?;
    ctx.check_cancelled().map_err(|e| e.to_string())?;
    ctx.events().emit(Event::Step {
        message: format!("verifying {} against backup {}", sctx.label, t.backup_id),
    });
    t.source
        .inspect_as(&t.record, sctx)
        .map_err(|e| format!("restored, but could not be inspected: {e}"))
}

fn start_file_owner(t: &Target<'_>, ctx: &RunContext, result: &mut RestoredSource) {
    ctx.events().emit(Event::Step {
        message: format!("starting service `{}` again", t.service),
    });
    let started = t.runtime.start();
    result.service_action = Some(match &started {
        Ok(()) => "stopped and started again".into(),
        Err(e) => format!("stopped; starting it again failed: {e}"),
    });
}

fn start_users(t: &Target<'_>, users: &mut StoppedUsers, result: &mut RestoredSource) {
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

/// Verified only when the restore ran and nothing differs; otherwise the notes say
/// whether the live data was already being replaced (the restore is owed) or not.
fn judge(result: &mut RestoredSource, outcome: Result<(), String>, owed: &Owed<'_>) {
    match outcome {
        Ok(()) if result.differences.is_empty() => result.status = RestoreStatus::Verified,
        Ok(()) => result.status = RestoreStatus::Mismatch,
        Err(e) => result.error = Some(e),
    }
    if result.status != RestoreStatus::Verified {
        result.notes.push(owed_note(owed));
    }
}

fn owed_note(owed: &Owed<'_>) -> String {
    if owed.touched() {
        format!(
            "the live data of {} was already being replaced: the restore is owed (`drydock status` lists it) until `drydock restore {} --service {} --force` verifies",
            owed.label, owed.t.backup_id, owed.t.service
        )
    } else {
        format!("the live data of {} was not changed", owed.label)
    }
}

fn announce_finished(label: String, result: &RestoredSource, ctx: &RunContext) {
    let message = match result.status {
        RestoreStatus::Verified => "verified".to_string(),
        RestoreStatus::Mismatch => format!("MISMATCH: {}", result.differences.join("; ")),
        RestoreStatus::Failed => format!("FAILED: {}", result.error.clone().unwrap_or_default()),
    };
    ctx.events().emit(Event::SourceFinished {
        source: label,
        ok: result.status == RestoreStatus::Verified,
        message,
        duration_ms: result.duration_ms,
    });
}

/// A source whose run was cancelled: not verified, and the events say what its live
/// data is left as.
fn finish_cancelled(label: &str, owed: &Owed<'_>, result: &RestoredSource, ctx: &RunContext) {
    ctx.events().emit(Event::SourceFinished {
        source: label.to_string(),
        ok: false,
        message: format!("CANCELLED: {}", owed_note(owed)),
        duration_ms: result.duration_ms,
    });
}
