//! `drydock heal`: per service the state before and after, every attempt, and what
//! heal could not fix.

use std::fmt::Write;

use drydock_engine::heal::HealReport;

use crate::words;

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
                words::severity(i.severity),
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
