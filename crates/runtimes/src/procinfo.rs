//! What Linux's /proc says about processes: when one started, its children, CPU and
//! memory of a process tree, and which process listens on which TCP port. Runtimes
//! use it for uptime; `diagnose` for resources and port conflicts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use procfs::process::{FDTarget, Process};
use serde::Serialize;

/// The PID in a PID file (its first line; PostgreSQL's `postmaster.pid` and MariaDB's
/// pid file both start with it), when that process is alive.
pub fn pid_from_file(path: &Path) -> PidFile {
    let Ok(text) = std::fs::read_to_string(path) else {
        return PidFile::Absent;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return PidFile::Stale(None);
    };
    if alive(pid) {
        PidFile::Alive(pid)
    } else {
        PidFile::Stale(Some(pid))
    }
}

/// What a PID file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidFile {
    Absent,
    /// The file names a process that runs.
    Alive(u32),
    /// The file is left over: its process is gone (or it holds no PID).
    Stale(Option<u32>),
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.state != 'Z' && s.state != 'X')
}

/// When `pid` started.
pub fn started_at(pid: u32) -> Option<jiff::Timestamp> {
    let stat = Process::new(pid as i32).ok()?.stat().ok()?;
    let boot = procfs::boot_time_secs().ok()?;
    let ticks = procfs::ticks_per_second();
    let millis = boot as i128 * 1000 + (stat.starttime as i128 * 1000) / ticks as i128;
    jiff::Timestamp::from_millisecond(millis as i64).ok()
}

/// `pids` and all their descendants.
pub fn tree(pids: &[u32]) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat() {
                children
                    .entry(stat.ppid as u32)
                    .or_default()
                    .push(stat.pid as u32);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<u32> = pids.to_vec();
    while let Some(pid) = todo.pop() {
        if seen.insert(pid) {
            todo.extend(children.get(&pid).into_iter().flatten());
        }
    }
    seen.into_iter().collect()
}

/// One process's command line, shortened for messages.
pub fn command_line(pid: u32) -> Option<String> {
    let p = Process::new(pid as i32).ok()?;
    let cmd = p
        .cmdline()
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| c.join(" "));
    let cmd = cmd.or_else(|| p.stat().ok().map(|s| s.comm))?;
    Some(if cmd.chars().count() > 120 {
        format!("{}...", cmd.chars().take(117).collect::<String>())
    } else {
        cmd
    })
}

/// CPU and memory of a set of processes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub processes: usize,
    /// Percent of one core over the sampling interval (200 = two cores busy).
    pub cpu_pct: f64,
    pub memory_bytes: u64,
}

/// Samples CPU time of `pids` over `interval` and reads their resident memory.
pub fn usage(pids: &[u32], interval: Duration) -> Usage {
    let cpu_ticks = |pids: &[u32]| -> u64 {
        pids.iter()
            .filter_map(|p| Process::new(*p as i32).ok()?.stat().ok())
            .map(|s| s.utime + s.stime)
            .sum()
    };
    let before = cpu_ticks(pids);
    let start = Instant::now();
    std::thread::sleep(interval);
    let after = cpu_ticks(pids);
    let elapsed = start.elapsed().as_secs_f64().max(0.001);
    let ticks = procfs::ticks_per_second() as f64;
    let page = procfs::page_size();
    let memory_bytes = pids
        .iter()
        .filter_map(|p| Process::new(*p as i32).ok()?.statm().ok())
        .map(|m| m.resident * page)
        .sum();
    Usage {
        processes: pids.iter().filter(|p| alive(**p)).count(),
        cpu_pct: (after.saturating_sub(before) as f64 / ticks / elapsed * 100.0 * 10.0).round()
            / 10.0,
        memory_bytes,
    }
}

/// A listening TCP socket and the process holding it (when /proc lets us see it).
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    pub address: SocketAddr,
    pub pid: Option<u32>,
    pub command: Option<String>,
}

/// Every listening TCP socket (v4 and v6) with its owner.
pub fn listeners() -> Vec<Listener> {
    let mut sockets: Vec<(SocketAddr, u64)> = Vec::new();
    for table in [procfs::net::tcp(), procfs::net::tcp6()]
        .into_iter()
        .flatten()
    {
        for entry in table {
            if entry.state == procfs::net::TcpState::Listen {
                sockets.push((entry.local_address, entry.inode));
            }
        }
    }
    let wanted: BTreeSet<u64> = sockets.iter().map(|(_, inode)| *inode).collect();
    let mut owner: BTreeMap<u64, u32> = BTreeMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            let Ok(fds) = p.fd() else { continue };
            for fd in fds.flatten() {
                if let FDTarget::Socket(inode) = fd.target {
                    if wanted.contains(&inode) {
                        owner.entry(inode).or_insert(p.pid as u32);
                    }
                }
            }
        }
    }
    sockets
        .into_iter()
        .map(|(address, inode)| {
            let pid = owner.get(&inode).copied();
            Listener {
                address,
                pid,
                command: pid.and_then(command_line),
            }
        })
        .collect()
}

/// The listener that takes connections for `port` on `host` (an exact address, or a
/// wildcard one).
pub fn listener_for<'a>(listeners: &'a [Listener], host: &str, port: u16) -> Option<&'a Listener> {
    let ips: Vec<std::net::IpAddr> = match host.parse() {
        Ok(ip) => vec![ip],
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    listeners.iter().find(|l| {
        l.address.port() == port
            && (l.address.ip().is_unspecified() || ips.contains(&l.address.ip()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_listening_and_its_start() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let all = listeners();
        let mine = listener_for(&all, "127.0.0.1", port).expect("our listener is seen");
        assert_eq!(mine.pid, Some(std::process::id()));
        let started = started_at(std::process::id()).unwrap();
        let age = jiff::Timestamp::now().duration_since(started).as_secs();
        assert!((0..3600).contains(&age), "started {age}s ago");
        assert!(tree(&[1]).len() > 1, "pid 1 has descendants");
        let u = usage(&[std::process::id()], Duration::from_millis(20));
        assert!(u.memory_bytes > 1_000_000, "{u:?}");
    }

    #[test]
    fn pid_files_absent_alive_and_stale() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pid");
        assert_eq!(pid_from_file(&f), PidFile::Absent);
        std::fs::write(&f, format!("{}\n/data\n", std::process::id())).unwrap();
        assert_eq!(pid_from_file(&f), PidFile::Alive(std::process::id()));
        std::fs::write(&f, "999999999\n").unwrap();
        assert_eq!(pid_from_file(&f), PidFile::Stale(Some(999999999)));
    }
}
