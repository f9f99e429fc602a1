//! The HTTP API (axum on a small tokio runtime): what it serves and with what state.
//! Reads are open; every write needs `Authorization: Bearer <[serve] token>`
//! ([`auth`]). Handlers never block an async worker: engine calls and state reads run
//! on `spawn_blocking`, jobs on the runner's threads.
//!
//! [`router`] is the one list of routes; the dashboard (`/`) and `/metrics` each add
//! one `.merge(...)` line there.

mod api;
mod auth;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use drydock_domain::{Config, Secret};
use jiff::Timestamp;

use crate::clock::Clock;
use crate::events::EventHub;
use crate::runner::Runner;

/// When the scheduler last ticked (wall clock, Unix seconds; 0: never), for `/healthz`.
#[derive(Debug, Default)]
pub struct Heartbeat(AtomicI64);

impl Heartbeat {
    pub fn beat(&self, at: Timestamp) {
        self.0.store(at.as_second(), Ordering::SeqCst);
    }

    pub fn last(&self) -> Option<Timestamp> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Timestamp::from_second(s).ok(),
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub runner: Runner,
    pub hub: EventHub,
    pub heartbeat: Arc<Heartbeat>,
    pub clock: Arc<dyn Clock>,
    /// `[serve] token`, resolved at load.
    pub token: Option<Secret>,
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
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
        // The dashboard (`/`) and `/metrics` are merged here, one line each.
        .with_state(state)
}
