//! `drydock backup`: the run's verdict, one row per source, what was left out, the
//! services stopped around the consistent point, and each copy's outcome.

use std::fmt::Write;

use drydock_domain::SourceStatus;
use drydock_engine::backup::BackupReport;

use crate::layout::{bytes, counts, seconds, table};
use crate::words;

pub fn backup(r: &BackupReport) -> String {
    let mut out = format!(
        "backup {}: {} ({} sources, {}){}\n",
        r.id,
        words::backup_status(r.status),
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
                words::source_status(s.status).to_string(),
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
            words::restart_status(s.status),
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
    for l in &r.left_out {
        let _ = writeln!(
            out,
            "left out: {}/{} ({}; {})",
            l.service,
            l.source,
            l.priority,
            words::left_out_because(l.because)
        );
    }
    for c in &r.copies {
        let _ = write!(
            out,
            "copy {}: {}",
            c.name,
            words::backup_copy_status(c.status)
        );
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
