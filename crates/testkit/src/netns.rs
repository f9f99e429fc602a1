//! Hosts on one machine: network namespaces joined by a bridge in the root namespace,
//! made with `ip` (needs root). The bridge gets `10.A.B.1/24`, namespace `k` gets
//! `10.A.B.(k+2)` on its end of a veth pair and its own loopback, so a process run in a
//! namespace ([`Netns::command`]) has its own network and reaches servers listening on
//! the bridge address; the root namespace reaches it at its address. Namespaces, veth
//! pairs and the bridge are removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::server::random_hex;

/// A bridge and its namespaces.
pub struct Bridge {
    name: String,
    tag: String,
    pub ip: Ipv4Addr,
    namespaces: Vec<Netns>,
}

/// One namespace on the bridge.
#[derive(Clone, Debug)]
pub struct Netns {
    pub name: String,
    pub ip: Ipv4Addr,
    host_end: String,
}

/// Whether this process may make namespaces (root with `ip` at hand).
pub fn available() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("ip")
            .args(["netns", "list"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run `ip`");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Bridge {
    /// A new bridge with a random name and a random `10.x.y.0/24` subnet.
    pub fn new() -> Bridge {
        // Interface names are at most 15 bytes: `ddb` + 6 hex, `ddh`/`ddn` + 6 hex + k.
        let tag = random_hex(3);
        let bytes = hex::decode(random_hex(2)).unwrap();
        let ip_addr = Ipv4Addr::new(10, 200 + bytes[0] % 50, bytes[1], 1);
        let name = format!("ddb{tag}");
        ip(&["link", "add", &name, "type", "bridge"]);
        let bridge = Bridge {
            name,
            tag,
            ip: ip_addr,
            namespaces: Vec::new(),
        };
        ip(&["addr", "add", &format!("{ip_addr}/24"), "dev", &bridge.name]);
        ip(&["link", "set", &bridge.name, "up"]);
        bridge
    }

    /// Adds namespace `k` (0, 1, ...: one call each, in order) on the bridge.
    pub fn add_namespace(&mut self) -> Netns {
        let k = self.namespaces.len();
        let o = self.ip.octets();
        let addr = Ipv4Addr::new(o[0], o[1], o[2], 2 + k as u8);
        let ns = Netns {
            name: format!("drydock-{}-{k}", self.tag),
            ip: addr,
            host_end: format!("ddh{}{k}", self.tag),
        };
        let peer = format!("ddn{}{k}", self.tag);
        ip(&["netns", "add", &ns.name]);
        self.namespaces.push(ns.clone());
        ip(&[
            "link",
            "add",
            &ns.host_end,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &ns.name]);
        ip(&["link", "set", &ns.host_end, "master", &self.name]);
        ip(&["link", "set", &ns.host_end, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{addr}/24"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge::new()
    }
}

impl Netns {
    /// `program` run inside the namespace (`ip netns exec NAME program`, which execs
    /// it: the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // Deleting the namespace removes its veth end and with it the pair.
            let _ = Command::new("ip")
                .args(["link", "del", &ns.host_end])
                .output();
            let _ = Command::new("ip").args(["netns", "del", &ns.name]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}
