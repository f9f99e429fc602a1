//! The dashboard's routes: `/` (the overview), `/sources/{service}/{source}` and
//! `/runs/{id}`, rendered by `drydock_dashboard` from the config, the state database
//! and what only the daemon knows (its runs, the next slots, each source's expected
//! backup period, failed notifications, the backup listing). The listing is the one part that reads the repository: it is kept
//! and read again only after a run has ended since (never on every request).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use drydock_dashboard::{
    DaemonView, FailedNotification, Inputs, NextRun, Page, RunEvent, RunStep, RunSummary,
};
use drydock_domain::config::ScheduleConfig;
use drydock_state::{JobRun, OutboxStatus, RunOutcome, StateDb};
use jiff::Timestamp;

use super::state::{error, AppState};
use crate::events;
use crate::schedule::Schedule;

fn summary(run: &JobRun) -> RunSummary {
    RunSummary {
        id: run.id,
        job: run.kind.clone(),
        trigger: run.trigger.as_str().to_string(),
        started_at: run.started,
        finished_at: run.finished,
        verdict: match run.verdict {
            Some(RunOutcome::Verdict(v)) => Some(v),
            Some(RunOutcome::Interrupted) => Some(drydock_domain::Verdict::CouldNotRun),
            Some(RunOutcome::Skipped) | None => None,
        },
        summary: run.summary.clone(),
    }
}

/// The next slot of every schedule in effect.
fn next_runs(app: &AppState, now: Timestamp) -> Vec<NextRun> {
    ScheduleConfig::effective(&app.config.schedules)
        .into_iter()
        .map(Schedule::new)
        .filter_map(|s| {
            let at = s.next_slot(now)?;
            let mut scope: Vec<String> = s.config.priority.iter().map(|p| p.to_string()).collect();
            scope.extend(s.config.services.iter().cloned());
            Some(NextRun {
                job: s.config.job.to_string(),
                scope: if scope.is_empty() {
                    "all".into()
                } else {
                    scope.join(", ")
                },
                at,
            })
        })
        .collect()
}

fn failed_notifications(db: &StateDb) -> Vec<FailedNotification> {
    db.recent_failed_notifications(20)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.status == OutboxStatus::Failed)
        .map(|e| FailedNotification {
            // Named by its config name, never by its URL (a secret).
            channel: e.channel,
            about: e.event,
            attempts: e.attempts,
            last_attempt_at: Timestamp::from_millisecond(e.finished_ms.unwrap_or(e.created_ms))
                .unwrap_or(Timestamp::UNIX_EPOCH),
            error: e.last_error,
            gave_up: true,
        })
        .collect()
}

/// Builds the daemon's part of the page data and renders with `render`.
async fn page(
    app: AppState,
    render: impl FnOnce(&Inputs) -> Result<Page, drydock_dashboard::DashboardError> + Send + 'static,
) -> Response {
    let rendered = tokio::task::spawn_blocking(move || -> Result<Page, String> {
        let db = StateDb::open(&app.config.stack.state_dir).map_err(|e| e.to_string())?;
        let now = app.clock.now();
        let daemon = DaemonView {
            backups: app.listing.current(&app.config, app.runs.ended()),
            recent_runs: db
                .recent_runs(drydock_dashboard::inputs::RECENT_RUNS)
                .map_err(|e| e.to_string())?
                .iter()
                .map(summary)
                .collect(),
            next_runs: next_runs(&app, now),
            failed_notifications: failed_notifications(&db),
            backup_periods: app.periods.for_dashboard(),
            overdue_factor: app.config.serve.overdue_factor,
        };
        let inputs = Inputs {
            config: &app.config,
            state: &db,
            daemon: &daemon,
            now,
        };
        render(&inputs).map_err(|e| e.to_string())
    })
    .await;
    match rendered {
        Ok(Ok(page)) => (
            StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK),
            [
                (header::CONTENT_TYPE, drydock_dashboard::CONTENT_TYPE),
                (
                    header::CONTENT_SECURITY_POLICY,
                    drydock_dashboard::CONTENT_SECURITY_POLICY,
                ),
            ],
            page.html,
        )
            .into_response(),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page failed inside drydock (a bug); see the daemon's log",
        ),
    }
}

/// `GET /`.
pub async fn overview(State(app): State<AppState>) -> Response {
    page(app, drydock_dashboard::overview).await
}

/// `GET /sources/{service}/{source}`.
pub async fn source(
    State(app): State<AppState>,
    Path((service, source)): Path<(String, String)>,
) -> Response {
    page(app, move |i| {
        drydock_dashboard::source(i, &service, &source)
    })
    .await
}

/// `GET /runs/{id}`: the run, its steps (each source's work, from its events) and the
/// engine events it emitted (kept by the run's event sink, redacted, the newest
/// [`drydock_state::run_events::KEEP_PER_RUN`]).
pub async fn run(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
    page(app, move |i| {
        let detail = match i.state.job_run(id) {
            Ok(Some(r)) => Some(run_detail(i.state, &r)?),
            Ok(None) => None,
            Err(e) => return Err(drydock_dashboard::DashboardError::State(e)),
        };
        drydock_dashboard::run(i, id, detail.as_ref())
    })
    .await
}

fn run_detail(
    db: &StateDb,
    run: &JobRun,
) -> Result<drydock_dashboard::RunDetail, drydock_dashboard::DashboardError> {
    let events = db
        .run_events(run.id)
        .map_err(drydock_dashboard::DashboardError::State)?;
    Ok(drydock_dashboard::RunDetail {
        run: summary(run),
        steps: events::steps(&events)
            .into_iter()
            .map(|s| RunStep {
                name: s.name,
                started_at: s.started_at,
                // A source the run left unfinished ends with it, with no verdict.
                finished_at: s.finished_at.or(run.finished),
                verdict: s.verdict,
                detail: s.detail,
            })
            .collect(),
        events: events
            .iter()
            .map(|e| RunEvent {
                at: e.at,
                text: events::line(e),
            })
            .collect(),
    })
}
