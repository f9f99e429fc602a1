//! Redis high availability for tests: a master watched by a real sentinel
//! (`redis-server --sentinel`, quorum 1, fast down detection), and a small real
//! cluster (`cluster-enabled`, slots spread by `redis-cli --cluster create`). All on
//! loopback ports in temp dirs; killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::redis::RedisServer;
use crate::{free_port, program, wait_until};

/// Spawns `redis-server CONF [extra]` with `conf` written to `dir/name.conf`.
fn spawn(dir: &Path, name: &str, conf: &str, extra: &[&str]) -> Child {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).expect("write redis conf");
    Command::new(program("redis-server"))
        .arg(&path)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new(program("redis-cli"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A master and one sentinel monitoring it.
pub struct RedisSentinel {
    pub master: RedisServer,
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts a master and a sentinel that monitors it as `name` (quorum 1, down
    /// after 1 s).
    pub fn start(name: &str) -> RedisSentinel {
        let master = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = free_port();
            let conf = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir \"{d}\"\nlogfile \"{d}/sentinel.log\"\nsentinel monitor {name} 127.0.0.1 {m} 1\nsentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 10000\n",
                d = dir.path().display(),
                m = master.port()
            );
            let mut child = spawn(dir.path(), "sentinel", &conf, &["--sentinel"]);
            let up = wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || cli(port, &["SENTINEL", "MASTER", name]).is_some_and(|o| o.contains("flags"))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return RedisSentinel {
                    master,
                    child,
                    port,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("sentinel.log")).unwrap_or_default();
        panic!("redis sentinel did not start:\n{log}");
    }

    /// `redis://127.0.0.1:PORT` of the sentinel.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of masters without replicas, every slot assigned.
pub struct RedisCluster {
    nodes: Vec<(u16, Option<Child>)>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts `n` (at least 3) nodes and creates the cluster; waits until it is `ok`.
    pub fn start(n: usize) -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let port = free_port();
            let conf = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ncluster-enabled yes\ncluster-config-file nodes-{port}.conf\ncluster-node-timeout 1000\nsave \"\"\nappendonly no\ndir \"{d}\"\nlogfile \"{d}/node-{port}.log\"\n",
                d = dir.path().display()
            );
            let child = spawn(dir.path(), &format!("node-{port}"), &conf, &[]);
            nodes.push((port, Some(child)));
        }
        let cluster = RedisCluster { nodes, dir };
        let all_up = wait_until(Duration::from_secs(10), || {
            cluster
                .nodes
                .iter()
                .all(|(p, _)| cli(*p, &["PING"]).is_some_and(|o| o.contains("PONG")))
        });
        assert!(all_up, "redis cluster nodes did not start");
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let mut args: Vec<&str> = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.push("--cluster-yes");
        let created = cli(cluster.nodes[0].0, &args);
        assert!(created.is_some(), "redis-cli --cluster create failed");
        let ok = wait_until(Duration::from_secs(20), || {
            cluster.nodes.iter().all(|(p, _)| {
                cli(*p, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))
            })
        });
        assert!(ok, "the redis cluster did not become ok");
        cluster
    }

    /// `redis://127.0.0.1:PORT` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[i].0)
    }

    /// Kills node `i`.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].1.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}
