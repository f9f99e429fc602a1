//! The copies a restore may read (local first, then each remote, or only `--from`),
//! opened on first use, and how a source's backup record is found in them: the newest
//! good one (`latest`, never one that failed its own drill) or the one a backup id names.

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::{Event, EventSink, Manifest, SourceRecord};
use drydock_storage::ReadData;

use super::report::BackupRef;
use crate::copies::{self, Catalog};
use crate::EngineError;

/// A copy opened for this restore: its repository, catalog, and a shared lock.
pub(super) struct Opened {
    pub(super) repo: drydock_storage::Repository,
    catalog: Catalog,
    _lock: drydock_storage::RepoLock,
}

/// The copies a restore may read, in the order it tries them, opened on first use.
pub(super) struct CopySet<'c> {
    config: &'c Config,
    pub(super) names: Vec<String>,
    slots: Vec<Option<Result<Opened, String>>>,
    pub(super) warnings: Vec<String>,
}

impl<'c> CopySet<'c> {
    pub(super) fn new(config: &'c Config, from: Option<&str>) -> Result<Self, EngineError> {
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
    pub(super) fn get(&mut self, i: usize, events: &dyn EventSink) -> Result<&Opened, String> {
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
    pub(super) fn none_usable(&self) -> bool {
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
    pub(super) fn choose(
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
