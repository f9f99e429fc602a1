//! `docker`: a container, through the Docker Engine API (`bollard`): state, health,
//! restart count, uptime, logs, a graceful stop with a timeout, start (waiting until
//! the container runs and, when it has a HEALTHCHECK, is healthy), restart, and exec
//! (streamed, for dump tools that must match the server's version).
//!
//! The API is asynchronous; drydock is not. One small tokio runtime per process drives
//! every request (`bridge.rs`), and exec sessions run on it while the caller reads and
//! writes ordinary pipes. Callers may be sync or async (a daemon's tokio task): neither
//! blocks on a runtime from inside another. `DOCKER_HOST` is honoured; the API version is negotiated with
//! the daemon, so old engines work too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as ApiError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
/// A volume as the daemon describes it.
pub use bollard::models::Volume as DockerVolume;
use bollard::models::{ContainerInspectResponse, ContainerSummary, Volume};
use bollard::Docker;
use drydock_domain::config::DockerRuntimeConfig;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::bridge::{block_on, runtime};
pub use crate::bridge::{ExecKill, ExecProcess};
use crate::runtime::{Details, LogTail, Runtime, RuntimeError, State};

/// How long one API request may take (a stop waits up to its own timeout on top).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often a wait for a state polls.
const POLL: Duration = Duration::from_millis(200);

/// Why the Docker daemon could not be used, worded for the operator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon at {host}: {cause}. Start Docker (`systemctl start docker`) or point DOCKER_HOST at it")]
    Unreachable { host: String, cause: String },
    #[error("permission denied on the Docker socket {host}. Run drydock as root or as a member of the `docker` group (`usermod -aG docker USER`)")]
    PermissionDenied { host: String },
    #[error("no container named `{name}`{hint}")]
    NoSuchContainer { name: String, hint: String },
    #[error("no volume named `{name}`; `docker volume ls` lists them")]
    NoSuchVolume { name: String },
    #[error("Docker API: {what}: {cause}")]
    Api { what: String, cause: String },
}

/// Where the daemon is, as `DOCKER_HOST` or the default socket says.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// A connection to the Docker daemon, shared by every runtime and source in the process.
#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
    host: String,
}

impl DockerClient {
    /// Connects (once per process and `DOCKER_HOST`) and negotiates the API version.
    pub fn connect() -> Result<DockerClient, DockerError> {
        static CLIENT: Mutex<Option<DockerClient>> = Mutex::new(None);
        let host = docker_host();
        let mut cached = CLIENT.lock().unwrap();
        if let Some(c) = cached.as_ref().filter(|c| c.host == host) {
            return Ok(c.clone());
        }
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| classify(&host, "connecting", e))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = block_on(async move {
            // A ping first: its error says whether the socket is there and ours to use.
            docker.ping().await?;
            docker.negotiate_version().await
        })
        .map_err(|e| classify(&host, "connecting", e))?;
        let client = DockerClient { docker, host };
        *cached = Some(client.clone());
        Ok(client)
    }

    fn api(&self, what: &str, e: ApiError) -> DockerError {
        classify(&self.host, what, e)
    }

    /// The container, or `None` when there is no such container.
    pub fn inspect(&self, name: &str) -> Result<Option<ContainerInspectResponse>, DockerError> {
        match block_on(self.docker.inspect_container(name, None)) {
            Ok(c) => Ok(Some(c)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.api(&format!("inspecting container {name}"), e)),
        }
    }

    /// Every container, running or not.
    pub fn containers(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        block_on(self.docker.list_containers(Some(options)))
            .map_err(|e| self.api("listing containers", e))
    }

    /// The error for a container that does not exist, naming the closest existing names.
    pub fn no_such_container(&self, name: &str) -> DockerError {
        let names: Vec<String> = self
            .containers(HashMap::new())
            .unwrap_or_default()
            .iter()
            .flat_map(|c| c.names.clone().unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        let close = closest(name, &names);
        let hint = if close.is_empty() {
            "; `docker ps -a` lists the containers there are".to_string()
        } else {
            format!(
                "; did you mean {}? (fix the name in drydock.toml)",
                close
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        DockerError::NoSuchContainer {
            name: name.to_string(),
            hint,
        }
    }

    pub fn volume(&self, name: &str) -> Result<Option<Volume>, DockerError> {
        match block_on(self.docker.inspect_volume(name)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.api(&format!("inspecting volume {name}"), e)),
        }
    }

    /// Creates a volume like `volume` (name, driver, options, labels).
    pub fn create_volume(&self, volume: &Volume) -> Result<(), DockerError> {
        let name = volume.name.clone();
        let request = bollard::models::VolumeCreateRequest {
            name: Some(name.clone()),
            driver: Some(volume.driver.clone()),
            driver_opts: Some(volume.options.clone()),
            labels: Some(volume.labels.clone()),
            ..Default::default()
        };
        block_on(self.docker.create_volume(request))
            .map_err(|e| self.api(&format!("creating volume {name}"), e))?;
        Ok(())
    }

    /// Names of the containers that mount volume `name` (or, for a bind mount, the host
    /// path `name`), with whether each runs.
    pub fn users_of(
        &self,
        volume: Option<&str>,
        path: Option<&str>,
    ) -> Result<Vec<(String, bool)>, DockerError> {
        let mut filters = HashMap::new();
        if let Some(v) = volume {
            filters.insert("volume".to_string(), vec![v.to_string()]);
        }
        let mut out = Vec::new();
        for c in self.containers(filters)? {
            let uses = match path {
                None => true,
                Some(p) => c.mounts.iter().flatten().any(|m| {
                    m.source.as_deref().map(|s| s.trim_end_matches('/'))
                        == Some(p.trim_end_matches('/'))
                }),
            };
            if !uses {
                continue;
            }
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(c.id.clone())
                .unwrap_or_default();
            let running = c.state.map(|s| s.to_string()) == Some("running".to_string());
            out.push((name, running));
        }
        out.sort();
        Ok(out)
    }

    pub fn stop(&self, name: &str, timeout: Duration) -> Result<(), DockerError> {
        let options = bollard::query_parameters::StopContainerOptions {
            t: Some(timeout.as_secs().min(i32::MAX as u64) as i32),
            ..Default::default()
        };
        match block_on(self.docker.stop_container(name, Some(options))) {
            // 304: already stopped.
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(self.no_such_container(name)),
            r => r.map_err(|e| self.api(&format!("stopping container {name}"), e)),
        }
    }

    pub fn start(&self, name: &str) -> Result<(), DockerError> {
        match block_on(self.docker.start_container(name, None)) {
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(self.no_such_container(name)),
            r => r.map_err(|e| self.api(&format!("starting container {name}"), e)),
        }
    }

    pub fn restart(&self, name: &str, timeout: Duration) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RestartContainerOptions {
            t: Some(timeout.as_secs().min(i32::MAX as u64) as i32),
            ..Default::default()
        };
        match block_on(self.docker.restart_container(name, Some(options))) {
            Err(e) if status_of(&e) == Some(404) => Err(self.no_such_container(name)),
            r => r.map_err(|e| self.api(&format!("restarting container {name}"), e)),
        }
    }

    /// The last `lines` lines of the container's output (stdout and stderr).
    pub fn logs(&self, name: &str, lines: usize) -> Result<Vec<String>, DockerError> {
        let options = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let chunks: Vec<Result<LogOutput, ApiError>> =
            block_on(self.docker.logs(name, Some(options)).collect());
        let mut text = Vec::new();
        for chunk in chunks {
            let chunk = chunk.map_err(|e| self.api(&format!("reading the logs of {name}"), e))?;
            text.extend_from_slice(&chunk.into_bytes());
        }
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        Ok(all[start..].iter().map(|l| l.to_string()).collect())
    }

    /// Starts `cmd` inside the running container `name`, with `env` in its environment
    /// (never in its arguments). Its stdout and stderr stream into pipes; its stdin is a
    /// pipe too when asked for.
    pub fn exec(
        &self,
        name: &str,
        cmd: &[String],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<ExecProcess, DockerError> {
        let options = CreateExecOptions::<String> {
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let created = match block_on(self.docker.create_exec(name, options)) {
            Ok(c) => c,
            Err(e) if status_of(&e) == Some(404) => return Err(self.no_such_container(name)),
            Err(e) => {
                return Err(self.api(
                    &format!("starting `{}` in container {name}", cmd.join(" ")),
                    e,
                ))
            }
        };
        let started = block_on(self.docker.start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        ))
        .map_err(|e| {
            self.api(
                &format!("starting `{}` in container {name}", cmd.join(" ")),
                e,
            )
        })?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(DockerError::Api {
                what: format!("exec in container {name}"),
                cause: "the daemon did not attach the exec's streams".into(),
            });
        };
        let (stdout_r, mut stdout_w) = std::io::pipe().map_err(|e| io_err("creating a pipe", e))?;
        let (stderr_r, mut stderr_w) = std::io::pipe().map_err(|e| io_err("creating a pipe", e))?;
        let (stdin_r, stdin_w) = if stdin {
            let (r, w) = std::io::pipe().map_err(|e| io_err("creating a pipe", e))?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };

        // stdin: a blocking reader on a plain thread feeds a channel the session drains.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        if let Some(mut r) = stdin_r {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        } else {
            drop(tx);
        }
        let docker = self.docker.clone();
        let exec_id = created.id.clone();
        let session = runtime().spawn(async move {
            let feed = async {
                while let Some(chunk) = rx.recv().await {
                    if input.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                // End of stdin for the process (a half-close of the hijacked stream).
                let _ = input.shutdown().await;
            };
            let drain = async {
                while let Some(item) = output.next().await {
                    match item {
                        Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                            // The reader may have gone (a failed store): keep draining so
                            // the process is not blocked, the bytes go nowhere.
                            let _ = tokio::task::block_in_place(|| stdout_w.write_all(&message));
                        }
                        Ok(LogOutput::StdErr { message }) => {
                            let _ = tokio::task::block_in_place(|| stderr_w.write_all(&message));
                        }
                        Ok(LogOutput::StdIn { .. }) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(())
            };
            let (_, drained) = tokio::join!(feed, drain);
            drop(stdout_w);
            drop(stderr_w);
            drained?;
            // The stream ends a moment before the exec is marked finished.
            for _ in 0..100 {
                let info = docker
                    .inspect_exec(&exec_id)
                    .await
                    .map_err(|e| e.to_string())?;
                if info.running != Some(true) {
                    return Ok(info.exit_code);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err("the exec did not finish after its output ended".to_string())
        });
        Ok(ExecProcess {
            stdin: stdin_w,
            stdout: Some(stdout_r),
            stderr: Some(stderr_r),
            session: Some(session),
        })
    }
}

/// A container to create and start (a deployer's new version): its image, labels,
/// environment (passed in the API request's body, never on a command line), the one
/// port the app listens on, published on 127.0.0.1 when asked, and an optional network.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub env: Vec<(String, String)>,
    /// The port the app listens on inside the container.
    pub port: u16,
    /// The host port on 127.0.0.1 the container port is published on (none: not
    /// published; reach it on the container's own address).
    pub publish: Option<u16>,
    /// A network to join instead of the default bridge.
    pub network: Option<String>,
}

/// What a deployer needs to know of one container, read from its inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// When it last started (RFC 3339, as Docker says); empty when it never did.
    pub started_at: String,
    /// Container port -> host port on 127.0.0.1, as configured (kept while stopped).
    pub published: HashMap<u16, u16>,
    /// Its address on its first network, while it runs.
    pub ip: Option<String>,
}

impl ContainerFacts {
    fn of(c: &ContainerInspectResponse) -> ContainerFacts {
        let state = c.state.as_ref();
        let mut published = HashMap::new();
        let bindings = c
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref());
        for (key, list) in bindings.into_iter().flatten() {
            let Some(inner) = key.split('/').next().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host = list
                .iter()
                .flatten()
                .filter_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
                .next();
            if let Some(host) = host {
                published.insert(inner, host);
            }
        }
        let ip = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| {
                let mut ips: Vec<&String> = n
                    .values()
                    .filter_map(|e| e.ip_address.as_ref())
                    .filter(|ip| !ip.is_empty())
                    .collect();
                ips.sort();
                ips.first().map(|ip| ip.to_string())
            });
        ContainerFacts {
            id: c.id.clone().unwrap_or_default(),
            name: c
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: c
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            labels: c
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default(),
            running: state.and_then(|s| s.running) == Some(true),
            started_at: state
                .and_then(|s| s.started_at.clone())
                .filter(|t| !t.starts_with("0001-"))
                .unwrap_or_default(),
            published,
            ip,
        }
    }
}

impl DockerClient {
    /// Whether the image `reference` is on this host (no pull is ever attempted).
    pub fn image_exists(&self, reference: &str) -> Result<bool, DockerError> {
        match block_on(self.docker.inspect_image(reference)) {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.api(&format!("inspecting image {reference}"), e)),
        }
    }

    /// Creates and starts the container `spec` describes (restart policy
    /// `unless-stopped`, so the live one comes back after a reboot and a kept one stays
    /// stopped). A container that was created but would not start is removed again.
    /// Returns its id.
    pub fn run(&self, spec: &RunSpec) -> Result<String, DockerError> {
        use bollard::models::{
            ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
            RestartPolicy, RestartPolicyNameEnum,
        };
        let port_key = format!("{}/tcp", spec.port);
        let port_bindings = spec.publish.map(|p| {
            HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(p.to_string()),
                }]),
            )])
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(HostConfig {
                port_bindings,
                network_mode: spec.network.clone(),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: spec.network.as_ref().map(|n| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(n.clone(), EndpointSettings::default())])),
            }),
            ..Default::default()
        };
        let options = bollard::query_parameters::CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = block_on(self.docker.create_container(Some(options), body)).map_err(|e| {
            self.api(
                &format!("creating container {} from {}", spec.name, spec.image),
                e,
            )
        })?;
        if let Err(e) = block_on(self.docker.start_container(&created.id, None)) {
            let _ = self.remove(&created.id);
            return Err(self.api(&format!("starting container {}", spec.name), e));
        }
        Ok(created.id)
    }

    /// Removes the container (running or not) with its anonymous volumes; one that is
    /// already gone is fine.
    pub fn remove(&self, name: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RemoveContainerOptions {
            v: true,
            force: true,
            link: false,
        };
        match block_on(self.docker.remove_container(name, Some(options))) {
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            r => r.map_err(|e| self.api(&format!("removing container {name}"), e)),
        }
    }

    /// Every container (running or not) carrying all of `labels`, inspected.
    pub fn labelled(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerFacts>, DockerError> {
        let filters = HashMap::from([(
            "label".to_string(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let mut out = Vec::new();
        for c in self.containers(filters)? {
            let Some(id) = c.id else { continue };
            // Gone between the list and the inspect: not ours to report.
            if let Some(found) = self.inspect(&id)? {
                out.push(ContainerFacts::of(&found));
            }
        }
        Ok(out)
    }
}

fn io_err(what: &str, e: std::io::Error) -> DockerError {
    DockerError::Api {
        what: what.to_string(),
        cause: e.to_string(),
    }
}

/// The HTTP status of an API error, if the daemon answered.
fn status_of(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn classify(host: &str, what: &str, e: ApiError) -> DockerError {
    let mut text = e.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("permission denied") {
        return DockerError::PermissionDenied {
            host: host.to_string(),
        };
    }
    let unreachable = matches!(e, ApiError::SocketNotFoundError(_))
        || lower.contains("no such file")
        || lower.contains("connection refused")
        || lower.contains("error trying to connect")
        || lower.contains("client error (connect)");
    if unreachable {
        return DockerError::Unreachable {
            host: host.to_string(),
            cause: text,
        };
    }
    DockerError::Api {
        what: what.to_string(),
        cause: match &e {
            ApiError::DockerResponseServerError { message, .. } => message.clone(),
            _ => text,
        },
    }
}

/// Up to three names closest to `name` (by edit distance, only plausible typos).
pub fn closest(name: &str, candidates: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| {
            *d <= (name.len().max(c.len()) / 3).max(2)
                || c.contains(name)
                || name.contains(c.as_str())
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// What a container's inspect says, in the runtime's terms.
pub(crate) fn details_of(c: &ContainerInspectResponse) -> Details {
    let state = c.state.as_ref();
    let status = state
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let running = state.and_then(|s| s.running) == Some(true)
        && state.and_then(|s| s.restarting) != Some(true);
    let mut details = Details {
        state: if running {
            State::Running
        } else {
            State::Stopped
        },
        restart_count: c.restart_count.map(|n| n.max(0) as u32),
        health: state
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|h| h.to_string())
            .filter(|h| !h.is_empty() && h != "none"),
        ..Details::default()
    };
    if let Some(pid) = state.and_then(|s| s.pid).filter(|p| *p > 0) {
        details.pids.push(pid as u32);
    }
    if running {
        details.started_at = state
            .and_then(|s| s.started_at.as_deref())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    } else {
        details.exit_code = state.and_then(|s| s.exit_code).map(|c| c as i32);
        details.oom_killed = state.and_then(|s| s.oom_killed);
    }
    if !status.is_empty() && status != "running" && status != "exited" {
        details.notes.push(format!("container status: {status}"));
    }
    if let Some(err) = state
        .and_then(|s| s.error.as_deref())
        .filter(|e| !e.is_empty())
    {
        details.notes.push(format!("Docker: {err}"));
    }
    details
}

/// Waits until the container runs and, when it has a health check, reports healthy.
/// `Ok(None)` when it is ready; `Ok(Some(why))` when it did not get there in time.
pub(crate) fn wait_ready(
    client: &DockerClient,
    name: &str,
    timeout: Duration,
) -> Result<Option<String>, DockerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(c) = client.inspect(name)? else {
            return Err(client.no_such_container(name));
        };
        let d = details_of(&c);
        let why = match (d.state, d.health.as_deref()) {
            (State::Running, None | Some("healthy")) => return Ok(None),
            (State::Running, Some(h)) => format!("its health check says `{h}`"),
            _ => format!(
                "it is not running{}",
                d.exit_code
                    .map(|c| format!(" (exited with {c})"))
                    .unwrap_or_default()
            ),
        };
        if Instant::now() >= deadline {
            return Ok(Some(why));
        }
        std::thread::sleep(POLL);
    }
}

pub struct DockerRuntime {
    service: String,
    config: DockerRuntimeConfig,
}

impl DockerRuntime {
    pub fn new(service: &str, config: DockerRuntimeConfig) -> Self {
        DockerRuntime {
            service: service.to_string(),
            config,
        }
    }

    fn client(&self) -> Result<DockerClient, RuntimeError> {
        DockerClient::connect().map_err(|e| self.err(e))
    }

    fn err(&self, e: DockerError) -> RuntimeError {
        RuntimeError::Unsupported {
            service: self.service.clone(),
            message: e.to_string(),
        }
    }
}

/// The shared behaviour of `docker` and `compose` runtimes, given the container's name.
pub(crate) struct ContainerOps<'a> {
    pub service: &'a str,
    pub container: &'a str,
    pub stop_timeout: Duration,
    pub health_timeout: Duration,
}

impl ContainerOps<'_> {
    fn err(&self, e: DockerError) -> RuntimeError {
        RuntimeError::Unsupported {
            service: self.service.to_string(),
            message: e.to_string(),
        }
    }

    fn client(&self) -> Result<DockerClient, RuntimeError> {
        DockerClient::connect().map_err(|e| self.err(e))
    }

    pub fn details(&self) -> Result<Details, RuntimeError> {
        let client = self.client()?;
        match client.inspect(self.container).map_err(|e| self.err(e))? {
            Some(c) => Ok(details_of(&c)),
            None => {
                let hint = client.no_such_container(self.container);
                match &hint {
                    // A near miss is a typo in the config, not an undeployed service.
                    DockerError::NoSuchContainer { hint, .. } if hint.contains("did you mean") => {
                        Err(self.err(client.no_such_container(self.container)))
                    }
                    _ => Ok(Details {
                        state: State::Missing,
                        notes: vec![hint.to_string()],
                        ..Details::default()
                    }),
                }
            }
        }
    }

    pub fn stop(&self) -> Result<(), RuntimeError> {
        let client = self.client()?;
        client
            .stop(self.container, self.stop_timeout)
            .map_err(|e| self.err(e))?;
        let deadline = Instant::now() + self.stop_timeout + Duration::from_secs(10);
        while self.details()?.state == State::Running {
            if Instant::now() >= deadline {
                return Err(RuntimeError::Timeout {
                    service: self.service.to_string(),
                    command: format!("docker stop {}", self.container),
                    seconds: (self.stop_timeout + Duration::from_secs(10)).as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    pub fn start(&self) -> Result<(), RuntimeError> {
        let client = self.client()?;
        client.start(self.container).map_err(|e| self.err(e))?;
        self.ready(&client)
    }

    pub fn restart(&self) -> Result<(), RuntimeError> {
        let client = self.client()?;
        client
            .restart(self.container, self.stop_timeout)
            .map_err(|e| self.err(e))?;
        self.ready(&client)
    }

    /// Waits until the container is running and, with a HEALTHCHECK, healthy.
    pub fn wait_ready(&self) -> Result<(), RuntimeError> {
        self.ready(&self.client()?)
    }

    fn ready(&self, client: &DockerClient) -> Result<(), RuntimeError> {
        match wait_ready(client, self.container, self.health_timeout).map_err(|e| self.err(e))? {
            None => Ok(()),
            Some(why) => Err(RuntimeError::Unhealthy {
                service: self.service.to_string(),
                container: self.container.to_string(),
                seconds: self.health_timeout.as_secs(),
                why,
            }),
        }
    }

    pub fn logs(&self, lines: usize) -> Result<Option<LogTail>, RuntimeError> {
        let client = self.client()?;
        let lines = client
            .logs(self.container, lines)
            .map_err(|e| self.err(e))?;
        Ok(Some(LogTail {
            source: format!("docker logs {}", self.container),
            lines,
        }))
    }

    pub fn exec(
        &self,
        cmd: &[String],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<ExecProcess, RuntimeError> {
        self.client()?
            .exec(self.container, cmd, env, stdin)
            .map_err(|e| self.err(e))
    }
}

impl DockerRuntime {
    fn ops(&self) -> ContainerOps<'_> {
        ContainerOps {
            service: &self.service,
            container: &self.config.container,
            stop_timeout: self.config.stop_timeout,
            health_timeout: self.config.health_timeout,
        }
    }
}

impl Runtime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }
    fn can_stop(&self) -> bool {
        true
    }
    fn state(&self) -> Result<State, RuntimeError> {
        Ok(self.ops().details()?.state)
    }
    fn stop(&self) -> Result<(), RuntimeError> {
        self.ops().stop()
    }
    fn start(&self) -> Result<(), RuntimeError> {
        self.ops().start()
    }
    fn details(&self) -> Result<Details, RuntimeError> {
        self.ops().details()
    }
    fn logs(&self, lines: usize) -> Result<Option<LogTail>, RuntimeError> {
        self.ops().logs(lines)
    }
    fn restart(&self) -> Result<(), RuntimeError> {
        self.ops().restart()
    }
    fn can_recreate(&self) -> Result<(), String> {
        Err(format!(
            "runtime `docker` names container `{}`, which drydock did not create and has no definition to create again; declare the service as runtime kind = \"compose\" with its `file`, or recreate the container yourself",
            self.config.container
        ))
    }
    fn container(&self) -> Result<Option<String>, RuntimeError> {
        self.client()?;
        Ok(Some(self.config.container.clone()))
    }
    fn exec(
        &self,
        cmd: &[String],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<ExecProcess, RuntimeError> {
        self.ops().exec(cmd, env, stdin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_are_plausible_typos_only() {
        let names: Vec<String> = ["postgres", "redis", "drydock-app", "postgres-replica"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("postgress", &names)[0], "postgres");
        assert_eq!(closest("pstgres", &names)[0], "postgres");
        assert!(closest("elasticsearch", &names).is_empty());
    }
}
