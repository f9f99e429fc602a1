//! Reaching the server: the source's handle ([`Mysql`]), its connections with errors
//! that name the server and the fix, the client tools (`mariadb-dump`/`mysqldump`,
//! `mariadb`/`mysql`, on this host or inside the service's container) and the option
//! file that hands them the password, and identifier quoting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_domain::config::MysqlSource;
use drydock_domain::Secret;
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

use crate::common::Staged;
use crate::common::{self, host_port, tool_spec, url_with_db, SqlServer, Target};
use crate::process::{redact, Tool};
use crate::{DataSource, SourceError};

pub struct Mysql {
    pub(super) config: MysqlSource,
    pub(super) target: Result<Target, String>,
    /// With `exec = true`: the container the tools run in.
    pub(super) inside: Option<Box<dyn drydock_runtimes::Runtime>>,
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

    pub(super) fn raw_connect(&self, t: &Target, db: Option<&str>) -> Result<Conn, mysql::Error> {
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

    pub(super) fn connect(&self, t: &Target, db: Option<&str>) -> Result<Conn, SourceError> {
        self.raw_connect(t, db)
            .map_err(|e| self.connect_error(t, db, &e))
    }

    pub(super) fn connect_error(
        &self,
        t: &Target,
        db: Option<&str>,
        e: &mysql::Error,
    ) -> SourceError {
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

    pub(super) fn query_error(&self, what: impl Into<String>, e: &mysql::Error) -> SourceError {
        let cause = match e {
            mysql::Error::MySqlError(m) => format!("ERROR {}: {}", m.code, m.message),
            other => other.to_string(),
        };
        SourceError::query(&self.location(), what, redact(&cause, &self.secrets()))
    }

    /// The option file handing credentials to a tool (inside the server's container
    /// when the tools run there, connecting over its loopback on the default port).
    pub(super) fn option_file(
        &self,
        t: &Target,
        scratch: &Path,
    ) -> Result<Staged<'_>, SourceError> {
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
    pub(super) fn tool(&self, names: &[&str]) -> Result<PathBuf, SourceError> {
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

    pub(super) fn spawn(
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

    /// Whether the server is MariaDB (else MySQL), which decides the tools' names.
    pub(super) fn is_mariadb(&self, conn: &mut Conn) -> Result<bool, SourceError> {
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .map_err(|e| self.query_error("reading the server version", &e))?;
        Ok(version.unwrap_or_default().contains("MariaDB"))
    }

    /// This source pointed at database `db` instead (same server, user and password).
    pub(super) fn with_database(&self, t: &Target, db: &str) -> Mysql {
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
}

/// A value for a MySQL option file: quoted, with the escapes option files understand.
pub(super) fn option_value(v: &str) -> Result<String, SourceError> {
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

pub(super) fn find_tool(names: &[&str]) -> Result<PathBuf, SourceError> {
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

/// Whether a dump tool is MySQL's own `mysqldump` (it takes `--set-gtid-purged`).
pub(super) fn exec_runtime(config: &MysqlSource) -> Option<Box<dyn drydock_runtimes::Runtime>> {
    config
        .exec_in
        .as_ref()
        .map(|t| drydock_runtimes::build(&t.service, &t.runtime))
}

pub(super) fn tool_is_mysql(program: &Path) -> bool {
    crate::process::without_secret_env(&mut std::process::Command::new(program))
        .arg("--version")
        .output()
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            !v.contains("MariaDB") && v.contains("Ver 8")
        })
        .unwrap_or(false)
}

pub(super) fn parse_url(raw: &str) -> Result<Target, String> {
    common::parse_url(raw, "mysql", 3306, "root").map(|(target, _)| target)
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::backup::read_past_header;
    use crate::mysql::fingerprint::strip_auto_increment;
    use std::io::Cursor;

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
