//! `drydock drill`: the report as Markdown, printed and written beside its JSON. The
//! RTO figures say what each measures: the whole stack's (first restore start to the
//! last verification) and each source's own (its restore start to its verification).

use std::fmt::Write;

use drydock_engine::drill::{DrillKind, DrillReport};

use crate::layout::seconds as secs;
use crate::words;

/// The human report: verdict, targets, one row per source, then each source's details.
pub fn markdown(r: &DrillReport) -> String {
    let mut out = String::new();
    let verdict = match r.verdict().exit_code() {
        0 => "PASSED",
        1 => "PASSED, TARGET MISSED",
        2 => "FAILED",
        _ => "COULD NOT RUN",
    };
    let _ = writeln!(
        out,
        "# {} drill of stack `{}`: {verdict}\n",
        match r.kind {
            DrillKind::Destructive => "Destructive",
            DrillKind::Sandbox => "Sandbox",
        },
        r.stack
    );
    let _ = writeln!(
        out,
        "- started {}, finished {}",
        r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        r.finished_at.strftime("%H:%M:%S UTC")
    );
    match &r.backup {
        Some(b) => {
            let _ = writeln!(
                out,
                "- backup taken by the drill: `{}` ({}, {})",
                b.id,
                words::backup_status(b.status),
                secs(b.duration_ms)
            );
        }
        None => {
            let _ = writeln!(out, "- restored an existing backup (no canary written)");
        }
    }
    let _ = writeln!(
        out,
        "- RTO (whole stack: first restore start to the last source verified): {} — target {} — {}",
        secs(r.rto_ms),
        secs(r.rto_target_ms),
        if !r.passed {
            "not judged (the drill did not pass)"
        } else if r.rto_ms <= r.rto_target_ms {
            "met"
        } else {
            "MISSED"
        }
    );
    match r.rpo_ms {
        Some(rpo) => {
            let _ = writeln!(
                out,
                "- RPO (worst source): {} — target {} — {}",
                secs(rpo),
                secs(r.rpo_target_ms),
                if !r.passed {
                    "not judged (the drill did not pass)"
                } else if rpo <= r.rpo_target_ms {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
        None => {
            let _ = writeln!(out, "- RPO: not measured");
        }
    }
    let _ = writeln!(out, "\n| source | kind | priority | result | fingerprint | canary | RTO (this source) | RPO | backup | sandbox |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---:|---:|---|---|");
    for s in &r.sources {
        let _ = writeln!(
            out,
            "| {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.service,
            s.source,
            s.kind,
            s.priority,
            words::drill_status(s.status),
            if s.fingerprint_matched {
                "matched"
            } else {
                "—"
            },
            words::canary_status(s.canary.status),
            s.rto_ms.map(secs).unwrap_or_else(|| "—".into()),
            s.rpo_ms.map(secs).unwrap_or_else(|| "—".into()),
            s.backup_id.as_deref().unwrap_or("—"),
            s.sandbox.as_deref().unwrap_or("—"),
        );
    }
    for svc in &r.services {
        let _ = writeln!(
            out,
            "\n## service `{}`: {} (backup `{}`)\n",
            svc.service,
            words::service_drill_status(svc.status),
            svc.backup_id
        );
        for step in &svc.steps {
            let _ = writeln!(out, "- step {}: {}", step.name, secs(step.ms));
        }
        if let Some(h) = &svc.health {
            let _ = writeln!(out, "- health after the restore: {h}");
        }
        if let Some(state) = &svc.state {
            let _ = writeln!(out, "- **state**: {state}");
        }
        if let Some(recover) = &svc.recover {
            let _ = writeln!(out, "- **to recover**: `{recover}`");
        }
    }
    for s in &r.sources {
        let _ = writeln!(out, "\n## {}/{}\n", s.service, s.source);
        let _ = writeln!(
            out,
            "- targets: RTO of this source {} ({}), RPO {} ({})",
            secs(s.rto_target_ms),
            match s.rto_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            },
            secs(s.rpo_target_ms),
            match s.rpo_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            }
        );
        if let Some(t) = &s.test_data {
            let _ = writeln!(
                out,
                "- test data: {}",
                if t.matched {
                    "every measure as populated".to_string()
                } else {
                    format!("DIFFERS: {}", t.differences.join("; "))
                }
            );
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "- error: {e}");
        }
        for d in &s.differences {
            let _ = writeln!(out, "- difference: {d}");
        }
        for n in &s.notes {
            let _ = writeln!(out, "- note: {n}");
        }
        if let Some(d) = &s.canary.detail {
            let _ = writeln!(
                out,
                "- canary {}: {d}",
                words::canary_status(s.canary.status)
            );
        }
        let counts: Vec<String> = s
            .counts
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !counts.is_empty() {
            let _ = writeln!(out, "- restored counts: {}", counts.join(" "));
        }
        for step in &s.steps {
            let _ = writeln!(out, "- step {}: {}", step.name, secs(step.ms));
        }
    }
    out
}
