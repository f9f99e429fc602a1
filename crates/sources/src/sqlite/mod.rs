//! SQLite databases (files).
//!
//! Backup copies the live database with SQLite's online backup API in a single step,
//! i.e. one read transaction: the copy is one consistent state even while the app
//! writes (WAL or rollback journal). The copy is integrity-checked, counted and
//! fingerprinted while it is stored (three readers of the same file, on two cores the
//! check sets the pace), so the manifest describes exactly the stored bytes, and a copy
//! that fails the check fails the backup. Restore is file-level (the owning service is stopped by the engine): the
//! stored file is fetched beside the target, checked, and renamed over it.
//!
//! This file implements [`DataSource`] (the handle, backup, restore, sandboxes and the
//! canary); `fingerprint` describes a database file and `files` handles private copies,
//! their sidecars, integrity checks and ownership.

mod files;
mod fingerprint;

use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drydock_domain::config::{SourceKind, SqliteSource};
use drydock_domain::{Event, SourceRecord};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::common::{joined, store_file};
use crate::scratch;
use crate::testdata::{
    self, FileRecord, Project, TestData, TestMeasures, User, SQL_FILES, SQL_PROJECTS, SQL_USERS,
};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

use files::{chown_like, create_private, integrity_check, open_private_copy, Sidecars};
use fingerprint::HashingWriter;

pub use fingerprint::describe;
pub use fingerprint::SCHEMA_PART;

/// How long the backup waits for a lock the app holds (rollback-journal mode).
const LOCK_WAIT: Duration = Duration::from_secs(60);

pub struct Sqlite {
    config: SqliteSource,
}

impl Sqlite {
    /// Puts right what a killed restore left beside the database (see `scratch`).
    fn recover(&self, ctx: &SourceContext<'_>) -> Result<(), SourceError> {
        scratch::recover(&self.scratch_target()?, &self.loc(), ctx)
    }

    /// Where a restore's scratch entries are: beside the file, a symlink followed (a
    /// restore with `follow_symlink` works there).
    fn scratch_target(&self) -> Result<PathBuf, SourceError> {
        scratch::restore_target(self.path(), true, &self.loc())
    }

    pub fn new(config: SqliteSource) -> Self {
        Sqlite { config }
    }

    fn path(&self) -> &Path {
        &self.config.path
    }

    fn loc(&self) -> String {
        self.location()
    }

    /// Fails clearly when the database file is not there (never creates one).
    fn require_file(&self) -> Result<fs::Metadata, SourceError> {
        match fs::metadata(self.path()) {
            Ok(m) if m.is_file() => Ok(m),
            Ok(_) => Err(SourceError::invalid(
                &self.loc(),
                format!(
                    "{} is not a file; point `path` at the SQLite database file",
                    self.path().display()
                ),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(SourceError::invalid(
                &self.loc(),
                format!(
                    "database file {} does not exist; check `path` in drydock.toml",
                    self.path().display()
                ),
            )),
            Err(e) => Err(SourceError::io(
                &self.loc(),
                format!("cannot access {}", self.path().display()),
                e,
            )),
        }
    }

    /// Opens the live database without ever creating it: read-write when drydock may
    /// (so WAL files can be shared with the app), else read-only.
    fn open_live(&self, read_only: bool) -> Result<Connection, SourceError> {
        self.require_file()?;
        let base = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if read_only {
            Connection::open_with_flags(self.path(), base | OpenFlags::SQLITE_OPEN_READ_ONLY)
        } else {
            Connection::open_with_flags(self.path(), base | OpenFlags::SQLITE_OPEN_READ_WRITE)
                .or_else(|_| {
                    Connection::open_with_flags(
                        self.path(),
                        base | OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )
                })
        }
        .map_err(|e| self.sqlite_err("opening the database", e))?;
        conn.busy_timeout(LOCK_WAIT)
            .map_err(|e| self.sqlite_err("setting the lock timeout", e))?;
        Ok(conn)
    }

    fn sqlite_err(&self, what: &str, e: rusqlite::Error) -> SourceError {
        sqlite_error(&self.loc(), self.path(), what, e)
    }
}

fn sqlite_error(loc: &str, path: &Path, what: &str, e: rusqlite::Error) -> SourceError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::NotADatabase {
            return SourceError::invalid(
                loc,
                format!(
                    "{} is not a SQLite database (or is encrypted or corrupt): {e}",
                    path.display()
                ),
            );
        }
        if f.code == rusqlite::ErrorCode::DatabaseCorrupt {
            return SourceError::invalid(
                loc,
                format!(
                    "{} is corrupt: {e}; repair it (sqlite3 .recover) before backing it up",
                    path.display()
                ),
            );
        }
    }
    SourceError::query(loc, what, e)
}

impl DataSource for Sqlite {
    fn kind(&self) -> SourceKind {
        SourceKind::Sqlite
    }

    fn location(&self) -> String {
        format!("sqlite {}", self.path().display())
    }

    fn restore_mode(&self) -> RestoreMode {
        RestoreMode::FileLevel
    }

    fn check(&self) -> Result<(), SourceError> {
        scratch::recover_logged(&self.scratch_target()?, &self.loc())?;
        let conn = self.open_live(true)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| self.sqlite_err("reading the schema", e))?;
        Ok(())
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let loc = self.loc();
        self.recover(ctx)?;
        let src = self.open_live(false)?;
        let work = tempfile::Builder::new()
            .prefix("sqlite-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating a scratch directory", e))?;
        let copy = work.path().join("copy.sqlite");
        create_private(&copy).map_err(|e| SourceError::io(&loc, "creating the private copy", e))?;

        let consistent_at = {
            let mut dst = Connection::open_with_flags(
                &copy,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| SourceError::query(&loc, "opening the copy", e))?;
            let backup = Backup::new(&src, &mut dst)
                .map_err(|e| self.sqlite_err("starting the online backup", e))?;
            let deadline = Instant::now() + LOCK_WAIT;
            loop {
                // All pages in one step: one read transaction, one consistent state.
                match backup.step(-1).map_err(|e| self.sqlite_err("copying the database", e))? {
                    StepResult::Done => break,
                    StepResult::More => continue,
                    StepResult::Busy | StepResult::Locked if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    StepResult::Busy | StepResult::Locked => {
                        return Err(SourceError::invalid(
                            &loc,
                            format!("the database stayed locked for {}s; is a long write transaction running?", LOCK_WAIT.as_secs()),
                        ))
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            let at = drydock_domain::clock::now();
            drop(backup);
            dst.close()
                .map_err(|(_, e)| SourceError::query(&loc, "closing the copy", e))?;
            at
        };
        drop(src);

        // Check, describe and store the copy at once, each reading the same file (the
        // page cache serves all three): the manifest describes exactly the stored bytes,
        // and a copy that fails the check fails the backup, whose stored bytes the
        // engine then discards. One after the other, the check alone took most of the
        // backup's time (BENCHMARKS.md).
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: checking, fingerprinting and storing the database copy",
                ctx.label
            ),
        });
        let open_copy = || {
            open_private_copy(&copy).map_err(|e| sqlite_error(&loc, &copy, "opening the copy", e))
        };
        let (checked, described, stored) = std::thread::scope(|s| {
            let checked = s.spawn(|| {
                integrity_check(&open_copy()?).map_err(|m| SourceError::invalid(&loc, format!("the backup copy fails the integrity check: {m}; the live database may be corrupt")))
            });
            let described = s.spawn(|| {
                describe(&open_copy()?)
                    .map_err(|e| SourceError::query(&loc, "fingerprinting the copy", e))
            });
            let stored = store_file(store, &copy, ".sqlite", &loc, "the copy");
            (
                joined(checked.join(), &loc, "the integrity check"),
                joined(described.join(), &loc, "fingerprinting the copy"),
                stored,
            )
        });
        checked?;
        let (counts, fingerprint) = described?;
        let stored = stored?;
        Ok(BackupOutcome {
            stored,
            format: "sqlite-db",
            counts,
            fingerprint,
            consistent_at,
        })
    }

    fn has_data(&self) -> Result<bool, SourceError> {
        // Asked before any restore changes anything: a refused symlink stops it here.
        scratch::restore_target(self.path(), self.config.follow_symlink, &self.loc())?;
        match fs::metadata(self.path()) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(SourceError::io(
                    &self.loc(),
                    "cannot access the database file",
                    e,
                ))
            }
            Ok(m) if m.len() == 0 => return Ok(false),
            Ok(_) => {}
        }
        let tables = self.open_live(true).and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.sqlite_err("reading the schema", e))
        });
        match tables {
            Ok(n) => Ok(n > 0),
            // Unreadable bytes are still something a restore would replace.
            Err(SourceError::Invalid { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.loc();
        let io = |what: &str, e: std::io::Error| SourceError::io(&loc, what.to_string(), e);
        self.recover(ctx)?;
        // A symlink is refused unless `follow_symlink`; then its target is replaced and
        // the link stays.
        let target = scratch::restore_target(self.path(), self.config.follow_symlink, &loc)?;
        let name = target
            .file_name()
            .ok_or_else(|| SourceError::invalid(&loc, "`path` names no file"))?
            .to_os_string();
        let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io(&format!("creating {}", dir.display()), e))?;
        let old = match fs::metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot access the target", e)),
        };

        // Fetch beside the target (same filesystem, so the final rename is atomic).
        let prefix = scratch::prefix(&name, "restore");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)
            .map_err(|e| io("creating a temporary file beside the target", e))?;
        let tmp_path = tmp.path().to_path_buf();
        let _sidecars = Sidecars(tmp_path.clone());
        let sha = {
            let mut out = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, tmp.as_file()),
                hash: Sha256::new(),
            };
            fetch.stream_into(&mut out).map_err(|e| {
                scratch::target_full(&dir, &e.0, &loc)
                    .unwrap_or_else(|| SourceError::store(&loc, e))
            })?;
            out.inner.flush().map_err(|e| {
                scratch::target_full(&dir, &e.to_string(), &loc)
                    .unwrap_or_else(|| io("writing the fetched database", e))
            })?;
            hex::encode(out.hash.finalize())
        };
        if let Some(want) = &record.sha256 {
            if !want.eq_ignore_ascii_case(&sha) {
                return Err(SourceError::invalid(&loc, format!("the fetched database does not match the backup's checksum (sha256 {sha}, expected {want}); the stored copy is damaged")));
            }
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| io("syncing the fetched database", e))?;
        {
            let conn = open_private_copy(&tmp_path)
                .map_err(|e| sqlite_error(&loc, &tmp_path, "opening the fetched database", e))?;
            integrity_check(&conn).map_err(|m| {
                SourceError::invalid(
                    &loc,
                    format!("the fetched database fails the integrity check: {m}"),
                )
            })?;
        }

        match &old {
            Some(m) => {
                fs::set_permissions(&tmp_path, fs::Permissions::from_mode(m.mode() & 0o7777))
                    .map_err(|e| io("keeping the file's mode", e))?;
                chown_like(&tmp_path, m.uid(), m.gid(), ctx);
            }
            None => {
                if let Ok(d) = fs::metadata(&dir) {
                    chown_like(&tmp_path, d.uid(), d.gid(), ctx);
                }
            }
        }

        if old.is_some() {
            ctx.before_replacing_live("replacing the database file")?;
        }
        // The old database and its journals move aside together, under one name plus
        // their suffixes, so they stay a pair SQLite can open: its `-wal` may hold
        // commits not yet in the main file, and a stale journal must never meet the new
        // file. Only once the new file is in place do they go. A crash in between is put
        // right by the next operation on the source (`scratch::recover`): a missing
        // target gets the old pair back.
        let mut aside_name = scratch::prefix(&name, "old");
        aside_name.push(scratch::random_part());
        let aside = dir.join(aside_name);
        let with = |p: &Path, suffix: &str| {
            let mut s = p.as_os_str().to_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        let mut moved = Vec::new();
        let undo = |moved: &[(PathBuf, PathBuf)]| {
            for (from, to) in moved.iter().rev() {
                let _ = fs::rename(to, from);
            }
        };
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let from = with(&target, suffix);
            let to = with(&aside, suffix);
            match fs::rename(&from, &to) {
                Ok(()) => moved.push((from, to)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    undo(&moved);
                    return Err(io(
                        &format!(
                            "moving the old database's {} aside",
                            if suffix.is_empty() { "file" } else { suffix }
                        ),
                        e,
                    ));
                }
            }
            if suffix.is_empty() {
                scratch::failpoint("sqlite-restore-moved-aside");
            }
        }
        if let Err(e) = tmp.persist(&target) {
            undo(&moved);
            return Err(io("moving the restored database into place", e.error));
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing the directory", e))?;
        scratch::failpoint("sqlite-restore-moved-in");
        for (_, to) in &moved {
            if let Err(e) = fs::remove_file(to) {
                ctx.events.emit(Event::Warning {
                    message: format!(
                        "{}: the previous database file {} is left: {e}; remove it by hand",
                        ctx.label,
                        to.display()
                    ),
                });
            }
        }
        Ok(())
    }

    fn inspect(&self, ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        self.recover(ctx)?;
        let conn = self.open_live(true)?;
        let (counts, fingerprint) =
            describe(&conn).map_err(|e| self.sqlite_err("fingerprinting the database", e))?;
        Ok(Inspection {
            counts,
            fingerprint,
        })
    }

    /// A path `ctx.scratch/sandbox-XXXX/<file name>` that does not exist yet; the
    /// ordinary restore creates the file there.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let loc = self.loc();
        let name = self
            .path()
            .file_name()
            .ok_or_else(|| SourceError::invalid(&loc, "`path` names no file"))?
            .to_os_string();
        let dir = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating the sandbox directory", e))?;
        let target = Sqlite::new(SqliteSource {
            name: self.config.name.clone(),
            priority: self.config.priority,
            path: dir.path().join(name),
            follow_symlink: false,
        });
        Ok(Box::new(SqliteSandbox { target, _dir: dir }))
    }

    /// Row 1 of `_drydock_canary`, created when missing, in one write transaction. The
    /// database must exist and be writable: it is never created.
    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        self.require_file()?;
        let mut conn = Connection::open_with_flags(
            self.path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.sqlite_err("opening the database to write the drill canary", e))?;
        conn.busy_timeout(LOCK_WAIT)
            .map_err(|e| self.sqlite_err("setting the lock timeout", e))?;
        let what = format!("writing the drill canary ({CANARY_TABLE})");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite_err(&what, e))?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {CANARY_TABLE} (id INTEGER PRIMARY KEY, token TEXT NOT NULL, written_at TEXT NOT NULL)"
        ))
        .map_err(|e| self.sqlite_err(&what, e))?;
        tx.execute(
            &format!(
                "INSERT OR REPLACE INTO {CANARY_TABLE} (id, token, written_at) VALUES (1, ?1, ?2)"
            ),
            rusqlite::params![token, jiff::Timestamp::now().to_string()],
        )
        .map_err(|e| self.sqlite_err(&what, e))?;
        tx.commit().map_err(|e| self.sqlite_err(&what, e))?;
        Ok(())
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let conn = self.open_live(true)?;
        let what = format!("reading the drill canary ({CANARY_TABLE})");
        let exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [CANARY_TABLE],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite_err(&what, e))?;
        if exists == 0 {
            return Ok(None);
        }
        conn.query_row(
            &format!("SELECT token FROM {CANARY_TABLE} WHERE id = 1"),
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(|e| self.sqlite_err(&what, e))
    }

    /// Deletes the database file and its journal/WAL sidecars.
    fn wipe(&self) -> Result<(), SourceError> {
        let mut names = vec![self.path().to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = self.path().as_os_str().to_owned();
            name.push(suffix);
            names.push(PathBuf::from(name));
        }
        for path in names {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(SourceError::io(
                        &self.loc(),
                        format!("deleting {}", path.display()),
                        e,
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Three tables with foreign keys, in one transaction; the file must exist (as for
    /// the canary, drydock never creates the app's database).
    fn populate(&self, data: &TestData) -> Result<(), SourceError> {
        let mut conn = self.open_live(false)?;
        let what = "populating test data";
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite_err(what, e))?;
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {SQL_FILES}; DROP TABLE IF EXISTS {SQL_PROJECTS}; DROP TABLE IF EXISTS {SQL_USERS};
             CREATE TABLE {SQL_USERS} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
             CREATE TABLE {SQL_PROJECTS} (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES {SQL_USERS}(id), name TEXT NOT NULL);
             CREATE TABLE {SQL_FILES} (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES {SQL_PROJECTS}(id), name TEXT NOT NULL, content BLOB NOT NULL);"
        ))
        .map_err(|e| self.sqlite_err(what, e))?;
        for u in &data.users {
            tx.execute(
                &format!("INSERT INTO {SQL_USERS} VALUES (?1, ?2, ?3)"),
                rusqlite::params![u.id, u.name, u.email],
            )
            .map_err(|e| self.sqlite_err(what, e))?;
        }
        for p in &data.projects {
            tx.execute(
                &format!("INSERT INTO {SQL_PROJECTS} VALUES (?1, ?2, ?3)"),
                rusqlite::params![p.id, p.owner_id, p.name],
            )
            .map_err(|e| self.sqlite_err(what, e))?;
        }
        for f in &data.files {
            tx.execute(
                &format!("INSERT INTO {SQL_FILES} VALUES (?1, ?2, ?3, ?4)"),
                rusqlite::params![f.id, f.project_id, f.name, f.content],
            )
            .map_err(|e| self.sqlite_err(what, e))?;
        }
        tx.commit().map_err(|e| self.sqlite_err(what, e))
    }

    fn measure_test_data(&self) -> Result<TestMeasures, SourceError> {
        let conn = self.open_live(true)?;
        let what = "measuring the test data";
        let present: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2, ?3)",
                [SQL_USERS, SQL_PROJECTS, SQL_FILES],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite_err(what, e))?;
        if present != 3 {
            return Ok(testdata::measure(&[], &[], &[]));
        }
        // Types are read loosely (a wrong type measures as a difference, not an error).
        let int = |r: &rusqlite::Row<'_>, i: usize| r.get::<_, i64>(i).unwrap_or(-1);
        let text = |r: &rusqlite::Row<'_>, i: usize| r.get::<_, String>(i).unwrap_or_default();
        let err = |e| self.sqlite_err(what, e);
        let users = query_all(
            &conn,
            &format!("SELECT id, name, email FROM {SQL_USERS}"),
            |r| {
                Ok(User {
                    id: int(r, 0),
                    name: text(r, 1),
                    email: text(r, 2),
                })
            },
        )
        .map_err(err)?;
        let projects = query_all(
            &conn,
            &format!("SELECT id, owner_id, name FROM {SQL_PROJECTS}"),
            |r| {
                Ok(Project {
                    id: int(r, 0),
                    owner_id: int(r, 1),
                    name: text(r, 2),
                })
            },
        )
        .map_err(err)?;
        let files = query_all(
            &conn,
            &format!("SELECT id, project_id, name, content FROM {SQL_FILES}"),
            |r| {
                Ok(FileRecord {
                    id: int(r, 0),
                    project_id: int(r, 1),
                    name: text(r, 2),
                    content: r.get::<_, Vec<u8>>(3).unwrap_or_default(),
                })
            },
        )
        .map_err(err)?;
        Ok(testdata::measure(&users, &projects, &files))
    }
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    rows.collect()
}

/// The table holding the drill canary (row 1).
pub const CANARY_TABLE: &str = "_drydock_canary";

/// A database path under the scratch directory; dropping it removes its directory.
struct SqliteSandbox {
    target: Sqlite,
    _dir: tempfile::TempDir,
}

impl Sandbox for SqliteSandbox {
    fn target(&self) -> &dyn DataSource {
        &self.target
    }

    fn describe(&self) -> String {
        format!("temporary file {}", self.target.path().display())
    }
}
