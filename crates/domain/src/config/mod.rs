//! `drydock.toml`: the serde structs, and loading them into a validated [`Config`].
//!
//! Loading reports *every* problem at once, each as `file:line: key: message`: the text
//! is parsed once keeping spans, each section and each data source is deserialized on
//! its own (so one unknown key does not hide the next), and then semantic checks run
//! (names, URLs, secrets). Code that holds a `Config` can rely on all of it: paths are
//! absolute, names unique, secrets resolved.
//!
//! One file per section: [`stack`](StackConfig) and repository, remotes, retention,
//! drill, serve and schedule (`drydock serve`), services and their runtime, [`health`]
//! checks, [`sources`] (one file per source kind) and [`notify`] channels (one file per
//! channel kind); `load.rs` runs the load, `errors.rs` collects what it reports,
//! `fields.rs` checks single values (names, hosts, secrets, paths) for every section.
//! This file only declares them and re-exports their types, so callers keep writing
//! `drydock_domain::config::PostgresSource`.

mod deploy;
mod drill;
pub mod duration_text;
mod errors;
mod fields;
pub mod health;
mod load;
pub mod notify;
mod remotes;
mod retention;
mod runtime;
mod schedule;
mod serve;
mod services;
pub mod sources;
mod stack;

pub use deploy::{
    expand_rev, BuildIdCheck, DeployConfig, DeployHooks, DockerDeploy, HttpGate, NginxProxy,
    ProxyConfig, ReleaseDeploy, ReleaseTarget, ServiceDeploy, Strategy, DEFAULT_APP, DEFAULT_INFRA,
};
pub use drill::{DrillConfig, TargetOverride};
pub use errors::{ConfigError, ConfigErrors};
pub use health::{CheckSpec, HealthCheckConfig};
pub use load::{Config, CONFIG_MAX_BYTES};
pub use notify::{ChannelConfig, ChannelSpec, NotifyConfig, NotifyOn};
pub use remotes::{RemoteConfig, RemoteKind, LOCAL_COPY};
pub use retention::{KeepOverride, RetentionConfig};
pub use runtime::{
    ComposeRuntimeConfig, DockerRuntimeConfig, ExecTarget, ProcessRuntimeConfig, RuntimeConfig,
};
pub use schedule::{parse_cron, DefaultSchedule, JobKind, ScheduleConfig, DEFAULT_SCHEDULES};
pub use serve::{parse_listen, ServeConfig, DEFAULT_LISTEN};
pub use services::ServiceConfig;
pub use sources::{
    FilesSource, MysqlSource, PostgresSource, RedisSource, SourceConfig, SourceKindSpec,
    SourceSpec, SqliteSource, VolumeSource, LABEL_BACKUP, LABEL_DESCRIPTION,
    LABEL_STOP_DURING_BACKUP,
};
pub use stack::{RepositoryConfig, StackConfig};
// The shared words, where callers have always found them.
pub use crate::vocabulary::{Role, SourceKind};

#[cfg(test)]
mod tests;
