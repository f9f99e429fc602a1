//! Restore beside the live database: the dump is replayed into a scratch database
//! with the recorded defaults, verified against the manifest, and moved in table by
//! table (`RENAME TABLE`), the old tables kept aside until it succeeded.

use drydock_domain::{Event, SourceRecord};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::common::{self, host_port, pipe_into, sandbox_name, SqlServer, Target, SANDBOX_PREFIX};
use crate::process::redact;
use crate::{DataSource, Fetch, Sandbox, SourceContext, SourceError};

use super::connect::{quote_ident, Mysql};
use super::fingerprint::DATABASE_PART;

impl Mysql {
    /// Makes the configured database ready for the SQL: recreated when it holds data,
    /// created when missing.
    /// The character set and collation of `db`, if it exists.
    pub(super) fn database_defaults(
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
    pub(super) fn set_defaults(
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
    pub(super) fn recreate_database(
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
    pub(super) fn replay(
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
    pub(super) fn unmovable_objects(&self, conn: &mut Conn, db: &str) -> Result<u64, SourceError> {
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

    pub(super) fn base_tables(
        &self,
        conn: &mut Conn,
        db: &str,
    ) -> Result<Vec<String>, SourceError> {
        conn.exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
            (db,),
        )
        .map_err(|e| self.query_error("listing tables", &e))
    }

    /// Drops the scratch databases that drydock runs on this host were killed before
    /// dropping, each with a warning naming it.
    pub(super) fn remove_killed_runs_scratch(&self, t: &Target, ctx: &SourceContext<'_>) {
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
    pub(super) fn restore_beside(
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

/// Name prefix of the database the replaced tables move to until it is dropped.
pub(super) const OLD_PREFIX: &str = "_drydock_old_";

/// The character set and collation a backup recorded for its database, if any (older
/// backups did not).
pub(super) fn recorded_defaults(record: &SourceRecord) -> Option<(String, String)> {
    let part = record.fingerprint.as_ref()?.parts.get(DATABASE_PART)?;
    let (charset, collation) = part.digest.split_once(' ')?;
    Some((charset.to_string(), collation.to_string()))
}
