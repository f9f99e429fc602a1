//! PostgreSQL: `pg_dump --format=custom --compress=0` of one database, taken from an
//! exported snapshot, its rows counted in that same snapshot while the dump streams and
//! digested from the archive as it is stored; restored with `pg_restore` beside the live
//! database and swapped in.
//!
//! Restore never drops the live database first. Over existing data the archive goes
//! into a scratch database (made like a drill sandbox), which is fingerprinted against
//! the manifest; only a verified copy is swapped in, by renaming both databases in one
//! transaction after ending the live database's sessions, and the old one is dropped.
//! A damaged pack, a truncated archive or a killed `pg_restore` therefore cost nothing
//! but the scratch database. A user without CREATEDB (or not owning the database)
//! cannot do that: the archive is then restored into the live database with `--clean`
//! in one transaction, which a failure rolls back.
//!
//! Consistency: one connection opens a `REPEATABLE READ READ ONLY` transaction and
//! exports its snapshot; `pg_dump --snapshot` dumps exactly that snapshot, and the same
//! transaction counts every table's rows and describes the schema, so both describe the
//! same data even while writers run. The transaction stays open until `pg_dump` has
//! finished.
//!
//! Sequences are not transactional: `pg_dump` reads their values when it gets to them,
//! not at the snapshot. So the `seq:` parts of a backup's fingerprint are taken from
//! the `setval` statements in the archive's own table of contents (which `pg_dump`
//! writes first, before any table data): the manifest then says what was dumped, not
//! what the sequence happened to hold a moment earlier.
//!
//! Fingerprint parts: `schema.table` per user table (count = rows, digest = an
//! order-independent sum of the XXH3-128 hash of each row as COPY writes it, `x3:`),
//! `seq:schema.name` per
//! sequence (count 0, digest `last_value:is_called`), and `schema:ddl` (SHA-256 over a
//! sorted, OID-free description of relations, columns, constraints, indexes, views,
//! triggers, functions, sequences and enums). Objects that belong to extensions are left
//! out: their extension recreates them.
//!
//! One read of the data serves the dump, the proof and the digest: the table digests
//! of a backup come from the rows of the archive as it is stored (`proof::CopyRows`),
//! and a restored or live database is read back with `COPY ... TO STDOUT` in the same
//! text (the session writes values as `pg_dump`'s does: time zone, byte arrays, float
//! digits, styles) and digested the same way. The snapshot itself only counts rows
//! (`count(*)`, the independent proof that the archive holds every row). Backups made
//! before this digest hold a server-side one (`h64:`, `md5:`), which a comparison with
//! them computes again (`DataSource::inspect_as`).
//!
//! The archive is not compressed by `pg_dump`: the repository compresses what it stores
//! (zstd) after cutting it into content-defined chunks, and a zlib stream would change
//! in every chunk after the first changed row, so a week of daily dumps would store
//! seven whole dumps. Uncompressed, the rows that did not change dedup against the day
//! before (`bench/churn`), and the CPU zlib cost on the critical path goes too. Older
//! archives (compressed) still restore and prove: the archive says how it is stored.
//!
//! The stored archive proves the data: the bytes stored are teed into
//! `crate::proof::read_pg_archive` on another thread as they are stored, which reads
//! the custom format itself (rather than through `pg_restore --file=-`, which stops
//! reading at the last block it needs and so cannot see garbage after it, and would cost
//! a process per backup, inside the container with `exec = true`); the backup fails with
//! [`SourceError::IncompleteDump`] unless every table the snapshot counted has its
//! data block with exactly that many COPY rows, every `seq:` part its `setval`,
//! every entry with data its block, and nothing follows the last block. The tools come
//! from the source's `bin_dir` when set.
//!
//! Drills: a sandbox is a `_drydock_sandbox_XXXXXXXX` database on the same server
//! (`CREATE DATABASE ... OWNER <url user> TEMPLATE template0`, with the live database's
//! encoding and locale; needs CREATEDB), restored and inspected like any target and
//! dropped `WITH (FORCE)` when the sandbox is dropped. The canary is row 1 of
//! `public._drydock_canary`, fingerprinted like any other table.
//!
//! This file implements [`DataSource`]; the jobs it calls have a file each: `connect` (the
//! handle, connections, tools, quoting), `fingerprint`, `backup` (proving the archive),
//! `restore` (placement and the swap) and `sandbox` (drill databases and the canary).

mod backup;
mod connect;
mod fingerprint;
mod restore;
mod sandbox;

use std::sync::{Arc, Mutex};

use drydock_domain::config::SourceKind;
use drydock_domain::{Event, Fingerprint, SourceRecord};
use postgres::error::SqlState;

use crate::common::{self, expect_format, store_while_fingerprinting, SqlServer, CANARY_TABLE};
use crate::proof;
use crate::testdata::{
    self, FileRecord, Project, TestData, TestMeasures, User, SQL_FILES, SQL_PROJECTS, SQL_USERS,
};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

use backup::{incomplete, prove_archive, PrefixTee};
use connect::force_drop_database;
use fingerprint::{RowDigest, USER_OBJECT};
use restore::Placement;

pub use backup::FORMAT;
pub use connect::Postgres;

impl DataSource for Postgres {
    fn kind(&self) -> SourceKind {
        SourceKind::Postgres
    }

    fn location(&self) -> String {
        let base = common::location("postgres", &self.target);
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
        let mut client = self.connect(t, &t.db)?;
        client
            .simple_query("SELECT 1")
            .map_err(|e| self.query_error("running SELECT 1", &e))?;
        Ok(())
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let t = self.target()?;
        let loc = self.location();
        let mut client = self.snapshot_connection(t)?;
        let major = self.server_major(&mut client)?;
        let pg_dump = self.program("pg_dump", major)?;
        // Taken just before the snapshot: every commit up to here is in it (and perhaps
        // a few after), so RPO computed from it errs on the safe side.
        let consistent_at = jiff::Timestamp::now();
        let snapshot: String = client
            .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
            .map_err(|e| self.query_error("exporting the snapshot", &e))?
            .get(0);

        let mut args = vec![
            "--format=custom".to_string(),
            // See the module doc: the repository compresses, after deduplicating.
            "--compress=0".to_string(),
            format!("--snapshot={snapshot}"),
        ];
        // Quoted, so the names match exactly (no case folding, no patterns).
        args.extend(self.config.exclude_tables.iter().map(|t| {
            let (schema, table) = t.split_once('.').unwrap_or(("public", t));
            format!("--exclude-table=\"{schema}\".\"{table}\"")
        }));
        args.extend(self.connection_args(t, &t.db));
        let mut tool = self.spawn_dump(&pg_dump, &args)?;
        let prefix = Arc::new(Mutex::new(Vec::new()));
        // The bytes stored are read once more, as they pass, by the archive check.
        let (reader, archive) = proof::tee(
            Box::new(PrefixTee {
                inner: tool.take_stdout(),
                prefix: Arc::clone(&prefix),
            }),
            proof::read_pg_archive,
        );

        // The dump streams into the store on this thread; the same transaction counts
        // the rows on another, at the same time (the digests come from the archive).
        let (stored, inspection) = store_while_fingerprinting(
            &mut tool,
            &loc,
            || self.fingerprint(&mut client, RowDigest::CountOnly),
            || store.put_stream(reader, ".pgdump"),
        );
        let mut inspection = inspection?;
        let stored = stored.map_err(|e| SourceError::store(&loc, e))?;
        tool.finish()?;
        let archive = archive
            .join()
            .unwrap_or_else(|_| Err("its archive could not be checked (the check panicked)".into()))
            .map_err(|problem| incomplete(&pg_dump, &loc, problem))?;
        inspection.fingerprint = prove_archive(&archive, &inspection.fingerprint)
            .map_err(|problem| incomplete(&pg_dump, &loc, problem))?;

        let prefix = std::mem::take(&mut *prefix.lock().unwrap());
        if let Some(dumped) = self.dumped_sequences(&mut client, &prefix, ctx.scratch, major)? {
            let mut parts = inspection.fingerprint.parts.clone();
            parts.extend(dumped);
            inspection.fingerprint = Fingerprint::from_parts(parts);
        }
        client
            .batch_execute("COMMIT")
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
        let mut client = match self.raw_connect(t, &t.db) {
            Ok(c) => c,
            Err(e)
                if e.as_db_error()
                    .is_some_and(|d| *d.code() == SqlState::INVALID_CATALOG_NAME) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(self.connect_error(t, &t.db, &e)),
        };
        let row = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind IN ('r', 'p', 'S') AND {USER_OBJECT})"
                ),
                &[],
            )
            .map_err(|e| self.query_error("looking for existing tables", &e))?;
        Ok(row.get(0))
    }

    /// Never drops the live database first: see `Postgres::restore_beside`
    /// (restore.rs); without the right to create databases, the archive is restored into
    /// the live database with `--clean` in one transaction, so a failure rolls it back.
    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let t = self.target()?;
        let loc = self.location();
        expect_format(record, FORMAT, "a PostgreSQL archive", &loc)?;
        self.remove_killed_runs_scratch(t, ctx);
        let (placement, major) = self.placement(t)?;
        match placement {
            Placement::Fresh => self.pg_restore_into(t, major, fetch, false),
            Placement::Beside => self.restore_beside(t, major, fetch, record, ctx),
            Placement::InPlace => {
                let message = format!(
                    "user \"{}\" may not create databases, so the backup cannot be restored and verified beside database \"{}\" first; restoring into it in one transaction instead (a failure rolls it back; objects not in the backup stay)",
                    t.user, t.db
                );
                tracing::warn!(location = %loc, "{message}");
                ctx.events.emit(Event::Warning {
                    message: format!("{}: {message}", ctx.label),
                });
                ctx.before_replacing_live(&format!(
                    "restoring into database \"{}\" in one transaction",
                    t.db
                ))?;
                self.pg_restore_into(t, major, fetch, true)
            }
        }
    }

    fn inspect(&self, _ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        self.inspect_rows(RowDigest::Copy)
    }

    /// Backups made before the `x3:` digest hold server-side row digests: those are
    /// computed again to compare with them.
    fn inspect_as(
        &self,
        record: &SourceRecord,
        _ctx: &SourceContext<'_>,
    ) -> Result<Inspection, SourceError> {
        self.inspect_rows(RowDigest::of(record.fingerprint.as_ref()))
    }

    /// A throwaway database `_drydock_sandbox_XXXXXXXX` on the same server, created from
    /// `template0` and owned by the url's user; the user needs CREATEDB.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let t = self.target()?;
        self.remove_killed_runs_scratch(t, ctx);
        Ok(Box::new(self.create_sandbox(t)?))
    }

    /// Upserts row 1 of `public._drydock_canary` (created when missing).
    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut client = self.connect(t, &t.db)?;
        // Checked first: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when
        // the table is there.
        if !self.canary_table_exists(t, &mut client)? {
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS public.{CANARY_TABLE} \
                     (id int PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL)"
                ))
                .map_err(|e| self.canary_error(t, "creating the drill canary table", &e))?;
        }
        client
            .execute(
                &format!(
                    "INSERT INTO public.{CANARY_TABLE} (id, token, written_at) VALUES (1, $1, pg_catalog.now()) \
                     ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, written_at = EXCLUDED.written_at"
                ),
                &[&token],
            )
            .map_err(|e| self.canary_error(t, "writing the drill canary", &e))?;
        Ok(())
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let t = self.target()?;
        let mut client = self.connect(t, &t.db)?;
        if !self.canary_table_exists(t, &mut client)? {
            return Ok(None);
        }
        match client.query_opt(
            &format!("SELECT token FROM public.{CANARY_TABLE} WHERE id = 1"),
            &[],
        ) {
            Ok(row) => Ok(row.map(|r| r.get(0))),
            // Dropped since we looked.
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(e) => Err(self.canary_error(t, "reading the drill canary", &e)),
        }
    }

    /// Tables of `exclude_tables` that exist in the live database.
    fn left_out(&self) -> Result<Vec<String>, SourceError> {
        if self.config.exclude_tables.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.target()?;
        let mut client = self.connect(t, &t.db)?;
        let rows = client
            .query(
                "SELECT format('%s.%s', n.nspname, c.relname) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND format('%s.%s', n.nspname, c.relname) = ANY($1::text[]) ORDER BY 1",
                &[&self.config.exclude_tables],
            )
            .map_err(|e| self.query_error("looking for excluded tables", &e))?;
        Ok(rows
            .iter()
            .map(|r| {
                format!(
                    "table {} exists but is excluded from every backup (`exclude_tables` in drydock.toml): a restore would lose it",
                    r.get::<_, String>(0)
                )
            })
            .collect())
    }

    /// Drops the database when the user may (a restore creates it again), else every
    /// object the user owns in it.
    fn wipe(&self) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut admin = self.maintenance_connection(t)?;
        let major = self.server_major(&mut admin)?;
        let row = admin
            .query_one(
                "SELECT r.rolsuper OR r.rolcreatedb, d.datname IS NOT NULL, \
                        r.rolsuper OR coalesce(pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER'), false) \
                 FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_database d ON d.datname = $1 \
                 WHERE r.rolname = current_user",
                &[&t.db],
            )
            .map_err(|e| self.query_error("checking the database to wipe", &e))?;
        let (can_create, exists, owns): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        if !exists {
            return Ok(());
        }
        if can_create && owns {
            return force_drop_database(&mut admin, &t.db, major, true)
                .map_err(|e| self.query_error(format!("dropping database \"{}\"", t.db), &e));
        }
        drop(admin);
        let mut client = self.connect(t, &t.db)?;
        client
            .batch_execute("DROP OWNED BY CURRENT_USER CASCADE")
            .map_err(|e| self.query_error("dropping every object of the user", &e))
    }

    fn populate(&self, data: &TestData) -> Result<(), SourceError> {
        let t = self.target()?;
        let mut client = self.connect(t, &t.db)?;
        let err = |what: &str, e: &postgres::Error| {
            self.query_error(format!("populating test data: {what}"), e)
        };
        let mut tx = client.transaction().map_err(|e| err("starting", &e))?;
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{SQL_FILES}, public.{SQL_PROJECTS}, public.{SQL_USERS}; \
             CREATE TABLE public.{SQL_USERS} (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE); \
             CREATE TABLE public.{SQL_PROJECTS} (id bigint PRIMARY KEY, owner_id bigint NOT NULL REFERENCES public.{SQL_USERS}(id), name text NOT NULL); \
             CREATE TABLE public.{SQL_FILES} (id bigint PRIMARY KEY, project_id bigint NOT NULL REFERENCES public.{SQL_PROJECTS}(id), name text NOT NULL, content bytea NOT NULL);"
        ))
        .map_err(|e| err("creating the tables", &e))?;
        for u in &data.users {
            tx.execute(
                &format!("INSERT INTO public.{SQL_USERS} VALUES ($1, $2, $3)"),
                &[&u.id, &u.name, &u.email],
            )
            .map_err(|e| err("users", &e))?;
        }
        for p in &data.projects {
            tx.execute(
                &format!("INSERT INTO public.{SQL_PROJECTS} VALUES ($1, $2, $3)"),
                &[&p.id, &p.owner_id, &p.name],
            )
            .map_err(|e| err("projects", &e))?;
        }
        for f in &data.files {
            tx.execute(
                &format!("INSERT INTO public.{SQL_FILES} VALUES ($1, $2, $3, $4)"),
                &[&f.id, &f.project_id, &f.name, &f.content],
            )
            .map_err(|e| err("files", &e))?;
        }
        tx.commit().map_err(|e| err("committing", &e))
    }

    fn measure_test_data(&self) -> Result<TestMeasures, SourceError> {
        let t = self.target()?;
        let mut client = self.connect(t, &t.db)?;
        let err = |e: &postgres::Error| self.query_error("measuring the test data", e);
        let present: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL",
                &[
                    &format!("public.{SQL_USERS}"),
                    &format!("public.{SQL_PROJECTS}"),
                    &format!("public.{SQL_FILES}"),
                ],
            )
            .map_err(|e| err(&e))?
            .get(0);
        if !present {
            return Ok(testdata::measure(&[], &[], &[]));
        }
        let users = client
            .query(
                &format!("SELECT id, name, email FROM public.{SQL_USERS}"),
                &[],
            )
            .map_err(|e| err(&e))?
            .iter()
            .map(|r| User {
                id: r.get(0),
                name: r.get(1),
                email: r.get(2),
            })
            .collect::<Vec<_>>();
        let projects = client
            .query(
                &format!("SELECT id, owner_id, name FROM public.{SQL_PROJECTS}"),
                &[],
            )
            .map_err(|e| err(&e))?
            .iter()
            .map(|r| Project {
                id: r.get(0),
                owner_id: r.get(1),
                name: r.get(2),
            })
            .collect::<Vec<_>>();
        let files = client
            .query(
                &format!("SELECT id, project_id, name, content FROM public.{SQL_FILES}"),
                &[],
            )
            .map_err(|e| err(&e))?
            .iter()
            .map(|r| FileRecord {
                id: r.get(0),
                project_id: r.get(1),
                name: r.get(2),
                content: r.get(3),
            })
            .collect::<Vec<_>>();
        Ok(testdata::measure(&users, &projects, &files))
    }
}
