//! `kind = "mysql"` (or `"mariadb"`): a MySQL or MariaDB database, dumped with
//! `mysqldump`/`mariadb-dump`.

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
pub struct MysqlSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `mysql://USER@HOST:PORT/DATABASE`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
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

/// The `mysql` kind.
pub struct Mysql;

impl SourceKindSpec for Mysql {
    fn aliases(&self) -> &'static [&'static str] {
        &["mariadb"]
    }

    fn count_unit(&self) -> &'static str {
        "rows"
    }

    fn default_port(&self) -> Option<u16> {
        Some(3306)
    }

    fn image_names(&self) -> &'static [&'static str] {
        &["mysql", "mariadb", "percona"]
    }

    fn guess_from_container(&self, container: &mut dyn ContainerFacts) -> Option<DumpGuess> {
        let service = container.service().to_string();
        // A consistent dump takes the global read lock: root has the right to.
        let root = container.secret(&["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"]);
        let (user, password) = match root {
            Some(password) => ("root".to_string(), Some(password)),
            None => {
                container.note(format!("{service}: no root password in its environment; the user needs RELOAD (global read lock) for a consistent dump"));
                (
                    container.literal(&["MARIADB_USER", "MYSQL_USER"], "root"),
                    container.secret(&["MARIADB_PASSWORD", "MYSQL_PASSWORD"]),
                )
            }
        };
        let db = container.literal(&["MARIADB_DATABASE", "MYSQL_DATABASE"], "");
        let db = if db.is_empty() {
            container.note(format!(
                "{service}: TODO: no MYSQL_DATABASE in its environment; put the database name in the url"
            ));
            "TODO".to_string()
        } else {
            db
        };
        let port = container.port();
        Some(DumpGuess {
            url: format!("mysql://{user}@127.0.0.1:{port}/{db}"),
            password,
        })
    }
}

impl SourceSpec for MysqlSource {
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
        Some(CheckSpec::Mysql(SqlCheck::derived(
            &self.url,
            self.password.clone(),
        )))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        if let Some(url) = v.url(&self.url, &["mysql", "mariadb"]) {
            let db = url_database(&url);
            if db.is_empty() || db.contains('/') {
                v.push(
                    "url",
                    "the URL names no database; expected mysql://USER@HOST:PORT/DATABASE",
                );
            }
        }
        v.secret("password", self.password.as_mut());
        v.exec(self.exec, &mut self.exec_in);
        v.bin_dir(self.bin_dir.as_ref());
    }
}
