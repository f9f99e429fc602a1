//! `runtime = { kind = ... }`: how drydock may act on a service's process (external,
//! none, shell commands, a Docker container, a Compose service), and the checks of
//! each runtime's keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_text;
use super::errors::Collector;
use super::fields::{absolute, valid_docker_name};
use crate::spans::KeyPath;

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
    /// Recreates the service for new infrastructure (`drydock deploy`): stops it, puts
    /// the new version in place, starts it. Default: `stop`, then `start`.
    #[serde(default)]
    pub recreate: Option<String>,
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

/// Where a source's tools run when `exec = true`: the owning service's container.
#[derive(Debug, Clone, Serialize)]
pub struct ExecTarget {
    pub service: String,
    pub runtime: RuntimeConfig,
}

impl RuntimeConfig {
    /// The runtime keys of the service at `service_at`: a process runtime's paths made
    /// absolute against `base` and its commands present, container names Docker
    /// accepts, and `stop_during_backup` only where drydock can stop the service.
    pub(super) fn validate(
        &mut self,
        c: &mut Collector<'_>,
        service_at: &KeyPath,
        base: &Path,
        stop_during_backup: bool,
    ) {
        let at = service_at.key("runtime");
        match self {
            RuntimeConfig::Process(p) => {
                for path in [&mut p.log_file, &mut p.pid_file, &mut p.data_dir]
                    .into_iter()
                    .flatten()
                {
                    *path = absolute(base, path);
                }
                for (key, cmd) in [
                    ("start", &p.start),
                    ("stop", &p.stop),
                    ("status", &p.status),
                ] {
                    if cmd.trim().is_empty() {
                        c.push(
                            &at.key(key),
                            "empty command; give the shell command drydock should run",
                        );
                    }
                }
                if p.recreate.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    c.push(
                        &at.key("recreate"),
                        "empty command; give the shell command that recreates the service, or leave `recreate` out (stop, then start)",
                    );
                }
            }
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
            RuntimeConfig::External | RuntimeConfig::None if stop_during_backup => c.push(
                &service_at.key("stop_during_backup"),
                "drydock cannot stop a service whose runtime is `external` or `none`; declare a `docker`, `compose` or `process` runtime, or remove stop_during_backup",
            ),
            _ => {}
        }
    }
}
