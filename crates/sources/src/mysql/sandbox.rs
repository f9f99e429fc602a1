//! Drill sandboxes: a `_drydock_sandbox_XXXXXXXX` database on the same server with
//! the live database's defaults, dropped afterwards; and the canary table drills
//! write and read back.

use mysql::prelude::Queryable;
use mysql::Conn;

use crate::common::{
    host_port, sandbox_name, ScratchDatabase, SqlServer, Target, CANARY_TABLE, SANDBOX_PREFIX,
};
use crate::process::redact;
use crate::{DataSource, SourceError};

use super::connect::{quote_ident, Mysql};

impl Mysql {
    /// Creates an empty sandbox database with the live database's character set and
    /// collation.
    pub(super) fn create_sandbox(&self, t: &Target) -> Result<ScratchDatabase<Self>, SourceError> {
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

    pub(super) fn sandbox_error(&self, t: &Target, name: &str, e: &mysql::Error) -> SourceError {
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
    pub(super) fn drop_sandbox(&self, name: &str) -> Result<(), SourceError> {
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
    pub(super) fn canary_error(&self, t: &Target, what: &str, e: &mysql::Error) -> SourceError {
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
    pub(super) fn canary_table_exists(
        &self,
        t: &Target,
        conn: &mut Conn,
    ) -> Result<bool, SourceError> {
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.db, CANARY_TABLE),
            )
            .map_err(|e| self.canary_error(t, "looking for the drill canary", &e))?;
        Ok(n.unwrap_or(0) > 0)
    }
}
