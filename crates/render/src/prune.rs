//! `drydock prune`: per copy and source, the retention rules and each backup's keep
//! or delete decision with its reasons.

use std::fmt::Write;

use drydock_engine::prune::PruneReport;

use crate::layout::bytes;
use crate::words;

pub fn prune(r: &PruneReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = writeln!(
            out,
            "copy {} ({}): {}{}",
            c.name,
            c.location,
            words::prune_status(c.status),
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
