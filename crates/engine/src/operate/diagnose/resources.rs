//! What diagnose measures around a service: who listens on its ports (and a port held
//! by another process), the disk of its data paths, and the host's CPU, memory and
//! load; each problem found is added to the findings as a known pattern.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use drydock_domain::config::Config;
use drydock_runtimes::procinfo::{self, Listener};

use super::super::failure_patterns::PATTERNS;
use super::report::{DiskUsage, Findings, HostUsage, PortReport};
use crate::health;

/// Who holds each local port the service should listen on; a port held by another
/// process (or held while the service is `stopped`) is a finding.
pub(super) fn port_report(
    findings: &mut Findings,
    config: &Config,
    name: &str,
    listeners: &[Listener],
    pids: &[u32],
    stopped: bool,
) -> Vec<PortReport> {
    let mut ports = Vec::new();
    let mut seen = BTreeSet::new();
    for (host, port) in endpoints(config, name) {
        if !is_local(&host) || !seen.insert((host.clone(), port)) {
            continue;
        }
        let holder = procinfo::listener_for(listeners, &host, port);
        let owned = match (holder.and_then(|l| l.pid), pids.is_empty()) {
            (Some(pid), false) => Some(pids.contains(&pid)),
            _ => None,
        };
        if let Some(l) = holder {
            let foreign = owned == Some(false) || (owned.is_none() && stopped);
            if foreign {
                let who = match (l.pid, &l.command) {
                    (Some(pid), Some(cmd)) => format!("PID {pid} ({cmd})"),
                    (Some(pid), None) => format!("PID {pid}"),
                    _ => "a process drydock cannot see".to_string(),
                };
                let p = &PATTERNS[2];
                findings.pattern(p, format!("{host}:{port} is held by {who}, not by {name}"));
            }
        }
        ports.push(PortReport {
            host,
            port,
            listening: holder.is_some(),
            pid: holder.and_then(|l| l.pid),
            command: holder.and_then(|l| l.command.clone()),
            owned_by_service: owned,
        });
    }
    ports
}

/// Space on the filesystem of each data path; a missing path or a nearly full disk is
/// a finding.
pub(super) fn disk_report(findings: &mut Findings, paths: Vec<PathBuf>) -> Vec<DiskUsage> {
    let mut disks = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let exists = path.exists();
        let probe = if exists {
            path.clone()
        } else {
            nearest_existing(&path)
        };
        let space = drydock_health::checks::disk::space(&probe).ok();
        let free_pct = space.map(|(t, f)| {
            if t == 0 {
                0.0
            } else {
                (f as f64 * 1000.0 / t as f64).round() / 10.0
            }
        });
        if !exists {
            let p = &PATTERNS[6];
            findings.pattern(p, format!("data path {shown} does not exist"));
        }
        if let (Some(pct), Some((_, free))) = (free_pct, space) {
            if pct < 2.0 || free < 16 * 1024 * 1024 {
                let p = &PATTERNS[1];
                findings.pattern(
                    p,
                    format!(
                        "{shown}: only {} free ({pct}%)",
                        bytesize::ByteSize::b(free)
                    ),
                );
            }
        }
        disks.push(DiskUsage {
            path: shown,
            exists,
            total_bytes: space.map(|s| s.0),
            free_bytes: space.map(|s| s.1),
            free_pct,
        });
    }
    disks
}

pub(super) fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Host and port of every check and data source of a service.
pub(super) fn endpoints(config: &Config, name: &str) -> Vec<(String, u16)> {
    let service = &config.services[name];
    let (_, checks) = health::checks_of(service);
    let mut out: Vec<(String, u16)> = checks.iter().flat_map(|c| c.spec.endpoints()).collect();
    for source in &service.data {
        let (Some(url), Some(port)) = (source.spec().url(), source.kind_spec().default_port())
        else {
            continue;
        };
        if let Ok(u) = url::Url::parse(url) {
            if let Some(host) = u.host_str() {
                out.push((
                    host.trim_matches(['[', ']']).to_string(),
                    u.port().unwrap_or(port),
                ));
            }
        }
    }
    out
}

/// Data folders and files of a service: its runtime's, its sources', its checks'.
pub(super) fn data_paths(config: &Config, name: &str, runtime_paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let service = &config.services[name];
    let mut paths = runtime_paths;
    for source in &service.data {
        paths.extend(source.spec().data_paths().into_iter().map(PathBuf::from));
    }
    for c in &service.health {
        paths.extend(c.spec.paths().into_iter().map(PathBuf::from));
    }
    paths.sort();
    paths.dedup();
    paths
}

pub(super) fn nearest_existing(path: &std::path::Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"))
        .to_path_buf()
}

/// CPU (busy share over 200 ms), memory in use and the disk holding `state_dir`.
pub(super) fn host_usage(config: &Config) -> HostUsage {
    let busy = |s: &procfs::KernelStats| {
        let c = &s.total;
        let idle = c.idle + c.iowait.unwrap_or(0);
        let total = c.user
            + c.nice
            + c.system
            + idle
            + c.irq.unwrap_or(0)
            + c.softirq.unwrap_or(0)
            + c.steal.unwrap_or(0);
        (total - idle, total)
    };
    use procfs::{Current, CurrentSI};
    let cpu = match procfs::KernelStats::current() {
        Ok(a) => {
            std::thread::sleep(Duration::from_millis(200));
            match procfs::KernelStats::current() {
                Ok(b) => {
                    let ((b1, t1), (b2, t2)) = (busy(&a), busy(&b));
                    let dt = t2.saturating_sub(t1).max(1);
                    format!("{:.0}%", (b2.saturating_sub(b1)) as f64 * 100.0 / dt as f64)
                }
                Err(_) => "unknown".into(),
            }
        }
        Err(_) => "unknown".into(),
    };
    let memory = match procfs::Meminfo::current() {
        Ok(m) => {
            let used = m
                .mem_total
                .saturating_sub(m.mem_available.unwrap_or(m.mem_free));
            format!(
                "{}/{}",
                bytesize::ByteSize::b(used),
                bytesize::ByteSize::b(m.mem_total)
            )
        }
        Err(_) => "unknown".into(),
    };
    let disk = match drydock_health::checks::disk::space(&nearest_existing(&config.stack.state_dir))
    {
        Ok((total, free)) => format!(
            "{}/{}",
            bytesize::ByteSize::b(total - free),
            bytesize::ByteSize::b(total)
        ),
        Err(_) => "unknown".into(),
    };
    HostUsage { cpu, memory, disk }
}
