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
