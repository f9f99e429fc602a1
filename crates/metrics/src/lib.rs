//! drydock's Prometheus metrics: the config and the state database turned into the
//! text exposition that `drydock serve` answers `GET /metrics` with, computed at scrape
//! time (nothing is counted in memory, so a restarted daemon loses nothing).
//!
//! A scrape never opens a repository or contacts a server: it reads the labels from
//! the config (services, sources, copies, checks) and the figures from the state
//! database, with a few indexed queries: the newest good backup of each source in each
//! copy (`backups` joined with `copies`), the newest passed drill of each source
//! (`recovery`), the latest health of each service (`health`), the restores still owed.
//! What lives only in the daemon (job runs, the notification outbox, the scheduler's
//! clock, each source's schedule) comes in as plain data, [`DaemonFigures`]: the one
//! seam between this crate and the daemon, which fills it at each scrape.
//!
//! The daemon's route is one line:
//!
//! ```no_run
//! # fn route(config: &drydock_domain::Config, state: &drydock_state::StateDb, accept: Option<&str>) -> Result<(), drydock_metrics::MetricsError> {
//! let format = drydock_metrics::Format::negotiate(accept);
//! let body = drydock_metrics::scrape(config, state, jiff::Timestamp::now(), &Default::default(), format)?;
//! // ... respond with `format.content_type()` and `body`.
//! # Ok(()) }
//! ```
//!
//! Modules: `families` (the catalogue: every name, type, help and label set), `collect`
//! (reading the figures), `encode` (writing them with `prometheus-client`), `figures`
//! (what the daemon passes in), `staleness` (the overdue rule, shared with the
//! daemon's overdue notifications: [`staleness()`]).

mod collect;
mod encode;
mod error;
pub mod families;
mod figures;
mod staleness;

pub use collect::{Collected, Sample, Value};
pub use encode::Format;
pub use error::MetricsError;
pub use figures::{BackupPeriod, DaemonFigures, RunCount, DEFAULT_OVERDUE_FACTOR};
pub use staleness::{staleness, Staleness};

use drydock_domain::Config;
use drydock_state::StateDb;
use jiff::Timestamp;

/// The metrics of the stack in `config` as of `now`, in `format`.
pub fn scrape(
    config: &Config,
    state: &StateDb,
    now: Timestamp,
    daemon: &DaemonFigures,
    format: Format,
) -> Result<String, MetricsError> {
    let collected = collect::collect(config, state, now, daemon)?;
    encode::encode(collected, format)
}

/// The figures without the text (for the dashboard, or a test).
pub fn collect(
    config: &Config,
    state: &StateDb,
    now: Timestamp,
    daemon: &DaemonFigures,
) -> Result<Collected, MetricsError> {
    collect::collect(config, state, now, daemon)
}
