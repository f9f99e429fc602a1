//! Human-readable text for every report. JSON output is the reports' serde shape.

use std::collections::BTreeMap;
use std::fmt::Write;

use drydock_domain::SourceStatus;
use drydock_engine::backup::BackupReport;
use drydock_engine::demo::DemoReport;
use drydock_engine::diagnose::DiagnoseReport;
use drydock_engine::heal::HealReport;
use drydock_engine::health::HealthReport;
use drydock_engine::init::InitReport;
use drydock_engine::list::BackupList;
use drydock_engine::prune::PruneReport;
use drydock_engine::restore::{RestoreReport, RestoreStatus};
use drydock_engine::sync::SyncReport;
use drydock_engine::verify::{LiveReport, VerifyReport};

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn counts(c: &BTreeMap<String, u64>) -> String {
    c.iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Left-aligned columns, widths from the content.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut l = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, "{c:<w$}  ", w = widths[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

pub fn backup(r: &BackupReport) -> String {
    let mut out = format!(
        "backup {}: {} ({} sources, {}){}\n",
        r.id,
        format!("{:?}", r.status).to_lowercase(),
        r.sources.len(),
        seconds(r.duration_ms),
        if r.recorded {
            ""
        } else {
            " - nothing stored, no backup recorded"
        }
    );
    let rows: Vec<Vec<String>> = r
        .sources
        .iter()
        .map(|s| {
            vec![
                s.label(),
                s.kind.to_string(),
                s.priority.to_string(),
                format!("{:?}", s.status).to_lowercase(),
                bytes(s.logical_bytes),
                bytes(s.stored_bytes),
                counts(&s.counts),
                seconds(s.duration_ms),
            ]
        })
        .collect();
    out += &table(
        &[
            "SOURCE", "KIND", "PRIORITY", "STATUS", "SIZE", "ADDED", "COUNTS", "TIME",
        ],
        &rows,
    );
    for s in &r.restarted {
        let _ = writeln!(
            out,
            "{} stopped while its data was read: {}{}",
            s.service,
            s.status,
            s.error
                .as_deref()
                .map(|e| format!(" - {e}"))
                .unwrap_or_default()
        );
    }
    for s in r.sources.iter().filter(|s| s.status != SourceStatus::Ok) {
        let _ = writeln!(
            out,
            "{} {}: {}",
            if s.status == SourceStatus::Skipped {
                "skipped"
            } else {
                "FAILED"
            },
            s.label(),
            s.error.as_deref().unwrap_or("")
        );
    }
    for c in &r.copies {
        let _ = write!(out, "copy {}: {}", c.name, c.status);
        if !c.also_synced.is_empty() {
            let _ = write!(out, " (also brought over: {})", c.also_synced.join(", "));
        }
        match &c.error {
            Some(e) => {
                let _ = writeln!(out, " - {e}");
            }
            None => out.push('\n'),
        }
    }
    out
}

pub fn backups(l: &BackupList) -> String {
    let mut notes = String::new();
    for c in l.copies.iter().filter(|c| !c.reachable) {
        let _ = writeln!(
            notes,
            "copy {} ({}) not readable: {}",
            c.name,
            c.location,
            c.error.as_deref().unwrap_or("")
        );
    }
    if l.backups.is_empty() {
        return format!(
            "{notes}no backups in {} yet; run `drydock backup`\n",
            l.repository
        );
    }
    let rows: Vec<Vec<String>> = l
        .backups
        .iter()
        .map(|b| {
            let ok = b
                .sources
                .iter()
                .filter(|s| s.status == SourceStatus::Ok && s.pruned_at.is_none())
                .count();
            vec![
                b.id.clone(),
                b.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                format!("{:?}", b.status).to_lowercase(),
                format!("{ok}/{}", b.sources.len()),
                bytes(b.logical_bytes),
                b.copies
                    .iter()
                    .map(|c| match c.verified_at {
                        Some(at) if c.status == "verified" => {
                            format!("{}:verified@{}", c.name, at.strftime("%m-%d %H:%M"))
                        }
                        _ => format!("{}:{}", c.name, c.status),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    // Backups retention partly removed: what is gone and what they still hold.
    let mut partial = String::new();
    for b in &l.backups {
        let label = |s: &drydock_engine::list::SourceSummary| format!("{}/{}", s.service, s.source);
        let pruned: Vec<String> = b
            .sources
            .iter()
            .filter(|s| s.pruned_at.is_some())
            .map(label)
            .collect();
        if pruned.is_empty() {
            continue;
        }
        let held: Vec<String> = b
            .sources
            .iter()
            .filter(|s| s.pruned_at.is_none() && s.status == SourceStatus::Ok)
            .map(label)
            .collect();
        let _ = writeln!(
            partial,
            "{}: partial: retention pruned {}; still holds {}",
            b.id,
            pruned.join(", "),
            if held.is_empty() {
                "nothing".to_string()
            } else {
                held.join(", ")
            }
        );
    }
    format!(
        "{notes}repository {}\n{}{partial}",
        l.repository,
        table(
            &[
                "ID",
                "STARTED (UTC)",
                "STATUS",
                "SOURCES OK",
                "SIZE",
                "COPIES"
            ],
            &rows
        )
    )
}

pub fn restore(r: &RestoreReport) -> String {
    let mut out = String::new();
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let rows: Vec<Vec<String>> = r
        .sources
        .iter()
        .map(|s| {
            vec![
                format!("{}/{}", s.service, s.source),
                s.backup_id.clone(),
                s.copy.clone(),
                format!("{:?}", s.status).to_lowercase(),
                counts(&s.restored_counts),
                seconds(s.duration_ms),
            ]
        })
        .collect();
    out += &table(
        &["SOURCE", "BACKUP", "COPY", "RESULT", "COUNTS", "RTO"],
        &rows,
    );
    for s in &r.sources {
        let label = format!("{}/{}", s.service, s.source);
        if let Some(a) = &s.service_action {
            let _ = writeln!(out, "{label}: service {a}");
        }
        for n in &s.notes {
            let _ = writeln!(out, "{label}: note: {n}");
        }
        match s.status {
            RestoreStatus::Verified => {}
            RestoreStatus::Mismatch => {
                let _ = writeln!(out, "{label} does NOT match its backup:");
                for d in &s.differences {
                    let _ = writeln!(out, "    {d}");
                }
            }
            RestoreStatus::Failed => {
                let _ = writeln!(out, "{label} FAILED: {}", s.error.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(
        out,
        "{} (RTO {})",
        if r.verified {
            "restore verified: counts and fingerprints equal the backup"
        } else {
            "restore NOT verified"
        },
        seconds(r.rto_ms)
    );
    out
}

pub fn verify(r: &VerifyReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = writeln!(
            out,
            "copy {} ({}): {}",
            c.name,
            c.location,
            match (&c.error, c.repository_errors.is_empty()) {
                (Some(_), _) => "NOT CHECKED",
                (None, true) => "structure ok",
                (None, false) => "DAMAGED",
            }
        );
        if let Some(e) = &c.error {
            let _ = writeln!(out, "  error: {e}");
        }
        match r.read_data.as_str() {
            "none" => {}
            "all" => out += "  all pack data read and checked\n",
            share => {
                let _ = writeln!(out, "  a random {share} of the pack data read and checked");
            }
        }
        for e in &c.repository_errors {
            let _ = writeln!(out, "  error: {e}");
        }
        for d in &c.damaged {
            let needed: Vec<String> = d
                .needed_by
                .iter()
                .map(|n| format!("{} ({})", n.backup_id, n.sources.join(", ")))
                .collect();
            let _ = writeln!(
                out,
                "  damaged {}: needed by {}",
                d.object,
                if needed.is_empty() {
                    "no checked backup".to_string()
                } else {
                    needed.join("; ")
                }
            );
        }
        for b in &c.backups {
            let bad: Vec<_> = b.sources.iter().filter(|s| s.status != "ok").collect();
            if bad.is_empty() {
                let _ = writeln!(out, "  backup {}: {} sources ok", b.id, b.sources.len());
            }
            for s in bad {
                let _ = writeln!(
                    out,
                    "  backup {} {}: {} {}",
                    b.id,
                    s.source,
                    s.status.to_uppercase(),
                    s.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    out += if r.ok {
        "verify: ok\n"
    } else {
        "verify: PROBLEMS FOUND\n"
    };
    out
}

/// `3m`, `5h`, `2d`: an age at a glance.
fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A signed age: a negative one (dated after now) is shown as `in the future`.
fn ago_signed(secs: i64) -> String {
    if secs < 0 {
        format!("{} IN THE FUTURE", ago(secs.unsigned_abs()))
    } else {
        format!("{} ago", ago(secs as u64))
    }
}

pub fn status(r: &drydock_engine::status::StatusReport) -> String {
    let mut out = format!(
        "stack {} ({})\n",
        r.stack,
        r.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    );
    for p in &r.pending_restores {
        let _ = writeln!(
            out,
            "! service `{}` needs a restore from backup {} ({}, since {}): run `drydock restore {} --service {} --force`",
            p.service,
            p.backup_id,
            p.reason,
            p.since.strftime("%Y-%m-%d %H:%M UTC"),
            p.backup_id,
            p.service
        );
    }
    if let Some(problem) = &r.repository_problem {
        let _ = writeln!(out, "! {problem}");
    }
    for svc in &r.services {
        for s in &svc.sources {
            if let Some(problem) = &s.clock_problem {
                let _ = writeln!(out, "! {}/{}: {problem}", svc.service, s.source);
            }
        }
    }
    let mut rows = Vec::new();
    for svc in &r.services {
        for (i, s) in svc.sources.iter().enumerate() {
            let first = i == 0;
            rows.push(vec![
                if first {
                    svc.service.clone()
                } else {
                    String::new()
                },
                if first {
                    svc.health.clone().unwrap_or_else(|| "-".into())
                } else {
                    String::new()
                },
                s.source.clone(),
                s.priority.to_string(),
                s.last_backup
                    .as_ref()
                    .map(|b| format!("{} ({})", b.id, ago_signed(b.age_s)))
                    .unwrap_or_else(|| "NONE".into()),
                match s.rpo_s {
                    Some(rpo) if rpo < 0 => "UNKNOWN: CLOCK PROBLEM".into(),
                    Some(rpo) if rpo as u64 > s.rpo_target_s => {
                        format!(
                            "{} > {} TARGET MISSED",
                            ago(rpo as u64),
                            ago(s.rpo_target_s)
                        )
                    }
                    Some(rpo) => format!("{} (target {})", ago(rpo as u64), ago(s.rpo_target_s)),
                    None => "-".into(),
                },
                s.last_backup
                    .as_ref()
                    .map(|b| {
                        b.copies
                            .iter()
                            .map(|c| format!("{}:{}", c.name, c.status))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .map(|d| format!("{} {} {}", d.kind, d.status, ago_signed(d.age_s)))
                    .unwrap_or_else(|| "never".into()),
            ]);
        }
    }
    out += &table(
        &[
            "SERVICE",
            "HEALTH",
            "SOURCE",
            "PRIORITY",
            "LAST BACKUP",
            "RPO NOW",
            "COPIES",
            "LAST DRILL",
        ],
        &rows,
    );
    let retention: Vec<String> = r
        .retention
        .iter()
        .map(|l| {
            format!(
                "{} {}d/{}w/{}m",
                l.priority, l.rules.daily, l.rules.weekly, l.rules.monthly
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "retention (daily/weekly/monthly): {}",
        retention.join(", ")
    );
    out
}

pub fn populate(r: &drydock_engine::populate::PopulateReport) -> String {
    let mut out = format!("test data (seed {}) for service `{}`:\n", r.seed, r.service);
    for s in &r.sources {
        let e = &s.expected;
        match &s.error {
            None => {
                let _ = writeln!(
                    out,
                    "  {} ({}): {} users -> {} projects -> {} files, {}; measured back exactly (digest {})",
                    s.source,
                    s.kind,
                    e.users,
                    e.projects,
                    e.files,
                    bytes(e.content_bytes),
                    &e.digest[..12]
                );
            }
            Some(err) => {
                let _ = writeln!(out, "  {} ({}): FAILED: {err}", s.source, s.kind);
            }
        }
    }
    out
}

pub fn sync(r: &SyncReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = write!(
            out,
            "copy {} ({}): {} - {} backup(s) copied and verified, {} already there",
            c.name,
            c.location,
            c.status,
            c.synced.len(),
            c.already_present
        );
        if !c.unsynced.is_empty() {
            let _ = write!(out, ", {} still missing", c.unsynced.len());
        }
        let _ = writeln!(out, " ({})", seconds(c.duration_ms));
        if let Some(e) = &c.error {
            let _ = writeln!(out, "  error: {e}");
        }
    }
    out
}

pub fn prune(r: &PruneReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = writeln!(
            out,
            "copy {} ({}): {}{}",
            c.name,
            c.location,
            c.status,
            if r.dry_run {
                " (dry run: nothing deleted)"
            } else {
                ""
            }
        );
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "  {reason}");
        }
        for w in &c.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for s in &c.sources {
            let _ = writeln!(
                out,
                "  {} ({}: keep daily {}, weekly {}, monthly {})",
                s.source, s.priority, s.rules.daily, s.rules.weekly, s.rules.monthly
            );
            for d in &s.decisions {
                let _ = writeln!(
                    out,
                    "    {} {}  {}",
                    if d.keep { "keep  " } else { "DELETE" },
                    d.id,
                    d.reasons.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "  {} source backup(s) {}{}",
            c.deleted.len(),
            if r.dry_run {
                "would be deleted"
            } else {
                "deleted"
            },
            if r.dry_run || c.bytes_removed == 0 {
                String::new()
            } else {
                format!(", {} freed", bytes(c.bytes_removed))
            }
        );
    }
    out
}

pub fn live(r: &LiveReport) -> String {
    let mut out = String::new();
    for s in &r.sources {
        let _ = writeln!(
            out,
            "  {:24} {:10} {}",
            s.source,
            s.status,
            s.backup_id.as_deref().unwrap_or("-")
        );
        for d in &s.differences {
            let _ = writeln!(out, "      {d}");
        }
    }
    out += if r.same {
        "live data equals the latest backup\n"
    } else {
        "live data differs from the latest backup (expected if it changed since)\n"
    };
    out
}

pub fn demo(r: &DemoReport) -> String {
    let p = &r.populate;
    let mut out = String::new();
    let _ = writeln!(out, "drydock demo: {}", r.dir);
    let _ = writeln!(
        out,
        "  built    SQLite app.db {} ({} customers -> {} orders -> {} order items), {} files ({})",
        bytes(p.database_bytes),
        p.customers,
        p.orders,
        p.order_items,
        p.files,
        bytes(p.file_bytes)
    );
    let _ = writeln!(
        out,
        "  backup   {} in {}",
        r.backup.id,
        seconds(r.backup.duration_ms)
    );
    out += &backup(&r.backup)
        .lines()
        .skip(1)
        .map(|l| format!("  {l}\n"))
        .collect::<String>();
    let _ = writeln!(
        out,
        "  wiped    database and uploads deleted at {}",
        r.wiped_at.strftime("%H:%M:%S")
    );
    out += &restore(&r.restore)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>();
    let _ = writeln!(
        out,
        "  RTO      {} (restore start to verified)",
        seconds(r.rto_ms)
    );
    let _ = writeln!(
        out,
        "  RPO      {} (backup's consistent point to the failure)",
        seconds(r.rpo_ms)
    );
    let _ = writeln!(
        out,
        "{}",
        if r.verified {
            "demo: VERIFIED - every restored source equals its backup"
        } else {
            "demo: FAILED - see above"
        }
    );
    out
}

pub fn health(stack: &str, r: &HealthReport) -> String {
    let mut out = format!(
        "stack {stack}: {} ({} services, {} ms)\n",
        r.status.as_str(),
        r.services.len(),
        r.duration_ms
    );
    let mut rows = Vec::new();
    for (name, svc) in &r.services {
        if svc.checks.is_empty() {
            rows.push(vec![
                name.clone(),
                svc.status.as_str().into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "no checks".into(),
            ]);
        }
        for c in &svc.checks {
            rows.push(vec![
                name.clone(),
                svc.status.as_str().into(),
                c.name.clone(),
                c.kind.clone(),
                c.status.as_str().into(),
                format!("{:.1} ms", c.latency_ms),
                c.message.clone(),
            ]);
        }
    }
    out += &table(
        &[
            "SERVICE", "STATE", "CHECK", "KIND", "STATUS", "LATENCY", "MESSAGE",
        ],
        &rows,
    );
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

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
                "   processes: {} (PIDs {:?}), cpu {cpu}%, memory {}",
                res.processes,
                res.pids,
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
                format!("{:?}", i.severity).to_uppercase(),
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

pub fn heal(r: &HealReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    for s in &r.services {
        let _ = writeln!(
            out,
            "{}: {} -> {}: {}",
            s.service,
            s.before.as_str(),
            s.after.as_str(),
            s.summary
        );
        for a in &s.attempts {
            let _ = writeln!(
                out,
                "  attempt {} ({}, {}): {}{}",
                a.attempt,
                a.action,
                a.at,
                a.message,
                a.backoff_ms
                    .map(|b| format!("; next attempt in {} ms", b))
                    .unwrap_or_default()
            );
        }
        for i in &s.diagnosis {
            let _ = writeln!(
                out,
                "  [{}] {}: {}\n     fix: {}",
                format!("{:?}", i.severity).to_uppercase(),
                i.issue,
                i.details,
                i.suggested_fix
            );
        }
        if let Some(n) = &s.needs {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

pub fn init(r: &InitReport) -> String {
    let mut out = format!(
        "wrote {} from {} (Compose project `{}`)\n",
        r.file, r.compose, r.project
    );
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.role.clone().unwrap_or_else(|| "-".into()),
                s.image.clone().unwrap_or_else(|| "-".into()),
                s.guess.clone(),
                s.sources
                    .iter()
                    .map(|d| format!("{} {} ({})", d.kind, d.name, d.priority))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.health.join(", "),
            ]
        })
        .collect();
    out += &table(
        &["SERVICE", "ROLE", "IMAGE", "GUESS", "DATA", "HEALTH"],
        &rows,
    );
    let _ = writeln!(out, "check:");
    for c in &r.check {
        let _ = writeln!(out, "  - {c}");
    }
    out
}
