//! `drydock verify`: per copy, its structure, the pack data read and the damaged
//! objects with the backups that need them; `verify --live`: live data against the
//! latest backup.

use std::fmt::Write;

use drydock_engine::verify::{CheckStatus, LiveReport, VerifyReport};

use crate::words;

pub fn verify(r: &VerifyReport) -> String {
    let mut out = String::new();
    for c in &r.copies {
        let _ = writeln!(
            out,
            "copy {} ({}): {}",
            c.name,
            c.location,
            match (&c.error, c.repository_errors.is_empty()) {
                (Some(_), _) => "NOT CHECKED",
                (None, true) => "structure ok",
                (None, false) => "DAMAGED",
            }
        );
        if let Some(e) = &c.error {
            let _ = writeln!(out, "  error: {e}");
        }
        match r.read_data.as_str() {
            "none" => {}
            "all" => out += "  all pack data read and checked\n",
            share => {
                let _ = writeln!(out, "  a random {share} of the pack data read and checked");
            }
        }
        for e in &c.repository_errors {
            let _ = writeln!(out, "  error: {e}");
        }
        for d in &c.damaged {
            let needed: Vec<String> = d
                .needed_by
                .iter()
                .map(|n| format!("{} ({})", n.backup_id, n.sources.join(", ")))
                .collect();
            let _ = writeln!(
                out,
                "  damaged {}: needed by {}",
                d.object,
                if needed.is_empty() {
                    "no checked backup".to_string()
                } else {
                    needed.join("; ")
                }
            );
        }
        for b in &c.backups {
            let bad: Vec<_> = b
                .sources
                .iter()
                .filter(|s| s.status != CheckStatus::Ok)
                .collect();
            if bad.is_empty() {
                let _ = writeln!(out, "  backup {}: {} sources ok", b.id, b.sources.len());
            }
            for s in bad {
                let _ = writeln!(
                    out,
                    "  backup {} {}: {} {}",
                    b.id,
                    s.source,
                    words::check_status(s.status).to_uppercase(),
                    s.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    out += if r.ok {
        "verify: ok\n"
    } else {
        "verify: PROBLEMS FOUND\n"
    };
    out
}

pub fn live(r: &LiveReport) -> String {
    let mut out = String::new();
    for s in &r.sources {
        let _ = writeln!(
            out,
            "  {:24} {:10} {}",
            s.source,
            words::live_status(s.status),
            s.backup_id.as_deref().unwrap_or("-")
        );
        for d in &s.differences {
            let _ = writeln!(out, "      {d}");
        }
    }
    out += if r.same {
        "live data equals the latest backup\n"
    } else {
        "live data differs from the latest backup (expected if it changed since)\n"
    };
    out
}
