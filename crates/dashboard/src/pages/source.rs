//! `GET /sources/{service}/{source}`: one source's backups and where each is (verified,
//! present, unsynced, missing, corrupt, pruned per copy), its matrix row and RPO, its
//! last drill, and its size and the backups' duration over time.

use askama::Template;
use drydock_render::layout::{bytes, seconds};
use drydock_render::words;

use crate::charts::line_chart;
use crate::error::DashboardError;
use crate::pages::{not_found, render, Page};
use crate::view::{
    backup_duration_s, drill_line, history, source_row, when, Copies, DrillLine, Inputs, SourceRow,
};

/// The source page lists at most this many backups, newest first.
pub const MAX_BACKUPS: usize = 200;

/// One backup holding the source.
#[derive(Debug, Clone)]
pub struct BackupLine {
    pub id: String,
    pub started: String,
    pub status: &'static str,
    pub logical: String,
    pub stored: String,
    pub took: String,
    /// Per copy, local first: (CSS class, state word).
    pub copies: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone)]
pub struct SourceData {
    pub stack: String,
    pub generated: String,
    pub row: SourceRow,
    pub copies: Vec<String>,
    pub drill: Option<DrillLine>,
    pub backups: Vec<BackupLine>,
    /// How many older backups are not listed.
    pub more: usize,
    pub size_chart: String,
    pub duration_chart: String,
}

fn copy_class(state: &str) -> &'static str {
    match state {
        "verified" => "good",
        "present" | "unknown" | "unsynced" => "warn",
        _ => "bad",
    }
}

/// The source's data, or `None` when the config has no such source.
pub fn build(
    inputs: &Inputs,
    service: &str,
    source: &str,
) -> Result<Option<SourceData>, DashboardError> {
    let Some((_, _, cfg)) = inputs
        .config
        .sources()
        .find(|(svc, _, s)| *svc == service && s.name() == source)
    else {
        return Ok(None);
    };
    let copies = Copies::read(inputs.config, inputs.state)?;
    let hist = history(&inputs.daemon.backups);
    let row = source_row(inputs, &copies, &hist, service, cfg);
    let drill = inputs
        .state
        .last_drills()?
        .iter()
        .find(|d| d.service == service && d.source == source)
        .map(|d| drill_line(inputs.config, d, inputs.now));
    // Every backup that mentions the source, failed and pruned ones too: the page is
    // where one looks for why the matrix is red.
    let all: Vec<_> = inputs
        .daemon
        .backups
        .iter()
        .filter_map(|b| {
            b.sources
                .iter()
                .find(|s| s.service == service && s.source == source)
                .map(|s| (b, s))
        })
        .collect();
    let backups = all
        .iter()
        .take(MAX_BACKUPS)
        .map(|(b, s)| BackupLine {
            id: b.id.clone(),
            started: when(b.started_at),
            status: if s.pruned_at.is_some() {
                "pruned"
            } else {
                words::source_status(s.status)
            },
            logical: bytes(s.logical_bytes),
            stored: bytes(s.stored_bytes),
            took: seconds((backup_duration_s(b) * 1000.0) as u64),
            copies: (0..copies.names.len())
                .map(|i| {
                    let st = copies.status(i, b);
                    (copy_class(st), st)
                })
                .collect(),
        })
        .collect();
    let size: Vec<_> = all
        .iter()
        .map(|(b, s)| (b.started_at, s.logical_bytes as f64))
        .collect();
    let took: Vec<_> = all
        .iter()
        .map(|(b, _)| (b.started_at, backup_duration_s(b)))
        .collect();
    Ok(Some(SourceData {
        stack: inputs.config.stack.name.clone(),
        generated: when(inputs.now),
        size_chart: line_chart(
            &format!("{service}/{source}: data per backup"),
            &size,
            |v| bytes(v as u64),
        ),
        duration_chart: line_chart("duration of the backups holding it", &took, |v| {
            format!("{v:.0} s")
        }),
        row,
        copies: copies.names,
        drill,
        more: all.len().saturating_sub(MAX_BACKUPS),
        backups,
    }))
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage<'a> {
    d: &'a SourceData,
}

/// The handler of `GET /sources/{service}/{source}`: 404 for a source not in the config.
pub fn source(inputs: &Inputs, service: &str, source: &str) -> Result<Page, DashboardError> {
    match build(inputs, service, source)? {
        Some(d) => render("source", &SourcePage { d: &d }, 200),
        None => not_found(inputs, format!("no source {source} in service {service}")),
    }
}
