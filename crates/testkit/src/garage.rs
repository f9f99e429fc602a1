//! A real Garage S3 server (single node, SQLite metadata) on random loopback ports in a
//! temp dir, with one bucket and one access key, stopped and removed on drop.
//!
//! Garage is installed by `.ci/run` with `cargo install garage`. The key and bucket are
//! created by `garage server --single-node --default-bucket` from environment
//! variables, so no secret appears on a command line.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::server::{random_hex, stop};
use crate::{free_port, wait_until};

pub const REGION: &str = "garage";

pub struct GarageServer {
    child: Child,
    pub s3_port: u16,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    dir: tempfile::TempDir,
}

impl GarageServer {
    pub fn start() -> GarageServer {
        let dir = tempfile::tempdir().unwrap();
        let access_key_id = format!("GK{}", random_hex(12));
        let secret_access_key = random_hex(32);
        let bucket = "drydock-test".to_string();
        let mut last_log = String::new();
        for _ in 0..5 {
            let (rpc, s3, admin) = (free_port(), free_port(), free_port());
            let config = dir.path().join("garage.toml");
            let root = dir.path().display();
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{root}/meta\"\ndata_dir = \"{root}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{}\"\n[s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    random_hex(32)
                ),
            )
            .unwrap();
            let log_path = dir.path().join("garage.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(program())
                .arg("-c")
                .arg(&config)
                .args(["server", "--single-node", "--default-bucket"])
                .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key_id)
                .env("GARAGE_DEFAULT_SECRET_KEY", &secret_access_key)
                .env("GARAGE_DEFAULT_BUCKET", &bucket)
                .env("RUST_LOG", "garage=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start garage (installed by .ci/run: cargo install garage)");
            let mut exited = false;
            let up = wait_until(Duration::from_secs(30), || {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    return true;
                }
                TcpStream::connect(("127.0.0.1", s3)).is_ok() && bucket_ready(s3)
            });
            if up && !exited {
                return GarageServer {
                    child,
                    s3_port: s3,
                    bucket,
                    access_key_id,
                    secret_access_key,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = std::fs::remove_dir_all(dir.path().join("meta"));
            let _ = std::fs::remove_dir_all(dir.path().join("data"));
        }
        panic!("garage did not start:\n{last_log}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET/PREFIX`, the repository string restic takes.
    pub fn restic_repo(&self, prefix: &str) -> String {
        format!(
            "s3:{}/{}/{}",
            self.endpoint(),
            self.bucket,
            prefix.trim_matches('/')
        )
    }

    /// Where Garage keeps object data on disk (for corrupting or deleting objects).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        crate::server::kill_and_reap(&mut self.child);
    }
}

/// The default bucket exists once an anonymous request for it is answered with
/// 403 (it exists, we are not allowed) rather than 404 or a connection error.
fn bucket_ready(port: u16) -> bool {
    bucket_answers(std::net::Ipv4Addr::LOCALHOST, port, "drydock-test")
}

/// Whether the S3 API at `ip:port` answers an anonymous HEAD of `bucket` with 403 (the
/// bucket exists, we are not allowed) or 200, rather than 404 or a connection error.
pub(crate) fn bucket_answers(ip: std::net::Ipv4Addr, port: u16, bucket: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect((ip, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("HEAD /{bucket} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..n]);
    line.starts_with("HTTP/1.1 403") || line.starts_with("HTTP/1.1 200")
}

pub(crate) fn program() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("HOME") {
        let cargo_bin = std::path::Path::new(&home).join(".cargo/bin/garage");
        if cargo_bin.is_file() {
            return cargo_bin;
        }
    }
    crate::program("garage")
}

impl Drop for GarageServer {
    fn drop(&mut self) {
        stop(&mut self.child, Signal::SIGTERM, Duration::from_secs(5));
    }
}
