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
//! 4. L unlocks once the dump's transaction is certainly open (see [`read_past_header`]),
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
//! [`crate::proof::SqlDumpChecker`] on another thread as it is stored; the backup fails
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

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_domain::config::{MysqlSource, SourceKind};
use drydock_domain::{Event, Fingerprint, PartDigest, Secret, SourceRecord};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

use crate::common::Staged;
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

/// The dump format recorded in the manifest.
pub const FORMAT: &str = "mysql-dump-sql";
/// The dump's header is a few hundred bytes; output beyond this certainly comes from
/// after the dump's transaction started, even if the header's last line was not seen.
const HEADER_LIMIT: usize = 64 * 1024;
/// The last line of the header `mysqldump`/`mariadb-dump` writes before starting its
/// transaction (unless `--compact`, which drydock never passes).
const HEADER_END: &[u8] = b"SQL_NOTES=0 */;\n";
/// Engines whose tables a consistent snapshot covers.
const TRANSACTIONAL_ENGINES: &str = "'InnoDB', 'ROCKSDB', 'TokuDB'";

pub struct Mysql {
    config: MysqlSource,
    target: Result<Target, String>,
    /// With `exec = true`: the container the tools run in.
    inside: Option<Box<dyn drydock_runtimes::Runtime>>,
}

impl SqlServer for Mysql {
    fn parsed_target(&self) -> &Result<Target, String> {
        &self.target
    }

    fn password_secret(&self) -> Option<&Secret> {
        self.config.password.as_ref()
    }
}

impl Mysql {
    pub fn new(config: MysqlSource) -> Self {
        let target = parse_url(&config.url);
        let inside = exec_runtime(&config);
        Mysql {
            config,
            target,
            inside,
        }
    }

    fn raw_connect(&self, t: &Target, db: Option<&str>) -> Result<Conn, mysql::Error> {
        let opts = OptsBuilder::new()
            .ip_or_hostname(Some(t.host.clone()))
            .tcp_port(t.port)
            .prefer_socket(false)
            .user(Some(t.user.clone()))
            .pass(self.password().map(str::to_string))
            .db_name(db.map(str::to_string))
            .tcp_connect_timeout(Some(Duration::from_secs(10)));
        Conn::new(opts)
    }

    fn connect(&self, t: &Target, db: Option<&str>) -> Result<Conn, SourceError> {
        self.raw_connect(t, db)
            .map_err(|e| self.connect_error(t, db, &e))
    }

    fn connect_error(&self, t: &Target, db: Option<&str>, e: &mysql::Error) -> SourceError {
        let location = self.location();
        let user = &t.user;
        let hp = host_port(t);
        let password_fix = match &self.config.password {
            Some(secret) => format!("check the password reference {secret} (its value is the password of user '{user}')"),
            None => "no password is configured for this source; add `password = \"${env:NAME}\"`".to_string(),
        };
        let (cause, fix) = match e {
            mysql::Error::MySqlError(m) => match m.code {
                1045 | 1698 => (
                    format!("authentication failed for user '{user}'"),
                    password_fix,
                ),
                1044 => (
                    format!(
                        "user '{user}' has no access to database '{}'",
                        db.unwrap_or_default()
                    ),
                    format!(
                        "grant it: GRANT ALL ON `{}`.* TO '{user}'@...",
                        db.unwrap_or_default()
                    ),
                ),
                1049 => (
                    format!("database '{}' does not exist", db.unwrap_or_default()),
                    "create it, or fix the database name in the url".to_string(),
                ),
                1130 => (
                    m.message.clone(),
                    format!("allow user '{user}' to connect from this host"),
                ),
                1040 => (
                    m.message.clone(),
                    "the server has no free connections; raise max_connections or retry"
                        .to_string(),
                ),
                _ => (m.message.clone(), "check the server log".to_string()),
            },
            mysql::Error::IoError(io) => {
                let cause = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::TimedOut => "timed out".to_string(),
                    _ => io.to_string(),
                };
                (cause, format!("is the server running at {hp}?"))
            }
            mysql::Error::DriverError(mysql::DriverError::CouldNotConnect(Some((
                _,
                desc,
                kind,
            )))) => {
                let cause = if *kind == std::io::ErrorKind::ConnectionRefused {
                    "connection refused".to_string()
                } else {
                    desc.clone()
                };
                (cause, format!("is the server running at {hp}?"))
            }
            mysql::Error::DriverError(mysql::DriverError::ConnectTimeout) => (
                "timed out".to_string(),
                format!("is the server running at {hp}?"),
            ),
            other => (other.to_string(), format!("is the server running at {hp}?")),
        };
        SourceError::Connect {
            location,
            cause: redact(&cause, &self.secrets()),
            fix,
        }
    }

    fn query_error(&self, what: impl Into<String>, e: &mysql::Error) -> SourceError {
        let cause = match e {
            mysql::Error::MySqlError(m) => format!("ERROR {}: {}", m.code, m.message),
            other => other.to_string(),
        };
        SourceError::query(&self.location(), what, redact(&cause, &self.secrets()))
    }

    /// A connection to the database inside a consistent-snapshot transaction, with the
    /// session settings the row digests depend on.
    fn start_snapshot(&self, conn: &mut Conn) -> Result<(), SourceError> {
        conn.query_drop("SET SESSION time_zone = '+00:00', SESSION sql_mode = '', NAMES utf8mb4")
            .map_err(|e| self.query_error("setting up the session", &e))?;
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .map_err(|e| self.query_error("setting the isolation level", &e))?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .map_err(|e| self.query_error("starting a snapshot transaction", &e))
    }

    /// The option file handing credentials to a tool (inside the server's container
    /// when the tools run there, connecting over its loopback on the default port).
    fn option_file(&self, t: &Target, scratch: &Path) -> Result<Staged<'_>, SourceError> {
        let (host, port) = match self.inside {
            Some(_) => ("127.0.0.1".to_string(), 3306),
            None => (t.host.clone(), t.port),
        };
        let mut text = String::from("[client]\n");
        text.push_str(&format!("host={}\n", option_value(&host)?));
        text.push_str(&format!("port={port}\n"));
        text.push_str("protocol=TCP\n");
        text.push_str(&format!("user={}\n", option_value(&t.user)?));
        if let Some(pw) = self.password() {
            let value = option_value(pw).map_err(|e| {
                SourceError::invalid(&self.location(), e.to_string().replace(pw, "***"))
            })?;
            text.push_str(&format!("password={value}\n"));
        }
        common::stage(
            self.inside.as_deref(),
            scratch,
            "drydock-mysql-client.cnf",
            text.as_bytes(),
            &self.location(),
        )
    }

    /// The client tool: on this host the first of `names` found, inside the container
    /// the first (it came with the server).
    fn tool(&self, names: &[&str]) -> Result<PathBuf, SourceError> {
        match (&self.config.bin_dir, &self.inside) {
            (Some(dir), Some(_)) => Ok(dir.join(names[0])),
            (Some(dir), None) => names
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| SourceError::MissingTool {
                    program: dir.join(names[0]).display().to_string(),
                    fix: format!(
                        "install the client tools there, or fix the source's `bin_dir` (now \"{}\")",
                        dir.display()
                    ),
                }),
            (None, Some(_)) => Ok(PathBuf::from(names[0])),
            (None, None) => find_tool(names),
        }
    }

    fn spawn(
        &self,
        program: &Path,
        args: &[String],
        stdin: bool,
        stdout: bool,
    ) -> Result<Tool, SourceError> {
        let mut spec = tool_spec(program, args, stdin, stdout).inside(self.inside.as_deref());
        spec.secrets = self.password().into_iter().collect();
        spec.spawn(&self.location())
    }

    fn fingerprint(&self, conn: &mut Conn, db: &str) -> Result<Inspection, SourceError> {
        let tables: Vec<(String, String, Option<String>)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (db,),
            )
            .map_err(|e| self.query_error("listing tables", &e))?;
        let mut parts = BTreeMap::new();
        let mut rows_total = 0u64;
        let mut table_count = 0u64;
        let mut ddl = Vec::new();
        for (name, kind, _engine) in &tables {
            let quoted = format!("{}.{}", quote_ident(db), quote_ident(name));
            // Tables answer with two columns, views with four: the text is the second.
            let create: Option<mysql::Row> = conn
                .query_first(format!("SHOW CREATE TABLE {quoted}"))
                .map_err(|e| self.query_error(format!("reading the definition of {name}"), &e))?;
            if let Some(text) = create
                .and_then(|mut r| r.take_opt::<String, usize>(1))
                .and_then(Result::ok)
            {
                ddl.push(format!("table {name} {}", strip_auto_increment(&text)));
            }
            if kind != "BASE TABLE" && kind != "SYSTEM VERSIONED" {
                continue;
            }
            let columns: Vec<(String, String)> = conn
                .exec(
                    "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                    (db, name),
                )
                .map_err(|e| self.query_error(format!("listing the columns of {name}"), &e))?;
            let exprs: Vec<String> = columns
                .iter()
                .map(|(col, ty)| {
                    let bytes = format!("CAST({} AS BINARY)", quote_ident(col));
                    // Long values are hashed on their own so a row's text never grows
                    // past max_allowed_packet (CONCAT would turn it into NULL).
                    if is_long_type(ty) {
                        format!("IFNULL(MD5({bytes}), '\\\\N')")
                    } else {
                        format!("IFNULL(HEX({bytes}), '\\\\N')")
                    }
                })
                .collect();
            let sql = format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {})), 1, 16), 16, 10) AS DECIMAL(65,0))), 0) AS CHAR) FROM {quoted}",
                exprs.join(", ")
            );
            let (count, sum): (u64, String) = conn
                .query_first(&sql)
                .map_err(|e| self.query_error(format!("reading table {name}"), &e))?
                .unwrap_or((0, "0".into()));
            rows_total += count;
            table_count += 1;
            parts.insert(
                name.clone(),
                PartDigest {
                    count,
                    digest: format!("md5:{sum}"),
                },
            );
        }

        // Triggers, routines and events, one line each.
        let others: Vec<Option<String>> = conn
            .exec(
                "SELECT CONCAT_WS(' ', 'trigger', TRIGGER_NAME, 'on', EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, \
                                  ACTION_ORDER, DEFINER, ACTION_STATEMENT) \
                 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
                 UNION ALL \
                 SELECT CONCAT_WS(' ', 'routine', ROUTINE_TYPE, ROUTINE_NAME, IFNULL(DTD_IDENTIFIER, ''), DEFINER, \
                                  IFNULL(ROUTINE_DEFINITION, '')) \
                 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
                 UNION ALL \
                 SELECT CONCAT_WS(' ', 'event', EVENT_NAME, STATUS, IFNULL(EVENT_DEFINITION, '')) \
                 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (db, db, db),
            )
            .map_err(|e| self.query_error("listing triggers, routines and events", &e))?;
        ddl.extend(others.into_iter().flatten());
        parts.insert("schema:ddl".to_string(), ddl_part(ddl));
        // The database's own defaults decide what later CREATE TABLEs get (a utf8mb4
        // database restored as latin1 rejects emoji in every new table).
        let defaults: Option<(String, String)> = conn
            .exec_first(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .map_err(|e| self.query_error("reading the database's character set", &e))?;
        if let Some((charset, collation)) = defaults {
            parts.insert(
                DATABASE_PART.to_string(),
                PartDigest {
                    count: 0,
                    digest: format!("{charset} {collation}"),
                },
            );
        }

        let mut counts = BTreeMap::new();
        counts.insert("tables".to_string(), table_count);
        counts.insert("rows".to_string(), rows_total);
        Ok(Inspection {
            counts,
            fingerprint: Fingerprint::from_parts(parts),
        })
    }

    /// Whether the server is MariaDB (else MySQL), which decides the tools' names.
    fn is_mariadb(&self, conn: &mut Conn) -> Result<bool, SourceError> {
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .map_err(|e| self.query_error("reading the server version", &e))?;
        Ok(version.unwrap_or_default().contains("MariaDB"))
    }

    /// This source pointed at database `db` instead (same server, user and password).
    fn with_database(&self, t: &Target, db: &str) -> Mysql {
        let mut config = self.config.clone();
        config.url = url_with_db(&config.url, db);
        let inside = exec_runtime(&config);
        Mysql {
            config,
            target: Ok(Target {
                db: db.to_string(),
                ..t.clone()
            }),
            inside,
        }
    }

    /// Creates an empty sandbox database with the live database's character set and
    /// collation.
    fn create_sandbox(&self, t: &Target) -> Result<ScratchDatabase<Self>, SourceError> {
        let mut admin = self.connect(t, None)?;
        let like: Option<(String, String)> = admin
            .exec_first(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (&t.db,),
            )
            .map_err(|e| self.query_error("reading the live database's character set", &e))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let name = sandbox_name();
            let mut sql = format!("CREATE DATABASE {}", quote_ident(&name));
            if let Some((charset, collation)) = &like {
                sql.push_str(&format!(
                    " CHARACTER SET {} COLLATE {}",
                    quote_ident(charset),
                    quote_ident(collation)
                ));
            }
            match admin.query_drop(&sql) {
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
                        move |db| origin.drop_sandbox(db),
                    ));
                }
                // ER_DB_CREATE_EXISTS: another sandbox drew the same name.
                Err(mysql::Error::MySqlError(m)) if m.code == 1007 && attempt < 3 => {}
                Err(e) => return Err(self.sandbox_error(t, &name, &e)),
            }
        }
    }

    fn sandbox_error(&self, t: &Target, name: &str, e: &mysql::Error) -> SourceError {
        let (cause, denied) = match e {
            mysql::Error::MySqlError(m) => (
                format!("ERROR {}: {}", m.code, m.message),
                // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR,
                // ER_SPECIFIC_ACCESS_DENIED_ERROR
                matches!(m.code, 1044 | 1045 | 1227),
            ),
            other => (other.to_string(), false),
        };
        let fix = if denied {
            format!(
                "let user '{0}' create and fill sandbox databases: GRANT ALL ON `\\_drydock\\_sandbox\\_%`.* TO '{0}'@...; or drill against a throwaway MariaDB/MySQL instance",
                t.user
            )
        } else {
            "check the server log, or drill against a throwaway MariaDB/MySQL instance".to_string()
        };
        SourceError::invalid(
            &self.location(),
            format!(
                "cannot create the drill sandbox (a throwaway database '{name}' on {}): {}. Fix: {fix}",
                host_port(t),
                redact(&cause, &self.secrets())
            ),
        )
    }

    /// Drops the sandbox database `name` (never anything else).
    fn drop_sandbox(&self, name: &str) -> Result<(), SourceError> {
        if !name.starts_with(SANDBOX_PREFIX) {
            return Err(SourceError::invalid(
                &self.location(),
                format!("refusing to drop '{name}': not a drill sandbox"),
            ));
        }
        let t = self.target()?;
        let mut admin = self.connect(t, None)?;
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))
            .map_err(|e| self.query_error(format!("dropping the drill sandbox '{name}'"), &e))
    }

    /// A clear error for a canary that cannot be written or read.
    fn canary_error(&self, t: &Target, what: &str, e: &mysql::Error) -> SourceError {
        match e {
            // ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
            mysql::Error::MySqlError(m) if matches!(m.code, 1142 | 1044) => SourceError::invalid(
                &self.location(),
                format!(
                    "{what} (table {CANARY_TABLE}): {}. Fix: GRANT CREATE, SELECT, INSERT, DELETE ON `{}`.* TO '{}'@...",
                    redact(&format!("ERROR {}: {}", m.code, m.message), &self.secrets()),
                    t.db.replace('`', "``"),
                    t.user
                ),
            ),
            _ => self.query_error(format!("{what} (table {CANARY_TABLE})"), e),
        }
    }

    /// Whether the canary table exists in the configured database.
    fn canary_table_exists(&self, t: &Target, conn: &mut Conn) -> Result<bool, SourceError> {
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.db, CANARY_TABLE),
            )
            .map_err(|e| self.canary_error(t, "looking for the drill canary", &e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Makes the configured database ready for the SQL: recreated when it holds data,
    /// created when missing.
    /// The character set and collation of `db`, if it exists.
    fn database_defaults(
        &self,
        conn: &mut Conn,
        db: &str,
    ) -> Result<Option<(String, String)>, SourceError> {
        conn.exec_first(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .map_err(|e| self.query_error("checking the target database", &e))
    }

    /// Gives database `db` the backup's default character set and collation.
    fn set_defaults(
        &self,
        conn: &mut Conn,
        db: &str,
        defaults: &(String, String),
    ) -> Result<(), SourceError> {
        conn.query_drop(format!(
            "ALTER DATABASE {} CHARACTER SET {} COLLATE {}",
            quote_ident(db),
            quote_ident(&defaults.0),
            quote_ident(&defaults.1)
        ))
        .map_err(|e| {
            self.query_error(
                format!(
                    "setting database '{db}' to character set {} collation {}",
                    defaults.0, defaults.1
                ),
                &e,
            )
        })
    }

    /// Drops and recreates the live database for a replay (with the backup's character
    /// set, else its own); a database that cannot be dropped is replayed into as it is.
    fn recreate_database(
        &self,
        t: &Target,
        wanted: Option<&(String, String)>,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let mut admin = self.connect(t, None)?;
        let existing = self.database_defaults(&mut admin, &t.db)?;
        let db = quote_ident(&t.db);
        if existing.is_some() {
            if let Err(e) = admin.query_drop(format!("DROP DATABASE {db}")) {
                // The dump drops and recreates each of its tables itself; only objects
                // that are not in the backup would stay.
                let message = format!(
                    "cannot drop database '{}' ({}); restoring into it as it is (tables not in the backup stay)",
                    t.db,
                    redact(&e.to_string(), &self.secrets())
                );
                tracing::warn!(location = %self.location(), "{message}");
                ctx.events.emit(Event::Warning {
                    message: format!("{}: {message}", ctx.label),
                });
                if let Some(w) = wanted {
                    self.set_defaults(&mut admin, &t.db, w)?;
                }
                return Ok(());
            }
        }
        let mut sql = format!("CREATE DATABASE {db}");
        if let Some((charset, collation)) = wanted.or(existing.as_ref()) {
            sql.push_str(&format!(
                " CHARACTER SET {} COLLATE {}",
                quote_ident(charset),
                quote_ident(collation)
            ));
        }
        admin
            .query_drop(sql)
            .map_err(|e| self.query_error(format!("creating database '{}'", t.db), &e))
    }

    /// Pipes the fetched SQL into the server's client tool, into database `t.db`.
    fn replay(
        &self,
        t: &Target,
        fetch: &dyn Fetch,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.location();
        let mariadb = {
            let mut conn = self.connect(t, None)?;
            self.is_mariadb(&mut conn)?
        };
        let client = self.tool(if mariadb {
            &["mariadb", "mysql"]
        } else {
            &["mysql", "mariadb"]
        })?;
        let options = self.option_file(t, ctx.scratch)?;
        let args = vec![
            format!("--defaults-extra-file={}", options.path()),
            "--binary-mode".to_string(),
            "--batch".into(),
            "--max-allowed-packet=1G".into(),
            format!("--database={}", t.db),
        ];
        let tool = self.spawn(&client, &args, true, false)?;
        let result = pipe_into(tool, fetch, &loc);
        drop(options);
        result
    }

    /// Objects other than base tables in `db` (views, triggers, routines, events): they
    /// cannot be moved to another database by `RENAME TABLE`.
    fn unmovable_objects(&self, conn: &mut Conn, db: &str) -> Result<u64, SourceError> {
        let n: Option<u64> = conn
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE NOT IN ('BASE TABLE', 'SYSTEM VERSIONED')) \
                      + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?) \
                      + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) \
                      + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
                (db, db, db, db),
            )
            .map_err(|e| self.query_error("listing views, triggers, routines and events", &e))?;
        Ok(n.unwrap_or(0))
    }

    fn base_tables(&self, conn: &mut Conn, db: &str) -> Result<Vec<String>, SourceError> {
        conn.exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
            (db,),
        )
        .map_err(|e| self.query_error("listing tables", &e))
    }

    /// Drops the scratch databases that drydock runs on this host were killed before
    /// dropping, each with a warning naming it.
    fn remove_killed_runs_scratch(&self, t: &Target, ctx: &SourceContext<'_>) {
        let Ok(mut admin) = self.connect(t, None) else {
            return;
        };
        let names: Vec<String> = admin
            .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_drydock\\_%'")
            .unwrap_or_default();
        for (name, pid) in common::killed_runs_scratch(&names, &[SANDBOX_PREFIX, OLD_PREFIX]) {
            let message = match admin.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&name))) {
                Ok(()) => format!(
                    "{}: removed scratch database '{name}' that a killed drydock run (pid {pid}) left on {}",
                    ctx.label,
                    host_port(t)
                ),
                Err(e) => format!(
                    "{}: scratch database '{name}' that a killed drydock run (pid {pid}) left could not be removed ({}); drop it by hand: DROP DATABASE {}",
                    ctx.label,
                    redact(&e.to_string(), &self.secrets()),
                    quote_ident(&name)
                ),
            };
            tracing::warn!(location = %self.location(), "{message}");
            ctx.events.emit(Event::Warning { message });
        }
    }

    /// Restores into a scratch database beside the live one and proves it against the
    /// manifest before the live database changes at all. The verified tables are then
    /// moved in with one atomic `RENAME TABLE` (the live ones moved out to a database
    /// that is dropped afterwards); when views, triggers, routines or events make that
    /// impossible, the proven backup is replayed into the recreated live database.
    /// Without the right to create the scratch database, the whole stream is read and
    /// checked against its SHA-256 first, then replayed.
    fn restore_beside(
        &self,
        t: &Target,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        wanted: Option<&(String, String)>,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.location();
        let scratch = match self.create_sandbox(t) {
            Ok(s) => s,
            Err(e) => {
                let message = format!(
                    "cannot restore beside database '{}' first ({e}); reading and checking the whole backup, then replaying it into the live database",
                    t.db
                );
                tracing::warn!(location = %loc, "{message}");
                ctx.events.emit(Event::Warning {
                    message: format!("{}: {message}", ctx.label),
                });
                common::read_through(fetch, record, &loc)?;
                ctx.before_replacing_live(&format!("recreating database '{}'", t.db))?;
                self.recreate_database(t, wanted, ctx)?;
                return self.replay(t, fetch, ctx);
            }
        };
        let unchanged = |e: SourceError| {
            SourceError::invalid(
                &loc,
                format!(
                    "restoring beside the live database (into scratch database '{}') failed: {e}; the live database '{}' was not changed",
                    scratch.name(),
                    t.db
                ),
            )
        };
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: restoring into scratch database '{}' beside the live one",
                ctx.label,
                scratch.name()
            ),
        });
        let mut admin = self.connect(t, None)?;
        if let Some(w) = wanted {
            self.set_defaults(&mut admin, scratch.name(), w)
                .map_err(unchanged)?;
        }
        common::restore_and_prove(scratch.target(), fetch, record, ctx, &unchanged)?;
        let unmovable = self.unmovable_objects(&mut admin, &t.db)?
            + self.unmovable_objects(&mut admin, scratch.name())?;
        if unmovable > 0 {
            ctx.events.emit(Event::Step {
                message: format!(
                    "{}: the backup restores and verifies; views, triggers, routines or events cannot be moved by RENAME TABLE, so it is replayed into database '{}'",
                    ctx.label, t.db
                ),
            });
            drop(scratch);
            ctx.before_replacing_live(&format!("recreating database '{}'", t.db))?;
            self.recreate_database(t, wanted, ctx)?;
            return self.replay(t, fetch, ctx);
        }
        let old = sandbox_name().replacen(SANDBOX_PREFIX, OLD_PREFIX, 1);
        let live_tables = self.base_tables(&mut admin, &t.db)?;
        let fresh_tables = self.base_tables(&mut admin, scratch.name())?;
        let live_defaults = self.database_defaults(&mut admin, &t.db)?;
        let mut create_old = format!("CREATE DATABASE {}", quote_ident(&old));
        if let Some((charset, collation)) = &live_defaults {
            create_old.push_str(&format!(
                " CHARACTER SET {} COLLATE {}",
                quote_ident(charset),
                quote_ident(collation)
            ));
        }
        admin.query_drop(create_old).map_err(|e| {
            unchanged(self.query_error(format!("creating '{old}' to move the live tables to"), &e))
        })?;
        let moves: Vec<String> = live_tables
            .iter()
            .map(|n| {
                format!(
                    "{}.{} TO {}.{}",
                    quote_ident(&t.db),
                    quote_ident(n),
                    quote_ident(&old),
                    quote_ident(n)
                )
            })
            .chain(fresh_tables.iter().map(|n| {
                format!(
                    "{}.{} TO {}.{}",
                    quote_ident(scratch.name()),
                    quote_ident(n),
                    quote_ident(&t.db),
                    quote_ident(n)
                )
            }))
            .collect();
        ctx.before_replacing_live(&format!(
            "moving the verified tables into database '{}'",
            t.db
        ))?;
        if !moves.is_empty() {
            if let Err(e) = admin.query_drop(format!("RENAME TABLE {}", moves.join(", "))) {
                let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&old)));
                return Err(unchanged(
                    self.query_error("moving the verified tables in (RENAME TABLE)", &e),
                ));
            }
        }
        if let Some(w) = wanted {
            self.set_defaults(&mut admin, &t.db, w)?;
        }
        if let Err(e) = admin.query_drop(format!("DROP DATABASE {}", quote_ident(&old))) {
            ctx.events.emit(Event::Warning {
                message: format!(
                    "{}: the previous tables are left in database '{old}': {}; drop it by hand: DROP DATABASE {}",
                    ctx.label,
                    redact(&e.to_string(), &self.secrets()),
                    quote_ident(&old)
                ),
            });
        }
        Ok(())
    }
}

/// The fingerprint part holding the database's default character set and collation.
const DATABASE_PART: &str = "schema:database";
/// Name prefix of the database the replaced tables move to until it is dropped.
const OLD_PREFIX: &str = "_drydock_old_";

/// The character set and collation a backup recorded for its database, if any (older
/// backups did not).
fn recorded_defaults(record: &SourceRecord) -> Option<(String, String)> {
    let part = record.fingerprint.as_ref()?.parts.get(DATABASE_PART)?;
    let (charset, collation) = part.digest.split_once(' ')?;
    Some((charset.to_string(), collation.to_string()))
}

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
    /// [`Mysql::restore_beside`]. A database that is missing or empty is filled directly.
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

/// Reads the dump's output until its transaction has certainly started, and returns
/// what it read (to be stored first).
///
/// `mysqldump`/`mariadb-dump` write their header before `START TRANSACTION WITH
/// CONSISTENT SNAPSHOT` and everything else after it, so any byte after the header's
/// last line proves the snapshot exists. Watching the output (rather than, say, the
/// server's process list) ties the proof to the dump's own connection, whatever else
/// connects meanwhile. The tool's stdout is block-buffered, so usually the first bytes
/// to arrive are already past the header; if the header's last line never shows up,
/// [`HEADER_LIMIT`] bytes or EOF are proof enough. Until then the global read lock
/// is held, so the wait costs writers a few milliseconds, never consistency.
fn read_past_header(stdout: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(pos) = find(&buf, HEADER_END) {
            if buf.len() > pos + HEADER_END.len() {
                return Ok(buf);
            }
        }
        if buf.len() > HEADER_LIMIT {
            return Ok(buf);
        }
        let n = stdout.read(&mut chunk)?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Types whose values can be long: hashed per value instead of hex-encoded.
fn is_long_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "json"
            | "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
    )
}

/// `SHOW CREATE TABLE` without the ` AUTO_INCREMENT=N` table option (a counter, not
/// the schema).
fn strip_auto_increment(create: &str) -> String {
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
            continue;
        }
        out.push_str(&rest[..i]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// A value for a MySQL option file: quoted, with the escapes option files understand.
fn option_value(v: &str) -> Result<String, SourceError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(SourceError::invalid(
            "mysql",
            "a credential contains a line break, which a client option file cannot carry",
        ));
    }
    let escaped = v.replace('\\', "\\\\").replace('\t', "\\t");
    // Only the outer quotes are removed; inside them a quote of the other kind is
    // plain text, and `#` does not start a comment.
    let quote = if v.contains('"') && !v.contains('\'') {
        '\''
    } else {
        '"'
    };
    Ok(format!("{quote}{escaped}{quote}"))
}

fn find_tool(names: &[&str]) -> Result<PathBuf, SourceError> {
    for name in names {
        if let Some(p) = crate::find_program(name) {
            return Ok(p);
        }
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(SourceError::MissingTool {
        program: names[0].to_string(),
        fix: format!(
            "install the {} client tools (e.g. the mariadb-client or mysql-client package)",
            if names[0].starts_with("mariadb") {
                "MariaDB"
            } else {
                "MySQL"
            }
        ),
    })
}

/// Checks that `dumped` (what the stored SQL holds) creates every table of the
/// snapshot's fingerprint and inserts exactly its rows.
fn prove_dump(dumped: &proof::SqlDump, fingerprint: &Fingerprint) -> Result<(), String> {
    for (name, part) in &fingerprint.parts {
        // `schema:ddl` and `schema:database` describe the database, not a table.
        if name.starts_with("schema:") {
            continue;
        }
        if !dumped.created.contains(name) {
            return Err(format!("its dump has no CREATE TABLE for table `{name}`"));
        }
        let rows = dumped.rows.get(name).copied().unwrap_or(0);
        if rows != part.count {
            return Err(if rows == 0 {
                format!(
                    "its dump has no data for table `{name}` (fingerprint: {} rows)",
                    part.count
                )
            } else {
                format!(
                    "its dump holds {rows} rows of table `{name}` (fingerprint: {} rows)",
                    part.count
                )
            });
        }
    }
    Ok(())
}

/// Whether a dump tool is MySQL's own `mysqldump` (it takes `--set-gtid-purged`).
fn exec_runtime(config: &MysqlSource) -> Option<Box<dyn drydock_runtimes::Runtime>> {
    config
        .exec_in
        .as_ref()
        .map(|t| drydock_runtimes::build(&t.service, &t.runtime))
}

fn tool_is_mysql(program: &Path) -> bool {
    crate::process::without_secret_env(&mut std::process::Command::new(program))
        .arg("--version")
        .output()
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            !v.contains("MariaDB") && v.contains("Ver 8")
        })
        .unwrap_or(false)
}

fn parse_url(raw: &str) -> Result<Target, String> {
    common::parse_url(raw, "mysql", 3306, "root").map(|(target, _)| target)
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_increment_is_stripped() {
        let create = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4";
        assert_eq!(
            strip_auto_increment(create),
            "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
    }

    #[test]
    fn header_end_is_found_only_with_bytes_after_it() {
        let header =
            b"-- MariaDB dump\n/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n".to_vec();
        let mut r = Cursor::new([header.clone(), b"\n--\n-- Table structure".to_vec()].concat());
        assert!(read_past_header(&mut r)
            .unwrap()
            .ends_with(b"Table structure"));
        let mut r = Cursor::new(header.clone());
        assert_eq!(
            read_past_header(&mut r).unwrap(),
            header,
            "EOF ends the wait"
        );
    }

    #[test]
    fn option_values_are_quoted() {
        assert_eq!(option_value("p#ss").unwrap(), "\"p#ss\"");
        assert_eq!(option_value("a\"b").unwrap(), "'a\"b'");
        assert_eq!(option_value("a\\b").unwrap(), "\"a\\\\b\"");
        assert!(option_value("a\nb").is_err());
    }

    #[test]
    fn urls_parse() {
        let t = parse_url("mysql://app@db:3307/shop").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.db.as_str()),
            ("db", 3307, "app", "shop")
        );
        assert_eq!(parse_url("mariadb://h/x").unwrap().user, "root");
    }
}
