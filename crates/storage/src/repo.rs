//! Opening and creating repositories, and the operations that only touch
//! snapshot files: listing, forgetting, checking.
//!
//! A [`Repository`] is either a local directory or a copy in an S3 bucket
//! (`s3_backend`); everything above this module treats both alike. It keeps the
//! decrypted master key, never the password, and opens a fresh rustic handle for
//! every operation (reading the config is cheap with the master key; no password
//! stretching). A fresh handle also means a fresh index, so one operation always
//! sees what the previous one wrote.

use std::{
    fmt,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustic_backend::local::LocalBackend;
use rustic_core::{
    repofile::{ConfigFile, MasterKey, SnapshotFile, SnapshotId},
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository as Engine, RepositoryBackends,
    RepositoryOptions, SnapshotOptions,
};

use crate::{
    durable_local::DurableLocal,
    error::StorageError,
    key_file,
    s3::{S3Client, S3Options},
    s3_backend::S3Backend,
    s3_create,
    types::{SnapshotMeta, SnapshotSummary},
};

/// A snapshot file that could not be read: its full id and why.
pub type Unreadable = (String, String);

/// Where a repository's files are.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    Local(PathBuf),
    S3(Arc<S3Client>),
}

/// An open repository. `Debug` shows where it is, nothing secret.
pub struct Repository {
    pub(crate) place: Place,
    /// Printable location: the directory, or `s3:ENDPOINT/BUCKET/PREFIX` (redacted).
    pub(crate) location: String,
    backends: RepositoryBackends,
    key: MasterKey,
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Makes every file and directory this process creates from now on private.
///
/// rustic_backend creates repository files with the default mode (0666) and
/// directories with 0777, leaving privacy to the umask; an operator's umask
/// of 022 (or a container's 000) would make backups world-readable. The
/// umask is per process, so it is set, not saved and restored: restoring it
/// would race with other threads, and 077 is what the whole of drydock wants
/// for its files anyway (backups and state are private). Restored trees get
/// their recorded modes explicitly, so they are unaffected.
pub(crate) fn private_umask() {
    use nix::sys::stat::{umask, Mode};
    let _previous = umask(Mode::from_bits_truncate(0o077));
}

fn engine_options() -> RepositoryOptions {
    // No cache: drydock's repositories are local (or fetched whole), and the
    // default cache lives under ~/.cache/rustic, outside drydock's state.
    RepositoryOptions::default().no_cache(true)
}

fn backends_for(path: &Path) -> Result<RepositoryBackends, StorageError> {
    let Some(path_str) = path.to_str() else {
        return Err(StorageError::invalid(
            format!("repository path {}", path.display()),
            "is not valid UTF-8 (the storage engine needs UTF-8 paths)",
            "choose a repository path with UTF-8 characters only",
        ));
    };
    let be = LocalBackend::new(path_str, std::iter::empty())
        .map_err(|e| StorageError::engine(format!("repository at {}", path.display()), &e))?;
    Ok(RepositoryBackends::new(
        Arc::new(DurableLocal::new(path, be)),
        None,
    ))
}

fn has_config(path: &Path) -> bool {
    path.join("config").is_file()
}

fn s3_backends(client: &Arc<S3Client>) -> RepositoryBackends {
    RepositoryBackends::new(Arc::new(S3Backend::new(Arc::clone(client))), None)
}

/// Whether the bucket holds a repository under the copy's prefix; also the first
/// contact with the remote, so unreachable servers and bad credentials surface here
/// with their own message.
fn s3_has_config(client: &S3Client) -> Result<bool, StorageError> {
    client.probe()?;
    Ok(client.list("config")?.iter().any(|o| o.key == "config"))
}

impl Repository {
    /// Creates a new repository at `path` (the directory may exist if empty).
    pub fn init(path: &Path, password: &str) -> Result<Self, StorageError> {
        private_umask();
        if has_config(path) {
            return Err(StorageError::AlreadyARepository {
                location: path.display().to_string(),
            });
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                // A mount point of a fresh file system has lost+found; anything
                // else suggests a wrong path, and init would scatter
                // repository directories among someone's files.
                let foreign: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lost+found")
                    .take(3)
                    .collect();
                if !foreign.is_empty() {
                    return Err(StorageError::invalid(
                        format!("repository path {}", path.display()),
                        format!(
                            "is a non-empty directory without a repository (contains {})",
                            foreign.join(", ")
                        ),
                        "point [repository].path at an empty or missing directory",
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StorageError::io(
                    format!("reading repository directory {}", path.display()),
                    "check that the path is a directory drydock may read",
                    e,
                ));
            }
        }
        let backends = backends_for(path)?;
        let location = path.display().to_string();
        let engine = Engine::new(&engine_options(), &backends)
            .and_then(|r| {
                r.init(
                    &Credentials::password(password),
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
            })
            .map_err(|e| StorageError::engine(format!("creating repository at {location}"), &e))?;
        key_file::replace_created_key(
            &backends,
            &location,
            &engine.key(),
            password,
            engine.key_id(),
        )?;
        // A directory the operator created beforehand keeps its mode under
        // any umask; the repository root must be private too.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            StorageError::io(
                format!("making repository directory {} private", path.display()),
                "check that drydock owns the directory",
                e,
            )
        })?;
        Ok(Self {
            place: Place::Local(path.to_path_buf()),
            location,
            backends,
            key: engine.key(),
        })
    }

    /// Opens an existing repository.
    pub fn open(path: &Path, password: &str) -> Result<Self, StorageError> {
        private_umask();
        if !path.is_dir() {
            return Err(StorageError::NotARepository {
                location: path.display().to_string(),
                reason: if path.exists() {
                    "not a directory".into()
                } else {
                    "the directory does not exist".into()
                },
            });
        }
        if !has_config(path) {
            return Err(StorageError::NotARepository {
                location: path.display().to_string(),
                reason: "no config file in it".into(),
            });
        }
        let backends = backends_for(path)?;
        Self::unlock_with_password(
            Place::Local(path.to_path_buf()),
            path.display().to_string(),
            backends,
            password,
        )
    }

    fn unlock_with_password(
        place: Place,
        location: String,
        backends: RepositoryBackends,
        password: &str,
    ) -> Result<Self, StorageError> {
        let engine = Engine::new(&engine_options(), &backends)
            .and_then(|r| r.open(&Credentials::password(password)))
            .map_err(|e| {
                if e.is_incorrect_password() {
                    StorageError::WrongPassword {
                        location: location.clone(),
                    }
                } else {
                    StorageError::engine(format!("opening repository at {location}"), &e)
                }
            })?;
        Ok(Self {
            place,
            location,
            backends,
            key: engine.key(),
        })
    }

    /// Opens the repository copy in an S3 bucket.
    pub fn open_s3(opts: &S3Options, password: &str) -> Result<Self, StorageError> {
        let client = Arc::new(S3Client::new(opts)?);
        let location = client.location().to_string();
        if !s3_has_config(&client)? {
            return Err(StorageError::NotARepository {
                location,
                reason: "the bucket holds no repository config under this prefix".into(),
            });
        }
        Self::unlock_s3(client, location, password)
    }

    /// Opens an existing S3 copy with the password, once a config that a concurrent
    /// creator may still overwrite has settled (`s3_create`).
    fn unlock_s3(
        client: Arc<S3Client>,
        location: String,
        password: &str,
    ) -> Result<Self, StorageError> {
        s3_create::wait_if_young(&client)?;
        let backends = s3_backends(&client);
        let engine = s3_create::open_with_password(
            &client,
            &backends,
            &location,
            password,
            &engine_options(),
        )?;
        Ok(Self {
            key: engine.key(),
            place: Place::S3(client),
            location,
            backends,
        })
    }

    /// Opens the copy in an S3 bucket, creating it first when the bucket holds none
    /// under the prefix. A new copy takes `like`'s chunker parameters (so the same
    /// data splits into the same blobs in both) and a repository id of its own;
    /// its key is encrypted with `password`, so restic opens it with that password.
    /// Hosts creating one copy at the same moment end up in one repository
    /// (`s3_create`).
    pub fn open_or_init_s3(
        opts: &S3Options,
        password: &str,
        like: &Repository,
    ) -> Result<Self, StorageError> {
        let client = Arc::new(S3Client::new(opts)?);
        let location = client.location().to_string();
        if s3_has_config(&client)? {
            return Self::unlock_s3(client, location, password);
        }
        let backends = s3_backends(&client);
        let config = with_new_id(like.engine()?.config())?;
        let engine = s3_create::create(
            &client,
            &backends,
            &location,
            password,
            config,
            &engine_options(),
        )?;
        Ok(Self {
            place: Place::S3(client),
            location,
            backends,
            key: engine.key(),
        })
    }

    /// Opens the repository at `path`, creating it first if there is none.
    pub fn open_or_init(path: &Path, password: &str) -> Result<Self, StorageError> {
        if has_config(path) {
            Self::open(path, password)
        } else {
            Self::init(path, password)
        }
    }

    /// Where the repository is, safe to print: its directory, or
    /// `s3:ENDPOINT/BUCKET/PREFIX` with any credentials in the endpoint redacted.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The repository directory, for a local repository.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.place {
            Place::Local(path) => Some(path),
            Place::S3(_) => None,
        }
    }

    pub(crate) fn backends(&self) -> &RepositoryBackends {
        &self.backends
    }

    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.key
    }

    /// A fresh rustic handle (see the module doc).
    pub(crate) fn engine(&self) -> Result<Engine<OpenStatus>, StorageError> {
        private_umask();
        Engine::new(&engine_options(), &self.backends)
            .and_then(|r| r.open(&Credentials::Masterkey(self.key.clone())))
            .map_err(|e| self.engine_err("opening", &e))
    }

    pub(crate) fn engine_err(&self, doing: &str, e: &rustic_core::RusticError) -> StorageError {
        if crate::error::is_disk_full(e) {
            if let Place::Local(path) = &self.place {
                let free = nix::sys::statvfs::statvfs(path).map_or_else(
                    |_| "unknown".to_string(),
                    |st| {
                        crate::error::human_bytes(
                            st.blocks_available().saturating_mul(st.fragment_size()),
                        )
                    },
                );
                return StorageError::DiskFull {
                    location: self.location.clone(),
                    doing: format!("{doing} it").trim().to_string(),
                    free,
                };
            }
        }
        StorageError::engine(format!("{doing} repository at {}", self.location), e)
    }

    /// Resolves a full id or unique prefix to the snapshot's id.
    pub(crate) fn resolve_id<S: rustic_core::Open>(
        &self,
        engine: &Engine<S>,
        id: &str,
    ) -> Result<SnapshotId, StorageError> {
        let wanted = id.trim().to_ascii_lowercase();
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StorageError::SnapshotNotFound {
                location: self.location.clone(),
                id: id.to_string(),
            });
        }
        let matches: Vec<SnapshotId> = engine
            .list::<SnapshotId>()
            .map_err(|e| self.engine_err("listing snapshots of", &e))?
            .filter(|sid| sid.to_hex().starts_with(&wanted))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(StorageError::SnapshotNotFound {
                location: self.location.clone(),
                id: id.to_string(),
            }),
            many => Err(StorageError::AmbiguousSnapshotId {
                location: self.location.clone(),
                id: id.to_string(),
                count: many.len(),
            }),
        }
    }

    pub(crate) fn load_snapshot<S: rustic_core::Open>(
        &self,
        engine: &Engine<S>,
        id: &str,
    ) -> Result<SnapshotFile, StorageError> {
        let sid = self.resolve_id(engine, id)?;
        let mut snaps = engine
            .get_snapshots(&[sid.to_hex().as_str()])
            .map_err(|e| self.engine_err("reading a snapshot of", &e))?;
        snaps.pop().ok_or_else(|| StorageError::SnapshotNotFound {
            location: self.location.clone(),
            id: id.to_string(),
        })
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotSummary>, StorageError> {
        let engine = self.engine()?;
        let mut snaps: Vec<SnapshotSummary> = engine
            .get_all_snapshots()
            .map_err(|e| self.engine_err("listing snapshots of", &e))?
            .into_iter()
            .map(summary)
            .collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
    }

    /// Like [`Repository::snapshots`], but a snapshot file that cannot be read (damaged,
    /// truncated) does not hide all the others: it is returned apart, with its full id
    /// and why it failed.
    pub fn snapshots_lenient(
        &self,
    ) -> Result<(Vec<SnapshotSummary>, Vec<Unreadable>), StorageError> {
        let (files, unreadable) = self.snapshot_files_lenient()?;
        let mut snaps: Vec<SnapshotSummary> = files.into_iter().map(summary).collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok((snaps, unreadable))
    }

    /// Every snapshot file that can be read, and apart those that cannot.
    pub(crate) fn snapshot_files_lenient(
        &self,
    ) -> Result<(Vec<SnapshotFile>, Vec<Unreadable>), StorageError> {
        let engine = self.engine()?;
        if let Ok(all) = engine.get_all_snapshots() {
            return Ok((all, Vec::new()));
        }
        // One at a time, to tell the unreadable ones from the rest.
        let ids: Vec<SnapshotId> = engine
            .list::<SnapshotId>()
            .map_err(|e| self.engine_err("listing snapshots of", &e))?
            .collect();
        let mut snaps = Vec::new();
        let mut unreadable = Vec::new();
        for id in ids {
            let hex = id.to_hex().as_str().to_string();
            match engine.get_snapshots(&[hex.as_str()]) {
                Ok(found) => snaps.extend(found),
                Err(e) => {
                    let why = crate::error::condense(e.display_log().trim_start_matches("Error: "));
                    unreadable.push((hex, why));
                }
            }
        }
        Ok((snaps, unreadable))
    }

    /// Deletes the snapshot files (full ids or unique prefixes). Their data
    /// stays until a later prune. Nothing is deleted if any id is unknown.
    pub fn forget(&self, snapshot_ids: &[String]) -> Result<(), StorageError> {
        let engine = self.engine()?;
        let ids = snapshot_ids
            .iter()
            .map(|id| self.resolve_id(&engine, id))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(());
        }
        engine
            .delete_snapshots(&ids)
            .map_err(|e| self.engine_err("deleting snapshots from", &e))
    }
}

/// A check finding in one line. Findings that wrap a rustic error embed its
/// multi-line `Display` (bug-report text, backtrace); that part is replaced
/// by the error's one-line form.
pub(crate) fn one_line_finding(finding: &dyn std::error::Error) -> String {
    let mut message = finding.to_string();
    let rustic = finding.source().and_then(|source| {
        source
            .downcast_ref::<rustic_core::RusticError>()
            .or_else(|| {
                source
                    .downcast_ref::<Box<rustic_core::RusticError>>()
                    .map(|b| &**b)
            })
    });
    if let Some(rustic) = rustic {
        let short = rustic.display_log();
        let short = short.strip_prefix("Error: ").unwrap_or(&short);
        message = message.replace(&rustic.to_string(), short);
    }
    crate::error::condense(&message)
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// A copy of `config` (chunker parameters, format version) with a fresh random id:
/// restic keys its cache by repository id, so two copies must not share one.
/// (`RepositoryId` is not exported by rustic_core 0.13; the id goes through JSON.)
fn with_new_id(config: &ConfigFile) -> Result<ConfigFile, StorageError> {
    let mut json = serde_json::to_value(config)
        .map_err(|e| StorageError::Engine(format!("copying the repository config: {e}")))?;
    let mut id = [0u8; 32];
    rand::fill(&mut id);
    json["id"] = serde_json::Value::String(hex::encode(id));
    serde_json::from_value(json)
        .map_err(|e| StorageError::Engine(format!("copying the repository config: {e}")))
}

/// Builds the snapshot skeleton: time now, host, tags, optional label.
/// What drydock lists of a snapshot file.
fn summary(s: SnapshotFile) -> SnapshotSummary {
    SnapshotSummary {
        id: s.id.to_hex().as_str().to_string(),
        time: s.time.timestamp(),
        tags: s.tags.iter().cloned().collect(),
        paths: s.paths.iter().cloned().collect(),
        hostname: s.hostname,
        label: s.label,
    }
}

pub(crate) fn new_snapshot(meta: &SnapshotMeta) -> Result<SnapshotFile, StorageError> {
    for tag in &meta.tags {
        if tag.contains(',') || tag.is_empty() {
            return Err(StorageError::invalid(
                format!("snapshot tag {tag:?}"),
                "is empty or contains a comma (restic treats a comma as a tag separator)",
                "use tags without commas",
            ));
        }
    }
    let mut opts = SnapshotOptions::default()
        // The default is this process's argv; a fixed string keeps whatever
        // is on drydock's command line out of the repository.
        .command("drydock".to_string());
    if !meta.hostname.is_empty() {
        opts = opts.host(meta.hostname.clone());
    }
    if let Some(label) = &meta.label {
        opts = opts.label(label.clone());
    }
    let mut snap = opts
        .to_snapshot()
        .map_err(|e| StorageError::engine("preparing a snapshot", &e))?;
    for tag in &meta.tags {
        snap.tags.add(tag.clone());
    }
    Ok(snap)
}
