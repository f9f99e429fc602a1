//! `health = [...]`: the checks declared per service, parsed item by item like `data`
//! sources so every error keeps its line, then validated (names, URLs, thresholds) and
//! their secrets resolved.
//!
//! Every check has the common keys `name` (default: its kind; unique within the
//! service), `timeout` (the whole check's budget, retries included; default `5s`) and
//! `retries` (further attempts after a failed one, with exponential backoff; default 3).
//! The rest are the kind's own keys, each kind a struct with `deny_unknown_fields`.
//!
//! One file per kind (`tcp.rs`, `http.rs` ...), each with the kind's config struct (its
//! keys) and its `CheckKindSpec` (its name, aliases, validation, endpoints, password and
//! paths; `spec.rs` holds the trait and the validation helpers); `http.rs` and `sql.rs`
//! hold two kinds each (`http`/`https`, `postgres`/`mysql`), which share their keys.
//! `registry.rs` lists the kinds once (the [`CheckSpec`] enum, the names `kind = "..."`
//! accepts, the list shown in messages and every match on the enum come from that one
//! list), `parse.rs` reads a list item by item, and `validation.rs` checks what every
//! kind shares (names, timeouts, retries) before the kind's own rules.
//!
//! **Adding a check kind**: `KIND.rs` here with its config struct and a type (`TcpKind`)
//! type implementing `CheckKindSpec`, its `mod` line and re-export below, and one line in
//! `check_kinds!` in `registry.rs`; the probe that runs it is the health crate's: one
//! file in `crates/health/src/checks/` plus one line in `crates/health/src/registry.rs`.

mod command;
mod disk;
mod dns;
mod etcd;
mod http;
mod oidc;
mod parse;
mod patroni;
mod process;
mod redis;
mod redis_cluster;
mod redis_sentinel;
mod registry;
mod spec;
mod sql;
mod sqlite;
mod tcp;
mod validation;

pub use command::CommandCheck;
pub use disk::DiskCheck;
pub use dns::{parse_resolver, DnsCheck, DnsRecord};
pub use etcd::EtcdCheck;
pub use http::{HttpCheck, OneOrMany};
pub use oidc::OidcCheck;
pub(super) use parse::parse_list;
pub use parse::HealthCheckConfig;
pub use patroni::PatroniCheck;
pub use process::ProcessCheck;
pub use redis::RedisCheck;
pub use redis_cluster::RedisClusterCheck;
pub use redis_sentinel::SentinelCheck;
pub use registry::{CheckSpec, CHECK_KINDS};
pub use sql::SqlCheck;
pub use sqlite::SqliteCheck;
pub use tcp::{split_host_port, TcpCheck};
pub(super) use validation::validate;
