//! A real etcd cluster (Debian's `etcd-server`) of one or more members on loopback
//! ports, each with its own data directory in one temp dir; fast elections so tests
//! that stop members do not wait long. Killed and removed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, program, wait_until};

struct Member {
    name: String,
    client_port: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    dir: TempDir,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `n` members and waits until each reports healthy.
    pub fn start(n: usize) -> EtcdCluster {
        for _ in 0..3 {
            if let Some(c) = Self::try_start(n) {
                return c;
            }
        }
        panic!("etcd did not start (see the logs above)");
    }

    fn try_start(n: usize) -> Option<EtcdCluster> {
        let dir = tempfile::Builder::new()
            .prefix("drydock-etcd-")
            .tempdir()
            .expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("e{i}");
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("log");
            let child = Command::new(program("etcd"))
                .arg(format!("--name={name}"))
                .arg(format!("--data-dir={}", dir.path().join(&name).display()))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=drydock-test")
                .args(["--heartbeat-interval=50", "--election-timeout=500"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start etcd (install etcd-server: .ci/run does)");
            members.push(Member {
                name,
                client_port: *client,
                child: Some(child),
            });
        }
        let cluster = EtcdCluster { dir, members };
        let up = wait_until(Duration::from_secs(30), || {
            cluster.members.iter().all(|m| health(m.client_port))
        });
        if up {
            Some(cluster)
        } else {
            for m in &cluster.members {
                let log =
                    std::fs::read_to_string(cluster.dir.path().join(format!("{}.log", m.name)))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                eprintln!(
                    "etcd {} did not get healthy:\n{}",
                    m.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            None
        }
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// Stops member `i` (its data stays).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}

/// Whether the member on `port` answers `/health` with `"health":"true"`.
pub fn health(port: u16) -> bool {
    http_get(port, "/health").is_some_and(|b| b.contains("\"health\":\"true\""))
}

/// A minimal HTTP/1.0 GET on 127.0.0.1, returning the body.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}
