//! Why a page could not be made, naming what and how to fix it. A page that does not
//! exist (an unknown source or run) is not an error: it is a 404 [`Page`](crate::Page).

use drydock_state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("dashboard: reading the state database failed: {0}")]
    State(#[from] StateError),
    #[error("dashboard: rendering the {page} page failed: {source}; this is a bug in drydock's templates, please report it")]
    Template {
        page: &'static str,
        #[source]
        source: askama::Error,
    },
}
