//! Test helpers: start real servers (PostgreSQL, MariaDB, Redis with sentinel and
//! cluster, etcd, dnsmasq, Patroni, HTTP(S) with a test CA, a recording HTTP receiver
//! with scripted answers, an SMTP receiver, Garage S3 as one node or a three-node
//! cluster, a headless Chromium, nginx as a reverse proxy) in their own temp data directories on random loopback
//! ports, and stop and remove them on drop; an S3 fault proxy; and network namespaces
//! on a bridge (several hosts on one machine). Integration tests of every crate use
//! these; nothing here is a mock.

pub mod browser;
pub mod dnsmasq;
pub mod docker;
pub mod etcd;
pub mod faultproxy;
pub mod garage;
pub mod garage_cluster;
pub mod http;
pub mod mariadb;
pub mod netns;
pub mod nginx;
pub mod patroni;
pub mod postgres;
pub mod receiver;
pub mod redis;
pub mod redis_ha;
mod server;
pub mod smtp;
pub mod sshd;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the listener is closed before the server binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check` succeeds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Finds a server program on PATH or in Debian's versioned PostgreSQL folders.
pub fn program(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<_> = rd.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        dirs.extend(versions);
    }
    dirs.extend(["/usr/sbin".into(), "/usr/bin".into()]);
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found; run .ci/run's install step"))
}
