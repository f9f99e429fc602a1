//! The notify crate's error: only the state database can fail the notifier's calls
//! (a channel that does not answer is a delivery result, recorded, never an error).

use drydock_state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Reading or writing the outbox failed; the message names the database and the fix.
    #[error("notifications: {0}")]
    State(#[from] StateError),
}
