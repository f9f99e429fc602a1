//! The files around a database: private copies (0600 from creation) and their
//! `-wal`/`-shm`/`-journal` sidecars, the integrity check of a copy, and ownership
//! carried over to a restored file.

use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use drydock_domain::Event;
use rusqlite::{Connection, OpenFlags};

use crate::SourceContext;

/// Removes the `-wal`/`-shm`/`-journal` files SQLite may leave beside a temp file.
pub(super) struct Sidecars(pub(super) PathBuf);

impl Drop for Sidecars {
    fn drop(&mut self) {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = fs::remove_file(PathBuf::from(p));
        }
    }
}

pub(super) fn chown_like(path: &Path, uid: u32, gid: u32, ctx: &SourceContext<'_>) {
    let Ok(now) = fs::metadata(path) else { return };
    if now.uid() == uid && now.gid() == gid {
        return;
    }
    if let Err(e) = std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
        // Only root may give files away; the app may then not be able to write.
        if nix::unistd::geteuid().is_root() {
            ctx.events.emit(Event::Warning {
                message: format!(
                    "{}: could not set the restored file's owner to {uid}:{gid}: {e}",
                    ctx.label
                ),
            });
        }
    }
}

pub(super) fn create_private(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Opens a file only drydock uses (its copy, a fetched file) read-only and immutable:
/// no locks, no `-wal`/`-shm` files are created beside it.
pub(super) fn open_private_copy(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The page cache of the connection that checks a copy, in KiB: the check visits every
/// page of every b-tree, and through the default 2 MiB cache the kernel serves the same
/// pages again and again (measured with sqlite3 on a 187 MB database: 3.6-3.8 s with the
/// default, 2.7-2.9 s with 64 MiB). 64 MiB keeps a backup well inside its memory bound.
const CHECK_CACHE_KIB: i64 = 64 * 1024;

/// `PRAGMA integrity_check`; the error is SQLite's list of problems.
pub(super) fn integrity_check(conn: &Connection) -> Result<(), String> {
    let rows: Vec<String> = (|| {
        conn.pragma_update(None, "cache_size", -CHECK_CACHE_KIB)?;
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| e.to_string())?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    let lines: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("*** in database"))
        .collect();
    let mut text: Vec<&str> = lines.iter().take(5).copied().collect();
    let more = lines.len().saturating_sub(5);
    let more = format!("(and {more} more)");
    if lines.len() > 5 {
        text.push(&more);
    }
    Err(if text.is_empty() {
        "no details".to_string()
    } else {
        text.join("; ")
    })
}
