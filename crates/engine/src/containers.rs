//! What backup and restore do about containers: volume labels become priorities
//! ([`with_volume_labels`]); the containers that must not run while their data is read
//! are stopped before a backup reads anything and always started again
//! ([`StopDuringBackup`]: on success, on error, on a panic, and at once when the run is
//! cancelled, see [`drydock_domain::Cancel`]); a restore stops a volume's running users
//! only when told to (`--stop`), and starts them again afterwards (or at once, the same
//! way, when the restore is cancelled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use drydock_domain::config::{
    Config, DockerRuntimeConfig, RuntimeConfig, SourceConfig, LABEL_STOP_DURING_BACKUP,
};
use drydock_domain::plan::PlannedSource as Planned;
use drydock_domain::{CancelHook, Event, EventSink};
use drydock_runtimes::docker::{DockerClient, DockerRuntime};
use drydock_runtimes::{Runtime, State};
use serde::Serialize;

use crate::{EngineError, RunContext};

/// `config` with every volume source's label priority read from Docker (only when some
/// volume has no priority in the config). Labels drydock does not understand become
/// warnings.
pub fn with_volume_labels(config: &Config, events: &dyn EventSink) -> (Config, Vec<String>) {
    let mut config = config.clone();
    let mut warnings = Vec::new();
    for (service, svc) in config.services.iter_mut() {
        for source in svc.data.iter_mut() {
            let SourceConfig::Volume(v) = source else {
                continue;
            };
            let (Some(name), None) = (v.volume.clone(), v.priority) else {
                continue;
            };
            // A missing volume or an unreachable daemon: the source's own check says so,
            // with the fix, when it is backed up.
            if let Ok(Some(labels)) = drydock_sources::volume::volume_labels(&name) {
                v.label_priority = labels.priority;
                let problem = match (&labels.invalid, labels.priority) {
                    (Some(raw), _) => Some(format!("its label drydock.backup=`{raw}` is not a priority (critical, high, medium, low, none)")),
                    (None, None) => Some("it has no drydock.backup label".to_string()),
                    _ => None,
                };
                if let Some(problem) = problem {
                    let message = format!("{service}/{}: volume `{name}`: {problem} and the config gives no priority; treated as medium", source_name(v));
                    events.emit(Event::Warning {
                        message: message.clone(),
                    });
                    warnings.push(message);
                }
            }
        }
    }
    (config, warnings)
}

fn source_name(v: &drydock_domain::config::VolumeSource) -> &str {
    v.name.as_deref().unwrap_or("volume")
}

/// A container (or service) stopped for the backup and started again after it.
#[derive(Debug, Clone, Serialize)]
pub struct Restarted {
    /// The service, or `container NAME` for a labelled container of no service.
    pub service: String,
    pub status: RestartStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether what a backup stopped came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartStatus {
    /// Started again (and healthy when it has a health check).
    Running,
    /// Starting it again failed: see `error`.
    Failed,
}

struct Stopped {
    who: String,
    runtime: Box<dyn Runtime>,
}

/// What one run stopped, registered with the run's cancellation: started again
/// (newest first) when the run restarts it, when the guard is dropped, and at once when
/// the run is cancelled, from the canceller's thread, so even a run blocked on a server
/// that never answers leaves nothing stopped. Backup ([`StopDuringBackup`]) and restore
/// ([`StoppedUsers`]) share it.
struct StoppedGuard {
    stopped: Arc<Mutex<Vec<Stopped>>>,
    events: Arc<dyn EventSink>,
    /// The operation that stopped them, for the warnings (`backup`, `restore`).
    what_for: &'static str,
    _on_cancel: CancelHook,
}

/// Starts everything in `stopped` again (newest first), saying so as warnings: the run
/// was cancelled, so the operator should know what was touched.
fn restart_on_cancel(stopped: &Mutex<Vec<Stopped>>, events: &dyn EventSink, reason: &str) {
    // Held throughout: a restart by the run itself waits, and then finds nothing to do.
    let mut list = stopped.lock().unwrap_or_else(|p| p.into_inner());
    for s in list.drain(..).rev() {
        let message = match s.runtime.start() {
            Ok(()) => format!("{} started again (the run was cancelled: {reason})", s.who),
            Err(e) => format!(
                "{} could not be started again after the run was cancelled ({reason}): {e}",
                s.who
            ),
        };
        events.emit(Event::Warning { message });
    }
}

impl StoppedGuard {
    fn new(ctx: &RunContext, what_for: &'static str) -> StoppedGuard {
        let stopped = Arc::new(Mutex::new(Vec::new()));
        let (list, events) = (Arc::clone(&stopped), Arc::clone(&ctx.events));
        let hook = ctx
            .cancel
            .on_cancel(move |reason| restart_on_cancel(&list, events.as_ref(), reason));
        StoppedGuard {
            stopped,
            events: Arc::clone(&ctx.events),
            what_for,
            _on_cancel: hook,
        }
    }

    /// Stops `runtime`, recorded before the stop so that a cancellation during the stop
    /// still starts it again; refused once the run is cancelled (its hook has already
    /// run, so nothing would start it again).
    fn stop(&self, who: String, runtime: Box<dyn Runtime>, ctx: &RunContext) -> Result<(), Stop> {
        ctx.check_cancelled().map_err(Stop::Cancelled)?;
        let mut list = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let result = runtime.stop();
        list.push(Stopped { who, runtime });
        result.map_err(Stop::Failed)
    }

    /// Starts everything stopped again (newest first); per one, whether it came back.
    fn restart(&self) -> Vec<(String, Result<(), String>)> {
        // Held throughout, so a cancellation arriving now waits until all is started.
        let mut list = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for s in list.drain(..).rev() {
            self.events.emit(Event::Step {
                message: format!("starting {} again", s.who),
            });
            let result = s.runtime.start().map_err(|e| e.to_string());
            if let Err(e) = &result {
                self.events.emit(Event::Warning {
                    message: format!(
                        "{} did not come back after the {}: {e}",
                        s.who, self.what_for
                    ),
                });
            }
            out.push((s.who, result));
        }
        out
    }
}

impl Drop for StoppedGuard {
    fn drop(&mut self) {
        let _ = self.restart();
    }
}

/// Why [`StoppedGuard::stop`] did not stop.
enum Stop {
    Cancelled(EngineError),
    Failed(drydock_runtimes::RuntimeError),
}

/// Stops what must not run while its data is read; starts it again when finished or
/// dropped, and at once when the run is cancelled.
pub struct StopDuringBackup {
    guard: Option<StoppedGuard>,
}

impl StopDuringBackup {
    /// Stops, before anything is read: every service with `stop_during_backup` that
    /// has a planned source, and every container labelled
    /// `drydock.stop-during-backup=true` that mounts a planned volume. Only what runs
    /// is stopped (and so restarted). When a stop fails, what was stopped is started
    /// again and the backup does not run.
    pub fn stop(
        config: &Config,
        planned: &[Planned<'_>],
        ctx: &RunContext,
    ) -> Result<StopDuringBackup, EngineError> {
        let wanted = wanted_stopped(config, planned)?;
        if wanted.is_empty() {
            return Ok(StopDuringBackup { guard: None });
        }
        let guard = StoppedGuard::new(ctx, "backup");
        for (who, runtime) in wanted {
            // Nothing is stopped after a cancellation: its hook has already run.
            ctx.check_cancelled()?;
            let state = runtime.state().map_err(|e| {
                EngineError::Refused(format!(
                    "cannot stop {who} for the backup: {e}; nothing was backed up"
                ))
            })?;
            if state != State::Running {
                continue;
            }
            guard.events.emit(Event::Step {
                message: format!("stopping {who} while its data is read"),
            });
            match guard.stop(who.clone(), runtime, ctx) {
                Ok(()) => {}
                Err(Stop::Cancelled(e)) => return Err(e),
                Err(Stop::Failed(e)) => {
                    return Err(EngineError::Refused(format!(
                        "cannot stop {who} for the backup: {e}; nothing was backed up (what was stopped is started again)"
                    )))
                }
            }
        }
        Ok(StopDuringBackup { guard: Some(guard) })
    }

    /// Starts everything stopped again (newest first) and waits for each to run and be
    /// healthy; what did not come back is reported.
    pub fn restart(&self) -> Vec<Restarted> {
        let Some(guard) = &self.guard else {
            return Vec::new();
        };
        guard
            .restart()
            .into_iter()
            .map(|(service, result)| Restarted {
                service,
                status: if result.is_ok() {
                    RestartStatus::Running
                } else {
                    RestartStatus::Failed
                },
                error: result.err(),
            })
            .collect()
    }
}

/// Who is to be stopped (`service `S``, `container `C``) and how.
type Wanted = (String, Box<dyn Runtime>);

/// What a backup stops: the services with `stop_during_backup` and the labelled
/// containers mounting a planned volume, each once.
fn wanted_stopped(config: &Config, planned: &[Planned<'_>]) -> Result<Vec<Wanted>, EngineError> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut services: Vec<&str> = planned.iter().map(|p| p.service).collect();
    services.dedup();
    for service in &services {
        let svc = &config.services[*service];
        if svc.stop_during_backup {
            wanted.push((
                format!("service `{service}`"),
                drydock_runtimes::build(service, &svc.runtime),
            ));
        }
    }
    for container in labelled_users(planned)? {
        let already = wanted
            .iter()
            .any(|(_, r)| r.container().ok().flatten().as_deref() == Some(container.as_str()));
        if !already {
            let runtime = DockerRuntime::new(&container, container_config(config, &container));
            wanted.push((format!("container `{container}`"), Box::new(runtime)));
        }
    }
    Ok(wanted)
}

/// Containers labelled `drydock.stop-during-backup=true` that mount a planned volume.
fn labelled_users(planned: &[Planned<'_>]) -> Result<Vec<String>, EngineError> {
    let volumes: Vec<&drydock_domain::config::VolumeSource> = planned
        .iter()
        .filter_map(|p| match p.source {
            SourceConfig::Volume(v) => Some(v),
            _ => None,
        })
        .collect();
    if volumes.is_empty() {
        return Ok(Vec::new());
    }
    let client = match DockerClient::connect() {
        Ok(c) => c,
        // The volumes' own checks report the daemon with the fix.
        Err(_) => return Ok(Vec::new()),
    };
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("{LABEL_STOP_DURING_BACKUP}=true")],
    );
    let containers = client
        .containers(filters)
        .map_err(|e| EngineError::Refused(format!("cannot list containers: {e}")))?;
    let mut out = Vec::new();
    for c in containers {
        let mounts = c.mounts.clone().unwrap_or_default();
        let uses = volumes.iter().any(|v| {
            mounts.iter().any(|m| match (&v.volume, &v.path) {
                (Some(name), _) => m.name.as_deref() == Some(name.as_str()),
                (None, Some(path)) => {
                    m.source.as_deref().map(|s| s.trim_end_matches('/'))
                        == Some(path.to_string_lossy().trim_end_matches('/'))
                }
                _ => false,
            })
        });
        if uses {
            if let Some(name) = c.names.as_ref().and_then(|n| n.first()) {
                out.push(name.trim_start_matches('/').to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How to handle container `name`: as the `docker` runtime of the service that
/// declares it, else with Docker's own default stop timeout (10 s).
pub fn container_config(config: &Config, name: &str) -> DockerRuntimeConfig {
    config
        .services
        .values()
        .find_map(|svc| match &svc.runtime {
            RuntimeConfig::Docker(d) if d.container == name => Some(d.clone()),
            _ => None,
        })
        .unwrap_or_else(|| DockerRuntimeConfig {
            container: name.to_string(),
            stop_timeout: Duration::from_secs(10),
            health_timeout: Duration::from_secs(60),
        })
}

/// Stops the running containers a volume restore would pull the data from under;
/// started again (waiting for health) when the restore is done, when dropped, and at
/// once when the run is cancelled.
pub struct StoppedUsers {
    guard: StoppedGuard,
}

impl StoppedUsers {
    pub fn stop(
        containers: &[DockerRuntimeConfig],
        ctx: &RunContext,
    ) -> Result<StoppedUsers, EngineError> {
        let out = StoppedUsers {
            guard: StoppedGuard::new(ctx, "restore"),
        };
        for c in containers {
            let name = &c.container;
            ctx.events().emit(Event::Step {
                message: format!("stopping container `{name}` (it uses the volume)"),
            });
            let runtime = Box::new(DockerRuntime::new(name, c.clone()));
            match out.guard.stop(format!("container `{name}`"), runtime, ctx) {
                Ok(()) => {}
                Err(Stop::Cancelled(e)) => return Err(e),
                Err(Stop::Failed(e)) => return Err(EngineError::Runtime(e)),
            }
        }
        Ok(out)
    }

    /// Starts them again; the errors of those that did not come back.
    pub fn start(&mut self) -> Vec<String> {
        self.guard
            .restart()
            .into_iter()
            .filter_map(|(who, r)| r.err().map(|e| format!("{who}: {e}")))
            .collect()
    }
}
