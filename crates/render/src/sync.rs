//! `drydock sync`: per remote copy, what was brought over and what is still missing.

use std::fmt::Write;

use drydock_engine::sync::SyncReport;

use crate::layout::seconds;
use crate::words;

pub fn sync(r: &SyncReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = write!(
            out,
            "copy {} ({}): {} - {} backup(s) copied and verified, {} already there",
            c.name,
            c.location,
            words::sync_status(c.status),
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
