//! Finding damaged repository files, removing them and making the index tell the truth
//! about what is left, then filling what was lost in from another copy. Without this,
//! deduplication trusts an index entry whose data is gone and never uploads it again
//! (Kopia #3492); with it, the next backup uploads the data again from the live
//! source and the next sync brings back what only the other copy still has.
//!
//! restic-format files are named by the SHA-256 of their stored bytes, so a file whose
//! bytes no longer hash to its name is damaged beyond doubt, whoever reported it.
//! Nothing is removed on a check's word alone: each suspect is read and hashed first,
//! and a read that fails (a flaky remote) aborts the repair with nothing removed.

use std::collections::{BTreeSet, HashMap};

use rustic_core::{
    repofile::{IndexFile, IndexId, PackId, SnapshotId},
    FileType, Id, RepairIndexOptions,
};

use crate::{
    copy::{CopyStart, MISSING_FROM_INDEX},
    error::StorageError,
    repo::Repository,
    stored::hashes_to,
};

/// One repository file proven damaged, or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedFile {
    /// `pack`, `index` or `snapshot`.
    pub kind: &'static str,
    /// Full hex id.
    pub id: String,
    pub why: String,
}

/// What [`Repository::find_damage`] found: files to remove and packs the index lists
/// that are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damage {
    /// Files whose bytes no longer hash to their names.
    pub damaged: Vec<DamagedFile>,
    /// Packs the index lists that are not in the repository.
    pub lost_packs: Vec<String>,
    /// Packs there that no index file lists (their index file was lost, or a run was
    /// killed before writing it): their data is invisible until indexed again.
    pub unindexed_packs: Vec<String>,
}

impl Damage {
    /// Nothing to repair.
    pub fn is_empty(&self) -> bool {
        !self.loses_data() && self.unindexed_packs.is_empty()
    }

    /// Data is gone with it: what is removed or lost must come back from elsewhere.
    pub fn loses_data(&self) -> bool {
        !self.damaged.is_empty() || !self.lost_packs.is_empty()
    }
}

fn file_type(kind: &str) -> FileType {
    match kind {
        "index" => FileType::Index,
        "snapshot" => FileType::Snapshot,
        _ => FileType::Pack,
    }
}

impl Repository {
    /// Looks for damage without reading pack contents, except the `suspect_packs` (full
    /// hex ids a read check named earlier): every index and snapshot file is read and
    /// hashed, and the packs the index lists are compared with the packs there are (a
    /// pack gone is lost, one of another size is read and hashed).
    ///
    /// Packs no index file lists are normal while another host's backup is uploading,
    /// so they count only with `index_suspect` (a check found data the index does not
    /// know, e.g. an index file was lost) or when the repair runs anyway.
    pub fn find_damage(
        &self,
        suspect_packs: &[String],
        index_suspect: bool,
    ) -> Result<Damage, StorageError> {
        let be = self.backends().repository();
        let err = |doing: &str| {
            let location = self.location.clone();
            let doing = doing.to_string();
            move |e: Box<rustic_core::RusticError>| {
                StorageError::engine(format!("{doing} repository at {location}"), &e)
            }
        };
        let mut damage = Damage::default();
        let mut index_ids = Vec::new();
        for (tpe, kind) in [(FileType::Index, "index"), (FileType::Snapshot, "snapshot")] {
            for id in be.list(tpe).map_err(err("listing files of"))? {
                // Gone since the listing: nothing to judge.
                let Some(bytes) = self.stored_bytes(tpe, &id)? else {
                    continue;
                };
                if hashes_to(&bytes, &id) {
                    if tpe == FileType::Index {
                        index_ids.push(id);
                    }
                } else {
                    damage.damaged.push(DamagedFile {
                        kind,
                        id: id.to_hex().as_str().to_string(),
                        why: format!("its {} bytes no longer hash to its name", bytes.len()),
                    });
                }
            }
        }
        let engine = self.engine()?;
        let mut indexed: HashMap<PackId, u32> = HashMap::new();
        for id in index_ids {
            let file: IndexFile = engine
                .get_file(&IndexId::from(id))
                .map_err(|e| self.engine_err("reading an index file of", &e))?;
            for pack in file.packs {
                let size = pack.pack_size();
                indexed.insert(pack.id, size);
            }
        }
        let present: HashMap<PackId, u32> = be
            .list_with_size(FileType::Pack)
            .map_err(err("listing packs of"))?
            .into_iter()
            .map(|(id, size)| (PackId::from(id), size))
            .collect();
        let mut to_hash: BTreeSet<PackId> = BTreeSet::new();
        for (pack, size) in &indexed {
            match present.get(pack) {
                None => damage.lost_packs.push(pack.to_hex().as_str().to_string()),
                Some(actual) if actual != size => {
                    to_hash.insert(*pack);
                }
                Some(_) => {}
            }
        }
        // A suspect is a full id or the short one a check message gave; one that names no
        // pack here is gone already (lost, when the index lists it) or was no pack.
        for prefix in suspect_packs.iter().map(|p| p.to_ascii_lowercase()) {
            if prefix.len() < 8 {
                continue;
            }
            for pack in present.keys() {
                if pack.to_hex().starts_with(&prefix) {
                    to_hash.insert(*pack);
                }
            }
        }
        if index_suspect {
            damage.unindexed_packs = present
                .keys()
                .filter(|p| !indexed.contains_key(*p))
                .map(|p| p.to_hex().as_str().to_string())
                .collect();
            damage.unindexed_packs.sort();
            // Indexing reads a pack's header; a pack that is not what it claims to be
            // must go instead (read once: afterwards it is indexed or gone).
            to_hash.extend(
                present
                    .keys()
                    .filter(|p| !indexed.contains_key(*p))
                    .copied(),
            );
        }
        for pack in to_hash {
            let id = *pack;
            let Some(bytes) = self.stored_bytes(FileType::Pack, &id)? else {
                // Gone since the listing: lost only if the index still counts on it.
                if indexed.contains_key(&pack) {
                    damage.lost_packs.push(pack.to_hex().as_str().to_string());
                }
                continue;
            };
            let hex = pack.to_hex().as_str().to_string();
            if !hashes_to(&bytes, &id) {
                damage.unindexed_packs.retain(|p| *p != hex);
                damage.damaged.push(DamagedFile {
                    kind: "pack",
                    id: hex,
                    why: match indexed.get(&pack) {
                        Some(size) if usize::try_from(*size).ok() != Some(bytes.len()) => format!(
                            "it holds {} bytes where the index says {size}, and they no longer hash to its name",
                            bytes.len()
                        ),
                        _ => format!("its {} bytes no longer hash to its name", bytes.len()),
                    },
                });
            }
        }
        damage.lost_packs.sort();
        Ok(damage)
    }

    /// Removes the damaged files and rebuilds the index over the packs that are left
    /// (dropping lost packs, indexing packs no index file lists). The caller
    /// holds an exclusive lock. Blobs that were only in removed packs are then unknown
    /// to the index: the next backup uploads them again, [`Repository::refill_to`]
    /// brings them from another copy.
    pub fn repair(&self, damage: &Damage) -> Result<(), StorageError> {
        if damage.is_empty() {
            return Ok(());
        }
        let be = self.backends().repository();
        for file in &damage.damaged {
            let id = file
                .id
                .parse::<Id>()
                .map_err(|e| StorageError::engine("naming a damaged file", &e))?;
            log::warn!(
                "removing damaged {} {} from {}: {}",
                file.kind,
                file.id,
                self.location,
                file.why
            );
            be.remove(file_type(file.kind), &id, false)
                .map_err(|e| self.engine_err("removing a damaged file from", &e))?;
        }
        self.engine()?
            .repair_index(&RepairIndexOptions::default(), false)
            .map_err(|e| self.engine_err("rebuilding the index of", &e))
    }

    /// Of the given snapshots (ids or unique prefixes), those whose trees or data the
    /// index does not fully know.
    pub fn incomplete(&self, snapshot_ids: &[String]) -> Result<Vec<String>, StorageError> {
        Ok(self
            .packs_of(snapshot_ids)?
            .into_iter()
            .filter(|(_, packs)| packs.contains(MISSING_FROM_INDEX))
            .map(|(id, _)| id)
            .collect())
    }

    /// Copies the snapshots (ids in this repository) into `dest` including every blob
    /// `dest` lacks, also for snapshots `dest` holds already; there the new snapshot
    /// file, a twin of the one that was there, is removed again, so the copy keeps its
    /// snapshot ids. Returns how many snapshots were new to `dest`.
    pub fn refill_to(
        &self,
        dest: &Repository,
        snapshot_ids: &[String],
    ) -> Result<usize, StorageError> {
        if snapshot_ids.is_empty() {
            return Ok(0);
        }
        let CopyStart {
            source,
            wanted,
            target,
            present: before,
        } = self.start_copy(dest, snapshot_ids)?;
        let before_ids: BTreeSet<SnapshotId> = before.iter().map(|s| s.id).collect();
        source
            .copy(&target, wanted.iter())
            .map_err(|e| dest.engine_err("copying data into", &e))?;
        let after = dest
            .engine()?
            .get_all_snapshots()
            .map_err(|e| dest.engine_err("listing snapshots of", &e))?;
        let twins: Vec<SnapshotId> = after
            .iter()
            .filter(|s| !before_ids.contains(&s.id))
            .filter(|s| before.iter().any(|b| b.tree == s.tree && b.time == s.time))
            .map(|s| s.id)
            .collect();
        let new = wanted.len().saturating_sub(twins.len());
        if !twins.is_empty() {
            dest.engine()?
                .delete_snapshots(&twins)
                .map_err(|e| dest.engine_err("removing duplicate snapshots from", &e))?;
        }
        Ok(new)
    }
}

impl Repository {
    /// Fills in from `from` every snapshot of this repository whose trees or data the
    /// index does not fully know and that `from` holds too (same tree and time): the
    /// blobs it lacks are copied, its snapshot ids stay. Returns the ids filled in; the
    /// incomplete snapshots `from` cannot help with stay as they are.
    pub fn fill_in_from(&self, from: &Repository) -> Result<Vec<String>, StorageError> {
        let (mine, _) = self.snapshot_files_lenient()?;
        let ids: Vec<String> = mine
            .iter()
            .map(|s| s.id.to_hex().as_str().to_string())
            .collect();
        let incomplete: BTreeSet<String> = self.incomplete(&ids)?.into_iter().collect();
        if incomplete.is_empty() {
            return Ok(Vec::new());
        }
        let (theirs, _) = from.snapshot_files_lenient()?;
        let mut filled = Vec::new();
        let mut wanted = Vec::new();
        for snap in mine
            .iter()
            .filter(|s| incomplete.contains(s.id.to_hex().as_str()))
        {
            if let Some(twin) = theirs
                .iter()
                .find(|t| t.tree == snap.tree && t.time == snap.time)
            {
                wanted.push(twin.id.to_hex().as_str().to_string());
                filled.push(snap.id.to_hex().as_str().to_string());
            }
        }
        from.refill_to(self, &wanted)?;
        Ok(filled)
    }
}

impl Repository {
    /// Reads and hashes every pack none of `snapshot_ids` uses (rustic's read check only
    /// reads the packs snapshots use; restic's reads them all) and returns those whose
    /// bytes no longer hash to their names: no backup loses data, but the storage is
    /// damaging what it holds.
    pub fn damaged_unused_packs(
        &self,
        snapshot_ids: &[String],
    ) -> Result<Vec<DamagedFile>, StorageError> {
        let used: BTreeSet<String> = self
            .packs_of(snapshot_ids)?
            .into_values()
            .flatten()
            .collect();
        let listed = self
            .backends()
            .repository()
            .list(FileType::Pack)
            .map_err(|e| self.engine_err("listing packs of", &e))?;
        let mut damaged = Vec::new();
        for id in listed {
            let hex = id.to_hex().as_str().to_string();
            if used.contains(&hex) {
                continue;
            }
            let Some(bytes) = self.stored_bytes(FileType::Pack, &id)? else {
                continue;
            };
            if !hashes_to(&bytes, &id) {
                damaged.push(DamagedFile {
                    kind: "pack",
                    id: hex,
                    why: format!("its {} bytes no longer hash to its name", bytes.len()),
                });
            }
        }
        Ok(damaged)
    }
}
