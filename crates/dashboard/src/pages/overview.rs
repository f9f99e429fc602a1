//! `GET /`: the whole stack at a glance. Health per service, the backup matrix
//! (source x copy: age, size, verified, overdue) with the RPO of each source against
//! its target, the next scheduled runs, the recent runs, the last drills with RTO and
//! RPO, size and duration over time, and the notifications that were not delivered.

use askama::Template;
use drydock_engine::Redactor;
use drydock_render::layout::bytes;

use crate::charts::line_chart;
use crate::error::DashboardError;
use crate::inputs::RECENT_RUNS;
use crate::pages::{render, Page};
use crate::view::{
    backup_duration_s, drill_line, health_tiles, history, run_line, source_rows, when, Copies,
    DrillLine, HealthTile, Inputs, RunLine, SourceRow,
};

/// A line above everything else: what needs doing first.
#[derive(Debug, Clone)]
pub struct Banner {
    pub class: &'static str,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct NextLine {
    pub job: String,
    pub scope: String,
    pub at: String,
    pub r#in: String,
}

#[derive(Debug, Clone)]
pub struct NotificationLine {
    pub channel: String,
    pub about: String,
    pub attempts: u32,
    pub at: String,
    pub error: String,
    pub state: &'static str,
}

/// Everything the overview shows, ready to lay out.
#[derive(Debug, Clone)]
pub struct OverviewData {
    pub stack: String,
    pub generated: String,
    pub banners: Vec<Banner>,
    pub health: Vec<HealthTile>,
    pub copies: Vec<String>,
    pub rows: Vec<SourceRow>,
    pub next_runs: Vec<NextLine>,
    pub runs: Vec<RunLine>,
    pub drills: Vec<DrillLine>,
    pub size_chart: String,
    pub duration_chart: String,
    pub notifications: Vec<NotificationLine>,
}

/// Builds the overview's data: the state database is read (copy records, health,
/// drills, owed restores); no repository is opened.
pub fn build(inputs: &Inputs) -> Result<OverviewData, DashboardError> {
    let redact = Redactor::new(inputs.config);
    let now = inputs.now;
    let copies = Copies::read(inputs.config, inputs.state)?;
    let hist = history(&inputs.daemon.backups);
    let rows = source_rows(inputs, &copies, &hist);
    let health = health_tiles(inputs.config, &inputs.state.latest_health()?, &redact, now);
    let drills = inputs
        .state
        .last_drills()?
        .iter()
        .map(|d| drill_line(inputs.config, d, now))
        .collect();

    let mut banners = Vec::new();
    for p in inputs.state.pending_restores()? {
        banners.push(Banner {
            class: "bad",
            text: format!(
                "service {} needs a restore from backup {} ({}, since {}): run `drydock restore {} --service {} --force`",
                p.service, p.backup_id, redact.line(&p.reason), when(p.since), p.backup_id, p.service
            ),
        });
    }
    let overdue: Vec<_> = rows
        .iter()
        .filter(|r| r.overdue)
        .map(|r| format!("{}/{}", r.service, r.source))
        .collect();
    if !overdue.is_empty() {
        banners.push(Banner {
            class: "bad",
            text: format!(
                "overdue (no recent backup in every copy): {}",
                overdue.join(", ")
            ),
        });
    }
    let unhealthy: Vec<_> = health
        .iter()
        .filter(|h| h.class == "bad")
        .map(|h| h.service.clone())
        .collect();
    if !unhealthy.is_empty() {
        banners.push(Banner {
            class: "bad",
            text: format!("unhealthy: {}", unhealthy.join(", ")),
        });
    }

    // The stack's backups over time: the data they hold, and how long each took.
    let size: Vec<_> = inputs
        .daemon
        .backups
        .iter()
        .map(|b| (b.started_at, b.logical_bytes as f64))
        .collect();
    let took: Vec<_> = inputs
        .daemon
        .backups
        .iter()
        .map(|b| (b.started_at, backup_duration_s(b)))
        .collect();

    Ok(OverviewData {
        stack: inputs.config.stack.name.clone(),
        generated: when(now),
        banners,
        health,
        copies: copies.names.clone(),
        rows,
        next_runs: inputs
            .daemon
            .next_runs
            .iter()
            .map(|n| NextLine {
                job: n.job.clone(),
                scope: n.scope.clone(),
                at: when(n.at),
                r#in: drydock_render::layout::ago((-crate::view::age_s(n.at, now)).max(0) as u64),
            })
            .collect(),
        runs: inputs
            .daemon
            .recent_runs
            .iter()
            .take(RECENT_RUNS)
            .map(|r| run_line(r, &redact))
            .collect(),
        drills,
        size_chart: line_chart("data per backup", &size, |v| bytes(v as u64)),
        duration_chart: line_chart("duration per backup", &took, |v| format!("{v:.0} s")),
        notifications: inputs
            .daemon
            .failed_notifications
            .iter()
            .map(|n| NotificationLine {
                channel: n.channel.clone(),
                about: n.about.clone(),
                attempts: n.attempts,
                at: when(n.last_attempt_at),
                error: redact.line(&n.error),
                state: if n.gave_up { "gave up" } else { "retrying" },
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    d: &'a OverviewData,
}

/// Renders already-built data (the benchmark times build and render apart).
pub fn render_data(d: &OverviewData) -> Result<Page, DashboardError> {
    render("overview", &OverviewPage { d }, 200)
}

/// The handler of `GET /`.
pub fn overview(inputs: &Inputs) -> Result<Page, DashboardError> {
    render_data(&build(inputs)?)
}
