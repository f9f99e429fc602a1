//! The handlers: `/healthz`, the read endpoints (the engine's own reports and the
//! state database, serialized as the CLI's `--json` does), the events stream and
//! starting a job.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drydock_domain::config::JobKind;
use drydock_engine::RunContext;
use drydock_state::{StateDb, Trigger};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::state::{error, AppState};
use crate::jobs::JobRequest;
use crate::runner::Submitted;

/// `/healthz` turns 503 when the scheduler has not ticked for this long.
const STALE_AFTER_S: i64 = 300;

/// Why a read failed, with the status it answers.
type Failure = (StatusCode, String);

/// An engine error as a status: nothing there yet is 404 (no repository before the
/// first backup), a refusal 409, anything else 500.
fn engine(e: drydock_engine::EngineError) -> Failure {
    use drydock_engine::EngineError as E;
    let status = match e {
        E::NoRepository { .. } | E::NoBackup(_) => StatusCode::NOT_FOUND,
        E::Refused(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Runs `f` on the blocking pool and answers its value as JSON (or the failure's
/// status with its message).
async fn blocking<T, F>(f: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err((status, message))) => error(status, &message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed inside drydock (a bug); see the daemon's log",
        ),
    }
}

pub(super) async fn healthz(State(app): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct Body {
        ok: bool,
        last_tick: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    }
    let now = app.clock.now();
    let last = app.heartbeat.last();
    let reason = match last {
        None => Some("the scheduler has not ticked yet".to_string()),
        Some(t) => {
            let age = now.duration_since(t).as_secs();
            (age > STALE_AFTER_S).then(|| {
                format!("the scheduler last ticked {age} s ago (at {t}), more than {STALE_AFTER_S} s: it is stuck or the clock jumped; see the daemon's log")
            })
        }
    };
    let status = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Body {
        ok: reason.is_none(),
        last_tick: last.map(|t| t.to_string()),
        reason,
    };
    (status, Json(body)).into_response()
}

/// Exactly `drydock status --json`: the same engine call, the same report.
pub(super) async fn status(State(app): State<AppState>) -> Response {
    blocking(move || {
        drydock_engine::status::status(&app.config, &RunContext::default()).map_err(engine)
    })
    .await
}

/// Exactly `drydock backups --json`.
pub(super) async fn backups(State(app): State<AppState>) -> Response {
    blocking(move || {
        drydock_engine::list::list(&app.config, &RunContext::default()).map_err(engine)
    })
    .await
}

fn state(app: &AppState) -> Result<StateDb, Failure> {
    StateDb::open(&app.config.stack.state_dir).map_err(internal)
}

/// The last drill of each source.
pub(super) async fn drills(State(app): State<AppState>) -> Response {
    blocking(move || state(&app)?.last_drills().map_err(internal)).await
}

/// The latest recorded health of each service.
pub(super) async fn health(State(app): State<AppState>) -> Response {
    blocking(move || state(&app)?.latest_health().map_err(internal)).await
}

/// Runs shown by `/api/v1/jobs`, newest first.
const RECENT_RUNS: usize = 200;

/// The recent runs, newest first.
pub(super) async fn jobs(State(app): State<AppState>) -> Response {
    blocking(move || state(&app)?.recent_runs(RECENT_RUNS).map_err(internal)).await
}

/// Server-sent events of the engine's events while jobs run (`event: drydock`, data:
/// one JSON object per event).
pub(super) async fn events(
    State(app): State<AppState>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let rx = app.hub.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(json) => sse::Event::default().event("drydock").data(&*json),
            Err(RecvError::Lagged(n)) => sse::Event::default()
                .comment(format!("{n} events dropped: this client fell behind")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The optional body of `POST /api/v1/jobs/{kind}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    priority: Vec<drydock_domain::Priority>,
    #[serde(default)]
    services: Vec<String>,
}

/// Starts a job now: 202 when accepted, 409 when the same job is still running.
pub(super) async fn start_job(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    let Some(kind) = JobKind::parse(&kind) else {
        let kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        return error(
            StatusCode::NOT_FOUND,
            &format!("no job kind `{kind}`; kinds: {}", kinds.join(", ")),
        );
    };
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not a job selection ({e}); send {{\"priority\": [...], \"services\": [...]}} or nothing"),
                )
            }
        }
    };
    if let Err(message) = check_selection(&app, kind, &body) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let req = JobRequest {
        kind,
        priority: body.priority,
        services: body.services,
    };
    let runner = app.runner.clone();
    let key = format!("api {kind}");
    let submitted =
        tokio::task::spawn_blocking(move || runner.submit(req, Trigger::Api, &key, None)).await;
    #[derive(Serialize)]
    struct Accepted {
        accepted: bool,
        kind: JobKind,
    }
    match submitted {
        Ok(Submitted::Accepted) => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                accepted: true,
                kind,
            }),
        )
            .into_response(),
        Ok(Submitted::Skipped { reason }) => error(
            StatusCode::CONFLICT,
            &format!("not started: {reason}; wait for it (GET /api/v1/jobs)"),
        ),
        Ok(Submitted::Stopping) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not started: the daemon is stopping",
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the job could not be submitted",
        ),
    }
}

fn check_selection(app: &AppState, kind: JobKind, body: &StartBody) -> Result<(), String> {
    if !body.priority.is_empty() && !kind.takes_priority() {
        return Err(format!("a {kind} job takes no priority (only backup does)"));
    }
    if !body.services.is_empty() && !kind.takes_services() {
        return Err(format!(
            "a {kind} job takes no services (only backup, drill and health do)"
        ));
    }
    for name in &body.services {
        if !app.config.services.contains_key(name) {
            let known: Vec<&str> = app.config.services.keys().map(String::as_str).collect();
            return Err(format!(
                "no service `{name}` in the config; known services: {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}
