//! drydock's operations, built from the domain and the adapters: `backup` (local
//! copy first, then `sync` to every remote), `restore` (always verified, local copy
//! first with remote fallback), `verify` per copy, `prune` (retention on every copy),
//! listing backups per copy, `drill`, the self-contained `demo`, and `health`,
//! `diagnose` and `heal`.
//!
//! The engine owns the rules that never bend: nothing is recorded as good unless its
//! producer succeeded and its data was stored completely; nothing is overwritten without
//! confirmation; a restore is not done until counts and fingerprints match the manifest.
//! It reports progress through [`drydock_domain::EventSink`] and returns serializable
//! reports; rendering is the CLI's job.

pub mod backup;
pub mod certify;
pub mod containers;
pub mod copies;
pub mod demo;
pub mod destructive;
pub mod diagnose;
pub mod drill;
mod error;
pub mod heal;
pub mod health;
pub mod init;
pub mod list;
pub mod populate;
pub mod prune;
mod redact;
mod repair;
mod repo;
mod reports;
pub mod restore;
mod state;
pub mod status;
pub mod sync;
pub mod verify;

pub use error::EngineError;
pub use repo::open_repository;
