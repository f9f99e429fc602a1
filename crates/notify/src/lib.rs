//! Notifications of `drydock serve`: telling people when something fails, recovers,
//! succeeds or starts, through the `[[notify]]` channels (webhook, Slack, ntfy,
//! healthchecks, email).
//!
//! The daemon holds one [`Notifier`] and calls it three ways: [`Notifier::run_started`]
//! and [`Notifier::run_finished`] with a run's plain data ([`RunStart`],
//! [`RunOutcome`]: job, verdict, the verdict of each subject, what failed, the command
//! to look closer), and [`Notifier::deliver_due`] on each tick. Nothing here fails a
//! job: a channel that does not answer is a recorded delivery result, and the
//! notifier's own errors (the state database) are for the daemon to log. A run found
//! interrupted after a crash is reported like any other (verdict could-not-run), and
//! so is staleness: each check of the daemon's overdue watch ("last good backup too
//! old") goes to [`Notifier::overdue_checked`] as an outcome of job [`OVERDUE_JOB`]
//! with one part per source, so an overdue source notifies once, then daily, and
//! recovers, under the same rules (changes only, never `success`).
//!
//! - `changes.rs`: the rules. A (job, subject) key going from ok to failing is a
//!   failure, from failing to ok a recovery; a run failing like the last one sends
//!   nothing, except a reminder at most daily; `success` and `start` only to channels
//!   that ask. A dead man's switch (healthchecks) gets every run's state instead.
//! - `message.rs`: what is said, the same for every channel, capped in size, with no
//!   secret and no log line.
//! - `notifier.rs`: the outbox in the state database (`drydock_state::notify`): a
//!   notification is written before any attempt, with its idempotency key; attempts
//!   time out after 10 s; network errors, 408, 429 and 5xx are retried with
//!   exponential backoff (or the receiver's `Retry-After`); other answers are given
//!   up at once; too many attempts or too old is given up too; given-up ones are
//!   counted for the metrics and listed for the dashboard.
//! - `channel.rs`: the [`Channel`] trait and the HTTP attempt the HTTP kinds share;
//!   `channels/`: one file per kind, and `channels::build`, the one registry.

mod changes;
mod channel;
mod channels;
mod error;
mod message;
mod notifier;
mod outcome;

pub use changes::{changes, event_for, watch_event_for, Changes, REMINDER_EVERY_MS};
pub use channel::{Channel, Delivery};
pub use channels::build;
pub use error::NotifyError;
pub use message::{capped, Message, LINE_CAP, LIST_CAP, TEXT_CAP};
pub use notifier::{AttemptReport, DeliveryPolicy, Notifier};
pub use outcome::{is_failing, Event, PartOutcome, RunOutcome, RunStart, OVERDUE_JOB};
