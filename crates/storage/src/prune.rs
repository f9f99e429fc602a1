//! Removing data no snapshot needs any more (after snapshots were forgotten).
//!
//! Runs rustic's prune with immediate deletion: drydock holds an exclusive lock while
//! it prunes (restic's lock files keep restic and other hosts out), so the two-phase
//! delete rustic defaults to, made for lock-free concurrent writers, buys nothing and
//! would keep the space for another day. The order of rustic's prune keeps an
//! interrupted run safe: repacked data and new index files are written before old
//! index files and packs are deleted; a killed prune leaves only unreferenced packs
//! (removed by the next prune) or duplicate index entries (harmless).

use rustic_core::PruneOptions;

use crate::{error::StorageError, repo::Repository};

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Packed bytes no snapshot needed any more (deleted or repacked away).
    pub bytes_removed: u64,
    /// Pack files deleted whole.
    pub packs_removed: u64,
}

impl Repository {
    /// Deletes the data that no snapshot references. Call with an exclusive lock held.
    pub fn prune_unreferenced(&self) -> Result<PruneOutcome, StorageError> {
        let engine = self.engine()?;
        let opts = PruneOptions::default().instant_delete(true);
        let plan = engine
            .prune_plan(&opts)
            .map_err(|e| self.engine_err("planning a prune of", &e))?;
        let sizes = plan.stats.size_sum();
        let outcome = PruneOutcome {
            bytes_removed: sizes.remove + sizes.repackrm,
            packs_removed: plan.stats.packs.unused,
        };
        engine
            .prune(&opts, plan)
            .map_err(|e| self.engine_err("pruning", &e))?;
        Ok(outcome)
    }
}
