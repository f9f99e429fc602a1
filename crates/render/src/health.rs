//! `drydock health`: one row per check of every service.

use std::fmt::Write;

use drydock_engine::health::HealthReport;

use crate::layout::table;

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
