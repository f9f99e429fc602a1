//! What every handler sees ([`AppState`]), the scheduler's heartbeat for `/healthz`,
//! and the JSON error body every refusal uses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drydock_domain::{Config, Secret};
use jiff::Timestamp;
use serde::Serialize;

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
    /// Runs ended since the daemon started (`drydock_runs_total`).
    pub runs: Arc<crate::run_counts::RunCounter>,
    /// The dashboard's backup listing, read again after runs end.
    pub listing: Arc<super::listing::Listing>,
    /// Each source's expected backup period, from the schedules (computed at start).
    pub periods: Arc<crate::schedule::BackupPeriods>,
    pub clock: Arc<dyn Clock>,
    /// `[serve] token`, resolved at load.
    pub token: Option<Secret>,
}

/// A JSON error body `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
    }
    (status, Json(Body { error: message })).into_response()
}
