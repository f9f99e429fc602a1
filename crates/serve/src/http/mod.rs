//! The HTTP API (axum on a small tokio runtime): what it serves and with what state.
//! Reads are open; every write needs `Authorization: Bearer <[serve] token>`
//! (`auth.rs`). Handlers never block an async worker: engine calls and state reads run
//! on `spawn_blocking`, jobs on the runner's threads.
//!
//! [`router`] is the one list of routes: a new endpoint or dashboard page is one line
//! there plus its handler.

mod api;
mod auth;
mod dashboard;
mod listing;
mod metrics;
mod state;

pub use state::{AppState, Heartbeat};

use axum::routing::{get, post};
use axum::Router;

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/backups", get(api::backups))
        .route("/api/v1/drills", get(api::drills))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/jobs", get(api::jobs))
        .route("/api/v1/events", get(api::events))
        .route(
            "/api/v1/jobs/{kind}",
            post(api::start_job).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            )),
        )
        .route("/", get(dashboard::overview))
        .route("/sources/{service}/{source}", get(dashboard::source))
        .route("/runs/{id}", get(dashboard::run))
        .with_state(state)
}
