//! The dashboard of `drydock serve`: server-rendered HTML pages a person reads at a
//! glance, made from the config, the state database and what the daemon knows.
//!
//! # Pages
//!
//! | route | handler | template |
//! |---|---|---|
//! | `GET /` | [`overview`] | `templates/overview.html` |
//! | `GET /sources/{service}/{source}` | [`source`] | `templates/source.html` |
//! | `GET /runs/{id}` | [`run`] | `templates/run.html` |
//!
//! A new page is one module in `pages/` (its data, its template struct and its
//! handler), one template, and one route line in the daemon's router.
//!
//! # The seam with the daemon
//!
//! Each handler takes an [`Inputs`]: the loaded [`Config`](drydock_domain::Config), an
//! open [`StateDb`](drydock_state::StateDb), a [`DaemonView`] and the time. The state
//! database answers health, drills, copy states and owed restores at each request;
//! what it does not hold comes in the `DaemonView` (see [`inputs`]): the backup listing
//! (refreshed by the daemon after jobs, so no repository is opened per request), runs,
//! next runs, schedule periods and failed notifications. A handler returns a [`Page`]
//! (status and HTML); the daemon answers it with [`CONTENT_TYPE`] and
//! [`CONTENT_SECURITY_POLICY`]:
//!
//! ```ignore
//! .route("/", get(|State(app): State<App>| async move { app.page(|i| drydock_dashboard::overview(i)) }))
//! ```
//!
//! # Rules
//!
//! - Every value from config, state or the daemon is escaped by the templates
//!   (askama escapes `.html` templates by default; nothing from data is marked safe
//!   but the SVG charts, which [`charts`] builds and escapes itself). Free texts pass
//!   through the engine's [`Redactor`](drydock_engine::Redactor); no page shows a URL,
//!   a path or a secret reference of the config.
//! - The words users read come from `drydock_render` (its `words` and `layout`): one
//!   render layer for the terminal and the page.
//! - No external request: the CSS and the small live-refresh script are embedded
//!   (`include_str!`) and inlined; charts are SVG computed in Rust. Without
//!   JavaScript the page reads the same and refreshes itself every minute.
//! - Live refresh: the script listens to `/api/v1/events` (server-sent events; any
//!   unnamed `message` event) and re-fetches the page a second after the last event,
//!   swapping its `<main>`.
//! - A library: nothing here prints, exits or serves HTTP; the daemon owns the router.

pub mod charts;
mod error;
pub mod inputs;
pub mod pages;
pub mod sample;
pub mod view;

pub use error::DashboardError;
pub use inputs::{
    DaemonView, FailedNotification, NextRun, RunDetail, RunEvent, RunStep, RunSummary,
};
pub use pages::overview::overview;
pub use pages::run::run;
pub use pages::source::source;
pub use pages::{not_found, Page, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
pub use view::Inputs;
