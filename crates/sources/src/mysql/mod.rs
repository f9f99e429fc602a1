//! MySQL and MariaDB: `mariadb-dump`/`mysqldump --single-transaction` of one database
//! as SQL, with counts and a fingerprint computed from the same point in time while the
//! dump streams; restored by piping the SQL into `mariadb`/`mysql`, beside the live
//! database first.
//!
//! Restore over existing data replays the dump into a scratch database, fingerprints it
//! against the manifest, and moves the verified tables in with one atomic `RENAME
//! TABLE` (the live ones move out to a database dropped afterwards). Views, triggers,
//! routines and events cannot move between databases by rename; with any of them the
//! proven dump is replayed into the recreated live database. Without the right to
//! create the scratch database the whole stream is read and checked against its SHA-256
//! before the live database is touched. The database's default character set and
//! collation are a fingerprint part (`schema:database`) and are given to the database
//! a restore creates or fills.
//!
//! Consistency. Neither server can share a snapshot between sessions, so drydock makes
//! two sessions start theirs at a moment when nothing can commit:
//!
//! 1. connection L takes `FLUSH TABLES WITH READ LOCK` (commits now wait);
//! 2. connection F starts `START TRANSACTION WITH CONSISTENT SNAPSHOT` (the global read
//!    lock does not block that): F sees exactly the data as of the lock;
//! 3. the dump tool starts and opens its own consistent-snapshot transaction, which sees
//!    the same data because nothing could commit in between;
//! 4. L unlocks once the dump's transaction is certainly open (see `read_past_header`),
//!    and F computes the fingerprint while the dump streams.
//!
//! The lock is held only from step 1 to the dump's first table (milliseconds); tables of
//! non-transactional engines (MyISAM, Aria, ...) are not covered by snapshots, so when the
//! database has any, the lock is held until the dump has finished instead.
//!
//! The dump names no database (no `--databases`, no `USE`): a restore goes into whatever
//! database the source is configured with, so a backup can be restored under another
//! name. Credentials reach the tools through a 0600 option file in the scratch directory,
//! passed as `--defaults-extra-file` (which must be the first argument).
//!
//! Fingerprint parts: one per base table, named by the table alone (like the dump, so a
//! restore under another database name compares equal), with count = rows and digest =
//! sum of an MD5 prefix of each row, computed server-side in one pass; and `schema:ddl`
//! (SHA-256 over the sorted `SHOW CREATE TABLE` texts without `AUTO_INCREMENT=N`,
//! triggers, routines and events).
//!
//! The stored dump proves the data: the stream stored is teed into
//! `crate::proof::SqlDumpChecker` on another thread as it is stored; the backup fails
//! with [`SourceError::IncompleteDump`] unless the stream ends with the `-- Dump
//! completed` trailer (drydock's `--skip-dump-date` only drops its date) with nothing
//! after it, and holds a `CREATE TABLE` and exactly the fingerprint's row count (INSERT
//! tuples) for every table of the fingerprint. The tools come from the source's
//! `bin_dir` when set, else PATH.
//!
//! Drills: a sandbox is a `_drydock_sandbox_XXXXXXXX` database on the same server with
//! the live database's character set and collation (the user needs ALL on
//! `\_drydock\_sandbox\_%`), dropped when the sandbox is dropped. The canary is row 1
//! of the InnoDB table `_drydock_canary`, fingerprinted like any other table.
//!
//! This file implements [`DataSource`]; the jobs it calls have a file each: `connect` (the
//! handle, connections, tools, the option file), `backup` (snapshot, header, proving the
//! dump), `fingerprint`, `restore` (replay beside, move in) and `sandbox`.

mod backup;
mod connect;
mod fingerprint;
mod restore;
mod sandbox;

use std::io::{Cursor, Read};

use drydock_domain::config::SourceKind;
use drydock_domain::SourceRecord;
use mysql::prelude::Queryable;

use crate::common::{self, expect_format, store_while_fingerprinting, SqlServer, CANARY_TABLE};
use crate::proof;
use crate::testdata::{
    self, FileRecord, Project, TestData, TestMeasures, User, SQL_FILES, SQL_PROJECTS, SQL_USERS,
};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

use backup::{prove_dump, read_past_header, TRANSACTIONAL_ENGINES};
use connect::{quote_ident, tool_is_mysql};
use restore::recorded_defaults;

pub use backup::FORMAT;
pub use connect::Mysql;

impl DataSource for Mysql {
    fn kind(&self) -> SourceKind {
        SourceKind::Mysql
    }

    fn location(&self) -> String {
        let base = common::location("mysql", &self.target);
        match &self.config.exec_in {
            Some(t) => format!("{base} (tools in service {}'s container)", t.service),
            None => base,
        }
    }

    fn restore_mode(&self) -> RestoreMode {
        RestoreMode::Logical
    }

    fn check(&self) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        conn.query_drop("SELECT 1")
            .map_err(|e| self.query_error("running SELECT 1", &e))
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let t = self.target()?;
        let loc = self.location();
        let mut lock = self.connect(t, Some(&t.db))?;
        let mut snap = self.connect(t, Some(&t.db))?;
        let mariadb = self.is_mariadb(&mut snap)?;
        let dump = self.tool(if mariadb {
            &["mariadb-dump", "mysqldump"]
        } else {
            &["mysqldump", "mariadb-dump"]
        })?;
        let mysql_tool = tool_is_mysql(&dump);
        let non_transactional: Vec<String> = snap
            .exec(
                format!(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' \
                     AND ENGINE NOT IN ({TRANSACTIONAL_ENGINES})"
                ),
                (&t.db,),
            )
            .map_err(|e| self.query_error("listing table engines", &e))?;

        lock.query_drop("SET SESSION lock_wait_timeout = 120")
            .map_err(|e| self.query_error("setting lock_wait_timeout", &e))?;
        lock.query_drop("FLUSH TABLES WITH READ LOCK").map_err(|e| match &e {
            mysql::Error::MySqlError(m) if m.code == 1227 => SourceError::invalid(
                &loc,
                format!(
                    "user '{}' may not take the global read lock a consistent backup needs; grant it: GRANT RELOAD ON *.* TO '{}'@...",
                    t.user, t.user
                ),
            ),
            _ => self.query_error("taking the global read lock", &e),
        })?;
        let consistent_at = jiff::Timestamp::now();
        let locked_at = std::time::Instant::now();
        self.start_snapshot(&mut snap)?;

        let options = self.option_file(t, ctx.scratch)?;
        let mut args = vec![
            format!("--defaults-extra-file={}", options.path()),
            "--single-transaction".to_string(),
            "--routines".into(),
            "--triggers".into(),
            "--events".into(),
            "--hex-blob".into(),
            "--no-tablespaces".into(),
            "--skip-dump-date".into(),
            "--default-character-set=utf8mb4".into(),
            "--max-allowed-packet=1G".into(),
        ];
        if mysql_tool {
            args.push("--set-gtid-purged=OFF".into());
        }
        args.extend(["--".to_string(), t.db.clone()]);
        let mut tool = self.spawn(&dump, &args, false, true)?;
        let mut stdout = tool.take_stdout();
        let hold_lock = !non_transactional.is_empty();
        if hold_lock {
            tracing::warn!(
                location = %loc,
                tables = %non_transactional.join(", "),
                "tables of non-transactional engines: writes wait until the dump has finished"
            );
        }

        let (stored, inspection) = store_while_fingerprinting(
            &mut tool,
            &loc,
            || self.fingerprint(&mut snap, &t.db),
            || {
                let head = read_past_header(&mut stdout)
                    .map_err(|e| SourceError::io(&loc, "reading the dump", e))?;
                if !hold_lock {
                    lock.query_drop("UNLOCK TABLES")
                        .map_err(|e| self.query_error("releasing the global read lock", &e))?;
                    tracing::debug!(location = %loc, held_ms = locked_at.elapsed().as_millis() as u64, "global read lock released");
                }
                // The bytes stored are read once more, as they pass, by the dump check.
                let (reader, checked) =
                    proof::tee(Box::new(Cursor::new(head).chain(stdout)), |mut input| {
                        let mut checker = proof::SqlDumpChecker::default();
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            match input.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => checker.feed(&buf[..n]),
                            }
                        }
                        checker.finish()
                    });
                let stored = store
                    .put_stream(reader, ".sql")
                    .map_err(|e| SourceError::store(&loc, e))?;
                Ok((stored, checked))
            },
        );
        drop(lock);
        drop(options);
        let inspection = inspection?;
        let (stored, checked) = stored?;
        tool.finish()?;
        let dumped = checked
            .join()
            .unwrap_or_else(|_| Err("its dump could not be checked (the check panicked)".into()))
            .and_then(|dumped| prove_dump(&dumped, &inspection.fingerprint))
            .map_err(|problem| SourceError::IncompleteDump {
                tool: dump
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                location: loc.clone(),
                problem,
            });
        dumped?;
        snap.query_drop("COMMIT")
            .map_err(|e| self.query_error("ending the snapshot transaction", &e))?;
        Ok(BackupOutcome {
            stored,
            format: FORMAT,
            counts: inspection.counts,
            fingerprint: inspection.fingerprint,
            consistent_at,
        })
    }

    fn has_data(&self) -> Result<bool, SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, None)?;
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (&t.db,),
            )
            .map_err(|e| self.query_error("looking for existing tables", &e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Never drops the live database before the backup is proven: see
    /// `Mysql::restore_beside` (restore.rs). A database that is missing or empty is
    /// filled directly.
    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let t = self.target()?;
        let loc = self.location();
        expect_format(record, FORMAT, "a MySQL dump", &loc)?;
        self.remove_killed_runs_scratch(t, ctx);
        let wanted = recorded_defaults(record);
        let mut admin = self.connect(t, None)?;
        match self.database_defaults(&mut admin, &t.db)? {
            None => {
                self.recreate_database(t, wanted.as_ref(), ctx)?;
                self.replay(t, fetch, ctx)
            }
            Some(_) if !self.has_data()? => {
                if let Some(w) = &wanted {
                    self.set_defaults(&mut admin, &t.db, w)?;
                }
                self.replay(t, fetch, ctx)
            }
            Some(_) => self.restore_beside(t, fetch, record, wanted.as_ref(), ctx),
        }
    }

    fn inspect(&self, _ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        self.start_snapshot(&mut conn)?;
        let inspection = self.fingerprint(&mut conn, &t.db)?;
        conn.query_drop("COMMIT")
            .map_err(|e| self.query_error("ending the snapshot transaction", &e))?;
        Ok(inspection)
    }

    /// A throwaway database `_drydock_sandbox_XXXXXXXX` on the same server; the user
    /// needs CREATE (and, to restore into it and drop it, ALL) on such databases.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let t = self.target()?;
        self.remove_killed_runs_scratch(t, ctx);
        Ok(Box::new(self.create_sandbox(t)?))
    }

    /// Replaces row 1 of the InnoDB table `_drydock_canary` (created when missing).
    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        // Checked first: CREATE TABLE IF NOT EXISTS needs CREATE even when the table is
        // there.
        if !self.canary_table_exists(t, &mut conn)? {
            conn.query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {} (id INT NOT NULL PRIMARY KEY, token TEXT NOT NULL, \
                 written_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                quote_ident(CANARY_TABLE)
            ))
            .map_err(|e| self.canary_error(t, "creating the drill canary table", &e))?;
        }
        conn.exec_drop(
            format!(
                "REPLACE INTO {} (id, token, written_at) VALUES (1, ?, UTC_TIMESTAMP(6))",
                quote_ident(CANARY_TABLE)
            ),
            (token,),
        )
        .map_err(|e| self.canary_error(t, "writing the drill canary", &e))
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        if !self.canary_table_exists(t, &mut conn)? {
            return Ok(None);
        }
        match conn.query_first::<String, _>(format!(
            "SELECT token FROM {} WHERE id = 1",
            quote_ident(CANARY_TABLE)
        )) {
            Ok(token) => Ok(token),
            // ER_NO_SUCH_TABLE: dropped since we looked.
            Err(mysql::Error::MySqlError(m)) if m.code == 1146 => Ok(None),
            Err(e) => Err(self.canary_error(t, "reading the drill canary", &e)),
        }
    }

    /// Drops the database when the user may (a restore creates it again), else every
    /// table and view in it.
    fn wipe(&self) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut admin = self.connect(t, None)?;
        let db = quote_ident(&t.db);
        if admin
            .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .is_ok()
        {
            return Ok(());
        }
        let mut conn = self.connect(t, Some(&t.db))?;
        let objects: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (&t.db,),
            )
            .map_err(|e| self.query_error("listing the tables to wipe", &e))?;
        conn.query_drop("SET FOREIGN_KEY_CHECKS = 0")
            .map_err(|e| self.query_error("wiping", &e))?;
        for (name, kind) in objects {
            let what = if kind == "VIEW" { "VIEW" } else { "TABLE" };
            conn.query_drop(format!("DROP {what} IF EXISTS {}", quote_ident(&name)))
                .map_err(|e| self.query_error(format!("dropping {name}"), &e))?;
        }
        Ok(())
    }

    fn populate(&self, data: &TestData) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        let err = |what: &str, e: &mysql::Error| {
            self.query_error(format!("populating test data: {what}"), e)
        };
        let (users, projects, files) = (
            quote_ident(SQL_USERS),
            quote_ident(SQL_PROJECTS),
            quote_ident(SQL_FILES),
        );
        for sql in [
            format!("DROP TABLE IF EXISTS {files}, {projects}, {users}"),
            format!("CREATE TABLE {users} (id BIGINT PRIMARY KEY, name VARCHAR(200) NOT NULL, email VARCHAR(200) NOT NULL UNIQUE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"),
            format!("CREATE TABLE {projects} (id BIGINT PRIMARY KEY, owner_id BIGINT NOT NULL, name VARCHAR(200) NOT NULL, FOREIGN KEY (owner_id) REFERENCES {users}(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"),
            format!("CREATE TABLE {files} (id BIGINT PRIMARY KEY, project_id BIGINT NOT NULL, name VARCHAR(200) NOT NULL, content LONGBLOB NOT NULL, FOREIGN KEY (project_id) REFERENCES {projects}(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"),
        ] {
            conn.query_drop(&sql).map_err(|e| err("creating the tables", &e))?;
        }
        let mut tx = conn
            .start_transaction(mysql::TxOpts::default())
            .map_err(|e| err("starting", &e))?;
        tx.exec_batch(
            format!("INSERT INTO {users} VALUES (?, ?, ?)"),
            data.users.iter().map(|u| (u.id, &u.name, &u.email)),
        )
        .map_err(|e| err("users", &e))?;
        tx.exec_batch(
            format!("INSERT INTO {projects} VALUES (?, ?, ?)"),
            data.projects.iter().map(|p| (p.id, p.owner_id, &p.name)),
        )
        .map_err(|e| err("projects", &e))?;
        tx.exec_batch(
            format!("INSERT INTO {files} VALUES (?, ?, ?, ?)"),
            data.files
                .iter()
                .map(|f| (f.id, f.project_id, &f.name, &f.content)),
        )
        .map_err(|e| err("files", &e))?;
        tx.commit().map_err(|e| err("committing", &e))
    }

    fn measure_test_data(&self) -> Result<TestMeasures, SourceError> {
        let t = self.target()?;
        let mut conn = self.connect(t, Some(&t.db))?;
        let err = |e: &mysql::Error| self.query_error("measuring the test data", e);
        let present: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?)",
                (&t.db, SQL_USERS, SQL_PROJECTS, SQL_FILES),
            )
            .map_err(|e| err(&e))?;
        if present != Some(3) {
            return Ok(testdata::measure(&[], &[], &[]));
        }
        let users = conn
            .query_map(
                format!("SELECT id, name, email FROM {}", quote_ident(SQL_USERS)),
                |(id, name, email)| User { id, name, email },
            )
            .map_err(|e| err(&e))?;
        let projects = conn
            .query_map(
                format!(
                    "SELECT id, owner_id, name FROM {}",
                    quote_ident(SQL_PROJECTS)
                ),
                |(id, owner_id, name)| Project { id, owner_id, name },
            )
            .map_err(|e| err(&e))?;
        let files = conn
            .query_map(
                format!(
                    "SELECT id, project_id, name, content FROM {}",
                    quote_ident(SQL_FILES)
                ),
                |(id, project_id, name, content)| FileRecord {
                    id,
                    project_id,
                    name,
                    content,
                },
            )
            .map_err(|e| err(&e))?;
        Ok(testdata::measure(&users, &projects, &files))
    }
}
