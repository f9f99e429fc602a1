//! Opening and creating repositories, and the operations that only touch
//! snapshot files: listing, forgetting, checking.
//!
//! A [`Repository`] keeps the decrypted master key, never the password, and
//! opens a fresh rustic handle for every operation (reading the config is
//! cheap with the master key; no password stretching). A fresh handle also
//! means a fresh index, so one operation always sees what the previous one
//! wrote.

use std::{
    fmt,
    os::unix::fs::PermissionsExt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::Arc,
};

use rustic_backend::local::LocalBackend;
use rustic_core::{
    repofile::{MasterKey, SnapshotFile, SnapshotId},
    CheckOptions, ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository as Engine,
    RepositoryBackends, RepositoryOptions, SnapshotOptions,
};

use crate::{
    error::StorageError,
    types::{CheckReport, SnapshotMeta, SnapshotSummary},
};

/// An open repository. `Debug` shows the path only.
pub struct Repository {
    pub(crate) path: PathBuf,
    backends: RepositoryBackends,
    key: MasterKey,
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("path", &self.path)
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
    Ok(RepositoryBackends::new(Arc::new(be), None))
}

fn has_config(path: &Path) -> bool {
    path.join("config").is_file()
}

impl Repository {
    /// Creates a new repository at `path` (the directory may exist if empty).
    pub fn init(path: &Path, password: &str) -> Result<Self, StorageError> {
        private_umask();
        if has_config(path) {
            return Err(StorageError::AlreadyARepository {
                path: path.to_path_buf(),
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
        let engine = Engine::new(&engine_options(), &backends)
            .and_then(|r| {
                r.init(
                    &Credentials::password(password),
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
            })
            .map_err(|e| {
                StorageError::engine(format!("creating repository at {}", path.display()), &e)
            })?;
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
            path: path.to_path_buf(),
            backends,
            key: engine.key(),
        })
    }

    /// Opens an existing repository.
    pub fn open(path: &Path, password: &str) -> Result<Self, StorageError> {
        private_umask();
        if !path.is_dir() {
            return Err(StorageError::NotARepository {
                path: path.to_path_buf(),
                reason: if path.exists() {
                    "not a directory".into()
                } else {
                    "the directory does not exist".into()
                },
            });
        }
        if !has_config(path) {
            return Err(StorageError::NotARepository {
                path: path.to_path_buf(),
                reason: "no config file in it".into(),
            });
        }
        let backends = backends_for(path)?;
        let engine = Engine::new(&engine_options(), &backends)
            .and_then(|r| r.open(&Credentials::password(password)))
            .map_err(|e| {
                if e.is_incorrect_password() {
                    StorageError::WrongPassword {
                        path: path.to_path_buf(),
                    }
                } else {
                    StorageError::engine(format!("opening repository at {}", path.display()), &e)
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
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

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh rustic handle (see the module doc).
    pub(crate) fn engine(&self) -> Result<Engine<OpenStatus>, StorageError> {
        private_umask();
        Engine::new(&engine_options(), &self.backends)
            .and_then(|r| r.open(&Credentials::Masterkey(self.key.clone())))
            .map_err(|e| self.engine_err("opening", &e))
    }

    pub(crate) fn engine_err(&self, doing: &str, e: &rustic_core::RusticError) -> StorageError {
        StorageError::engine(format!("{doing} repository at {}", self.path.display()), e)
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
                path: self.path.clone(),
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
                path: self.path.clone(),
                id: id.to_string(),
            }),
            many => Err(StorageError::AmbiguousSnapshotId {
                path: self.path.clone(),
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
            path: self.path.clone(),
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
            .map(|s| SnapshotSummary {
                id: s.id.to_hex().as_str().to_string(),
                time: s.time.timestamp(),
                tags: s.tags.iter().cloned().collect(),
                paths: s.paths.iter().cloned().collect(),
                hostname: s.hostname,
                label: s.label,
            })
            .collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
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

    /// Checks the repository structure, and with `read_data` every pack.
    pub fn check(&self, read_data: bool) -> Result<CheckReport, StorageError> {
        let engine = self.engine()?;
        let opts = CheckOptions::default().read_data(read_data);
        // rustic unwraps in a few places of its check (e.g. decompressing a
        // blob); a corrupt repository must yield a report, not a crash.
        let outcome = catch_unwind(AssertUnwindSafe(|| engine.check(opts)));
        let mut report = CheckReport {
            ok: true,
            errors: Vec::new(),
            warnings: Vec::new(),
            read_data,
        };
        match outcome {
            Ok(Ok(results)) => {
                for (level, finding) in results.0 {
                    // `CheckErrorLevel` is not exported by rustic_core 0.13;
                    // its Debug form is the only way to tell the levels apart.
                    let message = one_line(&finding);
                    if format!("{level:?}") == "Warn" {
                        report.warnings.push(message);
                    } else {
                        report.errors.push(message);
                    }
                }
            }
            // A check that cannot even run (e.g. an unreadable index file)
            // is a failed check, reported like any other finding.
            Ok(Err(e)) => report.errors.push(one_line(&*e)),
            Err(panic) => report.errors.push(format!(
                "the check aborted: {}",
                panic_message(panic.as_ref())
            )),
        }
        report.ok = report.errors.is_empty();
        Ok(report)
    }
}

/// A check finding in one line. Findings that wrap a rustic error embed its
/// multi-line `Display` (bug-report text, backtrace); that part is replaced
/// by the error's one-line form.
fn one_line(finding: &dyn std::error::Error) -> String {
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

/// Builds the snapshot skeleton: time now, host, tags, optional label.
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
