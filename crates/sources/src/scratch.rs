//! The scratch entries a file-level restore (files, volumes, SQLite) makes beside its
//! target, and putting things right after a restore that was killed among them.
//!
//! A restore of `DIR/NAME` rebuilds the data as `DIR/.NAME.drydock-restore-PID-*`, moves
//! the live data aside as `DIR/.NAME.drydock-old-PID-*` (SQLite: with its `-wal`,
//! `-shm` and `-journal` files under the same name plus the suffix, so the old database
//! and its WAL stay a pair SQLite can open), moves the new data in and removes the old.
//! The PID in the names tells a live restore's entries from a dead one's.
//!
//! A target that is a mount point (it cannot be renamed) is swapped one level down, in
//! `TARGET/.drydock-restore-PID-*`: the new tree in `new/`, the old children moved to
//! `old/`, then the new ones moved up. A `phase` file there says how far the swap got;
//! [`recover_inside`] finishes a killed one backwards (the old children go back).
//!
//! [`recover`] runs first in every operation on the source (backup, restore, inspect,
//! which `verify --live` and drills use): for entries of processes that no longer run,
//! when the target is missing (killed between moving the old data aside and moving the
//! new data in) the newest old data is put back; everything else is removed. Each
//! action is reported as a warning naming the entry.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use drydock_domain::Event;

use crate::{SourceContext, SourceError};

/// SQLite's files beside a database, which belong to it.
pub(crate) const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// `.NAME.drydock-KIND-PID-`: the prefix of this process's scratch entries for `name`
/// (`KIND` is `restore` or `old`); a random part follows.
pub(crate) fn prefix(name: &OsStr, kind: &str) -> OsString {
    let mut p = OsString::from(".");
    p.push(name);
    p.push(format!(".drydock-{kind}-{}-", std::process::id()));
    p
}

/// 12 random hex digits for a scratch name (names only need to be unique).
pub(crate) fn random_part() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{nanos:08x}", hex::encode(b))
}

/// A test hook: when `DRYDOCK_TEST_FAILPOINT` names `point`, the process aborts there
/// (as `kill -9` would), so tests can stop a restore between two of its steps. Read
/// only here; nothing sets it outside the tests.
pub(crate) fn failpoint(point: &str) {
    if std::env::var_os("DRYDOCK_TEST_FAILPOINT").is_some_and(|v| v == point) {
        std::process::abort();
    }
}

/// One scratch entry of a dead process found beside the target.
struct Leftover {
    path: PathBuf,
    old: bool,
    /// SQLite sidecar suffix (`-wal` ...) when the entry is one.
    sidecar: Option<&'static str>,
    mtime: i64,
}

/// Whether the scratch entry named with `rest` (what follows `.drydock-KIND-`) belongs
/// to a process that still runs (this one included). Names without a PID (made before
/// PIDs were part of them) count as dead.
fn owner_alive(rest: &[u8]) -> bool {
    let pid = rest
        .split(|b| *b == b'-')
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<i32>().ok());
    match pid {
        Some(pid) if pid as u32 == std::process::id() => true,
        Some(pid) if pid > 0 => matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        ),
        _ => false,
    }
}

fn leftovers(dir: &Path, name: &OsStr) -> std::io::Result<Vec<Leftover>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    let mut base = b".".to_vec();
    base.extend_from_slice(name.as_bytes());
    base.extend_from_slice(b".drydock-");
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(base.as_slice()) else {
            continue;
        };
        let (old, rest) = if let Some(r) = rest.strip_prefix(b"old-") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(b"restore-") {
            (false, r)
        } else {
            continue;
        };
        if owner_alive(rest) {
            continue;
        }
        let sidecar = SIDECARS.into_iter().find(|s| rest.ends_with(s.as_bytes()));
        let mtime = entry.metadata().map(|m| m.ctime()).unwrap_or(0);
        found.push(Leftover {
            path: entry.path(),
            old,
            sidecar,
            mtime,
        });
    }
    Ok(found)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

fn remove(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            crate::tree::make_removable(path);
            fs::remove_dir_all(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The warnings of [`recover`] and [`recover_inside`] as the operation's events.
fn warnings_to<'a>(ctx: &'a SourceContext<'_>) -> impl Fn(String) + 'a {
    move |message| {
        ctx.events.emit(Event::Warning {
            message: format!("{}: {message}", ctx.label),
        })
    }
}

/// Puts right what a killed restore of `target` left beside it (see the module doc).
/// `location` names the source in errors.
pub(crate) fn recover(
    target: &Path,
    location: &str,
    ctx: &SourceContext<'_>,
) -> Result<(), SourceError> {
    recover_with(target, location, &warnings_to(ctx))
}

/// [`recover`] for [`crate::DataSource::check`], which has no event sink: the warning
/// goes to the log (the CLI shows it as a warning line). A missing target must be put
/// back before the check looks at it, or the check would fail on what a killed restore
/// moved aside.
pub(crate) fn recover_logged(target: &Path, location: &str) -> Result<(), SourceError> {
    let warn = |message: String| tracing::warn!("{location}: {message}");
    recover_with(target, location, &warn)
}

fn recover_with(target: &Path, location: &str, warn: &dyn Fn(String)) -> Result<(), SourceError> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut found = leftovers(dir, name).map_err(|e| {
        SourceError::io(
            location,
            format!(
                "looking for what a killed restore left in {}",
                dir.display()
            ),
            e,
        )
    })?;
    if found.is_empty() {
        return Ok(());
    }
    let target_missing =
        matches!(fs::symlink_metadata(target), Err(e) if e.kind() == ErrorKind::NotFound);
    if target_missing {
        // Killed after the live data was moved aside and before the new data was in:
        // the old data goes back (the newest, should there be several).
        let newest = found
            .iter()
            .enumerate()
            .filter(|(_, l)| l.old && l.sidecar.is_none())
            .max_by_key(|(_, l)| l.mtime)
            .map(|(i, _)| i);
        if let Some(i) = newest {
            let old = found.remove(i);
            fs::rename(&old.path, target).map_err(|e| {
                SourceError::io(
                    location,
                    format!(
                        "putting back the data a killed restore moved aside ({}); move it back to {} by hand",
                        old.path.display(),
                        target.display()
                    ),
                    e,
                )
            })?;
            warn(format!(
                "a restore was killed after moving the live data aside: put {} back as {} (the data as it was before that restore)",
                old.path.display(),
                target.display()
            ));
            // Its journals go back with it (a live one not moved aside yet stays).
            for suffix in SIDECARS {
                let aside = with_suffix(&old.path, suffix);
                let live = with_suffix(target, suffix);
                if let Some(j) = found.iter().position(|l| l.path == aside) {
                    found.remove(j);
                    if fs::symlink_metadata(&live).is_err() {
                        fs::rename(&aside, &live).map_err(|e| {
                            SourceError::io(
                                location,
                                format!(
                                    "putting back {} as {}; move it back by hand before the database is opened",
                                    aside.display(),
                                    live.display()
                                ),
                                e,
                            )
                        })?;
                    }
                }
            }
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    for l in found {
        let what = if l.old {
            "the data a killed restore had replaced"
        } else {
            "the unfinished tree of a killed restore"
        };
        match remove(&l.path) {
            Ok(()) => warn(format!("removed {} ({what})", l.path.display())),
            Err(e) => warn(format!(
                "could not remove {} ({what}): {e}; remove it by hand",
                l.path.display()
            )),
        }
    }
    Ok(())
}

/// The path a restore of `path` replaces. A symlink there is refused (its target would
/// be replaced silently), naming the link and what it points at, unless the source is
/// declared `follow_symlink = true`: then the target is what is replaced, and the link
/// stays.
pub(crate) fn restore_target(
    path: &Path,
    follow_symlink: bool,
    location: &str,
) -> Result<PathBuf, SourceError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| SourceError::io(location, "resolving the target path", e))?;
    match fs::symlink_metadata(&absolute) {
        Ok(m) if m.file_type().is_symlink() => {
            let points_at = fs::read_link(&absolute)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|e| format!("an unreadable target ({e})"));
            if !follow_symlink {
                return Err(SourceError::invalid(
                    location,
                    format!(
                        "the restore target {} is a symlink to {points_at}; a restore would replace what it points at, so nothing was changed. Point `path` at the real location, or set `follow_symlink = true` on this source to restore into the link's target",
                        absolute.display()
                    ),
                ));
            }
            match fs::canonicalize(&absolute) {
                Ok(real) => Ok(real),
                // A dangling link: its target is created where it points.
                Err(_) => {
                    let t = fs::read_link(&absolute)
                        .map_err(|e| SourceError::io(location, "reading the target symlink", e))?;
                    Ok(absolute.parent().unwrap_or(Path::new("/")).join(t))
                }
            }
        }
        Ok(_) => Ok(fs::canonicalize(&absolute).unwrap_or(absolute)),
        Err(_) => Ok(absolute),
    }
}

/// When `cause` (a failed write of a restore's new data beside its target in `dir`)
/// says the file system is full, the error that names the target's file system, not
/// the repository: nothing live was changed, and the fix is space there.
pub(crate) fn target_full(dir: &Path, cause: &str, location: &str) -> Option<SourceError> {
    let lower = cause.to_lowercase();
    let full = lower.contains("no space left")
        || lower.contains("os error 28")
        || lower.contains("os error 122")
        || lower.contains("quota exceeded");
    if !full {
        return None;
    }
    let free = nix::sys::statvfs::statvfs(dir)
        .map(|st| {
            let bytes = st.blocks_available().saturating_mul(st.fragment_size());
            format!("{:.1} MiB free", bytes as f64 / (1024.0 * 1024.0))
        })
        .unwrap_or_else(|_| "free space unknown".into());
    Some(SourceError::invalid(
        location,
        format!(
            "the restore target's file system ({}, {free}) is full: the backup is rebuilt beside the live data before it replaces it, which needs room for a second copy there. The live data was not changed and the repository is fine. Free space on the target's file system (or enlarge it), then restore again",
            dir.display()
        ),
    ))
}

/// The prefix of this process's work directory inside a mount-point target.
pub(crate) fn inside_prefix() -> String {
    format!(".drydock-restore-{}-", std::process::id())
}

/// The file in a mount-point swap's work directory saying how far it got.
pub(crate) const PHASE_FILE: &str = "phase";

/// How far a mount-point swap got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Old children are being moved to `old/` (some may still be in the target).
    MovingOld,
    /// Every old child is in `old/`; new ones are being moved into the target.
    MovingNew,
    /// The new tree is in place; `old/` is only waiting to be removed.
    Done,
}

impl Phase {
    fn tag(self) -> &'static str {
        match self {
            Phase::MovingOld => "moving-old",
            Phase::MovingNew => "moving-new",
            Phase::Done => "done",
        }
    }
}

/// Records `phase` in the work directory `work` (written to a temporary name, synced,
/// renamed over the previous one).
pub(crate) fn mark_phase(work: &Path, phase: Phase) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = work.join(".phase.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(phase.tag().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, work.join(PHASE_FILE))?;
    fs::File::open(work)?.sync_all()
}

/// [`recover`] for a mount-point target: dead work directories inside `target` are
/// finished backwards (a swap killed half-way gets the old children back) and removed.
pub(crate) fn recover_inside(
    target: &Path,
    location: &str,
    ctx: &SourceContext<'_>,
) -> Result<(), SourceError> {
    recover_inside_with(target, location, &warnings_to(ctx))
}

/// [`recover_inside`] with the warning going to the log (for `check`).
pub(crate) fn recover_inside_logged(target: &Path, location: &str) -> Result<(), SourceError> {
    let warn = |message: String| tracing::warn!("{location}: {message}");
    recover_inside_with(target, location, &warn)
}

fn recover_inside_with(
    target: &Path,
    location: &str,
    warn: &dyn Fn(String),
) -> Result<(), SourceError> {
    let Ok(entries) = fs::read_dir(target) else {
        return Ok(());
    };
    let io = |what: String, e: std::io::Error| SourceError::io(location, what, e);
    let mut work_dirs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.as_bytes().strip_prefix(b".drydock-restore-") else {
            continue;
        };
        if owner_alive(rest) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        work_dirs.push(entry.path());
    }
    for work in work_dirs {
        let phase = fs::read_to_string(work.join(PHASE_FILE)).unwrap_or_default();
        let old = work.join("old");
        let children = |dir: &Path| -> std::io::Result<Vec<OsString>> {
            let mut names = Vec::new();
            for e in fs::read_dir(dir)? {
                let n = e?.file_name();
                if !n.as_bytes().starts_with(b".drydock-restore-") {
                    names.push(n);
                }
            }
            Ok(names)
        };
        if phase == Phase::MovingOld.tag() || phase == Phase::MovingNew.tag() {
            if phase == Phase::MovingNew.tag() {
                // Every old child was aside: what is in the target now is new.
                let news =
                    children(target).map_err(|e| io(format!("listing {}", target.display()), e))?;
                for n in news {
                    remove(&target.join(&n)).map_err(|e| {
                        io(
                            format!("removing the half-restored {}", target.join(&n).display()),
                            e,
                        )
                    })?;
                }
            }
            let olds = children(&old).unwrap_or_default();
            for n in &olds {
                fs::rename(old.join(n), target.join(n)).map_err(|e| {
                    io(
                        format!(
                            "putting back {} a killed restore had moved aside; move it back to {} by hand",
                            old.join(n).display(),
                            target.display()
                        ),
                        e,
                    )
                })?;
            }
            warn(format!(
                "a restore was killed while swapping the contents of {}: put its {} previous entries back",
                target.display(),
                olds.len()
            ));
        }
        match remove(&work) {
            Ok(()) => warn(format!(
                "removed {} (the work directory of a killed restore)",
                work.display()
            )),
            Err(e) => warn(format!(
                "could not remove {} (the work directory of a killed restore): {e}; remove it by hand",
                work.display()
            )),
        }
    }
    Ok(())
}
