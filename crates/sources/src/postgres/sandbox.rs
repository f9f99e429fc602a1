//! Drill sandboxes: a `_drydock_sandbox_XXXXXXXX` database on the same server, made
//! with the live database's encoding and locale and dropped `WITH (FORCE)`; and the
//! canary table that drills write and read back.

use postgres::error::SqlState;
use postgres::Client;

use crate::common::{
    host_port, sandbox_name, ScratchDatabase, SqlServer, Target, CANARY_TABLE, SANDBOX_PREFIX,
};
use crate::process::redact;
use crate::{DataSource, SourceError};

use super::connect::{force_drop_database, pg_message, quote_ident, quote_literal, Postgres};

impl Postgres {
    /// Creates an empty sandbox database owned by the url's user, with the live
    /// database's encoding and locale (so text compares and sorts alike).
    pub(super) fn create_sandbox(&self, t: &Target) -> Result<ScratchDatabase<Self>, SourceError> {
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

    pub(super) fn sandbox_error(&self, t: &Target, name: &str, e: &postgres::Error) -> SourceError {
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
    pub(super) fn drop_sandbox(&self, name: &str, major: u32) -> Result<(), SourceError> {
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
    pub(super) fn canary_error(&self, t: &Target, what: &str, e: &postgres::Error) -> SourceError {
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
    pub(super) fn canary_table_exists(
        &self,
        t: &Target,
        client: &mut Client,
    ) -> Result<bool, SourceError> {
        client
            .query_one(
                &format!("SELECT pg_catalog.to_regclass('public.{CANARY_TABLE}') IS NOT NULL"),
                &[],
            )
            .map(|r| r.get(0))
            .map_err(|e| self.canary_error(t, "looking for the drill canary", &e))
    }
}
