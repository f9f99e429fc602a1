//! `drydock backups`: every backup with its sources and copies, and what retention
//! removed from the partly pruned ones.

use std::fmt::Write;

use drydock_domain::SourceStatus;
use drydock_engine::copies::InCopy;
use drydock_engine::list::{BackupList, SourceSummary};

use crate::layout::{bytes, table};
use crate::words;

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
                words::backup_status(b.status).to_string(),
                format!("{ok}/{}", b.sources.len()),
                bytes(b.logical_bytes),
                b.copies
                    .iter()
                    .map(|c| match c.verified_at {
                        Some(at) if c.status == InCopy::Verified => {
                            format!("{}:verified@{}", c.name, at.strftime("%m-%d %H:%M"))
                        }
                        _ => format!("{}:{}", c.name, words::in_copy(c.status)),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    // Backups retention partly removed: what is gone and what they still hold.
    let mut partial = String::new();
    for b in &l.backups {
        let label = |s: &SourceSummary| format!("{}/{}", s.service, s.source);
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
