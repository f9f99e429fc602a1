//! Restore without dropping the live database first: where the archive goes
//! ([`Placement`]: beside the live database, into an empty one, or over it in one
//! transaction when drydock may not create databases), the scratch database restored
//! and verified beside it, and the swap by renaming both in one transaction.

use std::time::Duration;

use drydock_domain::{Event, SourceRecord};
use postgres::error::SqlState;

use crate::common::{self, host_port, pipe_into, sandbox_name, SqlServer, Target, SANDBOX_PREFIX};
use crate::process::redact;
use crate::{DataSource, Fetch, Sandbox, SourceContext, SourceError};

use super::connect::{force_drop_database, pg_message, quote_ident, Postgres};

impl Postgres {
    /// Decides where a restore goes, creating the database when it is missing: straight
    /// in when there is nothing to lose, else beside the live database (needs CREATEDB
    /// and ownership of it), else into it in one transaction.
    pub(super) fn placement(&self, t: &Target) -> Result<(Placement, u32), SourceError> {
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
    pub(super) fn pg_restore_into(
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
    pub(super) fn restore_beside(
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
    pub(super) fn remove_killed_runs_scratch(&self, t: &Target, ctx: &SourceContext<'_>) {
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
    pub(super) fn swap_databases(
        &self,
        t: &Target,
        fresh: &str,
        old: &str,
    ) -> Result<(), SourceError> {
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
pub(super) enum Placement {
    /// The database is new or holds no tables: nothing to lose.
    Fresh,
    /// Into a scratch database, verified, then swapped in by rename.
    Beside,
    /// The user may not create databases: into the live one, in one transaction.
    InPlace,
}

/// Name prefix of a replaced database between the swap and its drop.
pub(super) const OLD_PREFIX: &str = "_drydock_old_";

/// How often the swap is tried while clients reconnect to the live database.
pub(super) const SWAP_ATTEMPTS: u32 = 10;
