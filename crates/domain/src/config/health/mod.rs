//! `health = [...]`: the checks declared per service, parsed item by item like `data`
//! sources so every error keeps its line, then validated (names, URLs, thresholds) and
//! their secrets resolved.
//!
//! Every check has the common keys `name` (default: its kind; unique within the
//! service), `timeout` (the whole check's budget, retries included; default `5s`) and
//! `retries` (further attempts after a failed one, with exponential backoff; default 3).
//! The rest are the kind's own keys, each kind a struct with `deny_unknown_fields`.
//!
//! One file per job: `kinds.rs` holds each kind's keys, `registry.rs` lists the kinds
//! once (the [`CheckSpec`] enum, the names `kind = "..."` accepts and the list shown in
//! messages all come from that one list), `parse.rs` reads a list item by item, and
//! `validation.rs` checks what parsed.
//!
//! **Adding a check kind**: its struct in `kinds.rs`, one line in `check_kinds!` in
//! `registry.rs`, its rules in `validation.rs`'s `validate_spec`; the probe that runs it
//! is the health crate's: one file in `crates/health/src/checks/` plus one line in
//! `crates/health/src/registry.rs`.

mod kinds;
mod parse;
mod registry;
mod validation;

pub use kinds::{
    CommandCheck, DiskCheck, DnsCheck, DnsRecord, EtcdCheck, HttpCheck, OidcCheck, OneOrMany,
    PatroniCheck, ProcessCheck, RedisCheck, RedisClusterCheck, SentinelCheck, SqlCheck,
    SqliteCheck, TcpCheck,
};
pub(super) use parse::parse_list;
pub use parse::HealthCheckConfig;
pub use registry::{split_host_port, CheckSpec, CHECK_KINDS};
pub use validation::parse_resolver;
pub(super) use validation::validate;
