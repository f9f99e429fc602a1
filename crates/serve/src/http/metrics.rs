//! `GET /metrics`: the Prometheus exposition of `drydock_metrics`, computed at each
//! scrape from the config and the state database (never a repository), plus the
//! figures only the daemon has: its run counts since it started, the outbox's failed
//! notifications, the scheduler's last tick and each source's expected backup period
//! from the schedules.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use drydock_metrics::{DaemonFigures, Format};
use drydock_state::StateDb;

use super::state::{error, AppState};

/// The scrape, on the blocking pool (it reads SQLite).
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let scraped = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let db = StateDb::open(&app.config.stack.state_dir).map_err(|e| e.to_string())?;
        let figures = DaemonFigures {
            runs: app.runs.counts(),
            notifications_failed: db.failed_notifications_total().map_err(|e| e.to_string())?,
            scheduler_last_tick: app.heartbeat.last(),
            backup_periods: app.periods.for_metrics(),
            overdue_factor: app.config.serve.overdue_factor,
        };
        drydock_metrics::scrape(&app.config, &db, app.clock.now(), &figures, format)
            .map_err(|e| e.to_string())
    })
    .await;
    match scraped {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the scrape failed inside drydock (a bug); see the daemon's log",
        ),
    }
}
