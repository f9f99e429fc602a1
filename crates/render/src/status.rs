//! `drydock status`: the one-screen view: restores owed, then per source its last
//! backup, RPO against the target, copies and last drill, then retention.

use std::fmt::Write;

use drydock_engine::status::StatusReport;

use crate::layout::{ago, ago_signed, table};
use crate::words;

pub fn status(r: &StatusReport) -> String {
    let mut out = format!(
        "stack {} ({})\n",
        r.stack,
        r.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    );
    if let Some(d) = &r.last_deployment {
        let mark = match d.outcome.as_str() {
            "ok" | "running" => " ",
            _ => "!",
        };
        let _ = writeln!(
            out,
            "{mark} last deployment {}: {} {} ({}), {}{}",
            d.id,
            d.kind,
            d.rev,
            d.commit.chars().take(12).collect::<String>(),
            d.outcome,
            match d.outcome.as_str() {
                "interrupted" => ": cut short; `drydock deploy` records it and carries on, `drydock deployments` shows the step it reached",
                "needs-rollback" => ": run `drydock rollback`",
                _ => "",
            }
        );
    }
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
                            .map(|c| format!("{}:{}", c.name, words::in_copy(c.status)))
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
