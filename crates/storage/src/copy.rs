//! Copying snapshots from one repository into another (the local repository into a
//! remote copy), checking what arrived, and naming which snapshots depend on which
//! pack files.
//!
//! Copies are independent repositories, as with `restic copy`: blobs are re-packed and
//! re-encrypted with the destination's key, and snapshots get new ids there. The order
//! of writes makes a copy safe to interrupt: pack files, then the index that describes
//! them, then the snapshot files. A snapshot file in the destination therefore implies
//! its data is there; an interrupted copy leaves only unreferenced packs, removed by
//! the next prune of that copy.

use std::collections::{BTreeMap, BTreeSet};

use rustic_core::{
    repofile::{SnapshotFile, Tree},
    CheckOptions, DataId, FileType, Id, IndexedFullStatus, IndexedIdsStatus, ReadSubsetOption,
    TreeId,
};

use crate::{
    error::StorageError,
    repo::{one_line_finding, panic_message, Repository},
    stored::hashes_to,
    types::CheckReport,
};

/// How much pack data a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadData {
    /// Structure only: index, pack list and sizes, trees.
    #[default]
    None,
    /// Every pack.
    All,
    /// A random subset of the packs, about this percentage of the data (0 < p <= 100).
    Percent(f64),
}

/// One snapshot and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedSnapshot {
    pub source_id: String,
    pub dest_id: String,
    /// It was already in the destination (same tree and time); nothing was copied.
    pub already_there: bool,
}

/// Both ends of a copy, opened: the source indexed, the snapshots wanted from it, the
/// destination's index ids and the snapshots it holds already.
pub(crate) struct CopyStart {
    pub source: rustic_core::Repository<IndexedFullStatus>,
    pub wanted: Vec<SnapshotFile>,
    pub target: rustic_core::Repository<IndexedIdsStatus>,
    pub present: Vec<SnapshotFile>,
}

impl Repository {
    /// Opens both ends of a copy of `snapshot_ids` (ids or unique prefixes here) into
    /// `dest`.
    pub(crate) fn start_copy(
        &self,
        dest: &Repository,
        snapshot_ids: &[String],
    ) -> Result<CopyStart, StorageError> {
        let source = self
            .engine()?
            .to_indexed()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        let wanted: Vec<SnapshotFile> = snapshot_ids
            .iter()
            .map(|id| self.load_snapshot(&source, id))
            .collect::<Result<_, _>>()?;
        let target = dest
            .engine()?
            .to_indexed_ids()
            .map_err(|e| dest.engine_err("reading the index of", &e))?;
        let present = target
            .get_all_snapshots()
            .map_err(|e| dest.engine_err("listing snapshots of", &e))?;
        Ok(CopyStart {
            source,
            wanted,
            target,
            present,
        })
    }

    /// Copies the snapshots (ids or unique prefixes in this repository) into `dest`,
    /// skipping those already there, and returns where each one is in `dest`.
    pub fn copy_to(
        &self,
        dest: &Repository,
        snapshot_ids: &[String],
    ) -> Result<Vec<CopiedSnapshot>, StorageError> {
        if snapshot_ids.is_empty() {
            return Ok(Vec::new());
        }
        let CopyStart {
            source,
            wanted,
            target,
            present,
        } = self.start_copy(dest, snapshot_ids)?;
        let missing: Vec<&SnapshotFile> = wanted
            .iter()
            .filter(|s| find_same(&present, s).is_none())
            .collect();
        if !missing.is_empty() {
            source
                .copy(&target, missing.iter().copied())
                .map_err(|e| dest.engine_err("copying snapshots into", &e))?;
        }
        let after = dest
            .engine()?
            .get_all_snapshots()
            .map_err(|e| dest.engine_err("listing snapshots of", &e))?;
        wanted
            .iter()
            .map(|s| {
                let already_there = find_same(&present, s).is_some();
                let copied = find_same(&after, s).ok_or_else(|| {
                    StorageError::Engine(format!(
                        "copying snapshot {} into {}: it is not there after the copy; run the sync again",
                        s.id, dest.location
                    ))
                })?;
                Ok(CopiedSnapshot {
                    source_id: s.id.to_hex().as_str().to_string(),
                    dest_id: copied.id.to_hex().as_str().to_string(),
                    already_there,
                })
            })
            .collect()
    }

    /// Checks the repository like [`Repository::check`], but walks only the trees of
    /// the given snapshots (index, pack list and sizes are checked whole). A finding
    /// about a pack none of these snapshots uses is theirs only as a warning: one
    /// damaged pack must not make every other backup in the copy unrestorable.
    pub fn check_snapshots(
        &self,
        snapshot_ids: &[String],
        read_data: ReadData,
    ) -> Result<CheckReport, StorageError> {
        let engine = self.engine()?;
        let trees = snapshot_ids
            .iter()
            .map(|id| self.load_snapshot(&engine, id).map(|s| s.tree))
            .collect::<Result<Vec<TreeId>, _>>()?;
        let mut report = self.run_check(read_data, Some(trees));
        if report.ok {
            return Ok(report);
        }
        let Ok(packs) = self.packs_of(snapshot_ids) else {
            return Ok(report);
        };
        let mine: BTreeSet<&String> = packs.values().flatten().collect();
        if mine.iter().any(|p| p.as_str() == MISSING_FROM_INDEX) {
            return Ok(report);
        }
        let (theirs, other): (Vec<String>, Vec<String>) =
            report.errors.drain(..).partition(|error| {
                let about_a_pack = error.to_ascii_lowercase().contains("pack");
                let ids = hex_ids(error);
                let names_mine = ids
                    .iter()
                    .any(|t| mine.iter().any(|p| p.starts_with(t.as_str())));
                !about_a_pack || ids.is_empty() || names_mine
            });
        report.errors = theirs;
        report.warnings.extend(
            other
                .into_iter()
                .map(|e| format!("in a pack these snapshots do not use: {e}")),
        );
        report.ok = report.errors.is_empty();
        Ok(report)
    }

    /// Checks the repository structure, and with `read_data` every pack.
    pub fn check(&self, read_data: bool) -> Result<CheckReport, StorageError> {
        self.check_with(if read_data {
            ReadData::All
        } else {
            ReadData::None
        })
    }

    /// Checks the repository structure, and with `read_data` the packs.
    pub fn check_with(&self, read_data: ReadData) -> Result<CheckReport, StorageError> {
        Ok(self.run_check(read_data, None))
    }

    fn run_check(&self, read_data: ReadData, trees: Option<Vec<TreeId>>) -> CheckReport {
        let mut opts = CheckOptions::default();
        match read_data {
            ReadData::None => {}
            ReadData::All => opts = opts.read_data(true),
            ReadData::Percent(p) => {
                opts = opts
                    .read_data(true)
                    .read_data_subset(ReadSubsetOption::Percentage(p.clamp(0.0, 100.0)));
            }
        }
        let mut report = CheckReport {
            ok: true,
            errors: Vec::new(),
            warnings: Vec::new(),
            read_data: read_data != ReadData::None,
            aborted: false,
        };
        let engine = match self.engine() {
            Ok(e) => e,
            Err(e) => {
                report.ok = false;
                report.errors.push(e.to_string());
                return report;
            }
        };
        // rustic unwraps in a few places of its check (e.g. decompressing a blob); a
        // damaged repository must yield a report, not a crash. One panic is a race of
        // rustic's own, not damage: its check waits only 100 ms for its worker threads
        // to let go of the index ("index still in use"), which a loaded machine misses.
        // That one is retried; a check that still cannot finish is reported as aborted.
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let trees = trees.clone();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match trees {
                Some(trees) => engine.check_with_trees(opts, trees),
                None => engine.check(opts),
            }));
            match outcome {
                Err(panic) if attempt < 3 && is_index_race(&panic_message(panic.as_ref())) => {
                    log::warn!("the repository check hit rustic's index race; running it again");
                }
                other => break other,
            }
        };
        match outcome {
            Ok(Ok(results)) => {
                for (level, finding) in results.0 {
                    let message = one_line_finding(&finding);
                    // `CheckErrorLevel` is not exported by rustic_core 0.13; its Debug
                    // form is the only way to tell the levels apart.
                    if format!("{level:?}") == "Warn" {
                        report.warnings.push(message);
                    } else {
                        report.errors.push(message);
                    }
                }
            }
            // A check that cannot even run (e.g. an unreadable index file) is a failed
            // check, reported like any other finding.
            Ok(Err(e)) => report.errors.push(one_line_finding(&*e)),
            Err(panic) => {
                report.aborted = true;
                report.errors.push(format!(
                    "the check aborted: {}; nothing was proved either way, run it again",
                    short_panic(&panic_message(panic.as_ref()))
                ));
            }
        }
        if read_data == ReadData::All && !report.aborted {
            report
                .errors
                .extend(self.unproved_root_tree_packs(trees.as_deref()));
        }
        report.ok = report.errors.is_empty();
        report
    }

    /// Reads and hashes the packs holding the snapshots' root trees (all snapshots'
    /// with `None`), which rustic 0.13's `check --read-data` never reads: it reads
    /// the packs of the blobs and subtrees the trees name, and a root tree is named
    /// by a snapshot, not a tree. Its bytes are still decrypted when the tree is
    /// walked, but damage to the rest of such a pack (its header, the other roots in
    /// it) would pass unseen. One finding per pack that is there and does not hash to
    /// its name; a pack that is gone is already the check's finding.
    fn unproved_root_tree_packs(&self, trees: Option<&[TreeId]>) -> Vec<String> {
        let fail = |e: StorageError| vec![format!("reading the packs of the root trees: {e}")];
        let engine = match self.engine().and_then(|e| {
            e.to_indexed()
                .map_err(|e| self.engine_err("reading the index of", &e))
        }) {
            Ok(engine) => engine,
            Err(e) => return fail(e),
        };
        let roots = match trees {
            Some(trees) => trees.to_vec(),
            None => match engine.get_all_snapshots() {
                Ok(snaps) => snaps.into_iter().map(|s| s.tree).collect(),
                Err(e) => return fail(self.engine_err("listing the snapshots of", &e)),
            },
        };
        // A root tree the index does not know is the check's own finding.
        let packs: BTreeSet<Id> = roots
            .iter()
            .filter_map(|tree| engine.get_index_entry(tree).ok())
            .map(|entry| *entry.pack)
            .collect();
        let mut findings = Vec::new();
        for pack in packs {
            match self.stored_bytes(FileType::Pack, &pack) {
                Ok(Some(bytes)) if !hashes_to(&bytes, &pack) => findings.push(format!(
                    "pack {}: hash mismatch, it holds a snapshot's root tree and its content does not hash to its name",
                    pack.to_hex().as_str()
                )),
                Ok(_) => {}
                Err(e) => findings.extend(fail(e)),
            }
        }
        findings
    }

    /// For each given snapshot, the pack files (full hex ids) its data and trees are
    /// stored in. Blobs missing from the index are reported under the pseudo pack
    /// `missing-from-index`.
    pub fn packs_of(
        &self,
        snapshot_ids: &[String],
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StorageError> {
        let engine = self
            .engine()?
            .to_indexed()
            .map_err(|e| self.engine_err("reading the index of", &e))?;
        let mut out = BTreeMap::new();
        for id in snapshot_ids {
            let snap = self.load_snapshot(&engine, id)?;
            let mut packs = BTreeSet::new();
            let mut trees = vec![snap.tree];
            let mut seen_trees = BTreeSet::new();
            let mut data = BTreeSet::<DataId>::new();
            while let Some(tree_id) = trees.pop() {
                if !seen_trees.insert(tree_id) {
                    continue;
                }
                match engine.get_index_entry(&tree_id) {
                    Ok(entry) => {
                        packs.insert(entry.pack.to_hex().as_str().to_string());
                    }
                    Err(_) => {
                        packs.insert(MISSING_FROM_INDEX.to_string());
                        continue;
                    }
                }
                // A tree that cannot be read is a damaged pack: its pack is already
                // listed, and what it refers to cannot be known.
                let Ok(tree): Result<Tree, _> = engine.get_tree(&tree_id) else {
                    continue;
                };
                for node in tree.nodes {
                    if let Some(sub) = node.subtree {
                        trees.push(sub);
                    }
                    data.extend(node.content.into_iter().flatten());
                }
            }
            for blob in data {
                match engine.get_index_entry(&blob) {
                    Ok(entry) => packs.insert(entry.pack.to_hex().as_str().to_string()),
                    Err(_) => packs.insert(MISSING_FROM_INDEX.to_string()),
                };
            }
            out.insert(snap.id.to_hex().as_str().to_string(), packs);
        }
        Ok(out)
    }
}

/// Runs of at least 8 hex digits in a message: the (short or full) ids rustic names.
fn hex_ids(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|t| t.len() >= 8)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The name [`Repository::packs_of`] uses for blobs the index does not know.
pub const MISSING_FROM_INDEX: &str = "missing-from-index";

/// The snapshot in `list` that is `wanted` copied: same tree, same time.
fn find_same<'a>(list: &'a [SnapshotFile], wanted: &SnapshotFile) -> Option<&'a SnapshotFile> {
    list.iter()
        .find(|s| s.tree == wanted.tree && s.time == wanted.time)
}

/// rustic_core 0.13's check panics with "index still in use" when its worker threads
/// have not dropped the index within 100 ms of finishing.
fn is_index_race(message: &str) -> bool {
    message.contains("index still in use")
}

/// A panic message fit for a report: its first line, without the Debug dumps rustic
/// appends (the whole in-memory index, full of pack ids that would read as findings).
fn short_panic(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    let cut = first
        .find(": Index(")
        .or_else(|| first.find('{'))
        .unwrap_or(first.len());
    let mut short: String = first[..cut].chars().take(200).collect();
    if short.is_empty() {
        short = "unknown panic".into();
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_race_panic_reads_short_and_names_no_pack() {
        let message = "index still in use: Index({Tree: TypeIndex { packs: [PackId(1c61a64fdd269cb36b20724071f9636b3856674611c409545c972e270bf12d57)] }})";
        assert!(is_index_race(message));
        assert_eq!(short_panic(message), "index still in use");
        assert!(!is_index_race(
            "called `Option::unwrap()` on a `None` value"
        ));
        assert_eq!(short_panic(""), "unknown panic");
    }
}
