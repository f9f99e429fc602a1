//! drydock's operations, built from the domain and the adapters: `backup` (local
//! copy first, then `sync` to every remote), `restore` (always verified, local copy
//! first with remote fallback), `verify` per copy, `prune` (retention on every copy),
//! listing backups per copy, `drill`, the self-contained `demo`, and `health`,
//! `diagnose` and `heal`, and `deploy`'s plan.
//!
//! The engine owns the rules that never bend: nothing is recorded as good unless its
//! producer succeeded and its data was stored completely; nothing is overwritten without
//! confirmation; a restore is not done until counts and fingerprints match the manifest.
//! It reports progress through [`drydock_domain::EventSink`] and returns serializable
//! reports; rendering is `drydock-render`'s job (text and Markdown), and the caller
//! writes the drill and certify report files with it.

// The areas, each a folder; their operations are re-exported here so callers write
// `drydock_engine::backup` whatever the area.
pub mod deploy;
pub mod operate;
pub mod protect;
pub mod recover;
pub mod setup;

// What the areas share: containers stopped around a consistent point, the copies
// (local repository and remotes) and their catalogs, the run context (events,
// cancellation, confirmation), state-database access, errors,
// report helpers and redaction of secrets in text.
pub mod containers;
mod context;
pub mod copies;
mod error;
mod redact;
mod repo;
mod reports;
mod state;

pub use context::{Confirm, RunContext};
pub use error::EngineError;
pub use operate::{diagnose, heal, health, status};
pub(crate) use protect::repair;
pub use protect::{backup, list, prune, sync, verify};
pub use recover::{certify, demo, destructive, drill, populate, restore};
// The daemon and its dashboard redact the texts they show the same way the engine does.
pub use redact::Redactor;
pub use repo::open_repository;
pub use setup::{init, validate};
