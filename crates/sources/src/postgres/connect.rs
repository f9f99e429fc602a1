//! Reaching the server: the source's handle ([`Postgres`]), its connections (snapshot,
//! admin, maintenance) with errors that name the server and the fix, the client tools
//! (`pg_dump`, `pg_restore`, `psql`) matched to the server's major version, and the
//! quoting of identifiers, literals and conninfo values.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_domain::config::PostgresSource;
use drydock_domain::Secret;
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::common::{self, host_port, tool_spec, url_with_db, SqlServer, Target};
use crate::process::{redact, Tool};
use crate::{DataSource, SourceError};

/// Session settings that make every value's text form (which the row digests hash)
/// independent of the server's and the role's configuration, and object names always
/// schema-qualified.
pub(super) const SESSION_SETTINGS: &str =
    "SET search_path = pg_catalog; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 1; \
     SET bytea_output = 'hex'; SET lc_monetary = 'C'; SET statement_timeout = 0; \
     SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0";

pub struct Postgres {
    pub(super) config: PostgresSource,
    pub(super) target: Result<Target, String>,
    /// With `exec = true`: the container the tools run in.
    pub(super) inside: Option<Box<dyn drydock_runtimes::Runtime>>,
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

    pub(super) fn raw_connect(&self, t: &Target, db: &str) -> Result<Client, postgres::Error> {
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
    pub(super) fn connect(&self, t: &Target, db: &str) -> Result<Client, SourceError> {
        self.raw_connect(t, db)
            .map_err(|e| self.connect_error(t, db, &e))
    }

    pub(super) fn connect_error(&self, t: &Target, db: &str, e: &postgres::Error) -> SourceError {
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

    pub(super) fn query_error(&self, what: impl Into<String>, e: &postgres::Error) -> SourceError {
        SourceError::query(
            &self.location(),
            what,
            redact(&pg_message(e), &self.secrets()),
        )
    }

    /// A connection to the configured database inside a `REPEATABLE READ READ ONLY`
    /// transaction with the canonical session settings.
    pub(super) fn snapshot_connection(&self, t: &Target) -> Result<Client, SourceError> {
        let mut client = self.connect(t, &t.db)?;
        client
            .batch_execute(SESSION_SETTINGS)
            .map_err(|e| self.query_error("setting up the session", &e))?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.query_error("starting a snapshot transaction", &e))?;
        Ok(client)
    }

    pub(super) fn server_major(&self, client: &mut Client) -> Result<u32, SourceError> {
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .map_err(|e| self.query_error("reading the server version", &e))?;
        Ok((row.get::<_, i32>(0) / 10000) as u32)
    }

    /// Host, port and user arguments shared by `pg_dump` and `pg_restore`. Inside the
    /// server's container the tools connect to it on the loopback's default port.
    pub(super) fn connection_args(&self, t: &Target, db: &str) -> Vec<String> {
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

    pub(super) fn spawn_tool(
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

    /// `pg_dump`, its session set to write values as [`SESSION_SETTINGS`] reads them
    /// back (time zone, byte arrays; `pg_dump` sets the date style and float digits
    /// itself), so that a table's rows in the archive and read back with COPY digest
    /// the same.
    pub(super) fn spawn_dump(&self, program: &Path, args: &[String]) -> Result<Tool, SourceError> {
        let mut spec = tool_spec(program, args, false, true).inside(self.inside.as_deref());
        if let Some(pw) = self.password() {
            spec = spec.env("PGPASSWORD", pw);
        }
        let options = match std::env::var("PGOPTIONS") {
            Ok(own) if !own.trim().is_empty() => format!("{own} -c bytea_output=hex"),
            _ => "-c bytea_output=hex".to_string(),
        };
        spec = spec
            .setting("PGCONNECT_TIMEOUT", "10")
            .setting("PGTZ", "UTC")
            .setting("PGOPTIONS", &options);
        spec.spawn(&self.location())
    }

    /// The tool to run: on this host the one matching the server's version, inside the
    /// container the one on its PATH (it came with the server).
    pub(super) fn program(&self, name: &str, server_major: u32) -> Result<PathBuf, SourceError> {
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
    pub(super) fn admin_connection(&self, t: &Target) -> Result<Client, SourceError> {
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
    pub(super) fn with_database(&self, t: &Target, db: &str) -> Postgres {
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

    /// A connection to a database other than the target (`postgres`, else `template1`),
    /// from which the target can be dropped and created.
    pub(super) fn maintenance_connection(&self, t: &Target) -> Result<Client, SourceError> {
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
}

/// Drops database `db`, disconnecting its sessions first (`WITH (FORCE)` from
/// PostgreSQL 13 on, else by terminating them).
pub(super) fn force_drop_database(
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

/// Runs a tool to completion and returns its stdout.
pub(super) fn run_capture(mut tool: Tool) -> Result<String, SourceError> {
    let mut out = String::new();
    let read = tool.take_stdout().read_to_string(&mut out);
    tool.finish()?;
    read.map_err(|e| SourceError::io("pg_restore", "reading its output", e))?;
    Ok(out)
}

/// The PostgreSQL tool matching the server's major version: Debian's versioned folder
/// for that version, else the lowest newer one, else PATH, else the newest there is.
pub(super) fn pg_program(name: &str, server_major: u32) -> Result<PathBuf, SourceError> {
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

pub(super) fn parse_url(raw: &str) -> Result<Target, String> {
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
pub(super) fn error_chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(super) fn io_cause(e: &postgres::Error) -> Option<&std::io::Error> {
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
pub(super) fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{}: {} ({detail})", d.severity(), d.message()),
            None => format!("{}: {}", d.severity(), d.message()),
        },
        None => e.to_string(),
    }
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A libpq conninfo value, quoted.
pub(super) fn conninfo_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
