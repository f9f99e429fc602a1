//! A real PostgreSQL server for tests: its own temp data directory, listening on
//! 127.0.0.1 on a free port (and a Unix socket inside the temp directory), password
//! (SCRAM) authentication with a per-server random password, fsync off. Stopped and
//! removed on drop.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the server runs as
//! `nobody`. `initdb` runs once per PostgreSQL version into a shared template directory
//! (`$TMPDIR/drydock-testkit/`), which each server copies; that keeps startup well under
//! a second after the first.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::program;
use crate::server::{self, copy_tree, random_password};

/// The superuser's password in the shared template; every server changes it at start.
const TEMPLATE_PASSWORD: &str = "drydock-template-pw";
const SUPERUSER: &str = "postgres";

pub struct PgServer {
    dir: TempDir,
    port: u16,
    password: String,
    child: Option<Child>,
    run_as: Option<(u32, u32)>,
    /// Set once the server is handed to `pg_ctl` ([`PgServer::pg_ctl`]).
    pg_ctl: bool,
}

/// Shell commands that start, stop and query a [`PgServer`] through `pg_ctl`, as an
/// operator's `process` runtime would, and the files that runtime points at.
#[derive(Debug, Clone)]
pub struct PgCtl {
    pub start: String,
    pub stop: String,
    pub status: String,
    pub log_file: PathBuf,
    pub pid_file: PathBuf,
    pub data_dir: PathBuf,
}

impl PgServer {
    /// Starts a fresh server; panics with the server log if it cannot.
    pub fn start() -> PgServer {
        let run_as = unprivileged_user();
        let template = template(run_as);
        let dir = tempfile::Builder::new()
            .prefix("drydock-pg-")
            .tempdir()
            .expect("temp dir");
        copy_tree(&template, &dir.path().join("data"));
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let mut server = PgServer {
            dir,
            port: 0,
            password: TEMPLATE_PASSWORD.to_string(),
            child: None,
            run_as,
            pg_ctl: false,
        };
        server::start_on_free_port(
            "PostgreSQL",
            &["could not bind", "already in use"],
            |port| {
                server.port = port;
                server.spawn_and_wait()
            },
        );
        let pw = random_password("pg");
        server.psql(
            "postgres",
            &format!("ALTER USER {SUPERUSER} PASSWORD '{pw}'"),
        );
        server.password = pw;
        server
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("server log");
        let mut cmd = Command::new(program("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=60", "-c", "shared_buffers=64MB"])
            .args(["-c", "max_wal_size=1GB", "-c", "log_min_messages=warning"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let child = server::spawn_until_ready(
            &mut cmd,
            "postgres",
            &log_path,
            || self.try_connect("postgres").is_ok(),
            immediate_shutdown,
        )?;
        self.child = Some(child);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The directory holding the Unix socket (and the data directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client connected to `db` as the superuser over TCP.
    pub fn connect(&self, db: &str) -> postgres::Client {
        self.try_connect(db)
            .unwrap_or_else(|e| panic!("connect to {db} on port {}: {e}", self.port))
    }

    fn try_connect(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(db)
            .connect_timeout(Duration::from_secs(5))
            .connect(postgres::NoTls)
    }

    /// Runs `sql` (one or more statements) in `db`; returns the rows of all results like
    /// `psql -At`: columns joined by `|`, rows by newlines, NULL as the empty string.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {db}: {e}\n{sql}"))
    }

    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut client = self.try_connect(db).map_err(|e| error_text(&e))?;
        let messages = client.simple_query(sql).map_err(|e| error_text(&e))?;
        let mut rows = Vec::new();
        for m in messages {
            if let postgres::SimpleQueryMessage::Row(row) = m {
                let cols: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap_or("")).collect();
                rows.push(cols.join("|"));
            }
        }
        Ok(rows.join("\n"))
    }

    pub fn create_db(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")),
        );
    }

    /// Creates a login role with `password`; `createdb` grants CREATEDB.
    pub fn create_user(&self, name: &str, password: &str, createdb: bool) {
        let attr = if createdb { "CREATEDB" } else { "NOCREATEDB" };
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE \"{}\" LOGIN {attr} PASSWORD '{}'",
                name.replace('"', "\"\""),
                password.replace('\'', "''")
            ),
        );
    }

    /// Stops the server (fast shutdown); the data stays for [`PgServer::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            server::stop(&mut child, Signal::SIGINT, Duration::from_secs(15));
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) {
        self.stop();
        if let Err(log) = self.spawn_and_wait() {
            panic!("PostgreSQL did not start again:\n{log}");
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            immediate_shutdown(&mut child);
        }
        if self.pg_ctl {
            let _ = Command::new("/bin/sh")
                .arg("-c")
                .arg(self.pg_ctl_command("stop -m immediate"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Hands the server over to `pg_ctl`: stops it here and returns the commands that
    /// start (same port, same data, log in `dir/pg_ctl.log`), stop and query it. The
    /// server is left stopped; drop still stops it.
    pub fn pg_ctl(&mut self) -> PgCtl {
        self.stop();
        self.pg_ctl = true;
        let log_file = self.dir.path().join("pg_ctl.log");
        std::fs::write(&log_file, "").expect("pg_ctl log");
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&log_file, Some(uid), Some(gid)).expect("chown log");
        }
        PgCtl {
            start: self.pg_ctl_command("start -w -t 20"),
            stop: self.pg_ctl_command("stop -m fast -w -t 20"),
            status: self.pg_ctl_command("status"),
            log_file,
            pid_file: self.dir.path().join("data/postmaster.pid"),
            data_dir: self.dir.path().join("data"),
        }
    }

    fn pg_ctl_command(&self, action: &str) -> String {
        let dir = self.dir.path().display();
        let pg_ctl = program("pg_ctl");
        let options = format!(
            "-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=64MB",
            self.port
        );
        let cmd = format!(
            "{} -D {dir}/data -l {dir}/pg_ctl.log -o '{options}' {action}",
            pg_ctl.display()
        );
        match self.run_as {
            Some(_) => format!("runuser -u nobody -- {cmd}"),
            None => cmd,
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill_now();
    }
}

fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => e.to_string(),
    }
}

/// Immediate shutdown: the postmaster takes its backends with it.
fn immediate_shutdown(child: &mut Child) {
    server::stop(child, Signal::SIGQUIT, Duration::from_secs(5));
}

/// `nobody` when running as root (PostgreSQL refuses root), else the current user.
fn unprivileged_user() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("nobody").ok().flatten();
    Some(
        user.map(|u| (u.uid.as_raw(), u.gid.as_raw()))
            .unwrap_or((65534, 65534)),
    )
}

/// The shared, initialised data directory for this PostgreSQL version (made once).
fn template(run_as: Option<(u32, u32)>) -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let postgres = program("postgres");
            let version = Command::new(&postgres)
                .arg("--version")
                .output()
                .expect("postgres --version");
            let version = server::path_safe(String::from_utf8_lossy(&version.stdout).trim());
            let owner = run_as
                .map(|(u, _)| u.to_string())
                .unwrap_or_else(|| nix::unistd::geteuid().to_string());
            let root = server::template_root();
            let target = root.join(format!("pg-{version}-u{owner}"));
            if target.join("PG_VERSION").is_file() {
                return target;
            }
            let work = tempfile::Builder::new()
                .prefix("pg-template-")
                .tempdir_in(&root)
                .expect("template work dir");
            let pwfile = work.path().join("pw");
            std::fs::write(&pwfile, TEMPLATE_PASSWORD).expect("pwfile");
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(work.path(), Some(uid), Some(gid)).expect("chown");
                std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
            }
            let data = work.path().join("data");
            let mut cmd = Command::new(program("initdb"));
            cmd.arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    SUPERUSER,
                    "-A",
                    "scram-sha-256",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .current_dir(work.path());
            if let Some((uid, gid)) = run_as {
                cmd.uid(uid).gid(gid);
            }
            let out = cmd.output().expect("run initdb");
            assert!(
                out.status.success(),
                "initdb failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            server::install_template(&data, &target, "PG_VERSION");
            target
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_password_and_restarts() {
        let mut pg = PgServer::start();
        assert_eq!(pg.psql("postgres", "SELECT 1, NULL, 'x'"), "1||x");
        pg.create_db("app");
        pg.psql("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        let wrong = postgres::Config::new()
            .host("127.0.0.1")
            .port(pg.port())
            .user("postgres")
            .password("wrong")
            .dbname("postgres")
            .connect(postgres::NoTls);
        assert!(wrong.is_err(), "password authentication is on");
        pg.stop();
        assert!(pg.try_psql("app", "SELECT 1").is_err());
        pg.start_again();
        assert_eq!(pg.psql("app", "SELECT x FROM t"), "7");
    }
}
