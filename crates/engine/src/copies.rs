//! The copies of the repository: the local one, written first, and each `[[remote]]`
//! in an S3-compatible bucket. Opening them from the config, and reading what one
//! holds ([`Catalog`]: its manifests and where each source's data is in it).
//!
//! Each copy is a complete restic repository of its own, so snapshot ids differ
//! between copies; a source's data is found in a copy by its tags (`backup:ID`,
//! `service:S`, `source:N`), which every copy carries, never by the id the manifest
//! recorded locally.
//!
//! **One repository, several stacks.** A copy may hold the backups of several stacks
//! (hosts sharing a bucket). The catalog is where that is decided, once for every
//! command: [`Catalog::load`] keeps only the given stack's manifests and data snapshots
//! (by the manifest's `stack` and the `stack:NAME` tag), so listing, `latest`, restore,
//! verify, sync and prune never see, and so never forget, another stack's backups. Only
//! [`Catalog::snapshot_ids`] lists every snapshot, because another stack's snapshots keep
//! their packs in use just as ours do (and rustic's prune counts all of them).

use std::collections::{BTreeMap, BTreeSet};

use drydock_domain::config::{Config, RemoteConfig, LOCAL_COPY};
use drydock_domain::manifest::MANIFEST_MAX_BYTES;
use drydock_domain::{Event, EventSink, Manifest};
use drydock_storage::{Repository, S3Options, S3Tuning, StorageError};
use jiff::Timestamp;

use crate::repo::{self, MANIFEST_TAG};
use crate::EngineError;

/// What drydock knows of one backup in one copy (`list` and `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InCopy {
    /// Read back (or verified) there.
    Verified,
    /// There, not verified yet.
    Present,
    /// Not there yet: a sync is owed.
    Unsynced,
    /// Not there (or some of its data is not).
    Missing,
    /// Damaged or its checksum differs.
    Corrupt,
    /// Removed there by retention.
    Pruned,
    /// No record, or the copy cannot be read now.
    Unknown,
}

/// The copy named `name` in the config, or an error listing the names there are.
pub fn find_remote<'c>(config: &'c Config, name: &str) -> Result<&'c RemoteConfig, EngineError> {
    config
        .remotes
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            let mut names = vec![LOCAL_COPY.to_string()];
            names.extend(config.remotes.iter().map(|r| r.name.clone()));
            EngineError::UnknownCopy(format!(
            "no copy named `{name}`; the copies are: {} (remotes are declared as [[remote]] in {})",
            names.join(", "),
            config.file.display()
        ))
        })
}

/// Checks a `--copy`/`--from` name: `local` or a configured remote.
pub fn check_copy_name(config: &Config, name: &str) -> Result<(), EngineError> {
    if name == LOCAL_COPY {
        Ok(())
    } else {
        find_remote(config, name).map(|_| ())
    }
}

/// The copies an operation covers, in the order it takes them: the one named by
/// `only` (checked), or the local copy and then every remote in config order.
pub fn selected(config: &Config, only: Option<&str>) -> Result<Vec<String>, EngineError> {
    match only {
        Some(name) => {
            check_copy_name(config, name)?;
            Ok(vec![name.to_string()])
        }
        None => Ok(std::iter::once(LOCAL_COPY.to_string())
            .chain(config.remotes.iter().map(|r| r.name.clone()))
            .collect()),
    }
}

/// Where a copy is, safe to print, without opening it.
pub fn location_of(config: &Config, name: &str) -> String {
    match find_remote(config, name) {
        Ok(remote) if name != LOCAL_COPY => remote_options(remote).location(),
        _ => config.repository.path.display().to_string(),
    }
}

/// Opens an existing copy by name; never creates one.
pub fn open_existing(config: &Config, name: &str) -> Result<Repository, EngineError> {
    if name == LOCAL_COPY {
        repo::open_repository(config, false)
    } else {
        open_remote(config, find_remote(config, name)?, None)
    }
}

pub fn remote_options(remote: &RemoteConfig) -> S3Options {
    S3Options {
        endpoint: remote.endpoint.clone(),
        region: remote.region.clone(),
        bucket: remote.bucket.clone(),
        prefix: remote.prefix.clone(),
        path_style: remote.path_style,
        access_key_id: remote.access_key_id.expose().to_string(),
        secret_access_key: remote.secret_access_key.expose().to_string(),
        tuning: S3Tuning::default(),
    }
}

fn remote_password<'c>(config: &'c Config, remote: &'c RemoteConfig) -> &'c str {
    remote
        .password
        .as_ref()
        .unwrap_or(&config.repository.password)
        .expose()
}

/// Opens a remote copy; with `like`, creates it (with `like`'s chunker parameters)
/// when the bucket holds none under the prefix.
pub fn open_remote(
    config: &Config,
    remote: &RemoteConfig,
    like: Option<&Repository>,
) -> Result<Repository, EngineError> {
    let opts = remote_options(remote);
    let password = remote_password(config, remote);
    let result = match like {
        Some(local) => Repository::open_or_init_s3(&opts, password, local),
        None => Repository::open_s3(&opts, password),
    };
    result.map_err(|cause| EngineError::Copy {
        copy: remote.name.clone(),
        cause,
    })
}

/// Wraps a storage failure of `repo` for the engine.
pub fn storage_err(repo: &Repository) -> impl Fn(StorageError) -> EngineError + '_ {
    move |cause| EngineError::Storage {
        location: repo.location().to_string(),
        cause,
    }
}

/// A manifest as one copy stores it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub manifest: Manifest,
    /// The snapshot holding the manifest in this copy.
    pub snapshot_id: String,
    pub saved_at: Timestamp,
}

/// What one copy holds.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// One per backup (its newest revision), oldest backup first.
    pub manifests: Vec<StoredManifest>,
    /// Manifest snapshots replaced by a newer revision (an interrupted prune leaves
    /// them); the next prune removes them.
    pub superseded: Vec<String>,
    /// (backup id, service, source) -> data snapshot id in this copy.
    data: BTreeMap<(String, String, String), String>,
    /// Data snapshots in this copy that no manifest names (an interrupted sync or
    /// prune leaves them); the next prune removes them.
    pub orphans: Vec<String>,
    /// Snapshot files that could not be read (damaged): full id and why.
    pub unreadable: Vec<(String, String)>,
    /// Every snapshot read, drydock's or not, of every stack: what keeps a pack in use.
    pub snapshot_ids: Vec<String>,
    /// The stack this catalog is of.
    pub stack: String,
    /// Other stacks with backups in this copy (their names), left alone.
    pub other_stacks: BTreeSet<String>,
}

impl Catalog {
    /// Reads the copy's snapshot list and every manifest of `stack` in it (see the
    /// module doc). An unreadable manifest is skipped with a warning rather than hiding
    /// every other backup.
    pub fn load(
        repo: &Repository,
        stack: &str,
        events: &dyn EventSink,
    ) -> Result<Catalog, EngineError> {
        // A damaged snapshot file costs what it held, not every other backup.
        let (snapshots, unreadable) = repo.snapshots_lenient().map_err(storage_err(repo))?;
        for (id, why) in &unreadable {
            events.emit(Event::Warning {
                message: format!(
                    "{}: snapshot {id} is unreadable ({why}); skipped (`drydock verify` names what it held)",
                    repo.location()
                ),
            });
        }
        let mut ours = Ours::sort(&snapshots, stack);
        let by_backup = read_manifests(repo, stack, &mut ours, events)?;
        let (manifests, superseded) = newest_revisions(by_backup);
        let mut catalog = Catalog {
            manifests,
            superseded,
            data: ours.data,
            orphans: Vec::new(),
            unreadable,
            snapshot_ids: snapshots.iter().map(|s| s.id.clone()).collect(),
            stack: stack.to_string(),
            other_stacks: ours.other_stacks,
        };
        catalog.orphans = orphans(&catalog, ours.data_ids);
        Ok(catalog)
    }

    pub fn manifest(&self, backup_id: &str) -> Option<&StoredManifest> {
        self.manifests
            .iter()
            .find(|m| m.manifest.id.as_str() == backup_id)
    }

    /// The data snapshot of `service/source` of `backup_id` in this copy.
    pub fn snapshot_of(&self, backup_id: &str, service: &str, source: &str) -> Option<&str> {
        self.data
            .get(&(
                backup_id.to_string(),
                service.to_string(),
                source.to_string(),
            ))
            .map(String::as_str)
    }

    /// The data snapshots (`service/source`, id) this copy holds for `backup_id`,
    /// whether or not a manifest names them.
    pub fn data_of(&self, backup_id: &str) -> Vec<(String, String)> {
        self.data
            .iter()
            .filter(|((backup, _, _), _)| backup == backup_id)
            .map(|((_, service, source), id)| (format!("{service}/{source}"), id.clone()))
            .collect()
    }

    /// Labels of the restorable sources of `m` whose data is not in this copy.
    pub fn missing_sources(&self, m: &Manifest) -> Vec<String> {
        m.sources
            .iter()
            .filter(|r| r.is_restorable())
            .filter(|r| {
                self.snapshot_of(m.id.as_str(), &r.service, &r.source)
                    .is_none()
            })
            .map(|r| r.label())
            .collect()
    }

    /// The next backup's sequence number in this copy: one more than the highest.
    pub fn next_seq(&self) -> u64 {
        self.manifests
            .iter()
            .filter_map(|m| m.manifest.seq)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// The newest backup by creation order.
    pub fn newest(&self) -> Option<&Manifest> {
        self.manifests.last().map(|m| &m.manifest)
    }

    /// Just the manifests, oldest first.
    pub fn plain_manifests(&self) -> Vec<Manifest> {
        self.manifests.iter().map(|m| m.manifest.clone()).collect()
    }
}

/// Every manifest of `stack` in the repository (its newest revision), oldest first.
pub fn load_manifests(
    repo: &Repository,
    stack: &str,
    events: &dyn EventSink,
) -> Result<Vec<Manifest>, EngineError> {
    Ok(Catalog::load(repo, stack, events)?.plain_manifests())
}

/// The local repository's catalog, for callers that read only the local copy.
pub fn local_catalog(
    config: &Config,
    events: &dyn EventSink,
) -> Result<(Repository, Catalog), EngineError> {
    let repository = repo::open_repository(config, false)?;
    let catalog = Catalog::load(&repository, &config.stack.name, events)?;
    Ok((repository, catalog))
}

/// A repository's snapshots sorted for one stack: its data snapshots and manifest
/// snapshots, and the other stacks seen.
struct Ours<'s> {
    data: BTreeMap<(String, String, String), String>,
    data_ids: Vec<String>,
    manifest_snaps: Vec<&'s drydock_storage::SnapshotSummary>,
    other_stacks: BTreeSet<String>,
}

impl<'s> Ours<'s> {
    fn sort(snapshots: &'s [drydock_storage::SnapshotSummary], stack: &str) -> Ours<'s> {
        let mut data = BTreeMap::new();
        let mut data_ids = Vec::new();
        let mut manifest_snaps = Vec::new();
        let mut other_stacks = BTreeSet::new();
        for snap in snapshots {
            let tag = |prefix: &str| {
                snap.tags
                    .iter()
                    .find_map(|t| t.strip_prefix(prefix))
                    .map(str::to_string)
            };
            // Another stack's (or, without a stack tag, not drydock's): never ours to
            // list, restore or forget.
            match tag("stack:") {
                Some(s) if s == stack => {}
                Some(s) => {
                    other_stacks.insert(s);
                    continue;
                }
                None => continue,
            }
            if snap.tags.iter().any(|t| t == MANIFEST_TAG) {
                manifest_snaps.push(snap);
            } else if let (Some(backup), Some(service), Some(source)) =
                (tag("backup:"), tag("service:"), tag("source:"))
            {
                data.insert((backup, service, source), snap.id.clone());
                data_ids.push(snap.id.clone());
            }
        }
        Ours {
            data,
            data_ids,
            manifest_snaps,
            other_stacks,
        }
    }
}

/// Every revision of each of the stack's manifests, by backup id; unreadable ones are
/// warned about and skipped, another stack's are only noted.
fn read_manifests(
    repo: &Repository,
    stack: &str,
    ours: &mut Ours<'_>,
    events: &dyn EventSink,
) -> Result<BTreeMap<String, Vec<StoredManifest>>, EngineError> {
    let mut by_backup: BTreeMap<String, Vec<StoredManifest>> = BTreeMap::new();
    let manifest_snaps = std::mem::take(&mut ours.manifest_snaps);
    let other_stacks = &mut ours.other_stacks;
    let ids: Vec<String> = manifest_snaps.iter().map(|s| s.id.clone()).collect();
    let contents = repo
        .read_small_streams(&ids, MANIFEST_MAX_BYTES)
        .map_err(storage_err(repo))?;
    for (snap, bytes) in manifest_snaps.into_iter().zip(contents) {
        let parsed = bytes
            .map_err(|e| e.to_string())
            .and_then(|b| Manifest::from_json(&b).map_err(|e| e.to_string()));
        match parsed {
            // The tag said ours, the manifest says otherwise: trust the manifest.
            Ok(manifest) if manifest.stack != stack => {
                other_stacks.insert(manifest.stack);
            }
            Ok(manifest) => {
                by_backup
                    .entry(manifest.id.to_string())
                    .or_default()
                    .push(StoredManifest {
                        manifest,
                        snapshot_id: snap.id.clone(),
                        saved_at: snap.time,
                    })
            }
            Err(e) => events.emit(Event::Warning {
                message: format!(
                    "{}: manifest snapshot {}: unreadable ({e}); skipped",
                    repo.location(),
                    &snap.id[..8.min(snap.id.len())]
                ),
            }),
        }
    }
    Ok(by_backup)
}

/// The newest revision of each backup's manifest, in the stack's order of creation,
/// and the snapshots of the superseded ones.
fn newest_revisions(
    by_backup: BTreeMap<String, Vec<StoredManifest>>,
) -> (Vec<StoredManifest>, Vec<String>) {
    let mut manifests = Vec::new();
    let mut superseded = Vec::new();
    for (_, mut revisions) in by_backup {
        revisions.sort_by(|a, b| (a.saved_at, &a.snapshot_id).cmp(&(b.saved_at, &b.snapshot_id)));
        let newest = revisions.pop().expect("at least one revision");
        superseded.extend(revisions.into_iter().map(|r| r.snapshot_id));
        manifests.push(newest);
    }
    // By the stack's order of creation (its sequence number, then start time, then
    // id), not by the clock alone: a backup taken while the clock was wrong must
    // not become, or stay, `latest`.
    manifests.sort_by(|a, b| {
        a.manifest
            .creation_order()
            .cmp(&b.manifest.creation_order())
    });
    (manifests, superseded)
}

/// Data snapshots no manifest names.
fn orphans(catalog: &Catalog, data_ids: Vec<String>) -> Vec<String> {
    let named: BTreeSet<&String> = catalog
        .manifests
        .iter()
        .flat_map(|m| {
            m.manifest.sources.iter().filter_map(|r| {
                catalog.data.get(&(
                    m.manifest.id.to_string(),
                    r.service.clone(),
                    r.source.clone(),
                ))
            })
        })
        .collect();
    data_ids
        .into_iter()
        .filter(|id| !named.contains(id))
        .collect()
}
