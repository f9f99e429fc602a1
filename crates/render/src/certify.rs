//! `drydock certify`: the completion report of the 9-step readiness routine as
//! Markdown (steps, metrics table, verdict), printed and written beside its JSON.

use std::fmt::Write;

use drydock_engine::certify::{CertifyReport, Readiness, StepStatus};

use crate::words;

fn opt_secs(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1} s", m as f64 / 1000.0))
        .unwrap_or_else(|| "not measured".into())
}

/// The completion report: every step with its outcome, the metrics, the verdict.
pub fn markdown(r: &CertifyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Certification of `{}` (stack `{}`)\n",
        r.service, r.stack
    );
    let _ = writeln!(
        out,
        "- run {} to {}{}\n",
        r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        r.finished_at.strftime("%H:%M:%S UTC"),
        if r.resumed_at > 1 && r.resumed_at <= 9 {
            format!(", resumed at step {}", r.resumed_at)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "| step | | status | detail |");
    let _ = writeln!(out, "|---:|---|---|---|");
    for s in &r.steps {
        let mark = words::step_status(s.status);
        let _ = writeln!(
            out,
            "| {} | {} | {mark} | {} |",
            s.step,
            s.description,
            s.detail.replace('|', "\\|")
        );
    }
    let m = &r.metrics;
    let _ = writeln!(out, "\n## Metrics\n");
    let _ = writeln!(out, "| metric | value |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| deploy time | {} |",
        m.deploy_ms
            .map(|d| format!("{d} ms"))
            .unwrap_or_else(|| "not measured".into())
    );
    let _ = writeln!(
        out,
        "| RTO | {} (target {:.0} s) |",
        opt_secs(m.rto_ms),
        m.rto_target_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "| RPO | {} (target {:.0} s) |",
        opt_secs(m.rpo_ms),
        m.rpo_target_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "| backup size | {} |",
        match (m.backup_logical_bytes, m.backup_stored_bytes) {
            (Some(l), Some(s)) => format!("{l} bytes of data, {s} bytes added to the repository"),
            _ => "not measured".into(),
        }
    );
    let _ = writeln!(
        out,
        "| idempotency (changes on a second deploy) | {} |",
        m.idempotency_changes
            .map(|c| c.to_string())
            .unwrap_or_else(|| "not measured".into())
    );
    let _ = writeln!(
        out,
        "| external check success rate | {} |",
        m.external_check_success_pct
            .map(|p| format!("{p:.0}%"))
            .unwrap_or_else(|| "no external checks".into())
    );
    let _ = writeln!(out, "\n## Verdict\n");
    let _ = writeln!(
        out,
        "{}",
        match r.readiness {
            Readiness::ProductionReady => "Service status: **PRODUCTION READY**".to_string(),
            Readiness::Failed => {
                let failed = r.steps.iter().find(|s| s.status == StepStatus::Failed);
                format!("Service status: **NOT production ready** — {}. Fix it and run `drydock certify {}` again: it resumes at that step.",
                failed.map(|s| format!("step {} failed: {}", s.step, s.detail)).unwrap_or_else(|| "steps remain".into()), r.service)
            }
        }
    );
    out
}
