//! `drydock init --from-compose`: the config written, one row per service with
//! its guessed kind, data and health checks, and what to check by hand.

use std::fmt::Write;

use drydock_engine::init::InitReport;

use crate::layout::table;

pub fn init(r: &InitReport) -> String {
    let mut out = format!(
        "wrote {} from {} (Compose project `{}`)\n",
        r.file, r.compose, r.project
    );
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.role.clone().unwrap_or_else(|| "-".into()),
                s.image.clone().unwrap_or_else(|| "-".into()),
                s.guess.clone(),
                s.sources
                    .iter()
                    .map(|d| format!("{} {} ({})", d.kind, d.name, d.priority))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.health.join(", "),
            ]
        })
        .collect();
    out += &table(
        &["SERVICE", "ROLE", "IMAGE", "GUESS", "DATA", "HEALTH"],
        &rows,
    );
    let _ = writeln!(out, "check:");
    for c in &r.check {
        let _ = writeln!(out, "  - {c}");
    }
    out
}
