//! `drydock populate`: the test data written per source and its digest.

use std::fmt::Write;

use drydock_engine::populate::PopulateReport;

use crate::layout::bytes;

pub fn populate(r: &PopulateReport) -> String {
    let mut out = format!("test data (seed {}) for service `{}`:\n", r.seed, r.service);
    for s in &r.sources {
        let e = &s.expected;
        match &s.error {
            None => {
                let _ = writeln!(
                    out,
                    "  {} ({}): {} users -> {} projects -> {} files, {}; measured back exactly (digest {})",
                    s.source,
                    s.kind,
                    e.users,
                    e.projects,
                    e.files,
                    bytes(e.content_bytes),
                    &e.digest[..12]
                );
            }
            Some(err) => {
                let _ = writeln!(out, "  {} ({}): FAILED: {err}", s.source, s.kind);
            }
        }
    }
    out
}
