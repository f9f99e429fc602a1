//! drydock's runtimes: how a service is started, stopped and asked whether it runs.
//!
//! One adapter per file behind [`Runtime`], registered in [`build`]. The engine uses a
//! runtime to stop a service before its files are replaced and to start it again.

use std::fmt;

use drydock_domain::config::RuntimeConfig;

pub mod external;
pub mod none;
pub mod process;

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
}

/// Whether a service runs, as far as its runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Stopped,
    /// The runtime cannot tell (external services).
    Unknown,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::Stopped => "stopped",
            State::Unknown => "unknown",
        })
    }
}

pub trait Runtime: Send + Sync {
    /// `process`, `external`, `none`.
    fn kind(&self) -> &'static str;
    /// Whether drydock may stop and start this service itself.
    fn can_stop(&self) -> bool;
    fn state(&self) -> Result<State, RuntimeError>;
    /// Stops the service and waits until it reports stopped.
    fn stop(&self) -> Result<(), RuntimeError>;
    /// Starts the service and waits until it reports running.
    fn start(&self) -> Result<(), RuntimeError>;
}

/// The one place that maps a configured runtime to its adapter.
pub fn build(service: &str, config: &RuntimeConfig) -> Box<dyn Runtime> {
    match config {
        RuntimeConfig::External => Box::new(external::External),
        RuntimeConfig::None => Box::new(none::NoProcess),
        RuntimeConfig::Process(p) => Box::new(process::Process::new(service, p.clone())),
    }
}
