//! A real Patroni cluster (Patroni from PyPI, installed by `.ci/run` into
//! `/opt/drydock-test/patroni`, run with the system's python3) over this machine's
//! PostgreSQL and an etcd the test starts: one leader and replicas, each member with
//! its own REST port, PostgreSQL port and data directory. PostgreSQL refuses root, so
//! as root the members run as `nobody`. Stopped (PostgreSQL with them) on drop.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::etcd::http_get;
use crate::{free_port, program, wait_until};

/// Where `.ci/run` installs Patroni (`pip install --target`).
pub const DEFAULT_PATH: &str = "/opt/drydock-test/patroni";

struct Member {
    api_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

pub struct PatroniCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

fn python() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.is_file() {
        system
    } else {
        PathBuf::from("python3")
    }
}

fn patroni_path() -> String {
    std::env::var("DRYDOCK_PATRONI_PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string())
}

fn run_as() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("nobody").ok().flatten();
    Some(
        user.map(|u| (u.uid.as_raw(), u.gid.as_raw()))
            .unwrap_or((65534, 65534)),
    )
}

impl PatroniCluster {
    /// Starts `n` members against etcd at `etcd` (`127.0.0.1:PORT`): the first
    /// bootstraps alone and leads, the others join as replicas. Waits until every
    /// replica streams.
    pub fn start(etcd: &str, n: usize) -> PatroniCluster {
        let dir = tempfile::Builder::new()
            .prefix("drydock-patroni-")
            .tempdir()
            .expect("temp dir");
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut cluster = PatroniCluster {
            dir,
            members: Vec::new(),
        };
        let scope = format!("drydock{}", std::process::id());
        for i in 0..n {
            let member = cluster.spawn_member(i, &scope, etcd);
            let api_port = member.api_port;
            cluster.members.push(member);
            if i == 0 {
                let led = wait_until(Duration::from_secs(60), || {
                    http_get(api_port, "/health").is_some_and(|b| b.contains("\"running\""))
                });
                assert!(led, "patroni leader did not start:\n{}", cluster.log(0));
            }
        }
        let leader_api = cluster.members[0].api_port;
        let streaming = wait_until(Duration::from_secs(90), || {
            http_get(leader_api, "/cluster")
                .is_some_and(|b| b.matches("\"streaming\"").count() >= n - 1)
        });
        assert!(
            streaming,
            "patroni replicas did not stream:\n{}",
            cluster.log(n - 1)
        );
        cluster
    }

    fn spawn_member(&self, i: usize, scope: &str, etcd: &str) -> Member {
        let owner = run_as();
        let bin_dir = program("postgres")
            .canonicalize()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let name = format!("pg{i}");
        let home = self.dir.path().join(&name);
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let (api_port, pg_port) = (free_port(), free_port());
        let h = home.display();
        let config = format!(
            "scope: {scope}\nname: {name}\nrestapi:\n  listen: 127.0.0.1:{api_port}\n  connect_address: 127.0.0.1:{api_port}\netcd3:\n  hosts: {etcd}\nbootstrap:\n  dcs:\n    ttl: 10\n    loop_wait: 1\n    retry_timeout: 5\n  initdb:\n    - encoding: UTF8\n    - auth-host: scram-sha-256\n  pg_hba:\n    - host replication replicator 127.0.0.1/32 scram-sha-256\n    - host all all 127.0.0.1/32 scram-sha-256\npostgresql:\n  listen: 127.0.0.1:{pg_port}\n  connect_address: 127.0.0.1:{pg_port}\n  data_dir: {h}/data\n  pgpass: {h}/pgpass\n  bin_dir: {}\n  authentication:\n    superuser: {{username: postgres, password: patroni-super-pw}}\n    replication: {{username: replicator, password: patroni-repl-pw}}\n  parameters:\n    unix_socket_directories: {h}\n    fsync: 'off'\n",
            bin_dir.display()
        );
        let conf = home.join("patroni.yml");
        std::fs::write(&conf, config).unwrap();
        let log_path = home.join("patroni.log");
        let log = std::fs::File::create(&log_path).unwrap();
        if let Some((uid, gid)) = owner {
            for p in [&home, &conf, &log_path] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut cmd = Command::new(python());
        cmd.args(["-m", "patroni"])
            .arg(&conf)
            .env("PYTHONPATH", patroni_path())
            .env("HOME", &home)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
        Member {
            api_port,
            data_dir: home.join("data"),
            child: Some(cmd.spawn().expect("start patroni (.ci/run installs it)")),
        }
    }

    /// The REST API of member `i` (`http://127.0.0.1:PORT`).
    pub fn api_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].api_port)
    }

    /// The tail of member `i`'s Patroni log, for failure messages.
    pub fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("pg{i}/patroni.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Stops member `i`: Patroni shuts its PostgreSQL down first.
    pub fn stop(&mut self, i: usize) {
        let m = &mut self.members[i];
        if let Some(mut child) = m.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let exited = wait_until(Duration::from_secs(30), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Never leave a PostgreSQL behind, whatever Patroni did.
        if let Ok(text) = std::fs::read_to_string(m.data_dir.join("postmaster.pid")) {
            if let Some(pid) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
            }
        }
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        for i in (0..self.members.len()).rev() {
            self.stop(i);
        }
    }
}
