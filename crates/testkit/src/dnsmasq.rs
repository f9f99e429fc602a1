//! A real DNS server (Debian's `dnsmasq`) on 127.0.0.1 and a free port, answering
//! only the host records it is given (no upstream, no /etc/hosts). Killed on drop.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{program, wait_until};

pub struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Serves `records` (name, address).
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.path().join("dnsmasq.log");
            let mut cmd = Command::new(program("dnsmasq"));
            cmd.args([
                "--keep-in-foreground",
                "--no-daemon",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--pid-file",
            ])
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg(format!("--log-facility={}", log.display()));
            if nix::unistd::geteuid().is_root() {
                cmd.arg("--user=root");
            }
            for (name, addr) in records {
                cmd.arg(format!("--host-record={name},{addr}"));
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq (install it: .ci/run does)");
            let up = wait_until(Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started"))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Dnsmasq {
                    child,
                    port,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("dnsmasq did not start");
    }

    /// `127.0.0.1:PORT`, for `resolver`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
