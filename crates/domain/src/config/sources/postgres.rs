//! `kind = "postgres"`: a PostgreSQL database, dumped with `pg_dump`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{
    url_database, ContainerFacts, DumpGuess, SourceKindSpec, SourceSpec, SourceValidation,
};
use crate::config::health::{CheckSpec, SqlCheck};
use crate::config::runtime::ExecTarget;
use crate::secret::Secret;
use crate::vocabulary::Priority;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `postgres://USER@HOST:PORT/DATABASE`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Tables left out of the backup (`schema.table`; `table` means `public.table`). Drills fail while such a table exists, naming it:
    /// a restore would lose it.
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// The folder the dump and restore tools are taken from (`/usr/pgsql-16/bin` on
    /// RHEL-style layouts), instead of finding them; with `exec = true`, a folder inside
    /// the container. Absolute.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// Run the dump and restore tools inside the service's container (`docker` or
    /// `compose` runtime) through the exec API, so their version matches the server's.
    #[serde(default)]
    pub exec: bool,
    /// The container runtime `exec` runs in, filled at load from the service.
    #[serde(skip)]
    pub exec_in: Option<ExecTarget>,
}

/// The `postgres` kind.
pub struct Postgres;

impl SourceKindSpec for Postgres {
    fn count_unit(&self) -> &'static str {
        "rows"
    }

    fn default_port(&self) -> Option<u16> {
        Some(5432)
    }

    fn image_names(&self) -> &'static [&'static str] {
        &["postgres", "postgis", "timescaledb"]
    }

    fn guess_from_container(&self, container: &mut dyn ContainerFacts) -> Option<DumpGuess> {
        let user = container.literal(&["POSTGRES_USER"], "postgres");
        let db = container.literal(&["POSTGRES_DB"], &user);
        let password = container.secret(&["POSTGRES_PASSWORD"]);
        if password.is_none() {
            let service = container.service().to_string();
            container.note(format!("{service}: no POSTGRES_PASSWORD in its environment; add `password = \"${{env:...}}\"` if the server wants one"));
        }
        let port = container.port();
        Some(DumpGuess {
            url: format!("postgres://{user}@127.0.0.1:{port}/{db}"),
            password,
        })
    }
}

impl SourceSpec for PostgresSource {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn priority(&self) -> Priority {
        self.priority
    }

    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    fn derived_check(&self) -> Option<CheckSpec> {
        Some(CheckSpec::Postgres(SqlCheck::derived(
            &self.url,
            self.password.clone(),
        )))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        if let Some(url) = v.url(&self.url, &["postgres", "postgresql"]) {
            let db = url_database(&url);
            if db.is_empty() || db.contains('/') {
                v.push(
                    "url",
                    "the URL names no database; expected postgres://USER@HOST:PORT/DATABASE",
                );
            }
        }
        v.secret("password", self.password.as_mut());
        v.exec(self.exec, &mut self.exec_in);
        v.bin_dir(self.bin_dir.as_ref());
        for (j, table) in self.exclude_tables.iter_mut().enumerate() {
            let parts: Vec<&str> = table.split('.').collect();
            let valid = matches!(parts.len(), 1 | 2)
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '$')
                });
            if !valid {
                v.push_item(
                    "exclude_tables",
                    j,
                    format!("`{table}` is not a table name; write `schema.table` or `table` (schema public), no patterns or quotes"),
                );
            } else if parts.len() == 1 {
                *table = format!("public.{table}");
            }
        }
    }
}
