//! The contract every runtime adapter implements: [`Runtime`], what it reports
//! ([`State`], [`Details`], [`LogTail`]) and its error ([`RuntimeError`]). Its own
//! module so the adapters and the registry in `lib.rs` depend on it, not on each other.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::bridge::ExecProcess;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("service `{service}`: `{command}` failed ({status}): {output}")]
    Command {
        service: String,
        command: String,
        status: String,
        output: String,
    },
    #[error("service `{service}`: `{command}` did not finish within {seconds} s; check the command or raise runtime.timeout")]
    Timeout {
        service: String,
        command: String,
        seconds: u64,
    },
    #[error("service `{service}`: {message}")]
    Unsupported { service: String, message: String },
    #[error("service `{service}`: container `{container}` was started but is not healthy after {seconds} s: {why}; see `drydock diagnose {service}` (or `docker logs {container}`)")]
    Unhealthy {
        service: String,
        container: String,
        seconds: u64,
        why: String,
    },
}

/// Whether a service runs, as far as its runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Stopped,
    /// Not deployed: no such unit or container, or its data directory is gone (a
    /// `process` status command exiting 4, the LSB and systemd code for that).
    Missing,
    /// The runtime cannot tell (external services).
    #[default]
    Unknown,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::Stopped => "stopped",
            State::Missing => "missing",
            State::Unknown => "unknown",
        })
    }
}

/// What a runtime knows about a service beyond running or not. `None` is "this runtime
/// cannot tell", never zero.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Details {
    pub state: State,
    /// The service's main processes (a container's init, a PID file's process); their
    /// children belong to the service too.
    pub pids: Vec<u32>,
    /// Restarts the runtime counted (a container's restart count).
    pub restart_count: Option<u32>,
    /// When the current run started.
    pub started_at: Option<jiff::Timestamp>,
    /// The runtime's own health verdict, when it has one (a container HEALTHCHECK).
    pub health: Option<String>,
    /// Exit code of the last run, when stopped.
    pub exit_code: Option<i32>,
    /// Whether the last run was killed for lack of memory.
    pub oom_killed: Option<bool>,
    /// Anything else worth showing (a stale PID file, a container's status text).
    pub notes: Vec<String>,
}

impl Details {
    /// Seconds since `started_at`.
    pub fn uptime_secs(&self) -> Option<u64> {
        let started = self.started_at?;
        let secs = jiff::Timestamp::now().duration_since(started).as_secs();
        Some(secs.max(0) as u64)
    }
}

/// The last lines of a service's log and where they came from.
#[derive(Debug, Clone, Serialize)]
pub struct LogTail {
    /// A file path, or e.g. `docker logs NAME`.
    pub source: String,
    pub lines: Vec<String>,
}

pub trait Runtime: Send + Sync {
    /// `process`, `external`, `none`, `docker`, `compose`.
    fn kind(&self) -> &'static str;
    /// Whether drydock may stop and start this service itself.
    fn can_stop(&self) -> bool;
    fn state(&self) -> Result<State, RuntimeError>;
    /// Stops the service and waits until it reports stopped.
    fn stop(&self) -> Result<(), RuntimeError>;
    /// Starts the service and waits until it reports running.
    fn start(&self) -> Result<(), RuntimeError>;

    /// State, processes, restarts and uptime; by default only the state.
    fn details(&self) -> Result<Details, RuntimeError> {
        Ok(Details {
            state: self.state()?,
            ..Details::default()
        })
    }

    /// The last `lines` lines of the service's log; `None` when the runtime has none.
    fn logs(&self, lines: usize) -> Result<Option<LogTail>, RuntimeError> {
        let _ = lines;
        Ok(None)
    }

    /// Stops (when running) and starts the service.
    fn restart(&self) -> Result<(), RuntimeError> {
        if self.state()? == State::Running {
            self.stop()?;
        }
        self.start()
    }

    /// Whether [`Runtime::recreate`] can work here; `Err` says why not and what to do.
    /// Checked by a deployment before it changes anything.
    fn can_recreate(&self) -> Result<(), String> {
        Err(format!(
            "its runtime `{}` does not let drydock recreate it",
            self.kind()
        ))
    }

    /// Recreates the service for new infrastructure (an image, a config): stops it
    /// gracefully, puts it back from its definition, starts it, and waits until it
    /// reports running. Its data is the deployment's to check afterwards.
    fn recreate(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            service: String::new(),
            message: self.can_recreate().err().unwrap_or_default(),
        })
    }

    /// The file the service's definition is read from when it is recreated (a compose
    /// file), for a rollback to an earlier revision of it; `None` when there is none.
    fn definition(&self) -> Option<PathBuf> {
        None
    }

    /// [`Runtime::recreate`] from `definition` instead of the usual one: an earlier
    /// revision's file, written beside it (relative paths in it still resolve).
    fn recreate_from(&self, definition: &std::path::Path) -> Result<(), RuntimeError> {
        let _ = definition;
        Err(RuntimeError::Unsupported {
            service: String::new(),
            message: format!(
                "runtime `{}` has no definition file to recreate from",
                self.kind()
            ),
        })
    }

    /// Folders holding the service's data that the runtime knows of.
    fn data_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The container the service runs in, for runtimes that have one (`None` when it
    /// is not created yet).
    fn container(&self) -> Result<Option<String>, RuntimeError> {
        Ok(None)
    }

    /// Runs `cmd` inside the service's container with `env` in its environment, its
    /// output streamed (dump tools with `exec = true`).
    fn exec(
        &self,
        cmd: &[String],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<ExecProcess, RuntimeError> {
        let _ = (cmd, env, stdin);
        Err(RuntimeError::Unsupported {
            service: String::new(),
            message: format!("runtime `{}` has no container to run tools in", self.kind()),
        })
    }
}
