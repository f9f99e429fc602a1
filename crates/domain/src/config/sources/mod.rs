//! The data sources a service declares (`data = [{ kind = "...", ... }]`), one file per
//! kind. Everything drydock's config, `health`, `diagnose`, `redact` and `init` know of a
//! kind is in that kind's file, behind two traits (in `spec.rs`):
//!
//! - [`SourceKindSpec`], on a unit struct (`Postgres`): what the kind is — any alias
//!   (`mariadb`), what its fingerprints count (`rows`), its server's default port, the
//!   container images that run it and the dump source `drydock init` guesses for such
//!   a container. [`SourceKind::spec`] leads from the kind's stable name to it.
//! - [`SourceSpec`], on the kind's config struct (`PostgresSource`, the keys of one
//!   declared source with `deny_unknown_fields`): its name and priority, URL, secrets
//!   (redacted from output), data paths (diagnose's disk report), the health check
//!   derived for it when its service declares none, and its validation at load
//!   (through [`SourceValidation`], which names each error's key and line).
//!
//! **Adding a kind**: write `KIND.rs` here with the config struct and both traits, add
//! `mod KIND;` below (with a re-export when another crate names the config struct,
//! as the kind's adapter does), and one line to `source_kinds!` in `registry.rs`
//! (`"name" => Variant(ConfigStruct) = KindSpec`), which gives [`SourceKind`] (the
//! stable name, re-exported as `vocabulary::SourceKind`) and [`SourceConfig`] their
//! variants and lists the kind in [`KINDS`]. The adapter that backs the kind up is the
//! sources crate's: one file there plus one line in its `registry.rs`. Nothing else
//! dispatches on the kind.
//!
//! The `mod` lines stay here rather than in the macro: declared from `registry.rs`
//! the kind files would become its children (`super::` in them would then mean the
//! registry), and moving the list here would take it out of the registry.

mod files;
mod mysql;
mod postgres;
mod redis;
mod registry;
mod spec;
mod sqlite;
mod volume;

pub use files::{Files, FilesSource};
pub use mysql::{Mysql, MysqlSource};
pub use postgres::{Postgres, PostgresSource};
pub use redis::{Redis, RedisSource};
pub(super) use registry::parse_source;
pub use registry::{kind_spec, SourceConfig, SourceKind, KINDS};
pub use spec::{
    url_database, ContainerFacts, DumpGuess, SourceKindSpec, SourceSpec, SourceValidation,
};
pub use sqlite::{Sqlite, SqliteSource};
pub use volume::{Volume, VolumeSource, LABEL_BACKUP, LABEL_DESCRIPTION, LABEL_STOP_DURING_BACKUP};
