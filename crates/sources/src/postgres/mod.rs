//! PostgreSQL: `pg_dump --format=custom` of one database, taken from an exported
//! snapshot, with counts and a fingerprint computed from that same snapshot while the
//! dump streams; restored with `pg_restore` beside the live database and swapped in.
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
//! transaction computes the fingerprint, so both describe the same data even while
//! writers run. The transaction stays open until `pg_dump` has finished.
//!
//! Sequences are not transactional: `pg_dump` reads their values when it gets to them,
//! not at the snapshot. So the `seq:` parts of a backup's fingerprint are taken from
//! the `setval` statements in the archive's own table of contents (which `pg_dump`
//! writes first, before any table data): the manifest then says what was dumped, not
//! what the sequence happened to hold a moment earlier.
//!
//! Fingerprint parts: `schema.table` per user table (count = rows, digest = sum of a
//! 64-bit hash of each row's text, computed server-side in one pass), `seq:schema.name` per
//! sequence (count 0, digest `last_value:is_called`), and `schema:ddl` (SHA-256 over a
//! sorted, OID-free description of relations, columns, constraints, indexes, views,
//! triggers, functions, sequences and enums). Objects that belong to extensions are left
//! out: their extension recreates them.
//!
//! The stored archive proves the data: the bytes stored are teed into
//! [`crate::proof::read_pg_archive`] on another thread as they are stored, which reads
//! the custom format itself (rather than through `pg_restore --file=-`, which stops
//! reading at the last block it needs and so cannot see garbage after it, and would cost
//! a process per backup, inside the container with `exec = true`); the backup fails with
//! [`SourceError::IncompleteDump`] unless every `schema.table` part of the fingerprint
//! has its data block with exactly that many COPY rows, every `seq:` part its `setval`,
//! every entry with data its block, and nothing follows the last block. The tools come
//! from the source's `bin_dir` when set.
//!
//! Drills: a sandbox is a `_drydock_sandbox_XXXXXXXX` database on the same server
//! (`CREATE DATABASE ... OWNER <url user> TEMPLATE template0`, with the live database's
//! encoding and locale; needs CREATEDB), restored and inspected like any target and
//! dropped `WITH (FORCE)` when the sandbox is dropped. The canary is row 1 of
//! `public._drydock_canary`, fingerprinted like any other table.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_domain::config::{PostgresSource, SourceKind};
use drydock_domain::{Event, Fingerprint, PartDigest, Secret, SourceRecord};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::common::{
    self, ddl_part, expect_format, host_port, pipe_into, sandbox_name, store_while_fingerprinting,
    tool_spec, url_with_db, ScratchDatabase, SqlServer, Target, CANARY_TABLE, SANDBOX_PREFIX,
};
use crate::process::{redact, Tool};
use crate::proof;
use crate::testdata::{
    self, FileRecord, Project, TestData, TestMeasures, User, SQL_FILES, SQL_PROJECTS, SQL_USERS,
};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

/// The archive format recorded in the manifest.
pub const FORMAT: &str = "pg_dump-custom";
/// How much of the start of a dump is kept to read its table of contents.
const TOC_PREFIX_CAP: usize = 16 << 20;

/// Session settings that make every value's text form (which the row digests hash)
/// independent of the server's and the role's configuration, and object names always
/// schema-qualified.
const SESSION_SETTINGS: &str = "SET search_path = pg_catalog; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 1; \
     SET bytea_output = 'hex'; SET lc_monetary = 'C'; SET statement_timeout = 0; \
     SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0";

/// Schemas that are never user data, and objects owned by extensions.
const USER_OBJECT: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                     AND d.objid = c.oid AND d.deptype = 'e')";

pub struct Postgres {
    config: PostgresSource,
    target: Result<Target, String>,
    /// With `exec = true`: the container the tools run in.
    inside: Option<Box<dyn drydock_runtimes::Runtime>>,
}

impl SqlServer for Postgres {
    fn parsed_target(&self) -> &Result<Target, String> {
        &self.target
    }

    fn password_secret(&self) -> Option<&Secret> {
        self.config.password.as_ref()
    }
}

impl Postgres {
    pub fn new(config: PostgresSource) -> Self {
        let target = parse_url(&config.url);
        let inside = config
            .exec_in
            .as_ref()
            .map(|t| drydock_runtimes::build(&t.service, &t.runtime));
        Postgres {
            config,
            target,
            inside,
        }
    }

    fn raw_connect(&self, t: &Target, db: &str) -> Result<Client, postgres::Error> {
        let mut c = postgres::Config::new();
        c.host(&t.host)
            .port(t.port)
            .user(&t.user)
            .dbname(db)
            .application_name("drydock")
            .connect_timeout(Duration::from_secs(10));
        if let Some(pw) = self.password() {
            c.password(pw);
        }
        c.connect(NoTls)
    }

    /// Connects to `db` with a clear [`SourceError::Connect`] on failure.
    fn connect(&self, t: &Target, db: &str) -> Result<Client, SourceError> {
        self.raw_connect(t, db)
            .map_err(|e| self.connect_error(t, db, &e))
    }

    fn connect_error(&self, t: &Target, db: &str, e: &postgres::Error) -> SourceError {
        let location = format!("postgres {}/{db}", host_port(t));
        let user = &t.user;
        let password_fix = match &self.config.password {
            Some(secret) => format!("check the password reference {secret} (its value is the password of user \"{user}\")"),
            None => "no password is configured for this source; add `password = \"${env:NAME}\"`".to_string(),
        };
        let (cause, fix) = if let Some(db_err) = e.as_db_error() {
            let code = db_err.code();
            if *code == SqlState::INVALID_PASSWORD {
                (
                    format!("authentication failed for user \"{user}\""),
                    password_fix,
                )
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                (
                    db_err.message().to_string(),
                    format!("check the user name \"{user}\" and that pg_hba.conf lets it connect from this host"),
                )
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                (
                    format!("database \"{db}\" does not exist"),
                    "create it, or fix the database name in the url".to_string(),
                )
            } else if *code == SqlState::CANNOT_CONNECT_NOW {
                (
                    db_err.message().to_string(),
                    "the server is starting or shutting down; retry in a moment".to_string(),
                )
            } else if *code == SqlState::TOO_MANY_CONNECTIONS {
                (
                    db_err.message().to_string(),
                    "the server has no free connection slots; raise max_connections or retry"
                        .to_string(),
                )
            } else {
                (
                    db_err.message().to_string(),
                    "check the server log".to_string(),
                )
            }
        } else if let Some(io) = io_cause(e) {
            let cause = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => io.to_string(),
            };
            (cause, format!("is the server running at {}?", host_port(t)))
        } else {
            let text = error_chain(e);
            if text.contains("password missing") {
                (
                    format!("the server asks for a password for user \"{user}\""),
                    password_fix,
                )
            } else if text.contains("timeout") || text.contains("timed out") {
                (
                    "timed out".to_string(),
                    format!("is the server running at {}?", host_port(t)),
                )
            } else {
                (
                    text,
                    format!(
                        "check the url and that the server at {} accepts connections",
                        host_port(t)
                    ),
                )
            }
        };
        SourceError::Connect {
            location,
            cause: redact(&cause, &self.secrets()),
            fix,
        }
    }

    fn query_error(&self, what: impl Into<String>, e: &postgres::Error) -> SourceError {
        SourceError::query(
            &self.location(),
            what,
            redact(&pg_message(e), &self.secrets()),
        )
    }

    /// A connection to the configured database inside a `REPEATABLE READ READ ONLY`
    /// transaction with the canonical session settings.
    fn snapshot_connection(&self, t: &Target) -> Result<Client, SourceError> {
        let mut client = self.connect(t, &t.db)?;
        client
            .batch_execute(SESSION_SETTINGS)
            .map_err(|e| self.query_error("setting up the session", &e))?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.query_error("starting a snapshot transaction", &e))?;
        Ok(client)
    }

    fn server_major(&self, client: &mut Client) -> Result<u32, SourceError> {
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .map_err(|e| self.query_error("reading the server version", &e))?;
        Ok((row.get::<_, i32>(0) / 10000) as u32)
    }

    /// Host, port and user arguments shared by `pg_dump` and `pg_restore`. Inside the
    /// server's container the tools connect to it on the loopback's default port.
    fn connection_args(&self, t: &Target, db: &str) -> Vec<String> {
        let (host, port) = match self.inside {
            Some(_) => ("127.0.0.1".to_string(), 5432),
            None => (t.host.clone(), t.port),
        };
        vec![
            "--no-password".into(),
            "-h".into(),
            host,
            "-p".into(),
            port.to_string(),
            "-U".into(),
            t.user.clone(),
            // A conninfo string, so that no database name is ever taken for an option.
            format!("--dbname=dbname={}", conninfo_quote(db)),
        ]
    }

    fn spawn_tool(
        &self,
        program: &Path,
        args: &[String],
        stdin: bool,
        stdout: bool,
    ) -> Result<Tool, SourceError> {
        let mut spec = tool_spec(program, args, stdin, stdout).inside(self.inside.as_deref());
        if let Some(pw) = self.password() {
            spec = spec.env("PGPASSWORD", pw);
        }
        spec = spec.env("PGCONNECT_TIMEOUT", "10");
        spec.spawn(&self.location())
    }

    /// Counts and fingerprint of what `client`'s transaction sees.
    fn fingerprint(&self, client: &mut Client) -> Result<Inspection, SourceError> {
        let mut parts = BTreeMap::new();
        let mut rows_total = 0u64;

        let tables = client
            .query(
                &format!(
                    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'r' AND {USER_OBJECT} AND {NOT_EXCLUDED} ORDER BY 1, 2"
                ),
                &[&self.config.exclude_tables],
            )
            .map_err(|e| self.query_error("listing tables", &e))?;
        // One pass per table: the count and an order-independent sum (exact, as numeric)
        // of a 64-bit hash of each row's canonical text. PostgreSQL's own 64-bit hash
        // (the one hash partitioning relies on, so stable across versions) is about
        // three times faster than MD5, which is the fallback before PostgreSQL 11.
        let (tag, row_hash) = if self.server_major(client)? >= 11 {
            ("h64", "pg_catalog.hashtextextended(ROW(r.*)::text, 0)")
        } else {
            (
                "md5",
                "('x' || substr(md5(ROW(r.*)::text), 1, 16))::bit(64)::bigint",
            )
        };
        for row in &tables {
            let (schema, name, quoted): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let sql = format!(
                "SELECT count(*), '{tag}:' || coalesce(sum({row_hash}), 0)::text FROM ONLY {quoted} r"
            );
            let digest_row = client
                .query_one(&sql, &[])
                .map_err(|e| self.query_error(format!("reading table {schema}.{name}"), &e))?;
            let count = digest_row.get::<_, i64>(0) as u64;
            rows_total += count;
            parts.insert(
                format!("{schema}.{name}"),
                PartDigest {
                    count,
                    digest: digest_row.get(1),
                },
            );
        }
        let table_count = tables.len() as u64;

        let sequences = client
            .query(
                &format!(
                    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'S' AND {USER_OBJECT} AND {NOT_EXCLUDED} ORDER BY 1, 2"
                ),
                &[&self.config.exclude_tables],
            )
            .map_err(|e| self.query_error("listing sequences", &e))?;
        for row in &sequences {
            let (schema, name, quoted): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let state = client
                .query_one(&format!("SELECT last_value, is_called FROM {quoted}"), &[])
                .map_err(|e| self.query_error(format!("reading sequence {schema}.{name}"), &e))?;
            parts.insert(
                format!("seq:{schema}.{name}"),
                sequence_part(state.get(0), state.get(1)),
            );
        }

        let ddl = client
            .query(DDL_QUERY, &[&self.config.exclude_tables])
            .map_err(|e| self.query_error("describing the schema", &e))?;
        let lines: Vec<String> = ddl.iter().map(|r| r.get::<_, String>(0)).collect();
        parts.insert("schema:ddl".to_string(), ddl_part(lines));

        let mut counts = BTreeMap::new();
        counts.insert("tables".to_string(), table_count);
        counts.insert("rows".to_string(), rows_total);
        counts.insert("sequences".to_string(), sequences.len() as u64);
        Ok(Inspection {
            counts,
            fingerprint: Fingerprint::from_parts(parts),
        })
    }

    /// The sequence values the archive will restore, read from its table of contents
    /// (`prefix` is the start of the archive). `None` when the prefix cannot be read
    /// (a table of contents larger than the prefix): the caller keeps the live values.
    fn dumped_sequences(
        &self,
        client: &mut Client,
        prefix: &[u8],
        scratch: &Path,
        server_major: u32,
    ) -> Result<Option<BTreeMap<String, PartDigest>>, SourceError> {
        let loc = self.location();
        let pg_restore = self.program("pg_restore", server_major)?;
        let archive = common::stage(
            self.inside.as_deref(),
            scratch,
            "drydock-toc-prefix.pgdump",
            prefix,
            &loc,
        )?;
        let archive_arg = archive.path().to_string();
        let list = match run_capture(self.spawn_tool(
            &pg_restore,
            &["--list".into(), archive_arg.clone()],
            false,
            true,
        )?) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(location = %loc, error = %e, "cannot read the dump's table of contents; sequence values are taken live");
                drop(archive);
                return Ok(None);
            }
        };
        let wanted: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with(';') && l.contains(" SEQUENCE SET "))
            .collect();
        let mut out = BTreeMap::new();
        if !wanted.is_empty() {
            let list_file = common::stage(
                self.inside.as_deref(),
                scratch,
                "drydock-toc-sequences.list",
                wanted.join("\n").as_bytes(),
                &loc,
            )?;
            let args = vec![
                "--use-list".to_string(),
                list_file.path().to_string(),
                "--file=-".into(),
                archive_arg,
            ];
            let sql = run_capture(self.spawn_tool(&pg_restore, &args, false, true)?);
            drop(list_file);
            let sql = match sql {
                Ok(sql) => sql,
                Err(e) => {
                    tracing::warn!(location = %loc, error = %e, "cannot read the dump's sequence values; they are taken live");
                    drop(archive);
                    return Ok(None);
                }
            };
            for (name_literal, value, called) in sql.lines().filter_map(parse_setval) {
                let row = client
                    .query_one(
                        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::text::regclass",
                        &[&name_literal],
                    )
                    .map_err(|e| self.query_error(format!("resolving sequence {name_literal}"), &e))?;
                let (schema, name): (String, String) = (row.get(0), row.get(1));
                out.insert(format!("seq:{schema}.{name}"), sequence_part(value, called));
            }
        }
        drop(archive);
        Ok(Some(out))
    }

    /// The tool to run: on this host the one matching the server's version, inside the
    /// container the one on its PATH (it came with the server).
    fn program(&self, name: &str, server_major: u32) -> Result<PathBuf, SourceError> {
        match (&self.config.bin_dir, &self.inside) {
            (Some(dir), Some(_)) => Ok(dir.join(name)),
            (Some(dir), None) => {
                let p = dir.join(name);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(SourceError::MissingTool {
                        program: p.display().to_string(),
                        fix: format!("install the PostgreSQL client tools there, or fix the source's `bin_dir` (now \"{}\")", dir.display()),
                    })
                }
            }
            (None, Some(_)) => Ok(PathBuf::from(name)),
            (None, None) => pg_program(name, server_major),
        }
    }

    /// A connection from which other databases can be created and dropped: the
    /// configured database itself (the user can certainly reach it), else the
    /// maintenance database.
    fn admin_connection(&self, t: &Target) -> Result<Client, SourceError> {
        match self.raw_connect(t, &t.db) {
            Ok(c) => Ok(c),
            // The database itself refused (missing, no CONNECT): another may not.
            Err(e)
                if e.as_db_error()
                    .is_some_and(|d| *d.code() != SqlState::INVALID_PASSWORD) =>
            {
                self.maintenance_connection(t)
            }
            Err(e) => Err(self.connect_error(t, &t.db, &e)),
        }
    }

    /// This source pointed at database `db` instead (same server, user and password).
    fn with_database(&self, t: &Target, db: &str) -> Postgres {
        let mut config = self.config.clone();
        config.url = url_with_db(&config.url, db);
        let inside = config
            .exec_in
            .as_ref()
            .map(|t| drydock_runtimes::build(&t.service, &t.runtime));
        Postgres {
            config,
            target: Ok(Target {
                db: db.to_string(),
                ..t.clone()
            }),
            inside,
        }
    }

    /// Creates an empty sandbox database owned by the url's user, with the live
    /// database's encoding and locale (so text compares and sorts alike).
    fn create_sandbox(&self, t: &Target) -> Result<ScratchDatabase<Self>, SourceError> {
        let mut admin = self.admin_connection(t)?;
        let major = self.server_major(&mut admin)?;
        let like = admin
            .query_opt(
                "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype \
                 FROM pg_catalog.pg_database WHERE datname = $1",
                &[&t.db],
            )
            .map_err(|e| self.query_error("reading the live database's encoding", &e))?
            // Locales are NULL for other providers from PostgreSQL 17 on.
            .and_then(|r| {
                Some((
                    r.get::<_, String>(0),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            });
        let owner = quote_ident(&t.user);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let name = sandbox_name();
            let plain = format!(
                "CREATE DATABASE {} OWNER {owner} TEMPLATE template0",
                quote_ident(&name)
            );
            let created = match &like {
                Some((encoding, collate, ctype)) => admin
                    .batch_execute(&format!(
                        "{plain} ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                        quote_literal(encoding),
                        quote_literal(collate),
                        quote_literal(ctype)
                    ))
                    .or_else(|e| {
                        let code = e.code();
                        if code == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
                            || code == Some(&SqlState::DUPLICATE_DATABASE)
                        {
                            return Err(e);
                        }
                        tracing::warn!(location = %self.location(), error = %pg_message(&e), "creating the sandbox with the live database's encoding and locale failed; using the server defaults");
                        admin.batch_execute(&plain)
                    }),
                None => admin.batch_execute(&plain),
            };
            match created {
                Ok(()) => {
                    tracing::info!(location = %self.location(), sandbox = %name, "created the drill sandbox");
                    let origin = self.with_database(t, &t.db);
                    let target = self.with_database(t, &name);
                    let sandbox = Target {
                        db: name.clone(),
                        ..t.clone()
                    };
                    return Ok(ScratchDatabase::new(
                        target,
                        &sandbox,
                        self.location(),
                        format!("DROP DATABASE {}", quote_ident(&name)),
                        move |db| origin.drop_sandbox(db, major),
                    ));
                }
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) && attempt < 3 => {}
                Err(e) => return Err(self.sandbox_error(t, &name, &e)),
            }
        }
    }

    fn sandbox_error(&self, t: &Target, name: &str, e: &postgres::Error) -> SourceError {
        let cause = redact(&pg_message(e), &self.secrets());
        let fix = if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            format!(
                "let user \"{0}\" create databases (ALTER ROLE \"{0}\" CREATEDB), or drill against a throwaway PostgreSQL instance",
                t.user
            )
        } else {
            "check the server log, or drill against a throwaway PostgreSQL instance".to_string()
        };
        SourceError::invalid(
            &self.location(),
            format!(
                "cannot create the drill sandbox (a throwaway database \"{name}\" on {}): {cause}. Fix: {fix}",
                host_port(t)
            ),
        )
    }

    /// Drops the sandbox database `name` (never anything else), disconnecting whoever is
    /// still in it.
    fn drop_sandbox(&self, name: &str, major: u32) -> Result<(), SourceError> {
        if !name.starts_with(SANDBOX_PREFIX) {
            return Err(SourceError::invalid(
                &self.location(),
                format!("refusing to drop \"{name}\": not a drill sandbox"),
            ));
        }
        let t = self.target()?;
        let mut admin = self.admin_connection(t)?;
        force_drop_database(&mut admin, name, major, true)
            .map_err(|e| self.query_error(format!("dropping the drill sandbox \"{name}\""), &e))
    }

    /// A clear error for a canary that cannot be written or read.
    fn canary_error(&self, t: &Target, what: &str, e: &postgres::Error) -> SourceError {
        if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            SourceError::invalid(
                &self.location(),
                format!(
                    "{what} (table public.{CANARY_TABLE}): {cause}. Fix: GRANT CREATE ON SCHEMA public TO \"{user}\", or have the schema's owner create the table and GRANT SELECT, INSERT, UPDATE ON public.{CANARY_TABLE} TO \"{user}\" (CREATE TABLE public.{CANARY_TABLE} (id int PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL))",
                    cause = redact(&pg_message(e), &self.secrets()),
                    user = t.user
                ),
            )
        } else {
            self.query_error(format!("{what} (table public.{CANARY_TABLE})"), e)
        }
    }

    /// Whether the canary table exists in the database `client` is connected to.
    fn canary_table_exists(&self, t: &Target, client: &mut Client) -> Result<bool, SourceError> {
        client
            .query_one(
                &format!("SELECT pg_catalog.to_regclass('public.{CANARY_TABLE}') IS NOT NULL"),
                &[],
            )
            .map(|r| r.get(0))
            .map_err(|e| self.canary_error(t, "looking for the drill canary", &e))
    }

    /// A connection to a database other than the target (`postgres`, else `template1`),
    /// from which the target can be dropped and created.
    fn maintenance_connection(&self, t: &Target) -> Result<Client, SourceError> {
        let first = if t.db == "postgres" {
            "template1"
        } else {
            "postgres"
        };
        match self.raw_connect(t, first) {
            Ok(c) => Ok(c),
            Err(e) if first == "postgres" && e.as_db_error().is_some() => {
                self.connect(t, "template1")
            }
            Err(e) => Err(self.connect_error(t, first, &e)),
        }
    }

    /// Decides where a restore goes, creating the database when it is missing: straight
    /// in when there is nothing to lose, else beside the live database (needs CREATEDB
    /// and ownership of it), else into it in one transaction.
    fn placement(&self, t: &Target) -> Result<(Placement, u32), SourceError> {
        let mut admin = self.maintenance_connection(t)?;
        let major = self.server_major(&mut admin)?;
        let rights = admin
            .query_one(
                "SELECT r.rolsuper, r.rolcreatedb, d.datname IS NOT NULL, \
                        coalesce(pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER'), false) \
                 FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_database d ON d.datname = $1 \
                 WHERE r.rolname = current_user",
                &[&t.db],
            )
            .map_err(|e| self.query_error("checking the target database", &e))?;
        let superuser: bool = rights.get(0);
        let can_create = superuser || rights.get::<_, bool>(1);
        let exists: bool = rights.get(2);
        let owns = superuser || rights.get::<_, bool>(3);
        if !exists {
            if !can_create {
                return Err(SourceError::invalid(
                    &self.location(),
                    format!("database \"{}\" does not exist and user \"{}\" may not create it; create it (owned by \"{}\") and retry", t.db, t.user, t.user),
                ));
            }
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {} OWNER {} TEMPLATE template0",
                    quote_ident(&t.db),
                    quote_ident(&t.user)
                ))
                .map_err(|e| self.query_error(format!("creating database \"{}\"", t.db), &e))?;
            return Ok((Placement::Fresh, major));
        }
        drop(admin);
        let placement = if !self.has_data()? {
            Placement::Fresh
        } else if can_create && owns {
            Placement::Beside
        } else {
            Placement::InPlace
        };
        Ok((placement, major))
    }

    /// `pg_restore` of the fetched archive into database `db` in one transaction: a
    /// failure (or a killed `pg_restore`) rolls everything back.
    fn pg_restore_into(
        &self,
        t: &Target,
        major: u32,
        fetch: &dyn Fetch,
        clean: bool,
    ) -> Result<(), SourceError> {
        let pg_restore = self.program("pg_restore", major)?;
        let mut args = vec![
            "--no-owner".to_string(),
            "--exit-on-error".into(),
            "--single-transaction".into(),
        ];
        if clean {
            args.extend(["--clean".to_string(), "--if-exists".into()]);
        }
        args.extend(self.connection_args(t, &t.db));
        let tool = self.spawn_tool(&pg_restore, &args, true, false)?;
        pipe_into(tool, fetch, &self.location())
    }

    /// Restores into a scratch database beside the live one, proves it against the
    /// manifest, and only then swaps it in by renaming both in one transaction (ending
    /// the live database's sessions). Until the swap the live database is untouched; a
    /// failure leaves it as it was and drops the scratch database.
    fn restore_beside(
        &self,
        t: &Target,
        major: u32,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.location();
        let scratch = self.create_sandbox(t)?;
        let unchanged = |e: SourceError| {
            SourceError::invalid(
                &loc,
                format!(
                    "restoring beside the live database (into scratch database \"{}\") failed: {e}; the live database \"{}\" was not changed",
                    scratch.name(),
                    t.db
                ),
            )
        };
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: restoring into scratch database \"{}\" beside the live one",
                ctx.label,
                scratch.name()
            ),
        });
        common::restore_and_prove(scratch.target(), fetch, record, ctx, &unchanged)?;
        ctx.before_replacing_live(&format!(
            "swapping database \"{}\" for the verified copy",
            t.db
        ))?;
        let old = sandbox_name().replacen(SANDBOX_PREFIX, OLD_PREFIX, 1);
        self.swap_databases(t, scratch.name(), &old)?;
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: the verified copy is now database \"{}\"; dropping the previous one",
                ctx.label, t.db
            ),
        });
        let dropped = self.maintenance_connection(t).and_then(|mut admin| {
            force_drop_database(&mut admin, &old, major, true)
                .map_err(|e| self.query_error(format!("dropping \"{old}\""), &e))
        });
        if let Err(e) = dropped {
            ctx.events.emit(Event::Warning {
                message: format!(
                    "{}: the previous database is left as \"{old}\": {e}; drop it by hand: DROP DATABASE {}",
                    ctx.label,
                    quote_ident(&old)
                ),
            });
        }
        Ok(())
    }

    /// Drops the scratch databases that drydock runs on this host were killed before
    /// dropping (a drill's sandbox, a restore's copy, a replaced database), each with a
    /// warning naming it.
    fn remove_killed_runs_scratch(&self, t: &Target, ctx: &SourceContext<'_>) {
        let Ok(mut admin) = self.admin_connection(t) else {
            return;
        };
        let Ok(major) = self.server_major(&mut admin) else {
            return;
        };
        let names: Vec<String> = admin
            .query(
                "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE '\\_drydock\\_%'",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        for (name, pid) in common::killed_runs_scratch(&names, &[SANDBOX_PREFIX, OLD_PREFIX]) {
            let message = match force_drop_database(&mut admin, &name, major, true) {
                Ok(()) => format!(
                    "{}: removed scratch database \"{name}\" that a killed drydock run (pid {pid}) left on {}",
                    ctx.label,
                    host_port(t)
                ),
                Err(e) => format!(
                    "{}: scratch database \"{name}\" that a killed drydock run (pid {pid}) left could not be removed ({}); drop it by hand: DROP DATABASE {}",
                    ctx.label,
                    pg_message(&e),
                    quote_ident(&name)
                ),
            };
            tracing::warn!(location = %self.location(), "{message}");
            ctx.events.emit(Event::Warning { message });
        }
    }

    /// Renames `t.db` to `old` and `fresh` to `t.db` in one transaction, ending the
    /// sessions in both first (retried while clients reconnect).
    fn swap_databases(&self, t: &Target, fresh: &str, old: &str) -> Result<(), SourceError> {
        let mut admin = self.maintenance_connection(t)?;
        let swap = format!(
            "BEGIN; ALTER DATABASE {live} RENAME TO {old}; ALTER DATABASE {fresh} RENAME TO {live}; COMMIT",
            live = quote_ident(&t.db),
            old = quote_ident(old),
            fresh = quote_ident(fresh)
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            admin
                .execute(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
                     WHERE datname IN ($1, $2) AND pid <> pg_catalog.pg_backend_pid()",
                    &[&t.db, &fresh],
                )
                .map_err(|e| {
                    self.query_error(format!("ending the sessions of database \"{}\"", t.db), &e)
                })?;
            match admin.batch_execute(&swap) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let _ = admin.batch_execute("ROLLBACK");
                    if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempt < SWAP_ATTEMPTS {
                        std::thread::sleep(Duration::from_millis(100 * attempt as u64));
                        continue;
                    }
                    let fix = if e.code() == Some(&SqlState::OBJECT_IN_USE) {
                        format!(
                            "other sessions keep using it and user \"{}\" may not end them: stop the service using it, or grant the user pg_signal_backend, and retry",
                            t.user
                        )
                    } else {
                        "check the server log and retry".to_string()
                    };
                    return Err(SourceError::invalid(
                        &self.location(),
                        format!(
                            "the verified copy could not be swapped in for database \"{}\" ({}): {fix}; the live database was not changed",
                            t.db,
                            redact(&pg_message(&e), &self.secrets())
                        ),
                    ));
                }
            }
        }
    }
}

/// Where a restore goes (see [`Postgres::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The database is new or holds no tables: nothing to lose.
    Fresh,
    /// Into a scratch database, verified, then swapped in by rename.
    Beside,
    /// The user may not create databases: into the live one, in one transaction.
    InPlace,
}

/// Name prefix of a replaced database between the swap and its drop.
const OLD_PREFIX: &str = "_drydock_old_";
/// How often the swap is tried while clients reconnect to the live database.
const SWAP_ATTEMPTS: u32 = 10;

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
            format!("--snapshot={snapshot}"),
        ];
        // Quoted, so the names match exactly (no case folding, no patterns).
        args.extend(self.config.exclude_tables.iter().map(|t| {
            let (schema, table) = t.split_once('.').unwrap_or(("public", t));
            format!("--exclude-table=\"{schema}\".\"{table}\"")
        }));
        args.extend(self.connection_args(t, &t.db));
        let mut tool = self.spawn_tool(&pg_dump, &args, false, true)?;
        let prefix = Arc::new(Mutex::new(Vec::new()));
        // The bytes stored are read once more, as they pass, by the archive check.
        let (reader, archive) = proof::tee(
            Box::new(PrefixTee {
                inner: tool.take_stdout(),
                prefix: Arc::clone(&prefix),
            }),
            proof::read_pg_archive,
        );

        // The dump streams into the store on this thread; the fingerprint is computed
        // in the same transaction on another, at the same time.
        let (stored, inspection) = store_while_fingerprinting(
            &mut tool,
            &loc,
            || self.fingerprint(&mut client),
            || store.put_stream(reader, ".pgdump"),
        );
        let mut inspection = inspection?;
        let stored = stored.map_err(|e| SourceError::store(&loc, e))?;
        tool.finish()?;
        let archive = archive
            .join()
            .unwrap_or_else(|_| Err("its archive could not be checked (the check panicked)".into()))
            .map_err(|problem| incomplete(&pg_dump, &loc, problem))?;
        prove_archive(&archive, &inspection.fingerprint)
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

    /// Never drops the live database first: see [`Postgres::restore_beside`]; without
    /// the right to create databases, the archive is restored into the live database
    /// with `--clean` in one transaction, so a failure rolls it back.
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
        let t = self.target()?;
        let mut client = self.snapshot_connection(t)?;
        let inspection = self.fingerprint(&mut client)?;
        client
            .batch_execute("COMMIT")
            .map_err(|e| self.query_error("ending the snapshot transaction", &e))?;
        Ok(inspection)
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

/// Drops database `db`, disconnecting its sessions first (`WITH (FORCE)` from
/// PostgreSQL 13 on, else by terminating them).
fn force_drop_database(
    admin: &mut Client,
    db: &str,
    major: u32,
    if_exists: bool,
) -> Result<(), postgres::Error> {
    let quoted = quote_ident(db);
    let if_exists = if if_exists { "IF EXISTS " } else { "" };
    let sql = if major >= 13 {
        format!("DROP DATABASE {if_exists}{quoted} WITH (FORCE)")
    } else {
        admin.execute(
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
            &[&db],
        )?;
        format!("DROP DATABASE {if_exists}{quoted}")
    };
    admin.batch_execute(&sql)
}

/// Passes a dump through while keeping its first [`TOC_PREFIX_CAP`] bytes.
struct PrefixTee<R> {
    inner: R,
    prefix: Arc<Mutex<Vec<u8>>>,
}

impl<R: Read> Read for PrefixTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut prefix = self.prefix.lock().unwrap();
        let room = TOC_PREFIX_CAP.saturating_sub(prefix.len()).min(n);
        prefix.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

/// The error for a dump tool that exited 0 with an archive that does not prove the data.
fn incomplete(program: &Path, location: &str, problem: String) -> SourceError {
    SourceError::IncompleteDump {
        tool: program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        location: location.to_string(),
        problem,
    }
}

/// Checks that `archive` (what the stored bytes hold) has every table of the snapshot's
/// fingerprint with exactly its row count, and a value for every sequence.
fn prove_archive(archive: &proof::PgArchive, fingerprint: &Fingerprint) -> Result<(), String> {
    for (name, part) in &fingerprint.parts {
        if name == "schema:ddl" {
            continue;
        }
        if let Some(seq) = name.strip_prefix("seq:") {
            if !archive.sequences.contains(seq) {
                return Err(format!(
                    "its archive has no value (setval) for sequence {seq}"
                ));
            }
            continue;
        }
        match archive.tables.get(name) {
            None => {
                return Err(format!(
                    "its archive has no data for table {name} (fingerprint: {} rows)",
                    part.count
                ))
            }
            Some(&rows) if rows != part.count => {
                return Err(format!(
                    "its archive holds {rows} rows of table {name} (fingerprint: {} rows)",
                    part.count
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Runs a tool to completion and returns its stdout.
fn run_capture(mut tool: Tool) -> Result<String, SourceError> {
    let mut out = String::new();
    let read = tool.take_stdout().read_to_string(&mut out);
    tool.finish()?;
    read.map_err(|e| SourceError::io("pg_restore", "reading its output", e))?;
    Ok(out)
}

fn sequence_part(last_value: i64, is_called: bool) -> PartDigest {
    PartDigest {
        count: 0,
        digest: format!("{last_value}:{is_called}"),
    }
}

/// Parses `SELECT pg_catalog.setval('name', 42, true);` into its arguments.
fn parse_setval(line: &str) -> Option<(String, i64, bool)> {
    let rest = line.trim().strip_prefix("SELECT pg_catalog.setval(")?;
    let rest = rest.strip_prefix('\'')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                name.push('\'');
            } else {
                end = Some(i + 1);
                break;
            }
        } else {
            name.push(c);
        }
    }
    let rest = rest[end?..].strip_prefix(',')?.trim_start();
    let rest = rest.strip_suffix(");")?;
    let (value, called) = rest.split_once(',')?;
    Some((
        name,
        value.trim().parse().ok()?,
        called.trim().parse().ok()?,
    ))
}

/// The PostgreSQL tool matching the server's major version: Debian's versioned folder
/// for that version, else the lowest newer one, else PATH, else the newest there is.
fn pg_program(name: &str, server_major: u32) -> Result<PathBuf, SourceError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let p = e.path().join("bin").join(name);
                    p.is_file().then_some((v, p))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, p)) = versions.iter().find(|(v, _)| *v >= server_major) {
        return Ok(p.clone());
    }
    if let Some(p) = crate::find_program(name) {
        return Ok(p);
    }
    if let Some((_, p)) = versions.last() {
        return Ok(p.clone());
    }
    Err(SourceError::MissingTool {
        program: name.to_string(),
        fix: format!("install the PostgreSQL client tools, version {server_major} or newer (e.g. postgresql-client-{server_major})"),
    })
}

fn parse_url(raw: &str) -> Result<Target, String> {
    let (target, url) = common::parse_url(raw, "postgres", 5432, "postgres")?;
    // drydock connects without TLS; a URL asking for it must not be downgraded silently.
    for (key, value) in url.query_pairs() {
        let plain = key == "sslmode" && matches!(value.as_ref(), "disable" | "allow" | "prefer");
        if !plain {
            return Err(format!(
                "the url parameter `{key}={value}` is not supported (drydock connects without TLS); remove it"
            ));
        }
    }
    Ok(target)
}

/// The error and its causes, one after another.
fn error_chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn io_cause(e: &postgres::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// The server's own message for a database error, else the client's.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{}: {} ({detail})", d.severity(), d.message()),
            None => format!("{}: {}", d.severity(), d.message()),
        },
        None => e.to_string(),
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A libpq conninfo value, quoted.
fn conninfo_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One line per schema object, free of OIDs and physical details; sorted by the caller.
/// Keeps `exclude_tables` ($1) out of the fingerprint, as `pg_dump --exclude-table`
/// keeps them out of the archive (the sequences they own stay in both).
const NOT_EXCLUDED: &str = "NOT (format('%s.%s', n.nspname, c.relname) = ANY($1::text[]))";

const DDL_QUERY: &str = "
WITH rel AS (
    SELECT c.oid, c.relkind, n.nspname, c.relname
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      AND NOT (format('%s.%s', n.nspname, c.relname) = ANY($1::text[]))
)
SELECT format('relation %I.%I %s', nspname, relname, relkind) FROM rel
UNION ALL
SELECT format('column %I.%I %s %I %s notnull=%s default=%s identity=%s generated=%s collation=%s',
              rel.nspname, rel.relname,
              lpad((row_number() OVER (PARTITION BY rel.oid ORDER BY a.attnum))::text, 5, '0'),
              a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
              coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity, a.attgenerated,
              coalesce((SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_catalog.pg_collation co
                        JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                        JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                        WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation), ''))
FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT format('constraint %I.%I %I %s', rel.nspname, rel.relname, co.conname, pg_catalog.pg_get_constraintdef(co.oid))
FROM rel JOIN pg_catalog.pg_constraint co ON co.conrelid = rel.oid
UNION ALL
SELECT format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))
FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
UNION ALL
SELECT format('view %I.%I %s', rel.nspname, rel.relname, pg_catalog.pg_get_viewdef(rel.oid))
FROM rel WHERE rel.relkind IN ('v', 'm')
UNION ALL
SELECT format('sequence %I.%I %s start=%s increment=%s min=%s max=%s cache=%s cycle=%s',
              rel.nspname, rel.relname, s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement,
              s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
FROM rel JOIN pg_catalog.pg_sequence s ON s.seqrelid = rel.oid
UNION ALL
SELECT format('trigger %s', pg_catalog.pg_get_triggerdef(tg.oid))
FROM rel JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = rel.oid AND NOT tg.tgisinternal
UNION ALL
SELECT format('function %s', pg_catalog.pg_get_functiondef(p.oid))
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('enum %s %s', t.oid::pg_catalog.regtype, string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder))
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
GROUP BY t.oid
UNION ALL
SELECT format('schema %I', n.nspname) FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setval_lines_parse() {
        assert_eq!(
            parse_setval("SELECT pg_catalog.setval('public.items_id_seq', 1234, true);"),
            Some(("public.items_id_seq".to_string(), 1234, true))
        );
        assert_eq!(
            parse_setval("SELECT pg_catalog.setval('public.\"it''s, odd\"', 1, false);"),
            Some(("public.\"it's, odd\"".to_string(), 1, false))
        );
        assert_eq!(parse_setval("SET search_path = '';"), None);
    }

    #[test]
    fn urls_parse_without_secrets() {
        let t = parse_url("postgres://app%40x@db.example:6543/my%20db").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.db.as_str()),
            ("db.example", 6543, "app@x", "my db")
        );
        let t = parse_url("postgresql://[::1]/app").unwrap();
        assert_eq!(host_port(&t), "[::1]:5432");
        assert_eq!(t.user, "postgres");
        assert!(parse_url("postgres://app@host:5432/").is_err());
        assert!(parse_url("postgres://app@host/db?sslmode=require").is_err());
        assert!(parse_url("postgres://app@host/db?sslmode=disable").is_ok());
    }
}
