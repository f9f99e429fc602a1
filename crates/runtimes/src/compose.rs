//! `compose`: a service of a Docker Compose project. Its container is the one Compose
//! labelled `com.docker.compose.project=P` and `com.docker.compose.service=S`; state,
//! health, logs, stop, start, restart and exec then go through the Docker API like the
//! `docker` runtime. A service whose container does not exist yet is created with
//! `compose up -d SERVICE` (with its profile), and [`profile_up`]/[`profile_down`] bring
//! a whole profile (`infrastructure`, `app`) up or down.
//!
//! The compose CLI is the `docker compose` plugin when present, else `docker-compose`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use drydock_domain::config::ComposeRuntimeConfig;

use crate::docker::{ContainerOps, DockerClient, ExecProcess};
use crate::runtime::{Details, LogTail, Runtime, RuntimeError, State};

pub struct ComposeRuntime {
    service: String,
    config: ComposeRuntimeConfig,
}

impl ComposeRuntime {
    pub fn new(service: &str, config: ComposeRuntimeConfig) -> Self {
        ComposeRuntime {
            service: service.to_string(),
            config,
        }
    }

    fn err(&self, message: String) -> RuntimeError {
        RuntimeError::Unsupported {
            service: self.service.clone(),
            message,
        }
    }

    /// The name of the service's container, `None` when Compose has not created it.
    fn container_name(&self) -> Result<Option<String>, RuntimeError> {
        let client = DockerClient::connect().map_err(|e| self.err(e.to_string()))?;
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![
                format!("com.docker.compose.project={}", self.config.project),
                format!("com.docker.compose.service={}", self.config.service),
            ],
        );
        let found = client
            .containers(filters)
            .map_err(|e| self.err(e.to_string()))?;
        // Several replicas: the first running one, else the first.
        let pick = found
            .iter()
            .find(|c| c.state.map(|s| s.to_string()).as_deref() == Some("running"))
            .or(found.first());
        Ok(pick.and_then(|c| {
            c.names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(c.id.clone())
        }))
    }

    fn with_container<T>(
        &self,
        f: impl FnOnce(&ContainerOps<'_>) -> Result<T, RuntimeError>,
    ) -> Result<Option<T>, RuntimeError> {
        let Some(name) = self.container_name()? else {
            return Ok(None);
        };
        let ops = ContainerOps {
            service: &self.service,
            container: &name,
            stop_timeout: self.config.stop_timeout,
            health_timeout: self.config.health_timeout,
        };
        f(&ops).map(Some)
    }

    /// `compose -f FILE up -d OPTIONS SERVICE`.
    fn up(&self, file: &Path, options: &[&str]) -> Result<(), RuntimeError> {
        let mut args = vec!["up".to_string(), "-d".into()];
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(self.config.service.clone());
        run_compose(
            file,
            &self.config.project,
            self.config.profile.as_deref(),
            &args,
        )
        .map_err(|e| self.err(e))
    }

    fn missing(&self) -> String {
        format!(
            "Compose project `{}` has no container for service `{}`; check `project` and `service` (`docker ps -a --filter label=com.docker.compose.project={}`), or create it with `compose up`",
            self.config.project, self.config.service, self.config.project
        )
    }
}

impl Runtime for ComposeRuntime {
    fn kind(&self) -> &'static str {
        "compose"
    }
    fn can_stop(&self) -> bool {
        true
    }
    fn state(&self) -> Result<State, RuntimeError> {
        Ok(self.details()?.state)
    }
    fn details(&self) -> Result<Details, RuntimeError> {
        Ok(self
            .with_container(|ops| ops.details())?
            .unwrap_or_else(|| Details {
                state: State::Missing,
                notes: vec![self.missing()],
                ..Details::default()
            }))
    }
    fn stop(&self) -> Result<(), RuntimeError> {
        // No container: nothing runs, nothing to stop.
        self.with_container(|ops| ops.stop())?;
        Ok(())
    }
    fn start(&self) -> Result<(), RuntimeError> {
        if self.with_container(|ops| ops.start())?.is_some() {
            return Ok(());
        }
        // Not created yet: Compose creates and starts it.
        let Some(file) = &self.config.file else {
            return Err(self.err(format!(
                "{}; or give the runtime a `file` so drydock can",
                self.missing()
            )));
        };
        self.up(file, &[])?;
        match self.with_container(|ops| ops.start())? {
            Some(()) => Ok(()),
            None => Err(self.err(self.missing())),
        }
    }
    fn restart(&self) -> Result<(), RuntimeError> {
        match self.with_container(|ops| ops.restart())? {
            Some(()) => Ok(()),
            None => self.start(),
        }
    }
    fn can_recreate(&self) -> Result<(), String> {
        match &self.config.file {
            Some(_) => Ok(()),
            None => Err(format!(
                "its compose runtime has no `file`, so drydock cannot run `compose up --force-recreate {}`; add `file = \"compose.yaml\"` to the runtime",
                self.config.service
            )),
        }
    }
    /// `compose up -d --force-recreate --no-deps -t STOP SERVICE`: Compose stops the old
    /// container gracefully (SIGTERM, then the stop timeout) and creates the new one
    /// from the compose file as it is now; then the container must be running and
    /// healthy within the health timeout.
    fn recreate(&self) -> Result<(), RuntimeError> {
        let file = self
            .config
            .file
            .as_ref()
            .ok_or_else(|| self.err(self.can_recreate().err().unwrap_or_default()))?;
        self.recreate_from(file)
    }
    fn definition(&self) -> Option<std::path::PathBuf> {
        self.config.file.clone()
    }
    fn recreate_from(&self, file: &Path) -> Result<(), RuntimeError> {
        let stop = self.config.stop_timeout.as_secs().to_string();
        self.up(file, &["--force-recreate", "--no-deps", "-t", &stop])?;
        match self.with_container(|ops| ops.wait_ready())? {
            Some(()) => Ok(()),
            None => Err(self.err(self.missing())),
        }
    }
    fn logs(&self, lines: usize) -> Result<Option<LogTail>, RuntimeError> {
        Ok(self.with_container(|ops| ops.logs(lines))?.flatten())
    }
    fn container(&self) -> Result<Option<String>, RuntimeError> {
        self.container_name()
    }
    fn exec(
        &self,
        cmd: &[String],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<ExecProcess, RuntimeError> {
        self.with_container(|ops| ops.exec(cmd, env, stdin))?
            .ok_or_else(|| self.err(self.missing()))
    }
}

/// The compose CLI: `docker compose` (the plugin) when it answers, else `docker-compose`.
pub fn compose_command() -> Vec<String> {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// Runs `compose -f FILE -p PROJECT [--profile P] ARGS`; the error carries its output.
pub fn run_compose(
    file: &Path,
    project: &str,
    profile: Option<&str>,
    args: &[String],
) -> Result<(), String> {
    let base = compose_command();
    let mut cmd = Command::new(&base[0]);
    cmd.args(&base[1..])
        .arg("-f")
        .arg(file)
        .arg("-p")
        .arg(project);
    if let Some(p) = profile {
        cmd.arg("--profile").arg(p);
    }
    cmd.args(args);
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot run `{}`: {e}; install Docker Compose",
            base.join(" ")
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    Err(format!(
        "`{} {}` failed ({}): {}",
        base.join(" "),
        args.join(" "),
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// Creates and starts every service of `profile`.
pub fn profile_up(file: &Path, project: &str, profile: &str) -> Result<(), String> {
    run_compose(file, project, Some(profile), &["up".into(), "-d".into()])
}

/// Stops and removes the containers of `profile` (volumes are kept).
pub fn profile_down(file: &Path, project: &str, profile: &str) -> Result<(), String> {
    run_compose(file, project, Some(profile), &["down".into()])
}
