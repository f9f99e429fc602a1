//! `drydock.toml`: the serde structs, and loading them into a validated [`Config`].
//!
//! Loading reports *every* problem at once, each as `file:line: key: message`: the text
//! is parsed once keeping spans, each section and each data source is deserialized on
//! its own (so one unknown key does not hide the next), and then semantic checks run
//! (names, URLs, secrets). Code that holds a `Config` can rely on all of it: paths are
//! absolute, names unique, secrets resolved.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::plan::Priority;
use crate::secret::{Secret, SecretError};
use crate::spans::{KeyPath, SpanIndex};

pub mod health;
pub use health::{CheckSpec, HealthCheckConfig};

/// A loaded, validated stack configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it was loaded from.
    pub file: PathBuf,
    pub stack: StackConfig,
    pub repository: RepositoryConfig,
    /// Copies of the repository in S3-compatible buckets (`[[remote]]`), in file order.
    pub remotes: Vec<RemoteConfig>,
    pub retention: RetentionConfig,
    pub drill: DrillConfig,
    pub services: BTreeMap<String, ServiceConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    pub name: String,
    /// drydock's own state (history, temporary work). Relative paths are taken from the
    /// config file's folder.
    pub state_dir: PathBuf,
    /// The host name this stack's backups are recorded under (default: the machine's).
    /// Set it where the machine's name is not stable (a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The host this stack was moved from: lets the first backup from this host follow
    /// backups that host took into a shared repository (see README, "Shared
    /// repositories"). Without it such a backup is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    pub path: PathBuf,
    pub password: Secret,
}

/// One `[[remote]]`: a copy of the repository in an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// How backups, errors and `--from`/`--copy` name this copy.
    pub name: String,
    pub kind: RemoteKind,
    /// `https://host[:port]` of the S3 API, without credentials.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket (`backups/clinic/`); default: the bucket root.
    #[serde(default)]
    pub prefix: String,
    /// `https://host/bucket/key` instead of `https://bucket.host/key` (Garage, MinIO,
    /// Ceph and Contabo need it).
    #[serde(default)]
    pub path_style: bool,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// The copy's repository password; default: `[repository].password`.
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteKind {
    S3,
}

/// The copy drydock writes first, named like a remote in outputs and `--from`.
pub const LOCAL_COPY: &str = "local";

/// `[retention]`: how many backups of each source every copy keeps, with optional
/// per-priority tables (`[retention.critical]` ...) overriding some of the counts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default = "RetentionConfig::default_daily")]
    pub daily: u32,
    #[serde(default = "RetentionConfig::default_weekly")]
    pub weekly: u32,
    #[serde(default = "RetentionConfig::default_monthly")]
    pub monthly: u32,
    /// The anomaly guard: the newest backup is suspicious when smaller than this
    /// fraction of the median of the `anomaly_window` before it.
    #[serde(default = "RetentionConfig::default_anomaly_ratio")]
    pub anomaly_ratio: f64,
    #[serde(default = "RetentionConfig::default_anomaly_window")]
    pub anomaly_window: usize,
    /// IANA time zone for the day/week/month buckets; default: the system's.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub critical: Option<KeepOverride>,
    #[serde(default)]
    pub high: Option<KeepOverride>,
    #[serde(default)]
    pub medium: Option<KeepOverride>,
    #[serde(default)]
    pub low: Option<KeepOverride>,
}

/// Counts that differ for one priority class; missing ones come from `[retention]`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeepOverride {
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
}

impl RetentionConfig {
    fn default_daily() -> u32 {
        7
    }
    fn default_weekly() -> u32 {
        4
    }
    fn default_monthly() -> u32 {
        12
    }
    fn default_anomaly_ratio() -> f64 {
        0.5
    }
    fn default_anomaly_window() -> usize {
        7
    }

    /// The counts that apply to sources of `priority`.
    pub fn rules_for(&self, priority: Priority) -> crate::retention::KeepRules {
        let over = match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
            Priority::None => None,
        }
        .unwrap_or_default();
        crate::retention::KeepRules {
            daily: over.daily.unwrap_or(self.daily),
            weekly: over.weekly.unwrap_or(self.weekly),
            monthly: over.monthly.unwrap_or(self.monthly),
        }
    }

    pub fn anomaly_guard(&self) -> crate::retention::AnomalyGuard {
        crate::retention::AnomalyGuard {
            ratio: self.anomaly_ratio,
            window: self.anomaly_window,
        }
    }

    /// The zone calendar buckets are counted in (validated at load).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|name| jiff::tz::TimeZone::get(name).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            daily: 7,
            weekly: 4,
            monthly: 12,
            anomaly_ratio: 0.5,
            anomaly_window: 7,
            timezone: None,
            critical: None,
            high: None,
            medium: None,
            low: None,
        }
    }
}

/// `[drill]`: the RTO and RPO a recovery must meet, with optional per-priority tables
/// (`[drill.critical]`, e.g. a 15-minute RPO for the databases) overriding them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    #[serde(default = "DrillConfig::default_rto", with = "duration_text")]
    pub rto_target: Duration,
    #[serde(default = "DrillConfig::default_rpo", with = "duration_text")]
    pub rpo_target: Duration,
    #[serde(default)]
    pub critical: Option<TargetOverride>,
    #[serde(default)]
    pub high: Option<TargetOverride>,
    #[serde(default)]
    pub medium: Option<TargetOverride>,
    #[serde(default)]
    pub low: Option<TargetOverride>,
}

/// Targets that differ for one priority class; missing ones come from `[drill]`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetOverride {
    #[serde(default, with = "duration_text::option")]
    pub rto_target: Option<Duration>,
    #[serde(default, with = "duration_text::option")]
    pub rpo_target: Option<Duration>,
}

impl DrillConfig {
    fn default_rto() -> Duration {
        Duration::from_secs(30 * 60)
    }
    fn default_rpo() -> Duration {
        Duration::from_secs(24 * 3600)
    }

    /// (RTO target, RPO target) for a source of `priority`.
    pub fn targets_for(&self, priority: Priority) -> (Duration, Duration) {
        let over = match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
            Priority::None => None,
        }
        .unwrap_or_default();
        (
            over.rto_target.unwrap_or(self.rto_target),
            over.rpo_target.unwrap_or(self.rpo_target),
        )
    }
}

impl Default for DrillConfig {
    fn default() -> Self {
        DrillConfig {
            rto_target: Self::default_rto(),
            rpo_target: Self::default_rpo(),
            critical: None,
            high: None,
            medium: None,
            low: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Infra,
    App,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub role: Option<Role>,
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub data: Vec<SourceConfig>,
    /// Health checks (`health = [...]`), parsed item by item in [`health`].
    #[serde(default, skip_deserializing)]
    pub health: Vec<HealthCheckConfig>,
    /// Stop the service (its container) while its data is read during a backup, and
    /// start it again afterwards.
    #[serde(default)]
    pub stop_during_backup: bool,
}

/// How drydock may act on a service's process.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RuntimeConfig {
    /// drydock only connects; it never starts or stops the service.
    External,
    /// No process owns the data (plain files, an app that only runs on demand).
    None,
    /// Shell commands drydock runs to start, stop and query the service.
    Process(ProcessRuntimeConfig),
    /// A Docker container, through the Docker Engine API.
    Docker(DockerRuntimeConfig),
    /// A service of a Docker Compose project (its container found by the project's
    /// labels; `up`/`down` through the compose CLI).
    Compose(ComposeRuntimeConfig),
}

impl RuntimeConfig {
    /// Whether the service runs in a container (dumps may then run inside it).
    pub fn is_container(&self) -> bool {
        matches!(self, RuntimeConfig::Docker(_) | RuntimeConfig::Compose(_))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerRuntimeConfig {
    /// The container's name (or id).
    pub container: String,
    /// How long a graceful stop may take before Docker kills the container.
    #[serde(default = "default_stop_timeout", with = "duration_text")]
    pub stop_timeout: Duration,
    /// How long drydock waits for the container to be running and healthy after a start.
    #[serde(default = "default_health_timeout", with = "duration_text")]
    pub health_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeRuntimeConfig {
    /// The Compose project name (`com.docker.compose.project`).
    pub project: String,
    /// The service's name in the compose file.
    pub service: String,
    /// The compose file, for `up`/`down` of a profile; relative to the config's folder.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The profile the service belongs to (`infrastructure`, `app`).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default = "default_stop_timeout", with = "duration_text")]
    pub stop_timeout: Duration,
    #[serde(default = "default_health_timeout", with = "duration_text")]
    pub health_timeout: Duration,
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessRuntimeConfig {
    pub start: String,
    pub stop: String,
    /// Exits 0 while the service runs.
    pub status: String,
    #[serde(
        default = "ProcessRuntimeConfig::default_timeout",
        with = "duration_text"
    )]
    pub timeout: Duration,
    /// Where the service writes its log, for `diagnose` and `heal`.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// The service's PID file: its processes' uptime, CPU and memory.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// The service's data directory, for disk usage and the missing-data check.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

impl ProcessRuntimeConfig {
    fn default_timeout() -> Duration {
        Duration::from_secs(60)
    }
}

/// One piece of data a service owns.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    Postgres(PostgresSource),
    Mysql(MysqlSource),
    Redis(RedisSource),
    Sqlite(SqliteSource),
    Files(FilesSource),
    Volume(VolumeSource),
}

/// The source kinds, for tags, manifests and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Postgres,
    Mysql,
    Redis,
    Sqlite,
    Files,
    Volume,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Redis => "redis",
            SourceKind::Sqlite => "sqlite",
            SourceKind::Files => "files",
            SourceKind::Volume => "volume",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `postgres://USER@HOST:PORT/DATABASE`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Tables left out of the backup (`schema.table`; `table` means `public.table`). Drills fail while such a table exists, naming it:
    /// a restore would lose it.
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// The folder the dump and restore tools are taken from (`/usr/pgsql-16/bin` on
    /// RHEL-style layouts), instead of finding them; with `exec = true`, a folder inside
    /// the container. Absolute.
    #[serde(default)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Run the dump and restore tools inside the service's container (`docker` or
    /// `compose` runtime) through the exec API, so their version matches the server's.
    #[serde(default)]
    pub exec: bool,
    /// The container runtime `exec` runs in, filled at load from the service.
    #[serde(skip)]
    pub exec_in: Option<ExecTarget>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `mysql://USER@HOST:PORT/DATABASE`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The folder the dump and restore tools are taken from (`/usr/pgsql-16/bin` on
    /// RHEL-style layouts), instead of finding them; with `exec = true`, a folder inside
    /// the container. Absolute.
    #[serde(default)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Run the dump and restore tools inside the service's container (`docker` or
    /// `compose` runtime) through the exec API, so their version matches the server's.
    #[serde(default)]
    pub exec: bool,
    /// The container runtime `exec` runs in, filled at load from the service.
    #[serde(skip)]
    pub exec_in: Option<ExecTarget>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `redis://[USER@]HOST:PORT`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Run the dump and restore tools inside the service's container (`docker` or
    /// `compose` runtime) through the exec API, so their version matches the server's.
    #[serde(default)]
    pub exec: bool,
    /// The container runtime `exec` runs in, filled at load from the service.
    #[serde(skip)]
    pub exec_in: Option<ExecTarget>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    pub path: PathBuf,
    /// When `path` is a symlink, a restore replaces the file it points at (the link
    /// stays). Without it such a restore is refused, naming the link and its target.
    #[serde(default)]
    pub follow_symlink: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    pub path: PathBuf,
    /// Glob patterns relative to `path`, e.g. `cache/**` or `*.tmp`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// When `path` is a symlink, a restore replaces the directory it points at (the
    /// link stays). Without it such a restore is refused, naming the link and its target.
    #[serde(default)]
    pub follow_symlink: bool,
}

/// Where a source's tools run when `exec = true`: the owning service's container.
#[derive(Debug, Clone, Serialize)]
pub struct ExecTarget {
    pub service: String,
    pub runtime: RuntimeConfig,
}

/// The label on a Docker volume giving its backup priority (the plain `backup`
/// label many stacks already use is read too).
pub const LABEL_BACKUP: &str = "drydock.backup";
/// The label on a Docker volume describing it.
pub const LABEL_DESCRIPTION: &str = "drydock.description";
/// The container label asking drydock to stop it while its volumes are read.
pub const LABEL_STOP_DURING_BACKUP: &str = "drydock.stop-during-backup";

/// A Docker named volume or a bind-mounted directory, backed up as a tree.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSource {
    #[serde(default)]
    pub name: Option<String>,
    /// Optional when the volume's `drydock.backup` label gives it.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// A Docker named volume.
    #[serde(default)]
    pub volume: Option<String>,
    /// A bind-mounted directory on the host.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The volume's `drydock.backup` label, filled by drydock when it reads the volume.
    #[serde(skip_deserializing)]
    pub label_priority: Option<Priority>,
}

impl VolumeSource {
    /// The priority in force: the config's, else the label's, else `medium` (a volume
    /// whose label could not be read).
    pub fn effective_priority(&self) -> Priority {
        self.priority
            .or(self.label_priority)
            .unwrap_or(Priority::Medium)
    }

    /// The Docker volume's name, or the bind mount's path, for messages.
    pub fn target(&self) -> String {
        match (&self.volume, &self.path) {
            (Some(v), _) => format!("volume {v}"),
            (None, Some(p)) => format!("bind mount {}", p.display()),
            (None, None) => "volume ?".into(),
        }
    }
}

impl SourceConfig {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceConfig::Postgres(_) => SourceKind::Postgres,
            SourceConfig::Mysql(_) => SourceKind::Mysql,
            SourceConfig::Redis(_) => SourceKind::Redis,
            SourceConfig::Sqlite(_) => SourceKind::Sqlite,
            SourceConfig::Files(_) => SourceKind::Files,
            SourceConfig::Volume(_) => SourceKind::Volume,
        }
    }

    /// The source's name within its service: `name`, or else its kind.
    pub fn name(&self) -> &str {
        let explicit = match self {
            SourceConfig::Postgres(s) => &s.name,
            SourceConfig::Mysql(s) => &s.name,
            SourceConfig::Redis(s) => &s.name,
            SourceConfig::Sqlite(s) => &s.name,
            SourceConfig::Files(s) => &s.name,
            SourceConfig::Volume(s) => &s.name,
        };
        explicit.as_deref().unwrap_or(self.kind().as_str())
    }

    pub fn priority(&self) -> Priority {
        match self {
            SourceConfig::Postgres(s) => s.priority,
            SourceConfig::Mysql(s) => s.priority,
            SourceConfig::Redis(s) => s.priority,
            SourceConfig::Sqlite(s) => s.priority,
            SourceConfig::Files(s) => s.priority,
            SourceConfig::Volume(s) => s.effective_priority(),
        }
    }

    fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let password = match self {
            SourceConfig::Postgres(s) => s.password.as_mut(),
            SourceConfig::Mysql(s) => s.password.as_mut(),
            SourceConfig::Redis(s) => s.password.as_mut(),
            SourceConfig::Sqlite(_) | SourceConfig::Files(_) | SourceConfig::Volume(_) => None,
        };
        password.into_iter().map(|s| ("password", s)).collect()
    }

    fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            SourceConfig::Sqlite(s) => vec![&mut s.path],
            SourceConfig::Files(s) => vec![&mut s.path],
            SourceConfig::Volume(s) => s.path.iter_mut().collect(),
            _ => vec![],
        }
    }

    /// Whether the source asked to run its tools in the service's container.
    fn exec_mut(&mut self) -> Option<(&mut bool, &mut Option<ExecTarget>)> {
        match self {
            SourceConfig::Postgres(s) => Some((&mut s.exec, &mut s.exec_in)),
            SourceConfig::Mysql(s) => Some((&mut s.exec, &mut s.exec_in)),
            SourceConfig::Redis(s) => Some((&mut s.exec, &mut s.exec_in)),
            _ => None,
        }
    }

    fn url(&self) -> Option<(&str, &'static [&'static str])> {
        match self {
            SourceConfig::Postgres(s) => Some((&s.url, &["postgres", "postgresql"])),
            SourceConfig::Mysql(s) => Some((&s.url, &["mysql", "mariadb"])),
            SourceConfig::Redis(s) => Some((&s.url, &["redis"])),
            _ => None,
        }
    }
}

/// A drydock.toml is a few KiB; anything past this is not one. The TOML parser keeps
/// about 2 KiB per key (torture_hostile's fuzz measured ~230 bytes allocated per input
/// byte for an inline table of repeated keys), so the cap also bounds a load's memory.
pub const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted key path, empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|e| e.file.display().to_string())
                .unwrap_or_default()
        )
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// The first error, for callers that take one.
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

/// Collects errors with their lines while a load runs.
struct Collector<'a> {
    file: &'a Path,
    spans: Option<&'a SpanIndex>,
    errors: Vec<ConfigError>,
}

impl Collector<'_> {
    fn push(&mut self, path: &KeyPath, message: impl Into<String>) {
        let line = self.spans.and_then(|s| s.line(path));
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// Deserializes one part of the document, recording a failure with its exact key.
    fn section<T: DeserializeOwned>(&mut self, path: &KeyPath, value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(err) => {
                let mut at = path.clone();
                for seg in err.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => at = at.index(*index),
                        serde_path_to_error::Segment::Map { key } => at = at.key(key),
                        serde_path_to_error::Segment::Enum { .. }
                        | serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let message = err.into_inner().to_string();
                // The toml deserializer appends "in `key`" lines; the path says that better.
                let message = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                // serde names an unknown key only in its message; point at that key's line.
                if let Some(field) = unknown_field(&message) {
                    if at.0.last() != Some(&crate::spans::Seg::Key(field.clone())) {
                        at = at.key(&field);
                    }
                    self.push(&at, format!("{message}; remove it or fix its spelling"));
                } else if message.starts_with("missing field") {
                    self.push(&at, format!("{message}; add it"));
                } else {
                    self.push(&at, message);
                }
                None
            }
        }
    }
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

impl Config {
    /// Reads, parses and validates `file`, resolving every secret.
    pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
        use std::io::Read;
        let whole = |message: String| {
            ConfigErrors(vec![ConfigError {
                file: file.to_path_buf(),
                line: None,
                key: String::new(),
                message,
            }])
        };
        let mut text = String::new();
        // Read at most one byte past the cap: `--config /dev/zero` (or a huge file
        // named by mistake) must not fill memory.
        std::fs::File::open(file)
            .and_then(|f| f.take(CONFIG_MAX_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| {
                whole(format!(
                    "cannot read the config: {e}; check the path (or pass --config FILE)"
                ))
            })?;
        if text.len() as u64 > CONFIG_MAX_BYTES {
            return Err(whole(format!(
                "the config is larger than {} MiB: not a drydock config; check the path (or pass --config FILE)",
                CONFIG_MAX_BYTES >> 20
            )));
        }
        Self::from_text(file, &text)
    }

    /// Parses and validates config text that came from `file` (used for messages and
    /// for resolving relative paths).
    pub fn from_text(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            base
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut c = Collector {
            file,
            spans: None,
            errors: Vec::new(),
        };

        let spans = match SpanIndex::parse(text) {
            Ok(s) => s,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| crate::spans::line_of(&crate::spans::line_starts(text), s.start));
                let message = e.message().trim().replace('\n', "; ");
                return Err(ConfigErrors(vec![ConfigError {
                    file: file.to_path_buf(),
                    line,
                    key: String::new(),
                    message: format!("invalid TOML: {message}"),
                }]));
            }
        };
        c.spans = Some(&spans);
        let mut root: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                c.push(
                    &KeyPath::default(),
                    format!("invalid TOML: {}", e.message()),
                );
                return Err(ConfigErrors(c.errors));
            }
        };

        let top = KeyPath::default();
        const SECTIONS: &[&str] = &[
            "stack",
            "repository",
            "remote",
            "retention",
            "drill",
            "services",
        ];
        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                let hint = match key.as_str() {
                    "remotes" => "write each remote as [[remote]]".to_string(),
                    _ => format!("expected one of {}", SECTIONS.join(", ")),
                };
                c.push(&top.key(key), format!("unknown section `{key}`: {hint}"));
            }
        }

        let mut take = |name: &str, c: &mut Collector<'_>| -> Option<toml::Value> {
            let v = root.remove(name);
            if v.is_none() && (name == "stack" || name == "repository") {
                c.push(
                    &top,
                    format!("missing section [{name}]; add it (see examples/)"),
                );
            }
            v
        };
        let stack: Option<StackConfig> =
            take("stack", &mut c).and_then(|v| c.section(&top.key("stack"), v));
        let repository: Option<RepositoryConfig> =
            take("repository", &mut c).and_then(|v| c.section(&top.key("repository"), v));
        let mut remotes = parse_remotes(take("remote", &mut c), &mut c);
        let retention = match take("retention", &mut c) {
            Some(v) => c.section(&top.key("retention"), v),
            None => Some(RetentionConfig::default()),
        };
        let drill = match take("drill", &mut c) {
            Some(v) => c.section(&top.key("drill"), v),
            None => Some(DrillConfig::default()),
        };
        let services = parse_services(take("services", &mut c), &mut c);

        // Semantic checks run on every part that parsed, so one structural error does
        // not hide a literal secret three sections further down.
        let (mut stack, mut repository, mut services) = (stack, repository, services);
        if let Some(stack) = stack.as_mut() {
            validate_name(&mut c, &top.key("stack").key("name"), &stack.name, "stack");
            for (key, value) in [("host", &stack.host), ("moved_from", &stack.moved_from)] {
                if let Some(host) = value {
                    validate_host(&mut c, &top.key("stack").key(key), host);
                }
            }
            stack.state_dir = absolute(&base, &stack.state_dir);
        }
        if let Some(repository) = repository.as_mut() {
            repository.path = absolute(&base, &repository.path);
            resolve(
                &mut c,
                &top.key("repository").key("password"),
                &mut repository.password,
            );
        }
        validate_remotes(&mut c, &mut remotes);
        if let Some(retention) = retention.as_ref() {
            validate_retention(&mut c, retention);
        }
        for (service_name, service) in services.iter_mut() {
            let at = top.key("services").key(service_name);
            validate_name(&mut c, &at, service_name, "service");
            if let RuntimeConfig::Process(p) = &mut service.runtime {
                for path in [&mut p.log_file, &mut p.pid_file, &mut p.data_dir]
                    .into_iter()
                    .flatten()
                {
                    *path = absolute(&base, path);
                }
                for (key, cmd) in [
                    ("start", &p.start),
                    ("stop", &p.stop),
                    ("status", &p.status),
                ] {
                    if cmd.trim().is_empty() {
                        c.push(
                            &at.key("runtime").key(key),
                            "empty command; give the shell command drydock should run",
                        );
                    }
                }
            }
            validate_container_runtime(&mut c, &at, &base, service);
            health::validate(
                &at.key("health"),
                &mut service.health,
                &service.runtime,
                &base,
                &mut c,
            );
            let mut seen = BTreeMap::new();
            for (i, source) in service.data.iter_mut() {
                let (i, source) = (*i, source);
                let at = at.key("data").index(i);
                let name = source.name().to_string();
                validate_name(&mut c, &at.key("name"), &name, "source");
                if let Some(first) = seen.insert(name.clone(), i) {
                    c.push(
                        &at,
                        format!("duplicate source name `{name}` (also data[{first}]); give each source of a service its own `name`"),
                    );
                }
                if let Some((url, schemes)) = source.url() {
                    if let Err(message) = validate_url(url, schemes, source.kind()) {
                        c.push(&at.key("url"), message);
                    }
                }
                for (key, secret) in source.secrets_mut() {
                    resolve(&mut c, &at.key(key), secret);
                }
                for path in source.paths_mut() {
                    *path = absolute(&base, path);
                }
                if let Some((exec, exec_in)) = source.exec_mut() {
                    if *exec {
                        if service.runtime.is_container() {
                            *exec_in = Some(ExecTarget {
                                service: service_name.clone(),
                                runtime: service.runtime.clone(),
                            });
                        } else {
                            c.push(
                                &at.key("exec"),
                                "exec = true runs the tools inside the service's container, but the service's runtime is not `docker` or `compose`; declare its container runtime or remove `exec`",
                            );
                        }
                    }
                }
                if let SourceConfig::Volume(v) = source {
                    match (&v.volume, &v.path) {
                        (Some(_), Some(_)) => c.push(&at, "give either `volume` (a Docker named volume) or `path` (a bind-mounted directory), not both"),
                        (None, None) => c.push(&at, "missing `volume` or `path`; name the Docker volume (volume = \"NAME\") or the bind-mounted directory (path = \"/srv/data\")"),
                        (Some(name), None) if !valid_docker_name(name) => c.push(&at.key("volume"), format!("invalid Docker volume name `{name}`: use letters, digits, '_', '.' or '-', starting with a letter or digit")),
                        (None, Some(_)) if v.priority.is_none() => c.push(&at, "a bind mount has no labels to take its priority from; add `priority`"),
                        _ => {}
                    }
                }
                let excludes = match source {
                    SourceConfig::Files(f) => Some(&f.exclude),
                    SourceConfig::Volume(v) => Some(&v.exclude),
                    _ => None,
                };
                if let Some(exclude) = excludes {
                    for (j, pattern) in exclude.iter().enumerate() {
                        if pattern.trim().is_empty() {
                            c.push(
                                &at.key("exclude").index(j),
                                "empty exclude pattern; remove it",
                            );
                        }
                    }
                }
                let bin_dir = match source {
                    SourceConfig::Postgres(pg) => pg.bin_dir.as_ref(),
                    SourceConfig::Mysql(my) => my.bin_dir.as_ref(),
                    _ => None,
                };
                if let Some(dir) = bin_dir.filter(|d| !d.is_absolute()) {
                    c.push(
                        &at.key("bin_dir"),
                        format!("`{}` is not an absolute path; name the folder holding the tools, e.g. \"/usr/pgsql-16/bin\"", dir.display()),
                    );
                }
                if let SourceConfig::Postgres(pg) = source {
                    for (j, table) in pg.exclude_tables.iter_mut().enumerate() {
                        let parts: Vec<&str> = table.split('.').collect();
                        let valid = matches!(parts.len(), 1 | 2)
                            && parts.iter().all(|p| {
                                !p.is_empty()
                                    && p.chars()
                                        .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '$')
                            });
                        if !valid {
                            c.push(
                                &at.key("exclude_tables").index(j),
                                format!("`{table}` is not a table name; write `schema.table` or `table` (schema public), no patterns or quotes"),
                            );
                        } else if parts.len() == 1 {
                            *table = format!("public.{table}");
                        }
                    }
                }
            }
        }

        let (Some(stack), Some(repository), Some(retention), Some(drill)) =
            (stack, repository, retention, drill)
        else {
            return Err(ConfigErrors(sorted(c.errors)));
        };
        if !c.errors.is_empty() {
            return Err(ConfigErrors(sorted(c.errors)));
        }
        let services = services
            .into_iter()
            .map(|(name, svc)| {
                let PartialService {
                    role,
                    runtime,
                    stop_during_backup,
                    data,
                    health,
                } = svc;
                (
                    name,
                    ServiceConfig {
                        role,
                        runtime,
                        data: data.into_iter().map(|(_, s)| s).collect(),
                        health: health.into_iter().map(|(_, h)| h).collect(),
                        stop_during_backup,
                    },
                )
            })
            .collect();
        Ok(Config {
            file: file.to_path_buf(),
            stack,
            repository,
            remotes: remotes.into_iter().map(|(_, r)| r).collect(),
            retention,
            drill,
            services,
        })
    }

    /// Every data source with its service, in config order.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &ServiceConfig, &SourceConfig)> {
        self.services
            .iter()
            .flat_map(|(name, svc)| svc.data.iter().map(move |src| (name.as_str(), svc, src)))
    }
}

/// Each `[[remote]]` on its own, so one bad remote does not hide another's errors.
fn parse_remotes(value: Option<toml::Value>, c: &mut Collector<'_>) -> Vec<(usize, RemoteConfig)> {
    let at = KeyPath::default().key("remote");
    match value {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| c.section(&at.index(i), item).map(|r| (i, r)))
            .collect(),
        Some(_) => {
            c.push(
                &at,
                "must be a list of tables: write each remote as [[remote]]",
            );
            Vec::new()
        }
    }
}

fn validate_remotes(c: &mut Collector<'_>, remotes: &mut [(usize, RemoteConfig)]) {
    let mut seen = BTreeMap::new();
    for (i, remote) in remotes.iter_mut() {
        let at = KeyPath::default().key("remote").index(*i);
        validate_name(c, &at.key("name"), &remote.name, "remote");
        if remote.name == LOCAL_COPY {
            c.push(
                &at.key("name"),
                "`local` names the local repository; give the remote another name",
            );
        }
        if let Some(first) = seen.insert(remote.name.clone(), *i) {
            c.push(
                &at.key("name"),
                format!(
                    "duplicate remote name `{}` (also remote[{first}]); names must be unique",
                    remote.name
                ),
            );
        }
        if let Err(message) = validate_endpoint(&remote.endpoint) {
            c.push(&at.key("endpoint"), message);
        }
        if remote.region.trim().is_empty() {
            c.push(
                &at.key("region"),
                "empty region; give the region the server expects (e.g. `us-east-1`, `garage`)",
            );
        }
        let bucket_ok = (3..=63).contains(&remote.bucket.len())
            && remote
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            c.push(
                &at.key("bucket"),
                format!(
                    "invalid bucket name `{}`: use 3-63 lowercase letters, digits, '-' or '.'",
                    remote.bucket
                ),
            );
        }
        let prefix_ok = remote
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
            && !remote.prefix.split('/').any(|part| part == "..");
        if !prefix_ok {
            c.push(
                &at.key("prefix"),
                format!(
                    "invalid prefix `{}`: use letters, digits, '-', '_', '.' and '/' (no `..`)",
                    remote.prefix
                ),
            );
        }
        resolve(c, &at.key("access_key_id"), &mut remote.access_key_id);
        resolve(
            c,
            &at.key("secret_access_key"),
            &mut remote.secret_access_key,
        );
        if let Some(password) = remote.password.as_mut() {
            resolve(c, &at.key("password"), password);
        }
    }
}

fn validate_endpoint(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw)
        .map_err(|e| format!("not a valid URL ({e}); expected https://HOST[:PORT]"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint URL contains credentials; remove them and set access_key_id / secret_access_key as secret references".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not HTTP; expected https://HOST[:PORT]",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the endpoint has no host; expected https://HOST[:PORT]".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err("the endpoint must be only https://HOST[:PORT]; put the bucket in `bucket` and any folder in `prefix`".into());
    }
    Ok(())
}

fn validate_retention(c: &mut Collector<'_>, retention: &RetentionConfig) {
    let at = KeyPath::default().key("retention");
    if !(retention.anomaly_ratio > 0.0 && retention.anomaly_ratio <= 1.0) {
        c.push(
            &at.key("anomaly_ratio"),
            format!("{} is not a fraction; use a number above 0 and at most 1 (0.5 = half the usual size)", retention.anomaly_ratio),
        );
    }
    if retention.anomaly_window == 0 {
        c.push(
            &at.key("anomaly_window"),
            "must be at least 1 (backups to take the median of)",
        );
    }
    if let Some(name) = &retention.timezone {
        if jiff::tz::TimeZone::get(name).is_err() {
            c.push(
                &at.key("timezone"),
                format!(
                    "unknown time zone `{name}`; use an IANA name like `Europe/Berlin` or `UTC`"
                ),
            );
        }
    }
    let mut empty_by_default = Vec::new();
    for (priority, table) in [
        (Priority::Critical, retention.critical),
        (Priority::High, retention.high),
        (Priority::Medium, retention.medium),
        (Priority::Low, retention.low),
    ] {
        if !retention.rules_for(priority).keeps_nothing() {
            continue;
        }
        if table.is_some() {
            c.push(
                &at.key(&priority.to_string()),
                format!("keeps no {priority} backup at all (daily, weekly and monthly are 0); keep at least one"),
            );
        } else {
            empty_by_default.push(priority.to_string());
        }
    }
    if !empty_by_default.is_empty() {
        c.push(
            &at,
            format!(
                "daily, weekly and monthly are all 0, so no {} backup would be kept; keep at least one",
                empty_by_default.join("/")
            ),
        );
    }
}

/// A service as far as it parsed: sources that failed to parse are left out (and
/// reported), the rest keep their index for messages.
struct PartialService {
    role: Option<Role>,
    runtime: RuntimeConfig,
    stop_during_backup: bool,
    data: Vec<(usize, SourceConfig)>,
    health: Vec<(usize, HealthCheckConfig)>,
}

/// The service keys besides `data` and `health`, which are parsed item by item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceHead {
    #[serde(default)]
    role: Option<Role>,
    runtime: RuntimeConfig,
    #[serde(default)]
    stop_during_backup: bool,
}

fn parse_services(
    value: Option<toml::Value>,
    c: &mut Collector<'_>,
) -> BTreeMap<String, PartialService> {
    let at = KeyPath::default().key("services");
    let mut services = BTreeMap::new();
    let Some(value) = value else { return services };
    let toml::Value::Table(table) = value else {
        c.push(&at, "must be a table of services: [services.NAME]");
        return services;
    };
    for (name, value) in table {
        let at = at.key(&name);
        let toml::Value::Table(mut svc) = value else {
            c.push(&at, "a service must be a table: [services.NAME]");
            continue;
        };
        let data = svc.remove("data");
        let checks = svc
            .remove("health")
            .map(|v| health::parse_list(&at.key("health"), v, c))
            .unwrap_or_default();
        let head = c.section::<ServiceHead>(&at, toml::Value::Table(svc));
        let mut sources = Vec::new();
        match data {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    if let Some(src) = parse_source(&at.key("data").index(i), item, c) {
                        sources.push((i, src));
                    }
                }
            }
            Some(_) => c.push(
                &at.key("data"),
                "must be a list of sources: data = [{ kind = \"...\", ... }]",
            ),
        }
        if let Some(head) = head {
            services.insert(
                name,
                PartialService {
                    role: head.role,
                    runtime: head.runtime,
                    stop_during_backup: head.stop_during_backup,
                    data: sources,
                    health: checks,
                },
            );
        }
    }
    services
}

/// Reads `kind` first and then the kind's own struct, so errors keep exact key paths
/// (serde's internally tagged enums lose them).
fn parse_source(at: &KeyPath, item: toml::Value, c: &mut Collector<'_>) -> Option<SourceConfig> {
    const KINDS: &str = "postgres, mysql, redis, sqlite, files, volume";
    let toml::Value::Table(mut table) = item else {
        c.push(
            at,
            "a source must be a table: { kind = \"...\", priority = \"...\", ... }",
        );
        return None;
    };
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => {
            c.push(&at.key("kind"), format!("must be a string, one of {KINDS}"));
            return None;
        }
        None => {
            c.push(at, format!("missing field `kind`; add it (one of {KINDS})"));
            return None;
        }
    };
    let rest = toml::Value::Table(table);
    match kind.as_str() {
        "postgres" => c.section(at, rest).map(SourceConfig::Postgres),
        "mysql" | "mariadb" => c.section(at, rest).map(SourceConfig::Mysql),
        "redis" => c.section(at, rest).map(SourceConfig::Redis),
        "sqlite" => c.section(at, rest).map(SourceConfig::Sqlite),
        "files" => c.section(at, rest).map(SourceConfig::Files),
        "volume" => c.section(at, rest).map(SourceConfig::Volume),
        other => {
            c.push(
                &at.key("kind"),
                format!("unknown source kind `{other}`; use one of {KINDS}"),
            );
            None
        }
    }
}

/// Names Docker accepts for containers and volumes.
fn valid_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `docker` and `compose` runtimes: names Docker accepts, a compose file made absolute.
fn validate_container_runtime(
    c: &mut Collector<'_>,
    at: &KeyPath,
    base: &Path,
    service: &mut PartialService,
) {
    let service_at = at.clone();
    let at = at.key("runtime");
    match &mut service.runtime {
        RuntimeConfig::Docker(d) if !valid_docker_name(&d.container) => c.push(
            &at.key("container"),
            format!("invalid container name `{}`: use the name `docker ps` shows (letters, digits, '_', '.', '-')", d.container),
        ),
        RuntimeConfig::Compose(d) => {
            for (key, value) in [("project", &d.project), ("service", &d.service)] {
                if !valid_docker_name(value) {
                    c.push(
                        &at.key(key),
                        format!("invalid compose {key} name `{value}`: use letters, digits, '_', '.' or '-'"),
                    );
                }
            }
            if let Some(file) = d.file.as_mut() {
                *file = absolute(base, file);
            }
        }
        RuntimeConfig::External | RuntimeConfig::None if service.stop_during_backup => c.push(
            &service_at.key("stop_during_backup"),
            "drydock cannot stop a service whose runtime is `external` or `none`; declare a `docker`, `compose` or `process` runtime, or remove stop_during_backup",
        ),
        _ => {}
    }
}

fn sorted(mut errors: Vec<ConfigError>) -> Vec<ConfigError> {
    errors.sort_by_key(|e| e.line.unwrap_or(0));
    errors
}

fn resolve(c: &mut Collector<'_>, at: &KeyPath, secret: &mut Secret) {
    if let Err(e) = secret.resolve() {
        let message = match e {
            SecretError::Literal => "a literal secret is not allowed here; use \"${env:NAME}\" or \"${file:/path}\" and keep the value out of the config".to_string(),
            other => other.to_string(),
        };
        c.push(at, message);
    }
}

fn validate_name(c: &mut Collector<'_>, at: &KeyPath, name: &str, what: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        && !name.starts_with('-');
    if !ok {
        c.push(at, format!("invalid {what} name `{name}`: use 1-64 letters, digits, '-' or '_' (not starting with '-')"));
    }
}

fn validate_host(c: &mut Collector<'_>, at: &KeyPath, host: &str) {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !ok {
        c.push(
            at,
            format!("invalid host name `{host}`: use 1-253 letters, digits, '-', '_' or '.'"),
        );
    }
}

fn validate_url(
    raw: &str,
    schemes: &[&str],
    kind: crate::config::SourceKind,
) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!(
            "not a valid URL ({e}); expected {}://USER@HOST:PORT/...",
            schemes[0]
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "scheme `{}` does not fit a {kind} source; expected {}://",
            url.scheme(),
            schemes.join(":// or ")
        ));
    }
    if url.password().is_some() {
        return Err("the URL contains a password; remove it from the URL and set `password = \"${env:NAME}\"` instead".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the URL has no host; expected {}://USER@HOST:PORT/...",
            schemes[0]
        ));
    }
    let db = url.path().trim_start_matches('/');
    match kind {
        SourceKind::Postgres | SourceKind::Mysql if db.is_empty() || db.contains('/') => {
            Err(format!(
                "the URL names no database; expected {}://USER@HOST:PORT/DATABASE",
                schemes[0]
            ))
        }
        SourceKind::Redis if !db.is_empty() => {
            Err("drydock backs up the whole Redis instance; remove the /DB part of the URL".into())
        }
        _ => Ok(()),
    }
}

/// `path` against the config's folder, cleaned lexically so it prints as people write
/// it (`/srv/backups/repo`, not `/srv/backups/./repo`). Only `.` parts and repeated
/// slashes go: `..` stays, because folding it away lexically names another folder
/// when the part before it is a symlink, and a backup must go where the config says.
fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    // `components` drops `.` and empty parts, except a leading `.` of a relative path.
    joined.components().collect()
}

/// Durations as operators write them: `90s`, `30m`, `24h`, `7d`.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 30m, 24h or 7d"))?;
        let factor = match unit {
            "ms" => return Ok(Duration::from_millis(n)),
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => {
                return Err(format!(
                    "`{text}` has no known unit; write e.g. 500ms, 90s, 30m, 24h or 7d"
                ))
            }
        };
        // `999999999999999999h` overflowed (a panic in debug builds, a wrapped, wrong
        // duration in release ones): found by torture_hostile's fuzz.
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long a duration; write e.g. 30m, 24h or 7d"))
    }

    pub fn format(d: Duration) -> String {
        if d.subsec_millis() != 0 {
            return format!("{}ms", d.as_millis());
        }
        let s = d.as_secs();
        match s {
            s if s % 86400 == 0 && s > 0 => format!("{}d", s / 86400),
            s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// The same for optional durations.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&super::format(*d)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
