//! `deploy = { kind = "docker" }`: a service whose versions are containers of one
//! image repository. Dispatches by strategy (`swap.rs`: zero downtime behind nginx;
//! `recreate.rs`: stop old, start new, back to the old one if unhealthy) and holds what
//! both share: the service's containers found by their labels (never by name), a new
//! container started from `image` with `{rev}` as the commit, the health gate, and the
//! pruning of kept containers.
//!
//! Every container drydock starts carries `drydock.stack`, `drydock.service`,
//! `drydock.commit` and `drydock.deployed_at`. Stopped ones are the versions kept for
//! rollback; "the version live before" is the one that last ran before the live one
//! (Docker's `StartedAt`), so a rollback followed by another goes back and forth.
//! `take_down` (certify's destroy step) stops every running container of the service;
//! the next deploy finds none live and starts a new one.

mod nginx;
mod recreate;
mod run;
mod swap;

use drydock_domain::config::{DockerDeploy, Strategy};

use crate::deploy::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

pub fn deploy(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    match spec.strategy {
        Strategy::Swap => swap::deploy(spec, target, ctx),
        Strategy::Recreate => recreate::deploy(spec, target, ctx),
    }
}

pub fn rollback(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    to: Option<&str>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    match spec.strategy {
        Strategy::Swap => swap::rollback(spec, target, to, ctx),
        Strategy::Recreate => recreate::rollback(spec, target, to, ctx),
    }
}

/// Stops every running container of the service (kept, like any old version), so the
/// next deploy starts a new one. Ok: (changes, what was done).
pub fn take_down(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<(u32, String), String> {
    let mut run = run::Run::new(spec, target, ctx).map_err(|f| f.cause)?;
    let running: Vec<run::Version> = run
        .versions()?
        .into_iter()
        .filter(|v| v.facts.running)
        .collect();
    if running.is_empty() {
        return Ok((0, "no container of it is running".to_string()));
    }
    for v in &running {
        run.stop("stop", v)?;
    }
    let names: Vec<&str> = running.iter().map(|v| v.facts.name.as_str()).collect();
    Ok((
        run.changes,
        format!("stopped {} (kept for rollback)", names.join(", ")),
    ))
}
