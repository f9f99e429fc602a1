//! A real three-node Garage cluster (replication factor 3, SQLite metadata) in a temp
//! dir: three `garage server` processes with their own data and metadata dirs and
//! their own RPC, S3 and admin ports, connected, one layout applied, one bucket and one
//! access key; a node can be stopped and started again on the same dirs and ports
//! while the others keep serving (writes and reads need two of three).
//!
//! The nodes listen on one IPv4 address given at start: loopback, or a bridge address
//! that processes in network namespaces reach ([`crate::netns`]). The key is created
//! by `garage key create`, its secret read from that command's output, so no secret
//! appears on a command line. The program is the one [`crate::garage`] finds.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::garage::{bucket_answers, program, REGION};
use crate::server::{random_hex, stop};
use crate::wait_until;

/// Nodes in the cluster (and copies of every object).
pub const NODES: usize = 3;

struct Node {
    child: Option<Child>,
    config: PathBuf,
    rpc_port: u16,
    s3_port: u16,
}

pub struct GarageCluster {
    nodes: Vec<Node>,
    pub ip: Ipv4Addr,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    dir: tempfile::TempDir,
}

impl GarageCluster {
    /// Starts three nodes on `ip`, connects them, applies a layout (one zone, equal
    /// capacity, replication factor 3) and creates bucket `drydock-test` and a key
    /// allowed to read and write it.
    pub fn start(ip: Ipv4Addr) -> GarageCluster {
        let dir = tempfile::tempdir().unwrap();
        let rpc_secret = random_hex(32);
        // Nine distinct ports: the listeners stay open until all are picked, so no two
        // roles get one port (a node's RPC on another's S3 port fails its handshake).
        let held: Vec<TcpListener> = (0..NODES * 3)
            .map(|k| {
                let at = if k % 3 == 2 { Ipv4Addr::LOCALHOST } else { ip };
                TcpListener::bind((at, 0)).unwrap()
            })
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(held);
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let root = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&root).unwrap();
            let (rpc, s3, admin) = (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]);
            let config = root.join("garage.toml");
            let r = root.display();
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{r}/meta\"\ndata_dir = \"{r}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 3\nrpc_bind_addr = \"{ip}:{rpc}\"\nrpc_public_addr = \"{ip}:{rpc}\"\nrpc_secret = \"{rpc_secret}\"\n[s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"{ip}:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n"
                ),
            )
            .unwrap();
            std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            nodes.push(Node {
                child: None,
                config,
                rpc_port: rpc,
                s3_port: s3,
            });
        }
        let mut cluster = GarageCluster {
            nodes,
            ip,
            bucket: "drydock-test".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            dir,
        };
        for i in 0..NODES {
            cluster.spawn(i);
        }
        for i in 0..NODES {
            cluster.wait_rpc(i);
        }
        cluster.connect_and_lay_out();
        cluster.create_bucket_and_key();
        for i in 0..NODES {
            let port = cluster.nodes[i].s3_port;
            let bucket = cluster.bucket.clone();
            assert!(
                wait_until(Duration::from_secs(30), || bucket_answers(
                    ip, port, &bucket
                )),
                "garage node {i} does not serve the bucket:\n{}",
                cluster.log(i)
            );
        }
        cluster
    }

    /// `http://IP:PORT` of node `i`'s S3 API.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}:{}", self.ip, self.nodes[i].s3_port)
    }

    /// `s3:http://IP:PORT/BUCKET/PREFIX` through node `i`, the repository string restic
    /// takes.
    pub fn restic_repo(&self, i: usize, prefix: &str) -> String {
        format!(
            "s3:{}/{}/{}",
            self.endpoint(i),
            self.bucket,
            prefix.trim_matches('/')
        )
    }

    /// Whether node `i` runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.nodes[i].child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops node `i` (SIGTERM; SIGKILL after 5 s). Its dirs and ports stay.
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            stop(&mut child, Signal::SIGTERM, Duration::from_secs(5));
        }
    }

    /// Starts node `i` again on its dirs and ports, and waits until it serves the
    /// bucket.
    pub fn start_node(&mut self, i: usize) {
        assert!(
            self.nodes[i].child.is_none(),
            "garage node {i} runs already"
        );
        self.spawn(i);
        self.wait_rpc(i);
        let (ip, port, bucket) = (self.ip, self.nodes[i].s3_port, self.bucket.clone());
        assert!(
            wait_until(Duration::from_secs(60), || bucket_answers(
                ip, port, &bucket
            )),
            "garage node {i} did not come back:\n{}",
            self.log(i)
        );
    }

    /// Asks every node for a full sync of the metadata tables (`garage repair tables`),
    /// so a node that was down stops listing objects deleted meanwhile sooner than its
    /// periodic sync would. Returns at once: the sync runs in the background.
    pub fn sync_tables(&self) -> Result<(), String> {
        let out = Command::new(program())
            .arg("-c")
            .arg(&self.nodes[0].config)
            .args(["repair", "--all-nodes", "--yes", "tables"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run garage: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}/garage.log"))
    }

    fn spawn(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let child = Command::new(program())
            .arg("-c")
            .arg(&self.nodes[i].config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage (installed by .ci/run: cargo install garage)");
        self.nodes[i].child = Some(child);
    }

    fn wait_rpc(&mut self, i: usize) {
        let (ip, port) = (self.ip, self.nodes[i].rpc_port);
        let up = wait_until(Duration::from_secs(30), || {
            TcpStream::connect((ip, port)).is_ok()
        });
        assert!(
            up && self.is_running(i),
            "garage node {i} did not start:\n{}",
            self.log(i)
        );
    }

    /// Runs the `garage` CLI against node `i`: its output if it succeeded.
    fn try_cli(&self, i: usize, args: &[&str]) -> Option<Output> {
        let out = self.cli_once(i, args);
        out.status.success().then_some(out)
    }

    fn cli_once(&self, i: usize, args: &[&str]) -> Output {
        Command::new(program())
            .arg("-c")
            .arg(&self.nodes[i].config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs the `garage` CLI against node `i`; panics with its output unless it succeeds.
    fn cli(&self, i: usize, args: &[&str]) -> Output {
        let mut last = None;
        // Right after start a node may not know its peers yet: retry a few times.
        for _ in 0..20 {
            let out = self.cli_once(i, args);
            if out.status.success() {
                return out;
            }
            last = Some(out);
            std::thread::sleep(Duration::from_millis(500));
        }
        let out = last.unwrap();
        panic!(
            "garage {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn node_id(&self, i: usize) -> String {
        let out = self.cli(i, &["node", "id", "-q"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn connect_and_lay_out(&mut self) {
        let ids: Vec<String> = (0..NODES).map(|i| self.node_id(i)).collect();
        for id in &ids[1..] {
            self.cli(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            self.cli(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        self.cli(0, &["layout", "apply", "--version", "1"]);
        // Every node sees all three up with the layout before the bucket is made.
        for i in 0..NODES {
            let healthy = wait_until(Duration::from_secs(60), || {
                self.try_cli(i, &["health"]).is_some_and(|out| {
                    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
                    text.lines().any(|l| {
                        l.starts_with("cluster health:")
                            && l.contains("healthy")
                            && !l.contains("unhealthy")
                    })
                })
            });
            assert!(
                healthy,
                "garage node {i} does not see a healthy cluster:\n{}",
                self.log(i)
            );
        }
    }

    fn create_bucket_and_key(&mut self) {
        self.cli(0, &["bucket", "create", &self.bucket]);
        let out = self.cli(0, &["key", "create", "drydock-test-key"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().last())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no `{name}` in the output of garage key create"))
        };
        self.access_key_id = field("Key ID:");
        self.secret_access_key = field("Secret key:");
        let bucket = self.bucket.clone();
        let key = self.access_key_id.clone();
        self.cli(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &key,
            ],
        );
    }

    /// The cluster's working dir (node dirs `node0` .. `node2`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.stop_node(i);
        }
    }
}
