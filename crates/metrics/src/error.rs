//! Why a scrape could not be answered.

use drydock_state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The state database could not be read (its error names the file and the fix).
    #[error("the metrics could not be read from the state database: {0}")]
    State(#[from] StateError),
    /// Writing into a `String` does not fail; kept so a bug is an error, not a panic.
    #[error("the metrics could not be written as text (a bug in drydock: please report it)")]
    Encode,
}
