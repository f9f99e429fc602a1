//! Repairing a copy before drydock writes to it, so lost data is uploaded again instead
//! of trusted (Kopia #3492). A backup repairs the local copy before reading its sources;
//! a sync repairs each remote before copying to it. The repair removes the files proven
//! damaged and rebuilds the index over what is left (`drydock_storage::repair`); then
//! deduplication no longer finds the lost blobs, so the backup uploads them again from
//! the live data, and the sync fills in, from the other copy, whatever of the older
//! backups only that copy still has ([`refill`]).
//!
//! Pending work survives a crash in the state database: packs a read check named
//! (`pack` suspects, which nothing cheaper finds again), copies a check found data
//! missing from the index of (`index`: their unindexed packs are indexed again) and
//! copies that lost data and still wait for their refill (`refill`).

use drydock_domain::{Event, EventSink};
use drydock_state::{CopyState, StateDb};
use drydock_storage::{LockMode, Repository, LOCK_WAIT};

use crate::copies::Catalog;

/// The state-database kind of a pack a read check found damaged.
pub(crate) const SUSPECT_PACK: &str = "pack";
/// The state-database kind marking a copy a check found data missing from the index of
/// (a lost index file): its unindexed packs are indexed again.
pub(crate) const SUSPECT_INDEX: &str = "index";
/// The state-database kind marking a copy whose lost data is still to be filled in.
const REFILL: &str = "refill";
const WHOLE_COPY: &str = "*";

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// Finds and repairs damage in copy `name`; the lines say what was removed and why,
/// also emitted as warnings. Takes an exclusive lock only when there is something to
/// repair, so call it before taking the operation's own lock.
pub(crate) fn repair_copy(
    name: &str,
    repository: &Repository,
    state: &StateDb,
    events: &dyn EventSink,
) -> Result<Vec<String>, String> {
    let suspects = state.suspects(name, SUSPECT_PACK).unwrap_or_default();
    let index_marks = state.suspects(name, SUSPECT_INDEX).unwrap_or_default();
    let index_suspect = !index_marks.is_empty();
    let found = repository
        .find_damage(&suspects, index_suspect)
        .map_err(|e| format!("looking for damage in copy `{name}`: {e}"))?;
    if found.is_empty() {
        let _ = state.clear_suspects(name, SUSPECT_PACK, &suspects);
        let _ = state.clear_suspects(name, SUSPECT_INDEX, &index_marks);
        return Ok(Vec::new());
    }
    let lock = repository
        .lock_with("repair", LockMode::Exclusive, LOCK_WAIT)
        .map_err(|e| format!("locking copy `{name}` to repair it: {e}"))?;
    // Again under the lock: what looked lost may have been a prune at work.
    let damage = repository
        .find_damage(&suspects, index_suspect || found.loses_data())
        .map_err(|e| format!("looking for damage in copy `{name}`: {e}"))?;
    let mut lines: Vec<String> = lock
        .removed_stale()
        .iter()
        .map(|l| format!("copy `{name}`: {l}"))
        .collect();
    if damage.loses_data() {
        // Marked first: a repair killed halfway still gets its refill.
        let _ = state.record_suspect(name, REFILL, WHOLE_COPY, "data removed by a repair");
    }
    if !damage.is_empty() {
        repository
            .repair(&damage)
            .map_err(|e| format!("repairing copy `{name}`: {e}"))?;
        for file in &damage.damaged {
            lines.push(format!(
                "copy `{name}`: removed damaged {} {} ({}); the data only it held is uploaded again from the live data or another copy",
                file.kind,
                short(&file.id),
                file.why
            ));
        }
        for pack in &damage.lost_packs {
            lines.push(format!(
                "copy `{name}`: pack {} is gone; the index no longer lists it, and the data only it held is uploaded again from the live data or another copy",
                short(pack)
            ));
        }
        if !damage.unindexed_packs.is_empty() {
            lines.push(format!(
                "copy `{name}`: indexed {} pack(s) no index file listed (an index file was lost, or a run was killed before writing it)",
                damage.unindexed_packs.len()
            ));
        }
    }
    let _ = state.clear_suspects(name, SUSPECT_PACK, &suspects);
    let _ = state.clear_suspects(name, SUSPECT_INDEX, &index_marks);
    drop(lock);
    for line in &lines {
        events.emit(Event::Warning {
            message: line.clone(),
        });
    }
    Ok(lines)
}

/// Whether copy `name` lost data in a repair and waits for [`refill`].
fn needs_refill(state: &StateDb, name: &str) -> bool {
    state
        .suspects(name, REFILL)
        .is_ok_and(|pending| !pending.is_empty())
}

/// Copies into `to` (copy `to_name`) from `from` what `to` lost: after a repair of `to`
/// removed data (its pending mark), every snapshot of `to` the index no longer fully
/// knows (a walk of all its trees); always, the data snapshots of backups `to` lists
/// whose snapshot is gone there, and with `vanished_too` whole backups `to` held (per
/// the state) whose manifest is gone. Returns the snapshots and backups filled in;
/// clears the pending mark once done.
pub(crate) fn refill(
    from: (&Repository, &Catalog),
    to: (&Repository, &Catalog),
    to_name: &str,
    state: &StateDb,
    vanished_too: bool,
    events: &dyn EventSink,
) -> Result<Vec<String>, String> {
    let (from_repo, from_catalog) = from;
    let (to_repo, to_catalog) = to;
    let mut filled = Vec::new();
    if needs_refill(state, to_name) {
        events.emit(Event::Step {
            message: format!(
                "filling in copy `{to_name}` from {} where a repair removed data",
                from_repo.location()
            ),
        });
        let snaps = to_repo
            .fill_in_from(from_repo)
            .map_err(|e| format!("filling in copy `{to_name}`: {e}"))?;
        filled.extend(snaps.iter().map(|s| format!("snapshot {}", short(s))));
    }
    let records = state.copy_records(to_name).unwrap_or_default();
    let mut wanted = Vec::new();
    for m in from_catalog
        .manifests
        .iter()
        .filter(|m| m.manifest.has_restorable())
    {
        let id = m.manifest.id.as_str();
        let held_before = records
            .get(id)
            .is_some_and(|r| matches!(r.state, CopyState::Verified | CopyState::Corrupt));
        let lacking = match to_catalog.manifest(id) {
            Some(_) => !to_catalog.missing_sources(&m.manifest).is_empty(),
            None => vanished_too && held_before,
        };
        if !lacking {
            continue;
        }
        wanted.push(m.snapshot_id.clone());
        for r in m.manifest.sources.iter().filter(|r| r.is_restorable()) {
            if let Some(snap) = from_catalog.snapshot_of(id, &r.service, &r.source) {
                wanted.push(snap.to_string());
            }
        }
        filled.push(format!("backup {id}"));
    }
    if !wanted.is_empty() {
        from_repo
            .refill_to(to_repo, &wanted)
            .map_err(|e| format!("filling in copy `{to_name}`: {e}"))?;
    }
    let _ = state.clear_suspects(to_name, REFILL, &[WHOLE_COPY.to_string()]);
    Ok(filled)
}
