//! `drydock diagnose`: per service its runtime, resources, ports, the issues found
//! with their fixes, and the last log lines.

use std::fmt::Write;

use drydock_engine::diagnose::DiagnoseReport;

use crate::layout::bytes;
use crate::words;

pub fn diagnose(r: &DiagnoseReport) -> String {
    let mut out = format!("{}\n", r.summary);
    let _ = writeln!(
        out,
        "host: cpu {}, memory {}, disk {}",
        r.resource_usage.cpu, r.resource_usage.memory, r.resource_usage.disk
    );
    for (name, d) in &r.services {
        let _ = writeln!(
            out,
            "\n== {name}: {} (runtime {}{})",
            d.status.as_str(),
            d.runtime.kind,
            d.runtime
                .details
                .as_ref()
                .map(|x| format!(", {}", x.state))
                .unwrap_or_default()
        );
        let res = &d.resources;
        if let (Some(cpu), Some(mem)) = (res.cpu_pct, res.memory_bytes) {
            let _ = writeln!(
                out,
                "   processes: {} (PIDs {}), cpu {cpu}%, memory {}",
                res.processes,
                res.pids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                bytes(mem)
            );
        }
        for disk in &res.disks {
            match (disk.free_bytes, disk.total_bytes, disk.exists) {
                (_, _, false) => {
                    let _ = writeln!(out, "   data {}: MISSING", disk.path);
                }
                (Some(f), Some(t), true) => {
                    let _ = writeln!(
                        out,
                        "   data {}: {} free of {}",
                        disk.path,
                        bytes(f),
                        bytes(t)
                    );
                }
                _ => {}
            }
        }
        for p in &d.ports {
            let who = match (p.pid, &p.command) {
                (Some(pid), Some(cmd)) => format!("PID {pid} ({cmd})"),
                (Some(pid), None) => format!("PID {pid}"),
                _ => "unknown process".into(),
            };
            let _ = writeln!(
                out,
                "   port {}:{}: {}",
                p.host,
                p.port,
                if p.listening {
                    format!("held by {who}")
                } else {
                    "nothing listens".into()
                }
            );
        }
        let issues: Vec<_> = r.issues.iter().filter(|i| &i.service == name).collect();
        for i in issues {
            let _ = writeln!(
                out,
                "   [{}] {}: {}\n      fix: {}",
                words::severity(i.severity),
                i.issue,
                i.details,
                i.suggested_fix
            );
            for e in i.evidence.iter().skip(1) {
                let _ = writeln!(out, "      also: {e}");
            }
        }
        if let Some(lines) = r.logs.get(name).filter(|l| !l.is_empty()) {
            let _ = writeln!(
                out,
                "   last {} log lines ({}):",
                lines.len(),
                d.log_source.as_deref().unwrap_or("log")
            );
            for l in lines.iter().rev().take(15).rev() {
                let _ = writeln!(out, "     | {l}");
            }
        }
    }
    out
}
