//! drydock's runtimes: how a service is started, stopped and asked whether it runs.
//!
//! One adapter per file behind [`Runtime`], registered in [`build`]. The engine uses a
//! runtime to stop a service before its files are replaced and to start it again, and
//! `health`, `diagnose` and `heal` ask it for [`Details`] (state, processes, restarts,
//! uptime), its logs, and to restart. Methods a runtime cannot answer have defaults
//! that say "unknown" rather than guess.

use drydock_domain::config::RuntimeConfig;

mod bridge;
pub mod compose;
pub mod docker;
pub mod external;
pub mod none;
pub mod process;
pub mod procinfo;
mod runtime;

pub use runtime::{Details, LogTail, Runtime, RuntimeError, State};

/// The one place that maps a configured runtime to its adapter.
pub fn build(service: &str, config: &RuntimeConfig) -> Box<dyn Runtime> {
    match config {
        RuntimeConfig::External => Box::new(external::External),
        RuntimeConfig::None => Box::new(none::NoProcess),
        RuntimeConfig::Process(p) => Box::new(process::Process::new(service, p.clone())),
        RuntimeConfig::Docker(d) => Box::new(docker::DockerRuntime::new(service, d.clone())),
        RuntimeConfig::Compose(c) => Box::new(compose::ComposeRuntime::new(service, c.clone())),
    }
}
