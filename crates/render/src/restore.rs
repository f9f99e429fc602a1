//! `drydock restore`: one row per restored source, what differs or failed, and the
//! verdict with the RTO. Two durations, each named for what it measures: a source's
//! TIME (its own restore and verification) and the RTO (the whole restore, start to
//! the last source verified), which is at least the longest TIME.

use std::fmt::Write;

use drydock_engine::restore::{RestoreReport, RestoreStatus};

use crate::layout::{counts, seconds, table};
use crate::words;

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
                words::restore_status(s.status).to_string(),
                counts(&s.restored_counts),
                seconds(s.duration_ms),
            ]
        })
        .collect();
    out += &table(
        &["SOURCE", "BACKUP", "COPY", "RESULT", "COUNTS", "TIME"],
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
        "{} (RTO {}: restore start to the last source verified)",
        if r.verified {
            "restore verified: counts and fingerprints equal the backup"
        } else {
            "restore NOT verified"
        },
        seconds(r.rto_ms)
    );
    out
}
