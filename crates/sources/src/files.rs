//! Plain directories.
//!
//! Backup hands the directory to the repository (`Store::put_tree`), which walks it
//! without following symlinks or opening special files and hands on every entry as
//! stored, with the SHA-256 of exactly the stored bytes; the fingerprint is computed
//! from those entries as they come (a tree is never held whole). Restore recreates the tree beside the target (same filesystem)
//! and swaps it in with renames, so a failed restore leaves the old tree in place.
//! When the target is a mount point (it cannot be renamed), the swap is done one
//! level down: its children are moved out and the restored ones moved in.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use drydock_domain::config::{FilesSource, SourceKind};
use drydock_domain::{Event, SourceRecord};

use crate::scratch;
use crate::testdata::{self, FileRecord, Project, TestData, TestMeasures, User, DIR_NAME};
use crate::tree::{self, Excludes};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

pub struct Files {
    config: FilesSource,
}

impl Files {
    pub fn new(config: FilesSource) -> Self {
        Files { config }
    }

    fn path(&self) -> &Path {
        &self.config.path
    }

    fn loc(&self) -> String {
        self.location()
    }

    /// The directory, resolved (a symlinked root is followed, as the repository does).
    fn existing_dir(&self) -> Result<PathBuf, SourceError> {
        let loc = self.loc();
        match fs::metadata(self.path()) {
            Ok(m) if m.is_dir() => fs::canonicalize(self.path()).map_err(|e| SourceError::io(&loc, "resolving the directory", e)),
            Ok(_) => Err(SourceError::invalid(&loc, format!("{} is not a directory; point `path` at a directory", self.path().display()))),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(SourceError::invalid(
                &loc,
                format!("directory {} does not exist; check `path` in drydock.toml (or create the directory)", self.path().display()),
            )),
            Err(e) => Err(SourceError::io(&loc, format!("cannot access {}", self.path().display()), e)),
        }
    }

    /// The path a restore replaces: a symlinked target is refused unless
    /// `follow_symlink` (then the directory it points at is replaced); a missing one is
    /// made absolute.
    fn resolved_target(&self) -> Result<PathBuf, SourceError> {
        scratch::restore_target(self.path(), self.config.follow_symlink, &self.loc())
    }

    /// Where a restore's scratch entries are: beside the directory, a symlink followed
    /// (a restore with `follow_symlink` works there).
    fn scratch_target(&self) -> Result<PathBuf, SourceError> {
        scratch::restore_target(self.path(), true, &self.loc())
    }

    /// Puts right what a killed restore left beside the directory (see `scratch`).
    fn recover(&self, ctx: &SourceContext<'_>) -> Result<(), SourceError> {
        let target = self.scratch_target()?;
        scratch::recover(&target, &self.loc(), ctx)?;
        scratch::recover_inside(&target, &self.loc(), ctx)
    }

    /// The restore proper: rebuilds the tree beside the target and swaps it in.
    fn restore_tree(&self, fetch: &dyn Fetch, ctx: &SourceContext<'_>) -> Result<(), SourceError> {
        let loc = self.loc();
        let io = |what: &str, e: std::io::Error| SourceError::io(&loc, what.to_string(), e);
        self.recover(ctx)?;
        // A symlinked target (with `follow_symlink`) keeps its symlink: the directory it
        // points at is replaced.
        let target = self.resolved_target()?;
        let name = target
            .file_name()
            .ok_or_else(|| {
                SourceError::invalid(
                    &loc,
                    "cannot restore over a filesystem root; point `path` at a directory below it",
                )
            })?
            .to_os_string();
        let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| {
            io(
                &format!("creating the parent directory {}", parent.display()),
                e,
            )
        })?;

        let old = match fs::symlink_metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot access the target", e)),
        };
        let parent_meta =
            fs::metadata(&parent).map_err(|e| io("cannot access the parent directory", e))?;
        let mount_point = old
            .as_ref()
            .is_some_and(|m| m.is_dir() && m.dev() != parent_meta.dev());

        if mount_point {
            ctx.events.emit(Event::Step {
                message: format!(
                    "{}: {} is a mount point; swapping its contents",
                    ctx.label,
                    target.display()
                ),
            });
            return restore_into_mount_point(fetch, &target, &loc, ctx);
        }

        // Work dir beside the target (same filesystem), private while the tree is rebuilt.
        let prefix = scratch::prefix(&name, "restore");
        let work = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(|e| io("creating a work directory beside the target", e))?;
        let fresh = work.path().join("new");
        fetch.tree_into(&fresh).map_err(|e| {
            scratch::target_full(&parent, &e.0, &loc).unwrap_or_else(|| SourceError::store(&loc, e))
        })?;
        let fresh_meta =
            fs::symlink_metadata(&fresh).map_err(|e| io("the restored tree is missing", e))?;
        if !fresh_meta.is_dir() {
            return Err(SourceError::invalid(
                &loc,
                "the backup did not produce a directory",
            ));
        }
        match &old {
            Some(m) if m.is_dir() => {
                fs::set_permissions(&fresh, fs::Permissions::from_mode(m.mode() & 0o7777))
                    .map_err(|e| io("keeping the directory's mode", e))?;
                keep_owner(&fresh, m, ctx);
            }
            _ => {}
        }

        if old.is_some() {
            ctx.before_replacing_live("moving the restored tree into place")?;
            let mut old_name = scratch::prefix(&name, "old");
            old_name.push(random_suffix());
            let aside = parent.join(old_name);
            fs::rename(&target, &aside).map_err(|e| io("moving the old tree aside", e))?;
            scratch::failpoint("files-restore-moved-aside");
            if let Err(e) = fs::rename(&fresh, &target) {
                let back = fs::rename(&aside, &target);
                let mut err = io("moving the restored tree into place", e);
                if let Err(b) = back {
                    err = SourceError::invalid(
                        &loc,
                        format!("moving the restored tree into place failed ({err}) and putting the old tree back failed too ({b}); it is at {}", aside.display()),
                    );
                }
                return Err(err);
            }
            sync_dir(&parent);
            scratch::failpoint("files-restore-moved-in");
            let removed = if fs::symlink_metadata(&aside).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&aside)
            } else {
                fs::remove_file(&aside)
            };
            if let Err(e) = removed {
                ctx.events.emit(Event::Warning {
                    message: format!(
                        "{}: the previous tree is left at {}: {e}; remove it by hand",
                        ctx.label,
                        aside.display()
                    ),
                });
            }
        } else {
            fs::rename(&fresh, &target)
                .map_err(|e| io("moving the restored tree into place", e))?;
        }
        sync_dir(&parent);
        drop(work);
        Ok(())
    }

    fn excludes(&self, root: &Path) -> Result<Excludes, SourceError> {
        Excludes::new(root, &self.config.exclude).map_err(|m| {
            SourceError::invalid(&self.loc(), format!("{m}; fix `exclude` in drydock.toml"))
        })
    }
}

impl DataSource for Files {
    fn kind(&self) -> SourceKind {
        SourceKind::Files
    }

    fn location(&self) -> String {
        format!("files {}", self.path().display())
    }

    fn restore_mode(&self) -> RestoreMode {
        RestoreMode::FileLevel
    }

    fn check(&self) -> Result<(), SourceError> {
        let target = self.scratch_target()?;
        scratch::recover_logged(&target, &self.loc())?;
        scratch::recover_inside_logged(&target, &self.loc())?;
        let root = self.existing_dir()?;
        self.excludes(&root)?;
        fs::read_dir(&root).map_err(|e| {
            SourceError::io(
                &self.loc(),
                "cannot list the directory (check drydock's permissions)",
                e,
            )
        })?;
        Ok(())
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let loc = self.loc();
        self.recover(ctx)?;
        let root = self.existing_dir()?;
        self.excludes(&root)?;
        // A tree is read over a span of time; its start is the conservative point.
        let started = drydock_domain::clock::now();
        // The top directory as the backup starts (the repository keeps no node for it).
        let top = tree::top_dir_parts(&root)
            .map_err(|e| SourceError::io(&loc, "reading the directory's own metadata", e))?;
        let mut fingerprint = tree::TreeFingerprint::new();
        let stored = store
            .put_tree(&root, &self.config.exclude, &mut |e| fingerprint.add(&e))
            .map_err(|e| SourceError::store(&loc, e))?;
        let (counts, fingerprint) = fingerprint.finish();
        let fingerprint = tree::with_parts(fingerprint, top);
        Ok(BackupOutcome {
            stored,
            format: "tree",
            counts,
            fingerprint,
            consistent_at: started,
        })
    }

    fn has_data(&self) -> Result<bool, SourceError> {
        // Asked before any restore changes anything: a refused symlink stops it here.
        self.resolved_target()?;
        match fs::symlink_metadata(self.path()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SourceError::io(&self.loc(), "cannot access the target", e)),
            Ok(_) => match fs::read_dir(self.path()) {
                Ok(mut rd) => Ok(rd.next().is_some()),
                // Something that is not a directory is there: a restore would replace it.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => Ok(true),
                Err(e) => Err(SourceError::io(&self.loc(), "cannot list the target", e)),
            },
        }
    }

    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        // The top directory's own metadata as backed up (backups made before drydock
        // recorded it have none: the replaced directory's mode and owner are kept).
        let top = record
            .fingerprint
            .as_ref()
            .and_then(tree::TopDir::from_fingerprint);
        self.restore_tree(fetch, ctx)?;
        if let Some(top) = top {
            let target = self.resolved_target()?;
            match top.apply(&target) {
                Ok(true) => {}
                Ok(false) => ctx.events.emit(Event::Warning {
                    message: format!(
                        "{}: could not give {} its backed-up owner {}:{} (drydock is not root)",
                        ctx.label,
                        target.display(),
                        top.uid,
                        top.gid
                    ),
                }),
                Err(e) => {
                    return Err(SourceError::io(
                        &self.loc(),
                        format!(
                            "giving {} its backed-up mode and modification time",
                            target.display()
                        ),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    fn inspect(&self, ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        self.recover(ctx)?;
        let root = self.existing_dir()?;
        let excludes = self.excludes(&root)?;
        let (counts, fingerprint) = tree::fingerprint_dir(&root, &excludes)
            .map_err(|e| SourceError::io(&self.loc(), "reading the directory", e))?;
        let fingerprint = tree::with_top_dir(fingerprint, &root)
            .map_err(|e| SourceError::io(&self.loc(), "reading the directory's own metadata", e))?;
        Ok(Inspection {
            counts,
            fingerprint,
        })
    }

    /// A path `ctx.scratch/sandbox-XXXX/<directory name>` that does not exist yet, with
    /// the same excludes (so inspecting it leaves out what a backup leaves out); the
    /// ordinary restore creates the tree there.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let loc = self.loc();
        let name = self
            .path()
            .file_name()
            .map(|n| n.to_os_string())
            .or_else(|| {
                fs::canonicalize(self.path())
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_os_string()))
            })
            .unwrap_or_else(|| OsString::from("data"));
        let dir = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating the sandbox directory", e))?;
        let target = Files::new(FilesSource {
            name: self.config.name.clone(),
            priority: self.config.priority,
            path: dir.path().join(name),
            exclude: self.config.exclude.clone(),
            follow_symlink: self.config.follow_symlink,
        });
        Ok(Box::new(FilesSandbox { target, dir }))
    }

    /// Writes `<root>/.drydock-canary` (the token and a newline) atomically: a temp
    /// file beside it, synced, renamed over it. Refused when `exclude` leaves the file
    /// out, since no backup would then hold it.
    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        let loc = self.loc();
        let io = |what: &str, e: std::io::Error| SourceError::io(&loc, what.to_string(), e);
        let root = self.existing_dir()?;
        if self
            .excludes(&root)?
            .is_excluded(Path::new(CANARY_FILE), false)
        {
            return Err(SourceError::invalid(
                &loc,
                format!("`exclude` leaves out {CANARY_FILE}, so no backup would hold the drill canary; narrow the pattern in drydock.toml"),
            ));
        }
        let root_meta = fs::metadata(&root).map_err(|e| io("cannot access the directory", e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".drydock-canary.tmp-")
            .tempfile_in(&root)
            .map_err(|e| io("creating the drill canary's temporary file", e))?;
        tmp.write_all(format!("{token}\n").as_bytes())
            .map_err(|e| io("writing the drill canary", e))?;
        let file = tmp.as_file();
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| io("setting the drill canary's mode", e))?;
        // Owned like the directory when drydock may (as root); else it stays drydock's.
        let _ = std::os::unix::fs::fchown(file, Some(root_meta.uid()), Some(root_meta.gid()));
        file.sync_all()
            .map_err(|e| io("syncing the drill canary", e))?;
        tmp.persist(root.join(CANARY_FILE))
            .map_err(|e| io("moving the drill canary into place", e.error))?;
        sync_dir(&root);
        Ok(())
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let loc = self.loc();
        let root = self.existing_dir()?;
        let path = root.join(CANARY_FILE);
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path);
        let file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SourceError::io(
                    &loc,
                    format!("reading {}", path.display()),
                    e,
                ))
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| SourceError::io(&loc, format!("reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(SourceError::invalid(
                &loc,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let mut text = Vec::new();
        file.take(CANARY_MAX_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| SourceError::io(&loc, format!("reading {}", path.display()), e))?;
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        Ok(Some(String::from_utf8_lossy(&text).into_owned()))
    }

    /// Deletes everything inside the directory; the directory itself stays (it may be a
    /// mount point, and its owner and mode are the service's).
    fn wipe(&self) -> Result<(), SourceError> {
        let loc = self.loc();
        let root = self.existing_dir()?;
        let entries = fs::read_dir(&root)
            .map_err(|e| SourceError::io(&loc, format!("listing {}", root.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| SourceError::io(&loc, format!("listing {}", root.display()), e))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let removed = if is_dir {
                make_writable(&path);
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed
                .map_err(|e| SourceError::io(&loc, format!("deleting {}", path.display()), e))?;
        }
        sync_dir(&root);
        Ok(())
    }

    /// `.drydock-test/` at the root: `users.json`, `projects/ID.json` (owner and name),
    /// `files/PROJECT_ID/NAME` (the content).
    fn populate(&self, data: &TestData) -> Result<(), SourceError> {
        let loc = self.loc();
        let io = |what: String, e: std::io::Error| SourceError::io(&loc, what, e);
        let root = self.existing_dir()?.join(DIR_NAME);
        if root.exists() {
            make_writable(&root);
            fs::remove_dir_all(&root).map_err(|e| io(format!("deleting {}", root.display()), e))?;
        }
        for dir in [root.join("projects"), root.join("files")] {
            fs::create_dir_all(&dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
        }
        let users: Vec<serde_json::Value> = data
            .users
            .iter()
            .map(|u| serde_json::json!({ "id": u.id, "name": u.name, "email": u.email }))
            .collect();
        let write = |path: PathBuf, bytes: &[u8]| {
            fs::write(&path, bytes).map_err(|e| io(format!("writing {}", path.display()), e))
        };
        write(
            root.join("users.json"),
            &serde_json::to_vec_pretty(&users).expect("json"),
        )?;
        for p in &data.projects {
            write(
                root.join("projects").join(format!("{}.json", p.id)),
                &serde_json::to_vec(&serde_json::json!({ "owner_id": p.owner_id, "name": p.name }))
                    .expect("json"),
            )?;
        }
        for f in &data.files {
            let dir = root.join("files").join(f.project_id.to_string());
            fs::create_dir_all(&dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
            // The id leads the name, so a file's record survives a rename-free listing.
            write(dir.join(format!("{}-{}", f.id, f.name)), &f.content)?;
        }
        Ok(())
    }

    fn measure_test_data(&self) -> Result<TestMeasures, SourceError> {
        let loc = self.loc();
        let io = |what: String, e: std::io::Error| SourceError::io(&loc, what, e);
        let root = self.existing_dir()?.join(DIR_NAME);
        if !root.is_dir() {
            return Ok(testdata::measure(&[], &[], &[]));
        }
        let read =
            |path: &Path| fs::read(path).map_err(|e| io(format!("reading {}", path.display()), e));
        let users_json: Vec<serde_json::Value> =
            serde_json::from_slice(&read(&root.join("users.json"))?).unwrap_or_default();
        let users = users_json
            .iter()
            .map(|u| User {
                id: u["id"].as_i64().unwrap_or(-1),
                name: u["name"].as_str().unwrap_or_default().to_string(),
                email: u["email"].as_str().unwrap_or_default().to_string(),
            })
            .collect::<Vec<_>>();
        let mut projects = Vec::new();
        for entry in fs::read_dir(root.join("projects"))
            .map_err(|e| io("listing the test projects".into(), e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|i| i.parse::<i64>().ok())
            else {
                continue;
            };
            let json: serde_json::Value =
                serde_json::from_slice(&read(&entry.path())?).unwrap_or_default();
            projects.push(Project {
                id,
                owner_id: json["owner_id"].as_i64().unwrap_or(-1),
                name: json["name"].as_str().unwrap_or_default().to_string(),
            });
        }
        let mut files = Vec::new();
        for dir in fs::read_dir(root.join("files"))
            .map_err(|e| io("listing the test files".into(), e))?
            .flatten()
        {
            let Ok(project_id) = dir.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            for entry in fs::read_dir(dir.path())
                .map_err(|e| io(format!("listing {}", dir.path().display()), e))?
                .flatten()
            {
                let full = entry.file_name().to_string_lossy().into_owned();
                let Some((id, name)) = full.split_once('-') else {
                    continue;
                };
                let Ok(id) = id.parse::<i64>() else { continue };
                files.push(FileRecord {
                    id,
                    project_id,
                    name: name.to_string(),
                    content: read(&entry.path())?,
                });
            }
        }
        Ok(testdata::measure(&users, &projects, &files))
    }
}

/// Makes a tree deletable by its owner (a restored read-only directory must not stop a
/// wipe).
fn make_writable(root: &Path) {
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        if entry.file_type().is_dir() {
            if let Ok(meta) = entry.metadata() {
                let mut perms = meta.permissions();
                perms.set_mode(perms.mode() | 0o700);
                let _ = fs::set_permissions(entry.path(), perms);
            }
        }
    }
}

/// The drill canary's file, at the tree's root.
pub const CANARY_FILE: &str = ".drydock-canary";
/// More than any token; a bigger file is not read whole.
const CANARY_MAX_BYTES: u64 = 64 * 1024;

/// A tree path under the scratch directory; dropping it removes it, read-only
/// directories included.
struct FilesSandbox {
    target: Files,
    dir: tempfile::TempDir,
}

impl Sandbox for FilesSandbox {
    fn target(&self) -> &dyn DataSource {
        &self.target
    }

    fn describe(&self) -> String {
        format!("temporary directory {}", self.target.path().display())
    }
}

impl Drop for FilesSandbox {
    fn drop(&mut self) {
        // The TempDir then removes everything (it is dropped after this).
        tree::make_removable(self.dir.path());
    }
}

/// Restores into a directory that cannot be renamed (a mount point): the tree is rebuilt
/// in a work dir inside it, the old children moved into another work dir, the new ones
/// moved up, and the old ones removed. On failure the moves are undone.
fn restore_into_mount_point(
    fetch: &dyn Fetch,
    target: &Path,
    loc: &str,
    ctx: &SourceContext<'_>,
) -> Result<(), SourceError> {
    let io = |what: &str, e: std::io::Error| SourceError::io(loc, what.to_string(), e);
    let work = tempfile::Builder::new()
        .prefix(&scratch::inside_prefix())
        .tempdir_in(target)
        .map_err(|e| io("creating a work directory", e))?;
    let fresh = work.path().join("new");
    let aside = work.path().join("old");
    fetch.tree_into(&fresh).map_err(|e| {
        scratch::target_full(target, &e.0, loc).unwrap_or_else(|| SourceError::store(loc, e))
    })?;
    fs::create_dir(&aside).map_err(|e| io("creating a work directory", e))?;
    // Where a killed swap stopped, for `scratch::recover_inside`.
    scratch::mark_phase(work.path(), scratch::Phase::MovingOld)
        .map_err(|e| io("recording the restore's progress", e))?;
    let work_name = work.path().file_name().map(|n| n.to_os_string());

    let children = |dir: &Path| -> std::io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let n = entry?.file_name();
            if Some(&n) != work_name.as_ref() {
                names.push(n);
            }
        }
        Ok(names)
    };
    let move_all =
        |names: &[OsString], from: &Path, to: &Path| -> Result<(), (usize, std::io::Error)> {
            for (i, n) in names.iter().enumerate() {
                fs::rename(from.join(n), to.join(n)).map_err(|e| (i, e))?;
            }
            Ok(())
        };
    let undo = |names: &[OsString], from: &Path, to: &Path| {
        for n in names {
            let _ = fs::rename(from.join(n), to.join(n));
        }
    };

    ctx.before_replacing_live("moving the mount point's old contents aside")?;
    let olds = children(target).map_err(|e| io("listing the target", e))?;
    if let Err((i, e)) = move_all(&olds, target, &aside) {
        undo(&olds[..i], &aside, target);
        return Err(io("moving the old contents aside", e));
    }
    scratch::failpoint("files-mount-moved-aside");
    if let Err(e) = scratch::mark_phase(work.path(), scratch::Phase::MovingNew) {
        undo(&olds, &aside, target);
        return Err(io("recording the restore's progress", e));
    }
    let news = children(&fresh).map_err(|e| io("listing the restored tree", e))?;
    if let Err((i, e)) = move_all(&news, &fresh, target) {
        undo(&news[..i], target, &fresh);
        undo(&olds, &aside, target);
        return Err(io("moving the restored contents into place", e));
    }
    sync_dir(target);
    scratch::failpoint("files-mount-moved-in");
    if scratch::mark_phase(work.path(), scratch::Phase::Done).is_err() {
        // Recovery would take the new contents for a half-done swap: remove the
        // marker so it counts as done (nothing of the old is needed any more).
        let _ = fs::remove_file(work.path().join(scratch::PHASE_FILE));
    }
    drop(work); // removes the old contents
    Ok(())
}

/// Gives `path` the owner of the directory it replaces, when drydock may (as root).
fn keep_owner(path: &Path, old: &fs::Metadata, ctx: &SourceContext<'_>) {
    let Ok(now) = fs::symlink_metadata(path) else {
        return;
    };
    if now.uid() == old.uid() && now.gid() == old.gid() {
        return;
    }
    if let Err(e) = std::os::unix::fs::lchown(path, Some(old.uid()), Some(old.gid())) {
        ctx.events.emit(Event::Warning {
            message: format!(
                "{}: could not give the restored directory its previous owner {}:{}: {e}",
                ctx.label,
                old.uid(),
                old.gid()
            ),
        });
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:08x}", hex::encode(b), nanos ^ std::process::id())
}
