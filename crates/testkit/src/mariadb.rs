//! A real MariaDB server for tests: its own temp data directory, listening on 127.0.0.1
//! on a free port (and a Unix socket inside the temp directory), `root` with a
//! per-server random password, durability settings off. Killed and removed on drop.
//!
//! `mariadb-install-db` runs once into a shared template directory
//! (`$TMPDIR/drydock-testkit/`), which each server copies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::server::{self, copy_tree, random_password, wait_exit};
use crate::{program, wait_until};

pub(crate) const TEMPLATE_PASSWORD: &str = "drydock-template-pw";
const USER: &str = "root";

pub struct MariaDb {
    dir: TempDir,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl MariaDb {
    /// Starts a fresh server; panics with the server log if it cannot.
    pub fn start() -> MariaDb {
        let template = template();
        let dir = tempfile::Builder::new()
            .prefix("drydock-mariadb-")
            .tempdir()
            .expect("temp dir");
        copy_tree(&template, &dir.path().join("data"));
        let mut server = MariaDb {
            dir,
            port: 0,
            password: TEMPLATE_PASSWORD.to_string(),
            child: None,
        };
        server::start_on_free_port(
            "MariaDB",
            &["Bind on TCP/IP port", "already in use"],
            |port| {
                server.port = port;
                server.spawn_and_wait()
            },
        );
        let pw = random_password("my");
        set_root_password(&mut server.connect("mysql"), &pw);
        server.password = pw;
        server
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("server.log");
        let _ = std::fs::remove_file(&log_path);
        let mut cmd = Command::new(program("mariadbd"));
        cmd.args(server_args(&self.dir.path().join("data"), self.dir.path()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--log-error={}", log_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = server::spawn_until_ready(
            &mut cmd,
            "mariadbd",
            &log_path,
            || self.try_connect(None).is_ok(),
            server::kill_and_reap,
        )?;
        self.child = Some(child);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:PORT/DB`, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection to `db` as root over TCP.
    pub fn connect(&self, db: &str) -> mysql::Conn {
        self.try_connect(Some(db))
            .unwrap_or_else(|e| panic!("connect to {db} on port {}: {e}", self.port))
    }

    fn try_connect(&self, db: Option<&str>) -> Result<mysql::Conn, mysql::Error> {
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(USER))
            .pass(Some(self.password.clone()))
            .db_name(db)
            .tcp_connect_timeout(Some(Duration::from_secs(5)));
        mysql::Conn::new(opts)
    }

    /// Runs `sql` (one or more statements) in `db`; returns the rows of all results:
    /// columns joined by tabs, rows by newlines, NULL as `NULL`.
    pub fn exec(&self, db: &str, sql: &str) -> String {
        self.try_exec(db, sql)
            .unwrap_or_else(|e| panic!("exec in {db}: {e}\n{sql}"))
    }

    pub fn try_exec(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut conn = self.try_connect(Some(db)).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut result = conn.query_iter(sql).map_err(|e| e.to_string())?;
        while let Some(set) = result.iter() {
            for row in set {
                let row = row.map_err(|e| e.to_string())?;
                let cols: Vec<String> = row.unwrap().into_iter().map(value_text).collect();
                out.push(cols.join("\t"));
            }
        }
        Ok(out.join("\n"))
    }

    pub fn create_db(&self, name: &str) {
        self.exec(
            "mysql",
            &format!("CREATE DATABASE `{}`", name.replace('`', "``")),
        );
    }

    /// Stops the server cleanly; the data stays for [`MariaDb::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            server::stop(&mut child, Signal::SIGTERM, Duration::from_secs(20));
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) {
        self.stop();
        if let Err(log) = self.spawn_and_wait() {
            panic!("MariaDB did not start again:\n{log}");
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            server::kill_and_reap(&mut child);
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill_now();
    }
}

fn value_text(v: mysql::Value) -> String {
    match v {
        mysql::Value::NULL => "NULL".into(),
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        mysql::Value::Int(i) => i.to_string(),
        mysql::Value::UInt(u) => u.to_string(),
        mysql::Value::Float(f) => f.to_string(),
        mysql::Value::Double(d) => d.to_string(),
        other => other.as_sql(true),
    }
}

/// Gives every `root` account `password`.
fn set_root_password(conn: &mut mysql::Conn, password: &str) {
    let hosts: Vec<String> = conn
        .query("SELECT Host FROM mysql.user WHERE User = 'root'")
        .expect("list root users");
    for host in hosts {
        conn.query_drop(format!(
            "ALTER USER 'root'@'{host}' IDENTIFIED BY '{password}'"
        ))
        .expect("set password");
    }
}

/// Kills the bootstrap server if template creation fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            server::kill_and_reap(&mut self.0);
        }
    }
}

/// Options shared by the template bootstrap and every test server.
fn server_args(data: &Path, run_dir: &Path) -> Vec<String> {
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={}", data.display()),
        format!("--socket={}", run_dir.join("mysqld.sock").display()),
        format!("--pid-file={}", run_dir.join("mysqld.pid").display()),
        format!("--tmpdir={}", run_dir.display()),
        "--skip-name-resolve".into(),
        "--innodb-log-file-size=8M".into(),
        "--innodb-buffer-pool-size=64M".into(),
        "--innodb-flush-log-at-trx-commit=0".into(),
        "--innodb-doublewrite=0".into(),
        "--sync-frm=0".into(),
        "--skip-log-bin".into(),
        "--max-connections=100".into(),
    ];
    if nix::unistd::geteuid().is_root() {
        args.push("--user=root".into());
    }
    args
}

/// The shared, initialised data directory for this MariaDB version (made once): root
/// accounts have [`TEMPLATE_PASSWORD`].
pub(crate) fn template() -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let mariadbd = program("mariadbd");
            let version = Command::new(&mariadbd).arg("--version").output().expect("mariadbd --version");
            let version = String::from_utf8_lossy(&version.stdout);
            let version = server::path_safe(version.split_whitespace().nth(2).unwrap_or("unknown"));
            let root = server::template_root();
            let target = root.join(format!("mariadb-{version}-u{}", nix::unistd::geteuid()));
            if target.join("mysql").is_dir() && target.join("drydock-template-ok").is_file() {
                return target;
            }
            let work = tempfile::Builder::new().prefix("mariadb-template-").tempdir_in(&root).expect("template work dir");
            let data = work.path().join("data");
            let mut install = Command::new(program("mariadb-install-db"));
            install
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--innodb-log-file-size=8M"]);
            if nix::unistd::geteuid().is_root() {
                install.arg("--user=root");
            }
            let out = install.output().expect("run mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // Set the template password through the socket, then shut down cleanly.
            let log = work.path().join("bootstrap.log");
            let mut child = KillOnDrop(Command::new(&mariadbd)
                .args(server_args(&data, work.path()))
                .arg("--skip-networking")
                .arg(format!("--log-error={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mariadbd for the template"));
            let socket = work.path().join("mysqld.sock");
            let opts = || {
                mysql::OptsBuilder::new()
                    .socket(Some(socket.to_string_lossy().into_owned()))
                    .user(Some("root"))
                    .pass(None::<String>)
            };
            let mut conn = None;
            wait_until(Duration::from_secs(30), || {
                conn = mysql::Conn::new(opts()).ok();
                conn.is_some()
            });
            let mut conn = conn.unwrap_or_else(|| {
                panic!("template MariaDB did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
            });
            // Only loopback accounts: host-name ones cannot match with --skip-name-resolve.
            conn.query_drop("DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1')")
                .expect("drop host-name accounts");
            conn.query_drop("FLUSH PRIVILEGES").expect("flush privileges");
            set_root_password(&mut conn, TEMPLATE_PASSWORD);
            conn.query_drop("SHUTDOWN").expect("shutdown");
            drop(conn);
            assert!(wait_exit(&mut child.0, Duration::from_secs(30)), "template MariaDB did not shut down");
            std::fs::write(data.join("drydock-template-ok"), "").expect("marker");
            server::install_template(&data, &target, "drydock-template-ok");
            target
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_password_and_restarts() {
        let mut db = MariaDb::start();
        assert_eq!(db.exec("mysql", "SELECT 1, NULL, 'x'"), "1\tNULL\tx");
        db.create_db("app");
        db.exec("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        let wrong = mysql::Conn::new(
            mysql::OptsBuilder::new()
                .ip_or_hostname(Some("127.0.0.1"))
                .tcp_port(db.port())
                .prefer_socket(false)
                .user(Some("root"))
                .pass(Some("wrong")),
        );
        assert!(wrong.is_err(), "password authentication is on");
        db.stop();
        assert!(db.try_exec("app", "SELECT 1").is_err());
        db.start_again();
        assert_eq!(db.exec("app", "SELECT x FROM t"), "7");
    }
}
